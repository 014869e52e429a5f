"""The batch face of the forest: a scikit-learn outlier detector with SageMaker's names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.utils.validation import check_is_fitted

from .forest import RandomCutForest

if TYPE_CHECKING:
    from typing import Any, Literal, Self

    import numpy.typing as npt
    from sklearn.utils import Tags

    from ._jit import Float64Array

    def validate_data(_estimator: BaseEstimator, /, X: npt.ArrayLike, *,
                      dtype: type[np.float64], reset: bool = ...,
                      ensure_min_samples: int = ...) -> Float64Array:
        """scikit-learn's ``validate_data`` as used here (scikit-learn ships no types):
        checks ``X`` and returns it as a float64 array."""
        ...

else:
    from sklearn.utils.validation import validate_data


# scikit-learn ships no type information, so to mypy its base classes are Any
class RandomCutForestEstimator(OutlierMixin, BaseEstimator):  # type: ignore[misc]
    """Random Cut Forest as a scikit-learn estimator (like SageMaker's built-in RCF).

    ``fit`` gives every tree its own uniform random sample of ``num_samples_per_tree``
    training rows (a reservoir over the rows in random order), which is how SageMaker's
    batch RCF trains. ``score_samples`` follows scikit-learn's convention — higher is
    more normal — so it is the *negated* anomaly score; :meth:`anomaly_score` gives the
    RCF score itself and :meth:`sagemaker_predict` SageMaker's inference output shape.

    Parameters
    ----------
    num_trees
        Trees in the forest (SageMaker's name; 50–1000 there).
    num_samples_per_tree
        Rows sampled per tree (SageMaker's name; 1–2048 there).
    feature_dim
        Expected number of features (SageMaker's name); ``None`` takes it from ``fit``.
    contamination
        ``"auto"``: an anomaly scores more than 3 standard deviations above the mean
        training score (SageMaker's recommended cut); or a float in (0, 0.5]: the share
        of training rows treated as anomalies.
    random_state
        Seed for reproducible forests.

    Examples
    --------
    >>> import numpy as np
    >>> from forestream.rcf import RandomCutForestEstimator
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1000, 3))
    >>> est = RandomCutForestEstimator(num_trees=50, random_state=0).fit(X)
    >>> est.predict([[0.0, 0.0, 0.0], [8.0, -8.0, 8.0]]).tolist()
    [1, -1]
    >>> sorted(est.sagemaker_predict([[0.0, 0.0, 0.0]])["scores"][0])
    ['score']
    """

    def __init__(self, num_trees: int = 100, num_samples_per_tree: int = 256,
                 feature_dim: int | None = None, contamination: Literal["auto"] | float = "auto",
                 random_state: int | np.integer[Any] | np.random.RandomState
                 | np.random.Generator | None = None) -> None:
        self.num_trees = num_trees
        self.num_samples_per_tree = num_samples_per_tree
        self.feature_dim = feature_dim
        self.contamination = contamination
        self.random_state = random_state

    def fit(self, X: npt.ArrayLike, y: object = None) -> Self:
        """Build the forest from the rows of ``X`` (``y`` is ignored)."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=2)
        if self.feature_dim is not None and self.feature_dim != X.shape[1]:
            raise ValueError(f"feature_dim={self.feature_dim} but X has {X.shape[1]} features")
        auto = isinstance(self.contamination, str) and self.contamination == "auto"
        share = isinstance(self.contamination, (int, float)) and \
            0.0 < self.contamination <= 0.5
        if not (auto or share):
            raise ValueError("contamination must be 'auto' or a float in (0, 0.5], "
                             f"got {self.contamination!r}")
        seed = self.random_state
        if seed is None or isinstance(seed, (int, np.integer)):
            rng = np.random.default_rng(seed)
        elif isinstance(seed, np.random.RandomState):  # as scikit-learn allows: draw a seed
            rng = np.random.default_rng(seed.randint(2**31))
        else:  # a Generator
            rng = np.random.default_rng(seed)
        sample = min(int(self.num_samples_per_tree), len(X))
        self.forest_ = RandomCutForest(
            dimensions=X.shape[1], num_trees=int(self.num_trees), sample_size=max(sample, 2),
            time_decay=0.0, output_after=0, random_seed=int(rng.integers(2**62)))
        # Each tree's reservoir over a random order of the rows is a uniform sample of
        # them; streaming more than ~20 samples' worth adds nothing but time.
        order = rng.permutation(len(X))[: max(20 * sample, 2)]
        self.forest_.update_many(X[order])
        train = self.anomaly_score(X)
        if isinstance(self.contamination, str):
            cut = train.mean() + 3.0 * train.std()
        else:
            cut = np.percentile(train, 100.0 * (1.0 - self.contamination))
        self.offset_: float = -cut
        return self

    def anomaly_score(self, X: npt.ArrayLike) -> Float64Array:
        """The RCF anomaly score of each row (≈1 ordinary, up to log2(sample size))."""
        check_is_fitted(self, "forest_")
        X = validate_data(self, X, dtype=np.float64, reset=False)
        return self.forest_.score_points(X)

    def score_samples(self, X: npt.ArrayLike) -> Float64Array:
        """Opposite of the anomaly score: the lower, the more abnormal (scikit-learn's way)."""
        return -self.anomaly_score(X)

    def decision_function(self, X: npt.ArrayLike) -> Float64Array:
        """Negative for outliers, non-negative for inliers."""
        return self.score_samples(X) - self.offset_

    def predict(self, X: npt.ArrayLike) -> npt.NDArray[np.int_]:
        """+1 for inliers, -1 for outliers."""
        return np.where(self.decision_function(X) >= 0.0, 1, -1)

    def sagemaker_predict(self, X: npt.ArrayLike) -> dict[str, list[dict[str, float]]]:
        """SageMaker RCF's inference response: ``{"scores": [{"score": s}, ...]}``."""
        return {"scores": [{"score": float(s)} for s in self.anomaly_score(X)]}

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags
