"""One AWS JSON 1.1 (and CBOR) envelope for every service on ``POST /``.

A request names its operation in ``X-Amz-Target: <prefix>.<Operation>``; its body is a
JSON object (``application/x-amz-json-1.1``) or, for services that accept it, CBOR
(``application/x-amz-cbor-1.1``). :class:`JsonProtocol` decodes it, validates and
converts it against the operation's input shape in botocore's model
(:class:`~forestream.server.aws.shapes.ServiceShapes`), runs the operation, and renders
its result through the output shape — or answers ``{"__type", "message"}`` with the code
:class:`~forestream.server.aws.errors.ServiceErrors` gives (400 for the client's errors,
500 for faults), every answer carrying ``x-amzn-RequestId``. As botocore keeps one parser
per protocol (``botocore/parsers.py``), Kinesis and the SageMaker control plane are two
tables of :class:`Operation` over this one envelope.

Synchronous operations run whole (decoding, validation, the call, rendering) on a worker
thread, so a large body never stalls the event loop and concurrent PutRecords share the
segment logs' group-commit fsyncs; coroutine operations run on the loop; streaming
operations (SubscribeToShard) return an async iterator of event-stream messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import cbor2
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from forestream import errors as kinds
from forestream.names import cap_message, shorten

from .errors import AwsError, ServiceErrors
from .shapes import ServiceShapes, ShapeValidationError

log = logging.getLogger("forestream.server")
JSON_TYPE = "application/x-amz-json-1.1"
CBOR_TYPE = "application/x-amz-cbor-1.1"
EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"


@dataclass(frozen=True)
class Operation:
    """One operation: ``run(args)`` takes the validated input (member names as on the
    wire, Python values) and returns the output (or, with ``streaming``, an async
    iterator of event-stream messages); a coroutine function runs on the event loop.
    ``codes`` answers kinds of :mod:`forestream.errors` with this operation's own codes
    (SageMaker says ``ValidationException`` for some missing things, ``ResourceNotFound``
    for others)."""

    run: Callable[[dict], Any]
    streaming: bool = False
    codes: Mapping[type[kinds.ForestreamError], str] = field(default_factory=dict)


class JsonProtocol:
    """The envelope for one service (see the module docstring). ``observe(operation,
    args, result, seconds)`` and ``failed(operation, code)``, when given, see every
    call (metrics)."""

    def __init__(self, shapes: ServiceShapes, target_prefix: str,
                 operations: Mapping[str, Operation], service_errors: ServiceErrors, *,
                 cbor: bool = False,
                 observe: Callable[[str, dict, Any, float], None] | None = None,
                 failed: Callable[[str, str], None] | None = None) -> None:
        self.shapes = shapes
        self.target_prefix = target_prefix
        self.operations = dict(operations)
        self.errors = service_errors
        self.cbor = cbor
        self.observe = observe
        self.failed = failed

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        binary = self.cbor and CBOR_TYPE in request.headers.get("content-type", "")
        target = request.headers.get("x-amz-target", "")
        name = target[len(self.target_prefix):] if target.startswith(self.target_prefix) \
            else ""
        operation = self.operations.get(name)
        if operation is None:
            return self._error(self._unknown(target, name), binary, request_id)
        body = await request.body()
        try:
            if operation.streaming or asyncio.iscoroutinefunction(operation.run):
                args = self._parse(name, body, binary)
                if operation.streaming:
                    messages = operation.run(args)
                    return StreamingResponse(_first_then(await anext(messages), messages),
                                             media_type=EVENT_STREAM_TYPE,
                                             headers={"x-amzn-RequestId": request_id})
                started = time.perf_counter()
                result = await operation.run(args)
                return self._answer(name, args, result, binary, request_id, started)
        except Exception as exc:  # noqa: BLE001 - every failure gets AWS's error shape
            return self._failure(name, operation, exc, binary, request_id)
        return await anyio.to_thread.run_sync(self._call, name, operation, body, binary,
                                              request_id)

    # ------------------------------------------------------------------ steps
    def _call(self, name: str, operation: Operation, body: bytes, binary: bool,
              request_id: str) -> Response:
        started = time.perf_counter()
        try:
            args = self._parse(name, body, binary)
            return self._answer(name, args, operation.run(args), binary, request_id, started)
        except Exception as exc:  # noqa: BLE001 - every failure gets AWS's error shape
            return self._failure(name, operation, exc, binary, request_id)

    def _parse(self, name: str, body: bytes, binary: bool) -> dict:
        try:
            params = cbor2.loads(body) if binary else orjson.loads(body or b"{}")
        except (ValueError, cbor2.CBORDecodeError) as exc:
            raise self.errors.SerializationException(
                f"malformed request body: {shorten(str(exc))}") from None
        return self.shapes.parse_input(name, params, binary)

    def _answer(self, name: str, args: dict, result: Any, binary: bool, request_id: str,
                started: float) -> Response:
        if self.observe is not None:
            self.observe(name, args, result, time.perf_counter() - started)
        rendered = self.shapes.render_output(name, result, binary)
        payload = cbor2.dumps(rendered) if binary else orjson.dumps(rendered)
        return Response(payload, media_type=CBOR_TYPE if binary else JSON_TYPE,
                        headers={"x-amzn-RequestId": request_id})

    def _failure(self, name: str, operation: Operation, exc: BaseException, binary: bool,
                 request_id: str) -> Response:
        if isinstance(exc, (TypeError, ShapeValidationError)):
            # breaks the model's constraints, or names a member the operation does not take
            exc = self.errors.ValidationException(str(exc))
        wire = self.errors.wire(exc, operation.codes)
        if wire.status >= 500:
            log.error("internal error in %s (request %s)", name, request_id,
                      exc_info=(type(exc), exc, exc.__traceback__))
            wire = AwsError(f"internal error; request id {request_id}",
                            code="InternalFailure", status=500)
        if self.failed is not None:
            self.failed(name, wire.code)
        return self._error(wire, binary, request_id)

    def _unknown(self, target: str, name: str) -> AwsError:
        if not target.startswith(self.target_prefix) or name not in self.shapes.operations:
            return self.errors.UnknownOperationException(
                f"X-Amz-Target {shorten(target)} is not an operation of "
                f"{self.target_prefix.rstrip('.')}")
        return self.errors.UnknownOperationException(
            f"{name} is not supported by forestream; supported: "
            f"{', '.join(sorted(self.operations))}")

    def _error(self, error: AwsError, binary: bool, request_id: str) -> Response:
        body = {"__type": error.code, "message": cap_message(error.message)}
        payload = cbor2.dumps(body) if binary else orjson.dumps(body)
        return Response(payload, status_code=error.status,
                        media_type=CBOR_TYPE if binary else JSON_TYPE,
                        headers={"x-amzn-RequestId": request_id,
                                 "x-amzn-ErrorType": error.code})


async def _first_then(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A stream whose first message was produced before the response started (so that a
    refusal raised while opening it is still an error answer, not a broken stream)."""
    yield first
    async for message in rest:
        yield message
