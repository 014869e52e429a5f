"""The overview (``/``) and the index pages of each kind of resource: pure functions
from the reader's data to HTML."""

from __future__ import annotations

from urllib.parse import quote

from ..pages import (
    Chrome,
    action_form,
    badge,
    badge_or_none,
    checkpoint,
    field,
    link,
    number,
    select,
    short,
    table,
    text,
    when,
)

DOCS = ("streams.md", "processing.md", "rcf.md", "models.md", "optimizer.md", "console.md")


def overview(data: dict) -> str:
    """The live part of ``/``: counts and every resource, with the usage snippets."""
    streams, apps, groups = data["streams"], data["applications"], data["groups"]
    endpoints, analyses = data["endpoints"], data["analyses"]
    counts = "".join(f'<a class="count" href="{href}"><b>{n}</b>{label}</a>'
                     for n, label, href in (
                         (len(streams), "streams", "/console/streams"),
                         (len(apps), "applications", "/console/applications"),
                         (len(groups), "model groups", "/console/models"),
                         (len(endpoints), "endpoints", "/console/endpoints"),
                         (len(analyses), "recent analyses", "/console/optimizer")))
    return "".join([
        f'<p class="muted">data directory <code>{text(data["data_dir"])}</code></p>',
        f'<div class="counts">{counts}</div>',
        "<h2>Streams</h2>", stream_table(streams),
        "<h2>Applications</h2>", application_table(apps),
        "<h2>Model groups</h2>", group_table(groups),
        "<h2>Endpoints</h2>", endpoint_table(endpoints),
        "<h2>Optimizer analyses</h2>", analysis_table(analyses),
        usage(data["base_url"], data["auth"])])


def stream_table(streams: list[dict]) -> str:
    return table(
        ["name", "status", "mode", "open shards", "retention", "encryption", "consumers",
         "created"],
        [[link("streams", s["StreamName"]), badge(s["StreamStatus"]),
          text(s["StreamModeDetails"]["StreamMode"]), s["OpenShardCount"],
          f'{s["RetentionPeriodHours"]} h', badge_or_none(s["EncryptionType"]),
          s.get("ConsumerCount", 0), when(s["StreamCreationTimestamp"])]
         for s in streams],
        "no streams yet: create one here (Streams), with boto3 or the CLI below")


def application_table(apps: list[dict]) -> str:
    return table(
        ["name", "status", "worker", "parallelism", "records in", "checkpoints", "version"],
        [[link("applications", a["name"]), badge(a["status"]),
          badge((a.get("runtime") or {}).get("state") or "-"), a["parallelism"],
          number((a.get("runtime") or {}).get("records_in")),
          checkpoint(a.get("runtime")), a["version"]] for a in apps],
        "no applications yet: create one under Applications, or with forestream apps "
        "create NAME --code job.py")


def group_table(groups: list[dict]) -> str:
    return table(
        ["group", "description", "versions", "latest", "latest approved", "created"],
        [[link("models", g["name"]), text(g["description"]), g["version_count"],
          text(g["latest_version"] or "-"), text(g["latest_approved_version"] or "-"),
          when(g["created_at"])] for g in groups],
        "no model groups (forestream models import PATH --group NAME)")


def endpoint_table(endpoints: list[dict]) -> str:
    return table(
        ["endpoint", "status", "variants (model, weight, workers)", "modified"],
        [[link("endpoints", e["name"]), badge(e["status"]), variants(e["variants"]),
          when(e["modified_at"])] for e in endpoints],
        "no endpoints (forestream models deploy, or POST /api/v1/endpoints)")


def analysis_table(analyses: list[dict]) -> str:
    return table(
        ["analysis", "created", "source", "summary", "report"],
        [[text(a["id"]), when(a.get("created_at")), text(_source(a.get("source"))),
          text(_summary(a.get("summary"))),
          f'<a href="/console/optimizer/{quote(a["id"], safe="")}/report.html">'
          "report.html</a>"] for a in analyses],
        "no analyses (forestream optimizer analyses create, or POST /api/v1/optimizer/analyses)")


def create_stream_form(chrome: Chrome) -> str:
    """Streams index: a form that creates a stream (CreateStream's rules and messages)."""
    fields = (field("name", "name", required=True, placeholder="sensors", size_=24)
              + field("shards", "shards", "1", kind="number", extra=' min="1"')
              + select("mode", ("PROVISIONED", "ON_DEMAND"), "PROVISIONED", "mode"))
    return action_form("/console/streams", fields, "Create stream", chrome)


def variants(items: list[dict]) -> str:
    return "<br>".join(f'{text(v["variant_name"])}: {text(v["model"])}, weight '
                       f'{short(v["current_weight"])}, {v["current_workers"]}/'
                       f'{v["desired_workers"]} workers' for v in items) or "-"


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
