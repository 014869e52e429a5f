"""What every request passes before a route sees it: who may call, from where, how much.

:class:`RequestGuard` is an ASGI middleware around all routes. In order:

1. **Host** (DNS-rebinding guard): a server listening on loopback answers only requests
   addressed to a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``) or to a name in
   ``Settings.allowed_hosts``; a page on ``evil.example`` that re-points its name to
   127.0.0.1 is refused.
2. **Origin**: browsers name the page that sends a request. Requests from another origin
   are refused unless ``Settings.cors_origins`` allows it (then CORS headers are added
   and preflights answered); no "simple" cross-site POST reaches a route.
3. **Size and time**: each route family has a body limit (AWS's on AWS routes; see
   :func:`classify`), checked on ``Content-Length`` and while reading; a body must keep
   arriving at a minimum rate after a grace period (slow-drip connections are cut; the
   header deadline is :mod:`.connections`').
4. **Who**: AWS routes need a valid Signature V4 when the server has credentials
   (service ``kinesis`` or ``sagemaker``); forestream's own REST API, console and
   metrics need the access token (:mod:`forestream.access_token`), or with credentials
   configured a SigV4 signature for service ``forestream`` (REST) or HTTP Basic with the
   key pair (console, metrics).

Refusals come in the shape of the route family: AWS's ``{"__type", "message"}`` (JSON
or CBOR) on ``POST /``, SageMaker runtime's on invocations, RFC 9457 problem details on
``/api/v1``, plain pages on the console.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

import cbor2
import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from forestream.access_token import COOKIE, TOKEN_HEADER
from forestream.config import Settings

from .aws.protocol import media_type, request_id_headers, xml_error
from .aws.sigv4 import VERIFIED, Credentials, SignedRequest, decode_query, verify
from .console import pages as console_pages

MIB = 1024 * 1024
AWS_BODY_LIMIT = 16 * MIB  # a 10 MiB PutRecords batch, base64 and JSON around it
RUNTIME_BODY_LIMIT = 7 * MIB  # invocations answer their own 413 beyond 6 MB
APPLICATION_BODY_LIMIT = 64 * MIB  # code sent inline (Managed Flink takes 50 MB zips)
REST_BODY_LIMIT = 8 * MIB
CONSOLE_BODY_LIMIT = 64 * 1024
BODY_GRACE_SECONDS = 20.0
BODY_MIN_BYTES_PER_SECOND = 16 * 1024
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
LOOPBACK_BINDS = ("127.0.0.1", "localhost", "::1")
AWS_CONTENT_TYPES = ("application/x-amz-json-1.0", "application/x-amz-json-1.1",
                     "application/x-amz-cbor-1.1", "application/json")
CBOR_TYPE = "application/x-amz-cbor-1.1"
HOST_CACHE_SIZE = 256  # Host headers whose check is kept (a client sends the same each time)
_INVOCATIONS = re.compile(r"^/endpoints/[^/]+/invocations$")
#: Scope key set True once the guard has seen valid credentials (routes open to all, such
#: as ``/health``, show more to the authorised).
AUTHENTICATED = "forestream.authenticated"


@dataclass(frozen=True)
class RouteClass:
    """How one request is guarded: its family (error shape and who may call), the SigV4
    service its signature must name, its body limit, and whether its body is streamed to
    the route (not held in memory to check a signature)."""

    family: str  # "aws", "runtime", "rest", "console", "metrics" or "public"
    service: str | None
    max_body: int
    streamed: bool = False


def classify(method: str, path: str, headers: dict[str, str],
             upload_limit: int, query: bytes = b"") -> RouteClass:
    """The :class:`RouteClass` of a request (method, path, lower-cased headers and the
    raw query string). ``/`` is the AWS APIs' for POST and for AWS clients' requests of
    other methods (AWS refuses those), the console's for browsers."""
    if path == "/" and (method == "POST" or aws_style(headers, query)):
        target = headers.get("x-amz-target", "")
        service = "sagemaker" if target.startswith("SageMaker.") else "kinesis"
        return RouteClass("aws", service, AWS_BODY_LIMIT)
    if _INVOCATIONS.match(path):
        return RouteClass("runtime", "sagemaker", RUNTIME_BODY_LIMIT)
    if path.startswith("/api/v1/") or path == "/api/v1":
        if path == "/api/v1/openapi.json":
            return RouteClass("public", None, CONSOLE_BODY_LIMIT)
        if path == "/api/v1/models/uploads":
            return RouteClass("rest", "forestream", upload_limit, streamed=True)
        if path.startswith("/api/v1/applications"):
            return RouteClass("rest", "forestream", APPLICATION_BODY_LIMIT)
        return RouteClass("rest", "forestream", REST_BODY_LIMIT)
    if path == "/health":
        return RouteClass("public", None, CONSOLE_BODY_LIMIT)
    if path == "/metrics":
        return RouteClass("metrics", "forestream", CONSOLE_BODY_LIMIT)
    return RouteClass("console", "forestream", CONSOLE_BODY_LIMIT)


def aws_style(headers: dict[str, str], query: bytes = b"") -> bool:
    """Whether a request comes from an AWS client rather than a browser: it names an
    operation (``X-Amz-Target``) or carries a Signature V4 (``Authorization: AWS4-...``
    or ``X-Amz-*`` query parameters). Browsers send none of these on their own, and a
    page cannot add them without a CORS preflight, which the guard refuses."""
    return "x-amz-target" in headers or \
        headers.get("authorization", "").startswith("AWS4") or \
        b"X-Amz-" in query


class Refused(Exception):
    """A request stopped by the guard: HTTP status, AWS-style code, message."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}


#: ``direct(scope, headers, receive, send)``: answers a Kinesis request (``POST /``, any
#: target but SageMaker's) once the guard has passed it, instead of the routes behind the
#: guard: the data plane's small calls skip the router and its request and response
#: objects (``headers`` as the guard read them: lower-case names).
DirectRoute = Callable[[Scope, dict[str, str], Receive, Send], Awaitable[None]]


class RequestGuard:
    """The ASGI middleware; see the module docstring. ``token`` is the access token (None
    when the server runs without one); ``direct``, when given, serves Kinesis requests
    (:data:`DirectRoute`)."""

    def __init__(self, app: ASGIApp, settings: Settings, token: str | None,
                 upload_limit: int, direct: DirectRoute | None = None) -> None:
        self.app = app
        self.direct = direct
        self.settings = settings
        self.token = token
        self.upload_limit = upload_limit
        self.cookie = f"{COOKIE}_{settings.port}"  # cookies are per host, not per port
        self._hosts: dict[str, bool] = {}  # Host header -> allowed (see _host_allowed)
        self.credentials = Credentials(settings.access_key_id or "",
                                       settings.secret_access_key or "") \
            if settings.auth_enabled else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        route = classify(scope["method"], scope["path"], headers, self.upload_limit,
                         scope.get("query_string", b""))
        started = _Started(send)
        try:
            cors = self._check_origin(scope, headers)
            if scope["method"] == "OPTIONS":
                await self._preflight(cors, headers, started, route)
                return
            if route.family == "aws" and scope["method"] != "POST":
                raise Refused(403, "AccessDeniedException",
                              "Unable to determine service/operation name to be authorized")
            body = _Body(receive, route.max_body)
            body.check_declared(headers)
            if route.family == "console" and await self._login(scope, body):
                await self._redirect_after_login(scope, started)
                return
            receive = await self._authenticate(scope, headers, route, body)
            if self.direct is not None and route.family == "aws" and \
                    route.service == "kinesis":
                await self.direct(scope, headers, receive, _with_headers(started, cors))
                return
            await self.app(scope, receive, _with_headers(started, cors))
        except Refused as refusal:
            if not started.started:
                await _render(route, refusal, headers, started, scope)

    # ------------------------------------------------------------------ origin
    def _check_origin(self, scope: Scope, headers: dict[str, str]) -> dict[str, str]:
        host = headers.get("host", "")
        if not self._host_allowed(host):
            raise Refused(403, "AccessDeniedException",
                          f"Host {_short(host)!r} is not a name of this server; a server on "
                          "loopback answers localhost, 127.0.0.1 and [::1] (add others "
                          "with FORESTREAM_ALLOWED_HOSTS)")
        origin = headers.get("origin")
        if origin is None:
            if headers.get("sec-fetch-site") == "cross-site" and \
                    scope["method"] not in ("GET", "HEAD"):
                raise Refused(403, "AccessDeniedException",
                              "cross-site requests are refused")
            return {}
        scheme = "https" if scope.get("scheme") == "https" else "http"
        if origin == f"{scheme}://{host}":
            return {}
        allowed = self.settings.cors_origins
        if origin != "null" and (origin in allowed or "*" in allowed):
            return {"access-control-allow-origin": origin, "vary": "Origin",
                    "access-control-expose-headers":
                        "x-amzn-RequestId,x-amzn-ErrorType,x-amz-request-id,x-amz-id-2,"
                        "x-amzn-ErrorMessage,Date,x-Amzn-Invoked-Production-Variant"}
        raise Refused(403, "AccessDeniedException",
                      f"requests from origin {_short(origin)!r} are refused; allow a web "
                      "origin with FORESTREAM_CORS_ORIGINS")

    def _host_allowed(self, host_header: str) -> bool:
        known = self._hosts.get(host_header)
        if known is None:  # parsing the header is most of the check: answers are kept
            known = self._check_host(host_header)
            if len(self._hosts) >= HOST_CACHE_SIZE:
                self._hosts.clear()
            self._hosts[host_header] = known
        return known

    def _check_host(self, host_header: str) -> bool:
        name = _host_name(host_header)
        extra = [h.lower() for h in self.settings.allowed_hosts]
        if name in extra or "*" in extra:
            return True
        if self.settings.host not in LOOPBACK_BINDS and not extra:
            return True  # listening on a network: names are the operator's business
        return name in LOOPBACK_NAMES or name == self.settings.host.lower()

    async def _preflight(self, cors: dict[str, str], headers: dict[str, str],
                         send: Send, route: RouteClass) -> None:
        if not cors:  # same origin, or no Origin at all: nothing to allow
            if route.family == "aws":  # AWS's answer to an OPTIONS that is no preflight
                raise Refused(403, "AccessDeniedException", "Unable to determine "
                              "service/operation name to be authorized")
            raise Refused(403, "AccessDeniedException",
                          "OPTIONS is only answered to cross-origin preflights from an "
                          "allowed origin (FORESTREAM_CORS_ORIGINS)")
        allow = {**cors, "access-control-max-age": "172800",
                 "access-control-allow-methods": headers.get(
                     "access-control-request-method", "GET, POST, PUT, PATCH, DELETE"),
                 "access-control-allow-headers": headers.get(
                     "access-control-request-headers", "*"),
                 "x-amzn-RequestId": str(uuid.uuid4())}
        await send({"type": "http.response.start", "status": 200,
                    "headers": _raw_headers({**allow, "content-length": "0"})})
        await send({"type": "http.response.body", "body": b""})

    # ------------------------------------------------------------- who may call
    async def _authenticate(self, scope: Scope, headers: dict[str, str], route: RouteClass,
                            body: _Body) -> Receive:
        family = route.family
        if family == "public":
            scope[AUTHENTICATED] = (self.token is None and self.credentials is None) or \
                self._token_ok(scope, headers) or self._basic_ok(headers, "console")
            return body
        if family in ("aws", "runtime"):
            if self.credentials is None:
                return body
            receive = await self._signature(scope, headers, route, body, self.credentials)
            scope[AUTHENTICATED] = scope[VERIFIED] = True
            return receive
        # forestream's own routes: the token, or the key pair when configured
        scope[AUTHENTICATED] = True
        if self._token_ok(scope, headers) or self._basic_ok(headers, family):
            return body
        if self.credentials is not None and family != "console" and \
                ("authorization" in headers and headers["authorization"].startswith("AWS4")
                 or "X-Amz-Algorithm" in scope.get("query_string", b"").decode("latin-1")):
            return await self._signature(scope, headers, route, body, self.credentials)
        if self.token is None and self.credentials is None:
            return body
        scope[AUTHENTICATED] = False
        raise Refused(401, "Unauthorized", self._who_message(family),
                      self._challenge(family))

    def _token_ok(self, scope: Scope, headers: dict[str, str]) -> bool:
        if self.token is None:
            return False
        offered = [headers.get(TOKEN_HEADER, "")]
        scheme, _, value = headers.get("authorization", "").partition(" ")
        if scheme.lower() in ("bearer", "token"):
            offered.append(value.strip())
        if "cookie" in headers:
            jar = SimpleCookie()
            try:
                jar.load(headers["cookie"])
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                jar = SimpleCookie()
            if self.cookie in jar:
                offered.append(jar[self.cookie].value)
        expected = self.token.encode()
        return any(hmac.compare_digest(item.encode(), expected) for item in offered if item)

    def _basic_ok(self, headers: dict[str, str], family: str) -> bool:
        if self.credentials is None or family not in ("console", "metrics"):
            return False
        scheme, _, encoded = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return False
        user, separator, password = decoded.partition(":")
        user_ok = hmac.compare_digest(user.encode(), self.credentials.access_key_id.encode())
        password_ok = hmac.compare_digest(password.encode(),
                                          self.credentials.secret_access_key.encode())
        return bool(separator) and user_ok and password_ok

    async def _signature(self, scope: Scope, headers: dict[str, str], route: RouteClass,
                         body: _Body, credentials: Credentials) -> Receive:
        service = route.service
        assert service is not None  # only public routes have none, and they are not signed
        request = SignedRequest(scope["method"], _raw_path(scope),
                                decode_query(scope.get("query_string", b"")), headers)
        status = 401 if route.family == "rest" else 403 if route.family == "runtime" else 400
        if route.streamed:
            failure = verify(request, None, credentials, self.settings.region, service)
            if failure is not None:
                raise Refused(status, failure.code, failure.message)
            claimed = headers.get("x-amz-content-sha256")
            if claimed and claimed != "UNSIGNED-PAYLOAD":
                body.expect_sha256(claimed)
            return body
        data = await body.read_all()
        failure = verify(request, hashlib.sha256(data).hexdigest(), credentials,
                         self.settings.region, service)
        if failure is not None:
            raise Refused(status, failure.code, failure.message)
        return _replay(data, body.receive)

    def _who_message(self, family: str) -> str:
        if self.token is not None:
            how = ("send the server's access token (printed when it started; stored in "
                   f"{self.settings.data_dir}/access-token) as 'Authorization: Bearer "
                   "TOKEN' or 'X-Forestream-Token: TOKEN'; forestream commands find it "
                   "themselves")
            if family == "console":
                how = ("open the link the server printed when it started "
                       "(http://HOST:PORT/?token=...), or enter the token below")
            if self.credentials is not None:
                how += (", or sign with the server's credentials (SigV4, service "
                        "'forestream')" if family == "rest" else
                        ", or log in with the access key id and secret (HTTP Basic)")
            return f"authentication required: {how}"
        return ("authentication required: sign with the server's credentials (SigV4, "
                "service 'forestream')" if family == "rest" else
                "authentication required: the access key id and secret (HTTP Basic)")

    def _challenge(self, family: str) -> dict[str, str]:
        if family in ("console", "metrics") and self.credentials is not None:
            realm = "forestream metrics" if family == "metrics" else "forestream console"
            return {"www-authenticate": f'Basic realm="{realm}", charset="UTF-8"'}
        return {}

    # ------------------------------------------------------------------ console login
    async def _login(self, scope: Scope, body: _Body) -> bool:
        """Whether this console request logs in: ``GET ...?token=T`` (the link the server
        prints) or ``POST /login`` with the form field ``token``. The guard then sets the
        cookie and redirects to the page without the token in its URL."""
        if self.token is None:
            return False
        if scope["method"] == "GET":
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            offered = query.get("token", "")
        elif scope["method"] == "POST" and scope["path"] == "/login":
            form = dict(parse_qsl((await body.read_all()).decode("latin-1")))
            offered = form.get("token", "").strip()
            if not offered or not hmac.compare_digest(offered.encode(), self.token.encode()):
                raise Refused(401, "Unauthorized", "that is not this server's access token")
            scope["path"], scope["query_string"] = "/", b""
            return True
        else:
            return False
        return bool(offered) and hmac.compare_digest(offered.encode(), self.token.encode())

    async def _redirect_after_login(self, scope: Scope, send: Send) -> None:
        query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode(
            "latin-1")) if k != "token"]
        location = scope["path"] + (f"?{urlencode(query)}" if query else "")
        cookie = (f"{self.cookie}={self.token}; Path=/; HttpOnly; SameSite=Strict; "
                  "Max-Age=2592000")
        await send({"type": "http.response.start", "status": 303, "headers": _raw_headers({
            "location": location, "set-cookie": cookie, "content-length": "0",
            "cache-control": "no-store", "referrer-policy": "no-referrer"})})
        await send({"type": "http.response.body", "body": b""})


# ---------------------------------------------------------------------------- bodies

class _Body:
    """``receive`` with the route's limits: at most ``limit`` bytes, arriving at no less
    than :data:`BODY_MIN_BYTES_PER_SECOND` once :data:`BODY_GRACE_SECONDS` have passed;
    optionally a SHA-256 the whole body must have. Once the body is complete, calls pass
    straight through (a streaming response listens there for the client going away)."""

    def __init__(self, receive: Receive, limit: int) -> None:
        self.receive = receive
        self.limit = limit
        self.received = 0
        self.started = time.monotonic()
        self.complete = False
        self.sha256: hashlib._Hash | None = None
        self.expected: str | None = None

    def check_declared(self, headers: dict[str, str]) -> None:
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            raise Refused(413, "RequestEntityTooLarge",
                          f"the body is {int(declared)} bytes; this route accepts at most "
                          f"{self.limit}")

    def expect_sha256(self, digest: str) -> None:
        self.sha256, self.expected = hashlib.sha256(), digest

    async def __call__(self) -> Message:
        if self.complete:
            return await self.receive()
        remaining = self.started + BODY_GRACE_SECONDS + \
            self.received / BODY_MIN_BYTES_PER_SECOND - time.monotonic()
        try:
            message = await _within(self.receive, max(remaining, 0.001))
        except (TimeoutError, asyncio.TimeoutError):
            raise Refused(408, "RequestTimeout",
                          f"the body arrived too slowly ({self.received} bytes in "
                          f"{time.monotonic() - self.started:.0f} s)") from None
        if message["type"] != "http.request":
            self.complete = True
            return message
        chunk = message.get("body", b"")
        self.received += len(chunk)
        if self.received > self.limit:
            raise Refused(413, "RequestEntityTooLarge",
                          f"the body is over {self.limit} bytes, the most this route accepts")
        if self.sha256 is not None:
            self.sha256.update(chunk)
        if not message.get("more_body", False):
            self.complete = True
            if self.sha256 is not None and not hmac.compare_digest(
                    self.sha256.hexdigest(), self.expected or ""):
                raise Refused(400, "InvalidSignatureException",
                              "The provided 'x-amz-content-sha256' header does not match "
                              "what was computed.")
        return message

    async def read_all(self) -> bytes:
        parts = []
        while True:
            message = await self()
            if message["type"] != "http.request":
                raise Refused(400, "IncompleteBody", "the client went away mid-body")
            parts.append(message.get("body", b""))
            if not message.get("more_body", False):
                return b"".join(parts)


_TIMEOUT = getattr(asyncio, "timeout", None)  # Python 3.11 and later


async def _within(receive: Receive, seconds: float) -> Message:
    """``receive()`` within ``seconds``: a timer on the running task (``wait_for`` makes a
    task per call, and a body comes in many messages, on every request)."""
    if _TIMEOUT is None:
        return await asyncio.wait_for(receive(), timeout=seconds)
    async with _TIMEOUT(seconds):
        return await receive()


def _replay(data: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": data, "more_body": False}
        return await receive()

    return replay


# ---------------------------------------------------------------------------- responses

class _Started:
    """``send`` that remembers whether a response has begun."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.started = False

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.started = True
        await self.send(message)


def _with_headers(send: Send, extra: dict[str, str]) -> Send:
    if not extra:
        return send

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []),
                                              *_raw_headers(extra)]}
        await send(message)

    return wrapped


async def _render(route: RouteClass, refusal: Refused, headers: dict[str, str],
                  send: Send, scope: Scope) -> None:
    extra = dict(refusal.headers)
    path = scope["path"]
    media: str | None
    if route.family == "aws" and scope["method"] != "POST":
        # AWS's front end refuses other methods in XML, without a content type
        body, media = xml_error(refusal.code, refusal.message), None
        extra.update(request_id_headers())
    elif route.family == "aws":
        document = {"__type": refusal.code, "message": refusal.message}
        if media_type(headers.get("content-type")) == CBOR_TYPE:
            body, media = cbor2.dumps(document), CBOR_TYPE
        else:
            body, media = orjson.dumps(document), "application/x-amz-json-1.1"
        extra.update({**request_id_headers(),
                      "x-amzn-ErrorType": refusal.code})
    elif route.family == "runtime":
        body = orjson.dumps({"message": refusal.message, "Message": refusal.message})
        media = "application/json"
        extra["x-amzn-ErrorType"] = refusal.code
    elif route.family in ("rest", "public"):
        body = orjson.dumps({"type": "about:blank", "title": _title(refusal),
                             "status": refusal.status, "detail": refusal.message,
                             "instance": path})
        media = "application/problem+json"
    elif route.family == "console" and refusal.status == 401:
        body, media = console_pages.login(refusal.message).encode(), "text/html; charset=utf-8"
        extra.update({"content-security-policy": "default-src 'none'; style-src "
                      "'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
                      "cache-control": "no-store"})
    else:
        body = f"{refusal.status} {_title(refusal)}: {refusal.message}\n".encode()
        media = "text/plain; charset=utf-8"
    if media is not None:
        extra["content-type"] = media
    await send({"type": "http.response.start", "status": refusal.status,
                "headers": _raw_headers({**extra, "content-length": str(len(body)),
                                         "connection": "close"})})
    await send({"type": "http.response.body", "body": body})


def _title(refusal: Refused) -> str:
    return {401: "Unauthorized", 403: "Forbidden", 408: "Request Timeout",
            413: "Content Too Large", 415: "Unsupported Media Type"}.get(refusal.status,
                                                                          refusal.code)


# ---------------------------------------------------------------------------- helpers

def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        out[name] = f"{out[name]},{value}" if name in out else value
    return out


def _raw_headers(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]


def _raw_path(scope: Scope) -> str:
    raw = scope.get("raw_path")
    return raw.decode("latin-1").split("?", 1)[0] if raw else scope["path"]


def _host_name(host_header: str) -> str:
    host = host_header.strip().lower()
    if host.startswith("["):  # [::1]:4567
        return host[1:host.find("]")] if "]" in host else host
    return urlsplit(f"//{host}").hostname or host


def _short(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
