"""Staging import sources: local files and directories, tarballs, S3, uploads — and
refusing hostile archives before a byte lands outside the staging directory."""

from __future__ import annotations

import io
import os
import tarfile
import time

import pytest
from registry_factories import (
    MotoS3,
    file_member,
    lightgbm_bytes,
    lightgbm_text,
    link_member,
    s3_credentials,
    sagemaker_tarball,
    special_member,
    tar_with,
    tree,
    xgboost_booster,
)

from forestream.models.errors import ImportFailed, ImportRefused, InvalidInput
from forestream.models.registry.artifact_store import UploadStore
from forestream.models.staging.sources import ImportLimits, stage_source


@pytest.fixture
def dest(tmp_path):
    path = tmp_path / "staging"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def model_bytes(tmp_path_factory):
    return lightgbm_bytes(tmp_path_factory.mktemp("lgb"))


# ------------------------------------------------------------------ local sources

def test_local_file_is_copied_to_the_root_under_its_own_name(tmp_path, dest):
    model = xgboost_booster(tmp_path / "src", "ubj")
    staged = stage_source(model, dest)
    assert tree(dest) == ["model.ubj"]
    assert (dest / "model.ubj").read_bytes() == model.read_bytes()
    assert staged.kind == "file" and staged.source_uri == model.resolve().as_uri()


def test_local_directory_is_copied_with_code_and_internal_symlinks_become_files(tmp_path,
                                                                                 dest):
    src = tmp_path / "my model"  # as_uri() writes the space as %20
    lightgbm_text(src)
    (src / "code").mkdir()
    (src / "code" / "inference.py").write_text("def model_fn(d):\n    return d\n")
    os.symlink("model.txt", src / "alias.txt")
    staged = stage_source(src.as_uri(), dest)
    assert staged.kind == "directory"
    assert tree(dest) == ["alias.txt", "code", "code/inference.py", "model.txt"]
    assert not (dest / "alias.txt").is_symlink()
    assert (dest / "alias.txt").read_bytes() == (src / "model.txt").read_bytes()


def test_directory_symlink_escaping_the_tree_is_refused(tmp_path, dest):
    src = tmp_path / "src"
    lightgbm_text(src)
    secret = tmp_path / "secret.txt"
    secret.write_text("do not copy")
    os.symlink(secret, src / "leak.txt")
    with pytest.raises(ImportRefused, match="leak.txt.*outside the model directory"):
        stage_source(src, dest)


def test_directory_with_a_fifo_is_refused(tmp_path, dest):
    src = tmp_path / "src"
    lightgbm_text(src)
    os.mkfifo(src / "pipe")
    with pytest.raises(ImportRefused, match="'pipe' is not a regular file"):
        stage_source(src, dest)


def test_missing_path_fails_and_unknown_scheme_is_invalid_input(tmp_path, dest):
    with pytest.raises(ImportFailed, match="does not exist"):
        stage_source(tmp_path / "nope.onnx", dest)
    with pytest.raises(InvalidInput, match="ftp://x/y.*accepted: a local path"):
        stage_source("ftp://x/y", dest)


def test_zero_byte_model_file_is_refused(tmp_path, dest):
    empty = tmp_path / "model.onnx"
    empty.touch()
    with pytest.raises(ImportRefused, match=r"'model.onnx' is empty \(0 bytes\)"):
        stage_source(empty, dest)


def test_source_with_only_code_has_no_model_file(tmp_path, dest):
    src = tmp_path / "src" / "code"
    src.mkdir(parents=True)
    (src / "inference.py").write_text("x = 1\n")
    with pytest.raises(ImportRefused, match="holds no model file"):
        stage_source(src.parent, dest)


# ------------------------------------------------------------------------ archives

def test_sagemaker_tarball_extracts_model_at_root_and_code_folder(tmp_path, dest):
    staged = stage_source(sagemaker_tarball(tmp_path), dest)
    assert staged.kind == "archive"
    assert tree(dest) == ["code", "code/inference.py", "code/requirements.txt", "model.json"]
    assert (dest / "model.json").read_bytes() == \
        (tmp_path / "sagemaker-model" / "model.json").read_bytes()


def test_archive_with_one_top_directory_is_unwrapped(tmp_path, dest, model_bytes):
    archive = tar_with(tmp_path / "m.tgz", [file_member("my-model/model.txt", model_bytes),
                                            file_member("my-model/code/inference.py", b"x=1")])
    stage_source(archive, dest)
    assert tree(dest) == ["code", "code/inference.py", "model.txt"]


def test_internal_links_in_an_archive_are_materialized_as_copies(tmp_path, dest, model_bytes):
    archive = tar_with(tmp_path / "m.tar.gz", [
        file_member("model.txt", model_bytes),
        link_member("sub/alias.txt", "../model.txt"),
        link_member("hard.txt", "model.txt", hard=True)])
    stage_source(archive, dest)
    assert tree(dest) == ["hard.txt", "model.txt", "sub", "sub/alias.txt"]
    for name in ("hard.txt", "sub/alias.txt"):
        assert not (dest / name).is_symlink()
        assert (dest / name).read_bytes() == model_bytes


HOSTILE = {
    "absolute path": ([("file", "/etc/forestream-evil", b"x")], "absolute path"),
    "dot-dot traversal": ([("file", "../../evil.txt", b"x")], "contains '..'"),
    "symlink to absolute path": ([("sym", "passwd", "/etc/passwd")], "absolute path"),
    "symlink escaping with ..": ([("sym", "sub/link", "../../outside")],
                                 "points outside the model directory"),
    "hard link escaping": ([("hard", "h", "../outside")], "points outside"),
    "character device": ([("chr", "null", tarfile.CHRTYPE)], "character device"),
    "block device": ([("blk", "disk", tarfile.BLKTYPE)], "block device"),
    "fifo": ([("fifo", "pipe", tarfile.FIFOTYPE)], "FIFO"),
    "duplicate member": ([("file", "model.txt", b"tree\n"), ("file", "./model.txt", b"x")],
                         "appears twice"),
    "link to a directory": ([("dir", "d", None), ("sym", "to-dir", "d")],
                            "links to directories are not accepted"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_archive_members_are_refused_and_nothing_escapes(tmp_path, dest, case,
                                                                 model_bytes):
    specs, message = HOSTILE[case]
    members = [file_member("model.txt", model_bytes)] if case != "duplicate member" else []
    for kind, name, extra in specs:
        if kind == "file":
            members.append(file_member(name, extra))
        elif kind in ("sym", "hard"):
            members.append(link_member(name, extra, hard=kind == "hard"))
        elif kind == "dir":
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            members.append((info, None))
        else:
            members.append(special_member(name, extra))
    archive = tar_with(tmp_path / "hostile.tar.gz", members)
    with pytest.raises(ImportRefused, match=message):
        stage_source(archive, dest)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "outside").exists()
    assert all((dest / p).is_dir() or (dest / p).is_file() for p in tree(dest))
    assert not any((dest / p).is_symlink() for p in tree(dest))


def test_truncated_gzip_tarball_is_a_clear_failure(tmp_path, dest):
    whole = sagemaker_tarball(tmp_path).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ImportFailed, match="'cut.tar.gz' is truncated or corrupt"):
        stage_source(cut, dest)


def test_plain_tar_cut_at_a_member_boundary_is_detected(tmp_path, dest, model_bytes):
    archive = tar_with(tmp_path / "m.tar", [file_member("model.txt", model_bytes),
                                            file_member("notes.txt", b"hello")], mode="w")
    blocks = -(-len(model_bytes) // 512)
    cut = tmp_path / "cut.tar"
    cut.write_bytes(archive.read_bytes()[: 512 * (1 + blocks)])  # first member only
    with pytest.raises(ImportFailed, match="truncated or corrupt.*end-of-archive"):
        stage_source(cut, dest)
    whole = tmp_path / "whole"
    whole.mkdir()
    stage_source(archive, whole)  # the complete archive is fine
    assert tree(whole) == ["model.txt", "notes.txt"]


def test_not_a_tarball_at_all_fails_clearly(tmp_path, dest):
    fake = tmp_path / "model.tar.gz"
    fake.write_bytes(b"\x1f\x8b" + os.urandom(200))
    with pytest.raises(ImportFailed, match="truncated or corrupt"):
        stage_source(fake, dest)


@pytest.mark.parametrize("limits, message", [
    (ImportLimits(max_files=2), "more than 2 members"),
    (ImportLimits(max_file_bytes=800), "above the limit of 800 bytes"),
    (ImportLimits(max_total_bytes=1500), "more than 1500 bytes"),
])
def test_archive_size_limits_refuse_before_writing_too_much(tmp_path, dest, limits, message):
    archive = tar_with(tmp_path / "big.tar.gz", [file_member(f"part{i}.txt", b"t" * 900)
                                                 for i in range(3)])
    with pytest.raises(ImportRefused, match=message):
        stage_source(archive, dest, limits=limits)
    assert sum(p.stat().st_size for p in dest.rglob("*") if p.is_file()) <= 1800


def test_single_file_above_the_limit_is_refused(tmp_path, dest, model_bytes):
    model = tmp_path / "model.txt"
    model.write_bytes(model_bytes)
    with pytest.raises(ImportRefused, match="max_file_bytes"):
        stage_source(model, dest, limits=ImportLimits(max_file_bytes=100))


def test_limits_are_read_from_the_environment_and_checked():
    limits = ImportLimits.from_env({"FORESTREAM_MODEL_MAX_FILE_BYTES": "4096"})
    assert limits == ImportLimits(max_file_bytes=4096)
    with pytest.raises(InvalidInput, match="FORESTREAM_MODEL_MAX_FILES='lots'"):
        ImportLimits.from_env({"FORESTREAM_MODEL_MAX_FILES": "lots"})
    with pytest.raises(InvalidInput, match="max_total_bytes=0"):
        ImportLimits(max_total_bytes=0)


# ------------------------------------------------------------------------- uploads

def test_uploads_are_written_whole_and_staged_by_id(tmp_path, dest, model_bytes):
    uploads = UploadStore(tmp_path / "uploads")
    ids = [uploads.store(model_bytes, "model.txt", limit=10**6),
           uploads.store(io.BytesIO(model_bytes), "model.txt", limit=10**6),
           uploads.store(iter([model_bytes[:10], model_bytes[10:]]), "model.txt",
                         limit=10**6)]
    assert len(set(ids)) == 3
    for upload_id in ids:
        assert (uploads.root / upload_id / "model.txt").read_bytes() == model_bytes
    staged = stage_source(f"upload://{ids[2]}", dest, uploads_dir=uploads.root)
    assert staged.kind == "upload" and tree(dest) == ["model.txt"]


def test_upload_limits_names_and_missing_ids(tmp_path, dest):
    uploads = UploadStore(tmp_path / "uploads")
    with pytest.raises(InvalidInput, match="larger than the limit of 10 bytes"):
        uploads.store(iter([b"12345", b"678901"]), "model.txt", limit=10)
    with pytest.raises(InvalidInput, match="is empty"):
        uploads.store(b"", "model.txt", limit=10)
    with pytest.raises(InvalidInput, match="plain file name"):
        uploads.store(b"x", "../model.txt", limit=10)
    assert tree(uploads.root) == []  # refused uploads leave nothing, not even partials
    with pytest.raises(ImportFailed, match="does not exist"):
        stage_source("upload://" + "0" * 32, dest, uploads_dir=uploads.root)
    with pytest.raises(InvalidInput, match="malformed"):
        stage_source("upload://../../etc", dest, uploads_dir=uploads.root)


def test_uploads_older_than_the_ttl_are_swept(tmp_path):
    uploads = UploadStore(tmp_path / "uploads", ttl_seconds=3600)
    old = uploads.store(b"old", "a.txt", limit=100)
    day_ago = time.time() - 2 * 3600
    os.utime(uploads.root / old, (day_ago, day_ago))
    new = uploads.store(b"new", "b.txt", limit=100)  # storing sweeps
    assert tree(uploads.root) == [new, f"{new}/b.txt"]


# ------------------------------------------------------------------------------ S3

@pytest.fixture(scope="module")
def moto_s3():
    with MotoS3() as s3:
        yield s3


def test_s3_object_prefix_and_tarball_are_staged(tmp_path, moto_s3, monkeypatch, model_bytes):
    s3_credentials(monkeypatch)
    client = moto_s3.client
    client.put_object(Bucket="models", Key="single/model.txt", Body=model_bytes)
    client.put_object(Bucket="models", Key="dir/model.txt", Body=model_bytes)
    client.put_object(Bucket="models", Key="dir/code/inference.py", Body=b"x = 1\n")
    client.put_object(Bucket="models", Key="tar/model.tar.gz",
                      Body=sagemaker_tarball(tmp_path).read_bytes())
    cases = {"s3://models/single/model.txt": ["model.txt"],
             "s3://models/dir/": ["code", "code/inference.py", "model.txt"],
             "s3://models/dir": ["code", "code/inference.py", "model.txt"],
             "s3://models/tar/model.tar.gz": ["code", "code/inference.py",
                                              "code/requirements.txt", "model.json"]}
    for i, (uri, expected) in enumerate(cases.items()):
        target = tmp_path / f"stage{i}"
        target.mkdir()
        staged = stage_source(uri, target, s3_endpoint_url=moto_s3.endpoint_url)
        assert (staged.kind, staged.source_uri, tree(target)) == ("s3", uri, expected)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("download-")]


def test_s3_endpoint_comes_from_the_environment(dest, moto_s3, monkeypatch, model_bytes):
    s3_credentials(monkeypatch)
    monkeypatch.setenv("FORESTREAM_S3_ENDPOINT_URL", moto_s3.endpoint_url)
    moto_s3.client.put_object(Bucket="models", Key="env/model.txt", Body=model_bytes)
    stage_source("s3://models/env/model.txt", dest)
    assert tree(dest) == ["model.txt"]


def test_s3_missing_key_bucket_and_oversize_are_clear_errors(dest, moto_s3, monkeypatch,
                                                             model_bytes):
    s3_credentials(monkeypatch)
    url = moto_s3.endpoint_url
    with pytest.raises(ImportFailed, match="no such object and no objects under that prefix"):
        stage_source("s3://models/missing/model.onnx", dest, s3_endpoint_url=url)
    with pytest.raises(ImportFailed, match="S3 refused to read s3://no-such-bucket/m.*"
                                           "NoSuchBucket"):
        stage_source("s3://no-such-bucket/m/", dest, s3_endpoint_url=url)
    moto_s3.client.put_object(Bucket="models", Key="big/model.txt", Body=model_bytes)
    with pytest.raises(ImportRefused, match="max_file_bytes"):
        stage_source("s3://models/big/model.txt", dest, s3_endpoint_url=url,
                     limits=ImportLimits(max_file_bytes=10))
    with pytest.raises(InvalidInput, match="no valid bucket name"):
        stage_source("s3:///key", dest)
    assert tree(dest) == []
