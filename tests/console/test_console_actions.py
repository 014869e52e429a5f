"""The console's actions on a real server, as its forms send them: streams (create, put a
test record, split, merge, delete with confirmation), the record browser, models
(approve, reject, metadata), endpoints (invoke, weights), applications (snapshot, start,
stop, restore, scale); the CSRF token and other origins; the API's own error messages;
and the per-shard charts counting what went through; creating an application from the
form (uploaded or pasted code, embedded or Flink, every refusal in the API's words)."""

from __future__ import annotations

import base64
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import joblib
import numpy as np
import pytest
from console_testkit import CEP_JOB, rest, wait_for

from server_support import ServerProcess

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

pytestmark = pytest.mark.service

JOB = '''
from forestream.processing import kinesis_client


def build(env, properties):
    env.from_kinesis("actions-input", kinesis_client()).map(lambda record: record)
'''


class Console:
    """A browser's view of one server: its cookie, and the CSRF token its pages carry."""

    def __init__(self, server: ServerProcess) -> None:
        self.server = server
        self.cookie = f"forestream_token_{server.port}={server.token}"
        _, _, body = self.get("/console/streams")
        self.csrf = re.search(r'name="forestream-csrf" content="([^"]+)"', body).group(1)

    def request(self, method: str, path: str, form: dict | None = None,
                headers: dict | None = None, csrf: bool = True):
        """(status, headers, body) without following redirects."""
        data = None
        if form is not None:
            fields = {**form, **({"csrf": self.csrf} if csrf else {})}
            data = urllib.parse.urlencode(fields).encode()
        return _send(urllib.request.Request(
            self.server.url + path, data=data, method=method,
            headers={"Cookie": self.cookie, "Origin": self.server.url,
                     "Content-Type": "application/x-www-form-urlencoded", **(headers or {})}))

    def get(self, path: str, **options):
        return self.request("GET", path, **options)

    def post(self, path: str, form: dict, **options):
        return self.request("POST", path, form, **options)

    def htmx(self, path: str, form: dict, **options):
        return self.post(path, form, headers={"HX-Request": "true"}, **options)

    def multipart(self, path: str, form: dict, files: dict | None = None,
                  csrf: bool = True, htmx: bool = True):
        """A form with files, as a browser sends it (``multipart/form-data``):
        ``files`` maps a field to (filename, bytes). (status, headers, body)."""
        boundary = "----forestream-test-boundary"
        fields = {**form, **({"csrf": self.csrf} if csrf else {})}
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n'
                 .encode() + v.encode() + b"\r\n" for k, v in fields.items()]
        parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"; '
                  f'filename="{name}"\r\nContent-Type: text/x-python\r\n\r\n'.encode()
                  + data + b"\r\n" for k, (name, data) in (files or {}).items()]
        return _send(urllib.request.Request(
            self.server.url + path, data=b"".join(parts) + f"--{boundary}--\r\n".encode(),
            method="POST", headers={
                "Cookie": self.cookie, "Origin": self.server.url,
                "Content-Type": f"multipart/form-data; boundary={boundary}",
                **({"HX-Request": "true"} if htmx else {})}))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _send(request: urllib.request.Request):
    """(status, headers, body) of one request, redirects not followed."""
    try:
        with urllib.request.build_opener(_NoRedirect).open(request, timeout=120) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("console-actions")
    proc = ServerProcess(root / "data").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def console(server):
    return Console(server)


@pytest.fixture(scope="module")
def kinesis(server):
    return boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))


def shards_of(kinesis, name: str) -> list[dict]:
    return kinesis.list_shards(StreamName=name)["Shards"]


def test_creating_a_stream_from_the_form_goes_to_its_page(console, kinesis):
    status, headers, _ = console.post("/console/streams", {"name": "made-here", "shards": "2",
                                                           "mode": "PROVISIONED"})
    assert status == 303 and headers["Location"] == "/console/streams/made-here"
    kinesis.get_waiter("stream_exists").wait(StreamName="made-here",
                                             WaiterConfig={"Delay": 0.2})
    assert len(shards_of(kinesis, "made-here")) == 2
    status, headers, body = console.htmx("/console/streams", {"name": "made-by-htmx",
                                                              "shards": "1"})
    assert status == 200 and headers["HX-Redirect"] == "/console/streams/made-by-htmx"
    assert "stream made-by-htmx created" in body
    assert headers["HX-Trigger"] == "forestream-changed"


def test_bad_input_gets_the_apis_message_and_changes_nothing(console, kinesis):
    before = kinesis.list_streams()["StreamNames"]
    status, _, body = console.htmx("/console/streams", {"name": "bad name!", "shards": "1"})
    assert status == 400 and "ValidationException" in body and "bad name!" in body
    status, _, body = console.htmx("/console/streams", {"name": "x", "shards": "many"})
    assert status == 400 and "shards &#x27;many&#x27; must be a whole number" in body
    status, _, body = console.post("/console/streams", {"name": "made-here", "shards": "1"})
    assert status == 409 and "ResourceInUseException" in body  # plain form: a page
    assert "<!DOCTYPE html>" in body
    assert kinesis.list_streams()["StreamNames"] == before


def test_actions_need_the_console_token_and_the_servers_own_origin(console, kinesis):
    status, _, body = console.post("/console/streams", {"name": "forged", "shards": "1"},
                                   csrf=False)
    assert status == 403 and "CSRF" in body
    status, _, body = console.post("/console/streams", {"name": "forged", "shards": "1",
                                                        "csrf": "0" * 40}, csrf=False)
    assert status == 403
    # a page elsewhere, with the cookie a browser would attach and even a valid token
    status, _, body = console.post("/console/streams", {"name": "forged", "shards": "1"},
                                   headers={"Origin": "http://evil.example"})
    assert status == 403 and "origin" in body
    status, _, _ = console.post("/console/streams", {"name": "forged", "shards": "1"},
                                headers={"Origin": "null", "Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert "forged" not in kinesis.list_streams()["StreamNames"]


def test_put_record_then_browse_it_as_json_text_and_hex(console, kinesis):
    kinesis.create_stream(StreamName="browse", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="browse", WaiterConfig={"Delay": 0.2})
    status, _, body = console.htmx("/console/streams/browse/records", {
        "partition_key": "k1", "encoding": "text", "data": '{"temperature": 21.5}'})
    assert status == 200 and "put on shardId-000000000000 (21 bytes)" in body
    first = re.search(r"record (\d+) put", body).group(1)
    console.htmx("/console/streams/browse/records", {
        "partition_key": "k2", "encoding": "hex", "data": "00ff10"})
    console.htmx("/console/streams/browse/records", {
        "partition_key": "k3", "encoding": "base64",
        "data": base64.b64encode(b"plain words").decode()})
    records = kinesis.get_records(ShardIterator=kinesis.get_shard_iterator(
        StreamName="browse", ShardId="shardId-000000000000",
        ShardIteratorType="TRIM_HORIZON")["ShardIterator"])["Records"]
    assert [r["Data"] for r in records] == [b'{"temperature": 21.5}', b"\x00\xff\x10",
                                            b"plain words"]

    query = "shard=shardId-000000000000&position=TRIM_HORIZON&decode=auto"
    status, _, body = console.get(f"/console/streams/browse/records?{query}",
                                  headers={"HX-Request": "true"})
    assert status == 200 and "3 record(s)" in body
    assert "&quot;temperature&quot;: 21.5" in body  # pretty JSON
    assert "00 ff 10" in body and "plain words" in body and "· json" in body
    _, _, body = console.get(f"/console/streams/browse/records?{query.replace('auto', 'hex')}")
    assert "7b 22 74 65" in body and "<!DOCTYPE html>" in body  # a page without htmx
    status, _, body = console.get("/console/streams/browse/records?shard=shardId-000000000000"
                                  f"&position=AFTER_SEQUENCE_NUMBER&sequence={first}",
                                  headers={"HX-Request": "true"})
    assert "2 record(s)" in body and "temperature" not in body
    _, _, body = console.get("/console/streams/browse/records?shard=shardId-000000000000"
                             "&position=LATEST", headers={"HX-Request": "true"})
    assert "0 record(s)" in body and 'id="next-page"' in body
    an_hour_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    _, _, body = console.get("/console/streams/browse/records?shard=shardId-000000000000"
                             f"&position=AT_TIMESTAMP&timestamp={an_hour_ago}",
                             headers={"HX-Request": "true"})
    assert "3 record(s)" in body


def test_record_browser_refuses_bad_positions_with_the_apis_words(console, kinesis):
    kinesis.create_stream(StreamName="positions", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="positions",
                                             WaiterConfig={"Delay": 0.2})
    base = "/console/streams/positions/records?shard=shardId-000000000000"
    status, _, body = console.get(f"{base}&position=SOMEWHERE",
                                  headers={"HX-Request": "true"})
    assert status == 400 and "position &#x27;SOMEWHERE&#x27; must be one of" in body
    status, _, body = console.get(f"{base}&position=AT_TIMESTAMP&timestamp=32503680000",
                                  headers={"HX-Request": "true"})
    assert status == 400 and "InvalidArgumentException" in body
    with pytest.raises(kinesis.exceptions.InvalidArgumentException) as refused:
        kinesis.get_shard_iterator(StreamName="positions", ShardId="shardId-000000000000",
                                   ShardIteratorType="AT_TIMESTAMP",
                                   Timestamp=32503680000)  # the API says the same
    words = refused.value.response["Error"]["Message"].split("currentTimestampInMillis:")[0]
    assert words in body
    status, _, body = console.get(f"{base}&position=TRIM_HORIZON&limit=0",
                                  headers={"HX-Request": "true"})
    assert status == 400 and "from 1 to 500" in body
    status, _, body = console.get("/console/streams/positions/records?shard=shardId-9"
                                  "&position=TRIM_HORIZON", headers={"HX-Request": "true"})
    assert status in (400, 404) and "ResourceNotFoundException" in body


def test_split_merge_and_delete_with_confirmation(console, kinesis):
    kinesis.create_stream(StreamName="reshard", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="reshard", WaiterConfig={"Delay": 0.2})
    status, _, body = console.htmx("/console/streams/reshard/split", {
        "shard": "shardId-000000000000", "new_starting_hash_key": "1"})
    assert status == 400 and "InvalidArgumentException" in body
    assert len(shards_of(kinesis, "reshard")) == 1  # nothing changed
    status, _, body = console.htmx("/console/streams/reshard/split", {
        "shard": "shardId-000000000000", "new_starting_hash_key": ""})
    assert status == 200 and f"split at hash key {2**127}" in body
    # the split takes effect when the stream's UPDATING ends, as on AWS
    kinesis.get_waiter("stream_exists").wait(StreamName="reshard", WaiterConfig={"Delay": 0.2})
    shards = shards_of(kinesis, "reshard")
    assert [s["HashKeyRange"]["StartingHashKey"] for s in shards[1:]] == ["0", str(2**127)]
    status, _, body = console.htmx("/console/streams/reshard/merge", {
        "shard": "shardId-000000000001", "adjacent": "shardId-000000000002"})
    assert status == 200 and "merged" in body
    kinesis.get_waiter("stream_exists").wait(StreamName="reshard", WaiterConfig={"Delay": 0.2})
    open_shards = [s for s in shards_of(kinesis, "reshard")
                   if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
    assert [s["ShardId"] for s in open_shards] == ["shardId-000000000003"]

    status, _, body = console.htmx("/console/streams/reshard/delete", {"confirm": "reshar"})
    assert status == 400 and "nothing was deleted" in body
    assert "reshard" in kinesis.list_streams()["StreamNames"]
    status, headers, _ = console.htmx("/console/streams/reshard/delete", {"confirm": "reshard"})
    assert status == 200 and headers["HX-Redirect"] == "/console/streams"
    wait_for(lambda: "reshard" not in kinesis.list_streams()["StreamNames"],
             "the stream to be deleted", 30)


def test_stream_charts_count_records_in_and_out_per_shard(console, kinesis):
    kinesis.create_stream(StreamName="counted", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="counted", WaiterConfig={"Delay": 0.2})
    console.get("/console/streams/counted")  # starts the sampler (if no page did yet)
    kinesis.put_records(StreamName="counted", Records=[
        {"Data": b"x" * 100, "PartitionKey": str(i)} for i in range(50)])

    def chart(name: str) -> dict:
        body = console.get("/console/streams/counted?part=live")[2]
        raw = body.split(f'id="chart-{name}"')[1].split(
            '<script type="application/json">')[1].split("</script>")[0]
        return json.loads(raw)

    def counted():
        spec = chart("records_in")
        times = spec["x"]
        if len(times) < 2:
            return None
        # rate x the time it was measured over (the first interval: as long as the next)
        spans = [times[1] - times[0]] + [b - a for a, b in zip(times, times[1:], strict=False)]
        totals = {s["label"]: sum(v * dt for v, dt in zip(s["values"], spans, strict=True) if v)
                  for s in spec["series"]}
        return totals if sum(totals.values()) >= 45 else None

    totals = wait_for(counted, "the chart to count the 50 records", 60)
    assert set(totals) == {"shardId-000000000000", "shardId-000000000001"}
    assert 45 <= sum(totals.values()) <= 55  # rates over sampling intervals of ~2 s
    bytes_in = chart("bytes_in")
    assert bytes_in["unit"] == "B/s" and max(max(s["values"] or [0]) for s in
                                             bytes_in["series"]) > 0


@pytest.fixture(scope="module")
def model(server, tmp_path_factory):
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("console-model")
    X = np.random.default_rng(1).normal(size=(50, 3))
    joblib.dump(LinearRegression().fit(X, X @ [1.0, 2.0, 3.0]), root / "model.joblib")
    upload = server.request("/api/v1/models/uploads?filename=model.joblib",
                            data=(root / "model.joblib").read_bytes(), method="POST")
    source = json.loads(urllib.request.urlopen(upload).read())["source"]
    rest(server, "POST", "/api/v1/models/groups", {"name": "prices"})
    for _ in range(2):
        rest(server, "POST", "/api/v1/models/groups/prices/versions",
             {"source": source, "trust": True, "customer_metadata": {"owner": "ml-team"}})
    return "prices"


def test_approve_reject_and_read_a_versions_metadata(console, server, model):
    status, _, body = console.htmx(f"/console/models/{model}/versions/1/approval",
                                   {"approval_status": "Approved"})
    assert status == 200 and "prices:1 is now Approved" in body
    status, _, _ = console.htmx(f"/console/models/{model}/versions/2/approval",
                                {"approval_status": "Rejected"})
    assert status == 200
    versions = rest(server, "GET", f"/api/v1/models/groups/{model}/versions")["versions"]
    assert {v["version"]: v["approval_status"] for v in versions} == {1: "Approved",
                                                                     2: "Rejected"}
    status, _, body = console.htmx(f"/console/models/{model}/versions/1/approval",
                                   {"approval_status": "Maybe"})
    assert status == 400 and "Maybe" in body
    assert rest(server, "GET", f"/api/v1/models/groups/{model}/versions/1")[
        "approval_status"] == "Approved"
    status, _, body = console.get(f"/console/models/{model}?part=version&version=1",
                                  headers={"HX-Request": "true"})
    assert status == 200 and "ml-team" in body and "Approved" in body


def test_invoke_an_endpoint_and_change_its_weights_from_the_page(console, server, model):
    rest(server, "POST", "/api/v1/endpoints", {"name": "prices-live", "variants": [
        {"variant_name": "a", "model": f"{model}:1", "weight": 1.0},
        {"variant_name": "b", "model": f"{model}:1", "weight": 1.0}]})
    wait_for(lambda: rest(server, "GET", "/api/v1/endpoints/prices-live")["status"]
             == "InService", "the endpoint to be InService")
    status, _, body = console.htmx("/console/endpoints/prices-live/invoke", {
        "content_type": "text/csv", "body": "1,2,3", "variant": "b"})
    assert status == 200 and "<b>b</b> answered" in body
    answer = json.loads(body.split("<pre>")[1].split("</pre>")[0])
    assert answer == [pytest.approx(14.0)]  # 1*1 + 2*2 + 3*3
    status, _, body = console.htmx("/console/endpoints/prices-live/invoke", {
        "content_type": "text/csv", "body": "1,2,3", "variant": "c"})
    assert status == 400 and "target variant" in body
    status, _, body = console.htmx("/console/endpoints/prices-live/weights", {
        "weight.a": "3", "weight.b": "1", "workers.a": "1", "workers.b": "1"})
    assert status == 200, body
    weights = {v["variant_name"]: v["current_weight"] for v in
               rest(server, "GET", "/api/v1/endpoints/prices-live")["variants"]}
    assert weights == {"a": 3.0, "b": 1.0}
    status, _, body = console.htmx("/console/endpoints/prices-live/weights",
                                   {"weight.a": "heavy"})
    assert status == 400 and "heavy" in body
    _, _, page = console.get("/console/endpoints/prices-live?part=live")
    assert 'id="chart-latency"' in page


def test_snapshot_start_stop_restore_and_scale_an_application(console, server, kinesis):
    kinesis.create_stream(StreamName="actions-input", ShardCount=1)
    rest(server, "POST", "/api/v1/applications", {
        "name": "worker", "code": {"filename": "job.py", "text": JOB},
        "checkpoint_interval": 1.0})
    base = "/console/applications/worker"
    status, _, body = console.htmx(f"{base}/snapshots", {"snapshot": "early"})
    assert status == 409 and "no checkpoint" in body
    status, _, body = console.htmx(f"{base}/start", {"restore": "LATEST", "snapshot": ""})
    assert status == 200 and "started from its latest checkpoint" in body
    status, _, body = console.htmx(f"{base}/start", {"restore": "LATEST"})
    assert status == 409 and "not READY" in body

    def checkpointed():
        runtime = rest(server, "GET", "/api/v1/applications/worker").get("runtime") or {}
        return runtime.get("checkpoints", 0) >= 1

    wait_for(checkpointed, "a checkpoint")
    status, _, body = console.htmx(f"{base}/snapshots", {"snapshot": "first"})
    assert status == 200 and "snapshot first of worker taken" in body
    status, _, body = console.htmx(f"{base}/scale", {"parallelism": "0"})
    assert status == 400 and "parallelism" in body
    status, _, body = console.htmx(f"{base}/scale", {"parallelism": "2"})
    assert status == 200 and rest(server, "GET", "/api/v1/applications/worker")[
        "parallelism"] == 2
    status, _, body = console.htmx(f"{base}/stop", {"snapshot": "1"})
    assert status == 200 and rest(server, "GET", "/api/v1/applications/worker")[
        "status"] == "READY"
    status, _, body = console.htmx(f"{base}/start", {"restore": "SNAPSHOT", "snapshot": ""})
    assert status == 400 and "choose the snapshot" in body
    status, _, body = console.htmx(f"{base}/start", {"restore": "SNAPSHOT",
                                                     "snapshot": "first"})
    assert status == 200 and "from snapshot first" in body
    _, _, page = console.get(f"{base}?part=live")
    assert "first" in page and 'id="chart-throughput"' in page
    console.htmx(f"{base}/stop", {"force": "1"})




def app_names(server) -> list[str]:
    return sorted(a["name"] for a in rest(server, "GET", "/api/v1/applications")[
        "applications"])


def test_creating_an_application_from_the_form_uploads_its_code_and_lists_it(console,
                                                                            server):
    _, _, index = console.get("/console/applications")
    assert 'enctype="multipart/form-data"' in index  # no local Flink cluster: it says how
    assert f"forestream flink start --data-dir {server.data_dir.resolve()}" in index
    status, headers, body = console.multipart("/console/applications", {
        "name": "made-in-console", "code_text": "", "runtime": "embedded",
        "flink_url": "http://left.in.the.hidden.box:8081", "parallelism": "2",
        "checkpoint_interval": "2.5", "description": "from the form",
        "properties": "input.stream=actions-input\n\n# a comment\ninput.start = TRIM_HORIZON"},
        {"code_file": ("job.py", JOB.encode())})
    assert status == 200, body
    assert headers["HX-Redirect"] == "/console/applications/made-in-console"
    assert "application made-in-console created (embedded runtime)" in body
    app = rest(server, "GET", "/api/v1/applications/made-in-console")
    assert (app["status"], app["runtime_environment"], app["parallelism"],
            app["checkpoint_interval"], app["description"]) == (
        "READY", "embedded", 2, 2.5, "from the form")
    assert app["properties"] == {"input": {"stream": "actions-input",
                                           "start": "TRIM_HORIZON"}}
    assert app["code_source"] == "uploaded (1 file, entry job.py)"
    _, _, listing = console.get("/console/applications?part=live")
    assert 'href="/console/applications/made-in-console"' in listing
    _, _, page = console.get("/console/applications/made-in-console")
    assert "from the form" in page and "uploaded (1 file, entry job.py)" in page

    # pasted code (a browser's CRLF lines), started at once; a plain post comes back
    # to the application's page
    status, headers, _ = console.multipart("/console/applications", {
        "name": "pasted-and-started", "code_text": JOB.replace("\n", "\r\n"),
        "runtime": "embedded", "start": "1"}, htmx=False)
    assert status == 303 and headers["Location"] == "/console/applications/pasted-and-started"
    app = rest(server, "GET", "/api/v1/applications/pasted-and-started")
    assert app["status"] == "RUNNING" and app["entry"] == "job.py"
    console.htmx("/console/applications/pasted-and-started/stop", {"force": "1"})


@pytest.mark.parametrize("form, files, status, words", [
    ({"name": ""}, {}, 400, "give the application a name (1-128 characters of letters"),
    ({"name": "bad name!"}, {}, 400,
     "application name &#x27;bad name!&#x27; must be 1-128 characters of letters"),
    ({"name": "no-code"}, {}, 400, "give the job&#x27;s code: choose a .py file or paste"),
    ({"name": "twice", "code_text": JOB}, {"code_file": ("job.py", JOB.encode())}, 400,
     "give the code once: a file (job.py) was chosen and code was pasted too"),
    ({"name": "not-python", "code_text": ""}, {"code_file": ("job.txt", JOB.encode())}, 400,
     "code filename &#x27;job.txt&#x27; must be a plain file name ending in .py"),
    ({"name": "typo", "code_text": "def build(env, properties)\n    pass\n"}, {}, 400,
     "code job.py does not compile: expected &#x27;:&#x27; (line 1); nothing was created"),
    ({"name": "binary"}, {"code_file": ("job.py", b"\xff\xfe\x00")}, 400,
     "code file &#x27;job.py&#x27; is not UTF-8 text"),
    ({"name": "p0", "code_text": JOB, "parallelism": "0"}, {}, 400,
     "parallelism must be an integer in [1, 64], got 0"),
    ({"name": "p65", "code_text": JOB, "parallelism": "65"}, {}, 400,
     "parallelism must be an integer in [1, 64], got 65"),
    ({"name": "pmany", "code_text": JOB, "parallelism": "many"}, {}, 400,
     "parallelism &#x27;many&#x27; must be a whole number from 1 to 64"),
    ({"name": "ck", "code_text": JOB, "checkpoint_interval": "soon"}, {}, 400,
     "checkpoint_interval &#x27;soon&#x27; must be a number of seconds from 0.1 to 86400"),
    ({"name": "ck0", "code_text": JOB, "checkpoint_interval": "0"}, {}, 400,
     "checkpoint_interval must be in [0.1, 86400] seconds, got 0.0"),
    ({"name": "props", "code_text": JOB, "properties": "stream=x"}, {}, 400,
     "properties line 1 &#x27;stream=x&#x27;: expected GROUP.KEY=VALUE"),
    ({"name": "spark", "code_text": JOB, "runtime": "spark"}, {}, 400,
     "runtime &#x27;spark&#x27; must be one of [&#x27;embedded&#x27;, &#x27;flink&#x27;]"),
    ({"name": "bad-url", "code_text": JOB, "runtime": "flink", "flink_url": "ftp://x"}, {},
     400, "flink_url &#x27;ftp://x&#x27; must be the http(s) URL of a Flink cluster"),
    ({"name": "taken", "code_text": JOB}, {}, 409, "application taken already exists"),
    ({"name": "huge", "code_text": "#" * 70_000}, {}, 413,
     "this route accepts at most 65536"),  # the console's body limit (the CLI has more)
])
def test_create_form_refuses_bad_input_naming_it_and_stores_nothing(console, server, form,
                                                                    files, status, words):
    if form["name"] == "taken":
        rest(server, "POST", "/api/v1/applications", {
            "name": "taken", "code": {"filename": "job.py", "text": JOB}})
    before = app_names(server)
    folders = sorted(p.name for p in (server.data_dir / "apps").iterdir())
    answer, _, body = console.multipart("/console/applications", form, files)
    assert answer == status and words in body, body
    assert app_names(server) == before
    assert sorted(p.name for p in (server.data_dir / "apps").iterdir()) == folders


def test_flink_create_refuses_an_untranslatable_job_with_the_apis_reason(console, server):
    status, _, body = console.multipart("/console/applications", {
        "name": "cep-on-flink", "code_text": CEP_JOB, "runtime": "flink",
        "flink_url": "http://127.0.0.1:9"})
    reason = ("this job cannot run on Flink: 2-pattern (pattern): complex event patterns "
              "have no PyFlink counterpart")
    assert status == 400 and reason in body
    with pytest.raises(urllib.error.HTTPError) as refused:  # the REST API says the same
        rest(server, "POST", "/api/v1/applications", {
            "name": "cep-on-flink", "runtime": "flink", "flink_url": "http://127.0.0.1:9",
            "code": {"filename": "job.py", "text": CEP_JOB}})
    assert refused.value.code == 400 and reason in json.loads(refused.value.read())["detail"]
    assert "cep-on-flink" not in app_names(server)
    assert not (server.data_dir / "apps" / "cep-on-flink").exists()

    # a job Flink can run is planned the same way and kept, no cluster needed to create
    status, headers, body = console.multipart("/console/applications", {
        "name": "counts-on-flink", "code_text": JOB, "runtime": "flink",
        "flink_url": "http://127.0.0.1:9/", "parallelism": "2"})
    assert status == 200 and "created (flink runtime)" in body, body
    app = rest(server, "GET", "/api/v1/applications/counts-on-flink")
    assert app["runtime_environment"] == "flink" and app["parallelism"] == 2
    assert app["flink"]["url"] == "http://127.0.0.1:9"
    assert [step["uid"] for step in app["flink"]["plan"]] == ["0-kinesis", "1-map"]
    rest(server, "DELETE", "/api/v1/applications/counts-on-flink")


def test_create_form_needs_the_console_token(console, server):
    status, _, body = console.multipart("/console/applications", {
        "name": "forged-app", "code_text": JOB}, csrf=False)
    assert status == 403 and "CSRF" in body
    assert "forged-app" not in app_names(server)
