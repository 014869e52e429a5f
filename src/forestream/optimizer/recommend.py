"""Right-sizing recommendations: the library API of :mod:`forestream.optimizer`.

:func:`recommend` sizes one resource, :func:`recommend_many` a whole fleet (vectorized:
the metrics of up to a few thousand resources at a time are laid on one 5-minute grid
and every step runs on the whole matrix). Both take the same preferences:

- ``lookback_days``: 14 (default), 32 or 93; at least 30 hours of data are required;
- ``policy``: ``"forestream"`` (default) or one of the baselines ``"aws-default"``,
  ``"max-rule"``, ``"vpa"``, ``"krr"`` (see :mod:`~forestream.optimizer.policies`);
- ``cpu_percentile``: 90, 95 or 99.5 (default), on 5-minute maxima;
- ``cpu_headroom`` (0, 0.2, 0.3) and ``mem_headroom`` (0.1, 0.2, 0.3): None keeps the
  policy's own (20 % for ``aws-default``; adaptive for ``forestream``);
- ``horizon_days``: how far ahead trend growth is projected (default 7);
- ``allow_graviton``: offer arm64 types to x86 workloads (default False: the software
  must have arm64 builds, which metrics cannot tell); ``include_burstable``: offer
  T-family types (default False: their CPU credits are not modelled);
- ``max_options``: ranked options per resource (default 3).

Instances (and Auto Scaling groups, per instance) get instance types from the catalog:
the cheapest types whose capacity covers what the policy asks for (CPU in reference
cores, i.e. vCPUs times the catalog's relative ``cpu_speed``; memory; GPUs within the
same GPU family; sustained network baseline), among current-generation general
purpose, compute and memory optimized types of the same architecture (a GPU type only
within its family; a type with local disks only among types with local disks). The
``forestream`` policy ranks fitting types within 3 % of the cheapest by a key that does
not depend on the need (the current type, then the current family, then the most
capacity), so that a need moving a little does not swap near-equally priced types; the
baselines take the cheapest. Each
option carries its monthly price (730 hours), savings against the current type,
projected utilization, performance risk (0-4, see :mod:`~forestream.optimizer.risk`)
and migration effort. Containers get CPU and memory requests, functions a memory size,
volumes IOPS and throughput, streams a shard count, applications a parallelism and
endpoints a worker count (see :func:`recommend_many`).

>>> import numpy as np
>>> from forestream.optimizer.types import Resource, UtilizationHistory
>>> from forestream.optimizer.catalog import load_catalog
>>> ts = 1_700_000_100 + 300 * np.arange(14 * 288)
>>> cpu = 10 + 5 * np.sin(np.arange(ts.size) / 40)
>>> history = UtilizationHistory(Resource("i-1", "instance", {"instance_type": "m5.2xlarge"}),
...                              ts, {"cpu_pct": cpu, "mem_pct": np.full(ts.size, 20.0)})
>>> rec = recommend(history, load_catalog())
>>> rec.finding, rec.reasons
('Overprovisioned', ['CPUOverprovisioned', 'MemoryOverprovisioned'])
>>> rec.options[0].monthly_price < rec.current.monthly_price
True
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .findings import INSUFFICIENT_DATA, UNSUPPORTED, classify_findings
from .policies import (
    CPU_HEADROOMS,
    CPU_PERCENTILES,
    MEM_HEADROOMS,
    POLICIES,
    Demand,
    requirements,
)
from .risk import VOLATILE_CLASSES, migration_effort, performance_risk, risk_label
from .types import InstanceType, UtilizationHistory

HOURS_PER_MONTH = 730
LOOKBACK_DAYS = (14, 32, 93)
MIN_DATA_HOURS = 30.0
STEP_SECONDS = 300
#: forestream picks among fitting types within 3 % of the cheapest by a stable key
STABLE_PRICE_TOLERANCE = 0.03
_CELLS_PER_CHUNK = 6_000_000  # resources x samples per batch: bounds memory


class RecommendationError(ValueError):
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
    horizon_days: float = 7.0
    max_options: int = 3
    allow_graviton: bool = False
    include_burstable: bool = False
    seed: int = 0

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


def recommend(history: UtilizationHistory, catalog=None, **preferences) -> Recommendation:
    """Recommendation for one resource; raises :class:`InsufficientDataError` with under
    30 hours of data and :class:`InvalidParameterError` for a bad preference.

    ``catalog`` is a :class:`~forestream.optimizer.catalog.Catalog` (or any iterable of
    :class:`InstanceType`); None loads the shipped us-east-1 catalog when needed.
    """
    return recommend_many([history], catalog, errors="raise", **preferences)[0]


def recommend_many(histories: Sequence[UtilizationHistory], catalog=None, *,
                   errors: str = "report", progress: Callable[[int], None] | None = None,
                   **preferences) -> list[Recommendation]:
    """Recommendations for many resources, in input order.

    ``errors="report"`` turns a resource's own problem (too little data, an instance
    type the catalog lacks) into a recommendation with finding ``InsufficientData`` or
    ``Unsupported`` and the reason in ``notes``; ``"raise"`` raises it. ``progress``
    is called with the number of resources finished after each batch.

    Beyond instances and Auto Scaling groups (``Resource.current`` fields; metrics):

    - ``container`` (``cpu``, ``memory_gib``; ``cpu_pct``/``mem_pct`` of the request
      or ``mem_used_gib``): requests from the policy, rounded up to 10 millicores and
      1/64 GiB, priced at Fargate rates; over-provisioned from 30 % less.
    - ``function`` (``memory_mb``; ``invocations``, ``duration_ms``, ``cpu_pct`` = the
      CPU share used while running, ``mem_pct`` or ``mem_used_gib``): the cheapest
      memory size (64 MB steps) whose projected duration at the percentile is at most
      5 % longer and that holds the peak memory plus headroom (20 %); the CPU-bound
      share of the duration scales with the CPU Lambda gives (see ``_LambdaModel``).
    - ``volume`` (``volume_type``, ``size_gib``, ``iops``, ``throughput_mbps``;
      ``disk_*_ops``/``disk_*_bytes``): gp3 IOPS and throughput (io2 beyond gp3's
      16,000 IOPS / 1,000 MiB/s) from the policy on the IOPS and MiB/s series.
    - ``stream`` (``shards``; ``bytes_in``, ``records_in``, ``bytes_out``): each
      sample needs max(bytes in / 1 MiB, records in / 1,000, bytes out / 2 MiB) shards;
      the policy sizes that series; $0.015 per shard-hour.
    - ``application`` (``parallelism``; ``busy_pct``, ``millis_behind``): busy share
      times parallelism, one more when the median lag exceeds 60 s; $0.11 per KPU-hour.
    - ``endpoint`` (``workers``, ``instance_type``; ``busy_pct`` or ``cpu_pct``): busy
      share times workers, priced by the instance type (``ml.`` prefix dropped).
    """
    if errors not in ("report", "raise"):
        raise InvalidParameterError(f"errors must be 'report' or 'raise', got {errors!r}")
    prefs = Preferences(**preferences)
    histories = list(histories)
    out: list[Recommendation | None] = [None] * len(histories)
    by_kind: dict[str, list[int]] = {}
    for i, h in enumerate(histories):
        by_kind.setdefault(h.resource.kind, []).append(i)
    views: list[_CatalogView] = []

    def view() -> _CatalogView:
        if not views:
            views.append(_CatalogView.of(catalog))
        return views[0]

    for kind, indices in by_kind.items():
        if kind in ("instance", "asg"):
            _instances(histories, indices, view(), prefs, out, errors, progress)
        elif kind in SERVICE_KINDS:
            _services(kind, histories, indices, view, prefs, out, errors)
            if progress is not None:
                progress(len(indices))
        else:
            raise InvalidParameterError(f"resource kind {kind!r} is not supported; kinds: "
                                        f"instance, asg, {', '.join(SERVICE_KINDS)}")
    return out  # type: ignore[return-value]


def candidate_types(current: str | InstanceType, catalog=None, *,
                    allow_graviton: bool = False,
                    include_burstable: bool = False) -> list[InstanceType]:
    """The catalog types a resource of type ``current`` may move to (cheapest first):
    the candidate set every policy chooses from (see the module docstring)."""
    view = _CatalogView.of(catalog)
    current = view.get(current) if isinstance(current, str) else current
    mask = view.candidates(current, allow_graviton, include_burstable)
    chosen = [view.types[j] for j in np.flatnonzero(mask)]
    return sorted(chosen, key=lambda t: (t.price_per_hour, t.vcpu, t.name))


# ------------------------------------------------------------------------ instances
def _instances(histories, indices, view: _CatalogView, prefs: Preferences, out, errors,
               progress) -> None:
    T = prefs.lookback_days * 86400 // STEP_SECONDS
    usable: list[int] = []
    types: list[InstanceType] = []
    for i in indices:
        h = histories[i]
        name = h.resource.current.get("instance_type")
        try:
            if not name:
                raise RecommendationError(f"resource {h.resource.resource_id!r} has no "
                                          "current instance_type")
            types.append(view.get(str(name)))
            usable.append(i)
        except (LookupError, ValueError) as error:
            if errors == "raise":
                raise
            out[i] = _failed(h, prefs, UNSUPPORTED, str(error))
    chunk = max(1, _CELLS_PER_CHUNK // T)
    for begin in range(0, len(usable), chunk):
        rows = usable[begin: begin + chunk]
        batch = _instance_batch([histories[i] for i in rows], types[begin: begin + chunk],
                                view, prefs, T, errors)
        for i, rec in zip(rows, batch, strict=True):
            out[i] = rec
        if progress is not None:
            progress(len(rows))


def _instance_batch(batch, types, view: _CatalogView, prefs: Preferences, T: int, errors):
    R = len(batch)
    vcpu = np.array([t.vcpu for t in types], dtype=float)
    speed = np.array([t.cpu_speed for t in types], dtype=float)
    mem_cap = np.array([t.memory_gib for t in types], dtype=float)
    gpus = np.array([t.gpus for t in types], dtype=float)
    gpu_mem_cap = np.array([t.gpu_memory_gib for t in types], dtype=float)
    cpu_cap = vcpu * speed
    grid = _window(batch, T)
    cpu_pct = grid.matrix(("cpu_pct_max", "cpu_pct"))
    hours = grid.data_hours(cpu_pct)
    # Metrics no resource of the batch has stay None: no (R, T) matrix of NaN to scan.
    mem_pct = grid.matrix(("mem_pct_max", "mem_pct"), optional=True)
    mem_gib = grid.matrix(("mem_used_gib_max", "mem_used_gib"), optional=True)
    if mem_gib is not None:
        from_pct = mem_pct if mem_pct is not None else np.full_like(mem_gib, np.nan)
        mem = np.where(np.isfinite(from_pct), from_pct / 100.0 * mem_cap[:, None], mem_gib)
        mem_pct = mem / mem_cap[:, None] * 100.0
    else:
        mem = None if mem_pct is None else mem_pct / 100.0 * mem_cap[:, None]
    gpu_pct = grid.matrix(("gpu_pct_max", "gpu_pct"), optional=True)
    gpu_mem_pct = grid.matrix(("gpu_mem_pct_max", "gpu_mem_pct"), optional=True)
    net = grid.sum_matrix((("net_in_bytes_max", "net_in_bytes"),
                           ("net_out_bytes_max", "net_out_bytes")), optional=True)
    demand = Demand(cpu_pct / 100.0 * cpu_cap[:, None], cpu_pct, mem, mem_pct,
                    None if gpu_pct is None else gpu_pct / 100.0 * gpus[:, None],
                    None if gpu_mem_pct is None else gpu_mem_pct / 100.0 * gpu_mem_cap[:, None],
                    cpu_cap, mem_cap, gpus, gpu_mem_cap, STEP_SECONDS)
    req = requirements(prefs.policy, demand, cpu_percentile=prefs.cpu_percentile,
                       cpu_headroom=prefs.cpu_headroom, mem_headroom=prefs.mem_headroom,
                       horizon_days=prefs.horizon_days, seed=prefs.seed)
    # The network is a constraint every policy keeps the same way (AWS's recipe).
    net_need = (np.full(R, np.nan) if net is None else
                _row_quantile(net * 8 / 1e9, prefs.cpu_percentile / 100.0) * 1.2)
    cpu_max = _row_max(demand.cpu)
    gpu_level = np.where(np.isfinite(req.gpu), req.gpu, np.nan)
    if req.analysis is not None:
        classes = req.analysis.workload_class
        periods = req.analysis.period_hours
    else:
        classes = np.full(R, "", dtype=object)
        periods = np.zeros(R, dtype=np.int64)
    volatile = np.isin(classes.astype(str), VOLATILE_CLASSES)

    need_cpu = np.where(np.isfinite(req.cpu), req.cpu, cpu_cap)
    need_mem = np.where(np.isfinite(req.mem), req.mem, mem_cap)
    need_gpu = np.where(np.isfinite(req.gpu), req.gpu, gpus)
    need_gpu_mem = np.where(np.isfinite(req.gpu_mem), req.gpu_mem, gpu_mem_cap)
    choice = view.select(types, need_cpu, need_mem, need_gpu, need_gpu_mem,
                         np.nan_to_num(net_need), prefs.max_options,
                         allow_graviton=prefs.allow_graviton,
                         include_burstable=prefs.include_burstable,
                         tolerance=STABLE_PRICE_TOLERANCE if prefs.policy == "forestream"
                         else 0.0)
    has_gpu = gpus > 0
    finding, reasons = classify_findings(
        {"CPU": (req.cpu, cpu_cap), "Memory": (req.mem, mem_cap),
         "GPU": (np.where(has_gpu, req.gpu, np.nan), gpus),
         "GPUMemory": (np.where(has_gpu, req.gpu_mem, np.nan), gpu_mem_cap),
         "NetworkBandwidth": (np.where(net_need > 0, net_need, np.nan),
                              np.array([max(t.network_burst_gbps, t.network_gbps)
                                        for t in types]))},
        idle=req.idle,
        can_shrink={"GPU": gpus > 1, "GPUMemory": gpus > 1,
                    "NetworkBandwidth": np.zeros(R, dtype=bool)})

    def utilization(cores, memory, gpu_count):
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"cpu_max": 100 * cpu_max / cores,
                    "cpu_sizing": 100 * req.cpu_level / cores,
                    "mem_max": 100 * req.mem_level / memory,
                    "gpu_sizing": np.where(gpu_count > 0, 100 * gpu_level / np.maximum(
                        gpu_count, 1e-12), np.nan)}

    def risk(u):
        worst = np.fmax(np.fmax(u["cpu_sizing"], u["mem_max"]), u["gpu_sizing"]) / 100.0
        return performance_risk(worst, volatile=volatile)

    current_u = utilization(cpu_cap, mem_cap, gpus)
    current_risk = risk(current_u).tolist()
    current_labels = risk_label(np.array(current_risk)).tolist()
    current_u = _as_lists(current_u)
    option_u = []
    option_risk = []
    for k in range(choice.index.shape[1]):
        cols = choice.index[:, k]
        u = utilization(view.capacity[cols], view.memory[cols], view.gpus[cols])
        option_risk.append(risk(u).tolist())
        option_u.append(_as_lists(u))

    recs = []
    for r, (h, t) in enumerate(zip(batch, types, strict=True)):
        if hours[r] < MIN_DATA_HOURS:
            message = _insufficient(hours[r])
            if errors == "raise":
                raise InsufficientDataError(message)
            recs.append(_failed(h, prefs, INSUFFICIENT_DATA, message, hours[r]))
            continue
        count = _instance_count(h)
        price = t.price_per_hour * HOURS_PER_MONTH * count
        config = {"instance_type": t.name}
        if count != 1 or h.resource.kind == "asg":
            config["count"] = count
        current = Current(t.name, config, price, _pick(current_u, r), int(current_risk[r]),
                          str(current_labels[r]))
        options = []
        for k in range(choice.index.shape[1]):
            if not choice.valid[r, k]:
                continue
            o = view.types[choice.index[r, k]]
            o_price = o.price_per_hour * HOURS_PER_MONTH * count
            o_config = {"instance_type": o.name}
            if "count" in config:
                o_config["count"] = count
            options.append(Option(
                rank=len(options) + 1, name=o.name, configuration=o_config,
                monthly_price=o_price, savings_monthly=price - o_price,
                savings_pct=100.0 * (price - o_price) / price if price > 0 else None,
                performance_risk=int(option_risk[k][r]),
                projected_utilization=_pick(option_u[k], r),
                migration_effort=view.migration_effort(t, o), architecture=o.architecture))
        notes = list(req.notes[r]) if req.notes else []
        if not choice.fits[r]:
            notes.append("no catalog type in the candidate set meets the requirement; the "
                         "closest are offered")
        if t.price_estimated:
            notes.append(f"the catalog price of {t.name} is estimated")
        recs.append(Recommendation(
            h.resource.resource_id, h.resource.kind, prefs.policy, str(finding[r]),
            reasons[r], str(classes[r]), int(periods[r]), current, options,
            prefs.lookback_days, round(float(hours[r]), 2), notes))
    return recs


def _instance_count(h: UtilizationHistory) -> int:
    current = h.resource.current
    if h.resource.kind != "asg":
        return 1
    for key in ("desired", "min_size"):
        if current.get(key):
            return int(current[key])
    return 1


# ------------------------------------------------------------------------- services
SERVICE_KINDS = ("container", "function", "volume", "stream", "application", "endpoint")
#: Reference prices (us-east-1, on demand) for what the instance catalog does not cover.
FARGATE_VCPU_HOUR = 0.04048
FARGATE_GIB_HOUR = 0.004445
LAMBDA_GB_SECOND = {"x86_64": 0.0000166667, "arm64": 0.0000133334}
LAMBDA_FULL_VCPU_MB = 1769  # Lambda gives one full vCPU at 1,769 MB, less below
LAMBDA_MAX_SLOWDOWN = 0.05  # an option may be at most 5 % slower at the percentile
KINESIS_SHARD_HOUR = 0.015
KPU_HOUR = 0.11
SHARD_IN_BYTES = 1024 * 1024  # per shard and second: 1 MiB or 1,000 records in,
SHARD_IN_RECORDS = 1000.0  # 2 MiB out
SHARD_OUT_BYTES = 2 * 1024 * 1024
EBS_GB_MONTH = {"gp3": 0.08, "gp2": 0.10, "io1": 0.125, "io2": 0.125, "st1": 0.045,
                "sc1": 0.015}
CONTAINER_OVER_FRACTION = 0.7  # requests are continuous: worth changing from 30 % less


def _services(kind, histories, indices, view, prefs: Preferences, out, errors) -> None:
    T = prefs.lookback_days * 86400 // STEP_SECONDS
    batch = [histories[i] for i in indices]
    grid = _window(batch, T)
    handler = {"container": _containers, "function": _functions, "volume": _volumes,
               "stream": _counts, "application": _counts, "endpoint": _counts}[kind]
    try:
        recs = handler(kind, batch, grid, view, prefs, errors)
    except (LookupError, ValueError) as error:
        if errors == "raise" or isinstance(error, InvalidParameterError):
            raise
        recs = [_failed(h, prefs, UNSUPPORTED, str(error)) for h in batch]
    for i, rec in zip(indices, recs, strict=True):
        out[i] = rec


def _current_number(h: UtilizationHistory, key: str, default=None) -> float:
    value = h.resource.current.get(key, default)
    if value is None or not isinstance(value, (int, float)) or not value > 0:
        raise RecommendationError(f"{h.resource.kind} {h.resource.resource_id!r} needs a "
                                  f"current {key} > 0, got {value!r}")
    return float(value)


def _screen(batch, hours, prefs, errors):
    """Rows with enough data; the others become InsufficientData recommendations."""
    keep, failed = [], {}
    for r, h in enumerate(batch):
        if hours[r] >= MIN_DATA_HOURS:
            keep.append(r)
            continue
        if errors == "raise":
            raise InsufficientDataError(_insufficient(hours[r]))
        failed[r] = _failed(h, prefs, INSUFFICIENT_DATA, _insufficient(hours[r]), hours[r])
    return keep, failed


def _unit_requirements(units: np.ndarray, capacity: np.ndarray, prefs: Preferences):
    """Run the policy on a demand series in capacity units (cores, shards, workers)."""
    R, T = units.shape
    nan = np.full((R, T), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = units / capacity[:, None] * 100.0
    demand = Demand(units, pct, nan, nan, nan, nan, capacity, np.full(R, np.nan),
                    np.zeros(R), np.zeros(R), STEP_SECONDS)
    return requirements(prefs.policy, demand, cpu_percentile=prefs.cpu_percentile,
                        cpu_headroom=prefs.cpu_headroom, mem_headroom=prefs.mem_headroom,
                        horizon_days=prefs.horizon_days, seed=prefs.seed)


def _classes(req, R):
    if req.analysis is None:
        return np.full(R, "", dtype=object), np.zeros(R, dtype=np.int64)
    return req.analysis.workload_class, req.analysis.period_hours


def _containers(kind, batch, grid, view, prefs, errors):
    cpu_cap = np.array([_current_number(h, "cpu") for h in batch])
    mem_cap = np.array([_current_number(h, "memory_gib") for h in batch])
    cpu_pct = grid.matrix(("cpu_pct_max", "cpu_pct"))
    hours = grid.data_hours(cpu_pct)
    mem_pct = grid.matrix(("mem_pct_max", "mem_pct"))
    mem_gib = grid.matrix(("mem_used_gib_max", "mem_used_gib"))
    mem = np.where(np.isfinite(mem_pct), mem_pct / 100 * mem_cap[:, None], mem_gib)
    R, T = cpu_pct.shape
    nan = np.full((R, T), np.nan)
    demand = Demand(cpu_pct / 100 * cpu_cap[:, None], cpu_pct, mem, mem / mem_cap[:, None] * 100,
                    nan, nan, cpu_cap, mem_cap, np.zeros(R), np.zeros(R), STEP_SECONDS)
    req = requirements(prefs.policy, demand, cpu_percentile=prefs.cpu_percentile,
                       cpu_headroom=prefs.cpu_headroom, mem_headroom=prefs.mem_headroom,
                       horizon_days=prefs.horizon_days, seed=prefs.seed)
    need_cpu = np.maximum(np.ceil(np.nan_to_num(req.cpu, nan=0) * 100 - 1e-9) / 100, 0.01)
    need_cpu = np.where(np.isfinite(req.cpu), need_cpu, cpu_cap)
    need_mem = np.where(np.isfinite(req.mem),
                        np.maximum(np.ceil(np.nan_to_num(req.mem) * 64 - 1e-9) / 64, 1 / 16),
                        mem_cap)
    finding, reasons = classify_findings({"CPU": (req.cpu, cpu_cap), "Memory": (req.mem, mem_cap)},
                                         idle=req.idle, over_fraction=CONTAINER_OVER_FRACTION)
    classes, periods = _classes(req, R)
    keep, recs = _screen(batch, hours, prefs, errors)
    for r in keep:
        h = batch[r]

        def price(cpu, memory):
            return (cpu * FARGATE_VCPU_HOUR + memory * FARGATE_GIB_HOUR) * HOURS_PER_MONTH

        def util(cpu, memory, r=r):
            return {"cpu_sizing": 100 * float(req.cpu_level[r]) / cpu,
                    "mem_max": 100 * float(req.mem_level[r]) / memory}

        now = price(cpu_cap[r], mem_cap[r])
        new = price(need_cpu[r], need_mem[r])
        u_now, u_new = util(cpu_cap[r], mem_cap[r]), util(need_cpu[r], need_mem[r])
        volatile = str(classes[r]) in VOLATILE_CLASSES
        risk_now = int(performance_risk(np.nanmax([*u_now.values(), 0]) / 100,
                                        volatile=volatile))
        option = Option(1, f"cpu={need_cpu[r]:g} memory={need_mem[r]:g}GiB",
                        {"cpu": float(need_cpu[r]), "memory_gib": float(need_mem[r])}, new,
                        now - new, 100 * (now - new) / now,
                        int(performance_risk(np.nanmax([*u_new.values(), 0]) / 100,
                                             volatile=volatile)),
                        _finite(u_new), "VeryLow")
        current = Current(f"cpu={cpu_cap[r]:g} memory={mem_cap[r]:g}GiB",
                          dict(h.resource.current), now, _finite(u_now), risk_now,
                          str(risk_label(np.array([risk_now]))[0]))
        recs[r] = Recommendation(h.resource.resource_id, kind, prefs.policy, str(finding[r]),
                                 reasons[r], str(classes[r]), int(periods[r]), current,
                                 [option], prefs.lookback_days, round(float(hours[r]), 2),
                                 list(req.notes[r]) + ["prices: AWS Fargate rates "
                                                       "(us-east-1) for comparison"])
    return [recs[r] for r in range(R)]


def _counts(kind, batch, grid, view, prefs, errors):
    """Streams (shards), applications (parallelism), endpoints (workers)."""
    key = {"stream": "shards", "application": "parallelism", "endpoint": "workers"}[kind]
    cap = np.array([_current_number(h, key) for h in batch])
    if kind == "stream":
        units = np.fmax(np.fmax(
            grid.matrix(("bytes_in_max", "bytes_in")) / SHARD_IN_BYTES,
            grid.matrix(("records_in_max", "records_in")) / SHARD_IN_RECORDS),
            grid.matrix(("bytes_out_max", "bytes_out")) / SHARD_OUT_BYTES)
        spec, unit_price = "StreamThroughput", KINESIS_SHARD_HOUR
    else:
        busy = grid.matrix(("busy_pct_max", "busy_pct"))
        if kind == "endpoint":
            busy = np.where(np.isfinite(busy), busy, grid.matrix(("cpu_pct_max", "cpu_pct")))
        units = busy / 100.0 * cap[:, None]
        spec, unit_price = ("Parallelism", KPU_HOUR) if kind == "application" else (
            "Workers", None)
    hours = grid.data_hours(units)
    req = _unit_requirements(units, cap, prefs)
    need = np.where(np.isfinite(req.cpu), req.cpu, cap)
    count = np.maximum(1, np.ceil(need - 1e-9)).astype(int)
    notes = [list(n) for n in req.notes]
    if kind == "application":  # a growing backlog means the job does not keep up
        lag = grid.matrix(("millis_behind_max", "millis_behind"))
        lagging = _row_quantile(lag, 0.5) > 60_000
        for r in np.flatnonzero(lagging & (count <= cap)):
            count[r] = int(cap[r]) + 1
            need[r] = cap[r] + 1
            notes[r].append("median lag above 60 s: one more parallel instance")
    finding, reasons = classify_findings({spec: (need, cap)}, idle=np.zeros(len(cap), bool),
                                         over_fraction={spec: (cap - 1) / cap})
    classes, periods = _classes(req, len(cap))
    keep, recs = _screen(batch, hours, prefs, errors)
    for r in keep:
        h = batch[r]
        per_unit = unit_price
        if kind == "endpoint":
            name = str(h.resource.current.get("instance_type", ""))
            name = name[3:] if name.startswith("ml.") else name
            per_unit = view().get(name).price_per_hour if name else None
        volatile = str(classes[r]) in VOLATILE_CLASSES

        def entry(n, r=r, volatile=volatile):
            u = {"sizing": 100 * float(req.cpu_level[r]) / n}
            return u, int(performance_risk(u["sizing"] / 100, volatile=volatile))

        now_price = None if per_unit is None else cap[r] * per_unit * HOURS_PER_MONTH
        options = []
        for n in sorted({int(count[r]), int(count[r]) + 1})[: prefs.max_options]:
            u, risk = entry(n)
            price = None if per_unit is None else n * per_unit * HOURS_PER_MONTH
            saving = None if price is None else now_price - price
            options.append(Option(len(options) + 1, f"{n} {key}", {key: n}, price, saving,
                                  None if saving is None else 100 * saving / now_price, risk,
                                  _finite(u), "VeryLow"))
        u_now, risk_now = entry(cap[r])
        current = Current(f"{int(cap[r])} {key}", dict(h.resource.current), now_price,
                          _finite(u_now), risk_now, str(risk_label(np.array([risk_now]))[0]))
        recs[r] = Recommendation(h.resource.resource_id, kind, prefs.policy, str(finding[r]),
                                 reasons[r], str(classes[r]), int(periods[r]), current, options,
                                 prefs.lookback_days, round(float(hours[r]), 2), notes[r])
    return [recs[r] for r in range(len(batch))]


def _volumes(kind, batch, grid, view, prefs, errors):
    iops = grid.sum_matrix((("disk_read_ops_max", "disk_read_ops"),
                            ("disk_write_ops_max", "disk_write_ops")))
    mibps = grid.sum_matrix((("disk_read_bytes_max", "disk_read_bytes"),
                             ("disk_write_bytes_max", "disk_write_bytes"))) / 2**20
    hours = grid.data_hours(np.fmax(iops, mibps))
    configs = [_volume_capacity(h) for h in batch]
    cap_iops = np.array([c[0] for c in configs])
    cap_tp = np.array([c[1] for c in configs])
    req_iops = _unit_requirements(iops, cap_iops, prefs)
    req_tp = _unit_requirements(mibps, cap_tp, prefs)
    need_iops = np.nan_to_num(req_iops.cpu)
    need_tp = np.nan_to_num(req_tp.cpu)
    finding, reasons = classify_findings(
        {"EBSIOPS": (req_iops.cpu, cap_iops), "EBSThroughput": (req_tp.cpu, cap_tp)},
        idle=np.zeros(len(batch), bool),
        can_shrink={"EBSIOPS": cap_iops > 3000, "EBSThroughput": cap_tp > 125})
    classes, periods = _classes(req_iops, len(batch))
    keep, recs = _screen(batch, hours, prefs, errors)
    for r in keep:
        h = batch[r]
        cur = h.resource.current
        size = _current_number(h, "size_gib")
        now = _volume_price(str(cur.get("volume_type", "gp3")), size, cap_iops[r], cap_tp[r])
        choices = []
        if need_iops[r] <= 16000 and need_tp[r] <= 1000:
            tp = float(np.clip(math.ceil(need_tp[r]), 125, 1000))
            io = float(np.clip(math.ceil(need_iops[r] / 100) * 100, 3000, 16000))
            io = max(io, 4 * tp) if tp > 125 else io
            choices.append(("gp3", io, tp))
        io = float(max(100, math.ceil(need_iops[r] / 100) * 100))
        choices.append(("io2", min(io, 256000.0), min(4000.0, max(io * 0.256, need_tp[r]))))
        options = []
        for vtype, io, tp in sorted(choices, key=lambda c: _volume_price(c[0], size, c[1],
                                                                          c[2])):
            price = _volume_price(vtype, size, io, tp)
            u = {"iops_sizing": 100 * float(req_iops.cpu_level[r]) / io,
                 "throughput_sizing": 100 * float(req_tp.cpu_level[r]) / tp}
            risk = int(performance_risk(np.nanmax([*u.values(), 0]) / 100))
            options.append(Option(len(options) + 1, f"{vtype} {io:g} IOPS {tp:g} MiB/s",
                                  {"volume_type": vtype, "size_gib": size, "iops": io,
                                   "throughput_mbps": tp}, price, now - price,
                                  100 * (now - price) / now if now > 0 else None, risk,
                                  _finite(u), "VeryLow" if vtype == cur.get("volume_type")
                                  else "Low"))
        u_now = {"iops_sizing": 100 * float(req_iops.cpu_level[r]) / cap_iops[r],
                 "throughput_sizing": 100 * float(req_tp.cpu_level[r]) / cap_tp[r]}
        risk_now = int(performance_risk(np.nanmax([*u_now.values(), 0]) / 100))
        current = Current(f"{cur.get('volume_type', 'gp3')} {cap_iops[r]:g} IOPS "
                          f"{cap_tp[r]:g} MiB/s", dict(cur), now, _finite(u_now), risk_now,
                          str(risk_label(np.array([risk_now]))[0]))
        recs[r] = Recommendation(h.resource.resource_id, kind, prefs.policy, str(finding[r]),
                                 reasons[r], str(classes[r]), int(periods[r]), current,
                                 options[: prefs.max_options], prefs.lookback_days,
                                 round(float(hours[r]), 2),
                                 list(req_iops.notes[r]) + ["EBS prices: us-east-1"])
    return [recs[r] for r in range(len(batch))]


def _volume_capacity(h: UtilizationHistory) -> tuple[float, float]:
    cur = h.resource.current
    vtype = str(cur.get("volume_type", "gp3"))
    size = _current_number(h, "size_gib")
    if vtype not in EBS_GB_MONTH:
        raise RecommendationError(f"volume_type must be one of {sorted(EBS_GB_MONTH)}, got "
                                  f"{vtype!r}")
    if vtype == "gp3":
        return float(cur.get("iops") or 3000), float(cur.get("throughput_mbps") or 125)
    if vtype == "gp2":
        return float(min(16000, max(100, 3 * size), max(3 * size, 3000) if size <= 1000
                         else 16000)), (128.0 if size <= 170 else 250.0)
    if vtype in ("io1", "io2"):
        io = _current_number(h, "iops")
        return io, float(cur.get("throughput_mbps") or min(4000.0, io * 0.256))
    return float(cur.get("iops") or 500), float(cur.get("throughput_mbps") or 500)


def _volume_price(vtype: str, size: float, iops: float, tp: float) -> float:
    price = EBS_GB_MONTH[vtype] * size
    if vtype == "gp3":
        price += max(0.0, iops - 3000) * 0.005 + max(0.0, tp - 125) * 0.04
    elif vtype == "io1":
        price += iops * 0.065
    elif vtype == "io2":  # tiered per provisioned IOPS-month
        price += (min(iops, 32000) * 0.065 + max(0.0, min(iops, 64000) - 32000) * 0.0455
                  + max(0.0, iops - 64000) * 0.03185)
    return price


def _functions(kind, batch, grid, view, prefs, errors):
    calls = grid.matrix(("invocations",))
    duration = grid.matrix(("duration_ms",))
    duration_peak = grid.matrix(("duration_ms_max", "duration_ms"))
    cpu_share = grid.matrix(("cpu_pct",))
    mem_pct = grid.matrix(("mem_pct_max", "mem_pct"))
    mem_gib = grid.matrix(("mem_used_gib_max", "mem_used_gib"))
    hours = grid.data_hours(np.fmax(calls, duration))
    keep, recs = _screen(batch, hours, prefs, errors)
    sizes = np.arange(128, 10241, 64, dtype=float)
    headroom = 0.2 if prefs.mem_headroom is None else prefs.mem_headroom
    for r in keep:
        h = batch[r]
        m0 = _current_number(h, "memory_mb")
        arch = str(h.resource.current.get("architecture", "x86_64"))
        rate = LAMBDA_GB_SECOND.get(arch, LAMBDA_GB_SECOND["x86_64"])
        ok = np.isfinite(calls[r]) & np.isfinite(duration[r])
        if not ok.any():
            raise InsufficientDataError("a function needs invocations and duration_ms")
        monthly_calls = float(np.nanmean(calls[r])) * HOURS_PER_MONTH * 3600
        mean_ms = float(np.sum(calls[r][ok] * duration[r][ok]) / max(np.sum(calls[r][ok]),
                                                                      1e-12))
        level_ms = float(np.nanpercentile(duration_peak[r], prefs.cpu_percentile))
        notes = []
        if np.isfinite(cpu_share[r]).any():
            bound = float(np.clip(np.nanmedian(cpu_share[r]) / 100.0, 0.0, 1.0))
        else:
            bound = 0.5
            notes.append("no cpu_pct: assumed half of the duration is CPU-bound")
        used_mb = np.fmax(mem_pct[r] / 100 * m0, mem_gib[r] * 1024)
        peak_mb = float(np.nanmax(used_mb)) if np.isfinite(used_mb).any() else m0 / (1 + headroom)
        floor_mb = max(128.0, peak_mb * (1 + headroom))

        model = _LambdaModel(m0, bound, mean_ms, monthly_calls, rate)
        projected, cost = model.projected, model.cost
        now = float(cost(m0))
        feasible = (sizes >= floor_mb) & (projected(level_ms, sizes)
                                          <= level_ms * (1 + LAMBDA_MAX_SLOWDOWN))
        if not feasible.any():
            feasible = sizes >= min(floor_mb, sizes[-1])
        order = np.flatnonzero(feasible)[np.argsort(cost(sizes[feasible]), kind="stable")]
        picked: list[float] = []
        for j in order:
            if all(abs(sizes[j] - p) >= 256 for p in picked):
                picked.append(float(sizes[j]))
            if len(picked) == prefs.max_options:
                break
        options = []
        for m in picked:
            price = float(cost(m))
            u = {"memory_max": 100 * peak_mb / m,
                 "duration_ms_projected": float(projected(level_ms, m))}
            risk = int(performance_risk(peak_mb * (1 + 0.0) / m))
            options.append(Option(len(options) + 1, f"{m:g} MB", {"memory_mb": m}, price,
                                  now - price, 100 * (now - price) / now if now > 0 else None,
                                  risk, u, "VeryLow", arch))
        best = picked[0]
        if floor_mb > m0:
            finding, reasons = "Underprovisioned", ["MemoryUnderprovisioned"]
        elif best < m0 and cost(best) < 0.95 * now:
            finding, reasons = "Overprovisioned", ["MemoryOverprovisioned"]
        elif best > m0 and projected(level_ms, best) < 0.9 * level_ms:
            finding, reasons = "Underprovisioned", ["MemoryUnderprovisioned"]
            notes.append("CPU-bound: more memory (and with it CPU) runs it faster for "
                         "about the same cost")
        else:
            finding, reasons = "Optimized", []
        risk_now = int(performance_risk(peak_mb / m0))
        current = Current(f"{m0:g} MB", dict(h.resource.current), now,
                          {"memory_max": 100 * peak_mb / m0, "duration_ms": level_ms},
                          risk_now, str(risk_label(np.array([risk_now]))[0]))
        notes.append(f"duration model: {100 * bound:.0f}% CPU-bound, CPU share scaling with "
                     f"memory up to {LAMBDA_FULL_VCPU_MB} MB; Lambda prices (us-east-1)")
        recs[r] = Recommendation(h.resource.resource_id, kind, prefs.policy, finding, reasons,
                                 "", 0, current, options, prefs.lookback_days,
                                 round(float(hours[r]), 2), notes)
    return [recs[r] for r in range(len(batch))]


@dataclass
class _LambdaModel:
    """Duration and monthly cost of a function at another memory size: the CPU-bound
    share of the duration scales with the CPU share Lambda gives (proportional to memory
    up to one vCPU at 1,769 MB; single-threaded code gains nothing beyond)."""

    memory_mb: float
    cpu_bound: float
    mean_ms: float
    monthly_calls: float
    rate: float

    def projected(self, ms, m):
        speed_now = min(self.memory_mb, LAMBDA_FULL_VCPU_MB) / LAMBDA_FULL_VCPU_MB
        speed = np.minimum(m, LAMBDA_FULL_VCPU_MB) / LAMBDA_FULL_VCPU_MB
        return ms * ((1 - self.cpu_bound) + self.cpu_bound * speed_now / speed)

    def cost(self, m):
        return (self.monthly_calls * self.projected(self.mean_ms, m) / 1000 * m / 1024
                * self.rate)


def _finite(u: dict) -> dict[str, float]:
    return {k: float(v) for k, v in u.items() if v is not None and np.isfinite(v)}


# --------------------------------------------------------------------- catalog view
_COMMON_CATEGORIES = ("General purpose", "Compute optimized", "Memory optimized")
_FAMILY = re.compile(r"^([a-z]+)(\d+)([a-z-]*)$")


@dataclass
class _Choice:
    index: np.ndarray  # (R, k) catalog rows, best first
    valid: np.ndarray  # (R, k) False where fewer than k candidates exist
    fits: np.ndarray  # (R,) whether the first option meets every requirement


class _CatalogView:
    """The catalog as arrays, with the candidate rules and a vectorized selection."""

    def __init__(self, catalog) -> None:
        self.catalog = catalog
        self.types: list[InstanceType] = [t for t in catalog]
        self.by_name = {t.name: t for t in self.types}
        self.capacity = np.array([t.vcpu * t.cpu_speed for t in self.types], dtype=float)
        self.memory = np.array([t.memory_gib for t in self.types], dtype=float)
        self.gpus = np.array([t.gpus for t in self.types], dtype=float)
        self.gpu_memory = np.array([t.gpu_memory_gib for t in self.types], dtype=float)
        self.network = np.array([t.network_gbps for t in self.types], dtype=float)
        self.price = np.array([t.price_per_hour for t in self.types], dtype=float)
        self._masks: dict[tuple, np.ndarray] = {}

    @classmethod
    def of(cls, catalog) -> _CatalogView:
        if isinstance(catalog, cls):
            return catalog
        if catalog is None:
            from .catalog import load_catalog

            catalog = load_catalog()
        return cls(catalog)

    def get(self, name: str) -> InstanceType:
        getter = getattr(self.catalog, "get", None)
        if callable(getter) and not isinstance(self.catalog, dict):
            return getter(name)
        key = name.strip().lower()
        if key not in self.by_name:
            raise RecommendationError(f"unknown instance type {name!r}: not in the catalog")
        return self.by_name[key]

    def candidates(self, current: InstanceType, allow_graviton: bool,
                   include_burstable: bool) -> np.ndarray:
        """Boolean mask of the types this resource may move to (module docstring)."""
        key = (current.name, allow_graviton, include_burstable)
        if key in self._masks:
            return self._masks[key]
        cur_family = _family_parts(current.family)
        mask = np.isfinite(self.price) & (self.price > 0)
        for j, t in enumerate(self.types):
            if not mask[j]:
                continue
            ok = t.current_generation or t.family == current.family
            if current.gpus > 0:
                ok = ok and t.family == current.family
            else:
                parts = _family_parts(t.family)
                category_ok = (t.category in _COMMON_CATEGORIES if current.category in
                               _COMMON_CATEGORIES else t.category == current.category)
                ok = ok and t.gpus == 0 and category_ok
                ok = ok and ("d" in parts[2]) == ("d" in cur_family[2])
                ok = ok and ("flex" in t.family) <= ("flex" in current.family)
                ok = ok and (not t.burstable or include_burstable or current.burstable)
            if t.architecture != current.architecture:
                ok = ok and allow_graviton and t.architecture == "arm64"
            mask[j] = ok
        self._masks[key] = mask
        return mask

    def select(self, types: Sequence[InstanceType], cpu, mem, gpu, gpu_mem, net, k: int, *,
               allow_graviton: bool, include_burstable: bool,
               tolerance: float = 0.0) -> _Choice:
        """The ``k`` cheapest candidates meeting every need, per resource.

        With ``tolerance`` > 0 the first option is chosen among the candidates that
        meet every need and cost at most ``1 + tolerance`` times the cheapest of them,
        by a key that does not depend on the need (see :meth:`_stable_order`); the
        others follow by price.
        """
        R = len(types)
        index = np.zeros((R, k), dtype=np.int64)
        valid = np.zeros((R, k), dtype=bool)
        fits = np.zeros(R, dtype=bool)
        groups: dict[str, list[int]] = {}
        for r, t in enumerate(types):
            groups.setdefault(t.name, []).append(r)
        for rows in groups.values():
            rows_a = np.array(rows)
            cand = np.flatnonzero(self.candidates(types[rows[0]], allow_graviton,
                                                  include_burstable))
            if cand.size == 0:
                continue
            tol = 1 + 1e-9
            ok = ((self.capacity[cand] * tol >= cpu[rows_a, None])
                  & (self.memory[cand] * tol >= mem[rows_a, None])
                  & (self.gpus[cand] * tol >= gpu[rows_a, None])
                  & (self.gpu_memory[cand] * tol >= gpu_mem[rows_a, None])
                  & ((self.network[cand] <= 0) | (self.network[cand] * tol >= net[rows_a, None])))
            price = np.where(ok, self.price[cand][None, :], np.inf)
            if tolerance > 0:
                order = self._stable_order(types[rows[0]], cand, ok, price, tolerance)[:, :k]
            else:
                order = np.argsort(price, axis=1, kind="stable")[:, :k]
            chosen_ok = np.take_along_axis(ok, order, axis=1)
            fit = chosen_ok[:, 0]
            if not fit.all():  # nothing fits: offer the closest (largest shortfall ratio)
                with np.errstate(invalid="ignore", divide="ignore"):
                    ratio = np.minimum.reduce([
                        self.capacity[cand][None, :] / cpu[rows_a, None],
                        self.memory[cand][None, :] / mem[rows_a, None],
                        np.where(gpu[rows_a, None] > 0,
                                 self.gpus[cand][None, :] / gpu[rows_a, None], np.inf)])
                score = np.where(np.isfinite(ratio), -ratio, np.inf) + 1e-9 * (
                    self.price[cand][None, :])
                closest = np.argsort(score, axis=1, kind="stable")[:, :k]
                order = np.where(fit[:, None], order, closest)
                chosen_ok = np.where(fit[:, None], chosen_ok, True)
            n = order.shape[1]
            index[rows_a, :n] = cand[order]
            valid[rows_a, :n] = chosen_ok
            fits[rows_a] = fit
        return _Choice(index, valid, fits)

    def _stable_order(self, current: InstanceType, cand: np.ndarray, ok: np.ndarray,
                      price: np.ndarray, tolerance: float) -> np.ndarray:
        """Candidate order (per row) with near-equal prices ranked stably: among the
        fitting candidates within ``tolerance`` of the cheapest, the current type first,
        then the current family, then the most capacity (reference cores times memory),
        then price and name; every other candidate after them, by price. A requirement
        that moves a little then keeps the same choice unless the cheapest price moves."""
        cheapest = price.min(axis=1, keepdims=True)
        near = ok & (price <= cheapest * (1 + tolerance))
        names = [self.types[j].name for j in cand]
        is_current = np.array([n == current.name for n in names])
        same_family = np.array([self.types[j].family == current.family for j in cand])
        size = -np.log(np.maximum(self.capacity[cand], 1e-12)) - np.log(
            np.maximum(self.memory[cand], 1e-12))
        name_rank = np.argsort(np.argsort(np.array(names, dtype=object), kind="stable"))
        R, C = price.shape

        def full(v):
            return np.broadcast_to(v, (R, C))

        keys = (full(name_rank), price, np.where(near, full(size), 0.0),
                np.where(near, full(~same_family), False), np.where(near, full(~is_current),
                                                                     False), ~near)
        return np.lexsort(keys, axis=1)

    def migration_effort(self, current: InstanceType, option: InstanceType) -> str:
        return migration_effort(current.family, current.architecture, option.family,
                                option.architecture, current.gpus, option.gpus)


def _family_parts(family: str) -> tuple[str, int, str]:
    match = _FAMILY.match(family)
    return (match.group(1), int(match.group(2)), match.group(3)) if match else (family, 0, "")


# -------------------------------------------------------------------------- windows
class _Window:
    """The last ``T`` 5-minute buckets of each history, as rows of matrices."""

    def __init__(self, histories: Sequence[UtilizationHistory], T: int) -> None:
        self.histories = histories
        self.T = T
        self.places: list[tuple[int, np.ndarray | None, int]] = []
        for h in histories:
            ts = h.timestamps
            if len(ts) == 0:
                self.places.append((0, None, 0))
                continue
            end = int(ts[-1]) - int(ts[-1]) % STEP_SECONDS
            start = end - (T - 1) * STEP_SECONDS
            first = int(np.searchsorted(ts, start))
            seg = ts[first:]
            n = len(seg)
            regular = n > 0 and int(seg[-1] - seg[0]) == STEP_SECONDS * (n - 1) and (
                int(seg[0]) - start) // STEP_SECONDS == T - n
            cols = None if regular else ((seg - start) // STEP_SECONDS).astype(np.int64)
            self.places.append((first, cols, n))

    def matrix(self, names: Iterable[str], optional: bool = False) -> np.ndarray | None:
        """Rows of the first of ``names`` each history has (all-NaN rows if none); with
        ``optional``, None when no history has any of them."""
        names = tuple(names)
        if optional and not any(m in h.metrics for h in self.histories for m in names):
            return None
        out = np.empty((len(self.histories), self.T))
        for r, (h, (first, cols, n)) in enumerate(zip(self.histories, self.places,
                                                             strict=True)):
            name = next((m for m in names if m in h.metrics), None)
            if name is None or n == 0:
                out[r] = np.nan
                continue
            values = h.metrics[name][first:]
            if cols is None:
                out[r, : self.T - n] = np.nan
                out[r, self.T - n:] = values
            else:
                row = np.full(self.T, -np.inf)
                ok = np.isfinite(values)
                np.maximum.at(row, cols[ok], values[ok])
                out[r] = np.where(np.isneginf(row), np.nan, row)
        return out

    def sum_matrix(self, groups, optional: bool = False) -> np.ndarray | None:
        """Sum of several metrics (each the first present of a group); NaN if none."""
        parts = [p for p in (self.matrix(names, optional) for names in groups)
                 if p is not None]
        if not parts:
            return None
        present = np.zeros_like(parts[0], dtype=bool)
        total = np.zeros_like(parts[0])
        for p in parts:
            present |= np.isfinite(p)
            total += np.nan_to_num(p)
        return np.where(present, total, np.nan)

    def data_hours(self, matrix: np.ndarray) -> np.ndarray:
        """Hours between the first and last measured bucket of each row (plus one)."""
        valid = np.isfinite(matrix)
        anyv = valid.any(axis=1)
        first = np.argmax(valid, axis=1)
        last = matrix.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
        return np.where(anyv, (last - first + 1) * STEP_SECONDS / 3600.0, 0.0)


def _window(histories: Sequence[UtilizationHistory], T: int) -> _Window:
    return _Window(histories, T)


# -------------------------------------------------------------------------- helpers
def _insufficient(hours: float) -> str:
    return (f"only {hours:.1f} hours of data in the lookback; at least "
            f"{MIN_DATA_HOURS:g} hours are needed")


def _failed(h: UtilizationHistory, prefs: Preferences, finding: str, message: str,
            hours: float = 0.0) -> Recommendation:
    return Recommendation(h.resource.resource_id, h.resource.kind, prefs.policy, finding, [],
                          "", 0, None, [], prefs.lookback_days, round(float(hours), 2),
                          [message])


def _guarded(make, h, prefs, errors):
    try:
        return make()
    except InsufficientDataError as error:
        if errors == "raise":
            raise
        return _failed(h, prefs, INSUFFICIENT_DATA, str(error))
    except (LookupError, ValueError) as error:
        if errors == "raise" or isinstance(error, InvalidParameterError):
            raise
        return _failed(h, prefs, UNSUPPORTED, str(error))


def _check_choice(name: str, value, allowed: tuple) -> None:
    ok = not isinstance(value, bool) and any(
        value == a and type(value) in (int, float, str, type(a)) for a in allowed)
    if isinstance(value, float) and np.isnan(value):
        ok = False
    if not ok:
        raise InvalidParameterError(f"{name} must be one of "
                                    f"{', '.join(repr(a) for a in allowed)}; got {value!r}")


def _pick(arrays: dict[str, list], r: int) -> dict[str, float]:
    return {k: v[r] for k, v in arrays.items() if math.isfinite(v[r])}


def _as_lists(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    return {k: np.asarray(v, dtype=float).tolist() for k, v in arrays.items()}


def _row_max(x: np.ndarray) -> np.ndarray:
    from .workload import nanmax_from

    return nanmax_from(np.ascontiguousarray(x), np.zeros(x.shape[0], dtype=np.int64))


def _row_quantile(x: np.ndarray, q: float) -> np.ndarray:
    from .workload import nan_quantiles

    if not np.isfinite(x).any():
        return np.full(x.shape[0], np.nan)
    return nan_quantiles(x, [q])[:, 0]


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
