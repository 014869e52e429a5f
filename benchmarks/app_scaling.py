"""Managed applications at parallelism 1 and 2: what the key-group exchange costs and buys.

A ``forestream server`` (fsync on) holds an input stream of 4 shards pre-loaded with JSON
events for 64 keys (partition keys are event ids, so every key arrives on every shard).
The same application — JSON decode → key_by → per-key Random Cut Forest (Kinesis
defaults: 100 trees, sample 256) → scores to an output stream — is created and started
at each parallelism in turn (fresh application, fresh output stream), and timed from
``start`` until every event's score is in the output stream. Peers side by side in the
same run: parallelism 1 and 2 of the managed application, and the same pipeline run
in-process by the library (``env.execute``, no exchange, no worker process) as the
reference. Reported: events/s (median of the repeats) and the ratio to parallelism 1.

    .venv/bin/python benchmarks/app_scaling.py [--events 40000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
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


def count(kinesis, stream: str) -> int:
    from forestream.processing.kinesis_io import read_records

    return sum(1 for _ in read_records(kinesis, stream))


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


def run_app(server, kinesis, code: Path, parallelism: int, events: int, tag: str) -> float:
    out = f"bench-out-{tag}"
    kinesis.create_stream(StreamName=out, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=out, WaiterConfig={"Delay": 0.1})
    name = f"bench-{tag}"
    rest(server, "POST", "", {"name": name, "code": {"filename": code.name,
                                                     "text": code.read_text()},
                              "parallelism": parallelism,
                                  "max_parallelism": 4, "checkpoint_interval": 10.0,
                                  "properties": {"bench": {"input": "bench-in",
                                                           "output": out}}})
    started = time.perf_counter()
    rest(server, "POST", f"/{name}/start")
    while count(kinesis, out) < events:
        time.sleep(0.5)
        app = rest(server, "GET", f"/{name}")
        if app["status"] != "RUNNING" or time.perf_counter() - started > 900:
            raise RuntimeError(f"{name} is {app['status']} after "
                               f"{time.perf_counter() - started:.0f} s: "
                               f"{app.get('last_failure') or 'not done'}")
    seconds = time.perf_counter() - started
    rest(server, "POST", f"/{name}/stop", {"snapshot": False})
    rest(server, "DELETE", f"/{name}")
    kinesis.delete_stream(StreamName=out)
    return seconds


def run_library(kinesis, events: int) -> float:
    from forestream.processing import StreamExecutionEnvironment

    env = StreamExecutionEnvironment(batch_size=1000)
    seen = {"n": 0}
    (env.from_kinesis("bench-in", kinesis, deserializer=json.loads)
        .key_by(lambda e: e["k"])
        .random_cut_forest(["v"])
        .add_sink(lambda e: seen.__setitem__("n", seen["n"] + 1)))
    started = time.perf_counter()
    env.execute("bench", until=lambda: seen["n"] >= events, max_seconds=900)
    return time.perf_counter() - started


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    console = Console(width=120)
    work = Path(tempfile.mkdtemp(prefix="fs-app-scaling-"))
    server = ServerProcess(work / "data", env={"FORESTREAM_STATUS_DELAY": "0.1"}).start()
    try:
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
        times: dict[str, list[float]] = {"library (in-process)": [], "application p=1": [],
                                         "application p=2": []}
        for r in range(args.repeats):
            times["library (in-process)"].append(run_library(kinesis, args.events))
            for p in (1, 2):
                times[f"application p={p}"].append(
                    run_app(server, kinesis, code, p, args.events, f"r{r}p{p}"))
            console.print(f"repeat {r + 1}: " + ", ".join(
                f"{k} {args.events / v[-1]:,.0f} events/s" for k, v in times.items()))
        base = args.events / statistics.median(times["application p=1"])
        table = Table(title=f"RCF per key as a managed application (median of "
                            f"{args.repeats})")
        for col in ("peer", "events/s", "seconds", "÷ application p=1"):
            table.add_column(col, justify="left" if col == "peer" else "right")
        for peer, values in times.items():
            rate = args.events / statistics.median(values)
            table.add_row(peer, f"{rate:,.0f}", f"{statistics.median(values):.1f}",
                          f"{rate / base:.2f}")
        console.print(table)
        console.print("seconds: from start (application: POST start, worker launch "
                      "included) until every score is in the output stream")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
