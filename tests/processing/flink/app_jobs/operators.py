"""A forestream job touching every translated kind of step, on a collection: run on the
embedded runtime and on PyFlink's local executor, it must give the same records."""

from forestream.processing import (
    AggregateFunction,
    EventTimeSessionWindows,
    KeyedProcessFunction,
    ListStateDescriptor,
    MapStateDescriptor,
    OutputTag,
    ProcessFunction,
    ProcessWindowFunction,
    SlidingEventTimeWindows,
    TumblingEventTimeWindows,
    ValueStateDescriptor,
    WatermarkStrategy,
)

NEGATIVE = OutputTag("negative")
LATE = OutputTag("late")
UNREAD = OutputTag("unread")  # written to, never read: dropped on both runtimes


class Split(ProcessFunction):
    def process_element(self, value, ctx):
        if value["v"] < 0:
            ctx.output(NEGATIVE, value)
            ctx.output(UNREAD, value)
        else:
            yield value


class Sessions(KeyedProcessFunction):
    """Value, list and map state, event-time timers (one deleted), side outputs."""

    def open(self, runtime_context):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", 0))
        self.deadline = runtime_context.get_state(ValueStateDescriptor("deadline"))
        self.seen = runtime_context.get_list_state(ListStateDescriptor("seen"))
        self.parity = runtime_context.get_map_state(MapStateDescriptor("parity"))

    def process_element(self, value, ctx):
        timers = ctx.timer_service()
        if self.deadline.value() is not None:
            timers.delete_event_time_timer(self.deadline.value())
        self.count.update(self.count.value() + 1)
        self.seen.add(value["v"])
        odd = value["v"] % 2
        self.parity.put(odd, self.parity.get(odd, 0) + 1)
        self.deadline.update(ctx.timestamp() + 4.0)
        timers.register_event_time_timer(ctx.timestamp() + 4.0)
        if self.count.value() % 5 == 0:
            ctx.output(NEGATIVE, {"k": ctx.get_current_key(), "fifth": value["v"]})
        yield ctx.get_current_key(), self.count.value()

    def on_timer(self, timestamp, ctx):
        yield ("session", ctx.get_current_key(), timestamp, self.count.value(),
               sorted(self.seen.get()), sorted(self.parity.items()))
        self.count.clear()
        self.deadline.clear()
        self.seen.clear()
        self.parity.clear()


class Mean(AggregateFunction):
    def create_accumulator(self):
        return (0, 0)

    def add(self, value, acc):
        return (acc[0] + value["v"], acc[1] + 1)

    def get_result(self, acc):
        return round(acc[0] / acc[1], 6)

    def merge(self, a, b):
        return (a[0] + b[0], a[1] + b[1])


class Describe(ProcessWindowFunction):
    def process(self, key, window, elements):
        yield key, window.start, window.end, list(elements)


def events():
    out = []
    for n in range(120):
        key = "abc"[n % 3]
        t = 1.5 * n + (7.0 if n % 11 == 0 else 0.0)  # some arrive early, some late
        out.append({"k": key, "v": (n * 7) % 23 - 3, "t": t})
    return out


def build(env, properties):
    strategy = (WatermarkStrategy.for_bounded_out_of_orderness(2.0)
                .with_timestamp_assigner(lambda event, _: event["t"]))
    source = env.from_collection(events(), watermark_strategy=strategy)
    split = source.process(Split())
    split.get_side_output(NEGATIVE).collect()
    keyed = split.key_by(lambda event: event["k"])
    sessions = keyed.process(Sessions())
    sessions.collect()
    sessions.get_side_output(NEGATIVE).collect()
    keyed.reduce(lambda a, b: {**b, "v": a["v"] + b["v"]}).collect()
    tumbling = (keyed.window(TumblingEventTimeWindows.of(10)).allowed_lateness(3)
                .side_output_late_data(LATE).aggregate(Mean(), Describe()))
    tumbling.collect()
    tumbling.get_side_output(LATE).collect()
    (keyed.window(SlidingEventTimeWindows.of(20, 5))
     .reduce(lambda a, b: {"k": a["k"], "v": max(a["v"], b["v"]), "t": b["t"]}).collect())
    keyed.window(EventTimeSessionWindows.with_gap(3)).process(Describe()).collect()
    keyed.count_window(4, 2).aggregate(Mean()).collect()
    (split.flat_map(lambda event: [event["v"]] * (event["v"] % 3))
     .filter(lambda v: v > 2).map(lambda v: v * 10).union(
         source.map(lambda event: -1)).collect())
    (split.key_by(lambda event: (event["k"], event["v"] % 2))
     .random_cut_forest(["v", "t"], num_trees=10, sample_size=16, random_seed=3).collect())
    (split.key_by(lambda event: event["k"])
     .thresholded_random_cut_forest(["v"], num_trees=10, sample_size=16, warmup=8,
                                    shingle_size=2, random_seed=5).collect())
