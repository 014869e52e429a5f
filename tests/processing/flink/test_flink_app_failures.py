"""An application created with ``runtime = "flink"`` (over REST, as a user would) survives
the ``kill -9`` of a TaskManager that runs it while records keep arriving.

The documented semantics (docs/flink.md, "Delivery"): keyed state is exactly-once (the
source's shard positions and the counts are in the same Flink checkpoint), the Kinesis
sink is at-least-once with record ids that a replay reproduces. So after dropping repeats
by ``_record_id`` every key's count runs 1..n exactly once, and every repeat is
byte-for-byte the record it repeats (same id, same partition key, same data).
"""

from __future__ import annotations

import time

import pytest
from flink_testkit import new_streams, put_counted, read_all, wait_for
from test_flink_applications import COUNTS_JOB, create, rest, stop

pytestmark = [pytest.mark.service, pytest.mark.slow]

KEYS = [f"key-{n}" for n in range(8)]


def _by_id(kinesis, stream):
    """Output records by ``_record_id``: every copy of each (partition key, raw bytes)."""
    import json

    copies: dict[str, list[tuple[str, bytes]]] = {}
    for record in read_all(kinesis, stream):
        value = json.loads(record["Data"])
        copies.setdefault(value["_record_id"], []).append((record["PartitionKey"],
                                                            bytes(record["Data"])))
    return copies


def _latest(kinesis, stream) -> dict[str, int]:
    import json

    latest: dict[str, int] = {}
    for copies in _by_id(kinesis, stream).values():
        value = json.loads(copies[0][1])
        latest[value["k"]] = max(latest.get(value["k"], 0), value["n"])
    return latest


def test_taskmanager_killed_under_a_flink_application_keeps_per_key_totals_exact(
        forestream_server, kinesis_client, flink_cluster):
    streams = new_streams(kinesis_client, input=2, output=2)
    name = "kill-tm-flink"
    create(forestream_server, name, COUNTS_JOB,
           {"job": {"input": streams["input"], "output": streams["output"]}},
           runtime="flink", flink_url=flink_cluster.rest_url, parallelism=2)
    flink = flink_cluster.rest
    started = rest(forestream_server, "POST", f"/{name}/start")
    job = started["flink"]["job_id"]
    victim = None
    try:
        flink.wait_for_state(job, ["RUNNING"], timeout=180)
        expected = put_counted(kinesis_client, streams["input"], KEYS, per_key=50)
        wait_for(lambda: flink.checkpoints(job)["counts"]["completed"] >= 1 and
                 sum(_latest(kinesis_client, streams["output"]).values()) > 0,
                 "the first checkpoint and output", progress=lambda: flink.job(job)["state"])
        victim = flink_cluster.task_managers_of(job)[0]
        for batch in range(12):  # records keep arriving before, during and after the kill
            expected = put_counted(kinesis_client, streams["input"], KEYS, per_key=25,
                                   start=expected)
            if batch == 6:  # the job is counting this run's records: kill
                wait_for(lambda: sum(_latest(kinesis_client, streams["output"]).values())
                         >= len(KEYS) * (50 + 3 * 25), "output of the records put meanwhile",
                         progress=lambda: sorted(
                             _latest(kinesis_client, streams["output"]).items()))
                flink_cluster.kill_task_manager(victim)
            time.sleep(0.1)
        flink_cluster.start_task_manager(victim)  # later tests get 4 slots again
        victim = None
        wait_for(lambda: _latest(kinesis_client, streams["output"]) == expected,
                 "every key's final count", stall_seconds=180,
                 progress=lambda: sorted(_latest(kinesis_client, streams["output"]).items()))
        described = rest(forestream_server, "GET", f"/{name}")
        failures = len(flink.exceptions(job)["history"])
    finally:
        if victim is not None:
            flink_cluster.start_task_manager(victim)
        stop(forestream_server, name, force=True)
        rest(forestream_server, "DELETE", f"/{name}")

    import json

    copies = _by_id(kinesis_client, streams["output"])
    per_key: dict[str, list[tuple[int, int]]] = {}
    for rid, same in copies.items():
        # at-least-once with ids: a repeat is the same record again, never a new count
        assert len(set(same)) == 1, f"copies of {rid} differ: {same}"
        value = json.loads(same[0][1])
        assert same[0][0] == value["k"]  # partition key: the forestream key
        per_key.setdefault(value["k"], []).append((value["i"], value["n"]))
    # exactly-once state: each input record counted once, in order, across the failure
    assert {key: sorted(pairs) for key, pairs in per_key.items()} == \
        {key: [(i, i) for i in range(1, total + 1)] for key, total in expected.items()}
    assert failures >= 1, "the TaskManager's loss should have failed and restarted the job"
    assert described["status"] == "RUNNING" and described["flink"]["job_id"] == job
    repeats = sum(len(same) - 1 for same in copies.values())
    print(f"kill -9 under a flink application: {failures} failure(s), {repeats} repeated "
          f"output record(s) of {sum(expected.values())}")
