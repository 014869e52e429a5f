"""PutRecords' fast path (``forestream.server.aws.fast_put_records``) answers and stores
exactly what the general path (orjson, the model's walk, ``put_records``) does.

Two Kinesis fronts, one with the fast path and one without, each on its own store,
get the same requests in the same order: plain bodies (which the fast path takes),
unusual ones (which it hands to the general path) and bad ones (refused in AWS's
words). Their answers must be byte for byte the same (less the request ids), and so
must what they stored: every record's key, data and sequence number, the segment
files' frames (less the arrival time) and their sparse indexes, and the metrics.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import struct
import time
import urllib.error
import urllib.request
import zlib

import pytest

from aws_signing import signed_headers
from forestream.server.aws.fast_put_records import MIN_BODY_BYTES, FastPutRecords
from forestream.server.aws.kinesis import kinesis_protocol, kinesis_shapes
from forestream.server.metrics import Metrics
from forestream.streams.hashing import MAX_HASH_KEY
from forestream.streams.segment_log import SegmentLog
from forestream.streams.store import StreamStore

JSON = "application/x-amz-json-1.1"
TARGET = "Kinesis_20131202.PutRecords"
ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s"


class Front:
    """A store, its metrics and the Kinesis protocol over them."""

    def __init__(self, root, fast: bool) -> None:
        self.store = StreamStore(root, fsync=True, status_delay=0)
        self.store.create_stream("s", 4)
        self.store.create_stream("one", 1)
        self.metrics = Metrics()
        self.protocol = kinesis_protocol(self.store, self.metrics, require_signature=False,
                                         fast_put_records=fast)
        self.fast = self.protocol.operations["PutRecords"].fast
        if self.fast is not None:
            self.fast.min_body = 0  # small bodies too (a server takes large ones only)

    def call(self, body: bytes, media: str = JSON) -> tuple[int, bytes, str | None]:
        headers = {"content-type": media, "x-amz-target": TARGET}
        reply = asyncio.run(self.protocol.respond({}, headers, body))
        return reply.status, reply.body, reply.headers.get("x-amzn-ErrorType")


@pytest.fixture(scope="module")
def fronts(tmp_path_factory):
    fast = Front(tmp_path_factory.mktemp("fast"), fast=True)
    general = Front(tmp_path_factory.mktemp("general"), fast=False)
    assert general.fast is None
    assert fast.fast is not None and fast.fast.wait_ready(), "the kernels did not load"
    yield fast, general
    fast.store.close()
    general.store.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def entries(count: int, size: int = 100, seed: int = 0, **extra) -> list[dict]:
    rng = random.Random(seed)
    return [{"Data": b64(rng.randbytes(size)), "PartitionKey": f"key-{seed}-{i}", **extra}
            for i in range(count)]


def body(records, stream: str | None = "s", compact: bool = False, **extra) -> bytes:
    document = {} if stream is None else {"StreamName": stream}
    document.update(extra)
    document["Records"] = records
    return json.dumps(document, separators=(",", ":") if compact else None).encode()


#: bodies the fast path takes: the plain form, as SDKs write it
PLAIN = {
    "boto3 spacing": body(entries(50, seed=1)),
    "compact": body(entries(500, size=1024, seed=2), compact=True),
    "members reordered, whitespace": body([{"PartitionKey": "k ~", "Data": b64(b"x" * 7)},
                                           {"Data": "", "PartitionKey": " p q "}],
                                          ).replace(b"{", b"{ \n").replace(b":", b" :\r\n"),
    "stream ARN": json.dumps({"Records": entries(20, seed=3), "StreamARN": ARN}).encode(),
    "explicit hash keys": body([{"Data": b64(b"a"), "PartitionKey": "k",
                                 "ExplicitHashKey": str(h)}
                                for h in (0, 1, MAX_HASH_KEY, 2**126, 2**127 + 5)]),
    "every padding": body([{"Data": b64(bytes(range(n))), "PartitionKey": str(n)}
                           for n in range(0, 40)]),
    "one shard": body(entries(30, seed=4), stream="one"),
    "only empty data": body([{"Data": "", "PartitionKey": "e"}] * 3),
    "large records": body(entries(3, size=300_000, seed=5)),
}

#: bodies the fast path hands to the general path (which may take or refuse them)
UNUSUAL = {
    "escaped key": b'{"StreamName": "s", "Records": [{"Data": "QQ==", '
                   b'"PartitionKey": "\\u0041"}]}',
    "escaped slash in data": b'{"StreamName": "s", "Records": [{"Data": "a\\/8=", '
                             b'"PartitionKey": "k"}]}',
    "escaped quote in data": b'{"StreamName": "s", "Records": [{"Data": "QUJ\\", '
                             b'\\"PartitionKey\\": \\"k\\"", "PartitionKey": "k"}]}',
    "raw tab in data": b'{"StreamName": "s", "Records": [{"Data": "QU\tJD", '
                       b'"PartitionKey": "k"}]}',
    "unicode key": body([{"Data": "QQ==", "PartitionKey": "cl\u00e9"}]),
    "non-canonical base64": body([{"Data": "QR==", "PartitionKey": "k"}]),
    "bad base64 character": body([{"Data": "Q!==", "PartitionKey": "k"}]),
    "base64 without padding": body([{"Data": "QQ", "PartitionKey": "k"}]),
    "padding inside": body([{"Data": "QQ==QUJD", "PartitionKey": "k"}]),
    "too long key": body([{"Data": "QQ==", "PartitionKey": "k" * 257}]),
    "empty key": body([{"Data": "QQ==", "PartitionKey": ""}]),
    "missing key": body([{"Data": "QQ=="}]),
    "missing data": body([{"PartitionKey": "k"}]),
    "null data": body([{"Data": None, "PartitionKey": "k"}]),
    "data not a string": body([{"Data": 5, "PartitionKey": "k"}]),
    "too many records": body(entries(501, size=10, seed=6)),
    "no records": body([]),
    "records not a list": body({"Data": "QQ==", "PartitionKey": "k"}),
    "unknown entry member": body([{"Data": "QQ==", "PartitionKey": "k", "Extra": "x"}]),
    "unknown member": body(entries(2), StreamId="x"),
    "dry run": body(entries(2), DryRun=True),
    "member twice": b'{"StreamName": "s", "Records": [{"Data": "QQ==", "Data": "QUI=", '
                    b'"PartitionKey": "k"}]}',
    "stream name twice": b'{"StreamName": "x", "StreamName": "s", "Records": '
                         b'[{"Data": "QQ==", "PartitionKey": "k"}]}',
    "bad stream name": body(entries(2), stream="no spaces allowed"),
    "long stream name": body(entries(2), stream="s" * 129),
    "bad ARN": json.dumps({"Records": entries(2), "StreamARN": "arn:nope"}).encode(),
    "hash key with leading zero": body([{"Data": "QQ==", "PartitionKey": "k",
                                         "ExplicitHashKey": "01"}]),
    "hash key not digits": body([{"Data": "QQ==", "PartitionKey": "k",
                                  "ExplicitHashKey": "12a"}]),
    "hash key of 40 digits": body([{"Data": "QQ==", "PartitionKey": "k",
                                    "ExplicitHashKey": "1" * 40}]),
    "trailing garbage": body(entries(2)) + b" x",
    "not an object": b'[1, 2]',
    "not JSON": b'{"StreamName": "s", "Records": [',
}

#: plain bodies the fast path takes, that the store refuses (the same errors either way)
REFUSED_BY_STORE = {
    "no such stream": body(entries(3), stream="missing"),
    "no stream named": body(entries(3), stream=None),
    "both name and ARN of different streams": body(entries(3), stream="one",
                                                    StreamARN=ARN),
    "hash key above 2^128-1": body([{"Data": "QQ==", "PartitionKey": "k",
                                     "ExplicitHashKey": str(MAX_HASH_KEY + 1)}]),
    "a record over 1 MiB among good ones": body(
        entries(2, seed=8) + entries(1, size=1024 * 1024, seed=9) + entries(2, seed=10)),
    "over 10 MiB in all": body(entries(11, size=1000 * 1000, seed=11)),
    "record over the size limit": body(entries(1, size=1024 * 1024 + 1, seed=7)),
}


def test_plain_bodies_take_the_fast_path_and_unusual_ones_do_not(fronts):
    fast, _ = fronts
    for name, request in {**PLAIN, **REFUSED_BY_STORE}.items():
        assert fast.fast.parse(request) is not None, name
    for name, request in UNUSUAL.items():
        assert fast.fast.parse(request) is None, name


def test_small_bodies_go_the_general_way_on_a_server(fronts, tmp_path):
    front = Front(tmp_path / "small", fast=True)
    served = FastPutRecords(front.store, kinesis_shapes())  # as a server makes it
    assert served.wait_ready()
    small = body(entries(3, seed=13))
    assert len(small) < MIN_BODY_BYTES and served(small) is None
    assert served(PLAIN["compact"]) is not None
    front.store.close()


@pytest.mark.parametrize("name", [*PLAIN, *UNUSUAL, *REFUSED_BY_STORE])
def test_the_same_answer_either_way(fronts, name):
    request = {**PLAIN, **UNUSUAL, **REFUSED_BY_STORE}[name]
    fast, general = fronts
    got, want = fast.call(request), general.call(request)
    assert got == want
    if name in PLAIN:
        assert got[0] == 200 and json.loads(got[1])["FailedRecordCount"] == 0


def test_cbor_bodies_go_the_general_way(fronts):
    cbor2 = pytest.importorskip("cbor2")
    fast, general = fronts
    request = cbor2.dumps({"StreamName": "s", "Records": [
        {"Data": b"raw bytes", "PartitionKey": "cbor"}]})
    got = fast.call(request, media="application/x-amz-cbor-1.1")
    assert got == general.call(request, media="application/x-amz-cbor-1.1")
    assert got[0] == 200


def test_the_same_records_frames_and_indexes_are_stored(fronts):
    fast, general = fronts
    for seed in range(3):  # more traffic, so segments hold many index entries
        for request in (body(entries(400, size=700, seed=100 + seed)),
                        body(entries(40, size=700, seed=200 + seed), stream="one")):
            assert fast.call(request) == general.call(request)
    for stream, shards in (("s", 4), ("one", 1)):
        for number in range(shards):
            logs = [front.store._records.catalog.log(stream, number)
                    for front in (fast, general)]
            assert isinstance(logs[0], SegmentLog)
            got, want = (log.read(0, 100_000, 1 << 30) for log in logs)
            assert [(r.offset, r.key, r.value) for r in got] == \
                [(r.offset, r.key, r.value) for r in want]
            assert got, f"nothing stored in {stream}/{number}"
            for a, b in zip(logs[0]._segments, logs[1]._segments, strict=True):
                assert _frames(a.log_path) == _frames(b.log_path)
                assert list(a.index.offsets) == list(b.index.offsets)
                assert list(a.index.positions) == list(b.index.positions)
                assert _index_file(a.idx_path) == _index_file(b.idx_path)
    assert dict(fast.metrics.shard_records_in) == dict(general.metrics.shard_records_in)
    assert dict(fast.metrics.shard_bytes_in) == dict(general.metrics.shard_bytes_in)
    assert (fast.metrics.records_in, fast.metrics.bytes_in) == \
        (general.metrics.records_in, general.metrics.bytes_in)


def test_records_stored_by_the_fast_path_survive_a_reopen(fronts, tmp_path):
    fast, _ = fronts
    front = Front(tmp_path / "reopen", fast=True)
    assert front.fast.wait_ready()
    request = body(entries(500, size=1024, seed=42))
    status, answer, _ = front.call(request)
    assert status == 200
    sent = json.loads(request)["Records"]
    front.store.close()
    store = StreamStore(tmp_path / "reopen", fsync=True, status_delay=0)  # CRCs checked
    try:
        by_sequence = {}
        for number in range(4):
            iterator = store.get_shard_iterator(f"shardId-{number:012d}", "TRIM_HORIZON",
                                                stream_name="s")["ShardIterator"]
            for record in store.get_records(iterator, 10_000)["Records"]:
                by_sequence[record["SequenceNumber"]] = record
        for entry, result in zip(sent, json.loads(answer)["Records"], strict=True):
            record = by_sequence[result["SequenceNumber"]]
            assert record["Data"] == base64.b64decode(entry["Data"])
            assert record["PartitionKey"] == entry["PartitionKey"]
    finally:
        store.close()


def test_encrypted_streams_take_the_records_one_by_one_with_the_same_outcome(fronts):
    fast, general = fronts
    for front in (fast, general):
        front.store.create_stream("sealed", 2)
        front.store.start_stream_encryption("KMS", "alias/aws/kinesis", stream_name="sealed")
    request = body(entries(40, seed=12), stream="sealed")
    got = fast.call(request)
    assert got == general.call(request)
    assert json.loads(got[1])["EncryptionType"] == "KMS"
    for front in (fast, general):
        iterator = front.store.get_shard_iterator("shardId-000000000000", "TRIM_HORIZON",
                                                  stream_name="sealed")["ShardIterator"]
        records = front.store.get_records(iterator, 100)["Records"]
        assert records and all(r["EncryptionType"] == "KMS" for r in records)


def _frames(path) -> list[tuple]:
    """A segment file's frames less the arrival time (and the CRC, which covers it)."""
    data, out, pos = path.read_bytes(), [], 0
    while pos < len(data):
        _crc, length, offset, _ts, key_len = struct.unpack_from("<IIQqH", data, pos)
        out.append((length, offset, key_len, data[pos + 26:pos + 8 + length]))
        pos += 8 + length
    return out


def _index_file(path) -> list[tuple[int, int]]:
    """A sparse index file's (offset, position) entries, each with a valid CRC."""
    data = path.read_bytes()
    assert len(data) % 28 == 0
    out = []
    for at in range(0, len(data), 28):
        offset, position, _ts, crc = struct.unpack_from("<QQqI", data, at)
        assert zlib.crc32(data[at:at + 24]) == crc
        out.append((offset, position))
    return out


def test_real_clients_through_a_server(kinesis, server):
    """boto3 and hand-signed bodies against ``forestream server``: what boto3 sends is
    stored and read back whole, through the fast path (its metric counts the calls),
    and bad bodies get AWS's errors."""
    kinesis.create_stream(StreamName="fast", ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName="fast",
                                             WaiterConfig={"Delay": 0.2, "MaxAttempts": 100})
    rng = random.Random(5)
    sent = [{"Data": rng.randbytes(rng.choice([0, 1, 2, 3, 100, 1024, 5000])),
             "PartitionKey": f"pk-{i}", **({"ExplicitHashKey": str(i * 10**30)}
                                           if i % 7 == 0 else {})} for i in range(500)]
    deadline = time.monotonic() + 120  # the first call starts loading the kernels
    answers = []
    while True:
        answers.append(kinesis.put_records(StreamName="fast", Records=sent))
        if "forestream_put_records_batched_total 0" not in _metrics(server):
            break
        assert time.monotonic() < deadline, "the fast path never took a call"
        time.sleep(0.5)
    stored = {}
    for shard in kinesis.list_shards(StreamName="fast")["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName="fast", ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        for record in kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]:
            stored[record["SequenceNumber"]] = (record["PartitionKey"], record["Data"])
    assert len(stored) == 500 * len(answers)
    for answer in answers:
        assert answer["FailedRecordCount"] == 0
        for entry, result in zip(sent, answer["Records"], strict=True):
            assert stored[result["SequenceNumber"]] == (entry["PartitionKey"], entry["Data"])
    assert f"forestream_records_in_total {500 * len(answers)}" in _metrics(server)

    def raw(records) -> tuple[int, dict]:
        data = json.dumps({"StreamName": "fast", "Records": records}).encode()
        headers = signed_headers(server.url + "/", data, {
            "Content-Type": JSON, "X-Amz-Target": TARGET})
        request = urllib.request.Request(server.url + "/", data=data, headers=headers)
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    status, answer = raw([{"Data": "QR==", "PartitionKey": "k"}])
    assert (status, answer["__type"]) == (400, "SerializationException")
    status, answer = raw([{"Data": "QQ==", "PartitionKey": "k" * 257}])
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert "Member must have length less than or equal to 256" in answer["message"]
    status, answer = raw(entries(501, size=4))
    assert (status, answer["__type"]) == (400, "ValidationException")
    assert "length less than or equal to 500" in answer["message"]
    status, answer = raw(entries(1, size=1024 * 1024 + 1))
    assert (status, answer["__type"]) == (400, "InvalidArgumentException")
    status, answer = raw(entries(3, size=10))
    assert status == 200 and answer["FailedRecordCount"] == 0


def _metrics(server) -> str:
    return urllib.request.urlopen(server.request("/metrics")).read().decode()


def test_make_warms_the_fast_path_kernels_without_a_store():
    """``make`` compiles the kernels after installing (as the RCF kernels): warm_up loads
    or compiles them all, and says how long that took."""
    from forestream.server.aws.kinesis import warm_up_put_records

    assert warm_up_put_records() >= 0.0


def test_a_fast_path_that_cannot_load_says_so_at_once(monkeypatch):
    """Where the kernels cannot load (no zlib or libcrypto found, say) wait_ready answers
    False as soon as loading ended, not after its timeout, and make's warm-up names it."""
    import forestream.streams.batch as batch
    from forestream.server.aws.kinesis import warm_up_put_records

    monkeypatch.setattr(batch, "warm", lambda: False)
    fast = FastPutRecords(None, kinesis_shapes())  # type: ignore[arg-type]
    started = time.monotonic()
    assert fast.wait_ready(timeout=60.0) is False
    assert time.monotonic() - started < 30.0
    with pytest.raises(RuntimeError, match="fast path cannot run here"):
        warm_up_put_records()


def test_a_put_racing_start_stream_encryption_is_sealed_exactly_when_its_answer_says_so(
        fronts):
    """A PutRecords held up (behind a reshard, say) while StartStreamEncryption runs:
    its answer's EncryptionType and how its records are stored agree, whichever of the two
    goes first once the stream is free (the fast path once decided before waiting)."""
    import threading
    import time

    for front in fronts:
        front.store.create_stream("racing", 1)
        catalog = front.store._records.catalog
        lock = catalog.stream_lock("racing")
        answers: list = []
        with lock.write():  # the stream busy: the put and the encryption both wait
            put = threading.Thread(target=lambda f=front, out=answers: out.append(
                f.call(body(entries(30, seed=21), stream="racing"))))
            put.start()
            time.sleep(0.2)  # the put has passed its checks and waits for the stream
            seal = threading.Thread(target=lambda f=front: f.store.start_stream_encryption(
                "KMS", "alias/aws/kinesis", stream_name="racing"))
            seal.start()
            time.sleep(0.2)
        put.join(30)
        seal.join(30)
        status, answer, _ = answers[0]
        assert status == 200
        said = json.loads(answer)["EncryptionType"]
        iterator = front.store.get_shard_iterator("shardId-000000000000", "TRIM_HORIZON",
                                                  stream_name="racing")["ShardIterator"]
        stored = front.store.get_records(iterator, 100)["Records"]
        assert len(stored) == 30
        assert {r["EncryptionType"] for r in stored} == {said}


def test_a_batch_whose_answer_the_kernel_cannot_write_is_answered_from_the_result(
        fronts, monkeypatch):
    """Records once stored are acknowledged: where the answer kernel declines (it writes
    fixed-width columns), the answer is built from the stored result instead of failing
    after the records were written."""
    import forestream.server.aws.fast_put_records as module

    fast, general = fronts
    monkeypatch.setattr(module, "render", lambda stored: None)
    request = body(entries(20, seed=22), stream="one")
    status, answer, _ = fast.call(request)
    assert status == 200
    got = json.loads(answer)
    assert got["FailedRecordCount"] == 0 and len(got["Records"]) == 20
    assert all(r["SequenceNumber"] and r["ShardId"] for r in got["Records"])
