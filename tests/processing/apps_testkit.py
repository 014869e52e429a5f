"""Helpers for tests of applications on a real server (a plain module, not a conftest):
REST and CLI calls, waiting, and reading a stream's running totals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SCRIPT = Path(sys.executable).with_name("forestream")


def api(server, method, path, body=None):
    """Call ``/api/v1/applications``; a ``code`` given as a local path is sent as content,
    as ``forestream apps create --code`` sends it."""
    if body is not None and isinstance(body.get("code"), (str, Path)) and \
            Path(body["code"]).exists():
        from forestream.processing.app_code import ApplicationCode

        body = {**body, "code": ApplicationCode.from_path(body["code"]).to_request()}
    request = server.request(f"/api/v1/applications{path}", method=method,
                             data=json.dumps(body).encode() if body is not None else None,
                             headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def cli(server, *args, check=True):
    proc = subprocess.run([str(SCRIPT), "apps", *map(str, args), "--endpoint-url", server.url],
                          capture_output=True, text=True, timeout=180,
                          env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait(condition, seconds=60.0, what="condition"):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def totals(target, stream):
    """Latest running total per key in the output stream; ``target`` is a boto3 client or
    an in-process StreamStore."""
    from forestream.processing.kinesis_io import read_records

    latest = {}
    for record in read_records(target, stream):
        value = json.loads(record["Data"])
        latest[value["k"]] = max(latest.get(value["k"], 0), value["n"])
    return latest


def put(kinesis, stream, n, keys=("a", "b", "c")):
    records = [{"Data": json.dumps({"k": keys[i % len(keys)], "n": 1}).encode(),
                "PartitionKey": keys[i % len(keys)]} for i in range(n)]
    for start in range(0, n, 500):
        kinesis.put_records(StreamName=stream, Records=records[start:start + 500])


def create_streams(kinesis, **shards):
    """Create streams (name=shard count) and wait until each is ACTIVE."""
    for name, count in shards.items():
        kinesis.create_stream(StreamName=name, ShardCount=count)
        kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
