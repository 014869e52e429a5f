"""An application's page: live status, throughput and lag charts, workers, operators and
its log newest first; the anomalies it found over its input; and the forms that start,
stop, snapshot, restore and scale it."""

from __future__ import annotations

import json

from ..history import Series
from ..pages import (
    Chrome,
    action_form,
    badge,
    chart,
    checkpoint,
    field,
    fields,
    log_block,
    number,
    path_of,
    select,
    size,
    table,
    text,
    when,
)


def live(data: dict, series: dict[str, Series]) -> str:
    app = data["application"]
    runtime = app.get("runtime") or {}
    workers = runtime.get("workers") or ([runtime] if runtime else [])
    operators, lag = [], []
    for i, worker in enumerate(workers):
        for uid, (records_in, records_out) in sorted((worker.get("operators") or {}).items()):
            operators.append([i, text(uid), number(records_in), number(records_out)])
        behind = worker.get("records_behind") or {}
        for shard, millis in sorted((worker.get("millis_behind_latest") or {}).items()):
            lag.append([i, text(shard), number(millis), number(behind.get(shard))])
    failure = app.get("last_failure")
    facts = fields([
        ("status", badge(app["status"])), ("worker state", badge(runtime.get("state") or "-")),
        ("description", text(app.get("description")) or "-"),
        ("version", app["version"]), ("parallelism", app["parallelism"]),
        ("key groups", app.get("max_parallelism", "-")),
        ("autoscaling", _autoscaling(app.get("autoscaling") or {})),
        ("checkpoint interval", f'{app["checkpoint_interval"]} s'),
        ("records in", number(runtime.get("records_in"))),
        ("checkpoints", checkpoint(runtime)), ("snapshots", app.get("snapshots", 0)),
        ("status updated", when(runtime.get("updated"))),
        ("code", f'<code>{text(app.get("code_source"))}</code>'),
        ("created", when(app.get("created"))),
        ("last failure", text(failure["reason"]) if failure else "-"),
        ("worker error", f'<pre>{text(runtime["error"])}</pre>' if runtime.get("error")
         else "-")])
    charts = "".join([
        chart("chart-throughput", "Throughput", "rec/s", series["throughput"].times,
              series["throughput"].as_chart(), "no throughput sampled yet"),
        chart("chart-lag", "Millis behind latest per source shard", "ms",
              series["lag"].times, series["lag"].as_chart(), "no lag reported yet"),
        chart("chart-behind", "Records behind (all source shards)", "records",
              series["behind"].times, series["behind"].as_chart(), "no lag reported yet")])
    placement = table(["worker", "pid", "state", "source shards", "key groups"],
                      [[i, w.get("pid", "-"), badge(w.get("state") or "-"),
                        text(", ".join(w.get("shards") or []) or "-"),
                        number(len(w.get("key_groups") or []))]
                       for i, w in enumerate(workers)], "no worker has reported yet")
    events = table(["when", "from", "to", "why"],
                   [[when(e["time"]), e["from"], e["to"], text(e["reason"])]
                    for e in reversed(app.get("autoscaling_events") or [])],
                   "no autoscaling so far")
    properties = table(["property group", "values"],
                       [[text(k), f"<code>{text(json.dumps(v, sort_keys=True))}</code>"]
                        for k, v in sorted(app["properties"].items())],
                       "no runtime properties")
    return "".join([
        facts, "<h2>Throughput and lag</h2>", f'<div class="charts">{charts}</div>',
        "<h2>Workers</h2>", placement, "<h2>Autoscaling</h2>", events,
        "<h2>Runtime properties</h2>", properties,
        "<h2>Operators</h2>",
        table(["worker", "operator", "records in", "records out"], operators,
              "no operator counts yet (the worker reports every few seconds)"),
        "<h2>Lag per shard</h2>",
        table(["worker", "source/shard", "millis behind latest", "records behind"], lag,
              "no source lag"),
        "<h2>Snapshots</h2>",
        table(["snapshot", "created", "size", "parts"],
              [[text(s["name"]), when(s["created"]), size(s["bytes"]),
                text(", ".join(s["parts"]))] for s in data["snapshots"]],
              "no snapshots"),
        f"<h2>Log, newest first (last {len(data['logs'])} lines)</h2>",
        log_block(data["logs"])])


def forms(data: dict, chrome: Chrome) -> str:
    app = data["application"]
    base = path_of("applications", app["name"])
    snapshots = [s["name"] for s in data["snapshots"]]
    running = app["status"] in ("RUNNING", "STARTING")
    start = action_form(
        f"{base}/start",
        select("restore", ("LATEST", "SKIP", "SNAPSHOT"), "LATEST", "restore")
        + select("snapshot", ["", *snapshots], label="snapshot"),
        "Start", chrome)
    stop = action_form(
        f"{base}/stop",
        '<label><input type="checkbox" name="snapshot" value="1" checked> take a snapshot'
        '</label><label><input type="checkbox" name="force" value="1"> force</label>',
        "Stop", chrome, danger=True)
    snapshot = action_form(
        f"{base}/snapshots", field("snapshot", "snapshot name", required=True, size_=20,
                                   placeholder="before-upgrade"),
        "Take snapshot", chrome)
    scale = action_form(
        f"{base}/scale", field("parallelism", "parallelism", str(app["parallelism"]),
                               kind="number", extra=' min="1"'),
        "Scale", chrome)
    state = (f'<p class="muted">status {badge(app["status"])}: '
             + ("stop it to restore from a snapshot" if running else
                "start it, from its latest checkpoint, empty (SKIP) or from a snapshot")
             + "</p>")
    return f'<h2>Actions</h2>{state}<div class="actions">{start}{stop}{snapshot}{scale}</div>'


def anomalies_form(data: dict, chrome: Chrome) -> str:
    """The settings of the "Anomalies over input" chart; the chart itself is fetched by
    htmx (``?part=anomalies``) and again every few seconds."""
    url = path_of("applications", data["application"]["name"])
    hx = (f' hx-get="{text(url)}" hx-target="#anomalies" hx-swap="innerHTML"'
          if chrome.live else "")
    form = (f'<form method="get" action="{text(url)}" class="action wide" id="anomaly-form"{hx}>'
            '<input type="hidden" name="part" value="anomalies">'
            + field("input", "input stream", placeholder="auto", size_=16)
            + field("output", "graded stream", placeholder="auto", size_=16)
            + field("field", "field", placeholder="auto", size_=10)
            + field("key", "key", placeholder="auto: the newest anomaly's", size_=24)
            + field("min_grade", "grade at least", "0.5", size_=4)
            + '<button type="submit" class="btn">Plot</button></form>')
    trigger = (f'hx-get="{text(url)}?part=anomalies" hx-include="#anomaly-form" '
               'hx-trigger="load, every 10s" hx-swap="innerHTML"') if chrome.live else ""
    return (f"<h2>Anomalies over input</h2>{form}<div id=\"anomalies\" {trigger}>"
            '<p class="muted">loading…</p></div>')


def anomalies(found: dict) -> str:
    """The chart of :func:`forestream.server.console.anomalies.chart_data`'s answer."""
    chosen = (f'<p class="muted">input <code>{text(found["input"] or "-")}</code>, graded '
              f'records from <code>{text(found["output"] or "-")}</code>, field '
              f'<code>{text(found["field"] or "-")}</code>, key <code>{text(found["key"] or "all")}'
              f'</code>; candidates: {text(", ".join(found["streams"]) or "none")}</p>')
    if "note" in found:
        return chosen + f'<p class="muted" id="anomaly-note">{text(found["note"])}</p>'
    return chosen + f'<p>{found["anomaly_count"]} anomalies in the last 15 minutes</p>' + chart(
        "chart-anomalies", "Anomalies over input", "", found["times"], found["series"],
        "no records in the last 15 minutes")


def _autoscaling(policy: dict) -> str:
    if not policy.get("enabled"):
        return "off"
    return text(f"{policy['min_parallelism']}–{policy['max_parallelism']} workers: up at "
                f"{policy['scale_up_utilization']:.0%} busy for "
                f"{policy['scale_up_after_seconds']:g} s, down under "
                f"{policy['scale_down_utilization']:.0%} for "
                f"{policy['scale_down_after_seconds']:g} s")
