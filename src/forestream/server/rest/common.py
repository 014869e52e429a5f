"""Plumbing shared by forestream's own REST APIs (``/api/v1/...``).

Errors are RFC 9457 problem details (``application/problem+json``); blocking work runs
on a worker thread; bodies are JSON objects. Authentication (the access token, or SigV4
for service ``forestream`` with credentials configured) happens before, in
:mod:`forestream.server.guard`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

import anyio
import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from forestream.names import cap_message

Handler = Callable[[Request], Awaitable[Response]]
E = TypeVar("E", bound=Exception)
F = TypeVar("F", bound=Exception)


def problem(status: int, title: str, detail: str, instance: str, **extra) -> JSONResponse:
    """A problem-details response; ``extra`` members are added to the object."""
    return JSONResponse({"type": "about:blank", "title": title, "status": status,
                         "detail": cap_message(detail), "instance": cap_message(instance),
                         **extra},
                        status_code=status, media_type="application/problem+json")


@overload
def answering_errors(errors: type[E], render: Callable[[Request, E], Response]
                     ) -> Callable[[Handler], Handler]: ...


@overload
def answering_errors(errors: tuple[type[E], type[F]],
                     render: Callable[[Request, E | F], Response]
                     ) -> Callable[[Handler], Handler]: ...


def answering_errors(errors: type[Exception] | tuple[type[Exception], ...],
                     render: Callable[[Request, Any], Response]
                     ) -> Callable[[Handler], Handler]:
    """Wrap handlers: turn the package's ``errors`` into responses with ``render``. (Who
    may call was settled before: :class:`forestream.server.guard.RequestGuard`.)"""
    def wrap(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            try:
                return await handler(request)
            except errors as exc:
                return render(request, exc)
        return run
    return wrap


async def threaded(fn, *args, http_status: int = 200, **kwargs) -> Response:
    """Run ``fn(*args, **kwargs)`` on a worker thread; its dict becomes JSON (with
    ``http_status``), None a 204. (Not ``status``: library calls take filters by that name.)"""
    result = await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
    if result is None:
        return Response(status_code=204)
    return JSONResponse(result, status_code=http_status)


async def json_object(request: Request, invalid: type[Exception]) -> dict:
    """The request body as a JSON object ({} when empty); ``invalid`` otherwise."""
    raw = await request.body()
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except ValueError:
        raise invalid("request body must be a JSON object") from None
    if not isinstance(data, dict):
        raise invalid("request body must be a JSON object")
    return data
