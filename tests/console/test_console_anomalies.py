"""The data of the "Anomalies over input" chart, on a real stream store: the newest
records of a busy shard, and each anomaly placed on the input record it graded."""

from __future__ import annotations

import json
import time

import pytest

from forestream.server.console import anomalies
from forestream.streams.errors import ValidationError
from forestream.streams.store import StreamStore


@pytest.fixture
def store(tmp_path):
    with StreamStore(tmp_path, fsync=False, status_delay=0) as opened:
        yield opened


def put(store: StreamStore, stream: str, values: list[dict]) -> list[str]:
    """Put ``values`` as JSON records; their ``shard@sequence`` ids."""
    answer = store.put_records([{"Data": json.dumps(v).encode(), "PartitionKey": "k"}
                                for v in values], stream_name=stream)
    return [f'{r["ShardId"]}@{r["SequenceNumber"]}' for r in answer["Records"]]


def test_a_busy_shard_gives_its_newest_records(store, monkeypatch):
    monkeypatch.setattr(anomalies, "PER_SHARD", 200)
    store.create_stream("busy", 1)
    for batch in range(10):
        put(store, "busy", [{"i": batch * 100 + i} for i in range(100)])
        time.sleep(0.05)
    got = anomalies.recent(store, "busy", time.time() - 600)
    numbers = [value["i"] for _, _, value in got]
    assert 0 < len(numbers) <= 200 and numbers[-1] == 999  # the newest is there
    assert numbers == list(range(numbers[0], 1000))  # in order, none missing


def test_anomalies_sit_on_the_input_records_they_graded(store):
    store.create_stream("readings", 1)
    store.create_stream("graded", 1)
    values = [{"sensor": "s1", "value": 10.0 + (i % 3)} for i in range(30)]
    values[20]["value"] = 90.0
    ids = put(store, "readings", values)
    graded = [{**v, "_record_id": rid, "ANOMALY_SCORE": 1.0,
               "ANOMALY_GRADE": 0.9 if v["value"] > 50 else 0.0,
               **({"ANOMALY_EXPLANATION": {"field": "value"}} if v["value"] > 50 else {})}
              for v, rid in zip(values, ids, strict=True)]
    put(store, "graded", [{"sensor": "s2", "value": 5.0, "_record_id": "elsewhere",
                           "ANOMALY_GRADE": 0.8}])  # another key: not on this chart
    put(store, "graded", graded)  # (the newest anomaly's key is the chart's default)
    application = {"runtime": {"read_positions": {"0-kinesis/shardId-000000000000":
                                                  ["readings", None]}},
                   "properties": {}}
    found = anomalies.chart_data(store, application, ["readings", "graded"],
                                 anomalies.Choice())
    assert (found["input"], found["output"], found["field"]) == ("readings", "graded",
                                                                  "value")
    assert found["key"] == "sensor=s1" and found["anomaly_count"] == 1
    line, marks = (s["values"] for s in found["series"])
    assert line == [v["value"] for v in values]
    assert [i for i, m in enumerate(marks) if m is not None] == [20] and marks[20] == 90.0
    assert found["times"] == sorted(set(found["times"]))  # one distinct time per row

    other = anomalies.chart_data(store, application, ["readings", "graded"],
                                 anomalies.Choice(key="sensor=s2", min_grade=0.5))
    assert other["anomaly_count"] == 1 and other["series"][0]["values"] == [None]


def test_a_malformed_key_is_refused_naming_the_form():
    with pytest.raises(ValidationError, match="name=value pairs"):
        anomalies.parse_key("machine")
