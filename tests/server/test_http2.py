"""A default ``forestream server`` speaks HTTP/1.1 and HTTP/2 on one port: h2c by prior
knowledge and by ``Upgrade: h2c``, h2 by ALPN on its TLS port; event streams outlive a
client's graceful GOAWAY; large bodies flow both ways under HTTP/2 flow control; TLS
shutdowns leave no tracebacks. (The guard over HTTP/2: tests/server/test_security.py;
real SDKs: tests/clients/.)"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import time

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer

from aws_signing import signed_headers
from h2_client import RawH2
from server_support import SCRIPT, active_consumer, free_port, self_signed

httpx = pytest.importorskip("httpx")
pytestmark = [pytest.mark.service]

TARGET = "Kinesis_20131202."
JSON_11 = "application/x-amz-json-1.1"


def kinesis_headers(operation: str, body: bytes | str = b"{}") -> dict[str, str]:
    """A Kinesis request's headers, signed as SDKs sign (a default server refuses unsigned
    Kinesis requests; without credentials it checks the signature's form only)."""
    return signed_headers("http://127.0.0.1/", body,
                          {"X-Amz-Target": TARGET + operation, "Content-Type": JSON_11})


def raw_signature(operation: str, body: bytes) -> str:
    """The signature header lines of a hand-written HTTP/1.1 request."""
    headers = kinesis_headers(operation, body)
    return "".join(f"{name}: {headers[name]}\r\n" for name in ("X-Amz-Date", "Authorization"))


def boto(url: str):
    return boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="t", aws_secret_access_key="t",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory, request):
    """A server with its defaults plus a TLS port; a stream 's' with a consumer."""
    from server_support import ServerProcess

    folder = tmp_path_factory.mktemp("h2")
    cert, key = self_signed(folder)
    tls_port = free_port()
    server = ServerProcess(folder / "data", args=(
        "--tls-port", str(tls_port), "--tls-cert", str(cert), "--tls-key", str(key)))
    server.start()
    server.tls_port, server.cert = tls_port, cert
    kinesis = boto(server.url)
    kinesis.create_stream(StreamName="s", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="s", WaiterConfig={"Delay": 0.1})
    server.consumer = active_consumer(kinesis, "s", "h2")["ConsumerARN"]
    yield server
    server.stop()


def test_http11_and_h2c_by_prior_knowledge_share_the_default_port(tls_server):
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        answers = [client.post(tls_server.url + "/", content="{}",
                               headers=kinesis_headers("ListStreams")) for _ in range(3)]
        health = client.get(tls_server.url + "/health", headers=tls_server.auth)
    assert {a.http_version for a in answers} == {"HTTP/2"}
    assert answers[0].json()["StreamNames"] == ["s"]
    assert health.http_version == "HTTP/2" and health.json()["status"] == "ok"
    assert "connection" not in health.headers and health.headers["date"]
    assert boto(tls_server.url).list_streams()["StreamNames"] == ["s"]  # HTTP/1.1 still


def test_upgrade_to_h2c_serves_the_request_with_its_body_then_more_streams(tls_server):
    body = json.dumps({"StreamName": "s", "Data": base64.b64encode(b"up").decode(),
                       "PartitionKey": "k"}).encode()
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1:{tls_server.port}\r\n"
            "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
            "HTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n"
            f"X-Amz-Target: {TARGET}PutRecord\r\nContent-Type: {JSON_11}\r\n"
            + raw_signature("PutRecord", body) +
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    connection = RawH2(tls_server.port, upgrade=(head, body))
    assert connection.upgrade_response.startswith(b"HTTP/1.1 101 ")
    status, headers, answer = connection.response(1)
    assert status == 200 and json.loads(answer)["ShardId"] == "shardId-000000000000"
    stream = connection.request("POST", "/", kinesis_headers("ListStreams"), b"{}")
    assert stream == 3 and json.loads(connection.response(stream)[2])["StreamNames"] == ["s"]
    connection.close()
    if shutil.which("curl"):  # curl --http2 asks for the upgrade the same way
        curl_headers = [arg for name, value in kinesis_headers("ListStreams").items()
                        for arg in ("-H", f"{name}: {value}")]
        result = subprocess.run(
            ["curl", "-s", "--http2", *curl_headers, "-d", "{}", "-w", "\n%{http_version}",
             tls_server.url + "/"], capture_output=True, text=True, timeout=30)
        answer, version = result.stdout.rsplit("\n", 1)
        assert version == "2" and json.loads(answer)["StreamNames"] == ["s"]


def test_other_upgrades_are_answered_over_http11_and_the_connection_closed(tls_server):
    body = b"{}"
    head = (f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\n"
            f"Upgrade: websocket\r\nX-Amz-Target: {TARGET}ListStreams\r\n"
            + raw_signature("ListStreams", body) +
            f"Content-Type: {JSON_11}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", tls_server.port), timeout=30) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and b"connection: close" in answer.lower()
    assert b'"StreamNames":["s"]' in answer


def subscribe(connection: RawH2, consumer: str, position: str = "LATEST") -> int:
    request = {"ConsumerARN": consumer, "ShardId": "shardId-000000000000",
               "StartingPosition": {"Type": position}}
    body = json.dumps(request).encode()
    return connection.request("POST", "/", kinesis_headers("SubscribeToShard", body), body,
                              authority=f"127.0.0.1:{connection.sock.getpeername()[1]}")


def events_of(connection: RawH2, stream_id: int, buffer: EventStreamBuffer,
              until, seconds: float = 30.0) -> list[dict]:
    """Event-stream messages of a stream until ``until(records)`` holds."""
    import h2.events

    records: list[bytes] = []
    deadline = time.monotonic() + seconds
    seen = 0
    while not until(records):
        assert time.monotonic() < deadline and not connection.closed, records
        connection.read(0.5)
        for event in connection.events[seen:]:
            if isinstance(event, h2.events.DataReceived) and event.stream_id == stream_id:
                buffer.add_data(event.data)
                for message in buffer:
                    if message.headers[":event-type"] == "SubscribeToShardEvent":
                        payload = json.loads(message.payload)
                        records += [base64.b64decode(r["Data"]) for r in payload["Records"]]
        seen = len(connection.events)
    return records


def test_subscribe_to_shard_flows_on_after_the_clients_goaway(tls_server):
    """The AWS SDK for JavaScript sends GOAWAY (NO_ERROR) right after SubscribeToShard's
    response headers: the stream must keep delivering records put after that."""
    import h2.events

    connection = RawH2(tls_server.port)
    stream_id = subscribe(connection, tls_server.consumer)
    while not any(isinstance(e, h2.events.ResponseReceived) for e in connection.events):
        connection.read(5.0)
        assert not connection.closed
    connection.goaway()
    kinesis = boto(tls_server.url)
    for i in range(3):
        kinesis.put_records(StreamName="s", Records=[
            {"Data": b"after-goaway-%d-%d" % (i, j), "PartitionKey": "k"} for j in range(5)])
        time.sleep(0.3)
    records = events_of(connection, stream_id, EventStreamBuffer(),
                        lambda got: len(got) >= 15)
    assert records == [b"after-goaway-%d-%d" % (i, j) for i in range(3) for j in range(5)]
    # the client cancels the subscription: the server closes the connection, whose
    # session the client had already closed
    connection.h2.reset_stream(stream_id, 8)
    connection.flush()
    assert connection.wait_closed(10)


def test_large_bodies_flow_both_ways_under_flow_control(tls_server):
    kinesis = boto(tls_server.url)
    kinesis.create_stream(StreamName="big", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="big", WaiterConfig={"Delay": 0.1})
    records = [{"Data": base64.b64encode(os.urandom(8000)).decode(), "PartitionKey": str(i)}
               for i in range(400)]  # ~4.3 MB of JSON: four times the stream's window
    body = json.dumps({"StreamName": "big", "Records": records}).encode()
    with httpx.Client(http1=False, http2=True, timeout=60) as client:
        put = client.post(tls_server.url + "/", content=body,
                          headers=kinesis_headers("PutRecords", body))
        assert put.http_version == "HTTP/2" and put.json()["FailedRecordCount"] == 0
    # reading it back through a client whose window is small: the server waits for it
    connection = RawH2(tls_server.port, window=65535)
    iterator = kinesis.get_shard_iterator(StreamName="big", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    body = json.dumps({"ShardIterator": iterator}).encode()
    stream_id = connection.request("POST", "/", kinesis_headers("GetRecords", body), body)
    status, _, answer = connection.response(stream_id, timeout=60)
    assert status == 200
    assert [r["Data"] for r in json.loads(answer)["Records"]] == [r["Data"] for r in records]
    connection.close()


def test_tls_port_negotiates_h2_or_http11_by_alpn_and_shuts_down_quietly(tmp_path,
                                                                         server_process):
    cert, key = self_signed(tmp_path)
    tls_port = free_port()
    server = server_process(tmp_path / "data", args=(
        "--tls-port", str(tls_port), "--tls-cert", str(cert), "--tls-key", str(key))).start()
    url = f"https://127.0.0.1:{tls_port}/"
    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(http2=True, verify=context, timeout=30) as client:
        answer = client.post(url, content="{}", headers=kinesis_headers("ListStreams"))
        assert answer.http_version == "HTTP/2" and answer.json()["StreamNames"] == []
        nope = json.dumps({"StreamName": "nope"})
        missing = client.post(url, content=nope,
                              headers=kinesis_headers("DescribeStreamSummary", nope))
        assert missing.status_code == 400
        assert missing.json()["__type"] == "ResourceNotFoundException"
    with httpx.Client(verify=context, timeout=30) as client:  # ALPN offers http/1.1 only
        answer = client.post(url, content="{}", headers=kinesis_headers("ListStreams"))
        assert answer.http_version == "HTTP/1.1" and answer.status_code == 200
    # boto3 over TLS, and clients that go away in every way a TLS client can
    secure = boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                          aws_access_key_id="t", aws_secret_access_key="t", verify=str(cert))
    assert secure.list_streams()["StreamNames"] == []
    h2_context = ssl.create_default_context(cafile=str(cert))
    h2_context.set_alpn_protocols(["h2"])
    for ending in ("goaway", "close_notify", "reset", "mid-handshake"):
        if ending == "mid-handshake":
            socket.create_connection(("127.0.0.1", tls_port)).close()
            continue
        connection = RawH2(tls_port, tls=h2_context)
        stream_id = connection.request("POST", "/", kinesis_headers("ListStreams"), b"{}")
        assert connection.response(stream_id)[0] == 200
        if ending == "goaway":
            connection.goaway()
            assert connection.wait_closed(10)
        elif ending == "close_notify":
            connection.sock.unwrap()
        else:
            connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       b"\x01\x00\x00\x00\x00\x00\x00\x00")
        connection.sock.close()
    time.sleep(0.5)
    server.stop()
    assert server.proc.returncode in (0, -15)  # stopped by SIGTERM, not killed
    stderr = server.proc.stderr.read().decode()
    assert "Traceback" not in stderr and "CLOSE_NOTIFY" not in stderr, stderr[-3000:]


def test_a_server_with_open_http2_connections_stops_promptly(tmp_path, server_process):
    server = server_process(tmp_path / "data").start()
    idle = RawH2(server.port)
    busy = RawH2(server.port)
    busy.request("POST", "/", kinesis_headers("ListStreams"), b"{}")
    busy.read(5.0)
    started = time.monotonic()
    server.stop()
    assert server.proc.returncode in (0, -15) and time.monotonic() - started < 8
    assert idle.wait_closed(5) and busy.wait_closed(5)


def test_tls_options_go_together():
    result = subprocess.run([str(SCRIPT), "server", "--tls-port", "4999"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2
    assert "--tls-port, --tls-cert and --tls-key go together" in result.stderr
