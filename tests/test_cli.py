"""The command line, run as a user runs it: a real subprocess of the installed script."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(sys.executable).with_name("forestream")


def run_cli(*args, cwd=None, check=True):
    cmd = [str(SCRIPT)] if SCRIPT.exists() else [sys.executable, "-m", "forestream.cli"]
    proc = subprocess.run([*cmd, *map(str, args)], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "COLUMNS": "200"}, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_series_csv(path: Path, n=1500, spike_at=1200):
    rng = np.random.default_rng(0)
    values = 20 + np.sin(np.arange(n) / 10) + 0.1 * rng.standard_normal(n)
    values[spike_at] += 15
    with path.open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["timestamp", "value"])
        for i, v in enumerate(values):
            w.writerow([f"2024-01-01 00:{i:05d}", f"{v:.5f}"])
    return values


def test_help_teaches_the_commands():
    out = run_cli("--help").stdout
    assert "quickstart" in out and "rcf" in out
    out = run_cli("rcf", "score", "--help").stdout
    assert "--shingle-size" in out and "Example" in out


def test_rcf_score_flags_the_spike_and_writes_scores_and_plot(tmp_path):
    source = tmp_path / "series.csv"
    write_series_csv(source)
    out, plot = tmp_path / "scored.csv", tmp_path / "plot.png"
    result = run_cli("rcf", "score", source, "--out", out, "--plot", plot, "--num-trees", 30)
    assert "anomalies" in result.stdout
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 1500
    assert set(rows[0]) >= {"timestamp", "value", "anomaly_score", "grade", "cause",
                            "expected_value"}
    grades = np.array([float(r["grade"]) for r in rows])
    assert grades[1200] > 0 and int(np.argmax(grades)) == 1200
    assert "this row" in rows[1200]["cause"]
    assert abs(float(rows[1200]["expected_value"]) - 20) < 3
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_rcf_score_batch_mode(tmp_path):
    source = tmp_path / "series.csv"
    write_series_csv(source)
    out = tmp_path / "scored.csv"
    run_cli("rcf", "score", source, "--out", out, "--mode", "batch", "--num-trees", 20)
    scores = np.array([float(r["anomaly_score"]) for r in csv.DictReader(out.open())])
    assert int(np.argmax(scores)) in range(1200, 1204)


def test_rcf_score_bad_input_names_the_problem(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("timestamp,value\n2024-01-01,1.0\n2024-01-02,abc\n")
    result = run_cli("rcf", "score", bad, check=False)
    assert result.returncode != 0
    assert "line 3" in result.stderr and "abc" in result.stderr
    result = run_cli("rcf", "score", bad, "--columns", "nope", check=False)
    assert result.returncode != 0 and "nope" in result.stderr


def make_nab_dir(root: Path) -> None:
    rng = np.random.default_rng(5)
    (root / "data" / "synthetic").mkdir(parents=True)
    (root / "labels").mkdir()
    windows = {}
    for k in range(2):
        n = 1200
        values = np.sin(np.arange(n) / 12) + 0.1 * rng.standard_normal(n)
        values[900 + 50 * k] += 6
        stamps = np.datetime64("2024-01-01T00:00") + np.arange(n) * np.timedelta64(5, "m")
        name = f"synthetic/series_{k}.csv"
        with (root / "data" / name).open("w") as handle:
            handle.write("timestamp,value\n")
            for t, v in zip(stamps, values, strict=True):
                handle.write(f"{str(t).replace('T', ' ')}:00,{v:.5f}\n")
        centre = 900 + 50 * k
        windows[name] = [[_stamp(stamps[centre - 30]), _stamp(stamps[centre + 30])]]
    (root / "labels" / "combined_windows.json").write_text(json.dumps(windows))


def _stamp(t) -> str:
    return str(t).replace("T", " ") + ":00.000000"


def test_rcf_nab_scores_a_corpus_and_writes_nab_results(tmp_path):
    make_nab_dir(tmp_path / "nab")
    result = run_cli("rcf", "nab", "--data", tmp_path / "nab", "--out", tmp_path / "res",
                     "--json")
    report = json.loads(result.stdout)
    assert set(report["profiles"]) == {"standard", "reward_low_FP_rate", "reward_low_FN_rate"}
    assert report["profiles"]["standard"]["normalised"] > 50
    written = tmp_path / "res" / "forestream" / "synthetic" / "forestream_series_0.csv"
    header = written.read_text().splitlines()[0]
    assert header == "timestamp,value,anomaly_score,label"
    again = run_cli("rcf", "nab", "--data", tmp_path / "nab", "--out", tmp_path / "res",
                    "--score-only", "--json")
    assert json.loads(again.stdout)["profiles"] == report["profiles"]


def test_rcf_nab_rejects_unknown_detector_and_bad_layout(tmp_path):
    make_nab_dir(tmp_path / "nab")
    result = run_cli("rcf", "nab", "--data", tmp_path / "nab", "--detector", "nope",
                     check=False)
    assert result.returncode != 0 and "nope" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("rcf", "nab", "--data", tmp_path / "empty", check=False)
    assert result.returncode != 0 and "empty" in result.stderr


@pytest.mark.slow
def test_quickstart_streams_through_server_job_and_output_stream(tmp_path):
    result = run_cli("quickstart", "--machines", 2, "--days", 5, "--out", tmp_path / "qs",
                     "--rate", 5000)
    assert "ANOMALY" in result.stdout and "recall" in result.stdout
    assert "written to stream sensor-anomalies" in result.stdout
    # the detector ran as a managed application, in its own supervised worker process
    assert "application sensor-anomalies is RUNNING" in result.stdout
    assert (tmp_path / "qs" / "app" / "sensor_anomalies.py").is_file()
    log = tmp_path / "qs" / "data" / "apps" / "sensor-anomalies" / "logs" / "worker.log"
    assert "application sensor-anomalies running (pid" in log.read_text()
    assert sorted(p.name for p in (tmp_path / "qs").glob("*.png")) == [
        "machine-0.png", "machine-1.png"]
    alerts = [json.loads(line) for line in
              (tmp_path / "qs" / "anomalies.jsonl").read_text().splitlines()]
    assert len(alerts) >= 3
    assert all(a["ANOMALY_GRADE"] >= 0.3 and "_record_id" not in a for a in alerts)
    assert {"machine", "sensor", "value", "ANOMALY_SCORE"} <= set(alerts[0])
