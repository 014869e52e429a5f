"""What the console's test files share: the REST API as a client calls it, and waiting
for something to appear (bounded by time, ended by what appears)."""

from __future__ import annotations

import json
import time
import urllib.request

from server_support import ServerProcess


def rest(server: ServerProcess, method: str, path: str, body: dict | None = None):
    """One REST call with the server's token; the JSON answer (None when empty)."""
    request = server.request(path, method=method,
                             data=None if body is None else json.dumps(body).encode(),
                             headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def wait_for(condition, what: str, seconds: float = 120.0):
    """``condition()``'s first true value, polled until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)
    return value


#: a job Flink cannot run (a complex event pattern, step 2): refused at create time
CEP_JOB = '''
from forestream.processing import Pattern, kinesis_client


def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("readings", client).key_by(lambda e: e["sensor"])
        .pattern(Pattern.begin("high").where(lambda e: e["value"] > 50))
        .sink_to_kinesis("graded", client))
'''
