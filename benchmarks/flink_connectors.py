"""forestream's Kinesis-API connectors on a real local Flink cluster: records/s end to end.

Two hand-written PyFlink jobs (tests/processing/flink/jobs) read a 2-shard stream on a
``forestream server`` and write another, at parallelism 2 on a local cluster
(1 JobManager + 2 TaskManagers x 2 slots, ``forestream.processing.flink``):

  java-only   KinesisApiSource -> KinesisApiSink, no Python operator (copy_stream.py)
  python      source -> Python map -> key_by -> Python keyed count in ValueState -> sink
              (keyed_counts.py)

The input (--records JSON records over 64 keys) is loaded before the job starts, so the
job runs flat out. records/s = records / (last - first output arrival, the server's
ApproximateArrivalTimestamp); "done after" = seconds from submission until Flink's metrics
show every record written (includes the ~10 s of `flink run` and up to 10 s of metric
refresh). The load average is printed with every row: this machine is shared.

    python benchmarks/flink_connectors.py --records 200000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "processing" / "flink")]

from flink_testkit import JOBS, new_streams, read_all  # noqa: E402

from forestream.processing.flink import LocalFlinkCluster  # noqa: E402
from server_support import ServerProcess  # noqa: E402

KEYS = [f"k{i}" for i in range(64)]


def load(kinesis, stream: str, records: int) -> None:
    batch = []
    for i in range(records):
        key = KEYS[i % len(KEYS)]
        batch.append({"Data": json.dumps({"k": key, "i": i, "v": i * 0.5}).encode(),
                      "PartitionKey": key})
        if len(batch) == 500:
            kinesis.put_records(StreamName=stream, Records=batch)
            batch = []
    if batch:
        kinesis.put_records(StreamName=stream, Records=batch)


def run(cluster, server, kinesis, job_file: str, records: int, expect: int) -> dict:
    streams = new_streams(kinesis, input=2, output=2)
    load(kinesis, streams["input"], records)
    started = time.monotonic()
    job = cluster.run_python_job(JOBS / job_file, [server.url, streams["input"],
                                                   streams["output"], server.token or ""],
                                 parallelism=2)
    rest = cluster.rest
    rest.wait_for_state(job, ["RUNNING"], timeout=300)
    while rest.metrics(job)["records_out"] < expect:
        time.sleep(1.0)
    done = time.monotonic() - started
    load_average = os.getloadavg()[0]
    rest.cancel(job)
    out = read_all(kinesis, streams["output"])
    stamps = sorted(r["ApproximateArrivalTimestamp"].timestamp() for r in out)
    span = stamps[-1] - stamps[0]
    return {"records": records, "written": len(out), "records_per_s": len(out) / span,
            "done_after_s": done, "load": load_average}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    args = parser.parse_args()
    import boto3

    folder = Path(tempfile.mkdtemp(prefix="flink-bench-"))
    server = ServerProcess(folder / "server").start()
    cluster = LocalFlinkCluster(folder, task_managers=2, slots=2).start()
    try:
        kinesis = boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                               aws_access_key_id="x", aws_secret_access_key="x")
        rows = [("java-only source -> sink", run(cluster, server, kinesis, "copy_stream.py",
                                                 args.records, args.records)),
                ("python map + keyed count", run(cluster, server, kinesis, "keyed_counts.py",
                                                 args.records, args.records))]
    finally:
        cluster.stop()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{'job (parallelism 2)':28} {'records':>8} {'written':>8} {'records/s':>10} "
          f"{'done after':>11} {'load 1m':>8}")
    for name, row in rows:
        print(f"{name:28} {row['records']:>8} {row['written']:>8} "
              f"{row['records_per_s']:>10.0f} {row['done_after_s']:>10.1f}s "
              f"{row['load']:>8.2f}")


if __name__ == "__main__":
    main()
