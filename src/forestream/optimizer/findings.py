"""Findings and reason codes, as AWS Compute Optimizer names them.

A resource is judged one *specification* at a time (CPU, memory, GPU, network, ...):
a specification is **under-provisioned** when what the policy asks for exceeds the
current capacity, and **over-provisioned** when it would fit in ``over_fraction`` of
the current capacity (for instances 50 %: the next size down of every family halves
vCPUs and memory, so anything that fits in half can be sized down). The finding
combines them as AWS defines it: ``Underprovisioned`` if any specification is under,
else ``Overprovisioned`` if any can be sized down, else ``Optimized``; ``Idle`` takes
precedence when the policy found the resource idle. Reason codes name every
specification that is not optimized, e.g. ``CPUOverprovisioned`` together with
``MemoryUnderprovisioned``.

>>> import numpy as np
>>> finding, reasons = classify_findings(
...     {"CPU": (np.array([0.5, 5.0, 3.0]), np.array([4.0, 4.0, 4.0])),
...      "Memory": (np.array([10.0, 10.0, 12.0]), np.array([16.0, 16.0, 16.0]))},
...     idle=np.array([False, False, False]))
>>> finding.tolist()
['Overprovisioned', 'Underprovisioned', 'Optimized']
>>> reasons[0], reasons[1]
(['CPUOverprovisioned'], ['CPUUnderprovisioned'])
"""

from __future__ import annotations

import numpy as np

FINDINGS = ("Overprovisioned", "Underprovisioned", "Optimized", "Idle")
INSUFFICIENT_DATA = "InsufficientData"
UNSUPPORTED = "Unsupported"
SPECIFICATIONS = ("CPU", "Memory", "NetworkBandwidth", "NetworkPPS", "EBSThroughput",
                  "EBSIOPS", "DiskIOPS", "DiskThroughput", "GPU", "GPUMemory")
#: AWS's reason codes, plus the ones forestream uses for its own resources.
REASON_CODES = tuple(f"{spec}{state}" for spec in SPECIFICATIONS
                     for state in ("Overprovisioned", "Underprovisioned")) + (
    "StreamThroughputOverprovisioned", "StreamThroughputUnderprovisioned",
    "ParallelismOverprovisioned", "ParallelismUnderprovisioned",
    "WorkersOverprovisioned", "WorkersUnderprovisioned")
OVER_FRACTION = 0.5  # instances: the next size down halves the capacity


def spec_status(need: np.ndarray, capacity: np.ndarray, *,
                over_fraction: float = OVER_FRACTION,
                can_shrink: np.ndarray | bool = True) -> np.ndarray:
    """Per resource ``"under"``, ``"over"``, ``"optimized"``, or ``""`` when unmeasured."""
    need = np.asarray(need, dtype=np.float64)
    capacity = np.asarray(capacity, dtype=np.float64)
    out = np.full(need.shape, "", dtype=object)
    known = np.isfinite(need) & np.isfinite(capacity)
    with np.errstate(invalid="ignore"):
        under = known & (need > capacity * (1 + 1e-9))
        over = known & ~under & (need <= over_fraction * capacity) & np.asarray(can_shrink)
    out[known] = "optimized"
    out[over] = "over"
    out[under] = "under"
    return out


def classify_findings(specs: dict[str, tuple[np.ndarray, np.ndarray]], *, idle: np.ndarray,
                      over_fraction: float | dict[str, float] = OVER_FRACTION,
                      can_shrink: dict[str, np.ndarray] | None = None
                      ) -> tuple[np.ndarray, list[list[str]]]:
    """Findings and reason codes from ``{spec: (need, capacity)}`` arrays."""
    can_shrink = can_shrink or {}
    statuses = {}
    for spec, (need, capacity) in specs.items():
        fraction = over_fraction.get(spec, OVER_FRACTION) if isinstance(
            over_fraction, dict) else over_fraction
        statuses[spec] = spec_status(need, capacity, over_fraction=fraction,
                                     can_shrink=can_shrink.get(spec, True))
    R = len(idle)
    any_under = np.zeros(R, dtype=bool)
    any_over = np.zeros(R, dtype=bool)
    for status in statuses.values():
        any_under |= status == "under"
        any_over |= status == "over"
    finding = np.full(R, "Optimized", dtype=object)
    finding[any_over] = "Overprovisioned"
    finding[any_under] = "Underprovisioned"
    finding[np.asarray(idle, dtype=bool)] = "Idle"
    reasons: list[list[str]] = [[] for _ in range(R)]
    for spec, status in statuses.items():
        for r in np.flatnonzero(status == "over"):
            reasons[r].append(f"{spec}Overprovisioned")
        for r in np.flatnonzero(status == "under"):
            reasons[r].append(f"{spec}Underprovisioned")
    return finding, reasons


def macro_f1(truth, predicted, labels=None) -> float:
    """Unweighted mean of per-class F1 over ``labels`` (default: the classes in truth).

    >>> macro_f1(["a", "a", "b"], ["a", "b", "b"])
    0.6666666666666666
    """
    truth = np.asarray(truth, dtype=object)
    predicted = np.asarray(predicted, dtype=object)
    labels = sorted(set(truth.tolist())) if labels is None else list(labels)
    scores = []
    for label in labels:
        tp = np.sum((truth == label) & (predicted == label))
        fp = np.sum((truth != label) & (predicted == label))
        fn = np.sum((truth == label) & (predicted != label))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores)) if scores else 0.0
