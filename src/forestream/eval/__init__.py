"""NAB (Numenta Anomaly Benchmark) evaluation: load the corpus, run a detector, score it.

Typical use::

    corpus = load_corpus("../shared/datasets/nab")
    scores = run_detector(lambda f: my_detector(f.values), corpus, out_dir="nab-results")
    report = score_corpus(scores, corpus)
    rich.print(report.table())

The scorer follows numenta/NAB's reference sweeper (windows from the labels file,
probationary period, scaled-sigmoid weights, one corpus-wide threshold per profile, and
normalisation against the null and perfect detectors); see :mod:`forestream.eval.nab`.
"""

from .corpus import NabFile, load_corpus, read_nab_csv
from .detectors import DETECTORS
from .nab import (
    NO_DETECTION_THRESHOLD,
    PROBATION_PERCENT,
    PROFILES,
    CostWeights,
    probation_length,
    scaled_sigmoid,
    score_corpus,
    threshold_curve,
)
from .report import NabReport, ProfileResult
from .runner import read_results, results_path, run_detector, write_results

__all__ = [
    "DETECTORS",
    "NO_DETECTION_THRESHOLD",
    "PROBATION_PERCENT",
    "PROFILES",
    "CostWeights",
    "NabFile",
    "NabReport",
    "ProfileResult",
    "load_corpus",
    "probation_length",
    "read_nab_csv",
    "read_results",
    "results_path",
    "run_detector",
    "scaled_sigmoid",
    "score_corpus",
    "threshold_curve",
    "write_results",
]
