"""Endpoints end to end: a real server, models imported with the CLI, invoked with boto3.

One server for the module (starting worker processes is the slow part); each test uses
its own model group and endpoint names.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import joblib
import numpy as np
import pytest

from server_support import ServerProcess

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

pytestmark = pytest.mark.service

CLI = Path(sys.executable).with_name("forestream")
RNG = np.random.default_rng(7)
X = RNG.normal(size=(200, 4))
Y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("serving") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def runtime(server):
    return boto3.client("sagemaker-runtime", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from sklearn.linear_model import LinearRegression, LogisticRegression

    root = tmp_path_factory.mktemp("artifacts")
    clf = LogisticRegression().fit(X, Y)
    joblib.dump(clf, root / "clf.joblib")
    reg_a = LinearRegression().fit(X, X @ np.array([1.0, 2.0, 3.0, 4.0]))
    reg_b = LinearRegression().fit(X, X @ np.array([-1.0, 0.0, 1.0, 0.5]) + 10)
    joblib.dump(reg_a, root / "reg_a.joblib")
    joblib.dump(reg_b, root / "reg_b.joblib")
    return {"root": root, "clf": clf, "reg_a": reg_a, "reg_b": reg_b}


def cli(server, *args, check=True, input_bytes=None) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(CLI), "models", *args, "--endpoint-url", server.url],
                          capture_output=True, input=input_bytes, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"forestream models {' '.join(args)} failed: "
                             f"{proc.stderr.decode()[-2000:]}")
    return proc


def rest(server, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = server.request(path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
            return resp.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def deploy(server, *refs, name, workers=1):
    proc = cli(server, "deploy", *refs, "--endpoint-name", name, "--workers", str(workers))
    assert proc.stdout.decode().strip().splitlines()[-1] == f"{name} InService"


def import_model(server, path, group, *extra) -> str:
    proc = cli(server, "import", str(path), "--group", group, *extra)
    return proc.stdout.decode().strip().splitlines()[-1]


def test_cli_import_deploy_invoke_matches_sklearn(server, runtime, models_dir, tmp_path):
    ref = import_model(server, models_dir["root"] / "clf.joblib", "churn", "--trust")
    assert ref == "churn:1"
    deploy(server, ref, name="churn", workers=2)

    rows = X[:5]
    body = tmp_path / "rows.json"
    body.write_text(json.dumps(rows.tolist()))
    out = cli(server, "invoke", "churn", "--content-type", "application/json",
              "--body", str(body)).stdout
    assert json.loads(out) == models_dir["clf"].predict(rows).tolist()

    # boto3, unchanged: JSON, CSV and NumPy in; probabilities through CustomAttributes
    csv = "\n".join(",".join(str(float(v)) for v in r) for r in rows)
    answer = runtime.invoke_endpoint(EndpointName="churn", ContentType="text/csv", Body=csv)
    assert answer["InvokedProductionVariant"] == "churn-1"
    assert json.loads(answer["Body"].read()) == models_dir["clf"].predict(rows).tolist()
    npy = io.BytesIO()
    np.save(npy, rows)
    answer = runtime.invoke_endpoint(EndpointName="churn", ContentType="application/x-npy",
                                     Accept="application/x-npy", Body=npy.getvalue(),
                                     CustomAttributes="method=predict_proba")
    assert answer["ContentType"].startswith("application/x-npy")
    got = np.load(io.BytesIO(answer["Body"].read()))
    np.testing.assert_allclose(got, models_dir["clf"].predict_proba(rows), rtol=0, atol=1e-6)


def test_weighted_variants_split_traffic_and_change_live(server, runtime, models_dir):
    a = import_model(server, models_dir["root"] / "reg_a.joblib", "split", "--trust")
    b = import_model(server, models_dir["root"] / "reg_b.joblib", "split", "--trust")
    deploy(server, f"{a}=3", f"{b}=1", name="split")
    counts = Counter()
    body = json.dumps(X[:1].tolist())
    expected = {"split-1": models_dir["reg_a"].predict(X[:1])[0],
                "split-2": models_dir["reg_b"].predict(X[:1])[0]}
    for _ in range(400):
        answer = runtime.invoke_endpoint(EndpointName="split", ContentType="application/json",
                                         Body=body)
        variant = answer["InvokedProductionVariant"]
        counts[variant] += 1
        assert json.loads(answer["Body"].read())[0] == pytest.approx(expected[variant],
                                                                     abs=1e-6)
    # 3:1 → 300 expected; binomial sd ≈ 8.7, so ±40 is beyond 4.5 sd
    assert abs(counts["split-1"] - 300) < 40, counts

    answer = runtime.invoke_endpoint(EndpointName="split", ContentType="application/json",
                                     Body=body, TargetVariant="split-2")
    assert answer["InvokedProductionVariant"] == "split-2"

    status, ep = rest(server, "PATCH", "/api/v1/endpoints/split",
                      {"weights": {"split-1": 0}, "workers": {"split-2": 2}})
    assert status == 200, ep
    assert {v["variant_name"]: v["current_workers"] for v in ep["variants"]}["split-2"] == 2
    seen = {runtime.invoke_endpoint(EndpointName="split", ContentType="application/json",
                                    Body=body)["InvokedProductionVariant"] for _ in range(30)}
    assert seen == {"split-2"}

    metrics = urllib.request.urlopen(server.request("/metrics")).read().decode()
    assert 'forestream_endpoint_invocations_total{endpoint="split",variant="split-1"}' in metrics
    assert 'forestream_endpoint_workers{endpoint="split",variant="split-2"} 2' in metrics


def test_update_to_new_version_drops_no_request(server, runtime, models_dir):
    a = import_model(server, models_dir["root"] / "reg_a.joblib", "rolling", "--trust")
    b = import_model(server, models_dir["root"] / "reg_b.joblib", "rolling", "--trust")
    deploy(server, a, name="rolling")
    body = json.dumps(X[:1].tolist())
    errors, variants = [], Counter()
    stop = threading.Event()

    def hammer():
        while not stop.is_set():
            try:
                answer = runtime.invoke_endpoint(EndpointName="rolling",
                                                 ContentType="application/json", Body=body)
                variants[answer["InvokedProductionVariant"]] += 1
            except Exception as exc:  # noqa: BLE001 — every failure is a dropped request
                errors.append(repr(exc))

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        deploy(server, b, name="rolling")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    assert variants["rolling-1"] > 0 and variants["rolling-2"] > 0
    answer = runtime.invoke_endpoint(EndpointName="rolling", ContentType="application/json",
                                     Body=body)
    assert answer["InvokedProductionVariant"] == "rolling-2"
    status, ep = rest(server, "GET", "/api/v1/endpoints/rolling")
    assert ep["status"] == "InService" and [v["model"] for v in ep["variants"]] == [b]


def test_runtime_errors_have_sagemaker_shapes(server, runtime, models_dir):
    ref = import_model(server, models_dir["root"] / "reg_a.joblib", "errs", "--trust")
    deploy(server, ref, name="errs")
    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="nope", ContentType="application/json", Body=b"[]")
    assert info.value.response["Error"]["Code"] == "ValidationError"
    assert "nope" in info.value.response["Error"]["Message"]

    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="errs", ContentType="image/png", Body=b"\x89PNG")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 415
    assert "image/png" in info.value.response["Error"]["Message"]

    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="errs", ContentType="application/json",
                                Body=b"[[1, 2]]")  # 2 features for a 4-feature model
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 424)

    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="errs", ContentType="application/json",
                                Body=b"[" + b"0," * (3 * 1024 * 1024) + b"0]")
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413

    with pytest.raises(ClientError) as info:
        runtime.invoke_endpoint(EndpointName="errs", ContentType="application/json",
                                Body=b"[[0,0,0,0]]", TargetVariant="ghost")
    assert info.value.response["Error"]["Code"] == "ValidationError"

    # the endpoint still answers after all of that
    answer = runtime.invoke_endpoint(EndpointName="errs", ContentType="application/json",
                                     Body=json.dumps(X[:2].tolist()))
    np.testing.assert_allclose(json.loads(answer["Body"].read()),
                               models_dir["reg_a"].predict(X[:2]), atol=1e-6)


def test_deployed_versions_and_groups_are_protected(server, models_dir):
    ref = import_model(server, models_dir["root"] / "reg_a.joblib", "keep", "--trust")
    deploy(server, ref, name="keep")
    status, problem = rest(server, "DELETE", "/api/v1/models/groups/keep/versions/1")
    assert status == 409 and "keep" in problem["detail"]
    status, problem = rest(server, "DELETE", "/api/v1/models/groups/keep")
    assert status == 409
    status, _ = rest(server, "DELETE", "/api/v1/endpoints/keep")
    assert status == 204
    status, _ = rest(server, "DELETE", "/api/v1/models/groups/keep/versions/1")
    assert status == 200


def test_bad_endpoint_requests_name_the_value(server, models_dir):
    status, problem = rest(server, "POST", "/api/v1/endpoints",
                           {"name": "bad", "variants": [{"model": "missing:1"}]})
    assert status == 404 and "missing" in problem["detail"]
    ref = import_model(server, models_dir["root"] / "reg_a.joblib", "badreq", "--trust")
    status, problem = rest(server, "POST", "/api/v1/endpoints",
                           {"name": "bad", "variants": [{"model": ref, "workers": 500}]})
    assert status == 400 and "500" in problem["detail"] and "64" in problem["detail"]
    status, problem = rest(server, "POST", "/api/v1/endpoints",
                           {"name": "bad name!", "variants": [{"model": ref}]})
    assert status == 400 and "bad name!" in problem["detail"]
    status, listing = rest(server, "GET", "/api/v1/endpoints")
    assert "bad" not in [e["name"] for e in listing["endpoints"]]


def test_batch_transform_file_and_stream(server, models_dir, tmp_path):
    ref = import_model(server, models_dir["root"] / "reg_b.joblib", "batch", "--trust")
    deploy(server, ref, name="batch")
    rows = X[:250]
    source = tmp_path / "in.csv"
    source.write_text("\n".join(",".join(str(float(v)) for v in r) for r in rows) + "\n")
    out = tmp_path / "out.jsonl"
    cli(server, "transform", "batch", "--input", str(source), "--output", str(out),
        "--batch-size", "64")
    got = [json.loads(line) for line in out.read_text().splitlines()]
    np.testing.assert_allclose(got, models_dir["reg_b"].predict(rows), atol=1e-6)

    kinesis = boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
    kinesis.create_stream(StreamName="batch-in", ShardCount=2)
    kinesis.create_stream(StreamName="batch-out", ShardCount=1)
    for name in ("batch-in", "batch-out"):
        kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                 WaiterConfig={"Delay": 0.2})
    kinesis.put_records(StreamName="batch-in", Records=[
        {"Data": json.dumps(r.tolist()).encode(), "PartitionKey": str(i)}
        for i, r in enumerate(rows[:40])])
    cli(server, "transform", "batch", "--input", "kinesis://batch-in", "--output",
        "kinesis://batch-out", "--content-type", "application/json", "--join-input")
    shard = kinesis.list_shards(StreamName="batch-out")["Shards"][0]["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="batch-out", ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = kinesis.get_records(ShardIterator=it)["Records"]
    assert len(records) == 40
    for record in records:
        item = json.loads(record["Data"])
        assert item["output"] == pytest.approx(
            models_dir["reg_b"].predict(np.array([item["input"]]))[0], abs=1e-6)


def test_endpoints_come_back_after_restart(tmp_path, models_dir):
    proc = ServerProcess(tmp_path / "data").start()
    try:
        ref = import_model(proc, models_dir["root"] / "reg_a.joblib", "durable", "--trust")
        deploy(proc, ref, name="durable")
        proc.stop()
        proc.start()
        deadline = time.monotonic() + 60
        while rest(proc, "GET", "/api/v1/endpoints/durable")[1]["status"] != "InService":
            assert time.monotonic() < deadline, "endpoint did not come back"
            time.sleep(0.2)
        runtime = boto3.client("sagemaker-runtime", endpoint_url=proc.url,
                               region_name="us-east-1", aws_access_key_id="t",
                               aws_secret_access_key="t")
        answer = runtime.invoke_endpoint(EndpointName="durable",
                                         ContentType="application/json",
                                         Body=json.dumps(X[:3].tolist()))
        np.testing.assert_allclose(json.loads(answer["Body"].read()),
                                   models_dir["reg_a"].predict(X[:3]), atol=1e-6)
    finally:
        proc.stop()


def test_endpoint_whose_model_cannot_load_fails_with_the_reason(server, tmp_path):
    from sklearn.linear_model import LinearRegression

    # its own artifact: artifacts are shared by content, and this one gets damaged
    joblib.dump(LinearRegression().fit(X, X[:, 0] * 7.0), tmp_path / "reg_a.joblib")
    ref = import_model(server, tmp_path / "reg_a.joblib", "broken", "--trust")
    status, version = rest(server, "GET", "/api/v1/models/groups/broken/versions/1")
    folder = server.data_dir / "models" / "artifacts" / version["artifact_digest"]
    model_file = folder / "reg_a.joblib"
    model_file.chmod(0o644)
    model_file.write_bytes(b"not a joblib file at all")  # damaged on disk after the import
    proc = cli(server, "deploy", ref, "--endpoint-name", "broken", check=False)
    assert proc.returncode != 0
    status, ep = rest(server, "GET", "/api/v1/endpoints/broken")
    assert ep["status"] == "Failed"
    assert "did not start" in ep["failure_reason"] and "reg_a.joblib" in ep["failure_reason"]
    assert "Failed" in proc.stderr.decode() or "did not start" in proc.stderr.decode()


def test_aws_cli_invokes_endpoints_and_lists_them(server, models_dir, tmp_path):
    import os

    ref = import_model(server, models_dir["root"] / "reg_b.joblib", "awscli", "--trust")
    deploy(server, ref, name="awscli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": str(tmp_path / "c"),
                "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "k")})
    aws = Path(sys.executable).with_name("aws")
    body = tmp_path / "body.json"
    body.write_text(json.dumps(X[:2].tolist()))
    out = tmp_path / "out.json"
    run = subprocess.run([str(aws), "sagemaker-runtime", "invoke-endpoint", "--endpoint-name",
                          "awscli", "--content-type", "application/json", "--body",
                          f"fileb://{body}", "--endpoint-url", server.url, str(out)],
                         capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["InvokedProductionVariant"] == "awscli-1"
    np.testing.assert_allclose(json.loads(out.read_text()),
                               models_dir["reg_b"].predict(X[:2]), atol=1e-6)
    listing = subprocess.run([str(aws), "sagemaker", "list-endpoints", "--endpoint-url",
                              server.url], capture_output=True, text=True, env=env,
                             timeout=120)
    assert listing.returncode == 0, listing.stderr
    assert "awscli" in [e["EndpointName"] for e in json.loads(listing.stdout)["Endpoints"]]


def test_cli_lists_groups_and_versions_and_approves(server, models_dir):
    ref = import_model(server, models_dir["root"] / "reg_a.joblib", "listing", "--trust",
                       "--metadata", "commit=4f2a9c1", "--metric", "rmse=0.25")
    assert cli(server, "approve", ref, "--description", "good enough").stdout.decode() \
        .strip() == f"{ref} Approved"
    groups = json.loads(cli(server, "list", "--json").stdout)
    assert "listing" in [g["name"] for g in groups]
    versions = json.loads(cli(server, "versions", "listing", "--json").stdout)
    assert [v["ref"] for v in versions] == [ref]
    assert versions[0]["approval_status"] == "Approved"
    found = json.loads(cli(server, "versions", "--metadata", "commit=4f2a9c1",
                           "--json").stdout)
    assert [v["ref"] for v in found] == [ref]
    approved = json.loads(cli(server, "describe", "listing:approved").stdout)
    assert approved["ref"] == ref and approved["metrics"] == {"rmse": 0.25}
    assert approved["approval_history"][-1]["description"] == "good enough"
