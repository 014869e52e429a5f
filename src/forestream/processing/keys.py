"""Stable key hashing: the same 128-bit hash for a key in every process.

Python's ``hash`` of a string changes from process to process, so anything that places a
key (its key group, the seed of its model) must not use it. A string key hashes exactly as
Kinesis hashes that partition key (MD5 of its UTF-8 bytes).
"""

from __future__ import annotations

import hashlib
import numbers
import pickle
from typing import SupportsInt, cast


def key_hash(key: object) -> int:
    """A 128-bit hash of a key, the same in every process (Python's ``hash`` is not)."""
    return int.from_bytes(hashlib.md5(_canonical(key)).digest(), "big")


def _canonical(key: object) -> bytes:
    if isinstance(key, str):
        return key.encode("utf-8", "surrogatepass")
    if isinstance(key, bytes):
        return b"\x00b" + key
    if isinstance(key, numbers.Integral):  # bool, int, numpy integers: equal keys agree
        return b"\x00i%d" % int(key)
    if isinstance(key, numbers.Real) and float(key).is_integer():
        # 1, 1.0 and True are one key in a dict: here too (cast: the numbers.Real stub
        # does not promise __int__, which float, numpy's floats and Fraction have)
        return b"\x00i%d" % int(cast(SupportsInt, key))
    if isinstance(key, numbers.Real):
        return b"\x00f" + float(key).hex().encode()
    if isinstance(key, tuple):
        return b"\x00t(" + b"\x00,".join(_canonical(k) for k in key) + b")"
    if isinstance(key, frozenset):  # its iteration order varies from process to process
        return b"\x00s(" + b"\x00,".join(sorted(_canonical(k) for k in key)) + b")"
    return b"\x00p" + pickle.dumps(key, protocol=4)
