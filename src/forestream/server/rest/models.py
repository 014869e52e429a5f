"""REST API for models: the registry, endpoint configurations and endpoints.

Routes (JSON in and out; errors are RFC 9457 problem details whose ``title`` is the
error code, e.g. ``ValidationError``)::

    POST   /api/v1/models/uploads?filename=NAME         raw bytes -> {"upload_id"}
    GET    /api/v1/models/groups                        ?limit&next_token
    POST   /api/v1/models/groups                        {"name", "description", "tags"}
    GET    /api/v1/models/groups/{group}
    DELETE /api/v1/models/groups/{group}                 refused while it has versions
    POST   /api/v1/models/groups/{group}/versions       import: {"source", "framework",
                                                         "trust", "sample_input_b64",
                                                         "sample_content_type", "metadata",
                                                         "customer_metadata", "metrics",
                                                         "tags", "description"}
    GET    /api/v1/models/groups/{group}/versions       ?approval_status&status&limit...
    GET    /api/v1/models/groups/{group}/latest-approved
    GET    /api/v1/models/groups/{group}/versions/{v}
    PATCH  /api/v1/models/groups/{group}/versions/{v}   {"approval_status",
                                                         "approval_description",
                                                         "customer_metadata",
                                                         "remove_customer_metadata",
                                                         "metrics", "tags"}
    DELETE /api/v1/models/groups/{group}/versions/{v}   refused while deployed
    GET    /api/v1/models/versions                      search: ?group&approval_status
                                                         &status&created_after
                                                         &created_before&q&metadata.K=V
    POST   /api/v1/endpoint-configs                     {"name", "variants": [...]}
    GET    /api/v1/endpoint-configs[/{name}]   DELETE /api/v1/endpoint-configs/{name}
    POST   /api/v1/endpoints                            {"name", "config"} or
                                                         {"name", "variants": [...]}
    GET    /api/v1/endpoints[/{name}]
    PATCH  /api/v1/endpoints/{name}                     {"config"} (update) or
                                                         {"weights", "workers"} (live)
    DELETE /api/v1/endpoints/{name}
    GET    /api/v1/endpoints/{name}/logs?tail=N

Who may call is settled before (:mod:`.guard`). An import's ``source`` may be a path on
the server only inside ``Settings.import_roots``, and its ``s3_endpoint_url`` only a host
in ``Settings.outbound_hosts`` (:mod:`.policy`); ``trust`` needs ``Settings.allow_code``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import tempfile

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forestream.config import Settings
from forestream.models.errors import ImportFailed, InvalidInput, ModelsError
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry

from ..policy import PolicyRefusal, ServerPolicy
from .common import answering_errors, json_object, problem, threaded

UPLOAD_SPOOL_BYTES = 16 * 1024 * 1024


def _error(request: Request, exc: ModelsError | PolicyRefusal) -> JSONResponse:
    if isinstance(exc, PolicyRefusal):
        return problem(exc.status, exc.code, exc.message, request.url.path)
    extra = {"version": exc.version} if isinstance(exc, ImportFailed) and \
        getattr(exc, "version", None) is not None else {}
    return problem(exc.status, exc.code, exc.message, request.url.path, **extra)


def _int(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} {raw!r} must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise InvalidInput(f"{name} {value} must be from {low} to {high}")
    return value


def _time(params, name: str) -> dt.datetime | None:
    raw = params.get(name)
    if raw is None:
        return None
    try:
        stamp = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"{name} {raw!r} must be an ISO 8601 time, e.g. "
                           "2026-11-27T10:00:00Z") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)


def routes(registry: ModelRegistry, endpoints: EndpointManager,
           settings: Settings) -> list[Route]:
    guarded = answering_errors((ModelsError, PolicyRefusal), _error)
    policy = ServerPolicy(settings)

    async def body(request: Request) -> dict:
        return await json_object(request, InvalidInput)

    def version_of(request: Request) -> int:
        raw = request.path_params["version"]
        try:
            return int(raw)
        except ValueError:
            raise InvalidInput(f"version {raw!r} must be a positive integer") from None

    # ---------------------------------------------------------------- registry
    async def upload(request: Request):
        filename = request.query_params.get("filename") or "model.bin"
        with tempfile.SpooledTemporaryFile(max_size=UPLOAD_SPOOL_BYTES) as spool:
            async for chunk in request.stream():
                spool.write(chunk)
            spool.seek(0)
            upload_id = await anyio.to_thread.run_sync(
                lambda: registry.store_upload(spool, filename))
        return JSONResponse({"upload_id": upload_id, "source": f"upload://{upload_id}"},
                            status_code=201)

    async def groups(request: Request):
        if request.method == "POST":
            data = await body(request)
            return await threaded(registry.create_group, data.get("name"),
                                  data.get("description", ""), data.get("tags"), http_status=201)
        params = request.query_params
        return await threaded(registry.list_groups, _int(params, "limit", 100, 1, 1000),
                              params.get("next_token"))

    async def group(request: Request):
        name = request.path_params["group"]
        if request.method == "DELETE":
            return await threaded(registry.delete_group, name)
        return await threaded(registry.describe_group, name)

    async def versions(request: Request):
        name = request.path_params["group"]
        if request.method == "POST":
            data = await body(request)
            source = data.get("source")
            if not isinstance(source, str) or not source:
                raise InvalidInput("'source' is required: upload://ID (from POST "
                                   "/api/v1/models/uploads), s3://bucket/key or a path on "
                                   "the server")
            if not source.startswith(("upload://", "s3://")):
                source = str(policy.server_path(source, "source"))
            endpoint_url = data.get("s3_endpoint_url")
            if endpoint_url is not None:
                try:
                    policy.outbound_url(str(endpoint_url), "s3_endpoint_url")
                except ValueError as exc:
                    raise InvalidInput(str(exc)) from None
            sample = None
            if data.get("sample_input_b64") is not None:
                try:
                    sample = base64.b64decode(data["sample_input_b64"], validate=True)
                except (binascii.Error, TypeError, ValueError):
                    raise InvalidInput("sample_input_b64 must be base64 (ASCII letters, "
                                       "digits, '+', '/' and '=' padding)") from None
            user = request.headers.get("x-forestream-user") or "api"
            return await threaded(
                registry.import_version, name, source, framework=data.get("framework"),
                trust=bool(data.get("trust", False)), sample_input=sample,
                sample_content_type=data.get("sample_content_type"),
                metadata=data.get("metadata"), customer_metadata=data.get("customer_metadata"),
                metrics=data.get("metrics"), tags=data.get("tags"),
                description=data.get("description", ""), created_by=user,
                s3_endpoint_url=endpoint_url, http_status=201)
        return await search(request, group=name)

    async def search(request: Request, group: str | None = None):
        params = request.query_params
        metadata = {k[len("metadata."):]: v for k, v in params.items()
                    if k.startswith("metadata.")}
        return await threaded(
            registry.list_versions, group=group or params.get("group"),
            approval_status=params.get("approval_status"), status=params.get("status"),
            created_after=_time(params, "created_after"),
            created_before=_time(params, "created_before"), metadata=metadata or None,
            search=params.get("q"), limit=_int(params, "limit", 100, 1, 1000),
            next_token=params.get("next_token"))

    async def latest(request: Request):
        return await threaded(registry.latest_approved, request.path_params["group"])

    async def version(request: Request):
        name, number = request.path_params["group"], version_of(request)
        if request.method == "GET":
            return await threaded(registry.describe_version, name, number)
        if request.method == "DELETE":  # refused while deployed (the registry's guard)
            return await threaded(registry.delete_version, name, number)
        data = await body(request)
        allowed = ("approval_status", "approval_description", "customer_metadata",
                   "remove_customer_metadata", "metrics", "tags")
        unknown = sorted(set(data) - set(allowed))
        if unknown:
            raise InvalidInput(f"cannot update {', '.join(unknown)}; updatable fields: "
                               f"{', '.join(allowed)} (metadata is immutable)")
        args = {k: data[k] for k in allowed if k in data}
        args["updated_by"] = request.headers.get("x-forestream-user") or "api"
        if "remove_customer_metadata" in args:
            args["remove_customer_metadata"] = tuple(args["remove_customer_metadata"] or ())
        return await threaded(registry.update_version, name, number, **args)

    # ---------------------------------------------------------------- endpoint configs
    async def configs(request: Request):
        if request.method == "POST":
            data = await body(request)
            return await threaded(endpoints.create_endpoint_config, data.get("name"),
                                  data.get("variants"), http_status=201)
        return await threaded(lambda: {"endpoint_configs": endpoints.list_endpoint_configs()})

    async def config(request: Request):
        name = request.path_params["name"]
        if request.method == "DELETE":
            return await threaded(endpoints.delete_endpoint_config, name)
        return await threaded(endpoints.describe_endpoint_config, name)

    # ---------------------------------------------------------------- endpoints
    async def endpoint_list(request: Request):
        if request.method == "GET":
            return await threaded(lambda: {"endpoints": endpoints.list_endpoints()})
        data = await body(request)
        name = data.get("name")
        if not isinstance(name, str):  # before a config is made for it
            raise InvalidInput("'name' (the endpoint's name, a string) is required")
        config_name = data.get("config")
        if data.get("variants") is not None:
            if config_name is not None:
                raise InvalidInput("give either 'config' (an endpoint config name) or "
                                   "'variants', not both")
            config_name = f"{name}-{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S%f}"
            await anyio.to_thread.run_sync(
                lambda: endpoints.create_endpoint_config(config_name, data["variants"]))
        if not isinstance(config_name, str):
            raise InvalidInput("'config' (an endpoint config name) or 'variants' is required")
        return JSONResponse(await endpoints.create_endpoint(name, config_name),
                            status_code=201)

    async def endpoint(request: Request):
        name = request.path_params["name"]
        if request.method == "GET":
            return JSONResponse(endpoints.describe_endpoint(name))
        if request.method == "DELETE":
            await endpoints.delete_endpoint(name)
            return Response(status_code=204)
        data = await body(request)
        config_name = data.get("config")
        if data.get("variants") is not None:
            config_name = f"{name}-{dt.datetime.now(dt.timezone.utc):%Y%m%d%H%M%S%f}"
            await anyio.to_thread.run_sync(
                lambda: endpoints.create_endpoint_config(config_name, data["variants"]))
        if config_name is not None:
            return JSONResponse(await endpoints.update_endpoint(name, config_name))
        if data.get("weights") is None and data.get("workers") is None:
            raise InvalidInput("give 'config' or 'variants' (update), or 'weights' and/or "
                               "'workers' (live change)")
        return JSONResponse(await endpoints.update_weights_and_capacities(
            name, data.get("weights"), data.get("workers")))

    async def endpoint_logs(request: Request):
        name = request.path_params["name"]
        endpoints.describe_endpoint(name)
        tail = _int(request.query_params, "tail", 200, 1, 100_000)
        folder = endpoints.log_root / name

        def read() -> dict:
            out = {}
            for path in sorted(folder.glob("*.log")) if folder.exists() else []:
                lines = path.read_text(errors="replace").splitlines()
                out[path.stem] = lines[-tail:]
            return {"logs": out}

        return await threaded(read)

    table = [
        ("/api/v1/models/uploads", upload, ["POST"]),
        ("/api/v1/models/groups", groups, ["GET", "POST"]),
        ("/api/v1/models/groups/{group}", group, ["GET", "DELETE"]),
        ("/api/v1/models/groups/{group}/versions", versions, ["GET", "POST"]),
        ("/api/v1/models/groups/{group}/latest-approved", latest, ["GET"]),
        ("/api/v1/models/groups/{group}/versions/{version}", version,
         ["GET", "PATCH", "DELETE"]),
        ("/api/v1/models/versions", search, ["GET"]),
        ("/api/v1/endpoint-configs", configs, ["GET", "POST"]),
        ("/api/v1/endpoint-configs/{name}", config, ["GET", "DELETE"]),
        ("/api/v1/endpoints", endpoint_list, ["GET", "POST"]),
        ("/api/v1/endpoints/{name}", endpoint, ["GET", "PATCH", "DELETE"]),
        ("/api/v1/endpoints/{name}/logs", endpoint_logs, ["GET"]),
    ]
    return [Route(path, guarded(handler), methods=methods) for path, handler, methods in table]
