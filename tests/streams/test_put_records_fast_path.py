"""PutRecords' hot path judges records exactly as the full model walk does.

A PutRecords request carries up to 500 entries; they are checked and converted in one
pass (:func:`forestream.server.aws.shapes._parse_flat`) and anything that pass does not
accept goes through the full walk. PutRecord's members go through the full walk always,
so the two operations must agree on every record: same bytes, or the same refusal.
"""

from __future__ import annotations

import base64
import random
import string

import pytest

from forestream.server.aws.kinesis import kinesis_shapes
from forestream.server.aws.shapes import SerializationError, ShapeValidationError
from forestream.streams.segment_log import SegmentLog

ALPHABET = string.ascii_letters + string.digits + "+/="


def judged(operation: str, params: dict) -> tuple[str, object]:
    try:
        out = kinesis_shapes().parse_input(operation, params)
    except SerializationError as exc:
        return "SerializationException", str(exc)
    except ShapeValidationError as exc:
        # member paths and model order differ between the two operations: the same
        # violations, whatever their order
        clauses = str(exc).replace("records.1.member.", "").split(" detected: ", 1)[1]
        return "ValidationException", sorted(clauses.split("; "))
    if operation == "PutRecords":
        return "ok", out["Records"][0]
    return "ok", {k: v for k, v in out.items() if k != "StreamName"}


def random_data(rng: random.Random) -> object:
    roll = rng.random()
    if roll < 0.4:  # anything base64-like, mostly broken
        return "".join(rng.choice(ALPHABET) for _ in range(rng.choice([0, 1, 2, 3, 4, 5, 8])))
    if roll < 0.75:  # real base64, sometimes with one character changed
        data = base64.b64encode(rng.randbytes(rng.randrange(0, 12))).decode()
        if data and rng.random() < 0.6:
            i = rng.randrange(len(data))
            data = data[:i] + rng.choice(ALPHABET) + data[i + 1:]
        return data
    return rng.choice([5, True, [], {}, "", "AA==", "AB==", "AAA=", "AAB=", "+/8=", "+/+="])


def test_every_record_is_judged_as_put_record_judges_its_members():
    rng = random.Random(20261206)
    outcomes = set()
    for _ in range(4000):
        entry = {"Data": random_data(rng),
                 "PartitionKey": rng.choice(["k", "", "x" * 256, "x" * 257, 3, "ü"]),
                 "ExplicitHashKey": rng.choice([None, None, "0", "01", "12", "-1", 5,
                                                "9" * 39, "9" * 40])}
        entry = {k: v for k, v in entry.items() if v is not None}
        many = judged("PutRecords", {"StreamName": "s", "Records": [entry]})
        one = judged("PutRecord", {"StreamName": "s", **entry})
        assert many == one, entry
        outcomes.add(many[0])
    assert outcomes == {"ok", "SerializationException", "ValidationException"}


@pytest.mark.parametrize("data,message", [
    ("+/+=", "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character "
             "dectected"),
    ("ab=c", "'ab=c' can not be converted to a Blob: Invalid Base64 character: '='"),
])
def test_a_bad_record_among_good_ones_is_refused_in_aws_words(data, message):
    good = [{"Data": base64.b64encode(b"x" * 1024).decode(), "PartitionKey": f"k{i}"}
            for i in range(499)]
    with pytest.raises(SerializationError) as raised:
        kinesis_shapes().parse_input("PutRecords", {
            "StreamName": "s", "Records": [*good, {"Data": data, "PartitionKey": "k"}]})
    assert str(raised.value) == message


def test_many_good_records_are_converted_whole():
    records = [{"Data": base64.b64encode(bytes([i % 256]) * (i + 1)).decode(),
                "PartitionKey": f"k{i}", **({"ExplicitHashKey": str(i)} if i % 3 else {})}
               for i in range(500)]
    out = kinesis_shapes().parse_input("PutRecords", {"StreamName": "s", "Records": records})
    assert out["Records"] == [{"Data": bytes([i % 256]) * (i + 1),
                               **({"ExplicitHashKey": str(i)} if i % 3 else {}),
                               "PartitionKey": f"k{i}"} for i in range(500)]


def test_records_written_without_waiting_are_read_only_once_synced(tmp_path):
    """A writer to several shards writes to all, then waits for all: until then the
    records are not acknowledged, and no reader sees them either."""
    log = SegmentLog(tmp_path / "shard", fsync=True)
    first, _ = log.append([(b"k", b"v1"), (b"k", b"v2")], durable=False)
    assert first == 0 and log.read(0) == []
    log.sync_through(2)
    assert [r.value for r in log.read(0)] == [b"v1", b"v2"]
    log.close()
    reopened = SegmentLog(tmp_path / "shard", fsync=True)
    assert [r.value for r in reopened.read(0)] == [b"v1", b"v2"]
    reopened.close()
