"""An application's code sent with the request instead of named by a path on the server.

Managed Service for Apache Flink takes an application's code as the content of a zip
(``ZipFileContent``) or as text; so does forestream's REST API, in ``"code"``:

- ``{"filename": "job.py", "text": "<Python source>"}``: one file;
- ``{"zip_base64": "<base64 zip>"}``: a folder with ``main.py`` (or a zip of a single
  ``.py`` file).

:class:`ApplicationCode` checks what it is given before anything is written: member
names are relative, plain and free of ``..``; no links; at most
:data:`MAX_FILES` files and :data:`MAX_BYTES` unpacked. ``forestream apps create
--code`` sends local files this way, so the server never needs to read its own disk
on a client's behalf.

>>> code = ApplicationCode.from_request({"filename": "job.py",
...                                      "text": "def build(env, properties): pass"})
>>> (code.entry, sorted(code.files))
('job.py', ['job.py'])
>>> ApplicationCode.from_request({"filename": "../job.py", "text": ""})
Traceback (most recent call last):
...
forestream.processing.errors.ApplicationError: code filename '../job.py' must be a plain \
file name ending in .py
"""

from __future__ import annotations

import base64
import binascii
import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from forestream.names import shorten

from .errors import ApplicationError

MAX_BYTES = 50 * 1024 * 1024  # Managed Flink's limit for code sent as zip content
MAX_FILES = 2_000
ENTRY = "main.py"


@dataclass(frozen=True)
class ApplicationCode:
    """Code to install: relative POSIX paths → bytes, and the file defining ``build``."""

    files: dict[str, bytes]
    entry: str

    @classmethod
    def from_request(cls, value: object) -> ApplicationCode:
        """Read the REST API's ``code`` object (see the module docstring)."""
        if not isinstance(value, dict):
            raise ApplicationError(f"code {shorten(value)} must be an object "
                                   '{"filename", "text"} or {"zip_base64"}, or a path on the '
                                   "server")
        keys = set(value)
        if keys == {"filename", "text"}:
            filename, text = value["filename"], value["text"]
            if not isinstance(filename, str) or "/" in filename or "\\" in filename or \
                    not filename.endswith(".py") or filename.startswith(".") or \
                    "\x00" in filename or len(filename) > 255:
                raise ApplicationError(f"code filename {shorten(filename)} must be a plain "
                                       "file name ending in .py")
            if not isinstance(text, str):
                raise ApplicationError("code text must be a string (the Python source)")
            data = text.encode("utf-8")
            if len(data) > MAX_BYTES:
                raise ApplicationError(f"code text is {len(data)} bytes; at most {MAX_BYTES}")
            return cls({filename: data}, filename)
        if keys == {"zip_base64"}:
            raw = value["zip_base64"]
            if not isinstance(raw, str):
                raise ApplicationError("code zip_base64 must be a base64 string")
            try:
                archive = base64.b64decode(raw, validate=True)
            except (binascii.Error, ValueError):
                raise ApplicationError("code zip_base64 is not valid base64") from None
            return cls.from_zip(archive)
        raise ApplicationError(f"code has fields {sorted(keys)}; give either "
                               '{"filename", "text"} or {"zip_base64"}')

    @classmethod
    def from_zip(cls, archive: bytes) -> ApplicationCode:
        if len(archive) > MAX_BYTES:
            raise ApplicationError(f"code zip is {len(archive)} bytes; at most {MAX_BYTES}")
        try:
            bundle = zipfile.ZipFile(io.BytesIO(archive))
            members = bundle.infolist()
        except (zipfile.BadZipFile, ValueError, OSError) as exc:
            raise ApplicationError(f"code zip cannot be read: {exc}") from None
        files: dict[str, bytes] = {}
        total = 0
        for member in members:
            if member.is_dir():
                continue
            name = _member_name(member)
            total += member.file_size
            if len(files) >= MAX_FILES or total > MAX_BYTES:
                raise ApplicationError(f"code zip holds more than {MAX_FILES} files or "
                                       f"{MAX_BYTES} bytes unpacked")
            try:
                data = bundle.read(member)
            except (zipfile.BadZipFile, ValueError, OSError, NotImplementedError) as exc:
                raise ApplicationError(f"code zip member {shorten(name)} cannot be read: "
                                       f"{exc}") from None
            files[name] = data
        if ENTRY in files:
            return cls(files, ENTRY)
        scripts = [name for name in files if name.endswith(".py") and "/" not in name]
        if len(files) == 1 and len(scripts) == 1:
            return cls(files, scripts[0])
        raise ApplicationError("code zip must hold main.py at its top level (defining "
                               "build(env, properties)), or a single .py file")

    @classmethod
    def from_path(cls, path: str | Path) -> ApplicationCode:
        """Read a local ``.py`` file or a folder with ``main.py`` (what the CLI sends)."""
        path = Path(path)
        if path.is_file() and path.suffix == ".py":
            return cls({path.name: path.read_bytes()}, path.name)
        if path.is_dir() and (path / ENTRY).is_file():
            files = {}
            for item in sorted(path.rglob("*")):
                relative = item.relative_to(path).as_posix()
                if item.is_file() and "__pycache__" not in item.parts:
                    files[relative] = item.read_bytes()
            return cls(files, ENTRY)
        raise ApplicationError(f"code {shorten(str(path))} must be a .py file, or a "
                               "directory with main.py, defining build(env, properties)")

    def to_request(self) -> dict:
        """The REST API's ``code`` object for this code."""
        if list(self.files) == [self.entry] and "/" not in self.entry:
            return {"filename": self.entry, "text": self.files[self.entry].decode("utf-8")}
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
            for name, data in self.files.items():
                bundle.writestr(name, data)
        return {"zip_base64": base64.b64encode(buffer.getvalue()).decode("ascii")}

    def install(self, target: Path) -> str:
        """Write the files under ``target`` (a new folder); returns the entry file."""
        target.mkdir(parents=True)
        for name, data in self.files.items():
            path = target.joinpath(*PurePosixPath(name).parts)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return self.entry


def _member_name(member: zipfile.ZipInfo) -> str:
    name = member.filename
    parts = PurePosixPath(name).parts
    mode = member.external_attr >> 16
    if not parts or name.startswith("/") or "\\" in name or "\x00" in name or \
            any(part in ("..", ".", "") for part in parts) or ":" in parts[0]:
        raise ApplicationError(f"code zip member {shorten(name)} is not a plain relative "
                               "path")
    if stat.S_ISLNK(mode):
        raise ApplicationError(f"code zip member {shorten(name)} is a link; only plain files "
                               "are accepted")
    return PurePosixPath(*parts).as_posix()
