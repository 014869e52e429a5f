"""The optimizer's data model: resources, their utilization history, the instance catalog,
and what a recommendation is (its options, the preferences that made it, its errors).

Every module of the package shares these; none of them imports another module of the
package, so the recommender (:mod:`.recommend`), the sizing of instances
(:mod:`.instance_sizing`) and of services (:mod:`.service_sizing`), the catalog and the
reports depend on this module and not on each other."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from forestream import errors

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


# ------------------------------------------------------------------- recommendations
#: The recommender's preference choices (see :mod:`.policies` for what each policy does).
POLICIES = ("forestream", "aws-default", "max-rule", "vpa", "krr")
CPU_PERCENTILES = (90.0, 95.0, 99.5)
#: forestream's service level: the percentile of 5-minute CPU utilization (90, 95, 99 or
#: 99.5) that must stay at or below ``slo_utilization`` percent of capacity (50-100)
SLO_PERCENTILES = (90.0, 95.0, 99.0, 99.5)
CPU_HEADROOMS = (0.0, 0.2, 0.3)
MEM_HEADROOMS = (0.1, 0.2, 0.3)
HOURS_PER_MONTH = 730
LOOKBACK_DAYS = (14, 32, 93)
MIN_DATA_HOURS = 30.0
STEP_SECONDS = 300
#: forestream picks among fitting types within 3 % of the cheapest by a stable key
STABLE_PRICE_TOLERANCE = 0.03


class RecommendationError(errors.InvalidInputError, ValueError):
    """A recommendation cannot be made; the message says which value and why."""


class InvalidParameterError(RecommendationError):
    """A preference outside its accepted values (the message lists them)."""


class InsufficientDataError(RecommendationError):
    """Less than 30 hours of usable samples in the lookback."""


@dataclass
class Option:
    """One ranked recommendation option."""

    rank: int
    name: str
    configuration: dict
    monthly_price: float | None
    savings_monthly: float | None
    savings_pct: float | None
    performance_risk: int
    projected_utilization: dict[str, float]
    migration_effort: str = "VeryLow"
    architecture: str | None = None


@dataclass
class Current:
    """The current configuration, its price and how loaded it is."""

    name: str
    configuration: dict
    monthly_price: float | None
    utilization: dict[str, float]
    performance_risk: int
    risk: str


@dataclass
class Recommendation:
    """A resource's finding, reasons, workload class and ranked options."""

    resource_id: str
    kind: str
    policy: str
    finding: str
    reasons: list[str]
    workload_class: str
    period_hours: int
    current: Current | None
    options: list[Option]
    lookback_days: int
    data_hours: float
    notes: list[str] = field(default_factory=list)

    @property
    def best(self) -> Option | None:
        """The first-ranked option (None without options)."""
        return self.options[0] if self.options else None

    def to_dict(self) -> dict:
        """Plain JSON-ready data (floats rounded to 6 significant digits)."""
        return _rounded(asdict(self))


@dataclass(frozen=True)
class Preferences:
    """Validated preferences shared by every resource of one call."""

    policy: str = "forestream"
    lookback_days: int = 14
    cpu_percentile: float = 99.5
    cpu_headroom: float | None = None
    mem_headroom: float | None = None
    horizon_days: float = 14.0
    max_options: int = 3
    allow_graviton: bool = False
    include_burstable: bool = False
    seed: int = 0
    slo_percentile: float = 99.0
    slo_utilization: float = 90.0

    def __post_init__(self) -> None:
        _check_choice("policy", self.policy, POLICIES)
        _check_choice("lookback_days", self.lookback_days, LOOKBACK_DAYS)
        _check_choice("cpu_percentile", self.cpu_percentile, CPU_PERCENTILES)
        if self.cpu_headroom is not None:
            _check_choice("cpu_headroom", self.cpu_headroom, CPU_HEADROOMS)
        if self.mem_headroom is not None:
            _check_choice("mem_headroom", self.mem_headroom, MEM_HEADROOMS)
        if not isinstance(self.max_options, int) or not 1 <= self.max_options <= 10:
            raise InvalidParameterError(f"max_options must be a whole number from 1 to 10, "
                                        f"got {self.max_options!r}")
        if not (isinstance(self.horizon_days, (int, float))
                and 0 <= self.horizon_days <= 93):
            raise InvalidParameterError(f"horizon_days must be a number from 0 to 93, got "
                                        f"{self.horizon_days!r}")
        _check_choice("slo_percentile", self.slo_percentile, SLO_PERCENTILES)
        if not (isinstance(self.slo_utilization, (int, float))
                and not isinstance(self.slo_utilization, bool)
                and 50 <= self.slo_utilization <= 100):
            raise InvalidParameterError(f"slo_utilization must be a number from 50 to 100 "
                                        f"(percent), got {self.slo_utilization!r}")

    def sizing(self) -> dict:
        """The keyword arguments of :func:`~forestream.optimizer.policies.requirements`."""
        return {"cpu_percentile": self.cpu_percentile, "cpu_headroom": self.cpu_headroom,
                "mem_headroom": self.mem_headroom, "horizon_days": self.horizon_days,
                "seed": self.seed, "slo_percentile": self.slo_percentile,
                "slo_utilization": self.slo_utilization}


def insufficient_data_note(hours: float) -> str:
    return (f"only {hours:.1f} hours of data in the lookback; at least "
            f"{MIN_DATA_HOURS:g} hours are needed")


def failed_recommendation(h: UtilizationHistory, prefs: Preferences, finding: str,
                          message: str, hours: float = 0.0) -> Recommendation:
    """A recommendation without options: ``finding`` (InsufficientData, Unsupported) and
    why, in ``notes``."""
    return Recommendation(h.resource.resource_id, h.resource.kind, prefs.policy, finding, [],
                          "", 0, None, [], prefs.lookback_days, round(float(hours), 2),
                          [message])


def _check_choice(name: str, value, allowed: tuple) -> None:
    ok = not isinstance(value, bool) and any(
        value == a and type(value) in (int, float, str, type(a)) for a in allowed)
    if isinstance(value, float) and np.isnan(value):
        ok = False
    if not ok:
        raise InvalidParameterError(f"{name} must be one of "
                                    f"{', '.join(repr(a) for a in allowed)}; got {value!r}")


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.6g}") if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_rounded(v) for v in value]
    if isinstance(value, np.generic):
        return _rounded(value.item())
    return value
