"""The ASGI application: AWS wire protocols on ``POST /`` (Kinesis, and the SageMaker
control plane by ``X-Amz-Target``), health and metrics."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from forestream import access_token
from forestream.config import Settings
from forestream.formats import check_data_dir
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.models.staging.sources import ImportLimits
from forestream.optimizer.service import OptimizerService
from forestream.processing.applications import ApplicationManager
from forestream.streams.store import StreamStore

from .aws.kinesis import kinesis_protocol
from .aws.sagemaker import TARGET_PREFIX as SAGEMAKER_TARGET
from .aws.sagemaker import SageMakerControlPlane
from .aws.sagemaker.runtime import routes as sagemaker_routes
from .aws.workers import WorkerPool
from .connections import HEADER_TIMEOUT_SECONDS, GuardedHttpToolsProtocol, tls_context
from .console.routes import routes as console_routes
from .guard import AUTHENTICATED, RequestGuard
from .metrics import Metrics, render_applications
from .policy import ServerPolicy
from .rest.applications import routes as application_routes
from .rest.models import routes as model_routes
from .rest.openapi import routes as openapi_routes
from .rest.optimizer import routes as optimizer_routes
from .rest.streams import routes as stream_routes

if TYPE_CHECKING:
    from pathlib import Path

    from forestream.streams.jetstream.backend import JetStreamBackend

RETENTION_SWEEP_SECONDS = 60.0
#: How long a closing TLS connection waits for the client's close_notify (asyncio waits
#: 30 s by default: idle pooled clients never answer, and the server's stop waits on them).
TLS_SHUTDOWN_SECONDS = 2.0


class Server:
    """``forestream server``: uvicorn around :func:`create_app`, every port speaking
    HTTP/1.1 and HTTP/2 (:mod:`forestream.server.connections`), plus a TLS port when
    ``tls_port``, ``tls_cert`` and ``tls_key`` are given (HTTP/2 or HTTP/1.1 by ALPN).
    Application workers are stopped *before* the server stops listening, so their last
    checkpoint can flush to this server's streams (uvicorn closes the sockets before the
    lifespan shutdown runs)."""

    def __init__(self, settings: Settings, log_level: str = "info",
                 tls_port: int | None = None, tls_cert: Path | None = None,
                 tls_key: Path | None = None) -> None:
        import uvicorn

        app = create_app(settings)
        applications = app.state.applications
        self.settings, self.log_level = settings, log_level
        self.app = app
        tls = tls_context(tls_cert, tls_key) if tls_port is not None and tls_cert is not None \
            and tls_key is not None else None

        outer = self
        self.failure: str | None = None  # why the server stopped at its start
        self._runtime: Path | None = None  # this server's runtime record (access_token.register)

        class _Uvicorn(uvicorn.Server):
            async def startup(self, sockets=None):
                await super().startup(sockets)
                if tls is not None and self.started:
                    await self._listen_tls(tls_port, tls)

            async def _listen_tls(self, port, context):
                config = self.config

                def protocol():
                    return GuardedHttpToolsProtocol(
                        config=config, server_state=self.server_state,
                        app_state=self.lifespan.state)

                try:
                    self.servers.append(await asyncio.get_running_loop().create_server(
                        protocol, host=config.host, port=port, ssl=context,
                        backlog=config.backlog,
                        ssl_handshake_timeout=HEADER_TIMEOUT_SECONDS,
                        ssl_shutdown_timeout=TLS_SHUTDOWN_SECONDS))
                except OSError as exc:  # e.g. the port is taken: stop, as uvicorn does
                    outer.failure = f"TLS port {port}: {exc}"
                    self.should_exit = True

            async def shutdown(self, sockets=None):
                # uvicorn re-raises SIGTERM/SIGINT once it has stopped: tidy up here
                outer._unregister()
                await anyio.to_thread.run_sync(applications.stop_workers)
                await super().shutdown(sockets)

        self.server = _Uvicorn(uvicorn.Config(app, host=settings.host, port=settings.port,
                                              log_level=log_level, access_log=False,
                                              http=GuardedHttpToolsProtocol, ws="none"))

    @property
    def token(self) -> str | None:
        """The access token clients must send to the REST API, console and metrics."""
        return self.app.state.token

    def run(self) -> None:
        url = f"http://{_local(self.settings.host)}:{self.settings.port}"
        if self.token:
            self._runtime = access_token.register(url, self.token, self.settings.data_dir)
        try:
            self.server.run()
        finally:
            self._unregister()
        if self.failure is not None:
            raise SystemExit(f"forestream server: {self.failure}")

    def _unregister(self) -> None:
        if self._runtime is not None:
            access_token.unregister(self._runtime)
            self._runtime = None


def stream_backend(settings: Settings) -> JetStreamBackend | None:
    """The storage backend ``settings.streams`` names (None: the data directory).
    ValueError, naming the value, for anything but NATS URLs."""
    if not settings.streams:
        return None
    from forestream.streams.jetstream.backend import JetStreamBackend

    urls = [u.strip() for u in settings.streams.split(",") if u.strip()]
    if not urls or any(not u.startswith(("nats://", "tls://")) for u in urls):
        raise ValueError(f"--streams must be nats:// (or tls://) URLs of a JetStream "
                         f"cluster's nodes, comma-separated; got {settings.streams!r}")
    key = settings.streams_key_file.read_bytes() if settings.streams_key_file else None
    return JetStreamBackend(urls, replicas=settings.streams_replicas,
                            namespace=settings.streams_namespace, master_key=key)


def create_app(settings: Settings | None = None, store: StreamStore | None = None) -> Starlette:
    """Build the server around a (new or given) stream store."""
    settings = settings or Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    check_data_dir(settings.data_dir)
    token = settings.token or (access_token.load_or_create(settings.data_dir)
                               if settings.require_token else None)
    store = store or StreamStore(settings.data_dir, fsync=settings.fsync,
                                 status_delay=settings.status_delay,
                                 throughput_limits=settings.throughput_limits,
                                 region=settings.region, backend=stream_backend(settings))
    metrics = Metrics()
    calls = WorkerPool(name="kinesis-call")  # Kinesis calls' threads (one cheap hand-off)
    kinesis = kinesis_protocol(store, metrics, require_signature=settings.require_signature,
                               pool=calls)
    # Application workers reach this server's Kinesis API through this variable, and
    # its REST API (waiting for records: /api/v1/streams/wait) with the token.
    worker_env = {"FORESTREAM_ENDPOINT_URL": f"http://{settings.host}:{settings.port}"}
    if token:
        worker_env["FORESTREAM_TOKEN"] = token
    manager = ApplicationManager(settings.data_dir, environment=worker_env,
        delete_stream=lambda name: store.delete_stream(stream_name=name),
        records_behind=store.records_behind,
        allow_code=settings.allow_code)
    registry = ModelRegistry(settings.data_dir, allow_code=settings.allow_code)
    endpoints = EndpointManager(registry, settings.data_dir, allow_code=settings.allow_code)
    policy = ServerPolicy(settings)
    sagemaker = SageMakerControlPlane(registry, endpoints, settings)
    optimizer = OptimizerService(settings.data_dir, region=settings.region, endpoint_url=(
        f"http://{_local(settings.host)}:{settings.port}"), token=token,
        check_path=policy.server_path, check_url=policy.outbound_url)
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
        await endpoints.start()
        optimizer.start()
        try:
            yield
        finally:
            stop.set()
            optimizer.close()
            await endpoints.close()
            sagemaker.close()
            manager.close()
            calls.close()
            store.close()

    async def aws_entry(request: Request):
        # one header check routes the SageMaker control plane; Kinesis is the default
        if request.headers.get("x-amz-target", "").startswith(SAGEMAKER_TARGET):
            return await sagemaker.protocol.handle(request)
        return await kinesis.handle(request)

    async def health(request: Request):
        # open to anyone (load balancers); where the data lives only for the authorised
        if not request.scope.get(AUTHENTICATED):
            return JSONResponse({"status": "ok"})
        return JSONResponse({"status": "ok", "streams": len(store.stream_names()),
                             "data_dir": str(store.data_dir.resolve())})

    async def prometheus(request: Request):
        # the guard asks for the token, or Basic/SigV4 with credentials (Prometheus
        # scrapes with basic_auth or a bearer token; forestream's own collector signs)
        text = (metrics.render(store) + endpoints.metrics.render(endpoints.worker_counts())
                + render_applications(manager.runtime_statuses()))
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    app = Starlette(routes=[
        # the two hot routes first: Starlette tries routes in order
        *sagemaker_routes(endpoints, settings),
        Route("/", aws_entry, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        *application_routes(manager, settings),
        *stream_routes(store),
        *model_routes(registry, endpoints, settings),
        *optimizer_routes(optimizer, settings),
        *openapi_routes(settings),
        *console_routes(settings, store, manager, registry, endpoints, optimizer,
                        metrics),
    ], lifespan=lifespan, middleware=[Middleware(
        RequestGuard, settings=settings, token=token,
        upload_limit=ImportLimits.from_env().max_total_bytes,
        direct=kinesis.serve)])  # Kinesis straight from the guard; the "/" route: SageMaker
    app.state.token = token
    app.state.store = store
    app.state.applications = manager
    app.state.settings = settings
    app.state.registry = registry
    app.state.endpoints = endpoints
    app.state.optimizer = optimizer
    return app


def _local(host: str) -> str:
    """The address this server answers itself on (a wildcard bind is reached locally)."""
    return {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, host)
