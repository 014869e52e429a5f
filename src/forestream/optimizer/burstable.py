"""Burstable (T-family) instance types: their CPU baseline and credit balance.

A burstable type gives each vCPU a *baseline* share of a core for as long as it runs,
and more only while it has CPU credits: it earns credits at the baseline rate (one
credit is one vCPU at 100 % for a minute), spends them on whatever it uses, keeps at
most 24 hours' worth, and in *standard* mode is held to the baseline once the balance
is spent. A demand averaging above the baseline therefore ends throttled however large
the burst capacity looks, and one that bursts for hours needs the balance to last.

:func:`credit_check` replays a demand series on burstable candidates from an empty
balance (a new instance has none to spend) and says which of them keep the service
level: the ``percentile`` of the utilization — the demand over what the type serves in
that sample (its vCPUs while credits last, its baseline after) — at most
``utilization``. The baselines are AWS's published ones (:data:`BASELINE`).

>>> import numpy as np
>>> share = baseline_share("t3.large")
>>> share
0.3
>>> demand = np.full((1, 14 * 288), 0.42 * 2)            # 42 % of two vCPUs, all the time
>>> credit_check(demand, np.array([2.0]), np.array([1.0]), np.array([share]), 0.99, 0.9)
array([[False]])
>>> quiet = np.full((1, 14 * 288), 0.15 * 2)             # 15 %: half the baseline
>>> credit_check(quiet, np.array([2.0]), np.array([1.0]), np.array([share]), 0.99, 0.9)
array([[ True]])
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._stats import _row_quantiles

#: baseline share of each vCPU by size, for t3, t3a and t4g (and t2 up to large)
BASELINE = {"nano": 0.05, "micro": 0.10, "small": 0.20, "medium": 0.20, "large": 0.30,
            "xlarge": 0.40, "2xlarge": 0.40}
#: t2's larger sizes have lower baselines
T2_BASELINE = {"xlarge": 0.225, "2xlarge": 0.17}
STEP_MINUTES = 5.0


def baseline_share(name: str) -> float:
    """The baseline share of each vCPU of burstable type ``name`` (0.2 if unknown)."""
    family, _, size = name.partition(".")
    if family == "t2" and size in T2_BASELINE:
        return T2_BASELINE[size]
    return BASELINE.get(size, 0.2)


@njit(parallel=True, cache=True)
def credit_check(demand, vcpu, speed, share, q, utilization):
    """``(R, C)``: whether each row of ``demand`` (reference cores per 5-minute sample,
    NaN = missing) keeps the ``q`` quantile of its utilization at most ``utilization``
    (fractions) on each of ``C`` burstable types (``vcpu``, per-vCPU ``speed``, baseline
    ``share``), starting from an empty credit balance."""
    R, T = demand.shape
    C = vcpu.shape[0]
    out = np.zeros((R, C), dtype=np.bool_)
    qs = np.array([q])
    for r in prange(R):
        series = np.empty(T)
        level = np.empty(1)
        for c in range(C):
            earn = share[c] * vcpu[c] * STEP_MINUTES
            ceiling = share[c] * vcpu[c] * 60.0 * 24.0
            floor = share[c] * vcpu[c]
            balance = 0.0
            n = 0
            for t in range(T):
                v = demand[r, t]
                if v != v:
                    series[t] = np.nan
                    continue
                busy = v / speed[c]  # vCPUs of this type kept busy
                want = min(busy, vcpu[c]) * STEP_MINUTES
                have = balance + earn
                if have >= want:
                    balance = min(have - want, ceiling)
                    series[t] = busy / vcpu[c]
                else:
                    balance = 0.0
                    series[t] = busy / max(floor, have / STEP_MINUTES)
                n += 1
            if n == 0:
                out[r, c] = True
                continue
            level[0] = np.nan
            _row_quantiles(series, 0, qs, level)
            out[r, c] = level[0] <= utilization
    return out
