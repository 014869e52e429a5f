"""Sizing policies: from demand samples to the capacity each resource needs.

Every policy reads the same ``(R, T)`` demand matrices (reference cores, GiB, GPUs; one
row per resource, 5-minute maxima, NaN where a sample is missing) and returns, per
resource, the CPU, memory and GPU capacity it asks for. Choosing an instance type is
done elsewhere, among the same candidates for all of them (the cheapest that fits;
``forestream`` alone ranks types within 3 % of that price by a stable key, see
:mod:`~forestream.optimizer.recommend`).

``aws-default``
    AWS Compute Optimizer's documented method: CPU at the chosen percentile (P99.5
    by default) plus headroom (20 %), memory at its maximum plus headroom (20 %), GPU
    like CPU. Idle when the CPU maximum stays below 5 %.
``max-rule``
    The maximum of each metric plus 20 %.
``vpa``
    The Kubernetes Vertical Pod Autoscaler recommender's target: decaying histograms
    (24-hour half-life, exponential buckets growing 5 % from 0.01 cores / 10 MB), CPU
    at P90 of all samples, memory at P90 of the daily peaks, both times 1.15, with
    VPA's minimums (25 millicores, 250 MiB). VPA knows no GPUs.
``krr``
    KRR's ``simple`` strategy: CPU at P95 of the samples, memory at the maximum plus
    15 %. No GPUs.
``forestream``
    Capacity for a stated service level (by default the P99 of 5-minute CPU at most
    90 % of capacity) from the spread of the lookback's days, growth, saturation and
    memory restart cycles: see :mod:`~forestream.optimizer.slo_policy`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .requirements import Demand as Demand
from .requirements import Requirements as Requirements
from .slo_policy import forestream_requirements
from .types import CPU_HEADROOMS as CPU_HEADROOMS  # noqa: E402 - the choices live in types
from .types import CPU_PERCENTILES as CPU_PERCENTILES  # noqa: E402
from .types import MEM_HEADROOMS as MEM_HEADROOMS  # noqa: E402
from .types import POLICIES as POLICIES  # noqa: E402
from .workload import (
    nan_quantiles_masked,
    nanmax_from,
)

# VPA recommender constants (pkg/recommender: aggregations_config.go, recommender.go,
# estimator.go): histogram options, half-life, target percentiles, margin, minimums.
VPA_CPU_FIRST_BUCKET = 0.01  # cores
VPA_MEM_FIRST_BUCKET = 1e7  # bytes
VPA_BUCKET_RATIO = 1.05
VPA_CPU_MAX = 1000.0
VPA_MEM_MAX = 1e12
VPA_HALF_LIFE_S = 24 * 3600.0
VPA_MEMORY_INTERVAL_S = 24 * 3600.0
VPA_TARGET_PERCENTILE = 0.9
VPA_SAFETY_MARGIN = 0.15
VPA_MIN_CPU = 0.025
VPA_MIN_MEM_GIB = 250 / 1024
KRR_CPU_PERCENTILE = 0.95
KRR_MEMORY_BUFFER = 0.15



def requirements(policy: str, demand: Demand, *, cpu_percentile: float = 99.5,
                 cpu_headroom: float | None = None, mem_headroom: float | None = None,
                 horizon_days: float = 14.0, seed: int = 0, slo_percentile: float = 99.0,
                 slo_utilization: float = 90.0) -> Requirements:
    """The capacity ``policy`` asks for, per resource (see the module docstring).

    ``cpu_headroom``/``mem_headroom`` None means the policy's own default (20 % for
    ``aws-default``; adaptive for ``forestream``); ``vpa``, ``krr`` and ``max-rule``
    are fixed recipes and ignore the three sizing preferences.
    """
    if policy == "aws-default":
        return _aws(demand, cpu_percentile, 0.2 if cpu_headroom is None else cpu_headroom,
                    0.2 if mem_headroom is None else mem_headroom)
    if policy == "max-rule":
        return _max_rule(demand)
    if policy == "vpa":
        return _vpa(demand)
    if policy == "krr":
        return _krr(demand)
    if policy == "forestream":
        return forestream_requirements(demand, slo_percentile=slo_percentile,
                                       slo_utilization=slo_utilization,
                                       cpu_headroom=cpu_headroom, mem_headroom=mem_headroom,
                                       horizon_days=horizon_days, seed=seed)
    raise ValueError(f"policy must be one of {POLICIES}, got {policy!r}")


# -------------------------------------------------------------------------- policies
def _aws(d: Demand, percentile: float, cpu_headroom: float, mem_headroom: float):
    R = d.cpu.shape[0]
    q = _quantile(d.cpu, percentile / 100.0)
    mem = _nanmax(d.mem, R)
    gpu = _quantile(d.gpu, percentile / 100.0, R)
    gpu_mem = _nanmax(d.gpu_mem, R)
    with np.errstate(invalid="ignore"):
        idle = _nanmax(d.cpu_pct) < 5.0
    return Requirements(q * (1 + cpu_headroom), mem * (1 + mem_headroom),
                        gpu * (1 + cpu_headroom), gpu_mem * (1 + mem_headroom), idle, q, mem,
                        notes=[[] for _ in range(len(q))])


def _max_rule(d: Demand):
    R = d.cpu.shape[0]
    cpu, mem, gpu, gpu_mem = (_nanmax(x, R) for x in (d.cpu, d.mem, d.gpu, d.gpu_mem))
    return Requirements(cpu * 1.2, mem * 1.2, gpu * 1.2, gpu_mem * 1.2, np.zeros(R, bool),
                        cpu, mem, notes=[[] for _ in range(R)])


def _krr(d: Demand):
    R = d.cpu.shape[0]
    cpu = _quantile(d.cpu, KRR_CPU_PERCENTILE)
    mem = _nanmax(d.mem, R)
    nan = np.full(R, np.nan)
    return Requirements(cpu, mem * (1 + KRR_MEMORY_BUFFER), nan, nan.copy(),
                        np.zeros(R, bool), cpu, mem, notes=[[] for _ in range(R)])


def _vpa(d: Demand):
    R, T = d.cpu.shape
    elapsed = np.arange(T) * float(d.step_seconds)
    cpu_weights = np.exp2(elapsed / VPA_HALF_LIFE_S)
    cpu = vpa_percentile(d.cpu, np.broadcast_to(cpu_weights, d.cpu.shape),
                         VPA_CPU_FIRST_BUCKET, VPA_CPU_MAX, VPA_TARGET_PERCENTILE)
    # Memory: one sample per 24-hour aggregation interval, its peak, weighted by the
    # time of the peak (intervals start at the first sample, as VPA's windows do).
    per = int(VPA_MEMORY_INTERVAL_S // d.step_seconds)
    n_int = -(-T // per)
    padded = np.full((R, n_int * per), np.nan)
    padded[:, :T] = np.nan if d.mem is None else d.mem * (1024.0 ** 3)
    blocks = padded.reshape(R, n_int, per)
    has = np.isfinite(blocks).any(axis=2)
    filled = np.where(np.isfinite(blocks), blocks, -np.inf)
    at = filled.argmax(axis=2)
    peaks = np.where(has, filled.max(axis=2), np.nan)
    peak_time = (np.arange(n_int)[None, :] * per + at) * float(d.step_seconds)
    mem = vpa_percentile(peaks, np.exp2(peak_time / VPA_HALF_LIFE_S), VPA_MEM_FIRST_BUCKET,
                         VPA_MEM_MAX, VPA_TARGET_PERCENTILE) / (1024.0 ** 3)
    unmeasured = ~np.isfinite(padded).any(axis=1)
    mem = np.where(unmeasured, np.nan, mem)
    cpu_target = np.maximum(cpu * (1 + VPA_SAFETY_MARGIN), VPA_MIN_CPU)
    mem_target = np.maximum(mem * (1 + VPA_SAFETY_MARGIN), VPA_MIN_MEM_GIB)
    nan = np.full(R, np.nan)
    return Requirements(cpu_target, mem_target, nan, nan.copy(), np.zeros(R, bool), cpu, mem,
                        notes=[[] for _ in range(R)])


# ---------------------------------------------------------------------------- VPA
def vpa_percentile(values: np.ndarray, weights: np.ndarray, first_bucket: float,
                   max_value: float, percentile: float) -> np.ndarray:
    """Per-row percentile of VPA's exponential histogram (bucket *end*, as VPA returns).

    Buckets: the first covers [0, first_bucket), bucket n starts at
    ``first_bucket * (ratio**n - 1) / (ratio - 1)``, the last starts at or above
    ``max_value``. An empty row gives 0, as VPA's empty histogram does.

    >>> import numpy as np
    >>> v = np.array([[0.5] * 9 + [2.0]])
    >>> float(vpa_percentile(v, np.ones_like(v), 0.01, 1000.0, 0.9).round(4)[0])
    0.5111
    """
    ratio = VPA_BUCKET_RATIO
    num = int(np.ceil(np.log(max_value * (ratio - 1) / first_bucket + 1) / np.log(ratio))) + 1
    return _vpa_kernel(np.ascontiguousarray(values, dtype=np.float64),
                       np.asarray(weights, dtype=np.float64), first_bucket, ratio, num,
                       percentile)


@njit(parallel=True, cache=True)
def _vpa_kernel(values, weights, first, ratio, num_buckets, percentile):
    R, N = values.shape
    out = np.zeros(R)
    log_ratio = np.log(ratio)
    epsilon = 1e-4  # VPA's minimum weight of a non-empty bucket
    for r in prange(R):
        hist = np.zeros(num_buckets)
        total = 0.0
        for i in range(N):
            v = values[r, i]
            if v != v:
                continue
            if v < first:
                b = 0
            else:
                b = int(np.log(v * (ratio - 1) / first + 1) / log_ratio)
                if b >= num_buckets:
                    b = num_buckets - 1
            hist[b] += weights[r, i]
            total += weights[r, i]
        min_b = -1
        max_b = 0
        for b in range(num_buckets):
            if hist[b] >= epsilon:
                if min_b < 0:
                    min_b = b
                max_b = b
        if min_b < 0:
            continue
        threshold = percentile * total
        partial = 0.0
        b = min_b
        while b < max_b:
            partial += hist[b]
            if partial >= threshold:
                break
            b += 1
        end = b + 1 if b < num_buckets - 1 else b
        out[r] = first * (ratio ** end - 1) / (ratio - 1)
    return out


# ------------------------------------------------------------------------- helpers
def _quantile(x: np.ndarray | None, q: float, R: int | None = None) -> np.ndarray:
    if x is None:
        assert R is not None, "R (the row count) is needed when x is None"
        return np.full(R, np.nan)
    return nan_quantiles_masked(np.ascontiguousarray(x, dtype=np.float64),
                                np.zeros(x.shape[0], dtype=np.int64), np.array([q]))[:, 0]


def _nanmax(x: np.ndarray | None, R: int | None = None) -> np.ndarray:
    if x is None:
        assert R is not None, "R (the row count) is needed when x is None"
        return np.full(R, np.nan)
    return nanmax_from(x, np.zeros(x.shape[0], dtype=np.int64))
