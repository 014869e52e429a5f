"""Seeded synthetic fleets with known truth, for tests and the right-sizing benchmark.

Each resource is drawn in three steps, and the truth is fixed before any recommender
sees the data:

1. an *archetype* (idle, steady, diurnal, weekly, bursty, leaking, regime shift, GPU)
   gives the shape of its CPU, memory and GPU demand over the whole horizon (the
   lookback the recommenders see plus the held-back days they are judged on), with
   5-minute noise and rare one-off incidents (short CPU surges) at the same rate in
   both parts;
2. a *finding* (Overprovisioned, Optimized, Underprovisioned; Idle for idle ones) and,
   for each specification (CPU, memory, GPU), a *band* the demand is scaled into:
   over-provisioned when the need is at most 33 % of the current capacity, optimized
   between 55 % and 75 %, under-provisioned above capacity (CPU at least 115 %, memory
   at least 105 %). The need is the P99.5 of the true CPU (or GPU) demand and the
   maximum of the true memory demand over the *held-back* days, i.e. the period a
   recommendation is for. The gaps between bands keep the label unambiguous for any
   reasonable headroom (0-30 %);
3. observation: utilization percentages of the current size, capped at 100 % (a
   saturated resource cannot show its unserved demand), with a few missing samples.

The finding label combines the specifications as AWS Compute Optimizer defines it:
Underprovisioned if any is under, else Overprovisioned if any can be sized down, else
Optimized. The workload-class label comes from the archetype (weekly counts as
diurnal with a 168-hour period, an unrestarted memory leak as trending).

>>> from forestream.optimizer.synthetic import make_fleet
>>> fleet = make_fleet(20, seed=3, days=3, train_days=2)
>>> fleet.cpu_pct.shape, fleet.train_samples
((20, 864), 576)
>>> sorted(set(fleet.finding)) <= ["Idle", "Optimized", "Overprovisioned", "Underprovisioned"]
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .types import Resource, UtilizationHistory

ARCHETYPES = ("idle", "steady", "diurnal", "weekly", "bursty", "leaking", "regime_shift", "gpu")
#: Share of each archetype in a fleet (sums to 1).
DEFAULT_MIX = {"idle": 0.10, "steady": 0.16, "diurnal": 0.20, "weekly": 0.10,
               "bursty": 0.14, "leaking": 0.10, "regime_shift": 0.10, "gpu": 0.10}
#: Shape of the current instance types (vCPU, memory GiB, GPUs, GPU memory GiB); prices
#: and CPU speeds come from the catalog the benchmark uses.
CPU_TYPES = {"m5.large": (2, 8.0), "m5.xlarge": (4, 16.0), "m5.2xlarge": (8, 32.0),
             "m5.4xlarge": (16, 64.0), "c5.xlarge": (4, 8.0), "c5.2xlarge": (8, 16.0),
             "c5.4xlarge": (16, 32.0), "r5.large": (2, 16.0), "r5.xlarge": (4, 32.0),
             "r5.2xlarge": (8, 64.0), "m6i.xlarge": (4, 16.0), "m6i.2xlarge": (8, 32.0)}
GPU_TYPES = {"g4dn.xlarge": (4, 16.0, 1, 16.0), "g4dn.2xlarge": (8, 32.0, 1, 16.0),
             "g4dn.4xlarge": (16, 64.0, 1, 16.0), "g4dn.12xlarge": (48, 192.0, 4, 64.0)}
FINDING_WEIGHTS = {"Overprovisioned": 0.5, "Optimized": 0.3, "Underprovisioned": 0.2}
BANDS = {"over": (0.08, 0.33), "optimized": (0.55, 0.75), "under_cpu": (1.15, 1.8),
         "under_mem": (1.05, 1.3)}
STEP_SECONDS = 300
_PER_HOUR = 3600 // STEP_SECONDS
_PER_DAY = 24 * _PER_HOUR


@dataclass
class SyntheticFleet:
    """Demand and observations of ``R`` resources over ``T`` 5-minute samples.

    ``true_*`` arrays are the demand (reference cores, GiB, GPUs) a replay serves;
    ``cpu_pct``/``mem_pct``/``gpu_pct``/``gpu_mem_pct`` are what a monitoring system
    records on the current size (NaN where a sample is missing; GPU metrics NaN for
    resources without GPUs). The first ``train_samples`` samples are the lookback.
    """

    timestamps: np.ndarray
    train_samples: int
    resources: list[Resource]
    archetype: np.ndarray
    finding: np.ndarray
    reasons: list[tuple[str, ...]]
    workload_class: np.ndarray
    period_hours: np.ndarray
    cpu_pct: np.ndarray
    mem_pct: np.ndarray
    gpu_pct: np.ndarray
    gpu_mem_pct: np.ndarray
    true_cpu: np.ndarray
    true_mem: np.ndarray
    true_gpu: np.ndarray

    def __len__(self) -> int:
        return len(self.resources)

    def histories(self, start: int = 0, stop: int | None = None) -> list[UtilizationHistory]:
        """Per-resource histories of samples ``start:stop`` (default: the lookback).

        Metric arrays are views into the fleet's matrices, so this is cheap even for
        10,000 resources.
        """
        stop = self.train_samples if stop is None else stop
        ts = self.timestamps[start:stop]
        out = []
        for r, resource in enumerate(self.resources):
            metrics = {"cpu_pct": self.cpu_pct[r, start:stop],
                       "mem_pct": self.mem_pct[r, start:stop]}
            if not np.isnan(self.gpu_pct[r, 0]):
                metrics["gpu_pct"] = self.gpu_pct[r, start:stop]
                metrics["gpu_mem_pct"] = self.gpu_mem_pct[r, start:stop]
            out.append(UtilizationHistory(resource, ts, metrics))
        return out


def make_fleet(n: int = 200, *, seed: int = 0, days: int = 21, train_days: int = 14,
               catalog=None, mix: dict[str, float] | None = None,
               start: int = 1_700_006_400) -> SyntheticFleet:
    """A fleet of ``n`` resources over ``days`` days, the first ``train_days`` observed.

    ``catalog`` supplies the current types' relative CPU speed (1.0 without one), so
    that demand is in the same reference cores the recommenders use. ``start`` is the
    first timestamp (a Monday 00:00 UTC by default).
    """
    if not 1 <= train_days < days:
        raise ValueError(f"train_days must be in 1..days-1 ({days - 1}), got {train_days!r}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n!r}")
    mix = dict(DEFAULT_MIX if mix is None else mix)
    unknown = sorted(set(mix) - set(ARCHETYPES))
    if unknown:
        raise ValueError(f"unknown archetypes {unknown}; known: {ARCHETYPES}")
    rng = np.random.default_rng(seed)
    T = days * _PER_DAY
    train = train_days * _PER_DAY
    names = list(mix)
    weights = np.array([mix[k] for k in names], dtype=float)
    kinds = rng.choice(names, size=n, p=weights / weights.sum())
    hours = np.arange(T) / _PER_HOUR
    speeds = _speeds(catalog)

    arrays = {k: np.full((n, T), np.nan) for k in
              ("cpu_pct", "mem_pct", "gpu_pct", "gpu_mem_pct", "true_cpu", "true_mem",
               "true_gpu")}
    resources, findings, reasons, classes, periods = [], [], [], [], []
    for r in range(n):
        kind = str(kinds[r])
        one = _one_resource(rng, kind, hours, train, speeds)
        for key, value in one["arrays"].items():
            arrays[key][r] = value
        resources.append(Resource(f"syn-{seed}-{r:05d}", "instance",
                                  {"instance_type": one["type"]},
                                  tags={"archetype": kind}))
        findings.append(one["finding"])
        reasons.append(one["reasons"])
        classes.append(one["class"])
        periods.append(one["period"])
    timestamps = start + np.arange(T, dtype=np.int64) * STEP_SECONDS
    return SyntheticFleet(timestamps, train, resources, kinds.astype(object),
                          np.array(findings, dtype=object), reasons,
                          np.array(classes, dtype=object), np.array(periods), **arrays)


# --------------------------------------------------------------------------- shapes
def _one_resource(rng, kind: str, hours: np.ndarray, train: int, speeds: dict) -> dict:
    T = len(hours)
    gpu = kind == "gpu"
    if gpu:
        type_name = str(rng.choice(list(GPU_TYPES)))
        vcpu, mem_cap, gpus, gpu_mem_cap = GPU_TYPES[type_name]
    else:
        type_name = str(rng.choice(list(CPU_TYPES)))
        (vcpu, mem_cap), gpus = CPU_TYPES[type_name], 0
    cpu_cap = vcpu * speeds.get(type_name, 1.0)

    workload_class, period = kind, 0
    base_kind = kind
    if kind in ("leaking", "regime_shift", "gpu"):
        base_kind = str(rng.choice(["steady", "diurnal"]))
        workload_class = base_kind
    cpu = _base_shape(rng, base_kind, hours)
    if base_kind in ("diurnal", "weekly"):
        workload_class, period = "diurnal", 24 if base_kind == "diurnal" else 168
    mem = _memory_shape(rng, cpu, hours)
    if kind == "leaking":
        mem, trending = _leak(rng, mem, hours)
        if trending:
            workload_class, period = "trending", 0
    if kind == "regime_shift":
        cpu, mem = _regime_shift(rng, cpu, mem, hours, train)
    if kind != "idle":
        cpu = cpu + _incidents(rng, cpu, hours)
    cpu = cpu * _noise(rng, T, rng.uniform(0.03, 0.1))

    # Finding first, then the bands each specification's demand is scaled into.
    if kind == "idle":
        finding = "Idle"
        cpu_band = rng.uniform(0.005, 0.03)
        mem_band = rng.uniform(*BANDS[str(rng.choice(["over", "optimized"]))])
        specs = {"CPU": "over", "Memory": "over" if mem_band <= 0.33 else "optimized"}
    else:
        finding = str(rng.choice(list(FINDING_WEIGHTS), p=list(FINDING_WEIGHTS.values())))
        if gpus > 1 and finding == "Underprovisioned":
            finding = "Optimized"  # no larger multi-GPU type in the family could fix it
        specs = _spec_statuses(rng, finding, gpu and gpus > 1)
        cpu_band = _band_value(rng, specs["CPU"], "cpu")
        mem_band = _band_value(rng, specs["Memory"], "mem")
    holdout = slice(train, T)
    true_cpu = cpu * (cpu_band * cpu_cap / max(np.quantile(cpu[holdout], 0.995), 1e-9))
    true_mem = mem * (mem_band * mem_cap / max(mem[holdout].max(), 1e-9))
    out = {"true_cpu": true_cpu, "true_mem": true_mem,
           "cpu_pct": np.minimum(true_cpu / cpu_cap * 100.0, 100.0),
           "mem_pct": np.minimum(true_mem / mem_cap * 100.0, 100.0)}
    if gpu:
        gpu_shape = _base_shape(rng, str(rng.choice(["steady", "diurnal"])), hours)
        gpu_shape = gpu_shape * _noise(rng, T, 0.05)
        gpu_band = _band_value(rng, specs["GPU"], "cpu")
        true_gpu = gpu_shape * (gpu_band * gpus / max(np.quantile(gpu_shape[holdout], 0.995),
                                                      1e-9))
        out["true_gpu"] = true_gpu
        out["gpu_pct"] = np.minimum(true_gpu / gpus * 100.0, 100.0)
        gpu_mem = rng.uniform(0.3, 0.7) * _noise(rng, T, 0.01)
        out["gpu_mem_pct"] = np.minimum(gpu_mem * 100.0, 100.0)
    else:
        out["true_gpu"] = np.zeros(T)
    if rng.random() < 0.2:  # a few missing samples in one resource out of five
        gaps = rng.random(T) < 0.01
        for key in ("cpu_pct", "mem_pct", "gpu_pct", "gpu_mem_pct"):
            if key in out:
                out[key] = np.where(gaps, np.nan, out[key])
    reasons = tuple(f"{spec}{_CODE[status]}" for spec, status in specs.items()
                    if status != "optimized")
    return {"arrays": out, "type": type_name, "finding": finding, "reasons": reasons,
            "class": "idle" if kind == "idle" else workload_class, "period": period}


_CODE = {"over": "Overprovisioned", "under": "Underprovisioned"}


def _spec_statuses(rng, finding: str, gpu_can_shrink: bool) -> dict[str, str]:
    specs = ["CPU", "Memory"] + (["GPU"] if gpu_can_shrink else [])
    if finding == "Optimized":
        status = {s: "optimized" for s in specs}
    elif finding == "Overprovisioned":
        status = {s: str(rng.choice(["over", "optimized"])) for s in specs}
        if "over" not in status.values():
            status[str(rng.choice(specs))] = "over"
    else:
        status = {s: str(rng.choice(["over", "optimized", "under"], p=[0.3, 0.4, 0.3]))
                  for s in specs}
        if "under" not in status.values():
            status[str(rng.choice(specs))] = "under"
    status.setdefault("GPU", "optimized")
    return status


def _band_value(rng, status: str, spec: str) -> float:
    if status == "under":
        return rng.uniform(*BANDS["under_cpu" if spec == "cpu" else "under_mem"])
    return rng.uniform(*BANDS[status])


def _base_shape(rng, kind: str, hours: np.ndarray) -> np.ndarray:
    T = len(hours)
    if kind == "idle":
        return np.full(T, 1.0)
    if kind == "steady":
        return 1.0 + 0.1 * _ar1(rng, T, 0.995, rng.uniform(0.2, 0.6))
    if kind == "bursty":
        base = np.full(T, rng.uniform(0.1, 0.35))
        rate_per_hour = rng.uniform(1.0, 6.0) / 24.0
        return base + _pulses(rng, hours, rate_per_hour, median_min=15.0, sigma=0.8,
                              lo_min=5.0, hi_min=120.0, height=(0.5, 1.0))
    # diurnal / weekly: business-hours bump, sharper or flatter, varying day to day
    floor = rng.uniform(0.15, 0.6)
    phase = rng.uniform(0, 24)
    sharpness = rng.choice([1, 2, 3])
    bump = (0.5 * (1 - np.cos(2 * np.pi * (hours - phase) / 24.0))) ** sharpness
    day = (hours // 24).astype(int)
    amplitude = 1.0 + 0.05 * rng.standard_normal(day.max() + 1)
    shape = floor + (1 - floor) * bump * amplitude[day]
    if kind == "weekly":
        weekend_start = rng.integers(0, 7)
        weekend = ((day - weekend_start) % 7) < 2
        shape = np.where(weekend, shape * rng.uniform(0.3, 0.6), shape)
        if rng.random() < 0.5:  # a weekly batch job at a fixed hour of the week
            at = rng.uniform(0, 168)
            length = rng.uniform(1.0, 3.0)
            in_job = ((hours - at) % 168.0) < length
            shape = np.where(in_job, shape.max() * rng.uniform(1.3, 2.0), shape)
    return shape


def _memory_shape(rng, cpu: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Memory follows the CPU shape a little (caches, connections), mostly flat."""
    coupling = rng.uniform(0.0, 0.3)
    scaled = cpu / max(cpu.max(), 1e-9)
    return (1 - coupling) + coupling * scaled + 0.01 * _ar1(rng, len(hours), 0.99, 1.0)


def _leak(rng, mem: np.ndarray, hours: np.ndarray) -> tuple[np.ndarray, bool]:
    growth_per_day = rng.uniform(0.02, 0.06)
    if rng.random() < 0.6:  # never restarted: grows through the held-back days too
        return mem * (1 + growth_per_day * hours / 24.0), True
    restart_days = rng.uniform(2.0, 6.0)
    since = (hours / 24.0) % restart_days
    return mem * (1 + growth_per_day * since), False


def _regime_shift(rng, cpu, mem, hours, train):
    at = rng.uniform(0.2, 0.8) * train / _PER_HOUR  # hours into the lookback
    factor = rng.uniform(0.3, 0.6) if rng.random() < 0.5 else rng.uniform(1.6, 2.5)
    after = hours >= at
    cpu = np.where(after, cpu * factor, cpu)
    if rng.random() < 0.5:
        mem = np.where(after, mem * np.sqrt(factor), mem)
    return cpu, mem


def _incidents(rng, cpu: np.ndarray, hours: np.ndarray) -> np.ndarray:
    """Rare one-off surges (deploys, retries, incidents): 0.5 a week, 5 min to 4 h."""
    level = np.quantile(cpu, 0.95)
    return level * _pulses(rng, hours, 0.5 / 168.0, median_min=20.0, sigma=0.7,
                           lo_min=5.0, hi_min=240.0, height=(0.5, 1.5))


def _pulses(rng, hours, rate_per_hour, *, median_min, sigma, lo_min, hi_min, height):
    out = np.zeros(len(hours))
    span = hours[-1] + hours[1] - hours[0]
    count = rng.poisson(rate_per_hour * span)
    for _ in range(count):
        at = rng.uniform(0, span)
        minutes = float(np.clip(median_min * np.exp(sigma * rng.standard_normal()),
                                lo_min, hi_min))
        inside = (hours >= at) & (hours < at + minutes / 60.0)
        out[inside] = np.maximum(out[inside], rng.uniform(*height))
    return out


def _noise(rng, T: int, sigma: float) -> np.ndarray:
    return np.exp(sigma * _ar1(rng, T, 0.7, 1.0))


def _ar1(rng, T: int, phi: float, sigma: float) -> np.ndarray:
    """Zero-mean AR(1) noise with stationary standard deviation ``sigma``."""
    shocks = rng.standard_normal(T) * sigma * np.sqrt(1 - phi * phi)
    return _ar1_filter(shocks, phi, rng.standard_normal() * sigma)


@njit(cache=True)
def _ar1_filter(shocks, phi, start):
    out = np.empty(len(shocks))
    acc = start
    for t in range(len(shocks)):
        acc = phi * acc + shocks[t]
        out[t] = acc
    return out


def _speeds(catalog) -> dict[str, float]:
    if catalog is None:
        return {}
    speeds = {}
    for name in (*CPU_TYPES, *GPU_TYPES):
        try:
            speeds[name] = float(catalog[name].cpu_speed)
        except (KeyError, LookupError):
            continue
    return speeds


# ------------------------------------------------------------------------ functions
LAMBDA_SIZES_MB = (256, 512, 1024, 1769, 2048, 3008)


@dataclass
class SyntheticFunctions:
    """Serverless functions with a known duration model (see :func:`make_functions`)."""

    timestamps: np.ndarray
    train_samples: int
    resources: list[Resource]
    cpu_bound: np.ndarray  # share of the duration that scales with the CPU share
    full_speed_ms: np.ndarray  # duration at one full vCPU (1,769 MB)
    peak_mb: np.ndarray  # true peak memory used
    invocations: np.ndarray  # (R, T) per second
    duration_ms: np.ndarray  # (R, T) observed mean duration at the current size
    cpu_pct: np.ndarray
    mem_pct: np.ndarray

    def histories(self, start: int = 0, stop: int | None = None) -> list[UtilizationHistory]:
        stop = self.train_samples if stop is None else stop
        ts = self.timestamps[start:stop]
        return [UtilizationHistory(res, ts, {
            "invocations": self.invocations[r, start:stop],
            "duration_ms": self.duration_ms[r, start:stop],
            "cpu_pct": self.cpu_pct[r, start:stop], "mem_pct": self.mem_pct[r, start:stop]})
            for r, res in enumerate(self.resources)]

    def true_duration_ms(self, r: int, memory_mb: float) -> float:
        """Mean duration of function ``r`` at another memory size (single-threaded)."""
        speed = min(memory_mb, 1769.0) / 1769.0
        f = self.cpu_bound[r]
        return float(self.full_speed_ms[r] * ((1 - f) + f / speed))


def make_functions(n: int = 40, *, seed: int = 0, days: int = 21, train_days: int = 14,
                   start: int = 1_700_006_400) -> SyntheticFunctions:
    """``n`` functions: a CPU-bound share drawn uniformly in 5-95 %, a duration at one
    full vCPU (log-normal, median 200 ms), a peak memory of 10-90 % of the current size,
    diurnal invocations; observed as Lambda reports them (mean duration per 5 minutes
    with 5 % noise, CPU share used, memory used)."""
    rng = np.random.default_rng(seed)
    T = days * _PER_DAY
    hours = np.arange(T) / _PER_HOUR
    resources, bound, full, peak = [], [], [], []
    calls = np.empty((n, T))
    dur = np.empty((n, T))
    cpu = np.empty((n, T))
    mem = np.empty((n, T))
    for r in range(n):
        m0 = float(rng.choice(LAMBDA_SIZES_MB))
        f = rng.uniform(0.05, 0.95)
        d_full = 200.0 * np.exp(0.6 * rng.standard_normal())
        used = rng.uniform(0.1, 0.9) * m0
        speed = min(m0, 1769.0) / 1769.0
        d0 = d_full * ((1 - f) + f / speed)
        level = rng.uniform(0.5, 20.0)
        calls[r] = level * (0.3 + 0.7 * np.sin(np.pi * (hours % 24) / 24) ** 2)
        dur[r] = d0 * _noise(rng, T, 0.05)
        cpu[r] = np.clip(100 * f * _noise(rng, T, 0.05), 0, 100)
        mem[r] = np.minimum(100 * used / m0 * (0.9 + 0.1 * rng.random(T)), 100)
        resources.append(Resource(f"fn-{seed}-{r:04d}", "function", {"memory_mb": int(m0)}))
        bound.append(f)
        full.append(d_full)
        peak.append(used)
    timestamps = start + np.arange(T, dtype=np.int64) * STEP_SECONDS
    return SyntheticFunctions(timestamps, train_days * _PER_DAY, resources, np.array(bound),
                              np.array(full), np.array(peak), calls, dur, cpu, mem)
