"""How the detector grades: calibrated on noise, one report per incident, stuck inputs,
causality, and checkpoints of the earlier format."""

from pathlib import Path

import numpy as np
import pytest

from forestream.rcf import ThresholdedDetector

# small forests keep these quick; the defaults are what NAB and the quickstart measure
_SMALL = dict(num_trees=30, sample_size=128)


def _daily(n: int, seed: int, noise: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return 20 + 3 * np.sin(2 * np.pi * np.arange(n) / 288) + noise * rng.standard_normal(n)


def test_plain_noise_gives_almost_no_anomalies():
    """Grades are probabilities: a series with nothing in it alarms rarely."""
    found = 0
    for seed in range(3):
        _, grades, _ = ThresholdedDetector(random_seed=seed, **_SMALL).grade_batch(
            _daily(4000, seed))
        found += int((grades > 0).sum())
    assert found <= 3


def test_a_level_shift_is_reported_once_not_for_every_reading():
    x = _daily(3000, 1)
    x[2000:2300] += 4.0
    found = [d for d in ThresholdedDetector(random_seed=1, **_SMALL).process_batch(x)
             if d.is_anomaly]
    inside = [d.index for d in found if 2000 <= d.index < 2300]
    assert inside and inside[0] <= 2020
    assert len(inside) <= 2
    assert all(d.kind in ("level", "shape") for d in found)


def test_a_sensor_stuck_inside_its_normal_range_is_found():
    x = _daily(3000, 2)
    x[2100:2200] = x[2100]  # frozen at an ordinary value
    found = [d for d in ThresholdedDetector(random_seed=2, **_SMALL).process_batch(x)
             if d.is_anomaly]
    stuck = [d for d in found if d.kind == "stuck"]
    assert [d.index for d in stuck] == [2105]  # after stuck_after=5 repeats, once
    assert stuck[0].dimension == 0 and stuck[0].relative_index == 0
    assert stuck[0].grade == 1.0 and stuck[0].expected_values is not None


def test_constant_and_often_repeating_series_are_not_stuck():
    flat = np.full(2000, 7.0)
    _, grades, _ = ThresholdedDetector(random_seed=1, **_SMALL).grade_batch(flat)
    assert not grades.any()
    # a discrete series that stands still for up to 40 readings at a time
    rng = np.random.default_rng(3)
    steps = np.repeat(rng.integers(0, 5, 300), rng.integers(1, 41, 300))[:3000]
    found = [d for d in ThresholdedDetector(random_seed=1, **_SMALL).process_batch(steps)
             if d.kind == "stuck"]
    assert not found
    steps = steps.astype(float)
    steps[1500:] = steps[1500]  # far longer than ever before: it takes a while to tell
    found = [d for d in ThresholdedDetector(random_seed=1, **_SMALL).process_batch(steps)
             if d.kind == "stuck"]
    assert len(found) == 1 and 1500 < found[0].index < 2500


def test_only_one_column_needs_to_stick():
    rng = np.random.default_rng(4)
    X = np.column_stack([_daily(2500, 4), 50 + rng.standard_normal(2500)])
    X[2000:2100, 1] = X[2000, 1]
    found = [d for d in ThresholdedDetector(dimensions=2, random_seed=4, **_SMALL)
             .process_batch(X) if d.kind == "stuck"]
    assert [(d.index, d.dimension) for d in found] == [(2005, 1)]


def test_an_incident_does_not_raise_the_bar_for_the_next_one():
    """The distribution of scores is that of ordinary inputs: an incident's extreme
    scores are learned only up to ``clip`` deviations, so the score needed to alert
    afterwards stays where it was (a second, smaller incident is not hidden)."""
    for seed in range(3):
        x = _daily(3000, seed)
        x[2000:2020] -= 15.0  # a deep 20-reading incident
        before_after = {}
        for clip in (6.0, 0.0):
            _, grades, bar = ThresholdedDetector(random_seed=seed, clip=clip,
                                                 **_SMALL).grade_batch(x)
            assert grades[2000] > 0
            before_after[clip] = bar[2100] / bar[1990]
        assert before_after[6.0] < 1.04
        assert before_after[0.0] > 1.08  # unclipped, the incident widens the distribution


def test_clip_is_kept_in_a_checkpoint():
    detector = ThresholdedDetector(num_trees=5, sample_size=16, random_seed=1, clip=2.5)
    assert ThresholdedDetector.from_bytes(detector.to_bytes()).clip == 2.5
    assert ThresholdedDetector(num_trees=5, sample_size=16).clip == 6.0


def test_grades_are_causal():
    """Each input is graded before it is learned: what comes later changes nothing."""
    x = _daily(2000, 5)
    x[1500] += 8
    whole = ThresholdedDetector(random_seed=5, **_SMALL).grade_batch(x)
    prefix = ThresholdedDetector(random_seed=5, **_SMALL).grade_batch(x[:1501])
    for a, b in zip(whole, prefix, strict=True):
        assert np.array_equal(a[:1501], b)
    assert whole[1][1500] > 0


def test_format_1_checkpoints_are_read_and_go_on_grading():
    """A detector saved before the grader changed (FSTRD\\x01) keeps its forests and
    grades on at once from its old score statistics."""
    blob = (Path(__file__).parent / "data" / "detector_format1.bin").read_bytes()
    assert blob.startswith(b"FSTRD\x01")
    detector = ThresholdedDetector.from_bytes(blob)
    assert detector.forest.points_seen == 397 and detector.level_forest is not None
    x = 5 + np.sin(np.arange(400, 700) / 6)
    x[200:203] += 6
    found = [d for d in detector.process_batch(x) if d.is_anomaly]
    assert found and found[0].index in (600, 601, 602)
    again = ThresholdedDetector.from_bytes(detector.to_bytes())
    assert again.to_bytes().startswith(b"FSTRD\x02")
    assert again.to_bytes() == detector.to_bytes()


def test_a_grader_state_of_the_wrong_size_is_refused():
    blob = ThresholdedDetector(num_trees=5, sample_size=16, random_seed=1).to_bytes()
    other = ThresholdedDetector(dimensions=2, num_trees=5, sample_size=16,
                                random_seed=1).to_bytes()
    # the forests of a 1-d detector with the grader of a 2-d one
    header = 6 + 4 + int.from_bytes(blob[6:10], "little")
    pos = header
    for _ in range(2):
        pos += 8 + int.from_bytes(blob[pos : pos + 8], "little")
    o_pos = 6 + 4 + int.from_bytes(other[6:10], "little")
    for _ in range(2):
        o_pos += 8 + int.from_bytes(other[o_pos : o_pos + 8], "little")
    with pytest.raises(ValueError, match="grader state"):
        ThresholdedDetector.from_bytes(blob[:pos] + other[o_pos:])
