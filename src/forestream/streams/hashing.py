"""The 128-bit hash-key space, partition-key routing and sequence numbers."""

from __future__ import annotations

import hashlib

from .errors import InvalidArgumentError

MAX_HASH_KEY = 2**128 - 1
MAX_SHARD_NUMBER = 2**31 - 1  # shard ids hold a Java int

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
    """A decimal hash key string → int, refusing anything outside [0, 2**128 - 1] (in
    Kinesis's words)."""
    number = read_decimal(value, name)
    if number > MAX_HASH_KEY:
        raise InvalidArgumentError(f"Invalid {name}. {name} must be in the range: "
                                   f"[0, 2^128-1]. Specified value was {value}")
    return number


def read_decimal(value: str, name: str) -> int:
    """A string of decimal digits → int (the model's patterns let only such through)."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()):
        raise InvalidArgumentError(f"{name} {value!r} must be a decimal integer string in "
                                   f"[0, {MAX_HASH_KEY}]")
    return int(value)


def uniform_ranges(count: int, start: int = 0, end: int = MAX_HASH_KEY) -> list[tuple[int, int]]:
    """Split [start, end] into ``count`` contiguous ranges of (nearly) equal width."""
    width = end - start + 1
    bounds = [start + (width * i) // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


def shard_id(number: int) -> str:
    return f"shardId-{number:012d}"


def read_shard_id(value: str) -> int | None:
    """The shard number a shard id names, as Kinesis reads one: the digits after its last
    ``-`` (the whole id if it has none), from 0 to :data:`MAX_SHARD_NUMBER`; None for an
    id that names no shard.

    >>> [read_shard_id(v) for v in ("shardId-000000000007", "shardId-7", "7", "any-7")]
    [7, 7, 7, 7]
    >>> [read_shard_id(v) for v in ("shard", "shardId-", "2.14E4", "2147483648")]
    [None, None, None, None]
    """
    digits = value.rsplit("-", 1)[-1] or value
    if not (digits.isascii() and digits.isdigit()):
        return None
    number = int(digits)
    return number if number <= MAX_SHARD_NUMBER else None


def shard_number(value: str) -> int:
    """The shard number of a shard id (:func:`read_shard_id`); InvalidArgument for an id
    that names no shard."""
    number = read_shard_id(value)
    if number is None:
        raise InvalidArgumentError(f"invalid shard id {value!r}: expected shardId-<number> "
                                   f"(a number from 0 to {MAX_SHARD_NUMBER})")
    return number


def sequence_number(shard: int, offset: int) -> str:
    return str(_SEQUENCE_BASE + (shard << _OFFSET_BITS) + offset)


def sequence_base(shard: int) -> int:
    """The number ``sequence_number(shard, offset)`` writes is this + offset."""
    return _SEQUENCE_BASE + (shard << _OFFSET_BITS)


def parse_sequence_number(value: str) -> tuple[int, int]:
    """A sequence number → (shard number, offset); InvalidArgument if it is not ours."""
    if not isinstance(value, str) or not value.isdigit():
        raise InvalidArgumentError(f"invalid sequence number {value!r}")
    number = int(value) - _SEQUENCE_BASE
    if number < 0 or number >> _OFFSET_BITS >= 2**40:
        raise InvalidArgumentError(f"sequence number {value} was not issued by this service")
    return number >> _OFFSET_BITS, number & _OFFSET_MASK
