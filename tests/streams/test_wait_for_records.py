"""Waiting for records instead of polling: StreamStore.wait_for_records, the server's
POST /api/v1/streams/wait, and jobs that wake the moment a record arrives."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from forestream.processing import StreamExecutionEnvironment
from forestream.processing.kinesis_io import ClientKinesis, RecordWaiter, kinesis_client
from forestream.streams.errors import InvalidArgumentError, ResourceNotFoundError
from forestream.streams.store import StreamStore


@pytest.fixture
def store(tmp_path):
    s = StreamStore(tmp_path / "data", fsync=False, status_delay=0.0)
    s.create_stream(stream_name="s", shard_count=2)
    yield s
    s.close()


def shard_ids(store, name="s"):
    return [sh["ShardId"] for sh in store.list_shards(stream_name=name)["Shards"]]


def put_later(store, delay, key="k", name="s"):
    def put():
        time.sleep(delay)
        store.put_record(stream_name=name, data=b"x", partition_key=key)
    thread = threading.Thread(target=put)
    thread.start()
    return thread


def test_wait_returns_at_once_when_records_are_there(store):
    out = store.put_record(stream_name="s", data=b"x", partition_key="k")
    a, b = shard_ids(store)
    started = time.monotonic()
    ready = store.wait_for_records({"s": {a: None, b: None}}, timeout=5)
    assert ready == {"s": [out["ShardId"]]}
    assert time.monotonic() - started < 1
    # after that record, nothing more: the wait times out empty
    ready = store.wait_for_records({"s": {out["ShardId"]: out["SequenceNumber"]}}, 0.2)
    assert ready == {}


def test_wait_wakes_on_arrival(store):
    first = store.put_record(stream_name="s", data=b"x", partition_key="k")
    shard = first["ShardId"]
    thread = put_later(store, 0.3)
    started = time.monotonic()
    ready = store.wait_for_records({"s": {shard: first["SequenceNumber"]}}, timeout=10)
    waited = time.monotonic() - started
    thread.join()
    assert ready == {"s": [shard]}
    assert 0.25 < waited < 5


def test_wait_ignores_other_shards_and_streams(store):
    store.create_stream(stream_name="other", shard_count=1)
    first = store.put_record(stream_name="s", data=b"x", partition_key="k")
    other_shard = [s for s in shard_ids(store) if s != first["ShardId"]][0]
    thread = put_later(store, 0.05, name="other")  # wakes the waiter, which waits on
    ready = store.wait_for_records({"s": {first["ShardId"]: first["SequenceNumber"],
                                          other_shard: None}}, timeout=0.5)
    thread.join()
    assert ready == {}


def test_wait_names_bad_streams_shards_and_positions(store):
    first = store.put_record(stream_name="s", data=b"x", partition_key="k")
    other = [s for s in shard_ids(store) if s != first["ShardId"]][0]
    with pytest.raises(ResourceNotFoundError, match="nope"):
        store.wait_for_records({"nope": {other: None}}, 0.1)
    with pytest.raises(ResourceNotFoundError, match="shardId-000000000099"):
        store.wait_for_records({"s": {"shardId-000000000099": None}}, 0.1)
    with pytest.raises(InvalidArgumentError, match=other):
        store.wait_for_records({"s": {other: first["SequenceNumber"]}}, 0.1)


def post_wait(server, body, timeout=30):
    request = server.request("/api/v1/streams/wait", json.dumps(body).encode(), "POST",
                             {"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def problem(server, body):
    with pytest.raises(urllib.error.HTTPError) as exc:
        post_wait(server, body)
    return exc.value.code, json.loads(exc.value.read())


@pytest.mark.service
def test_server_wait_long_polls(server, kinesis):
    kinesis.create_stream(StreamName="w", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="w",
                                             WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    shard = kinesis.list_shards(StreamName="w")["Shards"][0]["ShardId"]
    started = time.monotonic()
    assert post_wait(server, {"streams": {"w": {shard: None}}, "timeout_ms": 300}) == \
        (200, {"ready": {}})
    assert time.monotonic() - started >= 0.25

    def put():
        time.sleep(0.4)
        kinesis.put_record(StreamName="w", Data=b"x", PartitionKey="k")
    thread = threading.Thread(target=put)
    thread.start()
    started = time.monotonic()
    status, answer = post_wait(server, {"streams": {"w": {shard: None}}, "timeout_ms": 10000})
    waited = time.monotonic() - started
    thread.join()
    assert answer == {"ready": {"w": [shard]}} and 0.3 < waited < 5

    # the client workers use: one kept-alive connection, the server's token
    waiter = RecordWaiter.for_endpoint(server.url)
    seq = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
        StreamName="w", ShardId=shard, ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    )["Records"][-1]["SequenceNumber"]
    import os
    os.environ["FORESTREAM_TOKEN"] = server.token
    try:
        assert waiter.wait({"w": {shard: seq}}, 0.2) == {}
        assert waiter.wait({"w": {shard: None}}, 0.2) == {"w": [shard]}
    finally:
        del os.environ["FORESTREAM_TOKEN"]
        waiter.close()


@pytest.mark.service
def test_server_wait_refuses_bad_bodies(server, kinesis):
    kinesis.create_stream(StreamName="w", ShardCount=1)
    shard = "shardId-000000000000"
    for body, named in [
            ({}, "'streams'"),
            ({"streams": []}, "'streams'"),
            ({"streams": {"w": {}}}, "streams['w']"),
            ({"streams": {"w": {shard: 12}}}, "must be a sequence number"),
            ({"streams": {"w": {shard: None}}, "timeout_ms": 20001}, "0 to 20000"),
            ({"streams": {"w": {shard: None}}, "timeout_ms": "5"}, "timeout_ms"),
            ({"streams": {"missing": {shard: None}}}, "missing"),
            ({"streams": {"w": {"shardId-000000000007": None}}}, "shardId-000000000007")]:
        status, answer = problem(server, body)
        assert status in (400, 404), (body, answer)
        assert named in answer["detail"], (body, answer)
    # no token, no answer
    request = urllib.request.Request(server.url + "/api/v1/streams/wait", b"{}",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=10)
    assert exc.value.code == 401


def test_waiter_only_for_this_machine_or_its_own_server(monkeypatch):
    monkeypatch.delenv("FORESTREAM_ENDPOINT_URL", raising=False)
    assert RecordWaiter.for_endpoint("https://kinesis.us-east-1.amazonaws.com") is None
    assert RecordWaiter.for_endpoint("http://kinesis.example.com:4567") is None
    assert RecordWaiter.for_endpoint("http://127.0.0.1:4567") is not None
    monkeypatch.setenv("FORESTREAM_ENDPOINT_URL", "http://streams.internal:4567")
    assert RecordWaiter.for_endpoint("http://streams.internal:4567") is not None
    assert RecordWaiter.for_endpoint("http://streams.internal:9999") is None


def test_a_job_wakes_on_arrival_not_on_a_poll_timer(store):
    """A job on a StreamStore idles in a wait that a record ends: its reaction time is
    well under a poll interval, and it does not spin while idle."""
    env = StreamExecutionEnvironment()
    seen = []
    (env.from_kinesis("s", store)
     .map(lambda v: seen.append((v["t"], time.monotonic())) or v))
    done = threading.Event()

    def feed():
        time.sleep(0.5)  # the job is idle, waiting
        for i in range(20):
            store.put_record(stream_name="s", data=json.dumps({"t": time.monotonic()}).encode(),
                             partition_key=str(i))
            time.sleep(0.03)
        done.set()
    thread = threading.Thread(target=feed)
    thread.start()
    result = env.execute(until=lambda: done.is_set() and len(seen) >= 20, max_seconds=30)
    thread.join()
    delays = sorted(got - sent for sent, got in seen)
    assert len(delays) == 20
    # the median: woken (well under 1 ms here), not polled (~25 ms with a 50 ms sleep)
    assert delays[len(delays) // 2] < 0.015, delays
    # idle for 0.5 s before the first record: a wait, not ~10 polls a second per shard
    assert result.steps < 200


def test_client_kinesis_falls_back_where_it_cannot_wait(monkeypatch):
    monkeypatch.delenv("FORESTREAM_ENDPOINT_URL", raising=False)
    api = ClientKinesis(kinesis_client("https://kinesis.eu-west-1.amazonaws.com"))
    assert api.wait_for_records({"s": {"shardId-000000000000": None}}, 0.1) is None


def test_records_behind_counts_what_a_reader_has_not_read(store):
    a, b = shard_ids(store)
    out = store.put_records(stream_name="s", records=[
        {"Data": b"x", "PartitionKey": "k", "ExplicitHashKey": "0"} for _ in range(5)])
    sequences = [r["SequenceNumber"] for r in out["Records"]]
    assert store.records_behind("s", a, None) == 5
    assert store.records_behind("s", a, sequences[1]) == 3
    assert store.records_behind("s", a, sequences[-1]) == 0
    assert store.records_behind("s", b, None) == 0
    with pytest.raises(InvalidArgumentError, match=b):
        store.records_behind("s", b, sequences[0])
