"""The model registry as a library: groups, numbering, approval, metadata, queries,
restarts and concurrency. Ready versions are real imports of a real ONNX model (the
quickest framework to load, which keeps these tests fast)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from registry_factories import onnx_model, tree

from forestream.models.errors import (
    ConflictError,
    ImportFailed,
    InvalidInput,
    NotFoundError,
)
from forestream.models.registry import ModelRegistry


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    return onnx_model(tmp_path_factory.mktemp("onnx"))


@pytest.fixture
def registry(tmp_path):
    with ModelRegistry(tmp_path / "data") as reg:
        yield reg


def failed(registry, group, **kw):
    """A version whose import fails at once (its source does not exist): real, cheap."""
    with pytest.raises(ImportFailed) as info:
        registry.import_version(group, "/nonexistent/model.onnx", **kw)
    return registry.describe_version(group, info.value.version)


def children(pid: int) -> list[int]:
    found = []
    for task in os.listdir(f"/proc/{pid}/task") if os.path.isdir(f"/proc/{pid}") else []:
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(child) for child in f.read().split()]
    return found


def snapshot(registry):
    return json.dumps(registry.list_versions(limit=1000), sort_keys=True)


# -------------------------------------------------------------------------- groups

def test_groups_are_created_described_listed_and_paged(registry):
    for name in ("churn", "fraud", "a-b-c", "Z9"):
        registry.create_group(name, description=f"{name} models", tags={"team": "ml"})
    group = registry.describe_group("fraud")
    assert group["description"] == "fraud models" and group["tags"] == {"team": "ml"}
    assert group["version_count"] == 0 and group["latest_version"] is None
    page = registry.list_groups(limit=3)
    assert [g["name"] for g in page["groups"]] == ["Z9", "a-b-c", "churn"]
    rest = registry.list_groups(limit=3, next_token=page["next_token"])
    assert [g["name"] for g in rest["groups"]] == ["fraud"] and rest["next_token"] is None
    with pytest.raises(ConflictError, match="'churn' already exists"):
        registry.create_group("churn")


@pytest.mark.parametrize("name", ["", "-lead", "trail-", "under_score", "dot.ted", "x" * 64,
                                  "sp ace", "trailing\n", 7, None])
def test_bad_group_names_are_invalid_input_naming_the_pattern(registry, name):
    with pytest.raises(InvalidInput, match=r"\^\[a-zA-Z0-9\]\(-\*\[a-zA-Z0-9\]\)\{0,62\}\$"):
        registry.create_group(name)
    assert registry.list_groups()["groups"] == []


def test_group_with_versions_cannot_be_deleted_until_they_are_gone(registry):
    version = failed(registry, "churn")
    with pytest.raises(ConflictError, match="'churn' still has 1 version"):
        registry.delete_group("churn")
    registry.delete_version("churn", version["version"])
    registry.delete_group("churn")
    with pytest.raises(NotFoundError, match="'churn' does not exist"):
        registry.describe_group("churn")


# ----------------------------------------------------------------------- numbering

def test_versions_are_numbered_per_group_and_numbers_are_never_reused(registry, model_file):
    first = registry.import_version("churn", model_file)
    assert (first["version"], first["ref"], first["status"]) == (1, "churn:1", "Ready")
    assert failed(registry, "churn")["version"] == 2
    assert failed(registry, "fraud")["version"] == 1
    registry.delete_version("churn", 2)
    assert failed(registry, "churn")["version"] == 3
    assert registry.describe_group("churn")["version_count"] == 2


def test_concurrent_imports_from_threads_get_distinct_versions(registry, model_file):
    results, errors = [], []

    def run(i):
        try:
            if i % 2:
                results.append(registry.import_version("churn", model_file)["version"])
            else:
                with pytest.raises(ImportFailed) as info:
                    registry.import_version("churn", f"/missing/{i}.txt")
                results.append(info.value.version)
        except Exception as err:  # surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(results) == list(range(1, 9))
    ready = registry.list_versions("churn", status="Ready")["versions"]
    assert len(ready) == 4 and len({v["artifact_digest"] for v in ready}) == 1


def test_bad_version_numbers_are_invalid_and_unknown_ones_not_found(registry):
    failed(registry, "churn")
    for bad in (0, -1, "x", 1.5, True):
        with pytest.raises(InvalidInput, match="accepted: an integer from 1 upwards"):
            registry.describe_version("churn", bad)
    assert registry.describe_version("churn", "1")["version"] == 1
    with pytest.raises(NotFoundError, match="churn:9 does not exist"):
        registry.describe_version("churn", 9)
    with pytest.raises(NotFoundError, match="group 'nope' does not exist"):
        registry.describe_version("nope", 1)


# ------------------------------------------------------------------------ approval

def test_approval_defaults_to_pending_and_keeps_a_history(registry, model_file):
    v = registry.import_version("churn", model_file, created_by="alice")
    assert v["approval_status"] == "PendingManualApproval"
    assert [(h["status"], h["by"]) for h in v["approval_history"]] == \
        [("PendingManualApproval", "alice")]
    registry.update_version("churn", 1, approval_status="Approved",
                            approval_description="AUC 0.91 on holdout", updated_by="bob")
    v = registry.update_version("churn", 1, approval_status="Rejected",
                                approval_description="drift found", updated_by="carol")
    assert v["approval_status"] == "Rejected" and v["approval_description"] == "drift found"
    history = v["approval_history"]
    assert [(h["status"], h["description"], h["by"]) for h in history] == [
        ("PendingManualApproval", "", "alice"), ("Approved", "AUC 0.91 on holdout", "bob"),
        ("Rejected", "drift found", "carol")]
    times = [datetime.fromisoformat(h["at"].replace("Z", "+00:00")) for h in history]
    assert times == sorted(times) and all(t.tzinfo == timezone.utc for t in times)


def test_bad_approval_status_and_approving_a_failed_version_change_nothing(registry):
    failed(registry, "churn")
    before = snapshot(registry)
    with pytest.raises(InvalidInput, match="'Okay'.*PendingManualApproval, Approved, "
                                           "Rejected"):
        registry.update_version("churn", 1, approval_status="Okay")
    with pytest.raises(ConflictError, match="churn:1 is Failed; only Ready versions"):
        registry.update_version("churn", 1, approval_status="Approved")
    assert snapshot(registry) == before


def test_latest_approved_and_refs_resolve_to_numbers(registry, model_file):
    registry.import_version("churn", model_file)
    registry.import_version("churn", model_file)
    failed(registry, "churn")
    with pytest.raises(NotFoundError, match="no approved version"):
        registry.latest_approved("churn")
    registry.update_version("churn", 1, approval_status="Approved")
    registry.update_version("churn", 2, approval_status="Approved")
    assert registry.latest_approved("churn")["version"] == 2
    registry.update_version("churn", 2, approval_status="Rejected")
    assert registry.latest_approved("churn")["version"] == 1
    assert registry.parse_ref("churn:approved") == ("churn", 1)
    assert registry.parse_ref("churn:latest") == ("churn", 2)  # 3 failed: not servable
    assert registry.parse_ref("churn:3") == ("churn", 3)
    assert registry.describe_group("churn")["latest_approved_version"] == 1
    for bad in ("churn", ":1", "churn:first", "bad_name:1"):
        with pytest.raises(InvalidInput):
            registry.parse_ref(bad)


# ------------------------------------------------------------------------ metadata

def test_immutable_metadata_is_kept_and_changes_are_refused(registry, model_file):
    meta = {"commit": "9f2c1e7", "repository": "git@example.com:ml/churn.git",
            "generated_by": "train.py"}
    registry.import_version("churn", model_file, metadata=meta)
    before = snapshot(registry)
    with pytest.raises(InvalidInput, match="metadata 'commit' is immutable.*'9f2c1e7'"):
        registry.update_version("churn", 1, metadata={"commit": "deadbee"},
                                customer_metadata={"stage": "prod"})
    assert snapshot(registry) == before  # nothing else from that call was applied either
    registry.update_version("churn", 1, metadata={"commit": "9f2c1e7"})  # same value: fine
    assert registry.describe_version("churn", 1)["metadata"] == meta
    with pytest.raises(InvalidInput, match="metadata key 'owner' is not accepted"):
        registry.import_version("churn", model_file, metadata={"owner": "me"})
    assert registry.describe_group("churn")["version_count"] == 1  # no version for bad input


def test_customer_metadata_metrics_and_tags_merge_within_limits(registry):
    failed(registry, "churn", customer_metadata={"stage": "dev", "owner": "ml"},
           metrics={"auc": 0.9}, tags={"team": "risk"})
    v = registry.update_version("churn", 1, customer_metadata={"stage": "prod"},
                                remove_customer_metadata=["owner"], metrics={"f1": 0.8},
                                tags={"cost-center": "42"}, remove_tags=["team"],
                                description="retrained weekly")
    assert v["customer_metadata"] == {"stage": "prod"}
    assert v["metrics"] == {"auc": 0.9, "f1": 0.8}
    assert v["tags"] == {"cost-center": "42"} and v["description"] == "retrained weekly"
    before = snapshot(registry)
    too_many = {f"k{i}": "v" for i in range(50)}
    bad_calls = [
        (dict(customer_metadata=too_many), "has 51 entries; accepted: at most 50"),
        (dict(customer_metadata={"k": "v" * 257}), "a string of 0 to 256 characters"),
        (dict(customer_metadata={"k": 5}), "customer_metadata value for 'k'"),
        (dict(customer_metadata={"bad\nkey": "v"}), "key 'bad\\\\nkey' is invalid"),
        (dict(metrics={"auc": "high"}), "metric 'auc' = 'high'.*finite number"),
        (dict(metrics={"auc": float("nan")}), "finite number"),
        (dict(description="d" * 1025), "a string of 0 to 1024 characters"),
    ]
    for kwargs, message in bad_calls:
        with pytest.raises(InvalidInput, match=message):
            registry.update_version("churn", 1, **kwargs)
    assert snapshot(registry) == before


# ------------------------------------------------------------------------- queries

@pytest.fixture
def populated(registry, model_file):
    """churn:1 Ready+Approved (commit abc, stage=prod), churn:2-3 Failed, fraud:1-4
    Failed (stage=dev on fraud:2), with a pause before the fraud versions."""
    registry.create_group("fraud", description="card fraud scores")
    registry.import_version("churn", model_file, metadata={"commit": "abc"},
                            customer_metadata={"stage": "prod"},
                            description="gradient boosted churn")
    registry.update_version("churn", 1, approval_status="Approved")
    failed(registry, "churn")
    failed(registry, "churn")
    time.sleep(0.01)
    pause = datetime.now(timezone.utc)
    time.sleep(0.01)
    failed(registry, "fraud", description="first fraud model")
    failed(registry, "fraud", customer_metadata={"stage": "dev"})
    failed(registry, "fraud")
    failed(registry, "fraud")
    return registry, pause


def refs(page):
    return [v["ref"] for v in page["versions"]]


def test_pagination_walks_every_version_once_in_order(populated):
    populated, _ = populated
    seen, token, pages = [], None, 0
    while True:
        page = populated.list_versions(limit=3, next_token=token)
        seen += refs(page)
        pages += 1
        token = page["next_token"]
        if token is None:
            break
    assert pages == 3
    assert seen == ["churn:1", "churn:2", "churn:3", "fraud:1", "fraud:2", "fraud:3",
                    "fraud:4"]
    first = populated.list_versions(limit=2)
    with pytest.raises(InvalidInput, match="different query"):
        populated.list_versions(status="Failed", limit=2, next_token=first["next_token"])
    with pytest.raises(InvalidInput, match="next_token 'garbage' is invalid"):
        populated.list_versions(next_token="garbage")
    with pytest.raises(InvalidInput, match="limit 0 is invalid; accepted: an integer from 1"):
        populated.list_versions(limit=0)


def test_filters_by_group_status_approval_time_metadata_and_text(populated):
    registry, pause = populated
    q = registry.list_versions
    assert refs(q("churn")) == ["churn:1", "churn:2", "churn:3"]
    assert refs(q(status="Ready")) == ["churn:1"]
    assert refs(q(approval_status="Approved")) == ["churn:1"]
    assert refs(q(status="Failed", group="churn", limit=1)) == ["churn:2"]
    assert refs(q(created_after=pause)) == ["fraud:1", "fraud:2", "fraud:3", "fraud:4"]
    assert refs(q(created_before=pause.isoformat())) == ["churn:1", "churn:2", "churn:3"]
    assert refs(q(created_after=pause.timestamp(), created_before=(
        pause + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"))) == refs(
        q(group="fraud"))
    assert refs(q(metadata={"stage": "prod"})) == ["churn:1"]
    assert refs(q(metadata={"commit": "abc", "stage": "prod"})) == ["churn:1"]
    assert refs(q(metadata={"commit": "abc", "stage": "dev"})) == []
    assert refs(q(search="BOOSTED")) == ["churn:1"]  # version description, any case
    assert refs(q(search="card fraud")) == refs(q(group="fraud"))  # group description
    assert refs(q(search="first FRAUD")) == ["fraud:1"]
    assert refs(q(search="100%")) == []  # LIKE wildcards are literal
    for kwargs, message in [
        (dict(status="Done"), "status 'Done' is invalid; accepted: Importing, Ready, Failed"),
        (dict(approval_status="ok"), "approval_status 'ok'"),
        (dict(created_after="yesterday"), "created_after 'yesterday' is invalid"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            q(**kwargs)
    with pytest.raises(NotFoundError):
        q(group="nope")


# -------------------------------------------------------------- restart, recovery

def test_everything_survives_a_restart(tmp_path, model_file):
    data = tmp_path / "data"
    with ModelRegistry(data) as reg:
        reg.create_group("churn", description="d", tags={"t": "1"})
        reg.import_version("churn", model_file, metrics={"auc": 0.93},
                           customer_metadata={"stage": "prod"})
        reg.update_version("churn", 1, approval_status="Approved", updated_by="bob")
        failed(reg, "churn")
        before = (reg.list_versions(), reg.list_groups(), reg.artifact_dir("churn", 1))
    with ModelRegistry(data) as reg:
        assert (reg.list_versions(), reg.list_groups(), reg.artifact_dir("churn", 1)) == before
        assert (reg.artifact_dir("churn", 1) / "model.onnx").read_bytes() == \
            model_file.read_bytes()
        assert failed(reg, "churn")["version"] == 3


def test_an_import_interrupted_by_a_killed_process_is_failed_on_reopen(tmp_path, model_file):
    """A process killed mid-import leaves an Importing row and a staging directory; the
    next registry to open marks the version Failed and sweeps the staging directory."""
    data = tmp_path / "data"
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "model.onnx").write_bytes(model_file.read_bytes())
    (slow / "code").mkdir()
    (slow / "code" / "inference.py").write_text(
        "import time\n\ndef model_fn(model_dir):\n    time.sleep(20)\n")
    script = textwrap.dedent(f"""
        from forestream.models.registry import ModelRegistry
        ModelRegistry({str(data)!r}).import_version("churn", {str(slow)!r}, trust=True)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not children(proc.pid):
            time.sleep(0.05)  # the validation worker has started: the import is mid-way
        assert children(proc.pid), "the import never reached validation"
        assert [p for p in tree(data / "models" / "tmp") if p.startswith("stage-")]
    finally:
        workers = children(proc.pid)
        os.killpg(proc.pid, signal.SIGKILL)  # the importer dies without any cleanup
        for pid in workers:  # and so does its worker, which runs in its own session
            os.kill(pid, signal.SIGKILL)
        proc.wait()
    with ModelRegistry(data) as reg:
        v = reg.describe_version("churn", 1)
        assert v["status"] == "Failed" and "interrupted" in v["failure_reason"]
        assert tree(data / "models" / "tmp") == []
        assert tree(data / "models" / "artifacts") == []
