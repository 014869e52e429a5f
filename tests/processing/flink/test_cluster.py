"""The local Flink cluster: started from the Flink wheel's scripts, reached over Flink's
REST API, driven by ``forestream flink start|status|stop``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from forestream.processing.flink.cluster import LocalFlinkCluster
from forestream.processing.flink.rest_api import FlinkRest, FlinkRestError

SCRIPT = Path(sys.executable).with_name("forestream")


def forestream(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "160"})


def _flink_process(pid: int) -> bool:
    """Whether ``pid`` is a live Flink process (started with FLINK_CONF_DIR)."""
    try:
        alive = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        return alive and b"FLINK_CONF_DIR" in Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.service
def test_the_session_cluster_has_two_taskmanagers_with_two_slots_each(flink_cluster):
    overview = flink_cluster.rest.overview()
    assert overview["taskmanagers"] >= 2 and overview["slots-total"] >= 4
    managers = flink_cluster.rest.taskmanagers()
    assert all(manager["slotsNumber"] == 2 for manager in managers)
    # whole logs: the session cluster may have run other tests' jobs since it started, and
    # their lines push the start-up lines out of a tail
    whole = 1 << 40
    assert "TaskExecutor" in flink_cluster.rest.taskmanager_log(managers[0]["id"], tail=whole)
    assert "StandaloneSessionClusterEntrypoint" in flink_cluster.rest.jobmanager_log(tail=whole)
    assert flink_cluster.status()["processes"]["jobmanager"]["alive"]


@pytest.mark.slow
@pytest.mark.service
def test_cli_starts_shows_and_stops_a_cluster(tmp_path):
    if shutil.which("java") is None or shutil.which("javac") is None:
        pytest.skip("a JDK (java and javac, 11 to 21) is needed to run Flink")
    data = tmp_path / "data"
    started = forestream("flink", "start", "--task-managers", "1", "--slots", "1",
                         "--data-dir", str(data))
    cluster = LocalFlinkCluster(data)
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert cluster.rest_url in started.stdout
        again = forestream("flink", "start", "--data-dir", str(data))
        assert again.returncode != 0 and "already runs" in again.stderr

        shown = forestream("flink", "status", "--data-dir", str(data))
        assert shown.returncode == 0, shown.stderr
        assert "jobmanager" in shown.stdout and "taskmanager-0" in shown.stdout
        assert "running" in shown.stdout and "1 TaskManager(s), 1 of 1 slots free" in shown.stdout
        pids = list(cluster.pids.values())

        stopped = forestream("flink", "stop", "--data-dir", str(data))
        assert stopped.returncode == 0, stopped.stderr
        assert not any(_flink_process(pid) for pid in pids)
        with pytest.raises(FlinkRestError):
            FlinkRest(cluster.rest_url, timeout=2).overview()
        gone = forestream("flink", "status", "--data-dir", str(data))
        assert gone.returncode != 0 and "forestream flink start" in gone.stderr
    finally:
        LocalFlinkCluster(data).stop()


def test_cluster_sizes_out_of_range_are_refused_naming_the_range(tmp_path):
    with pytest.raises(ValueError, match="task_managers must be 1 to 64, got 0"):
        LocalFlinkCluster(tmp_path, task_managers=0)
    refused = forestream("flink", "start", "--slots", "0", "--data-dir", str(tmp_path),
                         timeout=60)
    assert refused.returncode == 2 and "0 is not in the range 1<=x<=64" in refused.stderr


def test_cli_help_shows_examples():
    shown = forestream("flink", "--help", timeout=60)
    assert shown.returncode == 0 and "forestream flink start --task-managers 3" in shown.stdout
