"""Agreement with AWS's implementation (krcf, the Rust core of random-cut-forest-by-aws).

On the same series and parameters, forestream's scores must rank the points as krcf's
do: the Spearman correlation between forestream and krcf is at least the correlation
between two krcf forests that differ only in their seed (less a 0.02 allowance).
Seed noise is of the same order as the differences measured, so each correlation is
averaged over two seed pairs.
"""

from __future__ import annotations

import numpy as np
import pytest
from rcf_testkit import noise_with_spikes, noisy_sine, random_walk

from forestream.rcf import RandomCutForest

krcf = pytest.importorskip("krcf")
spearmanr = pytest.importorskip("scipy.stats").spearmanr

pytestmark = pytest.mark.reference

PARAMS = dict(num_trees=100, sample_size=256, shingle_size=4, output_after=64)
SKIP = 300  # compare scores once both forests have a full sample of history
N = 3000


def _krcf_scores(series: np.ndarray, seed: int) -> np.ndarray:
    forest = krcf.RandomCutForest({"dimensions": 1, "random_seed": seed, **PARAMS})
    out = np.empty(len(series))
    for i, v in enumerate(series.tolist()):
        out[i] = forest.score([v])
        forest.update([v])
    return out


def _forestream_scores(series: np.ndarray, seed: int) -> np.ndarray:
    forest = RandomCutForest(dimensions=1, random_seed=seed, **PARAMS)
    return forest.score_and_update(series)


def _rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(spearmanr(a[SKIP:], b[SKIP:]).statistic)


SERIES = {
    "noisy-sine": lambda: noisy_sine(N, seed=1, period=30, noise=0.1),
    "random-walk": lambda: random_walk(N, seed=2),
    "noise-with-spikes": lambda: noise_with_spikes(N, seed=3),
}


@pytest.mark.parametrize("make_series", SERIES.values(), ids=SERIES.keys())
def test_rank_agreement_with_krcf_is_as_high_as_krcf_with_itself(make_series):
    series = make_series()
    ours = {seed: _forestream_scores(series, seed) for seed in (1, 2)}
    theirs = {seed: _krcf_scores(series, seed) for seed in (11, 12, 13, 14)}

    # both report 0 for the same warm-up points: 3 to fill the shingle, then 64 learned
    for scores in (*ours.values(), *theirs.values()):
        assert np.all(scores[:67] == 0.0) and np.all(scores[67:] > 0.0)

    across = np.mean([_rank_correlation(ours[1], theirs[11]),
                      _rank_correlation(ours[2], theirs[12])])
    within = np.mean([_rank_correlation(theirs[11], theirs[12]),
                      _rank_correlation(theirs[13], theirs[14])])
    assert across >= within - 0.02, f"forestream~krcf {across:.4f}, krcf~krcf {within:.4f}"
    # and the scales agree: ordinary points score about the same in both
    assert np.median(ours[1][SKIP:]) == pytest.approx(np.median(theirs[11][SKIP:]), rel=0.15)
