"""What an anomaly-detection application found, over what it read: the data of the
"Anomalies over input" chart on an application's page.

A Random Cut Forest operator passes its input records on with ``ANOMALY_SCORE`` and
``ANOMALY_GRADE`` added, so an output stream carries the input's fields. The chart takes
the recent records of the application's input stream (a numeric field, for one key) as
a line, and the records of its output stream graded at or above a bar as markers on it.
Which streams: the ones the application reads (its workers' read positions) and the
streams named in its runtime properties; by default the first that holds graded records
is the output, the first it reads the input.
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
        for where in (worker.get("read_positions") or {}):
            stream = where.rpartition("/")[0]
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


def recent(store: StreamStore, stream: str, since: float) -> list[tuple[float, dict]]:
    """(arrival time, JSON object) of the stream's records since ``since``, oldest first
    (records that are not JSON objects are left out)."""
    out: list[tuple[float, dict]] = []
    shards = store.list_shards(stream_name=stream)["Shards"]
    for shard in shards:
        iterator = store.get_shard_iterator(shard["ShardId"], "AT_TIMESTAMP",
                                            stream_name=stream, timestamp=since)["ShardIterator"]
        read = 0
        while iterator and read < PER_SHARD:
            page = store.get_records(iterator, limit=min(1000, PER_SHARD - read))
            for record in page["Records"]:
                try:
                    value = json.loads(record["Data"])
                except (ValueError, UnicodeDecodeError):
                    continue
                if isinstance(value, dict):
                    out.append((float(record["ApproximateArrivalTimestamp"]), value))
            read += len(page["Records"])
            iterator = page.get("NextShardIterator")
            if not page["Records"] and not page.get("MillisBehindLatest"):
                break
    out.sort(key=lambda item: item[0])
    return out


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
    reads, named = candidate_streams(application, stream_names)
    candidates = reads + named
    since = time.time() - WINDOW_SECONDS
    loaded: dict[str, list[tuple[float, dict]]] = {}

    def records(stream: str) -> list[tuple[float, dict]]:
        if stream not in loaded:
            try:
                loaded[stream] = recent(store, stream, since)
            except StreamError:
                loaded[stream] = []
        return loaded[stream]

    output = choice.output or next((s for s in named + reads
                                    if any(GRADE in v for _, v in records(s))), None)
    source = choice.input or next((s for s in reads if s != output), None) or \
        next((s for s in candidates if s != output), None)
    base = {"streams": candidates, "input": source, "output": output, "field": choice.field,
            "key": choice.key or "", "min_grade": choice.min_grade}
    if output is None or source is None:
        return {**base, "note": "no stream with graded records (ANOMALY_GRADE) among the "
                                "streams this application reads or names in its properties"}
    graded = records(output)
    anomalies = [(t, v) for t, v in graded if _number(v.get(GRADE)) is not None
                 and float(v[GRADE]) >= choice.min_grade]
    key = parse_key(choice.key)
    if not key and anomalies:  # the newest anomaly's key: its string-valued fields
        key = {k: v for k, v in anomalies[-1][1].items()
               if isinstance(v, str) and not k.startswith("ANOMALY")}
    inputs = [(t, v) for t, v in records(source) if _matches(v, key)]
    field = choice.field or _first_numeric(v for _, v in inputs)
    base.update(field=field, key=",".join(f"{k}={v}" for k, v in key.items()))
    if field is None:
        return {**base, "note": f"no numeric field in the recent records of {source}"}
    line = [(t, _number(v.get(field))) for t, v in inputs][-MAX_POINTS:]
    marks = [(t, _number(v.get(field)), float(v[GRADE])) for t, v in anomalies
             if _matches(v, key)][-MAX_POINTS:]
    times = sorted({t for t, _ in line} | {t for t, _, _ in marks})
    where = {t: i for i, t in enumerate(times)}
    values: list[float | None] = [None] * len(times)
    marked: list[float | None] = [None] * len(times)
    for t, value in line:
        values[where[t]] = value
    for t, value, _grade in marks:
        marked[where[t]] = value
    return {**base, "times": times, "anomaly_count": len(marks), "series": [
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
