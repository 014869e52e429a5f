"""Errors raised by :mod:`forestream.models`.

Every error a caller can meet is a subclass of :class:`ModelsError`, in forestream's one
convention (:mod:`forestream.errors`): ``status`` is the HTTP status the server answers
with (404 for a missing model group, 415 for a content type the model cannot read, 424
for an exception inside the model, ...), ``code`` the error's name on the wire
(``ValidationException``, ``ModelError``, ...; the SageMaker routes rename kinds to the
codes SageMaker's API uses). The message is always the first positional argument and is
written for the person who caused the error: it names the bad value and what would have
been accepted.

>>> err = UnsupportedContentType("content type 'image/png' is not accepted; "
...                              "accepted: application/json, text/csv")
>>> (err.status, err.code, isinstance(err, ModelsError))
(415, 'UnsupportedContentType', True)
>>> ImportFailed("the model file is empty", version=3).version
3
"""

from __future__ import annotations

from forestream import errors


class ModelsError(errors.ForestreamError):
    """Base class of every :mod:`forestream.models` error."""


class NotFoundError(errors.NotFoundError, ModelsError):
    """A model group, version, endpoint configuration or endpoint does not exist."""


class ConflictError(errors.ConflictError, ModelsError):
    """The request conflicts with current state (a name in use, a group with versions)."""


class InvalidInput(errors.InvalidInputError, ModelsError):
    """A request parameter is malformed or out of range."""


class ImportRefused(errors.InvalidInputError, ModelsError):
    """An import was refused for safety, before anything was loaded.

    Raised when an artifact would execute code on load (a pickle, a joblib file, a
    PyTorch eager pickle, ``code/inference.py``) and the caller did not pass
    ``trust=True`` (``--trust`` on the command line), or when an archive member would
    escape the staging directory.
    """


class CodeNotAllowed(errors.ForbiddenError, ModelsError):
    """The model would run code on the server (``trust=True``: a pickle, custom inference
    code), and this registry or endpoint manager was told not to run clients' code."""


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

    Raised by :func:`forestream.models.serving.worker.validate_artifact`; the message says which
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


class ArtifactUnavailable(errors.UpstreamError, ModelsError):
    """S3 could not supply a model artifact: unreachable, refusing, or holding objects
    that do not match their manifest. Nothing was written to the local store."""

    code = "ArtifactUnavailable"


__all__ = [
    "ArtifactUnavailable",
    "CodeNotAllowed",
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
