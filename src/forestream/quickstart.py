"""``forestream quickstart``: the main job on the embedded default, end to end.

1. starts an embedded forestream server (Kinesis API) on a free local port;
2. creates the streams ``sensor-readings`` and ``sensor-anomalies`` through boto3;
3. a generator publishes machines' temperature / CPU / latency readings (daily cycles,
   noise, drift, injected incidents) to ``sensor-readings``;
4. a stream processing *application* (its code written to ``<out>/app/``, created and
   started through the server's REST API, run and supervised by the server in its own
   worker process) reads every shard, keys by (machine, sensor), grades each reading with
   a per-key thresholded Random Cut Forest and writes every grade to ``sensor-scores``
   and the anomalies, with their explanation, to ``sensor-anomalies``;
5. this process follows both output streams: anomalies are shown as they are found; at
   the end, precision and recall against the injected incidents, throughput, end-to-end
   latency (put → graded by the application → read back) and a PNG plot per machine.
   The application keeps running (and resumes from its checkpoint) whenever
   ``forestream server --data-dir <out>/data`` runs again.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forestream.demo import DAY, SENSORS, event_metrics, generate_machine
from forestream.server.embedded import EmbeddedServer

if TYPE_CHECKING:
    from collections.abc import Callable

ALERT_GRADE = 0.5  # the detector's own bar: every anomaly it reports (probability <= 1e-5)
INPUT_STREAM = "sensor-readings"
SCORES_STREAM = "sensor-scores"
OUTPUT_STREAM = "sensor-anomalies"
APP_NAME = "sensor-anomalies"
APP_CODE = '''"""The quickstart's application: grade every sensor reading with its own detector.

Runtime properties (group "detector"): input, scores and alerts streams, alert_grade and
shingle_size. Edit and roll out with `forestream apps update sensor-anomalies --code FILE`.
"""

from forestream.processing import kinesis_client


def build(env, properties):
    p = properties["detector"]
    alert_grade = float(p["alert_grade"])
    client = kinesis_client()  # the server this application runs under
    graded = (env.from_kinesis(p["input"], client)
              .key_by(lambda e: (e["machine"], e["sensor"]))
              .thresholded_random_cut_forest(["value"], shingle_size=int(p["shingle_size"]),
                                             explain_min_grade=alert_grade))
    graded.sink_to_kinesis(p["scores"], client, partition_key=lambda e: e["machine"])
    (graded.filter(lambda e: e["ANOMALY_GRADE"] >= alert_grade)
        .sink_to_kinesis(p["alerts"], client, partition_key=lambda e: e["machine"]))
'''
#: Readings go out as sensors report them: each 5-minute step of every sensor in one
#: PutRecords call (the simulated clock runs fast: a step every few milliseconds).
STEPS_PER_PUT = 1
#: Latency in the first seconds (the pipeline settling) is reported apart from the steady
#: state that follows.
WARM_UP_SECONDS = 3.0
START_TIME = 1_767_225_600.0  # simulated clock: 2026-01-01T00:00:00Z


def run_quickstart(console: Console, machines: int = 4, days: int = 8,
                   out_dir: str | Path = "quickstart-output", seed: int = 0,
                   rate: float = 1000.0, runtime: str = "embedded") -> dict:
    """Run the demo; return the summary numbers (also printed). ``runtime="flink"``: the
    same application runs as a Flink job on a local Flink cluster started for the demo
    (1 JobManager + 1 TaskManager; stopped at the end)."""
    out_dir = Path(out_dir)
    data_dir = out_dir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    fleet = [generate_machine(f"machine-{m}", days * DAY, seed + m) for m in range(machines)]
    total = machines * len(SENSORS) * days * DAY

    console.rule("[bold]forestream quickstart[/] — streaming anomaly detection")
    server = EmbeddedServer(data_dir)
    server.start()
    kinesis = server.client()
    console.print(f"embedded server on [cyan]{server.url}[/] (Kinesis API; data in {data_dir})")
    for name, shards in ((INPUT_STREAM, 2), (SCORES_STREAM, 1), (OUTPUT_STREAM, 1)):
        kinesis.create_stream(StreamName=name, ShardCount=shards)
        kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                 WaiterConfig={"Delay": 0.1})
    console.print(f"streams [bold]{INPUT_STREAM}[/] (2 shards), [bold]{SCORES_STREAM}[/] and "
                  f"[bold]{OUTPUT_STREAM}[/] created")
    cluster = None
    if runtime == "flink":
        from forestream.processing.flink.cluster import LocalFlinkCluster

        console.print("starting a local Apache Flink cluster (1 JobManager + 1 TaskManager; "
                      "about half a minute)…")
        try:
            cluster = LocalFlinkCluster(data_dir, task_managers=1, slots=2).start()
        except BaseException:
            server.stop()
            raise
        console.print(f"Flink cluster up: [cyan]{cluster.rest_url}[/] (REST API and web UI)")
    try:
        code = _deploy_application(server, out_dir, cluster.rest_url if cluster else None)
    except BaseException:
        server.stop()
        if cluster is not None:
            cluster.stop()
        raise
    where = "as a job on the Flink cluster" if cluster else "in its own worker process"
    console.print(f"application [bold]{APP_NAME}[/] ({code}) created and RUNNING {where}"
                  f"\n{machines} machines × {len(SENSORS)} sensors × "
                  f"{days * DAY:,} readings ({days} days of 5-minute samples) published at "
                  f"~{rate:,.0f} readings/s; alerts at grade ≥ {ALERT_GRADE}\n")

    publisher = threading.Thread(target=_publish, args=(server.client(), fleet, days * DAY,
                                                        rate),
                                 name="generator", daemon=True)
    results = _Results(fleet, days * DAY)
    started = time.perf_counter()
    publisher.start()
    try:
        with Progress(TextColumn("processing"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("readings"), TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("", total=total)
            results.on_alert = lambda line: bar.console.print(line)
            results.on_progress = lambda n: bar.update(task, completed=n)
            _follow(server.client(), results, total, out_dir / "anomalies.jsonl")
        elapsed = time.perf_counter() - started
        written = _count_records(kinesis, OUTPUT_STREAM)
        app = _rest(server, "GET", f"/{APP_NAME}")
        summary = _summarise(console, fleet, results, elapsed, out_dir, written, app)
    finally:
        if cluster is not None:  # the job first (a savepoint), then the cluster
            try:
                _rest(server, "POST", f"/{APP_NAME}/stop")
            finally:
                cluster.stop()
        server.stop()
    return summary


def _publish(kinesis, fleet, rows: int, rate: float) -> None:
    """Publish all readings in time order, one time step of every sensor per PutRecords
    call, at about ``rate`` readings per second (the sensors' clock runs fast: one
    simulated 5-minute step takes a few milliseconds)."""
    from forestream.processing.kinesis_wire import KinesisWire

    # forestream's own Kinesis client (the one the application's sinks use: the same
    # signed JSON calls, a third of boto3's CPU per call), so that the generator, which
    # shares the machine with the server and the application, takes less of it
    wire = KinesisWire.for_client(kinesis)
    put_records = (lambda records: wire.put_records(INPUT_STREAM, records)) if wire else \
        (lambda records: kinesis.put_records(StreamName=INPUT_STREAM, Records=records))
    step_size = STEPS_PER_PUT
    began = time.monotonic()
    published = 0
    for start in range(0, rows, step_size):
        ahead = published / rate - (time.monotonic() - began)
        if ahead > 0:
            time.sleep(ahead)
        records = []
        sent_at = time.time()
        for i in range(start, min(rows, start + step_size)):
            for data in fleet:
                for sensor in SENSORS:
                    event = {"machine": data.machine, "sensor": sensor, "i": i,
                             "time": START_TIME + 300.0 * i,
                             "value": round(float(data.values[sensor][i]), 4),
                             "sent_at": sent_at}
                    records.append({"Data": json.dumps(event).encode(),
                                    "PartitionKey": data.machine})
        for _ in range(20):
            out = put_records(records)
            if out.get("FailedRecordCount", 0) == 0:
                break
            records = [r for r, res in zip(records, out["Records"], strict=True)
                       if "ErrorCode" in res]
            time.sleep(0.1)
        published += step_size * len(fleet) * len(SENSORS)


class _Results:
    """What the job's sinks report: every graded reading, alerts, latencies."""

    def __init__(self, fleet, rows: int) -> None:
        self.grades = {(d.machine, s): np.zeros(rows) for d in fleet for s in SENSORS}
        self.scores = {(d.machine, s): np.zeros(rows) for d in fleet for s in SENSORS}
        self.latencies: list[float] = []
        self.sent: list[float] = []  # when each graded reading was published
        self.count = 0
        self.on_alert: Callable[[str], object] = print
        self.on_progress: Callable[[int], object] = lambda n: None

    def graded(self, event: dict) -> None:
        key = (event["machine"], event["sensor"])
        self.grades[key][event["i"]] = event["ANOMALY_GRADE"]
        self.scores[key][event["i"]] = event["ANOMALY_SCORE"]
        self.latencies.append(time.time() - event["sent_at"])
        self.sent.append(event["sent_at"])
        self.count += 1
        if self.count % 500 == 0:
            self.on_progress(self.count)

    def alert(self, event: dict) -> None:
        explanation = event.get("ANOMALY_EXPLANATION") or {}
        steps = explanation.get("relative_index", 0)
        when = "this reading" if not steps else f"{-steps} readings earlier"
        day, minute = divmod(event["i"] * 5, 24 * 60)
        self.on_alert(
            f"[red]ANOMALY[/] day {day} {minute // 60:02d}:{minute % 60:02d}  "
            f"{event['machine']:<10} {event['sensor']:<12} value {event['value']:9.2f}  "
            f"expected ≈ {explanation.get('expected_value', float('nan')):9.2f}  "
            f"grade {event['ANOMALY_GRADE']:.2f}  (caused by {when})")


def _rest(server: EmbeddedServer, method: str, path: str, body: dict | None = None):
    from forestream.rest_client import call

    return call(server.url, method, f"/api/v1/applications{path}", body, timeout=120,
                token=server.token)


def _deploy_application(server: EmbeddedServer, out_dir: Path,
                        flink_url: str | None = None) -> Path:
    """Write the application's code, create it and start it, as a user would (the code
    travels with the request, as ``forestream apps create --code`` sends it);
    ``flink_url``: on that Flink cluster (``--runtime flink``)."""
    from forestream.processing.app_code import ApplicationCode

    code = out_dir / "app" / "sensor_anomalies.py"
    code.parent.mkdir(parents=True, exist_ok=True)
    code.write_text(APP_CODE)
    on_flink = {"runtime": "flink", "flink_url": flink_url} if flink_url else {}
    _rest(server, "POST", "", {**on_flink,
        "name": APP_NAME, "code": ApplicationCode.from_path(code).to_request(),
        # the platform's default (AWS's Managed Flink takes one a minute): a round of
        # checkpoints reads the 12 detectors' ~70 MB of forests, ~0.4 CPU-s a round here
        "checkpoint_interval": 10.0,
        "description": "quickstart: per-sensor thresholded RCF",
        "properties": {"detector": {"input": INPUT_STREAM, "scores": SCORES_STREAM,
                                    "alerts": OUTPUT_STREAM, "alert_grade": ALERT_GRADE,
                                    "shingle_size": 4}}})
    _rest(server, "POST", f"/{APP_NAME}/start")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until its worker has leased shards and steps
        workers = _workers(_rest(server, "GET", f"/{APP_NAME}"))
        if workers and all(w.get("state") == "RUNNING" and (w.get("shards") or flink_url)
                           for w in workers):
            return code
        time.sleep(0.2)
    raise RuntimeError(f"application {APP_NAME} did not start: see "
                       f"{out_dir / 'data' / 'apps' / APP_NAME / 'logs' / 'worker.log'}")


def _follow(kinesis, results: _Results, total: int, alert_file: Path) -> None:
    """Read the application's two output streams until every reading's grade is back
    (dropping the duplicates an at-least-once sink may write after a restart)."""
    from forestream.processing import StreamExecutionEnvironment

    def fresh():
        seen: set[str] = set()

        def first_time(event: dict) -> bool:
            rid = event.pop("_record_id", None)
            if rid in seen:
                return False
            if rid is not None:
                seen.add(rid)
            return True
        return first_time

    alert_file.unlink(missing_ok=True)
    env = StreamExecutionEnvironment(batch_size=2000)
    env.from_kinesis(SCORES_STREAM, kinesis).filter(fresh()).add_sink(results.graded)
    alerts = env.from_kinesis(OUTPUT_STREAM, kinesis).filter(fresh())
    alerts.add_sink(results.alert)
    alerts.write_to_file(alert_file)
    env.execute("quickstart-follow", until=lambda: results.count >= total, max_seconds=600)


def _count_records(kinesis, stream: str) -> int:
    from forestream.processing.kinesis_io import read_records

    return sum(1 for _ in read_records(kinesis, stream))


def _summarise(console, fleet, results: _Results, elapsed, out_dir, written, app) -> dict:
    table = Table(title="Detection against the injected incidents")
    for col in ("incident kind", "injected", "found", "recall"):
        table.add_column(col, justify="left" if col == "incident kind" else "right")
    per_kind: dict[str, list[int]] = {}
    totals = np.zeros(4, dtype=int)
    for data in fleet:
        for sensor in SENSORS:
            alerting = results.grades[(data.machine, sensor)] >= ALERT_GRADE
            totals += event_metrics(alerting, data.truth(sensor))
            for inc in data.incidents:
                if inc.sensor == sensor:
                    hit = alerting[inc.start : min(len(alerting), inc.end + 13)].any()
                    per_kind.setdefault(inc.kind, [0, 0])
                    per_kind[inc.kind][0] += 1
                    per_kind[inc.kind][1] += int(hit)
    for kind, (n, hits) in sorted(per_kind.items()):
        table.add_row(kind, str(n), str(hits), f"{hits / n:.0%}")
    found, incidents, true_flags, flags = (int(v) for v in totals)
    latency = np.array(results.latencies) * 1000
    sent = np.array(results.sent)
    settling = sent < sent.min() + WARM_UP_SECONDS if len(sent) else sent.astype(bool)
    steady = latency[~settling] if (~settling).any() else latency
    first = latency[settling] if settling.any() else latency
    summary = {
        "incidents": incidents, "found": found, "recall": found / max(incidents, 1),
        "alerts": flags, "precision": true_flags / max(flags, 1),
        "readings": results.count, "seconds": elapsed,
        "readings_per_second": results.count / elapsed, "alerts_in_stream": written,
        "latency_p50_ms": float(np.percentile(steady, 50)),
        "latency_p99_ms": float(np.percentile(steady, 99)),
        "warm_up_latency_p50_ms": float(np.percentile(first, 50)),
        "warm_up_latency_p99_ms": float(np.percentile(first, 99)),
        "latency_max_ms": float(latency.max()),
    }
    console.print()
    console.print(table)
    console.print(
        f"recall [bold]{summary['recall']:.0%}[/] ({found}/{incidents} incidents), "
        f"precision [bold]{summary['precision']:.0%}[/] ({true_flags}/{flags} alerts inside "
        f"an incident or within an hour after it)\n"
        f"{results.count:,} readings streamed, graded and routed in {elapsed:.1f} s = "
        f"[bold]{summary['readings_per_second']:,.0f}[/] readings/s (the generator's rate)\n"
        f"end-to-end latency (put → graded by the application → read back), steady state: "
        f"p50 [bold]{summary['latency_p50_ms']:.0f} ms[/], p99 "
        f"[bold]{summary['latency_p99_ms']:.0f} ms[/]; in the first {WARM_UP_SECONDS:g} s "
        f"(settling): p50 {summary['warm_up_latency_p50_ms']:.0f} ms, p99 "
        f"{summary['warm_up_latency_p99_ms']:.0f} ms; worst {summary['latency_max_ms']:.0f} ms\n"
        f"{written} anomalies (with explanations) written to stream "
        f"[bold]{OUTPUT_STREAM}[/]; application {APP_NAME} is {app['status']}, "
        f"{sum(w.get('checkpoints', 0) for w in _workers(app))} checkpoints taken")
    for data in fleet:
        _plot_machine(out_dir / f"{data.machine}.png", data, results)
    console.print(f"plots and anomalies.jsonl are in [cyan]{out_dir}/[/]")
    resume = (f"serves the same API (boto3, the AWS CLI) and resumes application {APP_NAME} "
              "from its checkpoint") if app.get("runtime_environment") != "flink" else (
        f"serves the same API; with [cyan]forestream flink start --data-dir "
        f"{out_dir / 'data'}[/] and [cyan]forestream apps start {APP_NAME}[/] the Flink job "
        "resumes from the savepoint taken when the demo stopped it")
    console.print(
        f"\n[bold]Keep it running[/]: [cyan]forestream server --data-dir {out_dir / 'data'}[/] "
        f"{resume}; [cyan]forestream apps describe {APP_NAME}[/] shows its metrics, "
        f"[cyan]forestream apps logs {APP_NAME}[/] its log, [cyan]forestream streams tail "
        f"{OUTPUT_STREAM}[/] follows its alerts. Edit {out_dir / 'app'}/sensor_anomalies.py "
        f"and roll it out with [cyan]forestream apps update {APP_NAME} --code FILE[/]."
        "\n[bold]Try next[/]: [cyan]forestream rcf score FILE.csv --plot out.png[/] "
        "on your own data; [cyan]forestream models import[/] to serve your own model "
        "(docs/models.md); [cyan]forestream optimizer recommend[/] to right-size machines "
        "(docs/optimizer.md); [cyan]make nab[/] for the NAB benchmark.")
    return summary


def _workers(app: dict) -> list[dict]:
    runtime = app.get("runtime") or {}
    return runtime.get("workers") or [runtime]


def _plot_machine(path: Path, data, results: _Results) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(SENSORS), 1, sharex=True, figsize=(13, 7.5))
    for ax, sensor in zip(axes, SENSORS, strict=True):
        key = (data.machine, sensor)
        values = data.values[sensor]
        x = np.arange(len(values))
        truth = data.truth(sensor)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], truth.astype(int), [0]])))
        for s, e in zip(edges[::2], edges[1::2], strict=True):
            ax.axvspan(s, e, color="#ffbf00", alpha=0.3, lw=0)
        ax.plot(x, values, lw=0.6, color="#1f5f8b")
        flagged = results.grades[key] >= ALERT_GRADE
        ax.scatter(x[flagged], values[flagged], color="#d62728", s=22, zorder=3)
        twin = ax.twinx()
        twin.plot(x, results.scores[key], lw=0.5, color="#888888", alpha=0.7)
        twin.set_ylabel("score", color="#888888")
        ax.set_ylabel(sensor)
    axes[0].set_title(f"{data.machine}: readings (blue), RCF score (grey), alerts (red), "
                      "injected incidents (shaded)")
    axes[-1].set_xlabel("reading (5-minute samples)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
