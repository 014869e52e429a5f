"""The optimizer's data model: resources, their utilization history, the instance catalog."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Canonical metric names. Percentages are 0-100 of the resource's current capacity;
#: byte and operation counts are per second (averaged over the sample period); ``*_max``
#: variants, when present, hold the maximum within the sample period.
METRICS = (
    "cpu_pct", "mem_pct", "mem_used_gib",
    "net_in_bytes", "net_out_bytes",
    "disk_read_bytes", "disk_write_bytes", "disk_read_ops", "disk_write_ops",
    "gpu_pct", "gpu_mem_pct",
    "invocations", "duration_ms",
    # forestream's own components
    "records_in", "bytes_in", "records_out", "bytes_out", "millis_behind", "busy_pct",
)

RESOURCE_KINDS = ("instance", "asg", "container", "function", "volume",
                  "stream", "application", "endpoint")


@dataclass(frozen=True)
class InstanceType:
    """One row of the instance catalog (prices are on-demand USD per hour in one region)."""

    name: str
    family: str
    architecture: str  # "x86_64" or "arm64"
    vcpu: int
    memory_gib: float
    price_per_hour: float
    gpus: int = 0
    gpu_memory_gib: float = 0.0
    network_gbps: float = 0.0
    cpu_speed: float = 1.0  # relative per-vCPU speed; 1.0 = the catalog's reference
    burstable: bool = False
    price_estimated: bool = False  # filled from the family's price per vCPU
    # Added for the catalog (all optional): AWS's class ("General purpose", "GPU
    # instance", "Machine Learning ASIC Instances", ...), the processor model, the
    # "up to" network ceiling (== network_gbps where bandwidth is fixed), and whether AWS
    # lists the type as current generation.
    category: str = ""
    processor: str = ""
    network_burst_gbps: float = 0.0
    current_generation: bool = True


@dataclass
class Resource:
    """What a resource is now.

    ``current`` depends on ``kind``: instance/asg ``{"instance_type": "m5.xlarge"}`` (asg
    adds ``"min_size"``, ``"max_size"``, ``"desired"``); container ``{"cpu": 2.0,
    "memory_gib": 4.0}``; function ``{"memory_mb": 1024}``; volume ``{"volume_type": "gp3",
    "size_gib": 100, "iops": 3000, "throughput_mbps": 125}``; stream ``{"shards": 4}``;
    application ``{"parallelism": 2}``; endpoint ``{"workers": 2}``.
    """

    resource_id: str
    kind: str = "instance"
    current: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)


@dataclass
class UtilizationHistory:
    """A resource's metric samples: sorted unix-second timestamps and one float64 array
    per metric name (NaN where a sample is missing)."""

    resource: Resource
    timestamps: np.ndarray
    metrics: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype=np.int64)
        n = len(self.timestamps)
        for name, values in list(self.metrics.items()):
            values = np.asarray(values, dtype=np.float64)
            if values.shape != (n,):
                raise ValueError(f"metric {name!r} has {values.shape[0] if values.ndim else 0} "
                                 f"samples; expected {n}, one per timestamp")
            self.metrics[name] = values
        if n > 1 and np.any(np.diff(self.timestamps) <= 0):
            raise ValueError("timestamps must be strictly increasing")

    @property
    def hours(self) -> float:
        if len(self.timestamps) < 2:
            return 0.0
        return float(self.timestamps[-1] - self.timestamps[0]) / 3600.0
