"""The Signature V4 signing key, shared by the server that checks signatures
(:mod:`forestream.server.aws.sigv4`) and the client that makes them
(:mod:`forestream.processing.kinesis_wire`)."""

from __future__ import annotations

import hashlib
import hmac
from functools import lru_cache


@lru_cache(maxsize=64)  # one key per secret, day, region and service: derived once a day
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The key of AWS's HMAC chain: ``AWS4`` + secret, then the day (``YYYYMMDD``), the
    region, the service and ``aws4_request``."""
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
