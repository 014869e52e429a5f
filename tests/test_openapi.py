"""The OpenAPI document at /api/v1/openapi.json: a valid OpenAPI 3.1 document, with
exactly the /api/v1 routes the app registers, whose schemas the live answers match."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import joblib
import numpy as np
import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate
from sklearn.linear_model import LinearRegression

import forestream
from forestream.config import Settings
from forestream.server.app import create_app

pytestmark = pytest.mark.service

PATH = "/api/v1/openapi.json"


def call(server, method: str, path: str, body=None, raw: bytes | None = None):
    """(status, content type, parsed body) of a request; errors are answers too."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                        else None)
    request = server.request(path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status, headers, text = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, headers, text = error.code, error.headers, error.read()
    kind = headers.get("content-type", "").split(";")[0]
    return status, kind, (json.loads(text) if text and "json" in kind else text)


def fetch(server) -> dict:
    status, kind, document = call(server, "GET", PATH)
    assert (status, kind) == (200, "application/json")
    return document


def check(document: dict, method: str, template: str, answer: tuple) -> dict:
    """Assert that ``answer`` (from :func:`call`) is a documented response of the
    operation, and that its body matches the documented schema; returns the body."""
    status, kind, body = answer
    responses = document["paths"][template][method.lower()]["responses"]
    assert str(status) in responses, f"{method} {template} answered undocumented {status}"
    response = responses[str(status)]
    if "$ref" in response:
        response = document["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    if "content" not in response:
        assert not body, f"{method} {template} {status}: a body was not documented"
        return body
    assert kind in response["content"], f"{method} {template} {status}: {kind} undocumented"
    schema = {**response["content"][kind]["schema"], "components": document["components"]}
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=str)
    assert not errors, f"{method} {template} {status}: " + "; ".join(
        f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    return body


def test_document_is_valid_and_lists_exactly_the_api_routes(server, tmp_path):
    document = fetch(server)
    validate(document)  # OpenAPI 3.1 (and its JSON Schema dialect)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "forestream"
    assert document["info"]["version"] == forestream.__version__
    assert document["servers"] == [{"url": server.url}]
    assert document["security"] == [{"token": []}]  # no credentials: the access token
    assert document["components"]["securitySchemes"]["sigv4"]["name"] == "Authorization"

    app = create_app(Settings(data_dir=tmp_path / "app"))
    registered = {(route.path, method.lower()) for route in app.routes
                  if route.path.startswith("/api/v1") for method in route.methods
                  if method != "HEAD"}
    documented = {(path, method) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    assert registered == documented
    tags = {tag["name"] for tag in document["tags"]}
    for path, item in document["paths"].items():
        names = {p["name"] for p in item.get("parameters", [])}
        for method, operation in item.items():
            if method == "parameters":
                continue
            assert set(operation["tags"]) <= tags and operation["summary"]
            names |= {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert {n.strip("{}") for n in path.split("/") if n.startswith("{")} <= names


def test_enums_follow_the_code():
    from forestream.optimizer import policies, recommend, risk
    from forestream.server.rest import schemas

    assert list(policies.POLICIES) == schemas.POLICIES
    assert list(recommend.LOOKBACK_DAYS) == schemas.LOOKBACK_DAYS
    assert list(policies.CPU_PERCENTILES) == schemas.CPU_PERCENTILES
    assert list(policies.CPU_HEADROOMS) == schemas.CPU_HEADROOMS
    assert list(policies.MEM_HEADROOMS) == schemas.MEM_HEADROOMS
    assert list(risk.RISK_LABELS) == schemas.RISK_LABELS


def test_live_answers_match_the_documented_schemas(server, tmp_path):
    document = fetch(server)
    job = tmp_path / "job.py"
    job.write_text("def build(env, properties):\n    env.from_collection([1]).map(str)\n")
    apps = "/api/v1/applications"
    check(document, "POST", apps, call(server, "POST", apps, {"name": "doc-app", "code": {
        "filename": job.name, "text": job.read_text()}, "properties": {"g": {"k": "v"}},
        "parallelism": 2}))
    check(document, "GET", apps + "/{name}", call(server, "GET", apps + "/doc-app"))
    check(document, "GET", apps, call(server, "GET", apps))
    check(document, "GET", apps + "/{name}/snapshots",
          call(server, "GET", apps + "/doc-app/snapshots"))
    check(document, "GET", apps + "/{name}/logs", call(server, "GET", apps + "/doc-app/logs"))
    check(document, "POST", apps, call(server, "POST", apps, {"name": "doc-app"}))  # 400
    check(document, "PATCH", apps + "/{name}",
          call(server, "PATCH", apps + "/doc-app", {"parallelism": 1000}))  # 400
    check(document, "DELETE", apps + "/{name}", call(server, "DELETE", apps + "/doc-app"))
    check(document, "GET", apps + "/{name}", call(server, "GET", apps + "/doc-app"))  # 404

    X = np.random.default_rng(0).random((20, 3))
    joblib.dump(LinearRegression().fit(X, X[:, 0]), tmp_path / "model.joblib")
    upload = check(document, "POST", "/api/v1/models/uploads", call(
        server, "POST", "/api/v1/models/uploads?filename=model.joblib",
        raw=(tmp_path / "model.joblib").read_bytes()))
    versions = "/api/v1/models/groups/{group}/versions"
    refused = call(server, "POST", "/api/v1/models/groups/doc/versions",
                   {"source": upload["source"]})  # no trust: refused, kept as Failed
    assert check(document, "POST", versions, refused)["title"] == "ValidationException"
    version = check(document, "POST", versions, call(
        server, "POST", "/api/v1/models/groups/doc/versions",
        {"source": upload["source"], "trust": True, "metrics": {"rmse": 0.1},
         "sample_input_b64": "W1sxLCAyLCAzXV0="}))
    assert version["status"] == "Ready"
    one = f"/api/v1/models/groups/doc/versions/{version['version']}"
    check(document, "PATCH", versions + "/{version}",
          call(server, "PATCH", one, {"approval_status": "Approved"}))
    check(document, "PATCH", versions + "/{version}", call(server, "PATCH", one, {
        "metadata": {"commit": "x"}}))  # immutable: 400
    check(document, "GET", "/api/v1/models/groups", call(server, "GET", "/api/v1/models/groups"))
    check(document, "GET", "/api/v1/models/groups/{group}/latest-approved",
          call(server, "GET", "/api/v1/models/groups/doc/latest-approved"))
    check(document, "DELETE", "/api/v1/models/groups/{group}",
          call(server, "DELETE", "/api/v1/models/groups/doc"))  # has versions: 409
    check(document, "GET", "/api/v1/models/groups/{group}",
          call(server, "GET", "/api/v1/models/groups/nope"))  # 404

    configs = "/api/v1/endpoint-configs"
    check(document, "POST", configs, call(server, "POST", configs, {
        "name": "doc-config", "variants": [{"model": version["ref"], "weight": 2}]}))
    check(document, "GET", configs, call(server, "GET", configs))
    check(document, "POST", "/api/v1/endpoints", call(server, "POST", "/api/v1/endpoints", {
        "name": "doc-ep", "config": "doc-config"}))
    check(document, "GET", "/api/v1/endpoints/{name}",
          call(server, "GET", "/api/v1/endpoints/doc-ep"))
    check(document, "GET", "/api/v1/endpoints/{name}/logs",
          call(server, "GET", "/api/v1/endpoints/doc-ep/logs?tail=5"))
    check(document, "DELETE", "/api/v1/endpoints/{name}",
          call(server, "DELETE", "/api/v1/endpoints/doc-ep"))
    check(document, "GET", "/api/v1/endpoints", call(server, "GET", "/api/v1/endpoints"))

    optimizer = "/api/v1/optimizer"
    catalog = check(document, "GET", optimizer + "/catalog", call(
        server, "GET", optimizer + "/catalog?family=m5,c5&gpus=false&limit=3"))
    assert len(catalog["instance_types"]) == 3 and catalog["next_token"] == "3"
    check(document, "GET", optimizer + "/catalog",
          call(server, "GET", optimizer + "/catalog?min_vcpu=-1"))  # 400
    stamps = list(range(1_700_000_100, 1_700_000_100 + 300 * 2 * 288, 300))
    analysis = check(document, "POST", optimizer + "/analyses", call(
        server, "POST", optimizer + "/analyses", {"metrics": [
            {"resource": {"resource_id": "web-1", "current": {"instance_type": "m5.2xlarge"}},
             "timestamps": stamps, "metrics": {"cpu_pct": [9.0] * len(stamps),
                                               "mem_pct": [20.0] * len(stamps)}},
            {"resource": {"resource_id": "short", "kind": "function"},
             "timestamps": stamps[:5], "metrics": {"invocations": [1.0] * 5}}]}))
    check(document, "GET", optimizer + "/analyses/{analysis_id}", call(
        server, "GET", f"{optimizer}/analyses/{analysis['id']}?include=series"))
    check(document, "GET", optimizer + "/analyses", call(server, "GET", optimizer + "/analyses"))
    check(document, "GET", optimizer + "/recommendations",
          call(server, "GET", optimizer + "/recommendations?limit=1"))
    check(document, "GET", optimizer + "/components",
          call(server, "GET", optimizer + "/components"))
    check(document, "PUT", optimizer + "/components",
          call(server, "PUT", optimizer + "/components", {"every": 5}))  # 400
    check(document, "GET", optimizer + "/analyses/{analysis_id}/report.html",
          call(server, "GET", optimizer + "/analyses/20240501T120000123456Z-3fa9c2/report.html"))


def test_version_listings_match_the_documented_schemas(server):
    document = fetch(server)
    call(server, "POST", "/api/v1/models/groups", {"name": "listed"})
    check(document, "GET", "/api/v1/models/groups/{group}/versions",
          call(server, "GET", "/api/v1/models/groups/listed/versions"))
    check(document, "GET", "/api/v1/models/versions",
          call(server, "GET", "/api/v1/models/versions?status=Ready&metadata.x=y"))


def test_with_credentials_the_document_requires_sigv4_and_is_itself_open(server_process,
                                                                          tmp_path):
    server = server_process(tmp_path / "data", env={
        "FORESTREAM_ACCESS_KEY_ID": "doc-key", "FORESTREAM_SECRET_ACCESS_KEY": "doc-secret"})
    server.start()
    document = fetch(server)  # unsigned
    validate(document)
    assert document["security"] == [{"token": []}, {"sigv4": []}]
    assert document["paths"][PATH]["get"]["security"] == []
    server.token = None  # neither the token nor a signature
    answer = call(server, "GET", "/api/v1/endpoints")
    assert answer[0] == 401
    assert check(document, "GET", "/api/v1/endpoints", answer)["title"] == "Unauthorized"
