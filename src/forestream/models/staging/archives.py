"""Tar archives treated as hostile, and the guarded writes every staging path shares.

:func:`extract_archive` unpacks a tar archive, plain or gzip/bzip2/xz-compressed
(SageMaker's ``model.tar.gz``), member by member into a staging directory; an archive
that holds a single top-level directory is unwrapped, so that
``tar czf model.tar.gz my-model/`` works too.

Archives are treated as hostile. A member with an absolute path or a ``..`` component,
a link whose target lies outside the archive, a device, FIFO or socket, more members
than ``max_files`` (:class:`~forestream.models.staging.sources.ImportLimits`), a member larger
than ``max_file_bytes`` or a total above ``max_total_bytes`` is refused with
:class:`ImportRefused` before it is written.
Links that stay inside the archive become copies of their target, so the staged tree
is links-free. A truncated or corrupt archive fails with :class:`ImportFailed`.

The guarded writes — :func:`copy_stream` (a size-limited, fsynced copy),
:func:`safe_relative_path` (no absolute paths, no ``..``) and :func:`check_total` — live
here too: every staging path uses them (local files and directories, uploads and S3, in
:mod:`.sources` and :mod:`.s3`), not archives alone.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import zlib
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from ..errors import ImportFailed, ImportRefused
from .limits import ImportLimits

if TYPE_CHECKING:
    from typing import IO, Literal

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
_CHUNK = 1024 * 1024
_LINK_HOPS = 40


def is_archive_name(name: str) -> bool:
    """Whether ``name`` ends in a tar archive suffix (``.tar.gz``, ``.tgz``, ``.tar`` ...)."""
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def extract_archive(archive: Path, dest: Path, limits: ImportLimits, display: str) -> None:
    """Extract the tar archive ``archive`` into ``dest`` member by member (see module doc)."""
    size = archive.stat().st_size
    if size > limits.max_total_bytes:
        raise ImportRefused(f"archive {display} is {size} bytes, above the limit of "
                            f"{limits.max_total_bytes} bytes (max_total_bytes)")
    with open(archive, "rb") as f:
        magic = f.read(6)
    mode: Literal["r:gz", "r:bz2", "r:xz", "r:"] = (
        "r:gz" if magic[:2] == b"\x1f\x8b" else "r:bz2" if magic[:3] == b"BZh"
        else "r:xz" if magic == b"\xfd7zXZ\x00" else "r:")
    try:
        with tarfile.open(archive, mode=mode) as tar:
            _extract_members(tar, dest, limits, display)
            if mode == "r:":
                _check_end_of_archive(tar, display)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise ImportFailed(f"could not write the staged model: {err}") from err
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImportFailed(f"archive {display} is truncated or corrupt ({reason}); "
                           "re-create it (e.g. tar czf model.tar.gz -C model_dir .) and "
                           "import it again") from err
    _unwrap_single_directory(dest)


def copy_stream(src: IO[bytes], dest: Path, *, limit: int, what: str) -> int:
    """Copy ``src`` to the new file ``dest`` (fsynced), refusing more than ``limit`` bytes.

    ``what`` names the file in the refusal message. Returns the number of bytes written.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with open(dest, "xb") as out:
        while chunk := src.read(_CHUNK):
            written += len(chunk)
            if written > limit:
                raise ImportRefused(f"{what} is larger than the limit of {limit} bytes "
                                    "(max_file_bytes); raise the limit or import a smaller "
                                    "model")
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return written


def safe_relative_path(name: str, what: str) -> str | None:
    """``name`` as a clean relative POSIX path, or None for the root itself.

    Refuses (:class:`ImportRefused`) absolute paths — including Windows drive paths — and
    any ``..`` component, which could write outside the staging directory.
    """
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", name):
        raise ImportRefused(f"{what} {name!r} has an absolute path; only paths relative to "
                            "the model root are accepted")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ImportRefused(f"{what} {name!r} contains '..' and would escape the model "
                            "directory; refused")
    return "/".join(parts) or None


def check_total(total: int, limits: ImportLimits) -> None:
    """Refuse a model whose files, added up so far, exceed ``max_total_bytes``."""
    if total > limits.max_total_bytes:
        raise ImportRefused(f"the model's files add up to more than {limits.max_total_bytes} "
                            "bytes (max_total_bytes)")


# --------------------------------------------------------------------------- helpers

def _extract_members(tar: tarfile.TarFile, dest: Path, limits: ImportLimits,
                     display: str) -> None:
    seen: set[str] = set()
    regular: set[str] = set()
    directories: set[str] = set()
    links: dict[str, str] = {}
    total = 0
    for count, member in enumerate(tar, start=1):
        if count > limits.max_files:
            raise ImportRefused(f"archive {display} has more than {limits.max_files} members "
                                "(max_files)")
        name = safe_relative_path(member.name, "archive member")
        if name is None:
            continue
        if name in seen:
            raise ImportRefused(f"archive member {name!r} appears twice in {display}; "
                                "refused (a later copy could replace an earlier one)")
        seen.add(name)
        if member.isdir():
            (dest / name).mkdir(parents=True, exist_ok=True)
            directories.add(name)
        elif member.isreg():
            if member.size > limits.max_file_bytes:
                raise ImportRefused(f"archive member {name!r} is {member.size} bytes, above "
                                    f"the limit of {limits.max_file_bytes} bytes "
                                    "(max_file_bytes)")
            total += member.size
            check_total(total, limits)
            source = tar.extractfile(member)
            assert source is not None  # extractfile gives a file for every regular member
            try:
                copy_stream(source, dest / name, limit=limits.max_file_bytes,
                            what=f"archive member {name!r}")
            except (FileExistsError, NotADirectoryError) as err:
                raise ImportRefused(f"archive member {name!r} conflicts with another member "
                                    "of the same path") from err
            regular.add(name)
        elif member.issym() or member.islnk():
            links[name] = _link_target(name, member)
        else:
            kind = ("character device" if member.ischr() else "block device"
                    if member.isblk() else "FIFO" if member.isfifo() else "special file")
            raise ImportRefused(f"archive member {name!r} is a {kind}; only regular files, "
                                "directories and links inside the archive are accepted")
    for name in links:
        target = _resolve_link(name, links, directories)
        if target not in regular:
            raise ImportRefused(f"archive link {name!r} points to {target!r}, which is not a "
                                "file in the archive")
        total += (dest / target).stat().st_size
        check_total(total, limits)
        if (dest / name).exists():
            raise ImportRefused(f"archive link {name!r} conflicts with another member")
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(dest / target, dest / name)


def _link_target(name: str, member: tarfile.TarInfo) -> str:
    """Where a link member points, relative to the archive root; refuses escapes.

    A symlink's target is relative to the link's own directory; a hard link's is relative
    to the archive root (tar stores the earlier member's name).
    """
    kind = "symlink" if member.issym() else "hard link"
    target = member.linkname
    if target.startswith(("/", "\\")):
        raise ImportRefused(f"archive {kind} {name!r} points to the absolute path "
                            f"{target!r}, outside the model directory; refused")
    base = PurePosixPath(name).parent if member.issym() else PurePosixPath()
    parts: list[str] = []
    for part in (base / target).parts:
        if part == "..":
            if not parts:
                raise ImportRefused(f"archive {kind} {name!r} -> {target!r} points outside "
                                    "the model directory; refused")
            parts.pop()
        elif part not in ("", "."):
            parts.append(part)
    return "/".join(parts)


def _resolve_link(name: str, links: dict[str, str], directories: set[str]) -> str:
    target = links[name]
    for _ in range(_LINK_HOPS):
        if target in directories:
            raise ImportRefused(f"archive link {name!r} points to the directory {target!r}; "
                                "links to directories are not accepted")
        if target not in links:
            return target
        target = links[target]
    raise ImportRefused(f"archive link {name!r} is part of a link cycle; refused")


def _check_end_of_archive(tar: tarfile.TarFile, display: str) -> None:
    """An uncompressed tar cut at a member boundary reads as complete to ``tarfile``;
    POSIX archives end with a zero block, so its absence means truncation."""
    tar.fileobj.seek(tar.offset)
    block = tar.fileobj.read(tarfile.BLOCKSIZE)
    if len(block) < tarfile.BLOCKSIZE or block.strip(b"\0"):
        raise tarfile.ReadError("no end-of-archive marker after the last member")


def _unwrap_single_directory(dest: Path) -> None:
    entries = list(dest.iterdir())
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name != "code":
        inner = entries[0]
        holder = dest / f".unwrap-{os.getpid()}"
        inner.rename(holder)
        for child in holder.iterdir():
            child.rename(dest / child.name)
        holder.rmdir()
