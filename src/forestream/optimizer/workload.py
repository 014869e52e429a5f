"""What kind of workload a resource runs, for many resources at once.

The recommenders size a resource from a high percentile of its demand. That number is
only trustworthy when the lookback is representative of what comes next, so this module
looks at the *shape* of each demand series first, on hourly aggregates of a
``(resources, samples)`` matrix, without a Python loop per resource:

- **regime shifts**: a lasting step in the level (a workload moved away or arrived).
  The part before the step no longer describes the resource, so sizing uses the part
  after it (when at least 30 hours long);
- **trends**: steady growth of daily peaks (a memory leak, traffic growth), projected
  over the coming period so the recommendation still fits at its end;
- **one-off spikes versus recurring peaks**: a peak that comes back at the same hour on
  other days (or the same hour of the week) is load the resource must serve; a rare
  surge that does not recur, and that a Random Cut Forest (``forestream.rcf``) trained
  on the resource's own hourly profile finds anomalous, is an incident, and is left out
  of the sizing percentile. The forest runs only on resources where leaving the surge
  out would change the percentile, so it costs little on large fleets;
- **class**: idle, steady, diurnal (period 24 or 168 hours), bursty or trending.

>>> import numpy as np
>>> from forestream.optimizer.workload import analyze
>>> hours = np.arange(14 * 24 * 12) / 12
>>> daily = 1 + 0.8 * np.sin(2 * np.pi * hours / 24) ** 2
>>> flat = np.full(hours.size, 2.0)
>>> result = analyze(np.vstack([daily, flat]), capacity=np.array([4.0, 4.0]))
>>> result.workload_class.tolist(), result.period_hours.tolist()
(['diurnal', 'steady'], [24, 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

# The numba kernels live in _stats.py; the ones other modules use are re-exported here,
# where they were first defined.
from ._stats import hourly_stats as hourly_stats
from ._stats import nan_quantile_per_row as nan_quantile_per_row
from ._stats import nan_quantiles as nan_quantiles
from ._stats import nan_quantiles_masked as nan_quantiles_masked
from ._stats import nanmax_from as nanmax_from
from ._stats import pinned_share as pinned_share

WORKLOAD_CLASSES = ("idle", "steady", "diurnal", "bursty", "trending")
MIN_REGIME_HOURS = 30  # as AWS asks of any lookback: at least 30 hours of data
#: a step up is judged against this many hours before it when the whole past is uneven
LOCAL_HOURS = 48
IDLE_PCT = 5.0  # P99 of hourly peaks below 5 % of the current capacity


@dataclass
class WorkloadAnalysis:
    """Per-resource results of :func:`analyze` (arrays of length R)."""

    workload_class: np.ndarray  # one of WORKLOAD_CLASSES
    period_hours: np.ndarray  # 24 or 168 for diurnal workloads, else 0
    regime_start: np.ndarray  # first sample of the current regime (0: no shift)
    growth: np.ndarray  # projected peak at the end of the horizon / peak now (>= 1)
    burstiness: np.ndarray  # (P99 - P50) / P99 of the samples
    spike_hours: np.ndarray  # hours left out of sizing as one-off spikes
    spike_mask: np.ndarray  # (R, H) True for the left-out hours
    mem_regime_start: np.ndarray  # first sample of the current memory regime
    mem_growth: np.ndarray  # projected growth of the memory peaks over the horizon
    level: np.ndarray  # the sizing percentile of the current regime (spikes included)


def analyze(demand: np.ndarray, *, capacity: np.ndarray, memory: np.ndarray | None = None,
            samples_per_hour: int = 12, horizon_days: float = 7.0,
            level_percentile: float = 99.5, exclude_spikes: bool = True,
            seed: int = 0) -> WorkloadAnalysis:
    """Analyse a ``(R, T)`` CPU demand matrix (NaN = missing) of resources with the given
    current ``capacity`` (same unit as the demand); ``memory`` (same shape, optional)
    adds the memory regime, trend and class."""
    R, T = demand.shape
    H = T // samples_per_hour
    if H < 2:
        raise ValueError(f"need at least two hours of samples, got {T}")
    demand = demand[:, : H * samples_per_hour]
    hourly_max, hourly_mean = hourly_stats(demand, samples_per_hour)
    start_hour = latest_regime_start(hourly_mean)
    hours = np.arange(H)
    in_regime = hours[None, :] >= start_hour[:, None]
    hourly_max = np.where(in_regime, hourly_max, np.nan)
    hourly_mean = np.where(in_regime, hourly_mean, np.nan)

    growth = trend_growth(hourly_mean, horizon_days)
    q50, q99, level = nan_quantiles_masked(
        demand, start_hour * samples_per_hour,
        np.array([0.5, 0.99, level_percentile / 100.0])).T
    with np.errstate(invalid="ignore", divide="ignore"):
        burstiness = np.where(q99 > 0, (q99 - q50) / q99, 0.0)
    acf24 = autocorrelation(hourly_mean, 24)
    acf168 = autocorrelation(hourly_mean, 168)
    with np.errstate(invalid="ignore"):
        peak_pct = 100.0 * _nan_quantile_rows(hourly_max, 0.99) / np.maximum(capacity, 1e-12)
    amplitude = _profile_amplitude(hourly_mean)

    classes = np.full(R, "steady", dtype=object)
    period = np.zeros(R, dtype=np.int64)
    periodic = ((acf24 >= 0.5) | (acf168 >= 0.5)) & (amplitude >= 0.25)
    classes[burstiness >= 0.5] = "bursty"
    classes[periodic] = "diurnal"
    period[periodic] = np.where(acf168[periodic] > acf24[periodic] + 0.1, 168, 24)
    mem_start = np.zeros(R, dtype=np.int64)
    mem_growth = np.ones(R)
    if memory is not None:
        memory = memory[:, : H * samples_per_hour]
        mem_max, mem_mean = hourly_stats(memory, samples_per_hour)
        mem_start = latest_regime_start(mem_mean)
        mem_max = np.where(hours[None, :] >= mem_start[:, None], mem_max, np.nan)
        mem_growth = trend_growth(mem_max, horizon_days)
    trending = (growth >= 1.1) | (mem_growth >= 1.1)
    classes[trending] = "trending"
    period[trending] = 0
    idle = peak_pct < IDLE_PCT
    classes[idle] = "idle"
    period[idle] = 0

    mask = np.zeros((R, H), dtype=bool)
    if exclude_spikes:
        mask = one_off_spikes(demand, hourly_max, hourly_mean, start_hour, samples_per_hour,
                              level_percentile, level=level, saturation=0.99 * capacity,
                              seed=seed)
    return WorkloadAnalysis(classes, period, start_hour * samples_per_hour, growth,
                            np.nan_to_num(burstiness), mask.sum(axis=1), mask,
                            mem_start * samples_per_hour, mem_growth, level)


# ------------------------------------------------------------------ regime and trend
def regime_starts(hourly_mean: np.ndarray, min_change: float = 0.25,
                  min_hours: int = MIN_REGIME_HOURS, guard_hours: int = 6) -> np.ndarray:
    """First hour of the current regime per row (0 when the level never stepped).

    The split that best separates the hourly means into two levels is a regime shift
    when the levels differ by at least ``min_change`` (relative) and each side is flat
    compared with the step: the day-long rolling means on either side vary by less than
    half the step, so a trend or a weekly weekend dip is not taken for a shift (only
    days with at least 18 measured hours count; unmeasured hours are filled in, see
    :func:`_fill_nan_rows`). The new regime starts ``guard_hours`` after the split (when
    that leaves ``min_hours``), as the split of noisy hourly means can miss the true
    step by a few hours. A step *up* also counts when the left side as a whole is
    uneven but the ``LOCAL_HOURS`` before the split are flat (see
    :func:`_step_up_after_uneven_past`).
    """
    R, H = hourly_mean.shape
    out = np.zeros(R, dtype=np.int64)
    if hourly_mean.shape[1] < 24 + min_hours + 1:
        return out
    x = _fill_nan_rows(hourly_mean)
    csum = np.concatenate([np.zeros((R, 1)), np.cumsum(x, axis=1)], axis=1)
    k = np.arange(24, H - min_hours + 1)
    before = csum[:, k] / k
    after = (csum[:, -1:] - csum[:, k]) / (H - k)
    score = np.abs(before - after) * np.sqrt(k * (H - k))
    best = np.argmax(score, axis=1)
    split = k[best]
    mu1 = before[np.arange(R), best]
    mu2 = after[np.arange(R), best]
    low = np.minimum(mu1, mu2)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(low > 0, np.maximum(mu1, mu2) / low, np.inf)
    step = np.abs(mu1 - mu2)
    rolling = (csum[:, 24:] - csum[:, :-24]) / 24.0  # window [j, j+24)
    counts = np.concatenate([np.zeros((R, 1)), np.cumsum(np.isfinite(hourly_mean), axis=1)],
                            axis=1)
    measured = (counts[:, 24:] - counts[:, :-24]) >= 18  # days mostly filled in are not
    j = np.arange(rolling.shape[1])  # evidence of flatness
    left = (j[None, :] + 24 <= split[:, None]) & measured
    right = (j[None, :] >= split[:, None]) & measured
    spread_left = _masked_range(rolling, left)
    spread_right = _masked_range(rolling, right)
    flat = (spread_left < 0.5 * step) & (spread_right < 0.5 * step)
    shifted = (ratio >= 1.0 + min_change) & flat & (mu1 + mu2 > 0)
    shifted |= _step_up_after_uneven_past(csum, rolling, measured, split, mu2, spread_right,
                                          min_change)
    guarded = np.where(split + guard_hours <= H - min_hours, split + guard_hours, split)
    out[shifted] = guarded[shifted]
    return out


def _step_up_after_uneven_past(csum: np.ndarray, rolling: np.ndarray, measured: np.ndarray,
                               split: np.ndarray, after: np.ndarray, spread_right: np.ndarray,
                               min_change: float) -> np.ndarray:
    """Rows whose split is a step *up* from the ``LOCAL_HOURS`` just before it, though
    the whole left side is uneven (an earlier step, or a drift, before this one).

    Without this, a deploy that stepped down and later up again (or up twice) is no
    shift at all, and the week-over-week growth of its daily medians across the step
    is read as a trend that doubles the load (sized +100 %). Only steps up are taken
    this way (a local step down could be the top of a weekly cycle: a busy weekend
    before quiet weekdays). The right side must be flat compared with the step and at
    least ``LOCAL_HOURS`` long (one busy day is not a new level), and so must the local
    window before it be (two whole days, so a trend, whose halves differ as much as its
    ends, does not pass); and the level must be new, above the two days
    before the local window as well: quiet weekends between busy weekdays are a weekly
    cycle, not a step, and taking them for one would cut off the weeks a growing
    load's trend is measured on.
    """
    R, H = csum.shape[0], csum.shape[1] - 1
    rows = np.arange(R)
    lo = split - LOCAL_HOURS
    earlier = split - 2 * LOCAL_HOURS
    # as much evidence after the step as before it: one busy day is not a new level
    ok = (earlier >= 0) & (H - split >= LOCAL_HOURS)
    lo = np.maximum(lo, 0)
    earlier = np.maximum(earlier, 0)
    before = (csum[rows, split] - csum[rows, lo]) / np.maximum(split - lo, 1)
    # the level is new: the days before the local window were lower too (after a quiet
    # weekend, the weekdays before it were as busy as the ones after)
    before_that = (csum[rows, lo] - csum[rows, earlier]) / np.maximum(lo - earlier, 1)
    step = after - before
    j = np.arange(rolling.shape[1])
    local = (j[None, :] >= lo[:, None]) & (j[None, :] + 24 <= split[:, None]) & measured
    spread_local = _masked_range(rolling, local)
    with np.errstate(invalid="ignore"):
        return (ok & (before > 0) & (after >= (1.0 + min_change) * before)
                & (after >= (1.0 + min_change) * before_that)
                & (local.sum(axis=1) >= 12) & (spread_local < 0.5 * step)
                & (spread_right < 0.5 * step))


def latest_regime_start(hourly_mean: np.ndarray, passes: int = 3) -> np.ndarray:
    """First hour of the *latest* regime per row: :func:`regime_starts`, searched again
    after each shift it finds (a deploy that stepped up, then down again), up to
    ``passes`` times."""
    start = regime_starts(hourly_mean)
    hours = np.arange(hourly_mean.shape[1])
    for _ in range(passes - 1):
        shifted = start > 0
        if not shifted.any():
            break
        rows = np.flatnonzero(shifted)
        later = regime_starts(np.where(hours[None, :] >= start[rows, None],
                                       hourly_mean[rows], np.nan))
        moved = later > start[rows]
        if not moved.any():
            break
        start[rows[moved]] = later[moved]
    return start


#: One-sided 95 % quantiles of Student's t by degrees of freedom (index 0 unused).
_T95 = np.array([1e6, 6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833,
                 1.812, 1.645])


def trend_growth(hourly: np.ndarray, horizon_days: float, min_r2: float = 0.6,
                 min_days: int = 3, min_day_hours: int = 18) -> np.ndarray:
    """Projected growth of daily peaks over ``horizon_days`` (1.0 when not trending).

    A least-squares line through the daily maxima of ``hourly`` (days with fewer than
    ``min_day_hours`` measured hours skipped: the peak of a partial day, such as the
    day a regime starts, is not comparable with a whole day's); the growth is the
    line's value ``horizon_days`` after the last day over its value on the last day,
    when the slope is positive and the line explains at least ``min_r2`` of the
    variance, and more than three or four days' points would by chance: the slope
    must also be significant (one-sided t-test at 5 %; with three days that takes
    R² >= 0.976, with four 0.81, with five 0.65).
    """
    R, H = hourly.shape
    D = H // 24
    if hourly.shape[1] < 24 * min_days:
        return np.ones(R)
    days = hourly[:, : D * 24].reshape(R, D, 24)
    daily = _nanmax_axis(days, axis=2)
    daily = np.where(np.isfinite(days).sum(axis=2) >= min_day_hours, daily, np.nan)
    valid = np.isfinite(daily)
    n = valid.sum(axis=1)
    x = np.where(valid, np.arange(D)[None, :], 0.0)
    y = np.where(valid, daily, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mx = x.sum(axis=1) / n
        my = y.sum(axis=1) / n
        dx = np.where(valid, x - mx[:, None], 0.0)
        dy = np.where(valid, y - my[:, None], 0.0)
        sxx = (dx * dx).sum(axis=1)
        sxy = (dx * dy).sum(axis=1)
        syy = (dy * dy).sum(axis=1)
        slope = sxy / sxx
        r2 = np.where(syy > 0, sxy * sxy / (sxx * syy), 0.0)
        last_x = np.where(valid, np.arange(D)[None, :], -1).max(axis=1)
        at_last = my + slope * (last_x - mx)
        ahead = at_last + slope * horizon_days
        growth = np.where(at_last > 0, ahead / at_last, 1.0)
    t = _T95[np.clip(n - 2, 0, len(_T95) - 1)]
    need_r2 = np.maximum(min_r2, t * t / (t * t + np.maximum(n - 2, 1)))
    trending = (n >= min_days) & (slope > 0) & (r2 >= need_r2) & np.isfinite(growth)
    return np.where(trending, np.clip(growth, 1.0, 4.0), 1.0)


def autocorrelation(hourly: np.ndarray, lag: int) -> np.ndarray:
    """Autocorrelation of each row at ``lag`` hours (NaN-aware; 0 when too short)."""
    R, H = hourly.shape
    if hourly.shape[1] < 2 * lag:
        return np.zeros(R)
    valid = np.isfinite(hourly)
    mean = (np.where(valid, hourly, 0.0).sum(axis=1, keepdims=True)
            / np.maximum(valid.sum(axis=1, keepdims=True), 1))
    z = np.where(valid, hourly - mean, 0.0)
    num = (z[:, lag:] * z[:, :-lag] * (valid[:, lag:] & valid[:, :-lag])).sum(axis=1)
    den = (z * z).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pairs = (valid[:, lag:] & valid[:, :-lag]).sum(axis=1)
        scale = valid.sum(axis=1) / np.maximum(pairs, 1)
        return np.where(den > 0, num * scale / den, 0.0)


# --------------------------------------------------------------------- one-off spikes
def one_off_spikes(demand: np.ndarray, hourly_max: np.ndarray, hourly_mean: np.ndarray,
                   start_hour: np.ndarray, samples_per_hour: int, level_percentile: float, *,
                   level: np.ndarray | None = None, saturation: np.ndarray | None = None,
                   recur_fraction: float = 0.8, max_per_week: float = 2.0,
                   max_share: float = 0.02, seed: int = 0) -> np.ndarray:
    """(R, H) mask of hours that hold one-off spikes, to leave out of sizing.

    An hour is a spike candidate when its peak is above the sizing percentile and no
    other day reaches ``recur_fraction`` of it within an hour of the same time of day,
    nor another week at the same time of week. Candidates must be rare (at most
    ``max_per_week`` separate runs a week, at most ``max_share`` of the samples) and
    leaving them out must matter: lower the percentile by over 5 %, or be what takes the
    share of samples at ``saturation`` above the percentile's tail. Then a small Random Cut
    Forest is fitted on the resource's hourly (peak, mean, time of day) points; a run is
    left out when its highest hour is among the resource's most anomalous 3 %.
    """
    R, H = hourly_max.shape
    mask = np.zeros((R, H), dtype=bool)
    q = level_percentile / 100.0
    start = start_hour * samples_per_hour
    if level is None:
        level = nan_quantiles_masked(demand, start, np.array([q]))[:, 0]
    high = np.nan_to_num(hourly_max, nan=-np.inf) >= level[:, None]
    if not high.any():
        return mask
    other = _best_elsewhere(hourly_max, 24)
    if H >= 2 * 168:
        other = np.fmax(other, _best_elsewhere(hourly_max, 168))
    candidate = high & ~(np.nan_to_num(other, nan=-np.inf) >= recur_fraction * hourly_max)
    runs = (candidate & ~np.concatenate([np.zeros((R, 1), bool), candidate[:, :-1]], axis=1))
    events = runs.sum(axis=1)
    hours_seen = np.maximum(H - start_hour, 1)
    share = candidate.sum(axis=1) / hours_seen
    rare = events <= np.maximum(1.0, max_per_week * hours_seen / 168.0)
    rows = np.flatnonzero((events >= 1) & rare & (share <= max_share))
    if rows.size == 0:
        return mask
    hour_of = np.arange(H * samples_per_hour) // samples_per_hour
    trimmed = np.ascontiguousarray(demand[rows][:, : H * samples_per_hour])
    cleaned = np.where(candidate[rows][:, hour_of], np.nan, trimmed)
    after = nan_quantiles_masked(cleaned, start[rows], np.array([q]))[:, 0]
    worth = after < 0.95 * level[rows]
    if saturation is not None:  # or they are what makes the resource look saturated
        worth |= (_share_above(trimmed, start[rows], saturation[rows]) > 1 - q) & (
            _share_above(cleaned, start[rows], saturation[rows]) <= 1 - q)
    for r in rows[worth]:
        scores = _rcf_scores(hourly_max[r], hourly_mean[r], start_hour[r], seed)
        if scores is None:
            continue
        threshold = np.nanquantile(scores, 0.97)
        hours = np.flatnonzero(candidate[r])
        for run in np.split(hours, np.flatnonzero(np.diff(hours) > 1) + 1):
            if np.nanmax(scores[run]) >= threshold:
                mask[r, run] = True
    return mask


def _rcf_scores(hourly_max, hourly_mean, start_hour, seed) -> np.ndarray | None:
    """Anomaly score of each hour (NaN before ``start_hour`` or when unmeasured)."""
    from forestream.rcf import RandomCutForest

    H = len(hourly_max)
    span = np.arange(start_hour, H)
    peak = hourly_max[span]
    mean = hourly_mean[span]
    valid = np.isfinite(peak) & np.isfinite(mean)
    if valid.sum() < 48:
        return None
    scale = max(float(np.max(peak[valid])), 1e-12)
    angle = 2 * np.pi * (span % 24) / 24.0
    points = np.column_stack([peak / scale, mean / scale, 0.25 * np.cos(angle),
                              0.25 * np.sin(angle)])[valid]
    forest = RandomCutForest(dimensions=4, num_trees=20, sample_size=min(512, len(points)),
                             time_decay=0.0, output_after=1, random_seed=seed)
    # A few hundred points: one thread is faster than waking a pool (and far faster on
    # a busy machine); the fleet-level kernels keep the cores busy anyway.
    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        forest.update_many(points)
        scores = np.full(H, np.nan)
        scores[span[valid]] = forest.score_points(points)
    finally:
        numba.set_num_threads(threads)
    return scores


# ------------------------------------------------------------------------- helpers
def _best_elsewhere(hourly: np.ndarray, period: int) -> np.ndarray:
    """For each hour, the highest value at the same phase of ``period`` (within one
    hour either side) in any *other* period of the row."""
    R, H = hourly.shape
    P = H // period
    x = np.nan_to_num(hourly, nan=-np.inf)
    widened = x.copy()
    widened[:, 1:] = np.maximum(widened[:, 1:], x[:, :-1])
    widened[:, :-1] = np.maximum(widened[:, :-1], x[:, 1:])
    blocks = widened[:, : P * period].reshape(R, P, period)
    order = np.argsort(-blocks, axis=1)
    first = np.take_along_axis(blocks, order[:, :1], axis=1)
    second = np.take_along_axis(blocks, order[:, 1:2], axis=1) if P > 1 else first * -np.inf
    own_is_first = order[:, :1] == np.arange(P)[None, :, None]
    best = np.where(own_is_first, second, first).reshape(R, P * period)
    out = np.full((R, H), -np.inf)
    out[:, : P * period] = best
    return out


def _share_above(x: np.ndarray, start: np.ndarray, level: np.ndarray) -> np.ndarray:
    cols = np.arange(x.shape[1])
    use = (cols[None, :] >= start[:, None]) & np.isfinite(x)
    hits = (use & (np.nan_to_num(x) >= level[:, None])).sum(axis=1)
    return hits / np.maximum(use.sum(axis=1), 1)


def _profile_amplitude(hourly_mean: np.ndarray) -> np.ndarray:
    """(max - min) / mean of the average day (hour-of-day profile)."""
    R, H = hourly_mean.shape
    D = H // 24
    if D < 1:
        return np.zeros(R)
    days = hourly_mean[:, : D * 24].reshape(R, D, 24)
    valid = np.isfinite(days)
    profile = np.where(valid, days, 0.0).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)
    mean = profile.mean(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(mean > 0, (profile.max(axis=1) - profile.min(axis=1)) / mean, 0.0)


def _nan_quantile_rows(x: np.ndarray, q: float) -> np.ndarray:
    return nan_quantiles(x, [q])[:, 0]


def _nanmax_axis(x: np.ndarray, axis: int) -> np.ndarray:
    valid = np.isfinite(x).any(axis=axis)
    out = np.where(np.isfinite(x), x, -np.inf).max(axis=axis)
    return np.where(valid, out, np.nan)


def _masked_range(x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    hi = np.where(mask, x, -np.inf).max(axis=1)
    lo = np.where(mask, x, np.inf).min(axis=1)
    return np.where(mask.any(axis=1), hi - lo, 0.0)


def _fill_nan_rows(x: np.ndarray) -> np.ndarray:
    """NaN replaced by the last measured value before it (leading NaN by the mean of
    the first 24 measured hours; 0 for an all-NaN row). Unlike the row's mean, this keeps a lookback
    shorter than the window (leading NaN) flat before its first sample, so the
    flatness test of :func:`regime_starts` does not see a phantom level there."""
    valid = np.isfinite(x)
    R, H = x.shape
    idx = np.where(valid, np.arange(H)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    first = np.argmax(valid, axis=1)
    leading = np.arange(H)[None, :] < first[:, None]
    filled = np.take_along_axis(x, idx, axis=1)
    day = (np.arange(H)[None, :] >= first[:, None]) & (
        np.arange(H)[None, :] < first[:, None] + 24) & valid
    first_day = np.where(day, x, 0.0).sum(axis=1) / np.maximum(day.sum(axis=1), 1)
    filled = np.where(leading, first_day[:, None], filled)
    return np.where(valid.any(axis=1)[:, None], filled, 0.0)
