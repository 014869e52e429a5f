"""What the sizing policies read and return: a batch's demand matrices and, per resource,
the capacity a policy asks for (see :mod:`~forestream.optimizer.policies`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .workload import WorkloadAnalysis


@dataclass
class Demand:
    """Demand matrices of R resources over T samples, and their current capacity."""

    cpu: np.ndarray  # reference cores (cpu_pct / 100 * vCPU * cpu_speed)
    cpu_pct: np.ndarray  # as measured, for saturation
    mem: np.ndarray | None  # GiB (all-NaN rows, or None for the batch: not measured)
    mem_pct: np.ndarray | None
    gpu: np.ndarray | None  # GPUs busy
    gpu_mem: np.ndarray | None  # GiB
    cpu_capacity: np.ndarray
    mem_capacity: np.ndarray
    gpu_capacity: np.ndarray
    gpu_mem_capacity: np.ndarray
    step_seconds: int = 300

    @property
    def samples_per_hour(self) -> int:
        return 3600 // self.step_seconds


@dataclass
class Requirements:
    """What each resource needs (NaN: not measured, keep the current capacity)."""

    cpu: np.ndarray
    mem: np.ndarray
    gpu: np.ndarray
    gpu_mem: np.ndarray
    idle: np.ndarray
    cpu_level: np.ndarray  # the sizing percentile before headroom (for projections)
    mem_level: np.ndarray
    analysis: WorkloadAnalysis | None = None
    notes: list[list[str]] = field(default_factory=list)
    #: forestream: (R, draws) bootstrapped CPU levels, and the SLO's utilization (0-1)
    cpu_draws: np.ndarray | None = None
    slo_utilization: float = 1.0
