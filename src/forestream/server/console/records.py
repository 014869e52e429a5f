"""The console's record browser: read a page of a shard from any position, and show each
record's data as JSON, text or hex.

Positions are Kinesis's shard iterator types (TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER,
AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP); the store checks them exactly as it does for
GetShardIterator, so the console shows Kinesis's own messages for a bad sequence number
or a timestamp in the future. The next page continues from the answer's
NextShardIterator, as a Kinesis reader does.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from forestream.streams.errors import ValidationError

from . import kinesis

if TYPE_CHECKING:
    from forestream.streams.store import StreamStore

POSITIONS = ("TRIM_HORIZON", "LATEST", "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER",
             "AT_TIMESTAMP")
DECODINGS = ("auto", "json", "text", "hex")
ENCODINGS = ("text", "base64", "hex")
DEFAULT_LIMIT = 25
MAX_LIMIT = 500
EMPTY_PAGES = 5  # GetRecords may answer empty pages before records: read a few
HEX_BYTES = 4096  # longer data is cut in the hex view


@dataclass(frozen=True)
class Query:
    """What the browser was asked to read."""

    shard: str
    position: str
    sequence: str | None
    timestamp: float | None
    limit: int
    decoding: str
    iterator: str | None  # a NextShardIterator: continue from there


def parse_query(params: Mapping[str, str]) -> Query:
    """The browser's form, checked; :class:`ValidationError` names the bad value."""
    position = (params.get("position") or "TRIM_HORIZON").strip()
    if position not in POSITIONS:
        raise ValidationError(f"position {position!r} must be one of {', '.join(POSITIONS)}")
    decoding = params.get("decode") or "auto"
    if decoding not in DECODINGS:
        raise ValidationError(f"decode {decoding!r} must be one of {', '.join(DECODINGS)}")
    raw_limit = (params.get("limit") or str(DEFAULT_LIMIT)).strip()
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
        raise ValidationError(f"limit {raw_limit!r} must be an integer from 1 to {MAX_LIMIT}")
    sequence = (params.get("sequence") or "").strip() or None
    if position.endswith("SEQUENCE_NUMBER") and sequence is None:
        raise ValidationError(f"{position} needs a sequence number")
    timestamp = None
    if position == "AT_TIMESTAMP":
        timestamp = parse_time(params.get("timestamp") or "")
    shard = (params.get("shard") or "").strip()
    if not shard:
        raise ValidationError("choose a shard")
    return Query(shard, position, sequence if position.endswith("SEQUENCE_NUMBER") else None,
                 timestamp, int(raw_limit), decoding, params.get("iterator") or None)


def parse_time(raw: str) -> float:
    """ISO 8601 (UTC unless it says otherwise) or epoch seconds."""
    raw = raw.strip()
    try:
        return float(raw)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"timestamp {raw!r} must be an ISO 8601 time such as "
                              "2026-12-06T13:00:00Z, or epoch seconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def read_page(store: StreamStore, stream: str, query: Query) -> dict:
    """Records of one shard from the query's position: ``records`` (each with its
    decoded data), ``next`` (the iterator of the next page, or None: the shard is closed
    and read to its end), ``behind`` (MillisBehindLatest) and ``raw`` (GetRecords'
    records, for the server's counters)."""
    iterator = query.iterator or kinesis.call(
        store, "GetShardIterator", StreamName=stream, ShardId=query.shard,
        ShardIteratorType=query.position, StartingSequenceNumber=query.sequence,
        Timestamp=query.timestamp)["ShardIterator"]
    records: list[dict] = []
    answer: dict = {}
    for _ in range(EMPTY_PAGES):
        answer = kinesis.call(store, "GetRecords", ShardIterator=iterator,
                              Limit=query.limit - len(records))
        records += answer["Records"]
        iterator = answer.get("NextShardIterator")
        if records or iterator is None or not answer.get("MillisBehindLatest"):
            break
    shown = []
    for record in records:
        kind, shown_data = decode(record["Data"], query.decoding)
        stamp = record.get("ApproximateArrivalTimestamp")
        shown.append({"sequence": record["SequenceNumber"],
                      "partition_key": record["PartitionKey"],
                      "arrived": stamp.timestamp() if isinstance(stamp, dt.datetime) else stamp,
                      "size": len(record["Data"]), "kind": kind, "data": shown_data})
    return {"records": shown, "next": iterator, "behind": answer.get("MillisBehindLatest"),
            "raw": records}


def decode(data: bytes, how: str = "auto") -> tuple[str, str]:
    """(``json`` | ``text`` | ``hex``, the data shown that way). ``auto`` takes JSON when
    the bytes parse as JSON, else UTF-8 text when they decode, else hex."""
    if how in ("auto", "json"):
        try:
            return "json", json.dumps(json.loads(data), indent=2, ensure_ascii=False)
        except (ValueError, UnicodeDecodeError):
            if how == "json":
                return "hex", _hex(data) + "\n(not JSON)"
    if how in ("auto", "text"):
        try:
            return "text", data.decode("utf-8")
        except UnicodeDecodeError:
            if how == "text":
                return "text", data.decode("utf-8", errors="replace")
    return "hex", _hex(data)


def encode(raw: str, encoding: str) -> bytes:
    """A test record's data from the form: ``text`` (UTF-8), ``base64`` or ``hex``."""
    if encoding not in ENCODINGS:
        raise ValidationError(f"encoding {encoding!r} must be one of {', '.join(ENCODINGS)}")
    if encoding == "text":
        return raw.encode("utf-8")
    try:
        if encoding == "base64":
            return base64.b64decode(raw.strip(), validate=True)
        return bytes.fromhex(raw.replace(" ", "").replace("\n", ""))
    except (binascii.Error, ValueError):
        raise ValidationError(f"the data is not valid {encoding}") from None


def _hex(data: bytes) -> str:
    """16 bytes a line: offset, hex pairs, and the printable characters."""
    lines = []
    for offset in range(0, min(len(data), HEX_BYTES), 16):
        chunk = data[offset:offset + 16]
        pairs = " ".join(f"{b:02x}" for b in chunk)
        chars = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {pairs:<47}  {chars}")
    if len(data) > HEX_BYTES:
        lines.append(f"... {len(data) - HEX_BYTES} more bytes")
    return "\n".join(lines)
