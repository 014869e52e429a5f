"""``forestream apps ...``: stream processing applications on a forestream server."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .options import endpoint_option, rest

console = Console()


def api(endpoint: str, method: str, path: str, body: dict | None = None):
    """Call ``/api/v1/applications``; problem details become clean CLI errors."""
    return rest(endpoint, method, f"/api/v1/applications{path}", body, timeout=120)


def code_body(path: Path) -> dict:
    """The application's code as the request carries it: the server never reads a path of
    the client's machine (it may be another machine)."""
    from forestream.processing.app_code import ApplicationCode
    from forestream.processing.errors import ApplicationError

    try:
        return ApplicationCode.from_path(path).to_request()
    except ApplicationError as exc:
        raise click.BadParameter(str(exc), param_hint="--code") from None


def parse_properties(items: tuple[str, ...]) -> dict:
    groups: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        group, dot, name = key.partition(".")
        if not sep or not dot or not group or not name:
            raise click.BadParameter(f"{item!r}: expected GROUP.KEY=VALUE", param_hint="-p")
        groups.setdefault(group, {})[name] = value
    return groups


def autoscaling_body(enabled: bool | None, settings: tuple[str, ...]) -> dict | None:
    """``--autoscaling`` and ``--autoscale SETTING=VALUE`` as the API's object."""
    if enabled is None and not settings:
        return None
    body: dict = {} if enabled is None else {"enabled": enabled}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected SETTING=VALUE, e.g. "
                                     "scale_up_after_seconds=300", param_hint="--autoscale")
        try:
            body[key] = json.loads(value)
        except ValueError:
            body[key] = value
    if enabled is None:
        body["enabled"] = True  # settings without the flag: the user wants it on
    return body


def autoscaling_options(fn):
    fn = click.option("--autoscale", "autoscale", multiple=True, metavar="SETTING=VALUE",
                      help="An autoscaling setting (repeatable): min_parallelism, "
                           "max_parallelism, scale_up_utilization (0.75), "
                           "scale_up_after_seconds (900), scale_down_utilization (0.1), "
                           "scale_down_after_seconds (21600).")(fn)
    return click.option("--autoscaling/--no-autoscaling", default=None,
                        help="Rescale the parallelism when the workers stay busy (or idle); "
                             "see docs/processing.md.")(fn)


@click.group(short_help="Stream processing applications: your code, run by the server.")
def apps() -> None:
    """Stream processing applications: your code, run and supervised by the server
    (started with --allow-code: it refuses to run clients' code otherwise).

    An application is a Python file (or a folder with main.py) defining
    build(env, properties), which builds a pipeline on env
    (forestream.processing.StreamExecutionEnvironment).

    \b
    forestream apps create temps --code job.py -p input.stream=sensor-readings
    forestream apps start temps
    forestream apps logs temps --follow
    forestream apps stop temps          # takes a snapshot
    """


@apps.command("create")
@click.argument("name")
@click.option("--code", required=True, type=click.Path(exists=True, path_type=Path),
              help="The .py file (or folder with main.py) defining build(env, properties).")
@click.option("--property", "-p", "props", multiple=True,
              help="Runtime property GROUP.KEY=VALUE (repeatable).")
@click.option("--checkpoint-interval", default=10.0, show_default=True, type=float,
              help="Seconds between checkpoints.")
@click.option("--parallelism", default=1, show_default=True, type=int,
              help="Worker processes sharing the source's shards and the key groups.")
@click.option("--max-parallelism", default=16, show_default=True, type=int,
              help="Key groups of a keyed job (fixed for its state): the most workers "
                   "its keyed state can spread over.")
@autoscaling_options
@click.option("--description", default="", help="Free text shown by `apps describe`.")
@click.option("--runtime", type=click.Choice(["embedded", "flink"]), default="embedded",
              show_default=True,
              help="embedded: worker processes of the server; flink: a job on a Flink "
                   "cluster (the code is checked for Flink now; see docs/flink.md).")
@click.option("--flink", "flink_url", metavar="URL",
              help="REST URL of the Flink cluster (runtime flink; default: the cluster "
                   "`forestream flink start` runs for the server's data directory).")
@endpoint_option
def create(name, code, props, checkpoint_interval, parallelism, max_parallelism, autoscaling,
           autoscale, description, runtime, flink_url, endpoint_url):
    """Create application NAME from CODE (status READY); `apps start` runs it.

    \b
    Examples:
      forestream apps create temps --code job.py -p input.stream=sensor-readings
      forestream apps create temps --code job.py --runtime flink --flink http://127.0.0.1:8081
    """
    if flink_url and runtime != "flink":
        raise click.UsageError("--flink is for --runtime flink")
    body = {"name": name, "code": code_body(code), "properties": parse_properties(props),
            "checkpoint_interval": checkpoint_interval, "parallelism": parallelism,
            "max_parallelism": max_parallelism, "description": description,
            "runtime": runtime}
    if flink_url:
        body["flink_url"] = flink_url
    policy = autoscaling_body(autoscaling, autoscale)
    if policy is not None:
        body["autoscaling"] = policy
    app = api(endpoint_url, "POST", "", body)
    console.print(f"application [bold]{app['name']}[/] created ({app['status']})")


@apps.command("list")
@endpoint_option
def list_apps(endpoint_url):
    """List applications and their status.

    \b
    Example:
      forestream apps list
    """
    table = Table(title="Applications")
    for col in ("name", "status", "version", "code", "updated"):
        table.add_column(col)
    for app in api(endpoint_url, "GET", "")["applications"]:
        table.add_row(app["name"], _status(app["status"]), str(app["version"]),
                      app["entry"], _when(app["updated"]))
    console.print(table)


@apps.command("describe")
@click.argument("name")
@endpoint_option
def describe(name, endpoint_url):
    """Show an application's configuration, runtime metrics (records in, checkpoints,
    MillisBehindLatest per source, operators) and last failure.

    \b
    Example:
      forestream apps describe temps
    """
    app = api(endpoint_url, "GET", f"/{name}")
    console.print(f"[bold]{app['name']}[/]  {_status(app['status'])}  version "
                  f"{app['version']}  code {app['code_source']}")
    console.print(f"checkpoint every {app['checkpoint_interval']} s, parallelism "
                  f"{app['parallelism']} (key groups {app.get('max_parallelism', 16)}), "
                  f"{app['snapshots']} snapshot(s)")
    flink = app.get("flink") or {}
    if app.get("runtime_environment") == "flink":
        job = (app.get("runtime") or {}).get("flink_job") or flink.get("job_id")
        console.print(f"runtime flink: {'job ' + job if job else 'no job running'}"
                      f"{' at ' + flink['url'] if flink.get('url') else ''}")
        for note in flink.get("notes") or []:
            console.print(f"  note: {note}")
    policy = app.get("autoscaling") or {}
    if policy.get("enabled"):
        console.print(f"autoscaling {policy['min_parallelism']}-{policy['max_parallelism']}: "
                      f"up at {policy['scale_up_utilization']:.0%} busy for "
                      f"{policy['scale_up_after_seconds']:g} s, down under "
                      f"{policy['scale_down_utilization']:.0%} for "
                      f"{policy['scale_down_after_seconds']:g} s")
    for event in (app.get("autoscaling_events") or [])[-5:]:
        console.print(f"  {_when(event['time'])} {event['from']} → {event['to']}: "
                      f"{event['reason']}")
    if app["properties"]:
        console.print("properties: " + json.dumps(app["properties"]))
    runtime = app.get("runtime")
    for i, worker in enumerate((runtime.get("workers") or [runtime]) if runtime else []):
        where = ", ".join(f"{len(worker.get(k) or [])} {label}" for k, label in
                          (("shards", "shard(s)"), ("key_groups", "key group(s)"))
                          if k in worker)
        console.print(f"worker {i} {worker.get('state')}: {worker.get('records_in', 0):,} "
                      f"records in, {worker.get('checkpoints', 0)} checkpoints"
                      + (f", {where}" if where else ""))
    if runtime:
        lags = {k: v for worker in (runtime.get("workers") or [runtime])
                for k, v in (worker.get("millis_behind_latest") or {}).items()}
        if lags:  # per source: its most-behind shard (the console lists every shard)
            worst: dict[str, tuple[int, str]] = {}
            shards: dict[str, int] = {}
            for where, millis in lags.items():
                source, _, shard = where.partition("/")
                worst[source] = max(worst.get(source, (-1, "")), (millis, shard))
                shards[source] = shards.get(source, 0) + 1
            console.print("MillisBehindLatest (most behind shard): " + ", ".join(
                f"{source} {millis} ms ({shard}, of {shards[source]})"
                for source, (millis, shard) in worst.items()))
        if "records_behind_total" in runtime:
            console.print(f"records behind (not yet read, all source shards): "
                          f"{runtime['records_behind_total']:,}")
        operators = runtime.get("operators") or {}
        if operators:
            table = Table(title="Operators")
            for col in ("operator", "records in", "records out"):
                table.add_column(col, justify="left" if col == "operator" else "right")
            for uid, (n_in, n_out) in operators.items():
                table.add_row(uid, f"{n_in:,}", f"{n_out:,}")
            console.print(table)
    if app.get("last_failure"):
        console.print(f"[red]last failure[/]: {app['last_failure']['reason']}")


@apps.command("update")
@click.argument("name")
@click.option("--code", type=click.Path(exists=True, path_type=Path),
              help="New code: a .py file, or a folder with main.py.")
@click.option("--property", "-p", "props", multiple=True,
              help="Replace the runtime properties (GROUP.KEY=VALUE, repeatable).")
@click.option("--checkpoint-interval", type=float, help="Seconds between checkpoints.")
@click.option("--parallelism", type=int, help="Workers (at most the key groups).")
@autoscaling_options
@endpoint_option
def update(name, code, props, checkpoint_interval, parallelism, autoscaling, autoscale,
           endpoint_url):
    """Change code or configuration; a running application restarts from its latest
    checkpoint with the new version.

    \b
    Examples:
      forestream apps update temps --code job.py
      forestream apps update temps --parallelism 4
      forestream apps update temps --autoscale max_parallelism=8
    """
    body = {}
    if code:
        body["code"] = code_body(code)
    if props:
        body["properties"] = parse_properties(props)
    if checkpoint_interval is not None:
        body["checkpoint_interval"] = checkpoint_interval
    if parallelism is not None:
        body["parallelism"] = parallelism
    policy = autoscaling_body(autoscaling, autoscale)
    if policy is not None:
        body["autoscaling"] = policy
    if not body:
        raise click.UsageError("nothing to update: give --code, --property, "
                               "--checkpoint-interval, --parallelism or --autoscaling")
    app = api(endpoint_url, "PATCH", f"/{name}", body)
    console.print(f"application [bold]{name}[/] updated to version {app['version']} "
                  f"({app['status']})")


@apps.command("start")
@click.argument("name")
@click.option("--restore", type=click.Choice(["latest", "skip", "snapshot"]), default="latest",
              show_default=True, help="Continue from the latest checkpoint, start empty, "
              "or start from --snapshot.")
@click.option("--snapshot", help="Snapshot to restore (with --restore snapshot).")
@endpoint_option
def start(name, restore, snapshot, endpoint_url):
    """Start application NAME: from its latest checkpoint (the default), empty, or from
    a snapshot.

    \b
    Examples:
      forestream apps start temps
      forestream apps start temps --restore snapshot --snapshot before-upgrade
      forestream apps start temps --restore skip
    """
    app = api(endpoint_url, "POST", f"/{name}/start",
              {"restore": restore.upper(), "snapshot": snapshot})
    console.print(f"application [bold]{name}[/] {_status(app['status'])}")


@apps.command("stop")
@click.argument("name")
@click.option("--force", is_flag=True, help="Kill the worker at once (no final checkpoint, "
              "no snapshot).")
@click.option("--no-snapshot", is_flag=True, help="Do not keep a snapshot of the stop.")
@endpoint_option
def stop(name, force, no_snapshot, endpoint_url):
    """Stop application NAME (a final checkpoint, and a snapshot unless --no-snapshot).

    \b
    Examples:
      forestream apps stop temps
      forestream apps stop temps --force
    """
    app = api(endpoint_url, "POST", f"/{name}/stop", {"force": force,
                                                      "snapshot": not no_snapshot})
    console.print(f"application [bold]{name}[/] {_status(app['status'])}")


@apps.command("logs")
@click.argument("name")
@click.option("--tail", default=100, show_default=True, help="Print the last N lines.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new lines (Ctrl-C stops).")
@endpoint_option
def logs(name, tail, follow, endpoint_url):
    """Print the worker's log (output, tracebacks, restarts), oldest line first.

    \b
    Examples:
      forestream apps logs temps --tail 20
      forestream apps logs temps --follow
    """
    lines = api(endpoint_url, "GET", f"/{name}/logs?tail={tail}")["lines"]
    for line in lines:
        click.echo(line)
    seen = len(lines)
    try:
        while follow:
            time.sleep(1.0)
            lines = api(endpoint_url, "GET", f"/{name}/logs?tail=100000")["lines"]
            for line in lines[seen:]:
                click.echo(line)
            seen = len(lines)
    except KeyboardInterrupt:
        pass


@apps.command("delete")
@click.argument("name")
@endpoint_option
def delete(name, endpoint_url):
    """Delete application NAME (it must be READY: stop it first), with its checkpoints
    and snapshots.

    \b
    Examples:
      forestream apps stop temps
      forestream apps delete temps
    """
    api(endpoint_url, "DELETE", f"/{name}")
    console.print(f"application [bold]{name}[/] deleted")


@apps.group()
def snapshots() -> None:
    """Named snapshots of an application's state, to start from later (with
    `apps start --restore snapshot`) or to keep before an upgrade.

    \b
    Examples:
      forestream apps snapshots create temps before-upgrade
      forestream apps snapshots list temps
      forestream apps start temps --restore snapshot --snapshot before-upgrade
      forestream apps snapshots delete temps before-upgrade
    """


@snapshots.command("create")
@click.argument("name")
@click.argument("snapshot")
@endpoint_option
def snapshot_create(name, snapshot, endpoint_url):
    """Keep the latest checkpoint of application NAME as SNAPSHOT.

    \b
    Example:
      forestream apps snapshots create temps before-upgrade
    """
    snap = api(endpoint_url, "POST", f"/{name}/snapshots", {"snapshot": snapshot})
    console.print(f"snapshot [bold]{snap['name']}[/] of {name} ({snap['bytes']:,} bytes)")


@snapshots.command("list")
@click.argument("name")
@endpoint_option
def snapshot_list(name, endpoint_url):
    """List the snapshots of application NAME, with their time and size.

    \b
    Example:
      forestream apps snapshots list temps
    """
    table = Table(title=f"Snapshots of {name}")
    for col in ("snapshot", "created", "bytes"):
        table.add_column(col, justify="right" if col == "bytes" else "left")
    for snap in api(endpoint_url, "GET", f"/{name}/snapshots")["snapshots"]:
        table.add_row(snap["name"], _when(snap["created"]), f"{snap['bytes']:,}")
    console.print(table)


@snapshots.command("delete")
@click.argument("name")
@click.argument("snapshot")
@endpoint_option
def snapshot_delete(name, snapshot, endpoint_url):
    """Delete SNAPSHOT of application NAME (its checkpoints stay).

    \b
    Example:
      forestream apps snapshots delete temps before-upgrade
    """
    api(endpoint_url, "DELETE", f"/{name}/snapshots/{snapshot}")
    console.print(f"snapshot [bold]{snapshot}[/] of {name} deleted")


def _status(status: str) -> str:
    color = {"RUNNING": "green", "READY": "cyan"}.get(status, "yellow")
    return f"[{color}]{status}[/]"


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp).strftime("%Y-%m-%d %H:%M:%S")
