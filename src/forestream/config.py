"""One settings object for the whole platform, read from ``FORESTREAM_*`` variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path


def _flag(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in ("1", "true", "yes", "on")


def _list(name: str, separator: str = ",") -> list[str]:
    return [item.strip() for item in os.environ.get(name, "").split(separator)
            if item.strip()]


@dataclass
class Settings:
    """Where state lives, where the server listens, and how it behaves.

    ``access_key_id`` / ``secret_access_key``: when both are set, every AWS-protocol
    request must carry a valid Signature V4 made with them; otherwise any signature is
    accepted on the AWS routes, as local development tools do. ``require_signature``
    (on unless ``FORESTREAM_REQUIRE_SIGNATURE=0``) still asks every Kinesis request for a
    signature of AWS's form (not verified without credentials), answering AWS's
    MissingAuthenticationToken / IncompleteSignature / InvalidSignature errors as AWS
    does: every AWS SDK and the CLI sign always, so only hand-made requests notice.

    What protects a server on one machine (see docs/security.md):

    - ``token``: forestream's own REST API, console and metrics ask for this access
      token (``FORESTREAM_TOKEN``; when unset the server creates one in its data
      directory, see :mod:`forestream.access_token`). ``require_token`` False
      (``FORESTREAM_NO_TOKEN=1``) turns that off.
    - ``allow_code``: whether clients may make the server run their code (applications,
      pickled models, SageMaker inference scripts); off unless ``FORESTREAM_ALLOW_CODE=1``.
    - ``import_roots``: the only server folders that requests may name as sources
      (application code, model files, metric files): ``FORESTREAM_IMPORT_ROOTS``, a
      ``os.pathsep``-separated list; none by default (clients upload instead).
    - ``outbound_hosts``: the only hosts (``host`` or ``host:port``) the server may be
      asked to fetch from (Prometheus, S3 endpoints): ``FORESTREAM_OUTBOUND_HOSTS``.
    - ``allowed_hosts``: ``Host`` names accepted besides the loopback names when the
      server listens on loopback (DNS-rebinding guard): ``FORESTREAM_ALLOWED_HOSTS``.
    - ``cors_origins``: web origins allowed to call the server from a browser:
      ``FORESTREAM_CORS_ORIGINS``; none by default.
    """

    data_dir: Path = field(default_factory=lambda: Path(
        os.environ.get("FORESTREAM_DATA_DIR", ".forestream")))
    host: str = field(default_factory=lambda: os.environ.get("FORESTREAM_HOST", "127.0.0.1"))
    port: int = field(default_factory=lambda: int(os.environ.get("FORESTREAM_PORT", "4567")))
    region: str = field(default_factory=lambda: os.environ.get("FORESTREAM_REGION",
                                                               "us-east-1"))
    access_key_id: str | None = field(
        default_factory=lambda: os.environ.get("FORESTREAM_ACCESS_KEY_ID"))
    secret_access_key: str | None = field(
        default_factory=lambda: os.environ.get("FORESTREAM_SECRET_ACCESS_KEY"))
    fsync: bool = field(default_factory=lambda: _flag("FORESTREAM_FSYNC", True))
    throughput_limits: bool = field(
        default_factory=lambda: _flag("FORESTREAM_THROUGHPUT_LIMITS", False))
    status_delay: float = field(
        default_factory=lambda: float(os.environ.get("FORESTREAM_STATUS_DELAY", "0.3")))
    token: str | None = field(default_factory=lambda: os.environ.get("FORESTREAM_TOKEN")
                              or None)
    require_token: bool = field(default_factory=lambda: not _flag("FORESTREAM_NO_TOKEN",
                                                                  False))
    allow_code: bool = field(default_factory=lambda: _flag("FORESTREAM_ALLOW_CODE", False))
    import_roots: list[Path] = field(default_factory=lambda: [
        Path(p) for p in _list("FORESTREAM_IMPORT_ROOTS", os.pathsep)])
    outbound_hosts: list[str] = field(
        default_factory=lambda: _list("FORESTREAM_OUTBOUND_HOSTS"))
    allowed_hosts: list[str] = field(
        default_factory=lambda: _list("FORESTREAM_ALLOWED_HOSTS"))
    cors_origins: list[str] = field(
        default_factory=lambda: _list("FORESTREAM_CORS_ORIGINS"))
    require_signature: bool = field(
        default_factory=lambda: _flag("FORESTREAM_REQUIRE_SIGNATURE", True))
    #: where streams live: None for the data directory, else NATS URLs of a JetStream
    #: cluster ("nats://h1:4222,nats://h2:4222"; FORESTREAM_STREAMS)
    streams: str | None = field(default_factory=lambda: os.environ.get("FORESTREAM_STREAMS")
                                or None)
    streams_replicas: int = field(default_factory=lambda: int(
        os.environ.get("FORESTREAM_STREAMS_REPLICAS", "1")))
    streams_namespace: str = field(default_factory=lambda: os.environ.get(
        "FORESTREAM_STREAMS_NAMESPACE", "forestream"))
    streams_key_file: Path | None = field(default_factory=lambda: (
        Path(os.environ["FORESTREAM_STREAMS_KEY_FILE"])
        if os.environ.get("FORESTREAM_STREAMS_KEY_FILE") else None))

    @property
    def auth_enabled(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)


def client_credentials() -> tuple[str | None, str | None]:
    """Credentials a forestream client signs with: ``FORESTREAM_*`` first, then the usual
    ``AWS_*`` variables; (None, None) when neither is set."""
    key = os.environ.get("FORESTREAM_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = os.environ.get("FORESTREAM_SECRET_ACCESS_KEY") or \
        os.environ.get("AWS_SECRET_ACCESS_KEY")
    return (key, secret) if key and secret else (None, None)


def client_region() -> str:
    return os.environ.get("FORESTREAM_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
