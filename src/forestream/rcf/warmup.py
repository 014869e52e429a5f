"""Compile the RCF kernels ahead of use.

The kernels are numba functions compiled on first use and cached on disk (``cache=True``).
On a fresh install the first use costs tens of seconds: a streaming job that compiled on
its first records would start that far behind its input. :func:`warm_up` runs every
kernel once on a tiny forest and detector — the threaded and the serial batch paths, the
per-record step, attribution, neighbours, imputation, forecasting and the thresholder —
so that later processes load them from the cache in well under a second.
``make quickstart`` and ``make test`` run it once after installing
(``python -m forestream.rcf.warmup``), and application workers run it before they report
RUNNING.

>>> seconds = warm_up()
>>> seconds >= 0
True
"""

from __future__ import annotations

import time

import numpy as np

from . import forest as forest_module
from .detector import ThresholdedDetector
from .forest import RandomCutForest


def warm_up() -> float:
    """Compile (or load from the cache) every kernel; returns the seconds it took."""
    started = time.perf_counter()
    rng = np.random.default_rng(0)
    points = rng.normal(size=(64, 2))
    forest = RandomCutForest(dimensions=2, num_trees=4, sample_size=16, shingle_size=1,
                             random_seed=1)
    choose = forest_module._parallel_pays
    try:  # both batch kernels, whatever the machine's load is now
        for parallel in (True, False):
            forest_module._parallel_pays = lambda rows, p=parallel: p  # type: ignore[misc]
            forest.score_and_update(points)
    finally:
        forest_module._parallel_pays = choose
    forest.update(points[0])
    forest.score(points[1])
    forest.attribution(points[2])
    forest.near_neighbours(points[3])
    forest.impute(np.array([np.nan, 0.5]))
    shingled = RandomCutForest(dimensions=1, num_trees=4, sample_size=16, shingle_size=4,
                               random_seed=1)
    shingled.score_and_update(rng.normal(size=(32, 1)))
    shingled.forecast(2)
    detector = ThresholdedDetector(dimensions=1, num_trees=4, sample_size=16, shingle_size=4,
                                   random_seed=1)
    detector.process_batch(rng.normal(size=(48, 1)))
    for value in rng.normal(size=4):
        detector.process(np.array([value]))
    return time.perf_counter() - started


if __name__ == "__main__":
    print(f"RCF kernels ready in {warm_up():.1f} s")
