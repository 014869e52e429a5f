"""What an anomaly-detection application found, over what it read: the data of the
"Anomalies over input" chart on an application's page.

A Random Cut Forest operator passes its input records on with ``ANOMALY_SCORE`` and
``ANOMALY_GRADE`` added, so an output stream carries the input's fields. The chart takes
the recent records of the application's input stream (a numeric field, for one key) as
a line, and the records of its output stream graded at or above a bar as markers on it.
Which streams: the ones the application reads (its workers' read positions) and the
streams named in its runtime properties, then (its sinks are not in its status) up to
:data:`MAX_OTHER_STREAMS` others; by default the first of its named streams, the others,
then the ones it reads, that holds graded records is the output, and the first stream
it reads the input.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

from forestream.streams.errors import StreamError, ValidationError
from forestream.streams.store import StreamStore

GRADE = "ANOMALY_GRADE"
WINDOW_SECONDS = 15 * 60  # records that arrived in the last 15 minutes
PER_SHARD = 2000
MAX_POINTS = 1500
MAX_OTHER_STREAMS = 20


@dataclass(frozen=True)
class Choice:
    """The chart's settings (None: chosen from the data)."""

    input: str | None = None
    output: str | None = None
    field: str | None = None
    key: str | None = None  # "name=value,name=value": one key's records
    min_grade: float = 0.5


def candidate_streams(application: dict, stream_names: Iterable[str]) -> tuple[list[str],
                                                                               list[str]]:
    """(streams it reads, other streams its properties name), both existing."""
    existing = set(stream_names)
    runtime = application.get("runtime") or {}
    reads: list[str] = []
    for worker in runtime.get("workers") or [runtime]:
        # "<source uid>/<shard>" -> [stream, last sequence number read]
        for position in (worker.get("read_positions") or {}).values():
            stream = position[0] if position else None
            if stream in existing and stream not in reads:
                reads.append(stream)
    named: list[str] = []
    for group in (application.get("properties") or {}).values():
        values = group.values() if isinstance(group, dict) else [group]
        for value in values:
            if isinstance(value, str) and value in existing and value not in reads \
                    and value not in named:
                named.append(value)
    return reads, named


def recent(store: StreamStore, stream: str, since: float) -> list[tuple[float, str, dict]]:
    """(arrival time, ``shard@sequence``, JSON object) of the stream's newest records
    since ``since`` (at most :data:`PER_SHARD` a shard), oldest first; records that are
    not JSON objects are left out."""
    out: list[tuple[float, str, dict]] = []
    for shard in store.list_shards(stream_name=stream)["Shards"]:
        records, newest = _read_shard(store, stream, shard["ShardId"], since)
        if newest is not None and records[-1][0] > records[0][0]:
            # a busy shard: Kinesis reads forward only, so start again nearer its newest
            # record, as long before it as PER_SHARD records took at the rate just seen
            rate = len(records) / (records[-1][0] - records[0][0])
            records, _ = _read_shard(store, stream, shard["ShardId"],
                                     max(since, newest - 0.9 * PER_SHARD / rate))
        out += records
    out.sort(key=lambda item: item[0])
    return out


def _read_shard(store: StreamStore, stream: str, shard: str, since: float
                ) -> tuple[list[tuple[float, str, dict]], float | None]:
    """The shard's records from ``since`` (at most PER_SHARD), and when more follow, the
    arrival time of its newest record (else None)."""
    out: list[tuple[float, str, dict]] = []
    iterator = store.get_shard_iterator(shard, "AT_TIMESTAMP", stream_name=stream,
                                        timestamp=since)["ShardIterator"]
    read, behind, last = 0, 0, since
    while iterator and read < PER_SHARD:
        page = store.get_records(iterator, limit=min(1000, PER_SHARD - read))
        for record in page["Records"]:
            last = float(record["ApproximateArrivalTimestamp"])
            try:
                value = json.loads(record["Data"])
            except (ValueError, UnicodeDecodeError):
                continue
            if isinstance(value, dict):
                out.append((last, f'{shard}@{record["SequenceNumber"]}', value))
        read += len(page["Records"])
        iterator = page.get("NextShardIterator")
        behind = page.get("MillisBehindLatest") or 0
        if not page["Records"] and not behind:
            break
    if read < PER_SHARD or not iterator or not out:
        return out, None
    if not store.get_records(iterator, limit=1)["Records"]:
        return out, None
    return out, last + behind / 1000.0


def parse_key(raw: str | None) -> dict[str, str]:
    if not raw:
        return {}
    key = {}
    for part in raw.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise ValidationError(f"key {raw!r} must be name=value pairs separated by commas, "
                                  "e.g. machine=m1,sensor=temperature")
        key[name.strip()] = value.strip()
    return key


def chart_data(store: StreamStore, application: dict, stream_names: Iterable[str],
               choice: Choice) -> dict:
    """``times``, ``series`` (input line, anomaly markers) and what was chosen, or a
    ``note`` saying why there is nothing to plot."""
    names = list(stream_names)
    reads, named = candidate_streams(application, names)
    candidates = reads + named
    # where its output goes is not in its status: other streams are looked at last
    others = [s for s in names if s not in candidates][:MAX_OTHER_STREAMS]
    since = time.time() - WINDOW_SECONDS
    loaded: dict[str, list[tuple[float, str, dict]]] = {}

    def records(stream: str) -> list[tuple[float, str, dict]]:
        if stream not in loaded:
            try:
                loaded[stream] = recent(store, stream, since)
            except StreamError:
                loaded[stream] = []
        return loaded[stream]

    output = choice.output or next((s for s in named + others + reads
                                    if any(GRADE in v for _, _, v in records(s))), None)
    source = choice.input or next((s for s in reads if s != output), None) or \
        next((s for s in candidates if s != output), None)
    if output is not None and output not in candidates:
        candidates.append(output)
    base = {"streams": candidates, "input": source, "output": output, "field": choice.field,
            "key": choice.key or "", "min_grade": choice.min_grade}
    if output is None or source is None:
        return {**base, "note": "no stream with graded records (ANOMALY_GRADE) among the "
                                "streams this application reads or names in its properties"}
    graded = records(output)
    anomalies = [(t, v) for t, _, v in graded if _number(v.get(GRADE)) is not None
                 and float(v[GRADE]) >= choice.min_grade]
    key = parse_key(choice.key)
    if not key and anomalies:  # the newest anomaly's key: its string-valued fields
        key = {k: v for k, v in anomalies[-1][1].items()
               if isinstance(v, str) and not k.startswith(("ANOMALY", "_"))}  # _record_id
    inputs = [(t, rid, v) for t, rid, v in records(source) if _matches(v, key)][-MAX_POINTS:]
    explained = [v.get("ANOMALY_EXPLANATION") for _, v in anomalies]
    named_field = next((e["field"] for e in reversed(explained)
                        if isinstance(e, dict) and isinstance(e.get("field"), str)), None)
    field = choice.field or named_field or _first_numeric(v for _, _, v in inputs)
    base.update(field=field, key=",".join(f"{k}={v}" for k, v in key.items()))
    if field is None:
        return {**base, "note": f"no numeric field in the recent records of {source}"}
    # one row per input record; an anomaly sits on the input record it graded (the
    # pipeline's _record_id, "shard@sequence"), else on a row of its own at its arrival
    rows: list[list] = [[t, _number(v.get(field)), None] for t, _, v in inputs]
    row_of = {rid: i for i, (_, rid, _) in enumerate(inputs)}
    count = 0
    for t, v in anomalies:
        if not _matches(v, key):
            continue
        count += 1
        index = row_of.get(str(v.get("_record_id")))
        if index is None:
            rows.append([t, None, _number(v.get(field))])
        else:
            rows[index][2] = _number(v.get(field))
    rows.sort(key=lambda r: r[0])
    times: list[float] = []
    for row in rows:  # records that arrived in the same millisecond keep their order
        times.append(max(row[0], times[-1] + 1e-6) if times else row[0])
    values = [r[1] for r in rows]
    marked = [r[2] for r in rows]
    return {**base, "times": times, "anomaly_count": count, "series": [
        {"label": f"{source}.{field}", "values": values, "spanGaps": True},
        {"label": f"anomalies (grade ≥ {choice.min_grade:g})", "values": marked,
         "points": True, "color": "#d62d20"}]}


def _matches(value: dict, key: dict[str, str]) -> bool:
    return all(str(value.get(k)) == v for k, v in key.items())


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _first_numeric(values: Iterable[dict]) -> str | None:
    for value in values:
        for name, item in value.items():
            if not name.startswith("ANOMALY") and _number(item) is not None:
                return name
    return None
