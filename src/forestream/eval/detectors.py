"""Named detectors that the NAB runner and ``forestream rcf nab`` can run.

Each entry maps a name to a function ``NabFile -> scores in [0, 1]``, computed causally
(each row scored before it is learned).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from forestream.rcf import RandomCutForest, ThresholdedDetector

from .corpus import NabFile


def forestream_detector(nab_file: NabFile, random_seed: int = 1) -> np.ndarray:
    """forestream's ThresholdedDetector with its defaults; the grade is the score."""
    detector = ThresholdedDetector(random_seed=random_seed)
    _, grades, _ = detector.grade_batch(nab_file.values)
    return grades


def kinesis_rcf_detector(nab_file: NabFile, random_seed: int = 1) -> np.ndarray:
    """AWS's NAB entry re-created: RANDOM_CUT_FOREST with Kinesis Analytics defaults
    (100 trees, sample 256, timeDecay 100000, shingle 1), score / 8, clipped to [0, 1]."""
    forest = RandomCutForest(dimensions=1, shingle_size=1, num_trees=100, sample_size=256,
                             time_decay=1.0 / 100_000, random_seed=random_seed)
    return np.clip(forest.score_and_update(nab_file.values) / 8.0, 0.0, 1.0)


DETECTORS: dict[str, Callable[[NabFile], np.ndarray]] = {
    "forestream": forestream_detector,
    "rcf_kinesis": kinesis_rcf_detector,
}
