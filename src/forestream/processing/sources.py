"""Sources: where records enter a job, with positions that checkpoints can restore.

A source is split into *splits* (a Kinesis shard, a file, a collection); each polled
record comes with its split so that watermarks can be tracked per split, and each split
has a position the checkpoint stores. Restoring a source from a checkpoint replays
exactly the records after the checkpointed positions.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .records import Record


class Source:
    """Interface every source implements."""

    name = "source"
    bounded = False

    def open(self) -> None:
        pass

    def poll(self, max_records: int) -> list[tuple[str, Record]]:
        """Up to ``max_records`` new records as (split id, record); [] when none now."""
        raise NotImplementedError

    def finished(self) -> bool:
        """A bounded source that has nothing left."""
        return False

    def snapshot(self) -> dict:
        raise NotImplementedError

    def restore(self, state: dict) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CollectionSource(Source):
    """A Python iterable (materialised), optionally with a timestamp per element."""

    name = "collection"
    bounded = True

    def __init__(self, values: Iterable[Any], timestamps: Iterable[float] | None = None) -> None:
        self.values = list(values)
        self.timestamps = list(timestamps) if timestamps is not None else None
        if self.timestamps is not None and len(self.timestamps) != len(self.values):
            raise ValueError(f"{len(self.timestamps)} timestamps for {len(self.values)} values")
        self.position = 0

    def poll(self, max_records):
        start, end = self.position, min(len(self.values), self.position + max_records)
        self.position = end
        ts = self.timestamps
        return [("collection", Record(self.values[i], ts[i] if ts else None, None,
                                      f"collection@{i}")) for i in range(start, end)]

    def finished(self):
        return self.position >= len(self.values)

    def snapshot(self):
        return {"position": self.position}

    def restore(self, state):
        self.position = state["position"]


class GeneratorSource(Source):
    """Records from ``factory()`` (called again on restore, then fast-forwarded), so any
    deterministic generator is replayable. Bounded when the generator ends."""

    name = "generator"
    bounded = True

    def __init__(self, factory: Callable[[], Iterable[Any]]) -> None:
        self.factory = factory
        self.position = 0
        self._iterator = None
        self._done = False

    def open(self):
        self._iterator = iter(self.factory())
        for _ in range(self.position):
            next(self._iterator, None)

    def poll(self, max_records):
        out = []
        for _ in range(max_records):
            try:
                value = next(self._iterator)
            except StopIteration:
                self._done = True
                break
            out.append(("generator", Record(value, None, None, f"generator@{self.position}")))
            self.position += 1
        return out

    def finished(self):
        return self._done

    def snapshot(self):
        return {"position": self.position}

    def restore(self, state):
        self.position = state["position"]
        if self._iterator is not None:
            self.open()


class FileSource(Source):
    """A text file read line by line: ``format`` is ``lines``, ``jsonl`` or ``csv``
    (a header row; each record a dict of strings)."""

    name = "file"
    bounded = True

    def __init__(self, path: str | Path, format: str = "jsonl") -> None:
        if format not in ("lines", "jsonl", "csv"):
            raise ValueError(f"format must be lines, jsonl or csv, got {format!r}")
        self.path = Path(path)
        self.format = format
        self.position = 0
        self._rows: list[Any] | None = None

    def open(self):
        if not self.path.is_file():
            raise FileNotFoundError(f"source file not found: {self.path}")
        with self.path.open(newline="") as handle:
            if self.format == "csv":
                self._rows = list(csv.DictReader(handle))
            else:
                lines = [line.rstrip("\n") for line in handle if line.strip()]
                self._rows = [json.loads(x) for x in lines] if self.format == "jsonl" \
                    else lines

    def poll(self, max_records):
        start, end = self.position, min(len(self._rows), self.position + max_records)
        self.position = end
        return [(str(self.path), Record(self._rows[i], None, None, f"{self.path.name}@{i}"))
                for i in range(start, end)]

    def finished(self):
        return self._rows is not None and self.position >= len(self._rows)

    def snapshot(self):
        return {"position": self.position}

    def restore(self, state):
        self.position = state["position"]
