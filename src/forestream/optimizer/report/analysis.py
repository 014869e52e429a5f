"""The analysis document: one run of the recommender as JSON-ready data, its summary,
terminal table and JSON.

An *analysis* is one run of :func:`~forestream.optimizer.recommend.recommend_many` kept
as plain JSON-ready data, so the CLI, the server and the reports all read the same
thing::

    {"id": "20240501T120000123456Z-3fa9c2", "created_at": "2024-05-01T12:00:00Z",
     "region": "us-east-1", "source": {...}, "preferences": {...},
     "summary": {"resources": 12, "findings": {"Overprovisioned": 7, ...},
                 "savings_monthly": 812.4, "top_savings": [...], ...},
     "recommendations": [Recommendation.to_dict(), ...],
     "series": {"web-1": {"start": 1714521600, "step": 3600,
                          "lines": {"cpu": [12.5, ...], "memory": [...]},
                          "recommended_capacity": {"cpu": 50.0, "memory": 50.0}}}}

``series`` holds, per resource, its utilization over the lookback as percentages of the
*current* capacity (hourly maxima, or coarser so a chart has at most ``max_points``
points; ``None`` where nothing was measured) and, per line, the capacity of the
recommended option on the same scale (50 means "half of what it has now"). That is all
the HTML report (:func:`forestream.optimizer.report.html.render_html`) needs, so a
stored analysis can be re-rendered without the metrics it came from.

>>> import numpy as np
>>> from forestream.optimizer.types import Resource, UtilizationHistory
>>> from forestream.optimizer.recommend import recommend_many
>>> ts = 1_700_000_100 + 300 * np.arange(2 * 288)
>>> history = UtilizationHistory(Resource("web-1", "instance", {"instance_type": "m5.2xlarge"}),
...                              ts, {"cpu_pct": np.full(ts.size, 9.0),
...                                   "mem_pct": np.full(ts.size, 20.0)})
>>> analysis = build_analysis(recommend_many([history]), [history], region="us-east-1")
>>> analysis["summary"]["findings"]["Overprovisioned"], analysis["summary"]["resources"]
(1, 1)
>>> analysis["series"]["web-1"]["lines"]["cpu"][:2], analysis["series"]["web-1"]["step"]
([9.0, 9.0], 3600)
>>> analysis["series"]["web-1"]["recommended_capacity"]["cpu"] <= 50
True
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from forestream import durable

from ..findings import FINDINGS, INSUFFICIENT_DATA, UNSUPPORTED
from ..types import UtilizationHistory

if TYPE_CHECKING:
    from rich.console import JustifyMethod

__all__ = ["ALL_FINDINGS", "build_analysis", "filter_recommendations", "money",
           "new_analysis_id", "recommendation_table", "sort_recommendations",
           "summarize", "summary_line", "to_json", "utilization_series", "write_atomically"]

#: Every finding a recommendation can carry, in the order reports list them.
ALL_FINDINGS = (*FINDINGS, INSUFFICIENT_DATA, UNSUPPORTED)
RISK_WORDS = ("very low", "low", "medium", "high", "very high")
TOP_SAVINGS = 5
MAX_POINTS = 400
STEP_SECONDS = 300
# Stream shard limits (per shard and second), as the recommender counts shards.
_SHARD_IN_BYTES, _SHARD_IN_RECORDS, _SHARD_OUT_BYTES = 1024 * 1024, 1000.0, 2 * 1024 * 1024


def new_analysis_id(now: dt.datetime | None = None) -> str:
    """A URL-safe id that sorts by creation time (to the microsecond):
    ``20240501T120000123456Z-3fa9c2``."""
    now = now or dt.datetime.now(dt.timezone.utc)
    return f"{now:%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


def build_analysis(recommendations: Sequence, histories: Sequence[UtilizationHistory] = (),
                   *, preferences: Mapping | None = None, region: str = "us-east-1",
                   source: Mapping | None = None, catalog=None,
                   analysis_id: str | None = None, created_at: dt.datetime | None = None,
                   max_points: int = MAX_POINTS) -> dict:
    """The analysis document (module docstring) for recommendations and the histories
    they were made from (histories may be empty: the report then has no charts).

    ``recommendations`` are :class:`~forestream.optimizer.recommend.Recommendation`
    objects or their ``to_dict()``. ``catalog`` (optional) gives exact CPU and memory
    capacities of instance types for the recommended-capacity lines; without it they
    are derived from the current and projected utilization.
    """
    created = created_at or dt.datetime.now(dt.timezone.utc)
    recs = [r if isinstance(r, dict) else r.to_dict() for r in recommendations]
    by_id = {r["resource_id"]: r for r in recs}
    series = {}
    for history in histories:
        rec = by_id.get(history.resource.resource_id)
        if rec is None:
            continue
        drawn = utilization_series(history, rec, max_points=max_points, catalog=catalog)
        if drawn is not None:
            series[history.resource.resource_id] = drawn
    return {"id": analysis_id or new_analysis_id(created),
            "created_at": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": region, "source": dict(source or {}),
            "preferences": dict(preferences or {}), "summary": summarize(recs),
            "recommendations": recs, "series": series}


def summarize(recommendations: Iterable[Mapping]) -> dict:
    """Fleet totals: resources per finding and per kind, monthly prices and savings.

    ``savings_monthly`` adds up the positive savings of each resource's first-ranked
    option (what acting on every recommendation saves); ``extra_cost_monthly`` adds the
    cost of the ones that cost more (mostly under-provisioned resources getting the
    capacity they lack). ``top_savings`` lists the largest savings.
    """
    recs = list(recommendations)
    findings = dict.fromkeys(ALL_FINDINGS, 0)
    kinds: dict[str, int] = {}
    current = recommended = savings = extra = 0.0
    unpriced = 0
    ranked = []
    for rec in recs:
        findings[rec["finding"]] = findings.get(rec["finding"], 0) + 1
        kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
        now, best = rec.get("current"), _best(rec)
        if now is None:
            continue
        if now.get("monthly_price") is None:
            unpriced += 1
            continue
        current += now["monthly_price"]
        if best is None or best.get("monthly_price") is None:
            recommended += now["monthly_price"]
            continue
        recommended += best["monthly_price"]
        saving = best.get("savings_monthly") or 0.0
        if saving > 0:
            savings += saving
            ranked.append((saving, rec, best))
        else:
            extra -= saving
    ranked.sort(key=lambda item: (-item[0], item[1]["resource_id"]))
    top = [{"resource_id": rec["resource_id"], "kind": rec["kind"], "finding": rec["finding"],
            "current": rec["current"]["name"], "recommended": best["name"],
            "savings_monthly": round(saving, 2), "savings_pct": best.get("savings_pct")}
           for saving, rec, best in ranked[:TOP_SAVINGS]]
    return {"resources": len(recs), "findings": findings, "kinds": kinds,
            "current_monthly": round(current, 2), "recommended_monthly": round(recommended, 2),
            "savings_monthly": round(savings, 2), "extra_cost_monthly": round(extra, 2),
            "unpriced": unpriced, "top_savings": top}


def filter_recommendations(recommendations: Iterable[Mapping], *,
                           finding: str | Iterable[str] | None = None,
                           kind: str | Iterable[str] | None = None) -> list[Mapping]:
    """The recommendations with one of the given findings and kinds (None: any)."""
    wanted_findings = {finding} if isinstance(finding, str) else (
        set(finding) if finding is not None else None)
    wanted_kinds = {kind} if isinstance(kind, str) else (set(kind) if kind is not None else None)
    return [r for r in recommendations
            if (wanted_findings is None or r["finding"] in wanted_findings)
            and (wanted_kinds is None or r["kind"] in wanted_kinds)]


def sort_recommendations(recommendations: Iterable[Mapping], by: str = "savings") -> list:
    """Largest savings first (``"savings"``), by ``"finding"`` (under-provisioned
    first: those hurt now) or by ``"resource"`` id."""
    recs = list(recommendations)
    if by == "resource":
        return sorted(recs, key=lambda r: r["resource_id"])
    if by == "finding":
        order = {f: i for i, f in enumerate(("Underprovisioned", "Overprovisioned", "Idle",
                                             "Optimized", INSUFFICIENT_DATA, UNSUPPORTED))}
        return sorted(recs, key=lambda r: (order.get(r["finding"], 9), r["resource_id"]))
    if by != "savings":
        raise ValueError(f"sort must be 'savings', 'finding' or 'resource', got {by!r}")
    def by_savings(rec):
        saving = _savings(rec)
        return (saving is None, -(saving or 0.0), rec["resource_id"])

    return sorted(recs, key=by_savings)


def recommendation_table(recommendations: Iterable[Mapping], *, title: str | None = None):
    """A :class:`rich.table.Table`: resource, kind, workload class, finding, reasons,
    current, recommended, risk of the recommendation and monthly savings."""
    from rich.table import Table

    table = Table(title=title, header_style="bold", pad_edge=False)
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("resource", "left"), ("kind", "left"), ("class", "left"), ("finding", "left"),
        ("reasons", "left"), ("current", "left"), ("recommended", "left"), ("risk", "left"),
        ("savings/month", "right"))
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    styles = {"Overprovisioned": "yellow", "Underprovisioned": "red", "Idle": "magenta",
              "Optimized": "green"}
    for rec in recommendations:
        best, current = _best(rec), rec.get("current")
        saving = _savings(rec)
        table.add_row(
            rec["resource_id"], rec["kind"], rec.get("workload_class") or "-",
            f"[{styles.get(rec['finding'], 'dim')}]{rec['finding']}[/]",
            ", ".join(rec.get("reasons") or ()) or _first_note(rec),
            current["name"] if current else "-", best["name"] if best else "-",
            _risk_text(best["performance_risk"]) if best else "-",
            "-" if saving is None else (f"[green]{money(saving)}[/]" if saving > 0
                                        else f"[red]{money(saving)}[/]" if saving < 0
                                        else money(0.0)))
    return table


def summary_line(summary: Mapping) -> str:
    """One sentence: resources per finding, monthly (and yearly) savings, extra cost."""
    counts = [f"{n} {_finding_words(f)}" for f, n in summary["findings"].items() if n]
    line = f"{summary['resources']} resource{'s' if summary['resources'] != 1 else ''}"
    if counts:
        line += ": " + ", ".join(counts)
    line += (f"; savings {money(summary['savings_monthly'])}/month "
             f"({money(summary['savings_monthly'] * 12)}/year)")
    if summary.get("extra_cost_monthly"):
        line += f"; {money(summary['extra_cost_monthly'])}/month more to fix the rest"
    return line


def money(value: float | None) -> str:
    """``$1,234.50``; ``-$12.00`` for a cost increase; ``-`` when unknown."""
    if value is None:
        return "-"
    return f"-${-value:,.2f}" if value < 0 else f"${value:,.2f}"


def utilization_series(history: UtilizationHistory, recommendation: Mapping, *,
                       max_points: int = MAX_POINTS, catalog=None) -> dict | None:
    """The chart data of one resource (see the module docstring), or None when it has
    no metric a chart can show as a share of its current capacity."""
    lines = _percent_lines(history, recommendation)
    if not lines or len(history.timestamps) == 0:
        return None
    ts = history.timestamps
    lookback = int(recommendation.get("lookback_days") or 14) * 86400
    keep = ts > ts[-1] - lookback
    start = int(ts[keep][0])
    slot = ((ts[keep] - start) // STEP_SECONDS).astype(np.int64)
    samples = int(slot[-1]) + 1
    factor = max(1, math.ceil(samples / max_points))
    if factor < 12 and samples > 12 * 24:  # at least hourly once there is a day of data
        factor = 12
    step = factor * STEP_SECONDS
    points = samples // factor + (samples % factor > 0)
    out: dict[str, list] = {}
    for name, values in lines.items():
        values = values[keep]
        peaks = np.full(points, -np.inf)
        ok = np.isfinite(values)
        np.maximum.at(peaks, slot[ok] // factor, values[ok])
        out[name] = [None if not np.isfinite(v) else round(float(v), 1) for v in peaks]
    if all(v is None for values in out.values() for v in values):
        return None
    return {"start": start, "step": step, "unit": "% of current capacity", "lines": out,
            "recommended_capacity": _recommended_capacity(recommendation, set(out), catalog)}


def write_atomically(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never a
    part (see :func:`forestream.durable.write_atomically`)."""
    return durable.write_atomically(path, text)


def to_json(analysis: Mapping, *, indent: int | None = 1) -> str:
    """The analysis as JSON text (NaN-free: missing numbers are null)."""
    return json.dumps(analysis, indent=indent, allow_nan=False, default=_plain) + "\n"


# ------------------------------------------------------------------------- helpers
def _best(rec: Mapping) -> Mapping | None:
    options = rec.get("options") or ()
    return options[0] if options else None


def _savings(rec: Mapping) -> float | None:
    best = _best(rec)
    return None if best is None else best.get("savings_monthly")


def _first_note(rec: Mapping) -> str:
    notes = rec.get("notes") or ()
    return notes[0] if notes and rec["finding"] in (INSUFFICIENT_DATA, UNSUPPORTED) else ""


def _risk_text(score: int | None) -> str:
    return "-" if score is None else f"{score} {RISK_WORDS[max(0, min(4, int(score)))]}"


def _finding_words(finding: str) -> str:
    return {"Overprovisioned": "over-provisioned", "Underprovisioned": "under-provisioned",
            "Optimized": "optimized", "Idle": "idle", INSUFFICIENT_DATA: "with too little data",
            UNSUPPORTED: "unsupported"}.get(finding, finding)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _metric(history: UtilizationHistory, *names: str) -> np.ndarray | None:
    for name in names:
        if name in history.metrics and np.isfinite(history.metrics[name]).any():
            return history.metrics[name]
    return None


def _percent_lines(history: UtilizationHistory, rec: Mapping) -> dict[str, np.ndarray]:
    """Each chartable metric as a percentage of the resource's current capacity."""
    kind = history.resource.kind
    current = history.resource.current
    lines: dict[str, np.ndarray | None] = {}
    if kind in ("instance", "asg", "container"):
        lines["cpu"] = _metric(history, "cpu_pct_max", "cpu_pct")
        memory = _metric(history, "mem_pct_max", "mem_pct")
        used = _metric(history, "mem_used_gib_max", "mem_used_gib")
        if memory is None and used is not None and current.get("memory_gib"):
            memory = used / float(current["memory_gib"]) * 100.0
        lines["memory"] = memory
        lines["gpu"] = _metric(history, "gpu_pct_max", "gpu_pct")
    elif kind in ("application", "endpoint"):
        lines["busy"] = _metric(history, "busy_pct_max", "busy_pct", "cpu_pct_max", "cpu_pct")
    elif kind == "stream" and current.get("shards"):
        parts = [values / limit for values, limit in (
            (_metric(history, "bytes_in_max", "bytes_in"), _SHARD_IN_BYTES),
            (_metric(history, "records_in_max", "records_in"), _SHARD_IN_RECORDS),
            (_metric(history, "bytes_out_max", "bytes_out"), _SHARD_OUT_BYTES))
            if values is not None]
        if parts:
            lines["throughput"] = np.fmax.reduce(parts) / float(current["shards"]) * 100.0
    elif kind == "function":
        lines["memory"] = _metric(history, "mem_pct_max", "mem_pct")
    elif kind == "volume":
        capacity = current.get("iops") or (3000 if current.get("volume_type", "gp3") == "gp3"
                                           else None)
        ops = [m for m in (_metric(history, "disk_read_ops_max", "disk_read_ops"),
                           _metric(history, "disk_write_ops_max", "disk_write_ops"))
               if m is not None]
        if capacity and ops:
            lines["iops"] = np.nansum(ops, axis=0) / float(capacity) * 100.0
    return {k: v for k, v in lines.items() if v is not None}


#: Which utilization key of a recommendation measures each chart line's capacity.
_UTILIZATION_KEYS = {"cpu": "cpu_sizing", "memory": ("mem_max", "memory_max"),
                     "gpu": "gpu_sizing", "busy": "sizing", "throughput": "sizing",
                     "iops": "iops_sizing"}


def _recommended_capacity(rec: Mapping, names: set[str], catalog) -> dict[str, float]:
    """Per chart line, the first-ranked option's capacity as % of the current one."""
    best, current = _best(rec), rec.get("current")
    if best is None or current is None:
        return {}
    ratios = _configuration_ratios(rec["kind"], current.get("configuration") or {},
                                   best.get("configuration") or {}, catalog)
    out = {}
    for name in sorted(names):
        ratio = ratios.get(name)
        if ratio is None:  # utilization = level / capacity, so capacities scale inversely
            keys = _UTILIZATION_KEYS[name]
            for key in (keys,) if isinstance(keys, str) else keys:
                now = (current.get("utilization") or {}).get(key)
                then = (best.get("projected_utilization") or {}).get(key)
                if now and then and now > 0 and then > 0:
                    ratio = now / then
                    break
        if ratio is not None and math.isfinite(ratio):
            out[name] = round(100.0 * ratio, 1)
    return out


def _configuration_ratios(kind: str, now: Mapping, then: Mapping, catalog) -> dict:
    def ratio(key: str) -> float | None:
        a, b = now.get(key), then.get(key)
        return b / a if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a > 0 \
            else None

    if kind in ("instance", "asg"):
        if catalog is None:
            return {}
        try:
            a, b = catalog.get(now["instance_type"]), catalog.get(then["instance_type"])
        except (KeyError, LookupError, ValueError, AttributeError):
            return {}
        out = {"cpu": (b.vcpu * b.cpu_speed) / (a.vcpu * a.cpu_speed),
               "memory": b.memory_gib / a.memory_gib}
        if a.gpus:
            out["gpu"] = b.gpus / a.gpus
        return out
    if kind == "container":
        return {"cpu": ratio("cpu"), "memory": ratio("memory_gib")}
    if kind in ("stream", "application", "endpoint"):
        key = {"stream": "shards", "application": "parallelism", "endpoint": "workers"}[kind]
        return {"throughput" if kind == "stream" else "busy": ratio(key)}
    if kind == "function":
        return {"memory": ratio("memory_mb")}
    if kind == "volume":
        return {"iops": ratio("iops")}
    return {}
