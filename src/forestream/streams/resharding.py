"""Resharding: SplitShard, MergeShards and UpdateShardCount.

As on Kinesis, a reshard takes effect when the stream's UPDATING status ends (the store's
status delay): until then the old shards are the stream's shards and take its records,
and the children, already stored, are listed nowhere
(:meth:`~.metadata.StreamInfo.pending_shards`). Then
(:meth:`~.catalog.StreamCatalog.settle`) the parents close with an ending sequence number
(their last record) and stay readable until retention drops them; children start empty.
Readers that reach a closed shard's end get its ``ChildShards`` and move on. A component
of :class:`~forestream.streams.store.StreamStore` over the shared
:class:`~forestream.streams.catalog.StreamCatalog`; the stream's lock is held for writing
while shards change, so no record lands in a parent after it closes.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .catalog import StreamCatalog
from .errors import InvalidArgumentError, ResourceInUseError
from .hashing import read_decimal, shard_id, uniform_ranges
from .metadata import ShardInfo, StreamInfo, now_ms


class Resharder:
    """The resharding operations over ``catalog``."""

    def __init__(self, catalog: StreamCatalog) -> None:
        self.catalog = catalog

    def split_shard(self, shard_to_split: str, new_starting_hash_key: str,
                    stream_name: str | None = None,
                    stream_arn: str | None = None) -> dict[str, Any]:
        catalog = self.catalog
        number = catalog.shard_number(shard_to_split,
                                      catalog.requested_name(stream_name, stream_arn))
        info = catalog.resolve(stream_name, stream_arn)
        catalog.require_active(info)
        with catalog.stream_lock(info.name).write():
            parent = self._open_shard(info, number)
            self._check_limit(1)
            key = read_decimal(new_starting_hash_key, "NewStartingHashKey")
            # both children keep at least two hash keys, as Kinesis requires
            if not parent.start_hash + 1 < key < parent.end_hash:
                raise InvalidArgumentError(
                    f"NewStartingHashKey {new_starting_hash_key} used in SplitShard() on shard "
                    f"{shard_id(number)} in stream {info.name} under account "
                    f"{catalog.settings.account} is not both greater than one plus the "
                    f"shard's StartingHashKey {parent.start_hash} and less than the shard's "
                    f"EndingHashKey {parent.end_hash}.")
            self._reshard(info, [ChildShard(parent.start_hash, key - 1, parent.number),
                                 ChildShard(key, parent.end_hash, parent.number)])
        catalog.settle(info)  # at once without a status delay
        return {}

    def merge_shards(self, shard_to_merge: str, adjacent_shard_to_merge: str,
                     stream_name: str | None = None,
                     stream_arn: str | None = None) -> dict[str, Any]:
        catalog = self.catalog
        stream = catalog.requested_name(stream_name, stream_arn)
        numbers = [catalog.shard_number(value, stream)
                   for value in (shard_to_merge, adjacent_shard_to_merge)]
        info = catalog.resolve(stream_name, stream_arn)
        catalog.require_active(info)
        with catalog.stream_lock(info.name).write():
            a, b = (self._open_shard(info, number) for number in numbers)
            # the adjacent shard is the one right above, as Kinesis reads the pair
            if a.end_hash + 1 != b.start_hash:
                raise InvalidArgumentError(
                    f"Shards {shard_id(a.number)} and {shard_id(b.number)} in stream "
                    f"{info.name} under account {catalog.settings.account} are not an "
                    "adjacent pair of shards eligible for merging")
            self._reshard(info, [ChildShard(a.start_hash, b.end_hash, a.number, b.number)])
        catalog.settle(info)
        return {}

    def update_shard_count(self, target_shard_count: int, scaling_type: str,
                           stream_name: str | None = None,
                           stream_arn: str | None = None) -> dict[str, Any]:
        info = self.catalog.resolve(stream_name, stream_arn)
        self.catalog.require_active(info)
        with self.catalog.stream_lock(info.name).write():
            current = sorted(info.open_shards(), key=lambda s: s.start_hash)
            n = len(current)
            if not (n + 1) // 2 <= target_shard_count <= 2 * n:
                raise InvalidArgumentError(
                    f"TargetShardCount {target_shard_count} must be between half and double "
                    f"the current open shard count {n}: [{(n + 1) // 2}, {2 * n}]")
            self._check_limit(target_shard_count - n)
            children = []
            for lo, hi in uniform_ranges(target_shard_count):
                overlapping = [s.number for s in current if s.start_hash <= hi and
                               s.end_hash >= lo]
                children.append(ChildShard(lo, hi, overlapping[0],
                                           overlapping[1] if len(overlapping) > 1 else None))
            self._reshard(info, children)
        self.catalog.settle(info)
        return {"StreamName": info.name, "CurrentShardCount": n,
                "TargetShardCount": target_shard_count,
                "StreamARN": self.catalog.stream_arn(info.name)}

    # ------------------------------------------------------------------ helpers
    def _open_shard(self, info: StreamInfo, number: int) -> ShardInfo:
        shard = self.catalog.shard(info, number, to_change=True)
        if not shard.is_open:
            raise ResourceInUseError(f"Shard {shard_id(number)} in stream {info.name} under "
                                     f"account {self.catalog.settings.account} has already "
                                     "been merged or split, and thus is not eligible for "
                                     "merging or splitting")
        return shard

    def _check_limit(self, extra: int) -> None:
        if extra > 0:
            self.catalog.check_shard_limit(extra)

    def _reshard(self, info: StreamInfo, children: list[ChildShard]) -> None:
        """Store ``children`` (their parents still open: the change is pending) and turn
        the stream UPDATING, in one transaction; the caller holds the stream's lock for
        writing, and settles the stream after releasing it."""
        catalog, db = self.catalog, self.catalog.db
        ready = now_ms() + catalog.settings.status_delay_ms
        with db.transaction():
            for lo, hi, parent_number, adjacent in children:
                # created when the reshard is due to take effect
                child = ShardInfo(info.next_shard, parent_number, adjacent, lo, hi, ready)
                info.next_shard += 1
                info.shards.append(child)
                db.insert_shard(info.name, child)
            info.status, info.ready_ms = "UPDATING", ready
            db.update_stream(info)


class ChildShard(NamedTuple):
    """A shard a reshard creates: its hash key range and its parents' numbers."""

    start_hash: int
    end_hash: int
    parent: int
    adjacent_parent: int | None = None
