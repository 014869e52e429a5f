"""Waiting for records, under ``/api/v1/streams``: what Kinesis has no call for.

A Kinesis reader polls GetRecords; AWS's own consumer library sleeps between empty
polls (a second by default), which is where a pipeline's latency goes. A reader of a
forestream server can instead ask it to answer as soon as records arrive::

    POST /api/v1/streams/wait
    {"streams": {"sensors": {"shardId-000000000000": "4963...", "shardId-000000000001": null}},
     "timeout_ms": 500}
    -> {"ready": {"sensors": ["shardId-000000000000"]}}

Each shard is given with the last sequence number its reader has (``null``: none yet, so
any record counts). The answer comes when one of them has records after that position,
or after ``timeout_ms`` (at most 20 000) with ``ready`` empty. Errors are problem details
naming the stream, shard or value.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forestream.streams.errors import StreamError, ValidationError
from forestream.streams.store import StreamStore

from .common import answering_errors, json_object, problem, threaded

PREFIX = "/api/v1/streams"
MAX_WAIT_MS = 20_000
MAX_SHARDS = 10_000


def parse_wait(data: dict) -> tuple[dict[str, dict[str, str | None]], float]:
    """The body of a wait: ({stream: {shard: last sequence number or None}}, seconds).
    Raises :class:`ValidationError` naming the offending member."""
    streams = data.get("streams")
    if not isinstance(streams, dict) or not streams:
        raise ValidationError("'streams' must be an object of stream name -> "
                              "{shard id: last sequence number read, or null}")
    positions: dict[str, dict[str, str | None]] = {}
    count = 0
    for stream, shards in streams.items():
        if not isinstance(shards, dict) or not shards:
            raise ValidationError(f"streams[{stream!r}] must be a non-empty object of "
                                  "shard id -> last sequence number read, or null")
        for shard, after in shards.items():
            if after is not None and not (isinstance(after, str) and after.isdigit()
                                          and len(after) <= 128):
                raise ValidationError(
                    f"streams[{stream!r}][{shard!r}] must be a sequence number (digits) "
                    f"or null, not {after!r:.60}")
        count += len(shards)
        positions[str(stream)] = dict(shards)
    if count > MAX_SHARDS:
        raise ValidationError(f"{count} shards named; at most {MAX_SHARDS} per wait")
    timeout_ms = data.get("timeout_ms", 1000)
    if (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int)
            or not 0 <= timeout_ms <= MAX_WAIT_MS):
        raise ValidationError(f"timeout_ms must be an integer from 0 to {MAX_WAIT_MS}, "
                              f"not {timeout_ms!r:.60}")
    return positions, timeout_ms / 1000.0


def routes(store: StreamStore) -> list[Route]:
    guarded = answering_errors(StreamError, lambda request, exc: problem(
        exc.status, exc.code, exc.message, request.url.path))

    @guarded
    async def wait(request: Request) -> Response:
        positions, timeout = parse_wait(await json_object(request, ValidationError))
        return await threaded(lambda: {"ready": store.wait_for_records(positions, timeout)})

    return [Route(f"{PREFIX}/wait", wait, methods=["POST"])]
