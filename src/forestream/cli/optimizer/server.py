"""``forestream optimizer analyses ...`` and ``components``: the optimizer on a server.

``analyses`` runs analyses on a ``forestream server`` (metrics files there, a Prometheus
it reads, or its own components) and lists, shows and deletes the stored ones;
``components`` starts, stops and reports the server's collector of its own streams',
applications' and endpoints' utilization. Both talk to ``/api/v1/optimizer`` and are
registered under ``forestream optimizer`` by :mod:`forestream.cli_optimizer`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import click
from rich.table import Table

from ..options import endpoint_option, rest
from .options import (
    console,
    output_options,
    pop_preferences,
    preference_options,
    show_analysis,
)


@click.group()
def analyses() -> None:
    """Analyses stored on a forestream server (run there, kept across restarts).

    \b
    forestream optimizer analyses create --path /srv/metrics
    forestream optimizer analyses list
    forestream optimizer analyses show ID --finding Overprovisioned
    forestream optimizer analyses show ID --html report.html
    forestream optimizer analyses delete ID
    """


@analyses.command("create")
@click.option("--path", "server_path", help="A metrics file or directory on the server, "
              "inside a folder it was started with --import-root.")
@click.option("--prometheus", "prometheus_url", help="A Prometheus server the server reads "
              "(its host given to the server with --outbound-host).")
@click.option("--components", is_flag=True,
              help="forestream's own streams, applications and endpoints (the server's "
                   "component collector must have run: `optimizer components start`).")
@click.option("--days", type=click.FloatRange(0.1, 93), default=None,
              help="--prometheus: days to read [default 14].")
@click.option("--instance-type", help="Instance type of resources that name none.")
@preference_options
@output_options
@endpoint_option
def analyses_create(server_path, prometheus_url, components, days, instance_type, endpoint_url,
                    **options):
    """Run an analysis on the server and show it (its id is printed last): of metric files
    in a folder the server may read (--path), of what a Prometheus server monitors
    (--prometheus), or of forestream's own components (--components).

    \b
    Examples:
      forestream optimizer analyses create --path /srv/metrics
      forestream optimizer analyses create --prometheus http://prometheus:9090 --days 7
      forestream optimizer analyses create --components --html report.html
    """
    chosen = [s for s in (server_path, prometheus_url, components) if s]
    if len(chosen) != 1:
        raise click.UsageError("give exactly one of --path, --prometheus, --components")
    if server_path:
        source: dict = {"path": server_path}
    elif prometheus_url:
        source = {"prometheus": {"url": prometheus_url, **({"days": days} if days else {})}}
    else:
        source = {"components": True}
    if instance_type:
        source["instance_type"] = instance_type
    preferences, region = pop_preferences(options)
    created = _api(endpoint_url, "POST", "/analyses", {"source": source,
                                                        "preferences": preferences,
                                                        "region": region})
    analysis = _api(endpoint_url, "GET", f"/analyses/{_quoted(created['id'])}",
                    query={"include": "series"})
    show_analysis(analysis, options)
    click.echo(created["id"], err=options["json_out"] == "-")


@analyses.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True,
              help="Show at most N analyses.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@endpoint_option
def analyses_list(limit, as_json, endpoint_url):
    """The server's analyses, newest first: id, source, resources, findings, savings.

    \b
    Examples:
      forestream optimizer analyses list
      forestream optimizer analyses list --limit 5 --json
    """
    page = _api(endpoint_url, "GET", "/analyses", query={"limit": limit})
    if as_json:
        click.echo(json.dumps(page["analyses"], indent=1))
        return
    from forestream.optimizer.report import money

    table = Table("id", "created", "source", "resources", "findings", "savings/month")
    for item in page["analyses"]:
        summary = item.get("summary") or {}
        counts = ", ".join(f"{n} {f}" for f, n in (summary.get("findings") or {}).items() if n)
        source = ", ".join(f"{k}={v}" for k, v in (item.get("source") or {}).items())
        table.add_row(item["id"], item["created_at"], source, str(summary.get("resources", 0)),
                      counts, money(summary.get("savings_monthly")))
    console.print(table)


@analyses.command("show")
@click.argument("analysis_id")
@output_options
@endpoint_option
def analyses_show(analysis_id, endpoint_url, **options):
    """One stored analysis: its table, and optionally its JSON and HTML report.

    \b
    Examples:
      forestream optimizer analyses show ID --finding Overprovisioned --sort savings
      forestream optimizer analyses show ID --json analysis.json --html report.html
    """
    analysis = _api(endpoint_url, "GET", f"/analyses/{_quoted(analysis_id)}",
                    query={"include": "series"})
    show_analysis(analysis, options)


@analyses.command("delete")
@click.argument("analysis_id")
@endpoint_option
def analyses_delete(analysis_id, endpoint_url):
    """Delete a stored analysis (ID as `analyses list` prints it).

    \b
    Example:
      forestream optimizer analyses delete ID
    """
    _api(endpoint_url, "DELETE", f"/analyses/{_quoted(analysis_id)}")
    console.print(f"deleted {analysis_id}")


@click.command()
@click.argument("action", type=click.Choice(["status", "start", "stop"]), default="status")
@click.option("--interval", type=click.FloatRange(1, 86400), default=60.0, show_default=True,
              help="start: seconds between samples.")
@endpoint_option
def components(action, interval, endpoint_url):
    """The server's collector of its own components' utilization (streams, shards,
    applications, endpoints), for `analyses create --components`.

    \b
    forestream optimizer components start --interval 60
    forestream optimizer components            (status)
    forestream optimizer components stop
    """
    if action == "start":
        status = _api(endpoint_url, "PUT", "/components", {"interval_seconds": interval})
    elif action == "stop":
        status = _api(endpoint_url, "DELETE", "/components")
    else:
        status = _api(endpoint_url, "GET", "/components")
    state = (f"running every {status['interval_seconds']:g} s" if status["running"]
             else "stopped")
    console.print(f"collector {state}; metrics of {len(status['resources'])} components in "
                  f"{status['directory']}")
    for name in status["resources"]:
        console.print(f"  {name}")


# --------------------------------------------------------------------------- helpers

def _api(endpoint: str, method: str, path: str, body: dict | None = None, *,
         query: dict | None = None):
    """Call ``/api/v1/optimizer``; problem details become clean CLI errors."""
    return rest(endpoint.rstrip("/"), method, f"/api/v1/optimizer{path}", body, query=query,
                timeout=900)


def _quoted(analysis_id: str) -> str:
    return urllib.parse.quote(analysis_id, safe="")
