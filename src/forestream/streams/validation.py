"""Kinesis input validation and wire-shape conversion, driven by botocore's service model.

The Kinesis API's constraints (required members, lengths, patterns, ranges, enums) are
data in botocore's machine-readable model; :class:`forestream.aws_shapes.ServiceShapes`
reads them, and converts wire values into Python ones (blobs from base64 in JSON,
timestamps from epoch seconds) and back for responses.
"""

from __future__ import annotations

import functools
from typing import Any

from forestream.aws_shapes import ServiceShapes

from .errors import InvalidArgumentError, ValidationError

#: Members the model leaves optional that forestream's streams need: records are routed by
#: partition key (the USER_PARTITION_KEY distribution; newer models make PartitionKey
#: optional for AUTO distribution, which forestream does not offer).
REQUIRED_HERE = {"PutRecordInput": "PartitionKey", "PutRecordsRequestEntry": "PartitionKey"}


@functools.cache
def _kinesis() -> ServiceShapes:
    shapes = ServiceShapes("kinesis", error=ValidationError)
    for shape, member in REQUIRED_HERE.items():
        required = shapes.shapes[shape].setdefault("required", [])
        if member not in required:
            required.append(member)
    return shapes


def service_model() -> dict:
    return _kinesis().model


def operation_names() -> list[str]:
    return sorted(_kinesis().operations)


def parse_input(operation: str, params: Any, binary: bool) -> dict:
    """Validate ``params`` for ``operation`` and return them converted to Python values.

    ``binary`` is True for CBOR bodies (blobs arrive as bytes), False for JSON (base64).
    Raises :class:`ValidationError` with AWS's message format.
    """
    if operation not in _kinesis().operations:
        raise InvalidArgumentError(f"unknown operation {operation!r}")
    return _kinesis().parse_input(operation, params, binary)


def render_output(operation: str, result: dict, binary: bool) -> dict:
    """Python values → wire values for ``operation``'s output shape."""
    return _kinesis().render_output(operation, result, binary)
