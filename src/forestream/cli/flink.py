"""``forestream flink start|stop|status``: a local Apache Flink cluster for applications
that run with ``--runtime flink``."""

from __future__ import annotations

import os
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()

data_dir_option = click.option(
    "--data-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
    help="forestream's data directory; the cluster lives in its flink/ folder "
         "[env FORESTREAM_DATA_DIR; default ./.forestream].")


def _data_dir(given: Path | None) -> Path:
    return given or Path(os.environ.get("FORESTREAM_DATA_DIR", ".forestream"))


@click.group()
def flink() -> None:
    """A local Apache Flink cluster (JobManager + TaskManagers) from the Flink wheel.

    \b
    forestream flink start                      # 1 JobManager + 2 TaskManagers x 2 slots
    forestream flink start --task-managers 3 --slots 4
    forestream flink status                     # processes, slots, jobs, web UI address
    forestream flink stop

    The first start installs Apache Flink into its own virtual environment (.venv-flink,
    a few minutes; `make flink` does it ahead of time) and compiles forestream's
    Kinesis-API connector. Needs a JDK 11-21 (java and javac).
    """


@flink.command("start")
@click.option("--task-managers", default=2, show_default=True, type=click.IntRange(1, 64),
              help="TaskManager processes.")
@click.option("--slots", default=2, show_default=True, type=click.IntRange(1, 64),
              help="Task slots per TaskManager (parallel tasks each can run).")
@click.option("--task-manager-memory", "memory_mb", default=None,
              type=click.IntRange(1024, 262144), metavar="MIB",
              help="Process size of each TaskManager in MiB [default: 1792 on machines "
                   "with 8 GiB or more, else 1280].")
@click.option("--timeout", default=240.0, show_default=True, type=click.FloatRange(10, 3600),
              help="Seconds to wait for every slot to register.")
@data_dir_option
def start(task_managers, slots, memory_mb, timeout, data_dir):
    """Start the cluster and wait until all slots are registered.

    \b
    forestream flink start --task-managers 2 --slots 2
    forestream flink start --data-dir /var/lib/forestream
    """
    from forestream.processing.flink.cluster import FlinkClusterError, LocalFlinkCluster
    from forestream.processing.flink.install import FlinkSetupError

    cluster = LocalFlinkCluster(_data_dir(data_dir), task_managers, slots,
                                task_manager_memory_mb=memory_mb)
    if cluster.running():
        raise click.ClickException(f"a Flink cluster already runs for this data directory "
                                   f"at {cluster.rest_url}; `forestream flink stop` ends it")
    try:
        with console.status(f"starting 1 JobManager and {task_managers} TaskManager(s)..."):
            cluster.start(timeout=timeout)
    except (FlinkClusterError, FlinkSetupError) as exc:
        raise click.ClickException(str(exc)) from None
    console.print(f"Flink cluster up: [bold]{cluster.rest_url}[/] (REST API and web UI), "
                  f"{task_managers * slots} slots; logs in {cluster.base / 'log'}")


@flink.command("stop")
@data_dir_option
def stop(data_dir):
    """Stop the cluster of this data directory (jobs end without a savepoint).

    \b
    forestream flink stop
    """
    from forestream.processing.flink.cluster import LocalFlinkCluster

    cluster = LocalFlinkCluster(_data_dir(data_dir))
    if not cluster.pids:
        raise click.ClickException("no Flink cluster recorded for this data directory "
                                   "(`forestream flink start` starts one)")
    cluster.stop()
    console.print("Flink cluster stopped")


@flink.command("status")
@data_dir_option
def status(data_dir):
    """Show the cluster's processes, slots and jobs.

    \b
    forestream flink status
    forestream flink status --data-dir /var/lib/forestream
    """
    from forestream.processing.flink.cluster import LocalFlinkCluster
    from forestream.processing.flink.rest_api import FlinkRestError

    cluster = LocalFlinkCluster(_data_dir(data_dir))
    if not cluster.pids:
        raise click.ClickException("no Flink cluster recorded for this data directory "
                                   "(`forestream flink start` starts one)")
    info = cluster.status()
    processes = Table(title=f"Flink cluster {info['rest_url']}")
    for column in ("process", "pid", "state"):
        processes.add_column(column)
    for name, proc in info["processes"].items():
        processes.add_row(name, str(proc["pid"]),
                          "[green]running[/]" if proc["alive"] else "[red]gone[/]")
    console.print(processes)
    overview = info.get("overview")
    if overview is None:
        raise click.ClickException(info.get("error") or "the JobManager is not running; "
                                   "`forestream flink stop` then `start` restarts it")
    console.print(f"Flink {overview.get('flink-version')}: {overview['taskmanagers']} "
                  f"TaskManager(s), {overview['slots-available']} of {overview['slots-total']}"
                  f" slots free; jobs: {overview['jobs-running']} running, "
                  f"{overview['jobs-finished']} finished, {overview['jobs-cancelled']} "
                  f"cancelled, {overview['jobs-failed']} failed")
    try:
        jobs = cluster.rest.jobs()
    except FlinkRestError as exc:
        raise click.ClickException(str(exc)) from None
    if jobs:
        table = Table(title="Jobs")
        for column in ("job id", "name", "state", "running for (s)"):
            table.add_column(column)
        for job in sorted(jobs, key=lambda j: -int(j.get("start-time", 0))):
            table.add_row(job["jid"], job["name"], job["state"],
                          f"{int(job.get('duration', 0)) / 1000:.0f}")
        console.print(table)
