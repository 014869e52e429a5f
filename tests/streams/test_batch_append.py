"""A batch appended with numba's kernels (``forestream.streams.batch``) is stored exactly
as the record-by-record Python code stores it.

The kernels replace ``zlib.crc32``, ``hashlib.md5``, ``RoutingTable.route_keys`` and
``SegmentLog.append``'s framing; each is compared with what it replaces: checksums on
random input, routes (and the error for a hash key no shard takes) on random keys, and
whole segment and index files, byte for byte, across segment rolls.
"""

from __future__ import annotations

import hashlib
import random
import zlib

import numpy as np
import pytest

from forestream.streams import _batch_kernels as kernels
from forestream.streams.batch import RecordBatch, route_batch, warm
from forestream.streams.errors import InvalidArgumentError
from forestream.streams.hashing import MAX_HASH_KEY, uniform_ranges
from forestream.streams.metadata import ShardInfo
from forestream.streams.record_io import RoutingTable
from forestream.streams.segment_log import SegmentLog

pytestmark = pytest.mark.skipif(not warm(), reason="zlib or libcrypto not loadable here")


def make_batch(records: list[tuple[bytes, bytes, str | None]], rng: random.Random
               ) -> RecordBatch:
    """``(key, data, explicit hash key)`` records as a batch, each record's data cut at
    a random point into the bulk buffer and up to 3 tail bytes (as base64's padded last
    group leaves it)."""
    keys, bulk = bytearray(b"junk"), bytearray(b"more junk")
    n = len(records)
    key_start, key_len = np.zeros(n, np.int64), np.zeros(n, np.int64)
    data_start, data_len = np.zeros(n, np.int64), np.zeros(n, np.int64)
    tails, tail_len = np.zeros((n, 3), np.uint8), np.zeros(n, np.int64)
    explicit = {}
    for i, (key, data, hash_key) in enumerate(records):
        key_start[i], key_len[i] = len(keys), len(key)
        keys += key
        cut = max(0, len(data) - rng.randint(0, min(3, len(data))))
        data_start[i], data_len[i] = len(bulk), cut
        bulk += data[:cut]
        tail_len[i] = len(data) - cut
        tails[i, :tail_len[i]] = list(data[cut:])
        if hash_key is not None:
            explicit[i] = hash_key
    return RecordBatch(n, np.frombuffer(bytes(keys), np.uint8), key_start, key_len,
                       np.frombuffer(bytes(bulk), np.uint8), data_start, data_len, tails,
                       tail_len, explicit)


def test_crc32_and_md5_kernels_match_zlib_and_hashlib():
    rng = random.Random(1)
    buf = np.frombuffer(rng.randbytes(70_000), np.uint8)
    for start, end in [(0, 0), (0, 1), (3, 11), (5, 1045), (7, 70_000)]:
        assert kernels.crc32(buf, start, end) == zlib.crc32(buf[start:end].tobytes())
    starts = np.array([rng.randrange(60_000) for _ in range(300)], np.int64)
    lengths = np.array([rng.choice([0, 1, 55, 56, 63, 64, 65, 119, 120, 1024]) for _ in
                        range(300)], np.int64)
    hi, lo = np.zeros(300, np.uint64), np.zeros(300, np.uint64)
    kernels.md5_points(buf, starts, lengths, hi, lo)
    for i in range(300):
        digest = hashlib.md5(buf[starts[i]:starts[i] + lengths[i]].tobytes()).digest()
        assert int(hi[i]) << 64 | int(lo[i]) == int.from_bytes(digest, "big")


def _shards(bounds: list[tuple[int, int]]) -> list[ShardInfo]:
    return [ShardInfo(number, None, None, start, end, 0)
            for number, (start, end) in enumerate(bounds)]


def test_routes_match_the_routing_table_and_refuse_the_same_record():
    rng = random.Random(2)
    records = [(f"key-{rng.random()}".encode(), b"x",
                str(rng.randrange(MAX_HASH_KEY + 1)) if rng.random() < 0.2 else None)
               for _ in range(500)]
    batch = make_batch(records, rng)
    dicts = [{"PartitionKey": k.decode(), **({"ExplicitHashKey": h} if h else {})}
             for k, _, h in records]
    for count in (1, 3, 7):
        shards = _shards(uniform_ranges(count))
        table = RoutingTable(shards, [s.start_hash for s in shards])
        want = table.route_keys(dicts, [k for k, _, _ in records])
        assert [shards[k].number for k in route_batch(batch, shards)] == want
    # a hole in the hash key space: the first record that falls in it is refused
    shards = _shards([(0, 2**126), (2**127, MAX_HASH_KEY)])
    table = RoutingTable(shards, [s.start_hash for s in shards])
    with pytest.raises(InvalidArgumentError) as general:
        table.route_keys(dicts, [k for k, _, _ in records])
    with pytest.raises(InvalidArgumentError) as batched:
        route_batch(batch, shards)
    assert str(batched.value) == str(general.value)
    # an explicit hash key out of range before that record: its own error, as before
    bad = make_batch([(b"a", b"", str(2**127 + 1)), (b"b", b"", str(MAX_HASH_KEY + 1)),
                      (b"c", b"", "5")], rng)
    with pytest.raises(InvalidArgumentError, match="must be in the range"):
        route_batch(bad, _shards(uniform_ranges(2)))


@pytest.mark.parametrize("segment_max, every", [(64 * 2**20, 4096), (5000, 700), (1, 1)])
def test_append_batch_writes_the_same_files_as_append(tmp_path, segment_max, every):
    rng = random.Random(segment_max)
    marker = b"\x00"
    logs = [SegmentLog(tmp_path / name, segment_max_bytes=segment_max, fsync=True,
                       index_every_bytes=every) for name in ("batch", "one-by-one")]
    ts = 1_700_000_000_000
    for call in range(6):
        records = [(rng.randbytes(rng.randint(1, 40)), rng.randbytes(rng.randint(0, 3000)),
                    None) for _ in range(rng.randint(1, 60))]
        batch = make_batch(records, rng)
        order = np.array(sorted(rng.sample(range(len(records)),
                                           rng.randint(1, len(records)))), np.int64)
        got = logs[0].append_batch(batch, order, ts + call, value_prefix=marker)
        want = logs[1].append([(records[i][0], marker + records[i][1]) for i in order],
                              ts + call)
        assert got == want
    assert logs[0].next_offset == logs[1].next_offset
    names = sorted(p.name for p in (tmp_path / "batch").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "one-by-one").iterdir())
    if segment_max < 64 * 2**20:
        assert len(names) > 4  # rolled
    for name in names:
        assert (tmp_path / "batch" / name).read_bytes() == \
            (tmp_path / "one-by-one" / name).read_bytes(), name
    for a, b in zip(logs[0]._segments, logs[1]._segments, strict=True):
        assert (list(a.index.offsets), list(a.index.positions), list(a.index.timestamps)) \
            == (list(b.index.offsets), list(b.index.positions), list(b.index.timestamps))
    for log in logs:
        log.close()
    reopened = SegmentLog(tmp_path / "batch", segment_max_bytes=segment_max)
    assert reopened.next_offset == logs[1].next_offset  # every frame's CRC checked
    reopened.close()
