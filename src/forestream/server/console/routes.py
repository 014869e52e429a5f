"""The web console: read-only HTML pages over the server's state.

``GET /`` is the overview (streams, applications, model groups, endpoints, recent
optimizer analyses, and how to connect); ``GET /console/streams/{name}``,
``/console/applications/{name}``, ``/console/models/{group}``,
``/console/endpoints/{name}`` and ``/console/optimizer/{id}/report.html`` show one
resource. ``POST /`` stays the AWS protocol entry: these routes answer GET (and HEAD)
only, and read through the packages' public read methods, so the console cannot change
anything. Reads that touch SQLite or files run on a worker thread; the endpoint
counters, which live on the event loop, are read there.

Who may see it is settled before the routes run (:mod:`forestream.server.guard`): the
server's access token, given once on ``/?token=...`` (the link ``forestream server``
prints) or in the sign-in form and then kept in an HttpOnly, SameSite=Strict cookie; with
server credentials configured, also HTTP Basic (access key id as user name, secret as
password). Serve the console over TLS (a reverse proxy) when it is reached over a
network.

Pages refresh themselves every ``?refresh=N`` seconds (default 10, 0 turns it off).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from forestream.config import Settings
from forestream.models.errors import InvalidInput
from forestream.models.errors import NotFoundError as ModelNotFound
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.optimizer.service import OptimizerError, OptimizerService
from forestream.processing.applications import ApplicationManager
from forestream.processing.errors import NotFoundError as ApplicationNotFound
from forestream.streams.errors import ResourceNotFoundError
from forestream.streams.store import StreamStore

from ..rest.optimizer import REPORT_POLICY
from . import pages

DEFAULT_REFRESH_SECONDS = 10
RECENT_ANALYSES = 5
APPLICATION_LOG_LINES = 100
ENDPOINT_LOG_FILES = 4  # the newest worker logs of an endpoint
ENDPOINT_LOG_LINES = 50
LOG_TAIL_BYTES = 64 * 1024
PAGE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer"}

Handler = Callable[[Request], Awaitable[Response]]


def routes(settings: Settings, store: StreamStore, applications: ApplicationManager,
           registry: ModelRegistry, endpoints: EndpointManager,
           optimizer: OptimizerService) -> list[Route]:
    """The console's GET routes over the server's own objects."""
    reader = ConsoleReader(store, applications, registry, endpoints, optimizer)
    guarded = _guard(settings)

    async def overview(request: Request) -> Response:
        data = await anyio.to_thread.run_sync(reader.overview)
        data.update(base_url=str(request.base_url).rstrip("/"), auth=settings.auth_enabled,
                    refresh=_refresh(request))
        return _html(pages.overview(data))

    def detail(kind: str, param: str, read, render, missing: tuple) -> Handler:
        """A page about one named thing: read it on a worker thread, 404 when unknown."""
        async def page(request: Request) -> Response:
            name = request.path_params[param]
            try:
                data = await anyio.to_thread.run_sync(read, name)
            except missing:
                return _missing(kind, name)
            return _html(render({**data, "refresh": _refresh(request)}))
        return page

    stream = detail("stream", "name", reader.stream, pages.stream, (ResourceNotFoundError,))
    application = detail("application", "name", reader.application, pages.application,
                         (ApplicationNotFound,))
    # InvalidInput: not even a valid group name
    model_group = detail("model group", "group", reader.model_group, pages.model_group,
                         (ModelNotFound, InvalidInput))
    endpoint = detail("endpoint", "name", reader.endpoint, pages.endpoint, (ModelNotFound,))

    async def report(request: Request) -> Response:
        analysis_id = request.path_params["analysis_id"]
        try:
            body = await anyio.to_thread.run_sync(optimizer.report_html, analysis_id)
        except OptimizerError:
            return _missing("optimizer analysis", analysis_id)
        return HTMLResponse(body, headers={**HEADERS, "Content-Security-Policy": REPORT_POLICY})

    async def console_root(request: Request) -> Response:
        return RedirectResponse("/", status_code=307)

    async def unknown(request: Request) -> Response:
        return _missing("console page", request.url.path)

    table: list[tuple[str, Handler]] = [
        ("/", overview),
        ("/console", console_root),
        ("/console/streams/{name}", stream),
        ("/console/applications/{name}", application),
        ("/console/models/{group}", model_group),
        ("/console/endpoints/{name}", endpoint),
        ("/console/optimizer/{analysis_id}/report.html", report),
        ("/console/{rest:path}", unknown),
    ]
    return [Route(path, guarded(handler), methods=["GET"]) for path, handler in table]


class ConsoleReader:
    """Gathers each page's data through the packages' public read methods (blocking: the
    route handlers call these on a worker thread)."""

    def __init__(self, store: StreamStore, applications: ApplicationManager,
                 registry: ModelRegistry, endpoints: EndpointManager,
                 optimizer: OptimizerService) -> None:
        self.store = store
        self.applications = applications
        self.registry = registry
        self.endpoints = endpoints
        self.optimizer = optimizer

    def overview(self) -> dict:
        streams = []
        for name in self.store.stream_names():
            try:
                streams.append(self.store.describe_stream_summary(
                    stream_name=name)["StreamDescriptionSummary"])
            except ResourceNotFoundError:  # deleted meanwhile
                continue
        apps = []
        for doc in self.applications.list_applications():
            try:
                apps.append(self.applications.describe_application(doc["name"]))
            except ApplicationNotFound:
                continue
        groups, token = [], None
        while True:
            listing = self.registry.list_groups(limit=1000, next_token=token)
            groups += listing["groups"]
            token = listing["next_token"]
            if not token:
                break
        return {"data_dir": str(self.store.data_dir.resolve()), "streams": streams,
                "applications": apps, "groups": groups,
                "endpoints": self.endpoints.list_endpoints(),
                "analyses": self.optimizer.list_analyses(limit=RECENT_ANALYSES)["analyses"]}

    def stream(self, name: str) -> dict:
        summary = self.store.describe_stream_summary(stream_name=name)
        summary = summary["StreamDescriptionSummary"]
        shards, token = [], None
        while True:
            listing = self.store.list_shards(stream_name=name) if token is None else \
                self.store.list_shards(next_token=token)
            shards += listing["Shards"]
            token = listing.get("NextToken")
            if not token:
                break
        arn = summary["StreamARN"]
        tags = {t["Key"]: t["Value"] for t in self.store.list_tags_for_resource(arn)["Tags"]}
        consumers = self.store.list_stream_consumers(stream_arn=arn)["Consumers"]
        return {"summary": summary, "shards": shards, "tags": tags, "consumers": consumers}

    def application(self, name: str) -> dict:
        return {"application": self.applications.describe_application(name),
                "logs": self.applications.logs(name, tail=APPLICATION_LOG_LINES)}

    def model_group(self, name: str) -> dict:
        group = self.registry.describe_group(name)
        versions, token = [], None
        while True:
            listing = self.registry.list_versions(group=name, limit=1000, next_token=token)
            versions += listing["versions"]
            token = listing["next_token"]
            if not token:
                break
        versions.sort(key=lambda v: v["version"], reverse=True)
        return {"group": group, "versions": versions}

    def endpoint(self, name: str) -> dict:
        description = self.endpoints.describe_endpoint(name)
        folder = self.endpoints.log_root / name
        files = sorted(folder.glob("*.log"), key=_mtime, reverse=True) \
            if folder.is_dir() else []
        logs = {path.stem: _tail(path, ENDPOINT_LOG_LINES)
                for path in files[:ENDPOINT_LOG_FILES]}
        return {"endpoint": description, "logs": logs,
                "metrics": self.endpoints.metrics.summary(name)}


# ------------------------------------------------------------------------ helpers
def _guard(settings: Settings) -> Callable[[Handler], Handler]:
    """Wrap handlers with the headers every console response carries (who may see the
    console is settled before: :class:`forestream.server.guard.RequestGuard`)."""
    def wrap(handler: Handler) -> Handler:
        async def run(request: Request) -> Response:
            response = await handler(request)
            for name, value in HEADERS.items():
                response.headers.setdefault(name, value)
            return response
        return run
    return wrap


def _html(body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(body, status_code=status,
                        headers={**HEADERS, "Content-Security-Policy": PAGE_POLICY})


def _missing(kind: str, name: str) -> HTMLResponse:
    return _html(pages.not_found(kind, name), status=404)


def _refresh(request: Request) -> int:
    raw = request.query_params.get("refresh")
    if raw is None or not raw.isdigit():
        return DEFAULT_REFRESH_SECONDS
    return min(int(raw), 3600)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a file, reading at most its last LOG_TAIL_BYTES."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            handle.seek(max(0, end - LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if end > LOG_TAIL_BYTES and text:
        text = text[1:]  # the first line was cut by the seek
    return text[-lines:]
