"""The OpenAPI 3.1 document of forestream's own REST API, at ``GET /api/v1/openapi.json``.

It describes every ``/api/v1`` route (applications, models, endpoint configurations,
endpoints, optimizer): parameters as the handlers check them, request bodies, the status
codes each route answers and the JSON it returns (schemas in
:mod:`forestream.server.rest.schemas`); errors are ``application/problem+json``.
``tests/test_openapi.py`` checks the document against the app's routes and live
responses, so that it cannot drift from the code.

Security follows the server: with credentials configured every operation requires an
AWS Signature V4 (service ``forestream``) in the ``Authorization`` header and may answer
403; without, signatures are optional (not checked). The document itself holds no data
and needs no signature.
"""

from __future__ import annotations

import copy

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from forestream import __version__
from forestream.config import Settings

from .schemas import (
    ALL_FINDINGS,
    APPROVAL_STATUSES,
    ARCHITECTURES,
    MAX_PAGE,
    RESOURCE_KINDS,
    SCHEMAS,
    STATUSES,
)

PATH = "/api/v1/openapi.json"
JSON = "application/json"

TAGS = [
    {"name": "applications", "description": "stream processing applications and snapshots"},
    {"name": "streams", "description": "what Kinesis has no call for: waiting for records "
     "(the Kinesis API itself is served on POST /)"},
    {"name": "models", "description": "the model registry: uploads, groups and versions"},
    {"name": "endpoints", "description": "endpoint configurations and endpoints serving "
     "model versions (invocations: the SageMaker runtime route, outside /api/v1)"},
    {"name": "optimizer", "description": "right-sizing analyses, recommendations, the "
     "instance catalog and the component collector"},
    {"name": "meta", "description": "this document"},
]

ERRORS = {"400": ("BadRequest", "a bad value: the detail names it and what is accepted"),
          "401": ("Unauthorized", "no valid access token (or, with credentials configured, "
                                  "no valid AWS Signature V4)"),
          "403": ("Forbidden", "refused by the server's settings: running clients' code, "
                               "server paths outside its import roots, hosts it may not "
                               "fetch from, or a request from another web origin"),
          "404": ("NotFound", "no such resource"),
          "409": ("Conflict", "not possible in the resource's current state"),
          "422": ("ImportFailed", "the import ran but produced no usable version (the "
                                  "problem's version member names the Failed version)"),
          "502": ("BadGateway", "an upstream (S3, Prometheus) failed or refused")}

SIGV4 = {"type": "apiKey", "in": "header", "name": "Authorization",
         "description": "AWS Signature Version 4 (AWS4-HMAC-SHA256), service 'forestream', "
         "the server's region, signed with the server's FORESTREAM_ACCESS_KEY_ID / "
         "FORESTREAM_SECRET_ACCESS_KEY over host, X-Amz-Date and the body's SHA-256, as "
         "botocore and the forestream CLI sign. Accepted when the server has credentials "
         "configured."}
TOKEN = {"type": "http", "scheme": "bearer",
         "description": "The server's access token (printed when it starts, stored in its "
         "data directory as access-token), as 'Authorization: Bearer TOKEN' or in an "
         "'X-Forestream-Token' header. forestream commands find it themselves."}


# --------------------------------------------------------------------------- helpers

def _ref(kind: str, name: str) -> dict:
    return {"$ref": f"#/components/{kind}/{name}"}


def ok(schema: str | None, status: str = "200", description: str = "OK", **extra) -> dict:
    """A success response with a JSON body of component ``schema`` (None: no body)."""
    answer: dict = {"description": description, **extra}
    if schema is not None:
        answer["content"] = {JSON: {"schema": _ref("schemas", schema)}}
    return {status: answer}


NO_CONTENT = {"204": {"description": "done; no body"}}


def body(schema: str, required: bool = True, description: str | None = None) -> dict:
    out: dict = {"required": required, "content": {JSON: {"schema": _ref("schemas", schema)}}}
    if description:
        out["description"] = description
    return out


def path_param(name: str, description: str, **schema) -> dict:
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": {"type": "string", **schema}}


def query(name: str, description: str, **schema) -> dict:
    schema.setdefault("type", "string")
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema}


def limit(default: int, high: int = MAX_PAGE) -> dict:
    return query("limit", "page size", type="integer", minimum=1, maximum=high,
                 default=default)


NEXT_TOKEN = query("next_token", "the next_token of the previous page, unchanged")
OFFSET_TOKEN = query("next_token", "the next_token of the previous page (an offset)",
                     pattern=r"^\d{1,10}$")


def op(tag: str, summary: str, responses: dict, *errors: str, params: tuple = (),
       request: dict | None = None, description: str | None = None) -> dict:
    """An operation; ``errors`` are status codes answered with a problem (403 is added
    to every operation when the server has credentials)."""
    operation: dict = {"tags": [tag], "summary": summary, "responses": dict(responses)}
    if description:
        operation["description"] = description
    if params:
        operation["parameters"] = list(params)
    if request is not None:
        operation["requestBody"] = request
    for code in errors:
        operation["responses"][code] = _ref("responses", ERRORS[code][0])
    return operation


# --------------------------------------------------------------------------- paths

APP = path_param("name", "application name", pattern=r"^[a-zA-Z0-9_.-]{1,128}$")
SNAP = path_param("snapshot", "snapshot name", pattern=r"^[a-zA-Z0-9_.-]{1,128}$")
MODEL_NAME = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
GROUP = path_param("group", "model group name (else 400)", pattern=MODEL_NAME)
VERSION = path_param("version", "version number (else 400)", pattern=r"^[0-9]+$")
CONFIG = path_param("name", "endpoint config name")
ENDPOINT = path_param("name", "endpoint name")
ANALYSIS_ID = path_param("analysis_id", "analysis id, e.g. 20240501T120000123456Z-3fa9c2")

VERSION_FILTERS = (
    query("approval_status", "only versions with this approval", enum=list(APPROVAL_STATUSES)),
    query("status", "only versions with this import status", enum=list(STATUSES)),
    query("created_after", "exclusive; ISO 8601 (naive = UTC)", format="date-time"),
    query("created_before", "exclusive; ISO 8601 (naive = UTC)", format="date-time"),
    query("q", "case-insensitive substring of the group name or of the group's or "
          "version's description", maxLength=256),
    limit(100), NEXT_TOKEN)
METADATA_FILTER = ("Any number of metadata.KEY=VALUE query parameters also filter: each "
                   "pair must match the version's customer or immutable metadata.")

A = "applications"
M = "models"
E = "endpoints"
OPT = "optimizer"

PATHS: dict[str, dict] = {
    "/api/v1/applications": {
        "get": op(A, "List applications (as stored, by name)", ok("ApplicationList")),
        "post": op(A, "Create an application (READY)", ok("Application", "201", "created"),
                   "400", "409", request=body("ApplicationCreate")),
    },
    "/api/v1/applications/{name}": {
        "parameters": [APP],
        "get": op(A, "Describe an application", ok("Application"), "404"),
        "patch": op(A, "Update code or configuration", ok("Application"), "400", "404", "409",
                    request=body("ApplicationUpdate"),
                    description="Allowed when READY or RUNNING; bumps its version."),
        "delete": op(A, "Delete a READY application", NO_CONTENT, "404", "409"),
    },
    "/api/v1/applications/{name}/start": {
        "parameters": [APP],
        "post": op(A, "Start a READY application", ok("Application"), "400", "404", "409",
                   request={"required": False, "content": {JSON: {"schema": {
                       "type": "object", "properties": {
                           "restore": {"enum": ["LATEST", "SKIP", "SNAPSHOT"],
                                       "default": "LATEST"},
                           "snapshot": {"type": "string",
                                        "description": "with restore SNAPSHOT"}}}}}}),
    },
    "/api/v1/applications/{name}/stop": {
        "parameters": [APP],
        "post": op(A, "Stop a running application", ok("Application"), "400", "404", "409",
                   request={"required": False, "content": {JSON: {"schema": {
                       "type": "object", "properties": {
                           "force": {"type": "boolean", "default": False,
                                     "description": "kill, without a snapshot"},
                           "snapshot": {"type": "boolean", "default": True}}}}}}),
    },
    "/api/v1/applications/{name}/logs": {
        "parameters": [APP],
        "get": op(A, "The last lines of the worker log", {"200": {
            "description": "OK", "content": {JSON: {"schema": {
                "type": "object", "required": ["lines"],
                "properties": {"lines": {"type": "array", "items": {"type": "string"}}}}}}}},
            "400", "404", params=(query("tail", "how many lines", type="integer",
                                        minimum=1, maximum=100_000, default=200),)),
    },
    "/api/v1/applications/{name}/snapshots": {
        "parameters": [APP],
        "get": op(A, "List snapshots (empty for an unknown application)", ok("SnapshotList")),
        "post": op(A, "Snapshot the latest checkpoint", ok("Snapshot", "201", "created"),
                   "400", "404", "409", request={"required": True, "content": {JSON: {
                       "schema": {"type": "object", "required": ["snapshot"], "properties": {
                           "snapshot": {"type": "string",
                                        "pattern": r"^[a-zA-Z0-9_.-]{1,128}$"}}}}}}),
    },
    "/api/v1/applications/{name}/snapshots/{snapshot}": {
        "parameters": [APP, SNAP],
        "get": op(A, "Describe a snapshot", ok("Snapshot"), "404"),
        "delete": op(A, "Delete a snapshot", NO_CONTENT, "404"),
    },
    "/api/v1/models/uploads": {
        "post": op(M, "Upload a model file or archive", ok("Upload", "201", "stored"), "400",
                   params=(query("filename", "a plain file name; its extension tells the "
                                 "format", default="model.bin"),),
                   request={"required": True, "description": "the raw bytes (kept 24 hours)",
                            "content": {"application/octet-stream": {"schema": {
                                "type": "string", "contentMediaType":
                                "application/octet-stream"}}}}),
    },
    "/api/v1/models/groups": {
        "get": op(M, "List model groups (by name)", ok("ModelGroupList"), "400",
                  params=(limit(100), NEXT_TOKEN)),
        "post": op(M, "Create a model group", ok("ModelGroup", "201", "created"), "400", "409",
                   request=body("ModelGroupCreate")),
    },
    "/api/v1/models/groups/{group}": {
        "parameters": [GROUP],
        "get": op(M, "Describe a model group", ok("ModelGroup"), "400", "404"),
        "delete": op(M, "Delete a model group without versions", NO_CONTENT, "400", "404",
                     "409"),
    },
    "/api/v1/models/groups/{group}/versions": {
        "parameters": [GROUP],
        "get": op(M, "List a group's versions", ok("ModelVersionList"), "400", "404",
                  params=VERSION_FILTERS, description=METADATA_FILTER),
        "post": op(M, "Import the next version (creates the group if missing)",
                   ok("ModelVersion", "201", "imported: Ready"), "400", "422", "502",
                   request=body("ModelVersionImport"),
                   params=({"name": "X-Forestream-User", "in": "header", "required": False,
                            "description": "recorded as created_by (default: api)",
                            "schema": {"type": "string", "maxLength": 256}},)),
    },
    "/api/v1/models/groups/{group}/latest-approved": {
        "parameters": [GROUP],
        "get": op(M, "The newest Approved and Ready version", ok("ModelVersion"), "400", "404"),
    },
    "/api/v1/models/groups/{group}/versions/{version}": {
        "parameters": [GROUP, VERSION],
        "get": op(M, "Describe a version", ok("ModelVersion"), "400", "404"),
        "patch": op(M, "Change approval, customer metadata, metrics or tags",
                    ok("ModelVersion"), "400", "404", "409", request=body("ModelVersionUpdate"),
                    params=({"name": "X-Forestream-User", "in": "header", "required": False,
                             "description": "recorded in approval_history (default: api)",
                             "schema": {"type": "string", "maxLength": 256}},)),
        "delete": op(M, "Delete a version not deployed on an endpoint",
                     ok("ModelVersion", description="the deleted version"), "400", "404",
                     "409", "502"),
    },
    "/api/v1/models/versions": {
        "get": op(M, "Search versions of every group", ok("ModelVersionList"), "400", "404",
                  params=(query("group", "only this group (404 if it does not exist)",
                                pattern=MODEL_NAME), *VERSION_FILTERS),
                  description=METADATA_FILTER),
    },
    "/api/v1/endpoint-configs": {
        "get": op(E, "List endpoint configs (by name)", ok("EndpointConfigList")),
        "post": op(E, "Create an endpoint config", ok("EndpointConfig", "201", "created"),
                   "400", "404", "409", request=body("EndpointConfigCreate")),
    },
    "/api/v1/endpoint-configs/{name}": {
        "parameters": [CONFIG],
        "get": op(E, "Describe an endpoint config", ok("EndpointConfig"), "404"),
        "delete": op(E, "Delete an endpoint config no endpoint uses", NO_CONTENT, "404",
                     "409"),
    },
    "/api/v1/endpoints": {
        "get": op(E, "List endpoints (by name)", ok("EndpointList")),
        "post": op(E, "Create an endpoint (Creating; workers start in the background)",
                   ok("Endpoint", "201", "created"), "400", "404", "409",
                   request=body("EndpointCreate")),
    },
    "/api/v1/endpoints/{name}": {
        "parameters": [ENDPOINT],
        "get": op(E, "Describe an endpoint", ok("Endpoint"), "404"),
        "patch": op(E, "Update the config, or change weights and workers live",
                    ok("Endpoint"), "400", "404", "409", request=body("EndpointUpdate")),
        "delete": op(E, "Drain and delete an endpoint", NO_CONTENT, "404"),
    },
    "/api/v1/endpoints/{name}/logs": {
        "parameters": [ENDPOINT],
        "get": op(E, "The last lines of each worker log", {"200": {
            "description": "worker log name -> lines", "content": {JSON: {"schema": {
                "type": "object", "required": ["logs"], "properties": {"logs": {
                    "type": "object", "additionalProperties": {
                        "type": "array", "items": {"type": "string"}}}}}}}}},
            "400", "404", params=(query("tail", "lines per log", type="integer", minimum=1,
                                        maximum=100_000, default=200),)),
    },
    "/api/v1/streams/wait": {
        "post": op("streams", "Wait until shards have records after given positions",
                   ok("StreamWaitResult"), "400", "404", request=body("StreamWait"),
                   description="A long poll for readers on the server's machine: answers "
                   "as soon as a named shard has records after its position, or after "
                   "timeout_ms with ready empty. Kinesis itself has no such call; "
                   "forestream's application workers use it instead of polling."),
    },
    "/api/v1/optimizer/analyses": {
        "get": op(OPT, "List analyses, newest first", ok("AnalysisList"), "400",
                  params=(limit(50), query("next_token", "the next_token of the previous "
                                           "page (an analysis id)"))),
        "post": op(OPT, "Run and store an analysis",
                   ok("Analysis", "201", "stored (without series)", headers={
                       "Location": {"description": "the analysis's URL",
                                    "schema": {"type": "string"}}}),
                   "400", "502", request=body("AnalysisCreate")),
    },
    "/api/v1/optimizer/analyses/{analysis_id}": {
        "parameters": [ANALYSIS_ID],
        "get": op(OPT, "An analysis", ok("Analysis"), "400", "404",
                  params=(query("include", "series adds chart data", enum=["", "series"]),)),
        "delete": op(OPT, "Delete an analysis", NO_CONTENT, "404"),
    },
    "/api/v1/optimizer/analyses/{analysis_id}/report.html": {
        "parameters": [ANALYSIS_ID],
        "get": op(OPT, "The self-contained HTML report", {"200": {
            "description": "the report", "headers": {"Content-Security-Policy": {
                "schema": {"type": "string"}}},
            "content": {"text/html": {"schema": {"type": "string"}}}}}, "400", "404",
            params=(query("max_sections", "keep the charts of the N largest savings",
                          type="integer", minimum=1, maximum=10**6),)),
    },
    "/api/v1/optimizer/recommendations": {
        "get": op(OPT, "Recommendations of an analysis (default: the latest)",
                  ok("RecommendationPage"), "400", "404", params=(
                      query("analysis", "an analysis id (default: the latest)"),
                      query("finding", "only this finding", enum=list(ALL_FINDINGS)),
                      query("kind", "only this resource kind", enum=list(RESOURCE_KINDS)),
                      limit(100), OFFSET_TOKEN)),
    },
    "/api/v1/optimizer/catalog": {
        "get": op(OPT, "Instance types of a region, cheapest first", ok("CatalogPage"), "400",
                  params=(
                      query("region", "default: the server's region"),
                      {"name": "family", "in": "query", "required": False, "style": "form",
                       "explode": True, "description": "instance families; repeat it or "
                       "separate with commas (unknown ones: 400)",
                       "schema": {"type": "array", "items": {"type": "string"}}},
                      query("architecture", "CPU architecture", enum=list(ARCHITECTURES)),
                      query("min_vcpu", "at least this many vCPUs", type="number", minimum=0),
                      query("min_memory_gib", "at least this much memory", type="number",
                            minimum=0),
                      query("gpus", "true: only GPU types; false: only types without",
                            enum=["true", "false"]),
                      limit(100), OFFSET_TOKEN)),
    },
    "/api/v1/optimizer/components": {
        "get": op(OPT, "The component collector's status", ok("ComponentsStatus")),
        "put": op(OPT, "(Re)start the component collector (kept across restarts)",
                  ok("ComponentsStatus"), "400",
                  request=body("ComponentsStart", required=False)),
        "delete": op(OPT, "Stop the component collector", ok("ComponentsStatus")),
    },
    PATH: {
        "get": {**op("meta", "This OpenAPI document", {"200": {
            "description": "OpenAPI 3.1", "content": {JSON: {"schema": {"type": "object"}}}}}),
            "security": []},
    },
}


# --------------------------------------------------------------------------- document

def build_document(settings: Settings) -> dict:
    """The document for a server with ``settings`` (security depends on credentials)."""
    paths = copy.deepcopy(PATHS)
    token = settings.require_token or bool(settings.token)
    security: list = ([{"token": []}] if token else []) + \
        ([{"sigv4": []}] if settings.auth_enabled else [])
    for path, item in paths.items():
        for method, operation in item.items():
            if method != "parameters" and path != PATH:
                operation["responses"]["403"] = _ref("responses", "Forbidden")
                if security:
                    operation["responses"]["401"] = _ref("responses", "Unauthorized")
    if not security:
        security = [{}]
        auth = "This server asks for no authentication (started with --no-token)."
    else:
        auth = ("Every operation (except this document) needs " + " or ".join(
            ["the server's access token"] * token +
            ["an AWS Signature V4 made with the server's credentials"] * settings.auth_enabled)
            + ".")
    return {
        "openapi": "3.1.0",
        "info": {"title": "forestream", "version": __version__,
                 "summary": "forestream's own REST API",
                 "description": "Stream processing applications, the model registry, "
                 "endpoints and the right-sizing optimizer. Bodies are JSON objects; errors "
                 "are RFC 9457 problem details (application/problem+json). " + auth},
        "tags": TAGS,
        "paths": paths,
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "responses": {name: {"description": text, "content": {
                "application/problem+json": {"schema": _ref("schemas", "Problem")}}}
                for name, text in ERRORS.values()},
            "securitySchemes": {"token": TOKEN, "sigv4": SIGV4},
        },
        "security": security,
    }


def routes(settings: Settings) -> list[Route]:
    document = build_document(settings)

    async def openapi(request: Request) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}"
        return Response(orjson.dumps({**document, "servers": [{"url": base}]}),
                        media_type=JSON)

    return [Route(PATH, openapi, methods=["GET"])]
