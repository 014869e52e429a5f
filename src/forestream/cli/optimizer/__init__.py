"""``forestream optimizer ...``: right-sizing recommendations, locally or on a server.

``recommend`` and ``prometheus`` run the library on this machine (nothing to start);
``analyses`` and ``components`` talk to a ``forestream server``; ``agent`` samples this
host; ``catalog`` browses instance types; ``report`` re-renders a saved analysis. The
numeric libraries are imported by the commands that use them, so ``forestream --help``
stays quick. ``analyses`` and ``components`` live in :mod:`forestream.cli_optimizer_server`,
the options and output shared with them in :mod:`forestream.cli_optimizer_options`.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import click
from rich.table import Table

# ``name as name``: re-exported for code that imports it from here, where it lived before.
from .options import CPU_HEADROOMS as CPU_HEADROOMS
from .options import CPU_PERCENTILES as CPU_PERCENTILES
from .options import FINDINGS as FINDINGS
from .options import KINDS as KINDS
from .options import LOOKBACK_DAYS as LOOKBACK_DAYS
from .options import MEM_HEADROOMS as MEM_HEADROOMS
from .options import POLICIES as POLICIES
from .options import (
    console,
    err_console,
    output_options,
    pop_preferences,
    preference_options,
    show_analysis,
)
from .server import analyses, components

PROGRESS_FROM = 200  # resources: below this a run takes a second or two


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


optimizer.add_command(analyses)
optimizer.add_command(components)


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
@click.option("--region", default="us-east-1", show_default=True,
              help="Region whose prices are shown.")
@click.option("--family", "families", multiple=True,
              help="Only these families, e.g. m7g (repeatable).")
@click.option("--architecture", type=click.Choice(["x86_64", "arm64"]),
              help="Only this processor architecture (arm64: Graviton).")
@click.option("--min-vcpu", type=click.FloatRange(0), default=0.0,
              help="Only types with at least this many vCPUs.")
@click.option("--min-memory", "min_memory", type=click.FloatRange(0), default=0.0,
              help="GiB.")
@click.option("--gpus/--no-gpus", default=None, help="Only GPU types / only types without.")
@click.option("--catalog", "catalog_file", type=click.Path(exists=True, dir_okay=False,
              path_type=Path), help="Your own catalog file [default: the shipped one].")
@click.option("--limit", type=click.IntRange(1), default=40, show_default=True,
              help="Show at most N types.")
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
    show_analysis(analysis, options)


# --------------------------------------------------------------------------- helpers

def _analyse(histories, source: dict, instance_type, catalog_file, options: dict) -> None:
    """Recommend for ``histories`` on this machine, then show and write the results."""
    from forestream.optimizer.analysis_input import apply_resources
    from forestream.optimizer.catalog import CatalogError, load_catalog
    from forestream.optimizer.recommend import RecommendationError, recommend_many
    from forestream.optimizer.report import build_analysis

    if not histories:
        raise click.ClickException(f"no resources found in {source}")
    apply_resources(histories, {}, instance_type)
    preferences, region = pop_preferences(options)
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
    show_analysis(analysis, options)
    untyped = sum(1 for h in histories if h.resource.kind in ("instance", "asg")
                  and not h.resource.current.get("instance_type"))
    if untyped:
        err_console.print(f"[yellow]{untyped} resource{'s' if untyped != 1 else ''} name no "
                          "instance type[/]: give --instance-type TYPE, or a resources.csv "
                          "with resource_id,instance_type (--resources FILE)")


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
