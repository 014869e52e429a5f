"""AWS Signature Version 4 verification for requests on AWS routes.

The server recomputes the signature from the request exactly as the SDKs compute it
(canonical request → string to sign → HMAC chain of date, region and service) and
compares in constant time. Secrets never appear in errors or logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from urllib.parse import quote

from starlette.requests import Request

from forestream.config import Settings

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_SKEW = dt.timedelta(minutes=15)
_AUTH = re.compile(r"AWS4-HMAC-SHA256\s+Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),"
                   r"\s*Signature=([0-9a-f]+)")


def verify_signature(request: Request, body: bytes,
                     settings: Settings) -> tuple[str, str] | None:
    """None when the request is signed with the configured credentials, else the AWS error
    (type, message) to answer with."""
    header = request.headers.get("authorization")
    if not header:
        return "MissingAuthenticationTokenException", "Missing Authentication Token"
    match = _AUTH.match(header)
    if match is None:
        return "IncompleteSignatureException", "Authorization header is not a valid SigV4 header"
    credential, signed_headers, signature = match.groups()
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return "IncompleteSignatureException", f"malformed credential scope {credential!r}"
    access_key, date, region, service, _ = parts
    if not hmac.compare_digest(access_key, settings.access_key_id or ""):
        return ("UnrecognizedClientException",
                "The security token included in the request is invalid.")
    amz_date = request.headers.get("x-amz-date", "")
    try:
        stamp = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        return "IncompleteSignatureException", "X-Amz-Date header missing or malformed"
    if abs(dt.datetime.now(dt.timezone.utc) - stamp) > MAX_SKEW:
        return "InvalidSignatureException", "Signature expired: X-Amz-Date is more than 15 " \
                                            "minutes from the server's time"
    names = signed_headers.split(";")
    canonical_headers = "".join(
        f"{name}:{' '.join(request.headers.get(name, '').split())}\n" for name in names)
    payload_hash = request.headers.get("x-amz-content-sha256") or \
        hashlib.sha256(body).hexdigest()
    query = "&".join(f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
                     for k, v in sorted(request.query_params.multi_items()))
    canonical = "\n".join([request.method, quote(request.url.path or "/", safe="/-_.~"), query,
                           canonical_headers, signed_headers, payload_hash])
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _signing_key(settings.secret_access_key or "", date, region, service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        return ("InvalidSignatureException",
                "The request signature we calculated does not match the signature you "
                "provided. Check your AWS Secret Access Key and signing method.")
    return None


def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(("AWS4" + secret).encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key
