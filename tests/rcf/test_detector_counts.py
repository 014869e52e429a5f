"""Count series (tweets or events per interval: non-negative integers reaching zero): one
interval's burst is ordinary noise there, a rise that lasts is an incident; whether a
series is a count is learned from its inputs."""

from __future__ import annotations

import numpy as np
import pytest
from rcf_testkit import detector_as_written_before

from forestream.rcf import ThresholdedDetector, _threshold

_SMALL = dict(num_trees=30, sample_size=128)


def _counts(n: int, seed: int) -> np.ndarray:
    """5-minute counts on a daily cycle: negative-binomial noise (heavy-tailed, as counts
    of people are) and, every ~350 rows, an ordinary burst of one interval (2.5-4 times
    the usual count)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    rate = 20.0 + 15.0 * np.sin(2 * np.pi * t / 288)
    every = np.arange(600, n, 350)
    bursts = every + rng.integers(-40, 40, len(every))
    rate[bursts] *= rng.uniform(2.5, 4.0, len(bursts))
    return rng.negative_binomial(3.0, 3.0 / (3.0 + rate)).astype(float)


def _alerts(x: np.ndarray, seed: int, **kwargs: float) -> np.ndarray:
    _, grades, _ = ThresholdedDetector(random_seed=seed, **_SMALL, **kwargs).grade_batch(x)
    return np.flatnonzero(grades > 0)


def test_an_ordinary_count_series_alarms_less_with_the_count_rule():
    """Heavy-tailed noise and bursts of one interval, no incident: taken as any series,
    the detector alarms on them now and then; graded as counts, far less often."""
    plain = sum(_alerts(_counts(6000, seed), seed, burst_discount=0.0).size
                for seed in range(3))
    counted = sum(_alerts(_counts(6000, seed), seed).size for seed in range(3))
    assert plain >= 12
    assert counted <= 0.7 * plain


def test_a_lasting_rise_of_a_count_series_is_still_found_at_once():
    for seed in range(3):
        x = _counts(6000, seed)
        rng = np.random.default_rng(100 + seed)
        x[5000:5060] += rng.poisson(150.0, 60)  # an hour's surge, several times the peak
        found = _alerts(x, seed)
        inside = found[(found >= 5000) & (found < 5060)]
        assert inside.size and inside[0] <= 5003, (seed, found)


def test_integer_measurements_that_never_reach_zero_are_not_counts():
    """Speeds in mph, travel times in seconds: integers, but a step's first high score
    is often its only one there, so the count rule stays off until a zero is seen."""
    x = _counts(3000, 8) + 40.0
    assert np.array_equal(_alerts(x, 8), _alerts(x, 8, burst_discount=0.0))
    detector = ThresholdedDetector(random_seed=8, **_SMALL)
    detector.grade_batch(x)
    assert not _threshold.is_count_series(detector._state, 3, 1)
    detector.grade_batch(np.array([0.0]))
    assert _threshold.is_count_series(detector._state, 3, 1)


def test_series_with_fractions_or_negatives_are_not_counts():
    """One fraction or one negative value and the series is graded as any other (the
    same grades as with the count rule switched off), from then on."""
    x = _counts(3000, 7)
    for other in (x + 0.5, x - 1000.0):
        assert np.array_equal(_alerts(other, 7), _alerts(other, 7, burst_discount=0.0))
    late = x.copy()
    late[1000] += 0.25  # a count until row 1000, then never again
    detector = ThresholdedDetector(random_seed=7, **_SMALL)
    detector.grade_batch(late[:1000])
    assert _threshold.is_count_series(detector._state, 3, 1)
    detector.grade_batch(late[1000:])
    assert not _threshold.is_count_series(detector._state, 3, 1)


def test_the_count_rule_survives_a_checkpoint():
    x = _counts(4000, 3)
    whole = ThresholdedDetector(random_seed=3, **_SMALL)
    first = ThresholdedDetector(random_seed=3, **_SMALL, burst_discount=0.25)
    _, expected, _ = ThresholdedDetector(random_seed=3, **_SMALL,
                                         burst_discount=0.25).grade_batch(x)
    first.grade_batch(x[:2000])
    restored = ThresholdedDetector.from_bytes(first.to_bytes())
    assert restored.burst_discount == 0.25
    assert np.array_equal(restored.grade_batch(x[2000:])[1], expected[2000:])
    assert whole.burst_discount == 0.8


def test_a_checkpoint_from_before_the_count_rule_grades_on_as_before():
    """A format-2 detector saved before series were told apart as counts (its grader
    state one number short, no ``burst_discount`` in its header) goes on exactly as it
    did: not a count series."""
    x = _counts(4000, 4)
    old = ThresholdedDetector(random_seed=4, **_SMALL, burst_discount=0.0, recurrence=0.0)
    old.grade_batch(x[:2000])
    blob = _without_count_rule(old.to_bytes())
    restored = ThresholdedDetector.from_bytes(blob)
    assert len(restored._state) == len(old._state)
    assert np.array_equal(restored.grade_batch(x[2000:])[1], old.grade_batch(x[2000:])[1])


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, "0.2", True, float("nan")])
def test_a_bad_burst_discount_is_refused_with_its_range(value):
    with pytest.raises(ValueError, match=r"burst_discount must be a number in \[0, 1\)"):
        ThresholdedDetector(num_trees=5, sample_size=16, burst_discount=value)


def _without_count_rule(blob: bytes) -> bytes:
    """The same detector as written before the count rule: header without
    ``burst_discount`` (nor ``recurrence``, which came later), grader state ending
    before the count slot."""
    return detector_as_written_before(blob, ("burst_discount", "recurrence"),
                                      _threshold.count_offset(3, 1))
