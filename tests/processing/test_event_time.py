"""Event time across source splits: the watermark is the minimum over splits, a silent
split holds it back unless idleness is configured, and it never goes backwards.

Sources here are scripted (one batch per runtime step, each record tagged with its split)
and time is a fake clock advanced by one second before every step, so step k runs at
clock time k.
"""

from __future__ import annotations

import math
import random

import pytest
from processing_testkit import (
    FakeClock,
    ScriptedSource,
    SplitAwareSource,
    StepLimit,
    event_time,
    watermark_trace,
    wm,
)

from forestream.processing import (
    OutputTag,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    WatermarkStrategy,
)
from forestream.processing import runtime as runtime_module

NEG = -math.inf


@pytest.fixture(autouse=True)
def no_idle_sleep(monkeypatch):
    monkeypatch.setattr(runtime_module, "IDLE_SLEEP_SECONDS", 0.0)


def trace_of(source, strategy, steps):
    clock = FakeClock(0.0)
    env = StreamExecutionEnvironment(clock=clock)
    stream = env.from_source(source, strategy)
    stream.collect()
    _, trace = watermark_trace(env, stream.node.index, steps, clock)
    return trace


def test_the_watermark_is_the_minimum_over_splits():
    script = [[("A", 10), ("B", 5)], [("A", 20)], [("B", 8)], [("B", 30)], [("A", 25)]]
    trace = trace_of(SplitAwareSource(script, ["A", "B"]), event_time(2), steps=5)
    assert trace == [wm(5, 2), wm(5, 2), wm(8, 2), wm(20, 2), wm(25, 2)]


def test_a_declared_split_that_has_sent_nothing_holds_the_watermark():
    script = [[("A", 10)], [("A", 20)], [("B", 15)], [("B", 40)]]
    trace = trace_of(SplitAwareSource(script, ["A", "B"]), event_time(), steps=4)
    assert trace == [NEG, NEG, wm(15), wm(20)]


def test_splits_are_known_once_they_send_and_the_watermark_never_goes_back():
    # without splits(): B is unknown until it sends; when it does (at 15) the minimum
    # drops below the watermark already reached, which must not go backwards
    script = [[("A", 10)], [("A", 20)], [("B", 15)], [("B", 40)], [("A", 30)]]
    trace = trace_of(ScriptedSource(script), event_time(), steps=5)
    assert trace == [wm(10), wm(20), wm(20), wm(20), wm(30)]


SILENT_B = [[("A", 10), ("B", 10)], [("A", 20)], [("A", 30)], [("A", 40)], [("A", 50)],
            [("A", 60)], [("B", 15)], [("A", 70), ("B", 65)]]


def test_a_split_that_stops_sending_holds_the_watermark_without_idleness():
    trace = trace_of(SplitAwareSource(SILENT_B, ["A", "B"]), event_time(), steps=8)
    # B holds at 10 until it sends 15 (t=7), then 65 (t=8)
    assert trace == [wm(10)] * 6 + [wm(15), wm(65)]


def test_with_idleness_a_silent_split_stops_holding_the_watermark():
    # B last sent at t=1; with idleness 3 it is idle from t=4 until it sends again (t=7)
    trace = trace_of(SplitAwareSource(SILENT_B, ["A", "B"]), event_time(idleness=3), steps=8)
    assert trace == [wm(10), wm(10), wm(10), wm(40), wm(50), wm(60), wm(60), wm(65)]


def test_records_of_a_split_that_was_idle_can_be_late_and_the_watermark_stays():
    late = OutputTag("late")
    clock = FakeClock(0.0)
    env = StreamExecutionEnvironment(clock=clock)
    windows = (env.from_source(SplitAwareSource(SILENT_B, ["A", "B"], bounded=True),
                               event_time(idleness=3))
               .key_by(lambda v: "k").window(TumblingEventTimeWindows.of(10))
               .side_output_late_data(late).reduce(lambda a, b: a + b))
    out, dropped = windows.collect(), windows.get_side_output(late).collect()
    env.execute(until=StepLimit(20, clock))
    # windows [10,20) .. [50,60) fired while B was idle; B's 15 then came too late
    assert dropped.values == [15]
    # [10,20) = 10 + 10, [20,30) .. [50,60), then at the end [60,70) = 60 + 65, [70,80)
    assert out.values == [20, 20, 30, 40, 50, 125, 70]


def test_when_every_split_is_idle_the_watermark_stays_where_it_was():
    script = [[("A", 10), ("B", 20)]]
    trace = trace_of(SplitAwareSource(script, ["A", "B"]), event_time(idleness=2), steps=6)
    assert trace == [wm(10)] * 6


def test_windows_fire_only_when_the_slowest_split_passes_their_end():
    script = [[("A", 1), ("B", 2)], [("A", 15)], [("A", 25)], [("B", 12)], [("B", 30)]]
    fired_after = []
    clock = FakeClock(0.0)
    env = StreamExecutionEnvironment(clock=clock)
    out = (env.from_source(SplitAwareSource(script, ["A", "B"]), event_time())
           .key_by(lambda v: 0).window(TumblingEventTimeWindows.of(10))
           .reduce(lambda a, b: a + b).collect())

    def note(done):
        fired_after.append(list(out.values))

    env.execute(until=StepLimit(5, clock, on_step=note))
    # [0,10) = 1 + 2 fires at step 4 (B reaches 12); [10,20) = 15 + 12 at step 5
    assert fired_after[1:] == [[], [], [], [3], [3, 27]]


def test_watermarks_never_go_backwards_under_random_splits_and_idleness():
    rng = random.Random(7)
    script = []
    for _ in range(60):
        batch = []
        for split in "ABC":
            if rng.random() < 0.4:
                batch.append((split, rng.uniform(0, 100) + len(script)))
        script.append(batch)
    for strategy in (event_time(3), event_time(3, idleness=2), event_time(0, idleness=5)):
        trace = trace_of(SplitAwareSource(script, ["A", "B", "C"]), strategy, steps=60)
        assert all(a <= b for a, b in zip(trace, trace[1:], strict=False)), trace
        assert trace[-1] > NEG


def test_assign_timestamps_and_watermarks_downstream_of_the_source():
    values = [1, 3, 12, 4, 25]  # 4 is late by then (watermark 11.999)
    late = OutputTag("late")
    env = StreamExecutionEnvironment(batch_size=1)
    windows = (env.from_collection(values).assign_timestamps_and_watermarks(event_time())
               .key_by(lambda v: "k").window(TumblingEventTimeWindows.of(10))
               .side_output_late_data(late).reduce(lambda a, b: a + b))
    out, dropped = windows.collect(), windows.get_side_output(late).collect()
    env.execute()
    assert out.values == [4, 12, 25]
    assert dropped.values == [4]
    assert [r.timestamp for r in out.records] == [10 - 0.001, 20 - 0.001, 30 - 0.001]


def test_the_timestamp_assigner_sees_the_source_timestamp():
    strategy = WatermarkStrategy.for_monotonous_timestamps() \
        .with_timestamp_assigner(lambda value, ts: ts * 1000)
    env = StreamExecutionEnvironment()
    out = env.from_collection(["a", "b"], timestamps=[1.0, 2.5],
                              watermark_strategy=strategy).collect()
    env.execute()
    assert [r.timestamp for r in out.records] == [1000.0, 2500.0]


def test_watermark_strategy_validation():
    with pytest.raises(ValueError):
        WatermarkStrategy.for_bounded_out_of_orderness(-1)
    with pytest.raises(ValueError):
        WatermarkStrategy.for_bounded_out_of_orderness(1).with_idleness(0)


def test_with_idleness_a_split_that_has_not_sent_yet_holds_until_the_timeout():
    script = [[("A", 100)], [("B", 50)], [("A", 101)], [], [], [], [("A", 102)]]
    trace = trace_of(SplitAwareSource(script, ["A", "B"]), event_time(idleness=10), steps=3)
    # t=1: B has been silent for 1 s < 10 s: it still holds the watermark
    assert trace == [NEG, wm(50), wm(50)]


def test_with_idleness_the_first_records_of_a_slow_split_are_not_late():
    late = OutputTag("late")
    clock = FakeClock(0.0)
    env = StreamExecutionEnvironment(clock=clock)
    script = [[("A", 100)], [("B", 50)], [("A", 101)]]
    windows = (env.from_source(SplitAwareSource(script, ["A", "B"], bounded=True),
                               event_time(idleness=10))
               .key_by(lambda v: "k").window(TumblingEventTimeWindows.of(10))
               .side_output_late_data(late).reduce(lambda a, b: a + b))
    out, dropped = windows.collect(), windows.get_side_output(late).collect()
    env.execute(until=StepLimit(10, clock))
    assert dropped.values == []
    assert out.values == [50, 201]


def test_with_idleness_a_split_that_never_sends_stops_holding_eventually():
    script = [[("A", 10)], [("A", 20)], [("A", 30)], [("A", 40)], [("A", 50)]]
    trace = trace_of(SplitAwareSource(script, ["A", "B"]), event_time(idleness=3), steps=5)
    assert trace[-1] == wm(50)
