"""Kinesis source and sink: any Kinesis-API stream, a forestream server, or an in-process
:class:`~forestream.streams.store.StreamStore`.

The source reads every shard, follows resharding (a closed shard's children are read once
it is finished, so per-key order is kept) and checkpoints the last sequence number read
per shard. The sink writes with PutRecords and retries failed records; delivery is
at-least-once, and each record carries the id of the input it came from so readers can
drop duplicates after a replay.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
from botocore.config import Config

from forestream.config import client_credentials, client_region
from forestream.streams.errors import ResourceInUseError
from forestream.streams.store import StreamStore

from .kinesis_wire import KinesisWire
from .records import Record
from .sources import Source


def kinesis_client(endpoint_url: str | None = None, max_attempts: int = 10) -> Any:
    """A boto3 Kinesis client for the forestream server this code runs under.

    Application workers get the server's URL in ``FORESTREAM_ENDPOINT_URL``; outside a
    worker, pass ``endpoint_url`` (or set the variable). Credentials: see
    :func:`forestream.config.client_credentials`; placeholders when none are set (a server
    without credentials accepts any).
    """
    url = endpoint_url or os.environ.get("FORESTREAM_ENDPOINT_URL", "http://127.0.0.1:4567")
    key, secret = client_credentials()
    return boto3.client("kinesis", endpoint_url=url, region_name=client_region(),
                        aws_access_key_id=key or "local", aws_secret_access_key=secret or "local",
                        config=Config(retries={"max_attempts": max_attempts,
                                               "mode": "standard"}))


class KinesisApi:
    """The few Kinesis calls the connectors need; :func:`kinesis_api` picks the
    implementation for a target (a boto3 client, or an in-process StreamStore)."""

    def list_shards(self, stream: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def iterator(self, stream: str, shard: str, kind: str, sequence: str | None = None) -> str:
        raise NotImplementedError

    def get_records(self, iterator: str, limit: int) -> dict[str, Any]:
        raise NotImplementedError

    def put_records(self, stream: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        raise NotImplementedError

    def stream_names(self) -> list[str]:
        raise NotImplementedError

    def create_stream(self, stream: str, shards: int) -> None:
        """Create ``stream``; nothing if it exists already (another worker made it)."""
        raise NotImplementedError

    def stream_status(self, stream: str) -> str:
        raise NotImplementedError

    def target_key(self) -> object:
        """What identifies the target: sources on one target can wait together."""
        return ("api", id(self))

    def wait_for_records(self, positions: dict[str, dict[str, str | None]],
                         timeout: float) -> dict[str, list[str]] | None:
        """Wait (at most ``timeout`` seconds) until a shard in ``positions`` ({stream:
        {shard: last sequence number read, or None}}) has records after it: the shards
        that have, per stream. None when the target cannot wait (Kinesis has no such
        call; a forestream server and a StreamStore can), and the caller polls instead."""
        return None


def kinesis_api(target: Any) -> KinesisApi:
    """The :class:`KinesisApi` over ``target``: a :class:`StreamStore` is called in
    process; anything else is taken for a boto3 Kinesis client (any endpoint)."""
    if isinstance(target, KinesisApi):
        return target
    if isinstance(target, StreamStore):
        return StoreKinesis(target)
    return ClientKinesis(target)


class ClientKinesis(KinesisApi):
    """Through a boto3 Kinesis client (the wire API: PascalCase, pages of shards).

    GetRecords and PutRecords, the calls a running job makes all the time, go straight on
    the wire with the client's endpoint, region and credentials where the endpoint is
    plain HTTP (see :mod:`forestream.processing.kinesis_wire`); the rest through boto3."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.wire = KinesisWire.for_client(client)
        self._waiter: RecordWaiter | None = None
        self._can_wait = True  # until the endpoint proves it cannot

    def list_shards(self, stream: str) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        token = None
        while True:
            page = self.client.list_shards(NextToken=token) if token else \
                self.client.list_shards(StreamName=stream)
            shards += page["Shards"]
            token = page.get("NextToken")
            if not token:
                return shards

    def iterator(self, stream: str, shard: str, kind: str, sequence: str | None = None) -> str:
        args = {"StreamName": stream, "ShardId": shard, "ShardIteratorType": kind}
        if sequence is not None:
            args["StartingSequenceNumber"] = sequence
        return str(self.client.get_shard_iterator(**args)["ShardIterator"])

    def get_records(self, iterator: str, limit: int) -> dict[str, Any]:
        if self.wire is not None:
            return self.wire.get_records(iterator, limit)
        return dict(self.client.get_records(ShardIterator=iterator, Limit=limit))

    def put_records(self, stream: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        if self.wire is not None:
            return self.wire.put_records(stream, records)
        return dict(self.client.put_records(StreamName=stream, Records=records))

    def stream_names(self) -> list[str]:
        names: list[str] = []
        page = self.client.list_streams()
        while True:
            names += page["StreamNames"]
            if not page.get("HasMoreStreams") or not page["StreamNames"]:
                return names
            page = self.client.list_streams(ExclusiveStartStreamName=names[-1])

    def create_stream(self, stream: str, shards: int) -> None:
        with contextlib.suppress(self.client.exceptions.ResourceInUseException):
            self.client.create_stream(StreamName=stream, ShardCount=shards)

    def stream_status(self, stream: str) -> str:
        return str(self.client.describe_stream_summary(StreamName=stream)[
            "StreamDescriptionSummary"]["StreamStatus"])

    def wait_for_records(self, positions: dict[str, dict[str, str | None]],
                         timeout: float) -> dict[str, list[str]] | None:
        if not self._can_wait:
            return None
        if self._waiter is None:
            self._waiter = RecordWaiter.for_endpoint(
                str(getattr(self.client.meta, "endpoint_url", "") or ""))
            if self._waiter is None:
                self._can_wait = False
                return None
        ready = self._waiter.wait(positions, timeout)
        if self._waiter.refused:
            self._can_wait = False
            self._waiter.close()
        return ready

    def target_key(self) -> object:
        return ("endpoint", getattr(self.client.meta, "endpoint_url", None))


class StoreKinesis(KinesisApi):
    """In process, on a :class:`StreamStore` (its Python API: snake_case, all shards)."""

    def __init__(self, store: StreamStore) -> None:
        self.store = store

    def list_shards(self, stream: str) -> list[dict[str, Any]]:
        return list(self.store.list_shards(stream_name=stream)["Shards"])

    def iterator(self, stream: str, shard: str, kind: str, sequence: str | None = None) -> str:
        return str(self.store.get_shard_iterator(
            stream_name=stream, shard_id=shard, shard_iterator_type=kind,
            starting_sequence_number=sequence)["ShardIterator"])

    def get_records(self, iterator: str, limit: int) -> dict[str, Any]:
        return self.store.get_records(shard_iterator=iterator, limit=limit)

    def put_records(self, stream: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self.store.put_records(stream_name=stream, records=records)

    def stream_names(self) -> list[str]:
        return self.store.stream_names()

    def create_stream(self, stream: str, shards: int) -> None:
        with contextlib.suppress(ResourceInUseError):
            self.store.create_stream(stream_name=stream, shard_count=shards)

    def stream_status(self, stream: str) -> str:
        return str(self.store.describe_stream_summary(stream_name=stream)[
            "StreamDescriptionSummary"]["StreamStatus"])

    def wait_for_records(self, positions: dict[str, dict[str, str | None]],
                         timeout: float) -> dict[str, list[str]] | None:
        return self.store.wait_for_records(positions, timeout)

    def target_key(self) -> object:
        return ("store", id(self.store))


class RecordWaiter:
    """Long-polls a forestream server's ``POST /api/v1/streams/wait`` over one kept-alive
    connection. Only for the server this worker runs under (``FORESTREAM_ENDPOINT_URL``)
    or one on this machine, so the access token never travels elsewhere; a server that
    refuses (an older one, a Kinesis endpoint that is not forestream) is not asked again.
    """

    PATH = "/api/v1/streams/wait"

    def __init__(self, endpoint: str, host: str, port: int) -> None:
        self.endpoint = endpoint
        self.host, self.port = host, port
        self.refused = False
        self._connection: http.client.HTTPConnection | None = None

    @classmethod
    def for_endpoint(cls, endpoint: str) -> RecordWaiter | None:
        parts = urllib.parse.urlsplit(endpoint)
        if parts.scheme != "http" or not parts.hostname:
            return None
        port = parts.port or 80
        own = urllib.parse.urlsplit(os.environ.get("FORESTREAM_ENDPOINT_URL", ""))
        mine = (own.hostname, own.port or 80) == (parts.hostname, port)
        if not mine and parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            return None
        return cls(endpoint.rstrip("/"), parts.hostname, port)

    def wait(self, positions: dict[str, dict[str, str | None]],
             timeout: float) -> dict[str, list[str]] | None:
        """The server's answer, or None when it could not be had (the caller sleeps)."""
        from forestream.rest_client import auth_headers

        body = json.dumps({"streams": positions,
                           "timeout_ms": int(max(0.0, timeout) * 1000)}).encode()
        headers = {"Content-Type": "application/json",
                   **auth_headers(self.endpoint, "POST", self.endpoint + self.PATH, body)}
        for attempt in (0, 1):  # a kept-alive connection the server closed: once more
            try:
                if self._connection is None:
                    self._connection = http.client.HTTPConnection(
                        self.host, self.port, timeout=timeout + 10)
                self._connection.request("POST", self.PATH, body, headers)
                response = self._connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    return None
                continue
            if response.status != 200:
                # not found, not allowed, not understood: this server cannot wait
                self.refused = response.status in (401, 403, 404, 405, 400)
                return None
            try:
                return dict(json.loads(payload)["ready"])
            except (ValueError, KeyError, TypeError):
                self.refused = True
                return None
        return None

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None


def wait_for_input(sources: Sequence[Source], timeout: float, fallback: float) -> None:
    """Block until one of ``sources`` may have new records, at most ``timeout`` seconds.

    When every source is a :class:`KinesisSource` on one target that can wait (a
    forestream server, a StreamStore), the wait ends the moment a record arrives: a job
    reacts in milliseconds without polling. Otherwise (other sources, AWS itself, shards
    whose place is unknown) it sleeps ``fallback`` seconds, as a poller would.
    """
    positions: dict[str, dict[str, str | None]] = {}
    api: KinesisApi | None = None
    for source in sources:
        if not isinstance(source, KinesisSource) or (shards := source.wait_positions()) is None \
                or (api is not None and api.target_key() != source.api.target_key()):
            time.sleep(fallback)
            return
        api = source.api
        if shards:
            positions.setdefault(source.stream, {}).update(shards)
    if api is None or not positions or api.wait_for_records(positions, timeout) is None:
        time.sleep(fallback)


def read_records(target: Any, stream: str, limit: int = 10_000) -> Iterator[dict[str, Any]]:
    """Every record of ``stream`` now there, through ``target`` (a boto3 client or a
    StreamStore): shards oldest first, each read up to its current end.

    Yields the records as GetRecords returns them (``Data`` as bytes, ``PartitionKey``,
    ``SequenceNumber``, ``ApproximateArrivalTimestamp``); ``limit`` is the page size.
    Handy to check what a job wrote, in tests and notebooks.

    >>> import json, shutil, tempfile
    >>> from forestream.processing.kinesis_io import read_records
    >>> from forestream.streams.store import StreamStore
    >>> folder = tempfile.mkdtemp()
    >>> store = StreamStore(folder, fsync=False, status_delay=0.0)
    >>> store.create_stream("events", shard_count=1)
    {}
    >>> _ = store.put_records(stream_name="events", records=[
    ...     {"Data": json.dumps({"n": n}).encode(), "PartitionKey": "k"} for n in range(3)])
    >>> [json.loads(record["Data"]) for record in read_records(store, "events")]
    [{'n': 0}, {'n': 1}, {'n': 2}]
    >>> store.close()
    >>> shutil.rmtree(folder)
    """
    api = kinesis_api(target)
    shards = sorted(api.list_shards(stream), key=lambda s: int(
        s["SequenceNumberRange"]["StartingSequenceNumber"]))
    for shard in shards:
        iterator: str | None = api.iterator(stream, shard["ShardId"], "TRIM_HORIZON")
        while iterator:
            page = api.get_records(iterator, limit)
            yield from page["Records"]
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")


class KinesisSource(Source):
    """Reads a stream. ``start`` is ``TRIM_HORIZON`` or ``LATEST`` for shards with no
    checkpointed position. ``deserializer`` turns the record's bytes into the value
    (default: JSON). The record timestamp is the approximate arrival time (seconds).

    Usually made by ``env.from_kinesis(stream, target)``. ``target`` is a boto3 Kinesis
    client (AWS, a forestream server, any Kinesis-API endpoint) or an in-process
    :class:`~forestream.streams.store.StreamStore`. Every shard is a split with its own
    watermark; the last sequence number read per shard is checkpointed, so a restored
    job goes on after it. When a shard is split or merged, its children are read once
    it is read to its end, which keeps each partition key's records in order. A stream
    never ends: run the job with ``until=`` or ``max_seconds=`` (or stop it).

    Parameters
    ----------
    stream
        Name of the stream.
    target
        A boto3 Kinesis client or a StreamStore.
    start
        Where shards without a checkpointed position start: ``TRIM_HORIZON`` (the
        oldest record kept) or ``LATEST`` (records written from now on).
    deserializer
        ``deserializer(data: bytes) -> value``; default ``json.loads``.
    batch_limit
        Most records asked of a shard per GetRecords call.
    rediscover_seconds
        How often the shard list is read again, to find new shards.
    shards
        Read only these shards (a parallel worker's lease); the source then ends once
        they are closed and read to their end.

    Examples
    --------
    >>> import json, shutil, tempfile
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> from forestream.streams.store import StreamStore
    >>> folder = tempfile.mkdtemp()
    >>> store = StreamStore(folder, fsync=False, status_delay=0.0)
    >>> store.create_stream("clicks", shard_count=2)
    {}
    >>> clicks = [{"user": "ann", "page": "/"}, {"user": "bob", "page": "/a"},
    ...           {"user": "ann", "page": "/b"}]
    >>> _ = store.put_records(stream_name="clicks", records=[
    ...     {"Data": json.dumps(c).encode(), "PartitionKey": c["user"]} for c in clicks])
    >>> env = StreamExecutionEnvironment()
    >>> pages = (env.from_kinesis("clicks", store)
    ...          .map(lambda click: (click["user"], click["page"]))
    ...          .collect())
    >>> _ = env.execute(until=lambda: len(pages.values) >= 3, max_seconds=30)
    >>> sorted(pages.values)  # two shards: ordered per user, not overall
    [('ann', '/'), ('ann', '/b'), ('bob', '/a')]
    >>> store.close()
    >>> shutil.rmtree(folder)
    """

    name = "kinesis"

    def __init__(self, stream: str, target: Any, start: str = "TRIM_HORIZON",
                 deserializer: Callable[[bytes], Any] | None = None, batch_limit: int = 1000,
                 rediscover_seconds: float = 10.0, shards: set[str] | None = None) -> None:
        if start not in ("TRIM_HORIZON", "LATEST"):
            raise ValueError(f"start must be TRIM_HORIZON or LATEST, got {start!r}")
        self.stream = stream
        # Only these shards (a parallel worker's lease); the source is then bounded: it
        # finishes when they are closed and fully read.
        self.only = set(shards) if shards is not None else None
        self.bounded = self.only is not None
        self.api = kinesis_api(target)
        self.start = start
        self.deserializer = deserializer or (lambda data: json.loads(data))
        self.batch_limit = batch_limit
        self.rediscover_seconds = rediscover_seconds
        self.positions: dict[str, str] = {}  # shard -> last sequence number read
        self.finished_shards: set[str] = set()
        self._iterators: dict[str, str | None] = {}
        self._parents: dict[str, list[str]] = {}
        self._next_discovery = 0.0
        self._turn = 0
        self.millis_behind: dict[str, int] = {}  # per shard, from the last GetRecords

    def open(self) -> None:
        self._discover()

    def poll(self, max_records: int) -> list[tuple[str, Record]]:
        if time.monotonic() >= self._next_discovery:
            self._discover()
        out: list[tuple[str, Record]] = []
        readable = [s for s in sorted(self._iterators) if self._ready(s)]
        if not readable:
            return out
        self._turn = (self._turn + 1) % len(readable)
        for shard in readable[self._turn:] + readable[:self._turn]:
            if len(out) >= max_records:
                break
            out += self._read(shard, min(self.batch_limit, max_records - len(out)))
        return out

    def splits(self) -> list[str]:
        return [s for s in self._iterators if self._ready(s)]

    def read_positions(self) -> dict[str, str | None]:
        """Per shard being read, the last sequence number read (None: nothing yet, from
        the shard's start); shards started at LATEST with nothing read are left out. The
        server turns these into the job's lag in records."""
        positions = dict(self.positions)  # a status thread may ask while the job reads
        return {shard: positions.get(shard) for shard in list(self._iterators)
                if shard in positions or self.start == "TRIM_HORIZON"}

    def wait_positions(self) -> dict[str, str | None] | None:
        """Per shard being read, the last sequence number read (None: nothing yet, so
        any record is new): what :func:`wait_for_input` waits on. None when a shard's
        place cannot be told (started at LATEST, nothing read yet)."""
        out: dict[str, str | None] = {}
        for shard in self._iterators:
            if not self._ready(shard):
                continue
            if shard in self.positions:
                out[shard] = self.positions[shard]
            elif self.start == "TRIM_HORIZON":
                out[shard] = None
            else:
                return None
        return out

    def finished(self) -> bool:
        return self.only is not None and self.only <= self.finished_shards

    def snapshot(self) -> dict[str, Any]:
        return {"positions": dict(self.positions), "finished": sorted(self.finished_shards)}

    def restore(self, state: dict[str, Any]) -> None:
        self.positions = dict(state["positions"])
        self.finished_shards = set(state["finished"])
        self._iterators = {}
        self._discover()

    # ------------------------------------------------------------------ helpers
    def _discover(self) -> None:
        self._next_discovery = time.monotonic() + self.rediscover_seconds
        for shard in self.api.list_shards(self.stream):
            sid = shard["ShardId"]
            self._parents[sid] = [p for p in (shard.get("ParentShardId"),
                                              shard.get("AdjacentParentShardId")) if p]
            if self.only is not None and sid not in self.only:
                continue
            if sid not in self._iterators and sid not in self.finished_shards:
                self._iterators[sid] = None  # opened lazily, once its parents are done

    def _ready(self, shard: str) -> bool:
        if self.only is not None:
            return True  # the lease table already waited for the parents
        known = self._parents.get(shard, [])
        return all(p in self.finished_shards or p not in self._parents for p in known)

    def _iterator_for(self, shard: str) -> str:
        if shard in self.positions:
            return self.api.iterator(self.stream, shard, "AFTER_SEQUENCE_NUMBER",
                                     self.positions[shard])
        kind = self.start if not self._parents.get(shard) else "TRIM_HORIZON"
        return self.api.iterator(self.stream, shard, kind)

    def _read(self, shard: str, limit: int) -> list[tuple[str, Record]]:
        iterator = self._iterators.get(shard) or self._iterator_for(shard)
        try:
            page = self.api.get_records(iterator, limit)
        except Exception as exc:  # an expired iterator: reopen from the position
            if "Expired" not in type(exc).__name__ and "Expired" not in str(exc):
                raise
            page = self.api.get_records(self._iterator_for(shard), limit)
        self.millis_behind[shard] = int(page.get("MillisBehindLatest", 0))
        out: list[tuple[str, Record]] = []
        for r in page["Records"]:
            seq = r["SequenceNumber"]
            stamp = r["ApproximateArrivalTimestamp"]
            stamp = stamp.timestamp() if hasattr(stamp, "timestamp") else float(stamp)
            out.append((shard, Record(self.deserializer(r["Data"]), stamp, None,
                                      f"{shard}@{seq}")))
            self.positions[shard] = seq
        if page.get("NextShardIterator"):
            self._iterators[shard] = page["NextShardIterator"]
        elif "NextShardIterator" not in page:  # closed and fully read: move to children
            self.finished_shards.add(shard)
            self._iterators.pop(shard, None)
            for child in page.get("ChildShards", []):
                self._parents.setdefault(child["ShardId"], child.get("ParentShards", []))
                if self.only is not None:
                    continue  # children are leased separately
                if child["ShardId"] not in self.finished_shards:
                    self._iterators.setdefault(child["ShardId"], None)
        return out


class KinesisSink:
    """Writes values (JSON by default) to a stream with PutRecords, retrying failures.

    ``partition_key(value)`` picks the key (default: the record's key, else its id).
    Dict values get ``"_record_id"`` (the input's provenance id) unless
    ``record_ids=False``: after a restart from a checkpoint some records are written again
    with the same id, and readers drop duplicates by it.

    Usually made by ``stream.sink_to_kinesis(stream_name, target)``. ``target`` is a boto3
    Kinesis client or an in-process :class:`~forestream.streams.store.StreamStore`.
    Records are written in batches of up to 500; records that PutRecords reports as
    failed are retried with backoff, up to ``max_attempts`` times. ``written`` counts the
    records written (it is part of the checkpointed state).

    Parameters
    ----------
    stream
        Name of the stream to write to (it must exist).
    target
        A boto3 Kinesis client or a StreamStore.
    partition_key
        ``partition_key(value) -> str``; default: the record's key (after ``key_by``),
        else its id.
    serializer
        ``serializer(value) -> bytes``; default: JSON (``str()`` for what JSON cannot
        represent).
    record_ids
        Add ``"_record_id"`` to dict values.
    max_attempts
        Attempts per batch before the job fails.

    Examples
    --------
    >>> import json, shutil, tempfile
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> from forestream.processing.kinesis_io import read_records
    >>> from forestream.streams.store import StreamStore
    >>> folder = tempfile.mkdtemp()
    >>> store = StreamStore(folder, fsync=False, status_delay=0.0)
    >>> store.create_stream("alerts", shard_count=1)
    {}
    >>> env = StreamExecutionEnvironment()
    >>> sink = (env.from_collection([{"host": "h1", "cpu": 97}, {"host": "h2", "cpu": 99}])
    ...         .sink_to_kinesis("alerts", store, partition_key=lambda alert: alert["host"]))
    >>> _ = env.execute()
    >>> sink.written
    2
    >>> for record in read_records(store, "alerts"):
    ...     print(record["PartitionKey"], json.loads(record["Data"]))
    h1 {'host': 'h1', 'cpu': 97, '_record_id': 'collection@0'}
    h2 {'host': 'h2', 'cpu': 99, '_record_id': 'collection@1'}
    >>> store.close()
    >>> shutil.rmtree(folder)
    """

    def __init__(self, stream: str, target: Any, partition_key: Callable[[Any], Any] | None = None,
                 serializer: Callable[[Any], bytes] | None = None,
                 record_ids: bool = True, max_attempts: int = 8) -> None:
        self.stream = stream
        self.api = kinesis_api(target)
        self.partition_key = partition_key
        self.serializer = serializer or (lambda v: json.dumps(v, default=str).encode())
        self.record_ids = record_ids
        self.max_attempts = max_attempts
        self.written = 0
        # set by a driver that runs several runners in one process (see PutBatcher)
        self.batcher: PutBatcher | None = None

    def open(self) -> None:
        pass

    def write(self, records: list[Record]) -> None:
        entries: list[dict[str, Any]] = []
        for r in records:
            value = r.value
            if self.record_ids and isinstance(value, dict):
                value = {**value, "_record_id": r.rid}
            key = self.partition_key(r.value) if self.partition_key else \
                (str(r.key) if r.key is not None else r.rid)
            entries.append({"Data": self.serializer(value), "PartitionKey": str(key)[:256]})
        if self.batcher is not None:
            self.batcher.add(self, entries)
            return
        for start in range(0, len(entries), 500):
            self._put(entries[start : start + 500])

    def _put(self, batch: list[dict[str, Any]]) -> None:
        delay = 0.05
        for _ in range(self.max_attempts):
            out = self.api.put_records(self.stream, batch)
            if out["FailedRecordCount"] == 0:
                self.written += len(batch)
                return
            failed = [entry for entry, result in zip(batch, out["Records"], strict=True)
                      if "ErrorCode" in result]
            self.written += len(batch) - len(failed)
            batch = failed
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise RuntimeError(f"{len(batch)} record(s) could not be written to {self.stream} "
                           f"after {self.max_attempts} attempts")

    def flush(self) -> None:
        if self.batcher is not None:
            self.batcher.flush()

    def close(self) -> None:
        pass

    def snapshot(self) -> dict[str, Any]:
        return {"written": self.written}

    def restore(self, state: dict[str, Any]) -> None:
        self.written = state["written"]


class PutBatcher:
    """PutRecords shared by the Kinesis sinks of several runners in one process.

    A worker that runs every key group of a job in memory has a sink per key group; each
    would send its few records of a step in a call of its own. Sinks given a batcher
    leave their entries here instead, and the worker hands them over between key groups
    and at the end of each step (:meth:`flush` with ``wait=False``). One sender thread
    writes them in the order they were handed over: one call per stream and 500 records,
    everything that queued while the previous call was out going in the next one. The
    worker never waits for the network on its way to the next step; :meth:`wait` returns
    once everything handed over is written — the worker waits before every checkpoint
    (what a checkpoint covers is written before it completes, as a sink's own flush
    guarantees) and at the end."""

    def __init__(self) -> None:
        self._pending: list[tuple[KinesisSink, list[dict[str, Any]]]] = []
        self._queue: list[tuple[KinesisSink, list[dict[str, Any]]]] = []
        self._changed = threading.Condition()
        self._busy = False
        self._sender: threading.Thread | None = None
        self._error: BaseException | None = None

    def add(self, sink: KinesisSink, entries: list[dict[str, Any]]) -> None:
        self._pending.append((sink, entries))

    def flush(self, wait: bool = True) -> None:
        """Hand what the sinks left over to the sender (``wait``: and return once it and
        everything before it is written). Raises what an earlier send raised."""
        self._raise_failure()
        pending, self._pending = self._pending, []
        if pending:
            with self._changed:
                self._queue.extend(pending)
                self._changed.notify_all()
            if self._sender is None:
                self._sender = threading.Thread(target=self._run, name="sink-puts",
                                                daemon=True)
                self._sender.start()
        if wait:
            self.wait()

    def send_if_idle(self) -> None:
        """Hand over what is pending (a worker calls this between key groups, so their
        records go out while it processes the next ones, not at the end of the step)."""
        if self._pending:
            self.flush(wait=False)

    def wait(self) -> None:
        """Until everything handed over is written; raises what a send raised."""
        with self._changed:
            while (self._queue or self._busy) and self._error is None:
                self._changed.wait()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._queue:
                    self._changed.wait()
                batch, self._queue = self._queue, []
                self._busy = True
            try:
                self._send(batch)
            except BaseException as exc:  # raised on the worker's thread by wait()/flush()
                with self._changed:
                    self._error = exc
                    self._queue = []  # a failed write ends the worker: nothing after it
            finally:
                with self._changed:
                    self._busy = False
                    self._changed.notify_all()

    def _send(self, pending: list[tuple[KinesisSink, list[dict[str, Any]]]]) -> None:
        by_stream: dict[tuple[int, str], list[tuple[KinesisSink, dict[str, Any]]]] = {}
        for sink, entries in pending:
            group = by_stream.setdefault((id(sink.api), sink.stream), [])
            group.extend((sink, entry) for entry in entries)
        for items in by_stream.values():
            for start in range(0, len(items), 500):
                chunk = items[start : start + 500]
                first = chunk[0][0]
                first._put([entry for _, entry in chunk])
                first.written -= len(chunk)  # _put counted them all on the first sink
                for sink, _ in chunk:
                    sink.written += 1
