"""User function interfaces, named as in (Py)Flink's DataStream API.

Process functions *yield* their outputs (as PyFlink's do); side outputs go through
``ctx.output(tag, value)``. Keyed functions get state through the runtime context in
``open`` and timers through ``ctx.timer_service()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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


class RuntimeContext:
    """What a function sees of the job: its state, the job's runtime properties."""

    def __init__(self, backend: KeyedStateBackend | None, properties: dict,
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
    def __init__(self, operator) -> None:
        self._op = operator

    def current_watermark(self) -> float:
        return self._op.watermark

    def current_processing_time(self) -> float:
        return self._op.clock()

    def register_event_time_timer(self, when: float) -> None:
        self._op.backend.register_timer("event", when, self._op.backend.current_key)

    def register_processing_time_timer(self, when: float) -> None:
        self._op.backend.register_timer("processing", when, self._op.backend.current_key)

    def delete_event_time_timer(self, when: float) -> None:
        self._op.backend.delete_timer("event", when, self._op.backend.current_key)

    def delete_processing_time_timer(self, when: float) -> None:
        self._op.backend.delete_timer("processing", when, self._op.backend.current_key)


class Context:
    """Per-element (or per-timer) context of a process function."""

    def __init__(self, operator) -> None:
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
    """Per-element logic with side outputs; override :meth:`process_element`."""

    def open(self, runtime_context: RuntimeContext) -> None:
        pass

    def process_element(self, value: Any, ctx: Context) -> Iterable | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class KeyedProcessFunction(ProcessFunction):
    """Per-element logic on a keyed stream, with keyed state and timers."""

    def on_timer(self, timestamp: float, ctx: Context) -> Iterable | None:
        return None


class AggregateFunction:
    """Incremental window aggregation: accumulator in, result out (Flink's shape)."""

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
    """Sees all elements of a window at once (and the window)."""

    def process(self, key: Any, window, elements: list) -> Iterable:
        raise NotImplementedError
