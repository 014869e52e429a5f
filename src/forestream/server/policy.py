"""What a request may make the server do beyond its own data: read server paths, fetch
from other hosts. (Running clients' code is the libraries' own setting, ``allow_code``
on :class:`~forestream.processing.applications.ApplicationManager`,
:class:`~forestream.models.registry.ModelRegistry` and
:class:`~forestream.models.hosting.endpoints.EndpointManager`, which the server sets from
``Settings.allow_code``.)

- A request may name a file or folder on the server (application code, a model, metric
  files) only inside ``Settings.import_roots``; the answer is the same whether or not
  the path exists, so the API cannot be used to probe the server's disk.
- A request may make the server fetch only from ``Settings.outbound_hosts``
  (Prometheus, S3 endpoints), over http or https, so it cannot be turned into a proxy
  into the server's network (SSRF).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from forestream.config import Settings
from forestream.names import inside, shorten


class PolicyRefusal(Exception):
    """A request the server's settings do not allow (HTTP 403)."""

    status = 403
    code = "AccessDeniedException"
    title = "Forbidden"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerPolicy:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def server_path(self, raw: str, what: str) -> Path:
        """The server path a request names (plain or ``file://``), if it lies in an import
        root; :class:`PolicyRefusal` otherwise."""
        text = unquote(urlsplit(raw).path) if raw.startswith("file://") else raw
        roots = self.settings.import_roots
        if not roots:
            raise PolicyRefusal(
                f"{what} {shorten(raw)} is a path on the server, and this server reads no "
                "server paths for requests: upload the content instead (forestream "
                "commands do), or start the server with --import-root DIR "
                "(FORESTREAM_IMPORT_ROOTS)")
        path = Path(text).expanduser()
        if not path.is_absolute() or not inside(path, roots):
            raise PolicyRefusal(
                f"{what} {shorten(raw)} is not inside the server's import roots "
                f"({', '.join(str(r) for r in roots)}); give an absolute path under one of "
                "them")
        return path

    def outbound_url(self, url: str, what: str) -> str:
        """``url`` if it is http(s) to an allowed host; :class:`PolicyRefusal` otherwise
        (a malformed URL is the caller's ValueError)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{what} {shorten(url)} must be an absolute http:// or "
                             "https:// URL")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise ValueError(f"{what} {shorten(url)} has an invalid port") from None
        host = parts.hostname.lower()
        allowed = {h.lower() for h in self.settings.outbound_hosts}
        if host in allowed or f"{host}:{port}" in allowed or f"[{host}]:{port}" in allowed:
            return url
        raise PolicyRefusal(
            f"{what} host {host}:{port} is not one the server may fetch from; allowed: "
            f"{', '.join(sorted(allowed)) or 'none'} (start the server with "
            "--outbound-host HOST[:PORT], or FORESTREAM_OUTBOUND_HOSTS)")
