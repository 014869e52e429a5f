"""The 128-bit hash-key space, partition-key routing and sequence numbers."""

from __future__ import annotations

import hashlib

from .errors import InvalidArgumentError

MAX_HASH_KEY = 2**128 - 1

# Sequence numbers: decimal strings of 56 digits starting "49", as Kinesis's look. The
# value below the prefix packs (shard number << 64) | offset, so a sequence number names
# its shard, grows strictly within a shard and is unique across a stream.
_SEQUENCE_BASE = 49 * 10**54
_OFFSET_BITS = 64
_OFFSET_MASK = 2**_OFFSET_BITS - 1


def partition_hash(partition_key: str) -> int:
    """MD5 of the UTF-8 partition key as an unsigned 128-bit integer (Kinesis's routing)."""
    return int.from_bytes(hashlib.md5(partition_key.encode("utf-8")).digest(), "big")


def parse_hash_key(value: str, name: str = "ExplicitHashKey") -> int:
    """A decimal hash key string → int, refusing anything outside [0, 2**128 - 1]."""
    if not isinstance(value, str) or not value.isdigit():
        raise InvalidArgumentError(f"{name} {value!r} must be a decimal integer string in "
                                   f"[0, {MAX_HASH_KEY}]")
    number = int(value)
    if number > MAX_HASH_KEY:
        raise InvalidArgumentError(f"{name} {value} is outside the hash key range "
                                   f"[0, {MAX_HASH_KEY}]")
    return number


def uniform_ranges(count: int, start: int = 0, end: int = MAX_HASH_KEY) -> list[tuple[int, int]]:
    """Split [start, end] into ``count`` contiguous ranges of (nearly) equal width."""
    width = end - start + 1
    bounds = [start + (width * i) // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


def shard_id(number: int) -> str:
    return f"shardId-{number:012d}"


def shard_number(value: str) -> int:
    """``shardId-000000000007`` (or ``7``'s canonical form) → 7."""
    digits = value[len("shardId-"):] if value.startswith("shardId-") else ""
    if not digits.isdigit():
        raise InvalidArgumentError(f"invalid shard id {value!r}: expected shardId-<12 digits>")
    return int(digits)


def sequence_number(shard: int, offset: int) -> str:
    return str(_SEQUENCE_BASE + (shard << _OFFSET_BITS) + offset)


def parse_sequence_number(value: str) -> tuple[int, int]:
    """A sequence number → (shard number, offset); InvalidArgument if it is not ours."""
    if not isinstance(value, str) or not value.isdigit():
        raise InvalidArgumentError(f"invalid sequence number {value!r}")
    number = int(value) - _SEQUENCE_BASE
    if number < 0 or number >> _OFFSET_BITS >= 2**40:
        raise InvalidArgumentError(f"sequence number {value} was not issued by this service")
    return number >> _OFFSET_BITS, number & _OFFSET_MASK
