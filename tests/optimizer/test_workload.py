"""Workload analysis: classes, regime shifts, trends, one-off spikes versus recurring peaks."""

from __future__ import annotations

import numpy as np
import pytest

from forestream.optimizer.workload import (
    analyze,
    hourly_stats,
    nan_quantiles,
    regime_starts,
    trend_growth,
)

PER_HOUR = 12
DAYS = 14
HOURS = np.arange(DAYS * 24 * PER_HOUR) / PER_HOUR


def _noise(seed: int, scale: float = 0.03) -> np.ndarray:
    return 1 + scale * np.random.default_rng(seed).standard_normal(HOURS.size)


def _shapes() -> dict[str, np.ndarray]:
    day_phase = np.sin(np.pi * (HOURS % 24) / 24) ** 4
    weekday = (HOURS // 24) % 7 < 5
    rng = np.random.default_rng(5)
    bursty = np.full(HOURS.size, 0.3)
    for start in rng.choice(HOURS.size - 6, 60, replace=False):
        bursty[start:start + rng.integers(1, 6)] = 2.5
    return {
        "idle": np.full(HOURS.size, 0.04) * _noise(1),
        "steady": np.full(HOURS.size, 2.0) * _noise(2),
        "diurnal": (0.5 + 2.0 * day_phase) * _noise(3),
        "weekly": (0.5 + 2.0 * day_phase * np.where(weekday, 1.0, 0.2)) * _noise(4),
        "bursty": bursty,
        "trending": (1.0 + 0.08 * HOURS / 24) * (1 + 0.3 * day_phase) * _noise(6),
    }


def test_workload_classes_of_canonical_shapes():
    shapes = _shapes()
    demand = np.vstack(list(shapes.values()))
    result = analyze(demand, capacity=np.full(len(shapes), 4.0))
    got = dict(zip(shapes, result.workload_class.tolist(), strict=True))
    assert got == {"idle": "idle", "steady": "steady", "diurnal": "diurnal",
                   "weekly": "diurnal", "bursty": "bursty", "trending": "trending"}
    periods = dict(zip(shapes, result.period_hours.tolist(), strict=True))
    assert periods["diurnal"] == 24 and periods["weekly"] == 168
    assert periods["steady"] == 0


def test_memory_leak_makes_the_workload_trending_and_projects_growth():
    cpu = np.full((1, HOURS.size), 1.0) * _noise(7)
    leak = (4.0 * (1 + 0.03 * HOURS / 24))[None, :]
    result = analyze(cpu, capacity=np.array([4.0]), memory=leak, horizon_days=7)
    assert result.workload_class[0] == "trending"
    # linear growth of 3 %/day of the start level, seen from day 13.5: about +15 % in 7 days
    assert result.mem_growth[0] == pytest.approx(1 + 0.21 / 1.405, rel=0.03)
    assert result.growth[0] == 1.0


def test_a_lasting_step_is_a_regime_shift_and_a_weekend_dip_is_not():
    step = np.where(HOURS < 100, 3.0, 1.0) * _noise(8)
    weekly = _shapes()["weekly"]
    hourly_mean = hourly_stats(np.vstack([step, weekly]), PER_HOUR)[1]
    starts = regime_starts(hourly_mean)
    assert 100 <= starts[0] <= 110  # the step, plus the guard hours
    assert starts[1] == 0


def test_a_step_up_after_an_earlier_step_down_is_the_latest_regime():
    # a deploy that halved the load on day 3 and doubled it again on day 8: the left side
    # of the last step is uneven as a whole, but the two days before it are flat
    level = np.select([HOURS < 3 * 24, HOURS < 8 * 24], [1.4, 0.7], 1.5)
    x = level * (1 + 0.3 * np.sin(np.pi * (HOURS % 24) / 24) ** 2) * _noise(12)
    hourly_mean = hourly_stats(x[None, :], PER_HOUR)[1]
    assert 8 * 24 <= regime_starts(hourly_mean)[0] <= 8 * 24 + 10


def test_a_local_step_down_before_quiet_days_is_not_taken_for_a_regime():
    # busy for four days, quiet for the last five, after an uneven start: a step down
    # judged only against the days before it could be a weekly cycle's busy weekend, so
    # the sizing keeps the whole lookback (sizing on the quiet days alone could be unsafe);
    # the same rule taken both ways would start the regime on day 9
    level = np.select([HOURS < 5 * 24, HOURS < 9 * 24], [1.7, 2.6], 1.0)
    x = level * _noise(13)
    hourly_mean = hourly_stats(x[None, :], PER_HOUR)[1]
    assert regime_starts(hourly_mean)[0] == 0


def test_a_quiet_weekend_before_busy_weekdays_of_a_growing_load_is_not_a_step():
    # 14 days ending on a Thursday: the last weekend is quiet, the three weekdays after
    # it busy, the weekdays before it as busy: a weekly cycle, and the growth must stay
    # measured over both weeks
    day = HOURS // 24
    weekend = ((day + 3) % 7) >= 5  # day 0 is a Thursday
    x = np.where(weekend, 0.4, 1.0) * (1 + 0.02 * day) * _noise(14)
    hourly_mean = hourly_stats(x[None, :], PER_HOUR)[1]
    assert regime_starts(hourly_mean)[0] == 0


def test_a_trend_is_not_a_step_up_from_the_days_before_it():
    trending = _shapes()["trending"]
    hourly_mean = hourly_stats(trending[None, :], PER_HOUR)[1]
    assert regime_starts(hourly_mean)[0] == 0


def test_a_step_in_a_lookback_shorter_than_the_window_is_still_a_regime_shift():
    # 12 days of a diurnal load stepping up 5 days in, laid on a 14-day window (the
    # first two days unmeasured): the unmeasured days must not look like a third level
    daily = 1 + 0.4 * np.sin(np.pi * (HOURS % 24) / 24) ** 2
    x = np.where(HOURS < 48 + 5 * 24, 1.0, 2.0) * daily * _noise(11)
    x[HOURS < 48] = np.nan
    hourly_mean = hourly_stats(x[None, :], PER_HOUR)[1]
    assert 48 + 5 * 24 <= regime_starts(hourly_mean)[0] <= 48 + 5 * 24 + 10


def test_a_partial_day_or_three_noisy_days_are_not_a_trend():
    hourly = np.full((2, DAYS * 24), np.nan)
    hourly[0, -52:] = 9.0  # a regime of 52 hours: a 4-hour day, then two whole days
    hourly[0, -52:-48] = 7.0  # a partial day's peak is lower
    hourly[1, -72:] = np.repeat([10.0, 10.8, 10.9], 24)  # three days, R² 0.81
    growth = trend_growth(hourly, 7.0)
    assert growth[0] == 1.0 and growth[1] == 1.0  # three points: R² >= 0.976 needed
    hourly[1, -72:] = np.repeat([10.0, 10.4, 10.8], 24)  # a clean line is a trend
    assert trend_growth(hourly, 7.0)[1] > 1.2


def test_trend_growth_is_one_without_a_trend():
    flat = np.full((1, DAYS * 24), 2.0) * np.random.default_rng(9).uniform(0.9, 1.1, DAYS * 24)
    assert trend_growth(flat, 7.0)[0] == 1.0


def _with_spikes(recurring: bool) -> np.ndarray:
    base = (1.0 + 0.5 * np.sin(np.pi * (HOURS % 24) / 24) ** 2) * _noise(10, 0.02)
    if recurring:  # a nightly batch job at 02:00 for 90 minutes, every day
        base = np.where((HOURS % 24 >= 2) & (HOURS % 24 < 3.5), 3.5, base)
    else:  # one 3-hour incident on day 5 at 03:00
        base = np.where((HOURS >= 5 * 24 + 3) & (HOURS < 5 * 24 + 6), 3.5, base)
    return base


def test_a_one_off_incident_is_left_out_of_sizing_but_a_recurring_peak_is_kept():
    demand = np.vstack([_with_spikes(False), _with_spikes(True)])
    result = analyze(demand, capacity=np.array([4.0, 4.0]))
    incident_hours = np.flatnonzero(result.spike_mask[0])
    assert set(incident_hours) == {5 * 24 + 3, 5 * 24 + 4, 5 * 24 + 5}
    assert result.spike_hours[1] == 0  # the nightly job comes back every day


def test_frequent_bursts_are_load_not_spikes():
    result = analyze(_shapes()["bursty"][None, :], capacity=np.array([4.0]))
    assert result.spike_hours[0] == 0


def test_nan_quantiles_match_numpy_and_skip_missing_samples():
    rng = np.random.default_rng(11)
    x = rng.random((5, 500))
    x[0, ::7] = np.nan
    got = nan_quantiles(x, [0.5, 0.9, 0.995])
    want = np.nanquantile(x, [0.5, 0.9, 0.995], axis=1).T
    np.testing.assert_allclose(got, want)
    assert np.isnan(nan_quantiles(np.full((1, 4), np.nan), [0.5])[0, 0])
