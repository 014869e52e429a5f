"""AWS errors on the wire: one class per error shape of a service's model, and the codes
library errors are answered with.

botocore builds a client's exception classes from the service model's error shapes
(``botocore/errorfactory.py``); :class:`ServiceErrors` does the same on the server side:
``errors.ResourceNotFound("...")`` is an :class:`AwsError` whose ``code`` is an error
shape the model declares, and asking for a code the model does not declare (nor AWS's
JSON protocol itself, see :data:`PROTOCOL_CODES`) is an ``AttributeError`` — a handler
cannot invent a code clients do not know.

:meth:`ServiceErrors.wire` turns any exception into what goes on the wire: an
:class:`AwsError` as it is; a :class:`~forestream.errors.ForestreamError` by its kind
(the operation's own code for the kind, else the error's code when the model declares
it, else the service's code for the kind); anything else is an ``InternalFailure``.
AWS's JSON protocol answers client errors with 400 and faults with 500.

>>> errors = ServiceErrors("demo", ["ResourceNotFound"], {})
>>> exc = errors.ResourceNotFound("no such model")
>>> (exc.code, exc.status, exc.message)
('ResourceNotFound', 400, 'no such model')
>>> errors.Invented
Traceback (most recent call last):
...
AttributeError: demo's model declares no error 'Invented'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from forestream import errors as kinds

#: Errors every AWS JSON service answers, whatever its model lists.
PROTOCOL_CODES = ("ValidationException", "SerializationException",
                  "UnknownOperationException", "AccessDeniedException", "InternalFailure",
                  "MissingAuthenticationTokenException", "IncompleteSignatureException",
                  "InvalidSignatureException", "UnrecognizedClientException",
                  "ThrottlingException", "RequestEntityTooLarge")


class AwsError(Exception):
    """An answer in AWS's error shape: ``code`` (``__type``), ``message``, HTTP
    ``status`` (400 for the client's errors, 500 for faults)."""

    code = "InternalFailure"
    status = 400

    def __init__(self, message: str, *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class ServiceErrors:
    """The error classes of one service (``name``): its model's ``error_shapes`` and the
    protocol's own; ``kind_codes`` maps kinds of :mod:`forestream.errors` to the code the
    service answers them with when an error's own code is not one of its shapes."""

    def __init__(self, name: str, error_shapes: Iterable[str],
                 kind_codes: Mapping[type[kinds.ForestreamError], str]) -> None:
        self.name = name
        self.codes = frozenset(error_shapes) | frozenset(PROTOCOL_CODES)
        self.kind_codes = dict(kind_codes)
        self._classes: dict[str, type[AwsError]] = {}

    def __getattr__(self, code: str) -> type[AwsError]:
        if code.startswith("_") or code not in self.codes:
            raise AttributeError(f"{self.name}'s model declares no error {code!r}")
        cls = self._classes.get(code)
        if cls is None:
            cls = self._classes[code] = type(code, (AwsError,), {"code": code})
        return cls

    def wire(self, exc: BaseException,
             operation_codes: Mapping[type[kinds.ForestreamError], str] | None = None
             ) -> AwsError:
        """The :class:`AwsError` to answer ``exc`` with."""
        if isinstance(exc, AwsError):
            return exc
        if not isinstance(exc, kinds.ForestreamError):
            return AwsError("internal error", code="InternalFailure", status=500)
        if exc.status >= 500:
            return AwsError(exc.message, code="InternalFailure", status=500)
        for kind, code in (operation_codes or {}).items():
            if isinstance(exc, kind):
                return AwsError(exc.message, code=code)
        if exc.code in self.codes:
            return AwsError(exc.message, code=exc.code)
        for kind, code in self.kind_codes.items():
            if isinstance(exc, kind):
                return AwsError(exc.message, code=code)
        return AwsError(exc.message, code="ValidationException")
