"""Shard iterators: signed, expiring positions in a shard, opaque to clients.

An iterator is ``base64url(ITERATOR_PREFIX + mac + body)``, where ``body`` is the JSON
list ``[stream, shard number, position, issued_ms, stream created_ms]`` and ``mac`` the
first 12 bytes of its HMAC-SHA256 under the store's iterator secret. The stream's creation
time ties an iterator to one incarnation of a stream name; the issue time makes it expire
after :data:`ITERATOR_LIFETIME_MS`, as Kinesis's do.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import NamedTuple

from .errors import ExpiredIteratorError, InvalidArgumentError

ITERATOR_LIFETIME_MS = 5 * 60 * 1000
ITERATOR_PREFIX = b"\x00\x00\x00"
MAC_BYTES = 12


class IteratorPosition(NamedTuple):
    """Where a shard iterator points."""

    stream: str
    shard: int  # shard number
    position: int  # offset of the next record to read
    created_ms: int  # the stream's creation time


class ShardIterators:
    """Issues and checks shard iterators signed with ``secret``.

    >>> iterators = ShardIterators(b"k" * 32)
    >>> iterators.decode(iterators.encode("s", 7, 1, 42))
    IteratorPosition(stream='s', shard=1, position=42, created_ms=7)
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def encode(self, stream: str, created_ms: int, shard: int, position: int) -> str:
        body = json.dumps([stream, shard, position, int(time.time() * 1000), created_ms],
                          separators=(",", ":")).encode()
        mac = hmac.new(self._secret, body, hashlib.sha256).digest()[:MAC_BYTES]
        # The leading zero bytes make every iterator start with "AAAA" (as Kinesis's do),
        # never with "-", which command lines would take for an option.
        return base64.urlsafe_b64encode(ITERATOR_PREFIX + mac + body).decode()

    def decode(self, token: str) -> IteratorPosition:
        """The position ``token`` names; InvalidArgument for a token not issued here,
        ExpiredIterator for one older than :data:`ITERATOR_LIFETIME_MS`."""
        try:
            raw = base64.urlsafe_b64decode(token.encode())
            if not raw.startswith(ITERATOR_PREFIX):
                raise ValueError("not an iterator of this service")
            raw = raw[len(ITERATOR_PREFIX):]
            mac, body = raw[:MAC_BYTES], raw[MAC_BYTES:]
            valid = hmac.compare_digest(
                mac, hmac.new(self._secret, body, hashlib.sha256).digest()[:MAC_BYTES])
            name, number, position, issued, created = json.loads(body)
        except (ValueError, TypeError) as exc:
            raise InvalidArgumentError("Invalid ShardIterator.") from exc
        if not valid:  # not one this store issued (Kinesis says no more either)
            raise InvalidArgumentError("Invalid ShardIterator.")
        now = int(time.time() * 1000)
        if now - issued > ITERATOR_LIFETIME_MS:
            raise ExpiredIteratorError(
                f"Iterator expired. The iterator was created at time {_java_date(issued)} "
                f"while right now it is {_java_date(now)} which is further in the future "
                f"than the tolerated delay of {ITERATOR_LIFETIME_MS} milliseconds.")
        return IteratorPosition(name, number, position, created)


def _java_date(ms: int) -> str:
    """A time as Kinesis's messages print one (Java's ``Date.toString`` in UTC).

    >>> _java_date(1796558321350)
    'Sun Dec 06 11:58:41 UTC 2026'
    """
    at = time.gmtime(ms / 1000)  # English names whatever the locale, as Java prints them
    day = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")[at.tm_wday]
    month = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov",
             "Dec")[at.tm_mon - 1]
    return f"{day} {month} {time.strftime('%d %H:%M:%S', at)} UTC {at.tm_year}"
