"""The HTML right-sizing report: one self-contained page, charts drawn as inline SVG.

The page has no scripts and loads nothing (no CDN, fonts or images), so it opens
offline, as a mail attachment or from the server's ``report.html`` route, and every
string that came from a user's data (resource ids, tags, notes, the source path) is
HTML-escaped. From top to bottom:

* **fleet summary**: resources per finding (with a bar of their shares), what the
  fleet costs now, the monthly and yearly savings of acting on every recommendation,
  the extra cost of fixing under-provisioned resources, and the largest savings;
* **all resources**: one row each, linked to its section;
* **one section per resource**: a chart of its utilization over the lookback as a
  percentage of its current capacity (CPU, and memory and GPU when measured; busy time
  or shard throughput for forestream's components), a solid line at 100 % for the
  current capacity and a dashed line per metric for the recommended option's capacity
  on the same scale; then the finding, reasons, workload class, current configuration
  with its price and risk, the ranked options with price, savings, performance risk,
  migration effort and projected utilization, and the recommender's notes.

>>> page = render_html({"id": "a1", "created_at": "2024-05-01T00:00:00Z",
...                      "region": "us-east-1", "source": {"path": "<fleet>"},
...                      "preferences": {}, "recommendations": [], "series": {}})
>>> page.startswith("<!doctype html>"), "&lt;fleet&gt;" in page, "<fleet>" in page
(True, True, False)
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence

from .analysis import (
    ALL_FINDINGS,
    RISK_WORDS,
    money,
    sort_recommendations,
    summarize,
)

WIDTH, HEIGHT = 880, 250
LEFT, RIGHT, TOP, BOTTOM = 48, 190, 30, 30
LINE_COLORS = {"cpu": "#2563eb", "memory": "#059669", "gpu": "#9333ea", "busy": "#2563eb",
               "throughput": "#2563eb", "iops": "#2563eb"}
LINE_LABELS = {"cpu": "CPU", "memory": "memory", "gpu": "GPU", "busy": "busy time",
               "throughput": "shard throughput", "iops": "IOPS"}
FINDING_CLASSES = {"Overprovisioned": "over", "Underprovisioned": "under", "Optimized": "ok",
                   "Idle": "idle", "InsufficientData": "none", "Unsupported": "none"}
FINDING_COLORS = {"over": "#d97706", "under": "#dc2626", "ok": "#16a34a", "idle": "#7c3aed",
                  "none": "#6b7280"}
UTILIZATION_LABELS = {
    "cpu_max": "CPU peak", "cpu_sizing": "CPU sizing level", "mem_max": "memory peak",
    "gpu_sizing": "GPU sizing level", "sizing": "sizing level", "memory_max": "memory peak",
    "iops_sizing": "IOPS sizing level", "throughput_sizing": "throughput sizing level",
    "duration_ms": "duration (ms)", "duration_ms_projected": "duration (ms)"}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;
margin:0;background:#f9fafb}
main{max-width:1120px;margin:0 auto;padding:24px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:0 0 6px}
h3{font-size:15px;margin:18px 0 6px}
.meta{color:#4b5563;margin:0 0 12px}
section{background:#fff;border:1px solid #e5e7eb;border-radius:8px;padding:16px 20px;margin:16px 0}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:8px 0 12px}
.card{border:1px solid #e5e7eb;border-radius:6px;padding:8px 14px;min-width:140px}
.card b{display:block;font-size:20px}
table{border-collapse:collapse;width:100%;margin:6px 0}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e5e7eb;vertical-align:top}
th{background:#f3f4f6;font-weight:600}td.num,th.num{text-align:right;white-space:nowrap}
.badge{display:inline-block;border-radius:10px;padding:0 8px;color:#fff;font-size:12px;
font-weight:600}
.over{background:#d97706}.under{background:#dc2626}.ok{background:#16a34a}
.idle{background:#7c3aed}.none{background:#6b7280}
.save{color:#15803d}.cost{color:#b91c1c}
ul.notes{margin:6px 0;padding-left:20px;color:#374151}
svg{display:block;max-width:100%;height:auto}
a{color:#1d4ed8;text-decoration:none}
footer{color:#6b7280;font-size:12px;margin:24px 0}
"""


def render_html(analysis: Mapping, *, max_sections: int | None = None) -> str:
    """The report page of an analysis document (see :mod:`~forestream.optimizer.report`).

    ``max_sections`` caps the per-resource sections (largest savings first); the
    overview table still lists every resource.
    """
    recs = sort_recommendations(analysis.get("recommendations") or (), "finding")
    summary = analysis.get("summary") or summarize(recs)
    series = analysis.get("series") or {}
    anchors = {rec["resource_id"]: f"r-{i}" for i, rec in enumerate(recs)}
    shown = recs if max_sections is None else sort_recommendations(recs)[:max_sections]
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>Right-sizing report {_e(analysis.get('id', ''))}</title>",
             f"<style>{STYLE}</style></head><body><main>",
             _header(analysis), _summary(summary, anchors), _overview(recs, anchors)]
    parts += [_section(rec, series.get(rec["resource_id"]), anchors[rec["resource_id"]])
              for rec in shown]
    if len(shown) < len(recs):
        parts.append(f'<p class="meta">{len(recs) - len(shown)} more resources are in the '
                     "overview table and the analysis JSON.</p>")
    parts.append("<footer>Generated by forestream (self-hosted right-sizing). Prices are "
                 "on-demand list prices of the analysis region; savings are estimates for "
                 "730 hours a month.</footer></main></body></html>")
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------ sections
def _header(analysis: Mapping) -> str:
    prefs = analysis.get("preferences") or {}
    facts = [f"analysis {_e(analysis.get('id', ''))}",
             f"created {_e(analysis.get('created_at', ''))}",
             f"region {_e(analysis.get('region', ''))}"]
    facts += [f"{_e(k)} {_e(v)}" for k, v in sorted(prefs.items()) if v is not None]
    source = analysis.get("source") or {}
    described = ", ".join(f"{k}: {v}" for k, v in sorted(source.items()) if v not in (None, ""))
    return ("<header><h1>Right-sizing report</h1>"
            f'<p class="meta">{" · ".join(facts)}</p>'
            + (f'<p class="meta">source: {_e(described)}</p>' if described else "")
            + "</header>")


def _summary(summary: Mapping, anchors: Mapping[str, str]) -> str:
    findings = summary.get("findings") or {}
    total = max(1, sum(findings.values()))
    cards = [("resources", str(summary.get("resources", 0)), ""),
             ("savings / month", money(summary.get("savings_monthly")), "save"),
             ("savings / year", money((summary.get("savings_monthly") or 0) * 12), "save"),
             ("cost now / month", money(summary.get("current_monthly")), ""),
             ("after / month", money(summary.get("recommended_monthly")), "")]
    if summary.get("extra_cost_monthly"):
        cards.append(("extra cost to fix / month", money(summary["extra_cost_monthly"]),
                      "cost"))
    out = ['<section class="summary"><h2>Fleet summary</h2><div class="cards">']
    out += [f'<div class="card"><span>{_e(label)}</span><b class="{css}">{_e(value)}</b></div>'
            for label, value, css in cards]
    out.append("</div>")
    # A bar of the findings' shares, then a legend with the counts.
    x, bar = 0.0, []
    for finding in ALL_FINDINGS:
        count = findings.get(finding, 0)
        if not count:
            continue
        width = 100.0 * count / total
        color = FINDING_COLORS[FINDING_CLASSES.get(finding, "none")]
        bar.append(f'<rect x="{x:.2f}%" y="0" width="{width:.2f}%" height="14" '
                   f'fill="{color}"><title>{_e(finding)}: {count}</title></rect>')
        x += width
    if bar:
        out.append('<svg width="100%" height="14" role="img" aria-label="findings">'
                   + "".join(bar) + "</svg>")
    out.append("<p>" + " ".join(
        f'<span class="badge {FINDING_CLASSES.get(f, "none")}">{_e(f)} {n}</span>'
        for f, n in findings.items() if n) + "</p>")
    if summary.get("unpriced"):
        out.append(f'<p class="meta">{summary["unpriced"]} resources have no price '
                   "(not in the totals).</p>")
    top = summary.get("top_savings") or []
    if top:
        out.append("<h3>Largest savings</h3><table><tr><th>resource</th><th>finding</th>"
                   '<th>current</th><th>recommended</th><th class="num">savings / month</th>'
                   '<th class="num">%</th></tr>')
        for item in top:
            out.append(f"<tr><td>{_link(item['resource_id'], anchors)}</td>"
                       f"<td>{_badge(item['finding'])}</td><td>{_e(item['current'])}</td>"
                       f"<td>{_e(item['recommended'])}</td>"
                       f'<td class="num save">{money(item["savings_monthly"])}</td>'
                       f'<td class="num">{_percent(item.get("savings_pct"))}</td></tr>')
        out.append("</table>")
    out.append("</section>")
    return "\n".join(out)


def _overview(recs: Sequence[Mapping], anchors: Mapping[str, str]) -> str:
    out = ['<section><h2>All resources</h2><table><tr><th>resource</th><th>kind</th>'
           "<th>workload</th><th>finding</th><th>current</th><th>recommended</th>"
           '<th>risk</th><th class="num">savings / month</th></tr>']
    for rec in recs:
        best = _best(rec)
        current = rec.get("current")
        out.append(f"<tr><td>{_link(rec['resource_id'], anchors)}</td><td>{_e(rec['kind'])}</td>"
                   f"<td>{_e(rec.get('workload_class') or '-')}</td>"
                   f"<td>{_badge(rec['finding'])}</td>"
                   f"<td>{_e(current['name'] if current else '-')}</td>"
                   f"<td>{_e(best['name'] if best else '-')}</td>"
                   f"<td>{_risk(best['performance_risk']) if best else '-'}</td>"
                   f"{_savings_cell(best)}</tr>")
    out.append("</table></section>")
    return "\n".join(out)


def _section(rec: Mapping, series: Mapping | None, anchor: str) -> str:
    rid = rec["resource_id"]
    workload = rec.get("workload_class") or "-"
    if rec.get("period_hours"):
        workload += f" (repeats every {rec['period_hours']} h)"
    meta = (f"{_e(rec['kind'])} · workload {_e(workload)} · {_e(rec.get('data_hours', 0))} h of "
            f"data in a {_e(rec.get('lookback_days', ''))}-day lookback · policy "
            f"{_e(rec.get('policy', ''))}")
    out = [f'<section id="{anchor}"><h2>{_e(rid)} {_badge(rec["finding"])}</h2>',
           f'<p class="meta">{meta}</p>']
    out.append(_chart(series, rid) if series else
               '<p class="meta">No utilization chart: the analysis kept no metrics that '
               "can be drawn as a share of this resource's capacity.</p>")
    current = rec.get("current")
    reasons = ", ".join(rec.get("reasons") or ()) or "-"
    out.append(f"<table><tr><th>finding</th><td>{_badge(rec['finding'])}</td></tr>"
               f"<tr><th>reasons</th><td>{_e(reasons)}</td></tr>")
    if current:
        out.append(f"<tr><th>current</th><td>{_e(current['name'])} · "
                   f"{money(current.get('monthly_price'))} / month · risk "
                   f"{_e(current.get('risk', ''))} · "
                   f"{_e(_utilization(current.get('utilization') or {}))}</td></tr>")
    out.append("</table>")
    options = rec.get("options") or []
    if options:
        out.append("<h3>Options</h3><table><tr><th>#</th><th>option</th>"
                   '<th class="num">price / month</th><th class="num">savings / month</th>'
                   '<th>performance risk</th><th>migration effort</th>'
                   "<th>projected utilization</th></tr>")
        for option in options:
            out.append(f"<tr><td>{_e(option['rank'])}</td><td>{_e(option['name'])}</td>"
                       f'<td class="num">{money(option.get("monthly_price"))}</td>'
                       f"{_savings_cell(option)}<td>{_risk(option.get('performance_risk'))}</td>"
                       f"<td>{_e(option.get('migration_effort', ''))}</td>"
                       f"<td>{_e(_utilization(option.get('projected_utilization') or {}))}"
                       "</td></tr>")
        out.append("</table>")
    notes = rec.get("notes") or []
    if notes:
        out.append('<ul class="notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    out.append("</section>")
    return "\n".join(out)


# --------------------------------------------------------------------------- chart
def _chart(series: Mapping, rid: str) -> str:
    """Utilization lines, the current capacity (100 %) and the recommended capacities."""
    lines: Mapping[str, list] = series.get("lines") or {}
    recommended: Mapping[str, float] = series.get("recommended_capacity") or {}
    points = max((len(v) for v in lines.values()), default=0)
    if points == 0:
        return ""
    start, step = int(series["start"]), int(series["step"])
    peak = max([100.0, *recommended.values(),
                *(v for values in lines.values() for v in values if v is not None)])
    grid = 25 if peak <= 150 else 50 if peak <= 300 else 100 * math.ceil(peak / 1000)
    top = grid * math.ceil(peak * 1.05 / grid)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: float) -> float:
        return LEFT + (plot_w * i / (points - 1) if points > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h * (1 - value / top)

    names = " and ".join(LINE_LABELS.get(n, n) for n in lines)
    out = [f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
           f'role="img" aria-label="{_e(names)} utilization of {_e(rid)}" '
           'font-size="11" font-family="system-ui,sans-serif">',
           f"<title>{_e(names)} utilization of {_e(rid)} over the lookback, as % of the "
           "current capacity</title>"]
    for level in range(0, int(top) + 1, grid):  # horizontal grid and y labels
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(level):.1f}" '
                   f'y2="{y(level):.1f}" stroke="#e5e7eb"/>'
                   f'<text x="{LEFT - 6}" y="{y(level) + 4:.1f}" text-anchor="end" '
                   f'fill="#6b7280">{level}%</text>')
    out += _time_ticks(start, step, points, x, TOP + plot_h)
    for k, (name, values) in enumerate(lines.items()):
        color = LINE_COLORS.get(name, "#2563eb")
        label = _e(LINE_LABELS.get(name, name))
        out.append(f'<path d="{_path(values, x, y)}" fill="none" stroke="{color}" '
                   f'stroke-width="1.3" stroke-linejoin="round"><title>{label}</title></path>')
        out.append(f'<rect x="{LEFT + 150 * k}" y="8" width="12" height="3" fill="{color}"/>'
                   f'<text x="{LEFT + 150 * k + 16}" y="13">{label} (peak per '
                   f"{_duration(step)})</text>")
    out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(100):.1f}" y2="{y(100):.1f}" '
               'stroke="#111827" stroke-width="1.6"/>'
               f'<text x="{LEFT + plot_w + 6}" y="{y(100) + 4:.1f}">current capacity</text>')
    # One dashed line per distinct recommended capacity (CPU and memory often coincide).
    levels: dict[float, list[str]] = {}
    for name, value in recommended.items():
        if name in lines:
            levels.setdefault(round(float(value), 1), []).append(name)
    used_rows: list[float] = [y(100)]
    for value, names_at in sorted(levels.items()):
        color = LINE_COLORS.get(names_at[0], "#2563eb") if len(names_at) == 1 else "#ea580c"
        label = "+".join(LINE_LABELS.get(n, n) for n in names_at)
        row = y(value)
        text_row = row + 4
        while any(abs(text_row - used) < 12 for used in used_rows):
            text_row += 12
        used_rows.append(text_row)
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{row:.1f}" y2="{row:.1f}" '
                   f'stroke="{color}" stroke-width="1.6" stroke-dasharray="6 4"/>'
                   f'<text x="{LEFT + plot_w + 6}" y="{text_row:.1f}" fill="{color}">'
                   f"recommended {_e(label)} {value:g}%</text>")
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
               'stroke="#d1d5db"/></svg>')
    return "".join(out)


def _time_ticks(start: int, step: int, points: int, x, bottom: float) -> list[str]:
    """A tick and date label at UTC midnights, at most about eight of them."""
    span = step * max(points - 1, 1)
    days = max(1, math.ceil(span / 86400 / 8))
    first = (start // 86400 + 1) * 86400
    out = []
    for moment in range(first, start + span + 1, days * 86400):
        at = x((moment - start) / step)
        label = dt.datetime.fromtimestamp(moment, dt.timezone.utc).strftime("%b %d")
        out.append(f'<line x1="{at:.1f}" x2="{at:.1f}" y1="{TOP}" y2="{bottom}" '
                   f'stroke="#f3f4f6"/><text x="{at:.1f}" y="{bottom + 16}" '
                   f'text-anchor="middle" fill="#6b7280">{label}</text>')
    return out


def _duration(seconds: int) -> str:
    if seconds % 86400 == 0:
        return "day" if seconds == 86400 else f"{seconds // 86400} days"
    if seconds % 3600 == 0:
        return "hour" if seconds == 3600 else f"{seconds // 3600} hours"
    return f"{seconds // 60} min"


def _path(values: Sequence, x, y) -> str:
    """SVG path data; a gap (None) lifts the pen, so missing data is not drawn over."""
    out, drawing = [], False
    for i, value in enumerate(values):
        if value is None:
            drawing = False
            continue
        out.append(f"{'L' if drawing else 'M'}{x(i):.1f},{y(value):.1f}")
        drawing = True
    return " ".join(out)


# ------------------------------------------------------------------------- helpers
def _e(value) -> str:
    return html.escape(str(value), quote=True)


def _best(rec: Mapping) -> Mapping | None:
    options = rec.get("options") or ()
    return options[0] if options else None


def _badge(finding: str) -> str:
    return f'<span class="badge {FINDING_CLASSES.get(finding, "none")}">{_e(finding)}</span>'


def _link(rid: str, anchors: Mapping[str, str]) -> str:
    anchor = anchors.get(rid)
    return f'<a href="#{anchor}">{_e(rid)}</a>' if anchor else _e(rid)


def _risk(score) -> str:
    if score is None:
        return "-"
    return f"{int(score)} ({RISK_WORDS[max(0, min(4, int(score)))]})"


def _percent(value) -> str:
    return "-" if value is None else f"{value:.1f}%"


def _savings_cell(option: Mapping | None) -> str:
    saving = None if option is None else option.get("savings_monthly")
    css = "save" if saving and saving > 0 else "cost" if saving and saving < 0 else ""
    pct = "" if option is None or option.get("savings_pct") is None else \
        f" ({option['savings_pct']:.1f}%)"
    return f'<td class="num {css}">{money(saving)}{_e(pct)}</td>'


def _utilization(values: Mapping) -> str:
    parts = []
    for key, value in values.items():
        label = UTILIZATION_LABELS.get(key, key)
        parts.append(f"{label} {value:,.1f}" + ("" if key.startswith("duration") else "%"))
    return ", ".join(parts) or "-"
