"""Where a stream store keeps its records and metadata: the storage backend.

The store's components (lifecycle, record I/O, administration, resharding) work on the
:class:`~.catalog.StreamCatalog`; the catalog gets its storage from a backend:

- :class:`LocalBackend` (the default): one data directory on this machine — a segment
  log per shard, the metadata in SQLite, keys and the iterator secret in files;
- :class:`~.jetstream.backend.JetStreamBackend`: a NATS JetStream cluster — a JetStream
  stream per shard, the metadata in a key-value bucket, shared by every front end
  (``forestream server --streams nats://...``).

A backend provides: ``metadata`` (the :class:`~.metadata.MetadataDB` interface, with a
``version`` that changes when another front end changed it), ``keys`` (per-stream
encryption keys), ``iterator_secret`` (the same on every front end, so an iterator taken
from one is good on another), and shard logs (the :class:`~.segment_log.SegmentLog`
interface).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .crypto import KeyStore
from .errors import ResourceInUseError
from .hashing import shard_id
from .metadata import ConsumerInfo, MetadataDB, ShardInfo, StreamInfo
from .segment_log import LogRecord, SegmentLog

STREAM_DIR_PREFIX = "stream-"


class ShardLog(Protocol):
    """What the store needs of a shard's log (see :class:`~.segment_log.SegmentLog`)."""

    @property
    def next_offset(self) -> int: ...

    @property
    def committed_offset(self) -> int: ...

    @property
    def start_offset(self) -> int: ...

    @property
    def last_timestamp_ms(self) -> int | None: ...

    def append(self, entries: Any, timestamp_ms: int | None = None, *, durable: bool = True
               ) -> tuple[int, int]: ...

    def sync_through(self, end: int) -> None: ...

    def read(self, offset: int, max_records: int = ..., max_bytes: int = ...
             ) -> list[LogRecord]: ...

    def offset_at_time(self, timestamp_ms: int) -> int: ...

    def delete_before(self, timestamp_ms: int) -> int: ...

    def size_bytes(self) -> int: ...

    def close(self) -> None: ...

    def delete(self) -> None: ...


class MetadataStore(Protocol):
    """The metadata interface of :class:`~.metadata.MetadataDB`; ``version`` changes when
    another front end changed something (a local database: never)."""

    lock: Any

    @property
    def version(self) -> int: ...

    def transaction(self) -> Any: ...

    def refresh(self, name: str) -> bool: ...

    def load_streams(self) -> dict[str, StreamInfo]: ...

    def insert_stream(self, s: StreamInfo) -> None: ...

    def update_stream(self, s: StreamInfo) -> None: ...

    def insert_shard(self, stream: str, sh: ShardInfo) -> None: ...

    def close_shard(self, stream: str, sh: ShardInfo) -> None: ...

    def delete_shard(self, stream: str, number: int) -> None: ...

    def delete_stream(self, name: str) -> None: ...

    def tags(self, stream: str) -> dict[str, str]: ...

    def set_tags(self, stream: str, tags: Mapping[str, str]) -> None: ...

    def remove_tags(self, stream: str, keys: Iterable[str]) -> None: ...

    def consumers(self, stream: str) -> list[ConsumerInfo]: ...

    def insert_consumer(self, stream: str, name: str, created_ms: int, ready_ms: int
                        ) -> None: ...

    def delete_consumer(self, stream: str, name: str) -> None: ...

    def close(self) -> None: ...


class Keys(Protocol):
    """Per-stream encryption keys (see :class:`~.crypto.KeyStore`)."""

    def key_for(self, stream: str, create: bool = False) -> AESGCM | None: ...

    def forget(self, stream: str) -> None: ...


class StorageBackend(Protocol):
    """What a stream catalog stores through (see the module doc)."""

    name: str
    arrival_poll_seconds: float | None
    iterator_secret: bytes

    @property
    def metadata(self) -> MetadataStore: ...

    @property
    def keys(self) -> Keys: ...

    def open_log(self, stream: str, number: int) -> ShardLog: ...

    def delete_log(self, stream: str, number: int) -> None: ...

    def seal_log(self, log: ShardLog) -> None: ...

    def forget_stream_storage(self, stream: str) -> None: ...

    def remove_orphans(self, known: set[str]) -> None: ...

    def close(self) -> None: ...


class LocalBackend:
    """Everything under ``data_dir`` on this machine, locked against a second store."""

    name = "local"
    #: appends on this machine wake waiting readers at once: no polling for arrivals
    arrival_poll_seconds: float | None = None

    def __init__(self, data_dir: str | Path, fsync: bool = True) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self._lock_file = _lock_directory(self.data_dir)
        self.metadata = MetadataDB(self.data_dir / "streams.db")
        self.keys = KeyStore(self.data_dir / "keys")
        self.iterator_secret = _load_secret(self.data_dir / "iterator.key")

    def open_log(self, stream: str, number: int) -> SegmentLog:
        return SegmentLog(self._shard_dir(stream, number), fsync=self.fsync)

    def delete_log(self, stream: str, number: int) -> None:
        """Remove a shard's log that is not open (a closed one is deleted by its owner)."""
        SegmentLog(self._shard_dir(stream, number), fsync=False).delete()

    def seal_log(self, log: ShardLog) -> None:
        """A closed shard: the catalog stops appends to it itself, nothing to do here."""

    def forget_stream_storage(self, stream: str) -> None:
        """Remove whatever a deleted stream of this name left (a crash between
        DeleteStream's commit and its file removal)."""
        shutil.rmtree(self._stream_dir(stream), ignore_errors=True)

    def remove_orphans(self, known: set[str]) -> None:
        """Delete log directories and keys of streams the metadata no longer has."""
        root = self.data_dir / "streams"
        if root.is_dir():
            for path in root.iterdir():
                name = path.name[len(STREAM_DIR_PREFIX):]
                if path.is_dir() and path.name.startswith(STREAM_DIR_PREFIX) and \
                        name not in known:
                    shutil.rmtree(path, ignore_errors=True)
        keys = self.data_dir / "keys"
        if keys.is_dir():
            for path in keys.glob("*.key"):
                if path.stem not in known:
                    path.unlink(missing_ok=True)

    def close(self) -> None:
        self.metadata.close()
        self._lock_file.close()  # releases the directory lock

    def _shard_dir(self, stream: str, number: int) -> Path:
        return self._stream_dir(stream) / shard_id(number)

    def _stream_dir(self, stream: str) -> Path:
        # A prefix keeps names such as "." or ".." (valid stream names) plain directories.
        return self.data_dir / "streams" / f"{STREAM_DIR_PREFIX}{stream}"


def _lock_directory(data_dir: Path) -> IO[str]:
    """Hold an exclusive lock on the data directory: two stores (say, a server and a
    script) writing the same logs would corrupt them."""
    import fcntl

    handle = (data_dir / "store.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ResourceInUseError(f"data directory {data_dir} is in use by another process "
                                 "(is a forestream server running on it?)") from None
    return handle


def _load_secret(path: Path) -> bytes:
    if path.exists():
        return path.read_bytes()
    secret = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    return secret
