"""Fixtures shared by the whole suite: a real ``forestream server`` process; and how
``make test`` spreads the suite over its xdist workers (``--dist loadfile``)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from server_support import ServerProcess

#: Test modules that run on the session's Flink cluster (``flink_cluster``): with
#: ``--dist loadfile`` they are one unit of work, see pytest_xdist_make_scheduler.
FLINK_DIR = "tests/processing/flink/"
FLINK_UNIT = "flink-cluster"


@pytest.hookimpl(tryfirst=True, optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile`` (``make test``), except that the modules under FLINK_DIR are
    one unit, handed out first.

    Plain loadfile may send two Flink modules to the two workers at once, and each
    starts a cluster of its own (1 JobManager + 2 TaskManagers: the heaviest processes
    of the suite, on a 2-core machine). As one unit they run on one worker, on one
    cluster, while the other worker takes the other modules; the unit goes out first
    because it is the longest, so that no worker is left to run it alone at the end.
    (xdist's ``--dist loadgroup`` would do the grouping with marks, but under pytest 9
    it silently schedules test by test: it renames ``item._nodeid``, which pytest 9's
    ``item.nodeid`` no longer reads.)
    """
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FlinkFirstLoadFile(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = super()._split_scope(nodeid)
            return FLINK_UNIT if module.startswith(FLINK_DIR) else module

        def _assign_work_unit(self, node) -> None:
            if FLINK_UNIT in self.workqueue:
                self.workqueue.move_to_end(FLINK_UNIT, last=False)
            super()._assign_work_unit(node)

    return FlinkFirstLoadFile(config, log)


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
