"""Streams and shards in Kinesis's response shapes (DescribeStream, DescribeStreamSummary,
ListStreams, ListShards), from the catalog's metadata.

Kept apart from :class:`~.catalog.StreamCatalog`, which owns the state: these only read
it, and the shapes follow the API model rather than how the store keeps things.
"""

from __future__ import annotations

from typing import Any

from .catalog import StreamCatalog
from .hashing import sequence_number, shard_id
from .metadata import ShardInfo, StreamInfo


def stream_summary(catalog: StreamCatalog, info: StreamInfo) -> dict[str, Any]:
    """DescribeStreamSummary's StreamDescriptionSummary of the stream."""
    out: dict[str, Any] = {
        "StreamName": info.name, "StreamARN": catalog.stream_arn(info.name),
        "StreamStatus": info.status, "StreamModeDetails": {"StreamMode": info.mode},
        "RetentionPeriodHours": info.retention_hours,
        "StreamCreationTimestamp": info.created_ms / 1000.0,
        "EnhancedMonitoring": [{"ShardLevelMetrics": list(info.metrics)}],
        "EncryptionType": info.encryption,
        "OpenShardCount": len(info.open_shards()),
        "ConsumerCount": len(catalog.db.consumers(info.name)),
        "MaxRecordSizeInKiB": info.max_record_kib,
    }
    if info.key_id:
        out["KeyId"] = info.key_id
    return out


def list_summary(catalog: StreamCatalog, info: StreamInfo) -> dict[str, Any]:
    """ListStreams' StreamSummaries entry of the stream (its status as the caller
    settled it)."""
    return {"StreamName": info.name, "StreamARN": catalog.stream_arn(info.name),
            "StreamStatus": info.status, "StreamModeDetails": {"StreamMode": info.mode},
            "StreamCreationTimestamp": info.created_ms / 1000.0}


def describe_shard(shard: ShardInfo) -> dict[str, Any]:
    """The Shard shape of DescribeStream and ListShards."""
    sequence_range = {"StartingSequenceNumber": sequence_number(shard.number, 0)}
    out: dict[str, Any] = {
        "ShardId": shard_id(shard.number),
        "HashKeyRange": {"StartingHashKey": str(shard.start_hash),
                         "EndingHashKey": str(shard.end_hash)},
        "SequenceNumberRange": sequence_range}
    if shard.parent is not None:
        out["ParentShardId"] = shard_id(shard.parent)
    if shard.adjacent_parent is not None:
        out["AdjacentParentShardId"] = shard_id(shard.adjacent_parent)
    if not shard.is_open:
        sequence_range["EndingSequenceNumber"] = sequence_number(
            shard.number, max(shard.last_offset, 0))
    return out
