"""User function interfaces, named as in (Py)Flink's DataStream API.

Process functions *yield* their outputs (as PyFlink's do); side outputs go through
``ctx.output(tag, value)``. Keyed functions get state through the runtime context in
``open`` and timers through ``ctx.timer_service()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .records import OutputTag
from .state import (
    KeyedStateBackend,
    ListState,
    ListStateDescriptor,
    MapState,
    MapStateDescriptor,
    ValueState,
    ValueStateDescriptor,
)


class _TimerHost(Protocol):
    """What a :class:`TimerService` works on: a (keyed) operator's event time, clock and
    state backend (a process or co-process operator)."""

    @property
    def watermark(self) -> float: ...

    @property
    def clock(self) -> Callable[[], float]: ...

    @property
    def backend(self) -> KeyedStateBackend | None: ...


class _ContextHost(_TimerHost, Protocol):
    """What a :class:`Context` works on: a :class:`_TimerHost` with its timer service and
    side outputs."""

    @property
    def timers(self) -> TimerService: ...

    def side_output(self, tag: OutputTag, value: Any, timestamp: float | None) -> None: ...


class RuntimeContext:
    """What a function sees of the job: its state, the job's runtime properties.

    A function's ``open(runtime_context)`` gets it once, before the first element:
    ``get_state``, ``get_list_state`` and ``get_map_state`` return handles on keyed
    state (see :class:`~forestream.processing.ValueStateDescriptor` and the others; only
    on a keyed stream), and ``properties`` holds the environment's runtime properties
    (an application's property groups), so one program can be configured per
    deployment.

    >>> from forestream.processing import ProcessFunction, StreamExecutionEnvironment
    >>> class Scale(ProcessFunction):
    ...     def open(self, runtime_context):
    ...         self.factor = float(runtime_context.properties["scaling"]["factor"])
    ...     def process_element(self, value, ctx):
    ...         yield value * self.factor
    >>> env = StreamExecutionEnvironment(properties={"scaling": {"factor": "2.5"}})
    >>> scaled = env.from_collection([1, 2, 4]).process(Scale()).collect()
    >>> _ = env.execute()
    >>> scaled.values
    [2.5, 5.0, 10.0]
    """

    def __init__(self, backend: KeyedStateBackend | None, properties: dict[str, Any],
                 operator_name: str) -> None:
        self._backend = backend
        self.properties = properties
        self.operator_name = operator_name

    def _keyed(self) -> KeyedStateBackend:
        if self._backend is None:
            raise TypeError(f"{self.operator_name}: keyed state needs a keyed stream "
                            "(call key_by first)")
        return self._backend

    def get_state(self, descriptor: ValueStateDescriptor) -> ValueState:
        return ValueState(self._keyed(), descriptor)

    def get_list_state(self, descriptor: ListStateDescriptor) -> ListState:
        return ListState(self._keyed(), descriptor)

    def get_map_state(self, descriptor: MapStateDescriptor) -> MapState:
        return MapState(self._keyed(), descriptor)


class TimerService:
    def __init__(self, operator: _TimerHost) -> None:
        self._op = operator

    def current_watermark(self) -> float:
        return self._op.watermark

    def current_processing_time(self) -> float:
        return self._op.clock()

    def _backend(self) -> KeyedStateBackend:
        backend = self._op.backend
        assert backend is not None  # Context.timer_service() refuses unkeyed operators
        return backend

    def register_event_time_timer(self, when: float) -> None:
        backend = self._backend()
        backend.register_timer("event", when, backend.current_key)

    def register_processing_time_timer(self, when: float) -> None:
        backend = self._backend()
        backend.register_timer("processing", when, backend.current_key)

    def delete_event_time_timer(self, when: float) -> None:
        backend = self._backend()
        backend.delete_timer("event", when, backend.current_key)

    def delete_processing_time_timer(self, when: float) -> None:
        backend = self._backend()
        backend.delete_timer("processing", when, backend.current_key)


class Context:
    """Per-element (or per-timer) context of a process function."""

    def __init__(self, operator: _ContextHost) -> None:
        self._op = operator
        self._timestamp: float | None = None

    def timestamp(self) -> float | None:
        """Event time of the element (or the firing time of the timer)."""
        return self._timestamp

    def get_current_key(self) -> Any:
        return self._op.backend.current_key if self._op.backend else None

    def timer_service(self) -> TimerService:
        if self._op.backend is None:
            raise TypeError("timers need a keyed stream (call key_by first)")
        return self._op.timers

    def output(self, tag: OutputTag, value: Any) -> None:
        self._op.side_output(tag, value, self._timestamp)


class ProcessFunction:
    """Per-element logic with side outputs; override :meth:`process_element`.

    ``process_element(value, ctx)`` yields any number of outputs (or returns a list of
    them, or one value, or ``None`` for none); outputs keep the element's event time.
    ``ctx.output(tag, value)`` sends a value to the side output named by an
    :class:`~forestream.processing.OutputTag`, which
    :meth:`DataStream.get_side_output <forestream.processing.DataStream.get_side_output>`
    turns into a stream of its own. ``ctx.timestamp()`` is the element's event time.
    ``open`` runs before the first element, ``close`` after the last. On a keyed stream,
    use a :class:`KeyedProcessFunction` for state and timers.

    Examples
    --------
    Parse lines; send those that cannot be parsed to a side output instead of failing:

    >>> from forestream.processing import (
    ...     OutputTag, ProcessFunction, StreamExecutionEnvironment)
    >>> bad_lines = OutputTag("bad-lines")
    >>> class Parse(ProcessFunction):
    ...     def process_element(self, line, ctx):
    ...         try:
    ...             yield int(line)
    ...         except ValueError:
    ...             ctx.output(bad_lines, line)
    >>> env = StreamExecutionEnvironment()
    >>> parsed = env.from_collection(["1", "2", "x", "40", "4O"]).process(Parse())
    >>> numbers = parsed.collect()
    >>> rejected = parsed.get_side_output(bad_lines).collect()
    >>> _ = env.execute()
    >>> numbers.values, rejected.values
    ([1, 2, 40], ['x', '4O'])
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        pass

    def process_element(self, value: Any, ctx: Context) -> Iterable[Any] | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class KeyedProcessFunction(ProcessFunction):
    """Per-element logic on a keyed stream, with keyed state and timers.

    The most general keyed operator (``keyed_stream.process(function)``): state handles
    taken in ``open`` (:class:`~forestream.processing.ValueStateDescriptor`,
    :class:`~forestream.processing.ListStateDescriptor`,
    :class:`~forestream.processing.MapStateDescriptor`) always show the current key's
    state, and ``ctx.timer_service()`` registers and deletes timers for the current key:
    ``register_event_time_timer(t)`` calls :meth:`on_timer` once the watermark reaches
    ``t``, ``register_processing_time_timer(t)`` once the environment's clock does
    (one timer per key and time; registering it again changes nothing). In ``on_timer``
    the state and ``ctx.get_current_key()`` are the timer's key and ``ctx.timestamp()``
    its time, which is also the event time of what it yields. At the end of a bounded
    input the watermark jumps to infinity and every event-time timer fires.

    Examples
    --------
    Sessions per user: each click pushes the user's deadline to 10 seconds later (an
    event-time timer, the previous one deleted); when the watermark passes the deadline
    the session's click count is emitted. ``batch_size=1`` moves the watermark after
    every click, as on a live stream.

    >>> from forestream.processing import (
    ...     KeyedProcessFunction, StreamExecutionEnvironment, ValueStateDescriptor,
    ...     WatermarkStrategy)
    >>> class Sessions(KeyedProcessFunction):
    ...     def open(self, runtime_context):
    ...         self.clicks = runtime_context.get_state(ValueStateDescriptor("clicks", 0))
    ...         self.deadline = runtime_context.get_state(ValueStateDescriptor("deadline"))
    ...     def process_element(self, click, ctx):
    ...         timers = ctx.timer_service()
    ...         if self.deadline.value() is not None:
    ...             timers.delete_event_time_timer(self.deadline.value())
    ...         self.clicks.update(self.clicks.value() + 1)
    ...         self.deadline.update(ctx.timestamp() + 10)
    ...         timers.register_event_time_timer(ctx.timestamp() + 10)
    ...     def on_timer(self, timestamp, ctx):
    ...         clicks = self.clicks.value()
    ...         self.clicks.clear()
    ...         self.deadline.clear()
    ...         yield ctx.get_current_key(), timestamp, clicks
    >>> clicks = [("ann", 0), ("ann", 3), ("bob", 5), ("bob", 15), ("ann", 30)]
    >>> strategy = (WatermarkStrategy.for_monotonous_timestamps()
    ...             .with_timestamp_assigner(lambda click, _: click[1]))
    >>> env = StreamExecutionEnvironment(batch_size=1)
    >>> sessions = (env.from_collection(clicks, watermark_strategy=strategy)
    ...             .key_by(lambda click: click[0])
    ...             .process(Sessions())
    ...             .collect())
    >>> _ = env.execute()
    >>> sessions.values  # ann's 13 fires once bob's click at 15 moves the watermark
    [('ann', 13.0, 2), ('bob', 25.0, 2), ('ann', 40.0, 1)]
    """

    def on_timer(self, timestamp: float, ctx: Context) -> Iterable[Any] | None:
        return None


class AggregateFunction:
    """Incremental window aggregation: accumulator in, result out (Flink's shape).

    For ``windowed_stream.aggregate(function)``: a window keeps one accumulator instead
    of its elements. ``create_accumulator()`` starts one, ``add(value, accumulator)``
    returns it updated (accumulators may be immutable), ``get_result(accumulator)``
    makes the window's output, and ``merge(a, b)`` combines two (needed by session
    windows, which merge). Accumulators are checkpointed, so they must be picklable.
    With a :class:`ProcessWindowFunction` as second argument, that function gets the
    result (as its only element) together with the key and the window.

    Examples
    --------
    The average of each sensor's readings over the last 10 seconds, every 5 seconds:

    >>> from forestream.processing import (
    ...     AggregateFunction, ProcessWindowFunction, SlidingEventTimeWindows,
    ...     StreamExecutionEnvironment)
    >>> class Average(AggregateFunction):
    ...     def create_accumulator(self):
    ...         return (0.0, 0)
    ...     def add(self, reading, acc):
    ...         return (acc[0] + reading[1], acc[1] + 1)
    ...     def get_result(self, acc):
    ...         return acc[0] / acc[1]
    ...     def merge(self, a, b):
    ...         return (a[0] + b[0], a[1] + b[1])
    >>> class WithWindow(ProcessWindowFunction):
    ...     def process(self, key, window, elements):
    ...         (average,) = elements
    ...         yield key, window.end, round(average, 2)
    >>> readings = [("s1", 10.0), ("s1", 12.0), ("s1", 20.0), ("s1", 14.0)]
    >>> env = StreamExecutionEnvironment()
    >>> averages = (env.from_collection(readings, timestamps=[1, 4, 7, 12])
    ...             .key_by(lambda reading: reading[0])
    ...             .window(SlidingEventTimeWindows.of(10, 5))
    ...             .aggregate(Average(), WithWindow())
    ...             .collect())
    >>> _ = env.execute()
    >>> sorted(averages.values)
    [('s1', 5.0, 11.0), ('s1', 10.0, 14.0), ('s1', 15.0, 17.0), ('s1', 20.0, 14.0)]
    """

    def create_accumulator(self) -> Any:
        raise NotImplementedError

    def add(self, value: Any, accumulator: Any) -> Any:
        raise NotImplementedError

    def get_result(self, accumulator: Any) -> Any:
        raise NotImplementedError

    def merge(self, a: Any, b: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} cannot merge (session windows "
                                  "need merge)")


class ProcessWindowFunction:
    """Sees all elements of a window at once (and the window).

    For ``windowed_stream.process(function)``: when a window fires,
    ``process(key, window, elements)`` gets the key, the window (a
    :class:`~forestream.processing.TimeWindow` with ``start`` and ``end``; for count and
    global windows, an object with an ``id``) and the list of its elements in arrival
    order, and yields the window's outputs. The window keeps every element until it
    fires; where an incremental result will do, an :class:`AggregateFunction` keeps
    less (and may hand its result to a ProcessWindowFunction).

    Examples
    --------
    The median response time per endpoint and minute:

    >>> import statistics
    >>> from forestream.processing import (
    ...     ProcessWindowFunction, StreamExecutionEnvironment, TumblingEventTimeWindows)
    >>> class Median(ProcessWindowFunction):
    ...     def process(self, key, window, elements):
    ...         yield key, window.start, statistics.median(ms for _, ms in elements)
    >>> requests = [("/a", 120), ("/a", 80), ("/b", 30), ("/a", 95), ("/a", 300)]
    >>> env = StreamExecutionEnvironment()
    >>> medians = (env.from_collection(requests, timestamps=[5, 20, 30, 50, 70])
    ...            .key_by(lambda request: request[0])
    ...            .window(TumblingEventTimeWindows.of(60))
    ...            .process(Median())
    ...            .collect())
    >>> _ = env.execute()
    >>> sorted(medians.values)
    [('/a', 0.0, 95), ('/a', 60.0, 300), ('/b', 0.0, 30)]
    """

    def process(self, key: Any, window: Any, elements: list[Any]) -> Iterable[Any]:
        raise NotImplementedError
