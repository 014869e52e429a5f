"""REST API for stream processing applications, under ``/api/v1/applications``.

Errors are RFC 9457 problem details (``application/problem+json``).
"""

from __future__ import annotations

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from forestream.processing.applications import ApplicationManager
from forestream.processing.errors import ApplicationError

PREFIX = "/api/v1/applications"


def problem(status: int, title: str, detail: str, instance: str) -> JSONResponse:
    return JSONResponse({"type": "about:blank", "title": title, "status": status,
                         "detail": detail, "instance": instance}, status_code=status,
                        media_type="application/problem+json")


def routes(manager: ApplicationManager) -> list[Route]:
    async def call(request: Request, fn, *args, status: int = 200, **kwargs) -> Response:
        try:
            result = await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs))
        except ApplicationError as exc:
            return problem(exc.status, exc.title, str(exc), request.url.path)
        if result is None:
            return Response(status_code=204)
        return JSONResponse(result, status_code=status)

    async def body(request: Request) -> dict:
        try:
            data = await request.json()
        except ValueError:
            raise ApplicationError("request body must be a JSON object") from None
        if not isinstance(data, dict):
            raise ApplicationError("request body must be a JSON object")
        return data

    async def create(request: Request):
        try:
            data = await body(request)
            args = {k: data[k] for k in ("properties", "checkpoint_interval", "parallelism",
                                         "description") if k in data}
            name, code = data.get("name"), data.get("code")
            if not name or not code:
                raise ApplicationError("'name' and 'code' (a path on the server) are required")
        except ApplicationError as exc:
            return problem(exc.status, exc.title, str(exc), request.url.path)
        return await call(request, manager.create_application, name, code, status=201, **args)

    async def listing(request: Request):
        return await call(request, lambda: {"applications": manager.list_applications()})

    async def describe(request: Request):
        return await call(request, manager.describe_application, request.path_params["name"])

    async def update(request: Request):
        try:
            data = await body(request)
        except ApplicationError as exc:
            return problem(exc.status, exc.title, str(exc), request.url.path)
        args = {k: data[k] for k in ("code", "properties", "checkpoint_interval", "parallelism")
                if k in data}
        return await call(request, manager.update_application, request.path_params["name"],
                          **args)

    async def delete(request: Request):
        return await call(request, manager.delete_application, request.path_params["name"])

    async def start(request: Request):
        data = await request.json() if await request.body() else {}
        return await call(request, manager.start_application, request.path_params["name"],
                          data.get("restore", "LATEST"), data.get("snapshot"))

    async def stop(request: Request):
        data = await request.json() if await request.body() else {}
        return await call(request, manager.stop_application, request.path_params["name"],
                          bool(data.get("force", False)), bool(data.get("snapshot", True)))

    async def logs(request: Request):
        tail = int(request.query_params.get("tail", "200"))
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

    return [
        Route(PREFIX, create, methods=["POST"]),
        Route(PREFIX, listing, methods=["GET"]),
        Route(PREFIX + "/{name}", describe, methods=["GET"]),
        Route(PREFIX + "/{name}", update, methods=["PATCH"]),
        Route(PREFIX + "/{name}", delete, methods=["DELETE"]),
        Route(PREFIX + "/{name}/start", start, methods=["POST"]),
        Route(PREFIX + "/{name}/stop", stop, methods=["POST"]),
        Route(PREFIX + "/{name}/logs", logs, methods=["GET"]),
        Route(PREFIX + "/{name}/snapshots", snapshots, methods=["GET", "POST"]),
        Route(PREFIX + "/{name}/snapshots/{snapshot}", snapshot, methods=["GET", "DELETE"]),
    ]
