"""Right-sizing evaluation: fit each policy on the lookback, replay the held-back days.

For every resource, each policy sees only the first part of the trace (the lookback)
and names an instance type: the first-ranked option of
``forestream.optimizer.recommend.recommend_many`` (the cheapest candidate type meeting
what the policy asks for — forestream may instead take a type priced within 3% of it for
a stable pick: the current type or family first; every policy chooses among the same
candidates). The rest of
the trace is then replayed on that type.

Replay, per 5-minute sample of the held-back days:

- CPU demand is in reference cores (``cpu_pct / 100 * vCPU * cpu_speed`` of the type
  it was measured on). A sample is **throttled** when the CPU demand exceeds the
  chosen type's capacity (``vCPU * cpu_speed``) or, on GPU resources, when the GPU
  demand (busy GPUs) exceeds its GPU count. **Unserved CPU** is the demand above
  capacity summed over samples, as a share of all CPU demand.
- An **OOM event** is a run of consecutive samples whose memory demand (GiB) exceeds the
  chosen type's memory; ``oom_resources`` counts resources with at least one.
- A resource is **within SLO** when at most 0.5 % of its held-back samples are
  throttled and it has no OOM event.
- Synthetic traces replay their *true* demand, which can exceed the current capacity
  (what an under-provisioned resource would have needed). Real traces replay what was
  measured, so their demand never exceeds the current type.

Per policy the table and JSON report: ``savings_pct`` (monthly price saved over all
resources, % of the current total; 730 h months), ``slo_savings_pct`` (the same, with
resources outside the SLO reverted to their current type: the saving that survives),
``throttle_rate`` (mean share of throttled samples per resource), ``unserved_cpu_pct``,
``share_resources_within_slo``, ``oom_resources``, ``oracle_capture`` (savings over the
oracle's), ``finding_macro_f1`` (synthetic traces: findings against the generator's
labels, over Idle / Overprovisioned / Optimized / Underprovisioned), and ``flip_rate``
(stability: the policy refitted on three lookbacks shifted by one day each; the share
of consecutive refits that change the chosen type).

Policies: ``current`` (no change), ``max-rule`` (max + 20 %), ``aws-default`` (P99.5 CPU
+ 20 %, memory max + 20 %), ``vpa`` (Kubernetes VPA recommender), ``krr`` (KRR simple:
P95 CPU, memory max + 15 %), ``forestream``, and ``oracle``: in hindsight, the cheapest
candidate that would have kept the held-back days within the SLO.

Traces:

- ``synthetic``: ``forestream.optimizer.synthetic.make_fleet`` (seeded; 14 days fitted,
  7 replayed; truth labels fixed by the generator before any policy runs).
- ``nab``: the CPU traces of NAB's realAWSCloudwatch set (``ec2_cpu_utilization_*``
  and ``rds_cpu_utilization_*``: 10 files of 14 days; the disk, network, request-count
  and ASG files are not CPU utilization of one machine and are left out). Their
  instance type is unknown: each is taken to run on an m5.xlarge, and without memory
  metrics every policy keeps the current memory (no memory downsizing, no OOM check).
  The first two thirds are fitted, the last third replayed.
- ``--traces DIR``: any directory ``forestream.optimizer.ingest.read_metrics`` reads
  (a resources.csv may name each resource's instance type; ``--default-type``
  otherwise); split like NAB.

Functions (``make_functions``: known CPU-bound share and duration at one vCPU) are
judged apart, with their true duration model: ``current``, ``max-rule`` (peak memory
used + 20 %) and ``forestream``; the VPA/KRR/AWS recipes do not size functions.

``seconds_10k`` is the median wall time of ``recommend_many`` (policy forestream) on
10,000 synthetic resources with 14 days of 5-minute samples (generation excluded).

Run: ``python benchmarks/rightsizing_eval.py --json OUT.json``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from forestream.optimizer.catalog import load_catalog
from forestream.optimizer.findings import macro_f1
from forestream.optimizer.ingest import read_metrics
from forestream.optimizer.recommend import HOURS_PER_MONTH, candidate_types, recommend_many
from forestream.optimizer.synthetic import make_fleet, make_functions
from forestream.optimizer.types import Resource, UtilizationHistory

ROOT = Path(__file__).resolve().parents[1]
NAB_DIR = ROOT.parent / "shared" / "datasets" / "nab" / "data" / "realAWSCloudwatch"
NAB_PATTERNS = ("ec2_cpu_utilization_*.csv", "rds_cpu_utilization_*.csv")
POLICIES = ("current", "max-rule", "aws-default", "vpa", "krr", "forestream", "oracle")
FITTED = ("max-rule", "aws-default", "vpa", "krr", "forestream")
SLO_THROTTLE = 0.005
FINDING_LABELS = ("Idle", "Overprovisioned", "Optimized", "Underprovisioned")
STEP = 300


@dataclass
class Dataset:
    """Traces to evaluate: lookback histories plus the demand to replay."""

    name: str
    train: list[UtilizationHistory]  # what policies see
    shifted: list[list[UtilizationHistory]]  # the lookback shifted by 0, 1, 2 days
    current: list[str]  # current instance type per resource
    cpu: np.ndarray  # (R, H) held-back CPU demand, reference cores (NaN: no sample)
    mem: np.ndarray  # (R, H) GiB, NaN where not measured
    gpu: np.ndarray  # (R, H) busy GPUs, NaN without GPUs
    truth: np.ndarray | None = None  # finding labels (synthetic)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("--synthetic", type=int, default=200, help="synthetic resources")
    parser.add_argument("--seed", type=int, default=1, help="synthetic fleet seed")
    parser.add_argument("--traces", type=Path, help="also evaluate this metrics directory")
    parser.add_argument("--default-type", default="m5.xlarge",
                        help="instance type of traces that do not name one")
    parser.add_argument("--no-nab", action="store_true")
    parser.add_argument("--timing-resources", type=int, default=10_000)
    parser.add_argument("--timing-runs", type=int, default=3)
    parser.add_argument("--graviton", action="store_true", help="allow arm64 options")
    parser.add_argument("--functions", type=int, default=40, help="synthetic functions")
    args = parser.parse_args(argv)
    console = Console(width=max(Console().width, 150))
    catalog = load_catalog()
    datasets = []
    if args.synthetic > 0:
        datasets.append(synthetic_dataset(args.synthetic, args.seed, catalog))
    if not args.no_nab and NAB_DIR.exists():
        files = sorted(f for pattern in NAB_PATTERNS for f in NAB_DIR.glob(pattern))
        histories = [h for f in files for h in read_metrics(f, metric="cpu_pct")]
        datasets.append(trace_dataset("nab", histories, catalog, args.default_type))
    if args.traces is not None:
        datasets.append(trace_dataset("traces", read_metrics(args.traces), catalog,
                                      args.default_type))
    options = {"allow_graviton": args.graviton}
    per_dataset = {}
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("evaluating", total=len(datasets) * (len(FITTED) + 1))
        for ds in datasets:
            per_dataset[ds.name] = evaluate(ds, catalog, options, progress, task)
    results = {"policies": pooled(per_dataset), "datasets": {
        name: {p: m["aggregate"] for p, m in r.items()} for name, r in per_dataset.items()}}
    for name in per_dataset:
        count = len(per_dataset[name]["current"]["saving"])
        console.print(table(f"{name} ({count} resources)", results["datasets"][name]))
    console.print(table("all traces", results["policies"]))
    if args.functions > 0:
        results["functions"] = function_eval(args.functions, args.seed)
        ft = Table(title=f"functions ({args.functions} synthetic, true duration model)")
        for column in ("policy", "savings %", "mean slowdown %", "> 10 % slower",
                       "memory errors"):
            ft.add_column(column, justify="right" if column != "policy" else "left")
        for policy, m in results["functions"].items():
            ft.add_row(policy, f"{m['savings_pct']:.1f}", f"{m['mean_slowdown_pct']:.1f}",
                       f"{m['slower_than_10pct']:.1%}",
                       str(m["memory_errors"]))
        console.print(ft)
    if args.timing_resources > 0:
        runs = time_recommendations(args.timing_resources, args.timing_runs, catalog, console)
        results["seconds_10k"] = statistics.median(runs)
        results["seconds_10k_runs"] = runs
        results["timing_resources"] = args.timing_resources
        console.print(f"recommend_many, forestream policy, {args.timing_resources} resources "
                      f"x 14 days: median {results['seconds_10k']:.2f} s over {len(runs)} "
                      f"runs ({', '.join(f'{r:.2f}' for r in runs)})")
    results["config"] = {"synthetic": args.synthetic, "seed": args.seed,
                         "graviton": args.graviton, "slo_throttle": SLO_THROTTLE}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=float) + "\n")
    return 0


# -------------------------------------------------------------------------- datasets
def synthetic_dataset(n: int, seed: int, catalog) -> Dataset:
    fleet = make_fleet(n, seed=seed, days=21, train_days=14, catalog=catalog)
    train = fleet.train_samples
    day = 288
    shifted = [fleet.histories(k * day, train - (2 - k) * day) for k in range(3)]
    return Dataset("synthetic", fleet.histories(0, train), shifted,
                   [r.current["instance_type"] for r in fleet.resources],
                   fleet.true_cpu[:, train:], fleet.true_mem[:, train:],
                   np.where(np.isnan(fleet.gpu_pct[:, :1]), np.nan, fleet.true_gpu[:, train:]),
                   fleet.finding)


def trace_dataset(name: str, histories, catalog, default_type: str) -> Dataset:
    train, shifted, current, cpu, mem, gpu = [], [[], [], []], [], [], [], []
    length = 0
    split_rows = []
    for h in histories:
        kind_ok = h.resource.kind in ("instance", "asg")
        cpu_name = "cpu_pct_max" if "cpu_pct_max" in h.metrics else "cpu_pct"
        if not kind_ok or cpu_name not in h.metrics or h.hours < 48:
            continue
        type_name = h.resource.current.get("instance_type") or default_type
        t = catalog[type_name]
        resource = Resource(h.resource.resource_id, "instance", {"instance_type": t.name},
                            dict(h.resource.tags))
        ts = h.timestamps
        cut = int(np.searchsorted(ts, ts[0] + (ts[-1] - ts[0]) * 2 / 3))
        metrics = h.metrics

        def part(a, b, ts=ts, metrics=metrics, resource=resource):
            return UtilizationHistory(resource, ts[a:b], {k: v[a:b] for k, v in metrics.items()})

        day = 86400 // STEP
        train.append(part(0, cut))
        for k in range(3):
            shifted[k].append(part(k * day, cut - (2 - k) * day))
        current.append(t.name)
        held = {k: v[cut:] for k, v in metrics.items()}
        capacity = t.vcpu * t.cpu_speed
        cpu.append(held[cpu_name] / 100.0 * capacity)
        mem_name = next((m for m in ("mem_pct_max", "mem_pct") if m in held), None)
        mem.append(held[mem_name] / 100.0 * t.memory_gib if mem_name
                   else np.full(len(ts) - cut, np.nan))
        gpu_name = next((m for m in ("gpu_pct_max", "gpu_pct") if m in held), None)
        gpu.append(held[gpu_name] / 100.0 * t.gpus if gpu_name and t.gpus
                   else np.full(len(ts) - cut, np.nan))
        length = max(length, len(ts) - cut)
        split_rows.append(h.resource.resource_id)

    def stack(rows):
        out = np.full((len(rows), length), np.nan)
        for r, row in enumerate(rows):
            out[r, : len(row)] = row
        return out

    return Dataset(name, train, shifted, current, stack(cpu), stack(mem), stack(gpu))


# ------------------------------------------------------------------------ evaluation
def evaluate(ds: Dataset, catalog, options: dict, progress, task) -> dict:
    types = [catalog[n] for n in ds.current]
    price_now = np.array([t.price_per_hour for t in types]) * HOURS_PER_MONTH
    results = {}
    chosen = {"current": list(ds.current)}
    findings = {"current": np.full(len(types), "Optimized", dtype=object)}
    flips = {"current": 0.0}
    for policy in FITTED:
        recs = recommend_many(ds.train, catalog, policy=policy, **options)
        chosen[policy] = [r.best.name if r.best else r.current.name if r.current else c
                          for r, c in zip(recs, ds.current, strict=True)]
        findings[policy] = np.array([r.finding for r in recs], dtype=object)
        refits = [[r.best.name if r.best else "" for r in
                   recommend_many(window, catalog, policy=policy, **options)]
                  for window in ds.shifted]
        changes = [np.mean([a != b for a, b in zip(x, y, strict=True)])
                   for x, y in zip(refits[:-1], refits[1:], strict=True)]
        flips[policy] = float(np.mean(changes))
        progress.advance(task)
    chosen["oracle"] = oracle(ds, catalog, options)
    findings["oracle"] = None
    flips["oracle"] = None
    progress.advance(task)
    oracle_price = np.array([catalog[n].price_per_hour for n in chosen["oracle"]]) * (
        HOURS_PER_MONTH)
    oracle_saving = float(np.sum(price_now - oracle_price))
    for policy in POLICIES:
        rows = replay(ds, [catalog[n] for n in chosen[policy]])
        price = np.array([catalog[n].price_per_hour for n in chosen[policy]]) * HOURS_PER_MONTH
        saving = price_now - price
        ok = (rows["throttle"] <= SLO_THROTTLE) & (rows["oom_events"] == 0)
        agg = {
            "savings_pct": 100 * float(saving.sum() / price_now.sum()),
            "slo_savings_pct": 100 * float(np.where(ok, saving, 0).sum() / price_now.sum()),
            "throttle_rate": float(np.mean(rows["throttle"])),
            "unserved_cpu_pct": 100 * float(np.nansum(rows["unserved"]) /
                                            max(np.nansum(rows["demand"]), 1e-12)),
            "share_resources_within_slo": float(np.mean(ok)),
            "oom_resources": int(np.sum(rows["oom_events"] > 0)),
            "oracle_capture": float(saving.sum() / oracle_saving) if oracle_saving else None,
            "finding_macro_f1": (macro_f1(ds.truth, findings[policy], FINDING_LABELS)
                                 if ds.truth is not None and findings[policy] is not None
                                 else None),
            "flip_rate": flips[policy],
        }
        results[policy] = {"aggregate": agg, "rows": rows, "saving": saving,
                           "price_now": price_now, "ok": ok}
    return results


def replay(ds: Dataset, chosen) -> dict:
    cap = np.array([t.vcpu * t.cpu_speed for t in chosen])
    mem = np.array([t.memory_gib for t in chosen])
    gpus = np.array([t.gpus for t in chosen], dtype=float)
    valid = np.isfinite(ds.cpu)
    over_cpu = np.nan_to_num(ds.cpu, nan=0) > cap[:, None] * (1 + 1e-9)
    over_gpu = np.nan_to_num(ds.gpu, nan=0) > gpus[:, None] * (1 + 1e-9)
    throttled = (over_cpu | over_gpu) & valid
    oom = np.nan_to_num(ds.mem, nan=0) > mem[:, None] * (1 + 1e-9)
    starts = oom & ~np.concatenate([np.zeros((len(chosen), 1), bool), oom[:, :-1]], axis=1)
    return {"throttle": throttled.sum(axis=1) / np.maximum(valid.sum(axis=1), 1),
            "unserved": np.nansum(np.maximum(ds.cpu - cap[:, None], 0), axis=1),
            "demand": np.nansum(ds.cpu, axis=1), "oom_events": starts.sum(axis=1)}


def oracle(ds: Dataset, catalog, options: dict) -> list[str]:
    """Per resource, the cheapest candidate that keeps the held-back days within SLO."""
    out = []
    for r, name in enumerate(ds.current):
        cands = candidate_types(name, catalog, allow_graviton=options.get("allow_graviton",
                                                                            False))
        cpu = np.nan_to_num(ds.cpu[r], nan=0)
        n = max(int(np.isfinite(ds.cpu[r]).sum()), 1)
        mem_peak = np.nanmax(ds.mem[r]) if np.isfinite(ds.mem[r]).any() else None
        gpu = np.nan_to_num(ds.gpu[r], nan=0)
        best, fallback = None, None
        for t in cands:  # cheapest first
            throttled = ((cpu > t.vcpu * t.cpu_speed * (1 + 1e-9))
                         | (gpu > t.gpus * (1 + 1e-9))).sum() / n
            fits_mem = mem_peak is None or mem_peak <= t.memory_gib * (1 + 1e-9)
            if mem_peak is None and t.memory_gib < catalog[name].memory_gib:
                fits_mem = False  # memory not measured: kept, as the policies keep it
            if throttled <= SLO_THROTTLE and fits_mem:
                best = t.name
                break
            if fallback is None or throttled < fallback[0]:
                fallback = (throttled, t.name)
        out.append(best or (fallback[1] if fallback else name))
    return out


def pooled(per_dataset: dict) -> dict:
    """Aggregates over the resources of every dataset together."""
    out = {}
    for policy in POLICIES:
        parts = [r[policy] for r in per_dataset.values()]
        saving = np.concatenate([p["saving"] for p in parts])
        now = np.concatenate([p["price_now"] for p in parts])
        ok = np.concatenate([p["ok"] for p in parts])
        throttle = np.concatenate([p["rows"]["throttle"] for p in parts])
        unserved = sum(float(np.nansum(p["rows"]["unserved"])) for p in parts)
        demand = sum(float(np.nansum(p["rows"]["demand"])) for p in parts)
        oracle_saving = sum(float(np.sum(r["oracle"]["saving"])) for r in per_dataset.values())
        f1 = [p["aggregate"]["finding_macro_f1"] for p in parts
              if p["aggregate"]["finding_macro_f1"] is not None]
        flips = [(p["aggregate"]["flip_rate"], len(p["saving"])) for p in parts
                 if p["aggregate"]["flip_rate"] is not None]
        out[policy] = {
            "savings_pct": 100 * float(saving.sum() / now.sum()),
            "slo_savings_pct": 100 * float(np.where(ok, saving, 0).sum() / now.sum()),
            "throttle_rate": float(throttle.mean()),
            "unserved_cpu_pct": 100 * unserved / max(demand, 1e-12),
            "share_resources_within_slo": float(ok.mean()),
            "oom_resources": int(sum(p["aggregate"]["oom_resources"] for p in parts)),
            "oracle_capture": float(saving.sum() / oracle_saving) if oracle_saving else None,
            "finding_macro_f1": f1[0] if len(f1) == 1 else (float(np.mean(f1)) if f1 else None),
            "flip_rate": (float(sum(f * n for f, n in flips) / sum(n for _, n in flips))
                          if flips else None),
        }
    return out


# ------------------------------------------------------------------------ functions
def function_eval(n: int, seed: int) -> dict:
    """Functions: each policy's memory size, judged with the generator's true duration
    model over the held-back days: cost saved, share of functions more than 10 % slower
    on average, share whose peak memory would not fit."""
    fns = make_functions(n, seed=seed)
    held = slice(fns.train_samples, None)
    recs = recommend_many(fns.histories(), None)
    current = np.array([r.current["memory_mb"] for r in fns.resources], dtype=float)
    used = fns.mem_pct[:, : fns.train_samples] / 100 * current[:, None]
    sizes = {"current": current,
             "max-rule": np.ceil(np.nanmax(used, axis=1) * 1.2 / 64) * 64,
             "forestream": np.array([r.best.configuration["memory_mb"] for r in recs])}
    out = {}
    calls = fns.invocations[:, held].sum(axis=1)
    for policy, memory in sizes.items():
        memory = np.maximum(memory, 128)
        now = [fns.true_duration_ms(r, current[r]) for r in range(n)]
        new = [fns.true_duration_ms(r, memory[r]) for r in range(n)]
        cost_now = calls * np.array(now) * current
        cost_new = calls * np.array(new) * memory
        out[policy] = {
            "savings_pct": 100 * float(1 - cost_new.sum() / cost_now.sum()),
            "slower_than_10pct": float(np.mean(np.array(new) > 1.1 * np.array(now))),
            "mean_slowdown_pct": 100 * float(np.mean(np.array(new) / np.array(now) - 1)),
            "memory_errors": int(np.sum(fns.peak_mb > memory)),
        }
    return out


# --------------------------------------------------------------------------- timing
def time_recommendations(n: int, runs: int, catalog, console) -> list[float]:
    console.print(f"generating {n} synthetic resources x 14 days for the timing run ...")
    fleet = make_fleet(n, seed=12345, days=15, train_days=14, catalog=catalog)
    histories = fleet.histories()
    recommend_many(histories[:50], catalog)  # compile the numba kernels first
    times = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("timing recommend_many", total=runs)
        for _ in range(runs):
            start = time.perf_counter()
            recs = recommend_many(histories, catalog)
            times.append(time.perf_counter() - start)
            progress.advance(task)
    assert len(recs) == n and all(r.finding for r in recs)
    return times


# ---------------------------------------------------------------------------- table
COLUMNS = (("savings_pct", "savings %", "{:.1f}"), ("slo_savings_pct", "SLO savings %", "{:.1f}"),
           ("throttle_rate", "throttled", "{:.2%}"), ("unserved_cpu_pct", "unserved CPU %",
                                                      "{:.3f}"),
           ("share_resources_within_slo", "within SLO", "{:.1%}"),
           ("oom_resources", "OOM res.", "{}"), ("oracle_capture", "oracle capture", "{:.2f}"),
           ("finding_macro_f1", "finding F1", "{:.3f}"), ("flip_rate", "flip rate", "{:.3f}"))


def table(title: str, results: dict) -> Table:
    t = Table(title=title)
    t.add_column("policy")
    for _, label, _ in COLUMNS:
        t.add_column(label, justify="right")
    for policy, agg in results.items():
        t.add_row(policy, *("-" if agg[key] is None else fmt.format(agg[key])
                            for key, _, fmt in COLUMNS))
    return t


if __name__ == "__main__":
    sys.exit(main())
