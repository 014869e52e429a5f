"""``forestream optimizer ...``: right-sizing recommendations, locally or on a server.

``recommend`` and ``prometheus`` run the library on this machine (nothing to start);
``analyses`` and ``components`` talk to a ``forestream server``; ``agent`` samples this
host; ``catalog`` browses instance types; ``report`` re-renders a saved analysis. The
numeric libraries are imported by the commands that use them, so ``forestream --help``
stays quick.
"""

from __future__ import annotations

import json
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from forestream.cli_apps import _signature
from forestream.cli_streams import endpoint_option

console = Console()
err_console = Console(stderr=True)

# The accepted values, as in forestream.optimizer.recommend (a test keeps them equal); kept
# here so that --help lists them without importing the recommender.
LOOKBACK_DAYS = ("14", "32", "93")
POLICIES = ("forestream", "aws-default", "max-rule", "vpa", "krr")
CPU_PERCENTILES = ("90", "95", "99.5")
CPU_HEADROOMS = ("0", "0.2", "0.3")
MEM_HEADROOMS = ("0.1", "0.2", "0.3")
FINDINGS = ("Overprovisioned", "Underprovisioned", "Optimized", "Idle", "InsufficientData",
            "Unsupported")
KINDS = ("instance", "asg", "container", "function", "volume", "stream", "application",
         "endpoint")
PROGRESS_FROM = 200  # resources: below this a run takes a second or two


def preference_options(command):
    """The recommendation preferences shared by ``recommend``, ``prometheus`` and
    ``analyses create``."""
    options = [
        click.option("--lookback-days", type=click.Choice(LOOKBACK_DAYS), default="14",
                     show_default=True, help="Days of history to size on (the most recent)."),
        click.option("--policy", type=click.Choice(POLICIES), default="forestream",
                     show_default=True, help="forestream: adaptive headroom, regime shifts "
                     "and one-off spikes left out; aws-default: AWS Compute Optimizer's "
                     "P99.5 + 20 %; max-rule, vpa, krr: other baselines."),
        click.option("--cpu-percentile", type=click.Choice(CPU_PERCENTILES), default="99.5",
                     show_default=True, help="Percentile of 5-minute CPU maxima to size on."),
        click.option("--cpu-headroom", type=click.Choice(CPU_HEADROOMS), default=None,
                     help="Spare CPU on top of the percentile [default: the policy's]."),
        click.option("--mem-headroom", type=click.Choice(MEM_HEADROOMS), default=None,
                     help="Spare memory on top of the peak [default: the policy's]."),
        click.option("--horizon-days", type=click.FloatRange(0, 93), default=7.0,
                     show_default=True, help="How far ahead a growth trend is projected."),
        click.option("--max-options", type=click.IntRange(1, 10), default=3,
                     show_default=True, help="Ranked options per resource."),
        click.option("--allow-graviton", is_flag=True,
                     help="Offer arm64 (Graviton) types to x86 workloads (your software must "
                          "have arm64 builds)."),
        click.option("--include-burstable", is_flag=True,
                     help="Offer T-family (burstable) types; their CPU credits are not "
                          "modelled."),
        click.option("--region", default="us-east-1", show_default=True,
                     help="Region whose catalog prices and types are used."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def output_options(command):
    """Where results go, and which rows the table shows."""
    options = [
        click.option("--json", "json_out", metavar="OUT|-",
                     help="Write the analysis as JSON to OUT ('-': stdout, no table)."),
        click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
                     help="Write the HTML report (a chart per resource; opens offline)."),
        click.option("--max-sections", type=click.IntRange(1), default=None,
                     help="HTML: at most N resource sections, largest savings first (the "
                          "overview still lists all) [default: all]."),
        click.option("--finding", "findings", multiple=True, type=click.Choice(FINDINGS),
                     help="Show only these findings in the table (repeatable)."),
        click.option("--kind", "kinds", multiple=True, type=click.Choice(KINDS),
                     help="Show only these resource kinds in the table (repeatable)."),
        click.option("--sort", type=click.Choice(["savings", "finding", "resource"]),
                     default="savings", show_default=True, help="Table order."),
        click.option("--limit", type=click.IntRange(1), default=None,
                     help="Show at most N rows in the table."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group()
def optimizer() -> None:
    """Right-size compute from utilization history (a self-hosted AWS Compute Optimizer).

    Findings (over-/under-provisioned, optimized, idle), reasons, the workload's class,
    ranked cheaper or safer options with their performance risk and monthly savings.

    \b
    forestream optimizer recommend metrics/ --html report.html
    forestream optimizer recommend web-1.csv --instance-type m5.xlarge
    forestream optimizer prometheus http://prometheus:9090 --resources hosts.csv
    forestream optimizer agent --directory metrics/          (on each host, for days)
    forestream optimizer catalog --family m7g --min-vcpu 4
    forestream optimizer report analysis.json --html report.html
    forestream optimizer analyses create --path /srv/metrics   (on the server)

    Input format: docs/optimizer.md (one CSV per resource with timestamp, cpu_pct,
    mem_pct, ... and a resources.csv naming each resource's instance_type).
    """


@optimizer.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--resources", "resources_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="resources.csv/json describing the resources [default: "
              "PATH/resources.csv or .json].")
@click.option("--instance-type", help="Current instance type of resources that name none "
              "(e.g. a single metrics file).")
@click.option("--catalog", "catalog_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Your own catalog file (CSV/JSON; see docs/optimizer.md).")
@preference_options
@output_options
def recommend(path, resources_file, instance_type, catalog_file, **options):
    """Recommend right sizes for the resources whose metrics are at PATH.

    PATH is a metrics file or a directory of them (one per resource, e.g. web-1.csv
    with timestamp,cpu_pct,mem_pct columns) with a resources.csv (resource_id, kind,
    instance_type, ...). At least 30 hours of data per resource are needed.

    \b
    Examples:
      forestream optimizer recommend metrics/
      forestream optimizer recommend metrics/ --lookback-days 32 --policy aws-default
      forestream optimizer recommend metrics/ --finding Overprovisioned --limit 20
      forestream optimizer recommend metrics/ --json analysis.json --html report.html
      forestream optimizer recommend host.csv --instance-type m5.xlarge --allow-graviton
    """
    from forestream.optimizer.ingest import read_metrics
    from forestream.optimizer.timeseries import MetricInputError

    try:
        histories = read_metrics(path, resources=resources_file)
    except MetricInputError as exc:
        raise click.ClickException(str(exc)) from None
    _analyse(histories, {"path": str(path)}, instance_type, catalog_file, options)


@optimizer.command()
@click.argument("url")
@click.option("--preset", type=click.Choice(["node_exporter", "cadvisor"]),
              default="node_exporter", show_default=True,
              help="node_exporter: hosts (kind instance); cadvisor: containers.")
@click.option("--days", type=click.FloatRange(0.1, 93), default=14.0, show_default=True,
              help="Days before --end to read.")
@click.option("--start", help="Start (ISO 8601 or epoch seconds) [default: END - DAYS].")
@click.option("--end", help="End (ISO 8601 or epoch seconds) [default: now].")
@click.option("--query", "queries", multiple=True, metavar="METRIC=PROMQL",
              help="Replace or add a query, e.g. cpu_pct='100 * avg by (instance) (...)'.")
@click.option("--header", "headers", multiple=True, metavar="'NAME: VALUE'",
              help="HTTP header for Prometheus, e.g. 'Authorization: Bearer TOKEN'.")
@click.option("--resources", "resources_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="resources.csv/json naming each resource's instance_type "
              "(resource ids as Prometheus names them, e.g. node-1:9100).")
@click.option("--instance-type", help="Instance type of every resource --resources does not "
              "name.")
@click.option("--catalog", "catalog_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Your own catalog file.")
@preference_options
@output_options
def prometheus(url, preset, days, start, end, queries, headers, resources_file, instance_type,
               catalog_file, **options):
    """Recommend right sizes for what a Prometheus server at URL monitors.

    Reads CPU, memory, network, disk and GPU series at a 5-minute step (PromQL presets
    for node_exporter and cAdvisor). Prometheus does not know instance types: give them
    with --resources or --instance-type.

    \b
    Examples:
      forestream optimizer prometheus http://prometheus:9090 --instance-type m5.xlarge
      forestream optimizer prometheus http://prometheus:9090 --resources hosts.csv \\
          --days 32 --lookback-days 32 --html report.html
    """
    from forestream.optimizer.analysis_input import apply_resources
    from forestream.optimizer.ingest import read_resources
    from forestream.optimizer.prometheus import PrometheusError, read_prometheus
    from forestream.optimizer.timeseries import MetricInputError

    parsed_queries = _pairs(queries, "--query", "=")
    parsed_headers = _pairs(headers, "--header", ":")
    try:
        histories = read_prometheus(url, start=start, end=end, days=days, preset=preset,
                                    queries=parsed_queries or None,
                                    headers=parsed_headers or None)
        if resources_file is not None:
            apply_resources(histories, read_resources(resources_file))
    except (MetricInputError, PrometheusError) as exc:
        raise click.ClickException(str(exc)) from None
    _analyse(histories, {"prometheus": url}, instance_type, catalog_file, options)


@optimizer.command()
@click.option("--region", default="us-east-1", show_default=True)
@click.option("--family", "families", multiple=True,
              help="Only these families, e.g. m7g (repeatable).")
@click.option("--architecture", type=click.Choice(["x86_64", "arm64"]))
@click.option("--min-vcpu", type=click.FloatRange(0), default=0.0)
@click.option("--min-memory", "min_memory", type=click.FloatRange(0), default=0.0,
              help="GiB.")
@click.option("--gpus/--no-gpus", default=None, help="Only GPU types / only types without.")
@click.option("--catalog", "catalog_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Your own catalog file [default: the shipped one].")
@click.option("--limit", type=click.IntRange(1), default=40, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON.")
def catalog(region, families, architecture, min_vcpu, min_memory, gpus, catalog_file, limit,
            as_json):
    """Instance types of a region, cheapest first: vCPUs, memory, GPUs, network, price.

    \b
    Examples:
      forestream optimizer catalog --family m7g --family m7i --min-vcpu 4
      forestream optimizer catalog --region eu-west-1 --architecture arm64 --min-memory 64
      forestream optimizer catalog --gpus --json
    """
    from forestream.optimizer.catalog import CatalogError, load_catalog

    try:
        types = load_catalog(region, catalog_file).filter(
            families=list(families) or None, architecture=architecture, min_vcpu=min_vcpu,
            min_memory_gib=min_memory, gpus=gpus)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps([t.__dict__ for t in types[:limit]], indent=1))
        return
    table = Table("type", "arch", "vCPU", "memory GiB", "GPUs", "network Gbps", "CPU speed",
                  "$/hour", "$/month", title=f"{region}: {len(types)} types"
                  + (f" (first {limit})" if len(types) > limit else ""))
    for t in types[:limit]:
        table.add_row(t.name, t.architecture, str(t.vcpu), f"{t.memory_gib:g}",
                      str(t.gpus or "-"), f"{t.network_gbps:g}", f"{t.cpu_speed:.2f}",
                      f"{t.price_per_hour:.4f}" + ("*" if t.price_estimated else ""),
                      f"{t.price_per_hour * 730:,.2f}")
    console.print(table)
    if any(t.price_estimated for t in types[:limit]):
        console.print("* estimated price (the source had none)")


@optimizer.command()
@click.option("--directory", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where <resource-id>.csv is written (created if missing).")
@click.option("--interval", type=click.FloatRange(0.1, 86400), default=60.0, show_default=True,
              help="Seconds per row.")
@click.option("--probe-seconds", type=click.FloatRange(0.05, 3600), default=5.0,
              show_default=True, help="CPU probe length: peaks shorter than the interval.")
@click.option("--resource-id", help="Name of this host in the metrics [default: host name].")
def agent(directory, interval, probe_seconds, resource_id):
    """Sample this host's utilization into DIRECTORY until Ctrl-C (or SIGTERM).

    Run it for days on every machine you want right-sized (14 days is the default
    lookback), then `forestream optimizer recommend DIRECTORY --instance-type TYPE`
    (or give a resources.csv).

    \b
    Example:
      forestream optimizer agent --directory /var/lib/forestream-metrics --interval 60
    """
    from forestream.optimizer.agent import HostAgent
    from forestream.optimizer.timeseries import MetricInputError

    try:
        host = HostAgent(directory, resource_id=resource_id, interval_seconds=interval,
                         probe_seconds=probe_seconds)
    except MetricInputError as exc:
        raise click.ClickException(str(exc)) from None
    stop = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, _interrupt)  # a service manager's stop ends it cleanly
    console.print(f"sampling {host.resource_id} every {interval:g} s into [cyan]{host.path}[/]"
                  " (Ctrl-C stops)")
    host.start()
    try:
        while host.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        host.stop()
        signal.signal(signal.SIGTERM, stop)
    console.print(f"stopped: {host.rows_written} rows written to {host.path}")


@optimizer.command()
@click.argument("analysis_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@output_options
def report(analysis_file, **options):
    """Re-render a saved analysis (from --json, or `analyses show ID --json`).

    \b
    Example:
      forestream optimizer recommend metrics/ --json analysis.json
      forestream optimizer report analysis.json --html report.html --finding Idle
    """
    try:
        analysis = json.loads(analysis_file.read_text())
    except ValueError:
        analysis = None
    if not isinstance(analysis, dict) or not isinstance(analysis.get("recommendations"), list):
        raise click.ClickException(f"{analysis_file} is not an analysis (JSON with "
                                   "'recommendations'); make one with `forestream optimizer "
                                   "recommend PATH --json OUT`")
    _show(analysis, options)


@optimizer.group()
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
@click.option("--path", "server_path", help="A metrics file or directory on the server.")
@click.option("--prometheus", "prometheus_url", help="A Prometheus server the server reads.")
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
    """Run an analysis on the server and show it (its id is printed last)."""
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
    preferences, region = _preferences(options)
    created = _api(endpoint_url, "POST", "/analyses", {"source": source,
                                                        "preferences": preferences,
                                                        "region": region})
    analysis = _api(endpoint_url, "GET", f"/analyses/{_quoted(created['id'])}",
                    query={"include": "series"})
    _show(analysis, options)
    click.echo(created["id"], err=options["json_out"] == "-")


@analyses.command("list")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@endpoint_option
def analyses_list(limit, as_json, endpoint_url):
    """The server's analyses, newest first."""
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
    """One stored analysis: its table, and optionally its JSON and HTML report."""
    analysis = _api(endpoint_url, "GET", f"/analyses/{_quoted(analysis_id)}",
                    query={"include": "series"})
    _show(analysis, options)


@analyses.command("delete")
@click.argument("analysis_id")
@endpoint_option
def analyses_delete(analysis_id, endpoint_url):
    """Delete a stored analysis."""
    _api(endpoint_url, "DELETE", f"/analyses/{_quoted(analysis_id)}")
    console.print(f"deleted {analysis_id}")


@optimizer.command()
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


# ------------------------------------------------------------------------- helpers
def _preferences(options: dict) -> tuple[dict, str]:
    preferences = {"lookback_days": int(options.pop("lookback_days")),
                   "policy": options.pop("policy"),
                   "cpu_percentile": float(options.pop("cpu_percentile")),
                   "horizon_days": options.pop("horizon_days"),
                   "max_options": options.pop("max_options"),
                   "allow_graviton": options.pop("allow_graviton"),
                   "include_burstable": options.pop("include_burstable")}
    for name in ("cpu_headroom", "mem_headroom"):
        value = options.pop(name)
        if value is not None:
            preferences[name] = float(value)
    return preferences, options.pop("region")


def _analyse(histories, source: dict, instance_type, catalog_file, options: dict) -> None:
    """Recommend for ``histories`` on this machine, then show and write the results."""
    from forestream.optimizer.analysis_input import apply_resources
    from forestream.optimizer.catalog import CatalogError, load_catalog
    from forestream.optimizer.recommend import RecommendationError, recommend_many
    from forestream.optimizer.report import build_analysis

    if not histories:
        raise click.ClickException(f"no resources found in {source}")
    apply_resources(histories, {}, instance_type)
    preferences, region = _preferences(options)
    try:
        catalog = load_catalog(region, catalog_file)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    started = time.perf_counter()
    try:
        if len(histories) >= PROGRESS_FROM:
            from rich.progress import Progress

            with Progress(console=err_console, transient=True) as bar:
                task = bar.add_task("recommending", total=len(histories))
                recs = recommend_many(histories, catalog, **preferences,
                                      progress=lambda n: bar.advance(task, n))
        else:
            recs = recommend_many(histories, catalog, **preferences)
    except RecommendationError as exc:
        raise click.ClickException(str(exc)) from None
    analysis = build_analysis(recs, histories, preferences=preferences, region=region,
                              source=source, catalog=catalog)
    err_console.print(f"{len(recs):,} resource{'s' if len(recs) != 1 else ''} analysed in "
                      f"{time.perf_counter() - started:.1f} s", style="dim")
    _show(analysis, options)
    untyped = sum(1 for h in histories if h.resource.kind in ("instance", "asg")
                  and not h.resource.current.get("instance_type"))
    if untyped:
        err_console.print(f"[yellow]{untyped} resource{'s' if untyped != 1 else ''} name no "
                          "instance type[/]: give --instance-type TYPE, or a resources.csv "
                          "with resource_id,instance_type (--resources FILE)")


def _show(analysis: dict, options: dict) -> None:
    """The table and summary line, and the JSON and HTML files asked for."""
    from forestream.optimizer.report import (
        filter_recommendations,
        recommendation_table,
        render_html,
        sort_recommendations,
        summarize,
        summary_line,
        to_json,
        write_atomically,
    )

    json_out, html_out = options.get("json_out"), options.get("html_out")
    if json_out == "-":
        click.echo(to_json(analysis), nl=False)
    elif json_out:
        write_atomically(json_out, to_json(analysis))
        err_console.print(f"analysis written to [cyan]{json_out}[/]")
    if html_out:
        write_atomically(html_out, render_html(analysis,
                                               max_sections=options.get("max_sections")))
        err_console.print(f"HTML report written to [cyan]{html_out}[/]")
    rows = filter_recommendations(analysis["recommendations"],
                                  finding=options.get("findings") or None,
                                  kind=options.get("kinds") or None)
    rows = sort_recommendations(rows, options.get("sort") or "savings")
    shown = rows[: options["limit"]] if options.get("limit") else rows
    out = err_console if json_out == "-" else console
    if json_out != "-":
        title = f"analysis {analysis.get('id', '')}"
        if len(shown) < len(analysis["recommendations"]):
            title += f" ({len(shown)} of {len(analysis['recommendations'])} resources shown)"
        out.print(recommendation_table(shown, title=title))
    out.print(summary_line(analysis.get("summary") or summarize(analysis["recommendations"])))


def _quoted(analysis_id: str) -> str:
    return urllib.parse.quote(analysis_id, safe="")


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _pairs(items: tuple[str, ...], option: str, separator: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition(separator)
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r}: expected NAME{separator}VALUE",
                                     param_hint=option)
        out[key.strip()] = value.strip()
    return out


def _api(endpoint: str, method: str, path: str, body: dict | None = None, *,
         query: dict | None = None):
    """Call ``/api/v1/optimizer``; problem details become clean CLI errors."""
    data = json.dumps(body).encode() if body is not None else None
    url = f"{endpoint.rstrip('/')}/api/v1/optimizer{path}"
    if query:
        url += "?" + urllib.parse.urlencode(query)
    headers = {"Content-Type": "application/json", **_signature(method, url, data)}
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=900) as response:
            raw = response.read()
            return json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        try:
            problem = json.loads(exc.read())
            detail = f"{problem.get('title')}: {problem.get('detail')}"
        except ValueError:
            detail = str(exc.reason)
        raise click.ClickException(f"{exc.code} {detail}") from None
    except urllib.error.URLError as exc:
        raise click.ClickException(f"cannot reach {endpoint} ({exc.reason}): is "
                                   "`forestream server` running?") from None

