"""Durability of a ``forestream server`` across SIGKILLs and damaged segment tails.

``test_acknowledged_records_survive_repeated_sigkill``: producers put continuously
(PutRecord and small PutRecords batches) while the server is killed with SIGKILL at seeded
random moments and restarted on the same data directory. Every acknowledged record must
then be readable, unchanged, at its acknowledged sequence number; shards read in strictly
increasing sequence order; nothing is read that no producer attempted, nor anything twice;
and whatever a consumer read while the server was crashing is still there.

``test_torn_segment_tails_are_recovered``: after a clean stop, one shard's newest segment
gets bytes appended past its last record and another's is cut in the middle of its last
record; the restarted server must serve every record before the damage and take new puts
on both shards.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from pathlib import Path

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from server_support import ServerProcess

pytestmark = [pytest.mark.service, pytest.mark.slow]

SEED = int(os.environ.get("FORESTREAM_CRASH_SEED", "20240611"))
KILLS = 8
STREAM = "crashy"
SHARDS = ("shardId-000000000000", "shardId-000000000001")
LOW_KEY, HIGH_KEY = "0", str(2**127)  # explicit hash keys routing to shard 0 and shard 1
FRAME_HEADER = 26  # crc, length, offset, timestamp, key length (see segment_log)
FAST = Config(retries={"max_attempts": 0}, connect_timeout=2, read_timeout=5)


def client(url: str, config: Config = FAST):
    return boto3.session.Session().client(
        "kinesis", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=config)


def payload(producer: int, n: int) -> bytes:
    """Producer ``producer``'s ``n``-th record: a tag to find it by, then 32 to 256 bytes."""
    body = hashlib.sha256(b"%d/%d" % (producer, n)).digest() * (1 + n % 8)
    return b"p%d-%d:" % (producer, n) + body


def identify(data: bytes) -> tuple[int, int] | None:
    """(producer, n) that ``payload`` would have made ``data`` for, if any."""
    tag, sep, _ = data.partition(b":")
    try:
        producer, n = (int(x) for x in tag[1:].split(b"-"))
    except ValueError:
        return None
    return (producer, n) if sep and tag[:1] == b"p" and payload(producer, n) == data else None


def partition_key(producer: int, n: int) -> str:
    return f"key-{(producer * 31 + n) % 7}"


def read_all(kinesis, stream: str, shard: str, **position) -> list[dict]:
    """Every record of ``shard`` (from TRIM_HORIZON unless told) to its current end."""
    position = position or {"ShardIteratorType": "TRIM_HORIZON"}
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          **position)["ShardIterator"]
    out: list[dict] = []
    while True:
        page = kinesis.get_records(ShardIterator=iterator, Limit=500)
        out += page["Records"]
        if not page["Records"]:
            return out
        iterator = page["NextShardIterator"]


class Endpoint:
    """The URL of whichever server process is current (each restart gets a new port)."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        with self._lock:
            return self._url

    @url.setter
    def url(self, value: str) -> None:
        with self._lock:
            self._url = value


class Producer(threading.Thread):
    """Puts deterministic payloads until stopped; remembers what was acknowledged."""

    def __init__(self, number: int, endpoint: Endpoint, stop: threading.Event) -> None:
        super().__init__(name=f"producer-{number}", daemon=True)
        self.number, self.endpoint, self.stop = number, endpoint, stop
        self.rng = random.Random(SEED * 100 + number)
        self.next = 0
        self.attempted: set[int] = set()
        self.acked: list[tuple[int, str, str]] = []  # (n, shard id, sequence number)
        self.unknown = 0  # puts whose fate the producer cannot know
        self.refused: list[str] = []  # errors the server answered (there should be none)
        self.crashed: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # surfaced by the test
            self.crashed = exc

    def _loop(self) -> None:
        url, kinesis = None, None
        while not self.stop.is_set():
            if url != self.endpoint.url:
                url = self.endpoint.url
                kinesis = client(url)
            count = 1 if self.rng.random() < 0.4 else self.rng.randint(2, 6)
            numbers = list(range(self.next, self.next + count))
            self.next += count
            self.attempted.update(numbers)
            try:
                if count == 1:
                    n = numbers[0]
                    out = kinesis.put_record(StreamName=STREAM, Data=payload(self.number, n),
                                             PartitionKey=partition_key(self.number, n))
                    if "SequenceNumber" not in out:
                        # No sequence number, no acknowledgement (seen once in CI during a
                        # kill, cause not pinned down): the put's fate is unknown.
                        self.unknown += count
                        continue
                    self.acked.append((n, out["ShardId"], out["SequenceNumber"]))
                else:
                    out = kinesis.put_records(StreamName=STREAM, Records=[
                        {"Data": payload(self.number, n),
                         "PartitionKey": partition_key(self.number, n)} for n in numbers])
                    if "Records" not in out:  # no acknowledgement, as above
                        self.unknown += count
                        continue
                    for n, entry in zip(numbers, out["Records"], strict=True):
                        if "SequenceNumber" in entry:
                            self.acked.append((n, entry["ShardId"], entry["SequenceNumber"]))
                        else:
                            self.refused.append(f"{n}: {entry}")
            except botocore.exceptions.ClientError as exc:
                self.refused.append(f"{numbers}: {exc}")
                time.sleep(0.05)
            except botocore.exceptions.BotoCoreError:  # connection refused, reset, timeout
                self.unknown += count
                time.sleep(0.01)


class Reader(threading.Thread):
    """Follows every shard with GetRecords through the crashes; remembers what it saw."""

    def __init__(self, endpoint: Endpoint, stop: threading.Event) -> None:
        super().__init__(name="reader", daemon=True)
        self.endpoint, self.stop = endpoint, stop
        self.seen: dict[str, list[tuple[str, bytes]]] = {s: [] for s in SHARDS}
        self.refused: list[str] = []
        self.crashed: BaseException | None = None

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:
            self.crashed = exc

    def _loop(self) -> None:
        url, kinesis = None, None
        iterators: dict[str, str] = {}
        while not self.stop.is_set():
            if url != self.endpoint.url:
                url = self.endpoint.url
                kinesis = client(url)
            try:
                for shard in SHARDS:
                    if shard not in iterators:
                        iterators[shard] = kinesis.get_shard_iterator(
                            StreamName=STREAM, ShardId=shard,
                            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
                    # Iterators are signed with a key kept in the data directory, so they
                    # stay valid across restarts.
                    page = kinesis.get_records(ShardIterator=iterators[shard], Limit=200)
                    self.seen[shard] += [(r["SequenceNumber"], r["Data"])
                                         for r in page["Records"]]
                    iterators[shard] = page["NextShardIterator"]
            except botocore.exceptions.ClientError as exc:
                self.refused.append(str(exc))
                time.sleep(0.05)
            except botocore.exceptions.BotoCoreError:
                time.sleep(0.02)
            time.sleep(0.02)


def kill(proc: ServerProcess) -> None:
    proc.kill()
    if proc.proc is not None and proc.proc.stderr is not None:
        proc.proc.stderr.close()


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what} (seed {SEED})"
        time.sleep(0.02)


def test_acknowledged_records_survive_repeated_sigkill(tmp_path):
    rng = random.Random(SEED)
    data_dir = tmp_path / "data"
    servers = [ServerProcess(data_dir).start()]
    endpoint, stop = Endpoint(servers[0].url), threading.Event()
    producers = [Producer(i, endpoint, stop) for i in range(2)]
    reader = Reader(endpoint, stop)
    threads = [*producers, reader]

    def acked() -> int:
        return sum(len(p.acked) for p in producers)

    try:
        setup = client(servers[0].url, Config(retries={"max_attempts": 2}))
        setup.create_stream(StreamName=STREAM, ShardCount=len(SHARDS))
        setup.get_waiter("stream_exists").wait(StreamName=STREAM,
                                               WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        for thread in threads:
            thread.start()
        for _ in range(KILLS):
            floor = acked()
            # Let the producers get going on this server, then kill it at a random moment.
            wait_for(lambda floor=floor: acked() > floor + 5, 90, "acknowledged puts")
            time.sleep(rng.uniform(0.05, 1.5))
            kill(servers[-1])
            time.sleep(rng.choice([0, 0, 0.1, 0.3]))
            servers.append(ServerProcess(data_dir).start())
            endpoint.url = servers[-1].url
        floor = acked()
        wait_for(lambda: acked() > floor + 20, 90,
                 "acknowledged puts after the last restart")
        stop.set()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive(), thread.name
        for thread in threads:
            assert thread.crashed is None, (thread.name, thread.crashed)
            assert thread.refused == [], (thread.name, thread.refused[:5])
        final_client = client(servers[-1].url, Config(retries={"max_attempts": 2}))
        final = {shard: read_all(final_client, STREAM, shard) for shard in SHARDS}
    finally:
        stop.set()
        servers[-1].stop()

    found: dict[tuple[int, int], tuple[str, str]] = {}
    for shard, records in final.items():
        sequence = [int(r["SequenceNumber"]) for r in records]
        assert all(a < b for a, b in zip(sequence, sequence[1:], strict=False)), \
            f"{shard}: sequence numbers not strictly increasing (seed {SEED})"
        for r in records:
            who = identify(r["Data"])
            assert who is not None, f"{shard}: record never attempted: {r['Data'][:40]!r}"
            producer, n = who
            assert n in producers[producer].attempted, (shard, who)
            assert r["PartitionKey"] == partition_key(producer, n), (shard, who)
            assert who not in found, f"{who} stored twice: {found[who]} and {shard}"
            found[who] = (shard, r["SequenceNumber"])

    total_acked = 0
    for producer in producers:
        last_on_shard: dict[str, int] = {}
        for n, shard, seq in producer.acked:
            total_acked += 1
            where = found.get((producer.number, n), "missing")
            assert where == (shard, seq), (
                f"acknowledged record {producer.number}/{n} ({shard} {seq}) is {where} after "
                f"the crashes (seed {SEED})")
            # One producer puts one request at a time: later acks get later sequence numbers.
            assert int(seq) > last_on_shard.get(shard, -1), (producer.number, n, shard, seq)
            last_on_shard[shard] = int(seq)
    for shard in SHARDS:
        got = [(r["SequenceNumber"], r["Data"]) for r in final[shard]]
        seen = reader.seen[shard]
        assert got[:len(seen)] == seen, f"{shard}: a record a consumer read has changed"
    unknown = sum(p.unknown for p in producers)
    assert total_acked > 100, (total_acked, unknown)
    assert {shard for p in producers for _, shard, _ in p.acked} == set(SHARDS)
    assert unknown > 0, "no put ever met a dead server: the kills did not test much"
    print(f"seed {SEED}: {total_acked} acknowledged, {unknown} unknown, "
          f"{sum(map(len, final.values()))} stored, "
          f"{sum(map(len, reader.seen.values()))} read during the crashes")


def newest_segment(data_dir: Path, shard: str) -> Path:
    return max((data_dir / "streams" / f"stream-{STREAM}" / shard).glob("*.log"))


def last_frame_start(segment: Path) -> int:
    """Byte position of the segment's last frame (walking the frames' length fields)."""
    data, pos, start = segment.read_bytes(), 0, None
    while pos < len(data):
        start, pos = pos, pos + 8 + int.from_bytes(data[pos + 4:pos + 8], "little")
    assert start is not None and pos == len(data), segment
    return start


@pytest.mark.parametrize("damage", ["garbage-and-mid-value", "zeros-and-mid-header"])
def test_torn_segment_tails_are_recovered(tmp_path, damage):
    data_dir, count = tmp_path / "data", 150
    acked: dict[str, list[tuple[int, str]]] = {s: [] for s in SHARDS}
    proc = ServerProcess(data_dir).start()
    try:
        kinesis = client(proc.url, Config(retries={"max_attempts": 2}))
        kinesis.create_stream(StreamName=STREAM, ShardCount=2)
        kinesis.get_waiter("stream_exists").wait(
            StreamName=STREAM, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        for shard, hash_key in zip(SHARDS, (LOW_KEY, HIGH_KEY), strict=True):
            for start in range(0, count, 25):
                numbers = range(start, start + 25)
                out = kinesis.put_records(StreamName=STREAM, Records=[
                    {"Data": payload(0, n), "PartitionKey": partition_key(0, n),
                     "ExplicitHashKey": hash_key} for n in numbers])
                assert out["FailedRecordCount"] == 0
                assert {r["ShardId"] for r in out["Records"]} == {shard}
                acked[shard] += [(n, r["SequenceNumber"]) for n, r in
                                 zip(numbers, out["Records"], strict=True)]
    finally:
        proc.stop()

    rng = random.Random(SEED)
    garbled, torn = newest_segment(data_dir, SHARDS[0]), newest_segment(data_dir, SHARDS[1])
    garbled_size, torn_at = garbled.stat().st_size, last_frame_start(torn)
    if damage == "garbage-and-mid-value":
        tail = rng.randbytes(300)
        keep = FRAME_HEADER + 20  # into the last frame's key and value
    else:  # a crash after the file grew but before its data reached the disk: zeros
        tail = bytes(4096)
        keep = 11  # inside the last frame's header
        with open(torn.with_suffix(".idx"), "ab") as f:  # and a torn index entry
            f.write(rng.randbytes(13))
    with open(garbled, "ab") as f:
        f.write(tail)
    os.truncate(torn, torn_at + keep)

    proc = ServerProcess(data_dir).start()
    try:
        kinesis = client(proc.url, Config(retries={"max_attempts": 2}))
        expected = {SHARDS[0]: acked[SHARDS[0]], SHARDS[1]: acked[SHARDS[1]][:-1]}
        for shard in SHARDS:
            got = read_all(kinesis, STREAM, shard)
            assert [(identify(r["Data"]), r["SequenceNumber"]) for r in got] == [
                ((0, n), seq) for n, seq in expected[shard]], shard
            middle = expected[shard][100]
            tail_read = read_all(kinesis, STREAM, shard, ShardIteratorType="AT_SEQUENCE_NUMBER",
                                 StartingSequenceNumber=middle[1])
            assert [identify(r["Data"]) for r in tail_read] == [
                (0, n) for n, _ in expected[shard][100:]], shard
        # Recovery cut the damage off the files: back to the last whole record.
        assert garbled.stat().st_size == garbled_size
        assert torn.stat().st_size == torn_at

        # The repaired logs take new records; PutRecord and PutRecords on both shards.
        for shard, hash_key in zip(SHARDS, (LOW_KEY, HIGH_KEY), strict=True):
            one = kinesis.put_record(StreamName=STREAM, Data=payload(1, 0), PartitionKey="x",
                                     ExplicitHashKey=hash_key)
            assert one["ShardId"] == shard
            assert int(one["SequenceNumber"]) > int(expected[shard][-1][1])
            out = kinesis.put_records(StreamName=STREAM, Records=[
                {"Data": payload(1, n), "PartitionKey": "x", "ExplicitHashKey": hash_key}
                for n in (1, 2)])
            assert out["FailedRecordCount"] == 0
            assert {r["ShardId"] for r in out["Records"]} == {shard}
            new = read_all(kinesis, STREAM, shard, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                           StartingSequenceNumber=expected[shard][-1][1])
            assert [r["Data"] for r in new] == [payload(1, n) for n in range(3)], shard
            assert [r["SequenceNumber"] for r in new] == [
                one["SequenceNumber"]] + [r["SequenceNumber"] for r in out["Records"]]
    finally:
        proc.stop()

    # And all of it is still there after another restart (the repair itself was durable).
    proc = ServerProcess(data_dir).start()
    try:
        kinesis = client(proc.url, Config(retries={"max_attempts": 2}))
        for shard in SHARDS:
            got = [r["Data"] for r in read_all(kinesis, STREAM, shard)]
            assert got == [payload(0, n) for n, _ in expected[shard]] + [
                payload(1, n) for n in range(3)], shard
    finally:
        proc.stop()


# ---------------------------------------------------------------------------------------
# States a SIGKILL leaves between two non-atomic steps, recreated exactly (the windows are
# microseconds wide, too narrow to hit reliably by killing at random).


def start_with_stream(data_dir: Path, name: str, records: list[bytes]) -> None:
    """Create a one-shard stream holding ``records``, then stop the server cleanly."""
    proc = ServerProcess(data_dir).start()
    try:
        kinesis = client(proc.url, Config(retries={"max_attempts": 2}))
        kinesis.create_stream(StreamName=name, ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                 WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        for data in records:
            kinesis.put_record(StreamName=name, Data=data, PartitionKey="k")
    finally:
        proc.stop()


def test_a_stream_deleted_just_before_a_crash_does_not_come_back(tmp_path):
    data_dir = tmp_path / "data"
    start_with_stream(data_dir, "ghost", [b"old-1", b"old-2"])
    shard_dir = data_dir / "streams" / "stream-ghost" / SHARDS[0]
    leftovers = {p.name: p.read_bytes() for p in shard_dir.iterdir()}
    proc = ServerProcess(data_dir).start()
    try:
        client(proc.url).delete_stream(StreamName="ghost")
    finally:
        proc.stop()
    # The state of a kill after the metadata commit, before SegmentLog.delete():
    shard_dir.mkdir(parents=True, exist_ok=True)
    for name, data in leftovers.items():
        (shard_dir / name).write_bytes(data)

    proc = ServerProcess(data_dir).start()
    try:
        kinesis = client(proc.url, Config(retries={"max_attempts": 2}))
        kinesis.create_stream(StreamName="ghost", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="ghost",
                                                 WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        kinesis.put_record(StreamName="ghost", Data=b"new", PartitionKey="k")
        got = [r["Data"] for r in read_all(kinesis, "ghost", SHARDS[0])]
    finally:
        proc.stop()
    assert got == [b"new"]


def test_a_crash_while_starting_encryption_leaves_the_stream_usable(tmp_path):
    data_dir = tmp_path / "data"
    start_with_stream(data_dir, "plain", [b"clear-1", b"clear-2"])
    # The state of a kill inside StartStreamEncryption after the key file was created,
    # before the key was written (and before the metadata recorded any encryption):
    (data_dir / "keys").mkdir(mode=0o700, exist_ok=True)
    (data_dir / "keys" / "plain.key").write_bytes(b"")

    proc = ServerProcess(data_dir).start()
    try:
        kinesis = client(proc.url, Config(retries={"max_attempts": 2}))
        summary = kinesis.describe_stream_summary(StreamName="plain")
        assert summary["StreamDescriptionSummary"]["EncryptionType"] == "NONE"
        assert [r["Data"] for r in read_all(kinesis, "plain", SHARDS[0])] == [b"clear-1",
                                                                             b"clear-2"]
        kinesis.start_stream_encryption(StreamName="plain", EncryptionType="KMS",
                                        KeyId="alias/aws/kinesis")
        kinesis.get_waiter("stream_exists").wait(StreamName="plain",
                                                 WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
        kinesis.put_record(StreamName="plain", Data=b"sealed", PartitionKey="k")
        got = [r["Data"] for r in read_all(kinesis, "plain", SHARDS[0])]
    finally:
        proc.stop()
    assert got == [b"clear-1", b"clear-2", b"sealed"]
