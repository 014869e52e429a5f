"""Applications with ``runtime = "flink"`` on a real local Flink cluster: the same job
file gives the same outputs as on the embedded runtime; stop-with-savepoint and start
continue exactly; a rescale from a savepoint keeps the keyed state; a job Flink cannot
run as forestream runs it is refused at create time with the reason."""

from __future__ import annotations

import json
import math
import textwrap
import urllib.request

import pytest
from flink_testkit import new_streams, put_counted, read_all, wait_for

from forestream.processing.app_code import ApplicationCode
from forestream.quickstart import APP_CODE
from forestream.rest_client import RestError, call

pytestmark = [pytest.mark.service, pytest.mark.slow]

COUNTS_JOB = textwrap.dedent('''
    """A running count per key, in keyed state (a KeyedProcessFunction)."""

    from forestream.processing import (KeyedProcessFunction, ValueStateDescriptor,
                                       kinesis_client)


    class Count(KeyedProcessFunction):
        def open(self, runtime_context):
            self.count = runtime_context.get_state(ValueStateDescriptor("count", 0))

        def process_element(self, event, ctx):
            n = self.count.value() + 1
            self.count.update(n)
            yield {"k": event["k"], "i": event["i"], "n": n}


    def build(env, properties):
        p = properties["job"]
        client = kinesis_client()
        (env.from_kinesis(p["input"], client)
            .key_by(lambda event: event["k"])
            .process(Count())
            .sink_to_kinesis(p["output"], client))
''')

WINDOW_JOB = textwrap.dedent('''
    """Per sensor and 10 s of event time: readings, sum, min and max."""

    from forestream.processing import (AggregateFunction, ProcessWindowFunction,
                                       TumblingEventTimeWindows, WatermarkStrategy,
                                       kinesis_client)


    class Stats(AggregateFunction):
        def create_accumulator(self):
            return (0, 0.0, None, None)

        def add(self, event, acc):
            v = event["v"]
            low = v if acc[2] is None else min(acc[2], v)
            high = v if acc[3] is None else max(acc[3], v)
            return (acc[0] + 1, acc[1] + v, low, high)

        def get_result(self, acc):
            return acc

        def merge(self, a, b):
            return (a[0] + b[0], a[1] + b[1], min(a[2], b[2]), max(a[3], b[3]))


    class Label(ProcessWindowFunction):
        def process(self, key, window, elements):
            (count, total, low, high) = elements[0]
            yield {"sensor": key, "start": window.start, "end": window.end,
                   "count": count, "sum": round(total, 6), "min": low, "max": high}


    def build(env, properties):
        p = properties["job"]
        client = kinesis_client()
        strategy = (WatermarkStrategy.for_bounded_out_of_orderness(300)
                    .with_timestamp_assigner(lambda event, _: event["t"]))
        (env.from_kinesis(p["input"], client, watermark_strategy=strategy)
            .key_by(lambda event: event["sensor"])
            .window(TumblingEventTimeWindows.of(10))
            .aggregate(Stats(), Label())
            .sink_to_kinesis(p["output"], client))
''')


def rest(server, method, path, body=None):
    return call(server.url, method, f"/api/v1/applications{path}", body, timeout=300,
                token=server.token)


def create(server, name, code, properties, runtime="embedded", flink_url=None,
           parallelism=1):
    body = {"name": name, "code": {"filename": "job.py", "text": code},
            "properties": properties, "checkpoint_interval": 1.0, "runtime": runtime,
            "parallelism": parallelism}
    if flink_url:
        body["flink_url"] = flink_url
    return rest(server, "POST", "", body)


def outputs(kinesis, stream):
    """The records of an output stream by ``_record_id`` (duplicates of a replay
    dropped: both runtimes' sinks are at-least-once with ids)."""
    by_id = {}
    for record in read_all(kinesis, stream):
        value = json.loads(record["Data"])
        by_id.setdefault(value["_record_id"], (record["PartitionKey"], value))
    return by_id


def wait_outputs(kinesis, stream, count, what):
    return wait_for(lambda: (found := outputs(kinesis, stream)) and len(found) >= count
                    and found, what, progress=lambda: len(outputs(kinesis, stream)))


def stop(server, name, **body):
    return rest(server, "POST", f"/{name}/stop", body)


def test_untranslatable_job_is_refused_at_create_naming_the_step(forestream_server):
    code = textwrap.dedent('''
        from forestream.processing import Pattern, kinesis_client

        def build(env, properties):
            client = kinesis_client()
            (env.from_kinesis("in", client).key_by(lambda e: e["k"])
                .pattern(Pattern.begin("a").where(lambda e: e["v"] > 1))
                .sink_to_kinesis("out", client))
    ''')
    with pytest.raises(RestError) as refused:
        create(forestream_server, "refused-cep", code, {}, runtime="flink",
               flink_url="http://127.0.0.1:9")
    assert refused.value.status == 400
    assert "2-pattern (pattern): complex event patterns have no PyFlink counterpart" in \
        str(refused.value)
    with pytest.raises(RestError, match="not found"):
        rest(forestream_server, "GET", "/refused-cep")  # nothing was kept
    with pytest.raises(RestError, match="runtime 'spark' must be one of"):
        create(forestream_server, "bad-runtime", COUNTS_JOB, {}, runtime="spark")
    # an update to code Flink cannot run is refused too, and changes nothing
    create(forestream_server, "update-refused", COUNTS_JOB,
           {"job": {"input": "in", "output": "out"}}, runtime="flink",
           flink_url="http://127.0.0.1:9")
    with pytest.raises(RestError, match="2-pattern \\(pattern\\)"):
        rest(forestream_server, "PATCH", "/update-refused",
             {"code": {"filename": "job.py", "text": code}})
    kept = rest(forestream_server, "GET", "/update-refused")
    assert kept["version"] == 1 and kept["flink"]["plan"][2]["flink"] == "keyed_process"
    rest(forestream_server, "DELETE", "/update-refused")


def _detector_readings():
    readings = []
    for i in range(320):
        for machine in ("m1", "m2"):
            for sensor in ("temperature", "cpu"):
                value = 50 + 10 * math.sin(i / 12 + len(sensor)) + (i % 7) * 0.3
                if machine == "m2" and sensor == "cpu" and i == 250:
                    value += 40  # one incident
                readings.append({"machine": machine, "sensor": sensor, "i": i,
                                 "value": round(value, 4)})
    return readings


def _window_events():
    return [{"sensor": f"s{n % 3}", "t": 1000 + n * 0.7, "v": (n * 37) % 11}
            for n in range(300)]


@pytest.fixture(scope="module")
def alike_apps(forestream_server, kinesis_client, flink_cluster):
    """The detector and the windowed aggregation, each as an embedded and a Flink
    application on the same input, all four created and started at once (their jobs
    start and run side by side: 2 of the cluster's 4 slots); each test stops its own
    pair. Returns the streams, the readings, the events and the detector's answer."""
    streams = new_streams(kinesis_client, readings=2, scores_e=1, alerts_e=1, scores_f=1,
                          alerts_f=1, events=2, out_e=1, out_f=1)
    readings = _detector_readings()
    for begin in range(0, len(readings), 500):
        kinesis_client.put_records(StreamName=streams["readings"], Records=[
            {"Data": json.dumps(r).encode(), "PartitionKey": r["machine"]}
            for r in readings[begin:begin + 500]])
    events = _window_events()
    kinesis_client.put_records(StreamName=streams["events"], Records=[
        {"Data": json.dumps(e).encode(), "PartitionKey": e["sensor"]} for e in events])
    # then, on each shard, an event far later that moves the watermark past every window
    # (out-of-orderness 300 s covers any drift between the shards: the Python timestamp
    # assigner runs after Flink's source, per subtask, not per shard; see the plan's note)
    kinesis_client.put_records(StreamName=streams["events"], Records=[
        {"Data": json.dumps({"sensor": "flush", "t": 5000, "v": 0}).encode(),
         "PartitionKey": "flush", "ExplicitHashKey": str(hash_key)}
        for hash_key in (0, 2**127 + 1)])

    def properties(side):
        return {"detector": {"input": streams["readings"], "scores": streams[f"scores_{side}"],
                             "alerts": streams[f"alerts_{side}"], "alert_grade": 0.5,
                             "shingle_size": 4}}

    names = ["detector-embedded", "detector-flink", "windows-embedded", "windows-flink"]
    created = {}
    try:
        create(forestream_server, "detector-embedded", APP_CODE, properties("e"))
        created["detector-flink"] = create(forestream_server, "detector-flink", APP_CODE,
                                           properties("f"), runtime="flink",
                                           flink_url=flink_cluster.rest_url)
        for runtime, out in (("embedded", "out_e"), ("flink", "out_f")):
            create(forestream_server, f"windows-{runtime}", WINDOW_JOB,
                   {"job": {"input": streams["events"], "output": streams[out]}},
                   runtime=runtime,
                   flink_url=flink_cluster.rest_url if runtime == "flink" else None)
        for name in names:
            rest(forestream_server, "POST", f"/{name}/start")
        yield {"streams": streams, "readings": readings, "events": events,
               "detector_flink": created["detector-flink"]}
    finally:
        for name in names:  # those a test did not get to stop
            try:
                if rest(forestream_server, "GET", f"/{name}")["status"] == "RUNNING":
                    stop(forestream_server, name, force=True)
            except RestError:
                pass


def test_detector_job_grades_alike_on_embedded_and_on_flink(forestream_server,
                                                            kinesis_client, alike_apps):
    """The quickstart's application code, unchanged, on both runtimes, same input."""
    streams, readings = alike_apps["streams"], alike_apps["readings"]
    app = alike_apps["detector_flink"]
    assert app["runtime_environment"] == "flink"
    assert [row["flink"] for row in app["flink"]["plan"]][:3] == [
        "kinesis_source", "key_by", "thresholded_rcf"]
    try:
        embedded = wait_outputs(kinesis_client, streams["scores_e"], len(readings),
                                "embedded grades")
        flink = wait_outputs(kinesis_client, streams["scores_f"], len(readings),
                             "Flink grades")
        described = rest(forestream_server, "GET", "/detector-flink")
        assert described["runtime"]["state"] == "RUNNING"
        assert described["runtime"]["flink_job"] == described["flink"]["job_id"]
        with urllib.request.urlopen(forestream_server.request("/metrics"), timeout=60) as r:
            metrics = r.read().decode()
        assert 'forestream_application_running_workers{application="detector-flink"} 1' \
            in metrics
    finally:
        stop(forestream_server, "detector-embedded")
        stop(forestream_server, "detector-flink", force=True)
    assert flink == embedded  # same ids, partition keys, scores, grades, explanations
    alerts_e = outputs(kinesis_client, streams["alerts_e"])
    assert alerts_e and outputs(kinesis_client, streams["alerts_f"]) == alerts_e


def test_windowed_aggregation_gives_the_same_windows_on_both_runtimes(
        forestream_server, kinesis_client, alike_apps):
    streams, events = alike_apps["streams"], alike_apps["events"]
    closed = {(e["sensor"], (e["t"] // 10) * 10) for e in events}
    try:
        embedded = wait_outputs(kinesis_client, streams["out_e"], len(closed),
                                "embedded windows")
        flink = wait_outputs(kinesis_client, streams["out_f"], len(closed), "Flink windows")
    finally:
        stop(forestream_server, "windows-embedded")
        stop(forestream_server, "windows-flink", force=True)
    assert flink == embedded
    assert {(v["sensor"], v["start"]) for _, v in embedded.values()} == closed
    assert sum(v["count"] for _, v in embedded.values()) == len(events)


def test_stop_with_savepoint_start_and_a_rescale_to_two_continue_counting_exactly(
        forestream_server, kinesis_client, flink_cluster):
    """One counting application (one job at a time, not two applications): stopped with
    a savepoint and started from it, then rescaled from 1 to 2 (Flink restores the
    keyed state from a savepoint at the new parallelism); every record counted once, in
    order, across both."""
    streams = new_streams(kinesis_client, input=2, output=1)
    create(forestream_server, "counts-flink", COUNTS_JOB,
           {"job": {"input": streams["input"], "output": streams["output"]}},
           runtime="flink", flink_url=flink_cluster.rest_url)
    keys = [f"key-{n}" for n in range(8)]
    rest(forestream_server, "POST", "/counts-flink/start")
    try:
        totals = put_counted(kinesis_client, streams["input"], keys, 20)
        wait_outputs(kinesis_client, streams["output"], sum(totals.values()), "first counts")
        stopped = stop(forestream_server, "counts-flink")
        assert stopped["status"] == "READY" and stopped["snapshots"] == 1
        snapshot = rest(forestream_server, "GET", "/counts-flink/snapshots")["snapshots"][0]
        assert snapshot["savepoint"] and snapshot["bytes"] > 0
        totals = put_counted(kinesis_client, streams["input"], keys, 15, totals)
        rest(forestream_server, "POST", "/counts-flink/start")  # from the savepoint
        found = wait_outputs(kinesis_client, streams["output"], sum(totals.values()),
                             "counts after the restart")
        per_key = {}
        for _, value in found.values():
            per_key.setdefault(value["k"], []).append((value["i"], value["n"]))
        for key in keys:  # every record counted once, in order, across the stop
            assert sorted(per_key[key]) == [(i, i) for i in range(1, totals[key] + 1)]

        updated = rest(forestream_server, "PATCH", "/counts-flink", {"parallelism": 2})
        assert updated["parallelism"] == 2 and updated["status"] == "RUNNING"
        job = flink_cluster.rest.job(updated["flink"]["job_id"])
        assert max(v["parallelism"] for v in job["vertices"]) == 2
        totals = put_counted(kinesis_client, streams["input"], keys, 10, totals)
        found = wait_outputs(kinesis_client, streams["output"], sum(totals.values()),
                             "counts at 2")
    finally:
        stop(forestream_server, "counts-flink", force=True)
    per_key = {}
    for _, value in found.values():
        per_key.setdefault(value["k"], []).append((value["i"], value["n"]))
    for key in keys:  # and across the rescale
        assert sorted(per_key[key]) == [(i, i) for i in range(1, totals[key] + 1)]


def test_code_sent_as_zip_with_a_helper_module_runs_on_flink(forestream_server):
    """The plan is made from the installed code, helper modules included."""
    code = ApplicationCode({"main.py": b"from helper import pipeline\n"
                                       b"def build(env, properties):\n"
                                       b"    pipeline(env)\n",
                            "helper.py": b"from forestream.processing import kinesis_client\n"
                                         b"def pipeline(env):\n"
                                         b"    c = kinesis_client()\n"
                                         b"    env.from_kinesis('a', c).map(str)"
                                         b".sink_to_kinesis('b', c)\n"}, "main.py")
    app = rest(forestream_server, "POST", "", {
        "name": "zipped-flink", "code": code.to_request(), "runtime": "flink",
        "flink_url": "http://127.0.0.1:9"})
    assert [row["flink"] for row in app["flink"]["plan"]] == [
        "kinesis_source", "map", "kinesis_sink"]
    rest(forestream_server, "DELETE", "/zipped-flink")
