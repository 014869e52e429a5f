"""An artifact's manifest: every file with its SHA-256 and size, and the digest that names
the artifact (the SHA-256 of ``path<TAB>sha256<LF>`` lines, sorted by path), which the
artifact store and S3 copies are keyed by.

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> _ = (root / "model.onnx").write_bytes(b"abc")
>>> build_manifest(root)[0]["sha256"][:12], build_manifest(root)[0]["size"]
('ba7816bf8f01', 3)
"""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

_CHUNK = 1024 * 1024


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def build_manifest(root: Path) -> list[dict]:
    """``[{"path", "sha256", "size"}]`` for every file below ``root``, sorted by path.

    The staged tree holds only regular files and directories (staging guarantees it);
    anything else here is a bug upstream, so it raises rather than being skipped.
    """
    files: list[dict] = []
    for path in sorted(root.rglob("*")):
        mode = path.lstat().st_mode
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise ValueError(f"{path} is not a regular file; staging must not produce it")
        files.append({"path": path.relative_to(root).as_posix(), "sha256": file_sha256(path),
                      "size": path.stat().st_size})
    files.sort(key=lambda f: f["path"])
    return files


def manifest_digest(files: list[dict]) -> str:
    """The artifact digest of a manifest (see the module docstring for the exact bytes)."""
    lines = "".join(f"{f['path']}\t{f['sha256']}\n" for f in sorted(files,
                                                                    key=lambda f: f["path"]))
    return hashlib.sha256(lines.encode()).hexdigest()
