"""Fixtures for tests on a real local Apache Flink cluster (also used by the tests of
applications with ``--runtime flink``).

``flink_cluster``: 1 JobManager + 2 TaskManagers x 2 slots (a :class:`LocalFlinkCluster`:
``.rest_url``, ``.rest``, ``.run_python_job(path, args, ...)`` -> job id, ``.stop()``),
started once per test session (per xdist worker) and stopped after. Skipped only where
no JDK is installed. ``forestream_server``: a ``forestream server`` process for the
session (``.url``, ``.token``); ``kinesis_client``: a boto3 client of it.
"""

from __future__ import annotations

import shutil

import pytest

from server_support import ServerProcess

# PyFlink programs, run by the Flink environment's Python, not collected here
collect_ignore = ["jobs"]

#: Bound on the cluster's start (the first one also builds .venv-flink if `make flink`
#: did not).
START_TIMEOUT = 300.0


@pytest.fixture(scope="session")
def flink_cluster(tmp_path_factory):
    if shutil.which("java") is None or shutil.which("javac") is None:
        pytest.skip("a JDK (java and javac, 11 to 21) is needed to run Flink; "
                    "apt-get install openjdk-17-jdk-headless")
    from forestream.processing.flink.cluster import LocalFlinkCluster

    cluster = LocalFlinkCluster(tmp_path_factory.mktemp("flink-cluster"), task_managers=2,
                                slots=2)
    cluster.start(timeout=START_TIMEOUT)
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def forestream_server(tmp_path_factory):
    server = ServerProcess(tmp_path_factory.mktemp("forestream-for-flink") / "data").start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def kinesis_client(forestream_server):
    import boto3
    from botocore.config import Config

    return boto3.client("kinesis", endpoint_url=forestream_server.url, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 3}))
