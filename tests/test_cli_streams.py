"""``forestream streams`` against a real server process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.service
SCRIPT = Path(sys.executable).with_name("forestream")


def cli(server, *args, stdin=None, check=True):
    proc = subprocess.run([str(SCRIPT), "streams", *args, "--endpoint-url", server.url],
                          capture_output=True, text=True, input=stdin, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    if check and proc.returncode:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def test_streams_commands_end_to_end(server):
    assert "created" in cli(server, "create", "cli-s", "--shards", "2").stdout
    assert "cli-s" in cli(server, "list").stdout
    out = cli(server, "put", "cli-s", "hello world", "--partition-key", "k").stdout
    assert "shardId-" in out
    out = cli(server, "put", "cli-s", stdin="a\nb\nc\n").stdout
    assert "put 3 record(s), 0 failed" in out
    out = cli(server, "get", "cli-s").stdout
    for word in ("hello world", "a", "b", "c"):
        assert word in out
    # reshard and delete return once the change has taken effect (UPDATING, DELETING end)
    out = cli(server, "reshard", "cli-s", "--split", "shardId-000000000000").stdout
    assert "split shardId-000000000000" in out
    described = cli(server, "describe", "cli-s").stdout
    assert "shardId-000000000002" in described and "closed" in described
    assert "ACTIVE" in described
    assert "deleted" in cli(server, "delete", "cli-s").stdout
    assert "cli-s" not in cli(server, "list").stdout


def test_streams_errors_are_clear(server, tmp_path):
    proc = cli(server, "describe", "missing", check=False)
    assert proc.returncode != 0 and "ResourceNotFoundException" in proc.stderr
    proc = subprocess.run([str(SCRIPT), "streams", "list", "--endpoint-url",
                           "http://127.0.0.1:9"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and "forestream server" in proc.stderr
