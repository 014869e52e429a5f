"""Errors of the stream store, named as the Kinesis API names them.

Each class carries the AWS error code (``__type`` on the wire) and HTTP status, so the
server turns any of them into the AWS error shape without a table of its own.
"""

from __future__ import annotations


class StreamError(Exception):
    """Base class: ``code`` is the AWS error type, ``status`` the HTTP status."""

    code = "InternalFailure"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ValidationError(StreamError):
    code = "ValidationException"
    status = 400


class InvalidArgumentError(StreamError):
    code = "InvalidArgumentException"
    status = 400


class ResourceNotFoundError(StreamError):
    code = "ResourceNotFoundException"
    status = 400


class ResourceInUseError(StreamError):
    code = "ResourceInUseException"
    status = 400


class LimitExceededError(StreamError):
    code = "LimitExceededException"
    status = 400


class ExpiredIteratorError(StreamError):
    code = "ExpiredIteratorException"
    status = 400


class ExpiredNextTokenError(StreamError):
    code = "ExpiredNextTokenException"
    status = 400


class ThroughputExceededError(StreamError):
    code = "ProvisionedThroughputExceededException"
    status = 400


class AccessDeniedError(StreamError):
    code = "AccessDeniedException"
    status = 400


class KMSError(StreamError):
    code = "KMSInvalidStateException"
    status = 400
