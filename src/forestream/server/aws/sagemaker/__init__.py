"""SageMaker's control-plane API (JSON 1.1 over ``POST /``) for model hosting and the
Model Registry, so that boto3's ``sagemaker`` client — deployment scripts, waiters —
works against ``forestream server`` unchanged.

Requests name their operation in ``X-Amz-Target: SageMaker.<Operation>``. The body is
validated against botocore's ``sagemaker`` service model (:mod:`forestream.aws_shapes`), then the
operation runs on :mod:`forestream.models` (see :mod:`.sagemaker_hosting` for models,
endpoint configs and endpoints, :mod:`.sagemaker_registry` for model package groups and
packages). Errors come back in AWS's shape, ``{"__type": ..., "message": ...}`` with
status 400 (``ValidationException``, ``ResourceNotFound``, ``ResourceInUse``,
``ResourceLimitExceeded``, ``ConflictException``), 403 for a bad signature and 500 for a
fault of ours. With credentials configured, requests must carry a valid SigV4 signature.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import Response

from forestream.aws_shapes import ServiceShapes, ShapeValidationError
from forestream.config import Settings
from forestream.models.errors import ConflictError, ModelsError, NotFoundError
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.models.registry.sagemaker_models import SageMakerModels
from forestream.names import cap_message

from .sagemaker_common import Context, Operation, SageMakerError
from .sagemaker_hosting import OPERATIONS as HOSTING
from .sagemaker_registry import OPERATIONS as REGISTRY

log = logging.getLogger("forestream.server")
TARGET_PREFIX = "SageMaker."
JSON_TYPE = "application/x-amz-json-1.1"
OPERATIONS: dict[str, Operation] = {**HOSTING, **REGISTRY}


class SageMakerProtocol:
    """Dispatches SageMaker control-plane requests; see the module docstring."""

    def __init__(self, registry: ModelRegistry, endpoints: EndpointManager,
                 settings: Settings) -> None:
        self.settings = settings
        self.models = SageMakerModels(registry, settings.data_dir, settings.region)
        self.context = Context(registry, endpoints, self.models)

    def close(self) -> None:
        self.models.close()

    async def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        operation = request.headers.get("x-amz-target", "")[len(TARGET_PREFIX):]
        body = await request.body()
        try:
            spec = OPERATIONS.get(operation)
            if spec is None:
                raise SageMakerError("UnknownOperationException",
                                     f"{operation or '(none)'} is not a SageMaker operation "
                                     "forestream supports; supported: "
                                     f"{', '.join(sorted(OPERATIONS))}")
            try:
                params = orjson.loads(body or b"{}")
            except ValueError as exc:
                raise SageMakerError("SerializationException",
                                     f"malformed request body: {exc}") from None
            # the service model is large: loaded on the first request, off the loop
            args = await anyio.to_thread.run_sync(_parse, operation, params)
            result = await self._run(spec, args)
        except SageMakerError as exc:
            return _error(exc.code, exc.message, exc.status, request_id)
        except Exception:  # a bug of ours: answer in AWS's shape, keep the trace in the log
            log.exception("internal error in SageMaker.%s (request %s)", operation,
                          request_id)
            return _error("InternalFailure", f"internal error; request id {request_id}", 500,
                          request_id)
        return Response(orjson.dumps(result), media_type=JSON_TYPE,
                        headers={"x-amzn-RequestId": request_id})

    async def _run(self, spec: Operation, args: dict) -> dict:
        try:
            if asyncio.iscoroutinefunction(spec.fn):
                return await spec.fn(self.context, args)
            return await anyio.to_thread.run_sync(spec.fn, self.context, args)
        except NotFoundError as exc:
            raise SageMakerError(spec.not_found, exc.message) from None
        except ConflictError as exc:
            raise SageMakerError(spec.conflict, exc.message) from None
        except ModelsError as exc:  # InvalidInput, ImportRefused, ImportFailed, ...
            if exc.status == 403:  # CodeNotAllowed: the server's settings refuse it
                raise SageMakerError("AccessDeniedException", exc.message) from None
            if exc.status >= 500:
                raise SageMakerError("InternalFailure", exc.message, 500) from None
            raise SageMakerError("ValidationException", exc.message) from None


@functools.cache
def _shapes() -> ServiceShapes:
    return ServiceShapes("sagemaker")


def _parse(operation: str, params) -> dict:
    try:
        return _shapes().parse_input(operation, params)
    except ShapeValidationError as exc:
        raise SageMakerError("ValidationException", str(exc)) from None


def _error(code: str, message: str, status: int, request_id: str) -> Response:
    return Response(orjson.dumps({"__type": code, "message": cap_message(message)}),
                    status_code=status,
                    media_type=JSON_TYPE,
                    headers={"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code})
