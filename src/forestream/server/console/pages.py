"""HTML for the web console: pure functions from the data that :mod:`.console` gathers to
a page. Every value that came from a user (names, descriptions, tags, log lines, ...)
goes through :func:`text` (``html.escape``); links are built by :func:`link`, which also
percent-encodes the name in the path. No scripts and no external assets: one inline
style sheet, and a ``<meta http-equiv="refresh">`` for auto-refresh.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from collections.abc import Iterable
from urllib.parse import quote

from forestream.models.hosting.endpoints import LATENCY_BUCKETS

DOCS = ("streams.md", "processing.md", "rcf.md", "models.md", "optimizer.md", "console.md")
GOOD = {"ACTIVE", "RUNNING", "InService", "Ready", "Approved", "OPEN", "optimized"}
BUSY = {"CREATING", "UPDATING", "STARTING", "STOPPING", "DELETING", "Creating", "Updating",
        "Deleting", "Importing", "PendingManualApproval", "under-provisioned"}
BAD = {"FAILED", "Failed", "Rejected", "over-provisioned"}
MAX_HASH = 2**128 - 1


def page(title: str, body: str, refresh: int = 0) -> str:
    """A whole document: the header with navigation, then ``body`` (already HTML)."""
    meta = f'<meta http-equiv="refresh" content="{refresh}">' if refresh > 0 else ""
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">{meta}'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{text(title)} · forestream</title><style>{STYLE}</style></head><body>"
            '<header><a class="brand" href="/">forestream console</a>'
            '<a href="/metrics">/metrics</a><a href="/health">/health</a></header>'
            f"<main><h1>{text(title)}</h1>{body}</main></body></html>")


def overview(data: dict) -> str:
    streams, apps, groups = data["streams"], data["applications"], data["groups"]
    endpoints, analyses = data["endpoints"], data["analyses"]
    counts = "".join(f'<div class="count"><b>{n}</b>{label}</div>' for n, label in (
        (len(streams), "streams"), (len(apps), "applications"), (len(groups), "model groups"),
        (len(endpoints), "endpoints"), (len(analyses), "recent analyses")))
    body = [f'<p class="muted">data directory <code>{text(data["data_dir"])}</code></p>',
            f'<div class="counts">{counts}</div>',
            "<h2>Streams</h2>", table(
                ["name", "status", "mode", "open shards", "retention", "encryption",
                 "consumers", "created"],
                [[link("streams", s["StreamName"]), badge(s["StreamStatus"]),
                  text(s["StreamModeDetails"]["StreamMode"]), s["OpenShardCount"],
                  f'{s["RetentionPeriodHours"]} h', badge_or_none(s["EncryptionType"]),
                  s.get("ConsumerCount", 0), when(s["StreamCreationTimestamp"])]
                 for s in streams], "no streams yet: create one with boto3 or the CLI below"),
            "<h2>Applications</h2>", table(
                ["name", "status", "worker", "parallelism", "records in", "checkpoints",
                 "version"],
                [[link("applications", a["name"]), badge(a["status"]),
                  badge((a.get("runtime") or {}).get("state") or "-"), a["parallelism"],
                  number((a.get("runtime") or {}).get("records_in")),
                  checkpoint(a.get("runtime")), a["version"]] for a in apps],
                "no applications (forestream apps create NAME CODE.py)"),
            "<h2>Model groups</h2>", table(
                ["group", "description", "versions", "latest", "latest approved", "created"],
                [[link("models", g["name"]), text(g["description"]), g["version_count"],
                  text(g["latest_version"] or "-"), text(g["latest_approved_version"] or "-"),
                  when(g["created_at"])] for g in groups],
                "no model groups (forestream models import PATH --group NAME)"),
            "<h2>Endpoints</h2>", table(
                ["endpoint", "status", "variants (model, weight, workers)", "modified"],
                [[link("endpoints", e["name"]), badge(e["status"]), variants(e["variants"]),
                  when(e["modified_at"])] for e in endpoints],
                "no endpoints (POST /api/v1/endpoints)"),
            "<h2>Optimizer analyses</h2>", table(
                ["analysis", "created", "source", "summary", "report"],
                [[text(a["id"]), when(a.get("created_at")), text(_source(a.get("source"))),
                  text(_summary(a.get("summary"))),
                  f'<a href="/console/optimizer/{quote(a["id"], safe="")}/report.html">'
                  "report.html</a>"] for a in analyses],
                "no analyses (POST /api/v1/optimizer/analyses, or forestream optimizer analyses)"),
            usage(data["base_url"], data["auth"])]
    return page("Overview", "".join(body), data["refresh"])


def stream(data: dict) -> str:
    s = data["summary"]
    children: dict[str, list[str]] = {}
    for shard in data["shards"]:
        for parent in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")):
            if parent:
                children.setdefault(parent, []).append(shard["ShardId"])
    rows = []
    for shard in data["shards"]:
        lo = int(shard["HashKeyRange"]["StartingHashKey"])
        hi = int(shard["HashKeyRange"]["EndingHashKey"])
        sequence = shard["SequenceNumberRange"]
        closed = "EndingSequenceNumber" in sequence
        parents = [p for p in (shard.get("ParentShardId"),
                               shard.get("AdjacentParentShardId")) if p]
        rows.append([text(shard["ShardId"]), badge("CLOSED" if closed else "OPEN"),
                     f'<code>{lo}</code> – <code>{hi}</code>',
                     f"{100 * (hi - lo + 1) / (MAX_HASH + 1):.2f} %",
                     f'<code>{text(sequence["StartingSequenceNumber"])}</code> – '
                     + (f'<code>{text(sequence["EndingSequenceNumber"])}</code>' if closed
                        else "(open)"),
                     text(", ".join(parents) or "-"),
                     text(", ".join(children.get(shard["ShardId"], [])) or "-")])
    facts = fields([("status", badge(s["StreamStatus"])),
                    ("ARN", f'<code>{text(s["StreamARN"])}</code>'),
                    ("mode", text(s["StreamModeDetails"]["StreamMode"])),
                    ("open shards", s["OpenShardCount"]),
                    ("retention", f'{s["RetentionPeriodHours"]} hours'),
                    ("encryption", badge_or_none(s["EncryptionType"])
                     + (f' key <code>{text(s["KeyId"])}</code>' if s.get("KeyId") else "")),
                    ("max record size", f'{s["MaxRecordSizeInKiB"]} KiB'),
                    ("created", when(s["StreamCreationTimestamp"])),
                    ("tags", text(", ".join(f"{k}={v}" for k, v in data["tags"].items()))
                     or "-")])
    body = [facts, "<h2>Shards</h2>", table(
        ["shard", "state", "hash key range", "share", "sequence numbers", "parents",
         "children"], rows, "no shards"),
        "<h2>Registered consumers</h2>", table(
            ["consumer", "status", "created"],
            [[text(c["ConsumerName"]), badge(c["ConsumerStatus"]),
              when(c["ConsumerCreationTimestamp"])] for c in data["consumers"]],
            "no registered consumers")]
    return page(f"Stream {s['StreamName']}", "".join(body), data["refresh"])


def application(data: dict) -> str:
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
    properties = table(["property group", "values"],
                       [[text(k), f"<code>{text(json.dumps(v, sort_keys=True))}</code>"]
                        for k, v in sorted(app["properties"].items())],
                       "no runtime properties")
    placement = table(["worker", "pid", "state", "source shards", "key groups"],
                      [[i, w.get("pid", "-"), badge(w.get("state") or "-"),
                        text(", ".join(w.get("shards") or []) or "-"),
                        number(len(w.get("key_groups") or []))]
                       for i, w in enumerate(workers)], "no worker has reported yet")
    events = table(["when", "from", "to", "why"],
                   [[when(e["time"]), e["from"], e["to"], text(e["reason"])]
                    for e in reversed(app.get("autoscaling_events") or [])],
                   "no autoscaling so far")
    body = [facts, "<h2>Workers</h2>", placement, "<h2>Autoscaling</h2>", events,
            "<h2>Runtime properties</h2>", properties,
            "<h2>Operators</h2>",
            table(["worker", "operator", "records in", "records out"], operators,
                  "no operator counts yet (the worker reports every few seconds)"),
            "<h2>Lag per shard</h2>",
            table(["worker", "source/shard", "millis behind latest", "records behind"], lag,
                  "no source lag"),
            f"<h2>Log (last {len(data['logs'])} lines)</h2>", log_block(data["logs"])]
    return page(f"Application {app['name']}", "".join(body), data["refresh"])


def _autoscaling(policy: dict) -> str:
    if not policy.get("enabled"):
        return "off"
    return text(f"{policy['min_parallelism']}–{policy['max_parallelism']} workers: up at "
                f"{policy['scale_up_utilization']:.0%} busy for "
                f"{policy['scale_up_after_seconds']:g} s, down under "
                f"{policy['scale_down_utilization']:.0%} for "
                f"{policy['scale_down_after_seconds']:g} s")


def model_group(data: dict) -> str:
    group = data["group"]
    rows = [[v["version"], badge(v["status"]), badge(v["approval_status"]),
             text(f'{v.get("framework") or "-"} {v.get("framework_version") or ""}'),
             size(v.get("size_bytes")), when(v.get("created_at")),
             f'<code title="{text(v.get("artifact_digest") or "")}">'
             f'{text((v.get("artifact_digest") or "-")[:12])}</code>',
             text(", ".join(f"{k}={_short(m)}" for k, m in sorted(v["metrics"].items()))
                  or "-"),
             text(v.get("description") or v.get("failure_reason") or "")]
            for v in data["versions"]]
    facts = fields([("description", text(group["description"]) or "-"),
                    ("versions", group["version_count"]),
                    ("latest", text(group["latest_version"] or "-")),
                    ("latest approved", text(group["latest_approved_version"] or "-")),
                    ("tags", text(", ".join(f"{k}={v}" for k, v in group["tags"].items()))
                     or "-"),
                    ("created", when(group["created_at"]))])
    body = [facts, "<h2>Versions</h2>", table(
        ["version", "status", "approval", "framework", "size", "created", "digest",
         "metrics", "description / failure"], rows, "no versions")]
    return page(f"Model group {group['name']}", "".join(body), data["refresh"])


def endpoint(data: dict) -> str:
    ep = data["endpoint"]
    stats = data["metrics"]
    rows = []
    for v in ep["variants"]:
        m = stats.get(v["variant_name"], {})
        count = m.get("invocations", 0)
        rows.append([text(v["variant_name"]), text(v["model"]), _short(v["current_weight"]),
                     f'{v["current_workers"]} / {v["desired_workers"]}', number(count),
                     number(m.get("errors", 0)),
                     f'{1000 * m["latency_sum"] / count:.2f} ms' if count else "-",
                     _percentile(m.get("buckets"), count, 0.5),
                     _percentile(m.get("buckets"), count, 0.99)])
    logs = "".join(f"<h3>{text(name)}</h3>{log_block(lines)}"
                   for name, lines in data["logs"].items()) or '<p class="muted">no worker logs</p>'
    facts = fields([("status", badge(ep["status"])),
                    ("failure reason", text(ep.get("failure_reason") or "-")),
                    ("configuration", text(ep["config"])), ("created", when(ep["created_at"])),
                    ("modified", when(ep["modified_at"])),
                    ("invoke", f'<code>POST /endpoints/{text(quote(ep["name"]))}'
                               "/invocations</code>")])
    body = [facts, "<h2>Variants</h2>", table(
        ["variant", "model", "weight", "workers (running / desired)", "invocations", "errors",
         "mean latency", "p50 ≤", "p99 ≤"], rows, "no variants"),
        "<h2>Worker logs (tail)</h2>", logs]
    return page(f"Endpoint {ep['name']}", "".join(body), data["refresh"])


def not_found(kind: str, name: str) -> str:
    return page("Not found", f"<p>There is no {text(kind)} named <code>{text(name)}</code>."
                            ' <a href="/">Back to the overview</a>.</p>')


def login(message: str) -> str:
    """The page a console visitor without the token (or credentials) sees: why, and a
    form that takes the token (the guard checks it and sets the console's cookie)."""
    return page("Sign in", f"<p>{text(message)}.</p>"
                '<form method="post" action="/login"><label>Access token '
                '<input type="password" name="token" autocomplete="off" autofocus '
                'required size="48"></label> <button type="submit">Sign in</button></form>'
                "<p>The token is printed by <code>forestream server</code> when it starts "
                "and stored in its data directory (<code>access-token</code>); "
                "<code>forestream console-url</code> prints a link that signs you in.</p>")


def usage(base_url: str, auth: bool) -> str:
    key = "YOUR_ACCESS_KEY_ID" if auth else "local"
    secret = "YOUR_SECRET_ACCESS_KEY" if auth else "local"
    url = text(base_url)
    docs = ", ".join(f"<code>docs/{name}</code>" for name in DOCS)
    return (
        "<h2>Use it</h2><p>boto3:</p><pre>import boto3\n\n"
        f'kinesis = boto3.client("kinesis", endpoint_url="{url}", region_name="us-east-1",\n'
        f'                       aws_access_key_id="{key}", aws_secret_access_key="{secret}")\n'
        'kinesis.create_stream(StreamName="sensors", ShardCount=2)\n'
        'kinesis.put_record(StreamName="sensors", Data=b\'{"t": 21.5}\', '
        'PartitionKey="m1")\n\n'
        f'runtime = boto3.client("sagemaker-runtime", endpoint_url="{url}", '
        'region_name="us-east-1",\n'
        f'                       aws_access_key_id="{key}", aws_secret_access_key="{secret}")\n'
        'runtime.invoke_endpoint(EndpointName="NAME", ContentType="text/csv", '
        'Body=b"1,2,3")</pre>'
        f"<p>AWS CLI and forestream CLI:</p><pre>aws kinesis list-streams --endpoint-url {url}"
        f" --region us-east-1\nforestream streams list --endpoint-url {url}\n"
        f"forestream streams tail sensors --endpoint-url {url}\n"
        f"forestream apps list --endpoint-url {url}\n"
        f"forestream models list --endpoint-url {url}</pre>"
        f"<p>Docs: {docs}. REST API under <code>/api/v1</code>; Prometheus metrics at "
        '<a href="/metrics">/metrics</a>; liveness at <a href="/health">/health</a>.</p>')


# ------------------------------------------------------------------------ pieces
def text(value) -> str:
    """Escape anything for HTML text or a quoted attribute (None is the empty string)."""
    return "" if value is None else html.escape(str(value), quote=True)


def link(kind: str, name: str) -> str:
    """A link to the console page of ``/console/{kind}/{name}``."""
    path = quote(name, safe="")
    if set(path) <= {"."}:  # "." and ".." are valid names that URL resolution would eat
        path = path.replace(".", "%2E")
    return f'<a href="/console/{kind}/{text(path)}">{text(name)}</a>'


def badge(status) -> str:
    kind = "good" if status in GOOD else "busy" if status in BUSY else \
        "bad" if status in BAD else "idle"
    return f'<span class="badge {kind}">{text(status)}</span>'


def badge_or_none(value: str | None) -> str:
    return badge(value) if value and value != "NONE" else "none"


def table(headers: list[str], rows: Iterable[list], empty: str) -> str:
    rows = list(rows)
    if not rows:
        return f'<p class="muted">{text(empty)}</p>'
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    # cells are HTML already: every caller escapes user data with text(), link() or badge()
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def fields(pairs: list[tuple[str, object]]) -> str:
    return "<dl>" + "".join(f"<dt>{text(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def variants(items: list[dict]) -> str:
    return "<br>".join(f'{text(v["variant_name"])}: {text(v["model"])}, weight '
                       f'{_short(v["current_weight"])}, {v["current_workers"]}/'
                       f'{v["desired_workers"]} workers' for v in items) or "-"


def log_block(lines: list[str]) -> str:
    if not lines:
        return '<p class="muted">empty</p>'
    return f'<pre class="log">{text(chr(10).join(lines))}</pre>'


def checkpoint(runtime: dict | None) -> str:
    if not runtime or "checkpoints" not in runtime:
        return "-"
    out = number(runtime["checkpoints"])
    if runtime.get("checkpoint_seconds"):
        out += (f' (last {runtime["checkpoint_seconds"]:.3f} s, '
                f'{size(runtime.get("checkpoint_bytes"))})')
    return out


def when(value) -> str:
    """Epoch seconds or an ISO 8601 string, shown as UTC to the second."""
    if value in (None, ""):
        return "-"
    try:
        if isinstance(value, (int, float)):
            moment = dt.datetime.fromtimestamp(value, dt.timezone.utc)
        else:
            moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        return text(value)
    return text(moment.strftime("%Y-%m-%d %H:%M:%S UTC"))


def number(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}" if isinstance(value, (int, float)) else text(value)


def size(value) -> str:
    if value is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "-"


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _percentile(buckets: list[int] | None, count: int, q: float) -> str:
    """The upper bound of the latency bucket holding the q-quantile (buckets are counts
    per bucket, not cumulative); '> last' when it fell beyond the last bound."""
    if not buckets or not count:
        return "-"
    running = 0
    for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
        running += n
        if running >= q * count:
            return f"{1000 * bound:g} ms"
    return f"&gt; {1000 * LATENCY_BUCKETS[-1]:g} ms"


def _source(source) -> str:
    if isinstance(source, dict):
        return ", ".join(f"{k}: {v}" for k, v in source.items() if not isinstance(v, dict)) \
            or ", ".join(source)
    return str(source or "-")


def _summary(summary) -> str:
    """'40 resources: 17 Overprovisioned, 7 Optimized; saves $4,035.34/month'."""
    if not isinstance(summary, dict):
        return "-"
    findings = ", ".join(f"{n} {finding}" for finding, n in
                         (summary.get("findings") or {}).items() if n)
    out = f'{summary.get("resources", "?")} resources' + (f": {findings}" if findings else "")
    if isinstance(summary.get("savings_monthly"), (int, float)):
        out += f'; saves ${summary["savings_monthly"]:,.2f}/month'
    return out


STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
header{background:#1d3b2a;padding:.6em 1.5em;display:flex;gap:1.5em;align-items:baseline}
header a{color:#d8efe0;text-decoration:none}header a.brand{font-weight:700;color:#fff}
main{padding:1em 1.5em 3em;max-width:1400px}h1{font-size:1.5em;margin:.3em 0 .6em}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid #dde1e6;padding-bottom:.2em}
h3{font-size:1em;margin:1em 0 .3em}
table{border-collapse:collapse;background:#fff;width:100%;font-size:13px}
th,td{border:1px solid #e1e4e8;padding:.3em .6em;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}tr:hover td{background:#fafbfc}
code{font:12px ui-monospace,Menlo,Consolas,monospace;word-break:break-all}
pre{background:#fff;border:1px solid #e1e4e8;padding:.6em;overflow:auto;font-size:12px}
pre.log{max-height:32em;background:#10151c;color:#d6dde6}
.badge{display:inline-block;padding:0 .55em;border-radius:1em;font-size:12px;
font-weight:600;background:#e6e8eb;color:#444}
.good{background:#d5f3de;color:#0f5a2a}.busy{background:#fdf0c4;color:#6b5200}
.bad{background:#fbd9d9;color:#8a1010}
.muted{color:#6a7380}.counts{display:flex;gap:1em;flex-wrap:wrap}
.count{background:#fff;border:1px solid #e1e4e8;border-radius:6px;padding:.5em 1em;
min-width:8em}.count b{display:block;font-size:1.6em}
dl{display:grid;grid-template-columns:max-content auto;gap:.25em 1.2em;background:#fff;
border:1px solid #e1e4e8;padding:.8em 1em;margin:0}dt{color:#6a7380}dd{margin:0}
"""
