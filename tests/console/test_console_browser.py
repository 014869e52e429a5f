"""The console walked in a real browser: Debian's Chromium driven by Playwright against a
real server. Each flow clicks what an operator clicks and checks what appears; a
screenshot of each step is kept under ``test-artifacts/console/`` (git-ignored).

``make test`` installs Chromium (as root, from Debian) and the console's assets (npm);
where either is missing these tests skip, saying which command brings it.
"""

from __future__ import annotations

import json
import math
import shutil
import time
import urllib.request
from pathlib import Path

import joblib
import numpy as np
import pytest
from console_testkit import CEP_JOB, rest, wait_for

from server_support import ServerProcess

boto3 = pytest.importorskip("boto3")
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="the playwright package: pip install -e '.[test]'")
from botocore.config import Config  # noqa: E402

expect = sync_api.expect

pytestmark = [pytest.mark.service, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "console"
VENDOR = ROOT / "src" / "forestream" / "server" / "console" / "static" / "vendor"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]
#: generous: a loaded CI machine took over 60 s to start an application; each wait ends
#: as soon as what it waits for appears
WAIT_MS = 180_000
RCF_JOB = '''
from forestream.processing import kinesis_client


def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("readings", client)
        .key_by(lambda e: e["sensor"])
        .thresholded_random_cut_forest(["value"], shingle_size=4)
        .sink_to_kinesis("graded", client, partition_key=lambda e: e["sensor"]))
'''

if CHROMIUM is None:
    pytest.skip("Debian's Chromium is not installed (make test installs it as root: "
                "apt-get install chromium)", allow_module_level=True)
if not (VENDOR / "htmx.min.js").is_file():
    pytest.skip("the console's assets are not built: make console-assets (needs npm)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("console-browser") / "data").start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def kinesis(server):
    return boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def browser():
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, server):
    """A signed-in tab (the link the server prints sets the console's cookie)."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(WAIT_MS)
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    # what the browser refused (the Content-Security-Policy included) shows up here;
    # answers of 4xx are the tests' own bad input, shown on the page
    tab.on("console", lambda message: errors.append(f"{message.text} {message.location}")
           if message.type == "error" and "Failed to load resource" not in message.text
           else None)
    tab.goto(f"{server.url}/?token={server.token}")
    assert tab.url == f"{server.url}/"
    yield tab
    context.close()
    assert errors == []  # no script failed on any page


def shot(tab, name: str) -> None:
    tab.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_stream_create_put_browse_chart_split_and_delete(page, server, kinesis):
    shot(page, "overview")
    page.click("header nav >> text=Streams")
    page.wait_for_url("**/console/streams")
    page.fill('form[action="/console/streams"] input[name="name"]', "clicks")
    page.fill('form[action="/console/streams"] input[name="shards"]', "2")
    page.click("button:text-is('Create stream')")
    page.wait_for_url("**/console/streams/clicks")
    # CREATING for a moment, as on AWS: the page shows ACTIVE, and forms without the note
    # that it takes no records yet, by itself (each answer is written to be waited for)
    expect(page.locator("#live dl dd").first).to_have_text("ACTIVE", timeout=WAIT_MS)
    expect(page.locator("#settling")).to_have_count(0, timeout=WAIT_MS)
    assert len(kinesis.list_shards(StreamName="clicks")["Shards"]) == 2

    page.fill('textarea[name="data"]', '{"temperature": 21.5, "room": "lab"}')
    page.click("button:text-is('Put record')")
    page.wait_for_selector("#flash >> text=/put on shardId-00000000000[01]/")
    shard = page.inner_text("#flash").split(" put on ")[1].split(" ")[0]
    page.select_option('#browse select[name="shard"]', shard)  # from TRIM_HORIZON
    page.click("#browse button:text-is('Read')")
    page.wait_for_selector("#records >> text=temperature")
    assert "json" in page.inner_text("#records")
    for _ in range(20):  # traffic for the charts
        kinesis.put_record(StreamName="clicks", Data=b"tick", PartitionKey="k")
    page.wait_for_selector('#chart-records_in[data-drawn="chart"] canvas')
    shot(page, "stream-page")

    page.click("button:text-is('Split shard')")  # the first open shard, at its middle
    page.wait_for_selector("#flash >> text=split at hash key")
    # the split takes effect when the stream's UPDATING ends: the page then shows the new
    # shards, and the forms offer the three open ones, without a reload
    page.wait_for_selector("#live >> text=shardId-000000000003")
    expect(page.locator('#forms form[action$="/split"] option')).to_have_count(
        3, timeout=WAIT_MS)
    expect(page.locator("#live dl dd").first).to_have_text("ACTIVE", timeout=WAIT_MS)
    expect(page.locator("#settling")).to_have_count(0, timeout=WAIT_MS)

    page.fill('input[name="confirm"]', "click")  # a typo: refused, nothing deleted
    page.click("button:text-is('Delete stream')")
    page.wait_for_selector("#flash >> text=nothing was deleted")
    page.fill('input[name="confirm"]', "clicks")
    page.click("button:text-is('Delete stream')")
    page.wait_for_url("**/console/streams")
    wait_for(lambda: "clicks" not in kinesis.list_streams()["StreamNames"], "the delete")
    shot(page, "streams-index")


def test_model_approval_metadata_and_endpoint_invocation(page, server, tmp_path):
    from sklearn.linear_model import LinearRegression

    X = np.random.default_rng(2).normal(size=(40, 3))
    joblib.dump(LinearRegression().fit(X, X @ [1.0, 2.0, 3.0]), tmp_path / "m.joblib")
    upload = server.request("/api/v1/models/uploads?filename=m.joblib",
                            data=(tmp_path / "m.joblib").read_bytes(), method="POST")
    source = json.loads(urllib.request.urlopen(upload).read())["source"]
    rest(server, "POST", "/api/v1/models/groups", {"name": "demand"})
    rest(server, "POST", "/api/v1/models/groups/demand/versions",
         {"source": source, "trust": True, "customer_metadata": {"owner": "forecasting"}})

    page.click("header nav >> text=Models")
    page.click("main a:text-is('demand')")
    page.wait_for_url("**/console/models/demand")
    page.click("#live >> button:has-text('Approve')")
    page.wait_for_selector("#flash >> text=demand:1 is now Approved")
    page.wait_for_selector("#live .badge.good >> text=Approved")
    page.click("#live td >> a:text-is('1')")
    page.wait_for_selector("#version-detail >> text=forecasting")
    shot(page, "model-group")

    rest(server, "POST", "/api/v1/endpoints", {"name": "demand-live", "variants": [
        {"variant_name": "blue", "model": "demand:1", "weight": 1.0}]})
    wait_for(lambda: rest(server, "GET", "/api/v1/endpoints/demand-live")["status"]
             == "InService", "the endpoint")
    page.click("header nav >> text=Endpoints")
    page.click("main a:text-is('demand-live')")
    page.fill('textarea[name="body"]', "1,2,3")
    page.click("button:text-is('Invoke')")
    page.wait_for_selector("#invoke-result >> text=blue answered")
    answer = json.loads(page.inner_text("#invoke-result").splitlines()[-1])
    assert answer == [pytest.approx(14.0)]  # 1*1 + 2*2 + 3*3
    for _ in range(5):
        page.click("button:text-is('Invoke')")
        time.sleep(0.3)
    page.wait_for_selector('#chart-latency[data-drawn="chart"] canvas')
    shot(page, "endpoint")


def test_application_actions_and_anomalies_over_input(page, server, kinesis):
    for name in ("readings", "graded"):
        kinesis.create_stream(StreamName=name, ShardCount=1)
    for name in ("readings", "graded"):  # CREATING takes no records, as on AWS
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.2})
    rest(server, "POST", "/api/v1/applications", {
        "name": "detector", "code": {"filename": "job.py", "text": RCF_JOB},
        "checkpoint_interval": 2.0})
    spike = 400
    values = [10 + math.sin(i / 5) for i in range(500)]
    values[spike] = 60.0
    for start in range(0, len(values), 250):
        kinesis.put_records(StreamName="readings", Records=[
            {"Data": json.dumps({"sensor": "s1", "i": i, "value": v}).encode(),
             "PartitionKey": "s1"} for i, v in enumerate(values[start:start + 250], start)])

    page.click("header nav >> text=Applications")
    page.click("main a:text-is('detector')")
    page.click("#forms button:text-is('Start')")
    page.wait_for_selector("#flash >> text=started from its latest checkpoint")
    page.wait_for_selector("#live .badge.good >> text=RUNNING")

    def graded():
        iterator = kinesis.get_shard_iterator(StreamName="graded", ShardId="shardId-000000000000",
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        out = []
        while iterator:
            answer = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            out += [json.loads(r["Data"]) for r in answer["Records"]]
            if not answer["Records"]:
                break
            iterator = answer["NextShardIterator"]
        return out if len(out) == len(values) else None

    records = wait_for(graded, "every reading to be graded", 180)
    anomalies = [r for r in records if r["ANOMALY_GRADE"] >= 0.5]
    page.click("#anomaly-form button:text-is('Plot')")
    page.wait_for_selector("#anomalies >> text=anomalies in the last 15 minutes")
    shown = page.inner_text("#anomalies")
    assert f"{len(anomalies)} anomalies in the last 15 minutes" in shown
    assert "readings" in shown and "graded" in shown
    page.wait_for_selector('#chart-anomalies[data-drawn="chart"] canvas')
    spec = json.loads(page.inner_text('#chart-anomalies script[type="application/json"]'))
    marked = [v for v in spec["series"][1]["values"] if v is not None]
    assert sorted(marked) == sorted(r["value"] for r in anomalies)
    assert any(r["i"] == spike for r in anomalies)  # the detector saw the spike
    page.wait_for_selector('#chart-throughput[data-drawn="chart"] canvas')
    shot(page, "application-anomalies")

    page.fill('#forms form[action$="/snapshots"] input[name="snapshot"]', "after-spike")
    page.click("button:text-is('Take snapshot')")
    page.wait_for_selector("#flash >> text=snapshot after-spike of detector taken")
    page.click("#forms button:text-is('Stop')")
    page.wait_for_selector("#flash >> text=application detector stopped")
    page.wait_for_selector("#live .badge >> text=READY")
    assert rest(server, "GET", "/api/v1/applications/detector")["status"] == "READY"
    shot(page, "application-stopped")


def test_create_an_application_from_the_form_then_see_it_listed_and_described(page, server):
    job = (b"from forestream.processing import kinesis_client\n\n\n"
           b"def build(env, properties):\n"
           b"    env.from_kinesis(properties['input']['stream'], kinesis_client()).print()\n")
    page.click("header nav >> text=Applications")
    page.wait_for_url("**/console/applications")
    form = page.locator('form[action="/console/applications"]')
    assert not form.locator('input[name="flink_url"]').is_visible()  # embedded by default
    # Flink: the URL box appears; a job Flink cannot run is refused, saying why
    form.locator('select[name="runtime"]').select_option("flink")
    form.locator('input[name="flink_url"]').wait_for(state="visible")
    form.locator('input[name="name"]').fill("cep-here")
    form.locator('input[name="flink_url"]').fill("http://127.0.0.1:9")
    form.locator('textarea[name="code_text"]').fill(CEP_JOB)
    page.click("button:text-is('Create application')")
    page.wait_for_selector("#create-result >> text=/cannot run on Flink: .*pattern/")
    shot(page, "application-create-refused")
    # embedded, with the code uploaded as a file
    form.locator('select[name="runtime"]').select_option("embedded")
    form.locator('textarea[name="code_text"]').fill("")
    form.locator('input[name="name"]').fill("uploaded")
    form.locator('input[name="code_file"]').set_input_files(
        {"name": "printer.py", "mimeType": "text/x-python", "buffer": job})
    form.locator('input[name="parallelism"]').fill("2")
    form.locator('input[name="description"]').fill("made in the browser")
    form.locator('textarea[name="properties"]').fill("input.stream=readings")
    page.click("button:text-is('Create application')")
    page.wait_for_url("**/console/applications/uploaded")
    facts = page.inner_text("#live dl")
    assert "made in the browser" in facts and "uploaded (1 file, entry printer.py)" in facts
    assert "readings" in page.inner_text("#live")  # its runtime properties
    shot(page, "application-created")
    page.click("header nav >> text=Applications")
    page.wait_for_selector("#live a:text-is('uploaded')")
    assert "cep-here" not in page.inner_text("#live")
    app = rest(server, "GET", "/api/v1/applications/uploaded")
    assert (app["status"], app["parallelism"], app["properties"]) == (
        "READY", 2, {"input": {"stream": "readings"}})


def test_forms_work_without_scripts(browser, server, kinesis):
    context = browser.new_context(java_script_enabled=False)
    try:
        tab = context.new_page()
        tab.set_default_timeout(WAIT_MS)
        tab.goto(f"{server.url}/console/streams?token={server.token}")
        tab.fill('form[action="/console/streams"] input[name="name"]', "plain-form")
        tab.click("button:text-is('Create stream')")
        tab.wait_for_url("**/console/streams/plain-form")  # the redirect after the post
        assert "plain-form" in kinesis.list_streams()["StreamNames"]
        tab.fill('input[name="confirm"]', "plain-form")
        tab.click("button:text-is('Delete stream')")
        tab.wait_for_url("**/console/streams")
        wait_for(lambda: "plain-form" not in kinesis.list_streams()["StreamNames"],
                 "the delete")
    finally:
        context.close()
