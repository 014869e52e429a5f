"""numba kernels that read a PutRecords JSON body without building Python objects.

:func:`scan` walks the body once and finds where each entry's ``Data``,
``PartitionKey`` and ``ExplicitHashKey`` strings and the request's ``StreamName`` /
``StreamARN`` lie; it accepts only the plain form every SDK sends (those members, each
once, strings without escapes, any JSON whitespace between tokens) and answers -1 for
anything else, which the general path (orjson and the model) then reads and, where it is
wrong, refuses in AWS's words. :func:`gather_base64` copies the ``Data`` strings' whole
4-character groups into one buffer (for one SIMD decode of the lot) and decodes the
padded last group of each itself, refusing (-1) what is not canonical base64.
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

    def memcpy(dest: int, src: int, size: int) -> int:
        """The C library's ``memcpy``, callable from the kernels."""
        ...

    def memchr(start: int, byte: int, size: int) -> int:
        """The C library's ``memchr`` (the address found, 0 for none)."""
        ...
else:
    from numba import njit, types

    #: the C library's memcpy (numba's slice assignment copied at ~1/14 of its speed);
    #: pointers as integers (the same registers on every 64-bit ABI numba supports)
    memcpy = types.ExternalFunction("memcpy", types.intp(types.intp, types.intp,
                                                         types.uintp))
    memchr = types.ExternalFunction("memchr", types.intp(types.intp, types.intc,
                                                         types.uintp))

MAX_ENTRIES = 500  # the model's limit; a longer list goes the general way (and is refused)
#: columns of :func:`scan`'s ``spans``: start and end of Data, PartitionKey, ExplicitHashKey
DATA, KEY, HASH = 0, 2, 4
#: columns of its ``top``: StreamName and StreamARN (start, end; -1 where absent)
NAME, ARN = 0, 2

_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_VALUES = np.full(256, -1, dtype=np.int64)
for _i, _c in enumerate(_B64):
    _VALUES[ord(_c)] = _i
_WORDS = [b"Records", b"StreamName", b"StreamARN", b"Data", b"PartitionKey",
          b"ExplicitHashKey"]
_WORD_BYTES = np.frombuffer(b"".join(_WORDS), dtype=np.uint8).copy()
_WORD_START = np.cumsum([0] + [len(w) for w in _WORDS]).astype(np.int64)


@njit(cache=True, nogil=True)
def _skip(body: Any, i: int) -> int:
    n = body.shape[0]
    while i < n and (body[i] == 32 or body[i] == 10 or body[i] == 13 or body[i] == 9):
        i += 1
    return i


@njit(cache=True, nogil=True)
def _string_end(body: Any, i: int, printable: bool) -> int:
    """The index of the quote closing the string whose first character is at ``i``, or
    -1 for no closing quote. With ``printable``, also -1 for an escape or any byte
    outside printable ASCII. Without (a Data string: 1.4 KB of base64 each), the first
    quote is found by the C library's ``memchr``: an escape or control character before
    it is not base64, which the decoding after the scan refuses (and the general path
    then reads the body)."""
    n = body.shape[0]
    if not printable:
        if i >= n:
            return -1
        at = memchr(body.ctypes.data + i, 34, n - i)
        return -1 if at == 0 else at - body.ctypes.data
    while i < n:
        c = body[i]
        if c == 34:
            return i
        if c == 92 or c < 32 or c > 126:
            return -1
        i += 1
    return -1


@njit(cache=True, nogil=True)
def _word(body: Any, start: int, end: int) -> int:
    """Which of the known member names ``body[start:end]`` is (its index), or -1."""
    for w in range(_WORD_START.shape[0] - 1):
        a, b = _WORD_START[w], _WORD_START[w + 1]
        if b - a != end - start:
            continue
        same = True
        for k in range(b - a):
            if body[start + k] != _WORD_BYTES[a + k]:
                same = False
                break
        if same:
            return w
    return -1


@njit(cache=True, nogil=True)
def _member(body: Any, i: int) -> tuple[int, int]:
    """A member name at ``i`` (after whitespace) and its colon: (word, index after the
    colon and whitespace), or (-1, -1)."""
    i = _skip(body, i)
    if i >= body.shape[0] or body[i] != 34:
        return -1, -1
    end = _string_end(body, i + 1, True)
    if end < 0:
        return -1, -1
    word = _word(body, i + 1, end)
    i = _skip(body, end + 1)
    if word < 0 or i >= body.shape[0] or body[i] != 58:
        return -1, -1
    return word, _skip(body, i + 1)


@njit(cache=True, nogil=True)
def scan(body: Any, spans: Any, top: Any) -> int:
    """The number of entries of a plain PutRecords body (their string spans, without
    the quotes, in ``spans``; StreamName / StreamARN in ``top``), or -1 (see the module
    docstring). ``spans`` has at least MAX_ENTRIES rows of 6."""
    n = body.shape[0]
    top[:] = -1
    count = -1
    i = _skip(body, 0)
    if i >= n or body[i] != 123:
        return -1
    while True:
        word, i = _member(body, i + 1)
        if word < 0:
            return -1
        if word == 0:  # Records
            if count >= 0 or i >= n or body[i] != 91:
                return -1
            count = 0
            i = _skip(body, i + 1)
            while True:
                if i >= n or body[i] != 123 or count >= MAX_ENTRIES:
                    return -1
                row = spans[count]
                row[:] = -1
                while True:
                    field, i = _member(body, i + 1)
                    if field < 3 or i >= n or body[i] != 34:
                        return -1
                    col = 2 * (field - 3)
                    if row[col] >= 0:
                        return -1  # a member twice
                    end = _string_end(body, i + 1, field != 3)
                    if end < 0:
                        return -1
                    row[col], row[col + 1] = i + 1, end
                    i = _skip(body, end + 1)
                    if i < n and body[i] == 44:
                        continue
                    if i < n and body[i] == 125:
                        break
                    return -1
                if row[DATA] < 0 or row[KEY] < 0:
                    return -1
                count += 1
                i = _skip(body, i + 1)
                if i < n and body[i] == 44:
                    i = _skip(body, i + 1)
                    continue
                if i < n and body[i] == 93:
                    break
                return -1
            if count == 0:
                return -1
        elif word <= 2:  # StreamName, StreamARN
            col = 2 * (word - 1)
            if top[col] >= 0 or i >= n or body[i] != 34:
                return -1
            end = _string_end(body, i + 1, True)
            if end < 0:
                return -1
            top[col], top[col + 1] = i + 1, end
            i = end
        else:
            return -1
        i = _skip(body, i + 1)
        if i < n and body[i] == 44:
            continue
        if i < n and body[i] == 125:
            break
        return -1
    if count < 0 or _skip(body, i + 1) != n:
        return -1
    return count


@njit(cache=True, nogil=True)
def gather_base64(body: Any, spans: Any, count: int, bulk: Any, main_start: Any,
                  main_len: Any, tails: Any, tail_len: Any) -> int:
    """Copy each entry's Data, less a padded last group, into ``bulk`` (entry r's
    decoded bytes will be ``main_len[r]`` from ``main_start[r]``) and decode each padded
    last group into ``tails[r]`` (``tail_len[r]`` bytes). Returns the bytes of
    ``bulk`` used, or -1 where some Data is not canonical base64 as far as these
    groups show (the bulk's characters are checked by its decoder)."""
    m = 0
    for r in range(count):
        s, e = spans[r, DATA], spans[r, DATA + 1]
        size = e - s
        if size % 4:
            return -1
        full = size
        tail_len[r] = 0
        if size and body[e - 1] == 61:  # "=": the last group is padded
            full = size - 4
            v0, v1 = _VALUES[body[e - 4]], _VALUES[body[e - 3]]
            if v0 < 0 or v1 < 0:
                return -1
            tails[r, 0] = (v0 << 2) | (v1 >> 4)
            if body[e - 2] == 61:
                if v1 & 15:
                    return -1
                tail_len[r] = 1
            else:
                v2 = _VALUES[body[e - 2]]
                if v2 < 0 or v2 & 3:
                    return -1
                tails[r, 1] = ((v1 & 15) << 4) | (v2 >> 2)
                tail_len[r] = 2
        memcpy(bulk.ctypes.data + m, body.ctypes.data + s, full)
        main_start[r] = m // 4 * 3
        main_len[r] = full // 4 * 3
        m += full
    return m


_SEQ_OPEN = np.frombuffer(b'{"SequenceNumber":"', dtype=np.uint8).copy()
_SHARD_OPEN = np.frombuffer(b'","ShardId":"', dtype=np.uint8).copy()


@njit(cache=True, nogil=True)
def render_answer(out: Any, head: Any, tail: Any, routed: Any, sequences: Any,
                  shard_ids: Any) -> int:
    """PutRecords' JSON answer as orjson writes it: ``head``, then per record (request
    order) its sequence number and shard id, then ``tail``. Record i goes to shard
    index ``routed[i]``, whose next sequence number is the decimal digits in
    ``sequences[k]`` (incremented here per record) and id ``shard_ids[k]``. Returns the
    length written, or -1 where a sequence number would gain a digit."""
    w = head.shape[0]
    out[:w] = head
    width, id_width = sequences.shape[1], shard_ids.shape[1]
    for i in range(routed.shape[0]):
        k = routed[i]
        if i:
            out[w] = 44  # ,
            w += 1
        out[w:w + _SEQ_OPEN.shape[0]] = _SEQ_OPEN
        w += _SEQ_OPEN.shape[0]
        out[w:w + width] = sequences[k]
        w += width
        out[w:w + _SHARD_OPEN.shape[0]] = _SHARD_OPEN
        w += _SHARD_OPEN.shape[0]
        out[w:w + id_width] = shard_ids[k]
        w += id_width
        out[w] = 34  # "
        out[w + 1] = 125  # }
        w += 2
        d = width - 1
        while d >= 0:  # the next sequence number of shard k
            if sequences[k, d] == 57:
                sequences[k, d] = 48
                d -= 1
            else:
                sequences[k, d] += 1
                break
        if d < 0:
            return -1
    out[w:w + tail.shape[0]] = tail
    return w + tail.shape[0]
