"""Build forestream's shipped EC2 instance catalog from apache-libcloud's data files.

The catalog that ``forestream.optimizer.load_catalog()`` reads is a gzipped CSV under
``src/forestream/optimizer/catalog/data/``, one row per (region, instance type). This script is
the only thing that writes it, and it is deterministic: the same libcloud release gives
the same bytes (rows sorted, gzip header without timestamp or file name).

Source
    apache-libcloud (Apache License 2.0), pinned to :data:`LIBCLOUD_VERSION`:
    ``libcloud/compute/constants/ec2_instance_types.py`` (per-type vCPU, memory, GPUs,
    GPU memory, network performance, processor — scraped by libcloud from the AWS
    price-list API) and ``libcloud/data/pricing.json`` (``compute.ec2_linux``: Linux
    on-demand USD per hour per region; ``updated`` is the scrape time, which dates the
    catalog file). The wheel is fetched with ``pip download`` and read as data: the
    Python module is parsed with :func:`ast.literal_eval`, never imported.

Cleaning rules
    * Only types with a spec entry are kept (libcloud prices a few ``*.metal`` sizes and
      bare family names that have no vCPU/memory data).
    * A type is in a region's catalog when the region appears in its price table.
    * A price of 0 is *missing*. A price more than 3x away from what its family charges
      for the same size is *inconsistent*. Both are replaced by an estimate and flagged
      ``price_estimated``: the median price per normalized size unit of the type's
      family in that region, times the type's size. The unit is AWS's
      ``normalizationSizeFactor`` (large = 4, xlarge = 8, ...), which grows with vCPUs
      for most families and with memory for burstable ones, so it estimates ``t3.micro``
      as well as ``m5.4xlarge``; where a type has no factor its vCPU count is used.
      (Leave-one-out on the real prices of us-east-1, eu-west-1 and ap-northeast-1:
      median error 0 %, 90th percentile 9 %, worst 26 %.) When the family has no real
      price in the region, the type's (or else its family's) prices elsewhere are moved
      to the region with the region's median price index. Rows with no estimate at all
      are dropped and counted.
    * ``cpu_speed``: relative per-vCPU speed from the processor generation
      (:data:`CPU_SPEED_RULES`, first match wins; 1.0 = Intel Skylake, the m5/c5
      generation; unknown processors 1.0). The factors follow the vendors' published
      generation-over-generation claims (Graviton3 +25 % over Graviton2, Graviton4 +30 %
      over Graviton3, m6i +15 % over m5, m7i +15 % over m6i, m7a +50 % over m6a with
      one full core per vCPU): coarse, for ranking candidates, not a benchmark.
    * ``network_gbps`` is a sustained baseline. Fixed figures ("25 Gigabit") are used as
      they are. An "Up to X" figure is a burst ceiling (kept in ``network_burst_gbps``);
      its baseline is the per-vCPU rate of the family's smallest fixed-bandwidth size
      times the type's vCPUs, or, in families with no fixed size (burstable ones),
      0.128 Gbps per normalized size unit (AWS's published T3 ladder: t3.nano 0.032,
      t3.2xlarge 2.048), capped at X. Old qualitative figures map to Very Low 0.05,
      Low 0.1, Low to Moderate 0.3, Moderate 0.5, High 1.0 Gbps.
    * ``gpus`` and ``gpu_memory_gib`` (total over all GPUs) come from the ``gpu`` and
      ``gpuMemory`` fields; :data:`CORRECTIONS` fixes the source's known errors. ML ASIC,
      FPGA and media accelerators are not GPUs: their ``category`` says what they are.

Usage::

    python scripts/build_catalog.py                   # downloads libcloud with pip
    python scripts/build_catalog.py --libcloud-dir D  # an unpacked libcloud wheel
"""

from __future__ import annotations

import argparse
import ast
import csv
import datetime as dt
import gzip
import io
import json
import math
import re
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from pathlib import Path

LIBCLOUD_VERSION = "3.9.1"
OUTPUT_DIR = (Path(__file__).resolve().parents[1] / "src" / "forestream" / "optimizer" / "catalog"
              / "data")

COLUMNS = ("region", "name", "family", "category", "architecture", "vcpu", "memory_gib",
           "gpus", "gpu_memory_gib", "network_gbps", "network_burst_gbps", "cpu_speed",
           "burstable", "processor", "current_generation", "price_per_hour",
           "price_estimated")

#: (regular expression on libcloud's ``physicalProcessor``, relative per-vCPU speed).
CPU_SPEED_RULES: tuple[tuple[str, float], ...] = (
    (r"Graviton4", 1.6),
    (r"Graviton3", 1.25),
    (r"Graviton2", 1.0),
    (r"Graviton", 0.6),                      # first-generation Graviton (a1)
    (r"Emerald Rapids", 1.45),
    (r"Sapphire Rapids", 1.35),
    (r"Ice ?lake|8375C", 1.15),
    (r"8252", 1.2),                          # m5zn: Cascade Lake at 4.5 GHz
    (r"Cascade Lake|8259|8275|8280", 1.05),
    (r"8151", 1.15),                         # z1d: Skylake at 4.0 GHz
    (r"Skylake|8175|8124|8151", 1.0),
    (r"Broadwell|v4\b", 0.85),
    (r"Haswell|v3\b", 0.8),
    (r"Ivy Bridge|v2\b", 0.7),
    (r"Sandy Bridge|E5-2670|E5-2650", 0.65),
    (r"9R14", 1.5),                          # AMD EPYC Genoa (Zen 4), no SMT
    (r"7R13", 1.1),                          # AMD EPYC Milan (Zen 3)
    (r"7R32", 0.95),                         # AMD EPYC Rome (Zen 2)
    (r"7571", 0.85),                         # AMD EPYC Naples (Zen 1)
)

BURSTABLE_FAMILIES = frozenset({"t1", "t2", "t3", "t3a", "t4g"})
QUALITATIVE_NETWORK_GBPS = {"Very Low": 0.05, "Low": 0.1, "Low to Moderate": 0.3,
                            "Moderate": 0.5, "High": 1.0}
T3_BASELINE_GBPS_PER_UNIT = 0.128
INCONSISTENT_FACTOR = 3.0

#: Known errors in the source data: type -> corrected fields.
CORRECTIONS = {
    "p5en.48xlarge": {"gpu_memory_gib": 1128.0},  # source lists one H200's 141 GB, not 8
    "p2.xlarge": {"gpu_memory_gib": 12.0},         # K80: 12 GB per GPU; source has NA
    "p2.8xlarge": {"gpu_memory_gib": 96.0},
    "p2.16xlarge": {"gpu_memory_gib": 192.0},
    "g2.2xlarge": {"gpu_memory_gib": 4.0},         # GRID K520: 4 GB per GPU; source NA
    "g2.8xlarge": {"gpu_memory_gib": 16.0},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--libcloud-dir", type=Path,
                        help="an unpacked apache-libcloud wheel (default: pip download it)")
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.libcloud_dir or fetch_libcloud(Path(tmp))
        specs = read_instance_types(root / "libcloud/compute/constants/ec2_instance_types.py")
        pricing = json.loads((root / "libcloud/data/pricing.json").read_text())
    rows, report = build_rows(specs, pricing["compute"]["ec2_linux"])
    date = dt.datetime.fromtimestamp(pricing["updated"], dt.timezone.utc).date().isoformat()
    path = args.output_dir / f"ec2-catalog-{date}.csv.gz"
    write_catalog(rows, path)
    print(f"wrote {path}: libcloud {LIBCLOUD_VERSION}, prices scraped {date}; "
          f"{report['types']} types, {report['regions']} regions, {len(rows)} rows, "
          f"{report['missing']} missing and {report['inconsistent']} inconsistent prices "
          f"estimated, {report['dropped']} rows dropped (no estimate possible)")
    return 0


def fetch_libcloud(directory: Path) -> Path:
    """``pip download`` the pinned libcloud wheel into ``directory`` and unpack it."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                    "--dest", str(directory), f"apache-libcloud=={LIBCLOUD_VERSION}"],
                   check=True)
    wheel = next(directory.glob("apache_libcloud-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(directory / "unpacked")
    return directory / "unpacked"


def read_instance_types(path: Path) -> dict[str, dict]:
    """The ``INSTANCE_TYPES`` literal of libcloud's generated module, without running it."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id == "INSTANCE_TYPES"):
            return ast.literal_eval(node.value)
    raise SystemExit(f"{path} has no INSTANCE_TYPES assignment")


def build_rows(specs: dict[str, dict], prices: dict[str, dict[str, float]]
               ) -> tuple[list[dict], dict]:
    types = {name: describe(name, spec["extra"]) for name, spec in specs.items()}
    assign_network_baselines(types)
    for name, fix in CORRECTIONS.items():
        if name in types:
            types[name].update(fix)
    real = {(name, region): float(p) for name in types
            for region, p in prices.get(name, {}).items() if p and float(p) > 0}
    index = region_price_index(real)
    report = {"types": len(types), "regions": len(index), "missing": 0,
              "inconsistent": 0, "dropped": 0}
    rows = []
    for name, info in types.items():
        for region in sorted(prices.get(name, {})):
            price = real.get((name, region))
            estimate = estimate_price(name, region, types, real, index)
            estimated = price is None
            if price is not None and estimate is not None and not (
                    1 / INCONSISTENT_FACTOR < price / estimate < INCONSISTENT_FACTOR):
                estimated = True
                report["inconsistent"] += 1
            elif price is None:
                report["missing"] += 1
            if estimated:
                if estimate is None:
                    report["dropped"] += 1
                    report["missing"] -= 1
                    continue
                price = round(estimate, 4)
            rows.append({**info, "region": region, "price_per_hour": price,
                         "price_estimated": estimated})
    rows.sort(key=lambda r: (r["region"], r["family"], r["vcpu"], r["memory_gib"], r["name"]))
    return rows, report


def describe(name: str, extra: dict) -> dict:
    processor = extra.get("physicalProcessor", "")
    gpus = int(extra["gpu"]) if str(extra.get("gpu", "")).isdigit() else 0
    family = name.split(".")[0]
    return {
        "name": name, "family": family, "category": extra.get("instanceFamily", ""),
        "architecture": "arm64" if "Graviton" in processor else "x86_64",
        "vcpu": int(extra["vcpu"]), "memory_gib": float(extra["memory"].split()[0]),
        "gpus": gpus, "gpu_memory_gib": parse_gib(extra.get("gpuMemory")) if gpus else 0.0,
        "network": extra.get("networkPerformance", ""),
        "size_units": parse_number(extra.get("normalizationSizeFactor")),
        "cpu_speed": cpu_speed(processor), "burstable": family in BURSTABLE_FAMILIES,
        "processor": processor, "current_generation": extra.get("currentGeneration") == "Yes",
    }


def cpu_speed(processor: str) -> float:
    for pattern, speed in CPU_SPEED_RULES:
        if re.search(pattern, processor, re.IGNORECASE):
            return speed
    return 1.0


def parse_number(text: str | None) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def parse_gib(text: str | None) -> float:
    match = re.match(r"\s*([\d.]+)\s*GI?B", text or "", re.IGNORECASE)
    return float(match.group(1)) if match else 0.0


def parse_network(text: str) -> tuple[float, bool]:
    """(Gbps, is a burst ceiling) from "Up to 12500 Megabit", "25 Gigabit", "High"."""
    if text in QUALITATIVE_NETWORK_GBPS:
        return QUALITATIVE_NETWORK_GBPS[text], False
    match = re.match(r"(Up to )?([\d.]+) (Gigabit|Megabit)", text)
    if not match:
        return 0.0, False
    value = float(match.group(2)) / (1000 if match.group(3) == "Megabit" else 1)
    return value, bool(match.group(1))


def assign_network_baselines(types: dict[str, dict]) -> None:
    by_family: dict[str, list[dict]] = defaultdict(list)
    for info in types.values():
        info["network_gbps"], info["burst"] = parse_network(info.pop("network"))
        by_family[info["family"]].append(info)
    for members in by_family.values():
        fixed = sorted((m for m in members if not m["burst"] and m["network_gbps"]),
                       key=lambda m: m["vcpu"])
        for info in members:
            ceiling = info["network_gbps"]
            info["network_burst_gbps"] = ceiling
            if not info.pop("burst"):
                continue
            if fixed:
                baseline = fixed[0]["network_gbps"] / fixed[0]["vcpu"] * info["vcpu"]
            else:
                baseline = T3_BASELINE_GBPS_PER_UNIT * (info["size_units"] or info["vcpu"])
            info["network_gbps"] = round(min(ceiling, baseline), 3)


def size_of(info: dict) -> float:
    return info["size_units"] or info["vcpu"]


def region_price_index(real: dict[tuple[str, str], float]) -> dict[str, float]:
    """Each region's median price relative to us-east-1 over the types priced in both."""
    reference = {name: p for (name, region), p in real.items() if region == "us-east-1"}
    ratios: dict[str, list[float]] = defaultdict(list)
    for (name, region), price in real.items():
        if name in reference:
            ratios[region].append(price / reference[name])
    return {region: statistics.median(r) for region, r in sorted(ratios.items())}


def estimate_price(name: str, region: str, types: dict[str, dict],
                   real: dict[tuple[str, str], float], index: dict[str, float]) -> float | None:
    info = types[name]
    family = [other for other in types if types[other]["family"] == info["family"]
              and other != name]
    rates = [real[(o, region)] / size_of(types[o]) for o in family if (o, region) in real]
    if rates:
        return statistics.median(rates) * size_of(info)
    if region not in index:
        return None
    moved = [p / index[r] * index[region] for (n, r), p in real.items()
             if n == name and r in index]
    if moved:
        return statistics.median(moved)
    moved = [p / size_of(types[n]) / index[r] * index[region] * size_of(info)
             for (n, r), p in real.items() if n in family and r in index]
    return statistics.median(moved) if moved else None


def write_catalog(rows: list[dict], path: Path) -> None:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, extrasaction="ignore",
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "burstable": int(row["burstable"]),
                         "current_generation": int(row["current_generation"]),
                         "price_estimated": int(row["price_estimated"]),
                         "memory_gib": format_number(row["memory_gib"]),
                         "gpu_memory_gib": format_number(row["gpu_memory_gib"]),
                         "network_gbps": format_number(row["network_gbps"]),
                         "network_burst_gbps": format_number(row["network_burst_gbps"]),
                         "price_per_hour": format_number(row["price_per_hour"])})
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob("ec2-catalog-*.csv.gz"):
        if stale != path:
            stale.unlink()
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                mtime=0, compresslevel=9) as out:
        out.write(text.getvalue().encode())


def format_number(value: float) -> str:
    return f"{value:.6g}" if not math.isclose(value, round(value)) else str(int(round(value)))


if __name__ == "__main__":
    sys.exit(main())
