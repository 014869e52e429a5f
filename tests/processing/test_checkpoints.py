"""Checkpoints and exactly-once state: a job interrupted (stopped, crashed, SIGKILLed)
and restarted from its checkpoint directory produces exactly what an uninterrupted run
produces — window results, keyed state, files."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from processing_testkit import FakeClock, SplitAwareSource, StepLimit, event_time

from forestream.processing import (
    AggregateFunction,
    JobRunner,
    KeyedProcessFunction,
    ListSink,
    ListStateDescriptor,
    MapStateDescriptor,
    ProcessWindowFunction,
    SlidingEventTimeWindows,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    ValueStateDescriptor,
)
from forestream.processing import runtime as runtime_module


class Crash(RuntimeError):
    pass


def events(n=600):
    """Deterministic, slightly out of order (by at most 1.2 s) events for 4 keys."""
    for i in range(n):
        yield {"k": f"k{i % 4}", "t": i * 0.5 + (i * 7 % 5) * 0.3, "v": i}


class CountSum(AggregateFunction):
    def create_accumulator(self):
        return (0, 0)

    def add(self, value, acc):
        return (acc[0] + 1, acc[1] + value["v"])

    def get_result(self, acc):
        return acc


class Describe(ProcessWindowFunction):
    def process(self, key, window, elements):
        (count, total), = elements
        yield {"k": key, "start": window.start, "end": window.end, "n": count, "sum": total}


def crash_at(v):
    """A map that raises at the record with ``v`` (never for None): always in the graph,
    so that the crashing and the restarted program build the same graph."""

    def check(e):
        if v is not None and e["v"] == v:
            raise Crash(f"crash at {v}")
        return e
    return check


def window_job(env, out_dir: Path, sink: ListSink | None = None, crash: int | None = None,
               n: int = 600):
    """Tumbling + sliding windows and a count window into files (and a list sink)."""
    source = env.from_generator(lambda: events(n), event_time(2, "t"))
    source = source.map(crash_at(crash))
    keyed = source.key_by(lambda e: e["k"])
    tumbling = keyed.window(TumblingEventTimeWindows.of(10)).aggregate(CountSum(), Describe())
    tumbling.write_to_file(out_dir / "tumbling.jsonl")
    (keyed.window(SlidingEventTimeWindows.of(20, 5)).aggregate(CountSum(), Describe())
     .write_to_file(out_dir / "sliding.jsonl"))
    (keyed.count_window(5, 2).reduce(lambda a, b: {**b, "v": a["v"] + b["v"]})
     .write_to_file(out_dir / "count.jsonl"))
    return tumbling.sink_to(sink if sink is not None else ListSink())


def files(out_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out_dir.glob("*.jsonl"))}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("reference")
    env = StreamExecutionEnvironment(batch_size=25)
    sink = window_job(env, out)
    env.execute()
    return sink.values, files(out), [r.rid for r in sink.records]


def make_env(ckpt: Path, **kwargs) -> StreamExecutionEnvironment:
    return StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=0.0,
                                      batch_size=kwargs.pop("batch_size", 25), **kwargs)


def test_reference_run_is_what_the_windows_should_give(reference):
    values, _, _ = reference
    expected = {}
    for e in events():
        start = e["t"] - e["t"] % 10
        n, s = expected.get((e["k"], start), (0, 0))
        expected[(e["k"], start)] = (n + 1, s + e["v"])
    assert {(v["k"], v["start"]): (v["n"], v["sum"]) for v in values} == expected
    assert len(values) == len(expected)


# ------------------------------------------------------------------ stop and resume
def test_stop_with_until_then_resume_gives_the_uninterrupted_results(tmp_path, reference):
    ref_values, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    env = make_env(ckpt)
    first = window_job(env, out)
    result = env.execute(until=StepLimit(7))
    assert result.steps == 7 and result.checkpoints >= 1
    env = make_env(ckpt)
    second = window_job(env, out)
    result = env.execute()
    assert result.restored_from is not None
    assert first.values + second.values == ref_values
    assert files(out) == ref_files


def test_stop_from_inside_the_job_then_resume(tmp_path, reference):
    ref_values, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    env = make_env(ckpt)
    first = window_job(env, out)
    env.from_generator(lambda: range(10**9)).add_sink(  # a practically endless companion
        lambda i: runner.stop() if i == 200 else None)
    runner = JobRunner(env.graph, "job")  # after the whole graph is built
    result = runner.run()
    assert result.checkpoints >= 1 and 0 < len(first.values) < len(ref_values)
    env = make_env(ckpt)
    second = window_job(env, out)
    env.from_generator(lambda: range(250)).add_sink(lambda i: None)
    env.execute()
    assert first.values + second.values == ref_values
    assert files(out) == ref_files


@pytest.mark.parametrize("crash", [30, 333, 599])
def test_crash_then_restore_gives_the_uninterrupted_results(tmp_path, reference, crash):
    ref_values, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    shared = ListSink()  # the same sink in both runs: restore truncates it
    env = make_env(ckpt)
    window_job(env, out, shared, crash=crash)
    with pytest.raises(Crash):
        env.execute()
    crashed_lines = sum(len(b.splitlines()) for b in files(out).values())
    env = make_env(ckpt)
    window_job(env, out, shared)
    result = env.execute()
    assert result.restored_from is not None
    assert shared.values == ref_values
    assert [r.rid for r in shared.records] == reference[2]  # replayed outputs keep their ids
    assert files(out) == ref_files
    assert crashed_lines < sum(len(b.splitlines()) for b in ref_files.values())


def test_several_crashes_in_a_row(tmp_path, reference):
    ref_values, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    shared = ListSink()
    for crash in (100, 101, 250, 420):
        env = make_env(ckpt, batch_size=17)
        window_job(env, out, shared, crash=crash)
        with pytest.raises(Crash):
            env.execute()
    env = make_env(ckpt, batch_size=17)
    window_job(env, out, shared)
    env.execute()
    assert shared.values == ref_values
    assert files(out) == ref_files


def test_a_finished_job_restarted_on_its_checkpoint_adds_nothing(tmp_path, reference):
    ref_values, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    env = make_env(ckpt)
    window_job(env, out)
    env.execute()
    assert files(out) == ref_files
    env = make_env(ckpt)
    again = window_job(env, out)
    env.execute()
    assert again.values == []
    assert files(out) == ref_files


def test_a_crash_before_the_first_checkpoint_does_not_duplicate_file_output(tmp_path,
                                                                           reference):
    _, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    env = StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=3600,
                                     batch_size=25)
    window_job(env, out, crash=400)
    with pytest.raises(Crash):
        env.execute()
    env = StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=3600,
                                     batch_size=25)
    window_job(env, out)
    env.execute()
    assert files(out) == ref_files


# ------------------------------------------------------------------------ keyed state
class Counts(KeyedProcessFunction):
    """Per key: a running count (value state), the last three values (list state) and a
    histogram of v % 3 (map state)."""

    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", 0))
        self.last = runtime_context.get_list_state(ListStateDescriptor("last"))
        self.hist = runtime_context.get_map_state(MapStateDescriptor("hist"))

    def process_element(self, value, ctx):
        self.count.update(self.count.value() + 1)
        self.last.update((self.last.get() + [value["v"]])[-3:])
        bucket = value["v"] % 3
        self.hist.put(bucket, self.hist.get(bucket, 0) + 1)
        yield {"k": ctx.get_current_key(), "count": self.count.value(),
               "last": self.last.get(), "hist": sorted(self.hist.items())}


def keyed_job(env, counts: ListSink, rolling: ListSink, crash: int | None = None):
    source = env.from_generator(lambda: events(300))
    source = source.map(crash_at(crash))
    keyed = source.key_by(lambda e: e["k"])
    keyed.process(Counts()).sink_to(counts)
    keyed.reduce(lambda a, b: {**b, "v": a["v"] + b["v"]}).sink_to(rolling)


def test_keyed_state_reference_run():
    env = StreamExecutionEnvironment(batch_size=20)
    counts, rolling = ListSink(), ListSink()
    keyed_job(env, counts, rolling)
    env.execute()
    assert counts.values[-1] == {"k": "k3", "count": 75, "last": [291, 295, 299],
                                 "hist": [(0, 25), (1, 25), (2, 25)]}
    assert rolling.values[-1]["v"] == sum(range(3, 300, 4))


@pytest.mark.parametrize("how", ["until", "crash"])
def test_keyed_state_survives_a_restart(tmp_path, how):
    env = StreamExecutionEnvironment(batch_size=20)
    ref_counts, ref_rolling = ListSink(), ListSink()
    keyed_job(env, ref_counts, ref_rolling)
    env.execute()

    counts, rolling = ListSink(), ListSink()
    env = make_env(tmp_path / "ckpt", batch_size=20)
    keyed_job(env, counts, rolling, crash=None if how == "until" else 150)
    if how == "until":
        env.execute(until=StepLimit(6))
    else:
        with pytest.raises(Crash):
            env.execute()
    env = make_env(tmp_path / "ckpt", batch_size=20)
    keyed_job(env, counts, rolling)
    assert env.execute().restored_from is not None
    assert counts.values == ref_counts.values
    assert rolling.values == ref_rolling.values


def test_event_time_timers_survive_a_restart(tmp_path):
    class Remind(KeyedProcessFunction):
        def process_element(self, value, ctx):
            ctx.timer_service().register_event_time_timer(value["t"] + 5)
            return None

        def on_timer(self, timestamp, ctx):
            yield (ctx.get_current_key(), timestamp)

    def job(env, sink, crash=None):
        source = env.from_generator(lambda: events(200), event_time(2, "t"))
        source = source.map(crash_at(crash))
        source.key_by(lambda e: e["k"]).process(Remind()).sink_to(sink)

    env = StreamExecutionEnvironment(batch_size=10)
    ref = ListSink()
    job(env, ref)
    env.execute()
    assert len(ref.values) == 200
    shared = ListSink()
    env = make_env(tmp_path / "ckpt", batch_size=10)
    job(env, shared, crash=120)
    with pytest.raises(Crash):
        env.execute()
    env = make_env(tmp_path / "ckpt", batch_size=10)
    job(env, shared)
    env.execute()
    assert shared.values == ref.values


# ------------------------------------------------------------------- checkpoint files
def test_checkpoint_files_are_atomic_and_only_three_are_kept(tmp_path):
    ckpt = tmp_path / "ckpt"
    env = make_env(ckpt, batch_size=10)
    window_job(env, tmp_path / "out", n=200)
    result = env.execute()
    names = sorted(p.name for p in ckpt.iterdir())
    last = result.checkpoints
    assert last >= 20
    assert names == [f"checkpoint-{i:08d}.pkl" for i in (last - 2, last - 1, last)]
    snapshot = runtime_module.read_checkpoint(ckpt / names[-1])
    assert snapshot["id"] == last
    assert snapshot["graph"] == [n.uid for n in env.nodes]


def test_a_checkpoint_in_format_1_is_still_restored(tmp_path, reference):
    """Checkpoints written before format 2 (one zlib pickle, ``FSCKPT1z``) restore: an
    application upgraded in place resumes where it was."""
    import pickle
    import zlib

    ref_values, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    env = make_env(ckpt)
    first = window_job(env, out)
    env.execute(until=StepLimit(5))
    for path in ckpt.glob("checkpoint-*.pkl"):  # rewritten as the older version wrote them
        assert path.read_bytes().startswith(runtime_module.CHECKPOINT_MAGIC)
        snapshot = runtime_module.read_checkpoint(path)
        path.write_bytes(b"FSCKPT1z" + zlib.compress(pickle.dumps(snapshot), 1))
    env = make_env(ckpt)
    second = window_job(env, out)
    assert env.execute().restored_from is not None
    assert first.values + second.values == ref_values
    assert files(out) == ref_files
    newest = max(ckpt.glob("checkpoint-*.pkl"))
    assert newest.read_bytes().startswith(b"FSCKPT2s")


def test_a_leftover_temp_file_from_a_crash_is_ignored_and_replaced(tmp_path, reference):
    ref_values, ref_files, _ = reference
    ckpt, out = tmp_path / "ckpt", tmp_path / "out"
    env = make_env(ckpt)
    first = window_job(env, out)
    env.execute(until=StepLimit(5))
    latest = max(ckpt.glob("checkpoint-*.pkl"))
    next_id = int(latest.stem.split("-")[1]) + 1
    # a checkpoint torn by a crash while it was being written
    (ckpt / f"checkpoint-{next_id:08d}.tmp").write_bytes(b"\x80\x05torn")
    env = make_env(ckpt)
    second = window_job(env, out)
    result = env.execute()
    assert result.restored_from == next_id - 1
    assert first.values + second.values == ref_values
    assert files(out) == ref_files
    assert not list(ckpt.glob("*.tmp"))


def test_a_checkpoint_of_a_different_graph_is_refused_by_name(tmp_path):
    ckpt = tmp_path / "ckpt"
    env = make_env(ckpt)
    env.from_collection([1, 2, 3]).map(lambda x: x + 1).collect()
    env.execute()
    latest = max(ckpt.glob("checkpoint-*.pkl"))
    env = make_env(ckpt)
    env.from_collection([1, 2, 3]).filter(lambda x: x > 1).map(lambda x: x + 1).collect()
    with pytest.raises(ValueError, match=str(latest.name)) as info:
        env.execute()
    assert "different job graph" in str(info.value)


def test_restore_with_idleness_continues_the_job(tmp_path, monkeypatch):
    monkeypatch.setattr(runtime_module, "IDLE_SLEEP_SECONDS", 0.0)
    script = [[("A", 1), ("B", 2)], [("A", 12)], [("B", 14)], [("A", 25)], [("B", 31)]]

    def job(env):
        return (env.from_source(SplitAwareSource(script, ["A", "B"], bounded=True),
                                event_time(idleness=30))
                .key_by(lambda v: 0).window(TumblingEventTimeWindows.of(10))
                .reduce(lambda a, b: a + b).collect())

    clock = FakeClock()
    env = make_env(tmp_path / "ckpt", clock=clock)
    first = job(env)
    env.execute(until=StepLimit(3, clock))
    env = make_env(tmp_path / "ckpt", clock=clock)
    second = job(env)
    env.execute(until=StepLimit(10, clock))
    assert first.values + second.values == [3, 26, 25, 31]


# -------------------------------------------------------------------------- SIGKILL
CRASH_JOB = textwrap.dedent('''
    import os, signal, sys
    from pathlib import Path

    from forestream.processing import (AggregateFunction, KeyedProcessFunction,
        ProcessWindowFunction, SlidingEventTimeWindows, StreamExecutionEnvironment,
        TumblingEventTimeWindows, ValueStateDescriptor, WatermarkStrategy)

    out, ckpt, kill_after = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    N = 5000

    def events():
        for i in range(N):
            yield {"k": "k%d" % (i % 5), "t": i * 0.25 + (i * 7919 % 11) * 0.2, "v": i}

    class CountSum(AggregateFunction):
        def create_accumulator(self):
            return (0, 0)
        def add(self, value, acc):
            return (acc[0] + 1, acc[1] + value["v"])
        def get_result(self, acc):
            return acc

    class Describe(ProcessWindowFunction):
        def process(self, key, window, elements):
            (n, s), = elements
            yield {"k": key, "start": window.start, "n": n, "sum": s}

    class RunningCount(KeyedProcessFunction):
        def open(self, runtime_context):
            self.n = runtime_context.get_state(ValueStateDescriptor("n", 0))
        def process_element(self, value, ctx):
            self.n.update(self.n.value() + 1)
            if self.n.value() % 50 == 0:
                yield {"k": ctx.get_current_key(), "n": self.n.value(), "v": value["v"]}

    strategy = (WatermarkStrategy.for_bounded_out_of_orderness(3)
                .with_timestamp_assigner(lambda e, ts: e["t"]))
    env = StreamExecutionEnvironment(checkpoint_dir=ckpt, checkpoint_interval=0.0,
                                     batch_size=40)
    source = env.from_generator(events, strategy)
    source.map(lambda e: {"v": e["v"], "x": e["v"] * 31 % 97}).write_to_file(
        out / "records.jsonl")
    keyed = source.key_by(lambda e: e["k"])
    keyed.window(TumblingEventTimeWindows.of(10)).aggregate(CountSum(), Describe()) \\
        .write_to_file(out / "tumbling.jsonl")
    keyed.window(SlidingEventTimeWindows.of(20, 5)).aggregate(CountSum(), Describe()) \\
        .write_to_file(out / "sliding.csv", format="csv")
    keyed.count_window(7, 3).reduce(lambda a, b: {**b, "v": a["v"] + b["v"]}) \\
        .write_to_file(out / "count.jsonl")
    keyed.process(RunningCount()).write_to_file(out / "counts.jsonl")
    keyed.reduce(lambda a, b: {**b, "v": a["v"] + b["v"]}).filter(
        lambda e: e["v"] % 7 == 0).write_to_file(out / "rolling.jsonl")
    seen = [0]

    def killer(e):  # the last node: this step's sinks have written, its checkpoint not
        seen[0] += 1
        if kill_after >= 0 and seen[0] >= kill_after:
            os.kill(os.getpid(), signal.SIGKILL)
        return e

    source.map(killer)
    env.execute()
    print("finished")
''')


def run_job(script: Path, out: Path, ckpt: Path, kill_after: int = -1,
            kill_at: tuple[int, float] | None = None) -> int:
    """Run the job; ``kill_at`` (lines, seconds): SIGKILL it from outside that many seconds
    after its output first holds that many more lines (a moment tied to its progress, not
    to the wall clock: a loaded machine can make a run several times slower)."""
    out.mkdir(exist_ok=True)
    records = out / "records.jsonl"

    def lines() -> int:
        try:
            return records.read_bytes().count(b"\n")
        except OSError:
            return 0
    before = lines()
    proc = subprocess.Popen([sys.executable, str(script), str(out), str(ckpt),
                             str(kill_after)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill_at is not None:
        more, delay = kill_at
        deadline = time.monotonic() + 120
        while proc.poll() is None and lines() < before + more and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=60)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"job failed ({proc.returncode}): {stderr.decode()[-2000:]}")
    if proc.returncode == 0:
        assert b"finished" in stdout
    return proc.returncode


def read_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


@pytest.mark.slow
def test_sigkill_at_random_moments_then_restart_gives_the_uninterrupted_output(tmp_path):
    rng = random.Random(int(os.environ.get("FORESTREAM_PROCESSING_CRASH_SEED", "4242")))
    script = tmp_path / "job.py"
    script.write_text(CRASH_JOB)
    started = time.monotonic()
    assert run_job(script, tmp_path / "ref", tmp_path / "ref-ckpt") == 0
    full_run = time.monotonic() - started
    reference = read_files(tmp_path / "ref")
    assert set(reference) == {"records.jsonl", "tumbling.jsonl", "sliding.csv",
                              "count.jsonl", "counts.jsonl", "rolling.jsonl"}
    assert len(reference["records.jsonl"].splitlines()) == 5000

    out, ckpt = tmp_path / "out", tmp_path / "ckpt"
    kills, outcomes = 0, []
    for attempt in range(8):
        if attempt % 2 == 0:  # the job kills itself after a random number of records
            rc = run_job(script, out, ckpt, kill_after=rng.randint(90, 1000))
        else:  # the test kills it at a random moment (a checkpoint exists by now)
            rc = run_job(script, out, ckpt, kill_at=(rng.randint(50, 800),
                                                     rng.uniform(0.0, 0.05)))
        outcomes.append((attempt, rc, len((out / "records.jsonl").read_bytes().splitlines())))
        if rc == 0:
            break
        kills += 1
        assert list(ckpt.glob("checkpoint-*.pkl")), "killed before any checkpoint"
    else:
        assert run_job(script, out, ckpt) == 0
    assert kills >= 3, outcomes
    assert read_files(out) == reference, outcomes
    print(f"full run {full_run:.2f} s; (attempt, rc, lines) {outcomes}")
    assert not list(ckpt.glob("*.tmp"))
    assert len(list(ckpt.glob("checkpoint-*.pkl"))) <= 3


def test_file_sink_lines_are_whole_json_records(tmp_path, reference):
    _, ref_files, _ = reference
    for name, blob in ref_files.items():
        lines = blob.decode().splitlines()
        assert lines, name
        for line in lines:
            json.loads(line)
