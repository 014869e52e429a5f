"""Durable file writes: readers see the old file or the new one, never a part, and the
new one survives a crash once the call returns."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomically(path: str | Path, data: bytes | str, mode: int = 0o666) -> Path:
    """Write ``data`` to ``path``: a temporary file in the same directory (created with
    ``mode``, less the umask), flushed to disk, renamed over ``path``, then the directory
    flushed so that the rename is durable too."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return write_atomically_with(path, lambda out: out.write(payload), mode)


def write_atomically_with(path: str | Path, write: Callable[[BinaryIO], object],
                          mode: int = 0o666) -> Path:
    """:func:`write_atomically` of what ``write`` writes to the open file: for large
    contents produced piecewise (a checkpoint streamed through a compressor), never
    held whole in memory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
    handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(handle, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # not every platform can open a directory (Windows: PermissionError)
    with contextlib.suppress(PermissionError, IsADirectoryError, NotADirectoryError):
        fsync_dir(target.parent)
    return target


def fsync_dir(path: str | Path) -> None:
    """Flush a directory's entries (creations, renames, removals) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
