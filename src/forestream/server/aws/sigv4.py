"""AWS Signature Version 4, checked as AWS checks it.

The server recomputes the signature exactly as the SDKs compute it (canonical request →
string to sign → HMAC chain of date, region and service) and compares in constant time.
Beyond the arithmetic, what makes a signature worth checking:

- the payload: the body's SHA-256 is part of the canonical request (presigned URLs
  too, as AWS services other than S3 sign them); an ``X-Amz-Content-Sha256`` header
  must equal the body's real hash (``UNSIGNED-PAYLOAD`` only in presigned URLs);
- the scope: ``<date>/<region>/<service>/aws4_request`` must name the server's region,
  the service of the route (``kinesis``, ``sagemaker``, or ``forestream`` for the REST
  API) and the day of ``X-Amz-Date``;
- what is signed: ``host`` always, ``x-amz-date`` (or ``date``) and ``x-amz-target``
  whenever the request carries them, so a signature cannot be moved to another host or
  operation;
- time: ``X-Amz-Date`` within 5 minutes of the server's clock (presigned URLs: until
  ``X-Amz-Expires``, at most 7 days).

Signatures come in the ``Authorization`` header or in the query string (presigned URLs).
Secrets never appear in errors or logs. Errors are (AWS error code, message) pairs in the
wording AWS uses; the caller picks the response shape.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

from forestream.signing import signing_key

#: Scope key a request guard sets once it has verified a request's signature.
VERIFIED = "forestream.signature_verified"
ALGORITHM = "AWS4-HMAC-SHA256"
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
MAX_SKEW = dt.timedelta(minutes=5)
MAX_PRESIGNED_SECONDS = 7 * 24 * 3600
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_HEX64 = re.compile(r"[0-9a-f]{64}")
_STAMP = "%Y%m%dT%H%M%SZ"
_BASIC_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z", re.ASCII)


@dataclass(frozen=True)
class AuthFailure:
    """Why a request's signature was refused: AWS's error code and message."""

    code: str
    message: str


@dataclass(frozen=True)
class SignedRequest:
    """What a signature covers. ``raw_path`` is the path as sent (still percent-encoded);
    ``query`` holds decoded (name, value) pairs in order; ``headers`` maps lower-case
    names to their values (repeated headers joined by ``,``)."""

    method: str
    raw_path: str
    query: list[tuple[str, str]]
    headers: Mapping[str, str]


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str


def is_signed(request: SignedRequest) -> bool:
    """Whether the request carries a signature at all (header or query string)."""
    return "authorization" in request.headers or any(
        name == "X-Amz-Algorithm" for name, _ in request.query)


def verify(request: SignedRequest, payload_hash: str | None, credentials: Credentials,
           region: str, service: str, now: dt.datetime | None = None) -> AuthFailure | None:
    """None when ``request`` is signed with ``credentials`` for ``region`` and ``service``;
    else why not. ``payload_hash`` is the hex SHA-256 of the body as received (None when
    the body is streamed: then a signed ``X-Amz-Content-Sha256`` header stands for it, and
    the caller must compare it with the body once read)."""
    now = now or dt.datetime.now(dt.timezone.utc)
    failure = signature_shape(request)
    if failure is not None:
        return failure
    header = request.headers.get("authorization")
    parsed = _from_header(request, header) if header is not None else _from_query(request)
    if isinstance(parsed, AuthFailure):
        return parsed
    return _check(request, parsed, payload_hash, credentials, region, service, now)


def signature_shape(request: SignedRequest) -> AuthFailure | None:
    """Why ``request`` carries no signature of AWS's form, or None: exactly one of an
    ``Authorization`` header and ``X-Amz-Algorithm`` in the query, with every part AWS
    requires present. AWS checks this before anything else about a signature (so do
    servers without credentials, which verify nothing more).

    >>> signature_shape(SignedRequest("POST", "/", [], {"authorization": "X"})).message
    "Authorization header requires 'Credential' parameter. Authorization header requires \
'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. \
Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
Authorization=X"
    """
    header = request.headers.get("authorization")
    query = dict(request.query)
    in_query = "X-Amz-Algorithm" in query
    if header is not None and in_query:
        return AuthFailure("InvalidSignatureException",
                           "Found both 'X-Amz-Algorithm' as a query-string param and "
                           "'Authorization' as HTTP header.")
    if header is None and not in_query:
        return AuthFailure("MissingAuthenticationTokenException",
                           "Missing Authentication Token")
    if header is not None:
        params = _header_params(header)
        missing = [f"Authorization header requires '{name}' parameter. "
                   for name in ("Credential", "Signature", "SignedHeaders")
                   if not params.get(name)]
        if not (request.headers.get("x-amz-date") or request.headers.get("date")):
            missing.append("Authorization header requires existence of either a "
                           "'X-Amz-Date' or a 'Date' header. ")
        if missing:
            return AuthFailure("IncompleteSignatureException",
                               "".join(missing) + f"Authorization={_short(header)}")
        return None
    missing = [f"AWS query-string parameters must include '{name}'. "
               for name in ("X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature",
                            "X-Amz-SignedHeaders", "X-Amz-Date") if not query.get(name)]
    if missing:
        return AuthFailure("IncompleteSignatureException",
                           "".join(missing) + "Re-examine the query-string parameters.")
    return None


def _header_params(header: str) -> dict[str, str]:
    """``Name=value`` parts of an Authorization header after its algorithm, split at
    commas and spaces as AWS splits them."""
    params: dict[str, str] = {}
    for part in re.split(r"[,\s]+", header.strip().partition(" ")[2]):
        name, sep, value = part.partition("=")
        if sep:
            params[name] = value
    return params


# --------------------------------------------------------------------------- parsing

@dataclass(frozen=True)
class _Parsed:
    credential: str
    signed_headers: list[str]
    signature: str
    amz_date: str
    presigned: bool
    expires: int = 0


def _from_header(request: SignedRequest, header: str) -> _Parsed | AuthFailure:
    """The parts of a header :func:`signature_shape` found complete."""
    algorithm = header.strip().partition(" ")[0]
    if algorithm != ALGORITHM:
        return AuthFailure("IncompleteSignatureException",
                           f"Unsupported AWS 'algorithm': '{_short(algorithm)}'")
    params = _header_params(header)
    date = request.headers.get("x-amz-date") or request.headers.get("date")
    amz_date = request.headers.get("x-amz-date") or _http_date_stamp(date or "")
    return _Parsed(params["Credential"], params["SignedHeaders"].split(";"),
                   params["Signature"], amz_date, presigned=False)


def _from_query(request: SignedRequest) -> _Parsed | AuthFailure:
    """The parts of a presigned query :func:`signature_shape` found complete."""
    query = dict(request.query)
    if query["X-Amz-Algorithm"] != ALGORITHM:
        return AuthFailure("IncompleteSignatureException",
                           f"Unsupported AWS 'algorithm': "
                           f"'{_short(query['X-Amz-Algorithm'])}'")
    raw_expires = query.get("X-Amz-Expires", "")
    if not raw_expires.isdigit() or not 1 <= int(raw_expires) <= MAX_PRESIGNED_SECONDS:
        return AuthFailure("IncompleteSignatureException",
                           f"X-Amz-Expires {_short(raw_expires)} must be a number of seconds "
                           f"from 1 to {MAX_PRESIGNED_SECONDS}")
    return _Parsed(query["X-Amz-Credential"], query["X-Amz-SignedHeaders"].split(";"),
                   query["X-Amz-Signature"], query["X-Amz-Date"], presigned=True,
                   expires=int(raw_expires))


# --------------------------------------------------------------------------- checking

def _check(request: SignedRequest, parsed: _Parsed, payload_hash: str | None,
           credentials: Credentials, region: str, service: str,
           now: dt.datetime) -> AuthFailure | None:
    parts = parsed.credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        return AuthFailure("IncompleteSignatureException",
                           f"Credential should be scoped to a valid region, not "
                           f"'{_short(parsed.credential)}'. ")
    access_key, date, scope_region, scope_service, _ = parts
    if not hmac.compare_digest(access_key.encode(), credentials.access_key_id.encode()):
        return AuthFailure("UnrecognizedClientException",
                           "The security token included in the request is invalid.")
    try:
        stamp = _timestamp(parsed.amz_date)
    except ValueError:
        return AuthFailure("IncompleteSignatureException",
                           f"Date must be in ISO-8601 'basic format'. Got "
                           f"'{_short(parsed.amz_date)}'. See "
                           "http://en.wikipedia.org/wiki/ISO_8601")
    if date != parsed.amz_date[:8]:
        return AuthFailure("InvalidSignatureException",
                           f"Credential should be scoped to a valid date: '{_short(date)}' "
                           f"is not the date of X-Amz-Date {parsed.amz_date}.")
    if scope_region != region:
        return AuthFailure("InvalidSignatureException",
                           f"Credential should be scoped to a valid region, not "
                           f"'{_short(scope_region)}'. Expected '{region}'.")
    if scope_service != service:
        return AuthFailure("InvalidSignatureException",
                           f"Credential should be scoped to correct service: "
                           f"'{service}', not '{_short(scope_service)}'.")
    failure = _check_time(stamp, parsed, now)
    if failure is not None:
        return failure
    failure = _check_signed_headers(request, parsed)
    if failure is not None:
        return failure
    payload = _payload(request, parsed, payload_hash)
    if isinstance(payload, AuthFailure):
        return payload
    canonical = _canonical_request(request, parsed, payload)
    scope = f"{date}/{scope_region}/{scope_service}/aws4_request"
    to_sign = "\n".join([ALGORITHM, parsed.amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = signing_key(credentials.secret_access_key, date, scope_region, scope_service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), parsed.signature.encode()):
        return AuthFailure("InvalidSignatureException",
                           "The request signature we calculated does not match the "
                           "signature you provided. Check your AWS Secret Access Key and "
                           "signing method. Consult the service documentation for details.")
    return None


def _check_time(stamp: dt.datetime, parsed: _Parsed, now: dt.datetime) -> AuthFailure | None:
    if parsed.presigned:
        if now > stamp + dt.timedelta(seconds=parsed.expires):
            return AuthFailure("InvalidSignatureException",
                               f"Signature expired: {parsed.amz_date} plus "
                               f"{parsed.expires} s is before {now:{_STAMP}}.")
        if stamp - now > MAX_SKEW:
            return AuthFailure("InvalidSignatureException",
                               f"Signature not yet current: {parsed.amz_date} is still later "
                               f"than {now + MAX_SKEW:{_STAMP}} ({now:{_STAMP}} + 5 min.)")
        return None
    if now - stamp > MAX_SKEW:
        return AuthFailure("InvalidSignatureException",
                           f"Signature expired: {parsed.amz_date} is now earlier than "
                           f"{now - MAX_SKEW:{_STAMP}} ({now:{_STAMP}} - 5 min.)")
    if stamp - now > MAX_SKEW:
        return AuthFailure("InvalidSignatureException",
                           f"Signature not yet current: {parsed.amz_date} is still later "
                           f"than {now + MAX_SKEW:{_STAMP}} ({now:{_STAMP}} + 5 min.)")
    return None


def _check_signed_headers(request: SignedRequest, parsed: _Parsed) -> AuthFailure | None:
    signed = set(parsed.signed_headers)
    # HTTP/2 clients (the AWS SDK for JavaScript) sign :authority, HTTP/2's host
    required = [":authority" if ":authority" in signed else "host"]
    if not parsed.presigned:
        required.append("x-amz-date" if "x-amz-date" in request.headers else "date")
    required += [name for name in ("x-amz-target", "x-amz-content-sha256")
                 if name in request.headers]
    unsigned = [name for name in required if name not in signed]
    if unsigned:
        return AuthFailure("InvalidSignatureException",
                           f"'{unsigned[0]}' must be a 'SignedHeader' in the AWS "
                           "Authorization.")
    absent = [name for name in parsed.signed_headers if name not in request.headers]
    if absent:
        return AuthFailure("InvalidSignatureException",
                           f"SignedHeaders names '{_short(absent[0])}', which the request "
                           "does not carry.")
    return None


def _payload(request: SignedRequest, parsed: _Parsed,
             payload_hash: str | None) -> str | AuthFailure:
    claimed = request.headers.get("x-amz-content-sha256")
    if parsed.presigned and claimed is None and payload_hash is None:
        return UNSIGNED_PAYLOAD  # S3's way; other services' presigned URLs sign the body
    if claimed is not None:
        if claimed == UNSIGNED_PAYLOAD and not parsed.presigned:
            return AuthFailure("InvalidSignatureException",
                               "UNSIGNED-PAYLOAD is accepted only in presigned URLs; sign "
                               "the body's SHA-256.")
        if claimed != UNSIGNED_PAYLOAD and not _HEX64.fullmatch(claimed):
            return AuthFailure("InvalidSignatureException",
                               f"x-amz-content-sha256 {_short(claimed)} is not a hex SHA-256.")
        if payload_hash is not None and claimed != UNSIGNED_PAYLOAD and \
                not hmac.compare_digest(claimed, payload_hash):
            return AuthFailure("InvalidSignatureException",
                               "The provided 'x-amz-content-sha256' header does not match "
                               "what was computed.")
        return claimed
    if payload_hash is None:
        return AuthFailure("InvalidSignatureException",
                           "A streamed body needs a signed x-amz-content-sha256 header.")
    return payload_hash


def _canonical_request(request: SignedRequest, parsed: _Parsed, payload: str) -> str:
    headers = "".join(f"{name}:{' '.join(request.headers.get(name, '').split())}\n"
                      for name in parsed.signed_headers)
    pairs = sorted((_encode(name), _encode(value)) for name, value in request.query
                   if not (parsed.presigned and name == "X-Amz-Signature"))
    query = "&".join(f"{name}={value}" for name, value in pairs)
    return "\n".join([request.method, canonical_path(request.raw_path), query, headers,
                      ";".join(parsed.signed_headers), payload])


def canonical_path(raw_path: str) -> str:
    """The path as SigV4 canonicalises it for services other than S3: dot segments
    resolved, then each byte percent-encoded (so an encoded path is encoded twice)."""
    segments: list[str] = []
    for segment in (raw_path or "/").split("/"):
        if segment == "..":
            if segments:
                segments.pop()
        elif segment not in (".", ""):
            segments.append(segment)
    path = "/" + "/".join(segments)
    if raw_path.endswith("/") and path != "/":
        path += "/"
    return quote(path, safe="/~")


def _timestamp(amz_date: str) -> dt.datetime:
    """``X-Amz-Date`` as a UTC datetime; ValueError when it is not in AWS's basic format.
    The usual 16 characters are read by hand (``strptime`` costs tens of us, on every
    signed request); anything else goes to ``strptime``, so both accept the same."""
    match = _BASIC_STAMP.fullmatch(amz_date)
    if match is None:
        return dt.datetime.strptime(amz_date, _STAMP).replace(tzinfo=dt.timezone.utc)
    year, month, day, hour, minute, second = map(int, match.groups())
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.timezone.utc)


def _encode(text: str) -> str:
    return quote(text, safe="-_.~")


def _http_date_stamp(value: str) -> str:
    """A ``Date`` header (RFC 7231) as a SigV4 timestamp; '' when unreadable."""
    from email.utils import parsedate_to_datetime

    try:
        stamp = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return value
    if stamp is None:
        return value
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.astimezone(dt.timezone.utc).strftime(_STAMP)


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def decode_query(query_string: bytes) -> list[tuple[str, str]]:
    """An ASGI query string as decoded (name, value) pairs, blanks kept (SigV4 signs them)."""
    pairs = []
    for part in query_string.decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        pairs.append((unquote(name), unquote(value)))  # '+' is a plus, as SigV4 reads it
    return pairs
