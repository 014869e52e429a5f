"""The DataStream API: streams, keyed streams, windowed and joined streams — Flink's
concepts, Pythonic.

Every method records a step in the environment's job graph (:mod:`.graph`) and returns
the resulting stream; nothing runs until
:meth:`~forestream.processing.environment.StreamExecutionEnvironment.execute`.

>>> from forestream.processing import StreamExecutionEnvironment, TumblingEventTimeWindows
>>> env = StreamExecutionEnvironment()
>>> totals = (env.from_collection([("a", 1), ("b", 2), ("a", 3)], timestamps=[0, 1, 2])
...           .key_by(lambda pair: pair[0])
...           .window(TumblingEventTimeWindows(60))
...           .reduce(lambda x, y: (x[0], x[1] + y[1]))
...           .collect())
>>> _ = env.execute()
>>> sorted(totals.values)
[('a', 4), ('b', 2)]
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .cep import PatternOperator
from .functions import (
    AggregateFunction,
    KeyedProcessFunction,
    ProcessFunction,
    ProcessWindowFunction,
)
from .graph import JobGraph, Node
from .inference import ModelInferenceOperator
from .joins import CoProcessFunction, CoProcessOperator, IntervalJoinOperator, WindowJoinOperator
from .kinesis_io import KinesisSink
from .operators import (
    FilterOperator,
    FlatMapOperator,
    KeyByOperator,
    MapOperator,
    Operator,
    ProcessOperator,
    SinkOperator,
    TimestampsAndWatermarksOperator,
)
from .rcf_operators import RandomCutForestOperator, ThresholdedRCFOperator
from .records import OutputTag
from .sinks import CallableSink, FileSink, ListSink, PrintSink, Sink
from .watermarks import WatermarkStrategy
from .windows import (
    CountWindowOperator,
    CountWindows,
    GlobalWindowOperator,
    GlobalWindows,
    RollingReduceFunction,
    WindowOperator,
    _ReduceAggregate,
)


class DataStream:
    """A stream of records; each method adds a step and returns the resulting stream."""

    def __init__(self, graph: JobGraph, node: Node) -> None:
        self.graph = graph
        self.node = node

    def _then(self, operator: Operator, inputs: list[Node] | None = None,
              side: OutputTag | None = None, cls=None) -> DataStream:
        node = self.graph.add(operator=operator, inputs=inputs or [self.node], side=side)
        return (cls or DataStream)(self.graph, node)

    def name(self, label: str) -> DataStream:
        self.node.label = label
        return self

    def map(self, fn: Callable[[Any], Any]) -> DataStream:
        return self._then(MapOperator(fn))

    def filter(self, fn: Callable[[Any], bool]) -> DataStream:
        return self._then(FilterOperator(fn))

    def flat_map(self, fn: Callable[[Any], Iterable[Any]]) -> DataStream:
        return self._then(FlatMapOperator(fn))

    def predict(self, fields: list[str], **kwargs) -> DataStream:
        """Add a model's prediction to each record; see
        :class:`~forestream.processing.inference.ModelInferenceOperator`."""
        return self._then(ModelInferenceOperator(fields, **kwargs))

    def key_by(self, selector: Callable[[Any], Any]) -> KeyedStream:
        return self._then(KeyByOperator(selector), cls=KeyedStream)

    def process(self, function: ProcessFunction) -> DataStream:
        keyed = isinstance(self, KeyedStream)
        if isinstance(function, KeyedProcessFunction) and not keyed:
            raise TypeError("a KeyedProcessFunction needs a keyed stream: call key_by first")
        return self._then(ProcessOperator(function, keyed), cls=KeyedStream if keyed else None)

    def assign_timestamps_and_watermarks(self, strategy: WatermarkStrategy) -> DataStream:
        return self._then(TimestampsAndWatermarksOperator(strategy))

    def union(self, *others: DataStream) -> DataStream:
        return self._then(MapOperator(lambda v: v), inputs=[self.node] +
                          [o.node for o in others])

    def join(self, other: DataStream):
        """Window join: ``.where(key).equal_to(key).window(assigner).apply(fn)``."""
        return JoinedStreams(self, other)

    def connect(self, other: DataStream):
        """One :class:`~forestream.processing.joins.CoProcessFunction` over both streams
        (keyed state for this one when keyed; broadcast state from ``other``)."""
        return ConnectedStreams(self, other)

    def get_side_output(self, tag: OutputTag) -> DataStream:
        return self._then(MapOperator(lambda v: v), side=tag)

    # ------------------------------------------------------------------- sinks
    def sink_to(self, sink: Sink) -> Sink:
        self._then(SinkOperator(sink))
        return sink

    def add_sink(self, fn: Callable[[Any], None]) -> Sink:
        return self.sink_to(CallableSink(fn))

    def print(self, prefix: str = "") -> Sink:
        return self.sink_to(PrintSink(prefix))

    def collect(self) -> ListSink:
        """Collect values in memory: the returned sink's ``values`` after execute."""
        return self.sink_to(ListSink())  # type: ignore[return-value]

    def write_to_file(self, path: str | Path, format: str = "jsonl") -> Sink:
        return self.sink_to(FileSink(path, format))

    def sink_to_kinesis(self, stream: str, target, partition_key=None, serializer=None) -> Sink:
        return self.sink_to(KinesisSink(stream, target, partition_key, serializer))


class KeyedStream(DataStream):
    """A stream partitioned by key: keyed state, timers, windows and per-key models."""

    def window(self, assigner):
        return WindowedStream(self, assigner)

    def count_window(self, size: int, slide: int | None = None):
        return WindowedStream(self, CountWindows(size, slide))

    def reduce(self, fn: Callable[[Any, Any], Any]) -> DataStream:
        """Rolling reduce per key: emits the running result for every record."""
        return self.process(RollingReduceFunction(fn))

    def interval_join(self, other: KeyedStream):
        """Pairs with equal keys whose times differ by ``.between(lower, upper)``."""
        return IntervalJoined(self, other)

    def pattern(self, pattern) -> DataStream:
        """Complex event processing: emit ``{stage name: [events]}`` for every match of
        ``pattern`` (see :mod:`forestream.processing.cep`) per key."""
        return self._then(PatternOperator(pattern), cls=KeyedStream)

    def random_cut_forest(self, fields: list[str], **kwargs) -> DataStream:
        """Score each record with its key's forest; see :class:`RandomCutForestOperator`."""
        return self._then(RandomCutForestOperator(fields, **kwargs), cls=KeyedStream)

    def thresholded_random_cut_forest(self, fields: list[str], **kwargs) -> DataStream:
        """Grade each record with its key's detector; see :class:`ThresholdedRCFOperator`."""
        return self._then(ThresholdedRCFOperator(fields, **kwargs), cls=KeyedStream)


class WindowedStream:
    """A keyed stream cut into windows; finish with ``reduce``, ``aggregate`` or
    ``process``."""

    def __init__(self, keyed, assigner) -> None:
        self.keyed = keyed
        self.assigner = assigner
        self.lateness = 0.0
        self.late_tag: OutputTag | None = None

    def allowed_lateness(self, seconds: float) -> WindowedStream:
        self.lateness = float(seconds)
        return self

    def side_output_late_data(self, tag: OutputTag) -> WindowedStream:
        self.late_tag = tag
        return self

    def trigger(self, trigger) -> WindowedStream:
        """When a :class:`GlobalWindows` window fires: :class:`CountTrigger`,
        :class:`ContinuousEventTimeTrigger` or :class:`ContinuousProcessingTimeTrigger`."""
        if not isinstance(self.assigner, GlobalWindows):
            raise TypeError("custom triggers apply to GlobalWindows; time and count windows "
                            "fire on their own schedule")
        self.trigger_ = trigger
        return self

    def reduce(self, fn: Callable[[Any, Any], Any]):
        return self._build(_ReduceAggregate(fn), None)

    def aggregate(self, function: AggregateFunction,
                  window_function: ProcessWindowFunction | None = None):
        return self._build(function, window_function)

    def process(self, function: ProcessWindowFunction):
        return self._build(None, function)

    def _build(self, aggregate, window_function):
        if isinstance(self.assigner, GlobalWindows):
            trigger = getattr(self, "trigger_", None)
            if trigger is None:
                raise TypeError("GlobalWindows never fire by themselves: add .trigger(...)")
            op = GlobalWindowOperator(trigger, aggregate, window_function)
        elif isinstance(self.assigner, CountWindows):
            op = CountWindowOperator(self.assigner, aggregate, window_function)
        else:
            op = WindowOperator(self.assigner, aggregate, window_function, self.lateness,
                                self.late_tag)
        return self.keyed._then(op, cls=KeyedStream)


class JoinedStreams:
    """``a.join(b)``: finish with ``.where(...).equal_to(...).window(...).apply(fn)``."""

    def __init__(self, left, right) -> None:
        self.left, self.right = left, right
        self._key_left = self._key_right = self._assigner = None

    def where(self, selector) -> JoinedStreams:
        self._key_left = selector
        return self

    def equal_to(self, selector) -> JoinedStreams:
        self._key_right = selector
        return self

    def window(self, assigner) -> JoinedStreams:
        self._assigner = assigner
        return self

    def apply(self, fn: Callable[[Any, Any], Any]):
        if None in (self._key_left, self._key_right, self._assigner):
            raise TypeError("join(...) needs .where(key).equal_to(key).window(assigner) "
                            "before .apply(fn)")
        op = WindowJoinOperator(self._key_left, self._key_right, self._assigner, fn)
        return self.left._then(op, inputs=[self.left.node, self.right.node])


class IntervalJoined:
    def __init__(self, left, right) -> None:
        self.left, self.right = left, right
        self._bounds: tuple[float, float] | None = None

    def between(self, lower: float, upper: float) -> IntervalJoined:
        self._bounds = (lower, upper)
        return self

    def process(self, fn: Callable[[Any, Any], Any]):
        if self._bounds is None:
            raise TypeError("interval_join(...) needs .between(lower, upper)")
        op = IntervalJoinOperator(*self._bounds, fn)
        return self.left._then(op, inputs=[self.left.node, self.right.node], cls=KeyedStream)


class ConnectedStreams:
    def __init__(self, first, second) -> None:
        self.first, self.second = first, second

    def process(self, function: CoProcessFunction):
        keyed = isinstance(self.first, KeyedStream)
        return self.first._then(CoProcessOperator(function, keyed),
                                inputs=[self.first.node, self.second.node],
                                cls=KeyedStream if keyed else None)
