"""Writing and reading records: PutRecord(s), shard iterators, GetRecords, retention.

A mixin of :class:`forestream.streams.store.StreamStore`, which owns the state it uses.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import hmac
import json
import threading
import time

from forestream.names import shorten

from .crypto import seal, unseal
from .errors import (
    ExpiredIteratorError,
    InvalidArgumentError,
    KMSError,
    ResourceNotFoundError,
    ThroughputExceededError,
)
from .hashing import (
    parse_hash_key,
    parse_sequence_number,
    partition_hash,
    sequence_number,
    shard_id,
    shard_number,
)
from .metadata import ShardInfo, StreamInfo
from .throughput import ShardThrottle

ITERATOR_LIFETIME_MS = 5 * 60 * 1000
ITERATOR_PREFIX = b"\x00\x00\x00"
MAX_GET_RECORDS = 10_000
MAX_GET_BYTES = 10 * 2**20
MAX_PUT_RECORDS_BYTES = 10 * 2**20


class RecordOperations:
    def _init_records(self) -> None:
        self._throttles: dict[tuple[str, int], ShardThrottle] = {}
        self._throttles_lock = threading.Lock()

    # ------------------------------------------------------------------ writing
    def put_record(self, data: bytes, partition_key: str, stream_name: str | None = None,
                   stream_arn: str | None = None, explicit_hash_key: str | None = None,
                   sequence_number_for_ordering: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        self._check_size(info, data, partition_key)
        if sequence_number_for_ordering is not None:
            parse_sequence_number(sequence_number_for_ordering)
        with self._stream_lock(info.name).read():
            self._resolve(info.name, None)  # the stream may have gone while we waited
            shard = self._route(info, partition_key, explicit_hash_key)
            self._throttle(info, shard.number).take_write(1, len(data) + len(partition_key))
            first, _ = self._append(info, shard.number, [(partition_key, data)])
        return {"ShardId": shard_id(shard.number),
                "SequenceNumber": sequence_number(shard.number, first),
                "EncryptionType": info.encryption}

    def put_records(self, records: list[dict], stream_name: str | None = None,
                    stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        total = 0
        for i, record in enumerate(records):
            self._check_size(info, record["Data"], record["PartitionKey"], index=i)
            total += len(record["Data"]) + len(record["PartitionKey"].encode())
        if total > MAX_PUT_RECORDS_BYTES:
            raise InvalidArgumentError(f"PutRecords request size {total} bytes exceeds the "
                                       f"limit of {MAX_PUT_RECORDS_BYTES} bytes")
        results: list[dict | None] = [None] * len(records)
        failed = 0
        with self._stream_lock(info.name).read():
            self._resolve(info.name, None)
            by_shard: dict[int, list[int]] = {}
            table = self._routing_table(info)
            for i, record in enumerate(records):
                shard = self._route(info, record["PartitionKey"], record.get("ExplicitHashKey"),
                                    table)
                by_shard.setdefault(shard.number, []).append(i)
            for number, indexes in by_shard.items():
                accepted = indexes
                if self.throughput_limits:
                    accepted = self._throttle(info, number).admit(
                        [len(records[i]["Data"]) + len(records[i]["PartitionKey"])
                         for i in indexes], indexes)
                    for i in set(indexes) - set(accepted):
                        failed += 1
                        results[i] = {
                            "ErrorCode": "ProvisionedThroughputExceededException",
                            "ErrorMessage": f"Rate exceeded for shard {shard_id(number)} in "
                                            f"stream {info.name} under account "
                                            f"{self.account}."}
                if not accepted:
                    continue
                first, _ = self._append(info, number, [(records[i]["PartitionKey"],
                                                        records[i]["Data"]) for i in accepted])
                for k, i in enumerate(accepted):
                    results[i] = {"SequenceNumber": sequence_number(number, first + k),
                                  "ShardId": shard_id(number)}
        return {"FailedRecordCount": failed, "Records": results,
                "EncryptionType": info.encryption}

    # ------------------------------------------------------------------ reading
    def get_shard_iterator(self, shard_id: str, shard_iterator_type: str,
                           stream_name: str | None = None, stream_arn: str | None = None,
                           starting_sequence_number: str | None = None,
                           timestamp: float | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        shard = self._shard(info, shard_id)
        log = self._log(info.name, shard.number)
        kind = shard_iterator_type
        if kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
            if starting_sequence_number is None:
                raise InvalidArgumentError(f"StartingSequenceNumber is required for {kind}")
            owner, offset = parse_sequence_number(starting_sequence_number)
            if owner != shard.number:
                raise InvalidArgumentError(
                    f"StartingSequenceNumber {starting_sequence_number} used in "
                    f"GetShardIterator on shard {shard_id} in stream {info.name} under account "
                    f"{self.account} is invalid because it did not come from this stream.")
            position = offset if kind == "AT_SEQUENCE_NUMBER" else offset + 1
        elif kind == "TRIM_HORIZON":
            position = log.start_offset
        elif kind == "LATEST":
            position = log.next_offset
        else:  # AT_TIMESTAMP
            if timestamp is None:
                raise InvalidArgumentError("Timestamp is required for AT_TIMESTAMP")
            position = log.offset_at_time(int(timestamp * 1000))
        return {"ShardIterator": self._encode_iterator(info, shard.number, position)}

    def get_records(self, shard_iterator: str, limit: int | None = None,
                    stream_arn: str | None = None) -> dict:
        name, number, position, created = self._decode_iterator(shard_iterator)
        if stream_arn is not None and stream_arn != self.stream_arn(name):
            raise InvalidArgumentError(f"StreamARN {shorten(stream_arn)} is not the stream of "
                                       f"this shard iterator ({self.stream_arn(name)})")
        info = self._streams.get(name)
        if info is None or info.created_ms != created:
            raise ResourceNotFoundError(f"Stream {name} under account {self.account} not found.")
        shard = next((s for s in info.shards if s.number == number), None)
        if shard is None:
            raise ResourceNotFoundError(f"Shard {shard_id(number)} in stream {name} under "
                                        f"account {self.account} does not exist")
        log = self._log(name, number)
        stored = log.read(position, max_records=limit or MAX_GET_RECORDS,
                          max_bytes=MAX_GET_BYTES) if position < log.next_offset else []
        if stored:
            self._throttle(info, number).take_read(sum(len(r.value) for r in stored))
        def cipher():
            return self._keys.key_for(name)

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
        out = {"Records": records, "MillisBehindLatest": behind, "StreamName": name}
        if not shard.is_open and next_position > shard.ending_offset:
            out["ChildShards"] = self._child_shards(info, shard)
        else:
            out["NextShardIterator"] = self._encode_iterator(info, number, next_position)
        return out

    # ----------------------------------------------------------------- retention
    def continuation_sequence_number(self, shard_iterator: str) -> str:
        """The sequence number a SubscribeToShard event continues after: the one just
        before the iterator's position (its shard's first for a position at the start)."""
        _, number, position, _ = self._decode_iterator(shard_iterator)
        return sequence_number(number, max(position - 1, 0))

    def enforce_retention(self) -> int:
        """Drop records older than each stream's retention and expired closed shards;
        return the number of records dropped."""
        dropped = 0
        now = int(time.time() * 1000)
        for info in list(self._streams.values()):
            horizon = now - info.retention_hours * 3600 * 1000
            with self._stream_lock(info.name).write():
                for shard in list(info.shards):
                    log = self._log(info.name, shard.number)
                    dropped += log.delete_before(horizon)
                    expired = shard.closed_ms is not None and shard.closed_ms < horizon
                    if expired and log.start_offset >= log.next_offset:
                        with self._logs_lock:
                            self._logs.pop((info.name, shard.number), None)
                        log.delete()
                        self._db.delete_shard(info.name, shard.number)
                        info.shards.remove(shard)
        return dropped

    # ------------------------------------------------------------------ helpers
    def _append(self, info: StreamInfo, number: int, entries: list[tuple[str, bytes]]):
        cipher = self._keys.key_for(info.name) if info.encryption != "NONE" else None
        encoded = []
        for key, data in entries:
            k = key.encode("utf-8")
            encoded.append((k, seal(data, cipher, k)))
        return self._log(info.name, number).append(encoded)

    def _check_size(self, info: StreamInfo, data: bytes, key: str, index: int | None = None):
        size = len(data) + len(key.encode("utf-8"))
        limit = info.max_record_kib * 1024
        if size > limit:
            where = f"record {index}" if index is not None else "record"
            raise InvalidArgumentError(
                f"{where} is {size} bytes (data + partition key), above the stream's maximum "
                f"record size of {limit} bytes ({info.max_record_kib} KiB)")

    @staticmethod
    def _routing_table(info: StreamInfo) -> tuple[list[ShardInfo], list[int]]:
        shards = sorted(info.open_shards(), key=lambda s: s.start_hash)
        return shards, [s.start_hash for s in shards]

    def _route(self, info: StreamInfo, partition_key: str, explicit: str | None,
               table: tuple[list[ShardInfo], list[int]] | None = None) -> ShardInfo:
        key = parse_hash_key(explicit) if explicit is not None else partition_hash(partition_key)
        shards, starts = table or self._routing_table(info)
        i = bisect.bisect_right(starts, key) - 1
        if i < 0 or key > shards[i].end_hash:
            raise InvalidArgumentError(f"hash key {key} is not covered by an open shard")
        return shards[i]

    def _shard(self, info: StreamInfo, value: str) -> ShardInfo:
        number = shard_number(value)
        for shard in self._visible_shards(info):
            if shard.number == number:
                return shard
        raise ResourceNotFoundError(f"Shard {value} in stream {info.name} under account "
                                    f"{self.account} does not exist")

    def _visible_shards(self, info: StreamInfo) -> list[ShardInfo]:
        return sorted(info.shards, key=lambda s: s.number)

    def _filter_shards(self, info: StreamInfo, kind: str | None, value) -> list[ShardInfo]:
        shards = self._visible_shards(info)
        if kind == "AT_LATEST":
            return [s for s in shards if s.is_open]
        if kind == "AT_TRIM_HORIZON":
            present = {s.number for s in shards}
            return [s for s in shards if s.parent not in present and
                    s.adjacent_parent not in present]
        if kind == "AT_TIMESTAMP":
            return [s for s in shards if s.created_ms <= value and
                    (s.closed_ms is None or s.closed_ms > value)]
        if kind == "FROM_TIMESTAMP":
            return [s for s in shards if s.closed_ms is None or s.closed_ms > value]
        return shards  # None, FROM_TRIM_HORIZON, AFTER_SHARD_ID (applied by the caller)

    def _child_shards(self, info: StreamInfo, shard: ShardInfo) -> list[dict]:
        children = []
        for child in info.shards:
            if shard.number in (child.parent, child.adjacent_parent):
                parents = [shard_id(p) for p in (child.parent, child.adjacent_parent)
                           if p is not None]
                children.append({"ShardId": shard_id(child.number), "ParentShards": parents,
                                 "HashKeyRange": {"StartingHashKey": str(child.start_hash),
                                                  "EndingHashKey": str(child.end_hash)}})
        return children

    def _throttle(self, info: StreamInfo, number: int) -> ShardThrottle:
        key = (info.name, number)
        throttle = self._throttles.get(key)
        if throttle is None:
            with self._throttles_lock:
                throttle = self._throttles.setdefault(key, ShardThrottle(
                    enabled=self.throughput_limits, name=f"{shard_id(number)} in stream "
                    f"{info.name} under account {self.account}"))
        return throttle

    def _encode_iterator(self, info: StreamInfo, number: int, position: int) -> str:
        body = json.dumps([info.name, number, position, int(time.time() * 1000),
                           info.created_ms], separators=(",", ":")).encode()
        mac = hmac.new(self._iterator_secret, body, hashlib.sha256).digest()[:12]
        # The leading zero bytes make every iterator start with "AAAA" (as Kinesis's do),
        # never with "-", which command lines would take for an option.
        return base64.urlsafe_b64encode(ITERATOR_PREFIX + mac + body).decode()

    def _decode_iterator(self, token: str) -> tuple[str, int, int, int]:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
            if not raw.startswith(ITERATOR_PREFIX):
                raise ValueError("not an iterator of this service")
            raw = raw[len(ITERATOR_PREFIX):]
            mac, body = raw[:12], raw[12:]
            valid = hmac.compare_digest(
                mac, hmac.new(self._iterator_secret, body, hashlib.sha256).digest()[:12])
            name, number, position, issued, created = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError(f"Invalid ShardIterator {token[:64]!r}") from exc
        if not valid:
            raise InvalidArgumentError(f"Invalid ShardIterator {token[:64]!r}: not issued here")
        if int(time.time() * 1000) - issued > ITERATOR_LIFETIME_MS:
            raise ExpiredIteratorError(
                f"Iterator expired. The iterator was created at time {issued} while right now "
                f"it is {int(time.time() * 1000)} which is further in the future than the "
                f"tolerated delay of {ITERATOR_LIFETIME_MS} milliseconds.")
        return name, number, position, created


__all__ = ["RecordOperations", "ThroughputExceededError"]
