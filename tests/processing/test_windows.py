"""Windows on keyed streams, in event time (bounded out-of-orderness watermarks),
processing time and by count, against hand-computed results."""

from __future__ import annotations

import pytest
from processing_testkit import FakeClock, ScriptedSource, StepLimit, event_time

from forestream.processing import (
    AggregateFunction,
    CountWindows,
    EventTimeSessionWindows,
    OutputTag,
    ProcessWindowFunction,
    SlidingEventTimeWindows,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
)
from forestream.processing import runtime as runtime_module


class Describe(ProcessWindowFunction):
    """(key, start, end, elements) for every window."""

    def process(self, key, window, elements):
        yield (key, window.start, window.end, list(elements))


class Items(ProcessWindowFunction):
    """The window's values (second field of each element), as one list."""

    def process(self, key, window, elements):
        yield [e[1] for e in elements]


class Average(AggregateFunction):
    def create_accumulator(self):
        return (0, 0)

    def add(self, value, acc):
        return (acc[0] + value[2], acc[1] + 1)

    def get_result(self, acc):
        return acc[0] / acc[1]

    def merge(self, a, b):
        return (a[0] + b[0], a[1] + b[1])


class WithWindow(ProcessWindowFunction):
    def process(self, key, window, elements):
        (result,) = elements
        yield (key, window.start, window.end, result)


def keyed_events(env, events, out_of_orderness=0.0):
    """``events``: (key, event time, value) tuples."""
    return (env.from_collection(events, watermark_strategy=event_time(out_of_orderness, 1))
            .key_by(lambda e: e[0]))


def reference_windows(events, size, slide=None):
    """{(key, start, end): [values]} by the textbook definition of sliding windows."""
    slide = slide or size
    out: dict = {}
    for key, ts, value in events:
        start = ts - ts % slide
        while start > ts - size:
            out.setdefault((key, start, start + size), []).append(value)
            start -= slide
    return out


EVENTS = [("a", 1, 1), ("b", 2, 10), ("a", 4, 2), ("a", 11, 3), ("b", 14, 20),
          ("a", 25, 4), ("b", 29, 30)]


# --------------------------------------------------------------------------- tumbling
@pytest.mark.parametrize("batch_size", [1, 3, 1000])
def test_tumbling_reduce_per_key_with_window_end_timestamps(batch_size):
    env = StreamExecutionEnvironment(batch_size=batch_size)
    out = (keyed_events(env, EVENTS).window(TumblingEventTimeWindows.of(10))
           .reduce(lambda x, y: (x[0], x[1], x[2] + y[2])).collect())
    env.execute()
    assert [(r.key, r.value[2]) for r in out.records] == [
        ("a", 3), ("b", 10), ("a", 3), ("b", 20), ("a", 4), ("b", 30)]
    assert [r.timestamp for r in out.records] == [
        10 - 0.001, 10 - 0.001, 20 - 0.001, 20 - 0.001, 30 - 0.001, 30 - 0.001]


def test_tumbling_process_window_function_sees_all_elements_and_the_window():
    env = StreamExecutionEnvironment(batch_size=2)
    out = keyed_events(env, EVENTS).window(TumblingEventTimeWindows.of(10)) \
        .process(Describe()).collect()
    env.execute()
    assert out.values == [
        ("a", 0.0, 10.0, [("a", 1, 1), ("a", 4, 2)]),
        ("b", 0.0, 10.0, [("b", 2, 10)]),
        ("a", 10.0, 20.0, [("a", 11, 3)]),
        ("b", 10.0, 20.0, [("b", 14, 20)]),
        ("a", 20.0, 30.0, [("a", 25, 4)]),
        ("b", 20.0, 30.0, [("b", 29, 30)]),
    ]


def test_tumbling_windows_with_an_offset():
    env = StreamExecutionEnvironment()
    out = (keyed_events(env, [("k", 1, 1), ("k", 3, 2), ("k", 12, 3), ("k", 13, 4)])
           .window(TumblingEventTimeWindows.of(10, offset=3)).process(Describe()).collect())
    env.execute()
    assert [(w[1], w[2], [e[2] for e in w[3]]) for w in out.values] == [
        (-7.0, 3.0, [1]), (3.0, 13.0, [2, 3]), (13.0, 23.0, [4])]


def test_aggregate_function_average_per_window():
    events = [("a", 0, 1), ("a", 3, 4), ("a", 9, 7), ("b", 5, 5), ("a", 10, 100),
              ("b", 19, 6), ("b", 12, 9)]
    env = StreamExecutionEnvironment(batch_size=2)
    out = keyed_events(env, events, 10).window(TumblingEventTimeWindows.of(10)) \
        .aggregate(Average()).collect()
    env.execute()
    assert [(r.key, r.value) for r in out.records] == [
        ("a", 4.0), ("b", 5.0), ("a", 100.0), ("b", 7.5)]


def test_aggregate_with_a_window_function_gets_the_aggregate_and_the_window():
    env = StreamExecutionEnvironment(batch_size=1)
    out = keyed_events(env, EVENTS).window(TumblingEventTimeWindows.of(10)) \
        .aggregate(Average(), WithWindow()).collect()
    env.execute()
    assert out.values == [("a", 0.0, 10.0, 1.5), ("b", 0.0, 10.0, 10.0),
                          ("a", 10.0, 20.0, 3.0), ("b", 10.0, 20.0, 20.0),
                          ("a", 20.0, 30.0, 4.0), ("b", 20.0, 30.0, 30.0)]


# ---------------------------------------------------------------------------- sliding
def test_sliding_windows_match_the_reference_definition():
    events = [("ab"[i % 2], (i * 7) % 40 + i // 40 * 40, i) for i in range(120)]
    events.sort(key=lambda e: e[1])  # in order: no record is late
    env = StreamExecutionEnvironment(batch_size=7)
    out = keyed_events(env, events).window(SlidingEventTimeWindows.of(15, 5)) \
        .process(Describe()).collect()
    env.execute()
    expected = reference_windows(events, 15, 5)
    got = {(k, s, e): [v[2] for v in values] for k, s, e, values in out.values}
    assert got == expected
    # fired in the order of window end, and each window exactly once
    ends = [e for _, _, e, _ in out.values]
    assert ends == sorted(ends)
    assert len(out.values) == len({(k, s) for k, s, _, _ in out.values})


def test_sliding_reduce_small_example():
    env = StreamExecutionEnvironment(batch_size=1)
    out = (keyed_events(env, [("k", 1, 1), ("k", 6, 10), ("k", 12, 100)])
           .window(SlidingEventTimeWindows.of(10, 5))
           .aggregate(Average(), WithWindow()).collect())
    env.execute()
    # windows [-5,5): 1 | [0,10): 1, 10 | [5,15): 10, 100 | [10,20): 100
    assert out.values == [("k", -5.0, 5.0, 1.0), ("k", 0.0, 10.0, 5.5),
                          ("k", 5.0, 15.0, 55.0), ("k", 10.0, 20.0, 100.0)]


# ---------------------------------------------------------------------------- session
def test_sessions_separated_by_more_than_the_gap_fire_separately():
    env = StreamExecutionEnvironment()
    out = (keyed_events(env, [("k", 0, 1), ("j", 5, 2), ("k", 30, 3)])
           .window(EventTimeSessionWindows.with_gap(10)).process(Describe()).collect())
    env.execute()
    assert [(k, s, e, [v[2] for v in vs]) for k, s, e, vs in out.values] == [
        ("k", 0.0, 10.0, [1]), ("j", 5.0, 15.0, [2]), ("k", 30.0, 40.0, [3])]


@pytest.mark.parametrize("batch_size", [1, 1000])
def test_session_windows_merge_records_within_the_gap(batch_size):
    events = [("k", 0, 1), ("j", 1, 10), ("k", 5, 2), ("k", 12, 3), ("k", 40, 4)]
    env = StreamExecutionEnvironment(batch_size=batch_size)
    out = (keyed_events(env, events).window(EventTimeSessionWindows.with_gap(10))
           .process(Describe()).collect())
    env.execute()
    got = sorted((k, s, e, sorted(v[2] for v in vs)) for k, s, e, vs in out.values)
    assert got == [("j", 1.0, 11.0, [10]), ("k", 0.0, 22.0, [1, 2, 3]),
                   ("k", 40.0, 50.0, [4])]


def test_a_bridging_record_merges_two_sessions_into_one():
    # 0 and 15 are two sessions ([0,10) and [15,25)) until 8 arrives: [8,18) overlaps
    # both. The bound of 20 keeps the watermark below 10 so nothing fires before.
    events = [("k", 0, 1), ("k", 15, 2), ("k", 8, 4)]
    env = StreamExecutionEnvironment(batch_size=1)
    windows = keyed_events(env, events, 20).window(EventTimeSessionWindows.with_gap(10))
    out = windows.process(Describe()).collect()
    env.execute()
    assert [(k, s, e, sorted(v[2] for v in vs)) for k, s, e, vs in out.values] == [
        ("k", 0.0, 25.0, [1, 2, 4])]


def test_session_aggregate_merges_accumulators():
    events = [("k", 0, 2), ("k", 15, 4), ("k", 8, 6)]
    env = StreamExecutionEnvironment(batch_size=1)
    out = (keyed_events(env, events, 20).window(EventTimeSessionWindows.with_gap(10))
           .aggregate(Average(), WithWindow()).collect())
    env.execute()
    assert out.values == [("k", 0.0, 25.0, 4.0)]


# ------------------------------------------------------------------------------ count
COUNT_EVENTS = [("a", 1), ("a", 2), ("b", 10), ("a", 3), ("b", 20), ("a", 4), ("b", 30),
                ("a", 5), ("a", 6), ("a", 7), ("b", 40)]


def test_tumbling_count_window_reduce():
    env = StreamExecutionEnvironment(batch_size=2)
    out = (env.from_collection(COUNT_EVENTS, timestamps=range(len(COUNT_EVENTS)))
           .key_by(lambda e: e[0]).count_window(3)
           .reduce(lambda x, y: (x[0], x[1] + y[1])).collect())
    env.execute()
    # a fires at its 3rd and 6th record, b at its 3rd; partial windows never fire
    assert out.values == [("a", 6), ("b", 60), ("a", 15)]
    # a count window's result carries the timestamp of the record that completed it
    assert [r.timestamp for r in out.records] == [3, 6, 8]


def test_sliding_count_window_process_fires_every_slide_over_the_last_size():
    values = [("k", i) for i in range(1, 9)]
    env = StreamExecutionEnvironment(batch_size=3)
    out = (env.from_collection(values).key_by(lambda e: e[0]).count_window(3, 2)
           .process(Items()).collect())
    env.execute()
    assert out.values == [[1, 2, 3], [3, 4, 5], [5, 6, 7]]


def test_count_window_aggregate_with_window_function():
    class Tag(ProcessWindowFunction):
        def process(self, key, window, elements):
            yield (key, elements[0])

    class Sum(AggregateFunction):
        def create_accumulator(self):
            return 0

        def add(self, value, acc):
            return acc + value[1]

        def get_result(self, acc):
            return acc

    env = StreamExecutionEnvironment()
    out = (env.from_collection(COUNT_EVENTS).key_by(lambda e: e[0])
           .window(CountWindows(2)).aggregate(Sum(), Tag()).collect())
    env.execute()
    # a: [1,2] [3,4] [5,6] (7 waits for a partner); b: [10,20] [30,40]
    assert out.values == [("a", 3), ("b", 30), ("a", 7), ("a", 11), ("b", 70)]


# ---------------------------------------------------------------- lateness, late data
def test_out_of_order_records_within_the_bound_are_not_late():
    late = OutputTag("late")
    values = [1, 14, 9.5, 9, 16, 4, 7, 21, 26]  # bound 5: 9.5 and 9 are in time
    env = StreamExecutionEnvironment(batch_size=1)
    windows = (env.from_collection(values, watermark_strategy=event_time(5))
               .key_by(lambda v: "k").window(TumblingEventTimeWindows.of(10))
               .side_output_late_data(late).reduce(lambda x, y: x + y))
    out, dropped = windows.collect(), windows.get_side_output(late).collect()
    env.execute()
    # [0,10) fires at 16 (watermark 10.999): 1 + 9.5 + 9; 4 and 7 then are late
    assert out.values == [19.5, 30, 47]
    assert dropped.values == [4, 7]


def test_late_records_are_dropped_without_a_side_output():
    env = StreamExecutionEnvironment(batch_size=1)
    out = (env.from_collection([1, 14, 9.5, 16, 4, 26], watermark_strategy=event_time(5))
           .key_by(lambda v: "k").window(TumblingEventTimeWindows.of(10))
           .reduce(lambda x, y: x + y).collect())
    env.execute()
    assert out.values == [10.5, 30, 26]


def test_allowed_lateness_refires_the_window_and_later_records_go_to_the_side_output():
    late = OutputTag("too-late")
    values = [1, 3, 12, 4, 16, 14, 5]
    env = StreamExecutionEnvironment(batch_size=1)
    windows = (env.from_collection(values, watermark_strategy=event_time(0))
               .key_by(lambda v: "k").window(TumblingEventTimeWindows.of(10))
               .allowed_lateness(5).side_output_late_data(late)
               .reduce(lambda x, y: x + y))
    out, dropped = windows.collect(), windows.get_side_output(late).collect()
    env.execute()
    # 12 fires [0,10) = 1 + 3; 4 is late but within 5 s: fires again with 8; 16 moves
    # the watermark to 15.999 >= 10 + 5, so 5 is too late; 14 is simply in time
    assert out.values == [4, 8, 42]
    assert [r.timestamp for r in out.records] == [10 - 0.001, 10 - 0.001, 20 - 0.001]
    assert dropped.values == [5]
    assert len({r.rid for r in out.records}) == 3  # a re-firing is a new output


def test_allowed_lateness_with_a_first_record_that_arrives_late():
    env = StreamExecutionEnvironment(batch_size=1)
    out = (env.from_collection([("a", 12), ("b", 3), ("b", 25)],
                               watermark_strategy=event_time(0, 1))
           .key_by(lambda v: v[0]).window(TumblingEventTimeWindows.of(10))
           .allowed_lateness(5).process(Describe()).collect())
    env.execute()
    assert out.values == [("b", 0.0, 10.0, [("b", 3)]), ("a", 10.0, 20.0, [("a", 12)]),
                          ("b", 20.0, 30.0, [("b", 25)])]


def test_bounded_input_fires_every_remaining_window_at_the_end():
    events = [("a", 100, 1), ("b", 101, 2), ("a", 250, 3)]
    env = StreamExecutionEnvironment()
    out = (keyed_events(env, events, 1000).window(TumblingEventTimeWindows.of(10))
           .process(Describe()).collect())
    env.execute()
    assert [(k, s) for k, s, _, _ in out.values] == [("a", 100.0), ("b", 100.0),
                                                    ("a", 250.0)]


def test_a_late_record_goes_to_the_side_output_once_with_sliding_windows():
    late = OutputTag("late")
    env = StreamExecutionEnvironment(batch_size=1)
    windows = (env.from_collection([0, 30, 7], watermark_strategy=event_time(0))
               .key_by(lambda v: "k").window(SlidingEventTimeWindows.of(10, 5))
               .side_output_late_data(late).reduce(lambda x, y: x + y))
    windows.collect()
    dropped = windows.get_side_output(late).collect()
    env.execute()
    assert dropped.values == [7]


def test_a_record_accepted_by_one_sliding_window_is_not_late_data():
    late = OutputTag("late")
    env = StreamExecutionEnvironment(batch_size=1)
    windows = (env.from_collection([0, 11, 7], watermark_strategy=event_time(0))
               .key_by(lambda v: "k").window(SlidingEventTimeWindows.of(10, 5))
               .side_output_late_data(late).process(Describe()))
    out = windows.collect()
    dropped = windows.get_side_output(late).collect()
    env.execute()
    assert ("k", 5.0, 15.0, [11, 7]) in out.values
    assert dropped.values == []


def test_windows_work_with_keys_of_different_types():
    events = [("a", 1, 1), (1, 2, 2), (None, 3, 3), ("a", 12, 4)]
    env = StreamExecutionEnvironment(batch_size=1)
    out = keyed_events(env, events).window(TumblingEventTimeWindows.of(10)) \
        .reduce(lambda x, y: (x[0], x[1], x[2] + y[2])).collect()
    env.execute()
    assert sorted((repr(r.key), r.value[2]) for r in out.records) == [
        ("'a'", 1), ("'a'", 4), ("1", 2), ("None", 3)]


# ------------------------------------------------------------------- processing time
def test_tumbling_processing_time_windows_follow_the_clock(monkeypatch):
    monkeypatch.setattr(runtime_module, "IDLE_SLEEP_SECONDS", 0.0)
    clock = FakeClock(0.0)
    script = [[("s", ("a", "x"))], [("s", ("a", "y"))], [("s", ("b", "z"))], [],
              [("s", ("a", "w"))]]  # step k runs at clock time k
    env = StreamExecutionEnvironment(clock=clock)
    out = (env.from_source(ScriptedSource(script)).key_by(lambda v: v[0])
           .window(TumblingProcessingTimeWindows.of(5)).process(Describe()).collect())
    env.execute(until=StepLimit(11, clock))
    assert [(k, s, e, [v[1] for v in vs]) for k, s, e, vs in out.values] == [
        ("a", 0.0, 5.0, ["x", "y"]), ("b", 0.0, 5.0, ["z"]), ("a", 5.0, 10.0, ["w"])]


# ------------------------------------------------------------------------ validation
def test_event_time_windows_need_timestamps():
    env = StreamExecutionEnvironment()
    env.from_collection([1, 2]).key_by(lambda v: v) \
        .window(TumblingEventTimeWindows.of(10)).reduce(lambda x, y: x).collect()
    with pytest.raises(ValueError, match="timestamp"):
        env.execute()


@pytest.mark.parametrize("make", [
    lambda: TumblingEventTimeWindows.of(0),
    lambda: SlidingEventTimeWindows.of(10, 0),
    lambda: SlidingEventTimeWindows.of(-1, 1),
    lambda: EventTimeSessionWindows.with_gap(0),
    lambda: CountWindows(0),
    lambda: CountWindows(3, 0),
])
def test_invalid_window_sizes_are_rejected(make):
    with pytest.raises(ValueError):
        make()
