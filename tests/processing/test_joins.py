"""Window joins, interval joins and connected streams against hand-computed results."""

from forestream.processing import (
    CoProcessFunction,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    ValueStateDescriptor,
    WatermarkStrategy,
)

STRATEGY = WatermarkStrategy.for_bounded_out_of_orderness(0).with_timestamp_assigner(
    lambda e, _: e["t"])


def test_window_join_pairs_equal_keys_in_the_same_window():
    env = StreamExecutionEnvironment(batch_size=2)
    orders = env.from_collection([{"user": "u1", "t": 1, "order": "o1"},
                                  {"user": "u2", "t": 3, "order": "o2"},
                                  {"user": "u1", "t": 12, "order": "o3"}],
                                 watermark_strategy=STRATEGY)
    clicks = env.from_collection([{"user": "u1", "t": 2, "page": "p1"},
                                  {"user": "u1", "t": 4, "page": "p2"},
                                  {"user": "u2", "t": 15, "page": "p3"}],
                                 watermark_strategy=STRATEGY)
    out = (orders.join(clicks).where(lambda o: o["user"]).equal_to(lambda c: c["user"])
           .window(TumblingEventTimeWindows.of(10))
           .apply(lambda o, c: (o["order"], c["page"])).collect())
    env.execute()
    # window [0,10): u1 o1 x (p1, p2); u2 o2 has no click there; [10,20): o3 (u1) vs p3 (u2)
    assert sorted(out.values) == [("o1", "p1"), ("o1", "p2")]


def test_interval_join_bounds_are_inclusive():
    env = StreamExecutionEnvironment(batch_size=1)
    left = env.from_collection([{"k": "a", "t": t} for t in (10, 20, 30)],
                               watermark_strategy=STRATEGY).key_by(lambda e: e["k"])
    right = env.from_collection([{"k": "a", "t": t} for t in (8, 12, 15, 26, 40)],
                                watermark_strategy=STRATEGY).key_by(lambda e: e["k"])
    out = (left.interval_join(right).between(-2, 5)
           .process(lambda a, b: (a["t"], b["t"])).collect())
    env.execute()
    # left t pairs with right ts in [t-2, t+5]: 10 -> [8, 15] (both ends included);
    # 20 -> [18, 25] and 30 -> [28, 35] hold no right element
    assert sorted(out.values) == [(10, 8), (10, 12), (10, 15)]


class Thresholds(CoProcessFunction):
    """Per-device alert when a reading exceeds the current broadcast threshold."""

    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", 0))

    def process_element1(self, value, ctx):
        limit = ctx.broadcast_state().get("limit", float("inf"))
        if value["v"] > limit:
            self.count.update(self.count.value() + 1)
            yield (value["dev"], value["v"], self.count.value())

    def process_element2(self, value, ctx):
        ctx.broadcast_state()["limit"] = value["limit"]


def test_connected_streams_share_broadcast_state_and_keep_keyed_state():
    env = StreamExecutionEnvironment(batch_size=10)
    readings = env.from_collection([{"dev": d, "v": v} for d, v in
                                    [("a", 5), ("b", 7), ("a", 9), ("b", 3), ("a", 11)]])
    rules = env.from_collection([{"limit": 6}])
    out = readings.key_by(lambda e: e["dev"]).connect(rules).process(Thresholds()).collect()
    env.execute()
    assert out.values == [("b", 7, 1), ("a", 9, 1), ("a", 11, 2)]


def test_join_state_survives_a_restart(tmp_path):
    def build(env):
        orders = env.from_collection([{"u": "x", "t": t} for t in (1, 2, 3, 4)],
                                     watermark_strategy=STRATEGY)
        clicks = env.from_collection([{"u": "x", "t": t} for t in (5, 6)],
                                     watermark_strategy=STRATEGY)
        return (orders.join(clicks).where(lambda o: o["u"]).equal_to(lambda c: c["u"])
                .window(TumblingEventTimeWindows.of(10))
                .apply(lambda o, c: (o["t"], c["t"])).collect())

    reference_env = StreamExecutionEnvironment(batch_size=1)
    reference = build(reference_env)
    reference_env.execute()
    steps = {"n": 0}

    def stop_early():
        steps["n"] += 1
        return steps["n"] > 2

    first_env = StreamExecutionEnvironment(batch_size=1, checkpoint_dir=tmp_path)
    first = build(first_env)
    first_env.execute(until=stop_early)
    second_env = StreamExecutionEnvironment(batch_size=1, checkpoint_dir=tmp_path)
    second = build(second_env)
    second_env.execute()
    assert first.values == []
    assert sorted(second.values) == sorted(reference.values) and len(reference.values) == 8


def test_connected_streams_side_outputs_have_ids_of_their_own():
    """Each side output of a CoProcessFunction gets an id derived from the record that
    produced it and its number: readers dropping replayed duplicates by id keep them all."""
    from forestream.processing import OutputTag, Record
    from forestream.processing.joins import CoProcessOperator
    from forestream.processing.records import Collector

    notes = OutputTag("notes")

    class Annotate(CoProcessFunction):
        def process_element1(self, value, ctx):
            ctx.output(notes, f"{value}: seen")
            ctx.output(notes, f"{value}: checked")
            return value

        def process_element2(self, value, ctx):
            ctx.output(notes, f"rule {value}")

    operator = CoProcessOperator(Annotate(), keyed=False)
    operator.open()
    out = Collector()
    operator.process_inputs([Record("a", 1.0, None, "in@1"), Record("b", 2.0, None, "in@2")],
                            [Record("r", 0.5, None, "rules@1")], out)
    ids = [r.rid for r in out.side[notes]]
    assert [r.value for r in out.side[notes]] == [
        "rule r", "a: seen", "a: checked", "b: seen", "b: checked"]
    assert ids == ["rules@1/s1", "in@1/s1", "in@1/s2", "in@2/s1", "in@2/s2"]
