"""Applications through the REST API and the CLI, on a real server with real workers."""

import json
import os
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import pytest
from apps_testkit import SCRIPT, api, cli, create_streams, put, totals, wait

pytestmark = [pytest.mark.service, pytest.mark.slow]

JOB = '''
from forestream.processing import kinesis_client

def build(env, properties):
    client = kinesis_client()
    group = properties["job"]
    (env.from_kinesis(group["input"], client)
        .key_by(lambda e: e["k"])
        .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
        .sink_to_kinesis(group["output"], client))
'''

BROKEN = '''
import time

STARTED = time.time()


def fail_after_a_while(x):
    if time.time() - STARTED > 1.5:  # runs (and checkpoints) for a while, then breaks
        return 1 / 0
    return x


def build(env, properties):
    (env.from_generator(lambda: iter(range(10**9)))
        .map(fail_after_a_while)
        .filter(lambda x: x < 0))
'''


def test_application_lifecycle_checkpoints_and_restart(server, kinesis, tmp_path):
    create_streams(kinesis, **{"in": 2, "out": 1})
    code = tmp_path / "job.py"
    code.write_text(JOB)
    out = cli(server, "create", "counter", "--code", code, "-p", "job.input=in",
              "-p", "job.output=out", "--checkpoint-interval", "0.5").stdout
    assert "created" in out
    assert "READY" in cli(server, "list").stdout
    cli(server, "start", "counter")
    put(kinesis, "in", 300)
    assert wait(lambda: totals(kinesis, "out") == {"a": 100, "b": 100, "c": 100}, 90,
                "first totals")
    described = wait(lambda: (d := api(server, "GET", "/counter"))["runtime"] and
                     d["runtime"].get("checkpoints") and d, 30, "a checkpoint")
    assert described["status"] == "RUNNING"
    assert "stopped" not in cli(server, "logs", "counter").stdout
    metrics = wait(lambda: (m := urllib.request.urlopen(server.request("/metrics")).read()
                            .decode()) and "forestream_application_busy_seconds_total" in m
                   and m, 30, "application metrics")
    assert 'forestream_application_running_workers{application="counter"} 1' in metrics
    assert 'application="counter",worker="0",operator=' in metrics
    assert 'forestream_application_millis_behind_latest{application="counter"' in metrics
    # everything read: the lag in records is 0 on every source shard
    assert 'forestream_application_records_behind{application="counter",worker="0",' \
        in metrics
    caught_up = wait(lambda: (r := api(server, "GET", "/counter")["runtime"])
                     .get("records_behind_total") == 0 and r, 30, "no records behind")
    assert len(caught_up["records_behind"]) == 2  # both shards of "in"

    out = cli(server, "stop", "counter").stdout  # final checkpoint + snapshot
    assert "READY" in out
    assert len(api(server, "GET", "/counter/snapshots")["snapshots"]) == 1
    put(kinesis, "in", 30)  # arrives while stopped
    assert api(server, "GET", "/counter")["runtime"]["records_behind_total"] == 30
    assert "records behind (not yet read, all source shards): 30" in \
        cli(server, "describe", "counter").stdout
    cli(server, "start", "counter")  # resumes from the checkpoint: state carries on
    assert wait(lambda: totals(kinesis, "out") == {"a": 110, "b": 110, "c": 110}, 90,
                "totals after restart")

    # A crashed worker (SIGKILL) is restarted from its latest checkpoint by the server.
    pid = wait(lambda: (api(server, "GET", "/counter")["runtime"] or {}).get("pid"), 30, "pid")
    os.kill(pid, 9)
    put(kinesis, "in", 30)
    assert wait(lambda: totals(kinesis, "out") == {"a": 120, "b": 120, "c": 120}, 90,
                "totals after a crash")
    assert api(server, "GET", "/counter")["status"] == "RUNNING"

    cli(server, "snapshots", "create", "counter", "manual")
    assert "manual" in cli(server, "snapshots", "list", "counter").stdout
    cli(server, "stop", "counter", "--no-snapshot")
    result = cli(server, "start", "counter", "--restore", "snapshot", "--snapshot", "nope",
                 check=False)
    assert result.returncode != 0 and "no snapshot 'nope'" in result.stderr
    put(kinesis, "in", 30)  # after the snapshot: read again from its positions
    cli(server, "start", "counter", "--restore", "snapshot", "--snapshot", "manual")
    assert wait(lambda: totals(kinesis, "out") == {"a": 130, "b": 130, "c": 130}, 90,
                "totals after restoring the snapshot")
    # the restored checkpoints keep their own numbers, so later checkpoints (not the
    # snapshot again) are what the next restart restores
    app_dir = Path(server.data_dir) / "apps" / "counter"
    assert not list(app_dir.glob("checkpoints/**/checkpoint-99999999.pkl"))
    cli(server, "stop", "counter", "--no-snapshot")
    cli(server, "snapshots", "delete", "counter", "manual")
    cli(server, "delete", "counter")
    with pytest.raises(urllib.error.HTTPError) as err:
        api(server, "GET", "/counter")
    assert err.value.code == 404
    assert json.loads(err.value.read())["title"] == "ResourceNotFoundException"


def test_broken_code_fails_with_traceback_in_logs_and_keeps_its_checkpoint(server, tmp_path):
    code = tmp_path / "broken.py"
    code.write_text(BROKEN)
    api(server, "POST", "", {"name": "broken", "code": str(code), "checkpoint_interval": 0.2})
    api(server, "POST", "/broken/start")
    failed = wait(lambda: (d := api(server, "GET", "/broken"))["status"] == "READY" and d,
                  120, "the application to give up")
    assert "failed" in failed["last_failure"]["reason"]
    log = "\n".join(api(server, "GET", "/broken/logs?tail=1000")["lines"])
    assert "ZeroDivisionError" in log and "Traceback" in log
    checkpoints = list((Path(server.data_dir) / "apps" / "broken" / "checkpoints").glob("*.pkl"))
    assert checkpoints  # what was checkpointed before the failure is still there


def test_bad_requests_get_problem_details(server, tmp_path):
    cases = [
        ({"name": "x y", "code": "/nope.py"}, 400, "application name"),
        ({"name": "ok"}, 400, "'code'"),
        ({"name": "ok", "code": {"filename": "job.txt", "text": ""}}, 400, "ending in .py"),
        # a default server reads no paths of its own for a request
        ({"name": "ok", "code": str(tmp_path / "missing.py")}, 403, "path on the server"),
    ]
    for body, status, needle in cases:
        with pytest.raises(urllib.error.HTTPError) as err:
            api(server, "POST", "", body)
        problem = json.loads(err.value.read())
        assert err.value.code == status and needle in problem["detail"]
        assert err.value.headers["Content-Type"] == "application/problem+json"
    code = tmp_path / "job.py"
    code.write_text(JOB)
    for bad in (0, 65, "2"):
        with pytest.raises(urllib.error.HTTPError) as err:
            api(server, "POST", "", {"name": "par", "code": str(code), "parallelism": bad})
        assert "parallelism must be an integer in [1, 64]" in json.loads(err.value.read())[
            "detail"]
    api(server, "POST", "", {"name": "twice", "code": str(code)})
    with pytest.raises(urllib.error.HTTPError) as err:
        api(server, "POST", "", {"name": "twice", "code": str(code)})
    assert err.value.code == 409
    with pytest.raises(urllib.error.HTTPError) as err:
        api(server, "POST", "/twice/stop")
    assert err.value.code == 409


def test_two_workers_split_the_shards_and_one_takes_over_when_the_other_dies(server, kinesis,
                                                                            tmp_path):
    create_streams(kinesis, pin=4, pout=1)
    code = tmp_path / "job.py"
    code.write_text(JOB)
    api(server, "POST", "", {"name": "par", "code": str(code), "parallelism": 2,
                             "checkpoint_interval": 0.3,
                             "properties": {"job": {"input": "pin", "output": "pout"}}})
    api(server, "POST", "/par/start")
    keys = tuple(f"key{i}" for i in range(12))
    put(kinesis, "pin", 600, keys)

    def split():
        runtime = api(server, "GET", "/par")["runtime"] or {}
        workers = runtime.get("workers") or []
        shards = [sorted(w.get("shards", [])) for w in workers]
        return len(shards) == 2 and all(len(s) == 2 for s in shards) and shards

    shards = wait(split, 60, "two workers with two shards each")
    assert sorted(shards[0] + shards[1]) == [f"shardId-00000000000{i}" for i in range(4)]
    assert wait(lambda: totals(kinesis, "pout") == {k: 50 for k in keys}, 90, "totals")
    metrics = wait(lambda: (m := urllib.request.urlopen(server.request("/metrics")).read()
                            .decode()) and 'application="par",worker="1",operator=' in m
                   and m, 30, "metrics of both workers")
    assert 'forestream_application_running_workers{application="par"} 2' in metrics

    statuses = api(server, "GET", "/par")["runtime"]["workers"]
    victim = statuses[1]["pid"]
    os.kill(victim, 9)  # the server restarts it; meanwhile its leases expire
    put(kinesis, "pin", 120, keys)
    assert wait(lambda: totals(kinesis, "pout") == {k: 60 for k in keys}, 120,
                "totals after a worker died")
    assert wait(split, 60, "shards balanced again")
    api(server, "POST", "/par/stop")
    snapshots = api(server, "GET", "/par/snapshots")["snapshots"]
    parts = snapshots[0]["parts"] if len(snapshots) == 1 else []
    # one per source shard and one per key group (16 by default)
    assert len(parts) == 4 + 16 and sum(p.startswith("keygroup-") for p in parts) == 16


def test_rest_api_requires_signatures_when_credentials_are_configured(tmp_path,
                                                                       server_process):
    proc = server_process(tmp_path / "auth", env={"FORESTREAM_ACCESS_KEY_ID": "AKID",
                                                  "FORESTREAM_SECRET_ACCESS_KEY": "s3cret",
                                                  "FORESTREAM_NO_TOKEN": "1"}, token=False)
    proc.start()
    with pytest.raises(urllib.error.HTTPError) as err:
        api(proc, "GET", "")
    assert err.value.code == 401
    assert "sign with the server's credentials" in json.loads(err.value.read())["detail"]
    signed = {**os.environ, "FORESTREAM_ACCESS_KEY_ID": "AKID",
              "FORESTREAM_SECRET_ACCESS_KEY": "s3cret", "COLUMNS": "200"}
    run = subprocess.run([str(SCRIPT), "apps", "list", "--endpoint-url", proc.url],
                         capture_output=True, text=True, timeout=120, env=signed)
    assert run.returncode == 0, run.stderr
    wrong = {**signed, "FORESTREAM_SECRET_ACCESS_KEY": "nope"}
    run = subprocess.run([str(SCRIPT), "apps", "list", "--endpoint-url", proc.url],
                         capture_output=True, text=True, timeout=120, env=wrong)
    assert run.returncode != 0 and "401" in run.stderr


def test_server_stop_lets_running_workers_finish_their_final_checkpoint(tmp_path,
                                                                        server_process):
    proc = server_process(tmp_path / "graceful").start()
    kinesis = boto3.client("kinesis", endpoint_url=proc.url, region_name="us-east-1",
                           aws_access_key_id="t", aws_secret_access_key="t")
    create_streams(kinesis, gin=1, gout=1)
    code = tmp_path / "job.py"
    code.write_text(JOB)
    api(proc, "POST", "", {"name": "graceful", "code": str(code),
                           "properties": {"job": {"input": "gin", "output": "gout"}}})
    api(proc, "POST", "/graceful/start")
    put(kinesis, "gin", 30)
    wait(lambda: totals(kinesis, "gout") == {"a": 10, "b": 10, "c": 10}, 60, "totals")
    proc.proc.terminate()  # SIGTERM, as a service manager stops the server
    proc.proc.wait(60)
    status = json.loads((tmp_path / "graceful" / "apps" / "graceful" / "status.json")
                        .read_text())
    assert status["state"] == "STOPPED"  # the worker finished, not killed mid-flush
    log = (tmp_path / "graceful" / "apps" / "graceful" / "logs" / "worker.log").read_text()
    assert "stopped after" in log


def test_malformed_start_stop_and_logs_requests_are_400s(server, tmp_path):
    code = tmp_path / "job.py"
    code.write_text(JOB)
    api(server, "POST", "", {"name": "picky", "code": str(code),
                             "properties": {"job": {"input": "x", "output": "y"}}})
    for method, path, data in (("POST", "/picky/start", b"{not json"),
                               ("POST", "/picky/stop", b"[1, 2]"),
                               ("GET", "/picky/logs?tail=lots", None),
                               ("GET", "/picky/logs?tail=0", None)):
        request = server.request(f"/api/v1/applications{path}",
                                         data=data, method=method)
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(request)
        assert err.value.code == 400, path
        problem = json.loads(err.value.read())
        assert "JSON object" in problem["detail"] or "tail" in problem["detail"]
    assert api(server, "GET", "/picky")["status"] == "READY"  # nothing changed
