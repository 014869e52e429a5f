"""The embedded server: ``forestream server`` started by a program for itself, in a child
process by default (ending with the program however it ends) or in a thread."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from forestream.rest_client import call
from forestream.server.embedded import EmbeddedServer


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.mark.parametrize("in_thread", [False, True], ids=["process", "thread"])
def test_serves_kinesis_and_the_rest_api_with_its_token_and_stops(tmp_path, in_thread):
    with EmbeddedServer(tmp_path / "data", in_thread=in_thread) as server:
        kinesis = server.client()
        kinesis.create_stream(StreamName="s", ShardCount=1)
        kinesis.get_waiter("stream_exists").wait(StreamName="s", WaiterConfig={"Delay": 0.1})
        kinesis.put_record(StreamName="s", Data=b"x", PartitionKey="k")
        assert call(server.url, "GET", "/api/v1/applications", token=server.token) is not None
        with pytest.raises(Exception, match="401|token"):
            call(server.url, "GET", "/api/v1/applications", token="wrong")
        pid = server._process.pid if server._process is not None else None
    with pytest.raises(OSError):
        import urllib.request

        urllib.request.urlopen(f"{server.url}/health", timeout=2)
    if pid is not None:
        assert _gone(pid)
    # the streams are on disk: a second server on the same folder has them
    with EmbeddedServer(tmp_path / "data") as again:
        assert again.client().list_streams()["StreamNames"] == ["s"]


def test_the_child_server_ends_when_its_program_is_killed(tmp_path):
    program = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from forestream.server.embedded import EmbeddedServer
        server = EmbeddedServer(Path({str(tmp_path / 'data')!r}))
        server.start()
        print(server._process.pid, flush=True)
        time.sleep(600)
    """)
    parent = subprocess.Popen([sys.executable, "-c", program], stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(parent.stdout.readline())
        assert not _gone(child)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 30
        while not _gone(child) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(child), "the embedded server outlived the program that started it"
    finally:
        parent.kill()


def test_a_server_that_cannot_start_says_why_with_its_output(tmp_path):
    server = EmbeddedServer(tmp_path / "data")
    with socket.socket() as taken:  # another program took the port meanwhile
        taken.bind(("127.0.0.1", server.port))
        taken.listen()
        with pytest.raises(RuntimeError, match="did not start") as failed:
            server.start()
    assert str(server.log_path) in str(failed.value)
    assert "address already in use" in str(failed.value).lower()
    assert server._process is None


JOB = '''
from forestream.processing import kinesis_client


def build(env, properties):
    client = kinesis_client()
    env.from_kinesis("in", client).map(lambda e: {**e, "seen": True}).sink_to_kinesis(
        "out", client)
'''


@pytest.mark.parametrize("in_thread", [False, True], ids=["process", "thread"])
def test_stopping_it_stops_its_applications_workers(tmp_path, in_thread):
    # the server stops its applications' workers before it stops listening; in a thread
    # it once stopped listening first and left the worker retrying for minutes, orphaned
    from forestream.processing.app_code import ApplicationCode

    job = tmp_path / "job.py"
    job.write_text(JOB)
    server = EmbeddedServer(tmp_path / "data", in_thread=in_thread)
    server.start()
    try:
        kinesis = server.client()
        for name in ("in", "out"):
            kinesis.create_stream(StreamName=name, ShardCount=1)
            kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                     WaiterConfig={"Delay": 0.1})
        call(server.url, "POST", "/api/v1/applications", {
            "name": "relay", "code": ApplicationCode.from_path(job).to_request()},
            token=server.token)
        call(server.url, "POST", "/api/v1/applications/relay/start", token=server.token)
        status = tmp_path / "data" / "apps" / "relay" / "status.json"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (
                status.exists() and '"RUNNING"' in status.read_text()):
            time.sleep(0.2)
        worker = json.loads(status.read_text())["pid"]
        kinesis.put_record(StreamName="in", Data=b'{"n": 1}', PartitionKey="k")
    finally:
        server.stop()
    # stopped with the server: a worker left behind stays for its retries' length (~20 s)
    deadline = time.monotonic() + 5
    while not _gone(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(worker), "the application's worker outlived its server"
