"""Global windows with triggers, against hand-computed results."""

import pytest

from forestream.processing import (
    ContinuousEventTimeTrigger,
    CountTrigger,
    GlobalWindows,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    WatermarkStrategy,
)


def keyed(values, batch_size=100, strategy=None):
    env = StreamExecutionEnvironment(batch_size=batch_size)
    stream = env.from_collection(values, watermark_strategy=strategy)
    return env, stream.key_by(lambda e: e[0])


def test_count_trigger_fires_every_n_elements_and_keeps_or_purges():
    values = [("a", 1), ("a", 2), ("b", 10), ("a", 3), ("a", 4), ("b", 20)]
    env, k = keyed(values)
    kept = k.window(GlobalWindows.create()).trigger(CountTrigger.of(2)) \
        .reduce(lambda x, y: (x[0], x[1] + y[1])).collect()
    purged = k.window(GlobalWindows.create()).trigger(CountTrigger.of(2, purge=True)) \
        .reduce(lambda x, y: (x[0], x[1] + y[1])).collect()
    env.execute()
    # a fires at its 2nd and 4th element (inputs 2 and 5), b at its 2nd (input 6)
    assert kept.values == [("a", 3), ("a", 10), ("b", 30)]  # running sums: 1+2, 1+2+3+4
    assert purged.values == [("a", 3), ("a", 7), ("b", 30)]  # fresh after each firing: 3+4


def test_continuous_event_time_trigger_fires_at_each_interval():
    strategy = WatermarkStrategy.for_monotonous_timestamps().with_timestamp_assigner(
        lambda e, _: e[2])
    values = [("a", 1, 0), ("a", 1, 4), ("a", 1, 11), ("a", 1, 12), ("a", 1, 25)]
    env, k = keyed(values, batch_size=1, strategy=strategy)
    out = k.window(GlobalWindows.create()).trigger(ContinuousEventTimeTrigger.of(10, purge=True)) \
        .reduce(lambda x, y: (x[0], x[1] + y[1], y[2])).collect()
    env.execute()
    # first firing at the end of the first element's interval (10): the watermark passes
    # it after t=11 arrives (0, 4, 11: three elements); then 20, after t=25 (12, 25)
    assert [r[1] for r in out.values] == [3, 2]


def test_triggers_only_apply_to_global_windows():
    env, k = keyed([("a", 1)])
    with pytest.raises(TypeError, match="GlobalWindows"):
        k.window(TumblingEventTimeWindows.of(5)).trigger(CountTrigger.of(2))
    with pytest.raises(TypeError, match="never fire"):
        k.window(GlobalWindows.create()).reduce(lambda a, b: a)
