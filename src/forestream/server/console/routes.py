"""The web console's routes: pages, the parts of pages that htmx fetches again, the
record browser, and the actions that forms post.

Pages: ``/`` (overview), the index pages ``/console/streams``, ``/console/applications``,
``/console/models``, ``/console/endpoints``, ``/console/optimizer``, and one page per
resource (``/console/streams/{name}``...). Each page is made of parts; ``?part=live``
answers only the part that changes (htmx fetches it every few seconds), ``?part=forms``
the action forms (fetched again after an action). Actions are ``POST`` to a path under
the resource (``/console/streams/{name}/split``...); ``POST /`` stays the AWS protocol
entry.

Who may see the console is settled before (:mod:`forestream.server.guard`: the access
token's link or cookie, or HTTP Basic with server credentials; requests from other
origins are refused there). Actions also need the page's CSRF token (:mod:`.csrf`).
Reads that touch SQLite or files run on a worker thread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from forestream.config import Settings
from forestream.errors import ForestreamError
from forestream.models.errors import InvalidInput
from forestream.models.errors import NotFoundError as ModelNotFound
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.optimizer.service import OptimizerError, OptimizerService
from forestream.processing.applications import ApplicationManager
from forestream.processing.errors import NotFoundError as ApplicationNotFound
from forestream.streams.errors import ResourceNotFoundError
from forestream.streams.store import StreamStore

from ..metrics import Metrics
from ..rest.optimizer import REPORT_POLICY
from . import assets, csrf, pages
from .action_routes import action_routes
from .actions import ApplicationActions, ModelActions, StreamActions
from .anomalies import Choice, chart_data
from .history import ConsoleHistory
from .reader import ConsoleReader
from .records import parse_query, read_page
from .responses import HEADERS, PAGE_POLICY, Handler, fragment, html, htmx, run, with_headers
from .views import application_create as create_view
from .views import applications as app_view
from .views import models as model_view
from .views import overview as index_view
from .views import streams as stream_view

__all__ = ["routes", "PAGE_POLICY"]


def routes(settings: Settings, store: StreamStore, applications: ApplicationManager,
           registry: ModelRegistry, endpoints: EndpointManager,
           optimizer: OptimizerService, metrics: Metrics | None = None) -> list[Route]:
    """The console's routes over the server's own objects (``metrics``: the Kinesis
    API's counters, charted per shard; a console built without them counts its own)."""
    metrics = metrics or Metrics()
    reader = ConsoleReader(store, applications, registry, endpoints, optimizer)
    history = ConsoleHistory(metrics, applications, endpoints)

    def chrome(request: Request) -> pages.Chrome:
        history.ensure_started()
        return assets.chrome(csrf.token_for(settings, request.app.state.token))

    # ------------------------------------------------------------------ pages
    async def overview(request: Request) -> Response:
        data = await run(reader.overview)
        data.update(base_url=str(request.base_url).rstrip("/"), auth=settings.auth_enabled)
        return compose(request, "Overview", "overview", {"live": lambda: index_view.overview(
            data)})

    def index(title: str, section: str, read: Callable[[], Any],
              render: Callable[[Any], str], extra: Callable[[pages.Chrome], str] | None = None
              ) -> Handler:
        async def handler(request: Request) -> Response:
            data = await run(read)
            parts: dict[str, Callable[[], str]] = {"live": lambda: render(data)}
            if extra is not None:
                ch = chrome(request)
                parts["forms"] = lambda: extra(ch)
            return compose(request, title, section, parts)
        return handler

    async def application_index(request: Request) -> Response:
        if request.query_params.get("part") == "live":  # polled: the list alone
            listing = await run(reader.application_list)
            return fragment(index_view.application_table(listing))
        data = await run(reader.application_index)
        ch = chrome(request)
        return compose(request, "Applications", "applications", {
            "live": lambda: index_view.application_table(data["applications"]),
            "forms": lambda: create_view.create_form(data["flink"], ch)})

    async def stream(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            data = await run(reader.stream, name)
        except ResourceNotFoundError:
            return missing(request, "stream", name)
        ch = chrome(request)
        return compose(request, f"Stream {name}", "streams", {
            "live": lambda: stream_view.live(data, history.stream_rates(
                name, [s["ShardId"] for s in data["shards"]]), ch),
            "forms": lambda: stream_view.forms(data, ch)},
            after=stream_view.browser(data, ch))

    async def records(request: Request) -> Response:
        name = request.path_params["name"]
        ch = chrome(request)
        started = time.perf_counter()
        try:
            query = parse_query(request.query_params)
            page = await run(read_page, store, name, query)
        except ForestreamError as exc:
            return fragment_or_page(request, f"Stream {name}", pages.flash(
                f"{exc.code}: {exc.message}", ok=False), exc.status)
        # counted as the reads they are (bytes out per shard)
        metrics.observe("GetRecords", {"StreamName": name},
                        {"StreamName": name, "Records": page["raw"]},
                        time.perf_counter() - started)
        return fragment_or_page(request, f"Stream {name}",
                                stream_view.records(name, query, page, ch))

    async def application(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            data = await run(reader.application, name)
        except ApplicationNotFound:
            return missing(request, "application", name)
        ch = chrome(request)
        if request.query_params.get("part") == "anomalies":
            return await anomalies(request, data)
        return compose(request, f"Application {name}", "applications", {
            "live": lambda: app_view.live(data, history.application_series(name)),
            "forms": lambda: app_view.forms(data, ch)},
            after=app_view.anomalies_form(data, ch))

    async def anomalies(request: Request, data: dict) -> Response:
        params = request.query_params
        try:
            grade = float(params.get("min_grade") or 0.5)
        except ValueError:
            return fragment(pages.flash(f"grade {params.get('min_grade')!r} must be a number",
                                        ok=False), 400)
        choice = Choice(input=params.get("input") or None, output=params.get("output") or None,
                        field=params.get("field") or None, key=params.get("key") or None,
                        min_grade=grade)
        try:
            found = await run(chart_data, store, data["application"], data["stream_names"],
                              choice)
        except ForestreamError as exc:
            return fragment(pages.flash(f"{exc.code}: {exc.message}", ok=False), exc.status)
        return fragment_or_page(request, "Anomalies", app_view.anomalies(found))

    async def model_group(request: Request) -> Response:
        name = request.path_params["group"]
        try:
            data = await run(reader.model_group, name)
            if request.query_params.get("part") == "version":
                raw = request.query_params.get("version", "")
                if not raw.isdigit():
                    raise InvalidInput(f"version {raw!r} must be a positive integer")
                version = await run(reader.version, name, int(raw))
                return fragment_or_page(request, f"Model group {name}",
                                        model_view.version_detail(version))
        except (ModelNotFound, InvalidInput):  # InvalidInput: not even a valid name
            return missing(request, "model group", name)
        ch = chrome(request)
        return compose(request, f"Model group {name}", "models", {
            "live": lambda: model_view.group_live(data, ch)},
            after='<div id="version-detail"></div>')

    async def endpoint(request: Request) -> Response:
        name = request.path_params["name"]
        try:
            data = await run(reader.endpoint, name)
        except ModelNotFound:
            return missing(request, "endpoint", name)
        ch = chrome(request)
        counts = endpoints.metrics.summary(name)
        return compose(request, f"Endpoint {name}", "endpoints", {
            "live": lambda: model_view.endpoint_live(data, counts,
                                                     history.endpoint_series(name)),
            "forms": lambda: model_view.endpoint_forms(data, ch)})

    async def report(request: Request) -> Response:
        analysis_id = request.path_params["analysis_id"]
        try:
            body = await run(optimizer.report_html, analysis_id)
        except OptimizerError:
            return missing(request, "optimizer analysis", analysis_id)
        back = ('<nav style="font:14px system-ui,sans-serif;background:#1d3b2a;padding:.5em '
                '1.5em"><a style="color:#fff" href="/console/optimizer">← all analyses</a> · '
                '<a style="color:#d8efe0" href="/">console overview</a></nav>')
        body = body.replace("<body>", "<body>" + back, 1)
        return HTMLResponse(body, headers={**HEADERS, "Content-Security-Policy": REPORT_POLICY})

    async def console_root(request: Request) -> Response:
        return RedirectResponse("/", status_code=307)

    async def unknown(request: Request) -> Response:
        return missing(request, "console page", request.url.path)

    # ------------------------------------------------------------------ helpers
    def compose(request: Request, title: str, section: str,
                parts: dict[str, Callable[[], str]], after: str = "") -> Response:
        """The whole page, or only the part ``?part=`` names (htmx's live updates)."""
        wanted = request.query_params.get("part")
        if wanted in parts:
            return fragment(parts[wanted]())
        ch = chrome(request)
        url = request.url.path
        body = "".join(pages.live_region(f"{url}?part={key}", render(), ch,
                                         poll=key == "live", region=key)
                       for key, render in parts.items())
        return html(pages.page(title, body + after, ch, section))

    def fragment_or_page(request: Request, title: str, inner: str,
                         status: int = 200) -> Response:
        if htmx(request):
            return fragment(inner, status)
        return html(pages.page(title, inner, chrome(request)), status)

    def missing(request: Request, kind: str, name: str) -> Response:
        if htmx(request):
            return fragment(pages.flash(f"there is no {kind} named {name}", ok=False), 404)
        return html(pages.not_found(kind, name, chrome(request)), status=404)

    table: list[tuple[str, Handler]] = [
        ("/", overview),
        ("/console", console_root),
        ("/console/static/{path:path}", assets.serve),
        ("/console/streams", index("Streams", "streams", reader.streams,
                                   index_view.stream_table, index_view.create_stream_form)),
        ("/console/applications", application_index),
        ("/console/models", index("Model groups", "models", reader.groups,
                                  index_view.group_table)),
        ("/console/endpoints", index("Endpoints", "endpoints", endpoints.list_endpoints,
                                     index_view.endpoint_table)),
        ("/console/optimizer", index("Optimizer analyses", "optimizer", reader.analyses,
                                     index_view.analysis_table)),
        ("/console/streams/{name}", stream),
        ("/console/streams/{name}/records", records),
        ("/console/applications/{name}", application),
        ("/console/models/{group}", model_group),
        ("/console/endpoints/{name}", endpoint),
        ("/console/optimizer/{analysis_id}/report.html", report),
        ("/console/{rest:path}", unknown),
    ]
    pages_ = [Route(path, with_headers(handler), methods=["GET"]) for path, handler in table]
    return action_routes(settings, chrome, StreamActions(store, metrics),
                         ApplicationActions(applications), ModelActions(registry, endpoints)
                         ) + pages_
