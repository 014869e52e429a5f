"""One HTTP/2 request stream as one ASGI call: the request body in (with HTTP/2 flow
control: the window a client may fill is handed back as the application reads), the
response out (frames no larger than the client's windows allow, waiting while they are
full), and disconnects (RST_STREAM, a lost connection) told to the application as
``http.disconnect`` — the ASGI behaviour uvicorn gives HTTP/1.1 requests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import urllib.parse
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import h2.exceptions
from h2.errors import ErrorCodes

if TYPE_CHECKING:
    from .connection import Http2Connection

#: Headers that belong to one HTTP/1.1 hop; HTTP/2 forbids them (RFC 9113 §8.2.2), so
#: they are dropped from responses (the guard's refusals carry ``connection: close``).
HOP_HEADERS = frozenset({b"connection", b"keep-alive", b"proxy-connection",
                         b"transfer-encoding", b"upgrade"})

log = logging.getLogger("uvicorn.error")


@dataclass(frozen=True)
class UpgradedRequest:
    """The HTTP/1.1 request that asked for ``Upgrade: h2c``, served as stream 1."""

    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]]


class Http2Stream:
    """A request of an :class:`~.connection.Http2Connection`; ``run`` calls the
    application with this stream's ``receive`` and ``send``."""

    def __init__(self, connection: Http2Connection, stream_id: int, method: bytes,
                 target: bytes, headers: list[tuple[bytes, bytes]],
                 upgraded: bool = False) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.upgraded = upgraded  # stream 1 of an h2c upgrade: its body came as HTTP/1.1
        raw_path, _, query = target.partition(b"?")
        try:
            path = raw_path.decode("ascii")
        except UnicodeDecodeError:
            path = ""  # answered 400 in run(), as uvicorn answers such a request line
        self.bad_target = not path.startswith("/") and path != "*"
        if "%" in path:
            path = urllib.parse.unquote(path)
        config = connection.config
        self.scope: dict[str, Any] = {
            "type": "http", "asgi": {"version": config.asgi_version, "spec_version": "2.3"},
            "http_version": "2", "server": connection.server, "client": connection.client,
            "scheme": connection.scheme, "method": method.decode("ascii", "replace"),
            "root_path": config.root_path, "path": config.root_path + path,
            "raw_path": config.root_path.encode("ascii") + raw_path, "query_string": query,
            "headers": headers, "state": connection.app_state.copy()}
        self.head = method == b"HEAD"
        self.chunks: deque[tuple[bytes, int]] = deque()  # (data, flow-controlled length)
        self.buffered = 0
        self.body_ended = False  # the client's END_STREAM arrived
        self.body_delivered = False  # ...and the application got the last body message
        self.disconnected = False
        self.response_started = False
        self.headers_sent = False
        self.response_complete = False
        self.status = 200
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.on_drained: Callable[[], None] | None = None  # the body buffer was read
        self._arrived = asyncio.Event()
        self._window = asyncio.Event()

    # ------------------------------------------------------------------ from the connection
    def feed(self, data: bytes, flow_controlled_length: int) -> bool:
        """Body bytes arrived; False when nobody will read them any more."""
        if self.disconnected or self.response_complete:
            return False
        self.chunks.append((data, flow_controlled_length))
        self.buffered += len(data)
        self._arrived.set()
        return True

    def end_body(self) -> None:
        self.body_ended = True
        self._arrived.set()

    def disconnect(self) -> None:
        self.disconnected = True
        self._arrived.set()
        self._window.set()

    def window_opened(self) -> None:
        self._window.set()

    # ------------------------------------------------------------------ the ASGI call
    async def run(self, app: Any) -> None:
        try:
            if self.bad_target:
                await self._plain(400, b"Invalid HTTP request received.")
            else:
                await app(self.scope, self.receive, self.send)
        except BaseException as exc:  # noqa: BLE001 - logged, answered, never re-raised
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            log.error("Exception in ASGI application\n", exc_info=exc)
            if not self.response_started:
                await self._plain(500, b"Internal Server Error")
            elif not self.response_complete:
                self._reset(ErrorCodes.INTERNAL_ERROR)
        else:
            if not self.response_started:
                log.error("ASGI callable returned without starting response.")
                await self._plain(500, b"Internal Server Error")
            elif not self.response_complete and not self.disconnected:
                log.error("ASGI callable returned without completing response.")
                self._reset(ErrorCodes.INTERNAL_ERROR)
        finally:
            self._hand_back_unread()
            self.connection.stream_done(self)

    async def receive(self) -> dict[str, Any]:
        while True:
            if self.disconnected or (self.response_complete and self.body_delivered):
                return {"type": "http.disconnect"}
            if self.chunks:
                body = b"".join(data for data, _ in self.chunks)
                self._acknowledge(sum(length for _, length in self.chunks))
                self.chunks.clear()
                self.buffered = 0
                if self.on_drained is not None:
                    self.on_drained()
                self.body_delivered = self.body_ended
                return {"type": "http.request", "body": body, "more_body": not self.body_ended}
            if self.body_ended and not self.body_delivered:
                self.body_delivered = True
                return {"type": "http.request", "body": b"", "more_body": False}
            if self.response_complete:
                return {"type": "http.disconnect"}
            self._arrived.clear()
            await self._arrived.wait()

    async def send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.response_started:
                raise RuntimeError("http.response.start sent twice")
            self.response_started = True
            self.status = int(message["status"])
            self.response_headers = list(message.get("headers", []))
            return
        if kind != "http.response.body":
            raise RuntimeError(f"unexpected ASGI message {kind!r} on an HTTP request")
        if not self.response_started:
            raise RuntimeError("http.response.body sent before http.response.start")
        if self.response_complete:
            raise RuntimeError("http.response.body sent after the response completed")
        body = b"" if self.head else bytes(message.get("body", b""))
        more = bool(message.get("more_body", False))
        if self.disconnected:
            self.response_complete = not more
            return
        try:
            if not self.headers_sent:
                self._send_headers(end_stream=not more and not body)
            elif not body and not more:
                self.connection.h2.end_stream(self.stream_id)
                self.connection.flush()
            if body:
                await self._send_data(body, end_stream=not more)
        except h2.exceptions.StreamClosedError:
            self.disconnect()  # the client reset it meanwhile
        if not more:
            self._complete()

    # ------------------------------------------------------------------ helpers
    def _send_headers(self, end_stream: bool) -> None:
        headers = [(b":status", str(self.status).encode())]
        names = set()
        for name, value in self.response_headers:
            name = bytes(name).lower()
            if name not in HOP_HEADERS:
                headers.append((name, bytes(value)))
                names.add(name)
        headers += [(name, value) for name, value in
                    self.connection.server_state.default_headers if name not in names]
        self.connection.h2.send_headers(self.stream_id, headers, end_stream=end_stream)
        self.headers_sent = True
        self.connection.flush()

    async def _send_data(self, data: bytes, end_stream: bool) -> None:
        connection, h2 = self.connection, self.connection.h2
        offset = 0
        while offset < len(data):
            if self.disconnected:
                return
            if not connection.writable.is_set():
                await connection.writable.wait()
                continue
            window = h2.local_flow_control_window(self.stream_id)
            if window <= 0:
                self._window.clear()
                await self._window.wait()
                continue
            while offset < len(data) and window > 0:
                size = min(window, len(data) - offset, h2.max_outbound_frame_size)
                h2.send_data(self.stream_id, data[offset:offset + size],
                             end_stream=end_stream and offset + size == len(data))
                offset += size
                window -= size
            connection.flush()

    def _complete(self) -> None:
        self.response_complete = True
        self._arrived.set()  # an application waiting for a disconnect gets it now
        if self.body_ended or self.disconnected:
            return
        if self.upgraded:  # the rest of its body comes as HTTP/1.1: no way to stop it
            self.connection.send_goaway()
            return
        # the response is complete before the request: the client may stop sending
        # (RFC 9113 §8.1), and the window it used goes back to the connection
        self._reset(ErrorCodes.NO_ERROR)

    def _reset(self, code: ErrorCodes) -> None:
        if self.disconnected:
            return
        self.disconnected = True
        with contextlib.suppress(h2.exceptions.StreamClosedError):
            self.connection.h2.reset_stream(self.stream_id, code)
        self.connection.flush()

    def _acknowledge(self, flow_controlled_length: int) -> None:
        if flow_controlled_length and not self.connection.closed:
            self.connection.h2.acknowledge_received_data(flow_controlled_length,
                                                         self.stream_id)
            self.connection.flush()

    def _hand_back_unread(self) -> None:
        unread = sum(length for _, length in self.chunks)
        self.chunks.clear()
        self._acknowledge(unread)

    async def _plain(self, status: int, text: bytes) -> None:
        await self.send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(text)).encode())]})
        await self.send({"type": "http.response.body", "body": text})
