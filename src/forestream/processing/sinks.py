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
from typing import Any, Protocol, TextIO

from .records import Record


class SinkLike(Protocol):
    """What a job calls on a sink: the methods of :class:`Sink` (which
    :class:`~forestream.processing.kinesis_io.KinesisSink` has without deriving from it)."""

    def open(self) -> None: ...

    def write(self, records: list[Record]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...

    def snapshot(self) -> Any: ...

    def restore(self, state: Any) -> None: ...


class Sink:
    """Interface every sink implements; ``stream.sink_to(sink)`` attaches one.

    ``open`` runs before the job starts, ``write(records)`` gets each non-empty batch of
    :class:`~forestream.processing.Record` (value, event time, key and a stable id),
    ``flush`` runs before every checkpoint and at the end of a bounded input, and
    ``close`` at the end. What ``snapshot`` returns is checkpointed, and ``restore``
    gets it back when a job restarts from that checkpoint: a sink that can undo what it
    wrote after the checkpoint (as :class:`FileSink` truncates) is exactly-once, any
    other is at-least-once.

    Examples
    --------
    A sink that keeps the largest value per key:

    >>> from forestream.processing import Sink, StreamExecutionEnvironment
    >>> class MaxPerKey(Sink):
    ...     def __init__(self):
    ...         self.best = {}
    ...     def write(self, records):
    ...         for r in records:
    ...             self.best[r.key] = max(self.best.get(r.key, r.value), r.value)
    ...     def snapshot(self):
    ...         return dict(self.best)
    ...     def restore(self, state):
    ...         self.best = dict(state)
    >>> env = StreamExecutionEnvironment()
    >>> sink = (env.from_collection([3, 8, 5, 6, 1])
    ...         .key_by(lambda n: "odd" if n % 2 else "even")
    ...         .sink_to(MaxPerKey()))
    >>> _ = env.execute()
    >>> sink.best
    {'odd': 5, 'even': 8}
    """

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
    """Calls ``fn(value)`` for every record (``with_records=True``: ``fn(record)``).

    What ``stream.add_sink(fn)`` makes. The function's effects are outside the job's
    checkpoints: after a restart it may see some values again.

    >>> from forestream.processing import CallableSink, StreamExecutionEnvironment
    >>> seen = []
    >>> env = StreamExecutionEnvironment()
    >>> _ = env.from_collection(["a", "b"]).add_sink(seen.append)
    >>> _ = (env.from_collection([10, 20], timestamps=[1.0, 2.0])
    ...      .sink_to(CallableSink(lambda r: seen.append((r.value, r.timestamp)),
    ...                            with_records=True)))
    >>> _ = env.execute()
    >>> sorted(seen, key=str)
    [(10, 1.0), (20, 2.0), 'a', 'b']
    """

    def __init__(self, fn: Callable[[Any], None], with_records: bool = False) -> None:
        self.fn = fn
        self.with_records = with_records

    def write(self, records: list[Record]) -> None:
        for r in records:
            self.fn(r if self.with_records else r.value)


class ListSink(Sink):
    """Collects values in memory (tests, notebooks); part of the checkpointed state.

    What ``stream.collect()`` returns. After ``env.execute()``, ``values`` holds the
    values in arrival order and ``records`` the full
    :class:`~forestream.processing.Record` objects (event time, key, id). A restore
    drops what was collected after the checkpoint.

    >>> from forestream.processing import ListSink, StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> squares = (env.from_collection([1, 2, 3], timestamps=[10.0, 20.0, 30.0])
    ...            .map(lambda n: n * n)
    ...            .collect())
    >>> _ = env.execute()
    >>> isinstance(squares, ListSink), squares.values
    (True, [1, 4, 9])
    >>> [(r.value, r.timestamp, r.rid) for r in squares.records][0]
    (1, 10.0, 'collection@0')
    """

    def __init__(self) -> None:
        self.values: list[Any] = []
        self.records: list[Record] = []

    def write(self, records: list[Record]) -> None:
        self.records.extend(records)
        self.values.extend(r.value for r in records)

    def snapshot(self) -> int:
        return len(self.records)

    def restore(self, state: int) -> None:
        del self.records[state:]
        del self.values[state:]


class PrintSink(Sink):
    """Prints every value, after ``prefix``, to ``stream`` (standard output by default).

    What ``stream.print(prefix)`` makes; for trying things out.

    >>> from forestream.processing import StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> _ = env.from_collection([{"id": 1}, {"id": 2}]).print("out> ")
    >>> _ = env.execute()
    out> {'id': 1}
    out> {'id': 2}
    """

    def __init__(self, prefix: str = "", stream: TextIO | None = None) -> None:
        self.prefix = prefix
        self.stream = stream or sys.stdout

    def write(self, records: list[Record]) -> None:
        for r in records:
            print(f"{self.prefix}{r.value}", file=self.stream)

    def flush(self) -> None:
        self.stream.flush()


class FileSink(Sink):
    """Appends JSON lines (``jsonl``) or CSV rows (``csv``, dict values) to a file.

    Exactly-once for the file: the byte length at each checkpoint is part of the state,
    and a restore truncates anything written after it.

    What ``stream.write_to_file(path, format)`` makes. The file (and its folder) is
    created if need be; an existing file is appended to. In ``csv`` the header is the
    first value's keys (or the existing file's header), and keys not in it are left out.
    Values JSON cannot represent are written as ``str(value)``.

    Parameters
    ----------
    path
        The file to append to.
    format
        ``jsonl`` (one JSON document per line) or ``csv``.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> folder = Path(tempfile.mkdtemp())
    >>> env = StreamExecutionEnvironment()
    >>> rows = env.from_collection([{"host": "h1", "cpu": 97}, {"host": "h2", "cpu": 42}])
    >>> _ = rows.write_to_file(folder / "hosts.jsonl")
    >>> _ = rows.write_to_file(folder / "hosts.csv", format="csv")
    >>> _ = env.execute()
    >>> print((folder / "hosts.jsonl").read_text(), end="")
    {"host": "h1", "cpu": 97}
    {"host": "h2", "cpu": 42}
    >>> print((folder / "hosts.csv").read_text(), end="")
    host,cpu
    h1,97
    h2,42
    >>> shutil.rmtree(folder)
    """

    def __init__(self, path: str | Path, format: str = "jsonl") -> None:
        if format not in ("jsonl", "csv"):
            raise ValueError(f"format must be jsonl or csv, got {format!r}")
        self.path = Path(path)
        self.format = format
        self._handle: TextIO | None = None
        self._fields: list[str] | None = None

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.path.open("a", newline="")
        if self.format == "csv" and self.path.stat().st_size > 0:
            with self.path.open(newline="") as handle:
                self._fields = next(csv.reader(handle), None)

    def write(self, records: list[Record]) -> None:
        if self.format == "jsonl":
            assert self._handle is not None  # open() runs before the first write
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
        assert self._handle is not None  # open() runs before the first write
        self._handle.write(buffer.getvalue())

    def flush(self) -> None:
        if self._handle:
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        if self._handle:
            self.flush()
            self._handle.close()
            self._handle = None

    def snapshot(self) -> dict[str, Any]:
        self.flush()
        return {"length": self.path.stat().st_size, "fields": self._fields}

    def restore(self, state: dict[str, Any]) -> None:
        if self._handle:
            self._handle.close()
        with self.path.open("r+b") as handle:
            handle.truncate(state["length"])
        self._fields = state["fields"]
        self._handle = self.path.open("a", newline="")
