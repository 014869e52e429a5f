"""Two-input operators: window joins, interval joins and connected streams (with
broadcast state), named as in Flink's DataStream API.

- ``a.join(b).where(key_a).equal_to(key_b).window(assigner).apply(fn)``: pairs of
  elements with equal keys in the same event-time window, ``fn(left, right)``.
- ``a.key_by(k).interval_join(b.key_by(k)).between(lower, upper).process(fn)``: pairs
  with equal keys where ``left.ts + lower <= right.ts <= left.ts + upper``.
- ``a.connect(b).process(CoProcessFunction)``: one function sees both streams; with
  ``a.key_by(...)`` it has keyed state for the first input, and ``ctx.broadcast_state()``
  is a dictionary shared by all keys (updated from the second input: rules, thresholds).

State is buffered per key and dropped once the watermark makes it useless; all of it is
checkpointed like any operator state.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .functions import Context, RuntimeContext, TimerService
from .operators import Operator
from .records import Collector, OutputTag, Record
from .state import KeyedStateBackend

if TYPE_CHECKING:
    from .windows import TimeWindow, WindowAssigner


class WindowJoinOperator(Operator):
    name = "window_join"
    two_input = True

    def __init__(self, key_left: Callable[[Any], Any], key_right: Callable[[Any], Any],
                 assigner: WindowAssigner, fn: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        self.key_left, self.key_right = key_left, key_right
        self.assigner = assigner
        self.fn = fn
        # (key, window) -> ([left values], [right values])
        self.buffers: dict[tuple[Any, TimeWindow], tuple[list[Any], list[Any]]] = {}

    def process_inputs(self, left: list[Record], right: list[Record], out: Collector) -> None:
        for side, records, selector in ((0, left, self.key_left), (1, right, self.key_right)):
            for r in records:
                if r.timestamp is None:
                    raise ValueError(f"{self.uid}: a window join needs event time: use a "
                                     "WatermarkStrategy with a timestamp assigner")
                key = selector(r.value)
                for window in self.assigner.assign(r.timestamp):
                    if window.end <= self.watermark:
                        continue  # late for this window
                    self.buffers.setdefault((key, window), ([], []))[side].append(r.value)

    def on_watermark(self, watermark: float, out: Collector) -> None:
        due = sorted((w.end, str(k), k, w) for (k, w) in self.buffers if w.end <= watermark)
        for _, _, key, window in due:
            lefts, rights = self.buffers.pop((key, window))
            n = 0
            for a in lefts:
                for b in rights:
                    out.emit(Record(self.fn(a, b), window.max_timestamp(), key,
                                    f"{self.uid}/{key}/{window.start!r}/{n}"))
                    n += 1

    def finish(self, out: Collector) -> None:
        self.on_watermark(math.inf, out)

    def snapshot(self) -> dict[tuple[Any, TimeWindow], tuple[list[Any], list[Any]]]:
        return {k: (list(a), list(b)) for k, (a, b) in self.buffers.items()}

    def restore(self, state: dict[tuple[Any, TimeWindow], tuple[list[Any], list[Any]]]
                ) -> None:
        self.buffers = {k: (list(a), list(b)) for k, (a, b) in state.items()}


class IntervalJoinOperator(Operator):
    name = "interval_join"
    two_input = True

    def __init__(self, lower: float, upper: float, fn: Callable[[Any, Any], Any]) -> None:
        super().__init__()
        if lower > upper:
            raise ValueError(f"interval join bounds: lower {lower} > upper {upper}")
        self.lower, self.upper = float(lower), float(upper)
        self.fn = fn
        self.left: dict[Any, list[tuple[float, Any, str]]] = {}
        self.right: dict[Any, list[tuple[float, Any, str]]] = {}

    def process_inputs(self, left: list[Record], right: list[Record], out: Collector) -> None:
        for r in left:
            self._arrive(r, self.left, self.right, out, is_left=True)
        for r in right:
            self._arrive(r, self.right, self.left, out, is_left=False)

    def _arrive(self, r: Record, mine: dict[Any, list[tuple[float, Any, str]]],
                other: dict[Any, list[tuple[float, Any, str]]], out: Collector,
                is_left: bool) -> None:
        if r.timestamp is None:
            raise ValueError(f"{self.uid}: an interval join needs event time")
        mine.setdefault(r.key, []).append((r.timestamp, r.value, r.rid))
        for ts, value, rid in other.get(r.key, ()):
            lts, rts = (r.timestamp, ts) if is_left else (ts, r.timestamp)
            if lts + self.lower <= rts <= lts + self.upper:
                a, b = (r.value, value) if is_left else (value, r.value)
                pair_id = f"{r.rid}+{rid}" if is_left else f"{rid}+{r.rid}"
                out.emit(Record(self.fn(a, b), max(lts, rts), r.key, f"{self.uid}/{pair_id}"))

    def on_watermark(self, watermark: float, out: Collector) -> None:
        # a left element can still meet rights up to ts + upper; a right one lefts down to
        # ts - upper... keep each while a partner could still arrive
        for side, horizon in ((self.left, watermark - self.upper),
                              (self.right, watermark + self.lower)):
            for key in list(side):
                kept = [e for e in side[key] if e[0] >= horizon]
                if kept:
                    side[key] = kept
                else:
                    del side[key]

    def snapshot(self) -> dict[str, Any]:
        return {"left": {k: list(v) for k, v in self.left.items()},
                "right": {k: list(v) for k, v in self.right.items()}}

    def restore(self, state: dict[str, Any]) -> None:
        self.left = {k: list(v) for k, v in state["left"].items()}
        self.right = {k: list(v) for k, v in state["right"].items()}


class CoProcessFunction:
    """Sees two streams. ``process_element1`` (first input; keyed state when it is keyed)
    and ``process_element2`` (second input, e.g. rules to broadcast) yield outputs.

    Used through ``first.connect(second).process(function)``
    (:class:`~forestream.processing.ConnectedStreams`). Like a
    :class:`~forestream.processing.KeyedProcessFunction`, it gets keyed state in
    :meth:`open` (when ``first`` is keyed, for its keys) and may yield, return a list, or
    return one value. ``ctx.broadcast_state()`` is a dictionary shared by every key —
    Flink's broadcast state pattern: the second input (rules, thresholds, model
    settings) writes it, the first reads it. Both are checkpointed with the job. In each
    batch the second input's records are handled before the first's, so rules that
    arrive together with events already apply to them. Event-time timers registered
    through ``ctx.timer_service()`` call :meth:`on_timer`.

    Examples
    --------
    Alerts for readings above a threshold that a second stream broadcasts, with a count
    of alerts per device in keyed state:

    >>> from forestream.processing import (
    ...     CoProcessFunction, StreamExecutionEnvironment, ValueStateDescriptor)
    >>> class Alerts(CoProcessFunction):
    ...     def open(self, runtime_context):
    ...         self.alerts = runtime_context.get_state(ValueStateDescriptor("alerts", 0))
    ...     def process_element1(self, reading, ctx):
    ...         limit = ctx.broadcast_state().get("limit", float("inf"))
    ...         if reading["value"] > limit:
    ...             self.alerts.update(self.alerts.value() + 1)
    ...             yield reading["device"], reading["value"], self.alerts.value()
    ...     def process_element2(self, rule, ctx):
    ...         ctx.broadcast_state()["limit"] = rule["limit"]
    >>> env = StreamExecutionEnvironment()
    >>> readings = env.from_collection([
    ...     {"device": "d1", "value": 5}, {"device": "d2", "value": 7},
    ...     {"device": "d1", "value": 9}, {"device": "d2", "value": 3},
    ...     {"device": "d1", "value": 11}])
    >>> rules = env.from_collection([{"limit": 6}])
    >>> alerts = (readings.key_by(lambda reading: reading["device"])
    ...           .connect(rules)
    ...           .process(Alerts())
    ...           .collect())
    >>> _ = env.execute()
    >>> alerts.values
    [('d2', 7, 1), ('d1', 9, 1), ('d1', 11, 2)]
    """

    def open(self, runtime_context: RuntimeContext) -> None:
        pass

    def process_element1(self, value: Any, ctx: Context) -> Iterable[Any] | None:
        raise NotImplementedError

    def process_element2(self, value: Any, ctx: Context) -> Iterable[Any] | None:
        raise NotImplementedError

    def on_timer(self, timestamp: float, ctx: Context) -> Iterable[Any] | None:
        return None


class _CoContext(Context):
    _op: CoProcessOperator

    def broadcast_state(self) -> dict[Any, Any]:
        """A dictionary shared by every key: what the second input has told us."""
        return self._op.broadcast


class CoProcessOperator(Operator):
    name = "co_process"
    two_input = True

    def __init__(self, function: CoProcessFunction, keyed: bool) -> None:
        super().__init__()
        self.function = function
        self.backend = KeyedStateBackend() if keyed else None
        self.broadcast: dict[Any, Any] = {}
        self.timers = TimerService(self)
        self.ctx = _CoContext(self)
        # side outputs are numbered within the record (or timer) that produced them, so
        # each has an id of its own that a replay reproduces
        self._current_rid = ""
        self._side_count = 0

    def open(self) -> None:
        self.function.open(RuntimeContext(self.backend, self.properties, self.uid))

    def side_output(self, tag: OutputTag, value: Any, timestamp: float | None) -> None:
        self._side_count += 1
        key = self.backend.current_key if self.backend else None
        self._out.emit_side(tag, Record(value, timestamp, key,
                                        f"{self._current_rid}/s{self._side_count}"))

    def process_inputs(self, first: list[Record], second: list[Record], out: Collector) -> None:
        self._out = out
        for handler, records in ((self.function.process_element2, second),
                                 (self.function.process_element1, first)):
            for r in records:  # second input first: rules apply to this batch's events
                if self.backend is not None:
                    self.backend.current_key = r.key
                self.ctx._timestamp = r.timestamp
                self._current_rid, self._side_count = r.rid, 0
                self._emit(handler(r.value, self.ctx), r, out)

    def on_watermark(self, watermark: float, out: Collector) -> None:
        if self.backend is None:
            return
        self._out = out
        for when, key in self.backend.due_timers("event", watermark):
            self.backend.current_key = key
            self.ctx._timestamp = when
            timer = Record(None, when, key, f"{self.uid}/timer/{key}/{when!r}")
            self._current_rid, self._side_count = timer.rid, 0
            self._emit(self.function.on_timer(when, self.ctx), timer, out)

    def _emit(self, produced: Iterable[Any] | None, origin: Record, out: Collector) -> None:
        if produced is None:
            return
        if not inspect.isgenerator(produced) and not isinstance(produced, list):
            produced = [produced]
        for i, value in enumerate(produced):
            out.emit(Record(value, origin.timestamp, origin.key, f"{origin.rid}/{i}"))

    def snapshot(self) -> dict[str, Any]:
        return {"keyed": self.backend.snapshot() if self.backend else None,
                "broadcast": dict(self.broadcast)}

    def restore(self, state: dict[str, Any]) -> None:
        if self.backend is not None and state["keyed"] is not None:
            self.backend.restore(state["keyed"])
        self.broadcast.clear()
        self.broadcast.update(state["broadcast"])
