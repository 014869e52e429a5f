"""forestream.rcf — streaming Random Cut Forest anomaly detection.

The core is :class:`RandomCutForest` (score, learn, attribute, impute, forecast,
serialize); :class:`ThresholdedDetector` turns its scores into anomaly grades with
explanations; :class:`RandomCutForestEstimator` is the scikit-learn face.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .detector import AnomalyDescriptor, ThresholdedDetector
from .forest import RandomCutForest
from .results import Attribution, Forecast, Neighbour

if TYPE_CHECKING:
    from .estimator import RandomCutForestEstimator


def __getattr__(name: str) -> type[RandomCutForestEstimator]:
    # scikit-learn is an optional extra: import the estimator only when asked for.
    if name == "RandomCutForestEstimator":
        from .estimator import RandomCutForestEstimator

        return RandomCutForestEstimator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AnomalyDescriptor",
    "Attribution",
    "Forecast",
    "Neighbour",
    "RandomCutForest",
    "RandomCutForestEstimator",
    "ThresholdedDetector",
]
