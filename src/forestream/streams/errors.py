"""Errors of the stream store, named as the Kinesis API names them, in forestream's one
convention (:mod:`forestream.errors`).

Each class is a kind (not found, conflict, invalid input, ...) with the exact Kinesis
error code (``__type`` on the wire; every code is an error shape of botocore's Kinesis
model, checked by the tests). ``status`` is the kind's HTTP status; the Kinesis protocol
(AWS JSON 1.1) answers every client error with 400 itself.
"""

from __future__ import annotations

from forestream import errors


class StreamError(errors.ForestreamError):
    """Base class of the stream store's errors."""


class ValidationError(errors.InvalidInputError, StreamError):
    """A member breaks the API model's constraints (type, length, pattern, range)."""


class InvalidArgumentError(errors.InvalidInputError, StreamError):
    code = "InvalidArgumentException"


class ResourceNotFoundError(errors.NotFoundError, StreamError):
    """No stream, shard or consumer of that name (``ResourceNotFoundException``)."""


class ResourceInUseError(errors.ConflictError, StreamError):
    code = "ResourceInUseException"


class LimitExceededError(errors.LimitExceededError, StreamError):
    """Too many streams, shards, consumers or tags (``LimitExceededException``)."""


class ExpiredIteratorError(errors.InvalidInputError, StreamError):
    code = "ExpiredIteratorException"


class ExpiredNextTokenError(errors.InvalidInputError, StreamError):
    code = "ExpiredNextTokenException"


class ThroughputExceededError(errors.LimitExceededError, StreamError):
    code = "ProvisionedThroughputExceededException"


class AccessDeniedError(errors.ForbiddenError, StreamError):
    """``AccessDeniedException``."""


class KMSError(errors.ConflictError, StreamError):
    code = "KMSInvalidStateException"
