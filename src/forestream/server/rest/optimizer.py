"""REST API for right-sizing, under ``/api/v1/optimizer``.

Routes (JSON in and out; errors are RFC 9457 problem details whose ``title`` is the
error code, e.g. ``ValidationError``, and whose ``detail`` names the bad value and what
is accepted)::

    POST   /api/v1/optimizer/analyses                 run one: {"source": {"path": P} |
                                                       {"prometheus": {"url", "preset",
                                                       "days"}} | {"components": true},
                                                       or "metrics": [inline histories],
                                                       "preferences": {...}, "region"}
                                                       -> 201 {"id", "created_at",
                                                       "summary", "recommendations", ...}
    GET    /api/v1/optimizer/analyses                 newest first: ?limit&next_token
    GET    /api/v1/optimizer/analyses/{id}            ?include=series adds chart data
    DELETE /api/v1/optimizer/analyses/{id}
    GET    /api/v1/optimizer/analyses/{id}/report.html   the HTML report; ?max_sections=N
                                                       keeps the N largest savings' charts
    GET    /api/v1/optimizer/recommendations          of the latest analysis (or
                                                       ?analysis=ID): ?finding&kind
                                                       &limit&next_token
    GET    /api/v1/optimizer/catalog                  ?region&family (repeat or comma-
                                                       separated)&architecture&min_vcpu
                                                       &min_memory_gib&gpus=true|false
                                                       &limit&next_token
    GET    /api/v1/optimizer/components               the component collector's status
    PUT    /api/v1/optimizer/components               start it: {"interval_seconds": 60}
    DELETE /api/v1/optimizer/components               stop it

See :mod:`forestream.optimizer.service` for the request shapes. Who may call is settled
before (:mod:`.guard`); server paths in a request (``source.path``, ``catalog``) must lie
in ``Settings.import_roots``, Prometheus URLs on ``Settings.outbound_hosts``.
"""

from __future__ import annotations

import math

import anyio
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from forestream.config import Settings
from forestream.optimizer.service import InvalidRequestError, OptimizerError, OptimizerService

from ..policy import PolicyRefusal
from .common import answering_errors, json_object, problem, threaded

PREFIX = "/api/v1/optimizer"
#: The report is self-contained: it may not load or run anything.
REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def routes(service: OptimizerService, settings: Settings) -> list[Route]:
    guarded = answering_errors((OptimizerError, PolicyRefusal),
                    lambda request, exc: problem(exc.status, exc.code, str(exc),
                                                 request.url.path))

    async def body(request: Request) -> dict:
        return await json_object(request, InvalidRequestError)

    async def analyses(request: Request):
        if request.method == "POST":
            data = await body(request)
            analysis = await anyio.to_thread.run_sync(lambda: service.create_analysis(data))
            analysis.pop("series", None)
            return JSONResponse(analysis, status_code=201,
                                headers={"Location": f"{PREFIX}/analyses/{analysis['id']}"})
        params = request.query_params
        return await threaded(service.list_analyses, _int(params, "limit", 50, 1, 1000),
                              params.get("next_token"))

    async def analysis(request: Request):
        analysis_id = request.path_params["analysis_id"]
        if request.method == "DELETE":
            return await threaded(service.delete_analysis, analysis_id)
        include = request.query_params.get("include")
        if include not in (None, "", "series"):
            raise InvalidRequestError(f"include {include!r} is not one of: series")
        return await threaded(service.get_analysis, analysis_id,
                              include_series=include == "series")

    async def report(request: Request):
        sections = _int(request.query_params, "max_sections", 0, 1, 10**6) or None
        page = await anyio.to_thread.run_sync(
            lambda: service.report_html(request.path_params["analysis_id"],
                                        max_sections=sections))
        return HTMLResponse(page, headers={"Content-Security-Policy": REPORT_POLICY})

    async def recommendations(request: Request):
        params = request.query_params
        return await threaded(service.recommendations, analysis_id=params.get("analysis"),
                              finding=params.get("finding") or None,
                              kind=params.get("kind") or None,
                              limit=_int(params, "limit", 100, 1, 1000),
                              offset=_int(params, "next_token", 0, 0, 10**9))

    async def catalog(request: Request):
        params = request.query_params
        families = [f.strip() for raw in params.getlist("family") for f in raw.split(",")
                    if f.strip()] or None
        gpus = params.get("gpus")
        if gpus not in (None, "true", "false"):
            raise InvalidRequestError(f"gpus {gpus!r} is not one of: true, false")
        return await threaded(service.catalog, region=params.get("region") or None,
                              families=families, architecture=params.get("architecture"),
                              min_vcpu=_number(params, "min_vcpu"),
                              min_memory_gib=_number(params, "min_memory_gib"),
                              gpus=None if gpus is None else gpus == "true",
                              limit=_int(params, "limit", 100, 1, 1000),
                              offset=_int(params, "next_token", 0, 0, 10**9))

    async def components(request: Request):
        if request.method == "PUT":
            data = await body(request)
            unknown = sorted(set(data) - {"interval_seconds"})
            if unknown:
                raise InvalidRequestError(f"unknown fields {unknown}; accepted: "
                                          "interval_seconds")
            return await threaded(service.start_components, data.get("interval_seconds", 60))
        if request.method == "DELETE":
            return await threaded(service.stop_components)
        return await threaded(service.components_status)

    table = [
        (PREFIX + "/analyses", analyses, ["GET", "POST"]),
        (PREFIX + "/analyses/{analysis_id}", analysis, ["GET", "DELETE"]),
        (PREFIX + "/analyses/{analysis_id}/report.html", report, ["GET"]),
        (PREFIX + "/recommendations", recommendations, ["GET"]),
        (PREFIX + "/catalog", catalog, ["GET"]),
        (PREFIX + "/components", components, ["GET", "PUT", "DELETE"]),
    ]
    return [Route(path, guarded(handler), methods=methods) for path, handler, methods in table]


def _int(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequestError(f"{name} {raw!r} must be a whole number from {low} to "
                                  f"{high}") from None
    if not low <= value <= high:
        raise InvalidRequestError(f"{name} {value} must be from {low} to {high}")
    return value


def _number(params, name: str) -> float:
    raw = params.get(name)
    if raw is None or raw == "":
        return 0.0
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise InvalidRequestError(f"{name} {raw!r} must be a number >= 0")
    return value
