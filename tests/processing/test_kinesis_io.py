"""Kinesis source and sink over an in-process StreamStore: every record exactly once,
resharding (parents before children, per-key order), checkpoint/restore from sequence
numbers, and a sink whose replayed records carry the same ``_record_id``."""

from __future__ import annotations

import json
import time
from collections import defaultdict

import pytest
from processing_testkit import event_time

from forestream.processing import (
    KinesisSink,
    KinesisSource,
    ListSink,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
)
from forestream.streams.store import StreamStore

PARENT = "shardId-000000000000"


@pytest.fixture
def store(tmp_path):
    s = StreamStore(tmp_path / "streams", status_delay=0.0, fsync=False)
    yield s
    s.close()


def put(store, stream, records):
    out = store.put_records(stream_name=stream, records=[
        {"Data": json.dumps(r).encode(), "PartitionKey": r["k"]} for r in records])
    assert out["FailedRecordCount"] == 0
    return out["Records"]


def make(ids, keys=10, **extra):
    return [{"id": i, "k": f"k{i % keys}", **extra} for i in ids]


def read_stream(store, stream):
    """Every record of every shard, in shard then sequence order: (shard, seq, value)."""
    out = []
    for shard in store.list_shards(stream_name=stream)["Shards"]:
        iterator = store.get_shard_iterator(stream_name=stream, shard_id=shard["ShardId"],
                                            shard_iterator_type="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = store.get_records(shard_iterator=iterator, limit=1000)
            out += [(shard["ShardId"], r["SequenceNumber"], json.loads(r["Data"]))
                    for r in page["Records"]]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


class Until:
    """Stop once ``sink`` has ``n`` values and has stayed there for a few more steps (so a
    duplicate read would show); ``action(count)`` runs before every step."""

    def __init__(self, sink, n, action=None, extra_steps=3):
        self.sink, self.n, self.action, self.extra = sink, n, action, extra_steps
        self.settled = 0

    def __call__(self):
        if self.action is not None:
            self.action(len(self.sink.values))
        if len(self.sink.values) >= self.n:
            self.settled += 1
        return self.settled > self.extra


def shard_of(record):
    return record.rid.split("@")[0]


def split_in_half(store, stream, shard_id):
    shard = next(s for s in store.list_shards(stream_name=stream)["Shards"]
                 if s["ShardId"] == shard_id)
    lo = int(shard["HashKeyRange"]["StartingHashKey"])
    hi = int(shard["HashKeyRange"]["EndingHashKey"])
    store.split_shard(stream_name=stream, shard_to_split=shard_id,
                      new_starting_hash_key=str((lo + hi) // 2 + 1))


# ------------------------------------------------------------------------------ source
def test_every_record_of_a_two_shard_stream_is_read_exactly_once(store):
    store.create_stream("in", shard_count=2)
    before = time.time()
    put(store, "in", make(range(300)))
    after = time.time()
    env = StreamExecutionEnvironment(batch_size=50)
    out = env.from_kinesis("in", store).collect()
    env.execute(until=Until(out, 300), max_seconds=20)
    assert sorted(v["id"] for v in out.values) == list(range(300))
    # both shards were read; each in sequence order; per partition key in put order
    by_shard = defaultdict(list)
    for r in out.records:
        by_shard[shard_of(r)].append(int(r.rid.split("@")[1]))
    assert len(by_shard) == 2
    assert all(seqs == sorted(seqs) for seqs in by_shard.values())
    by_key = defaultdict(list)
    for v in out.values:
        by_key[v["k"]].append(v["id"])
    assert all(ids == sorted(ids) for ids in by_key.values())
    # the record timestamp is the arrival time (seconds)
    assert all(before - 1 <= r.timestamp <= after + 1 for r in out.records)
    assert len({r.rid for r in out.records}) == 300


def test_a_custom_deserializer_and_latest_start(store):
    store.create_stream("in", shard_count=2)
    put(store, "in", make(range(20)))
    env = StreamExecutionEnvironment()
    out = env.from_kinesis("in", store, start="LATEST",
                           deserializer=lambda data: json.loads(data)["id"]).collect()
    steps = [0]

    def put_later(count):
        steps[0] += 1
        if steps[0] == 3:  # the first step opened the shards at LATEST
            put(store, "in", make(range(100, 110)))

    env.execute(until=Until(out, 10, action=put_later), max_seconds=20)
    assert sorted(out.values) == list(range(100, 110))


def test_an_invalid_start_is_rejected(store):
    store.create_stream("in", shard_count=1)
    with pytest.raises(ValueError, match="TRIM_HORIZON"):
        KinesisSource("in", store, start="AT_TIMESTAMP")


def test_resharding_mid_stream_reads_the_parent_before_its_children(store):
    store.create_stream("in", shard_count=2)
    put(store, "in", make(range(200), keys=20))
    env = StreamExecutionEnvironment(batch_size=10)
    out = env.from_kinesis("in", store).collect()
    events = []

    def reshard(count):
        if not events and count >= 30:  # the parent still has unread records
            split_in_half(store, "in", PARENT)
            put(store, "in", make(range(200, 400), keys=20))
            events.append(count)

    env.execute(until=Until(out, 400, action=reshard), max_seconds=30)
    assert events, "the split never happened"
    assert sorted(v["id"] for v in out.values) == list(range(400))
    shards = [shard_of(r) for r in out.records]
    children = {"shardId-000000000002", "shardId-000000000003"}
    assert children <= set(shards)
    last_parent = max(i for i, s in enumerate(shards) if s == PARENT)
    first_child = min(i for i, s in enumerate(shards) if s in children)
    assert last_parent < first_child
    assert events[0] < last_parent  # the split happened while the parent was being read
    by_key = defaultdict(list)
    for v in out.values:
        by_key[v["k"]].append(v["id"])
    assert all(ids == sorted(ids) for ids in by_key.values())


def test_checkpoint_and_restore_resume_after_the_last_sequence_number(store, tmp_path):
    store.create_stream("in", shard_count=2)
    put(store, "in", make(range(100)))
    ckpt = tmp_path / "ckpt"
    env = StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=0.0,
                                     batch_size=10)
    first = env.from_kinesis("in", store).collect()
    env.execute(until=lambda: len(first.values) >= 40, max_seconds=20)
    assert 40 <= len(first.values) < 100
    put(store, "in", make(range(100, 150)))
    env = StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=0.0,
                                     batch_size=10)
    second = env.from_kinesis("in", store).collect()
    result = env.execute(until=Until(second, 150 - len(first.values)), max_seconds=20)
    assert result.restored_from is not None
    ids = [v["id"] for v in first.values + second.values]
    assert sorted(ids) == list(range(150))


def test_crash_and_restore_read_every_record_exactly_once_into_state(store, tmp_path):
    store.create_stream("in", shard_count=2)
    put(store, "in", make(range(120)))

    def job(env, sink, crash_after=None):
        seen = [0]

        def crasher(v):
            seen[0] += 1
            if crash_after is not None and seen[0] > crash_after:
                raise RuntimeError("crash")
            return v

        env.from_kinesis("in", store).map(crasher).sink_to(sink)

    shared = ListSink()
    for crash_after in (35, 20, None):
        env = StreamExecutionEnvironment(checkpoint_dir=tmp_path / "ckpt",
                                         checkpoint_interval=0.0, batch_size=10)
        job(env, shared, crash_after)
        if crash_after is None:
            env.execute(until=Until(shared, 120), max_seconds=20)
        else:
            with pytest.raises(RuntimeError, match="crash"):
                env.execute(max_seconds=20)
    assert sorted(v["id"] for v in shared.values) == list(range(120))


def test_checkpoint_restore_across_a_reshard(store, tmp_path):
    store.create_stream("in", shard_count=1)
    put(store, "in", make(range(60)))
    ckpt = tmp_path / "ckpt"

    def env_():
        return StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=0.0,
                                          batch_size=10)

    env = env_()
    first = env.from_kinesis("in", store).collect()
    env.execute(until=lambda: len(first.values) >= 20, max_seconds=20)
    split_in_half(store, "in", PARENT)
    put(store, "in", make(range(60, 100)))
    env = env_()
    second = env.from_kinesis("in", store).collect()
    env.execute(until=Until(second, 100 - len(first.values)), max_seconds=20)
    ids = [v["id"] for v in first.values + second.values]
    assert sorted(ids) == list(range(100))
    by_key = defaultdict(list)
    for i in ids:
        by_key[i % 10].append(i)
    assert all(v == sorted(v) for v in by_key.values())


def test_event_time_windows_over_a_kinesis_stream(store):
    store.create_stream("in", shard_count=2)
    records = [{"id": i, "k": f"k{i % 10}", "t": i * 0.5} for i in range(40)]
    closing = [{"id": 1000, "k": f"k{j}", "t": 100.0} for j in range(10)]  # both shards
    put(store, "in", records + closing)
    env = StreamExecutionEnvironment(batch_size=7)
    out = (env.from_kinesis("in", store, watermark_strategy=event_time(1, "t"))
           .key_by(lambda v: 0).window(TumblingEventTimeWindows.of(10))
           .reduce(lambda a, b: {"id": a["id"] + b["id"], "k": a["k"], "t": 0}).collect())
    env.execute(until=lambda: len(out.values) >= 2, max_seconds=20)
    assert [v["id"] for v in out.values] == [sum(range(20)), sum(range(20, 40))]


def test_a_finished_parent_shard_does_not_hold_the_watermark(store):
    store.create_stream("in", shard_count=1)
    put(store, "in", [{"id": i, "k": f"k{i % 8}", "t": float(i)} for i in range(10)])
    split_in_half(store, "in", PARENT)
    put(store, "in", [{"id": i, "k": f"k{i % 8}", "t": float(i)} for i in range(20, 40)])
    env = StreamExecutionEnvironment()
    out = (env.from_kinesis("in", store, watermark_strategy=event_time(0, "t"))
           .key_by(lambda v: 0).window(TumblingEventTimeWindows.of(10))
           .reduce(lambda a, b: {**a, "id": a["id"] + b["id"]}).collect())
    env.execute(until=lambda: len(out.values) >= 2, max_seconds=1.5)
    # the children reached 37 and 39: [0,10) and [20,30) are complete
    assert [v["id"] for v in out.values][:2] == [sum(range(10)), sum(range(20, 30))]


# -------------------------------------------------------------------------------- sink
def test_kinesis_sink_writes_values_with_record_ids(store):
    store.create_stream("in", shard_count=2)
    store.create_stream("out", shard_count=2)
    put(store, "in", make(range(50)))
    env = StreamExecutionEnvironment(batch_size=10)
    seen = env.from_kinesis("in", store).map(lambda v: {**v, "sq": v["id"] ** 2})
    sink = seen.sink_to_kinesis("out", store)
    out = seen.collect()
    env.execute(until=Until(out, 50), max_seconds=20)
    written = read_stream(store, "out")
    assert isinstance(sink, KinesisSink) and sink.written == 50
    assert sorted(v["id"] for _, _, v in written) == list(range(50))
    assert all(v["sq"] == v["id"] ** 2 for _, _, v in written)
    assert {v["_record_id"] for _, _, v in written} == {r.rid for r in out.records}


def test_kinesis_sink_partition_key_and_no_record_ids(store):
    store.create_stream("out", shard_count=2)
    env = StreamExecutionEnvironment()
    env.from_collection(make(range(20))).sink_to(
        KinesisSink("out", store, partition_key=lambda v: v["k"], record_ids=False))
    env.execute()
    written = read_stream(store, "out")
    assert sorted(v["id"] for _, _, v in written) == list(range(20))
    assert all("_record_id" not in v for _, _, v in written)
    # one partition key always lands on one shard
    shards_by_key = defaultdict(set)
    for shard, _, v in written:
        shards_by_key[v["k"]].add(shard)
    assert all(len(s) == 1 for s in shards_by_key.values())


def test_a_replay_after_restore_writes_duplicates_only_with_the_same_record_id(store,
                                                                             tmp_path):
    store.create_stream("in", shard_count=2)
    store.create_stream("out", shard_count=1)
    put(store, "in", make(range(120)))
    expected_ids = {f"{shard}@{seq}" for shard, seq, _ in read_stream(store, "in")}
    ckpt = tmp_path / "ckpt"

    def job(crash_after=None):
        env = StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=3600,
                                         batch_size=10)
        stream = env.from_kinesis("in", store).map(lambda v: {**v, "double": 2 * v["id"]})
        stream.sink_to_kinesis("out", store)
        count = [0]

        def crasher(v):  # after the sink in the graph: this step's records are written
            count[0] += 1
            if crash_after is not None and count[0] > crash_after:
                raise RuntimeError("crash")
            return v

        stream.map(crasher)
        return env, stream.collect()

    env, first = job()
    env.execute(until=lambda: len(first.values) >= 40, max_seconds=20)  # checkpoint at stop
    env, _ = job(crash_after=30)  # writes more, crashes with no checkpoint since
    with pytest.raises(RuntimeError, match="crash"):
        env.execute(max_seconds=20)
    env, third = job()
    env.execute(until=Until(third, 120 - len(first.values)), max_seconds=20)

    written = read_stream(store, "out")
    groups = defaultdict(list)
    for _, _, v in written:
        groups[v["_record_id"]].append(v)
    assert set(groups) == expected_ids
    assert len(written) > 120  # the crashed run's records were written again
    for rid, copies in groups.items():
        assert all(c == copies[0] for c in copies), rid
        assert copies[0]["double"] == 2 * copies[0]["id"]
    assert sorted(c[0]["id"] for c in groups.values()) == list(range(120))
