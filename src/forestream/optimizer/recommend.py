"""Right-sizing recommendations: the library API of :mod:`forestream.optimizer`.

:func:`recommend` sizes one resource, :func:`recommend_many` a whole fleet (vectorized:
the metrics of up to a few thousand resources at a time are laid on one 5-minute grid
and every step runs on the whole matrix). Both take the same preferences:

- ``lookback_days``: 14 (default), 32 or 93; at least 30 hours of data are required;
- ``policy``: ``"forestream"`` (default) or one of the baselines ``"aws-default"``,
  ``"max-rule"``, ``"vpa"``, ``"krr"`` (see :mod:`~forestream.optimizer.policies`);
- ``slo_percentile`` (90, 95, 99 default, 99.5) and ``slo_utilization`` (50-100,
  default 90): the ``forestream`` policy's service level, that percentile of 5-minute
  CPU utilization at most that percent of capacity;
- ``cpu_percentile``: 90, 95 or 99.5 (default), on 5-minute maxima (``aws-default``);
- ``cpu_headroom`` (0, 0.2, 0.3) and ``mem_headroom`` (0.1, 0.2, 0.3): None keeps the
  policy's own (20 % for ``aws-default``; none on top of the SLO for ``forestream``);
- ``horizon_days``: the period a recommendation is for, how far ahead growth is
  projected (default 14);
- ``allow_graviton``: offer arm64 types to x86 workloads (default False: the software
  must have arm64 builds, which metrics cannot tell); ``include_burstable``: offer
  T-family types to non-burstable instances too (default False; ``forestream`` offers a
  burstable type only while its CPU credits last, see :mod:`.instance_choice`);
- ``max_options``: ranked options per resource (default 3).

Instances (and Auto Scaling groups, per instance) get instance types from the catalog:
the cheapest types whose capacity covers what the policy asks for (CPU in reference
cores, i.e. vCPUs times the catalog's relative ``cpu_speed``; memory; GPUs within the
same GPU family; sustained network baseline), among current-generation general
purpose, compute and memory optimized types of the same architecture (a GPU type only
within its family; a type with local disks only among types with local disks). The
``forestream`` policy (:mod:`.slo_policy`) sizes to its service level with the spread
of the lookback's days, and picks among cheaper types the one with the highest
expected saving (chance of keeping the SLO times the saving; at least 80 % chance),
gives a high-risk first option up for a safe one costing at most 10 % more, and ranks
fitting types within 3 % of the cheapest by a key that does not depend on the need
(the current type, then the current family, then the most capacity), so that a need
moving a little does not swap near-equally priced types; the baselines take the
cheapest. An instance's finding agrees with its first option: over-provisioned when it
is at least 10 % cheaper, never optimized then. Each
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

import numpy as np

from .catalog.view import CatalogView
from .instance_sizing import size_instances
from .service_sizing import SERVICE_KINDS, size_services
from .types import HOURS_PER_MONTH as HOURS_PER_MONTH
from .types import LOOKBACK_DAYS as LOOKBACK_DAYS
from .types import MIN_DATA_HOURS as MIN_DATA_HOURS
from .types import STEP_SECONDS as STEP_SECONDS
from .types import Current as Current
from .types import (
    InstanceType,
    InvalidParameterError,
    Preferences,
    Recommendation,
    UtilizationHistory,
)
from .types import InsufficientDataError as InsufficientDataError
from .types import Option as Option
from .types import RecommendationError as RecommendationError

# The sizing itself lives beside this module, which keeps the API: instance_sizing.py
# (instances and Auto Scaling groups), service_sizing.py (containers, functions, volumes,
# streams, applications, endpoints), catalog/view.py (candidate types and their
# selection) and _grid.py (histories on the 5-minute grid); what they share and return
# is in types.py.

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
    views: list[CatalogView] = []

    def view() -> CatalogView:
        if not views:
            views.append(CatalogView.of(catalog))
        return views[0]

    for kind, indices in by_kind.items():
        if kind in ("instance", "asg"):
            size_instances(histories, indices, view(), prefs, out, errors, progress)
        elif kind in SERVICE_KINDS:
            size_services(kind, histories, indices, view, prefs, out, errors)
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
    view = CatalogView.of(catalog)
    current = view.get(current) if isinstance(current, str) else current
    mask = view.candidates(current, allow_graviton, include_burstable)
    chosen = [view.types[j] for j in np.flatnonzero(mask)]
    return sorted(chosen, key=lambda t: (t.price_per_hour, t.vcpu, t.name))
