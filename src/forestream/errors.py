"""One error convention for every package: a ``code``, an HTTP ``status``, a ``message``.

Every error a caller of forestream can meet derives from :class:`ForestreamError` and
carries what a front end needs to answer with it, without a table of its own:

- ``code``: the error's name on the wire — AWS's ``__type`` on the AWS routes, the
  ``title`` of RFC 9457 problem details on the REST API (``ResourceNotFoundException``,
  ``ValidationException``, ...);
- ``status``: the HTTP status a server answers with;
- ``message``: written for the person who caused it, naming the bad value and what would
  have been accepted.

The kinds below say *what happened*; each package derives its own errors from its base
class and a kind (``class ApplicationNotFound(ApplicationError, NotFoundError)``), so a
caller can catch "anything from processing" or "anything not found" alike. The AWS
protocol layer (:mod:`forestream.server.aws`) renames kinds to the exact codes each
service's model declares.

>>> err = NotFoundError("application 'x' not found")
>>> (err.code, err.status, isinstance(err, ForestreamError))
('ResourceNotFoundException', 404, True)
>>> err.to_dict()
{'code': 'ResourceNotFoundException', 'status': 404, 'message': "application 'x' not found"}
"""

from __future__ import annotations


class ForestreamError(Exception):
    """Base class of every forestream error; subclasses set ``code`` and ``status``."""

    code: str = "InternalFailure"
    status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        """The error as JSON-ready ``{"code", "status", "message"}``."""
        return {"code": self.code, "status": self.status, "message": self.message}


class InvalidInputError(ForestreamError):
    """A value the caller sent is malformed or out of range."""

    code = "ValidationException"
    status = 400


class NotFoundError(ForestreamError):
    """The named thing does not exist."""

    code = "ResourceNotFoundException"
    status = 404


class ConflictError(ForestreamError):
    """The request conflicts with the current state (a name in use, a wrong status)."""

    code = "ConflictException"
    status = 409


class ForbiddenError(ForestreamError):
    """The server's settings do not allow it (running clients' code, a server path)."""

    code = "AccessDeniedException"
    status = 403


class LimitExceededError(ForestreamError):
    """A limit on counts, sizes or rates would be exceeded."""

    code = "LimitExceededException"
    status = 400


class UpstreamError(ForestreamError):
    """A service forestream relies on (S3, Prometheus) failed or could not be reached."""

    code = "SourceUnavailable"
    status = 502
