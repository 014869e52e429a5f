"""PyFlink functions that run forestream's operators and user functions on Flink.

Every element is ``(value, key, record id)``; Flink carries the event time (in
milliseconds), forestream's functions see it in seconds. The record ids follow the
embedded runtime's rules (``<shard>@<sequence>`` at a Kinesis source, ``/<n>`` per
output of a flat map or process function, ``/s<n>`` per side output, window and timer
ids from the operator's uid), so a Kinesis sink writes the same ``_record_id`` on both
runtimes and readers drop replayed duplicates the same way.

Keyed state lives in Flink's *named* keyed state (never ``KeyedStream.reduce``, whose
state name changes with every submission), under names of the user's descriptors, or
``forestream.*`` for what the wrappers keep themselves.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any

import numpy as np
from pyflink.common import Types
from pyflink.datastream import (
    FilterFunction,
    FlatMapFunction,
    KeyedProcessFunction,
    KeySelector,
    MapFunction,
    ProcessFunction,
)
from pyflink.datastream.functions import AggregateFunction as FlinkAggregateFunction
from pyflink.datastream.functions import ProcessWindowFunction as FlinkProcessWindowFunction
from pyflink.datastream.state import ListStateDescriptor as FlinkListStateDescriptor
from pyflink.datastream.state import MapStateDescriptor as FlinkMapStateDescriptor
from pyflink.datastream.state import ValueStateDescriptor as FlinkValueStateDescriptor
from pyflink.datastream.timerservice import TimerService as FlinkTimerService

from forestream.processing.functions import AggregateFunction, ProcessWindowFunction
from forestream.processing.keys import key_hash
from forestream.processing.records import Record
from forestream.processing.state import (
    ListStateDescriptor,
    MapStateDescriptor,
    ValueStateDescriptor,
)
from forestream.processing.windows import TimeWindow

from .state import ForestreamState, LazyModel, seconds

PICKLED = Types.PICKLED_BYTE_ARRAY()
Element = tuple[Any, Any, str]  # (value, key, record id)


def flink_key(element: Element) -> str:
    """The Flink key of an element: a stable hash of its forestream key, so equal keys
    meet in one subtask whatever their objects' identity (pickled bytes may differ)."""
    return format(key_hash(element[1]), "032x")


class FlinkKey(KeySelector):
    def get_key(self, value: Element) -> str:
        return flink_key(value)


# ------------------------------------------------------------------- sources
class KinesisRecord(MapFunction):
    """A record from the Java ``KinesisApiSource`` (a JSON object) to an element."""

    def map(self, value: str) -> Element:
        record = json.loads(value)
        return (record["data"], None, f"{record['shardId']}@{record['sequenceNumber']}")


class CollectionRecord(MapFunction):
    """``(index, value, timestamp)`` of a collection to an element (``collection@i``)."""

    def map(self, value: tuple[int, Any, Any]) -> Element:
        return (value[1], None, f"collection@{value[0]}")


# ----------------------------------------------------------- element-wise steps
class Map(MapFunction):
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def map(self, value: Element) -> Element:
        return (self.fn(value[0]), value[1], value[2])


class Filter(FilterFunction):
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def filter(self, value: Element) -> bool:
        return bool(self.fn(value[0]))


class FlatMap(FlatMapFunction):
    def __init__(self, fn: Any) -> None:
        self.fn = fn

    def flat_map(self, value: Element) -> Any:
        for i, out in enumerate(self.fn(value[0]) or ()):
            yield (out, value[1], f"{value[2]}/{i}")


class UnionInput(MapFunction):
    """Marks an element with the union input it came by, as the embedded runtime does."""

    def __init__(self, index: int) -> None:
        self.index = index

    def map(self, value: Element) -> Element:
        return (value[0], value[1], f"{value[2]}|{self.index}")


class KeyBy(MapFunction):
    """Sets the element's forestream key (the partitioning follows, by :class:`FlinkKey`)."""

    def __init__(self, selector: Any) -> None:
        self.selector = selector

    def map(self, value: Element) -> Element:
        return (value[0], self.selector(value[0]), value[2])


# ------------------------------------------------------------ process functions
class _Context:
    """forestream's process-function context over Flink's: event time in seconds,
    timers in seconds, side outputs gathered to be yielded with the element's outputs."""

    def __init__(self, timers: FlinkTimerService | None, key: Any) -> None:
        self._timers = timers
        self._key = key
        self._timestamp: float | None = None
        self.sides: list[tuple[str, Any]] = []

    def timestamp(self) -> float | None:
        return self._timestamp

    def get_current_key(self) -> Any:
        return self._key

    def timer_service(self) -> _TimerService:
        if self._timers is None:
            raise TypeError("timers need a keyed stream (call key_by first)")
        return _TimerService(self._timers)

    def output(self, tag: Any, value: Any) -> None:
        self.sides.append((tag.name, value))


class _TimerService:
    """forestream's timer service (seconds) over Flink's (milliseconds)."""

    def __init__(self, timers: FlinkTimerService) -> None:
        self._timers = timers

    def current_watermark(self) -> float:
        watermark = seconds(self._timers.current_watermark())
        return -math.inf if watermark is None else watermark

    def current_processing_time(self) -> float:
        return self._timers.current_processing_time() / 1000.0

    def register_event_time_timer(self, when: float) -> None:
        self._timers.register_event_time_timer(round(when * 1000))

    def register_processing_time_timer(self, when: float) -> None:
        self._timers.register_processing_time_timer(round(when * 1000))

    def delete_event_time_timer(self, when: float) -> None:
        self._timers.delete_event_time_timer(round(when * 1000))

    def delete_processing_time_timer(self, when: float) -> None:
        self._timers.delete_processing_time_timer(round(when * 1000))


def _outputs(produced: Any) -> list[Any]:
    """A process function's outputs as the embedded runtime reads them: a generator or
    a list is many, ``None`` none, anything else (a tuple too) one."""
    if produced is None:
        return []
    if isinstance(produced, list):
        return produced
    if hasattr(produced, "__next__") and hasattr(produced, "send"):  # a generator
        return list(produced)
    return [produced]


class _ProcessBase:
    """Shared by the keyed and unkeyed wrappers: calls the function, numbers its
    outputs and side outputs as the embedded runtime does."""

    def __init__(self, function: Any, uid: str, properties: dict[str, Any],
                 tags: dict[str, Any]) -> None:
        self.function = function
        self.uid = uid
        self.properties = properties
        self.tags = tags  # side output name -> Flink OutputTag

    def _emit(self, call: Any, ctx: _Context, timestamp: float | None, key: Any,
              rid: str) -> Any:
        ctx._timestamp = timestamp
        ctx.sides = []
        outputs = _outputs(call())  # side outputs are gathered while it runs
        for n, (name, side_value) in enumerate(ctx.sides, start=1):
            tag = self.tags.get(name)
            if tag is not None:  # a side output nobody reads is dropped, as embedded
                yield tag, (side_value, key, f"{rid}/s{n}")
        for i, value in enumerate(outputs):
            yield (value, key, f"{rid}/{i}")


class Process(_ProcessBase, ProcessFunction):
    """A forestream ProcessFunction on an unkeyed stream."""

    def open(self, runtime_context: Any) -> None:
        from forestream.processing.functions import RuntimeContext

        self.function.open(RuntimeContext(None, self.properties, self.uid))

    def close(self) -> None:
        self.function.close()

    def process_element(self, value: Element, ctx: Any) -> Any:
        context = _Context(None, value[1])
        yield from self._emit(lambda: self.function.process_element(value[0], context),
                              context, seconds(ctx.timestamp()), value[1], value[2])


class KeyedProcess(_ProcessBase, KeyedProcessFunction):
    """A forestream (Keyed)ProcessFunction on a keyed stream: its state descriptors
    become Flink named state, its timers Flink timers (the timer's forestream key is
    kept in state, since Flink's key is its hash)."""

    def open(self, runtime_context: Any) -> None:
        self.state = ForestreamState(runtime_context, self.properties, self.uid)
        self.keys = runtime_context.get_state(
            FlinkValueStateDescriptor("forestream.key", PICKLED))
        self.function.open(self.state)

    def close(self) -> None:
        self.function.close()

    def process_element(self, value: Element, ctx: Any) -> Any:
        if self.keys.value() is None:
            self.keys.update((value[1],))
        context = _Context(ctx.timer_service(), value[1])
        yield from self._emit(lambda: self.function.process_element(value[0], context),
                              context, seconds(ctx.timestamp()), value[1], value[2])

    def on_timer(self, timestamp: int, ctx: Any) -> Any:
        from pyflink.datastream import TimeDomain

        stored = self.keys.value()
        key = stored[0] if stored else None
        when = timestamp / 1000.0
        domain = "event" if ctx.time_domain() == TimeDomain.EVENT_TIME else "processing"
        context = _Context(ctx.timer_service(), key)
        on_timer = getattr(self.function, "on_timer", None)
        if on_timer is None:
            return
        yield from self._emit(lambda: on_timer(when, context), context, when, key,
                              f"{self.uid}/timer/{domain}/{key}/{when!r}")


# --------------------------------------------------------------------- windows
class WindowAggregate(FlinkAggregateFunction):
    """A forestream AggregateFunction (``reduce`` too) as Flink's: the accumulator is
    ``[forestream key, accumulator]``, so the window's result knows its key."""

    def __init__(self, aggregate: AggregateFunction) -> None:
        self.aggregate = aggregate

    def create_accumulator(self) -> list[Any]:
        return [None, self.aggregate.create_accumulator()]

    def add(self, value: Element, accumulator: list[Any]) -> list[Any]:
        return [value[1], self.aggregate.add(value[0], accumulator[1])]

    def get_result(self, accumulator: list[Any]) -> tuple[Any, Any]:
        return (accumulator[0], self.aggregate.get_result(accumulator[1]))

    def merge(self, a: list[Any], b: list[Any]) -> list[Any]:
        return [a[0] if a[0] is not None else b[0], self.aggregate.merge(a[1], b[1])]


class WindowResults(FlinkProcessWindowFunction):
    """Emits a fired window's results as the embedded runtime does: the aggregate's
    result and/or the forestream ProcessWindowFunction's outputs, with ids
    ``<uid>/<key>/<start>-<end>/<firing>/<n>`` (the firing counted in window state, as
    late records within the allowed lateness fire a window again)."""

    def __init__(self, uid: str, aggregated: bool,
                 window_function: ProcessWindowFunction | None, merging: bool) -> None:
        self.uid = uid
        self.aggregated = aggregated
        self.window_function = window_function
        self.merging = merging

    def process(self, key: str, context: Any, elements: Any) -> Any:
        elements = list(elements)
        if self.aggregated:
            forestream_key, result = elements[0]
            items = [result]
        else:
            forestream_key = elements[0][1] if elements else None
            items = [e[0] for e in elements]
        flink_window = context.window()
        window = TimeWindow(flink_window.start / 1000.0, flink_window.end / 1000.0)
        count = 0
        if not self.merging:  # merging windows fire once (the plan refuses lateness)
            fired = context.window_state().get_state(
                FlinkValueStateDescriptor("forestream.fired", Types.INT()))
            count = fired.value() or 0
            fired.update(count + 1)
        values = items if self.window_function is None else \
            list(self.window_function.process(forestream_key, window, items) or ())
        base = f"{self.uid}/{forestream_key}/{window.start!r}-{window.end!r}/{count}"
        for i, value in enumerate(values):
            yield (value, forestream_key, f"{base}/{i}")

    def clear(self, context: Any) -> None:
        if not self.merging:
            context.window_state().get_state(
                FlinkValueStateDescriptor("forestream.fired", Types.INT())).clear()


class CountWindow(KeyedProcessFunction):
    """``count_window(size, slide)`` as the embedded runtime runs it: every ``slide``
    records of a key once it has ``size``, over its last ``size`` (Flink's own sliding
    count windows fire before they are full, so this one is ours), in named state."""

    def __init__(self, uid: str, size: int, slide: int, aggregate: AggregateFunction | None,
                 window_function: ProcessWindowFunction | None) -> None:
        self.uid, self.size, self.slide = uid, size, slide
        self.aggregate = aggregate
        self.window_function = window_function

    def open(self, runtime_context: Any) -> None:
        self.buffer = runtime_context.get_state(
            FlinkValueStateDescriptor("forestream.buffer", PICKLED))
        self.count = runtime_context.get_state(
            FlinkValueStateDescriptor("forestream.count", Types.LONG()))

    def process_element(self, value: Element, ctx: Any) -> Any:
        from forestream.processing.windows import CountWindow as Window

        buffer = list(self.buffer.value() or [])
        buffer.append(value[0])
        del buffer[:-self.size]
        self.buffer.update(buffer)
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        if n < self.size or (n - self.size) % self.slide:
            return
        if self.aggregate is not None:
            acc = self.aggregate.create_accumulator()
            for item in buffer:
                acc = self.aggregate.add(item, acc)
            items = [self.aggregate.get_result(acc)]
        else:
            items = list(buffer)
        values = items if self.window_function is None else \
            list(self.window_function.process(value[1], Window(n // self.slide), items) or ())
        for i, out in enumerate(values):
            yield (out, value[1], f"{self.uid}/{value[1]}/{n}/{i}")


# ------------------------------------------------------------- RCF operators
class PerKeyModel(KeyedProcessFunction):
    """A forestream RCF operator (:class:`~forestream.processing.rcf_operators.
    RandomCutForestOperator` or ``ThresholdedRCFOperator``) per key on Flink: each key's
    forest or detector is kept in the named state ``forestream.model`` and serialized
    with forestream's own format only when Flink writes the state (bundle ends,
    checkpoints), not on every record; the operator scores exactly as it does on the
    embedded runtime (one record at a time here: results do not depend on batching)."""

    def __init__(self, operator: Any, uid: str) -> None:
        self.operator = operator
        self.uid = uid

    def open(self, runtime_context: Any) -> None:
        self.operator.uid = self.uid
        self.operator.open()
        self.models = self.operator.detectors if hasattr(self.operator, "detectors") \
            else self.operator.forests
        self.state = runtime_context.get_state(
            FlinkValueStateDescriptor("forestream.model", PICKLED))

    def process_element(self, value: Element, ctx: Any) -> Any:
        key = value[1]
        if key not in self.models:
            stored = self.state.value()
            if stored is not None:
                self.models[key] = stored.model
        point = np.array([self.operator._point(value[0])])
        (result,) = self.operator._score_key(key, point, [value[0]])
        self.state.update(LazyModel(self.models[key]))
        yield (result, key, value[2])


# ------------------------------------------------------------------------ sinks
class KinesisEntry(MapFunction):
    """An element to the Java ``KinesisApiSink``'s JSON: the bytes the forestream sink
    would write (``_record_id`` added to dicts, its serializer), base64 so that they
    reach the stream unchanged, and the partition key it would pick."""

    def __init__(self, serializer: Any, partition_key: Any, record_ids: bool) -> None:
        self.serializer = serializer
        self.partition_key = partition_key
        self.record_ids = record_ids

    def map(self, value: Element) -> str:
        data, key, rid = value
        if self.record_ids and isinstance(data, dict):
            data = {**data, "_record_id": rid}
        partition = self.partition_key(value[0]) if self.partition_key else \
            (str(key) if key is not None else rid)
        payload = base64.b64encode(self.serializer(data)).decode("ascii")
        # no "id": the Java sink would add it to the {"b64"} object itself; the id is in
        # the bytes already (as "_record_id") where the forestream sink puts it
        return json.dumps({"data": {"b64": payload}, "partitionKey": str(partition)[:256]})


class CallSink(ProcessFunction):
    """``print`` and ``add_sink(fn)``: the function runs on the TaskManager."""

    def __init__(self, fn: Any, with_records: bool) -> None:
        self.fn = fn
        self.with_records = with_records

    def process_element(self, value: Element, ctx: Any) -> Any:
        if self.with_records:
            self.fn(Record(value[0], seconds(ctx.timestamp()), value[1], value[2]))
        else:
            self.fn(value[0])
        return iter(())


class Printer:
    """What ``print(prefix)`` does, on the TaskManager's standard output."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def __call__(self, value: Any) -> None:
        print(f"{self.prefix}{value}", flush=True)


class CollectToFile(ProcessFunction):
    """Local runs: appends ``(value, event time, key, id)`` of every record, pickled, to
    a file the local runner reads back into the job's ``collect()`` sink."""

    def __init__(self, path: str) -> None:
        self.path = path

    def open(self, runtime_context: Any) -> None:
        index = runtime_context.get_index_of_this_subtask()  # a file per parallel instance
        self.handle = open(f"{self.path}.{index}", "ab")  # noqa: SIM115 - closed in close()

    def process_element(self, value: Element, ctx: Any) -> Any:
        import pickle

        pickle.dump((value[0], seconds(ctx.timestamp()), value[1], value[2]), self.handle)
        self.handle.flush()
        return iter(())

    def close(self) -> None:
        self.handle.close()


__all__ = ["CallSink", "CollectToFile", "CollectionRecord", "CountWindow", "Filter",
           "FlatMap", "FlinkKey", "KeyBy", "KeyedProcess", "KinesisEntry", "KinesisRecord",
           "ListStateDescriptor", "Map", "MapStateDescriptor", "PerKeyModel", "Printer",
           "Process", "ValueStateDescriptor", "WindowAggregate", "WindowResults",
           "FlinkListStateDescriptor", "FlinkMapStateDescriptor"]
