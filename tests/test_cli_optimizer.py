"""``forestream optimizer``, run as a user runs it: real subprocesses, files and servers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from forestream.optimizer.ingest import read_metrics, write_metrics
from forestream.optimizer.synthetic import make_fleet
from server_support import ServerProcess

SCRIPT = Path(sys.executable).with_name("forestream")
START = 1_714_521_600  # 2024-05-01T00:00:00Z


def run_cli(*args, check=True, env=None):
    proc = subprocess.run([str(SCRIPT), "optimizer", *map(str, args)], capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "250", **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fleet")
    write_metrics(make_fleet(6, seed=21, days=3, train_days=2).histories(), folder)
    return folder


@pytest.fixture(scope="module")
def analysis(fleet_dir, tmp_path_factory):
    """One local run with every output: (process, analysis JSON path, HTML path)."""
    out = tmp_path_factory.mktemp("out")
    proc = run_cli("recommend", fleet_dir, "--json", out / "analysis.json",
                   "--html", out / "report.html", "--cpu-percentile", "95")
    return proc, out / "analysis.json", out / "report.html"


def table_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("│")]


def test_recommend_prints_a_table_and_summary_and_writes_json_and_html(analysis, fleet_dir):
    proc, json_path, html_path = analysis
    data = json.loads(json_path.read_text())
    assert data["preferences"]["cpu_percentile"] == 95.0
    assert data["source"] == {"path": str(fleet_dir)}
    for column in ("resource", "kind", "class", "finding", "reasons", "current",
                   "recommended", "risk", "savings/month"):
        assert column in proc.stdout
    rows = table_rows(proc.stdout)
    assert len(rows) == 6
    for rec in data["recommendations"]:
        assert any(rec["resource_id"] in row and rec["finding"] in row for row in rows)
    assert "6 resources:" in proc.stdout and "/month" in proc.stdout
    page = html_path.read_text()
    assert page.startswith("<!doctype html>") and page.count('<svg viewBox="0 0') == 6
    assert "HTML report written to" in proc.stderr


def test_report_re_renders_filtered_sorted_and_limited(analysis, tmp_path):
    _, json_path, _ = analysis
    data = json.loads(json_path.read_text())
    proc = run_cli("report", json_path, "--sort", "resource", "--limit", "2", "--html",
                   tmp_path / "again.html")
    rows = table_rows(proc.stdout)
    first_two = sorted(r["resource_id"] for r in data["recommendations"])[:2]
    assert len(rows) == 2 and first_two[0] in rows[0] and first_two[1] in rows[1]
    assert "(2 of 6 resources shown)" in proc.stdout
    assert (tmp_path / "again.html").read_text().count("<section id=") == 6
    finding = data["recommendations"][0]["finding"]
    rows = table_rows(run_cli("report", json_path, "--finding", finding).stdout)
    expected = sum(r["finding"] == finding for r in data["recommendations"])
    assert len(rows) == expected and all(finding in row for row in rows)


def test_json_to_stdout_is_only_json(analysis):
    _, json_path, _ = analysis
    proc = run_cli("report", json_path, "--json", "-")
    assert json.loads(proc.stdout)["id"] == json.loads(json_path.read_text())["id"]
    assert "resources:" in proc.stderr


def test_bad_input_is_refused_naming_the_value(fleet_dir, tmp_path):
    proc = run_cli("recommend", fleet_dir, "--lookback-days", "15", check=False)
    assert proc.returncode == 2 and "'15' is not one of '14', '32', '93'" in proc.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "web-1.csv").write_text("timestamp,cpu_util\n2024-05-01T00:00:00Z,5\n")
    proc = run_cli("recommend", bad, check=False)
    assert proc.returncode == 1 and "'cpu_util'" in proc.stderr and "cpu_pct" in proc.stderr
    (tmp_path / "not-analysis.json").write_text('{"hello": 1}')
    proc = run_cli("report", tmp_path / "not-analysis.json", check=False)
    assert proc.returncode == 1 and "is not an analysis" in proc.stderr


def test_a_single_file_needs_an_instance_type(fleet_dir):
    single = next(fleet_dir.glob("*.csv"))
    proc = run_cli("recommend", single)
    assert "Unsupported" in proc.stdout and "--instance-type" in proc.stderr
    proc = run_cli("recommend", single, "--instance-type", "m5.xlarge", "--json", "-")
    [rec] = json.loads(proc.stdout)["recommendations"]
    assert rec["current"]["name"] == "m5.xlarge" and rec["finding"] != "Unsupported"


def test_catalog_lists_filtered_types_and_suggests_families():
    proc = run_cli("catalog", "--family", "m7g", "--min-vcpu", "4", "--limit", "3")
    rows = table_rows(proc.stdout)
    assert len(rows) == 3 and all("m7g." in row and "arm64" in row for row in rows)
    types = json.loads(run_cli("catalog", "--gpus", "--limit", "5", "--json").stdout)
    assert len(types) == 5 and all(t["gpus"] > 0 for t in types)
    proc = run_cli("catalog", "--family", "m7x", check=False)
    assert proc.returncode == 1 and "'m7x'" in proc.stderr and "did you mean" in proc.stderr


def test_agent_samples_until_interrupted(tmp_path):
    folder = tmp_path / "metrics"
    # as from a terminal: a suite started in the background (`make test &`) inherits SIGINT
    # ignored, and Python keeps an ignored SIGINT ignored in its children
    agent = subprocess.Popen([str(SCRIPT), "optimizer", "agent", "--directory", folder,
                              "--interval", "0.3", "--probe-seconds", "0.05",
                              "--resource-id", "this-host"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        target = folder / "this-host.csv"
        deadline = time.monotonic() + 120  # bounded by progress: a loaded machine is slow
        while time.monotonic() < deadline:
            if target.exists() and len(target.read_text().splitlines()) >= 3:
                break
            time.sleep(0.1)
        assert target.exists(), "the agent wrote no samples in 120 s"
        agent.send_signal(signal.SIGINT)  # only once it samples: Ctrl-C as a user presses it
        out, err = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:  # never leave it running behind a failed test
            agent.kill()
            agent.communicate()
    assert agent.returncode == 0, err
    assert "sampling this-host" in out and "stopped:" in out
    [history] = read_metrics(folder)
    assert history.resource.resource_id == "this-host" and "cpu_pct" in history.metrics


class FakePrometheus(BaseHTTPRequestHandler):
    """Prometheus's query_range answer for two hosts: CPU 8 % and memory 30 %."""

    def do_GET(self):  # noqa: N802 (the http.server API)
        params = {k: v[0] for k, v in urllib.parse.parse_qs(
            urllib.parse.urlparse(self.path).query).items()}
        start, end = float(params["start"]), float(params["end"])
        step = int(params["step"].rstrip("s"))
        value = "8" if "node_cpu" in params["query"] else "30" if "Mem" in params["query"] \
            else None
        result = [] if value is None else [
            {"metric": {"instance": host}, "values": [[t, value] for t in
                                                      range(int(start), int(end) + 1, step)]}
            for host in ("web-1:9100", "web-2:9100")]
        raw = json.dumps({"status": "success",
                          "data": {"resultType": "matrix", "result": result}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args):
        pass


def test_prometheus_hosts_get_instance_types_from_a_resources_file(tmp_path):
    prometheus = ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    threading.Thread(target=prometheus.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{prometheus.server_address[1]}"
        (tmp_path / "hosts.csv").write_text("resource_id,instance_type\n"
                                            "web-1:9100,m5.2xlarge\n")
        proc = run_cli("prometheus", url, "--start", START, "--end", START + 40 * 3600,
                       "--resources", tmp_path / "hosts.csv", "--instance-type", "c5.xlarge",
                       "--json", "-")
    finally:
        prometheus.shutdown()
    recs = {r["resource_id"]: r for r in json.loads(proc.stdout)["recommendations"]}
    assert recs["web-1:9100"]["current"]["name"] == "m5.2xlarge"
    assert recs["web-2:9100"]["current"]["name"] == "c5.xlarge"
    assert recs["web-1:9100"]["finding"] == "Overprovisioned"
    proc = run_cli("prometheus", "http://127.0.0.1:9", "--days", "2", check=False)
    assert proc.returncode == 1 and "cannot reach Prometheus" in proc.stderr


def test_analyses_on_a_server(tmp_path, fleet_dir):
    proc = run_cli("analyses", "create", "--path", fleet_dir, "--endpoint-url",
                   (refusing := ServerProcess(tmp_path / "default").start()).url, check=False)
    refusing.stop()
    assert proc.returncode == 1 and "--import-root" in proc.stderr  # server paths: opt-in
    server = ServerProcess(tmp_path / "data",
                           env={"FORESTREAM_IMPORT_ROOTS": str(fleet_dir)}).start()
    try:
        remote = ("--endpoint-url", server.url)
        proc = run_cli("analyses", "create", "--path", fleet_dir, "--lookback-days", "14",
                       *remote)
        analysis_id = proc.stdout.strip().splitlines()[-1]
        assert len(table_rows(proc.stdout)) == 6 and "6 resources:" in proc.stdout
        assert analysis_id in run_cli("analyses", "list", *remote).stdout
        proc = run_cli("analyses", "show", analysis_id, "--finding", "Idle", "--html",
                       tmp_path / "r.html", "--json", tmp_path / "a.json", *remote)
        assert all("Idle" in row for row in table_rows(proc.stdout))
        assert (tmp_path / "r.html").read_text().count("<svg viewBox") == 6
        assert json.loads((tmp_path / "a.json").read_text())["id"] == analysis_id
        run_cli("analyses", "delete", analysis_id, *remote)
        proc = run_cli("analyses", "show", analysis_id, *remote, check=False)
        assert proc.returncode == 1 and "404" in proc.stderr
        proc = run_cli("analyses", "create", "--components", *remote, check=False)
        assert proc.returncode == 1 and "no component metrics" in proc.stderr
        assert "collector stopped" in run_cli("components", *remote).stdout
    finally:
        server.stop()
    proc = run_cli("analyses", "list", *remote, check=False)
    assert proc.returncode == 1 and "is `forestream server` running?" in proc.stderr


def test_help_teaches_with_examples():
    out = run_cli("--help").stdout
    for command in ("recommend", "prometheus", "catalog", "agent", "report", "analyses",
                    "components"):
        assert command in out
    assert "forestream optimizer recommend metrics/" in run_cli("recommend", "--help").stdout


def test_cli_choices_are_the_recommenders():
    from forestream.cli import optimizer as cli_optimizer
    from forestream.cli.optimizer import options
    from forestream.optimizer import findings, policies, recommend, types

    assert tuple(map(int, cli_optimizer.LOOKBACK_DAYS)) == recommend.LOOKBACK_DAYS
    assert cli_optimizer.POLICIES == policies.POLICIES
    assert tuple(map(float, cli_optimizer.CPU_PERCENTILES)) == policies.CPU_PERCENTILES
    assert tuple(map(float, options.SLO_PERCENTILES)) == types.SLO_PERCENTILES
    assert tuple(map(float, cli_optimizer.CPU_HEADROOMS)) == policies.CPU_HEADROOMS
    assert tuple(map(float, cli_optimizer.MEM_HEADROOMS)) == policies.MEM_HEADROOMS
    expected = (*findings.FINDINGS, findings.INSUFFICIENT_DATA, findings.UNSUPPORTED)
    assert tuple(cli_optimizer.FINDINGS) == expected
    assert cli_optimizer.KINDS == types.RESOURCE_KINDS
