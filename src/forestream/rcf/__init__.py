"""forestream.rcf — streaming Random Cut Forest anomaly detection.

The core is :class:`RandomCutForest` (score, learn, attribute, impute, forecast,
serialize); :class:`ThresholdedDetector` turns its scores into anomaly grades with
explanations; :class:`RandomCutForestEstimator` is the scikit-learn face.
"""

from .detector import AnomalyDescriptor, ThresholdedDetector
from .forest import RandomCutForest
from .results import Attribution, Forecast, Neighbour

__all__ = [
    "AnomalyDescriptor",
    "Attribution",
    "Forecast",
    "Neighbour",
    "RandomCutForest",
    "ThresholdedDetector",
]
