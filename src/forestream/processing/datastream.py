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
from typing import Any, TypeVar, overload

from .cep import Pattern, PatternOperator
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
from .sinks import CallableSink, FileSink, ListSink, PrintSink, Sink, SinkLike
from .watermarks import WatermarkStrategy
from .windows import (
    ContinuousEventTimeTrigger,
    CountTrigger,
    CountWindowOperator,
    CountWindows,
    GlobalWindowOperator,
    GlobalWindows,
    RollingReduceFunction,
    WindowAssigner,
    WindowOperator,
    _ReduceAggregate,
)

_Stream = TypeVar("_Stream", bound="DataStream")
_Sink = TypeVar("_Sink", bound=SinkLike)


class DataStream:
    """A stream of records; each method adds a step and returns the resulting stream.

    Streams come from a
    :class:`~forestream.processing.StreamExecutionEnvironment` (``from_collection``,
    ``from_file``, ``from_kinesis``, ``from_source``…). Building a pipeline records steps
    in the environment's job graph; nothing runs until ``env.execute()``. Element-wise
    steps (``map``, ``filter``, ``flat_map``) keep each record's event time and key;
    ``key_by`` gives a :class:`KeyedStream` (keyed state, timers, windows, per-key
    models); ``process`` runs a
    :class:`~forestream.processing.ProcessFunction` (side outputs); ``union``,
    ``join`` and ``connect`` combine streams; ``collect``, ``print``, ``write_to_file``,
    ``sink_to_kinesis`` and ``sink_to`` end a pipeline.

    Examples
    --------
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> sentences = env.from_collection(["to be or", "not to be"])
    >>> more = env.from_collection(["be quick"])
    >>> words = (sentences.union(more)
    ...          .flat_map(str.split)
    ...          .filter(lambda word: len(word) > 2)
    ...          .map(str.upper)
    ...          .collect())
    >>> _ = env.execute()
    >>> sorted(words.values)
    ['NOT', 'QUICK']
    """

    def __init__(self, graph: JobGraph, node: Node) -> None:
        self.graph = graph
        self.node = node

    @overload
    def _then(self, operator: Operator, inputs: list[Node] | None = None,
              side: OutputTag | None = None, cls: None = None) -> DataStream: ...

    @overload
    def _then(self, operator: Operator, inputs: list[Node] | None = None,
              side: OutputTag | None = None, *, cls: type[_Stream]) -> _Stream: ...

    def _then(self, operator: Operator, inputs: list[Node] | None = None,
              side: OutputTag | None = None, cls: type[DataStream] | None = None) -> DataStream:
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

    def predict(self, fields: list[str], **kwargs: Any) -> DataStream:
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

    def join(self, other: DataStream) -> JoinedStreams:
        """Window join: ``.where(key).equal_to(key).window(assigner).apply(fn)``."""
        return JoinedStreams(self, other)

    def connect(self, other: DataStream) -> ConnectedStreams:
        """One :class:`~forestream.processing.joins.CoProcessFunction` over both streams
        (keyed state for this one when keyed; broadcast state from ``other``)."""
        return ConnectedStreams(self, other)

    def get_side_output(self, tag: OutputTag) -> DataStream:
        return self._then(MapOperator(lambda v: v), side=tag)

    # ------------------------------------------------------------------- sinks
    def sink_to(self, sink: _Sink) -> _Sink:
        self._then(SinkOperator(sink))
        return sink

    def add_sink(self, fn: Callable[[Any], None]) -> Sink:
        return self.sink_to(CallableSink(fn))

    def print(self, prefix: str = "") -> Sink:
        return self.sink_to(PrintSink(prefix))

    def collect(self) -> ListSink:
        """Collect values in memory: the returned sink's ``values`` after execute."""
        return self.sink_to(ListSink())

    def write_to_file(self, path: str | Path, format: str = "jsonl") -> Sink:
        return self.sink_to(FileSink(path, format))

    def sink_to_kinesis(self, stream: str, target: Any,
                        partition_key: Callable[[Any], Any] | None = None,
                        serializer: Callable[[Any], bytes] | None = None) -> KinesisSink:
        return self.sink_to(KinesisSink(stream, target, partition_key, serializer))


class KeyedStream(DataStream):
    """A stream partitioned by key: keyed state, timers, windows and per-key models.

    Made by :meth:`DataStream.key_by`. Every record carries its key; what follows keeps
    state per key: ``reduce`` (a running result), ``process`` with a
    :class:`~forestream.processing.KeyedProcessFunction` (state and timers), ``window``
    and ``count_window`` (a :class:`WindowedStream`), ``interval_join``, ``pattern``
    (:class:`~forestream.processing.Pattern`), ``random_cut_forest`` and
    ``thresholded_random_cut_forest``. Keys must be hashable and picklable (state is
    checkpointed); records of one key keep their order.

    Examples
    --------
    A running total per key, emitted with every record:

    >>> from forestream.processing import StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> sales = [("north", 5), ("south", 3), ("north", 2), ("north", 4), ("south", 1)]
    >>> running = (env.from_collection(sales)
    ...            .key_by(lambda sale: sale[0])
    ...            .reduce(lambda total, sale: (total[0], total[1] + sale[1]))
    ...            .collect())
    >>> _ = env.execute()
    >>> running.values
    [('north', 5), ('south', 3), ('north', 7), ('north', 11), ('south', 4)]
    """

    def window(self, assigner: WindowAssigner | GlobalWindows) -> WindowedStream:
        return WindowedStream(self, assigner)

    def count_window(self, size: int, slide: int | None = None) -> WindowedStream:
        """Windows of each key's last ``size`` records, fired every ``slide`` records
        (default: ``size``, tumbling); see
        :class:`~forestream.processing.CountWindows`.

        >>> from forestream.processing import StreamExecutionEnvironment
        >>> env = StreamExecutionEnvironment()
        >>> values = [("a", 1), ("b", 5), ("a", 2), ("a", 3), ("b", 6), ("a", 4)]
        >>> pairs = (env.from_collection(values).key_by(lambda pair: pair[0])
        ...          .count_window(2).reduce(lambda x, y: (x[0], x[1] + y[1])).collect())
        >>> _ = env.execute()
        >>> pairs.values
        [('a', 3), ('b', 11), ('a', 7)]
        """
        return WindowedStream(self, CountWindows(size, slide))

    def reduce(self, fn: Callable[[Any, Any], Any]) -> DataStream:
        """Rolling reduce per key: emits the running result for every record."""
        return self.process(RollingReduceFunction(fn))

    def interval_join(self, other: KeyedStream) -> IntervalJoined:
        """Pairs with equal keys whose times differ by ``.between(lower, upper)``."""
        return IntervalJoined(self, other)

    def pattern(self, pattern: Pattern) -> DataStream:
        """Complex event processing: emit ``{stage name: [events]}`` for every match of
        ``pattern`` (see :mod:`forestream.processing.cep`) per key."""
        return self._then(PatternOperator(pattern), cls=KeyedStream)

    def random_cut_forest(self, fields: list[str], **kwargs: Any) -> DataStream:
        """Score each record with its key's forest; see :class:`RandomCutForestOperator`."""
        return self._then(RandomCutForestOperator(fields, **kwargs), cls=KeyedStream)

    def thresholded_random_cut_forest(self, fields: list[str], **kwargs: Any) -> DataStream:
        """Grade each record with its key's detector; see :class:`ThresholdedRCFOperator`."""
        return self._then(ThresholdedRCFOperator(fields, **kwargs), cls=KeyedStream)


class WindowedStream:
    """A keyed stream cut into windows; finish with ``reduce``, ``aggregate`` or
    ``process``.

    Made by :meth:`KeyedStream.window` (with a window assigner such as
    :class:`~forestream.processing.TumblingEventTimeWindows`) or
    :meth:`KeyedStream.count_window`. ``reduce(fn)`` combines two elements into one;
    ``aggregate`` takes an :class:`~forestream.processing.AggregateFunction` (and
    optionally a :class:`~forestream.processing.ProcessWindowFunction` that sees its
    result with the window); ``process`` takes a ProcessWindowFunction that sees all of a
    window's elements. A time window's results carry its last instant
    (:meth:`~forestream.processing.TimeWindow.max_timestamp`) as their event time.

    An event-time window fires when the watermark passes its end. ``allowed_lateness``
    keeps it that many seconds longer, and every late record that still fits fires it
    again with the updated result; ``side_output_late_data`` routes records that came
    too late for all their windows to a side output instead of dropping them.
    ``trigger`` applies to :class:`~forestream.processing.GlobalWindows` only.

    Examples
    --------
    With ``batch_size=1`` the watermark moves after every record, as on a live stream.
    The reading at 3 s arrives after the one at 12 s has closed ``[0, 10)``, but within
    the 5 seconds of allowed lateness: the window fires again. The reading at 4 s
    arrives after 30 s, too late even for that, and goes to the side output.

    >>> from forestream.processing import (
    ...     OutputTag, StreamExecutionEnvironment, TumblingEventTimeWindows, WatermarkStrategy)
    >>> strategy = (WatermarkStrategy.for_monotonous_timestamps()
    ...             .with_timestamp_assigner(lambda reading, _: reading[1]))
    >>> readings = [("s1", 1, 1), ("s1", 12, 10), ("s1", 3, 100), ("s1", 30, 1000),
    ...             ("s1", 4, 5)]
    >>> too_late = OutputTag("too-late")
    >>> env = StreamExecutionEnvironment(batch_size=1)
    >>> sums = (env.from_collection(readings, watermark_strategy=strategy)
    ...         .key_by(lambda reading: reading[0])
    ...         .window(TumblingEventTimeWindows.of(10))
    ...         .allowed_lateness(5)
    ...         .side_output_late_data(too_late)
    ...         .reduce(lambda x, y: (x[0], x[1], x[2] + y[2])))
    >>> results = sums.collect()
    >>> dropped = sums.get_side_output(too_late).collect()
    >>> _ = env.execute()
    >>> [(r.timestamp, r.value[2]) for r in results.records]
    [(9.999, 1), (9.999, 101), (19.999, 10), (39.999, 1000)]
    >>> dropped.values
    [('s1', 4, 5)]
    """

    def __init__(self, keyed: KeyedStream,
                 assigner: WindowAssigner | GlobalWindows | CountWindows) -> None:
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

    def trigger(self, trigger: CountTrigger | ContinuousEventTimeTrigger) -> WindowedStream:
        """When a :class:`GlobalWindows` window fires: :class:`CountTrigger`,
        :class:`ContinuousEventTimeTrigger` or :class:`ContinuousProcessingTimeTrigger`."""
        if not isinstance(self.assigner, GlobalWindows):
            raise TypeError("custom triggers apply to GlobalWindows; time and count windows "
                            "fire on their own schedule")
        self.trigger_ = trigger
        return self

    def reduce(self, fn: Callable[[Any, Any], Any]) -> KeyedStream:
        return self._build(_ReduceAggregate(fn), None)

    def aggregate(self, function: AggregateFunction,
                  window_function: ProcessWindowFunction | None = None) -> KeyedStream:
        return self._build(function, window_function)

    def process(self, function: ProcessWindowFunction) -> KeyedStream:
        return self._build(None, function)

    def _build(self, aggregate: AggregateFunction | None,
               window_function: ProcessWindowFunction | None) -> KeyedStream:
        op: Operator
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
    """``a.join(b)``: finish with ``.where(...).equal_to(...).window(...).apply(fn)``.

    A window join: every pair of a left and a right element with equal keys (``where``
    picks the left key, ``equal_to`` the right one) that fall in the same event-time
    window gives ``fn(left, right)``, emitted when the watermark passes the window's end
    (an inner join: an element without a partner in its window gives nothing). Both
    streams need event time; the result is a plain :class:`DataStream`.

    Examples
    --------
    Orders joined with clicks of the same user in the same 10-second window:

    >>> from forestream.processing import (
    ...     StreamExecutionEnvironment, TumblingEventTimeWindows, WatermarkStrategy)
    >>> strategy = (WatermarkStrategy.for_monotonous_timestamps()
    ...             .with_timestamp_assigner(lambda event, _: event["t"]))
    >>> env = StreamExecutionEnvironment()
    >>> orders = env.from_collection([{"user": "u1", "t": 1, "order": "o1"},
    ...                               {"user": "u2", "t": 3, "order": "o2"},
    ...                               {"user": "u1", "t": 12, "order": "o3"}],
    ...                              watermark_strategy=strategy)
    >>> clicks = env.from_collection([{"user": "u1", "t": 2, "page": "p1"},
    ...                               {"user": "u1", "t": 4, "page": "p2"},
    ...                               {"user": "u2", "t": 15, "page": "p3"}],
    ...                              watermark_strategy=strategy)
    >>> pairs = (orders.join(clicks)
    ...          .where(lambda order: order["user"])
    ...          .equal_to(lambda click: click["user"])
    ...          .window(TumblingEventTimeWindows.of(10))
    ...          .apply(lambda order, click: (order["order"], click["page"]))
    ...          .collect())
    >>> _ = env.execute()
    >>> sorted(pairs.values)  # o2 and o3 have no click of their user in their window
    [('o1', 'p1'), ('o1', 'p2')]
    """

    def __init__(self, left: DataStream, right: DataStream) -> None:
        self.left, self.right = left, right
        self._key_left: Callable[[Any], Any] | None = None
        self._key_right: Callable[[Any], Any] | None = None
        self._assigner: WindowAssigner | None = None

    def where(self, selector: Callable[[Any], Any]) -> JoinedStreams:
        self._key_left = selector
        return self

    def equal_to(self, selector: Callable[[Any], Any]) -> JoinedStreams:
        self._key_right = selector
        return self

    def window(self, assigner: WindowAssigner) -> JoinedStreams:
        self._assigner = assigner
        return self

    def apply(self, fn: Callable[[Any, Any], Any]) -> DataStream:
        if self._key_left is None or self._key_right is None or self._assigner is None:
            raise TypeError("join(...) needs .where(key).equal_to(key).window(assigner) "
                            "before .apply(fn)")
        op = WindowJoinOperator(self._key_left, self._key_right, self._assigner, fn)
        return self.left._then(op, inputs=[self.left.node, self.right.node])


class IntervalJoined:
    """``a.interval_join(b)`` on two keyed streams: finish with
    ``.between(lower, upper).process(fn)``.

    Every pair of a left element at time ``l`` and a right element at time ``r`` with
    equal keys and ``l + lower <= r <= l + upper`` (both bounds included; ``lower`` may
    be negative) gives ``fn(left, right)`` as soon as the second of the two arrives, with
    the later of the two times as its event time. Each side's elements are kept until the
    watermark shows that no partner can arrive any more. Both streams need event time.

    Examples
    --------
    Payments matched to the order they follow by at most 5 seconds (or precede by 2):

    >>> from forestream.processing import StreamExecutionEnvironment, WatermarkStrategy
    >>> strategy = (WatermarkStrategy.for_monotonous_timestamps()
    ...             .with_timestamp_assigner(lambda event, _: event["t"]))
    >>> env = StreamExecutionEnvironment()
    >>> orders = (env.from_collection([{"id": "o1", "t": 10}, {"id": "o2", "t": 20}],
    ...                               watermark_strategy=strategy)
    ...           .key_by(lambda order: order["id"]))
    >>> payments = (env.from_collection([{"order": "o1", "t": 8}, {"order": "o1", "t": 15},
    ...                                  {"order": "o1", "t": 16}, {"order": "o2", "t": 40}],
    ...                                 watermark_strategy=strategy)
    ...             .key_by(lambda payment: payment["order"]))
    >>> matched = (orders.interval_join(payments).between(-2, 5)
    ...            .process(lambda order, payment: (order["id"], payment["t"]))
    ...            .collect())
    >>> _ = env.execute()
    >>> sorted(matched.values)
    [('o1', 8), ('o1', 15)]
    """

    def __init__(self, left: KeyedStream, right: KeyedStream) -> None:
        self.left, self.right = left, right
        self._bounds: tuple[float, float] | None = None

    def between(self, lower: float, upper: float) -> IntervalJoined:
        self._bounds = (lower, upper)
        return self

    def process(self, fn: Callable[[Any, Any], Any]) -> KeyedStream:
        if self._bounds is None:
            raise TypeError("interval_join(...) needs .between(lower, upper)")
        op = IntervalJoinOperator(*self._bounds, fn)
        return self.left._then(op, inputs=[self.left.node, self.right.node], cls=KeyedStream)


class ConnectedStreams:
    """``a.connect(b)``: one :class:`~forestream.processing.CoProcessFunction` sees both
    streams; finish with ``.process(function)``.

    ``process_element1`` handles the first stream and ``process_element2`` the second,
    which may carry values of another type (rules, thresholds, switches). When the first
    stream is keyed, the function has keyed state (and event-time timers) for it; in
    either case ``ctx.broadcast_state()`` is a dictionary shared by all keys, typically
    filled from the second stream. In each batch the second stream's records are
    handled first. See :class:`~forestream.processing.CoProcessFunction` for keyed state
    with broadcast rules.

    Examples
    --------
    A control stream sets the unit the readings are reported in:

    >>> from forestream.processing import CoProcessFunction, StreamExecutionEnvironment
    >>> class Convert(CoProcessFunction):
    ...     def process_element1(self, celsius, ctx):
    ...         if ctx.broadcast_state().get("unit") == "F":
    ...             return f"{celsius * 9 / 5 + 32:.1f} F"
    ...         return f"{celsius:.1f} C"
    ...     def process_element2(self, command, ctx):
    ...         ctx.broadcast_state()["unit"] = command
    >>> env = StreamExecutionEnvironment()
    >>> readings = env.from_collection([20, 25, 30])
    >>> commands = env.from_collection(["F"])
    >>> shown = readings.connect(commands).process(Convert()).collect()
    >>> _ = env.execute()
    >>> shown.values
    ['68.0 F', '77.0 F', '86.0 F']
    """

    def __init__(self, first: DataStream, second: DataStream) -> None:
        self.first, self.second = first, second

    def process(self, function: CoProcessFunction) -> DataStream:
        keyed = isinstance(self.first, KeyedStream)
        return self.first._then(CoProcessOperator(function, keyed),
                                inputs=[self.first.node, self.second.node],
                                cls=KeyedStream if keyed else None)
