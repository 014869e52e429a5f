"""Which protocol a connection speaks, and connections that cannot be held open for free.

Every port of ``forestream server`` speaks HTTP/1.1 and HTTP/2, decided per connection
by :class:`GuardedHttpToolsProtocol` (uvicorn's httptools protocol, which keeps serving
HTTP/1.1 itself, at its speed):

* a connection that opens with the HTTP/2 preface (``PRI * HTTP/2.0``: h2c by prior
  knowledge, as curl ``--http2-prior-knowledge`` and the AWS SDK for JavaScript on a
  plain ``http://`` endpoint do) is handed to :class:`~.http2.Http2Connection`;
* on a TLS port, the protocol the client and server agreed by ALPN (``h2``, else
  ``http/1.1``);
* an HTTP/1.1 request with ``Upgrade: h2c`` (Java's ``HttpClient`` asks so on plain
  HTTP, curl ``--http2`` too) is answered ``101 Switching Protocols`` and served as
  HTTP/2 stream 1; its body, announced by ``Content-Length``, still arrives as HTTP/1.1.
  Other upgrades (and ``h2c`` over TLS, which RFC 9113 forbids) are served as HTTP/1.1
  and the connection closed after the response.

uvicorn waits for request headers without a deadline: a client dripping one byte every
few seconds keeps a connection (and its buffers) forever, and 200 of them are 200 open
sockets. Here the request line and headers must be complete within
:data:`HEADER_TIMEOUT_SECONDS` of the connection opening (or of the previous response
ending, on a kept-alive connection) and hold at most :data:`MAX_HEADER_BYTES`; otherwise
the connection is answered 408 or 431 and closed. Bodies have their own deadline, set by
:class:`forestream.server.guard.RequestGuard`. HTTP/2 connections have the same limits
(:mod:`.http2.connection`).
"""

from __future__ import annotations

import asyncio
import binascii
import ssl
from pathlib import Path

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle

from .http2 import PREFACE, Http2Connection, Http2Stream, UpgradedRequest

HEADER_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 64 * 1024
UPGRADE_BODY_HIGH_WATER = 1024 * 1024  # body bytes held for an upgraded request's reader
BODY_HIGH_WATER = 1024 * 1024  # body bytes held for an HTTP/1.1 request's application


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a header size cap, which
    hands HTTP/2 connections over to :class:`~.http2.Http2Connection` (see the module
    docstring)."""

    header_timeout = HEADER_TIMEOUT_SECONDS
    max_header_bytes = MAX_HEADER_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() == "h2":
            self._hand_over(transport).connection_made(transport)
            return
        super().connection_made(transport)
        self._refused = False
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._sniffed = b"" if ssl_object is None else None  # None: HTTP/1.1, decided
        self._upgrade: _UpgradeBody | None = None
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)
        if self._upgrade is not None and self._upgrade.connection is not None:
            self._upgrade.connection.connection_lost(exc)  # gone before the switch

    def _should_upgrade(self) -> bool:
        return False  # no WebSocket routes; h2c is taken in on_headers_complete

    def data_received(self, data: bytes) -> None:
        if self._sniffed is not None:  # the first bytes: the HTTP/2 preface?
            data = self._sniffed + data
            if PREFACE.startswith(data[:len(PREFACE)]):
                if len(data) < len(PREFACE):
                    self._sniffed = data
                    return
                connection = self._hand_over(self.transport)
                connection.connection_made(self.transport)
                connection.data_received(data)
                return
            self._sniffed = None
        if self._upgrade is not None:
            self._upgrade.feed(data)
            return
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.send_400_response("Invalid HTTP request received.")
        except httptools.HttpParserUpgrade as upgrade:
            # llhttp stops at the end of an upgrade request's headers; its body follows
            if self._upgrade is not None:
                self._upgrade.feed(data[upgrade.args[0]:])

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        if not self._refused:
            self.url += url  # as uvicorn's on_url

    def on_header(self, name: bytes, value: bytes) -> None:
        # uvicorn's on_header inlined (one Python call per header, not three)
        self._header_bytes += len(name) + len(value) + 4
        if self._header_bytes > self.max_header_bytes:
            self._count(0)
        if self._refused:
            return
        name = name.lower()
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace (RFC 9110 5.5)
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        if self._refused:
            return
        if not self.parser.should_upgrade():
            super().on_headers_complete()
            if self.cycle is not None:
                _collect_parts(self.cycle)
            return
        length = _content_length(self.headers)
        if length is None:
            self.send_400_response("An upgrade request's body needs a Content-Length.")
            self._refused = True
            return
        settings = self._h2c_settings()
        if settings is None:  # not h2c: served as HTTP/1.1, the connection closed after
            super().on_headers_complete()
            self.cycle.keep_alive = False
            self._upgrade = _UpgradeBody(self, length, self.cycle)
            return
        connection = self._hand_over(self.transport, switch=False)
        method = self.parser.get_method()
        headers = [(name, value) for name, value in self.headers
                   if name not in (b"connection", b"upgrade", b"http2-settings")]
        stream = connection.upgrade(self.transport, settings,
                                    UpgradedRequest(method, self.url, headers))
        self._upgrade = _UpgradeBody(self, length, stream, connection)

    def on_body(self, body: bytes) -> None:
        if self._refused or self._upgrade is not None:
            return
        cycle = self.cycle
        if cycle.response_complete or (self.parser.should_upgrade() and
                                       self._should_upgrade()):
            return
        # uvicorn stops reading at 64 KiB buffered until the application takes it: a
        # PutRecords body (0.7 MB) then costs a dozen pause/resume rounds through the
        # event loop. The application reads whole bodies on these routes anyway (to check
        # the signature), so hold up to BODY_HIGH_WATER before pausing.
        parts: _Parts | None = getattr(cycle, "_parts", None)
        if parts is None:
            cycle.body += body
            held = len(cycle.body)
        else:
            parts.append(body)
            held = parts.size = parts.size + len(body)
        if held > BODY_HIGH_WATER:
            self.flow.pause_reading()
        cycle.message_event.set()

    def on_message_complete(self) -> None:
        # llhttp ends an upgrade request at its headers: _UpgradeBody reads its body
        if not self._refused and self._upgrade is None:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_header_timer()  # the next request on this connection

    # ------------------------------------------------------------------ helpers
    def _hand_over(self, transport: asyncio.Transport, switch: bool = True) -> Http2Connection:
        """Make this connection an HTTP/2 one; this protocol serves it no more (and
        with ``switch`` receives none of its bytes from now on)."""
        self._disarm_header_timer()
        self.connections.discard(self)
        if self.timeout_keep_alive_task is not None:
            self.timeout_keep_alive_task.cancel()
        connection = Http2Connection(self.config, self.server_state, self.app_state,
                                     self.loop)
        if switch:
            transport.set_protocol(connection)
        self._sniffed = None
        return connection

    def _h2c_settings(self) -> bytes | None:
        """The ``HTTP2-Settings`` of a valid ``Upgrade: h2c`` request (RFC 7540 §3.2) on
        a cleartext connection, else None."""
        if self.scheme != "http":
            return None
        upgrade, connection, settings = [], [], []
        for name, value in self.headers:
            if name == b"upgrade":
                upgrade += [token.strip().lower() for token in value.split(b",")]
            elif name == b"connection":
                connection += [token.strip().lower() for token in value.split(b",")]
            elif name == b"http2-settings":
                settings.append(value.strip())
        if b"h2c" not in upgrade or b"upgrade" not in connection or len(settings) != 1 or \
                b"http2-settings" not in connection:
            return None
        try:
            binascii.a2b_base64(settings[0].replace(b"-", b"+").replace(b"_", b"/")
                                + b"=" * (-len(settings[0]) % 4), strict_mode=True)
        except binascii.Error:
            return None
        return settings[0]

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refuse(b"431 Request Header Fields Too Large",
                         f"request headers over {self.max_header_bytes} bytes")

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_expired)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _header_expired(self) -> None:
        self._header_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being served; its body has the guard's deadline
        self._refuse(b"408 Request Timeout",
                     f"request headers not complete within {self.header_timeout:g} s")

    def _refuse(self, status: bytes, message: str) -> None:
        self._refused = True
        if self.transport.is_closing():
            return
        body = message.encode()
        self.transport.write(b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; "
                             b"charset=utf-8\r\ncontent-length: " + str(len(body)).encode()
                             + b"\r\nconnection: close\r\n\r\n" + body)
        self.transport.close()


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The body length an upgrade request announces (0 without one); None when it is
    chunked or unclear: llhttp leaves an upgrade request's body to us, and only a
    length tells where it ends."""
    lengths = {value.strip() for name, value in headers if name == b"content-length"}
    if any(name == b"transfer-encoding" for name, _ in headers) or len(lengths) > 1:
        return None
    if not lengths:
        return 0
    value = lengths.pop()
    return int(value) if value.isdigit() else None


def tls_context(certfile: Path, keyfile: Path) -> ssl.SSLContext:
    """The server side of the TLS port: TLS 1.2 or later, HTTP/2 (``h2``) preferred to
    HTTP/1.1 by ALPN."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(certfile), str(keyfile))
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


class _UpgradeBody:
    """The body of an upgrade request, ``length`` bytes after its headers, given to the
    request's reader: an HTTP/2 stream (h2c: what follows the body is the client's HTTP/2
    preface, for the connection) or uvicorn's HTTP/1.1 cycle (an upgrade not taken: what
    follows is ignored, the connection closes after the response)."""

    def __init__(self, protocol: GuardedHttpToolsProtocol, length: int,
                 reader: Http2Stream | RequestResponseCycle,
                 connection: Http2Connection | None = None) -> None:
        self.protocol, self.remaining, self.reader = protocol, length, reader
        self.connection = connection
        if isinstance(reader, Http2Stream):
            reader.on_drained = self._drained
        if length == 0:
            self._end()

    def feed(self, data: bytes) -> None:
        if self.remaining:
            body, data = data[:self.remaining], data[self.remaining:]
            self.remaining -= len(body)
            if isinstance(self.reader, Http2Stream):
                self.reader.feed(body, 0)
                if self.reader.buffered > UPGRADE_BODY_HIGH_WATER:
                    self.protocol.transport.pause_reading()
            elif not self.reader.response_complete:
                self.reader.body += body
                if len(self.reader.body) > UPGRADE_BODY_HIGH_WATER:
                    self.protocol.flow.pause_reading()
                self.reader.message_event.set()
            if not self.remaining:
                self._end()
        if data and not self.remaining and self.connection is not None:
            self.connection.data_received(data)  # the client's HTTP/2 preface and on

    def _end(self) -> None:
        if isinstance(self.reader, Http2Stream):
            self.reader.end_body()
        else:
            self.reader.more_body = False
            self.reader.message_event.set()
        if self.connection is not None:  # from now on, bytes go to HTTP/2 directly
            self.protocol.transport.set_protocol(self.connection)

    def _drained(self) -> None:
        transport = self.protocol.transport
        if not transport.is_closing():
            transport.resume_reading()


class _Parts(list[bytes]):
    """A request's body chunks as they came, held until the application asks."""

    size = 0


def _collect_parts(cycle: RequestResponseCycle) -> None:
    """Make ``cycle`` keep its body's chunks as a list and hand them over joined once
    (uvicorn appends each chunk to a ``bytearray`` and copies it into ``bytes`` for each
    message: three copies of a 0.7 MB PutRecords body on the event loop, where a
    message with the whole body needs none)."""
    parts = cycle._parts = _Parts()  # type: ignore[attr-defined]

    async def receive() -> dict:
        if cycle.waiting_for_100_continue and not cycle.transport.is_closing():
            cycle.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            cycle.waiting_for_100_continue = False
        if not cycle.disconnected and not cycle.response_complete:
            cycle.flow.resume_reading()
            await cycle.message_event.wait()
            cycle.message_event.clear()
        if cycle.disconnected or cycle.response_complete:
            return {"type": "http.disconnect"}
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        parts.clear()
        parts.size = 0
        return {"type": "http.request", "body": body, "more_body": cycle.more_body}

    cycle.receive = receive  # type: ignore[method-assign,assignment]
