"""Sizing of the resource kinds beyond instances for
:func:`~forestream.optimizer.recommend.recommend_many`: containers (requests), functions
(memory size), volumes (IOPS and throughput), streams (shards), applications
(parallelism) and endpoints (workers); see ``recommend_many``'s docstring for each rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ._grid import _row_quantile, _window
from .findings import INSUFFICIENT_DATA, UNSUPPORTED, classify_findings
from .policies import Demand, requirements
from .risk import VOLATILE_CLASSES, performance_risk, risk_label
from .types import (
    HOURS_PER_MONTH,
    MIN_DATA_HOURS,
    STEP_SECONDS,
    Current,
    InsufficientDataError,
    InvalidParameterError,
    Option,
    Preferences,
    Recommendation,
    RecommendationError,
    UtilizationHistory,
    failed_recommendation,
    insufficient_data_note,
)

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


def size_services(kind, histories, indices, view, prefs: Preferences, out, errors) -> None:
    T = prefs.lookback_days * 86400 // STEP_SECONDS
    batch = [histories[i] for i in indices]
    grid = _window(batch, T)
    handler = {"container": _size_containers, "function": _size_functions, "volume": _size_volumes,
               "stream": _size_counts, "application": _size_counts, "endpoint": _size_counts}[kind]
    try:
        recs = handler(kind, batch, grid, view, prefs, errors)
    except (LookupError, ValueError) as error:
        if errors == "raise" or isinstance(error, InvalidParameterError):
            raise
        recs = [failed_recommendation(h, prefs, UNSUPPORTED, str(error)) for h in batch]
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
            raise InsufficientDataError(insufficient_data_note(hours[r]))
        failed[r] = failed_recommendation(h, prefs, INSUFFICIENT_DATA,
                                          insufficient_data_note(hours[r]), hours[r])
    return keep, failed


def _unit_requirements(units: np.ndarray, capacity: np.ndarray, prefs: Preferences):
    """Run the policy on a demand series in capacity units (cores, shards, workers)."""
    R, T = units.shape
    nan = np.full((R, T), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        pct = units / capacity[:, None] * 100.0
    demand = Demand(units, pct, nan, nan, nan, nan, capacity, np.full(R, np.nan),
                    np.zeros(R), np.zeros(R), STEP_SECONDS)
    return requirements(prefs.policy, demand, **prefs.sizing())


def _classes(req, R):
    if req.analysis is None:
        return np.full(R, "", dtype=object), np.zeros(R, dtype=np.int64)
    return req.analysis.workload_class, req.analysis.period_hours


def _size_containers(kind, batch, grid, view, prefs, errors):
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
    req = requirements(prefs.policy, demand, **prefs.sizing())
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


def _size_counts(kind, batch, grid, view, prefs, errors):
    """Streams (shards), applications (parallelism), endpoints (workers)."""
    key = {"stream": "shards", "application": "parallelism", "endpoint": "workers"}[kind]
    cap = np.array([_current_number(h, key) for h in batch])
    unit_price: float | None
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
        options: list[Option] = []
        for n in sorted({int(count[r]), int(count[r]) + 1})[: prefs.max_options]:
            u, risk = entry(n)
            price: float | None = None
            saving: float | None = None
            saving_pct: float | None = None
            if per_unit is not None and now_price is not None:
                price = n * per_unit * HOURS_PER_MONTH
                saving = now_price - price
                saving_pct = 100 * saving / now_price
            options.append(Option(len(options) + 1, f"{n} {key}", {key: n}, price, saving,
                                  saving_pct, risk, _finite(u), "VeryLow"))
        u_now, risk_now = entry(cap[r])
        current = Current(f"{int(cap[r])} {key}", dict(h.resource.current), now_price,
                          _finite(u_now), risk_now, str(risk_label(np.array([risk_now]))[0]))
        recs[r] = Recommendation(h.resource.resource_id, kind, prefs.policy, str(finding[r]),
                                 reasons[r], str(classes[r]), int(periods[r]), current, options,
                                 prefs.lookback_days, round(float(hours[r]), 2), notes[r])
    return [recs[r] for r in range(len(batch))]


def _size_volumes(kind, batch, grid, view, prefs, errors):
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
        options: list[Option] = []
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


def _size_functions(kind, batch, grid, view, prefs, errors):
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
        options: list[Option] = []
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
