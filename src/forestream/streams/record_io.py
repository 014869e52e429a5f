"""Writing and reading records: PutRecord(s), shard iterators, GetRecords, retention.

A component of :class:`~forestream.streams.store.StreamStore` over the shared
:class:`~forestream.streams.catalog.StreamCatalog`. (Not to be confused with
:mod:`forestream.processing.records`, the dataflow engine's records.)

Writers hold the stream's lock for reading, so many appends run at once while resharding
and retention (which hold it for writing) wait; each shard's segment log orders and
group-commits the appends it gets.
"""

from __future__ import annotations

import bisect
import hashlib
import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from forestream.names import shorten

from .backend import ShardLog
from .batch import BatchResult, route_batch
from .catalog import StreamCatalog
from .crypto import seal, unseal
from .errors import InvalidArgumentError, KMSError, ResourceNotFoundError
from .hashing import (
    parse_hash_key,
    parse_sequence_number,
    partition_hash,
    sequence_base,
    sequence_number,
    shard_id,
)
from .hashing import shard_id as shard_name  # where a parameter is called shard_id
from .iterators import ShardIterators
from .metadata import ShardInfo, StreamInfo
from .segment_log import SegmentLog
from .throughput import ShardThrottle

if TYPE_CHECKING:
    import numpy.typing as npt
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from .batch import RecordBatch

MAX_GET_RECORDS = 10_000
MAX_GET_BYTES = 10 * 2**20
MAX_PUT_RECORDS_BYTES = 10 * 2**20
#: what :func:`.crypto.seal` puts before a record's data on a stream without encryption
_PLAIN = seal(b"", None, b"")


class RecordIO:
    """Record writes and reads, shard iterators and retention over ``catalog``."""

    def __init__(self, catalog: StreamCatalog) -> None:
        self.catalog = catalog
        self.iterators = ShardIterators(catalog.iterator_secret)
        self._throttles: dict[tuple[str, int], ShardThrottle] = {}
        self._throttles_lock = threading.Lock()

    # ------------------------------------------------------------------ writing
    def put_record(self, data: bytes, partition_key: str, stream_name: str | None = None,
                   stream_arn: str | None = None, explicit_hash_key: str | None = None,
                   sequence_number_for_ordering: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        self.catalog.require_writable(info)
        self._check_size(info, data, partition_key)
        if sequence_number_for_ordering is not None:
            # the record is to follow that number; each shard's log appends in order, so
            # records of one partition key always do: only the number's form is checked
            try:
                parse_sequence_number(sequence_number_for_ordering)
            except InvalidArgumentError:
                raise InvalidArgumentError(
                    f"ExclusiveMinimumSequenceNumber {sequence_number_for_ordering} used in "
                    f"PutRecord on stream {info.name} under account "
                    f"{self.catalog.settings.account} is invalid.") from None
        with self.catalog.stream_lock(info.name).read():
            self.catalog.require_writable(info)  # it may be going since (DeleteStream)
            shard = RoutingTable.of(info).route(partition_key, explicit_hash_key)
            self._throttle(info, shard.number).take_write(1, len(data) + len(partition_key))
            first, _ = self._append(info, shard.number,
                                    [(partition_key.encode("utf-8"), data)])
        return {"ShardId": shard_id(shard.number),
                "SequenceNumber": sequence_number(shard.number, first),
                "EncryptionType": info.encryption}

    def put_records(self, records: Sequence[Mapping[str, Any]], stream_name: str | None = None,
                    stream_arn: str | None = None) -> dict[str, Any]:
        """PutRecords: up to 500 records a call, so this is the hot path — one pass to
        check sizes and encode keys, one to route, one write per shard; with fsync the
        shards are all written before the first is waited for (a sync that another
        writer makes meanwhile covers these records too)."""
        info = self.catalog.resolve(stream_name, stream_arn)
        self.catalog.require_writable(info)
        limit = info.max_record_kib * 1024
        total = 0
        keys: list[bytes] = []
        for i, record in enumerate(records):
            key = record["PartitionKey"].encode("utf-8")
            size = len(record["Data"]) + len(key)
            if size > limit:
                self._check_size(info, record["Data"], record["PartitionKey"], index=i)
            total += size
            keys.append(key)
        if total > MAX_PUT_RECORDS_BYTES:
            raise InvalidArgumentError(f"PutRecords request size {total} bytes exceeds the "
                                       f"limit of {MAX_PUT_RECORDS_BYTES} bytes")
        results: list[dict[str, str] | None] = [None] * len(records)
        failed = 0
        with self.catalog.stream_lock(info.name).read():
            self.catalog.require_writable(info)
            encryption = info.encryption  # as the records are sealed (see _append)
            table = RoutingTable.of(info)
            by_shard: dict[int, list[int]] = {}
            for i, number in enumerate(table.route_keys(records, keys)):
                indexes = by_shard.get(number)
                if indexes is None:
                    by_shard[number] = [i]
                else:
                    indexes.append(i)
            pending = []
            for number, indexes in by_shard.items():
                accepted = indexes
                if self.catalog.settings.throughput_limits:
                    accepted = self._throttle(info, number).admit(
                        [len(records[i]["Data"]) + len(records[i]["PartitionKey"])
                         for i in indexes], indexes)
                    for i in set(indexes) - set(accepted):
                        failed += 1
                        results[i] = {
                            "ErrorCode": "ProvisionedThroughputExceededException",
                            "ErrorMessage": f"Rate exceeded for shard {shard_id(number)} in "
                                            f"stream {info.name} under account "
                                            f"{self.catalog.settings.account}."}
                if not accepted:
                    continue
                log = self.catalog.log(info.name, number)
                first, _ = self._append(info, number, [(keys[i], records[i]["Data"])
                                                       for i in accepted], log, durable=False)
                pending.append((log, number, first, accepted))
            for log, _number, first, accepted in pending:
                log.sync_through(first + len(accepted))
            for _log, number, first, accepted in pending:
                shard, base = shard_id(number), sequence_base(number) + first
                for k, i in enumerate(accepted):
                    results[i] = {"SequenceNumber": str(base + k), "ShardId": shard}
        return {"FailedRecordCount": failed, "Records": results,
                "EncryptionType": encryption}

    def put_batch(self, batch: RecordBatch, stream_name: str | None = None,
                  stream_arn: str | None = None) -> BatchResult:
        """:meth:`put_records` of a :class:`~.batch.RecordBatch`: the same checks in the
        same order, the same records stored, the same answer (:meth:`BatchResult.answer
        <.batch.BatchResult.answer>`); routing and framing done for the whole batch at
        once (:mod:`.batch`). Encrypted streams and throughput limits take the records
        one by one, through :meth:`put_records`."""
        info = self.catalog.resolve(stream_name, stream_arn)
        self.catalog.require_writable(info)
        if self.catalog.settings.throughput_limits:
            return self._one_by_one(batch, info.encryption, stream_name, stream_arn)
        sizes = batch.sizes()
        over = np.flatnonzero(sizes > info.max_record_kib * 1024)
        if over.size:
            i = int(over[0])
            self._check_size(info, batch.data_of(i), batch.key_of(i).decode("utf-8"),
                             index=i)
        total = int(sizes.sum())
        if total > MAX_PUT_RECORDS_BYTES:
            raise InvalidArgumentError(f"PutRecords request size {total} bytes exceeds the "
                                       f"limit of {MAX_PUT_RECORDS_BYTES} bytes")
        with self.catalog.stream_lock(info.name).read():
            self.catalog.require_writable(info)
            # read under the lock, which Start/StopStreamEncryption take to change it
            encryption = info.encryption
            if encryption == "NONE":
                table = RoutingTable.of(info)
                routed = route_batch(batch, table.shards)
                firsts = self._append_batch(info, batch, table, routed)
        if encryption != "NONE":  # sealed record by record (their keys and nonces)
            return self._one_by_one(batch, encryption, stream_name, stream_arn)
        return BatchResult(encryption, [s.number for s in table.shards], routed, firsts)

    def _one_by_one(self, batch: RecordBatch, encryption: str, stream_name: str | None,
                    stream_arn: str | None) -> BatchResult:
        """The batch stored through :meth:`put_records` (throughput limits, encrypted
        streams), its answer kept as the result's ``fallback``."""
        return BatchResult(encryption, [], None, {},
                           self.put_records(batch.records(), stream_name, stream_arn))

    def _append_batch(self, info: StreamInfo, batch: RecordBatch, table: RoutingTable,
                      routed: npt.NDArray[np.int64]) -> dict[int, int]:
        """Append a routed batch to its shards and wait for them to be durable (stream
        lock held); the first offset written in each shard, by shard index."""
        present, first_seen = np.unique(routed, return_index=True)
        pending = []
        firsts: dict[int, int] = {}
        for k in present[np.argsort(first_seen)].tolist():  # shards by first record
            number = table.shards[k].number
            indexes = np.flatnonzero(routed == k)
            log = self.catalog.log(info.name, number)
            if isinstance(log, SegmentLog):
                first, _ = log.append_batch(batch, indexes, durable=False,
                                            value_prefix=_PLAIN)
            else:
                first, _ = log.append([(batch.key_of(i), seal(batch.data_of(i), None, b""))
                                       for i in indexes.tolist()], durable=False)
            self.catalog.announce_records()
            pending.append((log, first + len(indexes)))
            firsts[k] = first
        for log, end in pending:
            log.sync_through(end)
        return firsts

    # ------------------------------------------------------------------ reading
    def get_shard_iterator(self, shard_id: str, shard_iterator_type: str,
                           stream_name: str | None = None, stream_arn: str | None = None,
                           starting_sequence_number: str | None = None,
                           timestamp: float | None = None) -> dict[str, Any]:
        catalog = self.catalog
        stream = catalog.requested_name(stream_name, stream_arn)
        number = catalog.shard_number(shard_id, stream)
        try:
            info = catalog.resolve(stream_name, stream_arn)
        except ResourceNotFoundError:  # Kinesis names the shard it looked for
            raise ResourceNotFoundError(
                f"Shard {shard_name(number)} in stream {stream} under account "
                f"{catalog.settings.account} does not exist") from None
        shard = catalog.shard(info, number)
        log = catalog.log(info.name, shard.number)
        kind = shard_iterator_type
        if starting_sequence_number is not None or kind in ("AT_SEQUENCE_NUMBER",
                                                            "AFTER_SEQUENCE_NUMBER"):
            if starting_sequence_number is None or kind not in ("AT_SEQUENCE_NUMBER",
                                                                "AFTER_SEQUENCE_NUMBER"):
                raise InvalidArgumentError(
                    "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
                    "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no "
                    f"StartingSequenceNumber. Request specified {kind} and "
                    f"{'no' if starting_sequence_number is None else 'also a'} "
                    "StartingSequenceNumber.")
            offset = self._offset_in(info, shard, starting_sequence_number)
            position = offset if kind == "AT_SEQUENCE_NUMBER" else offset + 1
        elif kind == "TRIM_HORIZON":
            position = log.start_offset
        elif kind == "LATEST":
            position = log.next_offset
        else:  # AT_TIMESTAMP
            if timestamp is None:
                raise InvalidArgumentError(
                    "Must specify timestampInMillis parameter for iterator of type "
                    "AT_TIMESTAMP. Current request has no timestamp parameter.")
            at_ms, now = int(timestamp * 1000), int(time.time() * 1000)
            if at_ms > now:
                raise InvalidArgumentError(
                    "The timestampInMillis parameter cannot be greater than the "
                    f"currentTimestampInMillis. timestampInMillis: {at_ms}, "
                    f"currentTimestampInMillis: {now}")
            position = log.offset_at_time(at_ms)
        return {"ShardIterator": self.iterators.encode(info.name, info.created_ms,
                                                       shard.number, position)}

    def _offset_in(self, info: StreamInfo, shard: ShardInfo, sequence: str) -> int:
        """The offset in ``shard`` that sequence number ``sequence`` names; Kinesis's
        InvalidArgument for a number of another shard, or none of this service's."""
        try:
            owner, offset = parse_sequence_number(sequence)
        except InvalidArgumentError:
            raise InvalidArgumentError(
                f"StartingSequenceNumber {sequence} used in GetShardIterator on shard "
                f"{shard_name(shard.number)} in stream {info.name} under account "
                f"{self.catalog.settings.account} is invalid.") from None
        if owner != shard.number:
            raise InvalidArgumentError(
                f"Invalid StartingSequenceNumber. It encodes {shard_name(owner)}, while it was "
                f"used in a call to a shard with {shard_name(shard.number)}")
        return offset

    def get_records(self, shard_iterator: str, limit: int | None = None,
                    stream_arn: str | None = None) -> dict[str, Any]:
        name, number, position, created = self.iterators.decode(shard_iterator)
        account = self.catalog.settings.account
        if stream_arn is not None and stream_arn != self.catalog.stream_arn(name):
            raise InvalidArgumentError(f"StreamARN {shorten(stream_arn)} is not the stream of "
                                       f"this shard iterator ({self.catalog.stream_arn(name)})")
        info = self.catalog.find(name)
        shard = next((s for s in info.shards if s.number == number), None) \
            if info is not None and info.created_ms == created else None
        if info is None or shard is None:  # the stream (or shard) has gone since
            raise ResourceNotFoundError(f"Shard {shard_id(number)} in stream {name} under "
                                        f"account {account} does not exist")
        log = self.catalog.log(name, number)
        stored = log.read(position, max_records=limit or MAX_GET_RECORDS,
                          max_bytes=MAX_GET_BYTES) if position < log.next_offset else []
        if stored:
            self._throttle(info, number).take_read(sum(len(r.value) for r in stored))
        keys = self.catalog.keys

        def cipher() -> AESGCM | None:  # asked only for encrypted records
            return keys.key_for(name)

        records = []
        for r in stored:
            try:
                data, encrypted = unseal(r.value, cipher, r.key)
            except KeyError as exc:
                raise KMSError(f"record {sequence_number(number, r.offset)} of stream {name} "
                               f"cannot be decrypted: {exc.args[0]}") from None
            records.append({"SequenceNumber": sequence_number(number, r.offset),
                            "ApproximateArrivalTimestamp": r.timestamp_ms / 1000.0,
                            "Data": data, "PartitionKey": r.key.decode("utf-8"),
                            "EncryptionType": "KMS" if encrypted else "NONE"})
        next_position = stored[-1].offset + 1 if stored else max(position, log.start_offset)
        behind = 0
        if stored and log.last_timestamp_ms is not None and next_position < log.next_offset:
            behind = max(0, log.last_timestamp_ms - stored[-1].timestamp_ms)
        # StreamName is for in-process callers (per-shard metrics); the wire omits it
        out: dict[str, Any] = {"Records": records, "MillisBehindLatest": behind,
                               "StreamName": name}
        if not shard.is_open and next_position > shard.last_offset:
            out["ChildShards"] = _child_shards(info, shard)
        else:
            out["NextShardIterator"] = self.iterators.encode(info.name, info.created_ms,
                                                             number, next_position)
        return out

    def continuation_sequence_number(self, shard_iterator: str) -> str:
        """The sequence number a SubscribeToShard event continues after: the one just
        before the iterator's position (its shard's first for a position at the start)."""
        _, number, position, _ = self.iterators.decode(shard_iterator)
        return sequence_number(number, max(position - 1, 0))

    def wait_for_records(self, positions: Mapping[str, Mapping[str, str | None]],
                         timeout: float) -> dict[str, list[str]]:
        """Until a shard named in ``positions`` ({stream: {shard id: the last sequence
        number read, or None for none yet}}) has records after that position, or
        ``timeout`` seconds: the shards that have, per stream (empty on time-out). A
        reader on the same machine waits here instead of polling."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            seen = self.catalog.arrivals
            ready = {stream: found for stream, shards in positions.items()
                     if (found := self._shards_with_records(stream, shards))}
            remaining = deadline - time.monotonic()
            if ready or remaining <= 0:
                return ready
            self.catalog.wait_for_arrival(seen, remaining)

    def records_behind(self, stream: str, shard_name: str, after: str | None) -> int:
        """How many records of a shard follow ``after`` (the last sequence number a reader
        has; None: it has read none, so every record kept): its lag in records."""
        info = self.catalog.resolve(stream, None)
        shard = self.catalog.shard(info, shard_name)
        log = self.catalog.log(info.name, shard.number)
        if after is None:
            position = log.start_offset
        else:
            owner, offset = parse_sequence_number(after)
            if owner != shard.number:
                raise InvalidArgumentError(
                    f"sequence number {shorten(after)} is not of shard {shard_name}")
            position = max(offset + 1, log.start_offset)
        return max(0, log.next_offset - position)

    def _shards_with_records(self, stream: str, shards: Mapping[str, str | None]
                             ) -> list[str]:
        return [shard for shard, after in shards.items()
                if self.records_behind(stream, shard, after) > 0]

    # ----------------------------------------------------------------- retention
    def enforce_retention(self) -> int:
        """Drop records older than each stream's retention and expired closed shards;
        return the number of records dropped."""
        dropped = 0
        now = int(time.time() * 1000)
        for info in self.catalog.streams():
            horizon = now - info.retention_hours * 3600 * 1000
            with self.catalog.stream_lock(info.name).write():
                for shard in list(info.shards):
                    log = self.catalog.log(info.name, shard.number)
                    dropped += log.delete_before(horizon)
                    expired = shard.closed_ms is not None and shard.closed_ms < horizon
                    if expired and log.start_offset >= log.next_offset:
                        self.catalog.remove_shard(info, shard)
        return dropped

    # ------------------------------------------------------------------ helpers
    def _append(self, info: StreamInfo, number: int, entries: list[tuple[bytes, bytes]],
                log: ShardLog | None = None, durable: bool = True) -> tuple[int, int]:
        """Seal (encrypt, if the stream is) and append (keys: UTF-8 bytes); (first offset,
        timestamp_ms). ``durable=False``: see :meth:`SegmentLog.append`."""
        cipher = self.catalog.keys.key_for(info.name) if info.encryption != "NONE" else None
        encoded = [(key, seal(data, cipher, key)) for key, data in entries]
        if log is None:
            log = self.catalog.log(info.name, number)
        appended = log.append(encoded, durable=durable)
        self.catalog.announce_records()
        return appended

    @staticmethod
    def _check_size(info: StreamInfo, data: bytes, key: str, index: int | None = None) -> None:
        size = len(data) + len(key.encode("utf-8"))
        limit = info.max_record_kib * 1024
        if size > limit:
            where = f"record {index}" if index is not None else "record"
            raise InvalidArgumentError(
                f"{where} is {size} bytes (data + partition key), above the stream's maximum "
                f"record size of {limit} bytes ({info.max_record_kib} KiB)")

    def _throttle(self, info: StreamInfo, number: int) -> ShardThrottle:
        key = (info.name, number)
        throttle = self._throttles.get(key)
        if throttle is None:
            settings = self.catalog.settings
            with self._throttles_lock:
                throttle = self._throttles.setdefault(key, ShardThrottle(
                    enabled=settings.throughput_limits, name=f"{shard_id(number)} in stream "
                    f"{info.name} under account {settings.account}"))
        return throttle


class RoutingTable(NamedTuple):
    """A stream's open shards by starting hash key, for bisecting hash keys."""

    shards: list[ShardInfo]
    starts: list[int]

    @classmethod
    def of(cls, info: StreamInfo) -> RoutingTable:
        shards = sorted(info.open_shards(), key=lambda s: s.start_hash)
        return cls(shards, [s.start_hash for s in shards])

    def route(self, partition_key: str, explicit_hash_key: str | None) -> ShardInfo:
        """The open shard a record goes to: the one whose hash key range holds its
        explicit hash key, else the MD5 of its partition key."""
        key = parse_hash_key(explicit_hash_key) if explicit_hash_key is not None else \
            partition_hash(partition_key)
        shards, starts = self
        i = bisect.bisect_right(starts, key) - 1
        if i < 0 or key > shards[i].end_hash:
            raise InvalidArgumentError(f"hash key {key} is not covered by an open shard")
        return shards[i]

    def route_keys(self, records: Sequence[Mapping[str, Any]], keys: list[bytes]
                   ) -> list[int]:
        """The shard number of each record (``keys``: their partition keys in UTF-8), as
        :meth:`route` finds them, in one pass."""
        shards, starts = self
        ends = [s.end_hash for s in shards]
        numbers = [s.number for s in shards]
        md5, from_bytes, find = hashlib.md5, int.from_bytes, bisect.bisect_right
        out = []
        for record, key in zip(records, keys, strict=True):
            explicit = record.get("ExplicitHashKey")
            point = parse_hash_key(explicit) if explicit is not None else \
                from_bytes(md5(key).digest(), "big")
            i = find(starts, point) - 1
            if i < 0 or point > ends[i]:
                raise InvalidArgumentError(f"hash key {point} is not covered by an open shard")
            out.append(numbers[i])
        return out


def _child_shards(info: StreamInfo, shard: ShardInfo) -> list[dict[str, Any]]:
    """GetRecords' ChildShards of a closed shard whose end a reader reached."""
    children = []
    for child in info.shards:
        if shard.number in (child.parent, child.adjacent_parent):
            parents = [shard_id(p) for p in (child.parent, child.adjacent_parent)
                       if p is not None]
            children.append({"ShardId": shard_id(child.number), "ParentShards": parents,
                             "HashKeyRange": {"StartingHashKey": str(child.start_hash),
                                              "EndingHashKey": str(child.end_hash)}})
    return children
