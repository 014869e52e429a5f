"""Errors of the application layer, each with the HTTP status the REST API answers."""


class ApplicationError(Exception):
    """A request that cannot be done as asked (bad value, bad code)."""

    status = 400
    title = "Invalid request"


class NotFoundError(ApplicationError):
    status = 404
    title = "Not found"


class ConflictError(ApplicationError):
    """The application is not in a state that allows the operation."""

    status = 409
    title = "Conflict"


class ForbiddenError(ApplicationError):
    """The server's settings do not allow it (e.g. running clients' code)."""

    status = 403
    title = "Forbidden"
