"""The ``forestream`` command line: one sub-command group per package."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="forestream")
def main() -> None:
    """forestream — real-time machine learning on streams, self-hosted.

    \b
    Start with:
      forestream quickstart            the main job, end to end, in about a minute
      forestream server                the Kinesis-compatible server (boto3, AWS CLI, ...)
      forestream streams --help        create, put, get, tail, reshard streams
      forestream apps --help           run your stream processing code on the server
      forestream rcf score FILE.csv    anomaly scores for a CSV file
      forestream rcf nab --data DIR    the Numenta Anomaly Benchmark score of a detector
    """


@main.command()
@click.option("--host", default=None, help="Interface to listen on [env FORESTREAM_HOST; "
              "default 127.0.0.1].")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Port [env FORESTREAM_PORT; default 4567].")
@click.option("--data-dir", default=None, type=click.Path(file_okay=False, path_type=Path),
              help="Where all state lives [env FORESTREAM_DATA_DIR; default ./.forestream].")
@click.option("--no-fsync", is_flag=True,
              help="Acknowledge writes before they reach the disk (faster, not crash-safe).")
@click.option("--throughput-limits", is_flag=True,
              help="Enforce Kinesis per-shard limits (1 MiB/s, 1,000 records/s in; 2 MiB/s "
                   "out) to exercise producers' retry logic.")
@click.option("--http2", is_flag=True,
              help="Also speak cleartext HTTP/2 (h2c) on --port, as the Kinesis Client "
                   "Library 2.x reads SubscribeToShard (needs forestream[http2]).")
@click.option("--tls-port", type=click.IntRange(1, 65535),
              help="Also listen with TLS here (HTTP/2 by ALPN, and HTTP/1.1); needs "
                   "--tls-cert and --tls-key.")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM certificate (chain) for --tls-port.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM private key for --tls-port.")
@click.option("--allow-code", is_flag=True,
              help="Let clients make the server run their code: applications, pickled "
                   "models, SageMaker inference scripts [env FORESTREAM_ALLOW_CODE=1].")
@click.option("--import-root", "import_roots", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A server folder requests may name as a source (application code, "
                   "model files, metric files); repeatable [env FORESTREAM_IMPORT_ROOTS]. "
                   "Without it, clients upload what they import.")
@click.option("--outbound-host", "outbound_hosts", multiple=True, metavar="HOST[:PORT]",
              help="A host requests may make the server fetch from (Prometheus, an S3 "
                   "endpoint); repeatable [env FORESTREAM_OUTBOUND_HOSTS].")
@click.option("--allow-host", "allowed_hosts", multiple=True, metavar="NAME",
              help="A Host name accepted besides localhost/127.0.0.1/[::1] (e.g. behind a "
                   "proxy); repeatable [env FORESTREAM_ALLOWED_HOSTS].")
@click.option("--cors-origin", "cors_origins", multiple=True, metavar="ORIGIN",
              help="A web origin (https://app.example) whose pages may call this server "
                   "from a browser; repeatable [env FORESTREAM_CORS_ORIGINS].")
@click.option("--no-token", is_flag=True,
              help="Do not ask for the access token on the REST API, console and metrics "
                   "(anyone who reaches the port may use them) [env FORESTREAM_NO_TOKEN=1].")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["critical", "error", "warning", "info", "debug"]))
def server(host, port, data_dir, no_fsync, throughput_limits, http2, tls_port, tls_cert,
           tls_key, allow_code, import_roots, outbound_hosts, allowed_hosts, cors_origins,
           no_token, log_level):
    """Run the forestream server: the Kinesis and SageMaker APIs on POST /, SageMaker
    runtime invocations, forestream's REST API (/api/v1), the console (/), /health and
    /metrics.

    Any Kinesis or SageMaker client works unchanged; point it at the server's URL:

    \b
      forestream server --port 4567 &
      aws kinesis create-stream --stream-name demo --shard-count 2 \\
          --endpoint-url http://127.0.0.1:4567
      python -c "import boto3; k = boto3.client('kinesis', endpoint_url='http://127.0.0.1:4567',
          region_name='us-east-1'); print(k.list_streams())"

    The REST API, console and metrics ask for an access token, created at the first
    start (printed below, stored in DATA_DIR/access-token); forestream commands find it
    themselves. Set FORESTREAM_ACCESS_KEY_ID and FORESTREAM_SECRET_ACCESS_KEY to require
    every request signed (AWS Signature V4) with those credentials.

    Applications run your code, so the server refuses them unless you allow it:

    \b
      forestream server --allow-code &
      forestream apps create temps --code job.py && forestream apps start temps

    For Java consumers (KCL 2.x reads SubscribeToShard over HTTP/2):

    \b
      forestream server --http2                  # h2c and HTTP/1.1 on the same port
      forestream server --tls-port 4568 --tls-cert cert.pem --tls-key key.pem
    """
    from forestream.config import Settings
    from forestream.server import Server

    settings = Settings()
    settings.host = host or settings.host
    settings.port = port or settings.port
    settings.data_dir = data_dir or settings.data_dir
    settings.fsync = settings.fsync and not no_fsync
    settings.throughput_limits = settings.throughput_limits or throughput_limits
    settings.allow_code = settings.allow_code or allow_code
    settings.import_roots = [*settings.import_roots, *import_roots]
    settings.outbound_hosts = [*settings.outbound_hosts, *outbound_hosts]
    settings.allowed_hosts = [*settings.allowed_hosts, *allowed_hosts]
    settings.cors_origins = [*settings.cors_origins, *cors_origins]
    settings.require_token = settings.require_token and not no_token
    if (tls_port is None) != (tls_cert is None) or (tls_port is None) != (tls_key is None):
        raise click.UsageError("--tls-port, --tls-cert and --tls-key go together")
    if http2 or tls_port is not None:
        from forestream.server.http2 import check_available

        check_available()
    if tls_port is not None and tls_port == settings.port:
        raise click.UsageError(f"--tls-port {tls_port} must differ from --port")
    running = Server(settings, log_level, http2=http2, tls_port=tls_port, tls_cert=tls_cert,
                     tls_key=tls_key)
    console.print(f"forestream server on [cyan]http://{settings.host}:{settings.port}[/] "
                  f"(data in {settings.data_dir}, fsync {'on' if settings.fsync else 'off'}, "
                  f"SigV4 {'required' if settings.auth_enabled else 'off'}, "
                  f"code {'allowed' if settings.allow_code else 'refused'})")
    if running.token:
        console.print(f"console: [cyan]{_console_url(settings.host, settings.port)}/?token="
                      f"{running.token}[/]  (token in {settings.data_dir}/access-token)",
                      soft_wrap=True)
    else:
        console.print("[yellow]no access token: whoever reaches the port can use the REST "
                      "API and console[/]")
    if tls_port is not None:
        console.print(f"TLS (HTTP/2 by ALPN, HTTP/1.1) on [cyan]https://{settings.host}:"
                      f"{tls_port}[/]")
    running.run()


@main.command("console-url")
@click.option("--endpoint-url", default=None, envvar="FORESTREAM_ENDPOINT_URL",
              help="The server [env FORESTREAM_ENDPOINT_URL; default http://127.0.0.1:4567].")
def console_url(endpoint_url):
    """Print a link that opens the console of a running server and signs you in.

    The token comes from FORESTREAM_TOKEN, else from the server's runtime record (a
    server you started on this machine), else ./.forestream/access-token.

    \b
      forestream console-url
      forestream console-url --endpoint-url http://127.0.0.1:4600
    """
    from forestream.access_token import find_token, servers

    url = (endpoint_url or "http://127.0.0.1:4567").rstrip("/")
    token = find_token(url)
    if token is None:
        running = ", ".join(info["url"] for info in servers()) or "none"
        raise click.ClickException(f"no access token known for {url} (servers started "
                                   f"here: {running}); set FORESTREAM_TOKEN")
    click.echo(f"{url}/?token={token}")


def _console_url(host: str, port: int) -> str:
    local = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
    return f"http://{local}:{port}"


@main.group()
def rcf() -> None:
    """Random Cut Forest anomaly detection: score files, run benchmarks."""


@rcf.command("score")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the scored CSV [default: FILE.scored.csv].")
@click.option("--columns", "-c", help="Comma-separated value columns [default: all but time].")
@click.option("--mode", type=click.Choice(["streaming", "batch"]), default="streaming",
              show_default=True,
              help="streaming: each row scored before it is learned, graded and explained; "
                   "batch: one forest learns the whole file, then scores every row.")
@click.option("--shingle-size", default=4, show_default=True, type=click.IntRange(1, 1000),
              help="Consecutive rows per point (pattern length the forest sees).")
@click.option("--num-trees", default=100, show_default=True, type=click.IntRange(1, 10000))
@click.option("--sample-size", default=256, show_default=True, type=click.IntRange(2, 1000000))
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw a PNG of the series, the score and the flagged rows.")
@click.option("--top", default=10, show_default=True, help="Anomalies to list on screen.")
def rcf_score(csv_file, out, columns, mode, shingle_size, num_trees, sample_size, seed, plot,
              top):
    """Score every row of CSV_FILE (a header row; an optional time column).

    Writes the input with anomaly_score, grade (0 ordinary, up to 1), the cause (which
    column, which row of the shingle) and the expected value of each anomaly.

    \b
    Example:
      forestream rcf score machine.csv --plot machine.png
    """
    import numpy as np

    from forestream.eval.csv_scoring import (
        ScoredTable,
        read_numeric_csv,
        score_table,
        write_scored_csv,
    )

    wanted = [c.strip() for c in columns.split(",")] if columns else None
    try:
        stamps, names, values = read_numeric_csv(csv_file, wanted)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    started = time.perf_counter()
    scores, grades, explanations = score_table(values, mode, shingle_size, num_trees,
                                               sample_size, seed, progress=True)
    elapsed = time.perf_counter() - started
    out = out or csv_file.with_suffix(".scored.csv")
    table = ScoredTable(stamps, names, values, scores, grades, explanations)
    write_scored_csv(out, table)
    flagged = np.flatnonzero(grades > 0)
    console.print(f"[bold]{len(values):,}[/] rows scored in {elapsed:.1f} s "
                  f"({len(values) / max(elapsed, 1e-9):,.0f} rows/s); "
                  f"[bold red]{len(flagged)}[/] anomalies; written to [cyan]{out}[/]")
    if len(flagged):
        shown = Table(title=f"Strongest anomalies (top {top})")
        for col in ("row", "time", "grade", "score", "cause", "expected"):
            shown.add_column(col, justify="right" if col in ("row", "grade", "score") else "left")
        for i in flagged[np.argsort(-grades[flagged])][:top]:
            e = explanations[i] or {}
            shown.add_row(str(i), stamps[i] if stamps else "", f"{grades[i]:.3f}",
                          f"{scores[i]:.3f}", e.get("cause", ""), e.get("expected", ""))
        console.print(shown)
    if plot:
        from forestream.eval.plot import plot_scored_series

        plot_scored_series(plot, values, scores, grades, names, title=csv_file.name)
        console.print(f"plot written to [cyan]{plot}[/]")


@rcf.command("nab")
@click.option("--data", "data_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A NAB-layout directory: data/<category>/<file>.csv and "
                   "labels/combined_windows.json.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write results in NAB's format under OUT/<detector>/.")
@click.option("--detector", default="forestream", show_default=True,
              help="Detector to run (forestream, rcf_kinesis) — or the name of results "
                   "already in OUT to score without running anything (with --score-only).")
@click.option("--score-only", is_flag=True,
              help="Do not run a detector: score the results already under OUT/<detector>/.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rcf_nab(data_dir, out_dir, detector, score_only, as_json):
    """Run a detector over a NAB corpus and print its three profile scores.

    \b
    Example:
      forestream rcf nab --data ../shared/datasets/nab --out nab-results
    """
    from forestream.eval import DETECTORS, load_corpus, read_results, run_detector, score_corpus

    try:
        corpus = load_corpus(data_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from None
    if score_only:
        if out_dir is None:
            raise click.UsageError("--score-only needs --out, where the results are")
        results = read_results(out_dir, detector, corpus)
    else:
        if detector not in DETECTORS:
            raise click.UsageError(f"unknown detector {detector!r}; choose from "
                                   f"{sorted(DETECTORS)}")
        results = run_detector(DETECTORS[detector], corpus, out_dir=out_dir,
                               detector_name=detector, progress=not as_json)
    report = score_corpus(results, corpus)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        console.print(report.table(title=f"NAB — {detector} on {data_dir} "
                                         f"({report.n_files} files)"))


@main.command()
@click.option("--machines", default=4, show_default=True, type=click.IntRange(1, 64),
              help="Simulated machines (each has temperature, CPU and latency sensors).")
@click.option("--days", default=8, show_default=True, type=click.IntRange(3, 365),
              help="Days of 5-minute samples per machine.")
@click.option("--out", "out_dir", default="quickstart-output", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Where the plots and the anomaly log go.")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--rate", default=1000.0, show_default=True, type=click.FloatRange(10, 1e6),
              help="Readings per second the generator publishes.")
def quickstart(machines, days, out_dir, seed, rate):
    """The main job: streaming anomaly detection on generated sensor data.

    Starts an embedded server (Kinesis API), creates the streams sensor-readings and
    sensor-anomalies, publishes machines' sensor readings (daily cycles, noise, drift,
    injected incidents: spikes, level shifts, a stuck sensor, slow ramps), runs a stream
    processing job that grades every reading with a per-sensor Random Cut Forest and
    writes anomalies with explanations to sensor-anomalies, shows them as they are found,
    then precision and recall against the injected incidents, throughput, latency, and
    a PNG plot per machine.
    """
    from forestream.quickstart import run_quickstart

    run_quickstart(console, machines=machines, days=days, out_dir=out_dir, seed=seed,
                   rate=rate)


def _register_groups() -> None:
    from forestream.cli_apps import apps
    from forestream.cli_models import models
    from forestream.cli_optimizer import optimizer
    from forestream.cli_streams import streams

    main.add_command(streams)
    main.add_command(apps)
    main.add_command(models)
    main.add_command(optimizer)


_register_groups()

if __name__ == "__main__":
    main()
