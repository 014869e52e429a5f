"""Connections that cannot be held open for free: a deadline and a size cap on request
headers, for uvicorn's HTTP/1.1 protocol.

uvicorn waits for request headers without a deadline: a client dripping one byte every
few seconds keeps a connection (and its buffers) forever, and 200 of them are 200 open
sockets. Here the request line and headers must be complete within
:data:`HEADER_TIMEOUT_SECONDS` of the connection opening (or of the previous response
ending, on a kept-alive connection) and hold at most :data:`MAX_HEADER_BYTES`; otherwise
the connection is answered 408 or 431 and closed. Bodies have their own deadline, set by
:class:`forestream.server.guard.RequestGuard`. (Under Hypercorn, ``--http2``, its own
``read_timeout`` and ``h11_max_incomplete_size`` play this part.)
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEADER_TIMEOUT_SECONDS = 10.0
MAX_HEADER_BYTES = 64 * 1024


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header deadline and a header size cap."""

    header_timeout = HEADER_TIMEOUT_SECONDS
    max_header_bytes = MAX_HEADER_BYTES

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._refused = False
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        if not self._refused:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        if not self._refused:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        if not self._refused:
            super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._arm_header_timer()  # the next request on this connection

    # ------------------------------------------------------------------ helpers
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
