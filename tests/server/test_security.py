"""No request destroys data, acts across origins or runs code it should not, on a real
server: nasty names on every name-taking route, the access token, cross-origin and
DNS-rebinding requests, code and server paths behind settings, outbound hosts, body and
header limits, and the 500s that became 400s.

Every server speaks HTTP/1.1 and HTTP/2 on one port, and the guard must hold the same
over both: each test that sends requests runs twice (``protocol``: urllib over HTTP/1.1,
httpx over h2c), and the tests of limits on raw connections check HTTP/2 frames beside
HTTP/1.1 bytes."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import cbor2
import pytest

from aws_signing import signed_headers
from h2_client import RawH2
from server_support import ServerProcess

boto3 = pytest.importorskip("boto3")
httpx = pytest.importorskip("httpx")
from botocore.config import Config  # noqa: E402

pytestmark = pytest.mark.service
PROTOCOLS = ("http1", "h2c")
#: Tests that send nothing over HTTP, or check both protocols' framing themselves.
ONE_PROTOCOL = {"test_names_are_confined_even_through_a_planted_symlink",
                "test_oversized_bodies_are_refused_before_they_are_read",
                "test_slow_headers_and_slow_bodies_are_cut_off",
                "test_huge_headers_are_refused"}
_protocol = "http1"  # how call() and _open() send: set by the protocol fixture
SCRIPT = Path(sys.executable).with_name("forestream")
NASTY = [".", "..", "%2e%2e", "/", "//", "/etc", "/etc/passwd", "../..", "a/../..",
         "..%2f..", "..\\..", "~", "x\x00y", "\x00", "x" * 5000, " ", "-", "_"]
JOB = "def build(env, properties):\n    env.from_collection([1, 2, 3]).map(str)\n"


def pytest_generate_tests(metafunc):
    if metafunc.function.__name__ not in ONE_PROTOCOL:
        metafunc.parametrize("protocol", PROTOCOLS, indirect=True)


@pytest.fixture(autouse=True)
def protocol(request):
    """The protocol this test's requests go over (see the module docstring)."""
    global _protocol
    _protocol = getattr(request, "param", "http1")
    yield _protocol
    _protocol = "http1"


def kinesis_client(url: str):
    return boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="k", aws_secret_access_key="s",
                        config=Config(retries={"max_attempts": 1}))


def call(server, method: str, path: str, body=None, *, raw: bytes | None = None,
         headers: dict | None = None, token: bool = True,
         timeout: float = 60) -> tuple[int, object, bytes]:
    """(status, headers, body) of one request; errors are answers too."""
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                        else None)
    base = {"Content-Type": "application/json", **(server.auth if token else {})}
    if _protocol == "h2c":
        return _call_h2(method, server.url + path, data, {**base, **(headers or {})})
    request = urllib.request.Request(server.url + path, data=data, method=method,
                                     headers={**base, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def _call_h2(method: str, url: str, data: bytes | None,
             headers: dict) -> tuple[int, object, bytes]:
    """One request over cleartext HTTP/2 by prior knowledge, its path sent as written
    (httpx would resolve '..' segments itself; urllib does not); a Host header becomes
    the :authority pseudo-header."""
    origin, _, rest = url.partition("://")[2].partition("/")
    target = "/" + rest
    if any(not 0x20 < ord(c) < 0x7f for c in target):
        raise ValueError(f"a control character or space in {target!r}")  # as urllib
    client = _h2_client()
    answer = client.request(method, url, content=data, headers=headers,
                            extensions={"target": target.encode()})
    client.cookies.clear()  # a browser's jar is not what these tests send
    assert answer.http_version == "HTTP/2"
    return answer.status_code, answer.headers, answer.content


_H2_CLIENTS: list = []


def _h2_client():
    """One HTTP/2 client for the module (its connections are reused across requests)."""
    if not _H2_CLIENTS:
        _H2_CLIENTS.append(httpx.Client(http1=False, http2=True, timeout=60))
    return _H2_CLIENTS[0]


@pytest.fixture(scope="module", autouse=True)
def _close_h2_client():
    yield
    while _H2_CLIENTS:
        _H2_CLIENTS.pop().close()


def aws(server, target: str, body: dict) -> tuple[int, dict]:
    """One Kinesis/SageMaker call, signed as every AWS SDK signs (a default server refuses
    unsigned Kinesis requests; the signature is not what these tests are about)."""
    raw_body = json.dumps(body).encode()
    status, _, raw = call(server, "POST", "/", raw=raw_body, token=False,
                          headers=signed_headers(server.url + "/", raw_body, {
                              "X-Amz-Target": target,
                              "Content-Type": "application/x-amz-json-1.1"}))
    return status, json.loads(raw) if raw else {}


def fingerprint(data_dir: Path) -> dict[str, str]:
    """Every file that holds state (SQLite sidecars, locks and logs aside) → its SHA-256."""
    out = {}
    for path in sorted(data_dir.rglob("*")):
        relative = path.relative_to(data_dir).as_posix()
        if not path.is_file() or path.name.endswith(("-wal", "-shm", ".lock")) or \
                "logs" in path.parts or "endpoint-logs" in path.parts:
            continue
        out[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def wait_for(condition, what: str, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


# ------------------------------------------------------------------ the data directory

@pytest.fixture(scope="module")
def populated(tmp_path_factory):
    """A server holding a stream with records, an application with a snapshot-able code
    folder, a model group and an optimizer analysis: things a nasty name could reach."""
    root = tmp_path_factory.mktemp("nasty")
    server = ServerProcess(root / "data").start()
    kinesis = kinesis_client(server.url)
    kinesis.create_stream(StreamName="keep", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="keep", WaiterConfig={"Delay": 0.1})
    kinesis.put_record(StreamName="keep", Data=b"precious", PartitionKey="k")
    assert call(server, "POST", "/api/v1/applications", {
        "name": "keep", "code": {"filename": "job.py", "text": JOB}})[0] == 201
    assert call(server, "POST", "/api/v1/models/groups", {"name": "keep"})[0] == 201
    stamps = [1_700_006_400 + 300 * i for i in range(480)]
    # an analysis is real work (a loaded CI machine took over 60 s): set-up, not the test
    assert call(server, "POST", "/api/v1/optimizer/analyses", {"metrics": [{
        "resource": {"resource_id": "web-1", "kind": "instance",
                     "current": {"instance_type": "m5.large"}},
        "timestamps": stamps, "metrics": {"cpu_pct": [10.0] * 480,
                                          "mem_pct": [20.0] * 480}}]}, timeout=600)[0] == 201
    yield server
    server.stop()


def name_taking_requests(name: str) -> list[tuple[str, str, dict | None]]:
    """(method, path, JSON body) of every REST route that takes a name, with ``name``."""
    q = quote(name, safe="")
    code = {"filename": "job.py", "text": JOB}
    return [
        ("POST", "/api/v1/applications", {"name": name, "code": code}),
        ("GET", f"/api/v1/applications/{q}", None),
        ("PATCH", f"/api/v1/applications/{q}", {"description": "x"}),
        ("DELETE", f"/api/v1/applications/{q}", None),
        ("POST", f"/api/v1/applications/{q}/start", {}),
        ("POST", f"/api/v1/applications/{q}/stop", {}),
        ("GET", f"/api/v1/applications/{q}/logs", None),
        ("POST", "/api/v1/applications/keep/snapshots", {"snapshot": name}),
        ("GET", f"/api/v1/applications/keep/snapshots/{q}", None),
        ("DELETE", f"/api/v1/applications/keep/snapshots/{q}", None),
        ("POST", "/api/v1/applications/keep/start", {"restore": "SNAPSHOT",
                                                     "snapshot": name}),
        ("POST", "/api/v1/models/groups", {"name": name}),
        ("GET", f"/api/v1/models/groups/{q}", None),
        ("DELETE", f"/api/v1/models/groups/{q}", None),
        ("POST", f"/api/v1/models/groups/{q}/versions", {"source": "upload://x"}),
        ("POST", "/api/v1/models/groups/keep/versions", {"source": f"upload://{name}"}),
        ("POST", "/api/v1/endpoint-configs", {"name": name, "variants": []}),
        ("DELETE", f"/api/v1/endpoint-configs/{q}", None),
        ("POST", "/api/v1/endpoints", {"name": name, "config": name}),
        ("GET", f"/api/v1/endpoints/{q}/logs", None),
        ("DELETE", f"/api/v1/endpoints/{q}", None),
        ("GET", f"/api/v1/optimizer/analyses/{q}", None),
        ("DELETE", f"/api/v1/optimizer/analyses/{q}", None),
        ("GET", f"/api/v1/optimizer/analyses/{q}/report.html", None),
        ("GET", f"/console/applications/{q}", None),
        ("GET", f"/console/streams/{q}", None),
        ("GET", f"/console/models/{q}", None),
        ("POST", f"/endpoints/{q}/invocations", None),
    ]


@pytest.mark.parametrize("name", NASTY, ids=lambda n: repr(n)[:20])
def test_nasty_names_on_every_route_leave_the_data_directory_untouched(populated, name):
    data_dir = Path(populated.data_dir)
    before = fingerprint(data_dir)
    assert "apps/apps.db" in before and "streams.db" in before
    answers = []
    for method, path, body in name_taking_requests(name):
        try:
            status, _, raw = call(populated, method, path, body)
        except (http.client.InvalidURL, ValueError):
            continue  # the client itself refuses to send it (a NUL in the URL)
        answers.append((method, path, status))
        assert status < 500, (method, path, status, raw[:300])
    upload = f"/api/v1/models/uploads?filename={quote(name, safe='')}"
    status, _, raw = call(populated, "POST", upload, raw=b"bytes",
                          headers={"Content-Type": "application/octet-stream"})
    assert status in (201, 400), raw
    if status == 201:  # a plain (if odd) file name: kept as one file in its own folder
        upload_id = json.loads(raw)["upload_id"]
        assert [p.name for p in (data_dir / "models" / "uploads" / upload_id).iterdir()] == \
            [name]
        before = {**before, f"models/uploads/{upload_id}/{name}":
                  hashlib.sha256(b"bytes").hexdigest()}
    for target, body in (("Kinesis_20131202.CreateStream", {"StreamName": name,
                                                           "ShardCount": 1}),
                         ("Kinesis_20131202.DeleteStream", {"StreamName": name}),
                         ("SageMaker.DeleteModel", {"ModelName": name})):
        assert aws(populated, target, body)[0] < 500
    # nothing created, deleted or rewritten anywhere; the resources still answer
    created = [a for a in answers if a[2] in (200, 201, 204) and a[0] != "GET"]
    assert created == [], created
    assert fingerprint(data_dir) == before
    assert data_dir.is_dir() and (data_dir / "apps" / "apps.db").exists()
    records = kinesis_client(populated.url).get_records(ShardIterator=kinesis_client(
        populated.url).get_shard_iterator(StreamName="keep", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"])
    assert [r["Data"] for r in records["Records"]] == [b"precious"]
    assert call(populated, "GET", "/api/v1/applications/keep")[0] == 200


def test_the_reported_requests_delete_nothing(tmp_path):
    """The request of the report: name '..' with a server path; then '.'."""
    server = ServerProcess(tmp_path / "data", allow_code=True).start()
    try:
        kinesis_client(server.url).create_stream(StreamName="s", ShardCount=1)
        for name in ("..", "."):
            status, _, raw = call(server, "POST", "/api/v1/applications",
                                  {"name": name, "code": "/x.py"})
            assert status == 400 and "application name" in json.loads(raw)["detail"]
            status, _, raw = call(server, "POST", "/api/v1/applications",
                                  {"name": name, "code": {"filename": "j.py", "text": JOB}})
            assert status == 400
        assert (tmp_path / "data" / "apps" / "apps.db").exists()
        assert (tmp_path / "data" / "streams.db").exists()
        assert "s" in kinesis_client(server.url).list_streams()["StreamNames"]
    finally:
        server.stop()


def test_names_are_confined_even_through_a_planted_symlink(tmp_path):
    from forestream.names import UnsafeName, child_path

    root = tmp_path / "apps"
    root.mkdir()
    (root / "escape").symlink_to(tmp_path)
    with pytest.raises(UnsafeName, match="leads outside"):
        child_path(root, "escape", "application name")
    for name in NASTY + [None, 3, "a" * 129]:
        with pytest.raises(UnsafeName):
            child_path(root, name, "application name")


# ------------------------------------------------------------------ the access token

def test_a_default_server_makes_a_token_and_asks_for_it(tmp_path):
    env = {**os.environ, "FORESTREAM_RUNTIME_DIR": str(tmp_path / "runtime")}
    env.pop("FORESTREAM_TOKEN", None)
    server = ServerProcess(tmp_path / "data", env=env, token=None).start()
    try:
        token_file = tmp_path / "data" / "access-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert server.token == token and len(token) >= 32
        # no token: 401 with how to get one; health says only that it is up
        status, headers, raw = call(server, "GET", "/api/v1/applications", token=False)
        problem = json.loads(raw)
        assert status == 401 and headers["Content-Type"] == "application/problem+json"
        assert "access-token" in problem["detail"] and "Bearer" in problem["detail"]
        assert json.loads(call(server, "GET", "/health", token=False)[2]) == {"status": "ok"}
        for header in ({"Authorization": f"Bearer {token}"}, {"X-Forestream-Token": token}):
            assert call(server, "GET", "/api/v1/applications", token=False,
                        headers=header)[0] == 200
        for wrong in ("", "x", token[:-1], token + "x"):
            assert call(server, "GET", "/api/v1/applications", token=False,
                        headers={"Authorization": f"Bearer {wrong}"})[0] == 401
        assert call(server, "GET", "/metrics", token=False)[0] == 401
        assert call(server, "GET", "/metrics")[0] == 200
        # forestream commands find it (runtime record), and print a console link
        run = subprocess.run([str(SCRIPT), "apps", "list", "--endpoint-url", server.url],
                             capture_output=True, text=True, env=env, timeout=60)
        assert run.returncode == 0, run.stderr
        link = subprocess.run([str(SCRIPT), "console-url", "--endpoint-url", server.url],
                              capture_output=True, text=True, env=env, timeout=60)
        assert link.stdout.strip() == f"{server.url}/?token={token}"
        runtime = json.loads((tmp_path / "runtime" / f"server-{server.port}.json").read_text())
        assert runtime["token"] == token
        # the same token after a restart
        server.stop()
        assert not (tmp_path / "runtime" / f"server-{server.port}.json").exists()
        server.start()
        assert call(server, "GET", "/api/v1/applications", token=False,
                    headers={"Authorization": f"Bearer {token}"})[0] == 200
    finally:
        server.stop()


def test_the_console_signs_in_with_the_link_or_the_form(tmp_path):
    server = ServerProcess(tmp_path / "data").start()
    try:
        status, headers, raw = call(server, "GET", "/", token=False)
        assert status == 401 and b'action="/login"' in raw and b"Access token" in raw
        opener = urllib.request.build_opener(_NoRedirect)
        answer = _open(opener, server.url + f"/console/streams?token={server.token}&x=1")
        assert answer.status == 303 and answer.headers["Location"] == "/console/streams?x=1"
        cookie = answer.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert server.token not in answer.headers["Location"]
        jar = cookie.split(";")[0]
        assert call(server, "GET", "/", token=False, headers={"Cookie": jar})[0] == 200
        wrong = _open(opener, server.url + "/?token=wrong")
        assert wrong.status == 401
        form = urllib.request.Request(server.url + "/login", method="POST",
                                      data=f"token={server.token}".encode(), headers={
                                          "Content-Type": "application/x-www-form-urlencoded",
                                          "Origin": server.url})
        answer = _open(opener, form)
        assert answer.status == 303 and answer.headers["Set-Cookie"].startswith(
            f"forestream_token_{server.port}=")
        bad = urllib.request.Request(server.url + "/login", method="POST", data=b"token=no",
                                     headers={"Origin": server.url})
        assert _open(opener, bad).status == 401
    finally:
        server.stop()


class _Answer:
    def __init__(self, status: int, headers) -> None:
        self.status, self.headers = status, headers


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _open(opener, request):
    if _protocol == "h2c":  # no redirects followed: httpx's default
        request = urllib.request.Request(request) if isinstance(request, str) else request
        status, headers, _ = _call_h2(request.get_method(), request.full_url, request.data,
                                      dict(request.header_items()))
        return _Answer(status, headers)
    try:
        return opener.open(request, timeout=30)
    except urllib.error.HTTPError as error:
        return error


def test_no_token_opens_the_rest_api_when_asked(tmp_path):
    server = ServerProcess(tmp_path / "data", token=False,
                           env={"FORESTREAM_NO_TOKEN": "1"}).start()
    try:
        assert call(server, "GET", "/api/v1/applications", token=False)[0] == 200
        assert not (tmp_path / "data" / "access-token").exists()
    finally:
        server.stop()


# ------------------------------------------------------------------ other origins

def test_web_pages_of_other_origins_cannot_act(tmp_path):
    server = ServerProcess(tmp_path / "data", allow_code=True).start()
    try:
        evil = {"Origin": "http://evil.example"}
        code = json.dumps({"name": "pwn", "code": {"filename": "p.py", "text": JOB}})
        # a "simple" cross-site POST, even carrying the cookie a browser would attach
        cookie = {"Cookie": f"forestream_token_{server.port}={server.token}"}
        for headers in ({**evil, "Content-Type": "text/plain"},
                        {**evil, **cookie, "Content-Type": "text/plain"},
                        {**evil, **server.auth}):
            status, _, raw = call(server, "POST", "/api/v1/applications", raw=code.encode(),
                                  headers=headers, token=False)
            assert status == 403 and b"origin" in raw
        status, _, raw = call(server, "POST", "/", {"StreamName": "x", "ShardCount": 1},
                              token=False, headers={
                                  **evil, "X-Amz-Target": "Kinesis_20131202.CreateStream",
                                  "Content-Type": "application/x-amz-json-1.1"})
        assert status == 403 and json.loads(raw)["__type"] == "AccessDeniedException"
        status, headers, _ = call(server, "OPTIONS", "/api/v1/applications", token=False,
                                  headers={**evil, "Access-Control-Request-Method": "POST"})
        assert status == 403 and "access-control-allow-origin" not in {
            k.lower() for k in headers}
        # DNS rebinding: the page's own name, resolved to 127.0.0.1
        status, _, raw = call(server, "POST", "/api/v1/applications", raw=code.encode(),
                              headers={"Host": f"evil.example:{server.port}"})
        assert status == 403 and b"Host" in raw
        status, _, _ = call(server, "GET", "/", headers={"Host": "evil.example"})
        assert status == 403
        # the same requests from the server's own origin, or no browser at all, work
        assert call(server, "GET", "/api/v1/applications",
                    headers={"Origin": server.url})[0] == 200
        assert call(server, "GET", "/api/v1/applications",
                    headers={"Host": f"localhost:{server.port}"})[0] == 200
        assert kinesis_client(server.url).list_streams()["StreamNames"] == []
        assert json.loads(call(server, "GET", "/api/v1/applications")[2]) == {
            "applications": []}
    finally:
        server.stop()


def test_configured_origins_get_cors_answers(tmp_path):
    server = ServerProcess(tmp_path / "data", args=(
        "--cors-origin", "https://app.example", "--allow-host", "forestream.internal")).start()
    try:
        origin = {"Origin": "https://app.example"}
        status, headers, _ = call(server, "OPTIONS", "/api/v1/applications", token=False,
                                  headers={**origin, "Access-Control-Request-Method": "GET",
                                           "Access-Control-Request-Headers": "authorization"})
        assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
        assert headers["access-control-allow-headers"] == "authorization"
        status, headers, _ = call(server, "GET", "/api/v1/applications", headers=origin)
        assert status == 200 and headers["access-control-allow-origin"] == "https://app.example"
        assert call(server, "GET", "/health",
                    headers={"Host": "forestream.internal"})[0] == 200
    finally:
        server.stop()


# ------------------------------------------------------------------ code and server paths

def test_a_default_server_runs_no_clients_code(tmp_path):
    server = ServerProcess(tmp_path / "data", allow_code=False).start()
    try:
        status, _, raw = call(server, "POST", "/api/v1/applications", {
            "name": "job", "code": {"filename": "job.py", "text": JOB}})
        problem = json.loads(raw)
        assert status == 403 and "forestream server --allow-code" in problem["detail"]
        assert json.loads(call(server, "GET", "/api/v1/applications")[2]) == {
            "applications": []}
        status, _, raw = call(server, "POST", "/api/v1/models/uploads?filename=m.joblib",
                              raw=b"x" * 10, headers={"Content-Type":
                                                      "application/octet-stream"})
        source = json.loads(raw)["source"]
        status, _, raw = call(server, "POST", "/api/v1/models/groups/g/versions",
                              {"source": source, "trust": True})
        assert status == 403 and "--allow-code" in json.loads(raw)["detail"]
        sagemaker = boto3.client("sagemaker", endpoint_url=server.url, region_name="us-east-1",
                                 aws_access_key_id="k", aws_secret_access_key="s")
        with pytest.raises(sagemaker.exceptions.ClientError) as refused:
            sagemaker.create_model(ModelName="m", ExecutionRoleArn="arn:aws:iam::1:role/r",
                                   PrimaryContainer={
                                       "ModelDataUrl": "s3://bucket/model.tar.gz",
                                       "Environment": {"FORESTREAM_TRUST": "true"}})
        assert refused.value.response["Error"]["Code"] in ("AccessDeniedException",
                                                            "ValidationException")
    finally:
        server.stop()


def test_code_that_ran_before_stops_when_the_server_no_longer_allows_it(tmp_path):
    import joblib
    import numpy as np
    from sklearn.linear_model import LinearRegression

    data = tmp_path / "data"
    server = ServerProcess(data, allow_code=True).start()
    kinesis = kinesis_client(server.url)
    kinesis.create_stream(StreamName="in", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="in", WaiterConfig={"Delay": 0.1})
    job = ("from forestream.processing import kinesis_client\n\n"
           "def build(env, properties):\n"
           "    env.from_kinesis('in', kinesis_client()).map(str)\n")
    assert call(server, "POST", "/api/v1/applications", {
        "name": "job", "code": {"filename": "job.py", "text": job}})[0] == 201
    assert call(server, "POST", "/api/v1/applications/job/start", {})[0] == 200
    X = np.arange(12.0).reshape(6, 2)
    joblib.dump(LinearRegression().fit(X, X.sum(axis=1)), tmp_path / "m.joblib")
    status, _, raw = call(server, "POST", "/api/v1/models/uploads?filename=m.joblib",
                          raw=(tmp_path / "m.joblib").read_bytes(),
                          headers={"Content-Type": "application/octet-stream"})
    version = json.loads(call(server, "POST", "/api/v1/models/groups/g/versions", {
        "source": json.loads(raw)["source"], "trust": True})[2])
    assert call(server, "POST", "/api/v1/endpoints", {
        "name": "ep", "variants": [{"model": version["ref"]}]})[0] == 201
    wait_for(lambda: json.loads(call(server, "GET", "/api/v1/endpoints/ep")[2])[
        "status"] == "InService", "the endpoint")
    server.stop()
    server.env.pop("FORESTREAM_ALLOW_CODE")
    server.start()
    try:
        app = json.loads(call(server, "GET", "/api/v1/applications/job")[2])
        assert app["status"] == "READY" and "--allow-code" in app["last_failure"]["reason"]
        endpoint = wait_for(lambda: (e := json.loads(call(
            server, "GET", "/api/v1/endpoints/ep")[2]))["status"] == "Failed" and e,
            "the endpoint to fail")
        assert "--allow-code" in endpoint["failure_reason"]
        status, _, raw = call(server, "POST", "/api/v1/applications/job/start", {})
        assert status == 403
    finally:
        server.stop()


def test_server_paths_only_inside_import_roots_and_no_existence_leak(tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    (root / "job.py").write_text(JOB)
    (root / "outside").symlink_to(tmp_path)
    (tmp_path / "secret.py").write_text(JOB)
    default = ServerProcess(tmp_path / "default").start()
    rooted = ServerProcess(tmp_path / "rooted", env={"FORESTREAM_IMPORT_ROOTS": str(root)})
    rooted.start()
    try:
        answers = []
        for path in ("/etc/passwd", "/no/such/file"):
            for route, body in (("/api/v1/models/groups/g/versions", {"source": path}),
                                ("/api/v1/optimizer/analyses", {"source": {"path": path}}),
                                ("/api/v1/optimizer/analyses", {"metrics": [],
                                                                "catalog": path}),
                                ("/api/v1/applications", {"name": "a", "code": path})):
                status, _, raw = call(default, "POST", route, body)
                detail = json.loads(raw)["detail"].replace(path, "PATH")
                answers.append((route, status, detail))
                assert status == 403, (route, path, raw)
        # the same answer for a file that exists and one that does not
        assert answers[:4] == answers[4:]
        assert call(rooted, "POST", "/api/v1/applications", {
            "name": "inside", "code": str(root / "job.py")})[0] == 201
        for escape in (str(root / ".." / "secret.py"), str(root / "outside" / "secret.py"),
                       "job.py", str(tmp_path / "secret.py")):
            status, _, raw = call(rooted, "POST", "/api/v1/applications", {
                "name": "escape", "code": escape})
            assert status == 403 and b"import roots" in raw, escape
    finally:
        default.stop()
        rooted.stop()


class _Recorder(BaseHTTPRequestHandler):
    seen: list[str] = []

    def do_GET(self):  # noqa: N802 - the http.server convention
        self.seen.append(self.path)
        self.send_response(500)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_outbound_requests_only_to_configured_hosts(tmp_path):
    _Recorder.seen.clear()  # what an earlier run (the other protocol) asked
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = upstream.server_address[1]
    default = ServerProcess(tmp_path / "default").start()
    allowed = ServerProcess(tmp_path / "allowed",
                            env={"FORESTREAM_OUTBOUND_HOSTS": f"127.0.0.1:{port}"}).start()
    try:
        url = f"http://127.0.0.1:{port}"
        status, _, raw = call(default, "POST", "/api/v1/optimizer/analyses",
                              {"source": {"prometheus": {"url": url}}})
        assert status == 403 and b"--outbound-host" in raw
        status, _, raw = call(default, "POST", "/api/v1/models/groups/g/versions",
                              {"source": "s3://b/k", "s3_endpoint_url": url})
        assert status == 403
        assert _Recorder.seen == []  # never contacted
        status, _, raw = call(default, "POST", "/api/v1/optimizer/analyses",
                              {"source": {"prometheus": {"url": "/api/v1/query"}}})
        assert status == 400 and b"absolute http" in raw
        status, _, _ = call(allowed, "POST", "/api/v1/optimizer/analyses",
                            {"source": {"prometheus": {"url": url, "days": 1}}})
        assert status == 502 and _Recorder.seen  # allowed: asked (and it failed upstream)
    finally:
        upstream.shutdown()
        default.stop()
        allowed.stop()


# ------------------------------------------------------------------ sizes and time

@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("limits") / "data").start()
    kinesis_client(server.url).create_stream(StreamName="s", ShardCount=1)
    yield server
    server.stop()


def _raw_request(server, head: bytes, body: bytes = b"", timeout: float = 30.0) -> bytes:
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as sock:
        sock.sendall(head + body)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)


def test_oversized_bodies_are_refused_before_they_are_read(plain):
    head = (b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1"
            b"\r\nX-Amz-Target: Kinesis_20131202.ListStreams\r\nContent-Length: 209715200"
            b"\r\n\r\n")
    started = time.monotonic()
    answer = _raw_request(plain, head)
    assert answer.startswith(b"HTTP/1.1 413") and time.monotonic() - started < 5
    assert b"RequestEntityTooLarge" in answer
    # no Content-Length (chunked): counted while read, refused past the limit
    with socket.create_connection(("127.0.0.1", plain.port), timeout=30) as sock:
        sock.sendall(b"POST /api/v1/models/groups HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Authorization: Bearer " + plain.token.encode() + b"\r\n"
                     b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"x" * 0x10000 + b"\r\n"
        try:
            for _ in range(200):  # 12.5 MiB, over the REST limit of 8 MiB
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    # the same over HTTP/2: a declared length refused before any DATA frame is read...
    h2c = RawH2(plain.port)
    stream = h2c.request("POST", "/", {"content-type": "application/x-amz-json-1.1",
                                       "x-amz-target": "Kinesis_20131202.ListStreams",
                                       "content-length": "209715200"}, end=False)
    status, _, body = h2c.response(stream, timeout=5)
    assert status == 413 and b"RequestEntityTooLarge" in body
    # ...and a body without one, counted while it arrives
    stream = h2c.request("POST", "/api/v1/models/groups", {
        "authorization": f"Bearer {plain.token}", "content-type": "application/json"},
        end=False)
    h2c.send_body(stream, b"x" * (12 * 1024 * 1024 + 1))
    assert h2c.response(stream)[0] == 413
    h2c.close()


def test_errors_do_not_echo_huge_values(plain):
    status, body = aws(plain, "Kinesis_20131202.DescribeStream", {"StreamName": "n" * 2_000_000})
    assert status == 400 and len(json.dumps(body)) < 4096
    status, _, raw = call(plain, "GET", "/api/v1/applications/" + "a" * 3000)
    assert status in (400, 404) and len(raw) < 4096


def test_slow_headers_and_slow_bodies_are_cut_off(plain):
    # HTTP/2: connections that send their preface and no request, and a dripping body
    silent = [RawH2(plain.port) for _ in range(5)]
    dripping = RawH2(plain.port)
    drip = dripping.request("POST", "/api/v1/models/groups", {
        "authorization": f"Bearer {plain.token}", "content-type": "application/json",
        "content-length": "1000"}, body=b"{", end=False)
    sockets = []
    for _ in range(20):
        sock = socket.create_connection(("127.0.0.1", plain.port))
        sock.sendall(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # ...and nothing more
        sockets.append(sock)
    body_sock = socket.create_connection(("127.0.0.1", plain.port))
    body_sock.sendall(b"POST /api/v1/models/groups HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                      b"Authorization: Bearer " + plain.token.encode() + b"\r\n"
                      b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
    deadline = time.monotonic() + 40
    closed = 0
    for sock in sockets:
        sock.settimeout(max(deadline - time.monotonic(), 0.1))
        try:
            answer = sock.recv(4096)
        except TimeoutError:
            answer = None
        if answer is not None and (answer == b"" or answer.startswith(b"HTTP/1.1 408")):
            closed += 1
        sock.close()
    assert closed == len(sockets)
    body_sock.settimeout(max(deadline - time.monotonic(), 1))
    while True:  # a byte now and then is not enough
        try:
            body_sock.sendall(b" ")
            answer = body_sock.recv(4096, socket.MSG_DONTWAIT)
        except BlockingIOError:
            answer = b""
        except (BrokenPipeError, ConnectionResetError):
            answer = b"closed"
        if answer:
            break
        assert time.monotonic() < deadline, "a dripping body was never cut off"
        time.sleep(1.0)
    assert answer == b"closed" or answer.startswith(b"HTTP/1.1 408")
    body_sock.close()
    for connection in silent:
        assert connection.wait_closed(max(deadline - time.monotonic(), 0.1))
    status = 0
    while not status:  # a byte now and then is not enough over HTTP/2 either
        dripping.send_body(drip, b" ", end=False)
        try:
            status = dripping.response(drip, timeout=1.0)[0]
        except TimeoutError:
            assert time.monotonic() < deadline + 5, "a dripping HTTP/2 body was never cut off"
    assert status == 408
    dripping.close()
    assert call(plain, "GET", "/health")[0] == 200  # and the server still answers


def test_huge_headers_are_refused(plain):
    head = (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 100_000 +
            b"\r\n\r\n")
    answer = _raw_request(plain, head)
    assert answer.startswith(b"HTTP/1.1 431") or answer == b""
    h2c = RawH2(plain.port)  # over HTTP/2: past the advertised header list size
    h2c.request("GET", "/health", {"x-big": "a" * 100_000})
    assert h2c.wait_closed(10)
    assert call(plain, "GET", "/health")[0] == 200  # and the server still answers


# ------------------------------------------------------------------ 500s that are 400s

def _cbor(server, target: str, body: dict) -> tuple[int, dict]:
    raw_body = cbor2.dumps(body)
    status, _, raw = call(server, "POST", "/", raw=raw_body, token=False,
                          headers=signed_headers(server.url + "/", raw_body, {
                              "X-Amz-Target": target,
                              "Content-Type": "application/x-amz-cbor-1.1"}))
    return status, cbor2.loads(raw) if raw else {}


@pytest.mark.parametrize("timestamp", [float("nan"), float("inf"), float("-inf"), 1.8e308,
                                       2 ** 80])
def test_impossible_timestamps_are_validation_errors(plain, timestamp):
    status, body = _cbor(plain, "Kinesis_20131202.GetShardIterator", {
        "StreamName": "s", "ShardId": "shardId-000000000000",
        "ShardIteratorType": "AT_TIMESTAMP", "Timestamp": timestamp})
    assert status == 400 and body["__type"] in ("ValidationException",
                                                "SerializationException")
    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/s/consumer/c:1"
    status, body = _cbor(plain, "Kinesis_20131202.SubscribeToShard", {
        "ConsumerARN": arn, "ShardId": "shardId-000000000000",
        "StartingPosition": {"Type": "AT_TIMESTAMP", "Timestamp": timestamp}})
    assert status == 400


@pytest.mark.parametrize("operation,body", [
    ("ListShards", {"NextToken": None}),
    ("ListStreams", {"NextToken": None}),
    ("ListStreamConsumers", {"StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/s",
                             "NextToken": None}),
])
@pytest.mark.parametrize("token", [
    base64.urlsafe_b64encode(b"[" * 200_000).decode()[:1_000_000],
    base64.urlsafe_b64encode(json.dumps(["shards", {"a": 1}]).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps(["shards", ["s", "x", "AT_TIMESTAMP", "y"]]).encode()
                             ).decode(),
    base64.urlsafe_b64encode(json.dumps(["consumers", "-5"]).encode()).decode(),
    base64.urlsafe_b64encode(json.dumps(["streams", [1]]).encode()).decode(),
], ids=["deep", "dict", "types", "negative", "list"])
def test_forged_next_tokens_are_invalid_arguments(plain, operation, body, token):
    status, answer = aws(plain, f"Kinesis_20131202.{operation}", {**body, "NextToken": token})
    assert status == 400 and answer["__type"] in ("InvalidArgumentException",
                                                  "ValidationException"), answer


def test_get_records_refuses_another_streams_arn(plain):
    kinesis = kinesis_client(plain.url)
    iterator = kinesis.get_shard_iterator(StreamName="s", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    status, body = aws(plain, "Kinesis_20131202.GetRecords", {
        "ShardIterator": iterator,
        "StreamARN": "arn:aws:kinesis:us-east-1:000000000000:stream/other"})
    assert status == 400 and body["__type"] == "InvalidArgumentException"


@pytest.mark.parametrize("path,body,needle", [
    ("/api/v1/applications", {"name": "a", "code": [None, None]}, "code"),
    ("/api/v1/applications", {"name": "a", "code": {"zip_base64": "bm90IGEgemlw"}}, "zip"),
    ("/api/v1/applications/keep/snapshots", {"snapshot": [None, None]}, "snapshot"),
    ("/api/v1/models/groups/g/versions", {"source": "upload://0", "sample_input_b64": "é"},
     "base64"),
    ("/api/v1/optimizer/analyses", {"metrics": [], "catalog": {}}, "catalog"),
])
def test_malformed_rest_values_are_400s(plain, path, body, needle):
    if "keep" in path:
        call(plain, "POST", "/api/v1/applications", {
            "name": "keep", "code": {"filename": "job.py", "text": JOB}})
    status, _, raw = call(plain, "POST", path, body)
    assert status == 400 and needle in json.loads(raw)["detail"], raw


def test_health_shows_the_data_directory_only_to_the_authorised(plain):
    assert "data_dir" not in json.loads(call(plain, "GET", "/health", token=False)[2])
    assert json.loads(call(plain, "GET", "/health")[2])["data_dir"] == str(
        Path(plain.data_dir).resolve())


# ------------------------------------------------------------------ signatures on a server

@pytest.fixture(scope="module")
def signed_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("sigv4") / "data", env={
        "FORESTREAM_ACCESS_KEY_ID": "AKIDTEST", "FORESTREAM_SECRET_ACCESS_KEY": "s3cret"})
    server.start()
    yield server
    server.stop()


def _signed(server, target: str, body: bytes, *, service="kinesis", region="us-east-1",
            headers: dict | None = None, sign_only: tuple | None = None):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="POST", url=server.url + "/", data=body, headers={
        "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
        **(headers or {})})
    signer = SigV4Auth(Credentials("AKIDTEST", "s3cret"), service, region)
    if sign_only is not None:
        signer.headers_to_sign = lambda req: _only(req, sign_only)
    signer.add_auth(request)
    return dict(request.headers)


def _only(request, names):
    from botocore.awsrequest import HTTPHeaders

    out = HTTPHeaders()
    for name in names:
        out[name] = request.headers[name]
    return out


def _send(server, headers: dict, body: bytes) -> tuple[int, dict]:
    status, _, raw = call(server, "POST", "/", raw=body, headers=headers, token=False)
    return status, json.loads(raw) if raw else {}


def test_a_replayed_signature_cannot_carry_another_body(signed_server, protocol):
    stream = f"r-{protocol}"  # one server for both protocols
    kinesis = boto3.client("kinesis", endpoint_url=signed_server.url, region_name="us-east-1",
                           aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName=stream,
                                            WaiterConfig={"Delay": 0.1})
    original = json.dumps({"StreamName": stream, "Data": "b25l", "PartitionKey": "k"}).encode()
    digest = hashlib.sha256(original).hexdigest()
    headers = _signed(signed_server, "Kinesis_20131202.PutRecord", original,
                      headers={"X-Amz-Content-Sha256": digest})
    assert _send(signed_server, headers, original)[0] == 200
    forged = json.dumps({"StreamName": stream, "Data": "dHdv", "PartitionKey": "k"}).encode()
    status, body = _send(signed_server, headers, forged)
    assert status == 400 and body["__type"] == "InvalidSignatureException"
    unsigned_hash = {k: v for k, v in _signed(signed_server, "Kinesis_20131202.PutRecord",
                                              original).items()}
    unsigned_hash["X-Amz-Content-Sha256"] = hashlib.sha256(forged).hexdigest()
    assert _send(signed_server, unsigned_hash, forged)[0] == 400
    records = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
        StreamName=stream, ShardId="shardId-000000000000",
        ShardIteratorType="TRIM_HORIZON")["ShardIterator"])["Records"]
    assert [r["Data"] for r in records] == [b"one"]


@pytest.mark.parametrize("service,region", [("kinesis", "eu-west-1"), ("s3", "us-east-1"),
                                            ("x/y", "us-east-1"),
                                            ("forestream", "us-east-1")])
def test_signatures_scoped_elsewhere_are_refused(signed_server, service, region):
    body = b"{}"
    headers = _signed(signed_server, "Kinesis_20131202.ListStreams", body, service=service,
                      region=region)
    status, answer = _send(signed_server, headers, body)
    assert status == 400 and answer["__type"] in ("InvalidSignatureException",
                                                  "IncompleteSignatureException")


def test_a_signature_over_the_date_alone_cannot_be_retargeted(signed_server, protocol):
    victim = f"victim-{protocol}"  # one server for both protocols
    body = json.dumps({"StreamName": victim}).encode()
    kinesis = boto3.client("kinesis", endpoint_url=signed_server.url, region_name="us-east-1",
                           aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
    kinesis.create_stream(StreamName=victim, ShardCount=1)
    headers = _signed(signed_server, "Kinesis_20131202.DescribeStream", body,
                      sign_only=("X-Amz-Date",))
    headers["X-Amz-Target"] = "Kinesis_20131202.DeleteStream"
    status, answer = _send(signed_server, headers, body)
    assert status == 400 and "SignedHeader" in answer["message"]
    assert victim in kinesis.list_streams()["StreamNames"]


def test_an_old_scope_date_beside_a_current_x_amz_date_is_refused(signed_server):
    body = b"{}"
    headers = _signed(signed_server, "Kinesis_20131202.ListStreams", body)
    headers["Authorization"] = headers["Authorization"].replace(
        headers["X-Amz-Date"][:8], "20010101")
    status, answer = _send(signed_server, headers, body)
    assert status == 400 and answer["__type"] == "InvalidSignatureException"


def test_rest_refuses_kinesis_scoped_signatures(signed_server):
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    for service, expected in (("kinesis", 401), ("forestream", 200)):
        request = AWSRequest(method="GET", url=signed_server.url + "/api/v1/applications")
        SigV4Auth(Credentials("AKIDTEST", "s3cret"), service, "us-east-1").add_auth(request)
        status, _, _ = call(signed_server, "GET", "/api/v1/applications", token=False,
                            headers=dict(request.headers))
        assert status == expected, service
