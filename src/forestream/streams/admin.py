"""Stream settings, tags and registered consumers: the administrative Kinesis operations.

A mixin of :class:`forestream.streams.store.StreamStore`, which owns the state it uses.
"""

from __future__ import annotations

from .errors import (
    InvalidArgumentError,
    LimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
)
from .metadata import StreamInfo, now_ms
from .tokens import decode_token, encode_token

MIN_RETENTION_HOURS = 24
MAX_RETENTION_HOURS = 8760
MAX_TAGS = 50
MAX_CONSUMERS = 20
METRICS = ["IncomingBytes", "IncomingRecords", "OutgoingBytes", "OutgoingRecords",
           "WriteProvisionedThroughputExceeded", "ReadProvisionedThroughputExceeded",
           "IteratorAgeMilliseconds"]


class AdminOperations:
    # -------------------------------------------------------------------- settings
    def increase_stream_retention_period(self, retention_period_hours: int,
                                         stream_name: str | None = None,
                                         stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        if retention_period_hours < info.retention_hours:
            raise InvalidArgumentError(
                f"Requested retention period ({retention_period_hours} hours) for stream "
                f"{info.name} can not be shorter than existing retention period "
                f"({info.retention_hours} hours). Use DecreaseRetentionPeriod API.")
        return self._set_retention(info, retention_period_hours)

    def decrease_stream_retention_period(self, retention_period_hours: int,
                                         stream_name: str | None = None,
                                         stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        if retention_period_hours > info.retention_hours:
            raise InvalidArgumentError(
                f"Requested retention period ({retention_period_hours} hours) for stream "
                f"{info.name} can not be longer than existing retention period "
                f"({info.retention_hours} hours). Use IncreaseRetentionPeriod API.")
        return self._set_retention(info, retention_period_hours)

    def update_stream_mode(self, stream_arn: str, stream_mode_details: dict,
                           warm_throughput_mi_bps: int | None = None) -> dict:
        info = self._resolve(None, stream_arn)
        self._require_active(info)
        info.mode = stream_mode_details["StreamMode"]
        self._mark_updating(info)
        return {}

    def update_max_record_size(self, max_record_size_in_ki_b: int,
                               stream_arn: str | None = None) -> dict:
        info = self._resolve(None, stream_arn)
        info.max_record_kib = max_record_size_in_ki_b
        self._db.update_stream(info)
        return {}

    def enable_enhanced_monitoring(self, shard_level_metrics: list[str],
                                   stream_name: str | None = None,
                                   stream_arn: str | None = None) -> dict:
        return self._set_metrics(stream_name, stream_arn, shard_level_metrics, enable=True)

    def disable_enhanced_monitoring(self, shard_level_metrics: list[str],
                                    stream_name: str | None = None,
                                    stream_arn: str | None = None) -> dict:
        return self._set_metrics(stream_name, stream_arn, shard_level_metrics, enable=False)

    def describe_limits(self) -> dict:
        return {"ShardLimit": self.shard_limit, "OpenShardCount": self.open_shard_count(),
                "OnDemandStreamCount": sum(s.mode == "ON_DEMAND" for s in self._streams.values()),
                "OnDemandStreamCountLimit": self.on_demand_stream_limit}

    def start_stream_encryption(self, encryption_type: str, key_id: str,
                                stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        self._require_active(info)
        self._keys.key_for(info.name, create=True)
        info.encryption, info.key_id = encryption_type, key_id
        self._mark_updating(info)
        return {}

    def stop_stream_encryption(self, encryption_type: str, key_id: str,
                               stream_name: str | None = None,
                               stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        self._require_active(info)
        info.encryption, info.key_id = "NONE", None
        self._mark_updating(info)
        return {}

    # ------------------------------------------------------------------------ tags
    def add_tags_to_stream(self, tags: dict[str, str], stream_name: str | None = None,
                           stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        merged = {**self._db.tags(info.name), **tags}
        if len(merged) > 50:
            raise LimitExceededError(f"a stream can have at most 50 tags; this would make "
                                     f"{len(merged)}")
        self._db.set_tags(info.name, tags)
        return {}

    def remove_tags_from_stream(self, tag_keys: list[str], stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        self._db.remove_tags(info.name, tag_keys)
        return {}

    def list_tags_for_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                             exclusive_start_tag_key: str | None = None,
                             limit: int | None = None) -> dict:
        info = self._resolve(stream_name, stream_arn)
        tags = sorted(self._db.tags(info.name).items())
        if exclusive_start_tag_key is not None:
            tags = [t for t in tags if t[0] > exclusive_start_tag_key]
        limit = limit or 50
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags[:limit]],
                "HasMoreTags": len(tags) > limit}

    def tag_resource(self, tags: dict[str, str], resource_arn: str) -> dict:
        return self.add_tags_to_stream(tags, stream_arn=resource_arn)

    def untag_resource(self, tag_keys: list[str], resource_arn: str) -> dict:
        return self.remove_tags_from_stream(tag_keys, stream_arn=resource_arn)

    def list_tags_for_resource(self, resource_arn: str) -> dict:
        info = self._resolve(None, resource_arn)
        return {"Tags": [{"Key": k, "Value": v} for k, v in self._db.tags(info.name).items()]}

    # ------------------------------------------------------------------- consumers
    def register_stream_consumer(self, stream_arn: str, consumer_name: str,
                                 tags: dict | None = None) -> dict:
        info = self._resolve(None, stream_arn)
        existing = self._db.consumers(info.name)
        if any(name == consumer_name for name, _, _ in existing):
            raise ResourceInUseError(f"Consumer {consumer_name} already exists for stream "
                                     f"{info.name}")
        if len(existing) >= 20:
            raise LimitExceededError("a stream can have at most 20 registered consumers")
        now = now_ms()
        self._db.insert_consumer(info.name, consumer_name, now, now + self.status_delay_ms)
        return {"Consumer": self._consumer(info, consumer_name, now, now + self.status_delay_ms)}

    def describe_stream_consumer(self, stream_arn: str | None = None,
                                 consumer_name: str | None = None,
                                 consumer_arn: str | None = None) -> dict:
        info, name, created, ready = self._find_consumer(stream_arn, consumer_name, consumer_arn)
        out = self._consumer(info, name, created, ready)
        out["StreamARN"] = self.stream_arn(info.name)
        return {"ConsumerDescription": out}

    def list_stream_consumers(self, stream_arn: str, next_token: str | None = None,
                              max_results: int | None = None,
                              stream_creation_timestamp: float | None = None) -> dict:
        info = self._resolve(None, stream_arn)
        consumers = self._db.consumers(info.name)
        start = int(decode_token(next_token, "consumers",
                                 lambda v: isinstance(v, str) and v.isdigit()
                                 and len(v) < 10)) if next_token else 0
        limit = max_results or 100
        page = consumers[start : start + limit]
        out = {"Consumers": [self._consumer(info, *c) for c in page]}
        if start + limit < len(consumers):
            out["NextToken"] = encode_token("consumers", str(start + limit))
        return out

    def deregister_stream_consumer(self, stream_arn: str | None = None,
                                   consumer_name: str | None = None,
                                   consumer_arn: str | None = None) -> dict:
        info, name, _, _ = self._find_consumer(stream_arn, consumer_name, consumer_arn)
        self._db.delete_consumer(info.name, name)
        return {}

    # ------------------------------------------------------------------ helpers
    def _set_retention(self, info: StreamInfo, hours: int) -> dict:
        if not MIN_RETENTION_HOURS <= hours <= MAX_RETENTION_HOURS:
            raise InvalidArgumentError(
                f"Requested retention period ({hours} hours) for stream {info.name} is outside "
                f"the allowed range [{MIN_RETENTION_HOURS}, {MAX_RETENTION_HOURS}] hours.")
        info.retention_hours = hours
        self._db.update_stream(info)
        return {}

    def _set_metrics(self, stream_name, stream_arn, metrics, enable) -> dict:
        info = self._resolve(stream_name, stream_arn)
        wanted = set(METRICS) if "ALL" in metrics else set(metrics)
        current = list(info.metrics)
        desired = sorted(set(current) | wanted) if enable else sorted(set(current) - wanted)
        info.metrics = desired
        self._db.update_stream(info)
        return {"StreamName": info.name, "CurrentShardLevelMetrics": current,
                "DesiredShardLevelMetrics": desired, "StreamARN": self.stream_arn(info.name)}

    def _consumer(self, info: StreamInfo, name: str, created: int, ready: int) -> dict:
        status = "ACTIVE" if now_ms() >= ready else "CREATING"
        return {"ConsumerName": name,
                "ConsumerARN": f"{self.stream_arn(info.name)}/consumer/{name}:{created // 1000}",
                "ConsumerStatus": status, "ConsumerCreationTimestamp": created / 1000.0}

    def _find_consumer(self, stream_arn, consumer_name, consumer_arn):
        if consumer_arn is not None:
            stream_part, _, rest = consumer_arn.partition("/consumer/")
            stream_arn, consumer_name = stream_part, rest.rsplit(":", 1)[0]
        elif stream_arn is None or consumer_name is None:
            raise InvalidArgumentError("give ConsumerARN, or StreamARN and ConsumerName")
        info = self._resolve(None, stream_arn)
        for name, created, ready in self._db.consumers(info.name):
            if name == consumer_name and (consumer_arn is None or consumer_arn ==
                                          self._consumer(info, name, created, ready)
                                          ["ConsumerARN"]):
                return info, name, created, ready
        raise ResourceNotFoundError(f"Consumer {consumer_arn or consumer_name} not found")


