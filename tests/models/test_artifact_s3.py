"""Model artifacts kept in S3 (a real moto S3 server, real boto3): uploaded with the
manifest last, once per content digest; restored into an evicted local cache only when
every file matches its sha256; deleted with the last version that uses them."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from types import SimpleNamespace

import pytest
from registry_factories import MotoS3, onnx_model, s3_credentials, tree

from forestream.models.errors import ArtifactUnavailable, ConflictError, ImportFailed, InvalidInput
from forestream.models.registry import ModelRegistry
from forestream.models.registry.artifact_store import manifest_digest

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def moto_s3():
    with MotoS3() as s3:
        yield s3


@pytest.fixture
def s3(moto_s3, monkeypatch):
    """A fresh bucket on the moto server, which the environment names as the endpoint."""
    s3_credentials(monkeypatch)
    monkeypatch.setenv("FORESTREAM_S3_ENDPOINT_URL", moto_s3.endpoint_url)
    monkeypatch.delenv("FORESTREAM_MODEL_ARTIFACT_URI", raising=False)
    bucket = f"artifacts-{uuid.uuid4().hex[:12]}"
    moto_s3.client.create_bucket(Bucket=bucket)
    return SimpleNamespace(client=moto_s3.client, bucket=bucket,
                           uri=f"s3://{bucket}/team/models")


@pytest.fixture
def registry(tmp_path, s3):
    with ModelRegistry(tmp_path / "data", artifact_uri=s3.uri) as reg:
        yield reg


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An ONNX model: the quickest of the real frameworks to validate on import."""
    return onnx_model(tmp_path_factory.mktemp("onnx"))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keys(s3, prefix: str = "") -> list[str]:
    answer = s3.client.list_objects_v2(Bucket=s3.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in answer.get("Contents", []))


def read(s3, key: str) -> bytes:
    return s3.client.get_object(Bucket=s3.bucket, Key=key)["Body"].read()


def record_operations(registry) -> list[str]:
    """The S3 operations the registry's own boto3 client sends from now on, in order."""
    calls: list[str] = []
    registry.s3_artifacts.client.meta.events.register(
        "before-call.s3", lambda event_name, **_: calls.append(event_name.split(".")[-1]))
    return calls


# ------------------------------------------------------------------------ upload

def test_import_uploads_every_file_then_the_manifest_and_records_the_location(registry, s3,
                                                                              model):
    v = registry.import_version("churn", model)
    digest = v["artifact_digest"]
    assert v["artifact_uri"] == f"s3://{s3.bucket}/team/models/{digest}/"
    assert registry.describe_version("churn", 1)["artifact_uri"] == v["artifact_uri"]
    assert keys(s3) == [f"team/models/{digest}/MANIFEST.json",
                        f"team/models/{digest}/files/model.onnx"]
    assert read(s3, f"team/models/{digest}/files/model.onnx") == model.read_bytes()
    manifest = json.loads(read(s3, f"team/models/{digest}/MANIFEST.json"))
    assert manifest["digest"] == digest and manifest["files"] == v["files"]
    assert manifest["files"] == [{"path": "model.onnx", "sha256": sha256(model.read_bytes()),
                                  "size": model.stat().st_size}]
    assert registry.artifact_dir("churn", 1) == registry.store.path(digest)  # cached locally


def test_identical_artifact_imported_twice_is_uploaded_once(registry, s3, model):
    first = record_operations(registry)
    a = registry.import_version("a", model)
    assert first.count("PutObject") == 2  # the model file, then the manifest
    second = record_operations(registry)
    b = registry.import_version("b", model)
    assert (b["artifact_digest"], b["artifact_uri"]) == (a["artifact_digest"],
                                                         a["artifact_uri"])
    assert second == ["HeadObject", "HeadObject"]  # manifest found: nothing sent
    assert len(keys(s3)) == 2


def test_artifact_uri_defaults_to_the_environment_variable(tmp_path, s3, model, monkeypatch):
    monkeypatch.setenv("FORESTREAM_MODEL_ARTIFACT_URI", f"s3://{s3.bucket}/from-env/")
    with ModelRegistry(tmp_path / "data") as reg:
        v = reg.import_version("m", model)
    assert v["artifact_uri"] == f"s3://{s3.bucket}/from-env/{v['artifact_digest']}/"
    assert len(keys(s3, "from-env/")) == 2


def test_failed_upload_fails_the_import_and_leaves_nothing_behind(tmp_path, s3, model):
    with ModelRegistry(tmp_path / "data", artifact_uri="s3://no-such-bucket-here/m") as reg:
        with pytest.raises(ImportFailed, match=r"uploading the artifact to "
                           r"s3://no-such-bucket-here/m/[0-9a-f]{64}/ failed \(NoSuchBucket"
                           ) as info:
            reg.import_version("m", model)
        v = reg.describe_version("m", info.value.version)
        assert v["status"] == "Failed" and v["failure_reason"] == info.value.message
        assert v["artifact_digest"] is None and v["artifact_uri"] is None
        assert tree(reg.store.artifacts_dir) == [] and tree(reg.store.tmp_dir) == []


def test_objects_left_without_a_manifest_are_invisible_and_replaced(registry, s3, model):
    digest = manifest_digest([{"path": "model.onnx", "sha256": sha256(model.read_bytes())}])
    partial = f"team/models/{digest}/files/model.onnx"  # an upload cut off before its manifest
    s3.client.put_object(Bucket=s3.bucket, Key=partial, Body=b"half of a model")
    v = registry.import_version("m", model)
    assert v["artifact_digest"] == digest
    assert read(s3, partial) == model.read_bytes()
    registry.evict_local("m", 1)
    assert (registry.artifact_dir("m", 1) / "model.onnx").read_bytes() == model.read_bytes()


# ----------------------------------------------------------------------- restore

def test_evicted_artifact_is_restored_from_s3_with_every_sha256_checked(registry, s3, model,
                                                                        tmp_path):
    v = registry.import_version("churn", model)
    registry.evict_local("churn", 1)
    assert not registry.store.exists(v["artifact_digest"])
    # another registry on the data dir, configured without S3, still reads the recorded copy
    with ModelRegistry(tmp_path / "data", artifact_uri="") as other:
        path = other.artifact_dir("churn", 1)
    assert path == registry.store.path(v["artifact_digest"])
    assert [sha256((path / f["path"]).read_bytes()) for f in v["files"]] == \
        [f["sha256"] for f in v["files"]]
    assert (path / "model.onnx").stat().st_mode & 0o222 == 0  # committed read-only again
    assert tree(registry.store.tmp_dir) == []


@pytest.mark.parametrize("damage, message", [
    ("object", r"artifact {d} in S3 is corrupt: s3://.*/{d}/files/model.onnx does not match "
               r"its manifest \(expected sha256 [0-9a-f]{{64}}, \d+ bytes; got sha256"),
    ("manifest", r"s3://.*/{d}/MANIFEST.json is not a valid manifest of artifact {d} \(its "
                 r"files do not hash to the digest\)"),
])
def test_a_damaged_s3_copy_is_refused_and_nothing_is_written_locally(registry, s3, model,
                                                                     damage, message):
    v = registry.import_version("churn", model)
    digest = v["artifact_digest"]
    registry.evict_local("churn", 1)
    if damage == "object":
        key, original = f"team/models/{digest}/files/model.onnx", model.read_bytes()
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=original[:-1] + b"\0")
    else:
        key = f"team/models/{digest}/MANIFEST.json"
        original = read(s3, key)
        forged = json.loads(original)
        forged["files"][0]["sha256"] = sha256(b"another model")
        s3.client.put_object(Bucket=s3.bucket, Key=key, Body=json.dumps(forged).encode())
    with pytest.raises(ArtifactUnavailable, match=message.format(d=digest)):
        registry.artifact_dir("churn", 1)
    assert tree(registry.store.artifacts_dir) == [] and tree(registry.store.tmp_dir) == []
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=original)  # repaired: restores
    assert (registry.artifact_dir("churn", 1) / "model.onnx").read_bytes() == \
        model.read_bytes()


def test_evicting_an_artifact_that_only_exists_locally_is_refused(tmp_path, s3, model):
    with ModelRegistry(tmp_path / "data", artifact_uri="") as reg:
        v = reg.import_version("m", model)
        assert v["artifact_uri"] is None
        with pytest.raises(ConflictError, match=r"m:1 \(Ready\) has no complete copy in S3 "
                           r"\(artifact_uri None\); its local artifact is the only one"):
            reg.evict_local("m", 1)
        assert reg.artifact_dir("m", 1).is_dir()


def test_a_version_imported_before_s3_is_restored_through_one_with_the_same_files(
        tmp_path, s3, model):
    with ModelRegistry(tmp_path / "data", artifact_uri="") as reg:
        reg.import_version("old", model)
    with ModelRegistry(tmp_path / "data", artifact_uri=s3.uri) as reg:
        reg.import_version("new", model)
        reg.evict_local("new", 1)  # drops the copy "old:1" shares
        assert reg.describe_version("old", 1)["artifact_uri"] is None
        assert (reg.artifact_dir("old", 1) / "model.onnx").read_bytes() == model.read_bytes()


# ------------------------------------------------------------------------ delete

def test_deleting_the_last_version_deletes_its_s3_objects_manifest_first(registry, s3, model):
    registry.import_version("a", model)
    registry.import_version("b", model)
    registry.delete_version("a", 1)
    assert len(keys(s3)) == 2  # b:1 still uses them
    operations = record_operations(registry)
    registry.delete_version("b", 1)
    assert operations == ["DeleteObject", "ListObjectsV2", "DeleteObjects"]
    assert keys(s3) == [] and tree(registry.store.artifacts_dir) == []


# -------------------------------------------------------------------- bad config

@pytest.mark.parametrize("uri", [
    "bucket/prefix", "https://bucket/prefix", "s3://", "s3://Upper-Case/x", "s3://ab/x",
    "s3://bucket//x", "s3://bucket/a/../b", "s3://bucket/a/./b", "s3://bucket/tab\there",
])
def test_a_bad_artifact_uri_is_invalid_input_naming_it(tmp_path, uri, monkeypatch):
    accepted = r"is invalid; accepted: s3://bucket or s3://bucket/prefix"
    with pytest.raises(InvalidInput, match=re.escape(repr(uri)) + " " + accepted):
        ModelRegistry(tmp_path / "data", artifact_uri=uri)
    monkeypatch.setenv("FORESTREAM_MODEL_ARTIFACT_URI", uri)
    with pytest.raises(InvalidInput, match=re.escape(repr(uri))):
        ModelRegistry(tmp_path / "data")
    assert not (tmp_path / "data").exists()  # refused before anything was written
