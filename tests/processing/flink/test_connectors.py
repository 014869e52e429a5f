"""forestream's Kinesis-API source and sink (Java, java/flink-connector) in PyFlink jobs on
a real local Flink cluster, reading and writing a real forestream server.

Delivery as documented on KinesisApiSink: state is exactly-once (Flink checkpoints with
the source's per-shard sequence numbers); output is at-least-once with ids that a replay
reproduces, so a reader dropping repeats by ``_record_id`` sees every count exactly once.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
from flink_testkit import (
    JOBS,
    counts_written,
    new_streams,
    put_counted,
    read_all,
    session_members,
    wait_for,
)

from forestream.processing.flink.rest_api import FlinkSubmitError

pytestmark = [pytest.mark.slow, pytest.mark.service]

KEYS = [f"key-{i}" for i in range(8)]


def _job_args(server, streams):
    return [server.url, streams["input"], streams["output"], server.token or ""]


def _latest(kinesis, stream):
    by_key, _ = counts_written(kinesis, stream)
    return {key: max(values) for key, values in by_key.items()}


def test_counts_are_exact_after_a_taskmanager_kill_then_a_stop_with_savepoint_and_resume(
        flink_cluster, forestream_server, kinesis_client, tmp_path):
    """One keyed-count job through both recoveries (one job started, not two): a
    TaskManager killed mid-run while records keep arriving, then stop-with-savepoint and
    a new job resumed from that savepoint."""
    streams = new_streams(kinesis_client, input=2, output=2)
    expected = put_counted(kinesis_client, streams["input"], KEYS, per_key=100)
    job = flink_cluster.run_python_job(JOBS / "keyed_counts.py",
                                       _job_args(forestream_server, streams), parallelism=2)
    rest = flink_cluster.rest
    rest.wait_for_state(job, ["RUNNING"], timeout=180)
    wait_for(lambda: rest.checkpoints(job)["counts"]["completed"] >= 1 and
             sum(_latest(kinesis_client, streams["output"]).values()) > 0,
             "the first checkpoint and output", progress=lambda: rest.job(job)["state"])
    # records keep arriving while a TaskManager that runs the job's tasks is killed
    victim = flink_cluster.task_managers_of(job)[0]
    for batch in range(20):
        expected = put_counted(kinesis_client, streams["input"], KEYS, per_key=50,
                               start=expected)
        if batch == 10:  # the job is writing the counts of this run's records: kill
            wait_for(lambda: sum(_latest(kinesis_client, streams["output"]).values()) >=
                     len(KEYS) * (100 + 5 * 50), "output of the records put meanwhile",
                     progress=lambda: rest.job(job)["state"])
            killed = flink_cluster.kill_task_manager(victim)
            # as a lost machine: the TaskManager's Python workers go with it, none orphaned
            wait_for(lambda k=killed: not session_members(k), "the killed session's processes",
                     stall_seconds=10)
        time.sleep(0.1)
    flink_cluster.start_task_manager(victim)  # the resumed job and later tests get 4 slots
    wait_for(lambda: _latest(kinesis_client, streams["output"]) == expected,
             "every key's final count", stall_seconds=180,
             progress=lambda: sorted(_latest(kinesis_client, streams["output"]).items()))
    metrics = rest.metrics(job)
    restarts = len(rest.exceptions(job)["history"])

    by_key, duplicates = counts_written(kinesis_client, streams["output"])
    assert {key: sorted(values) for key, values in by_key.items()} == \
        {key: list(range(1, total + 1)) for key, total in expected.items()}
    assert restarts >= 1, "the TaskManager's loss should have failed and restarted the job"
    assert metrics["checkpoints"]["completed"] >= 1
    print(f"kill -9 of a TaskManager: {restarts} failure(s), {duplicates} duplicate "
          f"output record(s) dropped by id, of {sum(expected.values())} counts")

    # then stop with a savepoint, more records, and a new job resumed from the savepoint
    savepoint = rest.stop_with_savepoint(job, str(tmp_path / "savepoints"))
    assert rest.wait_for_state(job, ["FINISHED"], timeout=60) == "FINISHED"
    _, repeats_at_stop = counts_written(kinesis_client, streams["output"])
    both = put_counted(kinesis_client, streams["input"], KEYS, per_key=50, start=expected)
    resumed = flink_cluster.run_python_job(JOBS / "keyed_counts.py",
                                           _job_args(forestream_server, streams),
                                           parallelism=2, savepoint=savepoint)
    rest.wait_for_state(resumed, ["RUNNING"], timeout=180)
    wait_for(lambda: _latest(kinesis_client, streams["output"]) == both,
             "the counts after the restore",
             progress=lambda: sorted(_latest(kinesis_client, streams["output"]).items()))
    rest.cancel(resumed)

    by_key, duplicates = counts_written(kinesis_client, streams["output"])
    assert {key: sorted(values) for key, values in by_key.items()} == \
        {key: list(range(1, total + 1)) for key, total in both.items()}
    # stop-with-savepoint flushes the sink and records the sources' positions together:
    # the resumed job repeats nothing (the repeats are all the kill's, counted at the stop)
    assert duplicates == repeats_at_stop


def test_source_emits_the_documented_envelope_and_follows_resharding_in_key_order(
        flink_cluster, forestream_server, kinesis_client):
    streams = new_streams(kinesis_client, input=2, output=1)
    kinesis_client.put_records(StreamName=streams["input"], Records=[
        {"Data": b'{"t": 21.5, "tags": ["a"]}', "PartitionKey": "json"},
        {"Data": b"\xff\x00 not text", "PartitionKey": "binary"},
        {"Data": b"plain words", "PartitionKey": "text"},
        {"Data": b"42", "PartitionKey": "number"},
    ])
    before = put_counted(kinesis_client, streams["input"], KEYS, per_key=20)
    # parallelism 1: one reader reads a parent to its end, then its children; with more
    # readers a parent's last records may still be in flight in another subtask
    job = flink_cluster.run_python_job(JOBS / "echo_envelopes.py",
                                       _job_args(forestream_server, streams), parallelism=1)
    rest = flink_cluster.rest
    rest.wait_for_state(job, ["RUNNING"], timeout=180)
    wait_for(lambda: len(read_all(kinesis_client, streams["output"])) >= 4 + 20 * len(KEYS),
             "the records before the reshard",
             progress=lambda: len(read_all(kinesis_client, streams["output"])))
    kinesis_client.update_shard_count(StreamName=streams["input"], TargetShardCount=4,
                                      ScalingType="UNIFORM_SCALING")
    kinesis_client.get_waiter("stream_exists").wait(StreamName=streams["input"],
                                                    WaiterConfig={"Delay": 0.2})
    after = put_counted(kinesis_client, streams["input"], KEYS, per_key=20, start=before)
    total = 4 + sum(after.values())
    wait_for(lambda: len({json.loads(r["Data"])["_record_id"]
                          for r in read_all(kinesis_client, streams["output"])}) >= total,
             "every record, from parents and children",
             progress=lambda: len(read_all(kinesis_client, streams["output"])))
    rest.cancel(job)

    envelopes = {}
    order: dict[str, list[int]] = {}
    for record in read_all(kinesis_client, streams["output"]):
        envelope = json.loads(record["Data"])
        if envelope["_record_id"] in envelopes:
            continue  # a repeat after a restart (at-least-once)
        envelopes[envelope["_record_id"]] = envelope
        if envelope["partitionKey"] in after:
            order.setdefault(envelope["partitionKey"], []).append(envelope["data"]["i"])
    assert len(envelopes) == total
    by_key = {e["partitionKey"]: e for e in envelopes.values()}
    assert by_key["json"]["data"] == {"t": 21.5, "tags": ["a"]}
    assert by_key["number"]["data"] == 42
    assert base64.b64decode(by_key["binary"]["data"]["b64"]) == b"\xff\x00 not text"
    assert base64.b64decode(by_key["text"]["data"]["b64"]) == b"plain words"
    sample = by_key["json"]
    assert sample["shardId"].startswith("shardId-") and sample["sequenceNumber"].isdigit()
    assert isinstance(sample["arrivalMillis"], int) and sample["arrivalMillis"] > 1.7e12
    # children are read only after their parents are read to the end: per-key order holds
    assert order == {key: list(range(1, n + 1)) for key, n in after.items()}


def test_latest_skips_older_records_and_bad_input_is_refused_naming_the_value(
        flink_cluster, forestream_server, kinesis_client):
    streams = new_streams(kinesis_client, input=1, output=1)
    args = [forestream_server.url, streams["input"], streams["output"]]
    with pytest.raises(FlinkSubmitError,
                       match="startingPosition must be TRIM_HORIZON or LATEST, got 'EARLIEST'"):
        flink_cluster.run_python_job(JOBS / "write_elements.py", [*args, "EARLIEST"])

    # before the job starts: with LATEST this element is never read (it would fail the job)
    kinesis_client.put_record(StreamName=streams["input"], PartitionKey="p",
                              Data=json.dumps({"data": {"early": True}}).encode())
    job = flink_cluster.run_python_job(JOBS / "write_elements.py", [*args, "LATEST"])
    rest = flink_cluster.rest
    rest.wait_for_state(job, ["RUNNING"], timeout=180)
    kinesis_client.put_records(StreamName=streams["input"], Records=[
        {"Data": json.dumps({"data": {"ok": 1}, "partitionKey": "p", "id": "first"}).encode(),
         "PartitionKey": "p"},
        {"Data": json.dumps({"data": {"ok": 2}}).encode(), "PartitionKey": "p"},
    ])
    failure = wait_for(lambda: rest.exceptions(job)["root"], "the job's failure",
                       progress=lambda: rest.job(job)["state"])
    history = rest.exceptions(job)["history"]
    rest.cancel(job)
    assert 'KinesisApiSink cannot write element {"data": {"ok": 2}}: "partitionKey" must be ' \
           "a string of 1 to 256 characters" in failure
    assert not any("early" in str(entry["exception"]) for entry in history)
    # the refused element is never written (the valid one before it may or may not be:
    # the job fails before its batch leaves)
    written = [json.loads(r["Data"]) for r in read_all(kinesis_client, streams["output"])]
    assert all(w == {"ok": 1, "_record_id": "first"} for w in written)


def test_connectors_sign_with_sigv4_for_a_server_with_credentials(
        flink_cluster, server_process, tmp_path):
    import boto3

    key, secret = "flink-key", "flink-secret-value"
    server = server_process(tmp_path / "signed", env={
        "FORESTREAM_ACCESS_KEY_ID": key, "FORESTREAM_SECRET_ACCESS_KEY": secret}).start()
    kinesis = boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id=key, aws_secret_access_key=secret)
    streams = new_streams(kinesis, input=2, output=1)
    written = put_counted(kinesis, streams["input"], KEYS, per_key=5)
    args = [server.url, streams["input"], streams["output"], ""]

    forged = flink_cluster.run_python_job(JOBS / "copy_stream.py",
                                          [*args, key, "not-the-secret"])
    rest = flink_cluster.rest
    failure = wait_for(lambda: rest.exceptions(forged)["root"], "the forged job's failure",
                       progress=lambda: rest.job(forged)["state"])
    rest.cancel(forged)
    assert "InvalidSignatureException" in failure

    job = flink_cluster.run_python_job(JOBS / "copy_stream.py", [*args, key, secret])
    wait_for(lambda: len(read_all(kinesis, streams["output"])) >= sum(written.values()),
             "the copied records", progress=lambda: len(read_all(kinesis, streams["output"])))
    rest.cancel(job)
    copied = [json.loads(r["Data"]) for r in read_all(kinesis, streams["output"])]
    assert {(c["k"], c["i"]) for c in copied} == \
        {(k, i) for k, n in written.items() for i in range(1, n + 1)}



def test_sink_writes_each_elements_bytes_exactly_binary_and_ids_included(
        flink_cluster, forestream_server, kinesis_client):
    """What KinesisApiSink wrote, read back byte for byte: ``{"b64"}`` data is those bytes
    (binary, or JSON text kept with its own spacing; an ``id`` never goes into them), any
    other data is its compact JSON with ``"_record_id": id`` added to objects only."""
    import hashlib
    import random

    streams = new_streams(kinesis_client, input=1, output=2)
    low_half = int(hashlib.md5(b"hashed").hexdigest(), 16) < 2**127
    hash_key = 2**128 - 1 if low_half else 0
    blob = random.Random(7).randbytes(60_000)  # every byte value, across a large record

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode("ascii")

    elements = {  # partition key -> (sink element, the bytes the record must hold)
        "binary": ({"data": {"b64": b64(b"\x00\xff\xfe\x80 not text\n")}, "id": "id-bin"},
                   b"\x00\xff\xfe\x80 not text\n"),
        "large": ({"data": {"b64": b64(blob)}, "id": "id-large"}, blob),
        "json-bytes": ({"data": {"b64": b64(b'{"k": "m1",  "_record_id": "r/0"}')},
                        "id": "ignored"}, b'{"k": "m1",  "_record_id": "r/0"}'),
        "object": ({"data": {"v": 1, "nested": {"a": [1, 2]}, "t": "\u00e9"},
                    "id": "id-obj"},
                   '{"v":1,"nested":{"a":[1,2]},"t":"\u00e9","_record_id":"id-obj"}'.encode()),
        "own-id": ({"data": {"v": 2, "_record_id": "own"}, "id": "other"},
                   b'{"v":2,"_record_id":"own"}'),
        "not-bytes": ({"data": {"b64": "AAEC", "x": 1}, "id": "id-2"},
                      b'{"b64":"AAEC","x":1,"_record_id":"id-2"}'),
        "array": ({"data": [1, "two", None], "id": "id-arr"}, b'[1,"two",null]'),
        "no-id": ({"data": {"v": 3}}, b'{"v":3}'),
        # the hash key sends it to the shard its partition key's MD5 would not pick
        "hashed": ({"data": {"b64": b64(b"\x01")}, "explicitHashKey": str(hash_key)},
                   b"\x01"),
    }
    kinesis_client.put_records(StreamName=streams["input"], Records=[
        {"Data": json.dumps({**element, "partitionKey": key}).encode(), "PartitionKey": key}
        for key, (element, _) in elements.items()])
    job = flink_cluster.run_python_job(
        JOBS / "write_elements.py",
        [forestream_server.url, streams["input"], streams["output"], "TRIM_HORIZON"])
    rest = flink_cluster.rest
    try:
        wait_for(lambda: {r["PartitionKey"] for r in read_all(kinesis_client,
                                                              streams["output"])}
                 >= set(elements), "every element's record",
                 progress=lambda: len(read_all(kinesis_client, streams["output"])))
    finally:
        rest.cancel(job)
    written = {}
    for record in read_all(kinesis_client, streams["output"]):
        written.setdefault(record["PartitionKey"], set()).add(bytes(record["Data"]))
    assert written == {key: {raw} for key, (_, raw) in elements.items()}
    shards = kinesis_client.list_shards(StreamName=streams["output"])["Shards"]
    (target,) = [s for s in shards if int(s["HashKeyRange"]["StartingHashKey"]) <= hash_key
                 <= int(s["HashKeyRange"]["EndingHashKey"])]
    iterator = kinesis_client.get_shard_iterator(
        StreamName=streams["output"], ShardId=target["ShardId"],
        ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    in_target = {r["PartitionKey"] for r in kinesis_client.get_records(
        ShardIterator=iterator, Limit=10000)["Records"]}
    assert "hashed" in in_target
