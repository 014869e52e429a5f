"""Performance risk and migration effort, as forestream defines them.

**Performance risk** (0-4, per option and for the current configuration) says how
likely a configuration is to fall short of the workload. It starts from the *projected
utilization* of the configuration: the highest, over CPU, memory and GPU, of the
sizing level (the CPU/GPU percentile the policy sized on, trend growth included; the
memory peak) divided by that configuration's capacity:

=====  =====================  ====================================
score  projected utilization  meaning
=====  =====================  ====================================
0      <= 60 %                very low: ample headroom
1      <= 75 %                low
2      <= 85 %                medium: little headroom left
3      <= 95 %                high: peaks come close to capacity
4      > 95 %                 very high: expect throttling or OOM
=====  =====================  ====================================

One point is added (up to 4) for a volatile workload (bursty or trending), whose next
peak is harder to predict. The current configuration's label maps 0 to ``VeryLow``, 1 to
``Low``, 2 to ``Medium`` and 3-4 to ``High``.

The ``forestream`` policy, which sizes to a service level, scores risk by what it is
about instead (:func:`slo_risk`): the chance, read from its bootstrapped CPU levels,
that the next period breaks the service level on that capacity (<= 2 % very low, <= 10 %
low, <= 25 % medium, <= 50 % high, more very high), or the projected memory peak over
the memory (<= 80 %, 90 %, 95 %, 100 %, above), whichever is higher.

**Migration effort** of an option: ``VeryLow`` within the current family (a resize),
``Low`` to another family of the same architecture (same software; different
processor or memory ratio), ``Medium`` to another architecture (arm64/Graviton: the
software needs arm64 builds), ``High`` for a change of accelerator.

>>> import numpy as np
>>> performance_risk(np.array([0.5, 0.8, 1.2]), volatile=np.array([False, True, False]))
array([0, 3, 4])
>>> risk_label(np.array([0, 2, 4])).tolist()
['VeryLow', 'Medium', 'High']
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

RISK_LABELS = ("VeryLow", "Low", "Medium", "High")
MIGRATION_EFFORTS = ("VeryLow", "Low", "Medium", "High")
RISK_THRESHOLDS = (0.60, 0.75, 0.85, 0.95)
VOLATILE_CLASSES = ("bursty", "trending")
#: forestream: chance that the next period breaks the CPU service level, per score
SLO_RISK_THRESHOLDS = (0.02, 0.10, 0.25, 0.50)
#: forestream: projected memory peak over capacity, per score
MEMORY_RISK_THRESHOLDS = (0.80, 0.90, 0.95, 1.0)


def performance_risk(utilization: ArrayLike, *, volatile: np.ndarray | bool = False
                     ) -> np.ndarray:
    """Scores 0-4 from projected utilization fractions (NaN counts as 0)."""
    u = np.nan_to_num(np.asarray(utilization, dtype=np.float64), nan=0.0)
    score = np.searchsorted(np.array(RISK_THRESHOLDS), u, side="left")
    return np.minimum(score + np.asarray(volatile, dtype=int), 4).astype(np.int64)


def slo_risk(break_chance: ArrayLike, memory_fraction: ArrayLike) -> np.ndarray:
    """forestream's scores 0-4: the higher of the CPU score, from the chance that the next
    period breaks the service level (<= 2 %, 10 %, 25 %, 50 %, above), and the memory
    score, from the projected memory peak over capacity (<= 80 %, 90 %, 95 %, 100 %,
    above; NaN counts as 0)."""
    cpu = np.searchsorted(np.array(SLO_RISK_THRESHOLDS),
                          np.nan_to_num(np.asarray(break_chance, dtype=np.float64)),
                          side="left")
    memory = np.searchsorted(np.array(MEMORY_RISK_THRESHOLDS),
                             np.nan_to_num(np.asarray(memory_fraction, dtype=np.float64)),
                             side="left")
    return np.maximum(cpu, memory).astype(np.int64)


def risk_label(score: np.ndarray) -> np.ndarray:
    """``VeryLow``/``Low``/``Medium``/``High`` for scores 0/1/2/3-4."""
    labels = np.array(RISK_LABELS, dtype=object)
    return labels[np.minimum(np.asarray(score, dtype=np.int64), 3)]


def migration_effort(current_family: str, current_architecture: str, option_family: str,
                     option_architecture: str, current_gpus: int = 0,
                     option_gpus: int = 0) -> str:
    """Effort of moving from the current type to an option (see the module docstring)."""
    if (current_gpus > 0) != (option_gpus > 0) or (
            current_gpus > 0 and option_family != current_family):
        return "High"
    if option_architecture != current_architecture:
        return "Medium"
    if option_family != current_family:
        return "Low"
    return "VeryLow"
