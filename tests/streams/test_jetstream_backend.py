"""Streams on a NATS JetStream cluster (3 nodes, 3 replicas) served by two stateless
``forestream server`` front ends: the Kinesis API through either, the same streams
through both, and no acknowledged record lost or duplicated when a node is killed.

The Kinesis API tests of test_kinesis_api.py run here again, on the cluster (those that
start servers of their own, or read one front end's metrics, run on the data directory
only); test_kinesis_conformance.py runs on both backends itself.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import threading
import time
import urllib.request

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config
from test_kinesis_api import (  # noqa: F401 - collected again, on the JetStream backend
    test_cbor_requests_as_the_java_sdk_sends_them,
    test_errors_use_aws_shapes,
    test_members_forestream_does_not_take_are_refused_by_name,
    test_pagination_walks_every_page,
    test_put_get_round_trip_with_every_iterator_type,
    test_remaining_operations_mode_monitoring_resource_tags_describe_paging,
    test_resharding_lineage_and_child_shards,
    test_stream_lifecycle_with_waiters,
    test_subscribe_to_shard_streams_events,
    test_tags_retention_encryption_monitoring_limits,
)

from forestream.streams.jetstream.local_cluster import JetStreamCluster
from server_support import ServerProcess

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("jetstream")
    nodes = JetStreamCluster(root / "nats", nodes=3).start()
    yield nodes
    nodes.stop()


@pytest.fixture(scope="module")
def frontends(cluster, tmp_path_factory):
    """Two front ends on the cluster, sharing the master key that wraps stream keys."""
    root = tmp_path_factory.mktemp("frontends")
    key = root / "streams.key"
    key.write_bytes(secrets.token_bytes(32))
    env = {"FORESTREAM_STREAMS": cluster.url, "FORESTREAM_STREAMS_REPLICAS": "3",
           "FORESTREAM_STREAMS_KEY_FILE": str(key)}
    started = [ServerProcess(root / name, env=env).start() for name in ("a", "b")]
    yield started
    for proc in started:
        proc.stop()


def client(server, attempts: int = 1):
    return boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": attempts, "mode": "standard"}))


@pytest.fixture
def server(frontends):
    yield frontends[0]
    kinesis = client(frontends[0], attempts=10)  # the cluster may still be recovering
    for name in kinesis.list_streams()["StreamNames"]:  # the next test starts empty
        with contextlib.suppress(kinesis.exceptions.ResourceNotFoundException):
            # (a retried delete whose first attempt went through finds nothing)
            kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
    for name in kinesis.list_streams()["StreamNames"]:  # DELETING for a moment, then gone
        kinesis.get_waiter("stream_not_exists").wait(StreamName=name,
                                                     WaiterConfig={"Delay": 0.1})


@pytest.fixture
def kinesis(server, frontends):
    """boto3 through the second front end: the Kinesis API tests that also send raw
    requests (to ``server``, the first) go through two front ends of one cluster."""
    return client(frontends[1])


def wait_active(kinesis, name):
    kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                             WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


def read_all(kinesis, stream):
    """Every record of every shard (parents first), through ``kinesis``."""
    shards = sorted(kinesis.list_shards(StreamName=stream)["Shards"],
                    key=lambda s: int(s["ShardId"].split("-")[1]))
    out = []
    for shard in shards:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            out += page["Records"]
            if not page["Records"] and page["MillisBehindLatest"] == 0:
                break
            iterator = page.get("NextShardIterator")
    return out


def test_two_front_ends_serve_the_same_streams(server, frontends):
    a, b = client(frontends[0]), client(frontends[1])
    a.create_stream(StreamName="orders.eu", ShardCount=2)
    wait_active(b, "orders.eu")  # created on one, seen on the other at once
    assert b.list_streams()["StreamNames"] == ["orders.eu"]
    put = b.put_records(StreamName="orders.eu", Records=[
        {"Data": f"r{i}".encode(), "PartitionKey": f"k{i}"} for i in range(40)])
    assert put["FailedRecordCount"] == 0
    # an iterator from one front end reads on the other
    shard = put["Records"][0]["ShardId"]
    iterator = a.get_shard_iterator(StreamName="orders.eu", ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = b.get_records(ShardIterator=iterator)
    assert page["Records"] and all(r["SequenceNumber"] for r in page["Records"])
    assert sorted(r["Data"] for r in read_all(a, "orders.eu")) == \
        sorted(f"r{i}".encode() for i in range(40))

    # resharding through one front end: the other routes new records to the children
    parent = a.list_shards(StreamName="orders.eu")["Shards"][0]
    low = int(parent["HashKeyRange"]["StartingHashKey"])
    high = int(parent["HashKeyRange"]["EndingHashKey"])
    a.split_shard(StreamName="orders.eu", ShardToSplit=parent["ShardId"],
                  NewStartingHashKey=str((low + high) // 2))
    wait_active(b, "orders.eu")
    shards = b.list_shards(StreamName="orders.eu")["Shards"]
    assert len(shards) == 4
    closed = [s for s in shards if "EndingSequenceNumber" in s["SequenceNumberRange"]]
    assert [s["ShardId"] for s in closed] == [parent["ShardId"]]
    again = b.put_records(StreamName="orders.eu", Records=[
        {"Data": f"q{i}".encode(), "PartitionKey": f"k{i}"} for i in range(40)])
    assert again["FailedRecordCount"] == 0
    assert parent["ShardId"] not in {r["ShardId"] for r in again["Records"]}
    assert len(read_all(b, "orders.eu")) == 80

    b.delete_stream(StreamName="orders.eu")
    a.get_waiter("stream_not_exists").wait(StreamName="orders.eu", WaiterConfig={"Delay": 0.1})
    assert a.list_streams()["StreamNames"] == []


def test_encryption_keys_are_shared_and_records_sealed_before_the_cluster(
        server, frontends, cluster):
    a, b = client(frontends[0]), client(frontends[1])
    a.create_stream(StreamName="secret", ShardCount=1)
    wait_active(a, "secret")
    a.start_stream_encryption(StreamName="secret", EncryptionType="KMS",
                              KeyId="alias/aws/kinesis")
    wait_active(b, "secret")
    marker = b"a-very-recognisable-plaintext-" + secrets.token_hex(8).encode()
    b.put_record(StreamName="secret", Data=marker, PartitionKey="k")
    records = read_all(a, "secret")
    assert [r["Data"] for r in records] == [marker]
    assert records[0]["EncryptionType"] == "KMS"
    # the cluster's files hold the sealed record, not the plaintext
    stored = b"".join(p.read_bytes() for p in cluster.root.rglob("*.blk"))
    assert marker not in stored


def test_concurrent_splits_of_one_shard_leave_one_lineage(server, frontends):
    a, b = client(frontends[0]), client(frontends[1])
    a.create_stream(StreamName="race", ShardCount=1)
    wait_active(b, "race")
    shard = a.list_shards(StreamName="race")["Shards"][0]
    middle = str(int(shard["HashKeyRange"]["EndingHashKey"]) // 2)
    outcomes = []

    def split(kinesis):
        try:
            kinesis.split_shard(StreamName="race", ShardToSplit=shard["ShardId"],
                                NewStartingHashKey=middle)
            outcomes.append("ok")
        except botocore.exceptions.ClientError as exc:
            outcomes.append(exc.response["Error"]["Code"])
    threads = [threading.Thread(target=split, args=(k,)) for k in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes.count("ok") == 1, outcomes
    assert set(outcomes) - {"ok"} <= {"ResourceInUseException", "LimitExceededException"}
    wait_active(a, "race")
    shards = b.list_shards(StreamName="race")["Shards"]
    children = [s for s in shards if s.get("ParentShardId") == shard["ShardId"]]
    assert len(shards) == 3 and len(children) == 2
    ranges = sorted((int(s["HashKeyRange"]["StartingHashKey"]),
                     int(s["HashKeyRange"]["EndingHashKey"])) for s in children)
    assert ranges[0][1] + 1 == ranges[1][0]  # the children tile the parent's range


def test_no_acknowledged_record_is_lost_or_duplicated_when_a_node_is_killed(
        server, frontends, cluster):
    a, b = client(frontends[0], attempts=8), client(frontends[1], attempts=8)
    a.create_stream(StreamName="durable", ShardCount=2)
    wait_active(a, "durable")
    acked: list[str] = []
    stop = threading.Event()
    errors: list[str] = []

    gaps: list[float] = []

    def produce(kinesis, tag):
        n, last = 0, time.monotonic()
        while not stop.is_set():
            batch = [{"Data": json.dumps({"id": f"{tag}-{n + i}"}).encode(),
                      "PartitionKey": f"{tag}{n + i}"} for i in range(20)]
            try:
                out = kinesis.put_records(StreamName="durable", Records=batch)
            except botocore.exceptions.ClientError as exc:
                errors.append(exc.response["Error"]["Code"])
                continue
            except botocore.exceptions.BotoCoreError as exc:
                errors.append(type(exc).__name__)
                continue
            acked.extend(json.loads(rec["Data"])["id"] for rec, res in
                         zip(batch, out["Records"], strict=True) if "SequenceNumber" in res)
            now = time.monotonic()
            gaps.append(now - last)  # how long this producer waited for an acknowledgement
            last = now
            n += 20
    producers = [threading.Thread(target=produce, args=(k, t)) for k, t in ((a, "a"), (b, "b"))]
    for t in producers:
        t.start()
    time.sleep(1.5)
    leader = cluster.leader_of("forestream_durable_0")  # shard 0's stream
    assert leader is not None
    cluster.kill(leader)  # its leader dies: the stream fails over to a follower
    time.sleep(4.0)
    follower = next(i for i in range(3) if i != leader)
    cluster.restart(leader)
    cluster.kill(follower)  # then a follower (the other shard may lead there)
    time.sleep(2.0)
    cluster.restart(follower)
    time.sleep(1.0)
    stop.set()
    for t in producers:
        t.join(60)
    stored = [json.loads(r["Data"])["id"] for r in read_all(a, "durable")]
    print(f"acked {len(acked)}, stored {len(stored)}, client errors {errors[:5]} "
          f"({len(errors)}), longest wait for an acknowledgement {max(gaps):.2f} s")
    assert len(acked) > 100
    assert len(stored) == len(set(stored)), "a record was stored twice"
    assert set(acked) <= set(stored), "an acknowledged record was lost"


def test_a_consumer_registered_on_one_front_end_subscribes_through_another(
        server, frontends):
    a, b = client(frontends[0]), client(frontends[1])
    a.create_stream(StreamName="fan", ShardCount=1)
    wait_active(a, "fan")
    arn = a.describe_stream_summary(StreamName="fan")["StreamDescriptionSummary"]["StreamARN"]
    consumer = a.register_stream_consumer(StreamARN=arn, ConsumerName="c1")["Consumer"]
    deadline = time.monotonic() + 10
    while b.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])[
            "ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    response = b.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"],
                                    ShardId="shardId-000000000000",
                                    StartingPosition={"Type": "LATEST"})
    got: list[bytes] = []

    def put_later():  # live records, put through the other front end
        time.sleep(0.5)
        for i in range(5):
            a.put_record(StreamName="fan", Data=b"e%d" % i, PartitionKey="k")
    thread = threading.Thread(target=put_later)
    thread.start()
    for event in response["EventStream"]:
        got += [r["Data"] for r in event["SubscribeToShardEvent"]["Records"]]
        if len(got) >= 5:
            break
    response["EventStream"].close()
    thread.join()
    assert got == [b"e%d" % i for i in range(5)]


APP = '''
from forestream.processing import kinesis_client

def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("readings", client)
        .key_by(lambda e: e["k"])
        .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
        .sink_to_kinesis("totals", client))
'''


def test_an_application_runs_unchanged_on_the_cluster(server, frontends, tmp_path):
    """A keyed job (its worker reads, checkpoints and writes through its front end)."""
    from forestream.processing.kinesis_io import read_records

    a, b = client(frontends[0]), client(frontends[1])
    for name in ("readings", "totals"):
        a.create_stream(StreamName=name, ShardCount=2)
        wait_active(a, name)
    body = {"name": "totals", "code": {"filename": "job.py", "text": APP},
            "checkpoint_interval": 1.0}
    front = frontends[0]
    for path, data in (("", body), ("/totals/start", {})):
        request = front.request(f"/api/v1/applications{path}", json.dumps(data).encode(),
                                "POST", {"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=120).read()
    b.put_records(StreamName="readings", Records=[
        {"Data": json.dumps({"k": k, "n": 1}).encode(), "PartitionKey": k}
        for k in ("x", "y", "z") * 20])
    deadline = time.monotonic() + 90
    while True:
        latest: dict[str, int] = {}
        for record in read_records(b, "totals"):
            value = json.loads(record["Data"])
            latest[value["k"]] = max(latest.get(value["k"], 0), value["n"])
        if latest == {"x": 20, "y": 20, "z": 20}:
            break
        assert time.monotonic() < deadline, latest
        time.sleep(0.5)
    stop = front.request("/api/v1/applications/totals/stop", json.dumps({}).encode(),
                         "POST", {"Content-Type": "application/json"})
    urllib.request.urlopen(stop, timeout=120).read()


def test_when_a_front_end_dies_its_clients_move_to_another(server, frontends):
    """Front ends hold no state: a producer whose front end is killed goes on through
    another, and every acknowledged record is there once."""
    a, b = client(frontends[0], attempts=8), client(frontends[1], attempts=1)
    a.create_stream(StreamName="moving", ShardCount=1)
    wait_active(a, "moving")
    acked: list[str] = []
    current, n = b, 0
    killed_at = None
    while len(acked) < 400:
        batch = [{"Data": json.dumps({"id": n + i}).encode(), "PartitionKey": str(n + i)}
                 for i in range(20)]
        try:
            out = current.put_records(StreamName="moving", Records=batch)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            current = a  # this front end is gone: the next one (records resent, new ids)
            n += 20
            continue
        acked += [json.loads(r["Data"])["id"] for r, res in
                  zip(batch, out["Records"], strict=True) if "SequenceNumber" in res]
        n += 20
        if killed_at is None and len(acked) >= 200:
            frontends[1].kill()
            killed_at = len(acked)
    frontends[1].start()  # back for whatever runs next
    stored = [json.loads(r["Data"])["id"] for r in read_all(a, "moving")]
    assert killed_at is not None and current is a
    assert len(stored) == len(set(stored))
    assert set(acked) <= set(stored)


def test_retention_drops_records_older_than_the_horizon_from_the_cluster(cluster):
    """What each front end's retention sweep does to a shard: records that arrived before
    the horizon are purged on every replica, the shard's start moves past them, and a
    second sweep (another front end's) drops nothing more."""
    from forestream.streams.jetstream.bridge import NatsBridge
    from forestream.streams.jetstream.shard_log import JetStreamApi, JetStreamShardLog

    bridge = NatsBridge(cluster.urls)
    log = JetStreamShardLog(JetStreamApi(bridge), "retention", "aged", 0, replicas=3)
    try:
        log.append([(b"k", b"old%d" % i) for i in range(5)])
        time.sleep(0.1)
        horizon = int(time.time() * 1000)
        time.sleep(0.1)
        log.append([(b"k", b"new%d" % i) for i in range(3)])
        assert log.delete_before(horizon) == 5
        assert (log.start_offset, log.next_offset) == (5, 8)
        assert [r.value for r in log.read(0)] == [b"new0", b"new1", b"new2"]
        assert log.offset_at_time(horizon) == 5
        assert log.delete_before(horizon) == 0
    finally:
        log.delete()
        bridge.close()


def test_a_stream_created_through_one_front_end_is_found_at_once_through_another(
        server, frontends):
    """The other front end's mirror of the metadata may lag its watch: a request naming
    a stream it has not seen yet reads the bucket before answering ResourceNotFound."""
    a, b = client(frontends[0]), client(frontends[1])
    for i in range(10):
        a.create_stream(StreamName=f"fresh{i}", ShardCount=1)
        summary = b.describe_stream_summary(StreamName=f"fresh{i}")
        assert summary["StreamDescriptionSummary"]["StreamName"] == f"fresh{i}"
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        b.describe_stream_summary(StreamName="never-made")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_large_put_records_through_the_fast_path_are_stored_on_the_cluster(server, frontends):
    """A PutRecords of 500 x 1 KiB takes the front end's fast path (its metric counts
    the call) and every record, with its key and sequence number, reads back whole
    through the other front end."""
    writer, reader = client(frontends[1], attempts=5), client(frontends[0], attempts=5)
    writer.create_stream(StreamName="batched", ShardCount=2)
    wait_active(writer, "batched")
    records = [{"Data": secrets.token_bytes(1024), "PartitionKey": f"k{i}"}
               for i in range(500)]
    answers, deadline = [], time.monotonic() + 120  # the first call loads the kernels
    while True:
        answers.append(writer.put_records(StreamName="batched", Records=records))
        metrics = urllib.request.urlopen(frontends[1].request("/metrics")).read().decode()
        if "forestream_put_records_batched_total 0" not in metrics:
            break
        assert time.monotonic() < deadline, "the fast path never took a call"
        time.sleep(0.5)
    stored = {r["SequenceNumber"]: (r["PartitionKey"], r["Data"])
              for r in read_all(reader, "batched")}
    assert len(stored) == 500 * len(answers)
    for answer in answers:
        assert answer["FailedRecordCount"] == 0
        for record, result in zip(records, answer["Records"], strict=True):
            assert stored[result["SequenceNumber"]] == (record["PartitionKey"],
                                                        record["Data"])
