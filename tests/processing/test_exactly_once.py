"""Exactly-once keyed state on a real server, at parallelism 1 (records change hands in
memory, checkpoints in committed rounds) and 2 (through the exchange stream): repeated
SIGKILLs of the workers, a SplitShard of the source mid-run and a SIGKILL of the server
itself, with records arriving all along; every key's running total ends exact."""

from __future__ import annotations

import json
import os
import signal

import pytest
from apps_testkit import api, create_streams, totals, wait

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

pytestmark = [pytest.mark.service, pytest.mark.slow]

JOB = '''
from forestream.processing import kinesis_client

def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("xin", client)
        .key_by(lambda e: e["k"])
        .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
        .sink_to_kinesis("xout", client))
'''
KEYS = [f"machine-{i}" for i in range(6)]


def client(server):
    return boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="k", aws_secret_access_key="s",
                        config=Config(retries={"max_attempts": 8, "mode": "standard"}))


def put(kinesis, start: int, n: int) -> None:
    """``n`` records, one per key in turn, each with its own partition key (every key's
    records land on every shard)."""
    records = [{"Data": json.dumps({"k": KEYS[i % len(KEYS)], "n": 1}).encode(),
                "PartitionKey": f"event-{start + i}"} for i in range(start, start + n)]
    for at in range(0, n, 500):
        kinesis.put_records(StreamName="xin", Records=records[at:at + 500])


def workers(server) -> list[dict]:
    runtime = api(server, "GET", "/once").get("runtime") or {}
    return runtime.get("workers") or [runtime]


def running(server, count: int):
    found = [w for w in workers(server) if w.get("state") == "RUNNING" and w.get("pid")]
    return len(found) >= count and found


def expect(kinesis, sent: int, what: str, seconds: float = 120.0) -> None:
    per_key = sent // len(KEYS)
    wait(lambda: totals(kinesis, "xout") == {k: per_key for k in KEYS}, seconds, what)
    assert totals(kinesis, "xout") == {k: per_key for k in KEYS}


@pytest.mark.parametrize("parallelism", [1, 2])
def test_totals_stay_exact_through_killed_workers_a_split_and_a_killed_server(
        server_process, tmp_path, parallelism):
    server = server_process(tmp_path / "data").start()
    kinesis = client(server)
    create_streams(kinesis, xin=2, xout=1)
    code = tmp_path / "job.py"
    code.write_text(JOB)
    api(server, "POST", "", {"name": "once", "code": str(code), "parallelism": parallelism,
                             "max_parallelism": 4, "checkpoint_interval": 0.5})
    api(server, "POST", "/once/start")
    sent = 0
    put(kinesis, sent, 300)
    sent += 300
    expect(kinesis, sent, "the first totals")

    for _ in range(2):  # kill every worker, twice, while records keep arriving
        for worker in wait(lambda: running(server, parallelism), 60, "workers running"):
            os.kill(worker["pid"], signal.SIGKILL)
        put(kinesis, sent, 240)
        sent += 240
        expect(kinesis, sent, "totals after the workers were killed")

    shard = kinesis.list_shards(StreamName="xin")["Shards"][0]
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    put(kinesis, sent, 120)
    sent += 120
    kinesis.split_shard(StreamName="xin", ShardToSplit=shard["ShardId"],
                        NewStartingHashKey=str((low + high) // 2))
    # the split takes effect when UPDATING ends (as on AWS): the next records go to the
    # children, read after their parent's last
    kinesis.get_waiter("stream_exists").wait(StreamName="xin", WaiterConfig={"Delay": 0.1})
    put(kinesis, sent, 240)
    sent += 240
    expect(kinesis, sent, "totals after the split")

    put(kinesis, sent, 180)
    sent += 180
    server.kill()  # the server and its supervision gone at once; workers stop as orphans
    server.start()  # the same data directory: the application resumes
    kinesis = client(server)
    put(kinesis, sent, 180)
    sent += 180
    expect(kinesis, sent, "totals after the server was killed", seconds=180)
    api(server, "POST", "/once/stop")
