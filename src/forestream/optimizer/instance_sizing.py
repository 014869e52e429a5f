"""Instance and Auto Scaling group sizing for
:func:`~forestream.optimizer.recommend.recommend_many`.

The metrics of a batch of resources are laid on one 5-minute grid and every step (the
policy's requirements, the candidate selection, findings, risk) runs on the whole
matrix; see the :mod:`~forestream.optimizer.recommend` docstring for the rules.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._grid import _row_max, _row_quantile, _window
from .catalog.view import CatalogView
from .findings import INSUFFICIENT_DATA, UNSUPPORTED, classify_findings
from .policies import Demand, requirements
from .risk import VOLATILE_CLASSES, performance_risk, risk_label
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
#: forestream: relative error (one standard deviation) of the lookback's sizing
#: percentile as a forecast of the next period's
LEVEL_ERROR = 0.10


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


def _instance_batch(batch, types, view: CatalogView, prefs: Preferences, T: int, errors):
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
    if prefs.policy == "forestream" and prefs.cpu_headroom is None:
        need_cpu = _expected_saving_cpu(types, view, prefs, req.cpu_level, need_cpu, need_mem,
                                        need_gpu, need_gpu_mem, np.nan_to_num(net_need))
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
            message = insufficient_data_note(hours[r])
            if errors == "raise":
                raise InsufficientDataError(message)
            recs.append(failed_recommendation(h, prefs, INSUFFICIENT_DATA, message, hours[r]))
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


def _expected_saving_cpu(types, view: CatalogView, prefs: Preferences, level, need_cpu,
                         need_mem, need_gpu, need_gpu_mem, net) -> np.ndarray:
    """forestream, when its headroom rule downsizes: the CPU need that maximizes the
    expected saving.

    The lookback's sizing percentile (``level``, trend included) forecasts the next
    period's with a relative error of about ``LEVEL_ERROR`` (normal approximation), so
    a candidate of capacity ``c`` breaks the SLO with probability
    ``1 - Phi((c / level - 1) / LEVEL_ERROR)``; a recommendation that breaks it is
    rolled back and saves nothing. Among the candidates cheaper than the current type
    that meet every other need and hold at least the level (more likely to hold than
    not), the one with the highest ``P(holds) * (price now - price)`` sets the CPU
    need: a larger type where it costs little more for much less risk, a smaller one
    where the step down saves much for little added risk. Without a cheaper candidate
    meeting the headroom rule (upsizing) the need stays as the policy set it.
    """
    out = need_cpu.copy()
    groups: dict[str, list[int]] = {}
    for r, t in enumerate(types):
        groups.setdefault(t.name, []).append(r)
    tol = 1 + 1e-9
    for names in groups.values():
        rows = np.array(names)
        current = types[rows[0]]
        cand = np.flatnonzero(view.candidates(current, prefs.allow_graviton,
                                              prefs.include_burstable))
        cheaper = view.price[cand] < current.price_per_hour
        if cand.size == 0 or not cheaper.any():
            continue
        cand = cand[cheaper]
        cap = view.capacity[cand][None, :]
        other = ((view.memory[cand] * tol >= need_mem[rows, None])
                 & (view.gpus[cand] * tol >= need_gpu[rows, None])
                 & (view.gpu_memory[cand] * tol >= need_gpu_mem[rows, None])
                 & ((view.network[cand] <= 0) | (view.network[cand] * tol >= net[rows, None])))
        lvl = level[rows, None]
        usable = np.isfinite(lvl[:, 0]) & (lvl[:, 0] > 0) & (
            other & (cap * tol >= need_cpu[rows, None])).any(axis=1)
        if not usable.any():
            continue
        rows, other, lvl = rows[usable], other[usable], lvl[usable]
        with np.errstate(invalid="ignore", divide="ignore"):
            holds = _normal_cdf((cap / lvl - 1.0) / LEVEL_ERROR)
        gain = np.where(other & (cap * tol >= lvl),
                        holds * (current.price_per_hour - view.price[cand])[None, :], -np.inf)
        out[rows] = cap[0, np.argmax(gain, axis=1)]
    return out


@njit(cache=True)
def _normal_cdf(z):
    """Standard normal CDF of a 2-D array (NaN stays NaN)."""
    out = np.empty(z.shape)
    for i in range(z.shape[0]):
        for j in range(z.shape[1]):
            out[i, j] = 0.5 * (1.0 + math.erf(z[i, j] / math.sqrt(2.0)))
    return out


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
