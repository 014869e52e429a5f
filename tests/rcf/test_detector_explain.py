"""Explanations on demand: limiting them to strong anomalies changes no score or grade."""

import numpy as np

from forestream.rcf import ThresholdedDetector


def test_explain_min_grade_skips_weak_explanations_without_changing_results():
    rng = np.random.default_rng(4)
    x = np.sin(np.arange(3000) / 9) + 0.2 * rng.standard_normal(3000)
    x[1500:1503] += 1.8  # a moderate anomaly
    x[2000] += 6  # a strong one
    full = ThresholdedDetector(random_seed=2).process_batch(x)
    limited = ThresholdedDetector(random_seed=2).process_batch(x, explain_min_grade=0.95)
    assert [(d.index, d.score, d.grade) for d in full] == \
        [(d.index, d.score, d.grade) for d in limited]
    strong = [d for d in limited if d.grade >= 0.95]
    weak = [d for d in limited if 0 < d.grade < 0.95]
    assert strong and weak
    assert all(d.attribution is not None and d.expected_values is not None for d in strong)
    assert all(d.attribution is None and d.kind == "level" for d in weak)
    assert all(d.attribution is not None for d in full if d.is_anomaly)
    assert 2000 in [d.index for d in strong]
