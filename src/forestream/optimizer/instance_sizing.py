"""Instance and Auto Scaling group sizing for
:func:`~forestream.optimizer.recommend.recommend_many`.

The metrics of a batch of resources are laid on one 5-minute grid and every step (the
policy's requirements, the candidate selection, findings, risk) runs on the whole
matrix; see the :mod:`~forestream.optimizer.recommend` docstring for the rules.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ._grid import _row_max, _row_quantile, _window
from .catalog.view import CatalogView, _Choice
from .findings import INSUFFICIENT_DATA, UNSUPPORTED, classify_findings
from .instance_choice import (
    UNSAFE_RISK,
    agree_with_options,
    credit_allowed,
    expected_saving_cpu,
    safer_choice,
)
from .policies import Demand, Requirements, requirements
from .risk import VOLATILE_CLASSES, performance_risk, risk_label, slo_risk
from .types import (
    HOURS_PER_MONTH,
    MIN_DATA_HOURS,
    STABLE_PRICE_TOLERANCE,
    STEP_SECONDS,
    Current,
    InstanceType,
    InsufficientDataError,
    Option,
    Preferences,
    Recommendation,
    RecommendationError,
    UtilizationHistory,
    failed_recommendation,
    insufficient_data_note,
)

_CELLS_PER_CHUNK = 6_000_000  # resources x samples per batch: bounds memory


def size_instances(histories, indices, view: CatalogView, prefs: Preferences, out, errors,
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
            out[i] = failed_recommendation(h, prefs, UNSUPPORTED, str(error))
    chunk = max(1, _CELLS_PER_CHUNK // T)
    for begin in range(0, len(usable), chunk):
        rows = usable[begin: begin + chunk]
        batch = _instance_batch([histories[i] for i in rows], types[begin: begin + chunk],
                                view, prefs, T, errors)
        for i, rec in zip(rows, batch, strict=True):
            out[i] = rec
        if progress is not None:
            progress(len(rows))


def _instance_batch(batch: Sequence[UtilizationHistory], types: Sequence[InstanceType],
                    view: CatalogView, prefs: Preferences, T: int,
                    errors: str) -> list[Recommendation]:
    """The recommendations of one batch of resources whose current types are ``types``."""
    caps = _Capacities.of(types)
    demand, hours, net = _batch_demand(batch, caps, T)
    req = _requirements(demand, prefs)
    net_need = _network_need(net, prefs, len(batch))
    needs = _needs(req, caps, net_need)
    allowed = credit_allowed(types, demand, req, view, prefs)
    if req.cpu_draws is not None and prefs.cpu_headroom is None:
        needs = (expected_saving_cpu(types, view, prefs, req.cpu_draws, req.slo_utilization,
                                     needs, np.nan_to_num(net_need), allowed), *needs[1:])
    choice = _select(types, needs, net_need, view, prefs, allowed)
    classes, periods = _workload(req, len(batch))
    load = _Load.of(demand, req, classes)
    current, options = _projections(load, caps, view, choice)
    if req.cpu_draws is not None:
        choice, options = _prefer_safe(types, needs, net_need, view, prefs, allowed, load,
                                       choice, options)
    finding, reasons = _findings(req, caps, net_need, types, view, choice)
    sizing = _Sizing(req, choice, finding, reasons, classes, periods, current, options)
    return [_recommendation(h, t, r, hours[r], sizing, view, prefs, errors)
            for r, (h, t) in enumerate(zip(batch, types, strict=True))]


# --------------------------------------------------------------------------- demand
@dataclass(frozen=True)
class _Capacities:
    """The current types' capacities, one entry per resource of a batch."""

    cpu: np.ndarray  # reference cores: vCPU x relative CPU speed
    mem: np.ndarray  # GiB
    gpus: np.ndarray
    gpu_mem: np.ndarray  # GiB
    network: np.ndarray  # Gbit/s: the burst rate where above the baseline

    @classmethod
    def of(cls, types: Sequence[InstanceType]) -> _Capacities:
        """The capacities of ``types``, in order."""
        vcpu = np.array([t.vcpu for t in types], dtype=float)
        speed = np.array([t.cpu_speed for t in types], dtype=float)
        return cls(vcpu * speed,
                   np.array([t.memory_gib for t in types], dtype=float),
                   np.array([t.gpus for t in types], dtype=float),
                   np.array([t.gpu_memory_gib for t in types], dtype=float),
                   np.array([max(t.network_burst_gbps, t.network_gbps) for t in types]))


def _batch_demand(batch: Sequence[UtilizationHistory], caps: _Capacities, T: int
                  ) -> tuple[Demand, np.ndarray, np.ndarray | None]:
    """The batch's demand, its data hours and its network bytes (None: no one measures it)."""
    grid = _window(batch, T)
    cpu_pct = grid.matrix(("cpu_pct_max", "cpu_pct"))
    hours = grid.data_hours(cpu_pct)
    # Metrics no resource of the batch has stay None: no (R, T) matrix of NaN to scan.
    mem, mem_pct = _memory_demand(
        grid.matrix(("mem_pct_max", "mem_pct"), optional=True),
        grid.matrix(("mem_used_gib_max", "mem_used_gib"), optional=True), caps.mem)
    gpu_pct = grid.matrix(("gpu_pct_max", "gpu_pct"), optional=True)
    gpu_mem_pct = grid.matrix(("gpu_mem_pct_max", "gpu_mem_pct"), optional=True)
    net = grid.sum_matrix((("net_in_bytes_max", "net_in_bytes"),
                           ("net_out_bytes_max", "net_out_bytes")), optional=True)
    demand = Demand(_share(cpu_pct, caps.cpu), cpu_pct, mem, mem_pct,
                    None if gpu_pct is None else _share(gpu_pct, caps.gpus),
                    None if gpu_mem_pct is None else _share(gpu_mem_pct, caps.gpu_mem),
                    caps.cpu, caps.mem, caps.gpus, caps.gpu_mem, STEP_SECONDS)
    return demand, hours, net


def _memory_demand(mem_pct: np.ndarray | None, mem_gib: np.ndarray | None,
                   mem_cap: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Memory demand in GiB and in percent of the current type (None: no one measures it)."""
    if mem_gib is None:
        return (None if mem_pct is None else _share(mem_pct, mem_cap)), mem_pct
    from_pct = mem_pct if mem_pct is not None else np.full_like(mem_gib, np.nan)
    mem = np.where(np.isfinite(from_pct), _share(from_pct, mem_cap), mem_gib)
    return mem, mem / mem_cap[:, None] * 100.0


def _share(pct: np.ndarray, capacity: np.ndarray) -> np.ndarray:
    """``pct`` percent of each row's ``capacity``."""
    return pct / 100.0 * capacity[:, None]


# --------------------------------------------------------------------------- needs
def _requirements(demand: Demand, prefs: Preferences) -> Requirements:
    """What ``prefs.policy`` asks for each resource of ``demand``."""
    return requirements(prefs.policy, demand, **prefs.sizing())


def _network_need(net: np.ndarray | None, prefs: Preferences, R: int) -> np.ndarray:
    """The Gbit/s each resource needs (NaN: not measured)."""
    # The network is a constraint every policy keeps the same way (AWS's recipe).
    if net is None:
        return np.full(R, np.nan)
    return _row_quantile(net * 8 / 1e9, prefs.cpu_percentile / 100.0) * 1.2


def _needs(req: Requirements, caps: _Capacities, net_need: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The CPU, memory, GPU and GPU-memory needs a candidate must meet, per resource."""
    need_cpu = np.where(np.isfinite(req.cpu), req.cpu, caps.cpu)
    need_mem = np.where(np.isfinite(req.mem), req.mem, caps.mem)
    need_gpu = np.where(np.isfinite(req.gpu), req.gpu, caps.gpus)
    need_gpu_mem = np.where(np.isfinite(req.gpu_mem), req.gpu_mem, caps.gpu_mem)
    return need_cpu, need_mem, need_gpu, need_gpu_mem


# --------------------------------------------------------------------------- choice
def _select(types: Sequence[InstanceType],
            needs: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
            net_need: np.ndarray, view: CatalogView, prefs: Preferences,
            allowed: np.ndarray | None) -> _Choice:
    """Up to ``prefs.max_options`` catalog types per resource meeting ``needs``, best first."""
    return view.select(types, *needs, np.nan_to_num(net_need), prefs.max_options,
                       allow_graviton=prefs.allow_graviton,
                       include_burstable=prefs.include_burstable,
                       tolerance=STABLE_PRICE_TOLERANCE if prefs.policy == "forestream"
                       else 0.0, allowed=allowed)


def _prefer_safe(types, needs, net_need, view: CatalogView, prefs: Preferences, allowed,
                 load: _Load, choice: _Choice, options: list[_Projection]):
    """forestream: where the first option is rated high risk or more, the cheapest option
    rated at most low risk instead, when it costs at most ``RISK_PREMIUM`` more (the
    needs raised to the 98th percentile of the drawn CPU levels, memory by 10 %)."""
    risk = np.asarray(options[0].risk) if options else np.zeros(0)
    rows = np.flatnonzero(choice.valid[:, 0] & (risk >= UNSAFE_RISK))
    if rows.size == 0:
        return choice, options
    cpu, mem, gpu, gpu_mem = (n[rows] for n in needs)
    assert load.draws is not None
    safe_cpu = np.fmax(cpu, np.nanquantile(load.draws[rows], 0.98, axis=1) / load.slo)
    safe = view.select([types[r] for r in rows], safe_cpu, mem * 1.1, gpu, gpu_mem,
                       np.nan_to_num(net_need[rows]), prefs.max_options,
                       allow_graviton=prefs.allow_graviton,
                       include_burstable=prefs.include_burstable,
                       allowed=None if allowed is None else allowed[rows])
    first = view.price[choice.index[rows, 0]]
    swap = safer_choice(risk[rows], first, safe.index[:, 0], safe.fits & safe.valid[:, 0],
                        view.price[safe.index[:, 0]])
    if not swap.any():
        return choice, options
    index, valid, fits = choice.index.copy(), choice.valid.copy(), choice.fits.copy()
    index[rows[swap]] = safe.index[swap]
    valid[rows[swap]] = safe.valid[swap]
    fits[rows[swap]] = True
    choice = _Choice(index, valid, fits)
    return choice, [load.project(view.capacity[cols], view.memory[cols], view.gpus[cols])
                    for cols in choice.index.T]


def _findings(req: Requirements, caps: _Capacities, net_need: np.ndarray,
              types: Sequence[InstanceType], view: CatalogView, choice: _Choice
              ) -> tuple[np.ndarray, list[list[str]]]:
    """Each resource's finding and its reason codes, consistent with its first option."""
    finding, reasons = _spec_findings(req, caps, net_need)
    current_price = np.array([t.price_per_hour for t in types])
    first_price = np.where(choice.valid[:, 0], view.price[choice.index[:, 0]], current_price)
    first = choice.index[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratios = {"CPU": req.cpu / caps.cpu, "Memory": req.mem / caps.mem}
    reduced = {"CPU": choice.valid[:, 0] & (view.capacity[first] < caps.cpu * (1 - 1e-9)),
               "Memory": choice.valid[:, 0] & (view.memory[first] < caps.mem * (1 - 1e-9))}
    return agree_with_options(finding, reasons, current_price, first_price, ratios, reduced)


def _spec_findings(req: Requirements, caps: _Capacities, net_need: np.ndarray
                   ) -> tuple[np.ndarray, list[list[str]]]:
    """Each resource's finding and reason codes, one specification at a time."""
    has_gpu = caps.gpus > 0
    return classify_findings(
        {"CPU": (req.cpu, caps.cpu), "Memory": (req.mem, caps.mem),
         "GPU": (np.where(has_gpu, req.gpu, np.nan), caps.gpus),
         "GPUMemory": (np.where(has_gpu, req.gpu_mem, np.nan), caps.gpu_mem),
         "NetworkBandwidth": (np.where(net_need > 0, net_need, np.nan), caps.network)},
        idle=req.idle,
        can_shrink={"GPU": caps.gpus > 1, "GPUMemory": caps.gpus > 1,
                    "NetworkBandwidth": np.zeros(len(caps.cpu), dtype=bool)})


def _workload(req: Requirements, R: int) -> tuple[np.ndarray, np.ndarray]:
    """Each resource's workload class and period in hours ("" and 0 without an analysis)."""
    if req.analysis is not None:
        return req.analysis.workload_class, req.analysis.period_hours
    return np.full(R, "", dtype=object), np.zeros(R, dtype=np.int64)


# --------------------------------------------------------------------------- projections
@dataclass(frozen=True)
class _Projection:
    """Projected utilization (percent, by metric) and performance risk, one entry per resource."""

    utilization: dict[str, list]
    risk: list  # scores 0-4
    labels: list = field(default_factory=list)  # the risk's names (current types only)


@dataclass(frozen=True)
class _Load:
    """The levels a capacity is judged against, one entry per resource."""

    cpu_max: np.ndarray  # reference cores: the lookback's peak
    cpu_level: np.ndarray  # reference cores: the sizing percentile
    mem_level: np.ndarray  # GiB
    gpu_level: np.ndarray  # GPUs busy (NaN: not measured)
    volatile: np.ndarray  # whether the workload class is volatile
    draws: np.ndarray | None = None  # forestream: (R, draws) bootstrapped CPU levels
    slo: float = 1.0  # forestream: the service level's utilization (0-1)

    @classmethod
    def of(cls, demand: Demand, req: Requirements, classes: np.ndarray) -> _Load:
        """The load behind ``demand``, ``req`` and the workload ``classes``."""
        return cls(_row_max(demand.cpu), req.cpu_level, req.mem_level,
                   np.where(np.isfinite(req.gpu), req.gpu, np.nan),
                   np.isin(classes.astype(str), VOLATILE_CLASSES), req.cpu_draws,
                   req.slo_utilization)

    def utilization(self, cores: np.ndarray, memory: np.ndarray,
                    gpu_count: np.ndarray) -> dict[str, np.ndarray]:
        """Projected utilization of these capacities in percent, by metric."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return {"cpu_max": 100 * self.cpu_max / cores,
                    "cpu_sizing": 100 * self.cpu_level / cores,
                    "mem_max": 100 * self.mem_level / memory,
                    "gpu_sizing": np.where(gpu_count > 0, 100 * self.gpu_level / np.maximum(
                        gpu_count, 1e-12), np.nan)}

    def risk(self, u: dict[str, np.ndarray], cores: np.ndarray) -> np.ndarray:
        """The performance risk (0-4) of the projected utilization ``u`` on ``cores``."""
        if self.draws is not None:  # forestream: the chance of breaking the service level
            with np.errstate(invalid="ignore"):
                breaks = (self.draws > self.slo * cores[:, None] * (1 + 1e-9)).mean(axis=1)
            memory = np.fmax(u["mem_max"], u["gpu_sizing"]) / 100.0
            return slo_risk(breaks, memory)
        worst = np.fmax(np.fmax(u["cpu_sizing"], u["mem_max"]), u["gpu_sizing"]) / 100.0
        return performance_risk(worst, volatile=self.volatile)

    def project(self, cores: np.ndarray, memory: np.ndarray, gpu_count: np.ndarray, *,
                labels: bool = False) -> _Projection:
        """The projection onto these capacities (with risk labels if ``labels``)."""
        u = self.utilization(cores, memory, gpu_count)
        risk = self.risk(u, cores).tolist()
        return _Projection(_as_lists(u), risk,
                           risk_label(np.array(risk)).tolist() if labels else [])


def _projections(load: _Load, caps: _Capacities, view: CatalogView, choice: _Choice
                 ) -> tuple[_Projection, list[_Projection]]:
    """The projections onto the current types and onto each option column of ``choice``."""
    current = load.project(caps.cpu, caps.mem, caps.gpus, labels=True)
    options = [load.project(view.capacity[cols], view.memory[cols], view.gpus[cols])
               for cols in choice.index.T]
    return current, options


# --------------------------------------------------------------------------- assembly
@dataclass(frozen=True)
class _Sizing:
    """A batch's sizing, row ``r`` for resource ``r``: what its recommendations are made of."""

    req: Requirements
    choice: _Choice
    finding: np.ndarray
    reasons: list[list[str]]
    classes: np.ndarray
    periods: np.ndarray
    current: _Projection
    options: list[_Projection]  # one per option column of ``choice``


def _recommendation(h: UtilizationHistory, t: InstanceType, r: int, hours: float,
                    sizing: _Sizing, view: CatalogView, prefs: Preferences,
                    errors: str) -> Recommendation:
    """Resource ``r``'s recommendation (InsufficientData, or raised, below MIN_DATA_HOURS)."""
    if hours < MIN_DATA_HOURS:
        message = insufficient_data_note(hours)
        if errors == "raise":
            raise InsufficientDataError(message)
        return failed_recommendation(h, prefs, INSUFFICIENT_DATA, message, hours)
    count = _instance_count(h)
    current = _current(h, t, r, count, sizing.current)
    return Recommendation(
        h.resource.resource_id, h.resource.kind, prefs.policy, str(sizing.finding[r]),
        sizing.reasons[r], str(sizing.classes[r]), int(sizing.periods[r]), current,
        _options(t, r, count, current, sizing, view), prefs.lookback_days,
        round(float(hours), 2), _notes(t, r, sizing))


def _current(h: UtilizationHistory, t: InstanceType, r: int, count: int,
             projection: _Projection) -> Current:
    """Resource ``r``'s current configuration, its monthly price, utilization and risk."""
    config: dict = {"instance_type": t.name}
    if count != 1 or h.resource.kind == "asg":
        config["count"] = count
    return Current(t.name, config, _monthly_price(t, count), _pick(projection.utilization, r),
                   int(projection.risk[r]), str(projection.labels[r]))


def _options(t: InstanceType, r: int, count: int, current: Current, sizing: _Sizing,
             view: CatalogView) -> list[Option]:
    """Resource ``r``'s ranked options, each as many instances as ``current``."""
    price = _monthly_price(t, count)
    options: list[Option] = []
    for k, projection in enumerate(sizing.options):
        if not sizing.choice.valid[r, k]:
            continue
        o = view.types[sizing.choice.index[r, k]]
        o_price = _monthly_price(o, count)
        o_config: dict = {"instance_type": o.name}
        if "count" in current.configuration:
            o_config["count"] = count
        options.append(Option(
            rank=len(options) + 1, name=o.name, configuration=o_config,
            monthly_price=o_price, savings_monthly=price - o_price,
            savings_pct=100.0 * (price - o_price) / price if price > 0 else None,
            performance_risk=int(projection.risk[r]),
            projected_utilization=_pick(projection.utilization, r),
            migration_effort=view.migration_effort(t, o), architecture=o.architecture))
    return options


def _notes(t: InstanceType, r: int, sizing: _Sizing) -> list[str]:
    """Resource ``r``'s notes: the policy's, then any on the choice and on ``t``'s price."""
    notes = list(sizing.req.notes[r]) if sizing.req.notes else []
    if not sizing.choice.fits[r]:
        notes.append("no catalog type in the candidate set meets the requirement; the "
                     "closest are offered")
    if t.price_estimated:
        notes.append(f"the catalog price of {t.name} is estimated")
    return notes


def _monthly_price(t: InstanceType, count: int) -> float:
    """The monthly price of ``count`` instances of ``t``."""
    return t.price_per_hour * HOURS_PER_MONTH * count


def _instance_count(h: UtilizationHistory) -> int:
    current = h.resource.current
    if h.resource.kind != "asg":
        return 1
    for key in ("desired", "min_size"):
        if current.get(key):
            return int(current[key])
    return 1


def _pick(arrays: dict[str, list], r: int) -> dict[str, float]:
    return {k: v[r] for k, v in arrays.items() if math.isfinite(v[r])}


def _as_lists(arrays: dict[str, np.ndarray]) -> dict[str, list]:
    return {k: np.asarray(v, dtype=float).tolist() for k, v in arrays.items()}
