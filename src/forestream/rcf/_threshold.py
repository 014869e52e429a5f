"""The grading behind :class:`forestream.rcf.ThresholdedDetector`, in numba.

The grader sees, per input, the raw scores of the detector's two forests (the *level*
forest over the newest input, the *shape* forest over the shingle) and the input's
values. It runs over a whole batch in one compiled loop; its state is one small float
array (a few dozen numbers), so it is trivially copied, checkpointed and rewound.

Per forest ("stream"), an anomaly *likelihood* in the manner of Numenta's HTM detector
(Ahmad et al. 2017): the average of the last ``averaging`` raw scores is compared with
the distribution of such averages seen so far on this series — an exponentially
weighted mean and deviation over ``horizon`` averages, the deviation floored at
``min_deviation_ratio`` times the mean so that a very regular series is not flagged for
a wobble — and turned into a Gaussian tail probability ``p``. An average more than
``clip`` deviations above the mean is learned as if it were ``clip`` deviations above
(winsorised): the distribution is that of *ordinary* scores, so one incident's run of
extreme averages does not widen it for the next ``horizon`` inputs and hide a second,
smaller incident (a second jam on a road, a second fault on a machine). In a *count*
series — every input so far a non-negative integer, zero among them: tweets or events
per interval, whose level goes low enough that their noise is large beside it — the
largest of the ``averaging`` recent raw scores counts only ``1 - burst_discount`` as
much as the others: such counts are bursty and heavy-tailed, one interval's burst is
ordinary noise there, and what marks an incident is a rise that lasts (on synthetic
tweet counts a burst of one interval was the main source of false alarms; see
benchmarks/RESULTS.md, nab_rcf). Integer *measurements* that never reach zero (speeds
in mph, travel times in seconds, large request counts) are not counts: there the first
high score of a step is often its only one, and discounting it missed incidents. Whether
a series is a count is learned from its inputs, causally: one fraction, or one negative
value, and it never is again.
Its *surprise* is
``-log10(p)``; a forest's surprise is multiplied by its weight (the shape forest counts
less: on its own it flags every change of pattern).

Stuck inputs: per input column, the length of the current run of identical values. A run
longer than every earlier run of that column, and at least ``stuck_after`` long, is
surprising in proportion to how rarely the column stood still so far: with ``c``
changes in ``i`` inputs, each further repeat adds ``-log10(1 - (c+1)/(i+2))``. A column
that never changed (a constant series) is never stuck; one that often repeats must
repeat for longer. A run is reported once.

The detector's surprise is the largest of these; its grade is ``min(1, surprise/10)``
(HTM's log-likelihood scale: a probability of 1e-10 is grade 1). An input is an
anomaly when its grade reaches ``alert_grade``, except that within ``refractory`` inputs
of a reported anomaly only a grade ``repeat_factor`` times higher reports again: one
incident, one report. And an excursion (a run of inputs at or above the alert grade)
that keeps the series' own rhythm — the fifth of evenly spaced excursions to the same
values, a daily spike — is not reported at all (:mod:`forestream.rcf._recurrence`;
``recurrence`` is the tolerance on the spacing, 0 switches it off).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from . import _recurrence
from ._jit import njit

if TYPE_CHECKING:
    from ._jit import Float64Array, Int64Array

# parameter slots
AVERAGING = 0
ALPHA = 1  # 1 / horizon
WARMUP = 2
MIN_DEVIATION_RATIO = 3
ALERT_GRADE = 4
REFRACTORY = 5
REPEAT_FACTOR = 6
STUCK_AFTER = 7
LEVEL_WEIGHT = 8
SHAPE_WEIGHT = 9
ALERT_Z = 10  # the z-score of the alert grade's tail probability (reported thresholds)
CLIP = 11  # deviations above the mean at which an average is learned (winsorised)
BURST_DISCOUNT = 12  # in count series, the share of the largest recent score left out
RECURRENCE = 13  # relative tolerance on the period of recurring excursions (0: off)
PARAM_SIZE = 14

# global state slots
INPUTS = 0
SINCE_ALERT = 1
LAST_GRADE = 2
GLOBAL_SIZE = 3
# per-stream state slots (then a ring of `averaging` raw scores)
SUM = 0
FILLED = 1
COUNT = 2
MEAN = 3
VAR = 4
STREAM_HEAD = 5
# per-column state slots
RUN = 0
MAX_RUN = 1
CHANGES = 2
LAST_VALUE = 3
REPORTED = 4  # 1 once the current run was reported
COLUMN_SIZE = 5
# after the columns: whether the series is a count so far
COUNT_LIKE_SIZE = 1
# then whether the last input was at or above the alert grade (ABOVE, or RECURRING when
# its excursion keeps the series' rhythm), then the ring of excursion starts
BELOW = 0.0
ABOVE = 1.0
RECURRING = 2.0
EXCURSION_SIZE = 1
NOT_COUNTS = 0.0  # an input was negative or had a fraction
INTEGRAL = 1.0  # every input a non-negative integer, none zero yet
COUNTS = 2.0  # every input a non-negative integer, and a zero among them

STREAMS = 2  # level, shape
# causes reported per input
NO_CAUSE = -1
LEVEL = 0
SHAPE = 1
STUCK = 2  # STUCK + column

SURPRISE_SCALE = 10.0  # -log10 of the probability that makes grade 1
_DEVIATION_FLOOR = 0.01  # absolute floor on a stream's deviation (scores are ~1)


def count_offset(averaging: int, dimensions: int) -> int:
    """Where the count-series slot is (after the streams and the columns)."""
    return GLOBAL_SIZE + STREAMS * (STREAM_HEAD + averaging) + COLUMN_SIZE * dimensions


def state_size(averaging: int, dimensions: int) -> int:
    return count_offset(averaging, dimensions) + COUNT_LIKE_SIZE + EXCURSION_SIZE + \
        _recurrence.size(dimensions)


def initial_state(averaging: int, dimensions: int) -> Float64Array:
    state = np.zeros(state_size(averaging, dimensions))
    state[SINCE_ALERT] = np.inf
    counts = count_offset(averaging, dimensions)
    state[counts] = INTEGRAL  # no input yet contradicts a count series
    ring = counts + COUNT_LIKE_SIZE + EXCURSION_SIZE
    state[ring : ring + _recurrence.RING] = _recurrence.EMPTY
    return state


def is_count_series(state: Float64Array, averaging: int, dimensions: int) -> bool:
    """Whether the inputs graded so far make a count series (see the module's doc)."""
    return bool(state[count_offset(averaging, dimensions)] == COUNTS)


def upgraded_state(state: Float64Array, averaging: int, dimensions: int) -> Float64Array:
    """A grader state written by an earlier forestream, completed so that the detector
    goes on grading exactly as it did: written before series were told apart as counts
    (without the count slot), not a count series; written before recurring excursions
    were remembered (without the excursion slots), none remembered (the detector that
    reads it is made with ``recurrence=0``). Any other state is returned as it is."""
    counts = count_offset(averaging, dimensions)
    if state.ndim != 1 or len(state) not in (counts, counts + COUNT_LIKE_SIZE):
        return state
    fresh = initial_state(averaging, dimensions)
    fresh[:counts] = state[:counts]
    fresh[counts] = state[counts] if len(state) > counts else NOT_COUNTS
    return fresh


def stream_offset(stream: int, averaging: int) -> int:
    return GLOBAL_SIZE + stream * (STREAM_HEAD + averaging)


@njit(cache=True, nogil=True)
def grade_scores(level: Float64Array, shape: Float64Array, values: Float64Array,
                 params: Float64Array, state: Float64Array, grades: Float64Array,
                 thresholds: Float64Array, causes: Int64Array) -> None:
    """Grade each input in order, updating ``state``; fills ``grades`` (0: ordinary),
    ``thresholds`` (the level forest's score that would alert now, 0 while learning) and
    ``causes`` (LEVEL, SHAPE, STUCK + column, or NO_CAUSE)."""
    averaging = int(params[AVERAGING])
    alert = params[ALERT_GRADE]
    weights = (params[LEVEL_WEIGHT], params[SHAPE_WEIGHT])
    columns = GLOBAL_SIZE + STREAMS * (STREAM_HEAD + averaging)
    dims = values.shape[1]
    count_like = columns + COLUMN_SIZE * dims
    excursion = count_like + COUNT_LIKE_SIZE
    ring = excursion + EXCURSION_SIZE
    min_period = max(params[REFRACTORY], 1.0)
    for i in range(level.shape[0]):
        surprise = 0.0
        cause = NO_CAUSE
        for q in range(dims):
            value = values[i, q]
            if not (value >= 0.0 and value == math.floor(value)):  # NaN included
                state[count_like] = NOT_COUNTS
            elif value == 0.0 and state[count_like] == INTEGRAL:
                state[count_like] = COUNTS
        discount = params[BURST_DISCOUNT] if state[count_like] == COUNTS else 0.0
        for stream in range(STREAMS):
            raw = level[i] if stream == LEVEL else shape[i]
            base = GLOBAL_SIZE + stream * (STREAM_HEAD + averaging)
            s = weights[stream] * _stream_surprise(raw, state, base, params, averaging,
                                                   discount)
            if s > surprise:
                surprise, cause = s, stream
        inputs = state[INPUTS]
        for q in range(dims):
            s = _stuck_surprise(values[i, q], state, columns + COLUMN_SIZE * q, inputs, params)
            if s > surprise:
                surprise, cause = s, STUCK + q
        state[INPUTS] = inputs + 1.0
        thresholds[i] = _alert_score(state, GLOBAL_SIZE, params)
        grade = min(1.0, surprise / SURPRISE_SCALE)
        grades[i] = 0.0
        causes[i] = NO_CAUSE
        state[SINCE_ALERT] += 1.0
        above = grade >= alert and grade > 0.0
        # the rest of an excursion that keeps the series' rhythm is not reported either
        recurring = above and state[excursion] == RECURRING
        if above and state[excursion] == BELOW and cause < STUCK and \
                params[RECURRENCE] > 0.0:
            recurring = _recurrence.recurs(state, ring, inputs, values[i], min_period,
                                           params[RECURRENCE])
        state[excursion] = (RECURRING if recurring else ABOVE) if above else BELOW
        if above and not (recurring and cause < STUCK):
            repeat = state[SINCE_ALERT] <= params[REFRACTORY] and \
                grade <= state[LAST_GRADE] * params[REPEAT_FACTOR]
            if not repeat:
                grades[i] = grade
                causes[i] = cause
                state[SINCE_ALERT] = 0.0
                state[LAST_GRADE] = grade
                if cause >= STUCK:  # one report per run
                    state[columns + COLUMN_SIZE * (cause - STUCK) + REPORTED] = 1.0


@njit(cache=True, nogil=True)
def _stream_surprise(raw: float, state: Float64Array, base: int, params: Float64Array,
                     averaging: int, discount: float) -> float:
    """Learn one raw score of a stream; the surprise of the recent average (0 while the
    stream learns, or when the forest reports no score yet). With ``discount`` > 0 the
    largest recent score weighs ``1 - discount`` in the average."""
    if raw <= 0.0:
        return 0.0
    slot = base + STREAM_HEAD + int(state[base + FILLED]) % averaging
    state[base + SUM] += raw - state[slot]
    state[slot] = raw
    state[base + FILLED] += 1.0
    if state[base + FILLED] < averaging:
        return 0.0
    recent = state[base + SUM] / averaging
    if discount > 0.0:  # a count series: one interval's burst is not an incident
        top = state[base + STREAM_HEAD]
        for k in range(1, averaging):
            top = max(top, state[base + STREAM_HEAD + k])
        recent = (state[base + SUM] - discount * top) / (averaging - discount)
    mean = state[base + MEAN]
    surprise = 0.0
    delta = recent - mean
    if state[base + COUNT] >= params[WARMUP]:
        deviation = max(math.sqrt(max(state[base + VAR], 0.0)),
                        params[MIN_DEVIATION_RATIO] * abs(mean), _DEVIATION_FLOOR)
        z = delta / deviation
        tail = 0.5 * math.erfc(z / math.sqrt(2.0))
        surprise = -math.log10(max(tail, 1e-300))
        if params[CLIP] > 0.0:  # an incident's averages must not widen the distribution
            delta = min(delta, params[CLIP] * deviation)
    state[base + COUNT] += 1.0
    weight = max(params[ALPHA], 1.0 / state[base + COUNT])
    state[base + MEAN] = mean + weight * delta
    state[base + VAR] = (1.0 - weight) * (state[base + VAR] + weight * delta * delta)
    return surprise


@njit(cache=True, nogil=True)
def _stuck_surprise(value: float, state: Float64Array, base: int, inputs: float,
                    params: Float64Array) -> float:
    """Follow one column's runs of identical values; the surprise of the current run."""
    if inputs > 0.0:
        last = state[base + LAST_VALUE]
        if abs(value - last) <= 1e-12 * max(1.0, abs(value)):
            state[base + RUN] += 1.0
        else:
            state[base + MAX_RUN] = max(state[base + MAX_RUN], state[base + RUN])
            state[base + RUN] = 0.0
            state[base + CHANGES] += 1.0
            state[base + REPORTED] = 0.0
    state[base + LAST_VALUE] = value
    run = state[base + RUN]
    longest = state[base + MAX_RUN]
    if inputs < params[WARMUP] or state[base + CHANGES] == 0.0 or run <= longest or \
            run < params[STUCK_AFTER] or state[base + REPORTED] > 0.0:
        return 0.0
    change_rate = float(state[base + CHANGES] + 1.0) / (inputs + 2.0)
    return float(run - longest) * -math.log10(max(1.0 - change_rate, 1e-12))


@njit(cache=True, nogil=True)
def _alert_score(state: Float64Array, base: int, params: Float64Array) -> float:
    """The average level-forest score that would make an anomaly now (0 while learning)."""
    if state[base + COUNT] < params[WARMUP]:
        return 0.0
    mean = state[base + MEAN]
    deviation = max(math.sqrt(max(state[base + VAR], 0.0)),
                    params[MIN_DEVIATION_RATIO] * abs(mean), _DEVIATION_FLOOR)
    return float(mean + params[ALERT_Z] * deviation)
