"""The web console's pages on a real server: what each page and index shows, the parts
htmx fetches again, navigation, escaping, 404s, scripts only from the server itself, and
HTTP Basic authentication when credentials are configured."""

from __future__ import annotations

import base64
import contextlib
import html
import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import joblib
import numpy as np
import pytest
from console_testkit import rest, wait_for

from server_support import ServerProcess

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

pytestmark = pytest.mark.service

HOSTILE = '<script>alert("x")</script>'
ESCAPED = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"
JOB = '''
from forestream.processing import kinesis_client


def build(env, properties):
    env.from_kinesis("console-input", kinesis_client()).map(lambda record: record)
'''


def get(url: str, auth: tuple[str, str] | None = None, method: str = "GET",
        token: str | None = None):
    """(status, headers, body text) of a request; errors are answers too."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(
            f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(url, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def page(server, path: str, **options):
    """:func:`get` of ``path`` on ``server``, with its access token."""
    return get(server.url + path, token=server.token, **options)


def kinesis_client(url: str, key: str = "test", secret: str = "test"):
    return boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One server holding a resharded stream, a running application, a model group with
    an approved version, and an endpoint that has answered one request."""
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("console")
    server = ServerProcess(root / "data").start()
    try:
        kinesis = kinesis_client(server.url)
        kinesis.create_stream(StreamName="sensors", ShardCount=2)
        kinesis.create_stream(StreamName="console-input", ShardCount=1)
        for name in ("sensors", "console-input"):  # CREATING for a moment, as on AWS
            kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                     WaiterConfig={"Delay": 0.2})
        kinesis.add_tags_to_stream(StreamName="sensors", Tags={"team": "ml-ops"})
        kinesis.split_shard(StreamName="sensors", ShardToSplit="shardId-000000000000",
                            NewStartingHashKey=str(2**126))
        # the split takes effect when UPDATING ends: the pages show its children after
        kinesis.get_waiter("stream_exists").wait(StreamName="sensors",
                                                 WaiterConfig={"Delay": 0.2})

        X = np.random.default_rng(1).normal(size=(50, 3))
        joblib.dump(LinearRegression().fit(X, X @ [1.0, 2.0, 3.0]), root / "model.joblib")
        upload = server.request("/api/v1/models/uploads?filename="
                                        "model.joblib", data=(root / "model.joblib")
                                        .read_bytes(), method="POST")
        source = json.loads(urllib.request.urlopen(upload).read())["source"]
        rest(server, "POST", "/api/v1/models/groups", {"name": "demand", "description": HOSTILE})
        version = rest(server, "POST", "/api/v1/models/groups/demand/versions",
                            {"source": source, "trust": True, "metrics": {"rmse": 0.25}})
        patch = server.request("/api/v1/models/groups/demand/versions/1", method="PATCH",
            data=json.dumps({"approval_status": "Approved"}).encode(),
            headers={"Content-Type": "application/json"})
        urllib.request.urlopen(patch).read()
        rest(server, "POST", "/api/v1/endpoints", {"name": "demand-live", "variants": [
            {"variant_name": "blue", "model": version["ref"], "weight": 1.0}]})

        stamps = [1_700_006_400 + 300 * i for i in range(480)]
        rest(server, "POST", "/api/v1/optimizer/analyses", {"metrics": [{
            "resource": {"resource_id": "web-1", "kind": "instance",
                         "current": {"instance_type": "m5.2xlarge"}},
            "timestamps": stamps, "metrics": {"cpu_pct": [12.0] * 480,
                                              "mem_pct": [20.0] * 480}}]})
        (root / "job.py").write_text(JOB)
        rest(server, "POST", "/api/v1/applications", {
            "name": "passthrough", "code": {"filename": "job.py", "text": JOB},
            "description": HOSTILE})
        rest(server, "POST", "/api/v1/applications/passthrough/start", {})

        wait_for(lambda: json.loads(urllib.request.urlopen(server.request(
            "/api/v1/endpoints/demand-live")).read())["status"] == "InService",
            "the endpoint to be InService")
        invoke = server.request("/endpoints/demand-live/invocations",
                                        data=b"1,2,3", method="POST",
                                        headers={"Content-Type": "text/csv"})
        urllib.request.urlopen(invoke).read()
        kinesis.put_record(StreamName="console-input", Data=b'{"x": 1}', PartitionKey="a")
        wait_for(lambda: (json.loads(urllib.request.urlopen(server.request(
            "/api/v1/applications/passthrough")).read()).get("runtime") or {})
            .get("millis_behind_latest"), "the application to report its lag")
        yield server
    finally:
        # a server with a running application takes >10 s to stop: stop the application
        with contextlib.suppress(OSError):
            rest(server, "POST", "/api/v1/applications/passthrough/stop", {})
        server.stop()


def test_overview_lists_every_kind_of_resource_with_status(world):
    status, headers, body = page(world, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert str((world.data_dir).resolve()) in body
    assert '<a href="/console/streams/sensors">sensors</a>' in body
    assert '<span class="badge good">ACTIVE</span>' in body or "UPDATING" in body
    assert '<a href="/console/applications/passthrough">passthrough</a>' in body
    assert '<span class="badge good">RUNNING</span>' in body
    assert '<a href="/console/models/demand">demand</a>' in body
    assert '<a href="/console/endpoints/demand-live">demand-live</a>' in body
    assert '<span class="badge good">InService</span>' in body
    assert "blue: demand:1, weight 1, 1/1 workers" in body
    assert 'href="/metrics"' in body and 'href="/health"' in body
    assert f'endpoint_url="{world.url}"' in body  # the boto3 snippet names this server
    assert "docs/streams.md" in body
    assert "1 resources: 1 Overprovisioned; saves $" in body


def test_overview_links_optimizer_reports_served_by_the_console(world):
    _, _, body = page(world, "/")
    report = body.split('<a href="/console/optimizer/')[1].split('"')[0]
    status, headers, report_page = page(world, "/console/optimizer/" + report)
    assert status == 200 and report.endswith("/report.html")
    assert "web-1" in report_page and "script-src" not in headers["Content-Security-Policy"]


def test_stream_page_shows_shards_hash_ranges_sequences_and_lineage(world):
    status, _, body = page(world, "/console/streams/sensors")
    assert status == 200
    rows = {row.split("</td>")[0]: row for row in body.split("<tr><td>")[1:]}
    parent = rows["shardId-000000000000"]
    assert "CLOSED" in parent and f"<code>{2**127 - 1}</code>" in parent
    assert "shardId-000000000002, shardId-000000000003" in parent  # children
    assert "(open)" not in parent  # a closed shard has an ending sequence number
    child = rows["shardId-000000000003"]
    assert "OPEN" in child and f"<code>{2**126}</code>" in child and "(open)" in child
    assert "shardId-000000000000" in child  # its parent
    assert "team=ml-ops" in body and "24 hours" in body


def test_application_page_shows_runtime_operators_lag_and_log_newest_first(world):
    status, _, body = page(world, "/console/applications/passthrough")
    assert status == 200
    assert '<span class="badge good">RUNNING</span>' in body
    lag = body.split("Lag per shard")[1]
    assert "shardId-000000000000" in lag
    operators = body.split("<h2>Operators</h2>")[1].split("<h2>")[0]
    assert "<table>" in operators
    assert "application passthrough running (pid" in body  # the worker's log
    shown = body.split('<pre class="log">')[1].split("</pre>")[0].splitlines()
    _, _, raw = get(world.url + "/api/v1/applications/passthrough/logs?tail=100000",
                    token=world.token)
    lines = [html.escape(line) for line in json.loads(raw)["lines"]]
    oldest_first = shown[::-1]  # the page shows the newest line first
    start = lines.index(oldest_first[0])
    assert lines[start:start + len(shown)] == oldest_first
    workers = body.split("<h2>Workers</h2>")[1].split("<h2>")[0]
    assert "shardId-000000000000" in workers  # which worker reads which shard
    assert "no autoscaling so far" in body.split("<h2>Autoscaling</h2>")[1]


def test_model_group_page_shows_versions_with_approval_digest_and_metrics(world):
    status, _, body = page(world, "/console/models/demand")
    assert status == 200
    version = body.split("<tbody>")[1]
    assert '<span class="badge good">Ready</span>' in version
    assert '<span class="badge good">Approved</span>' in version
    assert "sklearn" in version and "rmse=0.25" in version and " B</td>" in version


def test_endpoint_page_shows_variant_traffic_latency_and_worker_logs(world):
    status, _, body = page(world, "/console/endpoints/demand-live")
    assert status == 200
    row = body.split("<tbody><tr>")[1].split("</tr>")[0]
    cells = [c.split("</td>")[0] for c in row.split("<td>")[1:]]
    assert cells[:6] == ["blue", "demand:1", "1", "1 / 1", "1", "0"]  # one call, no error
    assert cells[6].endswith(" ms")
    assert "Worker logs" in body and "blue-1" in body


def test_text_from_users_is_escaped_everywhere(world):
    for path in ("/", "/console/models/demand", "/console/applications/passthrough"):
        _, _, body = page(world, path)
        assert ESCAPED in body, path
        assert HOSTILE not in body and "<script>" not in body, path


def test_pages_load_scripts_only_from_this_server_and_never_reload_themselves(world):
    for path in ("/", "/console/streams/sensors", "/console/endpoints/demand-live",
                 "/console/streams"):
        _, headers, body = page(world, path)
        policy = headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self';" in policy
        assert 'http-equiv="refresh"' not in body
        sources = re.findall(r'<script[^>]* src="([^"]+)"', body)
        styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', body)
        assert all(s.startswith("/console/static/") for s in sources + styles), path
        assert "<script>" not in body  # no inline script (only JSON data blocks)
        if sources:  # the assets are built: every one is served, with its type
            for src in sources + styles:
                status, asset_headers, _ = page(world, src)
                assert status == 200 and asset_headers["Content-Type"].startswith(
                    ("text/javascript", "text/css")), src
        else:
            assert "make console-assets" in body


def test_static_route_serves_only_the_files_the_pages_name(world):
    for path in ("/console/static/../../app.py", "/console/static/vendor/",
                 "/console/static/routes.py", "/console/static/nothing.js"):
        assert page(world, path)[0] == 404, path


def test_every_page_has_the_navigation_and_the_report_a_way_back(world):
    sections = ["/console/streams", "/console/applications", "/console/models",
                "/console/endpoints", "/console/optimizer"]
    for path in ["/", *sections, "/console/streams/sensors", "/console/models/demand"]:
        status, _, body = page(world, path)
        assert status == 200, path
        nav = body.split("<nav>")[1].split("</nav>")[0]
        assert all(f'href="{s}"' in nav for s in sections), path
    _, _, body = page(world, "/console/optimizer")
    report = body.split('<a href="/console/optimizer/')[1].split('"')[0]
    _, _, report_page = page(world, "/console/optimizer/" + report)
    assert 'href="/console/optimizer">← all analyses</a>' in report_page


def test_index_pages_list_their_resources(world):
    expected = {"/console/streams": '<a href="/console/streams/sensors">sensors</a>',
                "/console/applications":
                    '<a href="/console/applications/passthrough">passthrough</a>',
                "/console/models": '<a href="/console/models/demand">demand</a>',
                "/console/endpoints": '<a href="/console/endpoints/demand-live">demand-live</a>',
                "/console/optimizer": "report.html</a>"}
    for path, link in expected.items():
        status, _, body = page(world, path)
        assert status == 200 and link in body, path
    assert 'action="/console/streams"' in page(world, "/console/streams")[2]  # create


def test_live_parts_answer_fragments_for_htmx(world):
    status, _, body = page(world, "/console/streams/sensors?part=live")
    assert status == 200 and not body.startswith("<!DOCTYPE")
    assert "shardId-000000000003" in body and 'id="chart-records_in"' in body
    full = page(world, "/console/streams/sensors")[2]
    assert 'hx-get="/console/streams/sensors?part=live"' in full
    assert 'hx-trigger="every 5s, forestream-changed from:body"' in full
    assert "Lag per shard" in page(world, "/console/applications/passthrough?part=live")[2]


@pytest.mark.parametrize("path", [
    "/console/streams/missing", "/console/applications/missing", "/console/models/missing",
    "/console/models/not%20a%20name", "/console/endpoints/missing",
    "/console/optimizer/20240101T000000000000Z-abcdef/report.html", "/console/nowhere"])
def test_unknown_names_answer_a_404_page(world, path):
    status, headers, body = page(world, path)
    assert status == 404 and headers["Content-Type"].startswith("text/html")
    assert "Not found" in body


def test_console_answers_only_its_methods_and_post_slash_stays_the_aws_entry(world):
    for method, path in (("POST", "/console/streams/sensors"), ("DELETE", "/"),
                         ("PUT", "/console/models/demand"),
                         ("DELETE", "/console/streams/sensors")):
        assert page(world, path, method=method)[0] == 405, (method, path)
    kinesis = kinesis_client(world.url)
    assert "sensors" in kinesis.list_streams()["StreamNames"]  # POST / is still Kinesis


def test_overview_lists_a_hundred_streams(server, kinesis):
    # (how fast it renders is measured by hand, not asserted: timing belongs in benchmarks)
    for i in range(100):
        kinesis.create_stream(StreamName=f"stream-{i:03d}", ShardCount=1)
    status, _, body = page(server, "/")
    assert status == 200 and body.count('href="/console/streams/stream-') == 100


def test_console_requires_basic_auth_when_credentials_are_configured(server_process,
                                                                      tmp_path: Path):
    key, secret = "AKIDCONSOLE", "console-secret"
    server = server_process(tmp_path / "data", env={
        "FORESTREAM_ACCESS_KEY_ID": key, "FORESTREAM_SECRET_ACCESS_KEY": secret}).start()
    kinesis_client(server.url, key, secret).create_stream(StreamName="private", ShardCount=1)

    for path in ("/", "/console/streams/private", "/console/streams/missing"):
        for auth in (None, (key, "wrong"), ("someone", secret), (key, "")):
            status, headers, body = get(server.url + path, auth=auth)
            assert status == 401, (path, auth)
            assert headers["WWW-Authenticate"].startswith('Basic realm="forestream console"')
            assert "private" not in body
    malformed = urllib.request.Request(server.url + "/",
                                       headers={"Authorization": "Basic !!not-base64"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(malformed)
    assert refused.value.code == 401

    status, _, body = get(server.url + "/", auth=(key, secret))  # Basic, no token
    assert status == 200 and "/console/streams/private" in body
    assert get(server.url + "/console/streams/private", auth=(key, secret))[0] == 200
    assert get(server.url + "/console/streams/missing", auth=(key, secret))[0] == 404
    with pytest.raises(ClientError, match="UnrecognizedClient|MissingAuthentication"):
        kinesis_client(server.url, "anonymous", "nope").list_streams()  # POST / unchanged


def test_metrics_need_credentials_when_the_server_has_them(server_process, tmp_path):
    import base64
    import urllib.error
    import urllib.request

    proc = server_process(tmp_path / "metrics-auth", env={
        "FORESTREAM_ACCESS_KEY_ID": "AKID", "FORESTREAM_SECRET_ACCESS_KEY": "s3cret"}).start()
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(proc.url + "/metrics")  # neither token nor credentials
    assert info.value.code == 401
    token = base64.b64encode(b"AKID:s3cret").decode()
    request = urllib.request.Request(proc.url + "/metrics",
                                     headers={"Authorization": f"Basic {token}"})
    assert b"forestream_open_shards" in urllib.request.urlopen(request).read()
