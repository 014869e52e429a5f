"""``forestream server --http2``: SubscribeToShard read over cleartext HTTP/2 (h2c, as the
Kinesis Client Library 2.x reads it) and over TLS with ALPN h2, while boto3 keeps using
HTTP/1.1 on the same port."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import os
import ssl
import subprocess

import boto3
import pytest
from botocore.eventstream import EventStreamBuffer

from server_support import SCRIPT, active_consumer, free_port

httpx = pytest.importorskip("httpx")
pytest.importorskip("hypercorn")
pytestmark = [pytest.mark.service]

TARGET = "Kinesis_20131202."
JSON_11 = "application/x-amz-json-1.1"


def self_signed(folder):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def call(client, url, operation, body):
    return client.post(url, content=json.dumps(body),
                       headers={"X-Amz-Target": TARGET + operation, "Content-Type": JSON_11})


def test_subscribe_to_shard_over_h2c_and_tls_h2_beside_boto3(tmp_path, server_process):
    cert, key = self_signed(tmp_path)
    tls_port = free_port()
    proc = server_process(tmp_path / "data", args=(
        "--http2", "--tls-port", str(tls_port), "--tls-cert", str(cert),
        "--tls-key", str(key))).start()
    kinesis = boto3.client("kinesis", endpoint_url=proc.url, region_name="us-east-1",
                           aws_access_key_id="t", aws_secret_access_key="t")
    kinesis.create_stream(StreamName="h2", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="h2", WaiterConfig={"Delay": 0.1})
    consumer = active_consumer(kinesis, "h2", "kcl")
    for i in range(5):
        kinesis.put_record(StreamName="h2", Data=b"e%d" % i, PartitionKey="k")

    # cleartext HTTP/2 by prior knowledge, on the port boto3 uses
    with httpx.Client(http1=False, http2=True, timeout=30) as client:
        request = {"ConsumerARN": consumer["ConsumerARN"], "ShardId": "shardId-000000000000",
                   "StartingPosition": {"Type": "TRIM_HORIZON"}}
        with client.stream("POST", proc.url + "/", content=json.dumps(request), headers={
                "X-Amz-Target": TARGET + "SubscribeToShard",
                "Content-Type": JSON_11}) as response:
            assert response.status_code == 200 and response.http_version == "HTTP/2"
            assert response.headers["content-type"] == "application/vnd.amazon.eventstream"
            buffer, events, data = EventStreamBuffer(), [], []
            for chunk in response.iter_bytes():
                buffer.add_data(chunk)
                for message in buffer:
                    events.append(message.headers[":event-type"])
                    if events[-1] == "SubscribeToShardEvent":
                        payload = json.loads(message.payload)
                        data += [r["Data"] for r in payload["Records"]]
                if len(data) >= 5:
                    break
    assert events[0] == "initial-response"
    assert [base64.b64decode(d) for d in data] == [b"e%d" % i for i in range(5)]

    # TLS with ALPN: HTTP/2 negotiated
    context = ssl.create_default_context(cafile=str(cert))
    with httpx.Client(http2=True, verify=context, timeout=30) as client:
        response = call(client, f"https://127.0.0.1:{tls_port}/", "ListStreams", {})
        assert response.http_version == "HTTP/2"
        assert response.json()["StreamNames"] == ["h2"]
        response = call(client, f"https://127.0.0.1:{tls_port}/", "DescribeStreamSummary",
                        {"StreamName": "nope"})
        assert response.status_code == 400
        assert response.json()["__type"] == "ResourceNotFoundException"


def test_tls_options_go_together():
    result = subprocess.run([str(SCRIPT), "server", "--tls-port", "4999"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "COLUMNS": "200"})
    assert result.returncode == 2
    assert "--tls-port, --tls-cert and --tls-key go together" in result.stderr
