"""GetRecords and PutRecords on the wire (the connectors' hot path) against a real server:
the same records, sequence numbers and errors as boto3 sees, signed calls accepted by a
server that checks signatures and refused with a wrong secret, broken connections and
throttling retried, and boto3 kept for AWS and HTTPS endpoints."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from forestream.processing.kinesis_io import ClientKinesis, KinesisSink, KinesisSource
from forestream.processing.kinesis_wire import KinesisCallError, KinesisWire
from forestream.processing.records import Record
from server_support import ServerProcess

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

pytestmark = pytest.mark.service


def client(url: str, key: str = "AKIDWIRE", secret: str = "wire-secret", attempts: int = 2):
    return boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": attempts, "mode": "standard"}))


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory):
    """A server that checks Signature V4 with its own key pair."""
    server = ServerProcess(tmp_path_factory.mktemp("wire"), env={
        "FORESTREAM_ACCESS_KEY_ID": "AKIDWIRE", "FORESTREAM_SECRET_ACCESS_KEY": "wire-secret"})
    server.start()
    kinesis = client(server.url)
    kinesis.create_stream(StreamName="w", ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName="w", WaiterConfig={"Delay": 0.1})
    yield server
    server.stop()


def test_puts_and_gets_the_same_records_boto3_sees(signed_server):
    kinesis = client(signed_server.url)
    api = ClientKinesis(kinesis)
    assert api.wire is not None
    payloads = [json.dumps({"n": i}).encode() for i in range(50)] + [bytes(range(256))]
    out = api.put_records("w", [{"Data": d, "PartitionKey": f"k{i % 7}"}
                                for i, d in enumerate(payloads)])
    assert out["FailedRecordCount"] == 0 and len(out["Records"]) == len(payloads)
    by_wire, by_boto3 = [], []
    for shard in ("shardId-000000000000", "shardId-000000000001"):
        iterator = api.iterator("w", shard, "TRIM_HORIZON")
        page = api.get_records(iterator, 1000)
        reference = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        assert [r["SequenceNumber"] for r in page["Records"]] == \
            [r["SequenceNumber"] for r in reference["Records"]]
        assert [r["ApproximateArrivalTimestamp"] for r in page["Records"]] == pytest.approx(
            [r["ApproximateArrivalTimestamp"].timestamp() for r in reference["Records"]])
        assert page["NextShardIterator"] and "MillisBehindLatest" in page
        by_wire += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
        by_boto3 += [(r["PartitionKey"], r["Data"]) for r in reference["Records"]]
    assert sorted(by_wire) == sorted(by_boto3)
    assert sorted(d for _, d in by_wire) == sorted(payloads)


def test_a_wrong_secret_is_refused_with_the_servers_error(signed_server):
    api = ClientKinesis(client(signed_server.url, secret="not-the-secret"))
    with pytest.raises(KinesisCallError) as refused:
        api.put_records("w", [{"Data": b"x", "PartitionKey": "k"}])
    assert refused.value.code == "UnrecognizedClientException" or \
        "Signature" in refused.value.code, refused.value
    assert refused.value.status in (400, 403)


def test_errors_carry_the_aws_code_the_source_reacts_to(signed_server):
    api = ClientKinesis(client(signed_server.url))
    with pytest.raises(KinesisCallError) as bad:
        api.get_records("not-an-iterator", 10)
    assert bad.value.code == "InvalidArgumentException" and bad.value.operation == "GetRecords"
    with pytest.raises(KinesisCallError) as missing:
        api.put_records("no-such-stream", [{"Data": b"x", "PartitionKey": "k"}])
    assert missing.value.code == "ResourceNotFoundException"
    assert "no-such-stream" in str(missing.value)


def test_the_connectors_read_and_write_through_it(signed_server):
    kinesis = client(signed_server.url)
    kinesis.create_stream(StreamName="w2", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="w2", WaiterConfig={"Delay": 0.1})
    sink = KinesisSink("w2", kinesis)
    sink.open()
    sink.write([Record({"i": i}, 0.0, None, f"r{i}") for i in range(30)])
    source = KinesisSource("w2", kinesis)
    source.open()
    assert isinstance(source.api, ClientKinesis) and source.api.wire is not None
    values = []
    for _ in range(20):
        values += [r.value for _, r in source.poll(100)]
        if len(values) >= 30:
            break
    assert [v["i"] for v in values] == list(range(30))
    assert {v["_record_id"] for v in values} == {f"r{i}" for i in range(30)}


def test_a_restarted_server_is_reached_again_on_a_new_connection(tmp_path):
    server = ServerProcess(tmp_path).start()
    try:
        kinesis = client(server.url, attempts=4)
        kinesis.create_stream(StreamName="r", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="r", WaiterConfig={"Delay": 0.1})
        wire = KinesisWire.for_client(kinesis)
        assert wire is not None and wire.max_attempts == 5  # boto3: retries + the first try
        wire.put_records("r", [{"Data": b"a", "PartitionKey": "k"}])
        server.stop()  # the kept connection dies with it
        _restart(server)  # same data, same port
        assert wire.put_records("r", [{"Data": b"b", "PartitionKey": "k"}])[
            "FailedRecordCount"] == 0
    finally:
        server.stop()


def test_a_kept_alive_connection_the_server_closed_while_idle_is_replaced_at_once(
        signed_server):
    # one attempt only: a connection the server closed after its keep-alive timeout (5 s
    # in uvicorn) is not a failure to retry with back-off, but a new connection to open
    wire = KinesisWire(signed_server.url, "us-east-1", client(signed_server.url),
                       max_attempts=1)
    assert wire.put_records("w", [{"Data": b"before", "PartitionKey": "k"}])[
        "FailedRecordCount"] == 0
    time.sleep(6.5)  # past the server's keep-alive timeout: it closes the idle connection
    assert wire.put_records("w", [{"Data": b"after", "PartitionKey": "k"}])[
        "FailedRecordCount"] == 0


def test_sources_and_sinks_of_one_client_share_its_wire(signed_server):
    kinesis = client(signed_server.url)
    assert ClientKinesis(kinesis).wire is ClientKinesis(kinesis).wire is not None
    assert ClientKinesis(client(signed_server.url)).wire is not ClientKinesis(kinesis).wire


def _restart(server: ServerProcess) -> None:
    import subprocess

    from server_support import SCRIPT

    server.proc = subprocess.Popen([str(SCRIPT), "server", "--port", str(server.port),
                                    "--data-dir", str(server.data_dir)], env=server.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert server._wait_healthy()


class _Throttling(BaseHTTPRequestHandler):
    """Answers ProvisionedThroughputExceeded ``refusals`` times, then accepts."""

    refusals = 2
    calls = 0

    def do_POST(self):  # noqa: N802 - the http.server hook's name
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        if type(self).calls <= type(self).refusals:
            body, status = {"__type": "ProvisionedThroughputExceededException",
                            "message": "Rate exceeded for shard"}, 400
        else:
            body, status = {"FailedRecordCount": 0, "Records": [
                {"SequenceNumber": "1", "ShardId": "shardId-000000000000"}]}, 200
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def test_throttling_is_retried_as_botocore_retries_it_then_given_up():
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Throttling)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{upstream.server_address[1]}"
    try:
        _Throttling.calls, _Throttling.refusals = 0, 2
        wire = KinesisWire(url, "us-east-1", None, max_attempts=3)
        assert wire.put_records("s", [{"Data": b"x", "PartitionKey": "k"}])[
            "FailedRecordCount"] == 0
        assert _Throttling.calls == 3
        _Throttling.calls, _Throttling.refusals = 0, 10
        with pytest.raises(KinesisCallError) as throttled:
            wire.put_records("s", [{"Data": b"x", "PartitionKey": "k"}])
        assert throttled.value.code == "ProvisionedThroughputExceededException"
        assert _Throttling.calls == 3
    finally:
        upstream.shutdown()


def test_aws_and_https_endpoints_keep_boto3():
    aws = boto3.client("kinesis", region_name="eu-west-1", aws_access_key_id="a",
                       aws_secret_access_key="b")
    assert KinesisWire.for_client(aws) is None and ClientKinesis(aws).wire is None
    https = client("https://127.0.0.1:9")
    assert KinesisWire.for_client(https) is None
    with pytest.raises(ValueError, match="plain HTTP only"):
        KinesisWire("https://example.com", "us-east-1")


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzEJr//session"])
@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:4567", "http://kinesis.local",
                                      "http://[::1]:4567"])
def test_the_signature_is_the_one_botocore_computes(monkeypatch, endpoint, token):
    """The wire's own Signature V4 gives botocore's headers byte for byte (same instant,
    credentials, region, target and body), with and without a session token."""
    import datetime as dt

    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    instant = dt.datetime(2026, 12, 6, 23, 59, 58, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(botocore.auth, "get_current_datetime",
                        lambda: instant.replace(tzinfo=None))
    body = json.dumps({"ShardIterator": "AAAA/+=", "Limit": 10}).encode()
    target = "Kinesis_20131202.GetRecords"
    request = AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
        "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    botocore.auth.SigV4Auth(Credentials("AKIDWIRE", "wire-secret", token), "kinesis",
                            "eu-west-1").add_auth(request)
    wire = KinesisWire(endpoint, "eu-west-1")
    ours = wire.signer.headers(target, body, "AKIDWIRE", "wire-secret", token, now=instant)
    assert ours == dict(request.headers.items())
    # the signing key is kept per day: a second call the next day signs with that day's
    later = wire.signer.headers(target, body, "AKIDWIRE", "wire-secret", token,
                                now=instant + dt.timedelta(seconds=3))
    assert "20261207/eu-west-1/kinesis/aws4_request" in later["Authorization"]
