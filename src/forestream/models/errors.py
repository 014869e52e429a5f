"""Errors raised by :mod:`forestream.models`.

Every error a caller can meet is a subclass of :class:`ModelsError`, and every class
carries two things a front end needs to render it without a lookup table of its own:

* ``status`` — the HTTP status the server answers with (404 for a missing model group,
  415 for a content type the model cannot read, 424 for an exception inside the model,
  ...);
* ``code`` — the error name used in AWS-shaped responses (``__type`` on the SageMaker
  routes), e.g. ``"ValidationError"`` or ``"ModelError"``, the names SageMaker uses.

The message is always the first positional argument and is written for the person who
caused the error: it names the bad value and what would have been accepted.

>>> err = UnsupportedContentType("content type 'image/png' is not accepted; "
...                              "accepted: application/json, text/csv")
>>> (err.status, err.code, isinstance(err, ModelsError))
(415, 'UnsupportedContentType', True)
>>> ImportFailed("the model file is empty", version=3).version
3
"""

from __future__ import annotations


class ModelsError(Exception):
    """Base class of every :mod:`forestream.models` error.

    ``status`` is the HTTP status code and ``code`` the AWS-style error name; subclasses
    override both as class attributes. ``message`` is the human-readable text.
    """

    status: int = 500
    code: str = "InternalFailure"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict:
        """The error as a JSON-ready ``{"code", "message", "status"}`` mapping."""
        return {"code": self.code, "message": self.message, "status": self.status}


class NotFoundError(ModelsError):
    """A model group, version, endpoint configuration or endpoint does not exist."""

    status = 404
    code = "ResourceNotFound"


class ConflictError(ModelsError):
    """The request conflicts with current state (a name in use, a group with versions)."""

    status = 409
    code = "ConflictException"


class InvalidInput(ModelsError):
    """A request parameter is malformed or out of range."""

    status = 400
    code = "ValidationError"


class ImportRefused(ModelsError):
    """An import was refused for safety, before anything was loaded.

    Raised when an artifact would execute code on load (a pickle, a joblib file, a
    PyTorch eager pickle, ``code/inference.py``) and the caller did not pass
    ``trust=True`` (``--trust`` on the command line), or when an archive member would
    escape the staging directory.
    """

    status = 400
    code = "ValidationError"


class CodeNotAllowed(ModelsError):
    """The model would run code on the server (``trust=True``: a pickle, custom inference
    code), and this registry or endpoint manager was told not to run clients' code."""

    status = 403
    code = "AccessDeniedException"


class ImportFailed(ModelsError):
    """An import ran but did not produce a usable model version.

    The version still exists, with status ``"Failed"`` and this message as its
    ``failure_reason``; ``version`` is its number (``None`` when the failure happened
    before a number was assigned).
    """

    status = 422
    code = "ImportFailed"

    def __init__(self, message: str, *, version: int | None = None) -> None:
        super().__init__(message)
        self.version = version

    def to_dict(self) -> dict:
        return {**super().to_dict(), "version": self.version}


class ModelValidationError(ModelsError):
    """Loading the model, or running the sample input through it, failed.

    Raised by :func:`forestream.models.worker.validate_artifact`; the message says which
    step failed (load or sample) and quotes the model's own exception.
    """

    status = 422
    code = "ModelValidationError"


class FrameworkUnavailable(ModelsError):
    """The model's framework cannot be used on this server.

    The message names the framework and what to do: the extra to install
    (``forestream[tensorflow]``) or why it cannot be installed at all (MXNet).
    """

    status = 422
    code = "FrameworkUnavailable"


class ModelLoadError(ModelsError):
    """A worker process could not load the model (its ``model_fn`` or loader raised)."""

    status = 500
    code = "ModelLoadError"


class UnsupportedContentType(ModelsError):
    """The request's ``Content-Type`` or ``Accept`` is not one the handler understands.

    The message names the rejected type and lists the accepted ones.
    """

    status = 415
    code = "UnsupportedContentType"


class ModelInvocationError(ModelsError):
    """The model (or its inference code) raised while serving a request.

    The SageMaker runtime calls this ``ModelError`` and answers 424; ``message`` carries
    the exception's type and text so the caller can see what went wrong in their code.
    """

    status = 424
    code = "ModelError"


class WorkerCrashed(ModelsError):
    """The worker process died (or stopped answering) while serving a request.

    The worker is gone; the caller starts a fresh one. The message carries the exit
    code and the last lines of the worker's log when there is one.
    """

    status = 500
    code = "InternalFailure"


class ArtifactUnavailable(ModelsError):
    """S3 could not supply a model artifact: unreachable, refusing, or holding objects
    that do not match their manifest. Nothing was written to the local store."""

    status = 502
    code = "ArtifactUnavailable"


__all__ = [
    "ArtifactUnavailable",
    "ConflictError",
    "FrameworkUnavailable",
    "ImportFailed",
    "ImportRefused",
    "InvalidInput",
    "ModelInvocationError",
    "ModelLoadError",
    "ModelValidationError",
    "ModelsError",
    "NotFoundError",
    "UnsupportedContentType",
    "WorkerCrashed",
]
