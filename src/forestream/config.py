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


@dataclass
class Settings:
    """Where state lives, where the server listens, and how it behaves.

    ``access_key_id`` / ``secret_access_key``: when both are set, every AWS-protocol
    request must carry a valid Signature V4 made with them; otherwise any signature (or
    none) is accepted, as local development tools do.
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
