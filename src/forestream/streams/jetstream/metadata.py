"""Stream metadata in a JetStream key-value bucket, shared by every front end.

One key per stream (``stream.<name>``) holds a JSON document: the stream's settings, its
shards (hash ranges, lineage, closing), tags and registered consumers. Every front end
keeps a mirror of the bucket, kept current by a watch, and the catalog reloads from it
when it changed — a stream created through one front end is visible through another at
once.

Writes are compare-and-set on the document's revision: a change is applied to the
document as this front end last saw it, and if another front end changed it meanwhile
(two SplitShards of one shard, a delete racing an update) the write is refused and the
request answered with ``ResourceInUseException``, as Kinesis answers concurrent
updates. A transaction (``with db.transaction():``) stages its changes and writes each
touched document once, at the end.

The same interface as :class:`forestream.streams.metadata.MetadataDB`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from types import TracebackType
from typing import Any, Literal

from ..errors import ResourceInUseError, ResourceNotFoundError
from ..metadata import ConsumerInfo, ShardInfo, StreamInfo
from .bridge import ClusterUnavailableError, NatsBridge

STREAM_PREFIX = "stream."


def _key(name: str) -> str:
    # KV keys allow letters, digits, '-', '_', '/', '=', '.'; Kinesis names fit
    return STREAM_PREFIX + name


def _doc_to_info(doc: dict[str, Any]) -> StreamInfo:
    info = StreamInfo(**{k: v for k, v in doc["stream"].items() if k != "shards"})
    info.shards = [ShardInfo(**{**s, "start_hash": int(s["start_hash"]),
                                "end_hash": int(s["end_hash"])}) for s in doc["shards"]]
    return info


def _info_to_doc(info: StreamInfo, base: dict[str, Any] | None) -> dict[str, Any]:
    stream = {k: v for k, v in asdict(info).items() if k != "shards"}
    return {"stream": stream,
            "shards": (base or {}).get("shards", []),
            "tags": (base or {}).get("tags", {}),
            "consumers": (base or {}).get("consumers", [])}


class KvMetadata:
    """Stream metadata in the bucket ``<namespace>-meta`` (see the module doc)."""

    def __init__(self, bridge: NatsBridge, namespace: str, replicas: int = 1) -> None:
        self.bridge = bridge
        self.bucket_name = f"{namespace}-meta"
        self.lock = threading.RLock()
        self._version = 0  # bumped whenever the mirror changes (watch or own writes)
        # the watch runs on the connection's loop, which must never wait for ``lock``
        # (a writer holds it while waiting on the loop): it only queues what it sees
        self._seen: collections.deque[Any] = collections.deque()
        self._mirror: dict[str, tuple[int, dict[str, Any]]] = {}  # key -> (revision, doc)
        self._ready = threading.Event()
        self._staged: dict[str, dict[str, Any] | None] | None = None  # in a transaction
        self._base: dict[str, int] = {}  # key -> revision the transaction started from
        self.depth = 0
        self.kv = bridge.call(self._open_bucket(replicas))
        self._watch_task = bridge.call(self._start_watch())
        if not self._ready.wait(20):
            raise ClusterUnavailableError("the metadata bucket's watch did not start")

    async def _open_bucket(self, replicas: int) -> Any:
        from nats.js.api import KeyValueConfig, StorageType
        from nats.js.errors import BucketNotFoundError

        js = self.bridge.js
        try:
            return await js.key_value(self.bucket_name)
        except BucketNotFoundError:
            return await js.create_key_value(KeyValueConfig(
                bucket=self.bucket_name, history=1, replicas=replicas,
                storage=StorageType.FILE, description="forestream stream metadata"))

    async def _start_watch(self) -> asyncio.Task[None]:
        watcher = await self.kv.watchall()

        async def follow() -> None:
            async for entry in watcher:
                if entry is None:  # the initial values are all in
                    self._ready.set()
                    continue
                self._seen.append(entry)
        return asyncio.get_running_loop().create_task(follow())

    @property
    def version(self) -> int:
        """Changes whenever the streams' metadata changed (here or on another front end)."""
        with self.lock:
            self._catch_up()
            return self._version

    def _catch_up(self) -> None:
        """Apply what the watch saw (the lock held)."""
        while self._seen:
            entry = self._seen.popleft()
            if not entry.key.startswith(STREAM_PREFIX):
                continue  # secrets and wrapped keys: read when needed (get_value)
            key, revision = entry.key, int(entry.revision)
            known = self._mirror.get(key)
            if known is not None and known[0] >= revision:
                continue
            if entry.operation in ("DEL", "PURGE") or entry.value is None:
                if self._mirror.pop(key, None) is not None:
                    self._version += 1
                continue
            self._mirror[key] = (revision, json.loads(entry.value))
            self._version += 1

    def close(self) -> None:
        async def stop() -> None:
            self._watch_task.cancel()
        with contextlib.suppress(Exception):
            self.bridge.call(stop(), timeout=5)

    # ------------------------------------------------------------------- reads
    def load_streams(self) -> dict[str, StreamInfo]:
        with self.lock:
            self._catch_up()
            return {key[len(STREAM_PREFIX):]: _doc_to_info(doc)
                    for key, (_, doc) in self._mirror.items() if key.startswith(STREAM_PREFIX)}

    def _doc(self, name: str) -> dict[str, Any] | None:
        self._catch_up()
        key = _key(name)
        if self._staged is not None and key in self._staged:
            return self._staged[key]
        known = self._mirror.get(key)
        return json.loads(json.dumps(known[1])) if known is not None else None

    def tags(self, stream: str) -> dict[str, str]:
        with self.lock:
            doc = self._doc(stream)
            return dict(sorted((doc or {}).get("tags", {}).items()))

    def consumers(self, stream: str) -> list[ConsumerInfo]:
        with self.lock:
            doc = self._doc(stream)
            rows = sorted((doc or {}).get("consumers", []), key=lambda c: (c[1], c[0]))
            return [ConsumerInfo(*row) for row in rows]

    # ------------------------------------------------------------------ writes
    def transaction(self) -> _KvTransaction:
        return _KvTransaction(self)

    def _change(self, name: str, edit: Any, *, create: bool = False,
                delete: bool = False) -> None:
        """Apply ``edit(doc) -> doc`` to a stream's document (in the transaction, or
        written at once)."""
        with self.lock:
            key = _key(name)
            if self._staged is None:
                with self.transaction():
                    self._change(name, edit, create=create, delete=delete)
                return
            if key not in self._base:
                known = self._mirror.get(key)
                self._base[key] = known[0] if known is not None else 0
            doc = self._doc(name)
            if create:
                if doc is not None:
                    raise ResourceInUseError(f"Stream {name} under this account already "
                                             "exists.")
                doc = {"stream": {}, "shards": [], "tags": {}, "consumers": []}
            elif doc is None:  # deleted through another front end meanwhile
                raise ResourceNotFoundError(f"Stream {name} not found.")
            self._staged[key] = None if delete else edit(doc)

    def _commit(self, staged: dict[str, dict[str, Any] | None], base: dict[str, int]
                ) -> None:
        """Write the staged documents (the lock held; the writes run on the loop, which
        never takes the lock)."""
        for key, doc in staged.items():
            try:
                new_revision = self.bridge.call(self._write(key, doc, base.get(key, 0)))
            except ResourceInUseError:
                self._version += 1  # the catalog reloads what it changed in place
                raise
            if new_revision is None:
                if self._mirror.pop(key, None) is not None:
                    self._version += 1
            elif doc is not None:
                known = self._mirror.get(key)
                if known is None or known[0] < new_revision:
                    self._mirror[key] = (new_revision, doc)
                    self._version += 1

    async def _write(self, key: str, doc: dict[str, Any] | None, revision: int
                     ) -> int | None:
        from nats.js.errors import KeyWrongLastSequenceError

        name = key[len(STREAM_PREFIX):]
        try:
            if doc is None:
                await self.kv.delete(key, last=revision or None)
                return None
            if revision == 0:
                return int(await self.kv.create(key, json.dumps(doc).encode()))
            return int(await self.kv.update(key, json.dumps(doc).encode(), last=revision))
        except KeyWrongLastSequenceError:
            if revision == 0:
                raise ResourceInUseError(f"Stream {name} under this account already "
                                         "exists.") from None
            raise ResourceInUseError(f"stream {name} was changed by another request at the "
                                     "same time; retry") from None

    def insert_stream(self, s: StreamInfo) -> None:
        self._change(s.name, lambda doc: _info_to_doc(s, doc) | {"shards": []}, create=True)

    def update_stream(self, s: StreamInfo) -> None:
        self._change(s.name, lambda doc: _info_to_doc(s, doc))

    def insert_shard(self, stream: str, sh: ShardInfo) -> None:
        row = {**asdict(sh), "start_hash": str(sh.start_hash), "end_hash": str(sh.end_hash)}

        def edit(doc: dict[str, Any]) -> dict[str, Any]:
            if any(s["number"] == sh.number for s in doc["shards"]):
                raise ResourceInUseError(f"shard {sh.number} of stream {stream} was created "
                                         "by another request at the same time; retry")
            doc["shards"] = sorted([*doc["shards"], row], key=lambda s: s["number"])
            return doc
        self._change(stream, edit)

    def close_shard(self, stream: str, sh: ShardInfo) -> None:
        def edit(doc: dict[str, Any]) -> dict[str, Any]:
            for s in doc["shards"]:
                if s["number"] == sh.number:
                    s["closed_ms"], s["ending_offset"] = sh.closed_ms, sh.ending_offset
            return doc
        self._change(stream, edit)

    def delete_shard(self, stream: str, number: int) -> None:
        def edit(doc: dict[str, Any]) -> dict[str, Any]:
            doc["shards"] = [s for s in doc["shards"] if s["number"] != number]
            return doc
        self._change(stream, edit)

    def delete_stream(self, name: str) -> None:
        self._change(name, lambda doc: doc, delete=True)

    def set_tags(self, stream: str, tags: Mapping[str, str]) -> None:
        def edit(doc: dict[str, Any]) -> dict[str, Any]:
            doc["tags"] = {**doc["tags"], **tags}
            return doc
        self._change(stream, edit)

    def remove_tags(self, stream: str, keys: Iterable[str]) -> None:
        gone = set(keys)

        def edit(doc: dict[str, Any]) -> dict[str, Any]:
            doc["tags"] = {k: v for k, v in doc["tags"].items() if k not in gone}
            return doc
        self._change(stream, edit)

    def insert_consumer(self, stream: str, name: str, created_ms: int, ready_ms: int) -> None:
        def edit(doc: dict[str, Any]) -> dict[str, Any]:
            if any(c[0] == name for c in doc["consumers"]):
                raise ResourceInUseError(f"consumer {name} of stream {stream} already exists")
            doc["consumers"] = [*doc["consumers"], [name, created_ms, ready_ms]]
            return doc
        self._change(stream, edit)

    def delete_consumer(self, stream: str, name: str) -> None:
        def edit(doc: dict[str, Any]) -> dict[str, Any]:
            doc["consumers"] = [c for c in doc["consumers"] if c[0] != name]
            return doc
        self._change(stream, edit)

    # ------------------------------------------------------- other shared values
    def refresh(self, name: str) -> bool:
        """Read stream ``name``'s document from the bucket itself, past the mirror: a
        stream created through another front end a moment ago may not have come through
        the watch yet, and a request naming it must not be told it does not exist.
        Whether the bucket holds it (the mirror knows it now: learnt here, or through the
        watch while the bucket was read, which the caller's view may not have seen)."""
        async def get() -> Any:
            from nats.js.errors import KeyNotFoundError
            try:
                return await self.kv.get(_key(name))
            except KeyNotFoundError:
                return None
        entry = self.bridge.call(get())
        if entry is None or not entry.value:
            return False
        with self.lock:
            self._catch_up()
            known = self._mirror.get(entry.key)
            if known is not None and known[0] >= int(entry.revision):
                return True  # the watch brought it meanwhile
            self._mirror[entry.key] = (int(entry.revision), json.loads(entry.value))
            self._version += 1
            return True

    def get_value(self, key: str) -> bytes | None:
        """A non-stream value of the bucket (secrets, wrapped keys), or None."""
        async def get() -> bytes | None:
            from nats.js.errors import KeyNotFoundError
            try:
                entry = await self.kv.get(key)
            except KeyNotFoundError:
                return None
            return bytes(entry.value) if entry.value else None
        return self.bridge.call(get())

    def create_value(self, key: str, value: bytes) -> bytes:
        """Store ``value`` under ``key`` unless there is one; the value that holds."""
        async def create() -> bytes:
            try:
                await self.kv.create(key, value)
                return value
            except Exception:  # noqa: BLE001 - someone else created it first: read theirs
                entry = await self.kv.get(key)
                return bytes(entry.value)
        return self.bridge.call(create())

    def delete_value(self, key: str) -> None:
        async def delete() -> None:
            with contextlib.suppress(Exception):
                await self.kv.delete(key)
        self.bridge.call(delete())


class _KvTransaction:
    def __init__(self, db: KvMetadata) -> None:
        self.db = db

    def __enter__(self) -> _KvTransaction:
        self.db.lock.acquire()
        if self.db.depth == 0:
            self.db._staged, self.db._base = {}, {}
        self.db.depth += 1
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> Literal[False]:
        try:
            self.db.depth -= 1
            if self.db.depth == 0:
                staged, base = self.db._staged or {}, self.db._base
                self.db._staged, self.db._base = None, {}
                if exc_type is None:
                    self.db._commit(staged, base)
        finally:
            self.db.lock.release()
        return False
