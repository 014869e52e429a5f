"""The ``forestream`` sizing policy: capacity for a stated service level, not a percentile
plus a fixed headroom.

**CPU.** The user states the service level (:mod:`~forestream.optimizer.slo`): by
default the P99 of 5-minute CPU utilization at most 90 %. What the next period will
need is estimated from the current regime of the lookback (the part after a lasting
level shift, see :mod:`~forestream.optimizer.workload`):

1. its days are bootstrapped into periods of ``horizon_days`` days and the
   ``confidence`` quantile (0.9) of the drawn periods' percentiles is taken (never below
   the lookback's own percentile, nor above its highest sample). The next period is one
   more draw around the true level, of which the lookback is one draw too, so the
   draws' spread around their median is widened by ``SPREAD_INFLATION`` (√2). A load
   whose tail repeats every day (a nightly batch, an hourly cron job, a daily peak)
   draws nearly the same percentile every time; one whose tail comes from a few heavy
   days or a long incident draws widely different ones, and is sized higher. This is
   how recurring bursts and one-off ones are told apart: not by a rule on what an hour
   looks like, but by how much the percentile depends on which days come;
2. a growing load (daily medians rising week over week, or daily peaks along a
   significant line, see :func:`~forestream.optimizer.slo.week_over_week_growth` and
   :func:`~forestream.optimizer.workload.trend_growth`) is sized on its last week's
   percentile projected over ``horizon_days``;
3. a resource pinned at its capacity in more than the percentile's tail never showed
   its demand: the percentile is extrapolated (log-normal through the measured part),
   at most doubling the capacity per recommendation.

The CPU it asks for is that level divided by the SLO's utilization (plus
``cpu_headroom`` when given). ``cpu_draws`` keeps the drawn levels, from which each
option's chance of breaking the service level (its performance risk) is read.

**Memory** never may run out (the process is killed), so it is sized on peaks, but on
the right peaks: when memory drops sharply and repeatedly (a leak cleared by
restarts: a sawtooth), the peaks *between restarts* are what repeats, so the need is
the higher of the seen peak plus 3 % and the cycles' mean peak plus three standard
deviations; a rise within a cycle is not a trend. Otherwise it is the current memory
regime's maximum, projected along a significant trend over ``horizon_days``, plus how
far the next period's peak may rise above the seen one: the highest of ``n`` daily
peaks of spread ``σ`` (about their trend line where a trend is projected) moves from
one period to the next by a logistic amount of scale ``σ·√6/π`` (the difference of two
Gumbel maxima), so the margin is its 1-in-1000 quantile, ``MEM_PEAK_SIGMAS`` (5.4)
``σ`` over the peak, kept within 1-30 %. A flat memory (daily peaks within a few
tenths of a percent of each other) gets about 1 %, not a fixed 3 % that moves it past
a type it fits; a memory whose peaks wander gets more than three spreads did; under a
week of daily peaks (``MEM_PEAK_MIN_DAYS``) says too little about their spread, and
gets at least 3 %. Memory pinned at 100 % asks for 1.3x.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from ._stats import nan_quantile_per_row, nan_quantiles_masked, nanmax_from, pinned_share
from .requirements import Requirements
from .slo import BOOTSTRAP_DRAWS, CONFIDENCE, bootstrap_percentile, week_over_week_growth
from .workload import WorkloadAnalysis, analyze, hourly_stats

MEM_MIN_MARGIN = 0.03  # a sawtooth's peak and a GPU's memory: the highest seen plus 3 %
#: the chance the next period's memory peak rises above the sized margin, and that
#: margin in standard deviations of the daily peaks (the logistic quantile, see above)
MEM_PEAK_RISK = 0.001
MEM_PEAK_SIGMAS = math.sqrt(6) / math.pi * math.log((1 - MEM_PEAK_RISK) / MEM_PEAK_RISK)
MEM_PEAK_MIN_MARGIN = 0.01
#: fewer measured days than this say too little about the peaks' spread: at least 3 %
MEM_PEAK_MIN_DAYS = 7
MEM_MAX_MARGIN = 0.30
MEM_CYCLE_SIGMAS = 3.0
RESTART_DROP = 0.25  # a drop of a quarter of the memory's range in one sample is a restart,
RESTART_MIN_DROP = 0.10  # when it also frees a tenth of the peak
SATURATED_PCT = 99.0
SPREAD_INFLATION = 2 ** 0.5


def forestream_requirements(d, *, slo_percentile: float, slo_utilization: float,
                            cpu_headroom: float | None, mem_headroom: float | None,
                            horizon_days: float, seed: int,
                            confidence: float = CONFIDENCE):
    """What the ``forestream`` policy asks for each resource of demand ``d`` (see the
    module docstring); a :class:`~forestream.optimizer.policies.Requirements`."""
    q = slo_percentile / 100.0
    u = slo_utilization / 100.0
    per_hour = d.samples_per_hour
    per_day = 24 * per_hour
    R, T = d.cpu.shape
    a = analyze(d.cpu, capacity=d.cpu_capacity, memory=d.mem, samples_per_hour=per_hour,
                horizon_days=horizon_days, level_percentile=slo_percentile,
                exclude_spikes=False, seed=seed)
    start = a.regime_start
    cpu = np.ascontiguousarray(d.cpu)
    seen_level = nan_quantiles_masked(cpu, start, np.array([q]))[:, 0]
    period = max(int(round(horizon_days)), 1)
    draws = bootstrap_percentile(cpu, start, per_day, q, period, BOOTSTRAP_DRAWS, seed)
    with np.errstate(all="ignore"):
        middle = _row_nanquantile(draws, 0.5)
        # the next period is one more draw around the true level, of which the lookback
        # is one draw too: their difference spreads sqrt(2) times as widely as the draws
        drawn = middle + SPREAD_INFLATION * (_row_nanquantile(draws, confidence) - middle)
        draws = middle[:, None] + SPREAD_INFLATION * (draws - middle[:, None])
    # never above the highest sample seen: the inflation widens the spread, not the load
    highest = nanmax_from(cpu, start)
    draws = np.fmin(draws, highest[:, None])
    level = np.fmax(seen_level, np.fmin(drawn, highest))

    growth = np.fmax(a.growth, week_over_week_growth(cpu, start, per_day, horizon_days))
    growing = growth > 1.0
    if growing.any():
        last_week = np.maximum(start, T - 7 * per_day)
        recent = nan_quantile_per_row(cpu, last_week, np.full(R, q))
        level = np.where(growing, np.fmax(level, recent * growth), level)
        draws = np.where(growing[:, None], draws * (level / np.fmax(drawn, 1e-12))[:, None],
                         draws)

    saturated = _share_pinned(d.cpu_pct, start, R)
    hidden = saturated > 1 - q  # the percentile itself was not measured
    if hidden.any():
        level[hidden] = np.maximum(level[hidden], censored_quantile(
            d.cpu[hidden], start[hidden], d.cpu_capacity[hidden], saturated[hidden], q))
        draws[hidden] = level[hidden, None]
    need = level / u * (1 + (cpu_headroom or 0.0))
    need[hidden] = np.minimum(need[hidden], np.maximum(2.0 * d.cpu_capacity[hidden],
                                                       level[hidden]))

    mem, mem_level, cycles = _memory_need(d, a, mem_headroom, per_day)
    gpu_level = _quantile_or_nan(d.gpu, q, R)
    gpu_mem = _max_or_nan(d.gpu_mem, R) * (1 + (MEM_MIN_MARGIN if mem_headroom is None
                                                 else mem_headroom))
    requirements = Requirements(need, mem, gpu_level / u, gpu_mem, a.workload_class == "idle",
                                level, mem_level, a,
                                _notes(a, d, saturated, growth, cycles, horizon_days,
                                       level, seen_level, hidden), draws, u)
    return requirements


# ---------------------------------------------------------------------------- memory
def _memory_need(d, a: WorkloadAnalysis, mem_headroom: float | None, per_day: int):
    """(need, level, completed cycles) per resource, in GiB (NaN: not measured)."""
    R = d.cpu.shape[0]
    if d.mem is None:
        nan = np.full(R, np.nan)
        return nan, nan.copy(), np.zeros(R, dtype=np.int64)
    mem = np.ascontiguousarray(d.mem)
    start = a.mem_regime_start
    peak = nanmax_from(mem, start)
    cycles, mean, std = restart_cycles(mem, start, RESTART_DROP)
    sawtooth = cycles >= 2
    growth = np.where(sawtooth, 1.0, a.mem_growth)
    level = peak * growth
    if mem_headroom is None:
        spread, days = _daily_peak_spread(mem, start, per_day, detrend=growth > 1.0)
        floor = np.where(days >= MEM_PEAK_MIN_DAYS, MEM_PEAK_MIN_MARGIN, MEM_MIN_MARGIN)
        with np.errstate(invalid="ignore", divide="ignore"):
            margin = np.clip(np.nan_to_num(MEM_PEAK_SIGMAS * spread / peak), floor,
                             MEM_MAX_MARGIN)
    else:
        margin = np.full(R, mem_headroom)
    need = level * (1 + margin)
    cycle_need = np.fmax(peak * (1 + (MEM_MIN_MARGIN if mem_headroom is None
                                      else mem_headroom)),
                         mean + MEM_CYCLE_SIGMAS * std)
    need = np.where(sawtooth, cycle_need, need)
    pinned = _share_pinned(d.mem_pct, start, R)
    need = np.where(pinned > 0.001, np.maximum(need, 1.3 * d.mem_capacity), need)
    return need, level, cycles


@njit(parallel=True, cache=True)
def restart_cycles(X, start, drop):
    """Per row (from ``start[r]``): the number of memory cycles that ended in a restart
    (a fall of more than ``drop`` of the row's range, and of a tenth of its peak, from
    one measured sample to the next), and the mean and standard deviation of those cycles' peaks."""
    R, T = X.shape
    count = np.zeros(R, dtype=np.int64)
    mean = np.full(R, np.nan)
    std = np.zeros(R)
    for r in prange(R):
        lo = np.inf
        hi = -np.inf
        for t in range(start[r], T):
            v = X[r, t]
            if v == v:
                lo = min(lo, v)
                hi = max(hi, v)
        if not hi > lo:
            continue
        threshold = max(drop * (hi - lo), RESTART_MIN_DROP * hi)
        previous = np.nan
        running = -np.inf
        s = 0.0
        s2 = 0.0
        for t in range(start[r], T):
            v = X[r, t]
            if v != v:
                continue
            if previous == previous and previous - v > threshold:
                count[r] += 1
                s += running
                s2 += running * running
                running = -np.inf
            running = max(running, v)
            previous = v
        if count[r] > 0:
            mean[r] = s / count[r]
            if count[r] > 1:
                std[r] = np.sqrt(max(s2 / count[r] - mean[r] * mean[r], 0.0)
                                 * count[r] / (count[r] - 1))
    return count, mean, std


# --------------------------------------------------------------------------- helpers
def censored_quantile(demand: np.ndarray, start: np.ndarray, capacity: np.ndarray,
                      saturated: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of demand that was saturated at ``capacity`` in a share
    ``saturated`` of the samples: a log-normal through capacity at ``1 - saturated``
    and the measured quantile 20 points below it, extrapolated to ``q``, kept within
    1.1-2x the capacity: demand above capacity was never measured, so one
    recommendation moves at most one size up (doubling) and the next one sees more.
    """
    from statistics import NormalDist

    z = NormalDist().inv_cdf
    low_level = np.clip(1 - saturated - 0.2, 0.05, 0.5)
    lows = nan_quantile_per_row(np.ascontiguousarray(demand), start, low_level)
    out = np.empty(len(capacity))
    for r in range(len(capacity)):
        low = lows[r]
        top = 1 - saturated[r]
        if not (np.isfinite(low) and 0 < low < capacity[r]) or top >= q or top <= low_level[r]:
            out[r] = 2.0 * capacity[r]
            continue
        sigma = (np.log(capacity[r]) - np.log(low)) / (z(top) - z(low_level[r]))
        value = np.exp(np.log(capacity[r]) + sigma * (z(q) - z(top)))
        out[r] = np.clip(value, 1.1 * capacity[r], 2.0 * capacity[r])
    return out


def _row_nanquantile(x: np.ndarray, q: float) -> np.ndarray:
    valid = np.isfinite(x).any(axis=1)
    out = np.full(x.shape[0], np.nan)
    if valid.any():
        out[valid] = nan_quantiles_masked(np.ascontiguousarray(x[valid]),
                                          np.zeros(int(valid.sum()), dtype=np.int64),
                                          np.array([q]))[:, 0]
    return out


def _quantile_or_nan(x: np.ndarray | None, q: float, R: int) -> np.ndarray:
    if x is None:
        return np.full(R, np.nan)
    return nan_quantiles_masked(np.ascontiguousarray(x), np.zeros(R, dtype=np.int64),
                                np.array([q]))[:, 0]


def _max_or_nan(x: np.ndarray | None, R: int) -> np.ndarray:
    if x is None:
        return np.full(R, np.nan)
    return nanmax_from(np.ascontiguousarray(x), np.zeros(R, dtype=np.int64))


def _share_pinned(x: np.ndarray | None, start: np.ndarray, R: int) -> np.ndarray:
    """Share of samples pinned at the cap (>= 99 %) of series that never go above it."""
    if x is None:
        return np.zeros(R)
    return pinned_share(np.ascontiguousarray(x), SATURATED_PCT, 100.5, start)


def _daily_peak_spread(x: np.ndarray, start: np.ndarray, per_day: int,
                       detrend: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Standard deviation of the daily maxima of each row (from ``start``; 0 if fewer
    than two days are measured), about their least-squares line where ``detrend``: a
    trend that is projected anyway is no spread of the peaks around it; and the number
    of measured days."""
    R, T = x.shape
    D = T // per_day
    if D < 2:
        return np.zeros(R), np.zeros(R, dtype=np.int64)
    offset = T - D * per_day
    peak, _ = hourly_stats(np.ascontiguousarray(x[:, offset:]), per_day)
    day_start = offset + np.arange(D) * per_day
    peak = np.where(day_start[None, :] >= start[:, None], peak, np.nan)
    valid = np.isfinite(peak)
    n = valid.sum(axis=1)
    day = np.arange(D, dtype=float)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(valid, peak, 0.0).sum(axis=1) / n
        day_mean = np.where(valid, day, 0.0).sum(axis=1) / n
        dx = np.where(valid, day - day_mean[:, None], 0.0)
        dy = np.where(valid, peak - mean[:, None], 0.0)
        slope = np.where(detrend, (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1), 0.0)
        residual = np.where(valid, dy - np.nan_to_num(slope)[:, None] * dx, 0.0)
        dof = np.maximum(n - np.where(detrend, 2, 1), 1)
        std = np.sqrt((residual ** 2).sum(axis=1) / dof)
        return np.where(n >= 2, std, 0.0), n


def _notes(a: WorkloadAnalysis, d, saturated, growth, cycles, horizon_days, level,
           seen_level, hidden) -> list[list[str]]:
    notes: list[list[str]] = [[] for _ in range(len(growth))]
    hours = d.step_seconds / 3600
    for r in np.flatnonzero(a.regime_start > 0):
        notes[r].append(f"CPU level shift {a.regime_start[r] * hours:.0f} h into the "
                        "lookback; sized on the samples after it")
    for r in np.flatnonzero(a.mem_regime_start > 0):
        notes[r].append(f"memory level shift {a.mem_regime_start[r] * hours:.0f} h into the "
                        "lookback; sized on the samples after it")
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = level / seen_level - 1
    # a saturated resource's level is raised by what was never measured, not by its days
    for r in np.flatnonzero((spread > 0.1) & (growth <= 1.0) & ~hidden):
        notes[r].append(f"the CPU percentile depends on which days come (bursts on some "
                        f"days only): sized {spread[r] * 100:.0f}% above the lookback's")
    for r in np.flatnonzero(growth > 1.0):
        notes[r].append(f"CPU peaks growing: +{(growth[r] - 1) * 100:.0f}% projected over "
                        f"{horizon_days:g} days")
    for r in np.flatnonzero(cycles >= 2):
        notes[r].append(f"memory restarts {int(cycles[r])} times (a sawtooth): sized on the "
                        "peaks between restarts")
    for r in np.flatnonzero(saturated > 0.005):
        notes[r].append(f"CPU saturated in {saturated[r] * 100:.1f}% of samples: the true "
                        "demand is above what was measured")
    return notes
