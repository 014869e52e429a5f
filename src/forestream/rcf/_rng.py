"""A tiny per-tree pseudo-random generator for the numba kernels.

Each tree owns one 64-bit state word, so trees can be updated in parallel (in any order,
on any thread) and still draw exactly the same numbers: a forest is deterministic under
its seed no matter how many threads run it. The generator is xorshift64* (Vigna, 2016),
seeded through splitmix64 so that neighbouring seeds give unrelated streams.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ._jit import njit

if TYPE_CHECKING:
    from ._jit import UInt64Array

_MUL = np.uint64(0x2545F4914F6CDD1D)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S12 = np.uint64(12)
_S25 = np.uint64(25)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S27B = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53


def seed_states(seed: int, count: int) -> UInt64Array:
    """Return ``count`` independent, non-zero generator states derived from ``seed``."""
    states = np.empty(count, dtype=np.uint64)
    x = np.uint64(seed & 0xFFFFFFFFFFFFFFFF)
    with np.errstate(over="ignore"):
        for i in range(count):
            x = x + _GOLDEN
            z = x
            z = (z ^ (z >> _S30)) * _MIX1
            z = (z ^ (z >> _S27B)) * _MIX2
            z = z ^ (z >> _S31)
            states[i] = z if z != 0 else _GOLDEN
    return states


@njit(cache=True, inline="always")
def next_uniform(states: UInt64Array, t: int) -> float:
    """Advance tree ``t``'s state and return a float uniform in [0, 1)."""
    x = states[t]
    x ^= x >> _S12
    x ^= x << _S25
    x ^= x >> _S27
    states[t] = x
    return np.float64((x * _MUL) >> _S11) * _INV53
