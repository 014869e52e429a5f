"""The content-addressed artifact store under ``<data_dir>/models/``.

A model version's files live in ``artifacts/<digest>/``, where the digest names the
content: the sha256 of the version's *manifest*, the sorted list of ``(relative path,
file sha256)`` pairs, one ``"<path>\\t<sha256>\\n"`` line each (UTF-8, POSIX paths).
Two versions with identical files therefore share one directory, and a directory's
name proves what is inside it.

Files reach ``artifacts/`` only by :meth:`ArtifactStore.commit`, which renames a fully
written staging directory from ``tmp/`` into place (``os.replace``: atomic on one file
system), so a reader never sees a half-written artifact. Staging directories, downloads
and trash in ``tmp/`` carry the creating process's id in their name; :meth:`sweep_tmp`
removes those whose process is gone (a crash mid-import), and nothing else.

>>> import tempfile
>>> root = Path(tempfile.mkdtemp())
>>> store = ArtifactStore(root)
>>> staging = store.new_staging_dir()
>>> _ = (staging / "model.txt").write_text("tree\\n")
>>> stored = store.commit(staging)
>>> [(f["path"], f["size"]) for f in stored.files], len(stored.digest)
([('model.txt', 5)], 64)
>>> store.path(stored.digest).is_dir(), staging.exists()
(True, False)
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from forestream.durable import fsync_dir
from forestream.names import shorten

from ..errors import InvalidInput
from ..staging.manifest import build_manifest as build_manifest
from ..staging.manifest import file_sha256 as file_sha256
from ..staging.manifest import manifest_digest as manifest_digest

_CHUNK = 1024 * 1024
_TMP_PREFIXES = ("stage", "download", "trash")


@dataclass(frozen=True)
class StoredArtifact:
    """A committed artifact: its digest, manifest (``files``), total size and folder."""

    digest: str
    files: list[dict]
    size_bytes: int
    path: Path


class ArtifactStore:
    """``artifacts/`` (committed, immutable, shared) and ``tmp/`` (work in progress).

    Thread-safe as far as the file system is: commits of the same digest from two
    threads both succeed and leave one copy. Deciding *when* a digest may be removed
    (no version refers to it) is the registry's job; see :meth:`remove`.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.artifacts_dir = self.root / "artifacts"
        self.tmp_dir = self.root / "tmp"
        self.artifacts_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def new_staging_dir(self) -> Path:
        """A new empty directory in ``tmp/`` to stage one import into."""
        path = self.tmp_dir / f"stage-{os.getpid()}-{uuid.uuid4().hex}"
        path.mkdir()
        return path

    def discard(self, path: Path) -> None:
        """Remove a staging directory (or download) and everything in it."""
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def commit(self, staging: Path, files: list[dict] | None = None) -> StoredArtifact:
        """Move ``staging`` to ``artifacts/<digest>/`` and return what was stored.

        ``files`` is the manifest when the caller already computed it; it must describe
        ``staging`` exactly. When the digest is already stored, the existing directory is
        kept (same content by construction) and ``staging`` is discarded.
        """
        files = build_manifest(staging) if files is None else files
        digest = manifest_digest(files)
        target = self.path(digest)
        if target.exists():
            self.discard(staging)
        else:
            _make_read_only(staging)
            try:
                os.replace(staging, target)
            except OSError:
                if not target.exists():  # not a concurrent commit of the same content
                    _make_writable(staging)
                    raise
                _make_writable(staging)
                self.discard(staging)
            else:
                target.chmod(0o555)
                fsync_dir(self.artifacts_dir)
        return StoredArtifact(digest, files, sum(f["size"] for f in files), target)

    def path(self, digest: str) -> Path:
        return self.artifacts_dir / digest

    def exists(self, digest: str) -> bool:
        return self.path(digest).is_dir()

    def remove(self, digest: str) -> None:
        """Delete ``artifacts/<digest>/``: renamed into ``tmp/`` first (atomic), then
        deleted, so that it never appears half-removed under its digest."""
        target = self.path(digest)
        if not target.exists():
            return
        trash = self.tmp_dir / f"trash-{os.getpid()}-{uuid.uuid4().hex}"
        target.chmod(0o755)  # moving a directory to a new parent rewrites its ".."
        os.replace(target, trash)
        _make_writable(trash)
        shutil.rmtree(trash, ignore_errors=True)

    def sweep_tmp(self) -> list[str]:
        """Remove leftovers of processes that no longer run; returns the names removed."""
        removed = []
        for entry in self.tmp_dir.iterdir():
            kind, _, rest = entry.name.partition("-")
            pid_text = rest.partition("-")[0]
            if kind not in _TMP_PREFIXES or not pid_text.isdigit():
                continue
            if kind != "trash" and _process_alive(int(pid_text)):
                continue
            if entry.is_dir():
                _make_writable(entry)
            self.discard(entry)
            removed.append(entry.name)
        return removed


class UploadStore:
    """Files clients upload before importing them, under ``<data_dir>/models/uploads/``.

    Each upload is ``uploads/<id>/<filename>`` (the file name is kept because it tells
    the importer what the file is: ``model.tar.gz``, ``model.onnx`` ...). It is written
    into a ``.partial-<pid>-<id>`` directory and renamed into place when complete, so an
    id that exists always names a whole file. Uploads older than ``ttl_seconds``
    (24 hours by default) are swept on every new upload and when the registry opens.
    """

    def __init__(self, root: Path, ttl_seconds: float = 24 * 3600) -> None:
        self.root = Path(root)
        self.ttl_seconds = ttl_seconds
        self.root.mkdir(parents=True, exist_ok=True)

    def store(self, data: bytes | BinaryIO | Iterable[bytes], filename: str, *,
              limit: int) -> str:
        """Write ``data`` (bytes, a binary file object, or an iterable of byte chunks) as
        ``filename``; returns the new upload id. More than ``limit`` bytes, no bytes at
        all, or a file name with a path in it raise :class:`InvalidInput`."""
        if not isinstance(filename, str) or filename in ("", ".", "..") or \
                "/" in filename or "\\" in filename or "\0" in filename or \
                len(filename) > 255:
            raise InvalidInput(f"upload file name {shorten(filename)} must be a plain file name "
                               "(1 to 255 characters, no '/' or '\\', not '.' or '..')")
        self.sweep()
        upload_id = uuid.uuid4().hex
        partial = self.root / f".partial-{os.getpid()}-{upload_id}"
        partial.mkdir()
        try:
            written = 0
            with open(partial / filename, "xb") as out:
                for chunk in _chunks(data):
                    written += len(chunk)
                    if written > limit:
                        raise InvalidInput(f"upload {filename!r} is larger than the limit of "
                                           f"{limit} bytes")
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if written == 0:
                raise InvalidInput(f"upload {filename!r} is empty (0 bytes)")
            os.replace(partial, self.root / upload_id)
        except BaseException:
            shutil.rmtree(partial, ignore_errors=True)
            raise
        fsync_dir(self.root)
        return upload_id

    def sweep(self, now: float | None = None) -> list[str]:
        """Remove uploads older than the TTL and partial uploads of dead processes."""
        now = time.time() if now is None else now
        removed = []
        for entry in self.root.iterdir():
            try:
                age = now - entry.stat().st_mtime
            except FileNotFoundError:
                continue  # swept by another thread
            if entry.name.startswith(".partial-"):
                pid_text = entry.name.split("-")[1]
                stale = not pid_text.isdigit() or not _process_alive(int(pid_text))
            else:
                stale = False
            if stale or age > self.ttl_seconds:
                shutil.rmtree(entry, ignore_errors=True)
                removed.append(entry.name)
        return removed


def _chunks(data) -> Iterable[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    if hasattr(data, "read"):
        while chunk := data.read(_CHUNK):
            yield chunk
        return
    for chunk in data:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"upload data must be bytes; got a chunk of type "
                               f"{type(chunk).__name__}")
        yield bytes(chunk)


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _make_read_only(root: Path) -> None:
    """Committed artifacts are immutable: files 0444, directories 0555 (the top one once
    it is in place). A model's code cannot rewrite the shared copy, nor drop
    ``__pycache__`` into it, unless it runs as root."""
    for path in root.rglob("*"):
        path.chmod(0o555 if path.is_dir() else 0o444)


def _make_writable(root: Path) -> None:
    root.chmod(0o755)
    for path in root.rglob("*"):
        if path.is_dir():
            path.chmod(0o755)


