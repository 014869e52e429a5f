"""Right-sizing judged against hindsight: how much of what was possible does each policy save?

A fleet of EC2 instances (``_hindsight_fleet.make``: general, compute, memory optimized
and burstable types, large to 4xlarge, four weeks of 5-minute CPU and memory, shapes
mixed as in real fleets, a tenth with a change of level after the seen days) is written
as a metrics directory of its first 14 days; each peer names one instance type per
instance; the true demand of the last 14 days is then replayed on that type.

Peers, side by side in one run:

- ``forestream``: ``forestream optimizer recommend DIR --json -`` (the command a user
  runs, default preferences), its first-ranked option;
- ``aws-default``: the same command with ``--policy aws-default`` (Compute Optimizer's
  documented default: P99.5 CPU + 20 %, memory peak + 20 %);
- ``max+20%``: ``--policy max-rule`` (each metric's maximum plus 20 %);
- ``hindsight-seen``: the cheapest candidate that would have held the SLO on the seen
  days' *true* demand, no headroom (a perfect fit to the past);
- ``oracle``: the cheapest candidate that holds the SLO on the replayed days.

Every peer chooses among the same candidates (``candidate_types`` of the current type:
current-generation general purpose, compute and memory optimized types of the same
architecture; burstable types only for burstable instances).

The SLO, per instance over the replayed days: the 99th percentile of 5-minute CPU
utilization at most 90 % and at most 1 % of samples above 100 %, where utilization is
the demand (reference cores) over the type's capacity (vCPUs x the catalog's per-vCPU
speed). On burstable types (t2, t3, t3a, t4g) the capacity of a sample is the whole
type while CPU credits last and its baseline once they are spent (standard mode: credits
earned at the baseline rate, spent by use, at most 24 hours' worth kept, none at
launch). **OOM**: a sample whose memory demand exceeds the type's memory.

Reported per peer: ``savings`` (monthly price saved, % of the fleet's current cost, 730 h
months), ``SLO savings`` (only instances that held the SLO without OOM count; the rest
are rolled back and save nothing), ``capture`` (SLO savings over the oracle's),
``within SLO`` over all instances and over the *foreseeable* ones (no change of level
after the seen days), ``OOM`` (instances with at least one OOM sample). Several seeds
run in one call; the last table pools them (sums of prices; shares over all instances).

Run: ``python benchmarks/rightsizing_hindsight.py --seeds 3 4 5 --timing-runs 3``
(``--details`` lists the instances outside the SLO per peer and seed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _hindsight_fleet import Fleet, make  # noqa: E402

from forestream.optimizer.catalog import load_catalog  # noqa: E402
from forestream.optimizer.recommend import (  # noqa: E402
    HOURS_PER_MONTH,
    candidate_types,
    recommend_many,
)
from forestream.optimizer.types import InstanceType  # noqa: E402

#: the command a user runs (beside this interpreter, as a virtual environment installs it)
FORESTREAM = str(Path(sys.executable).with_name("forestream"))
PEERS = ("forestream", "aws-default", "max+20%", "hindsight-seen", "oracle")
CLI_POLICY = {"forestream": "forestream", "aws-default": "aws-default", "max+20%": "max-rule"}
SLO_PERCENTILE = 0.99
SLO_UTILIZATION = 0.90
SLO_ABOVE_FULL = 0.01
#: baseline share of each vCPU for burstable sizes (AWS's table; t2 differs above large)
BASELINE = {"nano": 0.05, "micro": 0.10, "small": 0.20, "medium": 0.20, "large": 0.30,
            "xlarge": 0.40, "2xlarge": 0.40}
T2_BASELINE = {"xlarge": 0.225, "2xlarge": 0.17}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[3, 4, 5])
    parser.add_argument("--instances", type=int, default=300)
    parser.add_argument("--details", nargs="?", const="forestream", default=None,
                        help="list this peer's instances outside the SLO or below the "
                             "oracle's saving (default peer: forestream)")
    parser.add_argument("--in-process", action="store_true",
                        help="call recommend_many instead of the command (faster)")
    parser.add_argument("--timing-resources", type=int, default=10_000)
    parser.add_argument("--timing-runs", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 140))
    catalog = load_catalog()
    load_before = os.getloadavg()
    per_seed = {}
    for seed in args.seeds:
        fleet = make(args.instances, seed, catalog)
        result = evaluate(fleet, catalog, args.in_process)
        per_seed[seed] = result
        console.print(table(f"seed {seed} ({args.instances} instances, "
                            f"{int(fleet.regime.sum())} with an unforeseeable change)",
                            summarize(result)))
        if args.details:
            details(console, fleet, result, args.details)
    pooled = summarize(merge(list(per_seed.values())))
    if len(per_seed) > 1:
        console.print(table(f"pooled over seeds {', '.join(map(str, args.seeds))}", pooled))
    by_shape = shape_table(per_seed)
    console.print(by_shape)
    out: dict = {"seeds": {s: summarize(r) for s, r in per_seed.items()}, "pooled": pooled}
    if args.timing_runs > 0:
        runs = timing(args.timing_resources, args.timing_runs, catalog)
        out["timing_seconds"] = runs
        console.print(f"recommend_many (forestream policy), {args.timing_resources} instances "
                      f"x 14 days: median {statistics.median(runs):.1f} s of {len(runs)} runs "
                      f"({', '.join(f'{x:.1f}' for x in runs)})")
    load_after = os.getloadavg()
    console.print(f"load average (1, 5, 15 min): before {_load(load_before)}, after "
                  f"{_load(load_after)}; {os.cpu_count()} cores")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=float) + "\n")
    return 0


# ------------------------------------------------------------------------ evaluation
def evaluate(fleet: Fleet, catalog, in_process: bool) -> dict:
    """Each peer's chosen type per instance, judged on the replayed days."""
    current = [catalog[r.current["instance_type"]] for r in fleet.resources]
    candidates = [candidate_types(t, catalog) for t in current]
    seen = slice(0, fleet.seen)
    ahead = slice(fleet.seen, None)
    chosen: dict[str, list[InstanceType]] = {}
    recommendations = recommend(fleet, catalog, in_process)
    for peer, names in recommendations.items():
        chosen[peer] = [catalog[n] for n in names]
    chosen["hindsight-seen"] = [cheapest_holding(c, fleet.cpu[r, seen], fleet.mem[r, seen])
                                for r, c in enumerate(candidates)]
    chosen["oracle"] = [cheapest_holding(c, fleet.cpu[r, ahead], fleet.mem[r, ahead])
                        for r, c in enumerate(candidates)]
    price_now = np.array([t.price_per_hour for t in current]) * HOURS_PER_MONTH
    out = {"fleet": fleet, "price_now": price_now, "peers": {}}
    for peer in PEERS:
        types = chosen[peer]
        price = np.array([t.price_per_hour for t in types]) * HOURS_PER_MONTH
        judged = [judge(t, fleet.cpu[r, ahead], fleet.mem[r, ahead])
                  for r, t in enumerate(types)]
        out["peers"][peer] = {"types": [t.name for t in types], "saving": price_now - price,
                              "within": np.array([j[0] for j in judged]),
                              "oom": np.array([j[1] for j in judged]),
                              "p99": np.array([j[2] for j in judged])}
    return out


def recommend(fleet: Fleet, catalog, in_process: bool) -> dict[str, list[str]]:
    """The first-ranked option of each CLI policy, per instance."""
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "metrics"
        write_metrics(fleet, directory)
        for peer, policy in CLI_POLICY.items():
            if in_process:
                from forestream.optimizer.ingest import read_metrics

                recs = [r.to_dict() for r in recommend_many(read_metrics(directory), catalog,
                                                            policy=policy)]
            else:
                done = subprocess.run(
                    [FORESTREAM, "optimizer", "recommend", str(directory), "--policy",
                     policy, "--json", "-"],
                    check=True, capture_output=True, text=True)
                recs = json.loads(done.stdout)["recommendations"]
            best = {r["resource_id"]: (r["options"][0]["name"] if r["options"]
                                       else r["current"]["name"]) for r in recs}
            out[peer] = [best[r.resource_id] for r in fleet.resources]
    return out


def write_metrics(fleet: Fleet, directory: Path) -> None:
    """The seen days as a metrics directory: one CSV per instance and resources.csv."""
    directory.mkdir(parents=True)
    lines = ["resource_id,kind,instance_type"]
    for h in fleet.histories():
        lines.append(f"{h.resource.resource_id},instance,{h.resource.current['instance_type']}")
        rows = np.column_stack([h.timestamps, h.metrics["cpu_pct"], h.metrics["mem_pct"]])
        with open(directory / f"{h.resource.resource_id}.csv", "w") as f:
            f.write("timestamp,cpu_pct,mem_pct\n")
            np.savetxt(f, rows, fmt=("%d", "%.3f", "%.3f"), delimiter=",")
    (directory / "resources.csv").write_text("\n".join(lines) + "\n")


# ---------------------------------------------------------------------------- the SLO
def judge(t: InstanceType, cpu: np.ndarray, mem: np.ndarray) -> tuple[bool, bool, float]:
    """(within SLO, OOM, P99 utilization) of demand ``cpu``/``mem`` replayed on ``t``."""
    utilization = utilization_on(t, cpu)
    valid = np.isfinite(utilization)
    u = utilization[valid]
    p99 = float(np.quantile(u, SLO_PERCENTILE)) if u.size else 0.0
    above = float(np.mean(u > 1.0)) if u.size else 0.0
    oom = bool(np.nanmax(mem) > t.memory_gib) if np.isfinite(mem).any() else False
    return (p99 <= SLO_UTILIZATION and above <= SLO_ABOVE_FULL and not oom), oom, p99


def utilization_on(t: InstanceType, cpu: np.ndarray) -> np.ndarray:
    """Utilization of each sample of demand ``cpu`` (reference cores) on type ``t``."""
    capacity = t.vcpu * t.cpu_speed
    if not t.burstable:
        return cpu / capacity
    size = t.name.split(".", 1)[1]
    share = (T2_BASELINE.get(size) if t.family == "t2" else None) or BASELINE.get(size, 0.2)
    vcpus = np.nan_to_num(cpu, nan=0.0) / t.cpu_speed  # vCPUs of this type kept busy
    earn = share * t.vcpu * 5.0  # credits (vCPU-minutes) per 5-minute sample
    ceiling = share * t.vcpu * 60 * 24
    balance = 0.0
    out = np.empty(cpu.size)
    for i, want in enumerate(np.minimum(vcpus, t.vcpu) * 5.0):
        have = balance + earn
        if have >= want:
            balance = min(have - want, ceiling)
            out[i] = vcpus[i] / t.vcpu
        else:
            balance = 0.0
            out[i] = vcpus[i] / max(share * t.vcpu, have / 5.0)
    return np.where(np.isfinite(cpu), out, np.nan)


def cheapest_holding(candidates: list[InstanceType], cpu: np.ndarray, mem: np.ndarray
                     ) -> InstanceType:
    """The cheapest candidate on which ``cpu``/``mem`` hold the SLO (the largest if none)."""
    mem_peak = float(np.nanmax(mem)) if np.isfinite(mem).any() else 0.0
    valid = cpu[np.isfinite(cpu)]
    p99 = float(np.quantile(valid, SLO_PERCENTILE)) if valid.size else 0.0
    for t in candidates:  # cheapest first
        if t.memory_gib < mem_peak:
            continue
        capacity = t.vcpu * t.cpu_speed
        if not t.burstable:
            if p99 <= SLO_UTILIZATION * capacity and np.mean(valid > capacity) <= SLO_ABOVE_FULL:
                return t
            continue
        if p99 > SLO_UTILIZATION * capacity:
            continue
        if judge(t, cpu, mem)[0]:
            return t
    return max(candidates, key=lambda t: (t.vcpu * t.cpu_speed, t.memory_gib))


# ---------------------------------------------------------------------------- report
def summarize(result: dict) -> dict:
    now = result["price_now"]
    foreseeable = ~result["fleet"].regime if "fleet" in result else ~result["regime"]
    oracle_saving = float(result["peers"]["oracle"]["saving"].sum())
    out = {}
    for peer, p in result["peers"].items():
        kept = np.where(p["within"], p["saving"], 0.0).sum()
        out[peer] = {
            "savings_pct": 100 * float(p["saving"].sum() / now.sum()),
            "slo_savings_pct": 100 * float(kept / now.sum()),
            "capture": float(kept / oracle_saving) if oracle_saving else float("nan"),
            "within_all": float(p["within"].mean()),
            "within_foreseeable": float(p["within"][foreseeable].mean()),
            "oom": int(p["oom"].sum()),
        }
    return out


def merge(results: list[dict]) -> dict:
    """Several seeds' results as one fleet."""
    peers = {}
    for peer in PEERS:
        parts = [r["peers"][peer] for r in results]
        peers[peer] = {k: np.concatenate([p[k] for p in parts]) for k in
                       ("saving", "within", "oom", "p99")}
    return {"price_now": np.concatenate([r["price_now"] for r in results]),
            "regime": np.concatenate([r["fleet"].regime for r in results]), "peers": peers}


def table(title: str, summary: dict) -> Table:
    t = Table(title=title)
    for column in ("peer", "savings %", "SLO savings %", "capture", "within SLO (all)",
                   "within SLO (foreseeable)", "OOM", "SLO savings vs AWS"):
        t.add_column(column, justify="left" if column == "peer" else "right")
    aws = summary["aws-default"]["slo_savings_pct"]
    for peer, s in summary.items():
        t.add_row(peer, f"{s['savings_pct']:.1f}", f"{s['slo_savings_pct']:.1f}",
                  f"{s['capture']:.2f}", f"{s['within_all']:.1%}",
                  f"{s['within_foreseeable']:.1%}", str(s["oom"]),
                  f"{s['slo_savings_pct'] - aws:+.1f} pt")
    return t


def shape_table(per_seed: dict) -> Table:
    """Within-SLO share and capture by shape (foreseeable instances of all seeds)."""
    t = Table(title="by shape, foreseeable instances of all seeds: within SLO / SLO savings "
                    "over the oracle's")
    t.add_column("shape")
    t.add_column("n", justify="right")
    for peer in PEERS[:-1]:
        t.add_column(peer, justify="right")
    shapes = sorted({s for r in per_seed.values() for s in r["fleet"].shape})
    for shape in shapes:
        cells, count = [], 0
        for peer in PEERS[:-1]:
            within, kept, possible = [], 0.0, 0.0
            for r in per_seed.values():
                rows = (r["fleet"].shape == shape) & ~r["fleet"].regime
                p = r["peers"][peer]
                within.append(p["within"][rows])
                kept += float(np.where(p["within"], p["saving"], 0)[rows].sum())
                possible += float(r["peers"]["oracle"]["saving"][rows].sum())
            w = np.concatenate(within)
            count = w.size
            cells.append(f"{w.mean():.0%} / {kept / possible:.2f}" if possible else
                         f"{w.mean():.0%} / -")
        t.add_row(shape, str(count), *cells)
    return t


def details(console: Console, fleet: Fleet, result: dict, peer: str) -> None:
    oracle = result["peers"]["oracle"]
    if True:
        p = result["peers"][peer]
        for r in np.flatnonzero(~p["within"] | (p["saving"] < oracle["saving"] - 1)):
            current = fleet.resources[r].current["instance_type"]
            console.print(
                f"{peer:>10} {fleet.resources[r].resource_id} {fleet.shape[r]:>9} "
                f"{'REGIME ' if fleet.regime[r] else ''}{current:>12} -> {p['types'][r]:<13}"
                f" p99 {p['p99'][r]:5.2f} {'OK ' if p['within'][r] else 'BAD'}"
                f"{' OOM' if p['oom'][r] else ''} saves {p['saving'][r]:7.1f} | oracle "
                f"{oracle['types'][r]} {oracle['saving'][r]:7.1f} p99 {oracle['p99'][r]:.2f}"
                f" {'; '.join(fleet.notes[r])}")


# ---------------------------------------------------------------------------- timing
def timing(n: int, runs: int, catalog) -> list[float]:
    fleet = make(n, 99, catalog, days=14, seen_days=14, regime_share=0.0)
    histories = fleet.histories()
    recommend_many(histories[:50], catalog)  # compile the kernels first
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        recommend_many(histories, catalog)
        out.append(time.perf_counter() - start)
    return out


def _load(values) -> str:
    return ", ".join(f"{v:.1f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
