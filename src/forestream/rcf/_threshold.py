"""The adaptive threshold behind :class:`forestream.rcf.ThresholdedDetector`, in numba.

The thresholder sees only the stream of raw forest scores, so it runs over a whole
batch of scores in one compiled loop. Its state is a small float array, which makes it
trivially checkpointed and rewound.

Per score ``r`` (0 while the forest warms up, and then ignored):
- a running mean ``μ`` and deviation ``σ`` of recent scores (exponentially weighted over
  ``horizon`` scores; a score above the threshold enters them clipped at the threshold,
  so an incident does not raise the bar for its own continuation);
- threshold ``τ = μ + z_factor · σ``, with ``σ`` floored at ``min_deviation`` (a
  perfectly regular series would otherwise flag the faintest wobble);
- above the threshold, grade ``min(1, r / max_score)`` — the score as a fraction of the
  largest score a forest can give, ``log2(sample_size)`` — so grades rank events by
  their strength on one scale across series; 0 below the threshold;
- repeats of one event are suppressed: for ``refractory`` points after a reported
  point (at least the shingle, which still holds the anomalous input) a new report
  needs a score above the last reported one.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._jit import njit

if TYPE_CHECKING:
    from ._jit import Float64Array

# state slots
MEAN = 0
VAR = 1
COUNT = 2
SINCE_FLAG = 3
LAST_FLAG_SCORE = 4
STATE_SIZE = 5

# parameter slots
Z_FACTOR = 0
HORIZON = 1
WARMUP = 2
MIN_DEVIATION = 3
MAX_SCORE = 4
REFRACTORY = 5
PARAM_SIZE = 6


def initial_state() -> Float64Array:
    state = np.zeros(STATE_SIZE)
    state[SINCE_FLAG] = np.inf
    return state


@njit(cache=True, nogil=True)
def threshold_scores(scores: Float64Array, params: Float64Array, state: Float64Array,
                     grades: Float64Array, thresholds: Float64Array) -> None:
    """Grade each score in order, updating ``state``; fills ``grades`` and ``thresholds``."""
    z_factor = params[Z_FACTOR]
    alpha = 1.0 / params[HORIZON]
    warmup = params[WARMUP]
    floor = params[MIN_DEVIATION]
    max_score = params[MAX_SCORE]
    refractory = params[REFRACTORY]
    for i in range(scores.shape[0]):
        r = scores[i]
        grades[i] = 0.0
        if r <= 0.0:
            thresholds[i] = 0.0
            continue
        mean = state[MEAN]
        deviation = max(math.sqrt(max(state[VAR], 0.0)), floor)
        threshold = mean + z_factor * deviation
        state[SINCE_FLAG] += 1.0
        if state[COUNT] >= warmup:
            thresholds[i] = threshold
            if r > threshold:
                repeat = state[SINCE_FLAG] <= refractory and r <= state[LAST_FLAG_SCORE]
                if not repeat:
                    grades[i] = min(1.0, r / max_score)
                    state[SINCE_FLAG] = 0.0
                    state[LAST_FLAG_SCORE] = r
        else:
            thresholds[i] = 0.0
        # learn the score, clipped at the threshold once the statistics are warm
        x = min(r, threshold) if state[COUNT] >= warmup else r
        state[COUNT] += 1.0
        weight = max(alpha, 1.0 / state[COUNT])
        delta = x - mean
        state[MEAN] = mean + weight * delta
        state[VAR] = (1.0 - weight) * (state[VAR] + weight * delta * delta)
