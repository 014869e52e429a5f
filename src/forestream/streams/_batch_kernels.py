"""numba kernels for appending a whole PutRecords batch: MD5 routing, framing and CRC-32.

PutRecords carries up to 500 records; done record by record in Python, hashing each
partition key (``hashlib.md5``), bisecting the shard table and packing, CRC-ing and
joining each frame cost about 3.4 us per record on the 2-core machine (issue 13). These
kernels do the same work for the whole batch in a few calls that release the GIL, with
the C libraries Python itself uses for the checksums (zlib's ``crc32``, OpenSSL's
``MD5``: a CRC-32 by table in numba ran at 0.7 GB/s here, zlib's at 3 GB/s):

* :func:`md5_points` — each partition key's MD5 as the two halves (big-endian) of the
  unsigned 128-bit integer :func:`~forestream.streams.hashing.partition_hash` gives;
* :func:`route_points` — the index of the open shard whose range holds each point, as
  :class:`~forestream.streams.record_io.RoutingTable` finds it (-1: none holds it);
* :func:`frame_records` — the frames of :mod:`.segment_log`'s layout, with their CRC-32
  (zlib's polynomial), into one buffer that becomes one ``pwrite``, stopping where the
  active segment is full, and the sparse-index entries due on the way.

Where either library cannot be loaded (:data:`NATIVE` is False) the store keeps its
Python path. Tests compare every kernel with the Python code it replaces (``hashlib``,
``zlib``, ``struct``), on random input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    _F = TypeVar("_F", bound=Callable[..., Any])

    def njit(*, cache: bool = ..., nogil: bool = ...) -> Callable[[_F], _F]:
        """``numba.njit(**options)`` (typed for mypy: the kernel keeps its signature)."""
        ...
else:
    from numba import njit


def _load_native() -> bool:
    """Load zlib and OpenSSL's libcrypto into the process's global symbols, where the
    kernels' ``crc32`` and ``MD5`` calls are linked (Python's own ``zlib`` and
    ``hashlib`` use the same libraries, loaded privately). False where either is
    missing: then the kernels are not used."""
    import ctypes.util

    import llvmlite.binding as llvm

    for names in (("z", "libz.so.1", "libz.dylib"),
                  ("crypto", "libcrypto.so.3", "libcrypto.so.1.1", "libcrypto.dylib")):
        for name in names:
            path = ctypes.util.find_library(name) if "." not in name else name
            if path is None:
                continue
            try:
                llvm.load_library_permanently(path)
                break
            except RuntimeError:
                continue
        else:
            return False
    return True


NATIVE = _load_native()
_crc32: Any
_md5: Any
memcpy: Any
if NATIVE:
    from numba import types

    # zlib's crc32(crc, buf, len) and OpenSSL's MD5(data, len, digest); the pointers go
    # as integers (the same registers on every 64-bit ABI numba supports)
    _crc32 = types.ExternalFunction("crc32", types.uint64(types.uint64, types.intp,
                                                          types.uint32))
    _md5 = types.ExternalFunction("MD5", types.intp(types.intp, types.uintp,
                                                    types.intp))
    #: the C library's memcpy (numba's slice assignment copied at ~1/14 of its speed)
    memcpy = types.ExternalFunction("memcpy", types.intp(types.intp, types.intp,
                                                         types.uintp))
else:  # pragma: no cover - every supported platform has both libraries
    _crc32 = _md5 = memcpy = None


@njit(cache=True, nogil=True)
def crc32(buf: Any, start: int, end: int) -> int:
    """``zlib.crc32(buf[start:end])``."""
    return int(_crc32(0, buf.ctypes.data + start, end - start))


@njit(cache=True, nogil=True)
def md5_points(buf: Any, starts: Any, lengths: Any, hi: Any, lo: Any) -> None:
    """``hi[i] << 64 | lo[i]`` = ``partition_hash`` of ``buf[starts[i]:starts[i] +
    lengths[i]]`` (its UTF-8 bytes), for every i."""
    digest = np.zeros(16, dtype=np.uint8)
    for r in range(starts.shape[0]):
        _md5(buf.ctypes.data + starts[r], lengths[r], digest.ctypes.data)
        h = np.uint64(0)
        low = np.uint64(0)
        for b in range(8):
            h = (h << np.uint64(8)) | np.uint64(digest[b])
            low = (low << np.uint64(8)) | np.uint64(digest[8 + b])
        hi[r] = h
        lo[r] = low


@njit(cache=True, nogil=True)
def _put32(out: Any, at: int, value: int) -> None:
    for b in range(4):
        out[at + b] = (value >> (8 * b)) & 0xFF


@njit(cache=True, nogil=True)
def _put64(out: Any, at: int, value: Any) -> None:
    for b in range(8):
        out[at + b] = (value >> np.uint64(8 * b)) & np.uint64(0xFF)


@njit(cache=True, nogil=True)
def route_points(hi: Any, lo: Any, start_hi: Any, start_lo: Any, end_hi: Any, end_lo: Any,
                 out: Any) -> int:
    """``out[i]``: the index of the last shard whose start is <= point i, if the point is
    <= that shard's end; else -1. Returns the first i with -1, or -1 if none."""
    first_bad = -1
    shards = start_hi.shape[0]
    for r in range(hi.shape[0]):
        h, l_ = hi[r], lo[r]
        found = -1
        lo_i, hi_i = 0, shards  # bisect_right over the starts
        while lo_i < hi_i:
            mid = (lo_i + hi_i) // 2
            if h < start_hi[mid] or (h == start_hi[mid] and l_ < start_lo[mid]):
                hi_i = mid
            else:
                lo_i = mid + 1
        k = lo_i - 1
        if k >= 0 and (h < end_hi[k] or (h == end_hi[k] and l_ <= end_lo[k])):
            found = k
        out[r] = found
        if found < 0 and first_bad < 0:
            first_bad = r
    return first_bad


@njit(cache=True, nogil=True)
def frame_records(out: Any, pos: int, segment_max: int, next_index: int, every: int,
                  offset: int, ts: int, order: Any, begin: int,
                  keys: Any, key_start: Any, key_len: Any, prefix: Any,
                  data: Any, data_start: Any, data_len: Any, tails: Any, tail_len: Any,
                  index_out: Any, index_bytes: Any) -> tuple[int, int, int, int]:
    """Frames of records ``order[begin:]`` (each: key ``keys[key_start:+key_len]``,
    value ``prefix``, ``data[data_start:+data_len]`` then ``tails[i, :tail_len]``) into
    ``out``
    from 0, the first at file position ``pos`` with ``offset``, all with ``ts``; stops
    before a frame that would take the segment past ``segment_max`` (unless the segment
    is empty). Index entries (offset, position) are due where the position reaches
    ``next_index``, then every ``every`` bytes; they go into ``index_out`` (offset,
    position) and, encoded as the index file holds them (28 bytes each), into
    ``index_bytes``.

    Returns (records framed, bytes written, index entries, next_index)."""
    w = 0
    entries = 0
    k = begin
    while k < order.shape[0]:
        r = order[k]
        klen, vmain, vtail = key_len[r], data_len[r], tail_len[r]
        flen = 26 + klen + prefix.shape[0] + vmain + vtail
        if pos and pos + flen > segment_max:
            break
        if pos >= next_index:
            index_out[entries, 0] = offset
            index_out[entries, 1] = pos
            e = 28 * entries
            _put64(index_bytes, e, np.uint64(offset))
            _put64(index_bytes, e + 8, np.uint64(pos))
            _put64(index_bytes, e + 16, np.uint64(ts))
            _put32(index_bytes, e + 24, crc32(index_bytes, e, e + 24))
            entries += 1
            next_index = pos + every
        _put32(out, w + 4, flen - 8)
        _put64(out, w + 8, np.uint64(offset))
        _put64(out, w + 16, np.uint64(ts))
        out[w + 24] = klen & 0xFF
        out[w + 25] = (klen >> 8) & 0xFF
        p = w + 26
        base = out.ctypes.data
        memcpy(base + p, keys.ctypes.data + key_start[r], klen)
        p += klen
        for b in range(prefix.shape[0]):
            out[p + b] = prefix[b]
        p += prefix.shape[0]
        memcpy(base + p, data.ctypes.data + data_start[r], vmain)
        p += vmain
        for b in range(vtail):
            out[p + b] = tails[r, b]
        _put32(out, w, crc32(out, w + 4, w + flen))
        w += flen
        pos += flen
        offset += 1
        k += 1
    return k - begin, w, entries, next_index
