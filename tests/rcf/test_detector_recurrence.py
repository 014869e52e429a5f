"""Recurring excursions: a spike that comes back every day at the same height (a backup's
CPU spike) is the series' rhythm and stops being reported; an incident that breaks the
rhythm — off schedule, or on schedule at another height — is still reported."""

from __future__ import annotations

import numpy as np
import pytest
from rcf_testkit import detector_as_written_before

from forestream.rcf import ThresholdedDetector, _threshold

_SMALL = dict(num_trees=30, sample_size=128)
_DAY = 288  # 5-minute readings


def _daily_spikes(n: int, seed: int, dims: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A daily cycle with noise and, once a day at the same time, a spike to ~2.5 times
    the usual level; the rows of the spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 10.0 + 2.0 * np.sin(2 * np.pi * t / _DAY) + 0.3 * rng.standard_normal(n)
    spikes = np.arange(200, n, _DAY)
    x[spikes] = 25.0 + 0.5 * rng.standard_normal(len(spikes))
    return (np.column_stack([x] * dims) if dims > 1 else x), spikes


def _alerts(x: np.ndarray, seed: int, **kwargs: float) -> np.ndarray:
    dims = 1 if x.ndim == 1 else x.shape[1]
    _, grades, _ = ThresholdedDetector(dimensions=dims, random_seed=seed, **_SMALL,
                                       **kwargs).grade_batch(x)
    return np.flatnonzero(grades > 0)


@pytest.mark.parametrize("dims", [1, 2])
def test_a_daily_spike_to_the_same_height_stops_being_reported(dims):
    """Without the rule every day's spike alarms; with it the first few do (they are news)
    and, once four have come one period apart, no later one does."""
    for seed in range(2):
        x, spikes = _daily_spikes(4000, seed, dims)
        plain = _alerts(x, seed, recurrence=0.0)
        assert np.isin(spikes, plain).sum() >= len(spikes) - 1, (seed, plain)
        found = _alerts(x, seed)
        assert 1 <= np.isin(found, spikes).sum() <= 4, (seed, found)
        assert np.isin(found, spikes[5:]).sum() == 0, (seed, found)


def test_an_incident_off_the_rhythm_is_still_reported():
    """A spike of the same height between two scheduled ones, and a level shift, after
    the rhythm was learned: both reported, at once."""
    for seed in range(2):
        x, spikes = _daily_spikes(4000, seed)
        x[2350] = 25.0  # the same height, at another time of day
        x[3500:3600] += 6.0
        found = _alerts(x, seed)
        assert 2350 in found, (seed, found)
        assert found[(found >= 3500) & (found < 3504)].size, (seed, found)


def test_a_spike_on_schedule_but_far_higher_is_reported():
    for seed in range(2):
        x, spikes = _daily_spikes(4000, seed)
        x[spikes[10]] = 60.0
        assert spikes[10] in _alerts(x, seed), seed


def test_the_rhythm_survives_a_checkpoint():
    x, _ = _daily_spikes(4000, 5)
    _, expected, _ = ThresholdedDetector(random_seed=5, **_SMALL).grade_batch(x)
    first = ThresholdedDetector(random_seed=5, **_SMALL, recurrence=0.05)
    first.grade_batch(x[:2000])
    restored = ThresholdedDetector.from_bytes(first.to_bytes())
    assert restored.recurrence == 0.05
    assert np.array_equal(restored.grade_batch(x[2000:])[1], expected[2000:])


def test_a_checkpoint_from_before_the_rule_grades_on_as_before():
    """A detector saved before recurring excursions were remembered (no ``recurrence``
    in its header, its grader state ending after the count slot) is read with the rule
    off and goes on grading exactly as it did: every daily spike still alarms."""
    x, spikes = _daily_spikes(4000, 6)
    old = ThresholdedDetector(random_seed=6, **_SMALL, recurrence=0.0)
    old.grade_batch(x[:1000])
    restored = ThresholdedDetector.from_bytes(_before_recurrence(old.to_bytes()))
    assert restored.recurrence == 0.0
    assert len(restored._state) == len(old._state)
    later = restored.grade_batch(x[1000:])[1]
    assert np.array_equal(later, old.grade_batch(x[1000:])[1])
    assert np.isin(spikes[spikes >= 1000] - 1000, np.flatnonzero(later > 0)).sum() >= 9


@pytest.mark.parametrize("value", [-0.1, 1.0, 2, "0.05", True, float("nan")])
def test_a_bad_recurrence_is_refused_with_its_range(value):
    with pytest.raises(ValueError, match=r"recurrence must be a number in \[0, 1\)"):
        ThresholdedDetector(num_trees=5, sample_size=16, recurrence=value)


def _before_recurrence(blob: bytes) -> bytes:
    """The same detector as written before the rule: header without ``recurrence``,
    grader state ending with the count slot."""
    return detector_as_written_before(blob, ("recurrence",), _threshold.count_offset(3, 1) + 1)
