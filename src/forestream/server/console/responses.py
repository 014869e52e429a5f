"""How the console answers: whole pages and fragments (what htmx swaps in), with the
headers every console answer carries, and blocking reads moved off the event loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from . import pages

PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
               "img-src 'self' data:; connect-src 'self'; form-action 'self'; "
               "base-uri 'none'; frame-ancestors 'none'")
#: same-origin, not no-referrer: with no-referrer a browser sends ``Origin: null`` on a
#: plain form post, which the request guard refuses as a foreign origin.
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "same-origin"}
#: Tells a page's live parts to fetch themselves again (an action changed something).
CHANGED = {"HX-Trigger": "forestream-changed"}

Handler = Callable[[Request], Awaitable[Response]]


async def run(fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on a worker thread (SQLite, files, the stream store)."""
    return await anyio.to_thread.run_sync(lambda: fn(*args))


def with_headers(handler: Handler) -> Handler:
    """Every console answer carries :data:`HEADERS` (who may see the console is settled
    before: :class:`forestream.server.guard.RequestGuard`)."""
    async def wrapped(request: Request) -> Response:
        response = await handler(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response
    return wrapped


def htmx(request: Request) -> bool:
    """Whether htmx sent the request (it swaps a fragment in; a browser without scripts
    needs a whole page)."""
    return bool(request.headers.get("hx-request"))


def html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status,
                        headers={**HEADERS, "Content-Security-Policy": PAGE_POLICY})


def fragment(body: str, status: int = 200, headers: dict[str, str] | None = None
             ) -> HTMLResponse:
    return HTMLResponse(body, status_code=status, headers={
        **HEADERS, "Content-Security-Policy": PAGE_POLICY, **(headers or {})})


def fragment_or_page(request: Request, chrome: pages.Chrome, title: str, inner: str,
                     status: int = 200) -> Response:
    """``inner`` alone for htmx, inside a whole page otherwise."""
    if htmx(request):
        return fragment(inner, status)
    return html(pages.page(title, inner, chrome), status)
