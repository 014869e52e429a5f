"""The stream store: Kinesis Data Streams operations as a Python library.

Every public method is one Kinesis API operation, takes the operation's members as
snake_case keyword arguments and returns the same dictionary that boto3 returns for
it, so in-process code and HTTP clients see one API (the server looks the methods up by
name). Streams may be named by ``stream_name`` or ``stream_arn`` wherever the API allows
either.

:class:`StreamStore` is a facade over one shared state and four components, each given
that state and doing one job:

* :class:`~.catalog.StreamCatalog` (catalog.py): streams' metadata, segment logs, locks,
  keys and the iterator secret; finds streams and describes them;
* :class:`~.lifecycle.StreamLifecycle` (lifecycle.py): creating, deleting, describing and
  listing streams and shards;
* :class:`~.record_io.RecordIO` (record_io.py): PutRecord(s), shard iterators,
  GetRecords and retention;
* :class:`~.admin.StreamAdmin` (admin.py): retention periods, stream modes, monitoring,
  limits, encryption, tags and consumers;
* :class:`~.resharding.Resharder` (resharding.py): SplitShard, MergeShards and
  UpdateShardCount.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .admin import StreamAdmin
from .backend import StorageBackend
from .catalog import DEFAULT_ACCOUNT, DEFAULT_REGION, StoreSettings, StreamCatalog
from .lifecycle import StreamLifecycle
from .record_io import RecordIO
from .resharding import Resharder

if TYPE_CHECKING:
    from .batch import BatchResult, RecordBatch

__all__ = ["StreamStore", "DEFAULT_ACCOUNT", "DEFAULT_REGION"]


class StreamStore:
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
                 account: str = DEFAULT_ACCOUNT, backend: StorageBackend | None = None
                 ) -> None:
        settings = StoreSettings(
            fsync=fsync, status_delay_ms=int(status_delay * 1000), shard_limit=shard_limit,
            on_demand_stream_limit=on_demand_stream_limit,
            throughput_limits=throughput_limits, region=region, account=account)
        # backend: where records and metadata live (default: data_dir on this machine;
        # see forestream.streams.backend and .jetstream for a NATS JetStream cluster)
        self._catalog = StreamCatalog(data_dir, settings, backend)
        self._lifecycle = StreamLifecycle(self._catalog)
        self._records = RecordIO(self._catalog)
        self._admin = StreamAdmin(self._catalog)
        self._resharder = Resharder(self._catalog)

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Close every open log (idempotent)."""
        self._catalog.close()

    def __enter__(self) -> StreamStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------- the store itself
    @property
    def data_dir(self) -> Path:
        return self._catalog.data_dir

    @property
    def fsync(self) -> bool:
        return self._catalog.settings.fsync

    @property
    def status_delay_ms(self) -> int:
        return self._catalog.settings.status_delay_ms

    @property
    def shard_limit(self) -> int:
        return self._catalog.settings.shard_limit

    @property
    def on_demand_stream_limit(self) -> int:
        return self._catalog.settings.on_demand_stream_limit

    @property
    def throughput_limits(self) -> bool:
        return self._catalog.settings.throughput_limits

    @property
    def region(self) -> str:
        return self._catalog.settings.region

    @property
    def account(self) -> str:
        return self._catalog.settings.account

    def stream_arn(self, name: str) -> str:
        return self._catalog.stream_arn(name)

    def stream_names(self) -> list[str]:
        return self._catalog.stream_names()

    def open_shard_count(self) -> int:
        return self._catalog.open_shard_count()

    # ---------------------------------------------------------------- streams
    def create_stream(self, stream_name: str, shard_count: int | None = None,
                      stream_mode_details: Mapping[str, str] | None = None,
                      tags: Mapping[str, str] | None = None,
                      warm_throughput_mi_bps: int | None = None,
                      max_record_size_in_ki_b: int | None = None) -> dict[str, Any]:
        return self._lifecycle.create_stream(
            stream_name, shard_count, stream_mode_details, tags, warm_throughput_mi_bps,
            max_record_size_in_ki_b)

    def delete_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                      enforce_consumer_deletion: bool = False) -> dict[str, Any]:
        return self._lifecycle.delete_stream(stream_name, stream_arn, enforce_consumer_deletion)

    def describe_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                        limit: int | None = None,
                        exclusive_start_shard_id: str | None = None) -> dict[str, Any]:
        return self._lifecycle.describe_stream(stream_name, stream_arn, limit,
                                               exclusive_start_shard_id)

    def describe_stream_summary(self, stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict[str, Any]:
        return self._lifecycle.describe_stream_summary(stream_name, stream_arn)

    def list_streams(self, limit: int | None = None,
                     exclusive_start_stream_name: str | None = None,
                     next_token: str | None = None) -> dict[str, Any]:
        return self._lifecycle.list_streams(limit, exclusive_start_stream_name, next_token)

    def list_shards(self, stream_name: str | None = None, stream_arn: str | None = None,
                    next_token: str | None = None, exclusive_start_shard_id: str | None = None,
                    max_results: int | None = None, stream_creation_timestamp: float | None = None,
                    shard_filter: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._lifecycle.list_shards(stream_name, stream_arn, next_token,
                                           exclusive_start_shard_id, max_results,
                                           stream_creation_timestamp, shard_filter)

    # ---------------------------------------------------------------- records
    def put_record(self, data: bytes, partition_key: str, stream_name: str | None = None,
                   stream_arn: str | None = None, explicit_hash_key: str | None = None,
                   sequence_number_for_ordering: str | None = None) -> dict[str, Any]:
        return self._records.put_record(data, partition_key, stream_name, stream_arn,
                                        explicit_hash_key, sequence_number_for_ordering)

    def put_records(self, records: Sequence[Mapping[str, Any]], stream_name: str | None = None,
                    stream_arn: str | None = None) -> dict[str, Any]:
        return self._records.put_records(records, stream_name, stream_arn)

    def put_records_batch(self, batch: RecordBatch, stream_name: str | None = None,
                          stream_arn: str | None = None) -> BatchResult:
        """:meth:`put_records` of records held as a :class:`~.batch.RecordBatch` (the
        Kinesis front end's fast path): the same checks and records; the same answer
        from :meth:`BatchResult.answer <.batch.BatchResult.answer>`."""
        return self._records.put_batch(batch, stream_name, stream_arn)

    def get_shard_iterator(self, shard_id: str, shard_iterator_type: str,
                           stream_name: str | None = None, stream_arn: str | None = None,
                           starting_sequence_number: str | None = None,
                           timestamp: float | None = None) -> dict[str, Any]:
        return self._records.get_shard_iterator(shard_id, shard_iterator_type, stream_name,
                                                stream_arn, starting_sequence_number, timestamp)

    def get_records(self, shard_iterator: str, limit: int | None = None,
                    stream_arn: str | None = None) -> dict[str, Any]:
        return self._records.get_records(shard_iterator, limit, stream_arn)

    def wait_for_records(self, positions: Mapping[str, Mapping[str, str | None]],
                         timeout: float) -> dict[str, list[str]]:
        """Wait (at most ``timeout`` seconds) until a shard has records after a position:
        see :meth:`RecordIO.wait_for_records`."""
        return self._records.wait_for_records(positions, timeout)

    def records_behind(self, stream: str, shard_id: str, after: str | None) -> int:
        """Records of a shard after sequence number ``after`` (None: all kept): a reader's
        lag in records (see :meth:`RecordIO.records_behind`)."""
        return self._records.records_behind(stream, shard_id, after)

    def continuation_sequence_number(self, shard_iterator: str) -> str:
        """The sequence number a SubscribeToShard event continues after: the one just
        before the iterator's position (its shard's first for a position at the start)."""
        return self._records.continuation_sequence_number(shard_iterator)

    def enforce_retention(self) -> int:
        """Drop records older than each stream's retention and expired closed shards;
        return the number of records dropped."""
        return self._records.enforce_retention()

    # ------------------------------------------------------------ resharding
    def split_shard(self, shard_to_split: str, new_starting_hash_key: str,
                    stream_name: str | None = None,
                    stream_arn: str | None = None) -> dict[str, Any]:
        return self._resharder.split_shard(shard_to_split, new_starting_hash_key, stream_name,
                                           stream_arn)

    def merge_shards(self, shard_to_merge: str, adjacent_shard_to_merge: str,
                     stream_name: str | None = None,
                     stream_arn: str | None = None) -> dict[str, Any]:
        return self._resharder.merge_shards(shard_to_merge, adjacent_shard_to_merge,
                                            stream_name, stream_arn)

    def update_shard_count(self, target_shard_count: int, scaling_type: str,
                           stream_name: str | None = None,
                           stream_arn: str | None = None) -> dict[str, Any]:
        return self._resharder.update_shard_count(target_shard_count, scaling_type,
                                                  stream_name, stream_arn)

    # ------------------------------------------------------ stream settings
    def increase_stream_retention_period(self, retention_period_hours: int,
                                         stream_name: str | None = None,
                                         stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.increase_stream_retention_period(retention_period_hours,
                                                            stream_name, stream_arn)

    def decrease_stream_retention_period(self, retention_period_hours: int,
                                         stream_name: str | None = None,
                                         stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.decrease_stream_retention_period(retention_period_hours,
                                                            stream_name, stream_arn)

    def update_stream_mode(self, stream_arn: str, stream_mode_details: Mapping[str, str],
                           warm_throughput_mi_bps: int | None = None) -> dict[str, Any]:
        return self._admin.update_stream_mode(stream_arn, stream_mode_details,
                                              warm_throughput_mi_bps)

    def update_max_record_size(self, max_record_size_in_ki_b: int,
                               stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.update_max_record_size(max_record_size_in_ki_b, stream_arn)

    def enable_enhanced_monitoring(self, shard_level_metrics: list[str],
                                   stream_name: str | None = None,
                                   stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.enable_enhanced_monitoring(shard_level_metrics, stream_name,
                                                      stream_arn)

    def disable_enhanced_monitoring(self, shard_level_metrics: list[str],
                                    stream_name: str | None = None,
                                    stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.disable_enhanced_monitoring(shard_level_metrics, stream_name,
                                                       stream_arn)

    def describe_limits(self) -> dict[str, Any]:
        return self._admin.describe_limits()

    def start_stream_encryption(self, encryption_type: str, key_id: str,
                                stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.start_stream_encryption(encryption_type, key_id, stream_name,
                                                   stream_arn)

    def stop_stream_encryption(self, encryption_type: str, key_id: str,
                               stream_name: str | None = None,
                               stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.stop_stream_encryption(encryption_type, key_id, stream_name,
                                                  stream_arn)

    # ------------------------------------------------------------------ tags
    def add_tags_to_stream(self, tags: Mapping[str, str], stream_name: str | None = None,
                           stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.add_tags_to_stream(tags, stream_name, stream_arn)

    def remove_tags_from_stream(self, tag_keys: Iterable[str], stream_name: str | None = None,
                                stream_arn: str | None = None) -> dict[str, Any]:
        return self._admin.remove_tags_from_stream(tag_keys, stream_name, stream_arn)

    def list_tags_for_stream(self, stream_name: str | None = None, stream_arn: str | None = None,
                             exclusive_start_tag_key: str | None = None,
                             limit: int | None = None) -> dict[str, Any]:
        return self._admin.list_tags_for_stream(stream_name, stream_arn,
                                                exclusive_start_tag_key, limit)

    def tag_resource(self, tags: Mapping[str, str], resource_arn: str) -> dict[str, Any]:
        return self._admin.tag_resource(tags, resource_arn)

    def untag_resource(self, tag_keys: Iterable[str], resource_arn: str) -> dict[str, Any]:
        return self._admin.untag_resource(tag_keys, resource_arn)

    def list_tags_for_resource(self, resource_arn: str) -> dict[str, Any]:
        return self._admin.list_tags_for_resource(resource_arn)

    # ------------------------------------------------------------- consumers
    def register_stream_consumer(self, stream_arn: str, consumer_name: str,
                                 tags: Mapping[str, str] | None = None) -> dict[str, Any]:
        return self._admin.register_stream_consumer(stream_arn, consumer_name, tags)

    def describe_stream_consumer(self, stream_arn: str | None = None,
                                 consumer_name: str | None = None,
                                 consumer_arn: str | None = None) -> dict[str, Any]:
        return self._admin.describe_stream_consumer(stream_arn, consumer_name, consumer_arn)

    def list_stream_consumers(self, stream_arn: str, next_token: str | None = None,
                              max_results: int | None = None,
                              stream_creation_timestamp: float | None = None) -> dict[str, Any]:
        return self._admin.list_stream_consumers(stream_arn, next_token, max_results,
                                                 stream_creation_timestamp)

    def deregister_stream_consumer(self, stream_arn: str | None = None,
                                   consumer_name: str | None = None,
                                   consumer_arn: str | None = None) -> dict[str, Any]:
        return self._admin.deregister_stream_consumer(stream_arn, consumer_name, consumer_arn)
