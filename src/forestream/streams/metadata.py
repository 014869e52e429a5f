"""Stream metadata in SQLite (WAL): streams, shards, tags, consumers.

Everything here survives a restart. Bulk record data lives in the shards' segment logs;
this database only says which streams and shards exist and how they relate.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal, NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS streams (
    name TEXT PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL,            -- ACTIVE, or the transient status below until ready_ms
    ready_ms INTEGER NOT NULL,       -- when CREATING/UPDATING turns ACTIVE
    mode TEXT NOT NULL,
    retention_hours INTEGER NOT NULL,
    next_shard INTEGER NOT NULL,
    encryption TEXT NOT NULL DEFAULT 'NONE',
    key_id TEXT,
    max_record_kib INTEGER NOT NULL DEFAULT 1024,
    metrics TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE IF NOT EXISTS shards (
    stream TEXT NOT NULL REFERENCES streams(name) ON DELETE CASCADE,
    number INTEGER NOT NULL,
    parent INTEGER,
    adjacent_parent INTEGER,
    start_hash TEXT NOT NULL,
    end_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    closed_ms INTEGER,
    ending_offset INTEGER,           -- last offset of a closed shard (-1: closed empty)
    PRIMARY KEY (stream, number)
);
CREATE TABLE IF NOT EXISTS tags (
    stream TEXT NOT NULL REFERENCES streams(name) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (stream, key)
);
CREATE TABLE IF NOT EXISTS consumers (
    stream TEXT NOT NULL REFERENCES streams(name) ON DELETE CASCADE,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    ready_ms INTEGER NOT NULL,
    PRIMARY KEY (stream, name)
);
"""


def now_ms() -> int:
    """Wall-clock milliseconds, the unit of every timestamp the store keeps."""
    return int(time.time() * 1000)


@dataclass
class ShardInfo:
    number: int
    parent: int | None
    adjacent_parent: int | None
    start_hash: int
    end_hash: int
    created_ms: int
    closed_ms: int | None = None
    ending_offset: int | None = None

    @property
    def is_open(self) -> bool:
        return self.closed_ms is None

    @property
    def last_offset(self) -> int:
        """A closed shard's last offset (-1 if it closed empty); ValueError while open."""
        if self.ending_offset is None:
            raise ValueError(f"shard {self.number} is still open")
        return self.ending_offset


@dataclass
class StreamInfo:
    name: str
    created_ms: int
    status: str
    ready_ms: int
    mode: str
    retention_hours: int
    next_shard: int
    encryption: str
    key_id: str | None
    max_record_kib: int
    metrics: list[str]
    shards: list[ShardInfo] = field(default_factory=list)

    def open_shards(self) -> list[ShardInfo]:
        """The shards records go to: open ones, less the children of a reshard that has
        not taken effect yet (:meth:`pending_shards`)."""
        opened = {s.number for s in self.shards if s.is_open}
        return [s for s in self.shards if s.is_open and s.parent not in opened
                and s.adjacent_parent not in opened]

    def pending_shards(self) -> list[ShardInfo]:
        """Children of a reshard still UPDATING: Kinesis keeps the old shards the
        stream's shards until the change takes effect, and a reshard closes its parents
        only then, so a shard whose parent is still open has not begun (this needs no
        record of its own and survives a restart as it is)."""
        opened = {s.number for s in self.shards if s.is_open}
        return [s for s in self.shards if s.parent in opened or s.adjacent_parent in opened]


class ConsumerInfo(NamedTuple):
    """A registered stream consumer, as the ``consumers`` table keeps it."""

    name: str
    created_ms: int
    ready_ms: int  # when CREATING turns ACTIVE


class MetadataDB:
    """A thread-safe wrapper over one SQLite connection in WAL mode."""

    #: this store is the only writer of its database: what it loaded stays current
    version = 0

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)
        self.lock = threading.RLock()
        self.depth = 0  # nested transaction() blocks join the outermost one

    def refresh(self, name: str) -> bool:
        """Nothing to learn: no one else writes this database (see the backend's)."""
        return False

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def transaction(self) -> _Transaction:
        """``with db.transaction():`` runs its statements in one SQLite transaction
        (``BEGIN IMMEDIATE`` ... ``COMMIT``, ``ROLLBACK`` on an exception), holding the
        lock throughout; nested blocks join the outermost one."""
        return _Transaction(self)

    def execute(self, sql: str, args: tuple[object, ...] = ()) -> sqlite3.Cursor:
        with self.lock:
            return self._conn.execute(sql, args)

    def load_streams(self) -> dict[str, StreamInfo]:
        with self.lock:
            streams: dict[str, StreamInfo] = {}
            for (name, created_ms, status, ready_ms, mode, retention_hours, next_shard,
                 encryption, key_id, max_record_kib, metrics) in self._conn.execute(
                    "SELECT name, created_ms, status, ready_ms, mode, retention_hours, "
                    "next_shard, encryption, key_id, max_record_kib, metrics FROM streams"):
                streams[name] = StreamInfo(name, created_ms, status, ready_ms, mode,
                                           retention_hours, next_shard, encryption, key_id,
                                           max_record_kib, metrics=json.loads(metrics))
            for row in self._conn.execute(
                    "SELECT stream, number, parent, adjacent_parent, start_hash, end_hash, "
                    "created_ms, closed_ms, ending_offset FROM shards ORDER BY stream, number"):
                streams[row[0]].shards.append(ShardInfo(
                    row[1], row[2], row[3], int(row[4]), int(row[5]), row[6], row[7], row[8]))
            return streams

    def insert_stream(self, s: StreamInfo) -> None:
        self.execute("INSERT INTO streams VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                     (s.name, s.created_ms, s.status, s.ready_ms, s.mode, s.retention_hours,
                      s.next_shard, s.encryption, s.key_id, s.max_record_kib,
                      json.dumps(s.metrics)))

    def update_stream(self, s: StreamInfo) -> None:
        self.execute("UPDATE streams SET status=?, ready_ms=?, mode=?, retention_hours=?, "
                     "next_shard=?, encryption=?, key_id=?, max_record_kib=?, metrics=? "
                     "WHERE name=?",
                     (s.status, s.ready_ms, s.mode, s.retention_hours, s.next_shard,
                      s.encryption, s.key_id, s.max_record_kib, json.dumps(s.metrics), s.name))

    def insert_shard(self, stream: str, sh: ShardInfo) -> None:
        self.execute("INSERT INTO shards VALUES (?,?,?,?,?,?,?,?,?)",
                     (stream, sh.number, sh.parent, sh.adjacent_parent, str(sh.start_hash),
                      str(sh.end_hash), sh.created_ms, sh.closed_ms, sh.ending_offset))

    def close_shard(self, stream: str, sh: ShardInfo) -> None:
        self.execute("UPDATE shards SET closed_ms=?, ending_offset=? WHERE stream=? AND "
                     "number=?", (sh.closed_ms, sh.ending_offset, stream, sh.number))

    def delete_shard(self, stream: str, number: int) -> None:
        self.execute("DELETE FROM shards WHERE stream=? AND number=?", (stream, number))

    def delete_stream(self, name: str) -> None:
        self.execute("DELETE FROM streams WHERE name=?", (name,))

    def tags(self, stream: str) -> dict[str, str]:
        rows = self.execute("SELECT key, value FROM tags WHERE stream=? ORDER BY key",
                            (stream,)).fetchall()
        return dict(rows)

    def set_tags(self, stream: str, tags: Mapping[str, str]) -> None:
        with self.transaction():
            for key, value in tags.items():
                self.execute("INSERT OR REPLACE INTO tags VALUES (?,?,?)", (stream, key, value))

    def remove_tags(self, stream: str, keys: Iterable[str]) -> None:
        with self.transaction():
            for key in keys:
                self.execute("DELETE FROM tags WHERE stream=? AND key=?", (stream, key))

    def consumers(self, stream: str) -> list[ConsumerInfo]:
        rows = self.execute("SELECT name, created_ms, ready_ms FROM consumers WHERE stream=? "
                            "ORDER BY created_ms, name", (stream,)).fetchall()
        return [ConsumerInfo(*row) for row in rows]

    def insert_consumer(self, stream: str, name: str, created_ms: int, ready_ms: int) -> None:
        self.execute("INSERT INTO consumers VALUES (?,?,?,?)", (stream, name, created_ms,
                                                                ready_ms))

    def delete_consumer(self, stream: str, name: str) -> None:
        self.execute("DELETE FROM consumers WHERE stream=? AND name=?", (stream, name))


class _Transaction:
    def __init__(self, db: MetadataDB) -> None:
        self.db = db

    def __enter__(self) -> _Transaction:
        self.db.lock.acquire()
        if self.db.depth == 0:
            self.db._conn.execute("BEGIN IMMEDIATE")
        self.db.depth += 1
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        try:
            self.db.depth -= 1
            if self.db.depth == 0:
                self.db._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.db.lock.release()
        return False
