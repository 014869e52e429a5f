"""Autoscaling: the policy's validation and decisions on synthetic worker statuses, then a
real application that gets busy, is scaled up (AUTOSCALING), goes quiet, is scaled down,
and keeps exact keyed totals throughout."""

from __future__ import annotations

import json
import threading
import time
import urllib.error

import pytest
from apps_testkit import api, cli, create_streams, totals, wait

from forestream.processing.autoscaling import (
    AutoscalingConfigError,
    AutoscalingPolicy,
    UtilizationTracker,
    decide,
)


def statuses(t, busy_per_worker):
    return [{"pid": 100 + i, "updated": t, "busy_seconds": b}
            for i, b in enumerate(busy_per_worker)]


def test_defaults_are_managed_flinks_and_bad_settings_name_the_value_and_range():
    policy = AutoscalingPolicy.from_dict({"enabled": True})
    assert (policy.scale_up_utilization, policy.scale_up_after_seconds) == (0.75, 900)
    assert (policy.scale_down_utilization, policy.scale_down_after_seconds) == (0.10, 21600)
    bad = [({"enabled": "yes"}, "enabled must be true or false, got 'yes'"),
           ({"scale_up_utilization": 1.5}, "scale_up_utilization must be in (0, 1], got 1.5"),
           ({"min_parallelism": 0}, "min_parallelism must be an integer in [1, 64], got 0"),
           ({"min_parallelism": 4, "max_parallelism": 2}, "min_parallelism 4 is above"),
           ({"scale_down_utilization": 0.8}, "must be below scale_up_utilization 0.75"),
           ({"scale_up_after_seconds": 0}, "in [1, 604800] seconds, got 0"),
           ({"speed": 3}, "unknown autoscaling setting(s) ['speed']"),
           ([1], "must be an object of settings")]
    for raw, needle in bad:
        with pytest.raises(AutoscalingConfigError) as err:
            AutoscalingPolicy.from_dict(raw)
        assert needle in str(err.value)


def test_sustained_load_doubles_up_to_the_ceiling_and_quiet_halves_down_to_the_floor():
    policy = AutoscalingPolicy(enabled=True, min_parallelism=1, max_parallelism=8,
                               scale_up_after_seconds=60, scale_down_after_seconds=120)
    tracker = UtilizationTracker()
    busy = [0.0, 0.0]
    for t in range(0, 61, 5):  # two workers, each busy 90% of the time
        tracker.observe(float(t), statuses(t, busy), keep_seconds=120)
        busy = [b + 4.5 for b in busy]
    assert tracker.mean_over(60.0, 60) == pytest.approx(0.9)
    assert decide(policy, 2, ceiling=16, tracker=tracker, now=60.0)[0] == 4
    assert decide(policy, 2, ceiling=3, tracker=tracker, now=60.0)[0] == 3  # key groups
    assert decide(policy, 8, ceiling=16, tracker=tracker, now=60.0) is None  # at the max
    assert decide(AutoscalingPolicy(), 2, 16, tracker, 60.0) is None  # not enabled

    quiet = UtilizationTracker()
    for t in range(0, 121, 5):  # 5% busy, and worker 1 restarted (its counter went back)
        b = t * 0.05
        quiet.observe(float(t), [{"pid": 1, "updated": t, "busy_seconds": b},
                                 {"pid": 2 if t < 50 else 3, "updated": t,
                                  "busy_seconds": b if t < 50 else (t - 50) * 0.05}], 120)
    assert quiet.mean_over(120.0, 120) == pytest.approx(0.05)
    assert decide(policy, 5, ceiling=16, tracker=quiet, now=120.0)[0] == 3
    assert decide(policy, 1, ceiling=16, tracker=quiet, now=120.0) is None  # at the floor
    # a window not yet covered since the (re)start decides nothing
    assert quiet.mean_over(100.0, 120) is None


JOB = '''
import time

from forestream.processing import kinesis_client


def slow(event):
    time.sleep(0.003)  # a CPU-heavy model stands in here
    return event


def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("ain", client)
        .map(slow)
        .key_by(lambda e: e["k"])
        .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
        .sink_to_kinesis("aout", client))
'''


@pytest.mark.service
@pytest.mark.slow
def test_a_busy_application_scales_up_then_down_keeping_its_state(server, kinesis, tmp_path):
    create_streams(kinesis, ain=2, aout=1)
    code = tmp_path / "job.py"
    code.write_text(JOB)
    with pytest.raises(urllib.error.HTTPError) as err:
        api(server, "POST", "", {"name": "auto", "code": str(code),
                                 "autoscaling": {"enabled": True, "scale_up_utilization": 2}})
    assert err.value.code == 400 and "scale_up_utilization must be in (0, 1], got 2" in \
        json.loads(err.value.read())["detail"]
    cli(server, "create", "auto", "--code", code, "--max-parallelism", "2",
        "--checkpoint-interval", "0.5", "--autoscale", "scale_up_after_seconds=3",
        "--autoscale", "scale_down_after_seconds=4")
    api(server, "POST", "/auto/start")
    sent = {"n": 0}
    stop = threading.Event()

    def feed():  # ~600 records/s: more than one worker sleeping 3 ms each can take
        while not stop.is_set():
            kinesis.put_records(StreamName="ain", Records=[
                {"Data": json.dumps({"k": f"k{i % 6}", "n": 1}).encode(),
                 "PartitionKey": f"p{sent['n'] + i}"} for i in range(60)])
            sent["n"] += 60
            time.sleep(0.1)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        up = wait(lambda: (d := api(server, "GET", "/auto"))["parallelism"] == 2 and d, 90,
                  "scaling up")
    finally:
        stop.set()
        feeder.join()
    assert up["autoscaling_events"][0]["from"] == 1 and up["autoscaling_events"][0]["to"] == 2
    assert "utilization" in up["autoscaling_events"][0]["reason"]
    assert wait(lambda: api(server, "GET", "/auto")["parallelism"] == 1, 120, "scaling down")
    expected = {f"k{i}": sent["n"] // 6 for i in range(6)}
    assert wait(lambda: totals(kinesis, "aout") == expected, 120, "exact totals")
    events = api(server, "GET", "/auto")["autoscaling_events"]
    assert [(e["from"], e["to"]) for e in events] == [(1, 2), (2, 1)]
    described = cli(server, "describe", "auto").stdout
    assert "1 → 2" in described and "2 → 1" in described and "autoscaling 1-64" in described
    log = "\n".join(api(server, "GET", "/auto/logs?tail=2000")["lines"])
    assert "autoscaling from parallelism 1 to 2" in log
    # turning it off through the CLI keeps the other settings
    cli(server, "update", "auto", "--no-autoscaling")
    policy = api(server, "GET", "/auto")["autoscaling"]
    assert policy["enabled"] is False and policy["scale_up_after_seconds"] == 3
