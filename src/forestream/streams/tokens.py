"""Pagination tokens (NextToken): opaque to clients, checked when they come back."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import TypeGuard, TypeVar

from forestream.names import shorten

from .errors import InvalidArgumentError

T = TypeVar("T")


def encode_token(kind: str, value: object) -> str:
    """A NextToken of ``kind`` carrying ``value`` (anything JSON can hold)."""
    return base64.urlsafe_b64encode(json.dumps([kind, value]).encode()).decode()


MAX_TOKEN_LENGTH = 4096  # the tokens this service issues are far shorter


def decode_token(token: str, kind: str, valid: Callable[[object], TypeGuard[T]]) -> T:
    """The value inside a NextToken of ``kind``; :class:`InvalidArgumentError` for anything
    this service did not issue (wrong kind, malformed, or a value ``valid`` refuses).
    ``valid`` is a type guard, so the value comes back typed as what it checked."""
    shown = shorten(token, 80)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgumentError(f"invalid NextToken {shown}")
    try:
        found, value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, TypeError, RecursionError) as exc:
        raise InvalidArgumentError(f"invalid NextToken {shown}") from exc
    if found != kind:
        raise InvalidArgumentError(f"NextToken {shown} is not a {kind} token")
    if not valid(value):
        raise InvalidArgumentError(f"invalid NextToken {shown}")
    return value
