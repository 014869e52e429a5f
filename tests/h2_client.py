"""A small HTTP/2 client for tests that need frames a regular client will not send: a
GOAWAY right after response headers, a body trickled or sent past a limit, a connection
that never sends its request (importable: tests/ is on sys.path)."""

from __future__ import annotations

import socket
import ssl
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.errors import ErrorCodes


class _Connection(h2.connection.H2Connection):
    """h2's client, except that a GOAWAY received does not end the streams in flight
    (RFC 9113 §6.8), as the server's (forestream.server.http2) does not either."""

    def _receive_goaway_frame(self, frame):
        event = h2.events.ConnectionTerminated()
        event.error_code, event.last_stream_id = frame.error_code, frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


class RawH2:
    """One HTTP/2 connection to ``port`` on 127.0.0.1: by prior knowledge (default), by
    ``Upgrade: h2c`` (``upgrade=`` the first request's head and body), or over TLS
    (``tls=`` a client context offering h2)."""

    def __init__(self, port: int, *, tls: ssl.SSLContext | None = None,
                 upgrade: tuple[bytes, bytes] | None = None, timeout: float = 30.0,
                 window: int = 1 << 24) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            ("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.h2 = _Connection(h2.config.H2Configuration(
            client_side=True, header_encoding=None))
        self.h2.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: min(window, 2**31 - 1),
            h2.settings.SettingCodes.ENABLE_PUSH: 0})
        self.events: list[h2.events.Event] = []
        self.closed = False
        self.upgrade_response = b""
        if upgrade is not None:
            head, body = upgrade
            self.sock.sendall(head + body)
            self.upgrade_response = self._read_until(b"\r\n\r\n")
            self.h2.initiate_upgrade_connection()
        else:
            self.h2.initiate_connection()
        if window > 65535:
            self.h2.increment_flow_control_window(window - 65535)
        self.flush()

    # ------------------------------------------------------------------ sending
    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes = b"", end: bool = True, authority: str | None = None) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        fields = [(":method", method), (":path", path), (":scheme", "http"),
                  (":authority", authority or "127.0.0.1"),
                  *((k.lower(), v) for k, v in (headers or {}).items())]
        self.h2.send_headers(stream_id, [(k.encode(), v.encode()) for k, v in fields],
                             end_stream=end and not body)
        if body:
            self.send_body(stream_id, body, end=end)
        self.flush()
        return stream_id

    def send_body(self, stream_id: int, body: bytes, end: bool = True) -> None:
        """Send ``body`` as the windows allow (reading window updates meanwhile); stop
        when the server resets the stream (it answered and wants no more)."""
        try:
            while body:
                window = min(self.h2.local_flow_control_window(stream_id),
                             self.h2.max_outbound_frame_size)
                if window <= 0:
                    self.flush()
                    self.read(1.0)
                    if self.closed:
                        return
                    continue
                chunk, body = body[:window], body[window:]
                self.h2.send_data(stream_id, chunk, end_stream=end and not body)
                self.flush()
        except h2.exceptions.StreamClosedError:
            pass
        self.flush()

    def goaway(self) -> None:
        self.h2.close_connection(ErrorCodes.NO_ERROR)
        self.flush()
        # keep reading and acknowledging, as a client whose session is closing does
        self.h2.state_machine.state = h2.connection.ConnectionState.CLIENT_OPEN

    def flush(self) -> None:
        data = self.h2.data_to_send()
        if data and not self.closed:
            try:
                self.sock.sendall(data)
            except OSError:
                self.closed = True

    # ------------------------------------------------------------------ receiving
    def read(self, timeout: float) -> list[h2.events.Event]:
        """Events that arrive within ``timeout`` seconds (at least one read)."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return []
        except (ConnectionResetError, ssl.SSLError, OSError):
            data = b""
        if not data:
            self.closed = True
            return []
        events = self.h2.receive_data(data)
        for event in events:
            if isinstance(event, h2.events.DataReceived):
                self.h2.acknowledge_received_data(event.flow_controlled_length,
                                                  event.stream_id)
        self.flush()
        self.events += events
        return events

    def response(self, stream_id: int, timeout: float = 30.0) -> tuple[int, dict, bytes]:
        """(status, headers, body) of a stream, read until it ends or is reset."""
        deadline = time.monotonic() + timeout
        status, headers, body = 0, {}, bytearray()
        done = False
        seen = 0
        while not done:
            for event in self.events[seen:]:
                if getattr(event, "stream_id", None) != stream_id:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    fields = {bytes(k).decode(): bytes(v).decode() for k, v in event.headers}
                    status, headers = int(fields.pop(":status")), fields
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                    done = True
            seen = len(self.events)
            if done:
                break
            if self.closed or time.monotonic() > deadline:
                raise TimeoutError(f"stream {stream_id}: no complete response "
                                   f"(status {status}, {len(body)} bytes)")
            self.read(max(deadline - time.monotonic(), 0.01))
        return status, headers, bytes(body)

    def wait_closed(self, timeout: float) -> bool:
        """Whether the server closes the connection within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.read(max(deadline - time.monotonic(), 0.01))
        return self.closed

    def close(self) -> None:
        self.closed = True
        self.sock.close()

    def _read_until(self, marker: bytes) -> bytes:
        data = b""
        while marker not in data:
            chunk = self.sock.recv(1)
            if not chunk:
                break
            data += chunk
        return data
