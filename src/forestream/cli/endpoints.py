"""``forestream models endpoints ...`` and ``forestream models transform``: serve and score.

``endpoints`` lists the server's endpoints and manages them (describe, live weights
and worker counts, delete, worker logs); ``transform`` scores every row of a file or a
stream through an endpoint in batches. Both are registered under ``forestream models``
by :mod:`forestream.cli_models`, which deploys and invokes.
"""

from __future__ import annotations

import click
from rich.table import Table

from .options import console, endpoint_option, err_console, parse_pairs, rest, show_json


@click.group("endpoints", invoke_without_command=True)
@endpoint_option
@click.pass_context
def endpoints(ctx, endpoint_url):
    """List endpoints: status, variants, models, weights and workers (and manage them
    with the sub-commands). `forestream models deploy` creates them.

    \b
    forestream models endpoints
    forestream models endpoints describe churn
    forestream models endpoints weights churn churn-3=9 churn-4=1
    forestream models endpoints logs churn --tail 20
    forestream models endpoints delete churn
    """
    if ctx.invoked_subcommand is not None:
        return
    table = Table("endpoint", "status", "variant", "model", "weight", "workers", "reason")
    for ep in rest(endpoint_url, "GET", "/api/v1/endpoints")["endpoints"]:
        for i, v in enumerate(ep["variants"]):
            table.add_row(ep["name"] if i == 0 else "", ep["status"] if i == 0 else "",
                          v["variant_name"], v["model"], f"{v['current_weight']:g}",
                          f"{v['current_workers']}/{v['desired_workers']}",
                          (ep.get("failure_reason") or "") if i == 0 else "")
    console.print(table)


@endpoints.command("describe")
@click.argument("name")
@endpoint_option
def endpoint_describe(name, endpoint_url):
    """Describe endpoint NAME as JSON: variants, current and desired weights and
    workers, the failure reason if any.

    \b
    Example:
      forestream models endpoints describe churn
    """
    show_json(rest(endpoint_url, "GET", f"/api/v1/endpoints/{name}"))


@endpoints.command("weights")
@click.argument("name")
@click.argument("settings", nargs=-1, required=True, metavar="VARIANT=WEIGHT...")
@click.option("--workers", "worker_settings", multiple=True, metavar="VARIANT=N",
              help="Worker processes of a variant (repeatable).")
@endpoint_option
def endpoint_weights(name, settings, worker_settings, endpoint_url):
    """Change variant weights (and worker counts) live, without dropping requests; the
    variants are named GROUP-VERSION by `models deploy`.

    \b
    Examples:
      forestream models endpoints weights churn churn-3=1 churn-4=1
      forestream models endpoints weights churn churn-4=1 --workers churn-4=4
    """
    weights = parse_pairs(settings, "VARIANT=WEIGHT", numeric=True)
    workers = {k: int(v) for k, v in (parse_pairs(worker_settings, "--workers", numeric=True)
                                      or {}).items()} or None
    show_json(rest(endpoint_url, "PATCH", f"/api/v1/endpoints/{name}",
                   {"weights": weights, "workers": workers}))


@endpoints.command("delete")
@click.argument("name")
@endpoint_option
def endpoint_delete(name, endpoint_url):
    """Delete endpoint NAME (in-flight requests finish first).

    \b
    Example:
      forestream models endpoints delete churn
    """
    rest(endpoint_url, "DELETE", f"/api/v1/endpoints/{name}")
    click.echo(f"deleted {name}")


@endpoints.command("logs")
@click.argument("name")
@click.option("--tail", type=click.IntRange(1, 100_000), default=50, show_default=True,
              help="Lines per worker, the newest.")
@endpoint_option
def endpoint_logs(name, tail, endpoint_url):
    """Print the worker logs of endpoint NAME (what the model code printed), per worker.

    \b
    Examples:
      forestream models endpoints logs churn
      forestream models endpoints logs churn --tail 200
    """
    logs = rest(endpoint_url, "GET", f"/api/v1/endpoints/{name}/logs",
                query={"tail": tail})["logs"]
    for worker, lines in logs.items():
        console.rule(worker)
        for line in lines:
            click.echo(line)


@click.command("transform",
               short_help="Score every row of a file or stream through an endpoint.")
@click.argument("endpoint_name")
@click.option("--input", "source", required=True,
              help="A .csv / .jsonl file, or kinesis://STREAM.")
@click.option("--output", "destination", required=True,
              help="A .csv / .jsonl file, or kinesis://STREAM.")
@click.option("--content-type", default=None, help="text/csv or application/json "
              "(default: from the input file's extension; required for streams).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="Rows per request.")
@click.option("--concurrency", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Requests in flight.")
@click.option("--join-input", is_flag=True, help='Write {"input": ..., "output": ...} lines.')
@endpoint_option
def transform_cmd(endpoint_name, source, destination, content_type, batch_size, concurrency,
                  join_input, endpoint_url):
    """Batch transform: score every row of a file or stream through ENDPOINT_NAME.

    \b
    Examples:
      forestream models transform churn --input rows.csv --output scores.csv
      forestream models transform churn --input rows.jsonl --output scores.jsonl --join-input
      forestream models transform churn --input kinesis://events --output kinesis://scores \\
          --content-type application/json
    """
    from forestream.models.errors import ModelsError
    from forestream.models.hosting.batch import endpoint_invoker, transform

    kinesis = None
    if source.startswith("kinesis://") or destination.startswith("kinesis://"):
        from .streams import client

        kinesis = client(endpoint_url)
    try:
        summary = transform(source, destination, endpoint_invoker(endpoint_url, endpoint_name),
                            content_type=content_type, batch_size=batch_size,
                            concurrency=concurrency, join_input=join_input,
                            kinesis_client=kinesis, console=err_console)
    except ModelsError as exc:
        raise click.ClickException(exc.message) from None
    err_console.print(f"{summary['rows']:,} rows in {summary['requests']:,} requests, "
                      f"{summary['seconds']} s ({summary['rows_per_second']} rows/s) → "
                      f"{destination}")
