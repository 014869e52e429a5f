"""Keyed state across parallel workers on a real server: records of every key arrive on
every shard, the source is resharded and a worker is killed mid-run, and the running
totals stay exact; key groups are balanced over the workers; the exchange stream goes
when the application does; jobs the exchange cannot run fail with the reason."""

import json
import os
import urllib.error
from pathlib import Path

import pytest
from apps_testkit import api, create_streams, totals, wait

pytestmark = [pytest.mark.service, pytest.mark.slow]

JOB = '''
from forestream.processing import kinesis_client

def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("kin", client)
        .filter(lambda e: e["n"] > 0)
        .key_by(lambda e: e["k"])
        .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
        .sink_to_kinesis("kout", client))
'''

REKEYED = '''
from forestream.processing import kinesis_client

def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("kin", client)
        .key_by(lambda e: e["k"]).reduce(lambda a, b: a)
        .key_by(lambda e: e["n"]).reduce(lambda a, b: a)
        .sink_to_kinesis("kout", client))
'''

KEYS = [f"sensor-{i}" for i in range(8)]


def put_spread(kinesis, start, n):
    """``n`` records, one per key in turn, each with its own partition key: every key's
    records land on every shard."""
    records = [{"Data": json.dumps({"k": KEYS[i % len(KEYS)], "n": 1}).encode(),
                "PartitionKey": f"event-{start + i}"} for i in range(n)]
    for at in range(0, n, 500):
        kinesis.put_records(StreamName="kin", Records=records[at:at + 500])


def test_keyed_totals_stay_exact_through_a_reshard_and_a_killed_worker(server, kinesis,
                                                                      tmp_path):
    create_streams(kinesis, kin=2, kout=1)
    code = tmp_path / "job.py"
    code.write_text(JOB)
    api(server, "POST", "", {"name": "keyed", "code": str(code), "parallelism": 2,
                             "max_parallelism": 4, "checkpoint_interval": 0.3})
    api(server, "POST", "/keyed/start")
    put_spread(kinesis, 0, 400)
    assert wait(lambda: totals(kinesis, "kout") == {k: 50 for k in KEYS}, 90, "totals")

    def balanced():
        workers = (api(server, "GET", "/keyed")["runtime"] or {}).get("workers") or []
        groups = [w.get("key_groups", []) for w in workers]
        return len(groups) == 2 and all(len(g) == 2 for g in groups) and groups

    groups = wait(balanced, 60, "two key groups per worker")
    assert len(set(groups[0] + groups[1])) == 4
    exchange = [s for s in kinesis.list_streams()["StreamNames"]
                if s.startswith("forestream-exchange-keyed-")]
    assert len(exchange) == 1
    assert len(kinesis.list_shards(StreamName=exchange[0])["Shards"]) == 4

    # split a source shard while the job runs: no key's state is tied to a shard
    shard = kinesis.list_shards(StreamName="kin")["Shards"][0]
    low = int(shard["HashKeyRange"]["StartingHashKey"])
    high = int(shard["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName="kin", ShardToSplit=shard["ShardId"],
                        NewStartingHashKey=str((low + high) // 2))
    kinesis.get_waiter("stream_exists").wait(StreamName="kin", WaiterConfig={"Delay": 0.1})
    put_spread(kinesis, 400, 400)
    assert wait(lambda: totals(kinesis, "kout") == {k: 100 for k in KEYS}, 90,
                "totals after the reshard")

    victim = api(server, "GET", "/keyed")["runtime"]["workers"][1]["pid"]
    os.kill(victim, 9)  # its leases expire; the other worker (and its restart) take over
    put_spread(kinesis, 800, 200)
    assert wait(lambda: totals(kinesis, "kout") == {k: 125 for k in KEYS}, 120,
                "totals after a worker died")
    assert wait(balanced, 60, "key groups balanced again")

    api(server, "POST", "/keyed/stop")
    api(server, "DELETE", "/keyed")
    # the exchange stream goes too: DELETING for a moment (as on AWS), then gone
    assert wait(lambda: not [s for s in kinesis.list_streams()["StreamNames"]
                             if s.startswith("forestream-exchange-keyed-")], 30,
                "the exchange stream deleted with its application")


def test_parallelism_above_max_parallelism_and_rekeyed_jobs_are_refused(server, kinesis,
                                                                       tmp_path):
    code = tmp_path / "job.py"
    code.write_text(JOB)
    for body, needle in (({"parallelism": 4, "max_parallelism": 2},
                          "parallelism 4 is above max_parallelism 2"),
                         ({"max_parallelism": 0},
                          "max_parallelism (key groups) must be an integer in [1, 128], got 0")):
        with pytest.raises(urllib.error.HTTPError) as err:
            api(server, "POST", "", {"name": "bad", "code": str(code), **body})
        assert err.value.code == 400 and needle in json.loads(err.value.read())["detail"]
    api(server, "POST", "", {"name": "ok", "code": str(code), "max_parallelism": 2})
    with pytest.raises(urllib.error.HTTPError) as err:
        api(server, "PATCH", "/ok", {"parallelism": 3})
    assert err.value.code == 400 and "above max_parallelism 2" in json.loads(
        err.value.read())["detail"]

    create_streams(kinesis, kin=1, kout=1)
    rekeyed = tmp_path / "rekeyed.py"
    rekeyed.write_text(REKEYED)
    api(server, "POST", "", {"name": "rekeyed", "code": str(rekeyed), "parallelism": 2})
    api(server, "POST", "/rekeyed/start")
    failed = wait(lambda: (d := api(server, "GET", "/rekeyed"))["status"] == "READY" and d,
                  120, "the application to give up")
    assert failed["last_failure"]
    log = "\n".join(api(server, "GET", "/rekeyed/logs?tail=2000")["lines"])
    assert "keys an already keyed stream again" in log


FILE_JOB = '''
from forestream.processing import kinesis_client

def build(env, properties):
    (env.from_kinesis("fin", kinesis_client())
        .key_by(lambda e: e["k"])
        .reduce(lambda a, b: {"k": a["k"], "n": a["n"] + b["n"]})
        .write_to_file(properties["out"]["path"]))
'''

CLASS_JOB = '''
from dataclasses import dataclass

from forestream.processing import kinesis_client


@dataclass
class Reading:
    sensor: str
    n: int


def build(env, properties):
    client = kinesis_client()
    (env.from_kinesis("cin", client)
        .map(lambda e: Reading(e["k"], e["n"]))
        .key_by(lambda r: r.sensor)
        .reduce(lambda a, b: Reading(a.sensor, a.n + b.n))
        .map(lambda r: {"k": r.sensor, "n": r.n})
        .sink_to_kinesis("cout", client))
'''


def test_jobs_that_cannot_be_split_run_whole_or_say_why(server, kinesis, tmp_path):
    create_streams(kinesis, fin=2)
    code = tmp_path / "file_job.py"
    code.write_text(FILE_JOB)
    out = tmp_path / "totals.jsonl"
    props = {"out": {"path": str(out)}}
    api(server, "POST", "", {"name": "tofile", "code": str(code), "properties": props,
                             "checkpoint_interval": 0.3})
    api(server, "POST", "/tofile/start")
    put_spread_to(kinesis, "fin", 40)
    wait(lambda: out.exists() and len(out.read_text().splitlines()) == 40, 60, "40 lines")
    # one process, one file: the checkpoint is the whole job's
    assert list((Path(server.data_dir) / "apps" / "tofile" / "checkpoints").glob("*.pkl"))
    api(server, "POST", "/tofile/stop")

    api(server, "POST", "", {"name": "tofile2", "code": str(code), "properties": props,
                             "parallelism": 2})
    api(server, "POST", "/tofile2/start")
    failed = wait(lambda: (d := api(server, "GET", "/tofile2"))["status"] == "READY" and d,
                  120, "the application to give up")
    assert failed["last_failure"]
    log = "\n".join(api(server, "GET", "/tofile2/logs?tail=2000")["lines"])
    assert "writes a file; with parallelism > 1 every copy would write it" in log


def test_values_of_classes_defined_in_the_application_cross_key_by(server, kinesis, tmp_path):
    create_streams(kinesis, cin=2, cout=2)
    code = tmp_path / "class_job.py"
    code.write_text(CLASS_JOB)
    api(server, "POST", "", {"name": "classes", "code": str(code), "max_parallelism": 2,
                             "checkpoint_interval": 0.3})
    api(server, "POST", "/classes/start")
    put_spread_to(kinesis, "cin", 80)
    assert wait(lambda: totals(kinesis, "cout") == {k: 10 for k in KEYS}, 90, "totals")
    # a snapshot whose state holds those classes restores (the server never unpickles it)
    api(server, "POST", "/classes/stop")
    snapshot = api(server, "GET", "/classes/snapshots")["snapshots"][0]["name"]
    put_spread_to(kinesis, "cin", 80)
    api(server, "POST", "/classes/start", {"restore": "SNAPSHOT", "snapshot": snapshot})
    assert wait(lambda: totals(kinesis, "cout") == {k: 20 for k in KEYS}, 90,
                "totals after restoring the snapshot")


def put_spread_to(kinesis, stream, n):
    kinesis.put_records(StreamName=stream, Records=[
        {"Data": json.dumps({"k": KEYS[i % len(KEYS)], "n": 1}).encode(),
         "PartitionKey": f"event-{i}"} for i in range(n)])
