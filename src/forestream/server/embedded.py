"""A forestream server started by the calling program, for demos, examples and notebooks.

:class:`EmbeddedServer` runs the whole server (the same ASGI application and connection
guard as ``forestream server``) on a free loopback port, with a fresh access token and
running clients' code allowed (the program embedding it is the only client).
``client()`` is a boto3 Kinesis client of it; ``url`` and ``token`` serve the REST API
(see :mod:`forestream.rest_client`).

By default the server runs in a process of its own (``python -m
forestream.server.embedded``), which ends with the program that started it: in a thread
it would share the program's interpreter lock, and a program that produces and reads
records as fast as the quickstart does then waits on the server's request handling, and
the server on it (the quickstart's end-to-end p50 was 114–125 ms with the server in its
own process against 146–185 ms in a thread, benchmarks/RESULTS.md). ``in_thread=True``
keeps it in a background thread of this process instead (no child process to start: a
second or so faster to come up, and a debugger sees both sides).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from forestream.config import Settings
from forestream.processing.kinesis_io import kinesis_client

#: How long a server may take to answer its first health check (imports included).
START_SECONDS = 60.0


class EmbeddedServer:
    """``forestream server`` on a free loopback port, for this program.

    Parameters
    ----------
    data_dir
        Where the server keeps its streams, applications and models.
    in_thread
        Run the server in a background thread of this process rather than in a child
        process (see the module's notes).
    """

    def __init__(self, data_dir: Path, *, in_thread: bool = False) -> None:
        self.data_dir = Path(data_dir)
        self.in_thread = in_thread
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.token: str | None = None
        self._server: Any = None  # a uvicorn.Server, in a thread
        self._thread: threading.Thread | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        """The child server's output (in a child process only)."""
        return self.data_dir / "embedded-server.log"

    def start(self) -> None:
        # the program that embeds a server deploys its own applications: it runs code
        self.token = secrets.token_urlsafe(24)
        if self.in_thread:
            self._start_thread(self.token)
        else:
            self._start_process(self.token)

    def client(self):
        return kinesis_client(self.url, max_attempts=5)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (its applications' workers first, as ``forestream server``
        does on SIGTERM); a child that has not ended after ``timeout`` seconds is killed."""
        if self._process is not None:
            process, self._process = self._process, None
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> EmbeddedServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ in a thread
    def _start_thread(self, token: str) -> None:
        from .app import Server

        settings = Settings(data_dir=self.data_dir, host="127.0.0.1", port=self.port,
                            status_delay=0.1, allow_code=True, token=token)
        # forestream server's own: it stops the applications' workers before it stops
        # listening (their last checkpoint goes to this server), and registers the token
        # so local clients (the CLI, a job's record waits) find it
        running = Server(settings, log_level="error")
        self._server = server = running.server
        self._thread = thread = threading.Thread(target=running.run, name="server",
                                                 daemon=True)
        thread.start()
        deadline = time.monotonic() + START_SECONDS
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the embedded server did not start")
            time.sleep(0.02)

    # ------------------------------------------------------------------ in a process
    def _start_process(self, token: str) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FORESTREAM_TOKEN": token, "FORESTREAM_ALLOW_CODE": "1",
               "FORESTREAM_STATUS_DELAY": "0.1"}
        # the token travels in the environment, never on a command line others can read
        command = [sys.executable, "-m", "forestream.server.embedded", str(self.data_dir),
                   str(self.port), str(os.getpid())]
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_SECONDS
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.stop(timeout=5)
                raise RuntimeError(f"the embedded server did not start; its output "
                                   f"({self.log_path}):\n{self._log_tail()}")
            time.sleep(0.05)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError, ValueError), \
                urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
            return bool(json.loads(response.read()).get("status") == "ok")
        return False

    def _log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no output)"


def _serve(data_dir: Path, port: int, parent: int) -> None:
    """The child's side: ``forestream server`` on ``port`` until SIGTERM or until the
    program that started it is gone."""
    from .app import Server

    _end_with_parent(parent)
    settings = Settings(data_dir=data_dir, host="127.0.0.1", port=port)
    Server(settings, log_level="error").run()


def _end_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` ends, however it ends (``kill -9`` too):
    Linux's parent-death signal where there is one, else a thread that watches."""
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        if libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0) == 0:
            if os.getppid() != parent:  # it ended before the signal was asked for
                os.kill(os.getpid(), signal.SIGTERM)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


if __name__ == "__main__":
    _serve(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
