"""Fixtures shared by the whole suite: a real ``forestream server`` process."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from server_support import ServerProcess

# Servers started by the tests record their access tokens here (for the forestream
# commands the tests run), not in the user's home folder.
os.environ.setdefault("FORESTREAM_RUNTIME_DIR", tempfile.mkdtemp(prefix="forestream-runtime-"))


@pytest.fixture
def server_process():
    """Factory for extra servers (own data dir, env, flags); all stopped at teardown.

    Use this rather than importing ``ServerProcess``: test directories have no packages,
    so ``import conftest`` can resolve to another directory's conftest.
    """
    started: list[ServerProcess] = []

    def make(data_dir: Path, env: dict[str, str] | None = None,
             args: tuple[str, ...] = (), **options) -> ServerProcess:
        proc = ServerProcess(data_dir, env, args, **options)
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
