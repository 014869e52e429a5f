"""Stream operations run as the Kinesis API runs them.

The store's methods trust their callers; the Kinesis protocol checks every member
against botocore's model first (patterns, lengths, ranges) and answers
``ValidationException`` in AWS's words. The console's stream actions and its record
browser go through that same check, so a form gets exactly the API's answer.
"""

from __future__ import annotations

from typing import Any

from forestream.streams.errors import ValidationError
from forestream.streams.store import StreamStore

from ..aws.kinesis import kinesis_shapes, snake_case
from ..aws.shapes import SerializationError, ShapeValidationError


def call(store: StreamStore, operation: str, **members: Any) -> dict:
    """Run Kinesis ``operation`` (``"CreateStream"``...) with its members (AWS names;
    blobs as bytes) on ``store``; :class:`ValidationError` when the model refuses them."""
    given = {k: v for k, v in members.items() if v is not None}
    try:
        args = kinesis_shapes().parse_input(operation, given, binary=True)
    except (ShapeValidationError, SerializationError) as exc:
        raise ValidationError(str(exc)) from None
    method = getattr(store, snake_case(operation))
    return method(**{snake_case(k): v for k, v in args.items()})
