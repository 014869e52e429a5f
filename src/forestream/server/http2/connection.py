"""HTTP/2 connections: the server's ASGI application over the ``h2`` protocol library.

Every port of ``forestream server`` speaks HTTP/2 besides HTTP/1.1 (the AWS SDK for
JavaScript v3 speaks only HTTP/2 to Kinesis; the Kinesis Client Library reads
SubscribeToShard over it; Java's ``HttpClient`` asks for it by ``Upgrade: h2c``).
:mod:`forestream.server.connections` decides per connection which protocol it speaks
(the HTTP/2 preface, ALPN on TLS, or an upgrade) and hands HTTP/2 connections to
:class:`Http2Connection`, which serves each stream as one ASGI call of the same
application, request guard included, as uvicorn serves HTTP/1.1 requests.

Where this differs from a plain ``h2`` server (and from Hypercorn, which the server used
before): a client's graceful GOAWAY (``NO_ERROR``) does not end the streams it already
opened. The AWS SDK for JavaScript closes its session right after SubscribeToShard's
response headers arrive and expects the event stream to keep flowing, as RFC 9113 §6.8
allows; ``h2`` refuses to send anything once it received a GOAWAY (python-hyper/h2
issue 1181), so :class:`_Connection` keeps the connection open on receiving one. The
server's own GOAWAY (idle connections, shutdown) is written beside ``h2`` for the same
reason: streams in flight finish. A connection with no stream in flight is closed after
:data:`HEADER_TIMEOUT_SECONDS` at first and :data:`IDLE_TIMEOUT_SECONDS` between
requests; header blocks are capped at :data:`MAX_HEADER_BYTES`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame

from .stream import Http2Stream, UpgradedRequest

if TYPE_CHECKING:
    from uvicorn.config import Config
    from uvicorn.server import ServerState

HEADER_TIMEOUT_SECONDS = 10.0  # as HTTP/1.1's (connections.py)
IDLE_TIMEOUT_SECONDS = 60.0  # between requests: clients keep HTTP/2 sessions for a while
MAX_HEADER_BYTES = 64 * 1024
MAX_CONCURRENT_STREAMS = 100
STREAM_WINDOW = 1024 * 1024  # what a client may send on a stream before we read it
CONNECTION_WINDOW = 16 * 1024 * 1024
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

log = logging.getLogger("uvicorn.error")


class _Connection(h2.connection.H2Connection):
    """``h2``'s connection state machine, except that a GOAWAY received leaves the
    connection open: streams the client opened before it go on (RFC 9113 §6.8), and
    frames that follow it (WINDOW_UPDATE for those streams) are still accepted."""

    def _receive_goaway_frame(self, frame: Any) -> tuple[list[Any], list[h2.events.Event]]:
        event = h2.events.ConnectionTerminated()
        try:
            event.error_code = ErrorCodes(frame.error_code)
        except ValueError:  # a code this h2 does not name
            event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class Http2Connection(asyncio.Protocol):
    """One HTTP/2 connection: frames in and out through ``h2``, each request stream an
    ASGI call of uvicorn's loaded application (``config.loaded_app``). It joins uvicorn's
    ``server_state`` like an HTTP/1.1 connection, so the server's shutdown waits for it."""

    def __init__(self, config: Config, server_state: ServerState, app_state: dict[str, Any],
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.config = config
        self.app = config.loaded_app
        self.server_state = server_state
        self.app_state = app_state
        self.loop = loop or asyncio.get_event_loop()
        self.h2 = _Connection(h2.config.H2Configuration(
            client_side=False, header_encoding=None, validate_inbound_headers=True))
        self.h2.local_settings = h2.settings.Settings(client=False, initial_values={
            h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_CONCURRENT_STREAMS,
            h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE: MAX_HEADER_BYTES,
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
        })
        self.streams: dict[int, Http2Stream] = {}
        self.transport: asyncio.Transport | None = None
        self.scheme = "http"
        self.server: tuple[str, int] | None = None
        self.client: tuple[str, int] | None = None
        self.writable = asyncio.Event()
        self.writable.set()
        self.goaway_sent = False  # no new streams after our GOAWAY
        self.goaway_received = False  # the client opens no new streams: close when done
        self.closed = False
        self.last_stream_id = 0
        self.requests_served = 0
        self._timer: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ entry points
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """A connection that speaks HTTP/2 from its first byte (prior knowledge, or h2 by
        ALPN): the server's preface goes out at once."""
        self._attach(transport)
        self.h2.initiate_connection()
        self._open_connection_window()
        self.flush()

    def upgrade(self, transport: asyncio.BaseTransport, settings: bytes,
                request: UpgradedRequest) -> Http2Stream:
        """An HTTP/1.1 request that asked for ``Upgrade: h2c``: answer 101, send the
        server's preface and serve the request as stream 1 (its body still arrives over
        HTTP/1.1, through the returned stream's ``feed``)."""
        self._attach(transport)
        self.h2.initiate_upgrade_connection(settings + b"=" * (-len(settings) % 4))
        self._open_connection_window()
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\n"
                             b"upgrade: h2c\r\n\r\n")
        self.flush()
        return self._start_stream(1, request.method, request.target, request.headers,
                                  upgraded=True)

    def data_received(self, data: bytes) -> None:
        try:
            events = self.h2.receive_data(data)
        except h2.exceptions.ProtocolError as error:
            self._fail(error)
            return
        for event in events:
            self._handle(event)
        self.flush()

    def eof_received(self) -> bool | None:
        return None  # the transport closes itself; connection_lost tidies up

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm_timer()
        self.server_state.connections.discard(self)
        for stream in list(self.streams.values()):
            stream.disconnect()
        self.writable.set()  # wake senders: they see the stream disconnected

    def pause_writing(self) -> None:
        self.writable.clear()
        if self.transport is not None:
            self.transport.pause_reading()  # a client that does not read sends no more

    def resume_writing(self) -> None:
        self.writable.set()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def shutdown(self) -> None:
        """The server is stopping (uvicorn calls this on every connection): no new
        streams; the connection closes once those in flight have ended."""
        self.send_goaway()
        self._close_if_done()

    # ------------------------------------------------------------------ for streams
    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def send_goaway(self, error_code: int = ErrorCodes.NO_ERROR) -> None:
        """GOAWAY naming the last stream we serve, written beside ``h2`` (whose state
        machine would refuse to send on the streams still in flight afterwards)."""
        if self.goaway_sent or self.transport is None or self.transport.is_closing():
            return
        self.goaway_sent = True
        frame = GoAwayFrame(0)
        frame.last_stream_id = self.last_stream_id
        frame.error_code = int(error_code)
        self.flush()
        self.transport.write(frame.serialize())

    def stream_done(self, stream: Http2Stream) -> None:
        """A stream's response is complete (or it was reset) and its ASGI call returned."""
        if self.streams.get(stream.stream_id) is stream:
            del self.streams[stream.stream_id]
            self.requests_served += 1
        self._close_if_done()
        if not self.streams:
            self._arm_timer(IDLE_TIMEOUT_SECONDS)

    # ------------------------------------------------------------------ events
    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request(event)
        elif isinstance(event, h2.events.DataReceived):
            stream = self.streams.get(event.stream_id)
            if stream is None or not stream.feed(event.data, event.flow_controlled_length):
                # nobody reads it any more: hand the window back to the connection
                self.h2.acknowledge_received_data(event.flow_controlled_length,
                                                  event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            if (stream := self.streams.get(event.stream_id)) is not None:
                stream.end_body()
        elif isinstance(event, h2.events.StreamReset):
            if (stream := self.streams.get(event.stream_id)) is not None:
                stream.disconnect()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            targets = [self.streams.get(event.stream_id)] \
                if isinstance(event, h2.events.WindowUpdated) and event.stream_id else \
                list(self.streams.values())
            for target in targets:
                if target is not None:
                    target.window_opened()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.goaway_received = True
            if event.error_code != ErrorCodes.NO_ERROR:
                for stream in list(self.streams.values()):
                    stream.disconnect()
                self._close()
            else:
                self._close_if_done()

    def _request(self, event: h2.events.RequestReceived) -> None:
        stream_id = event.stream_id
        if self.goaway_sent or self.closed:
            self.h2.reset_stream(stream_id, ErrorCodes.REFUSED_STREAM)
            return
        fields: dict[bytes, bytes] = {}
        headers: list[tuple[bytes, bytes]] = []
        for name, value in event.headers or ():
            name, value = bytes(name), bytes(value)
            if name.startswith(b":"):
                fields[name] = value
            else:
                headers.append((name, value))
        if b":authority" in fields:
            # HTTP/2's Host: the guard checks it; SigV4 signs one or the other (the AWS
            # SDK for JavaScript signs ':authority', so it stays among the headers)
            if b"host" not in (name for name, _ in headers):
                headers.insert(0, (b"host", fields[b":authority"]))
            headers.append((b":authority", fields[b":authority"]))
        method, target = fields.get(b":method", b""), fields.get(b":path")
        if target is None or method == b"CONNECT":
            self.h2.reset_stream(stream_id, ErrorCodes.PROTOCOL_ERROR)
            return
        self._start_stream(stream_id, method, target, headers)

    def _start_stream(self, stream_id: int, method: bytes, target: bytes,
                      headers: list[tuple[bytes, bytes]], upgraded: bool = False) -> Http2Stream:
        self._disarm_timer()
        self.last_stream_id = max(self.last_stream_id, stream_id)
        stream = Http2Stream(self, stream_id, method, target, headers, upgraded)
        self.streams[stream_id] = stream
        task = self.loop.create_task(stream.run(self.app))
        self.server_state.tasks.add(task)
        task.add_done_callback(self.server_state.tasks.discard)
        return stream

    # ------------------------------------------------------------------ helpers
    def _attach(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server_state.connections.add(self)  # type: ignore[arg-type]
        self.scheme = "https" if transport.get_extra_info("sslcontext") else "http"
        self.server = _address(transport.get_extra_info("sockname"))
        self.client = _address(transport.get_extra_info("peername"))
        self._arm_timer(HEADER_TIMEOUT_SECONDS)

    def _open_connection_window(self) -> None:
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)

    def _close_if_done(self) -> None:
        if (self.goaway_sent or self.goaway_received) and not self.streams:
            self._close()

    def _close(self) -> None:
        self.send_goaway()
        if self.transport is not None and not self.transport.is_closing():
            self.flush()
            self.transport.close()

    def _fail(self, error: h2.exceptions.ProtocolError) -> None:
        code = getattr(error, "error_code", None) or ErrorCodes.PROTOCOL_ERROR
        for stream in list(self.streams.values()):
            stream.disconnect()
        self.send_goaway(code)
        self._close()

    def _arm_timer(self, seconds: float) -> None:
        self._disarm_timer()
        if not self.closed:
            self._timer = self.loop.call_later(seconds, self._expired)

    def _disarm_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expired(self) -> None:
        self._timer = None
        if not self.streams:  # no request in flight: nothing to wait for
            self._close()


def _address(value: object) -> tuple[str, int] | None:
    if isinstance(value, tuple) and len(value) >= 2:
        return str(value[0]), int(value[1])
    return None
