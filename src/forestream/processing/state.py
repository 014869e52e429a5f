"""Keyed state (value, list, map) and timers, as Flink's keyed operators have them.

State lives in plain dictionaries keyed by the record's key, so a checkpoint is a copy of
them; everything in state must be picklable. All state is in memory: a job whose keyed
state outgrows memory is a known limitation (no spilling backend yet): the runtime stops it
with :class:`~forestream.processing.runtime.StateMemoryError` at its memory limit.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ValueStateDescriptor:
    """Names one value per key: ``runtime_context.get_state(descriptor)`` in ``open``.

    The handle's ``value()`` is the current key's value (``default`` until one is
    set), ``update(value)`` sets it and ``clear()`` removes it. The runtime sets the
    current key before every element and timer, so one handle serves all keys. State is
    checkpointed with the job; values must be picklable.

    Parameters
    ----------
    name
        Names the state within its operator (unique per operator).
    default
        What ``value()`` returns for a key with no value; shared by all keys, so use an
        immutable one (``0``, ``None``, a tuple), not a list or dict.

    Examples
    --------
    Drop repeated deliveries of the same event id:

    >>> from forestream.processing import (
    ...     KeyedProcessFunction, StreamExecutionEnvironment, ValueStateDescriptor)
    >>> class FirstOnly(KeyedProcessFunction):
    ...     def open(self, runtime_context):
    ...         self.seen = runtime_context.get_state(ValueStateDescriptor("seen", False))
    ...     def process_element(self, event, ctx):
    ...         if not self.seen.value():
    ...             self.seen.update(True)
    ...             yield event
    >>> env = StreamExecutionEnvironment()
    >>> events = [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}, {"id": 1, "v": "a"},
    ...           {"id": 3, "v": "c"}, {"id": 2, "v": "b"}]
    >>> unique = (env.from_collection(events)
    ...           .key_by(lambda event: event["id"])
    ...           .process(FirstOnly())
    ...           .collect())
    >>> _ = env.execute()
    >>> [event["v"] for event in unique.values]
    ['a', 'b', 'c']
    """

    name: str
    default: Any = None


@dataclass(frozen=True)
class ListStateDescriptor:
    """Names a list per key: ``runtime_context.get_list_state(descriptor)`` in ``open``.

    The handle's ``get()`` returns a copy of the current key's list (empty if none),
    ``add(value)`` appends, ``update(values)`` replaces the list and ``clear()`` removes
    it. Checkpointed with the job; elements must be picklable.

    Parameters
    ----------
    name
        Names the state within its operator (unique per operator).

    Examples
    --------
    Gather each cart's items until its checkout:

    >>> from forestream.processing import (
    ...     KeyedProcessFunction, ListStateDescriptor, StreamExecutionEnvironment)
    >>> class Carts(KeyedProcessFunction):
    ...     def open(self, runtime_context):
    ...         self.items = runtime_context.get_list_state(ListStateDescriptor("items"))
    ...     def process_element(self, event, ctx):
    ...         cart, item = event
    ...         if item != "checkout":
    ...             self.items.add(item)
    ...             return None
    ...         items = self.items.get()
    ...         self.items.clear()
    ...         return [(cart, items)]
    >>> env = StreamExecutionEnvironment()
    >>> events = [("c1", "apple"), ("c2", "tea"), ("c1", "bread"), ("c1", "checkout"),
    ...           ("c2", "milk"), ("c2", "checkout")]
    >>> orders = (env.from_collection(events)
    ...           .key_by(lambda event: event[0])
    ...           .process(Carts())
    ...           .collect())
    >>> _ = env.execute()
    >>> orders.values
    [('c1', ['apple', 'bread']), ('c2', ['tea', 'milk'])]
    """

    name: str


@dataclass(frozen=True)
class MapStateDescriptor:
    """Names a dictionary per key: ``runtime_context.get_map_state(descriptor)`` in
    ``open``.

    The handle works on the current key's dictionary: ``get(k, default)``,
    ``put(k, v)``, ``remove(k)``, ``contains(k)``, ``items()``, ``keys()`` and
    ``clear()`` (the whole dictionary). Checkpointed with the job; keys and values must
    be picklable.

    Parameters
    ----------
    name
        Names the state within its operator (unique per operator).

    Examples
    --------
    Visits per page, per user:

    >>> from forestream.processing import (
    ...     KeyedProcessFunction, MapStateDescriptor, StreamExecutionEnvironment)
    >>> class PageVisits(KeyedProcessFunction):
    ...     def open(self, runtime_context):
    ...         self.visits = runtime_context.get_map_state(MapStateDescriptor("visits"))
    ...     def process_element(self, click, ctx):
    ...         user, page = click
    ...         self.visits.put(page, self.visits.get(page, 0) + 1)
    ...         yield user, page, self.visits.get(page)
    >>> env = StreamExecutionEnvironment()
    >>> clicks = [("ann", "/"), ("bob", "/"), ("ann", "/docs"), ("ann", "/"), ("bob", "/")]
    >>> visits = (env.from_collection(clicks)
    ...           .key_by(lambda click: click[0])
    ...           .process(PageVisits())
    ...           .collect())
    >>> _ = env.execute()
    >>> visits.values
    [('ann', '/', 1), ('bob', '/', 1), ('ann', '/docs', 1), ('ann', '/', 2), ('bob', '/', 2)]
    """

    name: str


class KeyedStateBackend:
    """All keyed state of one operator: ``{state name: {key: value}}``, and its timers."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[Any, Any]] = {}
        self.current_key: Any = None
        self.event_timers: list[tuple[float, int, Any]] = []  # heap of (time, seq, key)
        self.processing_timers: list[tuple[float, int, Any]] = []
        self._timer_seq = 0
        self._registered: set[tuple[str, float, Any]] = set()

    def table(self, name: str) -> dict[Any, Any]:
        return self.tables.setdefault(name, {})

    def register_timer(self, domain: str, when: float, key: Any) -> None:
        marker = (domain, when, key)
        if marker in self._registered:
            return  # like Flink: one timer per (key, time)
        self._registered.add(marker)
        self._timer_seq += 1
        heap = self.event_timers if domain == "event" else self.processing_timers
        heapq.heappush(heap, (when, self._timer_seq, key))

    def delete_timer(self, domain: str, when: float, key: Any) -> None:
        self._registered.discard((domain, when, key))

    def due_timers(self, domain: str, now: float) -> Iterator[tuple[float, Any]]:
        """Pop timers with time <= now, in time order (deleted ones skipped)."""
        heap = self.event_timers if domain == "event" else self.processing_timers
        while heap and heap[0][0] <= now:
            when, _, key = heapq.heappop(heap)
            marker = (domain, when, key)
            if marker in self._registered:
                self._registered.discard(marker)
                yield when, key

    def snapshot(self) -> dict[str, Any]:
        return {"tables": {k: dict(v) for k, v in self.tables.items()},
                "event": list(self.event_timers), "processing": list(self.processing_timers),
                "seq": self._timer_seq, "registered": set(self._registered)}

    def restore(self, snapshot: dict[str, Any]) -> None:
        # In place: state handles taken in open() keep pointing at these dictionaries.
        for name, table in self.tables.items():
            table.clear()
            table.update(snapshot["tables"].get(name, {}))
        for name, table in snapshot["tables"].items():
            self.table(name).update(table)
        self.event_timers = list(snapshot["event"])
        self.processing_timers = list(snapshot["processing"])
        self._timer_seq = snapshot["seq"]
        self._registered = set(snapshot["registered"])


class ValueState:
    def __init__(self, backend: KeyedStateBackend, descriptor: ValueStateDescriptor) -> None:
        self._backend = backend
        self._table = backend.table(descriptor.name)
        self._default = descriptor.default

    def value(self) -> Any:
        return self._table.get(self._backend.current_key, self._default)

    def update(self, value: Any) -> None:
        self._table[self._backend.current_key] = value

    def clear(self) -> None:
        self._table.pop(self._backend.current_key, None)


class ListState:
    def __init__(self, backend: KeyedStateBackend, descriptor: ListStateDescriptor) -> None:
        self._backend = backend
        self._table = backend.table(descriptor.name)

    def get(self) -> list[Any]:
        return list(self._table.get(self._backend.current_key, ()))

    def add(self, value: Any) -> None:
        self._table.setdefault(self._backend.current_key, []).append(value)

    def update(self, values: list[Any]) -> None:
        self._table[self._backend.current_key] = list(values)

    def clear(self) -> None:
        self._table.pop(self._backend.current_key, None)


class MapState:
    def __init__(self, backend: KeyedStateBackend, descriptor: MapStateDescriptor) -> None:
        self._backend = backend
        self._table = backend.table(descriptor.name)

    def _map(self, create: bool = False) -> dict[Any, Any]:
        mapping: dict[Any, Any]
        if create:
            mapping = self._table.setdefault(self._backend.current_key, {})
            return mapping
        mapping = self._table.get(self._backend.current_key, {})
        return mapping

    def get(self, key: Any, default: Any = None) -> Any:
        return self._map().get(key, default)

    def put(self, key: Any, value: Any) -> None:
        self._map(create=True)[key] = value

    def remove(self, key: Any) -> None:
        self._map(create=True).pop(key, None)

    def contains(self, key: Any) -> bool:
        return key in self._map()

    def items(self) -> list[tuple[Any, Any]]:
        return list(self._map().items())

    def keys(self) -> list[Any]:
        return list(self._map().keys())

    def clear(self) -> None:
        self._table.pop(self._backend.current_key, None)
