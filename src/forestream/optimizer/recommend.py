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
``forestream`` policy, when it downsizes with its own headroom, first prices the risk:
its sizing percentile forecasts the next period's with about 10 % error, a type that
breaks the SLO is rolled back and saves nothing, so the CPU it asks for is the capacity
of the cheaper candidate with the highest expected saving (never below the percentile
itself; see ``instances._expected_saving_cpu``). It then ranks fitting types within 3 %
of the cheapest by a key that does not depend on the need (the current type, then the
current family, then the most capacity), so that a need moving a little does not swap
near-equally priced types; the baselines take the cheapest. Each
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

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from .policies import CPU_HEADROOMS, CPU_PERCENTILES, MEM_HEADROOMS, POLICIES
from .types import InstanceType, UtilizationHistory

# The sizing itself lives beside this module, which keeps the API and what it returns:
# instances.py (instances and Auto Scaling groups), services.py (containers, functions,
# volumes, streams, applications, endpoints), catalog_view.py (candidate types and their
# selection) and _grid.py (histories on the 5-minute grid). They import the types and
# errors below, so recommend_many and candidate_types import them when called.

HOURS_PER_MONTH = 730
LOOKBACK_DAYS = (14, 32, 93)
MIN_DATA_HOURS = 30.0
STEP_SECONDS = 300
#: forestream picks among fitting types within 3 % of the cheapest by a stable key
STABLE_PRICE_TOLERANCE = 0.03


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
    from .catalog_view import _CatalogView
    from .instances import _instances
    from .services import SERVICE_KINDS, _services

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
    from .catalog_view import _CatalogView

    view = _CatalogView.of(catalog)
    current = view.get(current) if isinstance(current, str) else current
    mask = view.candidates(current, allow_graviton, include_burstable)
    chosen = [view.types[j] for j in np.flatnonzero(mask)]
    return sorted(chosen, key=lambda t: (t.price_per_hour, t.vcpu, t.name))


# -------------------------------------------------------------------------- helpers
def _insufficient(hours: float) -> str:
    return (f"only {hours:.1f} hours of data in the lookback; at least "
            f"{MIN_DATA_HOURS:g} hours are needed")


def _failed(h: UtilizationHistory, prefs: Preferences, finding: str, message: str,
            hours: float = 0.0) -> Recommendation:
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
