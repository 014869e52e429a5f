"""Streams themselves: CreateStream, DeleteStream, DescribeStream(Summary), ListStreams
and ListShards.

A component of :class:`~forestream.streams.store.StreamStore` over the shared
:class:`~forestream.streams.catalog.StreamCatalog`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, TypeGuard

from .catalog import StreamCatalog
from .descriptions import describe_shard, list_summary, stream_summary
from .errors import InvalidArgumentError, LimitExceededError, ResourceInUseError
from .hashing import shard_number, uniform_ranges
from .metadata import ShardInfo, StreamInfo, now_ms
from .tags import check_tags
from .tokens import decode_token, encode_token

ON_DEMAND_SHARDS = 4
DEFAULT_RETENTION_HOURS = 24
DEFAULT_MAX_RECORD_KIB = 1024


class StreamLifecycle:
    """Creating, deleting, describing and listing streams and their shards."""

    def __init__(self, catalog: StreamCatalog) -> None:
        self.catalog = catalog

    def create_stream(self, stream_name: str, shard_count: int | None = None,
                      stream_mode_details: Mapping[str, str] | None = None,
                      tags: Mapping[str, str] | None = None,
                      warm_throughput_mi_bps: int | None = None,
                      max_record_size_in_ki_b: int | None = None) -> dict[str, Any]:
        catalog, settings = self.catalog, self.catalog.settings
        mode = (stream_mode_details or {}).get("StreamMode", "PROVISIONED")
        if mode == "PROVISIONED" and shard_count is None:
            raise InvalidArgumentError("ShardCount is required for a PROVISIONED stream")
        count = shard_count if shard_count is not None else ON_DEMAND_SHARDS
        if count < 1:
            raise InvalidArgumentError(f"ShardCount {count} must be at least 1")
        if tags:
            check_tags([*tags, *tags.values()], f"add tags to stream {stream_name} under "
                                                f"account {settings.account}")
        previous = catalog.find(stream_name)
        if previous is not None:
            catalog.settle(previous)  # a deletion whose time is over frees the name
        with catalog.db.transaction():
            if catalog.find(stream_name) is not None:
                raise ResourceInUseError(f"Stream {stream_name} under account "
                                         f"{settings.account} already exists.")
            catalog.check_shard_limit(count)
            if mode == "ON_DEMAND" and \
                    catalog.on_demand_stream_count() >= settings.on_demand_stream_limit:
                raise LimitExceededError(f"at most {settings.on_demand_stream_limit} "
                                         "ON_DEMAND streams are allowed")
            now = now_ms()
            info = StreamInfo(stream_name, now, "CREATING", now + settings.status_delay_ms,
                              mode, DEFAULT_RETENTION_HOURS, count, "NONE", None,
                              max_record_size_in_ki_b or DEFAULT_MAX_RECORD_KIB, [])
            for number, (lo, hi) in enumerate(uniform_ranges(count)):
                info.shards.append(ShardInfo(number, None, None, lo, hi, now))
            catalog.add_stream(info, tags)
        return {}

    def delete_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                      enforce_consumer_deletion: bool = False) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        if info.status == "DELETING":
            return {}  # under way already
        if self.catalog.db.consumers(info.name) and not enforce_consumer_deletion:
            raise ResourceInUseError(f"Stream {info.name} has registered consumers; pass "
                                     "EnforceConsumerDeletion=true to delete it with them")
        self.catalog.start_deletion(info)
        return {}

    def describe_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                        limit: int | None = None,
                        exclusive_start_shard_id: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        # as Kinesis lists them: none while CREATING or DELETING, the old ones while UPDATING
        shards = [] if info.status == "CREATING" else self.catalog.visible_shards(info)
        if exclusive_start_shard_id is not None:
            after = shard_number(exclusive_start_shard_id)
            shards = [s for s in shards if s.number > after]
        limit = limit or 100
        page = shards[:limit]
        description = stream_summary(self.catalog, info)
        description.pop("OpenShardCount")
        description.pop("ConsumerCount", None)
        description["Shards"] = [describe_shard(s) for s in page]
        description["HasMoreShards"] = len(shards) > limit
        return {"StreamDescription": description}

    def describe_stream_summary(self, stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        return {"StreamDescriptionSummary": stream_summary(self.catalog, info)}

    def list_streams(self, limit: int | None = None,
                     exclusive_start_stream_name: str | None = None,
                     next_token: str | None = None) -> dict[str, Any]:
        # streams being deleted are listed as such until their deletion is over
        listed = {info.name: info for info in self.catalog.streams() if self.catalog.settle(info)}
        names = sorted(listed)
        start = exclusive_start_stream_name
        if next_token is not None:
            if start is not None:
                raise InvalidArgumentError("NextToken and ExclusiveStartStreamName cannot both "
                                           "be given")
            start = decode_token(next_token, "streams", _is_str)
        if start is not None:
            names = [n for n in names if n > start]
        limit = limit or 100
        page = names[:limit]
        out: dict[str, Any] = {
            "StreamNames": page, "HasMoreStreams": len(names) > limit,
            "StreamSummaries": [list_summary(self.catalog, listed[n]) for n in page]}
        if len(names) > limit:
            out["NextToken"] = encode_token("streams", page[-1])
        return out

    def list_shards(self, stream_name: str | None = None, stream_arn: str | None = None,
                    next_token: str | None = None, exclusive_start_shard_id: str | None = None,
                    max_results: int | None = None, stream_creation_timestamp: float | None = None,
                    shard_filter: Mapping[str, Any] | None = None) -> dict[str, Any]:
        if next_token is not None:
            # The token carries the stream, position and filter: Kinesis refuses what
            # would name them again (boto3's paginator resends StreamName: page by hand)
            for member, value in (("StreamName", stream_name), ("StreamARN", stream_arn),
                                  ("ExclusiveStartShardId", exclusive_start_shard_id),
                                  ("StreamCreationTimestamp", stream_creation_timestamp)):
                if value is not None:
                    raise InvalidArgumentError(
                        f"NextToken and {member} cannot be provided together.")
            name, after, filter_ = _decode_shards_token(next_token)
            info = self.catalog.resolve(name, None)
        else:
            if stream_name is None and stream_arn is None:
                raise InvalidArgumentError("Either NextToken or StreamName should be "
                                           "provided.")
            info = self.catalog.resolve(stream_name, stream_arn)
            after = shard_number(exclusive_start_shard_id) if exclusive_start_shard_id else -1
            filter_ = _parse_shard_filter(shard_filter)
            if filter_.kind == "AFTER_SHARD_ID" and filter_.argument is not None:
                after = max(after, filter_.argument)
        shards = [s for s in _filter_shards(self.catalog.visible_shards(info), filter_)
                  if s.number > after]
        limit = max_results or 1000
        page = shards[:limit]
        out: dict[str, Any] = {"Shards": [describe_shard(s) for s in page]}
        if len(shards) > limit:
            out["NextToken"] = encode_token("shards", [info.name, page[-1].number,
                                                       filter_.kind, filter_.argument])
        return out


class ShardFilter(NamedTuple):
    """ListShards' ShardFilter: its Type (None: no filter) and what the type needs — a
    shard number for AFTER_SHARD_ID, milliseconds for AT_ / FROM_TIMESTAMP."""

    kind: str | None = None
    argument: int | None = None


def _filter_shards(shards: list[ShardInfo], filter_: ShardFilter) -> list[ShardInfo]:
    kind, at = filter_
    if kind == "AT_LATEST":
        return [s for s in shards if s.is_open]
    if kind == "AT_TRIM_HORIZON":
        present = {s.number for s in shards}
        return [s for s in shards if s.parent not in present and
                s.adjacent_parent not in present]
    if kind == "AT_TIMESTAMP" and at is not None:
        return [s for s in shards if s.created_ms <= at and
                (s.closed_ms is None or s.closed_ms > at)]
    if kind == "FROM_TIMESTAMP" and at is not None:
        return [s for s in shards if s.closed_ms is None or s.closed_ms > at]
    return shards  # None, FROM_TRIM_HORIZON, AFTER_SHARD_ID (applied by the caller)


def _parse_shard_filter(shard_filter: Mapping[str, Any] | None) -> ShardFilter:
    if not shard_filter:
        return ShardFilter()
    kind = shard_filter["Type"]
    if kind == "AFTER_SHARD_ID":
        if "ShardId" not in shard_filter:
            raise InvalidArgumentError("ShardFilter AFTER_SHARD_ID needs ShardId")
        return ShardFilter(kind, shard_number(shard_filter["ShardId"]))
    if kind in ("AT_TIMESTAMP", "FROM_TIMESTAMP"):
        if "Timestamp" not in shard_filter:
            raise InvalidArgumentError(f"ShardFilter {kind} needs Timestamp")
        return ShardFilter(kind, int(shard_filter["Timestamp"] * 1000))
    return ShardFilter(kind)


def _decode_shards_token(token: str) -> tuple[str, int, ShardFilter]:
    """(stream, last shard number listed, filter) of a ListShards NextToken."""
    name, after, kind, argument = decode_token(token, "shards", _is_shards_token)
    return name, after, ShardFilter(kind, argument)


def _is_shards_token(value: object) -> TypeGuard[list[Any]]:
    """Whether a ListShards token holds what :meth:`StreamLifecycle.list_shards` put in it:
    ``[stream, shard number, filter type, filter argument]``."""
    if not (isinstance(value, list) and len(value) == 4 and isinstance(value[0], str)
            and _is_int(value[1])):
        return False
    kind, argument = value[2], value[3]
    if kind in ("AFTER_SHARD_ID", "AT_TIMESTAMP", "FROM_TIMESTAMP"):
        return _is_int(argument)
    return kind in (None, "AT_LATEST", "AT_TRIM_HORIZON", "FROM_TRIM_HORIZON") and \
        argument is None


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str)
