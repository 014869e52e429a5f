"""Importing real models end to end: every framework's own files, SageMaker tarballs with
custom code, MLflow directories, S3 and uploads — and hostile or broken inputs, each a
clear error with the version recorded as Failed and nothing left half-written."""

from __future__ import annotations

import hashlib
import json
import tarfile
import textwrap

import pytest
from registry_factories import (
    SAMPLE_JSON,
    MotoS3,
    file_member,
    lightgbm_bytes,
    lightgbm_text,
    link_member,
    mlflow_sklearn_dir,
    onnx_model,
    s3_credentials,
    sagemaker_tarball,
    sklearn_joblib,
    special_member,
    tar_with,
    torchscript_model,
    tree,
    xgboost_booster,
)

from forestream.models.errors import ImportFailed, ImportRefused, InvalidInput
from forestream.models.registry import ModelRegistry
from forestream.models.staging.sources import ImportLimits


@pytest.fixture
def registry(tmp_path):
    with ModelRegistry(tmp_path / "data") as reg:
        yield reg


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One saved model per framework, made once for the module."""
    root = tmp_path_factory.mktemp("models")
    return {
        "sklearn": sklearn_joblib(root / "sklearn"),
        "xgboost-json": xgboost_booster(root / "xgb-json", "json"),
        "xgboost-ubj": xgboost_booster(root / "xgb-ubj", "ubj"),
        "lightgbm": lightgbm_text(root / "lightgbm"),
        "onnx": onnx_model(root / "onnx"),
        "torchscript": torchscript_model(root / "torch"),
        "tarball": sagemaker_tarball(root),
        "mlflow": mlflow_sklearn_dir(root / "mlflow-model"),
    }


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def nothing_half_written(registry) -> None:
    """No staging leftovers, and every artifact directory belongs to a Ready version."""
    assert tree(registry.store.tmp_dir) == []
    ready = {v["artifact_digest"] for v in registry.list_versions(status="Ready")["versions"]}
    assert {p.name for p in registry.store.artifacts_dir.iterdir()} == ready


# -------------------------------------------------------------- real frameworks

FRAMEWORK_CASES = {  # model key -> (framework, trust needed, sample content type)
    "sklearn": ("sklearn", True, "application/json"),
    "xgboost-json": ("xgboost", False, "application/json"),
    "xgboost-ubj": ("xgboost", False, "text/csv"),
    "lightgbm": ("lightgbm", False, "application/json"),
    "onnx": ("onnx", False, "application/json"),
    "torchscript": ("pytorch", False, "application/json"),
}


@pytest.mark.parametrize("key", sorted(FRAMEWORK_CASES))
def test_each_framework_imports_validates_with_a_sample_and_records_everything(
        registry, models, key):
    framework, trust, content_type = FRAMEWORK_CASES[key]
    source = models[key]
    sample = SAMPLE_JSON if content_type == "application/json" else \
        b"0.1,1.2,0.3,2.0\n1.5,0.2,2.2,0.1\n"
    v = registry.import_version("m", source, trust=trust, sample_input=sample,
                                sample_content_type=content_type, created_by="alice",
                                description=f"{key} model")
    assert (v["status"], v["framework"], v["trusted"]) == ("Ready", framework, trust)
    assert v["framework_version"] and v["python_version"].startswith("3.")
    assert v["library_versions"]
    assert v["files"] == [{"path": source.name, "sha256": sha256(source),
                           "size": source.stat().st_size}]
    assert v["size_bytes"] == source.stat().st_size
    assert v["source_uri"] == source.resolve().as_uri() and v["created_by"] == "alice"
    assert v["validation"]["sample_output"]["preview"]
    artifact = registry.artifact_dir("m", 1)
    assert artifact.name == v["artifact_digest"]
    assert (artifact / source.name).read_bytes() == source.read_bytes()
    assert v["custom_code"] is False and v["requirements"] == []
    nothing_half_written(registry)


def test_pickle_without_trust_is_refused_with_the_trust_hint(registry, models):
    with pytest.raises(ImportRefused, match="model.joblib.*--trust") as info:
        registry.import_version("m", models["sklearn"])
    v = registry.describe_version("m", info.value.version)
    assert v["status"] == "Failed" and "--trust" in v["failure_reason"]
    assert v["artifact_digest"] is None
    nothing_half_written(registry)


def test_sagemaker_tarball_with_custom_code_needs_trust_then_serves_its_handlers(
        registry, models):
    with pytest.raises(ImportRefused, match="code/inference.py.*--trust"):
        registry.import_version("m", models["tarball"])
    v = registry.import_version("m", models["tarball"], trust=True, sample_input=SAMPLE_JSON)
    assert (v["status"], v["framework"], v["custom_code"]) == ("Ready", "xgboost", True)
    assert v["requirements"] == ["xgboost>=2.0", "numpy"]
    assert json.loads(v["validation"]["sample_output"]["preview"])["doubled"]
    assert [f["path"] for f in v["files"]] == ["code/inference.py", "code/requirements.txt",
                                               "model.json"]
    # loading the handler module left no __pycache__ in the stored artifact
    assert tree(registry.artifact_dir("m", 2)) == ["code", "code/inference.py",
                                                  "code/requirements.txt", "model.json"]
    nothing_half_written(registry)


def test_mlflow_directory_maps_its_flavor_and_keeps_its_signature(registry, models):
    v = registry.import_version("m", models["mlflow"], trust=True, sample_input=SAMPLE_JSON)
    assert (v["status"], v["framework"]) == ("Ready", "sklearn")
    assert v["signature"]["inputs"][0]["tensor-spec"]["shape"] == [-1, 4]
    assert "scikit-learn==1.5.0" in v["requirements"]
    assert {f["path"] for f in v["files"]} >= {"MLmodel", "model.pkl", "requirements.txt"}


def test_files_the_model_writes_while_loading_are_not_stored_and_changes_fail(registry,
                                                                            models, tmp_path):
    source = tmp_path / "writer"
    (source / "code").mkdir(parents=True)
    (source / "model.onnx").write_bytes(models["onnx"].read_bytes())
    (source / "code" / "inference.py").write_text(textwrap.dedent("""
        import os
        import onnxruntime

        def model_fn(model_dir):
            os.makedirs(os.path.join(model_dir, "cache"), exist_ok=True)
            with open(os.path.join(model_dir, "cache", "warm.bin"), "wb") as f:
                f.write(b"scratch")
            return onnxruntime.InferenceSession(os.path.join(model_dir, "model.onnx"))
    """))
    v = registry.import_version("m", source, trust=True)
    assert [f["path"] for f in v["files"]] == ["code/inference.py", "model.onnx"]
    assert tree(registry.artifact_dir("m", 1)) == ["code", "code/inference.py", "model.onnx"]
    (source / "labels.txt").write_text("no\nyes\n")
    (source / "code" / "inference.py").write_text(textwrap.dedent("""
        import os
        import onnxruntime

        def model_fn(model_dir):
            with open(os.path.join(model_dir, "labels.txt"), "a") as f:
                f.write("maybe\\n")
            return onnxruntime.InferenceSession(os.path.join(model_dir, "model.onnx"))
    """))
    with pytest.raises(ImportFailed, match=r"modified its own files \(labels.txt\)"):
        registry.import_version("m", source, trust=True)
    nothing_half_written(registry)


def test_identical_artifacts_share_storage_until_the_last_version_goes(registry, models):
    a = registry.import_version("first", models["onnx"])
    b = registry.import_version("second", models["onnx"], description="same bytes")
    assert a["artifact_digest"] == b["artifact_digest"]
    assert tree(registry.store.artifacts_dir) == [a["artifact_digest"],
                                                  f"{a['artifact_digest']}/model.onnx"]
    registry.delete_version("first", 1)
    assert registry.artifact_dir("second", 1).is_dir()
    registry.delete_version("second", 1)
    assert tree(registry.store.artifacts_dir) == []


def test_upload_then_import_by_upload_uri(registry, models):
    with models["onnx"].open("rb") as stream:
        upload_id = registry.store_upload(stream, "model.onnx")
    v = registry.import_version("m", f"upload://{upload_id}")
    assert (v["status"], v["framework"]) == ("Ready", "onnx")
    assert v["source_uri"] == f"upload://{upload_id}"
    assert v["files"][0]["sha256"] == sha256(models["onnx"])


def test_s3_tarball_imports_from_an_s3_compatible_server(registry, models, monkeypatch,
                                                          tmp_path):
    s3_credentials(monkeypatch)
    archive = tar_with(tmp_path / "model.tar.gz", [
        file_member("model.onnx", models["onnx"].read_bytes()),
        file_member("code/requirements.txt", b"onnxruntime\n")])
    with MotoS3() as s3:
        s3.client.put_object(Bucket="models", Key="churn/v7/model.tar.gz",
                             Body=archive.read_bytes())
        v = registry.import_version("churn", "s3://models/churn/v7/model.tar.gz",
                                    s3_endpoint_url=s3.endpoint_url)
    assert (v["status"], v["source_uri"]) == ("Ready", "s3://models/churn/v7/model.tar.gz")
    assert v["framework"] == "onnx" and v["requirements"] == ["onnxruntime"]
    nothing_half_written(registry)


# ------------------------------------------------------- hostile and broken inputs

@pytest.fixture(scope="module")
def hostile(tmp_path_factory, models):
    """Archives and files an import must refuse: name -> (path, error class, message)."""
    root = tmp_path_factory.mktemp("hostile")
    model = lightgbm_bytes(root)
    whole = models["tarball"].read_bytes()
    truncated = root / "truncated.tar.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    empty = root / "empty" / "model.onnx"
    empty.parent.mkdir()
    empty.touch()
    ok = [file_member("model.txt", model)]
    return {
        "truncated tarball": (truncated, ImportFailed, "truncated or corrupt"),
        "path traversal": (tar_with(root / "dotdot.tar.gz", ok + [
            file_member("../../escaped.txt", b"x")]), ImportRefused, "contains '..'"),
        "absolute path": (tar_with(root / "abs.tar.gz", ok + [
            file_member("/tmp/forestream-abs.txt", b"x")]), ImportRefused, "absolute path"),
        "symlink escape": (tar_with(root / "sym.tar.gz", ok + [
            link_member("code/inference.py", "../../../etc/passwd")]), ImportRefused,
            "points outside the model directory"),
        "device member": (tar_with(root / "dev.tar.gz", ok + [
            special_member("dev-null", tarfile.CHRTYPE)]), ImportRefused,
            "character device"),
        "zero-byte model": (empty, ImportRefused, r"empty \(0 bytes\)"),
        "untrusted pickle": (models["sklearn"], ImportRefused, "--trust"),
        "unloadable model": (tar_with(root / "broken.tar.gz", [
            file_member("model.onnx", b"\x08\x07 this is not a protobuf graph")]),
            ImportFailed, "loading the onnx model failed"),
        "mxnet model": (tar_with(root / "mx.tar.gz", [
            file_member("model-symbol.json", b'{"nodes": [], "heads": []}'),
            file_member("model-0000.params", b"\x12\x01\x00\x00")]), ImportFailed,
            "MXNet cannot be installed here"),
    }


HOSTILE_CASES = ["truncated tarball", "path traversal", "absolute path", "symlink escape",
                 "device member", "zero-byte model", "untrusted pickle", "unloadable model",
                 "mxnet model"]


@pytest.mark.parametrize("case", HOSTILE_CASES)
def test_hostile_or_broken_source_fails_clearly_and_stores_nothing(registry, hostile, case,
                                                                   tmp_path):
    path, error, message = hostile[case]
    with pytest.raises(error, match=message) as info:
        registry.import_version("m", path)
    v = registry.describe_version("m", info.value.version)
    assert v["status"] == "Failed" and v["failure_reason"] == info.value.message
    assert v["files"] == [] and v["artifact_digest"] is None
    nothing_half_written(registry)
    assert tree(registry.store.artifacts_dir) == []
    assert not (tmp_path / "escaped.txt").exists()


def test_oversize_model_is_refused_under_a_configured_limit(tmp_path, models):
    with ModelRegistry(tmp_path / "data", limits=ImportLimits(max_file_bytes=256)) as reg:
        with pytest.raises(ImportRefused, match="limit of 256 bytes"):
            reg.import_version("m", models["onnx"])
        with pytest.raises(InvalidInput, match="larger than the limit of 256 bytes"):
            reg.store_upload(models["onnx"].read_bytes(), "model.onnx")
        assert reg.describe_version("m", 1)["status"] == "Failed"
        nothing_half_written(reg)


def test_a_sample_the_model_cannot_take_fails_the_import(registry, models):
    with pytest.raises(ImportFailed) as info:
        registry.import_version("m", models["onnx"], sample_input=b'[[1, 2]]')
    v = registry.describe_version("m", info.value.version)
    assert v["status"] == "Failed"
    assert v["failure_reason"].startswith("running the sample input (application/json")
    nothing_half_written(registry)


@pytest.mark.parametrize("kwargs, message", [
    (dict(group="bad_name"), "model group name 'bad_name' is invalid"),
    (dict(framework="caffe"), "framework 'caffe' is not supported; accepted: sklearn"),
    (dict(source="gopher://x"), "'gopher://x' is not understood"),
    (dict(source="upload://zzz"), "upload id 'zzz' is malformed"),
    (dict(sample_input=b"x" * (6 * 1024 * 1024 + 1)), "accepted: 1 to 6291456 bytes"),
    (dict(metrics={"auc": "good"}), "metric 'auc'"),
    (dict(tags={"k": "v" * 300}), "tags value for 'k'"),
    (dict(s3_endpoint_url="localhost:9000"), "must be an http:// or https:// URL"),
])
def test_bad_import_arguments_are_invalid_input_and_record_nothing(registry, models,
                                                                   kwargs, message):
    args = {"group": "m", "source": models["lightgbm"], **kwargs}
    with pytest.raises(InvalidInput, match=message):
        registry.import_version(args.pop("group"), args.pop("source"), **args)
    assert registry.list_groups()["groups"] == []
    nothing_half_written(registry)
