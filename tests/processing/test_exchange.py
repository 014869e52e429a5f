"""The key-group exchange of parallel jobs, driven in-process over a StreamStore: a key's
state lives in one key group whichever source shard its records arrive on, crashes of
either stage neither lose nor double-count records, resharding the source keeps state,
event time crosses the exchange, and forged exchange records are skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter

import pytest
from apps_testkit import totals

from forestream.processing import (
    JobRunner,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    WatermarkStrategy,
)
from forestream.processing import exchange as ex
from forestream.processing import exchange_plan as xp
from forestream.processing.functions import KeyedProcessFunction, ProcessWindowFunction
from forestream.streams.hashing import partition_hash
from forestream.streams.store import StreamStore

KEYS = [f"device-{i}" for i in range(10)]


@pytest.fixture
def store(tmp_path):
    s = StreamStore(tmp_path / "streams", status_delay=0.0, fsync=False)
    yield s
    s.close()


def put(store, stream, values):
    """Partition keys are random-ish ids, not the key_by key: every key shows up on
    every shard, which is what the exchange is for."""
    for start in range(0, len(values), 500):
        chunk = values[start:start + 500]
        out = store.put_records(stream_name=stream, records=[
            {"Data": json.dumps(v).encode(), "PartitionKey": f"p{start + i}"}
            for i, v in enumerate(chunk)])
        assert out["FailedRecordCount"] == 0


class Cluster:
    """Runs a job's read stages (one per source shard) and keyed stages (one per key
    group) in this process, as the parallel workers would, with crash/restart at will."""

    def __init__(self, store, tmp_path, build, key_groups=4):
        self.store, self.root, self.build = store, tmp_path / "app", build
        probe = StreamExecutionEnvironment()
        build(probe)
        self.plan = xp.plan(probe.graph)
        self.exchange = ex.ExchangeConfig.load(self.root, "job", key_groups)
        self.exchange.ensure_stream(store)
        self.runners: dict[tuple[str, str], JobRunner] = {}
        self.finished: set[str] = set()

    def runner(self, kind, shard):
        if (kind, shard) not in self.runners:
            env = StreamExecutionEnvironment(
                checkpoint_dir=self.root / "checkpoints" / f"{kind}-{shard}",
                checkpoint_interval=3600, batch_size=50)
            env.shard_lease = {shard} if kind == "read" else set()
            self.build(env)
            stage = xp.read_stage if kind == "read" else xp.keyed_stage
            stage(env.graph, self.plan, self.exchange, self.store, shard)
            runner = JobRunner(env.graph, f"job/{kind}-{shard}")
            runner.open()
            self.runners[(kind, shard)] = runner
        return self.runners[(kind, shard)]

    def crash(self, kind, shard):
        """Gone without a final checkpoint: the next runner restores the last one."""
        self.runners.pop((kind, shard)).close(final_checkpoint=False)

    def checkpoint(self, kind, shard):
        self.runner(kind, shard).checkpoint()

    def pump(self, kind, shard, steps=400):
        """Step until nothing new arrives for longer than an idle key group's longest
        poll interval (it is polled less often while empty)."""
        runner = self.runner(kind, shard)
        last_data = time.monotonic()
        patience = 2 * ex.IDLE_POLL_MAX_SECONDS if kind == "keyed" else 0.02
        for _ in range(steps):
            polled, finished = runner.advance()
            if finished:
                self.runners.pop((kind, shard)).close()
                self.finished.add(shard)
                return
            if polled:
                last_data = time.monotonic()
            elif time.monotonic() - last_data > patience:
                return
            else:
                time.sleep(0.005)

    def source_shards(self, stream="in"):
        """Open shards whose parents are done, as the lease table hands them out."""
        shards = self.store.list_shards(stream_name=stream)["Shards"]
        return [s["ShardId"] for s in shards if s["ShardId"] not in self.finished and all(
            p in self.finished for p in (s.get("ParentShardId"),
                                         s.get("AdjacentParentShardId")) if p)]

    def key_groups(self):
        return [s["ShardId"] for s in
                self.store.list_shards(stream_name=self.exchange.stream)["Shards"]]

    def pump_all(self, rounds=3):
        for _ in range(rounds):
            for shard in self.source_shards():
                self.pump("read", shard)
            for shard in self.key_groups():
                self.pump("keyed", shard)


def totals_job(store):
    def build(env):
        (env.from_kinesis("in", store)
            .map(lambda v: {**v, "seen": 1})
            .key_by(lambda v: v["k"])
            .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
            .sink_to_kinesis("out", store))
    return build


def test_keyed_state_is_exact_across_crashes_of_both_stages_and_a_source_reshard(store,
                                                                                tmp_path):
    store.create_stream("in", shard_count=3)
    store.create_stream("out", shard_count=1)
    cluster = Cluster(store, tmp_path, totals_job(store))
    values = [{"k": KEYS[i % len(KEYS)], "n": 1} for i in range(600)]
    put(store, "in", values[:300])
    cluster.pump_all()
    assert totals(store, "out") == {k: 30 for k in KEYS}
    for shard in cluster.source_shards():
        cluster.checkpoint("read", shard)
    for shard in cluster.key_groups():
        cluster.checkpoint("keyed", shard)

    # the read stage of shard 0 sends 150 more records, then dies before checkpointing:
    # its successor sends them again
    put(store, "in", values[300:450])
    cluster.pump("read", "shardId-000000000000")
    cluster.crash("read", "shardId-000000000000")
    # a keyed stage processes, then dies before checkpointing: it reads them again
    cluster.pump_all(rounds=1)
    victim = cluster.key_groups()[1]
    cluster.crash("keyed", victim)
    # the source is resharded while the job runs; keys keep their key groups
    parent = store.list_shards(stream_name="in")["Shards"][1]
    low = int(parent["HashKeyRange"]["StartingHashKey"])
    high = int(parent["HashKeyRange"]["EndingHashKey"])
    store.split_shard(stream_name="in", shard_to_split=parent["ShardId"],
                      new_starting_hash_key=str((low + high) // 2))
    put(store, "in", values[450:])
    cluster.pump_all(rounds=4)

    assert totals(store, "out") == {k: 60 for k in KEYS}
    assert len(store.list_shards(stream_name="in")["Shards"]) == 5  # children were read
    readers = [r.nodes[0].source for (kind, _), r in cluster.runners.items()
               if kind == "keyed"]
    assert sum(r.duplicates for r in readers) > 0  # the resent records were dropped
    assert any(len(r.origins) >= 4 for r in readers)  # records from parents and children


def test_a_key_lives_in_exactly_one_key_group(store, tmp_path):
    store.create_stream("in", shard_count=2)
    store.create_stream("out", shard_count=1)
    seen: dict[str, set[str]] = {}

    def build(env):
        (env.from_kinesis("in", store)
            .key_by(lambda v: v["k"])
            .process(Tag(seen)))
    cluster = Cluster(store, tmp_path, build, key_groups=3)
    put(store, "in", [{"k": KEYS[i % len(KEYS)]} for i in range(200)])
    cluster.pump_all()
    assert set(seen) == set(KEYS)
    assert all(len(groups) == 1 for groups in seen.values())
    assert len(set().union(*seen.values())) > 1  # keys are spread over the groups


class Tag(KeyedProcessFunction):
    """Notes which keyed-stage instance (one per key group) saw each key."""

    def __init__(self, seen):
        self.seen = seen

    def process_element(self, value, ctx):
        self.seen.setdefault(value["k"], set()).add(id(self))
        return None


def test_event_time_windows_fire_once_every_origin_passed_them(store, tmp_path):
    store.create_stream("in", shard_count=2)
    store.create_stream("out", shard_count=1)
    fired = []

    def build(env):
        (env.from_kinesis("in", store, watermark_strategy=WatermarkStrategy
                          .for_bounded_out_of_orderness(0).with_timestamp_assigner(
                              lambda v, ts: v["t"]))
            .key_by(lambda v: v["k"])
            .window(TumblingEventTimeWindows.of(10))
            .process(CountPerWindow())
            .add_sink(fired.append))
    cluster = Cluster(store, tmp_path, build)
    # every key on both shards; shard 1 lags behind shard 0 in event time
    for shard_key, times in (("a", range(0, 40)), ("b", range(0, 25))):
        store.put_records(stream_name="in", records=[
            {"Data": json.dumps({"k": KEYS[t % 3], "t": t}).encode(), "PartitionKey": shard_key,
             "ExplicitHashKey": "0" if shard_key == "a" else str(2**127 + 1)} for t in times])
    cluster.pump_all(rounds=4)
    # watermark = min over origins = 24 - 0.001: windows [0,10) and [10,20) only
    windows = Counter((f["key"], f["window_start"]) for f in fired)
    assert {w for _, w in windows} == {0, 10}
    assert all(n == 1 for n in windows.values())  # each fired once
    counts = {(f["key"], f["window_start"]): f["count"] for f in fired}
    for start in (0, 10):
        for i, key in enumerate(KEYS[:3]):
            expected = 2 * sum(1 for t in range(start, start + 10) if t % 3 == i)
            assert counts[(key, start)] == expected


class CountPerWindow(ProcessWindowFunction):
    def process(self, key, window, elements):
        yield {"key": key, "window_start": window.start, "count": len(elements)}


def test_forged_exchange_records_are_skipped_not_unpickled(store, tmp_path, capsys):
    store.create_stream("in", shard_count=1)
    store.create_stream("out", shard_count=1)
    cluster = Cluster(store, tmp_path, totals_job(store), key_groups=1)
    put(store, "in", [{"k": "device-0", "n": 1}] * 5)
    cluster.pump_all()
    forged = ex.Codec(b"not the key").encode({"o": "x", "wm": 0, "idle": False, "fin": False,
                                               "items": [(1, 0, {"k": "device-0", "n": 99},
                                                          None, "device-0", "x@1")]})
    store.put_records(stream_name=cluster.exchange.stream, records=[
        {"Data": forged, "PartitionKey": "k"}])
    put(store, "in", [{"k": "device-0", "n": 1}] * 5)
    cluster.pump_all()
    assert totals(store, "out") == {"device-0": 10}
    assert "not signed by this application" in capsys.readouterr().out


def test_key_hash_is_the_same_in_every_process_and_equal_keys_agree():
    keys = ["device-7", 42, (1, "a"), b"raw", 3.5]
    script = ("from forestream.processing.exchange import key_hash; "
              f"print([key_hash(k) for k in {keys!r}])")
    outs = {subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}, check=True).stdout
            for seed in ("1", "2")}
    assert len(outs) == 1 and outs.pop().strip() == str([ex.key_hash(k) for k in keys])
    assert ex.key_hash(1) == ex.key_hash(1.0) == ex.key_hash(True)
    # a string key goes where Kinesis would route that partition key
    assert ex.key_hash("device-7") == partition_hash("device-7")


def test_jobs_the_exchange_cannot_run_are_refused_with_the_reason():
    def plan_of(build):
        env = StreamExecutionEnvironment()
        build(env)
        return xp.plan(env.graph)

    src = lambda env: env.from_collection([{"k": 1}])  # noqa: E731
    assert plan_of(lambda env: src(env).map(lambda v: v).collect()) is None
    with pytest.raises(xp.ExchangeError, match="keys an already keyed stream"):
        plan_of(lambda env: src(env).key_by(lambda v: v["k"]).reduce(lambda a, b: a)
                .key_by(lambda v: v).reduce(lambda a, b: a))
    with pytest.raises(ex.ExchangeError, match="key its source stream once"):
        def two(env):
            s = src(env)
            s.key_by(lambda v: 1).reduce(lambda a, b: a)
            s.key_by(lambda v: 2).reduce(lambda a, b: a)
        plan_of(two)
    with pytest.raises(ex.ExchangeError, match="not keyed the same way"):
        def mixed(env):
            s = src(env)
            s.key_by(lambda v: 1).union(s.map(lambda v: v)).collect()
        plan_of(mixed)
    ok = plan_of(lambda env: src(env).filter(bool).key_by(lambda v: 1)
                 .reduce(lambda a, b: a).collect())
    assert ok.read == [0, 1, 2] and ok.keyed == [3, 4]


def test_ensure_stream_is_idempotent_between_workers(store, tmp_path):
    a = ex.ExchangeConfig.load(tmp_path, "app", 3)
    b = ex.ExchangeConfig.load(tmp_path, "app", 8)  # the first one's choice stands
    assert (a.stream, a.key_groups, a.secret) == (b.stream, 3, b.secret)
    a.ensure_stream(store)
    b.ensure_stream(store)
    assert len(store.list_shards(stream_name=a.stream)["Shards"]) == 3
    assert oct((tmp_path / ex.KEY_FILE).stat().st_mode & 0o777) == "0o600"


def test_a_union_before_key_by_sends_both_copies_of_each_record(store, tmp_path):
    store.create_stream("in", shard_count=1)
    store.create_stream("out", shard_count=1)

    def build(env):
        s = env.from_kinesis("in", store)
        (s.map(lambda v: {"k": v["k"], "n": 1})
            .union(s.map(lambda v: {"k": v["k"], "n": 10}))
            .key_by(lambda v: v["k"])
            .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
            .sink_to_kinesis("out", store))
    cluster = Cluster(store, tmp_path, build, key_groups=2)
    put(store, "in", [{"k": "a"}] * 5 + [{"k": "b"}] * 3)
    cluster.pump_all()
    assert totals(store, "out") == {"a": 55, "b": 33}


def test_a_record_too_large_for_the_exchange_is_refused_by_name(store, tmp_path):
    store.create_stream("in", shard_count=1)
    store.create_stream("out", shard_count=1)

    def build(env):
        (env.from_kinesis("in", store)
            .map(lambda v: {**v, "blob": "x" * 1_100_000})
            .key_by(lambda v: v["k"])
            .reduce(lambda a, b: a)
            .sink_to_kinesis("out", store))
    cluster = Cluster(store, tmp_path, build, key_groups=1)
    put(store, "in", [{"k": "a"}])
    with pytest.raises(ex.ExchangeError, match="over the 1,048,576-byte record limit"):
        cluster.pump_all()
