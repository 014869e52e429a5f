"""The ASGI application: AWS wire protocols on ``POST /``, health and metrics."""

from __future__ import annotations

import contextlib
import threading

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from forestream.config import Settings
from forestream.processing.applications import ApplicationManager
from forestream.streams.store import StreamStore

from .apps_api import routes as application_routes
from .kinesis import KinesisProtocol
from .metrics import Metrics

RETENTION_SWEEP_SECONDS = 60.0


def create_app(settings: Settings | None = None, store: StreamStore | None = None) -> Starlette:
    """Build the server around a (new or given) stream store."""
    settings = settings or Settings()
    store = store or StreamStore(settings.data_dir, fsync=settings.fsync,
                                 status_delay=settings.status_delay,
                                 throughput_limits=settings.throughput_limits,
                                 region=settings.region)
    metrics = Metrics()
    kinesis = KinesisProtocol(store, settings, metrics)
    # Application workers reach this server's Kinesis API through this variable.
    manager = ApplicationManager(settings.data_dir, environment={
        "FORESTREAM_ENDPOINT_URL": f"http://{settings.host}:{settings.port}"})
    stop = threading.Event()

    def sweep() -> None:
        while not stop.wait(RETENTION_SWEEP_SECONDS):
            with contextlib.suppress(Exception):  # a failed sweep is retried next round
                store.enforce_retention()

    @contextlib.asynccontextmanager
    async def lifespan(app):
        worker = threading.Thread(target=sweep, name="retention", daemon=True)
        worker.start()
        manager.start()
        try:
            yield
        finally:
            stop.set()
            manager.close()
            store.close()

    async def aws_entry(request: Request):
        return await kinesis.handle(request)

    async def health(request: Request):
        return JSONResponse({"status": "ok", "streams": len(store.stream_names()),
                             "data_dir": str(store.data_dir.resolve())})

    async def prometheus(request: Request):
        return PlainTextResponse(metrics.render(store), media_type="text/plain; version=0.0.4")

    app = Starlette(routes=[
        Route("/", aws_entry, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        *application_routes(manager, settings),
    ], lifespan=lifespan)
    app.state.store = store
    app.state.applications = manager
    app.state.settings = settings
    return app
