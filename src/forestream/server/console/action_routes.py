"""The console's ``POST`` routes: each reads the form (URL-encoded, or multipart where it
carries a file: :mod:`.forms`), checks the page's CSRF token, runs an action of
:mod:`.actions` and answers.

htmx gets a message for the page's message area (or an invocation's answer), with the
``forestream-changed`` event on success so the live parts refresh, and ``HX-Redirect``
where the page is gone or new; errors keep their status (htmx is configured to show
them: :data:`.pages.HTMX_CONFIG`). A form sent without scripts gets a redirect back to
the resource's page, or a page with the error and a link back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from forestream.config import Settings
from forestream.errors import ForestreamError

from . import csrf, pages
from .actions import ApplicationActions, ModelActions, Outcome, StreamActions
from .forms import read_form
from .responses import (
    CHANGED,
    Handler,
    fragment,
    fragment_or_page,
    html,
    htmx,
    run,
    with_headers,
)
from .views import models as model_view


def action_routes(settings: Settings, chrome: Callable[[Request], pages.Chrome],
                  streams: StreamActions, apps: ApplicationActions,
                  models: ModelActions) -> list[Route]:
    """The POST routes; ``chrome`` gives a request's page frame (for error pages)."""

    def action(do: Callable[..., Any], *params: str, threaded: bool = True,
               files: bool = False) -> Handler:
        """``do(*path_params, form)``: ``form`` is the text fields, or with ``files`` the
        whole :class:`.forms.Form` (a multipart form's uploads too)."""
        async def handler(request: Request) -> Response:
            sent = read_form(request.headers.get("content-type"), await request.body())
            expected = csrf.token_for(settings, request.app.state.token)
            if not csrf.valid(expected, request.headers.get(csrf.HEADER),
                              sent.fields.get(csrf.FIELD)):
                return refused(request, 403, "this form is missing the console's token "
                               "(CSRF): reload the page and send it again")
            args = [request.path_params[p] for p in params]
            form = sent if files else sent.fields
            try:
                outcome = await run(do, *args, form) if threaded else await do(*args, form)
            except ForestreamError as exc:
                return refused(request, exc.status, f"{exc.code}: {exc.message}")
            return done(request, outcome)
        return handler

    def refused(request: Request, status: int, message: str) -> Response:
        if htmx(request):
            return fragment(pages.flash(message, ok=False), status)
        body = pages.flash(message, ok=False) + \
            f'<p><a href="{pages.text(resource_page(request))}">Back</a></p>'
        return html(pages.page("Not done", body, chrome(request)), status)

    def done(request: Request, outcome: Outcome) -> Response:
        if outcome.answer is not None:
            return fragment_or_page(request, chrome(request), "Invocation",
                                    model_view.invocation(outcome.answer))
        if not htmx(request):
            return RedirectResponse(outcome.redirect or resource_page(request),
                                    status_code=303)
        headers = dict(CHANGED)
        if outcome.redirect:
            headers["HX-Redirect"] = outcome.redirect
        return fragment(pages.flash(outcome.message), headers=headers)

    table: list[tuple[str, Handler]] = [
        ("/console/streams", action(streams.create)),
        ("/console/streams/{name}/records", action(streams.put, "name")),
        ("/console/streams/{name}/split", action(streams.split, "name")),
        ("/console/streams/{name}/merge", action(streams.merge, "name")),
        ("/console/streams/{name}/delete", action(streams.delete, "name")),
        ("/console/applications", action(apps.create, files=True)),
        ("/console/applications/{name}/start", action(apps.start, "name")),
        ("/console/applications/{name}/stop", action(apps.stop, "name")),
        ("/console/applications/{name}/snapshots", action(apps.snapshot, "name")),
        ("/console/applications/{name}/scale", action(apps.scale, "name")),
        ("/console/models/{group}/versions/{version}/approval",
         action(models.approval, "group", "version")),
        ("/console/endpoints/{name}/invoke", action(models.invoke, "name", threaded=False)),
        ("/console/endpoints/{name}/weights", action(models.weights, "name", threaded=False)),
    ]
    return [Route(path, with_headers(handler), methods=["POST"]) for path, handler in table]


def resource_page(request: Request) -> str:
    """The page of the resource an action is about: ``/console/{kind}/{name}``."""
    return "/".join(request.url.path.split("/")[:4])
