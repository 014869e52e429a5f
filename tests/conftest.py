"""Fixtures shared by the whole suite: a real ``forestream server`` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).with_name("forestream")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A ``forestream server`` subprocess on a free port, restartable on the same data."""

    def __init__(self, data_dir: Path, env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ()) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "FORESTREAM_STATUS_DELAY": "0.2", **(env or {})}
        self.args = args
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServerProcess:
        cmd = [str(SCRIPT), "server", "--port", str(self.port), "--data-dir",
               str(self.data_dir), *self.args]
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.proc.stderr.read().decode()}")
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1).read()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("server did not start within 30 s")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def server_process():
    """Factory for extra servers (own data dir, env, flags); all stopped at teardown.

    Use this rather than importing ``ServerProcess``: test directories have no packages,
    so ``import conftest`` can resolve to another directory's conftest.
    """
    started: list[ServerProcess] = []

    def make(data_dir: Path, env: dict[str, str] | None = None,
             args: tuple[str, ...] = ()) -> ServerProcess:
        proc = ServerProcess(data_dir, env, args)
        started.append(proc)
        return proc

    yield make
    for proc in started:
        proc.stop()


@pytest.fixture
def server(tmp_path):
    """A fresh server on an empty data directory."""
    proc = ServerProcess(tmp_path / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def kinesis(server):
    """A boto3 Kinesis client pointed at ``server``."""
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    return boto3.client("kinesis", endpoint_url=server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1}))
