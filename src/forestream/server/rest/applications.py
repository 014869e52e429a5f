"""REST API for stream processing applications, under ``/api/v1/applications``.

Errors are RFC 9457 problem details (``application/problem+json``). Who may call is
settled before (:mod:`.guard`: the access token, or SigV4 with credentials configured).

``runtime`` is ``embedded`` (the default) or ``flink`` (with ``flink_url``, a Flink
cluster's REST API): see :mod:`forestream.processing.flink.application`.

``code`` is the application's code sent with the request (``{"filename", "text"}`` or
``{"zip_base64"}``, see :mod:`forestream.processing.app_code`), or a path on the server
inside ``Settings.import_roots``. Creating, updating code and starting need
``Settings.allow_code`` (applications run their code).
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forestream.config import Settings
from forestream.processing.app_code import ApplicationCode
from forestream.processing.app_config import check_application_name
from forestream.processing.applications import ApplicationManager
from forestream.processing.errors import ApplicationError

from ..policy import PolicyRefusal, ServerPolicy
from .common import answering_errors, json_object, problem

PREFIX = "/api/v1/applications"


def routes(manager: ApplicationManager, settings: Settings) -> list[Route]:
    policy = ServerPolicy(settings)
    guarded = answering_errors((ApplicationError, PolicyRefusal),
                               lambda request, exc: problem(exc.status, exc.code, str(exc),
                                                            request.url.path))

    def code_of(value) -> ApplicationCode | str:
        """The request's ``code``: sent content, or a server path the policy allows."""
        if isinstance(value, str):
            return str(policy.server_path(value, "code"))
        return ApplicationCode.from_request(value)

    async def call(request: Request, fn, *args, status: int = 200, **kwargs) -> Response:
        try:
            result = await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except ApplicationError as exc:
            return problem(exc.status, exc.code, str(exc), request.url.path)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result, status_code=status)

    async def body(request: Request) -> dict:
        return await json_object(request, ApplicationError)

    async def create(request: Request):
        try:
            data = await body(request)
            args = {k: data[k] for k in ("properties", "checkpoint_interval", "parallelism",
                                         "max_parallelism", "autoscaling", "description",
                                         "runtime", "flink_url")
                    if k in data}
            name, code = data.get("name"), data.get("code")
            if not name or not code:
                raise ApplicationError("'name' and 'code' are required; code is "
                                       '{"filename", "text"}, {"zip_base64"} or a path on '
                                       "the server")
            check_application_name(name)
            code = code_of(code)
        except (ApplicationError, PolicyRefusal) as exc:
            return problem(exc.status, exc.code, str(exc), request.url.path)
        return await call(request, manager.create_application, name, code, status=201, **args)

    async def listing(request: Request):
        return await call(request, lambda: {"applications": manager.list_applications()})

    async def describe(request: Request):
        return await call(request, manager.describe_application, request.path_params["name"])

    async def update(request: Request):
        try:
            data = await body(request)
        except ApplicationError as exc:
            return problem(exc.status, exc.code, str(exc), request.url.path)
        args = {k: data[k] for k in ("code", "properties", "checkpoint_interval", "parallelism",
                                     "autoscaling") if k in data}
        if args.get("code") is not None:
            args["code"] = code_of(args["code"])
        return await call(request, manager.update_application, request.path_params["name"],
                          **args)

    async def delete(request: Request):
        return await call(request, manager.delete_application, request.path_params["name"])

    async def start(request: Request):
        data = await body(request)
        return await call(request, manager.start_application, request.path_params["name"],
                          data.get("restore", "LATEST"), data.get("snapshot"))

    async def stop(request: Request):
        data = await body(request)
        return await call(request, manager.stop_application, request.path_params["name"],
                          bool(data.get("force", False)), bool(data.get("snapshot", True)))

    async def logs(request: Request):
        raw = request.query_params.get("tail", "200")
        if not raw.isdigit() or not 1 <= int(raw) <= 100_000:
            raise ApplicationError(f"tail {raw!r} must be an integer from 1 to 100000")
        tail = int(raw)
        return await call(request, lambda: {"lines": manager.logs(
            request.path_params["name"], tail)})

    async def snapshots(request: Request):
        name = request.path_params["name"]
        if request.method == "GET":
            return await call(request, lambda: {"snapshots": manager.list_snapshots(name)})
        data = await body(request)
        return await call(request, manager.create_snapshot, name, data.get("snapshot"),
                          status=201)

    async def snapshot(request: Request):
        name, snap = request.path_params["name"], request.path_params["snapshot"]
        if request.method == "GET":
            return await call(request, manager.describe_snapshot, name, snap)
        return await call(request, manager.delete_snapshot, name, snap)

    table = [
        (PREFIX, create, ["POST"]),
        (PREFIX, listing, ["GET"]),
        (PREFIX + "/{name}", describe, ["GET"]),
        (PREFIX + "/{name}", update, ["PATCH"]),
        (PREFIX + "/{name}", delete, ["DELETE"]),
        (PREFIX + "/{name}/start", start, ["POST"]),
        (PREFIX + "/{name}/stop", stop, ["POST"]),
        (PREFIX + "/{name}/logs", logs, ["GET"]),
        (PREFIX + "/{name}/snapshots", snapshots, ["GET", "POST"]),
        (PREFIX + "/{name}/snapshots/{snapshot}", snapshot, ["GET", "DELETE"]),
    ]
    return [Route(path, guarded(handler), methods=methods) for path, handler, methods in table]
