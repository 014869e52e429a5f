"""A PutRecords batch held as buffers and spans, and how it is routed to shards.

The Kinesis front end's fast path (:mod:`forestream.server.aws.fast_put_records`) reads
a PutRecords body without making a Python object per record: the partition keys stay
where they are in the body, the data is decoded into one buffer. :class:`RecordBatch`
is that form; :meth:`RecordIO.put_batch <forestream.streams.record_io.RecordIO.put_batch>`
stores it exactly as :meth:`~forestream.streams.record_io.RecordIO.put_records` stores
the same records given as dicts (same checks in the same order, same errors, same
frames on disk, same answer), hashing, routing and framing the whole batch in a few
numba calls (:mod:`._batch_kernels`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InvalidArgumentError
from .hashing import parse_hash_key, sequence_base, shard_id

if TYPE_CHECKING:
    import numpy.typing as npt

    from .metadata import ShardInfo

    Bytes = npt.NDArray[np.uint8]
    Ints = npt.NDArray[np.int64]

_MASK64 = 2**64 - 1


def warm() -> bool:
    """Compile the kernels (or load them from numba's cache) by running each once on a
    tiny batch; False where they cannot run here (zlib or libcrypto not found)."""
    from ._batch_kernels import NATIVE, frame_records, md5_points, route_points

    if not NATIVE:
        return False
    one = np.ones(1, dtype=np.int64)
    zero = np.zeros(1, dtype=np.int64)
    key = np.frombuffer(b"k", dtype=np.uint8)
    hi = np.zeros(1, dtype=np.uint64)
    lo = np.zeros(1, dtype=np.uint64)
    md5_points(key, zero, one, hi, lo)
    route_points(hi, lo, hi, lo, hi, lo, np.empty(1, dtype=np.int64))
    frame_records(np.empty(64, dtype=np.uint8), 0, 1 << 20, 0, 4096, 0, 0, zero, 0,
                  key, zero, one, key, key, zero, one, np.zeros((1, 3), dtype=np.uint8), zero,
                  np.empty((1, 2), dtype=np.int64), np.empty(28, dtype=np.uint8))
    return True


@dataclass(frozen=True)
class RecordBatch:
    """``count`` records: record i's partition key is ``keys[key_start[i]:][:key_len[i]]``
    (UTF-8), its data ``data[data_start[i]:][:data_len[i]]`` followed by
    ``tails[i, :tail_len[i]]``; ``explicit`` maps the index of each record that has an
    ExplicitHashKey to it (as sent)."""

    count: int
    keys: Bytes
    key_start: Ints
    key_len: Ints
    data: Bytes
    data_start: Ints
    data_len: Ints
    tails: Bytes
    tail_len: Ints
    explicit: dict[int, str] = field(default_factory=dict)

    def sizes(self) -> Ints:
        """Each record's data + partition key bytes (what Kinesis's size limits count)."""
        return self.data_len + self.tail_len + self.key_len

    def data_of(self, i: int) -> bytes:
        start = int(self.data_start[i])
        main = self.data[start:start + int(self.data_len[i])].tobytes()
        return main + self.tails[i, :int(self.tail_len[i])].tobytes()

    def key_of(self, i: int) -> bytes:
        start = int(self.key_start[i])
        return self.keys[start:start + int(self.key_len[i])].tobytes()

    def records(self) -> list[dict[str, Any]]:
        """The records as the model's walk gives them to ``put_records``."""
        out: list[dict[str, Any]] = []
        for i in range(self.count):
            record: dict[str, Any] = {"Data": self.data_of(i)}
            if i in self.explicit:
                record["ExplicitHashKey"] = self.explicit[i]
            record["PartitionKey"] = self.key_of(i).decode("utf-8")
            out.append(record)
        return out


@dataclass(frozen=True)
class BatchResult:
    """Where :meth:`~forestream.streams.record_io.RecordIO.put_batch` stored a batch:
    record i went to shard ``numbers[routed[i]]``, the records of shard index k at
    consecutive offsets from ``firsts[k]`` in record order. Where the batch went the
    one-by-one way (encryption, throughput limits) ``routed`` is None and ``fallback``
    is that answer."""

    encryption: str
    numbers: list[int]
    routed: Ints | None
    firsts: dict[int, int]
    fallback: dict[str, Any] | None = None

    def answer(self) -> dict[str, Any]:
        """PutRecords' answer, as :meth:`put_records` gives it."""
        if self.routed is None:
            assert self.fallback is not None
            return self.fallback
        next_seq = {k: sequence_base(self.numbers[k]) + first
                    for k, first in self.firsts.items()}
        ids = {k: shard_id(number) for k, number in enumerate(self.numbers)}
        records: list[dict[str, str] | None] = []
        for k in self.routed.tolist():
            records.append({"SequenceNumber": str(next_seq[k]), "ShardId": ids[k]})
            next_seq[k] += 1
        return {"FailedRecordCount": 0, "Records": records,
                "EncryptionType": self.encryption}

    def shard_totals(self, batch: RecordBatch) -> dict[str, tuple[int, int]]:
        """Shard id -> (records, data bytes) stored there (for metrics)."""
        if self.routed is None:
            assert self.fallback is not None
            totals: dict[str, tuple[int, int]] = {}
            for i, out in enumerate(self.fallback["Records"]):
                shard = out.get("ShardId")
                if shard is not None:
                    count, size = totals.get(shard, (0, 0))
                    totals[shard] = (count + 1, size + int(batch.data_len[i] +
                                                           batch.tail_len[i]))
            return totals
        width = len(self.numbers)
        counts = np.bincount(self.routed, minlength=width).tolist()
        sizes = np.bincount(self.routed, weights=batch.data_len + batch.tail_len,
                            minlength=width).tolist()
        return {shard_id(self.numbers[k]): (counts[k], int(sizes[k]))
                for k in range(width) if counts[k]}


def route_batch(batch: RecordBatch, shards: list[ShardInfo]) -> Ints:
    """The index in ``shards`` (open shards, sorted by starting hash key) of the shard
    each record goes to: the one whose range holds its ExplicitHashKey, else the MD5 of
    its partition key, as ``RoutingTable.route_keys``; the same InvalidArgument for the
    first record that no shard takes."""
    from ._batch_kernels import md5_points, route_points  # numba: only where batches come

    n = batch.count
    hi = np.empty(n, dtype=np.uint64)
    lo = np.empty(n, dtype=np.uint64)
    md5_points(batch.keys, batch.key_start, batch.key_len, hi, lo)
    refused: tuple[int, InvalidArgumentError] | None = None
    for i in sorted(batch.explicit):
        try:
            point = parse_hash_key(batch.explicit[i])
        except InvalidArgumentError as exc:  # the first in order is the one raised
            refused, hi[i], lo[i] = (i, exc), 0, 0
            break
        hi[i], lo[i] = point >> 64, point & _MASK64
    starts = [s.start_hash for s in shards]
    ends = [s.end_hash for s in shards]
    out = np.empty(n, dtype=np.int64)
    bad = route_points(hi, lo, _halves(starts, 64), _halves(starts, 0), _halves(ends, 64),
                       _halves(ends, 0), out)
    if refused is not None and (bad < 0 or refused[0] <= bad):
        raise refused[1]
    if bad >= 0:
        point = int(hi[bad]) << 64 | int(lo[bad])
        raise InvalidArgumentError(f"hash key {point} is not covered by an open shard")
    return out


def _halves(values: list[int], shift: int) -> npt.NDArray[np.uint64]:
    return np.array([(v >> shift) & _MASK64 for v in values], dtype=np.uint64)
