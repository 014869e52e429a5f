"""The scikit-learn face of the forest: estimator checks and SageMaker's shapes."""

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

from forestream.rcf import RandomCutForestEstimator  # noqa: E402


def test_passes_scikit_learn_estimator_checks():
    results = check_estimator(RandomCutForestEstimator(num_trees=20, random_state=0),
                              on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert failed == []


def test_outliers_get_lower_score_samples_and_predict_minus_one():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(2000, 4))
    est = RandomCutForestEstimator(num_trees=50, num_samples_per_tree=128,
                                   random_state=1).fit(X)
    outliers = rng.normal(size=(20, 4)) + 9.0
    assert est.score_samples(outliers).max() < np.percentile(est.score_samples(X), 1)
    assert (est.predict(outliers) == -1).all()
    assert (est.predict(X) == 1).mean() > 0.95


def test_contamination_sets_share_of_training_outliers():
    X = np.random.default_rng(2).normal(size=(1000, 2))
    est = RandomCutForestEstimator(num_trees=30, contamination=0.1, random_state=2).fit(X)
    share = (est.predict(X) == -1).mean()
    assert 0.07 <= share <= 0.13


def test_sagemaker_names_and_inference_output_shape():
    X = np.random.default_rng(3).normal(size=(300, 3))
    est = RandomCutForestEstimator(num_trees=10, num_samples_per_tree=64, feature_dim=3,
                                   random_state=3).fit(X)
    out = est.sagemaker_predict(X[:5])
    assert list(out) == ["scores"]
    assert len(out["scores"]) == 5
    assert all(set(s) == {"score"} and s["score"] > 0 for s in out["scores"])
    np.testing.assert_allclose([s["score"] for s in out["scores"]], est.anomaly_score(X[:5]))


def test_bad_parameters_raise_clear_errors():
    X = np.zeros((50, 3)) + np.arange(50)[:, None]
    with pytest.raises(ValueError, match="feature_dim=2"):
        RandomCutForestEstimator(feature_dim=2).fit(X)
    with pytest.raises(ValueError, match="contamination"):
        RandomCutForestEstimator(contamination=0.9).fit(X)
    with pytest.raises(ValueError, match="num_trees"):
        RandomCutForestEstimator(num_trees=0).fit(X)


def test_a_random_state_object_seeds_the_forest_reproducibly():
    """scikit-learn's random_state may be a RandomState: fit must draw its seed from it
    (it raised TypeError before), and the same state gives the same forest."""
    X = np.random.default_rng(0).normal(size=(200, 2))
    first = RandomCutForestEstimator(num_trees=10, random_state=np.random.RandomState(3))
    second = RandomCutForestEstimator(num_trees=10, random_state=np.random.RandomState(3))
    assert np.array_equal(first.fit(X).score_samples(X), second.fit(X).score_samples(X))
