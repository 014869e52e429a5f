"""Recurring excursions: a spike that comes back at the same period is the series' rhythm.

An RCF with a short shingle cannot learn a daily event: a CPU spike to the same height
once a day (a backup, a cron job) is one input in 288, so the forests' samples hold
almost none of them and each occurrence is as surprising as the first. NAB's
ec2_cpu_utilization_c6585a and _24ae8d alarm every day on such a spike (a quarter of the
development corpus's false-positive rows at the low-FP threshold).

The grader therefore remembers where its last :data:`RING` *excursions* started (an
excursion: a run of inputs graded at or above the alert grade; its start is the first of
them), and the values there. An excursion whose start lies at a period ``p`` after an
earlier one, itself ``p`` after another, and so on :data:`REPEATS` times (each spacing
within ``tolerance * p``), with every one of those starts at nearly the same values
(within :data:`VALUE_TOLERANCE`, relative, in every column), is the series' own rhythm:
it is not reported. Both conditions are needed: real incidents do recur at similar
heights, and bursts do fall at similar spacings by chance, but five evenly spaced
excursions to the same height are a schedule (see benchmarks/RESULTS.md, nab_rcf: with
spacing alone, synthetic tweet files lost real incidents).

The period must be at least ``min_period`` (the grader passes its ``refractory``): within
that, the grader already reports one incident once. Causal (only earlier starts are
compared), bounded (``RING`` positions and values), and cheap: the search runs only at
an excursion's start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._jit import njit

if TYPE_CHECKING:
    from ._jit import Float64Array

RING = 8  # excursion starts remembered
REPEATS = 3  # earlier starts at one period, each after the next: four excursions in all
VALUE_TOLERANCE = 0.1  # relative difference of the values at the starts
EMPTY = -1.0e18  # an unused slot of the ring


def size(dimensions: int) -> int:
    """Numbers of grader state the ring takes: positions, then values per column."""
    return RING * (1 + dimensions)


@njit(cache=True, nogil=True)
def _alike(state: Float64Array, ring: int, slot: int, values: Float64Array) -> bool:
    dims = values.shape[0]
    base = ring + RING + slot * dims
    for q in range(dims):
        a, b = values[q], state[base + q]
        if not abs(a - b) <= VALUE_TOLERANCE * max(abs(a), abs(b)):  # NaN: not alike
            return False
    return True


@njit(cache=True, nogil=True)
def _chain(state: Float64Array, ring: int, position: float, period: float, left: int,
           tolerance: float, values: Float64Array) -> bool:
    """Whether ``left`` more starts lie one period apart, each before the previous."""
    if left == 0:
        return True
    for a in range(RING):
        start = state[ring + a]
        if start != EMPTY and abs(position - start - period) <= tolerance * period and \
                _alike(state, ring, a, values) and \
                _chain(state, ring, start, period, left - 1, tolerance, values):
            return True
    return False


@njit(cache=True, nogil=True)
def recurs(state: Float64Array, ring: int, position: float, values: Float64Array,
           min_period: float, tolerance: float) -> bool:
    """Whether an excursion starting at input ``position`` with ``values`` keeps an
    earlier rhythm (see the module's doc); it is then remembered in place of the oldest
    start."""
    found = False
    for a in range(RING):
        start = state[ring + a]
        period = position - start
        if found or start == EMPTY or period < min_period:
            continue
        if _alike(state, ring, a, values) and \
                _chain(state, ring, start, period, REPEATS - 1, tolerance, values):
            found = True
    oldest = 0
    for a in range(1, RING):
        if state[ring + a] < state[ring + oldest]:
            oldest = a
    state[ring + oldest] = position
    dims = values.shape[0]
    for q in range(dims):
        state[ring + RING + oldest * dims + q] = values[q]
    return found
