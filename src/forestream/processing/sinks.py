"""Sinks: where results leave a job (files, stdout, Python callables, lists, streams).

A sink receives batches of records. ``snapshot``/``restore`` let file sinks truncate what
was written after the last checkpoint, so a restarted job does not duplicate lines in a
file; stream sinks (:class:`~forestream.processing.kinesis_io.KinesisSink`) are
at-least-once with record ids instead.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .records import Record


class Sink:
    def open(self) -> None:
        pass

    def write(self, records: list[Record]) -> None:
        raise NotImplementedError

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def snapshot(self) -> Any:
        return None

    def restore(self, state: Any) -> None:
        pass


class CallableSink(Sink):
    """Calls ``fn(value)`` for every record (``with_records=True``: ``fn(record)``)."""

    def __init__(self, fn: Callable[[Any], None], with_records: bool = False) -> None:
        self.fn = fn
        self.with_records = with_records

    def write(self, records):
        for r in records:
            self.fn(r if self.with_records else r.value)


class ListSink(Sink):
    """Collects values in memory (tests, notebooks); part of the checkpointed state."""

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.records: list[Record] = []

    def write(self, records):
        self.records.extend(records)
        self.values.extend(r.value for r in records)

    def snapshot(self):
        return len(self.records)

    def restore(self, state):
        del self.records[state:]
        del self.values[state:]


class PrintSink(Sink):
    def __init__(self, prefix: str = "", stream=None) -> None:
        self.prefix = prefix
        self.stream = stream or sys.stdout

    def write(self, records):
        for r in records:
            print(f"{self.prefix}{r.value}", file=self.stream)

    def flush(self):
        self.stream.flush()


class FileSink(Sink):
    """Appends JSON lines (``jsonl``) or CSV rows (``csv``, dict values) to a file.

    Exactly-once for the file: the byte length at each checkpoint is part of the state,
    and a restore truncates anything written after it.
    """

    def __init__(self, path: str | Path, format: str = "jsonl") -> None:
        if format not in ("jsonl", "csv"):
            raise ValueError(f"format must be jsonl or csv, got {format!r}")
        self.path = Path(path)
        self.format = format
        self._handle = None
        self._fields: list[str] | None = None

    def open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", newline="")
        if self.format == "csv" and self.path.stat().st_size > 0:
            with self.path.open(newline="") as handle:
                self._fields = next(csv.reader(handle), None)

    def write(self, records):
        if self.format == "jsonl":
            self._handle.write("".join(json.dumps(r.value, default=str) + "\n"
                                       for r in records))
            return
        buffer = io.StringIO()
        if self._fields is None:
            self._fields = list(records[0].value)
            csv.writer(buffer).writerow(self._fields)
        writer = csv.DictWriter(buffer, fieldnames=self._fields, extrasaction="ignore")
        for r in records:
            writer.writerow(r.value)
        self._handle.write(buffer.getvalue())

    def flush(self):
        if self._handle:
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self):
        if self._handle:
            self.flush()
            self._handle.close()
            self._handle = None

    def snapshot(self):
        self.flush()
        return {"length": self.path.stat().st_size, "fields": self._fields}

    def restore(self, state):
        if self._handle:
            self._handle.close()
        with self.path.open("r+b") as handle:
            handle.truncate(state["length"])
        self._fields = state["fields"]
        self._handle = self.path.open("a", newline="")
