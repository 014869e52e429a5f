"""The options shared by the optimizer commands that make or show an analysis, and output.

:func:`preference_options` (lookback, policy, percentiles, headroom ...) decorate the
commands that run a recommendation, locally or on a server, and :func:`pop_preferences`
reads them back; :func:`output_options` (JSON and HTML files, table filters) decorate
every command that shows an analysis, and :func:`show_analysis` does what they ask.
Used by :mod:`forestream.cli_optimizer` and :mod:`forestream.cli_optimizer_server`.
"""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

console = Console()
err_console = Console(stderr=True)

# The accepted values, as in forestream.optimizer.recommend (a test keeps them equal); kept
# here so that --help lists them without importing the recommender.
LOOKBACK_DAYS = ("14", "32", "93")
POLICIES = ("forestream", "aws-default", "max-rule", "vpa", "krr")
CPU_PERCENTILES = ("90", "95", "99.5")
SLO_PERCENTILES = ("90", "95", "99", "99.5")
CPU_HEADROOMS = ("0", "0.2", "0.3")
MEM_HEADROOMS = ("0.1", "0.2", "0.3")
FINDINGS = ("Overprovisioned", "Underprovisioned", "Optimized", "Idle", "InsufficientData",
            "Unsupported")
KINDS = ("instance", "asg", "container", "function", "volume", "stream", "application",
         "endpoint")


def preference_options(command):
    """The recommendation preferences shared by ``recommend``, ``prometheus`` and
    ``analyses create``."""
    options = [
        click.option("--lookback-days", type=click.Choice(LOOKBACK_DAYS), default="14",
                     show_default=True, help="Days of history to size on (the most recent)."),
        click.option("--policy", type=click.Choice(POLICIES), default="forestream",
                     show_default=True, help="forestream: sized to the service level "
                     "(--slo-percentile, --slo-utilization) with the spread of the days, "
                     "regime shifts, growth, CPU credits and memory restarts; aws-default: "
                     "AWS Compute Optimizer's P99.5 + 20 %; max-rule, vpa, krr: other "
                     "baselines."),
        click.option("--slo-percentile", type=click.Choice(SLO_PERCENTILES), default="99",
                     show_default=True, help="forestream: this percentile of 5-minute CPU "
                     "utilization must stay at or below --slo-utilization."),
        click.option("--slo-utilization", type=click.FloatRange(50, 100), default=90.0,
                     show_default=True, help="forestream: the percent of capacity the "
                     "percentile may reach."),
        click.option("--cpu-percentile", type=click.Choice(CPU_PERCENTILES), default="99.5",
                     show_default=True, help="aws-default: percentile of 5-minute CPU to "
                     "size on."),
        click.option("--cpu-headroom", type=click.Choice(CPU_HEADROOMS), default=None,
                     help="Spare CPU on top of the percentile [default: the policy's]."),
        click.option("--mem-headroom", type=click.Choice(MEM_HEADROOMS), default=None,
                     help="Spare memory on top of the peak [default: the policy's]."),
        click.option("--horizon-days", type=click.FloatRange(0, 93), default=14.0,
                     show_default=True, help="The period a recommendation is for: how far "
                     "ahead growth is projected (forestream: also the length of the drawn "
                     "periods)."),
        click.option("--max-options", type=click.IntRange(1, 10), default=3,
                     show_default=True, help="Ranked options per resource."),
        click.option("--allow-graviton", is_flag=True,
                     help="Offer arm64 (Graviton) types to x86 workloads (your software must "
                          "have arm64 builds)."),
        click.option("--include-burstable", is_flag=True,
                     help="Offer T-family (burstable) types to other instances too "
                          "(forestream offers them only while their CPU credits last)."),
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


def pop_preferences(options: dict) -> tuple[dict, str]:
    """Take the :func:`preference_options` out of a command's ``options``: the
    recommender's preferences, and the region."""
    preferences = {"lookback_days": int(options.pop("lookback_days")),
                   "policy": options.pop("policy"),
                   "cpu_percentile": float(options.pop("cpu_percentile")),
                   "slo_percentile": float(options.pop("slo_percentile")),
                   "slo_utilization": float(options.pop("slo_utilization")),
                   "horizon_days": options.pop("horizon_days"),
                   "max_options": options.pop("max_options"),
                   "allow_graviton": options.pop("allow_graviton"),
                   "include_burstable": options.pop("include_burstable")}
    for name in ("cpu_headroom", "mem_headroom"):
        value = options.pop(name)
        if value is not None:
            preferences[name] = float(value)
    return preferences, options.pop("region")


def show_analysis(analysis: dict, options: dict) -> None:
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
