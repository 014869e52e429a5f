"""The server's access token, and how local clients find it (as Jupyter does).

A server without AWS credentials still must not be usable by other local users or by
web pages: at its first start it creates a random token, stored ``0600`` in its data
directory (``access-token``), and asks for it on its own REST API, console and metrics.
While it runs, it also writes ``server-<port>.json`` (URL, token, data directory, pid;
``0600`` in a ``0700`` folder) to the *runtime folder*, ``$FORESTREAM_RUNTIME_DIR`` or
``~/.local/share/forestream/runtime``, so that ``forestream`` commands run by the same
user find the token of the server they talk to without being told.

Clients look in this order: ``FORESTREAM_TOKEN``; the runtime file of the server at
that host and port; ``$FORESTREAM_DATA_DIR/access-token`` (default
``./.forestream/access-token``).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from forestream.durable import write_atomically

TOKEN_FILE = "access-token"
TOKEN_ENV = "FORESTREAM_TOKEN"
RUNTIME_ENV = "FORESTREAM_RUNTIME_DIR"
#: The HTTP header clients send it in (``Authorization: Bearer <token>`` works too).
TOKEN_HEADER = "x-forestream-token"
#: The console's cookie, set after the token was given once on ``/?token=...``.
COOKIE = "forestream_token"


def load_or_create(data_dir: Path) -> str:
    """The token stored in ``data_dir``, created (random, 0600) on first use."""
    path = data_dir / TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        token = path.read_text().strip()
        if token:
            return token
    data_dir.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    write_atomically(path, token.encode() + b"\n", mode=0o600)
    return token


def runtime_dir() -> Path:
    configured = os.environ.get(RUNTIME_ENV)
    if configured:
        return Path(configured)
    return Path.home() / ".local" / "share" / "forestream" / "runtime"


def register(url: str, token: str, data_dir: Path) -> Path:
    """Write this server's runtime file; returns its path (remove it with
    :func:`unregister` when the server stops)."""
    folder = runtime_dir()
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = folder / f"server-{_port(url)}.json"
    info = {"url": url, "token": token, "data_dir": str(data_dir.resolve()),
            "pid": os.getpid()}
    write_atomically(path, json.dumps(info).encode(), mode=0o600)
    return path


def unregister(path: Path) -> None:
    with contextlib.suppress(OSError):
        info = json.loads(path.read_text())
        if info.get("pid") == os.getpid():  # a later server may have taken the port
            path.unlink()


def servers() -> list[dict]:
    """The running servers' runtime records (stale ones, whose process is gone, skipped)."""
    out = []
    folder = runtime_dir()
    for path in sorted(folder.glob("server-*.json")) if folder.is_dir() else []:
        try:
            info = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(info, dict) and _alive(info.get("pid")):
            out.append(info)
    return out


def find_token(endpoint_url: str) -> str | None:
    """The token a client should send to ``endpoint_url``, or None when none is known."""
    explicit = os.environ.get(TOKEN_ENV)
    if explicit:
        return explicit
    wanted = _host_port(endpoint_url)
    for info in servers():
        if _host_port(str(info.get("url", ""))) == wanted and info.get("token"):
            return str(info["token"])
    data_dir = Path(os.environ.get("FORESTREAM_DATA_DIR", ".forestream"))
    with contextlib.suppress(OSError):
        token = (data_dir / TOKEN_FILE).read_text().strip()
        if token:
            return token
    return None


def _port(url: str) -> int:
    parts = urlsplit(url)
    return parts.port or (443 if parts.scheme == "https" else 80)


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if host in ("localhost", "127.0.0.1", "::1", "0.0.0.0", "::", ""):
        host = "loopback"  # one machine: any spelling of it is the same server
    return host, _port(url)


def _alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
