"""``forestream quickstart``: the main job, end to end."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

console = Console()


@click.command(short_help="Streaming anomaly detection on generated data, end to end.")
@click.option("--machines", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Simulated machines (each has temperature, CPU and latency sensors).")
@click.option("--days", default=8, show_default=True, type=click.IntRange(3, 365),
              help="Days of 5-minute samples per machine.")
@click.option("--out", "out_dir", default="quickstart-output", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the plots and the anomaly log go.")
@click.option("--seed", default=0, show_default=True, type=int,
              help="Random seed of the generated data (same seed, same readings).")
@click.option("--rate", default=1000.0, show_default=True, type=click.FloatRange(10, 1e6),
              help="Readings per second the generator publishes.")
@click.option("--runtime", type=click.Choice(["embedded", "flink"]), default="embedded",
              show_default=True,
              help="flink: run the application as a job on a local Apache Flink cluster "
                   "started for the demo (needs a JDK; builds .venv-flink on first use).")
def quickstart(machines, days, out_dir, seed, rate, runtime):
    """The main job: streaming anomaly detection on generated sensor data.

    Starts an embedded server (Kinesis API), creates the streams sensor-readings and
    sensor-anomalies, publishes machines' sensor readings (daily cycles, noise, drift,
    injected incidents: spikes, level shifts, a stuck sensor, slow ramps), runs a stream
    processing job that grades every reading with a per-sensor Random Cut Forest and
    writes anomalies with explanations to sensor-anomalies, shows them as they are found,
    then precision and recall against the injected incidents, throughput, latency, and
    a PNG plot per machine.

    \b
    forestream quickstart                     # on the embedded runtime
    forestream quickstart --runtime flink     # the same application on Apache Flink
    """
    from forestream.quickstart import run_quickstart

    run_quickstart(console, machines=machines, days=days, out_dir=out_dir, seed=seed,
                   rate=rate, runtime=runtime)
