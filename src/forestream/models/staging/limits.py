"""What every staging step shares: the size limits an import runs under, and what staging
produced (:class:`StagedSource`)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..errors import InvalidInput

GIB = 1024 ** 3


@dataclass(frozen=True)
class ImportLimits:
    """Size limits applied while staging; exceeding one refuses the import.

    ``max_files``: members of an archive (or files of a directory / S3 prefix);
    ``max_file_bytes``: any single file; ``max_total_bytes``: the whole staged model, and
    any archive or upload before it is unpacked. Defaults: 10,000 files, 8 GiB, 20 GiB.
    :meth:`from_env` reads ``FORESTREAM_MODEL_MAX_FILES``,
    ``FORESTREAM_MODEL_MAX_FILE_BYTES`` and ``FORESTREAM_MODEL_MAX_TOTAL_BYTES``.
    """

    max_files: int = 10_000
    max_file_bytes: int = 8 * GIB
    max_total_bytes: int = 20 * GIB

    def __post_init__(self) -> None:
        for name in ("max_files", "max_file_bytes", "max_total_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"import limit {name}={value!r} must be a positive integer")

    @classmethod
    def from_env(cls, environ: dict | None = None) -> ImportLimits:
        env = os.environ if environ is None else environ
        values = {}
        for name in ("max_files", "max_file_bytes", "max_total_bytes"):
            raw = env.get(f"FORESTREAM_MODEL_{name.upper()}")
            if raw is not None:
                if not raw.strip().isdigit():
                    raise InvalidInput(f"FORESTREAM_MODEL_{name.upper()}={raw!r} must be a "
                                       "positive integer")
                values[name] = int(raw)
        return cls(**values)


@dataclass(frozen=True)
class StagedSource:
    """What :func:`stage_source` produced: the canonical source URI and how it was read
    (``"file"``, ``"directory"``, ``"archive"``, ``"s3"`` or ``"upload"``)."""

    source_uri: str
    kind: str
