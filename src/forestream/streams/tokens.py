"""Pagination tokens (NextToken): opaque to clients, checked when they come back."""

from __future__ import annotations

import base64
import binascii
import json

from .errors import InvalidArgumentError


def encode_token(kind: str, value) -> str:
    return base64.urlsafe_b64encode(json.dumps([kind, value]).encode()).decode()


def decode_token(token: str, kind: str):
    try:
        found, value = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, binascii.Error, TypeError) as exc:
        raise InvalidArgumentError(f"invalid NextToken {token!r}") from exc
    if found != kind:
        raise InvalidArgumentError(f"NextToken {token!r} is not a {kind} token")
    return value
