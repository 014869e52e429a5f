"""What the SageMaker control-plane handlers share: the service model and its errors, the
objects they work on, timestamps on the wire, and SageMaker's List* filters and pages."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from forestream import errors as kinds
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.models.registry.sagemaker_models import SageMakerModels

from ..errors import AwsError, ServiceErrors
from ..shapes import ServiceShapes

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

DEFAULT_MAX_RESULTS = 10  # SageMaker's page size when MaxResults is not given


#: botocore's SageMaker model, and the error classes of its error shapes.
SHAPES = ServiceShapes("sagemaker")
ERRORS = ServiceErrors("sagemaker", SHAPES.error_shapes(), {
    kinds.ForbiddenError: "AccessDeniedException",
    kinds.NotFoundError: "ValidationException",  # SageMaker's answer for most missing things
    kinds.ConflictError: "ResourceInUse",
    kinds.LimitExceededError: "ResourceLimitExceeded"})


def validation(message: str) -> AwsError:
    return ERRORS.ValidationException(message)


@dataclass(frozen=True)
class Context:
    """The objects SageMaker's operations map onto."""

    registry: ModelRegistry
    endpoints: EndpointManager
    models: SageMakerModels


@dataclass(frozen=True)
class Handler:
    """One supported operation: ``fn(context, args) -> dict`` (a coroutine function runs
    on the event loop, a plain one on a worker thread) and the codes this operation
    answers the models package's NotFoundError and ConflictError with."""

    fn: Callable[[Context, dict], Any]
    not_found: str = "ValidationException"
    conflict: str = "ResourceInUse"


def epoch(iso: str | None) -> float | None:
    """An ISO 8601 time as stored (UTC) -> seconds since the epoch, as the wire wants."""
    if iso is None:
        return None
    stamp = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.timezone.utc)
    return stamp.timestamp()


def tag_map(tags: list | None) -> dict:
    """SageMaker's ``[{"Key", "Value"}]`` as a mapping."""
    return {t["Key"]: t.get("Value", "") for t in tags or []}


def listing(operation: str, items: list[dict], args: dict, *, name_key: str,
            sort_keys: dict[str, str], default_sort: str = "CreationTime",
            default_order: str = "Descending", status_key: str | None = None,
            ) -> tuple[list[dict], str | None]:
    """SageMaker's List* semantics over complete, already rendered ``items``:
    ``NameContains`` (case-insensitive), ``CreationTimeAfter``/``Before`` (exclusive),
    ``StatusEquals`` (with ``status_key``), ``SortBy`` (a key of ``sort_keys``, which maps
    it to an item key), ``SortOrder``, then one page of ``MaxResults`` after
    ``NextToken``. Returns the page and the next token (None on the last page)."""
    needle = (args.get("NameContains") or "").lower()
    after, before = args.get("CreationTimeAfter"), args.get("CreationTimeBefore")
    wanted_status = args.get("StatusEquals")
    chosen = [item for item in items
              if needle in item[name_key].lower()
              and (after is None or item["CreationTime"] > after)
              and (before is None or item["CreationTime"] < before)
              and (wanted_status is None or item.get(status_key) == wanted_status)]
    sort_by = args.get("SortBy") or default_sort
    if sort_by not in sort_keys:
        raise validation(f"SortBy {sort_by!r} is not supported by {operation}; accepted: "
                         f"{', '.join(sort_keys)}")
    key = sort_keys[sort_by]
    chosen.sort(key=lambda item: (item[key], item[name_key]),
                reverse=(args.get("SortOrder") or default_order) == "Descending")
    offset = _offset(operation, args.get("NextToken"))
    size = args.get("MaxResults") or DEFAULT_MAX_RESULTS
    page = chosen[offset:offset + size]
    more = offset + size < len(chosen)
    return page, _token(operation, offset + size) if more else None


def _token(operation: str, offset: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([operation, offset])).decode()


def _offset(operation: str, token: str | None) -> int:
    if not token:
        return 0
    try:
        name, offset = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        if name == operation and isinstance(offset, int) and offset >= 0:
            return offset
    except (binascii.Error, ValueError, TypeError):
        pass
    raise validation(f"NextToken {token!r} is invalid for {operation}; pass the NextToken "
                     f"of a previous {operation} answer")

