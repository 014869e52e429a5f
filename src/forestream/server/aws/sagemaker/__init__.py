"""SageMaker's control-plane API (JSON 1.1 over ``POST /``) for model hosting and the
Model Registry, so that boto3's ``sagemaker`` client — deployment scripts, waiters —
works against ``forestream server`` unchanged.

Requests name their operation in ``X-Amz-Target: SageMaker.<Operation>`` and go through
the one AWS envelope (:mod:`..protocol`): validated against botocore's ``sagemaker``
model, then run on :mod:`forestream.models` (models, endpoint configs and endpoints in
:mod:`.hosting`, model package groups and packages in :mod:`.registry`). Errors use the
model's codes (:data:`.common.ERRORS`): a missing resource is ``ValidationException`` or
``ResourceNotFound`` as SageMaker answers for each operation, a conflict
``ResourceInUse``, a refusal by the server's settings ``AccessDeniedException``. The
runtime's invocations (``POST /endpoints/{name}/invocations``) are :mod:`.runtime`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from forestream.config import Settings
from forestream.models.errors import ConflictError, NotFoundError
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.models.registry.sagemaker_models import SageMakerModels

from ..protocol import JsonProtocol, Operation
from .common import ERRORS, SHAPES, Context, Handler
from .hosting import OPERATIONS as HOSTING
from .registry import OPERATIONS as REGISTRY

if TYPE_CHECKING:
    from forestream.errors import ForestreamError

TARGET_PREFIX = "SageMaker."
OPERATIONS: dict[str, Handler] = {**HOSTING, **REGISTRY}


class SageMakerControlPlane:
    """The control plane over one registry and endpoint manager: ``protocol`` answers
    ``POST /`` requests aimed at SageMaker; :meth:`close` releases its model records."""

    def __init__(self, registry: ModelRegistry, endpoints: EndpointManager,
                 settings: Settings) -> None:
        self.models = SageMakerModels(registry, settings.data_dir, settings.region)
        context = Context(registry, endpoints, self.models)
        operations = {name: _operation(context, handler)
                      for name, handler in OPERATIONS.items()}
        self.protocol = JsonProtocol(SHAPES, TARGET_PREFIX, operations, ERRORS)

    def close(self) -> None:
        self.models.close()


def _operation(context: Context, handler: Handler) -> Operation:
    codes: dict[type[ForestreamError], str] = {NotFoundError: handler.not_found,
                                               ConflictError: handler.conflict}
    fn = handler.fn
    if asyncio.iscoroutinefunction(fn):
        async def run_async(args: dict):
            return await fn(context, args)
        return Operation(run_async, codes=codes)
    return Operation(lambda args: fn(context, args), codes=codes)
