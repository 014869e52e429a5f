"""Stream settings, tags and registered consumers: the administrative Kinesis operations.

A component of :class:`~forestream.streams.store.StreamStore` over the shared
:class:`~forestream.streams.catalog.StreamCatalog`: retention, stream mode and maximum
record size, enhanced monitoring, limits, encryption, tags and enhanced fan-out consumers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from .catalog import StreamCatalog
from .errors import (
    InvalidArgumentError,
    LimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
)
from .metadata import ConsumerInfo, StreamInfo, now_ms
from .tags import MAX_TAGS, check_tags
from .tokens import decode_token, encode_token

MIN_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 8760
MAX_CONSUMERS = 20
METRICS = ["IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
           "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
           "IteratorAgeMilliseconds"]


class StreamAdmin:
    """The administrative operations over ``catalog``."""

    def __init__(self, catalog: StreamCatalog) -> None:
        self.catalog = catalog

    # -------------------------------------------------------------------- settings
    def increase_stream_retention_period(self, retention_period_hours: int,
                                         stream_name: str | None = None,
                                         stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        _check_retention(retention_period_hours)
        if retention_period_hours < info.retention_hours:
            raise InvalidArgumentError(
                f"Requested retention period ({retention_period_hours} hours) for stream "
                f"{info.name} can not be shorter than existing retention period "
                f"({info.retention_hours} hours). Use DecreaseRetentionPeriod API.")
        return self._set_retention(info, retention_period_hours)

    def decrease_stream_retention_period(self, retention_period_hours: int,
                                         stream_name: str | None = None,
                                         stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        _check_retention(retention_period_hours)
        if retention_period_hours > info.retention_hours:
            raise InvalidArgumentError(
                f"Requested retention period ({retention_period_hours} hours) for stream "
                f"{info.name} can not be longer than existing retention period "
                f"({info.retention_hours} hours). Use IncreaseRetentionPeriod API.")
        return self._set_retention(info, retention_period_hours)

    def update_stream_mode(self, stream_arn: str, stream_mode_details: Mapping[str, str],
                           warm_throughput_mi_bps: int | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(None, stream_arn)
        self.catalog.require_active(info)
        info.mode = stream_mode_details["StreamMode"]
        self.catalog.mark_updating(info)
        return {}

    def update_max_record_size(self, max_record_size_in_ki_b: int,
                               stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(None, stream_arn)
        info.max_record_kib = max_record_size_in_ki_b
        self.catalog.db.update_stream(info)
        return {}

    def enable_enhanced_monitoring(self, shard_level_metrics: list[str],
                                   stream_name: str | None = None,
                                   stream_arn: str | None = None) -> dict[str, Any]:
        return self._set_metrics(stream_name, stream_arn, shard_level_metrics, enable=True)

    def disable_enhanced_monitoring(self, shard_level_metrics: list[str],
                                    stream_name: str | None = None,
                                    stream_arn: str | None = None) -> dict[str, Any]:
        return self._set_metrics(stream_name, stream_arn, shard_level_metrics, enable=False)

    def describe_limits(self) -> dict[str, Any]:
        settings = self.catalog.settings
        return {"ShardLimit": settings.shard_limit,
                "OpenShardCount": self.catalog.open_shard_count(),
                "OnDemandStreamCount": self.catalog.on_demand_stream_count(),
                "OnDemandStreamCountLimit": settings.on_demand_stream_limit}

    def start_stream_encryption(self, encryption_type: str, key_id: str,
                                stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        self.catalog.require_active(info)
        self.catalog.keys.key_for(info.name, create=True)
        with self.catalog.stream_lock(info.name).write():  # no put half before, half after
            info.encryption, info.key_id = encryption_type, key_id
            self.catalog.mark_updating(info)
        return {}

    def stop_stream_encryption(self, encryption_type: str, key_id: str,
                               stream_name: str | None = None,
                               stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        self.catalog.require_active(info)
        with self.catalog.stream_lock(info.name).write():
            info.encryption, info.key_id = "NONE", None
            self.catalog.mark_updating(info)
        return {}

    # ------------------------------------------------------------------------ tags
    def add_tags_to_stream(self, tags: Mapping[str, str], stream_name: str | None = None,
                           stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        check_tags([*tags, *tags.values()], f"add tags to stream {info.name} under "
                                             f"account {self.catalog.settings.account}")
        merged = {**self.catalog.db.tags(info.name), **tags}
        if len(merged) > MAX_TAGS:
            raise InvalidArgumentError(
                f"Failed to add tags to stream {info.name} under account "
                f"{self.catalog.settings.account} because a given stream cannot have more "
                f"than {MAX_TAGS} tags associated with it.")
        self.catalog.db.set_tags(info.name, tags)
        return {}

    def remove_tags_from_stream(self, tag_keys: Iterable[str], stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        tag_keys = list(tag_keys)
        check_tags(tag_keys, f"remove tags from stream {info.name} under account "
                             f"{self.catalog.settings.account}")
        self.catalog.db.remove_tags(info.name, tag_keys)
        return {}

    def list_tags_for_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                             exclusive_start_tag_key: str | None = None,
                             limit: int | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        tags = sorted(self.catalog.db.tags(info.name).items())
        if exclusive_start_tag_key is not None:
            tags = [t for t in tags if t[0] > exclusive_start_tag_key]
        limit = limit or 50
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags[:limit]],
                "HasMoreTags": len(tags) > limit}

    def tag_resource(self, tags: Mapping[str, str], resource_arn: str) -> dict[str, Any]:
        return self.add_tags_to_stream(tags, stream_arn=resource_arn)

    def untag_resource(self, tag_keys: Iterable[str], resource_arn: str) -> dict[str, Any]:
        return self.remove_tags_from_stream(tag_keys, stream_arn=resource_arn)

    def list_tags_for_resource(self, resource_arn: str) -> dict[str, Any]:
        info = self.catalog.resolve(None, resource_arn)
        return {"Tags": [{"Key": k, "Value": v}
                         for k, v in self.catalog.db.tags(info.name).items()]}

    # ------------------------------------------------------------------- consumers
    def register_stream_consumer(self, stream_arn: str, consumer_name: str,
                                 tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(None, stream_arn)
        existing = self.catalog.db.consumers(info.name)
        if any(c.name == consumer_name for c in existing):
            raise ResourceInUseError(f"Consumer {consumer_name} already exists for stream "
                                     f"{info.name}")
        if len(existing) >= MAX_CONSUMERS:
            raise LimitExceededError(f"a stream can have at most {MAX_CONSUMERS} registered "
                                     "consumers")
        now = now_ms()
        consumer = ConsumerInfo(consumer_name, now, now + self.catalog.settings.status_delay_ms)
        self.catalog.db.insert_consumer(info.name, *consumer)
        return {"Consumer": self._describe_consumer(info, consumer)}

    def describe_stream_consumer(self, stream_arn: str | None = None,
                                 consumer_name: str | None = None,
                                 consumer_arn: str | None = None) -> dict[str, Any]:
        info, consumer = self._find_consumer(stream_arn, consumer_name, consumer_arn)
        out = self._describe_consumer(info, consumer)
        out["StreamARN"] = self.catalog.stream_arn(info.name)
        return {"ConsumerDescription": out}

    def list_stream_consumers(self, stream_arn: str, next_token: str | None = None,
                              max_results: int | None = None,
                              stream_creation_timestamp: float | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(None, stream_arn)
        consumers = self.catalog.db.consumers(info.name)
        start = int(decode_token(next_token, "consumers", _is_position)) if next_token else 0
        limit = max_results or 100
        page = consumers[start : start + limit]
        out: dict[str, Any] = {"Consumers": [self._describe_consumer(info, c) for c in page]}
        if start + limit < len(consumers):
            out["NextToken"] = encode_token("consumers", str(start + limit))
        return out

    def deregister_stream_consumer(self, stream_arn: str | None = None,
                                   consumer_name: str | None = None,
                                   consumer_arn: str | None = None) -> dict[str, Any]:
        info, consumer = self._find_consumer(stream_arn, consumer_name, consumer_arn)
        self.catalog.db.delete_consumer(info.name, consumer.name)
        return {}

    # ------------------------------------------------------------------ helpers
    def _set_retention(self, info: StreamInfo, hours: int) -> dict[str, Any]:
        _check_retention(hours)
        info.retention_hours = hours
        self.catalog.db.update_stream(info)
        return {}

    def _set_metrics(self, stream_name: str | None, stream_arn: str | None,
                     metrics: list[str], enable: bool) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        wanted = set(METRICS) if "ALL" in metrics else set(metrics)
        current = list(info.metrics)
        desired = sorted(set(current) | wanted) if enable else sorted(set(current) - wanted)
        info.metrics = desired
        self.catalog.db.update_stream(info)
        return {"StreamName": info.name, "CurrentShardLevelMetrics": current,
                "DesiredShardLevelMetrics": desired,
                "StreamARN": self.catalog.stream_arn(info.name)}

    def _describe_consumer(self, info: StreamInfo, consumer: ConsumerInfo) -> dict[str, Any]:
        name, created, ready = consumer
        status = "ACTIVE" if now_ms() >= ready else "CREATING"
        return {"ConsumerName": name,
                "ConsumerARN": f"{self.catalog.stream_arn(info.name)}/consumer/{name}:"
                               f"{created // 1000}",
                "ConsumerStatus": status, "ConsumerCreationTimestamp": created / 1000.0}

    def _find_consumer(self, stream_arn: str | None, consumer_name: str | None,
                       consumer_arn: str | None) -> tuple[StreamInfo, ConsumerInfo]:
        if consumer_arn is not None:
            stream_part, _, rest = consumer_arn.partition("/consumer/")
            stream_arn, consumer_name = stream_part, rest.rsplit(":", 1)[0]
        elif stream_arn is None or consumer_name is None:
            raise InvalidArgumentError("give ConsumerARN, or StreamARN and ConsumerName")
        info = self.catalog.resolve(None, stream_arn)
        for consumer in self.catalog.db.consumers(info.name):
            if consumer.name == consumer_name and (
                    consumer_arn is None or
                    consumer_arn == self._describe_consumer(info, consumer)["ConsumerARN"]):
                return info, consumer
        raise ResourceNotFoundError(f"Consumer {consumer_arn or consumer_name} not found")


def _check_retention(hours: int) -> None:
    if hours < MIN_RETENTION_HOURS:
        raise InvalidArgumentError(
            f"Minimum allowed retention period is {MIN_RETENTION_HOURS} hours. Requested "
            f"retention period ({hours} hours) is too short.")
    if hours > MAX_RETENTION_HOURS:
        raise InvalidArgumentError(
            f"Maximum allowed retention period is {MAX_RETENTION_HOURS} hours. Requested "
            f"retention period ({hours} hours) is too long.")


def _is_position(value: object) -> TypeGuard[str]:
    """A ListStreamConsumers token's value: the index of the next consumer, in digits."""
    return isinstance(value, str) and value.isdigit() and len(value) < 10
