"""How high the next period's CPU percentile may go: the service level a recommendation
is sized to, and the spread of its percentile estimated from the lookback's own days.

A user states the **service level** (SLO) a resource must keep: the ``percentile``
(default 99) of its 5-minute CPU utilization at most ``utilization`` (default 90 %) of
the type's capacity (which also keeps samples above 100 % under 1 %). A type meets it
for the coming period when its capacity is at least that period's percentile divided by
the utilization. The lookback's percentile is only an estimate of the next period's:
a bursty resource's heavy days may or may not come back, an incident may recur. So the
percentile is **bootstrapped by days**: the lookback's days (of the current regime) are
drawn with replacement into many periods of ``period_days`` days each, and the
percentile of each drawn period is taken. Days, not samples, are drawn so that what
happens together within a day (a burst lasting an hour, a nightly batch) stays
together. The spread of the drawn percentiles is the forecast's uncertainty: narrow for
a steady or daily-repeating load, wide for one whose tail comes from a few days. A
sizing level at the ``confidence`` quantile of that distribution (default 0.9) is the
percentile the next period stays under with that probability.

The draws use a counter-based generator (SplitMix64) keyed by the resource's row and
the seed, so results do not depend on threads or batch composition.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> steady = 2.0 + 0.05 * rng.standard_normal(14 * 288)
>>> bursty = np.full(14 * 288, 0.5)
>>> for day in (2, 7, 11):                          # two hours of burst on three days
...     bursty[day * 288 + 100: day * 288 + 124] = 3.0
>>> levels = bootstrap_percentile(np.vstack([steady, bursty]), np.zeros(2, np.int64),
...                               288, 0.99, 14, 64, 0)
>>> low, middle, high = np.quantile(levels, [0.1, 0.5, 0.9], axis=1)
>>> spread = (high - low) / middle
>>> bool(spread[0] < 0.02), bool(spread[1] > 0.2)
(True, True)
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._stats import _select, nan_quantiles_masked

#: the default service level: P99 of 5-minute CPU at most 90 % of capacity
SLO_PERCENTILE = 99.0
SLO_UTILIZATION = 90.0
SLO_PERCENTILES = (90.0, 95.0, 99.0, 99.5)
#: the default probability that the next period keeps the service level
CONFIDENCE = 0.9
BOOTSTRAP_DRAWS = 48


@njit(parallel=True, cache=True)
def bootstrap_percentile(X, start, per_day, q, period_days, draws, seed):
    """``(R, draws)`` quantiles ``q`` of periods of ``period_days`` days drawn with
    replacement from the whole days of each row of ``X`` from column ``start[r]`` on
    (days counted back from the last column; NaN samples skipped). A row with no
    measured day gives NaN."""
    R, T = X.shape
    out = np.full((R, draws), np.nan)
    days_total = T // per_day
    top = int(np.ceil((1.0 - q) * period_days * per_day)) + 2
    for r in prange(R):
        first = T - days_total * per_day
        lo = max(start[r], first)
        # whole days only: day d spans [T - (d + 1) * per_day, T - d * per_day)
        n_days = (T - lo) // per_day
        if n_days == 0:
            continue
        tops = np.full((n_days, top), -np.inf)
        counts = np.zeros(n_days, dtype=np.int64)
        buf = np.empty(per_day)
        used = 0
        for d in range(n_days):
            begin = T - (d + 1) * per_day
            n = 0
            for t in range(begin, begin + per_day):
                v = X[r, t]
                if v == v:
                    buf[n] = v
                    n += 1
            if n == 0:
                continue
            k = min(top, n)
            _select(buf, 0, n - 1, n - k)  # the k largest last, then only they are sorted
            largest = np.sort(buf[n - k: n])
            for j in range(k):
                tops[used, j] = largest[k - 1 - j]
            counts[used] = n
            used += 1
        if used == 0:
            continue
        # every kept value of every day, largest first, with its day
        flat = tops[:used].ravel()
        order = np.argsort(-flat)
        values = flat[order]
        day_of = order // top
        drawn = np.zeros(used, dtype=np.int64)
        state = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(r + 1)
        for b in range(draws):
            drawn[:] = 0
            total = 0
            for _ in range(period_days):
                state, draw = _splitmix(state)
                d = int(draw % np.uint64(used))
                drawn[d] += 1
                total += counts[d]
            # quantile q with linear interpolation, counted from the top: a day drawn
            # k times puts each of its values k times into the period
            from_top = (1.0 - q) * (total - 1)
            hi_rank = int(np.floor(from_top))  # 0 = the largest
            frac = from_top - hi_rank
            upper = -np.inf
            lower = -np.inf
            rank = 0
            for i in range(values.size):
                copies = drawn[day_of[i]]
                if copies == 0 or values[i] == -np.inf:
                    continue
                if upper == -np.inf and rank + copies > hi_rank:
                    upper = values[i]
                if rank + copies > hi_rank + 1:
                    lower = values[i]
                    break
                rank += copies
            if lower == -np.inf:
                lower = upper
            out[r, b] = upper - (upper - lower) * frac
    return out


@njit(cache=True)
def _splitmix(state):
    state = state + np.uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return state, z ^ (z >> np.uint64(31))


def week_over_week_growth(X: np.ndarray, start: np.ndarray, per_day: int, horizon_days: float,
                          min_t: float = 3.0, max_growth: float = 2.0) -> np.ndarray:
    """Projected growth of each row's load over ``horizon_days`` from week-over-week
    ratios (1.0 when not growing).

    Each day's median is compared with the same weekday's a week earlier, so a weekly
    pattern (quiet weekends) cancels out, and the median, unlike a peak, does not jump
    with a heavy day's bursts; the mean log-ratio is a week's growth, accepted when
    positive and significant (``min_t`` standard errors), and projected at that rate
    (at most ``max_growth``). Days before ``start`` or with under 18 measured hours do
    not count.
    """
    R, T = X.shape
    D = T // per_day
    out = np.ones(R)
    if D < 8:
        return out
    offset = T - D * per_day
    days = np.ascontiguousarray(X[:, offset:]).reshape(R * D, per_day)
    measured = np.isfinite(days).sum(axis=1).reshape(R, D)
    middle = nan_quantiles_masked(days, np.zeros(R * D, dtype=np.int64),
                                  np.array([0.5]))[:, 0].reshape(R, D)
    day_start = offset + np.arange(D) * per_day
    ok = ((measured >= 18 * per_day // 24) & (day_start[None, :] >= start[:, None])
          & (middle > 0))
    with np.errstate(all="ignore"):
        ratio = np.log(middle[:, 7:]) - np.log(middle[:, :-7])
    pair = ok[:, 7:] & ok[:, :-7]
    n = pair.sum(axis=1)
    values = np.where(pair, ratio, 0.0)
    with np.errstate(all="ignore"):
        mean = values.sum(axis=1) / n
        var = np.where(pair, (ratio - mean[:, None]) ** 2, 0.0).sum(axis=1) / np.maximum(n - 1, 1)
        t = mean / np.sqrt(var / n)
        growing = (n >= 4) & (mean > 0) & (t >= min_t)
        projected = np.exp(mean / 7.0 * horizon_days)
    return np.where(growing, np.clip(projected, 1.0, max_growth), 1.0)
