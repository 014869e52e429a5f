"""Staging from S3: one object, an archive object, or every object under a prefix.

Read with boto3 from AWS or any S3-compatible endpoint (:func:`s3_client` says which).
Objects are copied with the same guarded writes and limits as local files
(:mod:`forestream.models.staging.archives`), and an archive object is downloaded beside the
staging directory, never inside it, then extracted.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from ..errors import ImportFailed, ImportRefused, InvalidInput
from .archives import (
    check_total,
    copy_stream,
    extract_archive,
    is_archive_name,
    safe_relative_path,
)
from .limits import ImportLimits


def stage_s3(uri: str, dest: Path, endpoint_url: str | None, limits: ImportLimits) -> None:
    """Copy ``s3://bucket/key`` (one object; an archive is extracted) or every object under
    ``s3://bucket/prefix/`` into ``dest``, within ``limits``.

    A key that names no object is read as a prefix. Raises :class:`ImportRefused` for a
    broken limit or an unsafe object name, :class:`ImportFailed` when S3 refuses or
    holds nothing there.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri)
    client = s3_client(endpoint_url)
    try:
        if key and not key.endswith("/"):
            try:
                head = client.head_object(Bucket=bucket, Key=key)
            except ClientError as err:
                if s3_error_code(err) not in ("404", "NoSuchKey", "NotFound"):
                    raise
                head = None
            if head is not None:
                _download_object(client, bucket, key, head["ContentLength"], dest, limits)
                return
            key += "/"
        _download_prefix(client, bucket, key, dest, limits, uri)
    except ClientError as err:
        raise ImportFailed(f"S3 refused to read {uri} ({s3_error_code(err)}: "
                           f"{err.response.get('Error', {}).get('Message') or err}); check "
                           "the bucket, key and credentials") from err
    except BotoCoreError as err:
        raise ImportFailed(f"could not read {uri} from S3: {err}") from err


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
    import boto3  # only S3 imports and S3-mirrored artifacts need boto3

    endpoint = (endpoint_url or os.environ.get("FORESTREAM_S3_ENDPOINT_URL")
                or os.environ.get("AWS_ENDPOINT_URL_S3"))
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or \
        "us-east-1"
    return boto3.client("s3", endpoint_url=endpoint, region_name=region)


def s3_error_code(err) -> str:
    """The S3 error code of a botocore ``ClientError`` (``"NoSuchKey"``, ``"404"`` ...)."""
    return str(err.response.get("Error", {}).get("Code", ""))


# --------------------------------------------------------------------------- helpers

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
    objects: list[tuple[str, str]] = []
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
            check_total(total, limits)
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
