"""A model group's page (versions, approve/reject, a version's metadata) and an
endpoint's page (variants, invoke from the page, latency and error charts, weights)."""

from __future__ import annotations

import json

from ..history import Series
from ..pages import (
    Chrome,
    action_form,
    badge,
    chart,
    field,
    fields,
    log_block,
    number,
    path_of,
    percentile,
    select,
    short,
    size,
    table,
    text,
    when,
)

APPROVALS = ("Approved", "Rejected", "PendingManualApproval")
CONTENT_TYPES = ("text/csv", "application/json", "application/x-npy", "text/plain")


def group_live(data: dict, chrome: Chrome) -> str:
    group = data["group"]
    base = path_of("models", group["name"])
    rows = []
    for v in data["versions"]:
        number_ = v["version"]
        approve = "".join(
            action_form(f"{base}/versions/{number_}/approval",
                        f'<input type="hidden" name="approval_status" value="{status}">',
                        label, chrome, danger=status == "Rejected", klass="inline")
            for status, label in (("Approved", "Approve"), ("Rejected", "Reject"))
            if v["approval_status"] != status)
        detail = f'{base}?part=version&amp;version={number_}'
        hx = (f' hx-get="{detail}" hx-target="#version-detail" hx-swap="innerHTML"'
              if chrome.live else "")
        rows.append([
            f'<a href="{detail}"{hx}>{number_}</a>', badge(v["status"]),
            badge(v["approval_status"]),
            text(f'{v.get("framework") or "-"} {v.get("framework_version") or ""}'),
            size(v.get("size_bytes")), when(v.get("created_at")),
            f'<code title="{text(v.get("artifact_digest") or "")}">'
            f'{text((v.get("artifact_digest") or "-")[:12])}</code>',
            text(", ".join(f"{k}={short(m)}" for k, m in sorted(v["metrics"].items())) or "-"),
            text(v.get("description") or v.get("failure_reason") or ""), approve])
    facts = fields([("description", text(group["description"]) or "-"),
                    ("versions", group["version_count"]),
                    ("latest", text(group["latest_version"] or "-")),
                    ("latest approved", text(group["latest_approved_version"] or "-")),
                    ("tags", text(", ".join(f"{k}={v}" for k, v in group["tags"].items()))
                     or "-"),
                    ("created", when(group["created_at"]))])
    return "".join([facts, "<h2>Versions</h2>", table(
        ["version", "status", "approval", "framework", "size", "created", "digest",
         "metrics", "description / failure", "approval"], rows, "no versions")])


def version_detail(version: dict) -> str:
    """Everything the registry keeps about one version (metadata, lineage, approval)."""
    plain = [(k, v) for k, v in sorted(version.items()) if not isinstance(v, (dict, list))]
    nested = [(k, v) for k, v in sorted(version.items()) if isinstance(v, (dict, list))]
    return (f"<h3>Version {text(version.get('version'))} of {text(version.get('group'))}</h3>"
            + fields([(k, f"<code>{text(v)}</code>") for k, v in plain])
            + "".join(f"<h3>{text(k)}</h3><pre>{text(json.dumps(v, indent=2, default=str))}"
                      "</pre>" for k, v in nested))


def endpoint_live(data: dict, metrics: dict, series: dict[str, Series]) -> str:
    ep = data["endpoint"]
    rows = []
    for v in ep["variants"]:
        m = metrics.get(v["variant_name"], {})
        count = m.get("invocations", 0)
        rows.append([text(v["variant_name"]), text(v["model"]), short(v["current_weight"]),
                     f'{v["current_workers"]} / {v["desired_workers"]}', number(count),
                     number(m.get("errors", 0)),
                     f'{1000 * m["latency_sum"] / count:.2f} ms' if count else "-",
                     percentile(m.get("buckets"), count, 0.5),
                     percentile(m.get("buckets"), count, 0.99)])
    logs = "".join(f"<h3>{text(name)}</h3>{log_block(lines)}"
                   for name, lines in data["logs"].items()) or \
        '<p class="muted">no worker logs</p>'
    facts = fields([("status", badge(ep["status"])),
                    ("failure reason", text(ep.get("failure_reason") or "-")),
                    ("configuration", text(ep["config"])), ("created", when(ep["created_at"])),
                    ("modified", when(ep["modified_at"])),
                    ("invoke", f'<code>POST /endpoints/{text(ep["name"])}/invocations</code>')])
    charts = "".join([
        chart("chart-invocations", "Invocations per variant", "/s",
              series["invocations"].times, series["invocations"].as_chart(),
              "no invocations sampled yet"),
        chart("chart-latency", "Mean latency per variant", "ms", series["latency"].times,
              series["latency"].as_chart(), "no invocations sampled yet"),
        chart("chart-errors", "Errors per variant", "/s", series["errors"].times,
              series["errors"].as_chart(), "no invocations sampled yet")])
    return "".join([facts, "<h2>Variants</h2>", table(
        ["variant", "model", "weight", "workers (running / desired)", "invocations", "errors",
         "mean latency", "p50 ≤", "p99 ≤"], rows, "no variants"),
        "<h2>Traffic</h2>", f'<div class="charts">{charts}</div>',
        "<h2>Worker logs, newest first</h2>", logs])


def endpoint_forms(data: dict, chrome: Chrome) -> str:
    ep = data["endpoint"]
    base = path_of("endpoints", ep["name"])
    variants = [v["variant_name"] for v in ep["variants"]]
    invoke = action_form(
        f"{base}/invoke",
        select("content_type", CONTENT_TYPES, "text/csv", "content type")
        + field("accept", "accept", placeholder="optional", size_=16)
        + select("variant", ["", *variants], label="variant")
        + '<label>body <textarea name="body" rows="3" cols="50" required>1,2,3</textarea>'
          "</label>",
        "Invoke", chrome, target="#invoke-result", klass="wide")
    weights = action_form(
        f"{base}/weights",
        "".join(field(f"weight.{v['variant_name']}", f"{v['variant_name']} weight",
                      short(v["current_weight"]), size_=5)
                + field(f"workers.{v['variant_name']}", "workers",
                        str(v["desired_workers"]), kind="number", extra=' min="1" max="64"')
                for v in ep["variants"]),
        "Set weights and workers", chrome)
    return (f'<h2>Invoke</h2>{invoke}<div id="invoke-result"></div>'
            f'<h2>Variant weights</h2><div class="actions">{weights}</div>')


def invocation(answer: dict) -> str:
    """The answer of an invocation from the page."""
    return (f'<div class="flash ok" id="invocation"><b>{text(answer["variant"])}</b> answered '
            f'in {answer["millis"]:.1f} ms ({text(answer["content_type"])})'
            f'<pre>{text(answer["body"])}</pre></div>')
