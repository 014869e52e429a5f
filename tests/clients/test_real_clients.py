"""Clients nobody here wrote, with their default settings, against ``forestream server``:

* the AWS SDK for JavaScript v3 (``@aws-sdk/client-kinesis``, installed from
  tests/clients/js/package-lock.json by ``make test``): its Kinesis client speaks only
  HTTP/2 — h2c against the default server, h2 by ALPN on the TLS port of a server that
  requires Signature V4 — through the core calls and SubscribeToShard with records put
  after the subscription began (kinesis.mjs);
* Java's ``java.net.http.HttpClient`` (compiled here with ``javac``), which asks for
  ``Upgrade: h2c`` on plain HTTP: PutRecords and GetRecords, signed by hand
  (tests/clients/java/KinesisHttpClient.java).

The AWS CLI is tests/streams/test_awscli.py; boto3 is everywhere else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from server_support import ServerProcess, free_port, self_signed

pytestmark = [pytest.mark.service]
HERE = Path(__file__).parent
JS = HERE / "js"
KEY, SECRET = "AKIDCLIENTS", "clients-secret"


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed")
    if not (JS / "node_modules" / "@aws-sdk" / "client-kinesis").is_dir():
        pytest.skip("the JS SDK is not installed: make test runs "
                    "'npm ci --prefix tests/clients/js'")
    return node


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    """``forestream server`` with no flags (no credentials: any signature is accepted)."""
    server = ServerProcess(tmp_path_factory.mktemp("clients") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory):
    """A server that requires Signature V4, with a TLS port (a certificate of its own)."""
    folder = tmp_path_factory.mktemp("clients-tls")
    cert, key = self_signed(folder)
    tls_port = free_port()
    server = ServerProcess(folder / "data", env={
        "FORESTREAM_ACCESS_KEY_ID": KEY, "FORESTREAM_SECRET_ACCESS_KEY": SECRET}, args=(
        "--tls-port", str(tls_port), "--tls-cert", str(cert), "--tls-key", str(key)))
    server.start()
    server.tls_url, server.cert = f"https://127.0.0.1:{tls_port}", cert
    yield server
    server.stop()
    stderr = server.proc.stderr.read().decode() if server.proc.stderr else ""
    assert "Traceback" not in stderr and "CLOSE_NOTIFY" not in stderr, stderr[-3000:]


def run_js(endpoint: str, stream: str, *credentials: str,
           ca: Path | None = None) -> dict:
    env = {**os.environ, "NODE_NO_WARNINGS": "1"}
    if ca is not None:
        env["NODE_EXTRA_CA_CERTS"] = str(ca)
    result = subprocess.run([_node(), "kinesis.mjs", endpoint, stream, *credentials],
                            cwd=JS, capture_output=True, text=True, timeout=90, env=env)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-1000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def check_js(answer: dict) -> None:
    assert answer["waiter"] == "SUCCESS"
    assert answer["putRecordShard"] == "shardId-000000000000"
    assert answer["putRecordsFailed"] == 0
    assert answer["shards"] == ["shardId-000000000000"]
    assert answer["getRecords"] == ["first", "second", "third"]
    # every live record, in order, in several events: the subscription kept flowing
    # after the SDK closed its HTTP/2 session (GOAWAY) behind the response headers
    assert answer["live"] == [f"live-{i}" for i in range(30)]
    assert answer["events"] >= 2


def test_js_sdk_over_h2c_against_the_default_server(default_server):
    check_js(run_js(default_server.url, "js-h2c"))


def test_js_sdk_over_tls_h2_signing_with_sigv4(signed_server):
    check_js(run_js(signed_server.tls_url, "js-tls", KEY, SECRET, ca=signed_server.cert))
    with pytest.raises(AssertionError, match="InvalidSignatureException"):
        run_js(signed_server.tls_url, "js-forged", KEY, "not-the-secret",
               ca=signed_server.cert)


@pytest.fixture(scope="module")
def java_client(tmp_path_factory) -> list[str]:
    """The command that runs KinesisHttpClient, compiled once."""
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        pytest.skip("a JDK (javac, java) is not installed")
    classes = tmp_path_factory.mktemp("java-classes")
    subprocess.run([javac, "-d", str(classes), str(HERE / "java" / "KinesisHttpClient.java")],
                   check=True, capture_output=True, timeout=120)
    return [java, "-cp", str(classes), "KinesisHttpClient"]


def run_java(command: list[str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=90)


def test_java_httpclient_upgrades_to_h2c_for_put_and_get_records(java_client,
                                                                 default_server):
    result = run_java(java_client, default_server.url, "java")
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout)
    assert answer["failed"] == 0 and answer["records"] == ["java-0", "java-1", "java-2"]
    # the first request asked for the upgrade; every answer, its own too, came as HTTP/2
    assert set(answer["versions"]) == {"HTTP_2"}


def test_java_httpclient_signs_over_the_upgraded_connection(java_client, signed_server):
    result = run_java(java_client, signed_server.url, "java-signed", KEY, SECRET)
    assert result.returncode == 0, result.stderr[-3000:]
    assert set(json.loads(result.stdout)["versions"]) == {"HTTP_2"}
    forged = run_java(java_client, signed_server.url, "java-forged", KEY, "not-the-secret")
    assert forged.returncode != 0 and "InvalidSignatureException" in forged.stderr
