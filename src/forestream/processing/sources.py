"""Sources: where records enter a job, with positions that checkpoints can restore.

A source is split into *splits* (a Kinesis shard, a file, a collection); each polled
record comes with its split so that watermarks can be tracked per split, and each split
has a position the checkpoint stores. Restoring a source from a checkpoint replays
exactly the records after the checkpointed positions.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from .records import Record


class Source:
    """Interface every source implements.

    ``env.from_source(source)`` reads one. ``open`` runs before the first poll;
    ``poll(max_records)`` returns the records available now, each with the id of its
    split (records of one split keep their order, and each split has a watermark of its
    own); ``finished`` tells when a ``bounded`` source has nothing left (an unbounded one
    runs until the job is stopped). ``snapshot`` returns the position to checkpoint and
    ``restore`` goes back to it: restored, the source must give exactly the records
    after that position again. A record's ``rid`` should name its split and position,
    so it is the same on every replay.

    Examples
    --------
    A bounded source counting down from ``start``:

    >>> from forestream.processing import Record, Source, StreamExecutionEnvironment
    >>> class Countdown(Source):
    ...     bounded = True
    ...     def __init__(self, start):
    ...         self.start, self.position = start, 0
    ...     def poll(self, max_records):
    ...         end = min(self.start, self.position + max_records)
    ...         out = [("countdown", Record(self.start - i, None, None, f"countdown@{i}"))
    ...                for i in range(self.position, end)]
    ...         self.position = end
    ...         return out
    ...     def finished(self) -> bool:
    ...         return self.position >= self.start
    ...     def snapshot(self):
    ...         return {"position": self.position}
    ...     def restore(self, state):
    ...         self.position = state["position"]
    >>> env = StreamExecutionEnvironment(batch_size=2)
    >>> numbers = env.from_source(Countdown(5)).collect()
    >>> _ = env.execute()
    >>> numbers.values
    [5, 4, 3, 2, 1]
    """

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

    def snapshot(self) -> dict[str, Any]:
        raise NotImplementedError

    def restore(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class CollectionSource(Source):
    """A Python iterable (materialised), optionally with a timestamp per element.

    What ``env.from_collection(values, timestamps)`` reads: one split, bounded, in the
    iterable's order. ``timestamps`` (seconds, one per value) become the records' event
    time; with a :class:`~forestream.processing.WatermarkStrategy` the watermark follows
    them, without one every event-time window and timer fires at the end of the input.

    >>> from forestream.processing import CollectionSource, StreamExecutionEnvironment
    >>> env = StreamExecutionEnvironment()
    >>> out = env.from_source(CollectionSource("abc", timestamps=[1.0, 2.0, 3.0])).collect()
    >>> _ = env.execute()
    >>> [(r.value, r.timestamp, r.rid) for r in out.records]
    [('a', 1.0, 'collection@0'), ('b', 2.0, 'collection@1'), ('c', 3.0, 'collection@2')]
    """

    name = "collection"
    bounded = True

    def __init__(self, values: Iterable[Any], timestamps: Iterable[float] | None = None) -> None:
        self.values = list(values)
        self.timestamps = list(timestamps) if timestamps is not None else None
        if self.timestamps is not None and len(self.timestamps) != len(self.values):
            raise ValueError(f"{len(self.timestamps)} timestamps for {len(self.values)} values")
        self.position = 0

    def poll(self, max_records: int) -> list[tuple[str, Record]]:
        start, end = self.position, min(len(self.values), self.position + max_records)
        self.position = end
        ts = self.timestamps
        return [("collection", Record(self.values[i], ts[i] if ts else None, None,
                                      f"collection@{i}")) for i in range(start, end)]

    def finished(self) -> bool:
        return self.position >= len(self.values)

    def snapshot(self) -> dict[str, Any]:
        return {"position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        self.position = state["position"]


class GeneratorSource(Source):
    """Records from ``factory()`` (called again on restore, then fast-forwarded), so any
    deterministic generator is replayable. Bounded when the generator ends.

    What ``env.from_generator(factory)`` reads. Records have no timestamp: give event
    time with a :class:`~forestream.processing.WatermarkStrategy`'s timestamp assigner.

    >>> import itertools
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> def readings():
    ...     for i in itertools.count():
    ...         if i == 5:
    ...             return
    ...         yield {"i": i, "value": i * i}
    >>> env = StreamExecutionEnvironment(batch_size=2)
    >>> out = env.from_generator(readings).map(lambda r: r["value"]).collect()
    >>> _ = env.execute()
    >>> out.values
    [0, 1, 4, 9, 16]
    """

    name = "generator"
    bounded = True

    def __init__(self, factory: Callable[[], Iterable[Any]]) -> None:
        self.factory = factory
        self.position = 0
        self._iterator: Iterator[Any] | None = None
        self._done = False

    def open(self) -> None:
        self._iterator = iter(self.factory())
        for _ in range(self.position):
            next(self._iterator, None)

    def poll(self, max_records: int) -> list[tuple[str, Record]]:
        assert self._iterator is not None  # open() runs before the first poll
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

    def finished(self) -> bool:
        return self._done

    def snapshot(self) -> dict[str, Any]:
        return {"position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        self.position = state["position"]
        if self._iterator is not None:
            self.open()


class FileSource(Source):
    """A text file read line by line: ``format`` is ``lines``, ``jsonl`` or ``csv``
    (a header row; each record a dict of strings).

    What ``env.from_file(path, format)`` reads: bounded, one split (the file), read
    whole when the job opens. ``lines`` gives each line as a string without its
    newline; ``jsonl`` each line parsed as JSON; blank lines are skipped in both.
    Records have no timestamp: give event time with a
    :class:`~forestream.processing.WatermarkStrategy`'s timestamp assigner.

    Parameters
    ----------
    path
        The file to read (it must exist when the job starts).
    format
        ``lines``, ``jsonl`` or ``csv``.

    Examples
    --------
    >>> import shutil, tempfile
    >>> from pathlib import Path
    >>> from forestream.processing import FileSource, StreamExecutionEnvironment
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "orders.csv").write_text("id,amount\\no1,20\\no2,35\\n")
    >>> _ = (folder / "events.jsonl").write_text('{"n": 1}\\n\\n{"n": 2}\\n')
    >>> env = StreamExecutionEnvironment()
    >>> orders = env.from_file(folder / "orders.csv", format="csv").collect()
    >>> events = env.from_source(FileSource(folder / "events.jsonl")).collect()
    >>> _ = env.execute()
    >>> orders.values
    [{'id': 'o1', 'amount': '20'}, {'id': 'o2', 'amount': '35'}]
    >>> events.values
    [{'n': 1}, {'n': 2}]
    >>> shutil.rmtree(folder)
    """

    name = "file"
    bounded = True

    def __init__(self, path: str | Path, format: str = "jsonl") -> None:
        if format not in ("lines", "jsonl", "csv"):
            raise ValueError(f"format must be lines, jsonl or csv, got {format!r}")
        self.path = Path(path)
        self.format = format
        self.position = 0
        self._rows: list[Any] | None = None

    def open(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(f"source file not found: {self.path}")
        with self.path.open(newline="") as handle:
            if self.format == "csv":
                self._rows = list(csv.DictReader(handle))
            else:
                lines = [line.rstrip("\n") for line in handle if line.strip()]
                self._rows = [json.loads(x) for x in lines] if self.format == "jsonl" \
                    else lines

    def poll(self, max_records: int) -> list[tuple[str, Record]]:
        assert self._rows is not None  # open() runs before the first poll
        start, end = self.position, min(len(self._rows), self.position + max_records)
        self.position = end
        return [(str(self.path), Record(self._rows[i], None, None, f"{self.path.name}@{i}"))
                for i in range(start, end)]

    def finished(self) -> bool:
        return self._rows is not None and self.position >= len(self._rows)

    def snapshot(self) -> dict[str, Any]:
        return {"position": self.position}

    def restore(self, state: dict[str, Any]) -> None:
        self.position = state["position"]
