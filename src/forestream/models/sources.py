"""Staging: turn an import source into a plain model directory, safely.

An import starts by copying the model's files into a fresh staging directory under
``<data_dir>/models/tmp/``. Whatever the source, the result has the SageMaker layout —
model files at the root, optional ``code/inference.py`` and ``code/requirements.txt`` —
and contains only regular files and directories: no links, no devices, nothing outside
the staging directory. Sources understood by :func:`stage_source`:

* a local file (``model.joblib``, ``model.onnx`` ...), copied to the root;
* a local directory, copied as is (an MLflow model directory, with its ``MLmodel``
  file, is a directory like any other; :func:`read_mlflow_model` reads it afterwards);
* a tar archive, plain or gzip/bzip2/xz-compressed (SageMaker's ``model.tar.gz``),
  extracted member by member; an archive that holds a single top-level directory is
  unwrapped, so that ``tar czf model.tar.gz my-model/`` works too;
* ``s3://bucket/key`` (one object; a key ending in ``.tar.gz``, ``.tgz`` or ``.tar`` is
  extracted) or ``s3://bucket/prefix/`` (every object under the prefix), read with boto3
  from any S3-compatible endpoint;
* ``upload://<id>``, a file a client sent earlier (see ``ModelRegistry.store_upload``).

Archives are treated as hostile. A member with an absolute path or a ``..`` component,
a link whose target lies outside the archive, a device, FIFO or socket, more members
than :attr:`ImportLimits.max_files`, a member larger than ``max_file_bytes`` or a total
above ``max_total_bytes`` is refused with :class:`ImportRefused` before it is written.
Links that stay inside the archive become copies of their target, so the staged tree
is links-free. A truncated or corrupt archive fails with :class:`ImportFailed`.
Every function here writes only below the destination it is given; on error the caller
removes that directory, which is how an import never leaves anything half-written.
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO
from urllib.parse import unquote

from .errors import ImportFailed, ImportRefused, InvalidInput

GIB = 1024 ** 3
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")
_CHUNK = 1024 * 1024
_LINK_HOPS = 40


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


def stage_source(source: str | Path, dest_dir: Path, *, s3_endpoint_url: str | None = None,
                 limits: ImportLimits | None = None,
                 uploads_dir: Path | None = None) -> StagedSource:
    """Copy ``source`` into the existing, empty ``dest_dir`` (see the module docstring).

    Raises :class:`InvalidInput` for a malformed source string, :class:`ImportRefused`
    for unsafe content or a broken limit, :class:`ImportFailed` when the source cannot be
    read (missing file, S3 error, truncated archive). Ends by checking that the staged
    directory holds at least one model file and no empty one.
    """
    limits = limits or ImportLimits()
    text = str(source)
    if text.startswith("s3://"):
        staged = _stage_s3(text, dest_dir, s3_endpoint_url, limits)
    elif text.startswith("upload://"):
        staged = _stage_upload(text, dest_dir, limits, uploads_dir)
    elif re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", text) and not text.startswith("file://"):
        raise InvalidInput(f"source {text!r} is not understood; accepted: a local path, "
                           "file://, s3://bucket/key, s3://bucket/prefix/ or upload://<id>")
    else:
        staged = _stage_local(local_path(text), dest_dir, limits)
    check_model_files(dest_dir)
    return staged


def local_path(source: str) -> Path:
    """A local source as a path: ``file:///a%20b/m.onnx`` (as ``Path.as_uri`` writes it,
    and as the registry records it) or a plain path, ``~`` expanded."""
    if source.startswith("file://"):
        return Path(unquote(source.removeprefix("file://")))
    return Path(source).expanduser()


def is_archive_name(name: str) -> bool:
    return name.lower().endswith(ARCHIVE_SUFFIXES)


def check_model_files(root: Path) -> None:
    """Refuse a staged tree with no model file, or with an empty (zero-byte) one.

    Model files are the files outside ``code/``; an empty one is always a mistake (an
    interrupted upload, a failed save) that would otherwise surface as a cryptic error
    from the framework's loader.
    """
    model_files = [p for p in root.rglob("*") if p.is_file()
                   and p.relative_to(root).parts[0] != "code"]
    if not model_files:
        raise ImportRefused("the source holds no model file (only code/ or nothing at all); "
                            "put the model file(s) at the root, as SageMaker's model.tar.gz "
                            "does")
    for path in model_files:
        if path.stat().st_size == 0:
            raise ImportRefused(f"model file {path.relative_to(root).as_posix()!r} is empty "
                                "(0 bytes); re-export the model and import it again")


def copy_stream(src: BinaryIO, dest: Path, *, limit: int, what: str) -> int:
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


def extract_archive(archive: Path, dest: Path, limits: ImportLimits, display: str) -> None:
    """Extract the tar archive ``archive`` into ``dest`` member by member (see module doc)."""
    size = archive.stat().st_size
    if size > limits.max_total_bytes:
        raise ImportRefused(f"archive {display} is {size} bytes, above the limit of "
                            f"{limits.max_total_bytes} bytes (max_total_bytes)")
    with open(archive, "rb") as f:
        magic = f.read(6)
    compression = ("gz" if magic[:2] == b"\x1f\x8b" else "bz2" if magic[:3] == b"BZh"
                   else "xz" if magic == b"\xfd7zXZ\x00" else "")
    try:
        with tarfile.open(archive, mode=f"r:{compression}") as tar:
            _extract_members(tar, dest, limits, display)
            if not compression:
                _check_end_of_archive(tar, display)
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        if isinstance(err, OSError) and err.errno is not None:
            raise ImportFailed(f"could not write the staged model: {err}") from err
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ImportFailed(f"archive {display} is truncated or corrupt ({reason}); "
                           "re-create it (e.g. tar czf model.tar.gz -C model_dir .) and "
                           "import it again") from err
    _unwrap_single_directory(dest)


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
            _check_total(total, limits)
            source = tar.extractfile(member)
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
        _check_total(total, limits)
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


def _check_total(total: int, limits: ImportLimits) -> None:
    if total > limits.max_total_bytes:
        raise ImportRefused(f"the model's files add up to more than {limits.max_total_bytes} "
                            "bytes (max_total_bytes)")


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


def _stage_local(path: Path, dest: Path, limits: ImportLimits) -> StagedSource:
    if not path.exists():
        raise ImportFailed(f"source path {str(path)!r} does not exist")
    path = path.resolve()
    if path.is_dir():
        copy_directory(path, dest, limits)
        return StagedSource(path.as_uri(), "directory")
    if not path.is_file():
        raise ImportRefused(f"source {str(path)!r} is not a regular file or directory")
    if is_archive_name(path.name):
        extract_archive(path, dest, limits, repr(path.name))
        return StagedSource(path.as_uri(), "archive")
    with open(path, "rb") as src:
        copy_stream(src, dest / path.name, limit=limits.max_file_bytes,
                    what=f"file {path.name!r}")
    return StagedSource(path.as_uri(), "file")


def copy_directory(src: Path, dest: Path, limits: ImportLimits) -> None:
    """Copy the tree ``src`` into ``dest`` as regular files only.

    A symlink to a file inside ``src`` is copied as that file; one that leaves ``src``,
    or points to a directory, is refused, as are FIFOs, sockets and devices.
    """
    count = total = 0
    for root, dirnames, filenames in os.walk(src):
        here = Path(root)
        for dirname in dirnames:
            if (here / dirname).is_symlink():
                raise ImportRefused(f"{(here / dirname).relative_to(src).as_posix()!r} is a "
                                    "symbolic link to a directory; not accepted")
        for filename in sorted(filenames):
            item = here / filename
            rel = item.relative_to(src).as_posix()
            count += 1
            if count > limits.max_files:
                raise ImportRefused(f"directory {str(src)!r} has more than {limits.max_files} "
                                    "files (max_files)")
            real = item.resolve()
            if item.is_symlink() and not real.is_relative_to(src):
                raise ImportRefused(f"{rel!r} is a symbolic link to {str(real)!r}, outside "
                                    "the model directory; refused")
            if not real.is_file():
                raise ImportRefused(f"{rel!r} is not a regular file (a FIFO, socket, device "
                                    "or dangling link); refused")
            size = real.stat().st_size
            if size > limits.max_file_bytes:
                raise ImportRefused(f"file {rel!r} is {size} bytes, above the limit of "
                                    f"{limits.max_file_bytes} bytes (max_file_bytes)")
            total += size
            _check_total(total, limits)
            with open(real, "rb") as stream:
                copy_stream(stream, dest / rel, limit=limits.max_file_bytes,
                            what=f"file {rel!r}")


def _stage_upload(uri: str, dest: Path, limits: ImportLimits,
                  uploads_dir: Path | None) -> StagedSource:
    upload_id = uri.removeprefix("upload://")
    if not UPLOAD_ID.fullmatch(upload_id):
        raise InvalidInput(f"upload id {upload_id!r} is malformed; expected the 32 hex "
                           "characters returned by store_upload")
    folder = uploads_dir / upload_id if uploads_dir is not None else None
    files = list(folder.iterdir()) if folder is not None and folder.is_dir() else []
    if len(files) != 1:
        raise ImportFailed(f"upload {upload_id!r} does not exist (uploads are kept for 24 "
                           "hours); upload the file again")
    upload = files[0]
    if is_archive_name(upload.name):
        extract_archive(upload, dest, limits, repr(upload.name))
    else:
        with open(upload, "rb") as src:
            copy_stream(src, dest / upload.name, limit=limits.max_file_bytes,
                        what=f"uploaded file {upload.name!r}")
    return StagedSource(uri, "upload")


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` as ``(bucket, key)``; the key may be empty or end in ``/``."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9.\-_]{1,254}", bucket):
        raise InvalidInput(f"S3 URI {uri!r} has no valid bucket name; expected "
                           "s3://bucket/key or s3://bucket/prefix/")
    return bucket, key


def s3_client(endpoint_url: str | None):
    """A boto3 S3 client for ``endpoint_url``, else ``FORESTREAM_S3_ENDPOINT_URL``, else
    ``AWS_ENDPOINT_URL_S3`` (boto3's own variable), else AWS itself. Credentials and
    region come from the usual boto3 chain (``AWS_ACCESS_KEY_ID``, profiles ...)."""
    import boto3  # only S3 imports need boto3

    endpoint = (endpoint_url or os.environ.get("FORESTREAM_S3_ENDPOINT_URL")
                or os.environ.get("AWS_ENDPOINT_URL_S3"))
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or \
        "us-east-1"
    return boto3.client("s3", endpoint_url=endpoint, region_name=region)


def _stage_s3(uri: str, dest: Path, endpoint_url: str | None,
              limits: ImportLimits) -> StagedSource:
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri)
    client = s3_client(endpoint_url)
    try:
        if key and not key.endswith("/"):
            try:
                head = client.head_object(Bucket=bucket, Key=key)
            except ClientError as err:
                if _s3_code(err) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                head = None
            if head is not None:
                _download_object(client, bucket, key, head["ContentLength"], dest, limits)
                return StagedSource(uri, "s3")
            key += "/"
        _download_prefix(client, bucket, key, dest, limits, uri)
    except ClientError as err:
        raise ImportFailed(f"S3 refused to read {uri} ({_s3_code(err)}: "
                           f"{err.response.get('Error', {}).get('Message') or err}); check "
                           "the bucket, key and credentials") from err
    except BotoCoreError as err:
        raise ImportFailed(f"could not read {uri} from S3: {err}") from err
    return StagedSource(uri, "s3")


def _s3_code(err) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _download_object(client, bucket: str, key: str, size: int, dest: Path,
                     limits: ImportLimits) -> None:
    name = key.rsplit("/", 1)[-1]
    display = f"s3://{bucket}/{key}"
    if is_archive_name(name):
        if size > limits.max_total_bytes:
            raise ImportRefused(f"archive {display} is {size} bytes, above the limit of "
                                f"{limits.max_total_bytes} bytes (max_total_bytes)")
        # the archive is downloaded beside the staging directory, never inside it
        archive = dest.parent / f"download-{os.getpid()}-{dest.name}-{name}"
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"]
            copy_stream(body, archive, limit=limits.max_total_bytes, what=f"archive {display}")
            extract_archive(archive, dest, limits, display)
        finally:
            archive.unlink(missing_ok=True)
        return
    if size > limits.max_file_bytes:
        raise ImportRefused(f"object {display} is {size} bytes, above the limit of "
                            f"{limits.max_file_bytes} bytes (max_file_bytes)")
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    copy_stream(body, dest / name, limit=limits.max_file_bytes, what=f"object {display}")


def _download_prefix(client, bucket: str, prefix: str, dest: Path, limits: ImportLimits,
                     uri: str) -> None:
    objects = []
    total = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                  Prefix=prefix):
        for item in page.get("Contents", []):
            if item["Key"].endswith("/"):
                continue  # a "folder" marker object
            rel = safe_relative_path(item["Key"][len(prefix):], "S3 object")
            if rel is None:
                continue
            if len(objects) >= limits.max_files:
                raise ImportRefused(f"{uri} holds more than {limits.max_files} objects "
                                    "(max_files)")
            if item["Size"] > limits.max_file_bytes:
                raise ImportRefused(f"object s3://{bucket}/{item['Key']} is {item['Size']} "
                                    f"bytes, above the limit of {limits.max_file_bytes} bytes "
                                    "(max_file_bytes)")
            total += item["Size"]
            _check_total(total, limits)
            objects.append((item["Key"], rel))
    if not objects:
        raise ImportFailed(f"nothing to import at {uri}: no such object and no objects "
                           "under that prefix")
    for key, rel in objects:
        body = client.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            copy_stream(body, dest / rel, limit=limits.max_file_bytes,
                        what=f"object s3://{bucket}/{key}")
        except (FileExistsError, NotADirectoryError) as err:
            raise ImportRefused(f"S3 object {key!r} conflicts with another object of the "
                                "same path") from err
