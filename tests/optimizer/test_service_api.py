"""``/api/v1/optimizer`` on a real ``forestream server`` process, with real metric files."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from forestream.optimizer.analysis_input import PREFERENCE_NAMES
from forestream.optimizer.ingest import write_metrics
from forestream.optimizer.synthetic import make_fleet
from server_support import ServerProcess

pytestmark = [pytest.mark.service]
API = "/api/v1/optimizer"


@pytest.fixture(scope="module")
def server(tmp_path_factory, fleet_dir):
    """One server for the module (starting one costs a second or two); tests that count
    stored analyses compare before and after instead of assuming an empty store. It may
    read metric files under ``fleet_dir`` and ask Prometheus on 127.0.0.1:9 (closed)."""
    proc = ServerProcess(tmp_path_factory.mktemp("optimizer") / "data", env={
        "FORESTREAM_IMPORT_ROOTS": str(fleet_dir),
        "FORESTREAM_OUTBOUND_HOSTS": "127.0.0.1:9"}).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fleet")
    write_metrics(make_fleet(6, seed=11, days=3, train_days=2).histories(), folder)
    return folder


def call(server, method, path, body=None, *, raw=None, headers=None):
    """(status, headers, parsed JSON or text) of one request."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = server.request(path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, head, payload = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, payload = error.code, error.headers, error.read()
    kind = head.get("Content-Type", "")
    if "json" in kind and payload:
        return status, head, json.loads(payload)
    return status, head, payload.decode()


def inline(resource_id, hours=40, cpu=12.0, instance_type="m5.2xlarge"):
    stamps = [1_700_006_400 + 300 * i for i in range(hours * 12)]
    return {"resource": {"resource_id": resource_id, "kind": "instance",
                         "current": {"instance_type": instance_type}},
            "timestamps": stamps, "metrics": {"cpu_pct": [cpu] * len(stamps),
                                              "mem_pct": [20.0] * len(stamps)}}


def stored(server):
    folder = server.data_dir / "optimizer" / "analyses"
    return sorted(p.name for p in folder.glob("*")) if folder.exists() else []


def test_analysis_of_a_directory_is_stored_and_read_back(server, fleet_dir):
    status, head, created = call(server, "POST", f"{API}/analyses",
                                 {"source": {"path": str(fleet_dir)},
                                  "preferences": {"lookback_days": 14, "cpu_percentile": 95},
                                  "region": "us-east-1"})
    assert status == 201, created
    assert head["Location"] == f"{API}/analyses/{created['id']}"
    assert created["summary"]["resources"] == len(created["recommendations"]) == 6
    assert "series" not in created
    assert {r["finding"] for r in created["recommendations"]} <= {
        "Overprovisioned", "Underprovisioned", "Optimized", "Idle"}
    on_disk = json.loads((server.data_dir / "optimizer" / "analyses" /
                          f"{created['id']}.json").read_text())
    assert on_disk["recommendations"] == created["recommendations"]
    assert on_disk["preferences"] == {"lookback_days": 14, "cpu_percentile": 95}
    status, _, fetched = call(server, "GET", f"{API}/analyses/{created['id']}")
    assert status == 200 and fetched == created
    _, _, with_series = call(server, "GET", f"{API}/analyses/{created['id']}?include=series")
    assert set(with_series["series"]) == {r["resource_id"] for r in created["recommendations"]}


def test_inline_metrics_listing_pages_newest_first_and_delete(server):
    ids = []
    for name in ("api-a", "api-b"):
        status, _, created = call(server, "POST", f"{API}/analyses",
                                  {"metrics": [inline(name)]})
        assert status == 201, created
        assert created["recommendations"][0]["finding"] == "Overprovisioned"
        ids.append(created["id"])
    status, _, first = call(server, "GET", f"{API}/analyses?limit=1")
    assert status == 200 and first["analyses"][0]["id"] == ids[-1]
    assert first["analyses"][0]["summary"]["resources"] == 1 and first["next_token"]
    _, _, second = call(server, "GET", f"{API}/analyses?limit=1&next_token="
                                       f"{first['next_token']}")
    assert second["analyses"][0]["id"] == ids[0]
    assert call(server, "DELETE", f"{API}/analyses/{ids[0]}")[0] == 204
    assert call(server, "GET", f"{API}/analyses/{ids[0]}")[0] == 404
    assert call(server, "DELETE", f"{API}/analyses/{ids[0]}")[0] == 404
    listed = [a["id"] for a in call(server, "GET", f"{API}/analyses?limit=1000")[2]["analyses"]]
    assert ids[0] not in listed and ids[1] in listed


def test_recommendations_come_from_the_latest_analysis_filtered(server):
    _, _, created = call(server, "POST", f"{API}/analyses", {"metrics": [
        inline("idle-1", cpu=0.5), inline("busy-1", cpu=70.0, instance_type="m5.large"),
        inline("over-1", cpu=8.0)]})
    status, _, page = call(server, "GET", f"{API}/recommendations")
    assert status == 200 and page["analysis_id"] == created["id"] and page["total"] == 3
    findings = {r["resource_id"]: r["finding"] for r in page["recommendations"]}
    _, _, over = call(server, "GET", f"{API}/recommendations?finding=Overprovisioned&kind=instance")
    assert {r["resource_id"] for r in over["recommendations"]} == {
        rid for rid, f in findings.items() if f == "Overprovisioned"}
    _, _, paged = call(server, "GET", f"{API}/recommendations?limit=2")
    assert len(paged["recommendations"]) == 2 and paged["next_token"] == "2"
    _, _, rest = call(server, "GET", f"{API}/recommendations?limit=2&next_token=2")
    assert len(rest["recommendations"]) == 1 and rest["next_token"] is None
    status, _, problem = call(server, "GET", f"{API}/recommendations?finding=Oversized")
    assert status == 400 and "'Oversized'" in problem["detail"]
    assert "Overprovisioned, Underprovisioned" in problem["detail"]


def test_report_html_is_served_self_contained(server):
    _, _, created = call(server, "POST", f"{API}/analyses", {"metrics": [inline("web-9")]})
    status, head, page = call(server, "GET", f"{API}/analyses/{created['id']}/report.html")
    assert status == 200 and head["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in head["Content-Security-Policy"]
    assert page.startswith("<!doctype html>") and "web-9" in page and "<svg" in page
    assert call(server, "GET", f"{API}/analyses/{created['id']}/report.html?max_sections=0"
                )[0] == 400


@pytest.mark.parametrize("body, words", [
    ({"source": {"path": "X"}, "preferences": {"lookback_days": 15}},
     ["lookback_days", "14, 32, 93", "15"]),
    ({"source": {"path": "X"}, "preferences": {"cpu_percentile": 97}},
     ["cpu_percentile", "90", "99.5", "97"]),
    ({"source": {"path": "X"}, "preferences": {"lookback": 14}},
     ["'lookback'", "lookback_days"]),
    ({"source": {"path": "X"}, "preferences": {"allow_graviton": "yes"}}, ["true or false"]),
    ({"source": {"path": "X"}, "region": "mars-1"}, ["'mars-1'", "us-east-1"]),
    ({"source": {"path": "MISSING"}}, ["no-such-dir", "does not exist"]),
    ({"source": {"path": "X", "prometheus": {"url": "http://p"}}}, ["exactly one"]),
    ({"source": {"s3": "bucket"}}, ["path, prometheus, components"]),
    ({"metrics": [inline("x")], "source": {"path": "X"}}, ["exactly one"]),
    ({"metrics": []}, ["non-empty list"]),
    ({"metrics": [{**inline("x"), "metrics": {"cpu_util": [1.0] * 480}}]},
     ["'cpu_util'", "cpu_pct"]),
    ({"metrics": [{**inline("x"), "metrics": {"cpu_pct": [150.0] * 480}}]},
     ["150.0", "0 to 100"]),
    ({"metrics": [{**inline("x"), "metrics": {"cpu_pct": [1.0] * 3}}]}, ["480 numbers"]),
    ({"metrics": [inline("x"), inline("x")]}, ["'x' appears twice"]),
    ({"metrics": [{**inline("x"), "resource": {"resource_id": "x", "kind": "vm"}}]},
     ["'vm'", "instance, asg"]),
    ({"metrics": [inline("x")], "extra": 1}, ["'extra'", "preferences"]),
    ({"source": {"components": True}}, ["no component metrics", "interval_seconds"]),
    ({"source": {"prometheus": {"url": "http://127.0.0.1:9", "step": 60}}}, ["'step'"]),
])
def test_bad_requests_are_400_naming_the_value_and_store_nothing(server, fleet_dir, body,
                                                                 words):
    if body.get("source", {}).get("path") == "X":  # a real directory: only X is wrong
        body = {**body, "source": {**body["source"], "path": str(fleet_dir)}}
    if body.get("source", {}).get("path") == "MISSING":  # inside the import root
        body = {**body, "source": {"path": str(fleet_dir / "no-such-dir")}}
    before = stored(server)
    status, head, problem = call(server, "POST", f"{API}/analyses", body)
    assert status == 400, problem
    assert head["Content-Type"] == "application/problem+json"
    assert problem["title"] == "ValidationException" and problem["status"] == 400
    for word in words:
        assert word in problem["detail"], problem["detail"]
    assert stored(server) == before


def test_unreadable_bodies_and_unknown_ids(server):
    assert call(server, "POST", f"{API}/analyses", raw=b"{not json")[0] == 400
    assert call(server, "POST", f"{API}/analyses", raw=b"[1, 2]")[0] == 400
    status, _, problem = call(server, "GET", f"{API}/analyses/../../etc/passwd")
    assert status == 404
    status, _, problem = call(server, "GET", f"{API}/analyses/20240101T000000000000Z-abcdef")
    assert status == 404 and problem["title"] == "ResourceNotFoundException"
    assert call(server, "GET", f"{API}/analyses?limit=0")[0] == 400
    assert call(server, "GET", f"{API}/analyses/x?include=everything")[0] == 400


def test_unreachable_prometheus_is_a_bad_gateway(server):
    status, _, problem = call(server, "POST", f"{API}/analyses",
                              {"source": {"prometheus": {"url": "http://127.0.0.1:9",
                                                         "days": 2}}})
    assert status == 502 and problem["title"] == "SourceUnavailable"


def test_catalog_filters_and_pages(server):
    status, _, page = call(server, "GET", f"{API}/catalog?family=m5,c5&min_vcpu=8&limit=3")
    assert status == 200 and page["region"] == "us-east-1" and len(page["instance_types"]) == 3
    assert all(t["family"] in ("m5", "c5") and t["vcpu"] >= 8 for t in page["instance_types"])
    prices = [t["price_per_hour"] for t in page["instance_types"]]
    assert prices == sorted(prices) and page["next_token"] == "3"
    _, _, arm = call(server, "GET", f"{API}/catalog?architecture=arm64&gpus=false&limit=1000")
    assert arm["total"] > 0 and all(t["architecture"] == "arm64" and t["gpus"] == 0
                                    for t in arm["instance_types"])
    status, _, problem = call(server, "GET", f"{API}/catalog?architecture=sparc")
    assert status == 400 and "x86_64" in problem["detail"]
    status, _, problem = call(server, "GET", f"{API}/catalog?region=eu-nowhere-1")
    assert status == 400 and "eu-nowhere-1" in problem["detail"]
    assert call(server, "GET", f"{API}/catalog?min_vcpu=-1")[0] == 400


def test_component_collector_samples_the_server_into_an_analysis(server):
    boto3 = pytest.importorskip("boto3")
    kinesis = boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
    kinesis.create_stream(StreamName="opt-clicks", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="opt-clicks",
                                             WaiterConfig={"Delay": 0.1})
    assert call(server, "PUT", f"{API}/components", {"interval_seconds": 0})[0] == 400
    status, _, state = call(server, "PUT", f"{API}/components", {"interval_seconds": 1})
    assert status == 200 and state["running"] and state["interval_seconds"] == 1
    kinesis.put_records(StreamName="opt-clicks", Records=[
        {"Data": b"x" * 100, "PartitionKey": str(i)} for i in range(50)])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        state = call(server, "GET", f"{API}/components")[2]
        if "stream/opt-clicks" in state["resources"]:
            break
        time.sleep(0.2)
    assert "stream/opt-clicks" in state["resources"], state
    assert any(r.startswith("stream/opt-clicks/shardId-") for r in state["resources"])
    status, _, created = call(server, "POST", f"{API}/analyses", {"source": {"components": True}})
    assert status == 201, created
    streams = {r["resource_id"]: r for r in created["recommendations"]}
    assert streams["stream/opt-clicks"]["kind"] == "stream"
    assert streams["stream/opt-clicks"]["finding"] == "InsufficientData"  # seconds, not days
    status, _, state = call(server, "DELETE", f"{API}/components")
    assert status == 200 and not state["running"]
    saved = json.loads((server.data_dir / "optimizer" / "collector.json").read_text())
    assert saved == {"enabled": False}


def test_analyses_survive_a_restart(server):
    _, _, created = call(server, "POST", f"{API}/analyses", {"metrics": [inline("kept")]})
    server.stop()
    server.start()
    status, _, fetched = call(server, "GET", f"{API}/analyses/{created['id']}")
    assert status == 200 and fetched["recommendations"] == created["recommendations"]


def test_signed_requests_are_required_when_credentials_are_set(server_process, tmp_path):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    secured = server_process(tmp_path / "data", env={
        "FORESTREAM_ACCESS_KEY_ID": "key", "FORESTREAM_SECRET_ACCESS_KEY": "secret"},
        token=False).start()
    secured.token = None  # neither the token nor a signature: refused
    status, _, problem = call(secured, "GET", f"{API}/analyses")
    assert status == 401 and problem["title"] == "Unauthorized"
    assert "sign with the server's credentials" in problem["detail"]
    url = f"{secured.url}{API}/analyses"
    signed = AWSRequest(method="GET", url=url, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("key", "secret"), "forestream", "us-east-1").add_auth(signed)
    status, _, page = call(secured, "GET", f"{API}/analyses", headers=dict(signed.headers))
    assert status == 200 and page == {"analyses": [], "next_token": None}


def test_request_preferences_are_the_recommenders():
    from dataclasses import fields

    from forestream.optimizer.recommend import Preferences

    assert tuple(f.name for f in fields(Preferences)) == PREFERENCE_NAMES
    from forestream.optimizer.types import SLO_PERCENTILES
    from forestream.server.rest import schemas

    assert list(SLO_PERCENTILES) == schemas.SLO_PERCENTILES
