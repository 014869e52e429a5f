"""Append-only segment log: the embedded storage of one shard.

A log is a directory of segment files named by the offset of their first record, zero-padded
to 20 digits (``00000000000000000000.log``), each with a sparse index beside it (``.idx``,
see :mod:`._segment_index`). Only the last segment (the *active* one) is written; a new one
starts when a record would push the active segment past ``segment_max_bytes`` (a record
larger than that goes alone into an empty segment). Offsets start at 0, are assigned by the
log and are never reused: the segment file names carry them across restarts and retention.

Frame layout (little-endian, one per record)::

    u32 crc | u32 length | u64 offset | i64 timestamp_ms | u16 key_len | key | value

``length`` counts the bytes after the length field (18 + key_len + len(value)); ``crc`` is
``zlib.crc32`` of everything after the crc field (length through value).

Durability: with ``fsync=True`` :meth:`SegmentLog.append` returns only once its records are
on disk. Concurrent appenders share fsyncs (group commit): each writes its frames under the
lock, then one waiter becomes the leader and fdatasyncs everything written so far while the
others wait on a condition until the synced offset covers their records. Readers see only
committed records (synced ones with ``fsync=True``, written ones without), so a reader never
sees a half-written frame or a record a crash could still take away. A segment is fsynced
when it is sealed, so every non-active segment is complete on disk.

Recovery on open: the last segment is scanned frame by frame (length bounds, CRC, offsets
contiguous) and truncated at the first frame that fails, its index rebuilt and the index
file rewritten if it differs. Older segments are checked cheaply (index entries, and the
frames from the last index entry to the end of the file); damage found there raises
:class:`CorruptLogError`, as does a bad frame met by a read.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import zlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._segment_index import (
    CRC,
    ENTRY,
    HEADER_SIZE,
    MAX_KEY_BYTES,
    MAX_VALUE_BYTES,
    READAHEAD,
    REST,
    BadFrame,
    CorruptLogError,
    Segment,
    iter_frames,
)

if TYPE_CHECKING:
    import numpy.typing as npt

    from .batch import RecordBatch

__all__ = ["CorruptLogError", "LogRecord", "SegmentLog", "MAX_KEY_BYTES", "MAX_VALUE_BYTES"]

_BYTES = (bytes, bytearray, memoryview)
_fsync = getattr(os, "fdatasync", os.fsync)


@dataclass(frozen=True, slots=True)
class LogRecord:
    offset: int
    timestamp_ms: int
    key: bytes
    value: bytes


class SegmentLog:
    """Append-only log of records in segment files; see the module docstring."""

    def __init__(self, directory: str | Path, *, segment_max_bytes: int = 64 * 2**20,
                 fsync: bool = True, index_every_bytes: int = 4096) -> None:
        if segment_max_bytes < 1 or index_every_bytes < 1:
            raise ValueError("segment_max_bytes and index_every_bytes must be positive")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment_max = segment_max_bytes
        self._fsync_on = fsync
        self._every = index_every_bytes
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._syncing = False
        self._closed = False
        self._error: BaseException | None = None
        self.fsync_count = 0  # fsync/fdatasync calls made (group commit shares them)
        self._segments: list[Segment] = []
        self._recover()
        active = self._segments[-1]
        self._next_offset = self._committed = active.next_offset
        self._last_ts = next((s.last_ts for s in reversed(self._segments) if s.last_ts
                              is not None), None)

    # ---------------------------------------------------------------- recovery
    def _recover(self) -> None:
        bases = sorted(int(p.stem) for p in self.directory.glob("*.log")
                       if len(p.stem) == 20 and p.stem.isdigit())
        for p in self.directory.glob("*.idx"):  # left behind by an interrupted deletion
            if p.stem.isdigit() and int(p.stem) not in bases:
                p.unlink(missing_ok=True)
        if not bases:
            self._segments.append(self._create_segment(0))
            return
        for i, base in enumerate(bases):
            seg = Segment(self.directory, base, self._every)
            if i + 1 < len(bases):
                seg.load_sealed(bases[i + 1])
            else:
                seg.load_last(self._sync if self._fsync_on else None)
            self._segments.append(seg)

    def _create_segment(self, base: int) -> Segment:
        seg = Segment(self.directory, base, self._every)
        seg.fd = os.open(seg.log_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        seg.idx_fd = os.open(seg.idx_path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        if self._fsync_on:
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                self._sync(dfd, os.fsync)
            finally:
                os.close(dfd)
        return seg

    def _sync(self, fd: int, fn: Callable[[int], None] | None = None) -> None:
        self.fsync_count += 1
        (fn or _fsync)(fd)

    # ------------------------------------------------------------------ append
    def append(self, entries: Sequence[tuple[bytes, bytes]], timestamp_ms: int | None = None,
               *, durable: bool = True) -> tuple[int, int]:
        """Append ``(key, value)`` entries in order; returns (first offset, timestamp_ms).

        All entries get consecutive offsets and the same timestamp: ``max(timestamp_ms or now,
        last timestamp)``. With ``fsync=True`` they are on disk when this returns — unless
        ``durable`` is False: then the caller must call :meth:`sync_through` with the end
        of the entries before it tells anyone they are stored (a writer to several logs
        writes to all, then waits for each: syncs made meanwhile by others count).
        """
        items = []  # (key length, key + value)
        max_key, max_value = MAX_KEY_BYTES, MAX_VALUE_BYTES
        for key, value in entries:
            if type(key) is not bytes:  # the store's keys are bytes already
                if not isinstance(key, _BYTES):
                    raise TypeError("keys and values must be bytes")
                key = bytes(key)
            if not isinstance(value, _BYTES):
                raise TypeError("keys and values must be bytes")
            if len(key) > max_key or len(value) > max_value:
                raise ValueError(f"key ({len(key)} bytes) or value ({len(value)} "
                                 f"bytes) over {MAX_KEY_BYTES} / {MAX_VALUE_BYTES} bytes")
            items.append((len(key), key + value))
        return self._append_with(lambda ts: self._write(items, ts), not items, timestamp_ms,
                                 durable)

    def append_batch(self, batch: RecordBatch, indexes: npt.NDArray[np.int64],
                     timestamp_ms: int | None = None, *, durable: bool = True,
                     value_prefix: bytes = b"") -> tuple[int, int]:
        """:meth:`append` of records ``indexes`` of ``batch`` (in that order; each
        value ``value_prefix`` + the record's data), with the same offsets, timestamp,
        frames, index entries and durability, framed and CRC-ed by numba into one
        buffer per segment written (:mod:`._batch_kernels`)."""
        sizes = batch.data_len[indexes] + batch.tail_len[indexes] + len(value_prefix)
        too_big = (batch.key_len[indexes] > MAX_KEY_BYTES) | (sizes > MAX_VALUE_BYTES)
        if too_big.any():
            i = int(indexes[int(np.argmax(too_big))])
            raise ValueError(f"key ({int(batch.key_len[i])} bytes) or value "
                             f"({int(sizes[int(np.argmax(too_big))])} bytes) over "
                             f"{MAX_KEY_BYTES} / {MAX_VALUE_BYTES} bytes")
        return self._append_with(
            lambda ts: self._write_batch(batch, indexes, int(sizes.sum()), ts, value_prefix),
            not len(indexes), timestamp_ms, durable)

    def _append_with(self, write: Callable[[int], None], empty: bool,
                     timestamp_ms: int | None, durable: bool) -> tuple[int, int]:
        """What :meth:`append` and :meth:`append_batch` share around their ``write(ts)``
        (lock held): the timestamp (never behind the last), a log that failed stays
        failed, and with ``durable`` the wait for the fsync; (first offset, timestamp)."""
        ts = time.time_ns() // 1_000_000 if timestamp_ms is None else int(timestamp_ms)
        if not 0 <= ts < 2**63:
            raise ValueError(f"timestamp_ms {ts} out of range")
        with self._lock:
            self._check_open()
            if self._error is not None:
                raise OSError("log failed earlier; reopen it to recover") from self._error
            if self._last_ts is not None:
                ts = max(ts, self._last_ts)
            first = self._next_offset
            if empty:
                return first, ts
            try:
                write(ts)
            except BaseException as e:
                self._error = e
                self._cond.notify_all()
                raise
            if self._fsync_on and durable:
                self._wait_durable(self._next_offset)
            return first, ts

    def _write_batch(self, batch: RecordBatch, order: npt.NDArray[np.int64], values: int,
                     ts: int, value_prefix: bytes) -> None:
        """:meth:`_write` of a batch's records (lock held)."""
        from ._batch_kernels import frame_records  # numba: only where batches come

        n = len(order)
        out = np.empty(values + int(batch.key_len[order].sum()) + HEADER_SIZE * n,
                       dtype=np.uint8)
        entries = np.empty((n, 2), dtype=np.int64)  # at most one index entry a frame
        encoded = np.empty(ENTRY.size * n, dtype=np.uint8)
        prefix = np.frombuffer(value_prefix, dtype=np.uint8)
        k = 0
        while k < n:
            seg = self._active
            pos, off = seg.size, self._next_offset
            idx_at = len(seg.index) * ENTRY.size
            next_idx = seg.index.positions[-1] + self._every if len(seg.index) else 0
            done, used, count, _ = frame_records(
                out, pos, self._segment_max, next_idx, self._every, off, ts, order, k,
                batch.keys, batch.key_start, batch.key_len, prefix, batch.data,
                batch.data_start,
                batch.data_len, batch.tails, batch.tail_len, entries, encoded)
            if done:
                written, fd, data = 0, seg.open_fd(), out.data[:used]
                while written < used:
                    written += os.pwrite(fd, data[written:], pos + written)
                if count:
                    seg.index.extend(entries[:count, 0].tobytes(),
                                     entries[:count, 1].tobytes(), ts)
                    os.pwrite(seg.open_idx_fd(), encoded[:ENTRY.size * count].tobytes(), idx_at)
                pos, off = pos + used, off + done
                seg.size, seg.next_offset, seg.last_ts = pos, off, ts
                self._next_offset, self._last_ts = off, ts
                if not self._fsync_on:
                    seg.committed_end, self._committed = pos, off
            k += done
            if k < n:
                self._roll()

    def sync_through(self, end: int) -> None:
        """Return once every record below offset ``end`` is on disk (with ``fsync=True``;
        at once without): the second half of ``append(..., durable=False)``."""
        if not self._fsync_on:
            return
        with self._lock:
            self._wait_durable(end)

    def _write(self, items: list[tuple[int, bytes]], ts: int) -> None:
        i, n, every, crc32 = 0, len(items), self._every, zlib.crc32
        while i < n:
            seg = self._active
            pos, off = seg.size, self._next_offset
            parts: list[bytes] = []
            idx: list[bytes] = []
            idx_at = len(seg.index) * ENTRY.size
            next_idx = seg.index.positions[-1] + every if len(seg.index) else 0
            while i < n:
                klen, kv = items[i]
                flen = HEADER_SIZE + len(kv)
                if pos and pos + flen > self._segment_max:
                    break
                if pos >= next_idx:
                    idx.append(seg.index.add(off, pos, ts))
                    next_idx = pos + every
                rest = REST.pack(flen - 8, off, ts, klen)
                parts += (CRC.pack(crc32(kv, crc32(rest))), rest, kv)
                pos, off, i = pos + flen, off + 1, i + 1
            if parts:
                data = b"".join(parts)
                written, fd = 0, seg.open_fd()
                while written < len(data):
                    written += os.pwrite(fd, memoryview(data)[written:], seg.size + written)
                if idx:
                    os.pwrite(seg.open_idx_fd(), b"".join(idx), idx_at)
                seg.size, seg.next_offset, seg.last_ts = pos, off, ts
                self._next_offset, self._last_ts = off, ts
                if not self._fsync_on:
                    seg.committed_end, self._committed = pos, off
            if i < n:
                self._roll()

    def _roll(self) -> None:
        old = self._active
        if self._fsync_on:
            self._sync(old.open_fd())
            self._sync(old.open_idx_fd())
        old.committed_end = old.size
        self._committed = max(self._committed, old.next_offset)
        self._segments.append(self._create_segment(old.next_offset))
        old.refs += 1
        self._unpin(old)  # closes its fds unless a reader or the sync leader holds it
        self._cond.notify_all()

    def _wait_durable(self, target: int) -> None:
        """Group commit (lock held): return once every offset < ``target`` is on disk."""
        while self._committed < target:
            if self._error is not None:
                raise OSError("fsync failed; records may not be durable") from self._error
            if self._syncing:
                self._cond.wait()
                continue
            self._syncing = True  # become the leader: sync everything written so far
            seg = self._active
            pos, upto = seg.size, self._next_offset
            self.fsync_count += 1
            error = None
            fd = self._pin(seg)
            self._lock.release()
            try:
                _fsync(fd)
            except BaseException as e:
                error = e
            finally:
                self._lock.acquire()
            self._unpin(seg)
            self._syncing = False
            if error is None:
                seg.committed_end = max(seg.committed_end, pos)
                self._committed = max(self._committed, upto)
            else:
                self._error = error
            self._cond.notify_all()

    @property
    def _active(self) -> Segment:
        return self._segments[-1]

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"segment log {self.directory} is closed")

    # ------------------------------------------------------------ properties
    @property
    def next_offset(self) -> int:
        """Offset the next appended record will get."""
        return self._next_offset

    @property
    def committed_offset(self) -> int:
        """Records below this offset are readable (durable when ``fsync=True``)."""
        return self._committed

    @property
    def start_offset(self) -> int:
        """Oldest offset still stored."""
        return self._segments[0].base

    @property
    def last_timestamp_ms(self) -> int | None:
        return self._last_ts

    def size_bytes(self) -> int:
        """Bytes of record frames stored (all segment files, without indexes)."""
        with self._lock:
            return sum(s.size for s in self._segments)

    # ----------------------------------------------------------------- reads
    def _pin(self, seg: Segment) -> int:  # lock held; keeps seg.fd open until _unpin
        if seg.fd is None:
            seg.fd = os.open(seg.log_path, os.O_RDONLY)
        seg.refs += 1
        return seg.fd

    def _unpin(self, seg: Segment) -> None:  # lock held; only the active segment keeps its fd
        seg.refs -= 1
        if not seg.refs and (seg.doomed or seg is not self._active):
            seg.close_fds()

    def read(self, offset: int, max_records: int = 10_000, max_bytes: int = 10 * 2**20
             ) -> list[LogRecord]:
        """Committed records from ``max(offset, start_offset)`` on, in order.

        Stops before ``max_records`` records or before the key + value bytes would pass
        ``max_bytes``; returns at least one record if there is one.
        """
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        with self._lock:
            self._check_open()
            offset, end_offset = max(offset, self.start_offset), self._committed
            if offset >= end_offset:
                return []
            i = bisect_right(self._segments, offset, key=lambda s: s.base) - 1
            segs: list[Segment] = []
            fds: list[int] = []
            ends: list[int] = []
            recs = data = 0
            for seg in self._segments[i:]:  # only the segments this read can reach
                fds.append(self._pin(seg))
                segs.append(seg)
                ends.append(seg.committed_end)
                recs += seg.next_offset - max(seg.base, offset)
                if len(segs) > 1:  # key + value bytes of a whole segment
                    data += seg.size - HEADER_SIZE * (seg.next_offset - seg.base)
                if recs >= max_records or data >= max_bytes:
                    break
            expect, pos = segs[0].index.floor_offset(offset)
        out: list[LogRecord] = []
        total = 0
        readahead = min(READAHEAD, max(64 * 1024, max_bytes + 2 * self._every))
        try:
            for seg, fd, end in zip(segs, fds, ends, strict=True):
                try:
                    for fpos, off, ts, key, value, _ in iter_frames(fd, pos, end, readahead):
                        if off != expect:
                            raise BadFrame(fpos, f"offset {off} where {expect} was expected")
                        expect += 1
                        if off < offset:
                            continue
                        size = len(key) + len(value)
                        if off >= end_offset or (out and total + size > max_bytes):
                            return out
                        out.append(LogRecord(off, ts, key, value))
                        total += size
                        if len(out) >= max_records:
                            return out
                except BadFrame as e:
                    raise CorruptLogError(seg.log_path, e.position, e.reason) from None
                pos = 0
            return out
        finally:
            with self._lock:
                for seg in segs:
                    self._unpin(seg)

    def offset_at_time(self, timestamp_ms: int) -> int:
        """First committed offset whose timestamp >= ``timestamp_ms`` (else the end)."""
        with self._lock:
            self._check_open()
            end_offset = self._committed
            for seg in self._segments:
                if seg.last_ts is None or seg.last_ts < timestamp_ms:
                    continue
                off, pos = seg.index.floor_time(timestamp_ms)
                fd = self._pin(seg)
                try:
                    for _p, off, ts, _k, _v, _ in iter_frames(fd, pos, seg.committed_end,
                                                                 64 * 1024):
                        if ts >= timestamp_ms:
                            return min(off, end_offset)
                except BadFrame as e:
                    raise CorruptLogError(seg.log_path, e.position, e.reason) from None
                finally:
                    self._unpin(seg)
                break
            return end_offset

    # ------------------------------------------------------------- retention
    def delete_before(self, timestamp_ms: int) -> int:
        """Delete whole non-active segments whose last record is older than ``timestamp_ms``.

        Returns the number of records dropped.
        """
        dropped = 0
        with self._lock:
            self._check_open()
            while len(self._segments) > 1 and (last := self._segments[0].last_ts) is not None \
                    and last < timestamp_ms:
                seg = self._segments.pop(0)
                dropped += seg.next_offset - seg.base
                seg.log_path.unlink(missing_ok=True)  # oldest first: a crash leaves a suffix
                seg.idx_path.unlink(missing_ok=True)
                seg.doom()
        return dropped

    # --------------------------------------------------------------- closing
    def close(self) -> None:
        """Flush (fsync) and close; idempotent. Appends and reads afterwards raise ValueError."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while self._syncing:
                self._cond.wait()
            seg = self._active
            try:
                if self._fsync_on and self._error is None and seg.fd is not None:
                    self._sync(seg.fd)
                    seg.committed_end, self._committed = seg.size, self._next_offset
            finally:
                self._cond.notify_all()
                for s in self._segments:
                    s.doom()

    def delete(self) -> None:
        """Close the log and remove its files (and the directory if it is then empty)."""
        self.close()
        for p in list(self.directory.iterdir()):
            if p.suffix in (".log", ".idx") and p.stem.isdigit():
                p.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            self.directory.rmdir()

    def __enter__(self) -> SegmentLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"SegmentLog({str(self.directory)!r}, start_offset={self.start_offset}, "
                f"next_offset={self._next_offset}, segments={len(self._segments)})")
