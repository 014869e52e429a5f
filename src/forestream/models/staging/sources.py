"""Staging: turn an import source into a plain model directory, safely.

An import starts by copying the model's files into a fresh staging directory under
``<data_dir>/models/tmp/``. Whatever the source, the result has the SageMaker layout —
model files at the root, optional ``code/inference.py`` and ``code/requirements.txt`` —
and contains only regular files and directories: no links, no devices, nothing outside
the staging directory. Sources understood by :func:`stage_source`:

* a local file (``model.joblib``, ``model.onnx`` ...), copied to the root;
* a local directory, copied as is (an MLflow model directory, with its ``MLmodel``
  file, is a directory like any other; :func:`~forestream.models.frameworks.mlflow.read_mlmodel`
  reads it afterwards);
* a tar archive, plain or gzip/bzip2/xz-compressed (SageMaker's ``model.tar.gz``),
  extracted member by member (:mod:`forestream.models.staging.archives`); an archive that holds
  a single top-level directory is unwrapped, so that ``tar czf model.tar.gz my-model/``
  works too;
* ``s3://bucket/key`` (one object; a key ending in ``.tar.gz``, ``.tgz`` or ``.tar`` is
  extracted) or ``s3://bucket/prefix/`` (every object under the prefix), read with boto3
  from any S3-compatible endpoint (:mod:`forestream.models.staging.s3`);
* ``upload://<id>``, a file a client sent earlier (see ``ModelRegistry.store_upload``).

Archives are treated as hostile (:mod:`forestream.models.staging.archives`): unsafe members and
broken limits are refused with :class:`ImportRefused` before anything is written.
Every function here writes only below the destination it is given; on error the caller
removes that directory, which is how an import never leaves anything half-written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import unquote

from ..errors import ImportFailed, ImportRefused, InvalidInput
from .archives import ARCHIVE_SUFFIXES as ARCHIVE_SUFFIXES
from .archives import check_total, copy_stream, extract_archive, is_archive_name
from .archives import safe_relative_path as safe_relative_path

# ``name as name``: part of this module's API (callers import them from here)
from .limits import GIB as GIB
from .limits import ImportLimits as ImportLimits
from .limits import StagedSource as StagedSource
from .s3 import parse_s3_uri as parse_s3_uri
from .s3 import s3_client as s3_client
from .s3 import stage_s3

UPLOAD_ID = re.compile(r"^[0-9a-f]{32}$")


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
        stage_s3(text, dest_dir, s3_endpoint_url, limits)
        staged = StagedSource(text, "s3")
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
            check_total(total, limits)
            with open(real, "rb") as stream:
                copy_stream(stream, dest / rel, limit=limits.max_file_bytes,
                            what=f"file {rel!r}")


# --------------------------------------------------------------------------- helpers

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
