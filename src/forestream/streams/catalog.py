"""The stream catalog: the state that every part of the stream store shares.

:class:`StreamCatalog` owns the data directory and everything in it: the streams'
metadata (``streams.db`` and the :class:`~.metadata.StreamInfo` objects loaded from it),
one :class:`~.segment_log.SegmentLog` per shard, a readers–writer lock per stream, the
encryption keys and the secret that signs shard iterators. It finds streams by name or
ARN, settles their CREATING / UPDATING / DELETING statuses (a reshard takes effect, a
deletion ends, when its status delay has passed), and adds and removes streams and shards
together with their files (:mod:`.descriptions` puts them in Kinesis's shapes).

The components behind :class:`~forestream.streams.store.StreamStore` (stream lifecycle,
record I/O, administration, resharding) each hold the catalog and use only this public
API; none keeps state of its own beyond caches.

Locking: :meth:`StreamCatalog.stream_lock` is held for reading while records are written
and for writing while a stream's shards change (resharding, retention, deletion); the
metadata database serializes its own statements (``db.transaction()`` groups them);
:meth:`StreamCatalog.log` may be called from any thread.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .backend import LocalBackend, ShardLog, StorageBackend
from .errors import (
    InvalidArgumentError,
    LimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
)
from .hashing import read_shard_id, shard_id
from .metadata import ShardInfo, StreamInfo, now_ms
from .rwlock import ReadWriteLock

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"


@dataclass(frozen=True)
class StoreSettings:
    """How a store behaves; the parameters of :class:`~.store.StreamStore`."""

    fsync: bool = True
    status_delay_ms: int = 300
    shard_limit: int = 500
    on_demand_stream_limit: int = 50
    throughput_limits: bool = False
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT


class StreamCatalog:
    """The streams under ``data_dir``, their logs, locks and keys (see the module doc).

    Opening takes an exclusive lock on the directory (:class:`ResourceInUseError` if
    another store holds it) and removes files of streams the metadata no longer has.
    """

    def __init__(self, data_dir: str | Path, settings: StoreSettings | None = None,
                 backend: StorageBackend | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.settings = settings or StoreSettings()
        self.backend: StorageBackend = backend or LocalBackend(self.data_dir,
                                                               self.settings.fsync)
        self.db = self.backend.metadata
        self._streams: dict[str, StreamInfo] = self.db.load_streams()
        self._seen_version = self.db.version
        self._logs: dict[tuple[str, int], ShardLog] = {}
        self._logs_lock = threading.Lock()
        self._stream_locks: dict[str, ReadWriteLock] = {}
        self.keys = self.backend.keys
        self.iterator_secret = self.backend.iterator_secret
        # appends bump this and wake readers waiting for records (RecordIO.wait_for_records)
        self._arrivals = threading.Condition()
        self.arrivals = 0
        self._closed = False
        self._remove_orphans()
        for info in self.streams():  # deletions whose time ran out while no store was open
            if info.status == "DELETING" and now_ms() >= info.ready_ms:
                self.remove_stream(info)

    def close(self) -> None:
        """Close every open log, the database and the directory lock (idempotent)."""
        with self._logs_lock:
            for log in self._logs.values():
                log.close()
            self._logs.clear()
        if not self._closed:
            self.backend.close()
            self._closed = True

    # ----------------------------------------------------------------- arrivals
    def announce_records(self) -> None:
        """Records were appended (and are durable): wake every waiting reader."""
        with self._arrivals:
            self.arrivals += 1
            self._arrivals.notify_all()

    def wait_for_arrival(self, seen: int, timeout: float) -> None:
        """Until an append after the one numbered ``seen``, or ``timeout`` seconds (with
        a backend shared by several front ends, at most its polling interval: appends
        through another front end are not announced here)."""
        poll = self.backend.arrival_poll_seconds
        if poll is not None:
            timeout = min(timeout, poll)
        with self._arrivals:
            self._arrivals.wait_for(lambda: self.arrivals != seen, timeout)

    def sync(self) -> None:
        """Reload the streams' metadata if another front end changed it (a backend shared
        by several front ends; a local one never changes behind the store's back)."""
        version = self.db.version
        if version != self._seen_version:
            with self.db.lock:
                self._streams = self.db.load_streams()
                self._seen_version = version

    # ----------------------------------------------------------------- finding
    def stream_arn(self, name: str) -> str:
        return f"arn:aws:kinesis:{self.settings.region}:{self.settings.account}:stream/{name}"

    def stream_names(self) -> list[str]:
        """The streams that exist for forestream's own use: not those being deleted
        (ListStreams lists those too, as Kinesis does)."""
        self.sync()
        return sorted(name for name, info in self._streams.items()
                      if info.status != "DELETING")

    def streams(self) -> list[StreamInfo]:
        """Every stream's info (a new list: streams may come and go while it is used)."""
        self.sync()
        return list(self._streams.values())

    def find(self, name: str) -> StreamInfo | None:
        """The stream called ``name`` as it is (its status not settled), or None."""
        self.sync()
        info = self._streams.get(name)
        if info is None and self.db.refresh(name):  # just created through another front end
            self.sync()
            info = self._streams.get(name)
        return info

    def get(self, name: str) -> StreamInfo:
        """The stream called ``name`` as it is; KeyError if there is none."""
        self.sync()
        return self._streams[name]

    def resolve(self, stream_name: str | None, stream_arn: str | None) -> StreamInfo:
        """The stream a request names by ``stream_name`` or ``stream_arn`` (or both, if
        they agree), its status settled; Kinesis's errors for anything else."""
        if stream_arn is not None:
            prefix = f"arn:aws:kinesis:{self.settings.region}:{self.settings.account}:stream/"
            if not stream_arn.startswith(prefix):
                raise ResourceNotFoundError(f"Stream {stream_arn} not found: ARNs here start "
                                            f"with {prefix}")
            name = stream_arn[len(prefix):].split("/")[0]
            if stream_name is not None and stream_name != name:
                raise InvalidArgumentError(f"StreamName {stream_name} and StreamARN "
                                           f"{stream_arn} name different streams")
        elif stream_name is not None:
            name = stream_name
        else:
            raise InvalidArgumentError("Either StreamName or StreamARN must be provided")
        info = self.find(name)
        if info is None or not self.settle(info):
            raise ResourceNotFoundError(f"Stream {name} under account "
                                        f"{self.settings.account} not found.")
        return info

    def require_writable(self, info: StreamInfo) -> None:
        """ResourceNotFound (Kinesis's answer to PutRecord(s) on a stream that is being
        created or deleted) unless the stream takes records; also when it has gone since
        ``info`` was found. Never settles: writers call it holding the stream's lock."""
        current = self.find(info.name)
        if current is None or current.status in ("CREATING", "DELETING"):
            raise ResourceNotFoundError(f"Stream {info.name} under account "
                                        f"{self.settings.account} not found.")

    def visible_shards(self, info: StreamInfo) -> list[ShardInfo]:
        """The stream's shards that retention has not dropped, by shard number: none
        while it is DELETING, and not the children of a reshard that has not taken effect
        (Kinesis lists its shards so)."""
        if info.status == "DELETING":
            return []
        pending = {s.number for s in info.pending_shards()}
        return sorted((s for s in info.shards if s.number not in pending),
                      key=lambda s: s.number)

    def requested_name(self, stream_name: str | None, stream_arn: str | None) -> str:
        """The stream name a request gives (by name or ARN), for messages."""
        if stream_name is not None or stream_arn is None:
            return stream_name or ""
        return stream_arn.rsplit(":stream/", 1)[-1].split("/")[0]

    def shard_number(self, value: str, stream: str) -> int:
        """The number of shard id ``value`` (read as Kinesis reads them, see
        :func:`~.hashing.read_shard_id`); ResourceNotFound for an id that names no shard,
        whether the stream exists or not (Kinesis looks at the id first)."""
        number = read_shard_id(value)
        if number is None:
            raise ResourceNotFoundError(f"Could not find shard {value} in stream {stream} "
                                        f"under account {self.settings.account}.")
        return number

    def shard(self, info: StreamInfo, value: str | int, *, to_change: bool = False
              ) -> ShardInfo:
        """The shard ``value`` (a shard id, or its number) of the stream; ResourceNotFound
        if none, in the words of the operations that read (or, ``to_change``, reshard)."""
        number = value if isinstance(value, int) else self.shard_number(value, info.name)
        # none can be read or changed while the stream is CREATING (Kinesis: not found)
        for shard in self.visible_shards(info) if info.status != "CREATING" else []:
            if shard.number == number:
                return shard
        account = self.settings.account
        if to_change:
            raise ResourceNotFoundError(f"Could not find shard {shard_id(number)} in stream "
                                        f"{info.name} under account {account}.")
        raise ResourceNotFoundError(f"Shard {shard_id(number)} in stream {info.name} under "
                                    f"account {account} does not exist")

    def open_shard_count(self) -> int:
        self.sync()
        return sum(len(s.open_shards()) for s in self._streams.values()
                   if s.status != "DELETING")

    def check_shard_limit(self, extra: int) -> None:
        """LimitExceeded (in Kinesis's words) if ``extra`` more open shards would pass
        the shard limit."""
        settings, current = self.settings, self.open_shard_count()
        if current + extra > settings.shard_limit:
            raise LimitExceededError(
                f"This request would exceed the shard limit for the account "
                f"{settings.account} in {settings.region}. Current shard count for the "
                f"account: {current}. Limit: {settings.shard_limit}. Number of additional "
                f"shards that would have resulted from this request: {extra}. Refer to the "
                "AWS Service Limits page "
                "(http://docs.aws.amazon.com/general/latest/gr/aws_service_limits.html) for "
                "current limits and how to request higher limits.")

    def on_demand_stream_count(self) -> int:
        return sum(s.mode == "ON_DEMAND" for s in self._streams.values())

    # ---------------------------------------------------------------- statuses
    def settle(self, info: StreamInfo) -> bool:
        """Once its delay has passed: turn a CREATING / UPDATING stream ACTIVE (a reshard
        takes effect then), end a DELETING one. Whether the stream is still there.
        Takes the stream's lock for writing when there is a change of shards to make, so
        never call it holding that lock."""
        if info.status == "ACTIVE" or now_ms() < info.ready_ms:
            return True
        if info.status == "DELETING":
            self.remove_stream(info)
            return False
        if info.pending_shards():
            self._finish_reshard(info)
            return True
        info.status = "ACTIVE"
        # another front end may have settled or changed it first
        with contextlib.suppress(ResourceInUseError):
            self.db.update_stream(info)
        return True

    def _finish_reshard(self, info: StreamInfo) -> None:
        """The reshard takes effect: close its parents at their last record (the
        children, already stored, become the stream's shards) and turn the stream ACTIVE."""
        with self.stream_lock(info.name).write():
            if info.status != "UPDATING":  # another thread finished it meanwhile
                return
            children = info.pending_shards()
            # every open shard a child's range covers (UpdateShardCount names at most two
            # parents per child, and a child may cover three)
            parents = {s.number for s in info.open_shards()
                       if any(c.start_hash <= s.end_hash and s.start_hash <= c.end_hash
                              for c in children)}
            now = now_ms()
            # another front end may have finished it first: its version is read back
            with contextlib.suppress(ResourceInUseError), self.db.transaction():
                for shard in info.shards:
                    if shard.number in parents and shard.is_open:
                        self.seal_log(info.name, shard.number)  # its last record is final
                        shard.ending_offset = self.log(info.name, shard.number).next_offset - 1
                        shard.closed_ms = now
                        self.db.close_shard(info.name, shard)
                info.status = "ACTIVE"
                self.db.update_stream(info)

    def start_deletion(self, info: StreamInfo) -> None:
        """DeleteStream: the stream is DELETING for the status delay (listed, described,
        taking no records), then gone with its data; at once without a delay. Writers
        already in the stream finish first."""
        if self.settings.status_delay_ms <= 0:
            self.remove_stream(info)
            return
        with self.stream_lock(info.name).write():
            info.status, info.ready_ms = "DELETING", now_ms() + self.settings.status_delay_ms
            self.db.update_stream(info)

    def require_active(self, info: StreamInfo) -> None:
        if info.status != "ACTIVE":
            raise ResourceInUseError(f"Stream {info.name} under account "
                                     f"{self.settings.account} not ACTIVE, instead in state "
                                     f"{info.status}")

    def mark_updating(self, info: StreamInfo) -> None:
        """Save ``info`` (changed by the caller) as UPDATING for the status delay."""
        info.status, info.ready_ms = "UPDATING", now_ms() + self.settings.status_delay_ms
        self.db.update_stream(info)
        self.settle(info)

    # ---------------------------------------------------- adding and removing
    def add_stream(self, info: StreamInfo, tags: Mapping[str, str] | None = None) -> None:
        """Store a new stream (its shards in ``info.shards``) and its tags in one
        transaction. Files left by a deleted stream of the same name (a crash between
        DeleteStream's commit and its file removal) are removed first."""
        with self.db.transaction():
            self.backend.forget_stream_storage(info.name)
            self.keys.forget(info.name)
            self.db.insert_stream(info)
            for shard in info.shards:
                self.db.insert_shard(info.name, shard)
            if tags:
                self.db.set_tags(info.name, tags)
            self._streams[info.name] = info

    def remove_stream(self, info: StreamInfo) -> None:
        """Delete a stream: wait for its writers, commit the deletion, then remove its
        logs and key. Readers that still hold an iterator get ResourceNotFound."""
        with self.stream_lock(info.name).write():
            if self._streams.get(info.name) is not info:
                return  # removed by another thread meanwhile (or replaced: settled later)
            with self.db.transaction():
                self.db.delete_stream(info.name)
                del self._streams[info.name]
            with self._logs_lock:
                for shard in info.shards:
                    log = self._logs.pop((info.name, shard.number), None)
                    if log is None:
                        self.backend.delete_log(info.name, shard.number)
                    else:
                        log.delete()
            self.keys.forget(info.name)
            self._stream_locks.pop(info.name, None)

    def remove_shard(self, info: StreamInfo, shard: ShardInfo) -> None:
        """Delete a shard and its log (retention's end of an expired closed shard); the
        caller holds the stream's lock for writing."""
        with self._logs_lock:
            log = self._logs.pop((info.name, shard.number), None)
        if log is None:
            self.backend.delete_log(info.name, shard.number)
        else:
            log.delete()
        self.db.delete_shard(info.name, shard.number)
        info.shards.remove(shard)

    # ----------------------------------------------------------------- storage
    def log(self, stream: str, number: int) -> ShardLog:
        """The log of shard ``number`` of ``stream``, opened on first use."""
        key = (stream, number)
        log = self._logs.get(key)
        if log is None:
            with self._logs_lock:
                log = self._logs.get(key)
                if log is None:
                    log = self.backend.open_log(stream, number)
                    self._logs[key] = log
        return log

    def seal_log(self, stream: str, number: int) -> None:
        """No more appends to a shard being closed (a backend shared by several front
        ends refuses them from front ends that have not seen the change yet)."""
        self.backend.seal_log(self.log(stream, number))

    def stream_lock(self, name: str) -> ReadWriteLock:
        """The stream's lock: read for appending records, write for changing shards."""
        lock = self._stream_locks.get(name)
        if lock is None:
            lock = self._stream_locks.setdefault(name, ReadWriteLock())
        return lock

    def _remove_orphans(self) -> None:
        """Remove storage of streams the metadata no longer has (see the backend)."""
        self.backend.remove_orphans(set(self._streams))
