"""Model artifacts kept in S3, with the local artifact store as their cache.

When a registry has an artifact URI (``FORESTREAM_MODEL_ARTIFACT_URI``, e.g.
``s3://bucket/prefix``), every artifact it commits also lives in S3 under its
content digest (see :mod:`forestream.models.registry.artifact_store`):

* ``<prefix>/<digest>/files/<relative path>`` — one object per file;
* ``<prefix>/<digest>/MANIFEST.json`` — ``{"format", "digest", "size_bytes", "files":
  [{"path", "sha256", "size"}]}``, written **last**.

An artifact is in S3 exactly when its manifest is. Objects without one are the leftovers
of an interrupted upload: readers never see them, and the next upload of the same
digest overwrites them. The files sit under ``files/`` so that a model file that happens
to be called ``MANIFEST.json`` cannot collide with the manifest. Because the digest
names the content, an upload whose manifest is already there is skipped; a download is
checked file by file against the manifest's sha256 and sizes — and the manifest against
the digest — before the local store commits it; a delete removes the manifest first,
so a half-deleted artifact is as invisible as a half-uploaded one.

A prefix belongs to one registry: deleting that registry's last version of a digest
deletes the digest's objects, whatever another registry sharing the prefix refers to.

>>> s3 = S3Artifacts("s3://models/prod")
>>> s3.location("ab" * 32) == "s3://models/prod/" + "ab" * 32 + "/"
True
>>> S3Artifacts.configured("").uri is None   # "" turns the S3 copy off
True
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import ArtifactUnavailable, ImportFailed, InvalidInput, ModelsError, NotFoundError
from ..staging.s3 import s3_client, s3_error_code
from .artifact_store import manifest_digest

ARTIFACT_URI_ENV = "FORESTREAM_MODEL_ARTIFACT_URI"
MANIFEST_NAME = "MANIFEST.json"
MAX_PREFIX_LENGTH = 512  # leaves S3's 1024-byte keys room for the digest and the path

log = logging.getLogger("forestream.models")

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
_DIGEST = re.compile(r"[0-9a-f]{64}")
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_CHUNK = 1024 * 1024
_ACCEPTED = ("accepted: s3://bucket or s3://bucket/prefix, the bucket 3 to 63 lowercase "
             "letters, digits, dots and hyphens, the prefix '/'-separated names (no empty, "
             f"'.' or '..' names) of at most {MAX_PREFIX_LENGTH} characters")


class S3Artifacts:
    """The S3 copies of artifacts under ``uri`` (normalized to ``s3://bucket/prefix/``).

    ``uri`` None means no S3 copy for new artifacts; the instance still reads and deletes
    the copies that versions recorded earlier (their ``artifact_uri``). The boto3 client
    is made on first use, for ``endpoint_url`` or the endpoint :func:`s3_client` finds
    in the environment. Safe to use from many threads.
    """

    def __init__(self, uri: str | None, endpoint_url: str | None = None) -> None:
        self.uri = check_artifact_uri(uri) if uri is not None else None
        self.endpoint_url = endpoint_url
        self._client = None
        self._lock = threading.Lock()

    @classmethod
    def configured(cls, uri: str | None) -> S3Artifacts:
        """``uri``, else ``$FORESTREAM_MODEL_ARTIFACT_URI``; an empty one means no S3."""
        if uri is None:
            uri = os.environ.get(ARTIFACT_URI_ENV, "")
        return cls(uri if uri != "" else None)

    @property
    def client(self):
        with self._lock:
            if self._client is None:
                self._client = s3_client(self.endpoint_url)
            return self._client

    def location(self, digest: str) -> str:
        """``s3://bucket/prefix/<digest>/``: where this store keeps ``digest``."""
        if self.uri is None:
            raise ValueError("no artifact URI is configured")
        return f"{self.uri}{digest}/"

    def exists(self, location: str) -> bool:
        """Whether the artifact at ``location`` is complete (its manifest exists)."""
        bucket, key, _ = _split_location(location)
        with _s3_errors(f"checking the artifact at {location}", ArtifactUnavailable):
            return self._has_manifest(bucket, key)

    def upload(self, location: str, root: Path, files: list[dict]) -> bool:
        """Upload the artifact ``root`` (whose manifest is ``files``) to ``location``,
        manifest last; returns False when it was already there (nothing is sent).

        Raises :class:`ImportFailed` when S3 refuses; objects written before the failure
        have no manifest, so they stay invisible until the next upload replaces them.
        """
        bucket, key, digest = _split_location(location)
        with _s3_errors(f"uploading the artifact to {location}", ImportFailed):
            if self._has_manifest(bucket, key):
                return False
            for f in files:
                self.client.upload_file(str(root / f["path"]), bucket,
                                        f"{key}files/{f['path']}")
            body = json.dumps({"format": 1, "digest": digest,
                               "size_bytes": sum(f["size"] for f in files),
                               "files": [{k: f[k] for k in ("path", "sha256", "size")}
                                         for f in files]}, indent=1).encode()
            self.client.put_object(Bucket=bucket, Key=key + MANIFEST_NAME, Body=body,
                                   ContentType="application/json")
        return True

    def download(self, location: str, dest: Path) -> list[dict]:
        """Download the artifact at ``location`` into the empty directory ``dest`` and
        return its manifest's files, each checked against its sha256 and size.

        Raises :class:`NotFoundError` when S3 holds no manifest there and
        :class:`ArtifactUnavailable` when S3 refuses or an object does not match; the
        caller then discards ``dest``.
        """
        bucket, key, digest = _split_location(location)
        with _s3_errors(f"restoring artifact {digest} from {location}", ArtifactUnavailable):
            try:
                raw = self.client.get_object(Bucket=bucket, Key=key + MANIFEST_NAME)["Body"]
                manifest = raw.read()
            except Exception as err:
                if _error_code(err) in _NOT_FOUND:
                    raise NotFoundError(f"artifact {digest} is neither in the local store nor "
                                        f"in S3 ({location} has no {MANIFEST_NAME}); import "
                                        "the model again") from err
                raise
            files = _parse_manifest(manifest, digest, location)
            for f in files:
                body = self.client.get_object(Bucket=bucket, Key=f"{key}files/{f['path']}")
                sha256, size = _write_hashed(body["Body"], dest / f["path"], f["size"])
                if (sha256, size) != (f["sha256"], f["size"]):
                    raise ArtifactUnavailable(
                        f"artifact {digest} in S3 is corrupt: {location}files/{f['path']} "
                        f"does not match its manifest (expected sha256 {f['sha256']}, "
                        f"{f['size']} bytes; got sha256 {sha256}, {size} bytes); refusing "
                        "to restore it. Import the model again, or put back the object")
        return files

    def delete(self, location: str) -> None:
        """Delete the artifact at ``location``: the manifest first (a failure there raises
        :class:`ArtifactUnavailable` and changes nothing), then every object under it
        (failures there are logged: the leftovers are invisible garbage)."""
        bucket, key, _ = _split_location(location)
        with _s3_errors(f"deleting the artifact at {location}", ArtifactUnavailable):
            self.client.delete_object(Bucket=bucket, Key=key + MANIFEST_NAME)
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                           Prefix=key)
            for page in pages:
                keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
                if keys:
                    answer = self.client.delete_objects(
                        Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                    for error in answer.get("Errors", []):
                        log.warning("could not delete s3://%s/%s: %s", bucket,
                                    error.get("Key"), error.get("Message"))
        except Exception as err:  # the manifest is gone: what is left is invisible
            log.warning("deleted the manifest of %s but not all of its objects: %s",
                        location, err)

    def _has_manifest(self, bucket: str, key: str) -> bool:
        try:
            self.client.head_object(Bucket=bucket, Key=key + MANIFEST_NAME)
        except Exception as err:
            if _error_code(err) in _NOT_FOUND:
                return False
            raise
        return True


def check_artifact_uri(uri) -> str:
    """``uri`` as ``s3://bucket/prefix/`` (or ``s3://bucket/``); :class:`InvalidInput`
    naming it when it is not an S3 URI a bucket and prefix can be read from."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise InvalidInput(f"artifact URI {uri!r} is invalid; {_ACCEPTED}")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    names = prefix.removesuffix("/").split("/") if prefix else []
    if not _BUCKET.fullmatch(bucket) or len(prefix) > MAX_PREFIX_LENGTH or any(
            name in ("", ".", "..") or not name.isprintable() for name in names):
        raise InvalidInput(f"artifact URI {uri!r} is invalid; {_ACCEPTED}")
    return f"s3://{bucket}/" + "".join(f"{name}/" for name in names)


# --------------------------------------------------------------------------- helpers

def _error_code(err: BaseException) -> str:
    """The S3 error code of a botocore ``ClientError``; "" for any other exception."""
    return s3_error_code(err) if hasattr(err, "response") else ""


@contextlib.contextmanager
def _s3_errors(what: str, error: type[ModelsError]) -> Iterator[None]:
    """Turn boto3's errors into ``error`` with a message saying what failed and why."""
    from boto3.exceptions import S3UploadFailedError
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError, S3UploadFailedError) as err:
        # upload_file wraps S3's answer in a message quoting our staging path: unwrap it
        cause = err.__context__ if isinstance(err, S3UploadFailedError) else err
        if isinstance(cause, ClientError):
            detail = (f"{s3_error_code(cause)}: "
                      f"{cause.response.get('Error', {}).get('Message') or cause}")
        else:
            detail = str(cause or err)
        raise error(f"{what} failed ({detail}); check the bucket, the S3 endpoint "
                    "(FORESTREAM_S3_ENDPOINT_URL) and the credentials") from err


def _split_location(location: str) -> tuple[str, str, str]:
    """``s3://bucket/prefix/<digest>/`` as ``(bucket, "prefix/<digest>/", digest)``."""
    bucket, _, key = location.removeprefix("s3://").partition("/")
    digest = key.removesuffix("/").rpartition("/")[2]
    if not location.startswith("s3://") or not key.endswith("/") or \
            not _DIGEST.fullmatch(digest):
        raise InvalidInput(f"artifact location {location!r} is invalid; expected "
                           "s3://bucket/prefix/<sha256 digest>/")
    return bucket, key, digest


def _parse_manifest(raw: bytes, digest: str, location: str) -> list[dict]:
    """The manifest's files, checked: well-formed, safe relative paths, and naming
    ``digest`` (so the files it lists are the ones the version recorded)."""
    def invalid(why: str) -> ArtifactUnavailable:
        return ArtifactUnavailable(f"{location}{MANIFEST_NAME} is not a valid manifest of "
                                   f"artifact {digest} ({why}); refusing to restore it")

    try:
        files = json.loads(raw)["files"]
    except (ValueError, TypeError, KeyError) as err:
        raise invalid(f"not JSON with a 'files' list: {err}") from err
    if not isinstance(files, list):
        raise invalid("'files' is not a list")
    for f in files:
        if not isinstance(f, dict) or not isinstance(f.get("path"), str) or \
                not isinstance(f.get("sha256"), str) or not isinstance(f.get("size"), int):
            raise invalid(f"entry {f!r} lacks a path, sha256 or size")
        parts = f["path"].split("/")
        if any(p in ("", ".", "..") for p in parts) or "\\" in f["path"] or "\0" in f["path"]:
            raise invalid(f"path {f['path']!r} is not a plain relative path")
    if len({f["path"] for f in files}) != len(files) or manifest_digest(files) != digest:
        raise invalid("its files do not hash to the digest")
    return [{"path": f["path"], "sha256": f["sha256"], "size": f["size"]} for f in files]


def _write_hashed(body, dest: Path, expected_size: int) -> tuple[str, int]:
    """Write ``body`` to the new file ``dest``; its sha256 and size. Stops reading once
    past ``expected_size``: the size then tells the caller it does not match."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    digest, written = hashlib.sha256(), 0
    with open(dest, "xb") as out:
        while written <= expected_size and (chunk := body.read(_CHUNK)):
            written += len(chunk)
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest(), written
