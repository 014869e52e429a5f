"""The Kinesis Data Streams API: JSON 1.1 and CBOR over ``POST /``, on a StreamStore.

Each operation of botocore's Kinesis model that :class:`~forestream.streams.StreamStore`
implements (its method of the same name in snake_case) is served through the one AWS
envelope (:mod:`.protocol`); SubscribeToShard answers with a stream of AWS event-stream
messages. Errors carry the store's Kinesis codes (every one an error shape of the model).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import time
import zlib
from collections.abc import AsyncIterator, Mapping
from functools import cache, lru_cache
from typing import cast

import anyio
from starlette.types import Scope

from forestream.streams.errors import ResourceInUseError
from forestream.streams.store import StreamStore

from ..metrics import Metrics
from .errors import AwsError, ServiceErrors
from .fast_put_records import FastPutRecords
from .protocol import JSON_TYPE, JsonProtocol, Operation
from .shapes import ServiceShapes
from .sigv4 import VERIFIED, SignedRequest, decode_query, signature_shape
from .workers import WorkerPool

TARGET_PREFIX = "Kinesis_20131202."
SUBSCRIPTION_SECONDS = 300.0
SUBSCRIPTION_POLL_SECONDS = 0.2
SUBSCRIPTION_HEARTBEAT_SECONDS = 2.0
#: Members the model leaves optional that forestream's streams need: records are routed by
#: partition key (the USER_PARTITION_KEY distribution; newer models make PartitionKey
#: optional for AUTO distribution, which forestream does not offer).
REQUIRED_HERE = {"PutRecordInput": "PartitionKey", "PutRecordsRequestEntry": "PartitionKey"}


@cache
def kinesis_shapes() -> ServiceShapes:
    """botocore's Kinesis model, with the members forestream requires beyond it."""
    shapes = ServiceShapes("kinesis")
    for shape, member in REQUIRED_HERE.items():
        required = shapes.shapes[shape].setdefault("required", [])
        if member not in required:
            required.append(member)
    return shapes


#: The Kinesis model's error classes (the store's errors carry these codes already).
ERRORS = ServiceErrors("kinesis", kinesis_shapes().error_shapes(), {})


def kinesis_protocol(store: StreamStore, metrics: Metrics, *,
                     require_signature: bool = True,
                     pool: WorkerPool | None = None,
                     fast_put_records: bool = True) -> JsonProtocol:
    """The Kinesis API over ``store``, counting calls in ``metrics``, its calls run on
    ``pool``'s threads. With ``require_signature`` (the default, as on AWS) a request
    without a signature of AWS's form is refused even where no credentials verify it
    (:func:`signature_present`). ``fast_put_records``: plain PutRecords bodies are
    stored without a Python object per record (:mod:`.fast_put_records`; the same
    outcome, less CPU)."""
    shapes = kinesis_shapes()
    operations = {}
    for name in shapes.operations:
        method = getattr(store, snake_case(name), None)
        if method is not None:
            operations[name] = Operation(_keywords(method))
    if fast_put_records and hasattr(store, "put_records_batch"):
        operations["PutRecords"] = Operation(operations["PutRecords"].run,
                                             fast=FastPutRecords(store, shapes))
    operations["SubscribeToShard"] = Operation(lambda args: _subscribe(store, args),
                                               streaming=True)
    return JsonProtocol(shapes, TARGET_PREFIX, operations, ERRORS, cbor=True,
                        observe=metrics.observe, failed=metrics.error,
                        check_signature=signature_present if require_signature else None,
                        pool=pool)


def signature_present(scope: Scope, headers: Mapping[str, str]) -> AwsError | None:
    """AWS's refusal of a request that carries no signature of AWS's form (missing,
    incomplete, or both in the header and the query), or None. A server with credentials
    has verified the signature itself before (its request guard marks the request)."""
    if scope.get(VERIFIED):
        return None
    failure = signature_shape(SignedRequest(
        scope["method"], scope["path"], decode_query(scope.get("query_string", b"")),
        headers))
    return None if failure is None else AwsError(failure.message, code=failure.code)


@lru_cache(maxsize=4096)  # every call converts its members' names: 4 regex runs each
def snake_case(name: str) -> str:
    """``GetShardIterator`` → ``get_shard_iterator`` (the store's method names).

    >>> snake_case("DescribeStreamSummary"), snake_case("UpdateMaxRecordSizeInKiB")
    ('describe_stream_summary', 'update_max_record_size_in_ki_b')
    """
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _keywords(method):
    """The store method called with the request's members as snake_case keywords; a member
    the model has but the store does not take (``StreamId``, ``DryRun``...) is refused by
    name rather than ignored (a dry run ignored would act for real); one the store needs
    but the request lacks is refused as AWS refuses a missing member (never with Python's
    words: the model's required members and REQUIRED_HERE are meant to cover them)."""
    parameters = inspect.signature(method).parameters
    takes = set(parameters)
    needs = [p for p, spec in parameters.items() if spec.default is inspect.Parameter.empty]

    def run(args: dict):
        kwargs = {snake_case(k): v for k, v in args.items()}
        unknown = [k for k in args if snake_case(k) not in takes]
        if unknown:
            raise ERRORS.ValidationException(
                f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not supported "
                f"by forestream's {method.__name__} (accepted: "
                f"{', '.join(_pascal(p) for p in sorted(takes))})")
        missing = [p for p in needs if p not in kwargs]
        if missing:
            count = len(missing)
            raise ERRORS.ValidationException(
                f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(
                    f"Value null at '{_pascal(p)[:1].lower() + _pascal(p)[1:]}' failed to "
                    "satisfy constraint: Member must not be null" for p in missing))
        return method(**kwargs)
    return run


def _pascal(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


# ------------------------------------------------------------------ enhanced fan-out
async def _subscribe(store: StreamStore, args: dict) -> AsyncIterator[bytes]:
    """SubscribeToShard: the initial response, then an event per batch of records (or a
    heartbeat every few seconds) for 5 minutes, or until the shard is closed and read."""
    consumer = store.describe_stream_consumer(
        consumer_arn=args["ConsumerARN"])["ConsumerDescription"]
    if consumer["ConsumerStatus"] != "ACTIVE":
        raise ResourceInUseError(f"Consumer {consumer['ConsumerARN']} is not ACTIVE")
    position = args["StartingPosition"]
    iterator = store.get_shard_iterator(
        args["ShardId"], position["Type"], stream_arn=consumer["StreamARN"],
        starting_sequence_number=position.get("SequenceNumber"),
        timestamp=position.get("Timestamp"))["ShardIterator"]
    yield event_message("initial-response", b"{}")
    shapes = kinesis_shapes()
    deadline = time.monotonic() + SUBSCRIPTION_SECONDS
    last_sent = 0.0
    while time.monotonic() < deadline:
        response = await anyio.to_thread.run_sync(store.get_records, iterator, 10_000)
        records = response["Records"]
        done = "ChildShards" in response
        if records or done or time.monotonic() - last_sent > SUBSCRIPTION_HEARTBEAT_SECONDS:
            event = shapes.render_output("GetRecords", response, False)
            payload = {"Records": event["Records"],
                       "MillisBehindLatest": event.get("MillisBehindLatest", 0),
                       "ContinuationSequenceNumber": records[-1]["SequenceNumber"] if records
                       else store.continuation_sequence_number(iterator)}
            if done:
                payload["ChildShards"] = event["ChildShards"]
            yield event_message("SubscribeToShardEvent", json.dumps(payload).encode())
            last_sent = time.monotonic()
        if done:
            return
        iterator = response["NextShardIterator"]
        if not records:
            await asyncio.sleep(SUBSCRIPTION_POLL_SECONDS)


def event_message(event_type: str, payload: bytes) -> bytes:
    """One AWS event-stream message: prelude, CRCs, string headers, JSON payload."""
    headers = b""
    for name, value in ((":message-type", "event"), (":event-type", event_type),
                        (":content-type", JSON_TYPE)):
        raw_name, raw_value = name.encode(), value.encode()
        headers += (bytes([len(raw_name)]) + raw_name + b"\x07"
                    + len(raw_value).to_bytes(2, "big") + raw_value)
    total = 12 + len(headers) + len(payload) + 4
    prelude = total.to_bytes(4, "big") + len(headers).to_bytes(4, "big")
    message = prelude + zlib.crc32(prelude).to_bytes(4, "big") + headers + payload
    return message + zlib.crc32(message).to_bytes(4, "big")


def warm_up_put_records() -> float:
    """Compile PutRecords' fast-path kernels into numba's cache, as ``make`` does for the
    RCF kernels after installing, so that a new server's first large PutRecords loads
    them in well under a second instead of compiling them for ~9 s of CPU; the seconds
    it took (raises where the fast path cannot run here)."""
    started = time.perf_counter()
    fast = FastPutRecords(cast("StreamStore", None), kinesis_shapes())  # no store needed
    if not fast.wait_ready():
        raise RuntimeError("PutRecords' fast path cannot run here (see the log above); "
                           "the server serves every PutRecords the general way")
    return time.perf_counter() - started
