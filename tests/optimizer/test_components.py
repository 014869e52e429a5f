"""forestream's own components, sampled from a real ``forestream server`` process."""

from __future__ import annotations

import json
import time
import urllib.request

import numpy as np
import pytest

from forestream.optimizer.components import ComponentCollector, ComponentError
from forestream.optimizer.ingest import read_metrics
from forestream.optimizer.timeseries import MetricInputError
from server_support import ServerProcess

pytestmark = [pytest.mark.service]

JOB = '''
from forestream.processing import kinesis_client

def build(env, properties):
    client = kinesis_client()
    env.from_kinesis("events", client).filter(lambda record: False)
'''


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module (each test uses its own stream and application names):
    starting one costs seconds."""
    proc = ServerProcess(tmp_path_factory.mktemp("components") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def kinesis(server):
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    return boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))


def create_stream(kinesis, name, shards):
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})


def put(kinesis, stream, count, hash_key=None):
    records = [{"Data": json.dumps({"n": i}).encode(), "PartitionKey": f"k{i}",
                **({"ExplicitHashKey": hash_key} if hash_key else {})} for i in range(count)]
    for start in range(0, count, 500):
        kinesis.put_records(StreamName=stream, Records=records[start:start + 500])


def post_application(server, body, path=""):
    request = server.request(f"/api/v1/applications{path}", method="POST",
                                     data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def test_stream_rates_per_shard_and_shard_counts(server, kinesis, tmp_path):
    create_stream(kinesis, "orders", 2)
    create_stream(kinesis, "quiet", 3)
    collector = ComponentCollector(server.url, tmp_path / "metrics")
    assert collector.collect() == {}  # the first round only sets the baseline
    started = time.time()
    put(kinesis, "orders", 300, hash_key="0")  # every record to the first shard
    put(kinesis, "orders", 100, hash_key=str(2**127 + 1))  # and a few to the second
    time.sleep(0.2)
    rows = collector.collect()
    elapsed = time.time() - started
    orders = rows["stream/orders"]
    assert 400 / (elapsed + 1.0) < orders["records_in"] <= 400 / 0.2
    hot, cold = (rows[f"stream/orders/shardId-00000000000{i}"]["records_in"] for i in (0, 1))
    assert hot == pytest.approx(3 * cold)
    assert rows["stream/quiet"]["records_in"] == 0.0  # no traffic is zero, not unknown

    histories = {h.resource.resource_id: h for h in read_metrics(tmp_path / "metrics")}
    assert histories["stream/orders"].resource.current == {"shards": 2}
    assert histories["stream/quiet"].resource.current == {"shards": 3}
    shard = histories["stream/orders/shardId-000000000000"].resource
    assert shard.tags == {"stream": "orders", "shard": "shardId-000000000000"}
    recorded = histories["stream/orders"].metrics["records_in"]
    assert recorded[np.isfinite(recorded)][-1] == pytest.approx(orders["records_in"], rel=1e-4)
    assert [h.resource.resource_id for h in collector.histories()] == sorted(histories)


def test_resharding_shows_in_the_next_round(server, kinesis):
    create_stream(kinesis, "grow", 1)
    collector = ComponentCollector(server.url)
    collector.collect()
    kinesis.update_shard_count(StreamName="grow", TargetShardCount=2,
                               ScalingType="UNIFORM_SCALING")
    deadline = time.monotonic() + 20
    while (kinesis.describe_stream_summary(StreamName="grow")["StreamDescriptionSummary"]
           ["StreamStatus"] != "ACTIVE") and time.monotonic() < deadline:
        time.sleep(0.1)
    collector.collect()
    assert collector.resources["stream/grow"].current == {"shards": 2}


def test_applications_report_parallelism_records_and_lag(server, kinesis, tmp_path):
    create_stream(kinesis, "events", 1)
    code = tmp_path / "job.py"
    code.write_text(JOB)
    sent = {"filename": code.name, "text": JOB}
    post_application(server, {"name": "idle", "code": sent, "parallelism": 3})
    post_application(server, {"name": "reader", "code": sent})
    post_application(server, {}, "/reader/start")
    collector = ComponentCollector(server.url)
    collector.collect()
    put(kinesis, "events", 200)
    deadline = time.monotonic() + 60
    rows = {}
    while time.monotonic() < deadline:
        time.sleep(0.5)
        rows = collector.collect()
        if rows["application/reader"]["records_in"] > 0:
            break
    assert rows["application/reader"]["records_in"] > 0
    assert rows["application/reader"]["millis_behind"] >= 0
    assert collector.resources["application/idle"].current == {"parallelism": 3}
    assert collector.resources["application/reader"].kind == "application"
    assert rows["application/idle"]["records_in"] == 0.0
    assert np.isnan(rows["application/idle"]["millis_behind"])  # never ran: no lag known
    post_application(server, {"force": True, "snapshot": False}, "/reader/stop")


def test_a_server_without_endpoints_reports_none(server):
    collector = ComponentCollector(server.url)
    collector.collect()
    rows = collector.collect()
    assert not [rid for rid in rows if rid.startswith("endpoint/")]


def test_running_collector_writes_rows_on_its_own(server, kinesis, tmp_path):
    create_stream(kinesis, "ticks", 1)
    path = tmp_path / "stream_ticks.csv"
    with ComponentCollector(server.url, tmp_path, interval_seconds=0.2) as collector:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and (
                not path.exists() or len(path.read_text().splitlines()) < 3):
            put(kinesis, "ticks", 10)
            time.sleep(0.1)
    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp,resource_id,records_in,bytes_in,records_out,bytes_out"
    assert len(lines) >= 3 and not collector.running


def test_an_unreachable_server_is_a_clear_error():
    collector = ComponentCollector("http://127.0.0.1:9", timeout=2)
    with pytest.raises(ComponentError, match="127.0.0.1:9"):
        collector.collect()
    with pytest.raises(MetricInputError, match="interval_seconds must be > 0"):
        ComponentCollector("http://127.0.0.1:9", interval_seconds=0)
