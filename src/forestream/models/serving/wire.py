"""The parent's end of a worker process: spawn it, talk to it in frames, notice its death.

Transport: two pipes created with :func:`os.pipe` and handed to the child with
``pass_fds``, so the child's stdout and stderr stay free for user code — they go to
``log_path``. Every message is a frame::

    u32 big-endian header length | u32 big-endian body length | JSON header | raw body

The child's first frame (id 0) says whether it is ready. Requests carry an ``id``;
answers come back in order and are matched by it, so a caller that gives up on a request
(timeout, cancellation) does not receive the next request's answer. When the parent dies
the request pipe reaches end-of-file and the child exits; when the child dies the
response pipe (and a pidfd, where Linux offers one) tells the parent at once.

:class:`WorkerProcess` is this machinery, driven from an asyncio event loop;
:class:`~forestream.models.serving.worker.ModelWorker` builds on it, and
:mod:`forestream.models.serving.child` is the other end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import orjson

from ..errors import ModelsError, WorkerCrashed

#: The frame prefix: header length, body length (see the module docstring).
FRAME = struct.Struct(">II")
_READ_SIZE = 1 << 20
_JOIN_LIMIT = 1 << 16
_LOG_TAIL_BYTES = 4096
_CLOSE_GRACE = 5.0


class WorkerProcess:
    """A child process spoken to in frames over two pipes, from one asyncio event loop.

    A subclass spawns it (:meth:`_spawn`), waits for the frame with id 0, and sends
    requests with :meth:`_request`, which returns the matching answer or raises
    :class:`WorkerCrashed` when the process dies or misses its deadline (it is then
    killed: a stuck process cannot be trusted with the next request). ``close`` and
    ``kill`` stop it; ``alive`` says whether it can take requests.
    """

    def __init__(self, log_path: Path | None = None) -> None:
        self.log_path = Path(log_path) if log_path is not None else None
        self.pid: int | None = None
        self._process: subprocess.Popen | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._request_fd: int | None = None
        self._response_fd: int | None = None
        self._pidfd: int | None = None
        self._buffer = bytearray()
        self._outgoing = bytearray()
        self._pending: dict[int, asyncio.Future] = {}
        self._deadlines: dict[int, tuple[float, float]] = {}
        self._watchdog: asyncio.TimerHandle | None = None
        self._next_id = 1
        self._gone: str | None = None  # why the worker is unusable, once it is

    @property
    def alive(self) -> bool:
        """Whether the process is running and can take requests."""
        return (self._process is not None and self._gone is None
                and self._process.poll() is None)

    async def close(self) -> None:
        """Stop the worker: end-of-file on its request pipe, then SIGTERM, then SIGKILL.

        Requests still waiting fail with :class:`WorkerCrashed`. Safe to call twice.
        """
        process = self._process
        if process is None:
            return
        self._mark_gone("the worker was closed")
        if process.poll() is None:
            deadline = time.monotonic() + _CLOSE_GRACE
            while process.poll() is None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            for send in (process.terminate, process.kill):
                if process.poll() is None:
                    send()
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        await asyncio.get_running_loop().run_in_executor(
                            None, process.wait, 2.0)
        self._fail_pending(f"the worker was closed (pid {process.pid})")

    def kill(self) -> None:
        """Kill the process at once (SIGKILL), from any context; pending requests fail."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
        self._mark_gone("the worker was killed")
        self._fail_pending("the worker was killed")

    # ------------------------------------------------------------------- transport
    async def _request(self, header: dict, body: bytes, timeout: float) -> tuple[dict, bytes]:
        loop = self._loop
        if self._gone is not None or self._process is None or loop is None:
            raise WorkerCrashed(self._gone or "the worker has not been started")
        request_id = self._next_id
        self._next_id += 1
        header["id"] = request_id
        future = loop.create_future()
        self._pending[request_id] = future
        deadline = loop.time() + timeout
        self._deadlines[request_id] = (deadline, timeout)
        watchdog = self._watchdog
        if watchdog is None or deadline < watchdog.when():
            if watchdog is not None:
                watchdog.cancel()
            self._watchdog = loop.call_at(deadline, self._check_deadlines)
        self._send(orjson.dumps(header), body)
        try:
            return await future
        finally:
            self._pending.pop(request_id, None)
            self._deadlines.pop(request_id, None)

    def _check_deadlines(self) -> None:
        """Expire requests past their deadline; one timer serves all of them.

        A timer per request would cost a heap push and a cancel on every call; instead
        the watchdog sleeps until the earliest deadline it knows, and on waking either
        expires what is late or sleeps again until the earliest pending deadline.
        """
        self._watchdog = None
        loop = self._loop
        assert loop is not None  # the watchdog is only armed by _request, on a live worker
        now = loop.time()
        for request_id, (deadline, timeout) in list(self._deadlines.items()):
            if deadline <= now:
                self._expire(request_id, None, timeout)
                return
        if self._deadlines and self._gone is None:
            earliest = min(deadline for deadline, _ in self._deadlines.values())
            self._watchdog = loop.call_at(earliest, self._check_deadlines)

    def _spawn(self, entry: str, arguments: list[str], env: dict) -> None:
        """Start ``python -c entry arguments... --request-fd R --response-fd W`` with
        ``env``, and watch its pipes (and pidfd) from the running event loop."""
        loop = self._loop
        assert loop is not None, "set _loop to the running event loop before _spawn"
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        log = open(self.log_path, "ab") if self.log_path is not None else None  # noqa: SIM115
        # ``-c`` rather than ``-m``: runpy would warn when the package's __init__ already
        # imported this module. ``-P`` keeps the working directory off sys.path.
        command = [sys.executable, *(["-P"] if sys.version_info >= (3, 11) else []), "-c",
                   entry, *arguments, "--request-fd", str(request_read),
                   "--response-fd", str(response_write)]
        try:
            self._process = subprocess.Popen(
                command, pass_fds=(request_read, response_write), stdin=subprocess.DEVNULL,
                stdout=log if log is not None else 2,
                stderr=subprocess.STDOUT, env=env, cwd="/",
                start_new_session=True)
        except BaseException:
            for fd in (request_write, response_read):
                os.close(fd)
            raise
        finally:
            os.close(request_read)
            os.close(response_write)
            if log is not None:
                log.close()
        self.pid = self._process.pid
        self._request_fd, self._response_fd = request_write, response_read
        os.set_blocking(request_write, False)
        os.set_blocking(response_read, False)
        loop.add_reader(response_read, self._on_readable)
        if hasattr(os, "pidfd_open"):
            try:
                self._pidfd = os.pidfd_open(self.pid)
                loop.add_reader(self._pidfd, self._on_exit)
            except OSError:
                self._pidfd = None

    def _send(self, header: bytes, body: bytes) -> None:
        prefix = FRAME.pack(len(header), len(body))
        if self._outgoing:
            self._outgoing += prefix + header + body
            return
        fd = self._request_fd
        assert fd is not None  # callers (_request) checked that the worker is not gone
        # One write() per frame: a pipe reader woken by the first piece of a writev()
        # would sleep again for the rest, doubling the context switches per request.
        frame = prefix + header + body if len(body) < _JOIN_LIMIT else None
        total = len(prefix) + len(header) + len(body)
        try:
            written = os.write(fd, frame) if frame is not None else \
                os.writev(fd, (prefix, header, body))
        except BlockingIOError:
            written = 0
        except OSError as exc:  # EPIPE: the worker is gone
            self._worker_gone(f"writing to the worker failed ({exc.strerror})")
            return
        if written < total:
            self._outgoing += (prefix + header + body)[written:]
            loop = self._loop
            assert loop is not None  # set before the pipes exist
            loop.add_writer(fd, self._on_writable)

    def _on_writable(self) -> None:
        fd, loop = self._request_fd, self._loop
        assert fd is not None and loop is not None  # _mark_gone unregisters before closing
        try:
            written = os.write(fd, self._outgoing)
        except BlockingIOError:
            return
        except OSError as exc:
            self._worker_gone(f"writing to the worker failed ({exc.strerror})")
            return
        del self._outgoing[:written]
        if not self._outgoing:
            loop.remove_writer(fd)

    def _on_readable(self) -> None:
        fd = self._response_fd
        assert fd is not None  # _mark_gone unregisters this reader before closing the fd
        try:
            chunk = os.read(fd, _READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self._worker_gone(None)
            return
        self._take(chunk)

    def _take(self, chunk: bytes) -> None:
        buffer = self._buffer
        if not buffer and len(chunk) >= 8:  # the common case: exactly one whole frame
            header_length, body_length = FRAME.unpack_from(chunk)
            if len(chunk) == 8 + header_length + body_length:
                self._deliver(orjson.loads(chunk[8:8 + header_length]),
                              chunk[8 + header_length:])
                return
        buffer += chunk
        while len(buffer) >= 8:
            header_length, body_length = FRAME.unpack_from(buffer)
            end = 8 + header_length + body_length
            if len(buffer) < end:
                break
            header = orjson.loads(memoryview(buffer)[8:8 + header_length])
            body = bytes(buffer[8 + header_length:end])
            del buffer[:end]
            self._deliver(header, body)

    def _deliver(self, header: dict, body: bytes) -> None:
        future = self._pending.pop(header.get("id", 0), None)
        if future is not None and not future.done():
            future.set_result((header, body))

    def _on_exit(self) -> None:
        self._worker_gone(None)

    def _expire(self, request_id: int, error: ModelsError | None, timeout: float = 0.0) -> None:
        future = self._pending.get(request_id)
        if future is None or future.done():
            return
        if error is None:
            error = WorkerCrashed(f"the worker (pid {self.pid}) did not answer within "
                                  f"{timeout:g} s; it was stopped{self._log_hint()}")
        future.set_exception(error)
        if self._process is not None and self._process.poll() is None:
            self._process.kill()  # a stuck worker cannot be trusted with the next request
        self._mark_gone(error.message)
        self._fail_pending(error.message)

    def _worker_gone(self, reason: str | None) -> None:
        """The response pipe closed or the process exited: collect answers, fail the rest."""
        if self._gone is not None:
            return
        self._drain()
        process = self._process
        assert process is not None  # only the pipes and pidfd of a spawned worker call this
        code = process.poll()
        if code is None:
            # The pipe closed but the process has not exited yet (or a child holds the
            # pipe): give it a moment, then stop it so the failure is reported at once.
            try:
                code = process.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                process.kill()
                code = process.wait()
        why = reason or f"the worker (pid {self.pid}) exited with {_describe_exit(code)}"
        message = f"{why}{self._log_hint(tail=True)}"
        self._mark_gone(message)
        self._fail_pending(message)

    def _drain(self) -> None:
        if self._response_fd is None:
            return
        while True:
            try:
                chunk = os.read(self._response_fd, _READ_SIZE)
            except OSError:
                return
            if not chunk:
                return
            self._take(chunk)

    def _mark_gone(self, message: str) -> None:
        if self._gone is None:
            self._gone = message
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        loop = self._loop
        for fd, is_writer in ((self._response_fd, False), (self._pidfd, False),
                              (self._request_fd, True)):
            if fd is None:
                continue
            if loop is not None and not loop.is_closed():
                with contextlib.suppress(Exception):
                    loop.remove_writer(fd) if is_writer else loop.remove_reader(fd)
            with contextlib.suppress(OSError):
                os.close(fd)
        self._response_fd = self._pidfd = self._request_fd = None

    def _fail_pending(self, message: str) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(WorkerCrashed(message))

    def _log_hint(self, tail: bool = False) -> str:
        if self.log_path is None:
            return ""
        if not tail:
            return f" (log: {self.log_path})"
        lines = _log_tail(self.log_path)
        return f"; last log lines ({self.log_path}):\n{lines}" if lines else \
            f" (log: {self.log_path})"


# --------------------------------------------------------------------------- helpers

def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _LOG_TAIL_BYTES))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])
