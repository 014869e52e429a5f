"""Windows on keyed streams: tumbling, sliding and session (event time), tumbling in
processing time, and count windows; reduce / aggregate / process window functions,
allowed lateness and a side output for late records.

An event-time window ``[start, end)`` fires when the watermark passes ``end``; with
allowed lateness its state is kept until ``end + lateness`` and every late record that
still fits fires the window again with the updated result. Records for windows already
cleaned up go to the late-data side output (if one is set) or are dropped.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from .functions import (
    AggregateFunction,
    Context,
    KeyedProcessFunction,
    ProcessWindowFunction,
    RuntimeContext,
)
from .operators import Operator
from .records import Collector, OutputTag, Record
from .state import ValueStateDescriptor


@dataclass(frozen=True, order=True)
class TimeWindow:
    """The interval ``[start, end)`` of event (or processing) time a window covers.

    A :class:`~forestream.processing.ProcessWindowFunction` gets it with the window's
    elements; a window's results carry its :meth:`max_timestamp` as their event time.

    >>> from forestream.processing import TimeWindow
    >>> window = TimeWindow(10.0, 20.0)
    >>> window.max_timestamp()
    19.999
    >>> TimeWindow(0.0, 10.0) < window
    True
    """

    start: float
    end: float

    def max_timestamp(self) -> float:
        return self.end - 0.001


class WindowAssigner(Protocol):
    """What places a record in time windows: the windows of its timestamp
    (:class:`TumblingEventTimeWindows`, :class:`SlidingEventTimeWindows`,
    :class:`EventTimeSessionWindows`, :class:`TumblingProcessingTimeWindows`)."""

    def assign(self, timestamp: float) -> list[TimeWindow]: ...


@dataclass(frozen=True, order=True)
class CountWindow:
    id: int


class TumblingEventTimeWindows:
    """Fixed-size, non-overlapping windows of event time: ``[0, size)``, ``[size,
    2 size)``, … (shifted by ``offset``).

    Every record falls in exactly one window. A window collects the records of its key
    and fires when the watermark passes its end (and again for late records within the
    allowed lateness, see :class:`~forestream.processing.WindowedStream`): what it emits
    comes from the function that finishes the windowed stream (``reduce``, ``aggregate``
    or ``process``). Records need event time: a
    :class:`~forestream.processing.WatermarkStrategy` (or timestamps given to the
    source) provides it; at the end of a bounded input every open window fires.

    Parameters
    ----------
    size
        Length of each window, in seconds.
    offset
        Shift of the window boundaries, in seconds (``offset=2`` with ``size=10``:
        ``[2, 12)``, ``[12, 22)``, …).

    Examples
    --------
    Clicks per user per 10 seconds; a
    :class:`~forestream.processing.ProcessWindowFunction` reports each window's bounds.

    >>> from forestream.processing import (
    ...     ProcessWindowFunction, StreamExecutionEnvironment, TumblingEventTimeWindows,
    ...     WatermarkStrategy)
    >>> class CountClicks(ProcessWindowFunction):
    ...     def process(self, key, window, elements):
    ...         yield key, window.start, window.end, len(elements)
    >>> clicks = [("alice", 1), ("bob", 4), ("alice", 8), ("alice", 12), ("bob", 25)]
    >>> strategy = (WatermarkStrategy.for_monotonous_timestamps()
    ...             .with_timestamp_assigner(lambda click, _: click[1]))
    >>> env = StreamExecutionEnvironment()
    >>> counts = (env.from_collection(clicks, watermark_strategy=strategy)
    ...           .key_by(lambda click: click[0])
    ...           .window(TumblingEventTimeWindows.of(10))
    ...           .process(CountClicks())
    ...           .collect())
    >>> _ = env.execute()
    >>> for row in sorted(counts.values):
    ...     print(row)
    ('alice', 0.0, 10.0, 2)
    ('alice', 10.0, 20.0, 1)
    ('bob', 0.0, 10.0, 1)
    ('bob', 20.0, 30.0, 1)
    """

    def __init__(self, size: float, offset: float = 0.0) -> None:
        if size <= 0:
            raise ValueError(f"window size must be > 0 seconds, got {size}")
        self.size, self.offset = float(size), float(offset)

    @classmethod
    def of(cls, size: float, offset: float = 0.0) -> TumblingEventTimeWindows:
        return cls(size, offset)

    def assign(self, timestamp: float) -> list[TimeWindow]:
        start = timestamp - (timestamp - self.offset) % self.size
        return [TimeWindow(start, start + self.size)]


class SlidingEventTimeWindows:
    """Windows of ``size`` seconds of event time that start every ``slide`` seconds.

    With ``slide < size`` windows overlap and every record belongs to about ``size /
    slide`` of them (a moving aggregate: "the last minute, every ten seconds"); with
    ``slide == size`` they are tumbling windows. Each window fires when the watermark
    passes its end.

    Parameters
    ----------
    size
        Length of each window, in seconds.
    slide
        Seconds between the starts of consecutive windows.
    offset
        Shift of the window boundaries, in seconds.

    Examples
    --------
    Windows of 10 seconds every 5 seconds: the reading at 6 s is in ``[0, 10)`` and in
    ``[5, 15)``.

    >>> from forestream.processing import (
    ...     ProcessWindowFunction, SlidingEventTimeWindows, StreamExecutionEnvironment)
    >>> class Describe(ProcessWindowFunction):
    ...     def process(self, key, window, elements):
    ...         yield window.start, window.end, [value for _, value in elements]
    >>> readings = [("s1", 1), ("s1", 6), ("s1", 7), ("s1", 12)]
    >>> env = StreamExecutionEnvironment()
    >>> windows = (env.from_collection(readings, timestamps=[t for _, t in readings])
    ...            .key_by(lambda r: r[0])
    ...            .window(SlidingEventTimeWindows.of(10, 5))
    ...            .process(Describe())
    ...            .collect())
    >>> _ = env.execute()
    >>> for row in sorted(windows.values):
    ...     print(row)
    (-5.0, 5.0, [1])
    (0.0, 10.0, [1, 6, 7])
    (5.0, 15.0, [6, 7, 12])
    (10.0, 20.0, [12])
    """

    def __init__(self, size: float, slide: float, offset: float = 0.0) -> None:
        if size <= 0 or slide <= 0:
            raise ValueError(f"size and slide must be > 0 seconds, got {size}, {slide}")
        self.size, self.slide, self.offset = float(size), float(slide), float(offset)

    @classmethod
    def of(cls, size: float, slide: float, offset: float = 0.0) -> SlidingEventTimeWindows:
        return cls(size, slide, offset)

    def assign(self, timestamp: float) -> list[TimeWindow]:
        last = timestamp - (timestamp - self.offset) % self.slide
        windows: list[TimeWindow] = []
        start = last
        while start > timestamp - self.size:
            windows.append(TimeWindow(start, start + self.size))
            start -= self.slide
        return windows


class EventTimeSessionWindows:
    """Windows of activity separated by at least ``gap`` seconds of silence (merging).

    Each record opens a window ``[t, t + gap)``; windows of a key that overlap merge,
    so a session lasts from its first record to ``gap`` seconds after its last one, and
    fires when the watermark passes that end. Sessions merge their contents:
    ``reduce`` and ``process`` always can, and an
    :class:`~forestream.processing.AggregateFunction` must implement ``merge``.

    Parameters
    ----------
    gap
        Seconds of silence that close a session.

    Examples
    --------
    User activity with a 5-second gap: the clicks at 1 s and 3 s make one session, those
    at 10 s and 12 s another, and the one at 30 s a third.

    >>> from forestream.processing import (
    ...     EventTimeSessionWindows, ProcessWindowFunction, StreamExecutionEnvironment,
    ...     WatermarkStrategy)
    >>> class Session(ProcessWindowFunction):
    ...     def process(self, key, window, elements):
    ...         yield key, window.start, window.end, len(elements)
    >>> clicks = [("alice", t) for t in (1, 3, 10, 12, 30)]
    >>> strategy = (WatermarkStrategy.for_monotonous_timestamps()
    ...             .with_timestamp_assigner(lambda click, _: click[1]))
    >>> env = StreamExecutionEnvironment()
    >>> sessions = (env.from_collection(clicks, watermark_strategy=strategy)
    ...             .key_by(lambda click: click[0])
    ...             .window(EventTimeSessionWindows.with_gap(5))
    ...             .process(Session())
    ...             .collect())
    >>> _ = env.execute()
    >>> for row in sorted(sessions.values):
    ...     print(row)
    ('alice', 1.0, 8.0, 2)
    ('alice', 10.0, 17.0, 2)
    ('alice', 30.0, 35.0, 1)
    """

    merging = True

    def __init__(self, gap: float) -> None:
        if gap <= 0:
            raise ValueError(f"session gap must be > 0 seconds, got {gap}")
        self.gap = float(gap)

    @classmethod
    def with_gap(cls, gap: float) -> EventTimeSessionWindows:
        return cls(gap)

    def assign(self, timestamp: float) -> list[TimeWindow]:
        return [TimeWindow(timestamp, timestamp + self.gap)]


class TumblingProcessingTimeWindows(TumblingEventTimeWindows):
    """Tumbling windows on the wall clock at the operator (fire on the clock, not on
    watermarks).

    A record belongs to the window of the moment the window operator sees it, whatever
    its event time; a window fires once the clock passes its end (checked every runtime
    step), and at the end of a bounded input. Results depend on when records arrive, so
    they are not reproducible from the data alone, and a job restarted from a checkpoint
    may cut its windows differently.

    Parameters
    ----------
    size
        Length of each window, in seconds of the environment's clock.
    offset
        Shift of the window boundaries, in seconds.

    Examples
    --------
    The environment's ``clock`` (``time.time`` by default) is replaced here by one that
    ticks a second before every runtime step, and ``batch_size=1`` lets one record in per
    step, so the seven records arrive at 1 s, 2 s, …, 7 s:

    >>> from forestream.processing import (
    ...     ProcessWindowFunction, StreamExecutionEnvironment, TumblingProcessingTimeWindows)
    >>> class Describe(ProcessWindowFunction):
    ...     def process(self, key, window, elements):
    ...         yield window.start, window.end, elements
    >>> now = [0.0]
    >>> def tick():
    ...     now[0] += 1.0
    ...     return False  # do not stop: run until the input ends
    >>> env = StreamExecutionEnvironment(batch_size=1, clock=lambda: now[0])
    >>> windows = (env.from_collection(["a", "b", "c", "d", "e", "f", "g"])
    ...            .key_by(lambda letter: "letters")
    ...            .window(TumblingProcessingTimeWindows.of(3))
    ...            .process(Describe())
    ...            .collect())
    >>> _ = env.execute(until=tick)
    >>> for row in windows.values:
    ...     print(row)
    (0.0, 3.0, ['a', 'b'])
    (3.0, 6.0, ['c', 'd', 'e'])
    (6.0, 9.0, ['f', 'g'])
    """

    processing_time = True


@dataclass(frozen=True, order=True)
class GlobalWindow:
    """The one window per key of :class:`GlobalWindows`."""

    id: int = 0


class GlobalWindows:
    """One never-ending window per key; it fires only when its trigger says so.

    A global window has no end, so it needs ``.trigger(...)``: :class:`CountTrigger`
    (every n elements of a key), :class:`ContinuousEventTimeTrigger` (every interval of
    event time) or :class:`ContinuousProcessingTimeTrigger` (every interval of the
    clock). Each firing emits the window's current result; with ``purge=True`` the
    window then starts afresh, otherwise it keeps accumulating.

    Examples
    --------
    A running total per key, emitted every second element:

    >>> from forestream.processing import CountTrigger, GlobalWindows, StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> values = [("a", 1), ("a", 2), ("b", 10), ("a", 3), ("a", 4), ("b", 20)]
    >>> totals = (env.from_collection(values)
    ...           .key_by(lambda pair: pair[0])
    ...           .window(GlobalWindows.create())
    ...           .trigger(CountTrigger.of(2))
    ...           .reduce(lambda x, y: (x[0], x[1] + y[1]))
    ...           .collect())
    >>> _ = env.execute()
    >>> totals.values
    [('a', 3), ('a', 10), ('b', 30)]
    """

    @classmethod
    def create(cls) -> GlobalWindows:
        return cls()


@dataclass(frozen=True)
class CountTrigger:
    """Fire every ``count`` elements of a key (``purge``: and start the window afresh).

    For :class:`GlobalWindows` only (count windows proper are
    :meth:`KeyedStream.count_window <forestream.processing.KeyedStream.count_window>`).
    Build it with :meth:`of`, which checks the count.

    Parameters
    ----------
    count
        Elements of a key between firings.
    purge
        Empty the key's window after each firing (``False``: results accumulate over
        the whole stream).

    Examples
    --------
    Sums of each key's elements, two at a time: with ``purge=True`` every firing sums only
    the elements since the last one (compare :class:`GlobalWindows`, which keeps them).

    >>> from forestream.processing import CountTrigger, GlobalWindows, StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> values = [("a", 1), ("a", 2), ("b", 10), ("a", 3), ("a", 4), ("b", 20)]
    >>> pairs = (env.from_collection(values)
    ...          .key_by(lambda pair: pair[0])
    ...          .window(GlobalWindows.create())
    ...          .trigger(CountTrigger.of(2, purge=True))
    ...          .reduce(lambda x, y: (x[0], x[1] + y[1]))
    ...          .collect())
    >>> _ = env.execute()
    >>> pairs.values
    [('a', 3), ('a', 7), ('b', 30)]
    """

    count: int
    purge: bool = False

    @classmethod
    def of(cls, count: int, purge: bool = False) -> CountTrigger:
        if count < 1:
            raise ValueError(f"CountTrigger needs a count >= 1, got {count}")
        return cls(count, purge)


@dataclass(frozen=True)
class ContinuousEventTimeTrigger:
    """Fire every ``interval`` seconds of event time (when the watermark passes each
    multiple of it), for every key with elements.

    For :class:`GlobalWindows` only. The first firing is at the end of the interval of
    the first element (as in Flink); a watermark that jumps over several multiples fires
    once. Elements after the last multiple the watermark passed are not fired when a
    bounded input ends. Build it with :meth:`of`, which checks the interval.

    Parameters
    ----------
    interval
        Seconds of event time between firings.
    purge
        Empty every key's window after each firing (``False``: results accumulate).

    Examples
    --------
    Readings summed per 10 seconds of event time. With ``batch_size=1`` the watermark
    moves after every record, as it would on a live stream: it passes 10 once the
    reading at 11 s is in (so that one counts too), and 20 with the reading at 25 s.

    >>> from forestream.processing import (
    ...     ContinuousEventTimeTrigger, GlobalWindows, StreamExecutionEnvironment,
    ...     WatermarkStrategy)
    >>> strategy = (WatermarkStrategy.for_monotonous_timestamps()
    ...             .with_timestamp_assigner(lambda reading, _: reading[1]))
    >>> readings = [("s1", 0, 1), ("s1", 4, 1), ("s1", 11, 1), ("s1", 12, 1), ("s1", 25, 1)]
    >>> env = StreamExecutionEnvironment(batch_size=1)
    >>> sums = (env.from_collection(readings, watermark_strategy=strategy)
    ...         .key_by(lambda reading: reading[0])
    ...         .window(GlobalWindows.create())
    ...         .trigger(ContinuousEventTimeTrigger.of(10, purge=True))
    ...         .reduce(lambda x, y: (x[0], y[1], x[2] + y[2]))
    ...         .collect())
    >>> _ = env.execute()
    >>> [(r.timestamp, r.value[2]) for r in sums.records]
    [(10.0, 3), (20.0, 2)]
    """

    interval: float
    purge: bool = False

    @classmethod
    def of(cls, interval: float, purge: bool = False) -> ContinuousEventTimeTrigger:
        if interval <= 0:
            raise ValueError(f"trigger interval must be > 0 seconds, got {interval}")
        return cls(float(interval), purge)


@dataclass(frozen=True)
class ContinuousProcessingTimeTrigger(ContinuousEventTimeTrigger):
    """Fire every ``interval`` seconds of wall-clock time at the operator.

    For :class:`GlobalWindows` only; like :class:`ContinuousEventTimeTrigger`, with the
    environment's clock in place of the watermark (the first firing is at the end of the
    interval in which the first element arrived). What each firing holds depends on when
    records arrive, so it is not reproducible from the data alone; see
    :class:`TumblingProcessingTimeWindows` for a clock driven by hand.

    >>> from forestream.processing import ContinuousProcessingTimeTrigger
    >>> ContinuousProcessingTimeTrigger.of(60, purge=True)
    ContinuousProcessingTimeTrigger(interval=60.0, purge=True)
    """


class CountWindows:
    """Windows of a key's last ``size`` elements, fired every ``slide`` elements.

    Made by :meth:`KeyedStream.count_window <forestream.processing.KeyedStream.count_window>`.
    Without ``slide`` the windows tumble (every ``size`` elements, each element in one
    window); with it they slide: once a key has ``size`` elements, the window fires
    again every ``slide`` elements over the latest ``size``. A key's incomplete window
    never fires, not even at the end of a bounded input. Count windows need no event time.

    Parameters
    ----------
    size
        Elements in each window.
    slide
        Elements between firings (default: ``size``).

    Examples
    --------
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> values = [("a", 1), ("a", 2), ("b", 10), ("a", 3), ("a", 4), ("b", 20), ("a", 5)]
    >>> keyed = env.from_collection(values).key_by(lambda pair: pair[0])
    >>> add = lambda x, y: (x[0], x[1] + y[1])
    >>> tumbling = keyed.count_window(2).reduce(add).collect()
    >>> sliding = keyed.count_window(3, 1).reduce(add).collect()
    >>> _ = env.execute()
    >>> tumbling.values  # a: 1+2 and 3+4 (5 waits for a partner); b: 10+20
    [('a', 3), ('a', 7), ('b', 30)]
    >>> sliding.values  # a's last three, from its third element on
    [('a', 6), ('a', 9), ('a', 12)]
    """

    def __init__(self, size: int, slide: int | None = None) -> None:
        if size < 1 or (slide is not None and slide < 1):
            raise ValueError(f"count window size and slide must be >= 1, got {size}, {slide}")
        self.size, self.slide = size, slide or size


class _ReduceAggregate(AggregateFunction):
    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn

    def create_accumulator(self) -> Any:
        return _EMPTY

    def add(self, value: Any, acc: Any) -> Any:
        return value if acc is _EMPTY else self.fn(acc, value)

    def get_result(self, acc: Any) -> Any:
        return acc

    def merge(self, a: Any, b: Any) -> Any:
        if a is _EMPTY:
            return b
        return a if b is _EMPTY else self.fn(a, b)


class _Empty:
    def __reduce__(self) -> tuple[Callable[[], _Empty], tuple[()]]:
        return (_empty, ())


def _empty() -> _Empty:
    return _EMPTY


_EMPTY = _Empty()


class WindowOperator(Operator):
    name = "window"

    def __init__(self, assigner: WindowAssigner, aggregate: AggregateFunction | None,
                 window_function: ProcessWindowFunction | None, lateness: float,
                 late_tag: OutputTag | None) -> None:
        super().__init__()
        self.assigner = assigner
        self.aggregate = aggregate
        self.window_function = window_function
        self.lateness = lateness
        self.late_tag = late_tag
        self.processing = getattr(assigner, "processing_time", False)
        self.merging = getattr(assigner, "merging", False)
        # (key, window) -> accumulator (aggregate) or list of values (process only)
        self.contents: dict[tuple[Any, TimeWindow], Any] = {}
        self.fired: dict[tuple[Any, TimeWindow], int] = {}
        # (end, sequence, key, window): the sequence orders equal ends without comparing
        # keys (which may be of different types) and keeps the order across restores
        self.timers: list[tuple[float, int, Any, TimeWindow]] = []
        self._timer_seq = 0

    def process(self, records: list[Record], out: Collector) -> None:
        for r in records:
            ts = self.clock() if self.processing else r.timestamp
            if ts is None:
                raise ValueError(f"{self.uid}: event-time windows need timestamps: use a "
                                 "WatermarkStrategy with a timestamp assigner")
            accepted = 0
            for window in self.assigner.assign(ts):
                if not self.processing and window.end + self.lateness <= self.watermark:
                    continue  # this window is gone
                accepted += 1
                key = (r.key, window)
                if self.merging:
                    key = self._merge(r.key, window)
                # a merged session has a new end, so it needs a timer of its own
                is_new = key not in self.contents or self.merging
                self._add(key, r.value)
                if not self.processing and key[1].end <= self.watermark:
                    self._fire(key, out)  # late but allowed: fire again with the update
                elif is_new:
                    self._timer_seq += 1
                    heapq.heappush(self.timers, (key[1].end, self._timer_seq, r.key, key[1]))
            if not accepted and self.late_tag is not None:
                out.emit_side(self.late_tag, r)  # once, and only if no window took it

    def _add(self, key: tuple[Any, TimeWindow], value: Any) -> None:
        _accumulate(self.contents, key, value, self.aggregate)

    def _merge(self, k: Any, window: TimeWindow) -> tuple[Any, TimeWindow]:
        lo, hi = window.start, window.end
        merged = [(kk, w) for (kk, w) in self.contents if kk == k and w.start < hi and
                  lo < w.end]
        if not merged:
            return (k, window)
        for _, w in merged:
            lo, hi = min(lo, w.start), max(hi, w.end)
        target = (k, TimeWindow(lo, hi))
        combined = None
        for old in merged:
            part = self.contents.pop(old)
            self.fired.pop(old, None)
            if combined is None:
                combined = part
            elif self.aggregate is not None:
                combined = self.aggregate.merge(combined, part)
            else:
                combined = combined + part
        self.contents[target] = combined
        return target

    def on_watermark(self, watermark: float, out: Collector) -> None:
        if not self.processing:
            self._advance(watermark, out)

    def on_processing_time(self, now: float, out: Collector) -> None:
        if self.processing:
            self._advance(now, out)

    def _advance(self, now: float, out: Collector) -> None:
        while self.timers and self.timers[0][0] <= now:
            _, _, k, window = heapq.heappop(self.timers)
            key = (k, window)
            if key in self.contents and key not in self.fired:
                self._fire(key, out)
        for key in [key for key in self.contents if key[1].end + self.lateness <= now]:
            del self.contents[key]
            self.fired.pop(key, None)

    def _fire(self, key: tuple[Any, TimeWindow], out: Collector) -> None:
        k, window = key
        content = self.contents[key]
        count = self.fired.get(key, 0)
        self.fired[key] = count + 1
        base = f"{self.uid}/{k}/{window.start!r}-{window.end!r}/{count}"
        values = _results(content, self.aggregate, self.window_function, k, window)
        for i, value in enumerate(values):
            out.emit(Record(value, window.max_timestamp(), k, f"{base}/{i}"))

    def finish(self, out: Collector) -> None:
        self._advance(math.inf, out)

    def snapshot(self) -> dict[str, Any]:
        return {"contents": dict(self.contents), "fired": dict(self.fired),
                "timers": list(self.timers), "timer_seq": self._timer_seq}

    def restore(self, state: dict[str, Any]) -> None:
        self.contents = dict(state["contents"])
        self.fired = dict(state["fired"])
        self.timers = list(state["timers"])
        self._timer_seq = state["timer_seq"]


class CountWindowOperator(Operator):
    """Fires every ``slide`` records of a key over its last ``size`` records."""

    name = "count_window"

    def __init__(self, assigner: CountWindows, aggregate: AggregateFunction | None,
                 window_function: ProcessWindowFunction | None) -> None:
        super().__init__()
        self.size, self.slide = assigner.size, assigner.slide
        self.aggregate = aggregate
        self.window_function = window_function
        self.buffers: dict[Any, list[Any]] = {}
        self.counts: dict[Any, int] = {}

    def process(self, records: list[Record], out: Collector) -> None:
        for r in records:
            buffer = self.buffers.setdefault(r.key, [])
            buffer.append(r.value)
            del buffer[:-self.size]
            n = self.counts.get(r.key, 0) + 1
            self.counts[r.key] = n
            if n >= self.size and (n - self.size) % self.slide == 0:
                window = CountWindow(n // self.slide)
                if self.aggregate is not None:
                    acc = self.aggregate.create_accumulator()
                    for value in buffer:
                        acc = self.aggregate.add(value, acc)
                    items = [self.aggregate.get_result(acc)]
                else:
                    items = list(buffer)
                values = items if self.window_function is None else \
                    list(self.window_function.process(r.key, window, items) or ())
                for i, value in enumerate(values):
                    out.emit(Record(value, r.timestamp, r.key, f"{self.uid}/{r.key}/{n}/{i}"))

    def snapshot(self) -> dict[str, Any]:
        return {"buffers": {k: list(v) for k, v in self.buffers.items()},
                "counts": dict(self.counts)}

    def restore(self, state: dict[str, Any]) -> None:
        self.buffers = {k: list(v) for k, v in state["buffers"].items()}
        self.counts = dict(state["counts"])


class GlobalWindowOperator(Operator):
    """A window per key that lives forever and fires when its trigger says so."""

    name = "global_window"

    def __init__(self, trigger: CountTrigger | ContinuousEventTimeTrigger,
                 aggregate: AggregateFunction | None,
                 window_function: ProcessWindowFunction | None) -> None:
        super().__init__()
        self.trigger = trigger
        self.aggregate = aggregate
        self.window_function = window_function
        self.contents: dict[Any, Any] = {}
        self.counts: dict[Any, int] = {}
        self.fired = 0
        self.next_fire: float | None = None

    def process(self, records: list[Record], out: Collector) -> None:
        for r in records:
            self._add(r.key, r.value)
            if self.next_fire is None and not isinstance(self.trigger, CountTrigger):
                # as Flink: the first firing is at the end of the first element's interval
                first = self.clock() if isinstance(self.trigger, ContinuousProcessingTimeTrigger) \
                    else r.timestamp
                if first is None:
                    raise ValueError(f"{self.uid}: an event-time trigger needs timestamps")
                self.next_fire = (first // self.trigger.interval + 1) * self.trigger.interval
            if isinstance(self.trigger, CountTrigger):
                self.counts[r.key] = self.counts.get(r.key, 0) + 1
                if self.counts[r.key] % self.trigger.count == 0:
                    self._fire(r.key, r.timestamp, out)

    def _add(self, key: Any, value: Any) -> None:
        _accumulate(self.contents, key, value, self.aggregate)

    def on_watermark(self, watermark: float, out: Collector) -> None:
        if type(self.trigger) is ContinuousEventTimeTrigger:
            self._periodic(watermark, out)

    def on_processing_time(self, now: float, out: Collector) -> None:
        if isinstance(self.trigger, ContinuousProcessingTimeTrigger):
            self._periodic(now, out)

    def _periodic(self, now: float, out: Collector) -> None:
        if now == math.inf:
            return
        assert not isinstance(self.trigger, CountTrigger)  # called for periodic triggers only
        interval = self.trigger.interval
        if self.next_fire is None or now < self.next_fire:
            return
        when = self.next_fire
        self.next_fire = (now // interval + 1) * interval
        for key in sorted(self.contents, key=repr):
            self._fire(key, when, out)

    def _fire(self, key: Any, timestamp: float | None, out: Collector) -> None:
        content = self.contents.get(key)
        if content is None:
            return
        self.fired += 1
        values = _results(content, self.aggregate, self.window_function, key, GlobalWindow())
        for i, value in enumerate(values):
            out.emit(Record(value, timestamp, key, f"{self.uid}/{key}/{self.fired}/{i}"))
        if self.trigger.purge:
            del self.contents[key]

    def snapshot(self) -> dict[str, Any]:
        return {"contents": dict(self.contents), "counts": dict(self.counts),
                "fired": self.fired, "next_fire": self.next_fire}

    def restore(self, state: dict[str, Any]) -> None:
        self.contents = dict(state["contents"])
        self.counts = dict(state["counts"])
        self.fired = state["fired"]
        self.next_fire = state["next_fire"]


def _accumulate(contents: dict[Any, Any], key: Any, value: Any,
                aggregate: AggregateFunction | None) -> None:
    """Add ``value`` to a window's content: an accumulator, or the list of elements."""
    if aggregate is not None:
        acc = contents.get(key)
        if acc is None:
            acc = aggregate.create_accumulator()
        contents[key] = aggregate.add(value, acc)
    else:
        contents.setdefault(key, []).append(value)


def _results(content: Any, aggregate: AggregateFunction | None,
             window_function: ProcessWindowFunction | None, key: Any, window: Any) -> list[Any]:
    """What a firing window emits: the aggregate's result and/or the window function's."""
    if window_function is None:
        assert aggregate is not None  # a window has an aggregate, a window function or both
        return [aggregate.get_result(content)]
    items = [aggregate.get_result(content)] if aggregate else list(content)
    return list(window_function.process(key, window, items) or ())


class RollingReduceFunction(KeyedProcessFunction):
    """``KeyedStream.reduce``: keeps the running result per key and emits it each time."""

    def __init__(self, fn: Callable[[Any, Any], Any]) -> None:
        self.fn = fn

    def open(self, runtime_context: RuntimeContext) -> None:
        self.state = runtime_context.get_state(ValueStateDescriptor("reduce", _EMPTY))

    def process_element(self, value: Any, ctx: Context) -> Iterator[Any]:
        current = self.state.value()
        result = value if current is _EMPTY else self.fn(current, value)
        self.state.update(result)
        yield result
