"""The stream store: Kinesis Data Streams operations as a Python library.

Every public method is one Kinesis API operation, takes the operation's members as
snake_case keyword arguments and returns the same dictionary that boto3 returns for
it, so in-process code and HTTP clients see one API. Streams may be named by
``stream_name`` or ``stream_arn`` wherever the API allows either.

Records are written by :mod:`forestream.streams.records` and resharding lives in
:mod:`forestream.streams.resharding`; this module holds the streams themselves, their
metadata, tags, consumers and settings.
"""

from __future__ import annotations

import os
import secrets
import shutil
import threading
from pathlib import Path

from .admin import AdminOperations
from .crypto import KeyStore
from .errors import (
    InvalidArgumentError,
    LimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
)
from .hashing import sequence_number, shard_id, uniform_ranges
from .metadata import MetadataDB, ShardInfo, StreamInfo, now_ms
from .records import RecordOperations
from .resharding import ReshardOperations
from .rwlock import ReadWriteLock
from .segment_log import SegmentLog
from .tokens import decode_token, encode_token

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
ON_DEMAND_SHARDS = 4
STREAM_DIR_PREFIX = "stream-"


class StreamStore(AdminOperations, RecordOperations, ReshardOperations):
    """Durable Kinesis-style streams under ``data_dir``.

    Parameters
    ----------
    data_dir
        Where metadata (``streams.db``), segment logs and encryption keys live.
    fsync
        Flush every acknowledged write to disk before acknowledging it.
    status_delay
        Seconds a stream stays CREATING / UPDATING after a change (AWS shows these
        states briefly; clients such as boto3's waiters poll through them).
    shard_limit
        Open shards allowed across all streams (DescribeLimits' ShardLimit).
    throughput_limits
        Enforce per-shard write limits (1 MiB/s and 1,000 records/s) and read limits,
        answering ProvisionedThroughputExceededException, for testing producers' retries.
    """

    def __init__(self, data_dir: str | Path, *, fsync: bool = True, status_delay: float = 0.3,
                 shard_limit: int = 500, on_demand_stream_limit: int = 50,
                 throughput_limits: bool = False, region: str = DEFAULT_REGION,
                 account: str = DEFAULT_ACCOUNT) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._lock_file = _lock_directory(self.data_dir)
        self.fsync = fsync
        self.status_delay_ms = int(status_delay * 1000)
        self.shard_limit = shard_limit
        self.on_demand_stream_limit = on_demand_stream_limit
        self.throughput_limits = throughput_limits
        self.region = region
        self.account = account
        self._db = MetadataDB(self.data_dir / "streams.db")
        self._streams: dict[str, StreamInfo] = self._db.load_streams()
        self._logs: dict[tuple[str, int], SegmentLog] = {}
        self._logs_lock = threading.Lock()
        self._stream_locks: dict[str, ReadWriteLock] = {}
        self._keys = KeyStore(self.data_dir / "keys")
        self._iterator_secret = _load_secret(self.data_dir / "iterator.key")
        self._init_records()
        self._closed = False
        self._remove_orphans()

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close every open log (idempotent)."""
        with self._logs_lock:
            for log in self._logs.values():
                log.close()
            self._logs.clear()
        if not self._closed:
            self._db.close()
            self._lock_file.close()  # releases the directory lock
            self._closed = True

    def __enter__(self) -> StreamStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- streams
    def create_stream(self, stream_name: str, shard_count: int | None = None,
                      stream_mode_details: dict | None = None, tags: dict | None = None,
                      warm_throughput_mi_bps: int | None = None,
                      max_record_size_in_ki_b: int | None = None) -> dict:
        mode = (stream_mode_details or {}).get("StreamMode", "PROVISIONED")
        if mode == "PROVISIONED" and shard_count is None:
            raise InvalidArgumentError("ShardCount is required for a PROVISIONED stream")
        count = shard_count if shard_count is not None else ON_DEMAND_SHARDS
        if count < 1:
            raise InvalidArgumentError(f"ShardCount {count} must be at least 1")
        with self._db.transaction():
            if stream_name in self._streams:
                raise ResourceInUseError(f"Stream {stream_name} under account {self.account} "
                                         "already exists.")
            if self.open_shard_count() + count > self.shard_limit:
                raise LimitExceededError(
                    f"creating {count} shards would exceed the shard limit of "
                    f"{self.shard_limit} (open now: {self.open_shard_count()})")
            on_demand = sum(s.mode == "ON_DEMAND" for s in self._streams.values())
            if mode == "ON_DEMAND" and on_demand >= self.on_demand_stream_limit:
                raise LimitExceededError(f"at most {self.on_demand_stream_limit} ON_DEMAND "
                                         "streams are allowed")
            # Files left by a stream of this name that was deleted just before a crash
            # are orphans: the metadata says the stream does not exist.
            shutil.rmtree(self._stream_dir(stream_name), ignore_errors=True)
            self._keys.forget(stream_name)
            now = now_ms()
            info = StreamInfo(stream_name, now, "CREATING", now + self.status_delay_ms, mode,
                              24, count, "NONE", None, max_record_size_in_ki_b or 1024, [])
            for number, (lo, hi) in enumerate(uniform_ranges(count)):
                info.shards.append(ShardInfo(number, None, None, lo, hi, now))
            self._db.insert_stream(info)
            for shard in info.shards:
                self._db.insert_shard(stream_name, shard)
            if tags:
                self._db.set_tags(stream_name, tags)
            self._streams[stream_name] = info
        return {}

    def delete_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                      enforce_consumer_deletion: bool = False) -> dict:
        info = self._resolve(stream_name, stream_arn)
        if self._db.consumers(info.name) and not enforce_consumer_deletion:
            raise ResourceInUseError(f"Stream {info.name} has registered consumers; pass "
                                     "EnforceConsumerDeletion=true to delete it with them")
        with self._stream_lock(info.name).write():
            with self._db.transaction():
                self._db.delete_stream(info.name)
                del self._streams[info.name]
            with self._logs_lock:
                for shard in info.shards:
                    log = self._logs.pop((info.name, shard.number), None)
                    if log is None:
                        log = SegmentLog(self._shard_dir(info.name, shard.number), fsync=False)
                    log.delete()
            self._keys.forget(info.name)
            self._stream_locks.pop(info.name, None)
        return {}

    def describe_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                        limit: int | None = None,
                        exclusive_start_shard_id: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        shards = self._visible_shards(info)
        if exclusive_start_shard_id is not None:
            after = _shard_number_or_invalid(exclusive_start_shard_id)
            shards = [s for s in shards if s.number > after]
        limit = limit or 100
        page = shards[:limit]
        description = self._summary(info)
        description.pop("OpenShardCount")
        description.pop("ConsumerCount", None)
        description["Shards"] = [self._describe_shard(info, s) for s in page]
        description["HasMoreShards"] = len(shards) > limit
        return {"StreamDescription": description}

    def describe_stream_summary(self, stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        return {"StreamDescriptionSummary": self._summary(info)}

    def list_streams(self, limit: int | None = None,
                     exclusive_start_stream_name: str | None = None,
                     next_token: str | None = None) -> dict:
        names = sorted(self._streams)
        start = exclusive_start_stream_name
        if next_token is not None:
            if start is not None:
                raise InvalidArgumentError("NextToken and ExclusiveStartStreamName cannot both "
                                           "be given")
            start = decode_token(next_token, "streams", lambda v: isinstance(v, str))
        if start is not None:
            names = [n for n in names if n > start]
        limit = limit or 100
        page = names[:limit]
        out = {"StreamNames": page, "HasMoreStreams": len(names) > limit,
               "StreamSummaries": [self._list_summary(self._streams[n]) for n in page]}
        if len(names) > limit:
            out["NextToken"] = encode_token("streams", page[-1])
        return out

    def list_shards(self, stream_name: str | None = None, stream_arn: str | None = None,
                    next_token: str | None = None, exclusive_start_shard_id: str | None = None,
                    max_results: int | None = None, stream_creation_timestamp: float | None = None,
                    shard_filter: dict | None = None) -> dict:
        if next_token is not None:
            # The token carries the stream, position and filter; paginators resend the
            # first call's arguments beside it, which is fine as long as they agree.
            name, after, filter_type, filter_value = decode_token(next_token, "shards",
                                                                  _shards_token_ok)
            info = self._resolve(name, None)
            if (stream_name or stream_arn) and \
                    self._resolve(stream_name, stream_arn).name != info.name:
                raise InvalidArgumentError(f"NextToken belongs to stream {info.name}, not "
                                           f"{stream_name or stream_arn}")
        else:
            info = self._resolve(stream_name, stream_arn)
            after = _shard_number_or_invalid(exclusive_start_shard_id) \
                if exclusive_start_shard_id else -1
            filter_type, filter_value = _parse_shard_filter(shard_filter)
            if filter_type == "AFTER_SHARD_ID":
                after = max(after, filter_value)
        shards = [s for s in self._filter_shards(info, filter_type, filter_value)
                  if s.number > after]
        limit = max_results or 1000
        page = shards[:limit]
        out = {"Shards": [self._describe_shard(info, s) for s in page]}
        if len(shards) > limit:
            out["NextToken"] = encode_token("shards", [info.name, page[-1].number, filter_type,
                                                        filter_value])
        return out

    # ----------------------------------------------------------------- helpers
    def _remove_orphans(self) -> None:
        """Delete log directories and keys of streams the metadata no longer has (a crash
        between DeleteStream's commit and its file removal leaves them)."""
        root = self.data_dir / "streams"
        if root.is_dir():
            for path in root.iterdir():
                name = path.name[len(STREAM_DIR_PREFIX):]
                if path.is_dir() and path.name.startswith(STREAM_DIR_PREFIX) and \
                        name not in self._streams:
                    shutil.rmtree(path, ignore_errors=True)
        keys = self.data_dir / "keys"
        if keys.is_dir():
            for path in keys.glob("*.key"):
                if path.stem not in self._streams:
                    path.unlink(missing_ok=True)

    def stream_arn(self, name: str) -> str:
        return f"arn:aws:kinesis:{self.region}:{self.account}:stream/{name}"

    def open_shard_count(self) -> int:
        return sum(len(s.open_shards()) for s in self._streams.values())

    def stream_names(self) -> list[str]:
        return sorted(self._streams)

    def _resolve(self, stream_name: str | None, stream_arn: str | None) -> StreamInfo:
        if stream_name is None and stream_arn is None:
            raise InvalidArgumentError("Either StreamName or StreamARN must be provided")
        if stream_arn is not None:
            prefix = f"arn:aws:kinesis:{self.region}:{self.account}:stream/"
            arn_name = stream_arn[len(prefix):].split("/")[0] \
                if stream_arn.startswith(prefix) else None
            if arn_name is None:
                raise ResourceNotFoundError(f"Stream {stream_arn} not found: ARNs here start "
                                            f"with {prefix}")
            if stream_name is not None and stream_name != arn_name:
                raise InvalidArgumentError(f"StreamName {stream_name} and StreamARN "
                                           f"{stream_arn} name different streams")
            stream_name = arn_name
        info = self._streams.get(stream_name)
        if info is None:
            raise ResourceNotFoundError(f"Stream {stream_name} under account {self.account} "
                                        "not found.")
        self._settle(info)
        return info

    def _settle(self, info: StreamInfo) -> None:
        if info.status != "ACTIVE" and now_ms() >= info.ready_ms:
            info.status = "ACTIVE"
            self._db.update_stream(info)

    def _require_active(self, info: StreamInfo) -> None:
        if info.status != "ACTIVE":
            raise ResourceInUseError(f"Stream {info.name} under account {self.account} not "
                                     f"ACTIVE, instead in state {info.status}")

    def _mark_updating(self, info: StreamInfo) -> None:
        info.status, info.ready_ms = "UPDATING", now_ms() + self.status_delay_ms
        self._db.update_stream(info)
        self._settle(info)

    def _summary(self, info: StreamInfo) -> dict:
        out = {
            "StreamName": info.name, "StreamARN": self.stream_arn(info.name),
            "StreamStatus": info.status, "StreamModeDetails": {"StreamMode": info.mode},
            "RetentionPeriodHours": info.retention_hours,
            "StreamCreationTimestamp": info.created_ms / 1000.0,
            "EnhancedMonitoring": [{"ShardLevelMetrics": list(info.metrics)}],
            "EncryptionType": info.encryption,
            "OpenShardCount": len(info.open_shards()),
            "ConsumerCount": len(self._db.consumers(info.name)),
            "MaxRecordSizeInKiB": info.max_record_kib,
        }
        if info.key_id:
            out["KeyId"] = info.key_id
        return out

    def _list_summary(self, info: StreamInfo) -> dict:
        self._settle(info)
        return {"StreamName": info.name, "StreamARN": self.stream_arn(info.name),
                "StreamStatus": info.status, "StreamModeDetails": {"StreamMode": info.mode},
                "StreamCreationTimestamp": info.created_ms / 1000.0}

    def _describe_shard(self, info: StreamInfo, shard: ShardInfo) -> dict:
        out = {"ShardId": shard_id(shard.number),
               "HashKeyRange": {"StartingHashKey": str(shard.start_hash),
                                "EndingHashKey": str(shard.end_hash)},
               "SequenceNumberRange": {
                   "StartingSequenceNumber": sequence_number(shard.number, 0)}}
        if shard.parent is not None:
            out["ParentShardId"] = shard_id(shard.parent)
        if shard.adjacent_parent is not None:
            out["AdjacentParentShardId"] = shard_id(shard.adjacent_parent)
        if not shard.is_open:
            out["SequenceNumberRange"]["EndingSequenceNumber"] = sequence_number(
                shard.number, max(shard.ending_offset, 0))
        return out

    def _shard_dir(self, stream: str, number: int) -> Path:
        return self._stream_dir(stream) / shard_id(number)

    def _stream_dir(self, stream: str) -> Path:
        # A prefix keeps names such as "." or ".." (valid stream names) plain directories.
        return self.data_dir / "streams" / f"{STREAM_DIR_PREFIX}{stream}"

    def _log(self, stream: str, number: int) -> SegmentLog:
        key = (stream, number)
        log = self._logs.get(key)
        if log is None:
            with self._logs_lock:
                log = self._logs.get(key)
                if log is None:
                    log = SegmentLog(self._shard_dir(stream, number), fsync=self.fsync)
                    self._logs[key] = log
        return log

    def _stream_lock(self, name: str) -> ReadWriteLock:
        lock = self._stream_locks.get(name)
        if lock is None:
            lock = self._stream_locks.setdefault(name, ReadWriteLock())
        return lock



def _shards_token_ok(value) -> bool:
    """Whether a ListShards token holds what :meth:`StreamStore.list_shards` put in it."""
    def integer(item) -> bool:
        return isinstance(item, int) and not isinstance(item, bool)

    if not (isinstance(value, list) and len(value) == 4 and isinstance(value[0], str)
            and integer(value[1])):
        return False
    kind, argument = value[2], value[3]
    if kind in ("AFTER_SHARD_ID", "AT_TIMESTAMP", "FROM_TIMESTAMP"):
        return integer(argument)
    return kind in (None, "AT_LATEST", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON") and \
        argument is None


def _lock_directory(data_dir: Path):
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


def _shard_number_or_invalid(value: str) -> int:
    from .hashing import shard_number

    return shard_number(value)


def _parse_shard_filter(shard_filter: dict | None) -> tuple[str | None, object]:
    if not shard_filter:
        return None, None
    kind = shard_filter["Type"]
    if kind == "AFTER_SHARD_ID":
        if "ShardId" not in shard_filter:
            raise InvalidArgumentError("ShardFilter AFTER_SHARD_ID needs ShardId")
        return kind, _shard_number_or_invalid(shard_filter["ShardId"])
    if kind in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
        if "Timestamp" not in shard_filter:
            raise InvalidArgumentError(f"ShardFilter {kind} needs Timestamp")
        return kind, int(shard_filter["Timestamp"] * 1000)
    return kind, None
