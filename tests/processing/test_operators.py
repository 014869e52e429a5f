"""Stateless and keyed operators of the DataStream API, checked against hand-computed
results: map / filter / flat_map / key_by / union / process with side outputs, keyed
value / list / map state, event-time and processing-time timers, rolling reduce, and
the provenance ids (``Record.rid``) every output carries."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from processing_testkit import (
    FakeClock,
    ScriptedSource,
    StepLimit,
    event_time,
    watermark_trace,
    wm,
)

from forestream.processing import (
    KeyedProcessFunction,
    ListStateDescriptor,
    MapStateDescriptor,
    OutputTag,
    ProcessFunction,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    ValueStateDescriptor,
)
from forestream.processing import runtime as runtime_module


@pytest.fixture
def no_idle_sleep(monkeypatch):
    """Steps that poll nothing normally sleep 50 ms; scripted tests need no real time."""
    monkeypatch.setattr(runtime_module, "IDLE_SLEEP_SECONDS", 0.0)


# ----------------------------------------------------------------------------- stateless
def test_map_filter_flat_map_chain():
    env = StreamExecutionEnvironment()
    out = (env.from_collection([1, 2, 3, 4, 5, 6])
           .map(lambda x: x * 10)
           .filter(lambda x: x % 20 != 0)
           .flat_map(lambda x: [x, x + 1])
           .collect())
    env.execute()
    assert out.values == [10, 11, 30, 31, 50, 51]


def test_flat_map_may_return_nothing_and_keeps_order_across_batches():
    env = StreamExecutionEnvironment(batch_size=2)
    out = (env.from_collection(["a b", "", "c", "d e f"])
           .flat_map(lambda s: s.split() or None)
           .collect())
    env.execute()
    assert out.values == ["a", "b", "c", "d", "e", "f"]


def test_key_by_sets_the_key_and_keeps_values_and_order():
    env = StreamExecutionEnvironment(batch_size=3)
    out = env.from_collection([5, 7, 9, 10, 12]).key_by(lambda x: x % 3).collect()
    env.execute()
    assert out.values == [5, 7, 9, 10, 12]
    assert [r.key for r in out.records] == [2, 1, 0, 1, 0]


def test_union_merges_all_inputs():
    env = StreamExecutionEnvironment(batch_size=2)
    a = env.from_collection([1, 2, 3])
    b = env.from_collection([10, 20])
    c = env.from_collection([100])
    out = a.union(b, c).map(lambda x: x + 1).collect()
    env.execute()
    assert sorted(out.values) == [2, 3, 4, 11, 21, 101]


def test_union_takes_the_minimum_watermark_of_its_inputs():
    """The fast input jumps to 50 while the slow one is still at 5: the union's watermark
    follows the slow one, so 6, 7 and 8 are not late for window [0, 10)."""
    env = StreamExecutionEnvironment(batch_size=1)
    fast = env.from_collection([1, 50, 51], watermark_strategy=event_time())
    slow = env.from_collection([5, 6, 7, 8, 12], watermark_strategy=event_time())
    union = fast.union(slow)
    out = (union.key_by(lambda x: 0).window(TumblingEventTimeWindows.of(10))
           .reduce(lambda a, b: a + b).collect())
    _, trace = watermark_trace(env, union.node.index, steps=10)
    assert trace[:4] == [wm(1), wm(6), wm(7), wm(8)]
    # [0,10): 1 + 5 + 6 + 7 + 8; [10,20): 12; [50,60): 50 + 51
    assert out.values == [27, 12, 101]


def test_process_function_yields_several_values_and_side_outputs():
    odd_tag, big_tag = OutputTag("odd"), OutputTag("big")

    class Split(ProcessFunction):
        def process_element(self, value, ctx):
            if value % 2:
                ctx.output(odd_tag, value)
            else:
                yield value
                yield value * 100
            if value > 4:
                ctx.output(big_tag, f"big:{value}")

    env = StreamExecutionEnvironment(batch_size=2)
    main = env.from_collection([1, 2, 3, 4, 5, 6]).process(Split())
    evens = main.collect()
    odds = main.get_side_output(odd_tag).collect()
    bigs = main.get_side_output(big_tag).map(str.upper).collect()
    env.execute()
    assert evens.values == [2, 200, 4, 400, 6, 600]
    assert odds.values == [1, 3, 5]
    assert bigs.values == ["BIG:5", "BIG:6"]


def test_process_function_may_return_a_value_a_list_or_none():
    class Shapes(ProcessFunction):
        def process_element(self, value, ctx):
            if value == 0:
                return None
            if value == 1:
                return "one"
            return [value] * value

    env = StreamExecutionEnvironment()
    out = env.from_collection([0, 1, 2, 3]).process(Shapes()).collect()
    env.execute()
    assert out.values == ["one", 2, 2, 3, 3, 3]


def test_process_function_sees_the_record_timestamp():
    class Stamp(ProcessFunction):
        def process_element(self, value, ctx):
            yield (value, ctx.timestamp(), ctx.get_current_key())

    env = StreamExecutionEnvironment()
    out = env.from_collection(["a", "b"], timestamps=[1.5, 2.5]).process(Stamp()).collect()
    env.execute()
    assert out.values == [("a", 1.5, None), ("b", 2.5, None)]
    assert [r.timestamp for r in out.records] == [1.5, 2.5]


# ------------------------------------------------------------------------ keyed state
class RunningCount(KeyedProcessFunction):
    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", 0))

    def process_element(self, value, ctx):
        n = self.count.value() + 1
        self.count.update(n)
        yield (ctx.get_current_key(), n)


def test_value_state_keeps_a_running_count_per_key():
    words = ["to", "be", "or", "not", "to", "be", "that", "is", "to", "be"]
    env = StreamExecutionEnvironment(batch_size=3)
    out = env.from_collection(words).key_by(lambda w: w).process(RunningCount()).collect()
    env.execute()
    seen: Counter = Counter()
    expected = []
    for w in words:
        seen[w] += 1
        expected.append((w, seen[w]))
    assert out.values == expected
    assert out.values[-1] == ("be", 3)
    assert [r.key for r in out.records] == words


def test_value_state_clear_resets_to_the_default():
    class CountUntilReset(KeyedProcessFunction):
        def open(self, runtime_context):
            self.count = runtime_context.get_state(ValueStateDescriptor("n", 0))

        def process_element(self, value, ctx):
            if value[1] == "reset":
                self.count.clear()
                return None
            self.count.update(self.count.value() + 1)
            return [(value[0], self.count.value())]  # a tuple would be several values

    data = [("a", "x"), ("a", "x"), ("b", "x"), ("a", "reset"), ("a", "x"), ("b", "x")]
    env = StreamExecutionEnvironment(batch_size=1)
    out = env.from_collection(data).key_by(lambda v: v[0]).process(CountUntilReset()).collect()
    env.execute()
    assert out.values == [("a", 1), ("a", 2), ("b", 1), ("a", 1), ("b", 2)]


def test_list_state_buffers_per_key_and_emits_every_third():
    class Triples(KeyedProcessFunction):
        def open(self, runtime_context):
            self.buffer = runtime_context.get_list_state(ListStateDescriptor("buffer"))

        def process_element(self, value, ctx):
            self.buffer.add(value[1])
            items = self.buffer.get()
            if len(items) == 3:
                self.buffer.clear()
                yield (ctx.get_current_key(), items)

    data = [("a", 1), ("b", 10), ("a", 2), ("b", 20), ("a", 3), ("a", 4), ("b", 30),
            ("a", 5), ("a", 6)]
    env = StreamExecutionEnvironment(batch_size=4)
    out = env.from_collection(data).key_by(lambda v: v[0]).process(Triples()).collect()
    env.execute()
    assert out.values == [("a", [1, 2, 3]), ("b", [10, 20, 30]), ("a", [4, 5, 6])]


def test_list_state_update_replaces_the_list():
    class KeepLastTwo(KeyedProcessFunction):
        def open(self, runtime_context):
            self.last = runtime_context.get_list_state(ListStateDescriptor("last"))

        def process_element(self, value, ctx):
            self.last.update((self.last.get() + [value[1]])[-2:])
            yield self.last.get()

    data = [("k", 1), ("k", 2), ("j", 9), ("k", 3)]
    env = StreamExecutionEnvironment()
    out = env.from_collection(data).key_by(lambda v: v[0]).process(KeepLastTwo()).collect()
    env.execute()
    assert out.values == [[1], [1, 2], [9], [2, 3]]


def test_map_state_counts_pages_per_user():
    class PageCounts(KeyedProcessFunction):
        def open(self, runtime_context):
            self.pages = runtime_context.get_map_state(MapStateDescriptor("pages"))

        def process_element(self, value, ctx):
            user, page = value
            if page == "forget-home":
                self.pages.remove("home")
            else:
                self.pages.put(page, self.pages.get(page, 0) + 1)
            yield (user, dict(sorted(self.pages.items())), self.pages.contains("home"))

    clicks = [("ann", "home"), ("bob", "cart"), ("ann", "cart"), ("ann", "home"),
              ("bob", "cart"), ("ann", "forget-home")]
    env = StreamExecutionEnvironment(batch_size=2)
    out = env.from_collection(clicks).key_by(lambda v: v[0]).process(PageCounts()).collect()
    env.execute()
    assert out.values == [
        ("ann", {"home": 1}, True),
        ("bob", {"cart": 1}, False),
        ("ann", {"cart": 1, "home": 1}, True),
        ("ann", {"cart": 1, "home": 2}, True),
        ("bob", {"cart": 2}, False),
        ("ann", {"cart": 1}, False),
    ]


def test_keyed_process_function_on_a_non_keyed_stream_raises_type_error():
    env = StreamExecutionEnvironment()
    stream = env.from_collection([1, 2, 3])
    with pytest.raises(TypeError, match="key_by"):
        stream.process(RunningCount())
    # a map after key_by gives a plain DataStream again (as in Flink)
    with pytest.raises(TypeError, match="key_by"):
        stream.key_by(lambda x: x).map(lambda x: x).process(RunningCount())


def test_keyed_state_and_timers_in_a_non_keyed_process_function_raise_type_error():
    class WantsState(ProcessFunction):
        def open(self, runtime_context):
            runtime_context.get_state(ValueStateDescriptor("x"))

        def process_element(self, value, ctx):
            yield value

    env = StreamExecutionEnvironment()
    env.from_collection([1]).process(WantsState()).collect()
    with pytest.raises(TypeError, match="keyed"):
        env.execute()

    class WantsTimers(ProcessFunction):
        def process_element(self, value, ctx):
            ctx.timer_service().register_event_time_timer(10.0)
            yield value

    env = StreamExecutionEnvironment()
    env.from_collection([1]).process(WantsTimers()).collect()
    with pytest.raises(TypeError, match="keyed"):
        env.execute()


def test_rolling_reduce_emits_the_running_result_per_key():
    data = [("a", 1), ("b", 5), ("a", 2), ("a", 3), ("b", 7), ("c", 0)]
    env = StreamExecutionEnvironment(batch_size=2)
    out = (env.from_collection(data).key_by(lambda v: v[0])
           .reduce(lambda acc, v: (acc[0], acc[1] + v[1])).collect())
    env.execute()
    assert out.values == [("a", 1), ("b", 5), ("a", 3), ("a", 6), ("b", 12), ("c", 0)]


# ----------------------------------------------------------------------------- timers
class EventTimers(KeyedProcessFunction):
    """``(key, ts, "reg")`` registers a timer at ts + 10; ``(key, ts, "del", t)`` deletes
    the key's timer at t. Timers report (key, time, watermark when fired)."""

    def process_element(self, value, ctx):
        timers = ctx.timer_service()
        if value[2] == "reg":
            timers.register_event_time_timer(ctx.timestamp() + 10)
        else:
            timers.delete_event_time_timer(value[3])
        return None

    def on_timer(self, timestamp, ctx):
        assert ctx.timestamp() == timestamp
        yield (ctx.get_current_key(), timestamp, ctx.timer_service().current_watermark())


def test_event_time_timers_fire_when_the_watermark_passes_once_per_key_and_time():
    data = [("a", 1, "reg"), ("b", 2, "reg"), ("a", 1, "reg"), ("c", 3, "reg"),
            ("c", 4, "del", 13.0), ("a", 11.5, "reg"), ("b", 30, "reg")]
    env = StreamExecutionEnvironment(batch_size=1)
    out = (env.from_collection(data, watermark_strategy=event_time(0, field=1))
           .key_by(lambda v: v[0]).process(EventTimers()).collect())
    env.execute()
    assert out.values == [
        ("a", 11.0, wm(11.5)),       # a@11 (registered twice: fires once) at wm 11.499
        ("b", 12.0, wm(30)),         # c@13 was deleted
        ("a", 21.5, wm(30)),
        ("b", 40.0, math.inf),       # the end of bounded input fires what is left
    ]
    assert [r.timestamp for r in out.records] == [11.0, 12.0, 21.5, 40.0]
    assert [r.key for r in out.records] == ["a", "b", "a", "b"]


def test_event_time_timer_can_be_registered_again_after_deletion():
    class Toggle(KeyedProcessFunction):
        def process_element(self, value, ctx):
            service = ctx.timer_service()
            service.register_event_time_timer(100.0)
            service.delete_event_time_timer(100.0)
            if value[1] == 2:
                service.register_event_time_timer(100.0)
            return None

        def on_timer(self, timestamp, ctx):
            yield (ctx.get_current_key(), timestamp)

    env = StreamExecutionEnvironment(batch_size=1)
    data = [("k", 1), ("k", 2), ("j", 3)]
    out = (env.from_collection(data, watermark_strategy=event_time(0, field=1))
           .key_by(lambda v: v[0]).process(Toggle()).collect())
    env.execute()
    assert out.values == [("k", 100.0)]


class ProcessingTimers(KeyedProcessFunction):
    """``(key, "reg", delay)`` registers a processing-time timer at now + delay;
    ``(key, "del", t)`` deletes the one at t."""

    def process_element(self, value, ctx):
        service = ctx.timer_service()
        if value[1] == "reg":
            service.register_processing_time_timer(service.current_processing_time() + value[2])
        else:
            service.delete_processing_time_timer(value[2])
        return None

    def on_timer(self, timestamp, ctx):
        yield (ctx.get_current_key(), timestamp, ctx.timer_service().current_processing_time())


def test_processing_time_timers_follow_the_clock(no_idle_sleep):
    clock = FakeClock(0.0)
    script = [  # step k runs at clock time k
        [("s", ("a", "reg", 3))],   # t=1: a@4
        [("s", ("b", "reg", 3))],   # t=2: b@5
        [("s", ("a", "reg", 1))],   # t=3: a@4 again: still one timer
        [("s", ("c", "reg", 2))],   # t=4: c@6; a@4 fires
        [("s", ("c", "del", 6))],   # t=5: c@6 deleted; b@5 fires
    ]
    env = StreamExecutionEnvironment(clock=clock)
    out = (env.from_source(ScriptedSource(script)).key_by(lambda v: v[0])
           .process(ProcessingTimers()).collect())
    env.execute(until=StepLimit(9, clock))
    assert out.values == [("a", 4.0, 4.0), ("b", 5.0, 5.0)]
    assert [r.timestamp for r in out.records] == [4.0, 5.0]


def test_processing_time_timers_with_the_wall_clock():
    import time

    fired = []

    class Later(KeyedProcessFunction):
        def process_element(self, value, ctx):
            service = ctx.timer_service()
            service.register_processing_time_timer(service.current_processing_time() + 0.05)
            return None

        def on_timer(self, timestamp, ctx):
            fired.append((ctx.get_current_key(), time.time() >= timestamp))
            yield ctx.get_current_key()

    env = StreamExecutionEnvironment()
    out = (env.from_source(ScriptedSource([[("s", "x"), ("s", "y")]])).key_by(lambda v: v)
           .process(Later()).collect())
    env.execute(until=lambda: len(out.values) == 2, max_seconds=5)
    assert sorted(out.values) == ["x", "y"]
    assert all(on_time for _, on_time in fired)


# --------------------------------------------------------------------------- record ids
def _provenance_job():
    z_words = OutputTag("z-words")

    class CountAndTime(KeyedProcessFunction):
        def open(self, runtime_context):
            self.count = runtime_context.get_state(ValueStateDescriptor("c", 0))

        def process_element(self, value, ctx):
            self.count.update(self.count.value() + 1)
            if value["word"].startswith("z"):
                ctx.output(z_words, value["word"])
            ctx.timer_service().register_event_time_timer(ctx.timestamp() + 5)
            yield (value["word"], self.count.value())
            yield value["word"].upper()

        def on_timer(self, timestamp, ctx):
            yield ("timer", ctx.get_current_key(), timestamp)

    lines = [{"t": i, "text": text} for i, text in enumerate(
        ["a b", "b zed", "c a b", "zoo a", "b b", "a"])]
    env = StreamExecutionEnvironment(batch_size=2)
    words = (env.from_collection(lines, watermark_strategy=event_time(1, field="t"))
             .flat_map(lambda line: [{"word": w, "t": line["t"]} for w in line["text"].split()]))
    processed = words.key_by(lambda w: w["word"]).process(CountAndTime())
    sinks = {
        "main": processed.collect(),
        "side": processed.get_side_output(z_words).collect(),
        "windows": (words.key_by(lambda w: w["word"]).window(TumblingEventTimeWindows.of(2))
                    .reduce(lambda a, b: {"word": a["word"], "t": max(a["t"], b["t"])})
                    .collect()),
        "rolling": words.key_by(lambda w: w["word"]).reduce(lambda a, b: a).collect(),
    }
    env.execute()
    return {name: [(r.rid, r.value) for r in sink.records] for name, sink in sinks.items()}


def test_record_ids_are_stable_across_runs_and_unique_per_output():
    first, second = _provenance_job(), _provenance_job()
    assert first == second
    for name, pairs in first.items():
        rids = [rid for rid, _ in pairs]
        assert pairs, name
        assert all(rids), name
        assert len(set(rids)) == len(rids), f"duplicate record ids in {name}: {rids}"
    # timers and element outputs do not share ids
    assert any(v[0] == "timer" for _, v in first["main"] if isinstance(v, tuple))


def test_record_ids_follow_the_path_through_flat_map_and_process():
    class Twice(ProcessFunction):
        def process_element(self, value, ctx):
            yield value
            yield value

    env = StreamExecutionEnvironment()
    out = (env.from_collection(["x y", "z"]).flat_map(str.split).process(Twice())
           .map(str.upper).collect())
    env.execute()
    assert out.values == ["X", "X", "Y", "Y", "Z", "Z"]
    rids = [r.rid for r in out.records]
    assert len(set(rids)) == 6
    # records derived from the same input share its id as a prefix
    assert rids[0].startswith("collection@0") and rids[5].startswith("collection@1")


def test_record_ids_are_unique_after_a_union_of_two_sources():
    env = StreamExecutionEnvironment()
    a = env.from_collection([1, 2])
    b = env.from_collection([3, 4])
    out = a.union(b).collect()
    env.execute()
    rids = [r.rid for r in out.records]
    assert len(set(rids)) == 4, rids


def test_record_ids_are_unique_after_a_union_of_two_branches():
    env = StreamExecutionEnvironment()
    source = env.from_collection([1, 2])
    out = source.map(lambda x: x * 10).union(source.map(lambda x: -x)).collect()
    env.execute()
    assert sorted(out.values) == [-2, -1, 10, 20]
    rids = [r.rid for r in out.records]
    assert len(set(rids)) == 4, rids
