"""One AWS JSON 1.1 (and CBOR) envelope for every service on ``POST /``.

A request names its operation in ``X-Amz-Target: <prefix>.<Operation>``; its body is a
JSON object (``application/x-amz-json-1.1``) or, for services that accept it, CBOR
(``application/x-amz-cbor-1.1``). :class:`JsonProtocol` decodes it, validates and
converts it against the operation's input shape in botocore's model
(:class:`~forestream.server.aws.shapes.ServiceShapes`), runs the operation, and renders
its result through the output shape (an operation without output answers an empty
body) — or answers ``{"__type", "message"}`` with the code
:class:`~forestream.server.aws.errors.ServiceErrors` gives (400 for the client's errors,
500 for faults), every answer carrying ``x-amzn-RequestId`` and ``x-amz-id-2``. As
botocore keeps one parser per protocol (``botocore/parsers.py``), Kinesis and the
SageMaker control plane are two tables of :class:`Operation` over this one envelope.

Requests the envelope cannot read are answered as AWS's front end answers them, in this
order (the order is observable, so it is AWS's):

1. an empty body: ``SerializationException`` for a known operation, else
   ``UnknownOperationException`` — bare ``{"__type"}``, in JSON if the request said JSON
   1.1, else in CBOR;
2. a content type that is none of JSON 1.1, CBOR or ``application/json``: 403
   ``AccessDeniedException`` (XML) when the target names no service and operation, else
   404 ``<UnknownOperationException/>``;
3. a body that is not an object: ``SerializationException``;
4. ``application/json`` (AWS JSON 1.0's old envelope): the 1.0 answers,
   ``{"Output": {"__type": "com.amazon.coral.service#..."}, "Version": "1.0"}``;
5. an unknown target: ``UnknownOperationException``;
6. the signature's presence and shape (when the service asks for it; a server with
   credentials has already verified the signature in its request guard);
7. a member of the wrong type: ``SerializationException`` with AWS's ``Message``; then
   the model's constraints: ``ValidationException``.

Synchronous operations run whole (decoding, validation, the call, rendering) on a worker
thread, so a large body never stalls the event loop and concurrent PutRecords share the
segment logs' group-commit fsyncs; coroutine operations run on the loop; streaming
operations (SubscribeToShard) return an async iterator of event-stream messages.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
import cbor2
import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from forestream import errors as kinds
from forestream.names import cap_message

from .errors import AwsError, ServiceErrors
from .shapes import SerializationError, ServiceShapes, ShapeValidationError
from .workers import WorkerPool

log = logging.getLogger("forestream.server")
JSON_TYPE = "application/x-amz-json-1.1"
CBOR_TYPE = "application/x-amz-cbor-1.1"
JSON_10_TYPE = "application/json"  # AWS JSON 1.0's content type: answered, never served
EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"
#: The longest error message sent (values are repeated whole up to this; see shapes).
MESSAGE_LIMIT = 2048


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
    #: ``fast(body)``: the operation run straight from a JSON 1.1 body, as (arguments
    #: and result for ``observe``, the JSON answer or None to render the result) — or
    #: None where ``run`` must have the body decoded and validated first (the fast way
    #: takes only bodies it is sure of, with the same outcome; see
    #: :mod:`.fast_put_records`)
    fast: Callable[[bytes], tuple[dict, Any, bytes | None] | None] | None = None


#: ``check_signature(scope, headers)``: why a request's signature is refused before its
#: members are looked at (step 6 of the module docstring), or None. ``headers.get``
#: takes lower-case names.
SignatureCheck = Callable[[Scope, Mapping[str, str]], AwsError | None]


class JsonProtocol:
    """The envelope for one service (see the module docstring). ``observe(operation,
    args, result, seconds)`` and ``failed(operation, code)``, when given, see every
    call (metrics); ``check_signature``, when given, refuses requests whose signature is
    missing or malformed. Synchronous operations run on ``pool`` (else on anyio's worker
    threads)."""

    def __init__(self, shapes: ServiceShapes, target_prefix: str,
                 operations: Mapping[str, Operation], service_errors: ServiceErrors, *,
                 cbor: bool = False,
                 observe: Callable[[str, dict, Any, float], None] | None = None,
                 failed: Callable[[str, str], None] | None = None,
                 check_signature: SignatureCheck | None = None,
                 pool: WorkerPool | None = None) -> None:
        self.shapes = shapes
        self.target_prefix = target_prefix
        self.operations = dict(operations)
        self.errors = service_errors
        self.cbor = cbor
        self.observe = observe
        self.failed = failed
        self.check_signature = check_signature
        self.pool = pool
        #: operations run on the event loop: coroutines and streams (decided once here)
        self._on_loop = {name for name, op in self.operations.items()
                         if op.streaming or asyncio.iscoroutinefunction(op.run)}

    async def handle(self, request: Request) -> Response:
        """Answer a request that came through Starlette's routing."""
        reply = await self.respond(request.scope, request.headers, await request.body())
        return reply if isinstance(reply, Response) else reply.response()

    async def serve(self, scope: Scope, headers: Mapping[str, str], receive: Receive,
                    send: Send) -> None:
        """Answer a request straight from ASGI (the request guard's direct path for the
        data plane: no routing, no request or response objects). ``headers`` maps
        lower-case names to values."""
        message = await receive()
        if message["type"] != "http.request":
            return  # the client went away before its body was complete
        body = message.get("body", b"")
        if message.get("more_body", False):  # (the guard hands a signed body over whole)
            parts = [body]
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return
                parts.append(message.get("body", b""))
                if not message.get("more_body", False):
                    break
            body = b"".join(parts)
        reply = await self.respond(scope, headers, bytes(body))
        if isinstance(reply, Response):
            await reply(scope, receive, send)
        else:
            await reply.send(send)

    async def respond(self, scope: Scope, headers: Mapping[str, str],
                      body: bytes) -> Reply | Response:
        """The answer to one request (a :class:`Reply`; a streaming response for
        streaming operations). ``headers.get`` takes lower-case names."""
        wire = _Wire(media_type(headers.get("content-type")), self.cbor)
        target = headers.get("x-amz-target", "")
        name = target[len(self.target_prefix):] if target.startswith(self.target_prefix) \
            else None
        operation = self.operations.get(name) if name is not None else None
        known = name is not None and name in self.shapes.operations
        if not body:
            return wire.bare("SerializationException" if known else
                             "UnknownOperationException")
        if wire.media not in (JSON_TYPE, JSON_10_TYPE) and \
                not (self.cbor and wire.media == CBOR_TYPE):
            service, _, action = target.partition(".")
            if not service or not action:
                return wire.xml("AccessDeniedException", 403,
                                "Unable to determine service/operation name to be "
                                "authorized")
            return wire.xml("UnknownOperationException", 404)
        refusal = self.check_signature(scope, headers) if self.check_signature else None
        if operation is None or name in self._on_loop:
            try:
                args = self._decode(name, known, operation, body, wire, refusal)
                if isinstance(args, Reply):
                    return args
                assert operation is not None and name is not None  # else _decode answered
                if operation.streaming:
                    messages = operation.run(args)
                    return StreamingResponse(_first_then(await anext(messages), messages),
                                             media_type=EVENT_STREAM_TYPE,
                                             headers=wire.headers())
                started = time.perf_counter()
                result = await operation.run(args)
                return self._answer(name, args, result, wire, started)
            except Exception as exc:  # noqa: BLE001 - every failure gets AWS's error shape
                return self._failure(name or "", operation, exc, wire)
        assert name is not None  # an operation was found by it
        if self.pool is not None:
            return await self.pool.run(self._call, name, operation, body, wire, refusal)
        return await anyio.to_thread.run_sync(self._call, name, operation, body, wire,
                                              refusal)

    # ------------------------------------------------------------------ steps
    def _call(self, name: str, operation: Operation, body: bytes, wire: _Wire,
              refusal: AwsError | None) -> Reply:
        started = time.perf_counter()
        try:
            if operation.fast is not None and refusal is None and wire.media == JSON_TYPE:
                done = operation.fast(body)
                if done is not None:
                    given, result, rendered = done
                    if rendered is None:
                        return self._answer(name, given, result, wire, started)
                    if self.observe is not None:
                        self.observe(name, given, result, time.perf_counter() - started)
                    return Reply(200, rendered, JSON_TYPE, wire.headers())
            args = self._decode(name, True, operation, body, wire, refusal)
            if isinstance(args, Reply):
                return args
            return self._answer(name, args, operation.run(args), wire, started)
        except Exception as exc:  # noqa: BLE001 - every failure gets AWS's error shape
            return self._failure(name, operation, exc, wire)

    def _decode(self, name: str | None, known: bool, operation: Operation | None,
                body: bytes, wire: _Wire, refusal: AwsError | None) -> dict | Reply:
        """Steps 3 to 7 of the module docstring: the operation's arguments, or the answer
        that refuses the request."""
        try:
            params = cbor2.loads(body) if wire.media == CBOR_TYPE else orjson.loads(body)
        except (ValueError, cbor2.CBORDecodeError, RecursionError):
            params = None
        if not isinstance(params, dict):
            if wire.media == JSON_10_TYPE:
                return wire.json_10("SerializationException", 400)
            return wire.bare("SerializationException")
        if wire.media == JSON_10_TYPE:
            return wire.json_10("UnknownOperationException", 404)
        if operation is None or name is None:
            if not known:
                return wire.bare("UnknownOperationException")
            raise self.errors.UnknownOperationException(
                f"{name} is not supported by forestream; supported: "
                f"{', '.join(sorted(self.operations))}")
        if refusal is not None:
            raise refusal
        try:
            return self.shapes.parse_input(name, params, wire.binary)
        except SerializationError as exc:
            return wire.answer({"__type": "SerializationException",
                                "Message": cap_message(str(exc), MESSAGE_LIMIT)}, 400,
                               error="SerializationException")

    def _answer(self, name: str, args: dict, result: Any, wire: _Wire,
                started: float) -> Reply:
        if self.observe is not None:
            self.observe(name, args, result, time.perf_counter() - started)
        if not self.shapes.has_output(name):
            return wire.empty()
        return wire.answer(self.shapes.render_output(name, result, wire.binary), 200)

    def _failure(self, name: str, operation: Operation | None, exc: BaseException,
                 wire: _Wire) -> Reply:
        if isinstance(exc, (TypeError, ShapeValidationError)):
            # breaks the model's constraints, or names a member the operation does not take
            exc = self.errors.ValidationException(str(exc))
        error = self.errors.wire(exc, operation.codes if operation else None)
        if error.status >= 500:
            log.error("internal error in %s (request %s)", name, wire.request_id,
                      exc_info=(type(exc), exc, exc.__traceback__))
            error = AwsError(f"internal error; request id {wire.request_id}",
                             code="InternalFailure", status=500)
        if self.failed is not None and name:
            self.failed(name, error.code)
        return wire.answer({"__type": error.code,
                            "message": cap_message(error.message, MESSAGE_LIMIT)},
                           error.status, error=error.code)


def media_type(header: str | None) -> str:
    """A Content-Type header's media type, as AWS compares it (parameters and spaces
    around it left out): ``'  application/x-amz-json-1.1 ;x'`` → the JSON 1.1 type."""
    return (header or "").split(";", 1)[0].strip().lower()


def request_id_headers(ids: tuple[str, str] | None = None) -> dict[str, str]:
    """The identifiers every AWS answer carries: ``x-amzn-RequestId`` and an
    ``x-amz-id-2`` (72 random bytes, base64, as AWS's extended request ids are); ``ids``
    as :func:`new_request_ids` made them, or new ones."""
    request_id, extended_id = ids or new_request_ids()
    return {"x-amzn-RequestId": request_id, "x-amz-id-2": extended_id}


def new_request_ids() -> tuple[str, str]:
    """A request id (a random UUID, version 4, as ``str(uuid.uuid4())`` writes it) and an
    extended id (72 random bytes, base64), from one read of the system's random source
    (``uuid.uuid4()`` and a second read took about 4% of a small call's server time).

    >>> import uuid
    >>> rid, ext = new_request_ids()
    >>> str(uuid.UUID(rid)) == rid and uuid.UUID(rid).version == 4, len(ext)
    (True, 96)
    """
    raw = os.urandom(88)
    h = raw[:16].hex()
    variant = "89ab"[raw[8] & 3]
    return (f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}",
            base64.b64encode(raw[16:]).decode("ascii"))


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer before it is sent: status, body, content type (None: none sent, as in
    AWS's XML refusals) and headers; sent as two ASGI messages or as a Starlette
    response."""

    status: int
    body: bytes
    media: str | None
    headers: dict[str, str]

    def response(self) -> Response:
        return Response(self.body, status_code=self.status, media_type=self.media,
                        headers=self.headers)

    async def send(self, send: Send) -> None:
        raw = [(b"content-length", str(len(self.body)).encode("latin-1"))]
        if self.media is not None:
            raw.append((b"content-type", self.media.encode("latin-1")))
        raw += [(k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": self.status, "headers": raw})
        await send({"type": "http.response.body", "body": self.body})


class _Wire:
    """How one request is answered: its request ids, and JSON 1.1 or CBOR as it asked."""

    __slots__ = ("request_id", "extended_id", "media", "cbor", "binary")

    def __init__(self, media: str, cbor: bool) -> None:
        self.request_id, self.extended_id = new_request_ids()
        self.media = media
        self.cbor = cbor  # whether the service speaks CBOR
        self.binary = cbor and media == CBOR_TYPE

    def headers(self, error: str | None = None) -> dict[str, str]:
        out = request_id_headers((self.request_id, self.extended_id))
        if error is not None:
            out["x-amzn-ErrorType"] = error
        return out

    def answer(self, document: dict, status: int, error: str | None = None) -> Reply:
        payload = cbor2.dumps(document) if self.binary else orjson.dumps(document)
        return Reply(status, payload, CBOR_TYPE if self.binary else JSON_TYPE,
                     self.headers(error))

    def empty(self) -> Reply:
        return Reply(200, b"", CBOR_TYPE if self.binary else JSON_TYPE, self.headers())

    def bare(self, code: str) -> Reply:
        """``{"__type": code}`` with 400, in JSON 1.1 only if the request said JSON 1.1
        (AWS answers requests it cannot read in CBOR, when the service speaks it)."""
        payload = {"__type": code}
        if self.media == JSON_TYPE or not self.cbor:
            body, media = orjson.dumps(payload), JSON_TYPE
        else:
            body, media = cbor2.dumps(payload), CBOR_TYPE
        return Reply(400, body, media, self.headers(code))

    def json_10(self, code: str, status: int) -> Reply:
        document = {"Output": {"__type": f"com.amazon.coral.service#{code}"},
                    "Version": "1.0"}
        return Reply(status, orjson.dumps(document), JSON_10_TYPE, self.headers(code))

    def xml(self, code: str, status: int, message: str | None = None) -> Reply:
        return Reply(status, xml_error(code, message), None, self.headers(code))


def xml_error(code: str, message: str | None = None) -> bytes:
    """AWS's front end's XML refusal (sent without a content type, as AWS sends it)."""
    if message is None:
        return f"<{code}/>\n".encode()
    return f"<{code}>\n  <Message>{message}</Message>\n</{code}>\n".encode()


async def _first_then(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """A stream whose first message was produced before the response started (so that a
    refusal raised while opening it is still an error answer, not a broken stream)."""
    yield first
    async for message in rest:
        yield message
