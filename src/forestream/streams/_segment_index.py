"""Segment internals of :mod:`.segment_log`: frame codec, sparse index, segment state.

The frame layout is documented in :mod:`.segment_log`. Index file layout (``<base>.idx``,
append-only, little-endian), one 28-byte entry per indexed frame::

    u64 offset | u64 file position | i64 timestamp_ms | u32 crc32(first 24 bytes of the entry)

A frame is indexed when it is the first of its segment or starts ``every`` bytes or more
after the previously indexed frame, so the index is a pure function of the log and
``every``: it can always be rebuilt by scanning the segment. The entry list is strictly
increasing in offset and position and non-decreasing in timestamp (timestamps never
decrease within a log), so the same entries serve offset seeks and time seeks.
"""

from __future__ import annotations

import os
import struct
import zlib
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from pathlib import Path

MAX_KEY_BYTES = 1024  # 256 characters of UTF-8
MAX_VALUE_BYTES = 10 * 2**20
CRC = struct.Struct("<I")
REST = struct.Struct("<IQqH")  # length, offset, timestamp, key length
_HDR = struct.Struct("<IIQqH")  # crc + REST
HEADER_SIZE = _HDR.size  # 26
_FIXED = REST.size - 4  # bytes counted by `length` besides key and value: 18
_MAX_LENGTH = _FIXED + MAX_KEY_BYTES + MAX_VALUE_BYTES
READAHEAD = 1 << 20
ENTRY = struct.Struct("<QQqI")
_BODY = struct.Struct("<QQq")


class SparseIndex:
    """In-memory copy of a segment's index entries (three parallel ``array('q')``)."""

    __slots__ = ("offsets", "positions", "timestamps", "every")

    def __init__(self, every: int) -> None:
        self.offsets = array("q")
        self.positions = array("q")
        self.timestamps = array("q")
        self.every = every

    def __len__(self) -> int:
        return len(self.offsets)

    def due(self, position: int) -> bool:
        """Whether a frame starting at ``position`` gets an index entry."""
        return not self.positions or position - self.positions[-1] >= self.every

    def add(self, offset: int, position: int, timestamp_ms: int) -> bytes:
        """Record an entry; returns its encoded bytes for the index file."""
        self.offsets.append(offset)
        self.positions.append(position)
        self.timestamps.append(timestamp_ms)
        return encode_entry(offset, position, timestamp_ms)

    def extend(self, offsets: bytes, positions: bytes, timestamp_ms: int) -> None:
        """Record entries at once: ``offsets`` and ``positions`` as native int64s (a
        batch's frames, all with one timestamp)."""
        self.offsets.frombytes(offsets)
        self.positions.frombytes(positions)
        self.timestamps.extend([timestamp_ms] * (len(offsets) // 8))

    def floor_offset(self, offset: int) -> tuple[int, int]:
        """(offset, position) of the last entry with entry offset <= ``offset``."""
        i = max(bisect_right(self.offsets, offset) - 1, 0)
        return self.offsets[i], self.positions[i]

    def floor_time(self, timestamp_ms: int) -> tuple[int, int]:
        """(offset, position) of the last entry older than ``timestamp_ms`` (else the first).

        Every record with timestamp >= ``timestamp_ms`` lies at or after that position.
        """
        i = max(bisect_left(self.timestamps, timestamp_ms) - 1, 0)
        return self.offsets[i], self.positions[i]

    def encode(self) -> bytes:
        return b"".join(
            encode_entry(o, p, t)
            for o, p, t in zip(self.offsets, self.positions, self.timestamps, strict=True)
        )

    @classmethod
    def parse(cls, data: bytes, *, base: int, log_size: int, every: int) -> SparseIndex | None:
        """Decode an index file; ``None`` if it is damaged or inconsistent with its log.

        Checks: whole entries only, every entry's CRC, first entry at (``base``, 0), offsets
        and positions strictly increasing, timestamps non-decreasing, positions inside the
        log. (An *incomplete* but otherwise valid index passes; callers extend it.)
        """
        if len(data) % ENTRY.size:
            return None
        index = cls(every)
        prev_off = prev_pos = -1
        prev_ts: int | None = None
        for off, pos, ts, crc in ENTRY.iter_unpack(data):
            if zlib.crc32(_BODY.pack(off, pos, ts)) != crc:
                return None
            if not index.offsets and (off != base or pos != 0):
                return None
            if off <= prev_off or pos <= prev_pos or pos >= log_size:
                return None
            if prev_ts is not None and ts < prev_ts:
                return None
            index.offsets.append(off)
            index.positions.append(pos)
            index.timestamps.append(ts)
            prev_off, prev_pos, prev_ts = off, pos, ts
        if not index.offsets and log_size:
            return None
        return index


def encode_entry(offset: int, position: int, timestamp_ms: int) -> bytes:
    body = _BODY.pack(offset, position, timestamp_ms)
    return body + struct.pack("<I", zlib.crc32(body))


class CorruptLogError(Exception):
    """Unrecoverable damage in a segment that is not the log's tail."""

    def __init__(self, path: str | Path, position: int, reason: str) -> None:
        super().__init__(f"{path}: {reason} at byte {position}")
        self.path, self.position, self.reason = str(path), position, reason


class BadFrame(Exception):
    def __init__(self, position: int, reason: str) -> None:
        super().__init__(position, reason)
        self.position, self.reason = position, reason


def pread(fd: int, size: int, pos: int) -> bytes:
    data = os.pread(fd, size, pos)
    if len(data) < size:  # short read: only at end of file, or a >2 GiB request
        parts = [data]
        while size > (got := sum(map(len, parts))):
            if not (more := os.pread(fd, size - got, pos + got)):
                break
            parts.append(more)
        data = b"".join(parts)
    return data


def iter_frames(
    fd: int, pos: int, end: int, readahead: int = READAHEAD
) -> Iterator[tuple[int, int, int, bytes, bytes, int]]:
    """Yield (position, offset, timestamp, key, value, next position) for frames in [pos, end).

    Raises :class:`BadFrame` at the first frame that is truncated or fails its checks.
    """
    buf, base = b"", pos
    while pos < end:
        rel = pos - base
        if len(buf) - rel < HEADER_SIZE:
            buf, base, rel = pread(fd, max(HEADER_SIZE, min(readahead, end - pos)), pos), pos, 0
            if len(buf) < HEADER_SIZE:
                raise BadFrame(pos, "truncated frame header")
        crc, length, off, ts, klen = _HDR.unpack_from(buf, rel)
        if not _FIXED <= length <= _MAX_LENGTH or klen > min(length - _FIXED, MAX_KEY_BYTES):
            raise BadFrame(pos, f"bad frame length {length}")
        total = length + 8
        if pos + total > end:
            raise BadFrame(pos, "truncated frame")
        if len(buf) - rel < total:
            buf, base, rel = pread(fd, max(total, min(readahead, end - pos)), pos), pos, 0
            if len(buf) < total:
                raise BadFrame(pos, "truncated frame")
        if zlib.crc32(memoryview(buf)[rel + 4 : rel + total]) != crc:
            raise BadFrame(pos, "checksum mismatch")
        k0 = rel + HEADER_SIZE
        yield pos, off, ts, buf[k0 : k0 + klen], buf[k0 + klen : rel + total], pos + total
        pos += total


class Segment:
    """One segment's files and in-memory state (guarded by the log's lock)."""

    __slots__ = ("base", "log_path", "idx_path", "fd", "idx_fd", "size", "committed_end",
                 "next_offset", "last_ts", "index", "refs", "doomed")

    def __init__(self, directory: Path, base: int, every: int) -> None:
        self.base = self.next_offset = base
        self.log_path = directory / f"{base:020d}.log"
        self.idx_path = directory / f"{base:020d}.idx"
        self.fd: int | None = None
        self.idx_fd: int | None = None
        self.size = self.committed_end = 0
        self.last_ts: int | None = None
        self.index = SparseIndex(every)
        self.refs = 0
        self.doomed = False  # close the fds once no reader holds the segment

    def load_sealed(self, next_base: int) -> None:
        """Open a non-last segment: check its index and its frames from the last index entry
        to the end of the file (whole file if the index is missing or damaged)."""
        every = self.index.every
        fd = os.open(self.log_path, os.O_RDONLY)
        try:
            self.size = self.committed_end = os.fstat(fd).st_size
            if not self.size:
                raise CorruptLogError(self.log_path, 0, "empty segment before the last one")
            try:
                data = self.idx_path.read_bytes()
            except FileNotFoundError:
                data = b""
            index = SparseIndex.parse(data, base=self.base, log_size=self.size, every=every)
            rewrite = index is None or not len(index) or index.offsets[-1] >= next_base
            if index is None or rewrite:  # missing or damaged: rebuild it from the segment
                self.index, expect, pos = SparseIndex(every), self.base, 0
            else:
                self.index, expect, pos = index, index.offsets[-1], index.positions[-1]
            extra = []
            try:
                for fpos, off, ts, _k, _v, nxt in iter_frames(fd, pos, self.size):
                    if off != expect:
                        raise BadFrame(fpos, f"offset {off} where {expect} was expected")
                    if self.index.due(fpos):
                        extra.append(self.index.add(off, fpos, ts))
                    expect, self.last_ts, pos = off + 1, ts, nxt
            except BadFrame as e:
                raise CorruptLogError(self.log_path, e.position, e.reason) from None
            if expect != next_base:
                raise CorruptLogError(self.log_path, pos, f"segment ends at offset {expect} "
                                      f"but the next segment starts at {next_base}")
            self.next_offset = expect
            if rewrite:
                self.idx_path.write_bytes(self.index.encode())
            elif extra:  # incomplete index (e.g. written with another index_every_bytes)
                with open(self.idx_path, "ab") as f:
                    f.write(b"".join(extra))
        finally:
            os.close(fd)

    def load_last(self, sync: Callable[[int], None] | None) -> None:
        """Open the last segment for appending: scan every frame, truncate at the first one
        that is torn or damaged (fsynced with ``sync``), rebuild the index and rewrite its
        file if it differs."""
        self.fd = os.open(self.log_path, os.O_RDWR)
        file_size = os.fstat(self.fd).st_size
        expect, good = self.base, 0
        try:
            for fpos, off, ts, _k, _v, nxt in iter_frames(self.fd, 0, file_size):
                if off != expect or (self.last_ts is not None and ts < self.last_ts):
                    break
                if self.index.due(fpos):
                    self.index.add(off, fpos, ts)
                expect, self.last_ts, good = off + 1, ts, nxt
        except BadFrame:
            pass
        if good < file_size:  # torn, partial or corrupt tail
            os.ftruncate(self.fd, good)
            if sync is not None:
                sync(self.fd)
        self.size = self.committed_end = good
        self.next_offset = expect
        wanted = self.index.encode()
        self.idx_fd = os.open(self.idx_path, os.O_RDWR | os.O_CREAT, 0o644)
        if pread(self.idx_fd, len(wanted) + 1, 0) != wanted:
            os.ftruncate(self.idx_fd, 0)
            os.pwrite(self.idx_fd, wanted, 0)

    def open_fd(self) -> int:
        """The log file's descriptor; only the active segment and pinned ones have one."""
        if self.fd is None:
            raise ValueError(f"segment {self.log_path} is not open")
        return self.fd

    def open_idx_fd(self) -> int:
        """The index file's descriptor (the active segment's)."""
        if self.idx_fd is None:
            raise ValueError(f"segment index {self.idx_path} is not open")
        return self.idx_fd

    def doom(self) -> None:
        """Mark for closing: the fds close now, or when the last reader lets go."""
        self.doomed = True
        if not self.refs:
            self.close_fds()

    def close_fds(self) -> None:
        for name in ("fd", "idx_fd"):
            if (fd := getattr(self, name)) is not None:
                setattr(self, name, None)
                os.close(fd)
