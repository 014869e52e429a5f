"""Managed applications at parallelism 1 and 2: what the key-group exchange costs and buys.

A ``forestream server`` (fsync on) holds an input stream of 4 shards pre-loaded with JSON
events for 64 keys (partition keys are event ids, so every key arrives on every shard).
The same application — JSON decode → key_by → per-key Random Cut Forest (Kinesis
defaults: 100 trees, sample 256) → scores to an output stream — is created and started
at each parallelism in turn (fresh application, fresh output stream), and timed from
``start`` until every event's score is in the output stream. Peers side by side in the
same run: parallelism 1 and 2 of the managed application, and the same job (same source,
operators and output stream) run in-process by the library (``env.execute``: no worker
process, no checkpoints) as the reference. Reported per peer (medians of the repeats):
events/s from start to the last score (worker launch included), the first output's
delay from start, events/s from the first score to the last (the rate once running),
CPU seconds per 1,000 events (the
benchmark's and the server's processes and every worker, user + system), and the ratio
of each rate to the library's.

With ``--flink``, a local Flink cluster (1 JobManager + 1 TaskManager with 2 slots) runs
beside them: the same application with ``runtime = "flink"`` at parallelism 1 and 2
(the job graph translated to PyFlink, see docs/flink.md) and the same work written by
hand in PyFlink (``benchmarks/flink_rcf_job.py``, parallelism 1), timed the same way
from start (submission included) to the last score; their CPU adds the cluster's
processes (JVMs and Python workers).

    .venv/bin/python benchmarks/app_scaling.py [--events 40000] [--repeats 3] [--flink]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from server_support import ServerProcess  # noqa: E402

KEYS = 64
JOB = '''
import json

from forestream.processing import kinesis_client


def build(env, properties):
    client = kinesis_client()
    p = properties["bench"]
    (env.from_kinesis(p["input"], client, deserializer=json.loads)
        .key_by(lambda e: e["k"])
        .random_cut_forest(["v"])
        .map(lambda e: {"k": e["k"], "s": e["ANOMALY_SCORE"]})
        .sink_to_kinesis(p["output"], client))
'''


def rest(server, method: str, path: str, body: dict | None = None):
    request = server.request(f"/api/v1/applications{path}", method=method,
                             data=json.dumps(body).encode() if body else None,
                             headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


class OutputCounter:
    """Counts a stream's records as they arrive, reading each shard on from where it was
    (a full re-read every poll would load the server it measures)."""

    def __init__(self, kinesis, stream: str) -> None:
        self.kinesis, self.stream, self.count = kinesis, stream, 0
        self.iterators: dict[str, str] = {}
        self.first_at: float | None = None

    def poll(self) -> int:
        for shard in self.kinesis.list_shards(StreamName=self.stream)["Shards"]:
            sid = shard["ShardId"]
            iterator = self.iterators.get(sid) or self.kinesis.get_shard_iterator(
                StreamName=self.stream, ShardId=sid,
                ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
            while iterator:
                page = self.kinesis.get_records(ShardIterator=iterator, Limit=10_000)
                self.count += len(page["Records"])
                iterator = page.get("NextShardIterator")
                if iterator:
                    self.iterators[sid] = iterator
                if not page["Records"]:
                    break
        if self.count and self.first_at is None:
            self.first_at = time.perf_counter()
        return self.count


class CpuMeter:
    """CPU seconds (user + system) used since it was made by this process and all its
    descendants — the server, its workers, the Flink cluster's JVMs, their Python
    workers, ``flink run`` clients — sampled every 0.1 s from a thread.

    Each process is remembered by (pid, start time) with its last sample, so a process
    that exits during the run still counts what it used up to its last sample (at most
    0.1 s of it is missed), and one that was there at the start counts only what it used
    since. (Summing the live processes at the start and at the end instead — the earlier
    way — subtracted the whole CPU of a process that exited in between, such as the
    previous Flink job's Python worker, and undercounted the next peer by seconds.)
    """

    def __init__(self, skip=None, interval: float = 0.1) -> None:
        import threading

        import psutil

        self._root = psutil.Process(os.getpid())
        # a Flink cluster idling beside an embedded peer is not that peer's cost
        self._skip = set(skip.pids.values()) if skip is not None else set()
        self._lock = threading.Lock()
        self._base = self._sample()
        self._last = dict(self._base)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self) -> dict[tuple[int, float], float]:
        import psutil

        out = {}
        skipped = set(self._skip)
        for pid in self._skip:
            try:
                skipped.update(p.pid for p in psutil.Process(pid).children(recursive=True))
            except psutil.Error:
                continue
        for proc in [self._root, *self._root.children(recursive=True)]:
            if proc.pid in skipped:
                continue
            try:
                with proc.oneshot():
                    times = proc.cpu_times()
                    out[(proc.pid, proc.create_time())] = times.user + times.system
            except psutil.Error:
                continue
        return out

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            sample = self._sample()
            with self._lock:
                self._last.update(sample)

    def used(self) -> float:
        """CPU seconds used so far; stops the sampling."""
        self._stop.set()
        self._thread.join()
        self._last.update(self._sample())
        return sum(cpu - self._base.get(proc, 0.0) for proc, cpu in self._last.items())


def load(kinesis, events: int) -> None:
    import random

    rng = random.Random(0)
    batch = []
    for i in range(events):
        event = {"k": f"key-{i % KEYS}", "v": rng.gauss(0, 1) + (8 if i % 997 == 0 else 0)}
        batch.append({"Data": json.dumps(event).encode(), "PartitionKey": f"e{i}"})
        if len(batch) == 500:
            kinesis.put_records(StreamName="bench-in", Records=batch)
            batch = []
    if batch:
        kinesis.put_records(StreamName="bench-in", Records=batch)


def run_app(server, kinesis, code: Path, parallelism: int, events: int, tag: str,
            cluster=None, cluster_beside=None) -> dict:
    """The application on the server's workers, or (``cluster``) on that Flink cluster;
    ``cluster_beside``: a Flink cluster whose CPU is not this run's."""
    out = f"bench-out-{tag}"
    kinesis.create_stream(StreamName=out, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=out, WaiterConfig={"Delay": 0.1})
    name = f"bench-{tag}"
    on_flink = {"runtime": "flink", "flink_url": cluster.rest_url} if cluster else {}
    rest(server, "POST", "", {"name": name, "code": {"filename": code.name,
                                                     "text": code.read_text()},
                              "parallelism": parallelism, "max_parallelism": 4,
                              "checkpoint_interval": 10.0, **on_flink,
                              "properties": {"bench": {"input": "bench-in", "output": out}}})
    counter = OutputCounter(kinesis, out)
    meter = CpuMeter(skip=cluster_beside)
    started = time.perf_counter()
    rest(server, "POST", f"/{name}/start")
    checked = started
    while counter.poll() < events:
        time.sleep(0.2)
        if time.perf_counter() - checked < 2.0:
            continue
        # the status is a guard against a failed application, read every 2 s: each
        # describe of a Flink application asks Flink's REST API for the job's metrics,
        # and doing that 5 times a second cost the JobManager ~6 CPU-s per run
        checked = time.perf_counter()
        app = rest(server, "GET", f"/{name}")
        if app["status"] != "RUNNING" or checked - started > 900:
            raise RuntimeError(f"{name} is {app['status']} after "
                               f"{checked - started:.0f} s: "
                               f"{app.get('last_failure') or 'not done'}")
    ended = time.perf_counter()
    cpu = meter.used()
    rest(server, "POST", f"/{name}/stop", {"snapshot": False})
    rest(server, "DELETE", f"/{name}")
    delete_stream(kinesis, out)
    return measured(events, started, counter.first_at, ended, cpu)


def run_handwritten(server, kinesis, cluster, events: int, tag: str) -> dict:
    """The same work written by hand in PyFlink (flink_rcf_job.py), parallelism 1."""
    out = f"bench-out-{tag}"
    kinesis.create_stream(StreamName=out, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=out, WaiterConfig={"Delay": 0.1})
    counter = OutputCounter(kinesis, out)
    meter = CpuMeter()
    started = time.perf_counter()
    job = cluster.rest.submit_python(Path(__file__).with_name("flink_rcf_job.py"),
                                     [server.url, "bench-in", out, server.token or ""],
                                     parallelism=1)
    while counter.poll() < events:
        time.sleep(0.2)
        if time.perf_counter() - started > 900:
            raise RuntimeError(f"hand-written job {job} not done after 900 s")
    ended = time.perf_counter()
    cpu = meter.used()
    cluster.rest.cancel(job)
    delete_stream(kinesis, out)
    return measured(events, started, counter.first_at, ended, cpu)


#: The shortest first-to-last-score span a rate once running is given for.
MIN_RUNNING_SECONDS = 1.0


def delete_stream(kinesis, name: str) -> None:
    """Delete a run's output stream and wait until it is gone (it is DELETING for the
    server's status delay, as on AWS, and its name is not free until then), so the next
    run starts with nothing of this one's left, even under the same name."""
    kinesis.delete_stream(StreamName=name)
    kinesis.get_waiter("stream_not_exists").wait(
        StreamName=name, WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})


def measured(events: int, started: float, first_at: float | None, ended: float,
             cpu: float) -> dict:
    return {"seconds": ended - started, "rate": events / (ended - started),
            # a run whose scores all came in one burst (a short run) has no rate once running
            "running_rate": events / (ended - first_at)
            if first_at and ended - first_at >= MIN_RUNNING_SECONDS else math.nan,
            "cpu_per_1k": 1000 * cpu / events,
            "first_output": first_at - started if first_at else math.nan}


def run_library(server, kinesis, events: int, tag: str, cluster_beside=None) -> dict:
    """The same job in this process: same source, operators and output stream."""
    from forestream.processing import StreamExecutionEnvironment

    out = f"bench-out-{tag}"
    kinesis.create_stream(StreamName=out, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=out, WaiterConfig={"Delay": 0.1})
    env = StreamExecutionEnvironment(batch_size=1000)
    seen = {"n": 0, "first": None}

    def counted(e):
        seen["n"] += 1
        if seen["first"] is None:
            seen["first"] = time.perf_counter()
        return e
    (env.from_kinesis("bench-in", kinesis, deserializer=json.loads)
        .key_by(lambda e: e["k"])
        .random_cut_forest(["v"])
        .map(lambda e: {"k": e["k"], "s": e["ANOMALY_SCORE"]})
        .map(counted)
        .sink_to_kinesis(out, kinesis))
    meter = CpuMeter(skip=cluster_beside)
    started = time.perf_counter()
    env.execute("bench", until=lambda: seen["n"] >= events, max_seconds=900)
    ended = time.perf_counter()  # the last batch is written when execute() returns
    cpu = meter.used()
    delete_stream(kinesis, out)
    return measured(events, started, seen["first"], ended, cpu)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--flink", action="store_true",
                    help="also the application on a local Flink cluster (p=1, 2) and the "
                         "hand-written PyFlink job")
    args = ap.parse_args()
    console = Console(width=120)
    work = Path(tempfile.mkdtemp(prefix="fs-app-scaling-"))
    server = ServerProcess(work / "data", env={"FORESTREAM_STATUS_DELAY": "0.1"}).start()
    cluster = None
    try:
        if args.flink:
            from forestream.processing.flink.cluster import LocalFlinkCluster

            cluster = LocalFlinkCluster(work / "flink", task_managers=1, slots=2).start()
        from forestream.processing.kinesis_io import kinesis_client

        kinesis = kinesis_client(server.url)
        kinesis.create_stream(StreamName="bench-in", ShardCount=4)
        kinesis.get_waiter("stream_exists").wait(StreamName="bench-in",
                                                 WaiterConfig={"Delay": 0.1})
        load(kinesis, args.events)
        code = work / "job.py"
        code.write_text(JOB)
        console.print(f"machine: nproc={os.cpu_count()}, load average {os.getloadavg()}; "
                      f"{args.events:,} events, {KEYS} keys, 4 source shards, "
                      f"{args.repeats} repeat(s)")
        runs: dict[str, list[dict]] = {"library (in-process)": [], "application p=1": [],
                                       "application p=2": []}
        if cluster is not None:
            runs.update({"flink application p=1": [], "flink application p=2": [],
                         "hand-written PyFlink p=1": []})
        for r in range(args.repeats):
            runs["library (in-process)"].append(
                run_library(server, kinesis, args.events, f"r{r}lib", cluster_beside=cluster))
            for p in (1, 2):
                runs[f"application p={p}"].append(
                    run_app(server, kinesis, code, p, args.events, f"r{r}p{p}",
                            cluster_beside=cluster))
            if cluster is not None:
                for p in (1, 2):
                    runs[f"flink application p={p}"].append(
                        run_app(server, kinesis, code, p, args.events, f"r{r}f{p}",
                                cluster=cluster))
                runs["hand-written PyFlink p=1"].append(
                    run_handwritten(server, kinesis, cluster, args.events, f"r{r}hw"))
            console.print(f"repeat {r + 1}: " + ", ".join(
                f"{k} {v[-1]['rate']:,.0f} events/s ({v[-1]['running_rate']:,.0f} once "
                f"running, {v[-1]['cpu_per_1k']:.2f} CPU-s/1k)" for k, v in runs.items()))

        def median(peer: str, key: str) -> float:
            return statistics.median(run[key] for run in runs[peer])
        base = "library (in-process)"
        table = Table(title=f"RCF per key: library vs managed application (medians of "
                            f"{args.repeats})")
        for col in ("peer", "seconds", "first output (s)", "events/s",
                    "events/s once running", "CPU-s per 1k events",
                    "÷ library (events/s, once running)"):
            table.add_column(col, justify="left" if col == "peer" else "right")
        for peer in runs:
            table.add_row(peer, f"{median(peer, 'seconds'):.1f}",
                          f"{median(peer, 'first_output'):.1f}",
                          f"{median(peer, 'rate'):,.0f}",
                          f"{median(peer, 'running_rate'):,.0f}",
                          f"{median(peer, 'cpu_per_1k'):.2f}",
                          f"{median(peer, 'rate') / median(base, 'rate'):.2f}, "
                          f"{median(peer, 'running_rate') / median(base, 'running_rate'):.2f}")
        console.print(table)
        ratio = median("application p=1", "rate") / median(base, "rate")
        console.print(f"application p=1 / library = {ratio:.0%} of its events/s (target "
                      f">= 90%); load average at the end {os.getloadavg()}")
        console.print("seconds: from start (application: POST start, worker launch "
                      "included; Flink: submission included) until every score is in the "
                      "output stream; first output: from start to the first score; once "
                      "running: from the first score to the last; CPU: "
                      "this process, the server and its workers (and the Flink cluster's "
                      "processes)")
    finally:
        if cluster is not None:
            cluster.stop()
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
