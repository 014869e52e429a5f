"""The psutil host agent: one-shot samples, a running agent's CSV, GPU via nvidia-smi."""

from __future__ import annotations

import csv
import os
import stat
import time

import numpy as np
import pytest

pytest.importorskip("psutil")

from forestream.optimizer.agent import (  # noqa: E402 (after the psutil check)
    COLUMNS,
    HostAgent,
    gpu_utilization,
    parse_nvidia_smi,
    sample_host,
)
from forestream.optimizer.ingest import read_metrics  # noqa: E402
from forestream.optimizer.timeseries import MetricInputError  # noqa: E402


def test_one_shot_sample_measures_cpu_memory_and_rates():
    before = time.time()
    sample = sample_host(window_seconds=0.1)
    assert before <= sample["timestamp"] <= time.time()
    assert 0 <= sample["cpu_pct"] <= 100
    assert 0 < sample["mem_pct"] <= 100 and sample["mem_used_gib"] > 0
    assert sample["mem_pct_max"] >= sample["mem_pct"]
    assert sample["net_in_bytes"] >= 0 and sample["net_out_bytes"] >= 0
    with pytest.raises(MetricInputError, match="window_seconds must be > 0, got 0"):
        sample_host(window_seconds=0)


def test_running_agent_appends_rows_in_the_documented_shape(tmp_path):
    agent = HostAgent(tmp_path, resource_id="host-a", interval_seconds=0.15,
                      probe_seconds=0.05, gpu=False)
    agent.start()
    deadline = time.monotonic() + 5
    while agent.rows_written < 3 and time.monotonic() < deadline:
        # some CPU work, so the busiest probe shows above the interval's mean
        sum(i * i for i in range(20000))
        time.sleep(0.01)
    agent.stop()
    assert not agent.running
    with (tmp_path / "host-a.csv").open() as written:
        rows = list(csv.DictReader(written))
    assert tuple(rows[0]) == COLUMNS and len(rows) >= 3
    assert all(row["resource_id"] == "host-a" and row["timestamp"].endswith("Z") for row in rows)
    measured = [row for row in rows if row["cpu_pct"] and row["cpu_pct_max"]]
    assert measured  # a probe may see no clock tick, but not every one
    for row in measured:
        assert float(row["cpu_pct_max"]) >= float(row["cpu_pct"]) - 1e-6
    [history] = read_metrics(tmp_path)
    assert history.resource.resource_id == "host-a"
    assert {"cpu_pct", "mem_pct", "net_in_bytes", "mem_used_gib"} <= set(history.metrics)
    assert np.all(history.metrics["mem_pct"][np.isfinite(history.metrics["mem_pct"])] > 0)


def test_restarted_agent_continues_the_same_file(tmp_path):
    path = tmp_path / "box.csv"
    for _ in range(2):
        with HostAgent(path, interval_seconds=0.05, probe_seconds=0.05, gpu=False) as agent:
            time.sleep(0.12)
        assert agent.rows_written >= 1
    with path.open() as written:
        lines = written.read().splitlines()
    assert lines.count(",".join(COLUMNS)) == 1 and len(lines) >= 3


def test_agent_refuses_to_append_to_a_foreign_csv(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(MetricInputError, match="exists with columns"):
        HostAgent(path)
    with pytest.raises(MetricInputError, match="interval_seconds must be > 0"):
        HostAgent(tmp_path, interval_seconds=0)


def test_gpu_columns_come_from_nvidia_smi_when_it_is_on_the_path(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho '20, 4000, 16000'\necho '60, 12000, 16000'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    assert gpu_utilization() == (40.0, 50.0)
    with HostAgent(tmp_path / "gpu.csv", interval_seconds=0.05, probe_seconds=0.05):
        time.sleep(0.1)
    [history] = read_metrics(tmp_path / "gpu.csv")
    assert history.metrics["gpu_pct"][-1] == 40.0 and history.metrics["gpu_mem_pct"][-1] == 50.0


def test_no_nvidia_smi_means_no_gpu_columns(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no nvidia-smi
    assert gpu_utilization() is None
    assert "gpu_pct" not in sample_host(window_seconds=0.05)


def test_nvidia_smi_output_parsing_skips_unreported_fields():
    assert parse_nvidia_smi("[N/A], 10, 100\n50, 25, 100\n") == (50.0, 25.0)
    assert parse_nvidia_smi("") is None
