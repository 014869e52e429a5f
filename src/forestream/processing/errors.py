"""Errors of the application layer, in forestream's one convention (:mod:`forestream.errors`):
each carries the ``code`` and HTTP ``status`` the REST API answers with."""

from __future__ import annotations

from forestream import errors


class ApplicationError(errors.ForestreamError):
    """A request that cannot be done as asked (bad value, bad code): a 400."""

    code = errors.InvalidInputError.code
    status = errors.InvalidInputError.status


class NotFoundError(errors.NotFoundError, ApplicationError):
    """No application (or snapshot) of that name."""


class ConflictError(errors.ConflictError, ApplicationError):
    """The application is not in a state that allows the operation."""


class ForbiddenError(errors.ForbiddenError, ApplicationError):
    """The server's settings do not allow it (e.g. running clients' code)."""
