"""The Kinesis Data Streams wire protocol: JSON 1.1 and CBOR over ``POST /``.

Requests name their operation in ``X-Amz-Target: Kinesis_20131202.<Operation>``. Input is
validated and converted by the botocore service model (:mod:`forestream.streams.validation`),
the operation runs on the :class:`StreamStore` method of the same name in snake_case, in a
worker thread (so concurrent puts share fsyncs), and errors come back in AWS's shape:
``{"__type": "...", "message": "..."}`` with the store error's HTTP status.
SubscribeToShard answers with a stream of AWS event-stream messages.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
import zlib

import anyio
import cbor2
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from forestream.config import Settings
from forestream.names import cap_message, shorten
from forestream.streams.errors import ResourceInUseError, StreamError
from forestream.streams.store import StreamStore
from forestream.streams.validation import parse_input, render_output, service_model

from .metrics import Metrics

log = logging.getLogger("forestream.server")
TARGET_PREFIX = "Kinesis_20131202."
JSON_TYPE = "application/x-amz-json-1.1"
CBOR_TYPE = "application/x-amz-cbor-1.1"
SUBSCRIPTION_SECONDS = 300.0
SUBSCRIPTION_POLL_SECONDS = 0.2
SUBSCRIPTION_HEARTBEAT_SECONDS = 2.0


def _snake(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


class KinesisProtocol:
    def __init__(self, store: StreamStore, settings: Settings, metrics: Metrics) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.operations = {op: getattr(store, _snake(op), None)
                           for op in service_model()["operations"]}

    async def handle(self, request: Request) -> Response:
        binary = CBOR_TYPE in request.headers.get("content-type", "")
        request_id = str(uuid.uuid4())
        target = request.headers.get("x-amz-target", "")
        if not target.startswith(TARGET_PREFIX):
            return self._error("UnknownOperationException",
                               f"X-Amz-Target {shorten(target)} is not a Kinesis_20131202 "
                               "operation",
                               400, binary, request_id)
        operation = target[len(TARGET_PREFIX):]
        body = await request.body()
        if operation == "SubscribeToShard":
            try:
                kwargs = self._prepare(request, body, operation, binary)
                return await self._subscribe(kwargs, request_id)
            except _Refusal as refusal:
                return self._error(*refusal.args, binary, request_id)
            except StreamError as exc:
                return self._error(exc.code, exc.message, 400 if exc.status < 500 else 500, binary,
                               request_id)
            except TypeError as exc:  # a member the operation does not take
                return self._error("ValidationException", str(exc), 400, binary, request_id)
            except Exception:  # a bug of ours: AWS's shape, the trace in the log
                log.exception("internal error in SubscribeToShard (request %s)", request_id)
                return self._error("InternalFailure", f"internal error; request id "
                                   f"{request_id}", 500, binary, request_id)
        # Decoding, validation and the operation itself run in a worker thread: a large
        # PutRecords body must not stall the event loop, and concurrent puts then share
        # the segment logs' group-commit fsyncs.
        return await anyio.to_thread.run_sync(self._call, request, body, operation, binary,
                                              request_id)

    def _prepare(self, request: Request, body: bytes, operation: str, binary: bool) -> dict:
        if operation not in self.operations:
            raise _Refusal("UnknownOperationException",
                           f"{operation} is not a Kinesis operation", 400)
        if self.operations[operation] is None and operation != "SubscribeToShard":
            raise _Refusal("UnknownOperationException",
                           f"{operation} is not supported by forestream", 400)
        try:
            params = cbor2.loads(body) if binary else orjson.loads(body or b"{}")
        except (ValueError, cbor2.CBORDecodeError) as exc:
            raise _Refusal("SerializationException", f"malformed request body: {exc}",
                           400) from None
        args = parse_input(operation, params, binary)
        return {_snake(k): v for k, v in args.items()}, args

    def _call(self, request: Request, body: bytes, operation: str, binary: bool,
              request_id: str) -> Response:
        started = time.perf_counter()
        try:
            kwargs, args = self._prepare(request, body, operation, binary)
            result = self.operations[operation](**kwargs)
            self.metrics.observe(operation, args, result, time.perf_counter() - started)
            rendered = render_output(operation, result, binary)
            payload = cbor2.dumps(rendered) if binary else orjson.dumps(rendered)
            return Response(payload, media_type=CBOR_TYPE if binary else JSON_TYPE,
                            headers={"x-amzn-RequestId": request_id})
        except _Refusal as refusal:
            return self._error(*refusal.args, binary, request_id)
        except StreamError as exc:
            self.metrics.error(operation, exc.code)
            return self._error(exc.code, exc.message, 400 if exc.status < 500 else 500, binary,
                               request_id)
        except TypeError as exc:  # a member the operation does not take
            return self._error("ValidationException", str(exc), 400, binary, request_id)
        except Exception:  # a bug of ours: answer in AWS's shape, keep the trace in the log
            log.exception("internal error in %s (request %s)", operation, request_id)
            self.metrics.error(operation, "InternalFailure")
            return self._error("InternalFailure", f"internal error; request id {request_id}",
                               500, binary, request_id)

    def _error(self, code: str, message: str, status: int, binary: bool,
               request_id: str) -> Response:
        body = {"__type": code, "message": cap_message(message)}
        payload = cbor2.dumps(body) if binary else json.dumps(body).encode()
        return Response(payload, status_code=status,
                        media_type=CBOR_TYPE if binary else JSON_TYPE,
                        headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code})

    # ------------------------------------------------------------- enhanced fan-out
    async def _subscribe(self, prepared: tuple, request_id: str) -> Response:
        kwargs = prepared[0]
        store = self.store
        described = store.describe_stream_consumer(consumer_arn=kwargs["consumer_arn"])
        consumer = described["ConsumerDescription"]
        if consumer["ConsumerStatus"] != "ACTIVE":
            raise ResourceInUseError(f"Consumer {consumer['ConsumerARN']} is not ACTIVE")
        stream = consumer["StreamARN"]
        position = kwargs["starting_position"]
        iterator = store.get_shard_iterator(
            kwargs["shard_id"], position["Type"], stream_arn=stream,
            starting_sequence_number=position.get("SequenceNumber"),
            timestamp=position.get("Timestamp"))["ShardIterator"]

        async def events():
            yield _event_message("initial-response", b"{}")
            nonlocal iterator
            deadline = time.monotonic() + SUBSCRIPTION_SECONDS
            last_sent = 0.0
            while time.monotonic() < deadline:
                response = await anyio.to_thread.run_sync(store.get_records, iterator, 10_000)
                records = response["Records"]
                done = "ChildShards" in response
                if records or done or time.monotonic() - last_sent > \
                        SUBSCRIPTION_HEARTBEAT_SECONDS:
                    event = render_output("GetRecords", response, False)
                    last_seq = records[-1]["SequenceNumber"] if records else None
                    payload = {"Records": event["Records"],
                               "MillisBehindLatest": event.get("MillisBehindLatest", 0),
                               "ContinuationSequenceNumber": last_seq or _position_of(
                                   store, iterator)}
                    if done:
                        payload["ChildShards"] = event["ChildShards"]
                    yield _event_message("SubscribeToShardEvent", json.dumps(payload).encode())
                    last_sent = time.monotonic()
                if done:
                    return
                iterator = response["NextShardIterator"]
                if not records:
                    await asyncio.sleep(SUBSCRIPTION_POLL_SECONDS)

        return StreamingResponse(events(), media_type="application/vnd.amazon.eventstream",
                                 headers={"x-amzn-RequestId": request_id})


class _Refusal(Exception):
    """A request refused before it reaches the store: (AWS error type, message, status)."""


def _position_of(store: StreamStore, iterator: str) -> str:
    from forestream.streams.hashing import sequence_number

    _, number, position, _ = store._decode_iterator(iterator)
    return sequence_number(number, max(position - 1, 0))


def _event_message(event_type: str, payload: bytes) -> bytes:
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
