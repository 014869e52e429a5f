"""forestream's keyed state API over Flink's named keyed state.

A forestream function takes state handles in ``open`` from a runtime context
(``get_state(ValueStateDescriptor(name, default))`` and the list and map kinds); on Flink
that context is :class:`ForestreamState`, whose handles are Flink state of the same
name, holding pickled Python values. Flink scopes them to the current key, as
forestream's are, so a function runs unchanged.
"""

from __future__ import annotations

import math
from typing import Any

from pyflink.common import Types
from pyflink.datastream.state import ListStateDescriptor as FlinkListStateDescriptor
from pyflink.datastream.state import MapStateDescriptor as FlinkMapStateDescriptor
from pyflink.datastream.state import ValueStateDescriptor as FlinkValueStateDescriptor

from forestream.processing.state import (
    ListStateDescriptor,
    MapStateDescriptor,
    ValueStateDescriptor,
)

PICKLED = Types.PICKLED_BYTE_ARRAY()
#: Flink's watermark before any: Long.MIN_VALUE.
MIN_WATERMARK_MS = -(2**63)


def seconds(millis: int | None) -> float | None:
    """A Flink time (milliseconds; None for no timestamp) in forestream's seconds."""
    if millis is None:
        return None
    if millis <= MIN_WATERMARK_MS:
        return -math.inf
    return millis / 1000.0


class ForestreamState:
    """The runtime context a forestream function's ``open`` gets, on Flink."""

    def __init__(self, runtime_context: Any, properties: dict[str, Any],
                 operator_name: str) -> None:
        self._context = runtime_context
        self.properties = properties
        self.operator_name = operator_name

    def get_state(self, descriptor: ValueStateDescriptor) -> ValueHandle:
        return ValueHandle(self._context.get_state(
            FlinkValueStateDescriptor(descriptor.name, PICKLED)), descriptor.default)

    def get_list_state(self, descriptor: ListStateDescriptor) -> ListHandle:
        return ListHandle(self._context.get_list_state(
            FlinkListStateDescriptor(descriptor.name, PICKLED)))

    def get_map_state(self, descriptor: MapStateDescriptor) -> MapHandle:
        return MapHandle(self._context.get_map_state(
            FlinkMapStateDescriptor(descriptor.name, PICKLED, PICKLED)))


class ValueHandle:
    """A value per key; stored as a 1-tuple, so that a stored ``None`` is told apart from
    no value (which reads as the descriptor's default)."""

    def __init__(self, state: Any, default: Any) -> None:
        self._state = state
        self._default = default

    def value(self) -> Any:
        stored = self._state.value()
        return self._default if stored is None else stored[0]

    def update(self, value: Any) -> None:
        self._state.update((value,))

    def clear(self) -> None:
        self._state.clear()


class ListHandle:
    def __init__(self, state: Any) -> None:
        self._state = state

    def get(self) -> list[Any]:
        return list(self._state.get() or ())

    def add(self, value: Any) -> None:
        self._state.add(value)

    def update(self, values: list[Any]) -> None:
        self._state.update(list(values))

    def clear(self) -> None:
        self._state.clear()


class MapHandle:
    def __init__(self, state: Any) -> None:
        self._state = state

    def get(self, key: Any, default: Any = None) -> Any:
        return self._state.get(key) if self._state.contains(key) else default

    def put(self, key: Any, value: Any) -> None:
        self._state.put(key, value)

    def remove(self, key: Any) -> None:
        if self._state.contains(key):
            self._state.remove(key)

    def contains(self, key: Any) -> bool:
        return bool(self._state.contains(key))

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._state.items())

    def keys(self) -> list[Any]:
        return list(self._state.keys())

    def clear(self) -> None:
        self._state.clear()


class LazyModel:
    """A per-key model (a forest or a detector) in Flink state: pickled with
    forestream's own format (``to_bytes``) when Flink writes the state, so a model that
    changes with every record is serialized once per bundle or checkpoint, not per
    record."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # compressed: Flink copies keyed state into every checkpoint and savepoint, and a
        # forest's arrays (megabytes) shrink several times
        return (_restore_model, (type(self.model), self.model.to_bytes()))


def _restore_model(cls: Any, blob: bytes) -> LazyModel:
    return LazyModel(cls.from_bytes(blob))
