"""What flows between operators: records with event time, key and a stable id."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Record:
    """One element of a stream.

    ``timestamp`` is the event time in seconds (None until a timestamp assigner ran);
    ``key`` is set by ``key_by``; ``rid`` is a stable id derived from where the record
    came from (source split and position, plus the path through the pipeline), so that a
    job replayed from a checkpoint gives every output the same id again and readers of an
    at-least-once sink can drop duplicates.
    """

    value: Any
    timestamp: float | None = None
    key: Any = None
    rid: str = ""


@dataclass(frozen=True)
class OutputTag:
    """Names a side output (e.g. late records), like Flink's ``OutputTag``."""

    name: str


@dataclass
class Collector:
    """Where an operator puts its results: the main output and side outputs."""

    main: list[Record] = field(default_factory=list)
    side: dict[OutputTag, list[Record]] = field(default_factory=dict)

    def emit(self, record: Record) -> None:
        self.main.append(record)

    def emit_side(self, tag: OutputTag, record: Record) -> None:
        self.side.setdefault(tag, []).append(record)
