"""Helpers for the tests on a real Flink cluster (a plain module, not a conftest): streams,
puts, reading an output stream, waiting on progress rather than wall-clock guesses."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

JOBS = Path(__file__).parent / "jobs"


def new_streams(kinesis, **shards: int) -> dict[str, str]:
    """Create streams with unique names (name -> shard count); returns role -> name."""
    names = {}
    for role, count in shards.items():
        name = f"{role}-{uuid.uuid4().hex[:8]}"
        kinesis.create_stream(StreamName=name, ShardCount=count)
        kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                                 WaiterConfig={"Delay": 0.2})
        names[role] = name
    return names


def put_counted(kinesis, stream: str, keys: list[str], per_key: int,
                start: dict[str, int] | None = None) -> dict[str, int]:
    """Put ``per_key`` records for each key (data ``{"k", "i"}``, ``i`` counting on from
    ``start``); returns the new per-key totals."""
    totals = dict(start or {})
    records = []
    for _ in range(per_key):
        for key in keys:
            totals[key] = totals.get(key, 0) + 1
            records.append({"Data": json.dumps({"k": key, "i": totals[key]}).encode(),
                            "PartitionKey": key})
    for begin in range(0, len(records), 500):
        answer = kinesis.put_records(StreamName=stream, Records=records[begin:begin + 500])
        assert answer["FailedRecordCount"] == 0
    return totals


def read_all(kinesis, stream: str) -> list[dict]:
    """Every record of ``stream`` now there: shards in order, each to its current end."""
    out = []
    shards = kinesis.list_shards(StreamName=stream)["Shards"]
    for shard in shards:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"],
            ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10000)
            out.extend(page["Records"])
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")
    return out


def counts_written(kinesis, stream: str) -> tuple[dict[str, list[int]], int]:
    """The counts a keyed-count job wrote, by key, duplicates dropped by ``_record_id``,
    and the number of duplicates dropped."""
    seen: set[str] = set()
    by_key: dict[str, list[int]] = {}
    duplicates = 0
    for record in read_all(kinesis, stream):
        value = json.loads(record["Data"])
        if value["_record_id"] in seen:
            duplicates += 1
            continue
        seen.add(value["_record_id"])
        by_key.setdefault(value["k"], []).append(value["n"])
    return by_key, duplicates


def wait_for(condition, what: str, stall_seconds: float = 120.0, progress=None):
    """Wait until ``condition()`` is truthy; fail only when ``progress()`` (if given) has
    not changed for ``stall_seconds`` — a loaded machine is slow, not stuck."""
    last = progress() if progress else None
    changed = time.monotonic()
    while True:
        value = condition()
        if value:
            return value
        now = progress() if progress else None
        if now != last:
            last, changed = now, time.monotonic()
        assert time.monotonic() - changed < stall_seconds, \
            f"no progress for {stall_seconds:.0f} s waiting for {what} (at {last})"
        time.sleep(0.5)


def session_members(session: int) -> list[int]:
    """Live processes of a session (a LocalFlinkCluster process leads one of its own)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[3]) == session:  # state, ..., session id
            members.append(int(stat.parent.name))
    return members
