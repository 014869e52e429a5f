"""A forestream server inside the calling program, for demos, examples and notebooks.

:class:`EmbeddedServer` runs the whole server (the same ASGI application and connection
guard as ``forestream server``) on a free loopback port in a background thread, with a
fresh access token and running clients' code allowed (the program embedding it is the
only client). ``client()`` is a boto3 Kinesis client of it; ``url`` and ``token`` serve
the REST API (see :mod:`forestream.rest_client`).
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from pathlib import Path

import uvicorn

from forestream import access_token
from forestream.config import Settings
from forestream.processing.kinesis_io import kinesis_client

from .app import create_app
from .connections import GuardedHttpToolsProtocol


class EmbeddedServer:
    """``forestream server`` in a background thread of this process."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.token: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._runtime: Path | None = None

    def start(self) -> None:
        # the program that embeds a server deploys its own applications: it runs code
        token = secrets.token_urlsafe(24)
        settings = Settings(data_dir=self.data_dir, host="127.0.0.1", port=self.port,
                            status_delay=0.1, allow_code=True, token=token)
        self.token = token
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                log_level="error", access_log=False,
                                http=GuardedHttpToolsProtocol)
        self._server = server = uvicorn.Server(config)
        self._thread = thread = threading.Thread(target=server.run, name="server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the embedded server did not start")
            time.sleep(0.02)
        # as `forestream server` does: local clients (the CLI, a job's record waits) find
        # the token of the server at this URL
        self._runtime = access_token.register(self.url, token, self.data_dir)

    def client(self):
        return kinesis_client(self.url, max_attempts=5)

    def stop(self) -> None:
        if self._runtime is not None:
            access_token.unregister(self._runtime)
            self._runtime = None
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
