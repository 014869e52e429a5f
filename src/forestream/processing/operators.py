"""Operators: the steps of a pipeline, each working on a batch of records at a time.

An operator gets a list of records and a :class:`Collector`; event-time progress arrives
through :meth:`Operator.on_watermark`. Its state is whatever :meth:`Operator.snapshot`
returns (picklable), restored by :meth:`Operator.restore` — the runtime checkpoints
them between batches, when no record is in flight, so state is exactly-once.

Large state can be serialized off the processing thread: ``snapshot`` returns
:class:`Deferred` around a function that produces the state later, from private copies
taken now (see the RCF operators, whose per-key forests are megabytes each).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

from .functions import Context, KeyedProcessFunction, ProcessFunction, RuntimeContext, TimerService
from .records import Collector, OutputTag, Record
from .state import KeyedStateBackend

if TYPE_CHECKING:
    from .sinks import SinkLike
    from .watermarks import WatermarkStrategy

MIN_WATERMARK = -math.inf


class Deferred:
    """A snapshot whose serializable form is produced later, on the checkpoint writer's
    thread: ``produce()`` is called once, after :meth:`Operator.snapshot` returned, and
    its result is what :meth:`Operator.restore` gets back. It must only read what
    nothing changes any more — copies the snapshot took — so the job can go on at once.

    >>> state = {"counts": [1, 2]}
    >>> frozen = Deferred(lambda copy=list(state["counts"]): {"counts": copy})
    >>> state["counts"].append(3)  # the job goes on
    >>> frozen.produce()
    {'counts': [1, 2]}
    """

    __slots__ = ("produce",)

    def __init__(self, produce: Callable[[], Any]) -> None:
        self.produce = produce


class Operator:
    """Base class. ``name`` is for humans; ``uid`` (set by the job graph) keys its state."""

    name = "operator"
    #: whether :meth:`snapshot` copies large state (per-key models): it has state, and
    #: is not snapshotted just to find that out (the memory-limit error names it)
    snapshot_is_costly = False

    def __init__(self) -> None:
        self.uid = ""
        self.watermark = MIN_WATERMARK
        self.properties: dict[str, Any] = {}
        self.clock: Callable[[], float] = time.time
        self.records_in = 0
        self.records_out = 0
        #: set by the runtime before :meth:`open`: whether the job checkpoints this
        #: operator's state (an operator that copies large state at each checkpoint may
        #: prepare memory for the copies ahead of the first)
        self.checkpointed = False

    def open(self) -> None:
        pass

    def process(self, records: list[Record], out: Collector) -> None:
        raise NotImplementedError

    def on_watermark(self, watermark: float, out: Collector) -> None:
        """Event time reached ``watermark``: fire what is due."""

    def on_processing_time(self, now: float, out: Collector) -> None:
        """Called every runtime tick with the wall clock."""

    def output_watermark(self, input_watermark: float) -> float:
        """The watermark this operator passes downstream (default: its input's)."""
        return input_watermark

    def finish(self, out: Collector) -> None:
        """Bounded input ended (after a final +inf watermark)."""

    def close(self) -> None:
        pass

    def snapshot(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        pass


class TwoInputOperator(Protocol):
    """An operator with two inputs (joins, connected streams): its class sets
    ``two_input = True`` and the runtime calls :meth:`process_inputs` instead of
    :meth:`Operator.process`."""

    def process_inputs(self, first: list[Record], second: list[Record],
                       out: Collector) -> None: ...


class MapOperator(Operator):
    name = "map"

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, records: list[Record], out: Collector) -> None:
        fn = self.fn
        out.main.extend([Record(fn(r.value), r.timestamp, r.key, r.rid) for r in records])


class FilterOperator(Operator):
    name = "filter"

    def __init__(self, fn: Callable[[Any], bool]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, records: list[Record], out: Collector) -> None:
        fn = self.fn
        out.main.extend([r for r in records if fn(r.value)])


class FlatMapOperator(Operator):
    name = "flat_map"

    def __init__(self, fn: Callable[[Any], Any]) -> None:
        super().__init__()
        self.fn = fn

    def process(self, records: list[Record], out: Collector) -> None:
        for r in records:
            for i, value in enumerate(self.fn(r.value) or ()):
                out.main.append(Record(value, r.timestamp, r.key, f"{r.rid}/{i}"))


class KeyByOperator(Operator):
    """Sets each record's key (a partitioning in Flink; here records keep their order)."""

    name = "key_by"

    def __init__(self, selector: Callable[[Any], Any]) -> None:
        super().__init__()
        self.selector = selector

    def process(self, records: list[Record], out: Collector) -> None:
        selector = self.selector
        out.main.extend([Record(r.value, r.timestamp, selector(r.value), r.rid)
                         for r in records])


class TimestampsAndWatermarksOperator(Operator):
    """Assigns event time and generates bounded-out-of-orderness watermarks.

    The watermark is ``max event time seen - out_of_orderness`` (minus a hair, as Flink's
    ``max - bound - 1 ms``), so a record with that exact timestamp is not late yet.
    """

    name = "timestamps"

    def __init__(self, strategy: WatermarkStrategy) -> None:
        super().__init__()
        self.strategy = strategy
        self.max_timestamp = MIN_WATERMARK

    def process(self, records: list[Record], out: Collector) -> None:
        assign = self.strategy.timestamp_assigner
        for r in records:
            ts = float(assign(r.value, r.timestamp)) if assign else r.timestamp
            if ts is not None and ts > self.max_timestamp:
                self.max_timestamp = ts
            out.main.append(Record(r.value, ts, r.key, r.rid))

    def output_watermark(self, input_watermark: float) -> float:
        if input_watermark == math.inf:  # end of input: everything is complete
            return math.inf
        return self.max_timestamp - self.strategy.out_of_orderness - 0.001

    def snapshot(self) -> float:
        return self.max_timestamp

    def restore(self, state: float) -> None:
        self.max_timestamp = state


class ProcessOperator(Operator):
    """Runs a (Keyed)ProcessFunction: per-element logic, state, timers, side outputs."""

    name = "process"

    def __init__(self, function: ProcessFunction, keyed: bool) -> None:
        super().__init__()
        self.function = function
        self.backend = KeyedStateBackend() if keyed else None
        self.timers = TimerService(self)
        self.ctx = Context(self)
        self._out: Collector | None = None
        self._current_rid = ""
        self._side_count = 0

    def open(self) -> None:
        self.function.open(RuntimeContext(self.backend, self.properties, self.uid))

    def side_output(self, tag: OutputTag, value: Any, timestamp: float | None) -> None:
        self._side_count += 1
        key = self.backend.current_key if self.backend else None
        assert self._out is not None  # side outputs come from process() and timers only
        self._out.emit_side(tag, Record(value, timestamp, key,
                                        f"{self._current_rid}/s{self._side_count}"))

    def process(self, records: list[Record], out: Collector) -> None:
        self._out = out
        fn = self.function
        for r in records:
            if self.backend is not None:
                self.backend.current_key = r.key
            self.ctx._timestamp = r.timestamp
            self._current_rid = r.rid
            self._side_count = 0
            self._emit(fn.process_element(r.value, self.ctx), r.timestamp, r.key, r.rid, out)

    def on_watermark(self, watermark: float, out: Collector) -> None:
        self.watermark = watermark
        self._fire("event", watermark, out)

    def on_processing_time(self, now: float, out: Collector) -> None:
        self._fire("processing", now, out)

    def _fire(self, domain: str, now: float, out: Collector) -> None:
        if self.backend is None or not isinstance(self.function, KeyedProcessFunction):
            return
        self._out = out
        for when, key in self.backend.due_timers(domain, now):
            self.backend.current_key = key
            self.ctx._timestamp = when
            rid = f"{self.uid}/timer/{domain}/{key}/{when!r}"
            self._current_rid = rid
            self._side_count = 0
            self._emit(self.function.on_timer(when, self.ctx), when, key, rid, out)

    def _emit(self, produced: Iterable[Any] | None, timestamp: float | None, key: Any, rid: str,
              out: Collector) -> None:
        if produced is None:
            return
        # Process functions yield their outputs; a returned list is a list of outputs;
        # anything else (a tuple included) is one output.
        if not inspect.isgenerator(produced) and not isinstance(produced, list):
            produced = [produced]
        for i, value in enumerate(produced):
            out.main.append(Record(value, timestamp, key, f"{rid}/{i}"))

    def close(self) -> None:
        self.function.close()

    def snapshot(self) -> dict[str, Any] | None:
        return self.backend.snapshot() if self.backend else None

    def restore(self, state: dict[str, Any] | None) -> None:
        if self.backend is not None and state is not None:
            self.backend.restore(state)


class SinkOperator(Operator):
    """Hands each batch to a sink (see :mod:`forestream.processing.sinks`)."""

    name = "sink"

    def __init__(self, sink: SinkLike) -> None:
        super().__init__()
        self.sink = sink

    def open(self) -> None:
        self.sink.open()

    def process(self, records: list[Record], out: Collector) -> None:
        if records:
            self.sink.write(records)

    def finish(self, out: Collector) -> None:
        self.sink.flush()

    def close(self) -> None:
        self.sink.close()

    def snapshot(self) -> Any:
        self.sink.flush()  # everything before a checkpoint is written before it completes
        return self.sink.snapshot()

    def restore(self, state: Any) -> None:
        self.sink.restore(state)
