"""JSON Schemas (OpenAPI 3.1 ``components.schemas``) of forestream's REST API bodies.

Request schemas state what the handlers accept and check (ranges, enums, patterns);
response schemas the dicts the library methods return. Response objects stay open
(``additionalProperties`` is not restricted): a server may add members, never drop the
required ones. Used by :mod:`forestream.server.rest.openapi`.
"""

from __future__ import annotations

from forestream.models.frameworks import FRAMEWORKS
from forestream.models.hosting.endpoints import MAX_VARIANTS, MAX_WORKERS_PER_VARIANT
from forestream.models.registry import APPROVAL_STATUSES, MAX_PAGE, STATUSES
from forestream.models.staging.importer import (
    GROUP_NAME,
    IMMUTABLE_METADATA_KEYS,
    MAX_DESCRIPTION,
    MAX_IMMUTABLE_VALUE,
    MAX_METRICS,
    MAX_PROPERTIES,
    MAX_PROPERTY_VALUE,
)
from forestream.optimizer.catalog import ARCHITECTURES
from forestream.optimizer.report import ALL_FINDINGS
from forestream.optimizer.service import PROMETHEUS_KEYS
from forestream.optimizer.types import METRICS, RESOURCE_KINDS
from forestream.processing.app_config import (
    DEFAULT_MAX_PARALLELISM,
    MAX_KEY_GROUPS,
    MAX_PARALLELISM,
    NAME,
)

# The recommender's preference values (forestream.optimizer.recommend / policies import
# numba, which a starting server does not load; tests/test_openapi.py checks these).
POLICIES = ["forestream", "aws-default", "max-rule", "vpa", "krr"]
LOOKBACK_DAYS = [14, 32, 93]
CPU_PERCENTILES = [90.0, 95.0, 99.5]
SLO_PERCENTILES = [90.0, 95.0, 99.0, 99.5]
CPU_HEADROOMS = [0.0, 0.2, 0.3]
MEM_HEADROOMS = [0.1, 0.2, 0.3]
RISK_LABELS = ["VeryLow", "Low", "Medium", "High"]
APPLICATION_STATUSES = ["READY", "STARTING", "RUNNING", "STOPPING", "UPDATING", "AUTOSCALING",
                        "DELETING"]
ENDPOINT_STATUSES = ["Creating", "InService", "Updating", "Failed", "Deleting"]

APP_NAME = NAME.pattern
MODEL_NAME = GROUP_NAME.pattern  # model groups, endpoint configs, endpoints, variants
PROPERTY_KEY = r"^[\w .:/=+\-@]{1,128}$"


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(properties: dict, required: tuple = (), description: str | None = None,
        closed: bool = False, **extra) -> dict:
    """An object schema; ``closed``: members other than ``properties`` are refused."""
    schema: dict = {"type": "object", "properties": properties}
    if required:
        schema["required"] = list(required)
    if closed:
        schema["additionalProperties"] = False
    if description:
        schema["description"] = description
    return {**schema, **extra}


def array(items: dict, **extra) -> dict:
    return {"type": "array", "items": items, **extra}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


STR = {"type": "string"}
INT = {"type": "integer"}
NUM = {"type": "number"}
BOOL = {"type": "boolean"}
ANY_OBJ = {"type": "object"}
ISO_TIME = {"type": "string", "format": "date-time"}
EPOCH = {"type": "number", "description": "seconds since the epoch"}
NEXT_TOKEN = {"type": ["string", "null"], "description": "pass it back to get the next "
              "page; null on the last page"}
NUM_MAP = {"type": "object", "additionalProperties": {"type": ["number", "null"]}}
PROPERTIES = {
    "type": "object", "maxProperties": MAX_PROPERTIES,
    "propertyNames": {"pattern": PROPERTY_KEY},
    "additionalProperties": {"type": "string", "maxLength": MAX_PROPERTY_VALUE},
    "description": f"string pairs: at most {MAX_PROPERTIES}, keys 1-128 letters, digits, "
                   f"spaces and _.:/=+-@, values up to {MAX_PROPERTY_VALUE} characters"}
MODEL_METRICS = {
    "type": "object", "maxProperties": MAX_METRICS,
    "propertyNames": {"pattern": PROPERTY_KEY}, "additionalProperties": NUM,
    "description": "metric name -> finite number"}
DESCRIPTION = {"type": "string", "maxLength": MAX_DESCRIPTION}

PROBLEM = obj({
    "type": {"type": "string", "const": "about:blank"},
    "title": {"type": "string", "description": "models and optimizer: the error code "
              "(ValidationError, ResourceNotFound, ConflictException, ImportFailed, ...); "
              "applications: Invalid request, Not found or Conflict; Forbidden for a "
              "missing or bad signature"},
    "status": {"type": "integer", "minimum": 400, "maximum": 599},
    "detail": {"type": "string", "description": "names the bad value and what is accepted"},
    "instance": {"type": "string", "description": "the request path"},
    "version": {"type": ["integer", "null"],
                "description": "ImportFailed only: the number of the Failed version"},
}, ("type", "title", "status", "detail", "instance"), "RFC 9457 problem details")

# ------------------------------------------------------------------ applications
_APP_CONFIG: dict[str, dict] = {
    "properties": {"type": "object", "additionalProperties": ANY_OBJ,
                   "description": "property-group name -> {key: value}"},
    "checkpoint_interval": {"type": "number", "minimum": 0.1, "maximum": 86400,
                            "description": "seconds"},
    "parallelism": {"type": "integer", "minimum": 1, "maximum": MAX_PARALLELISM},
    "autoscaling": obj({
        "enabled": {"type": "boolean", "default": False},
        "min_parallelism": {"type": "integer", "minimum": 1, "maximum": MAX_PARALLELISM,
                            "default": 1},
        "max_parallelism": {"type": "integer", "minimum": 1, "maximum": MAX_PARALLELISM,
                            "default": MAX_PARALLELISM},
        "scale_up_utilization": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                 "default": 0.75},
        "scale_up_after_seconds": {"type": "number", "minimum": 1, "maximum": 604800,
                                   "default": 900},
        "scale_down_utilization": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                                   "default": 0.1},
        "scale_down_after_seconds": {"type": "number", "minimum": 1, "maximum": 604800,
                                     "default": 21600},
    }, (), "rescale when the workers' busy share stays high or low (missing settings take "
       "the defaults)", closed=True),
}
APPLICATION_RECORD = obj({
    "name": {"type": "string", "pattern": APP_NAME},
    "description": STR,
    "status": {"type": "string", "enum": APPLICATION_STATUSES},
    "entry": {"type": "string", "description": "the file run: the .py given, or main.py"},
    "code_source": {"type": "string", "description": "the code path it was installed from"},
    **_APP_CONFIG,
    "max_parallelism": {"type": "integer", "minimum": 1, "maximum": MAX_KEY_GROUPS,
                        "description": "key groups of a keyed job, fixed at creation"},
    "autoscaling_events": array(obj({"time": EPOCH, "from": INT, "to": INT, "reason": STR},
                                    ("time", "from", "to", "reason")),
                                description="the latest 20 rescalings"),
    "version": {"type": "integer", "minimum": 1},
    "created": EPOCH, "updated": EPOCH,
    "last_failure": nullable(obj({"time": EPOCH, "exit_code": INT, "reason": STR})),
}, ("name", "status", "entry", "properties", "checkpoint_interval", "parallelism",
    "version", "created", "updated"), "an application as stored")
APPLICATION = {"allOf": [ref("ApplicationRecord"), obj({
    "runtime": {"type": ["object", "null"], "description": "the latest status its worker "
                "(or, with parallelism, each worker under 'workers') reported"},
    "snapshots": {"type": "integer", "minimum": 0, "description": "how many it has"},
}, ("runtime", "snapshots"))], "description": "an application, described"}
APPLICATION_CREATE = obj({
    "name": {"type": "string", "pattern": APP_NAME},
    "code": {"oneOf": [
        obj({"filename": {"type": "string", "pattern": r"^[^/\\.][^/\\]*\.py$"},
             "text": {"type": "string", "description": "the Python source"}},
            ("filename", "text"), "one file defining build(env, properties)", closed=True),
        obj({"zip_base64": {"type": "string", "contentEncoding": "base64"}}, ("zip_base64",),
            "a zip with main.py at its top (at most 50 MiB)", closed=True),
        {"type": "string", "minLength": 1, "description": "a path on the server inside its "
         "import roots (--import-root): a .py file or a directory with main.py"}],
        "description": "the application's code (running it needs a server started with "
                       "--allow-code)"},
    "description": STR,
    "properties": {**_APP_CONFIG["properties"], "default": {}},
    "checkpoint_interval": {**_APP_CONFIG["checkpoint_interval"], "default": 10.0},
    "parallelism": {**_APP_CONFIG["parallelism"], "default": 1},
    "max_parallelism": {"type": "integer", "minimum": 1, "maximum": MAX_KEY_GROUPS,
                        "default": DEFAULT_MAX_PARALLELISM,
                        "description": "key groups a keyed job's state is split into (at "
                        "least parallelism)"},
}, ("name", "code"))
APPLICATION_UPDATE = obj({"code": APPLICATION_CREATE["properties"]["code"], **_APP_CONFIG},
                         description="what to change; a RUNNING application restarts from "
                         "its latest checkpoint with it")
SNAPSHOT = obj({"application": STR, "name": STR, "created": EPOCH,
                "bytes": {"type": "integer", "minimum": 0}, "parts": array(STR),
                "status": {"type": "string", "enum": ["READY"]}},
               ("application", "name", "created", "bytes", "parts", "status"))

# ------------------------------------------------------------------ model registry
MODEL_GROUP = obj({
    "name": {"type": "string", "pattern": MODEL_NAME}, "description": STR,
    "created_at": ISO_TIME, "created_by": {"type": ["string", "null"]}, "tags": PROPERTIES,
    "version_count": {"type": "integer", "minimum": 0},
    "latest_version": {"type": ["integer", "null"]},
    "latest_approved_version": {"type": ["integer", "null"]},
}, ("name", "description", "created_at", "created_by", "tags", "version_count",
    "latest_version", "latest_approved_version"))
MODEL_VERSION = obj({
    "group": STR, "version": {"type": "integer", "minimum": 1},
    "ref": {"type": "string", "description": "group:version"},
    "status": {"type": "string", "enum": list(STATUSES)},
    "failure_reason": {"type": ["string", "null"]},
    "approval_status": {"type": "string", "enum": list(APPROVAL_STATUSES)},
    "approval_description": STR,
    "approval_history": array(obj({"status": {"enum": list(APPROVAL_STATUSES)},
                                   "description": STR, "at": ISO_TIME,
                                   "by": {"type": ["string", "null"]}},
                                  ("status", "description", "at", "by"))),
    "framework": {"type": ["string", "null"], "enum": [*FRAMEWORKS, None]},
    "framework_version": {"type": ["string", "null"]},
    "python_version": {"type": ["string", "null"]},
    "library_versions": {"type": "object", "additionalProperties": STR},
    "signature": {"type": ["object", "null"], "description": "inputs, outputs, methods"},
    "files": array(obj({"path": STR, "sha256": STR, "size": INT}, ("path", "sha256", "size"))),
    "artifact_digest": {"type": ["string", "null"]},
    "artifact_uri": {"type": ["string", "null"], "description": "its S3 copy, if any"},
    "size_bytes": {"type": "integer", "minimum": 0},
    "source_uri": STR, "trusted": BOOL, "custom_code": BOOL, "requirements": array(STR),
    "validation": nullable(obj({"load_seconds": {"type": ["number", "null"]},
                                "sample_output": {"type": ["object", "null"]}})),
    "created_at": ISO_TIME, "updated_at": ISO_TIME,
    "created_by": {"type": ["string", "null"]},
    "metadata": obj({k: {"type": "string", "maxLength": MAX_IMMUTABLE_VALUE}
                     for k in IMMUTABLE_METADATA_KEYS}, closed=True),
    "customer_metadata": PROPERTIES, "metrics": MODEL_METRICS, "tags": PROPERTIES,
    "description": STR,
}, ("group", "version", "ref", "status", "failure_reason", "approval_status",
    "approval_history", "framework", "files", "artifact_digest", "artifact_uri", "source_uri",
    "trusted", "created_at", "updated_at", "metadata", "customer_metadata", "metrics", "tags",
    "description"))
MODEL_GROUP_CREATE = obj({"name": {"type": "string", "pattern": MODEL_NAME},
                          "description": {**DESCRIPTION, "default": ""}, "tags": PROPERTIES},
                         ("name",))
VERSION_IMPORT = obj({
    "source": {"type": "string", "minLength": 1, "description": "upload://ID (from POST "
               "/api/v1/models/uploads), s3://bucket/key, s3://bucket/prefix/, file:// or a "
               "path on the server"},
    "framework": {"type": "string", "enum": list(FRAMEWORKS),
                  "description": "omit it to detect"},
    "trust": {"type": "boolean", "default": False, "description": "allow formats that run "
              "code on load (pickle, joblib, PyTorch eager, code/inference.py)"},
    "sample_input_b64": {"type": "string", "contentEncoding": "base64",
                         "description": "a sample request (1 byte to 6 MiB) run through the "
                         "model at import"},
    "sample_content_type": {"type": "string", "minLength": 1, "maxLength": 256,
                            "default": "application/json"},
    "metadata": MODEL_VERSION["properties"]["metadata"],
    "customer_metadata": PROPERTIES, "metrics": MODEL_METRICS, "tags": PROPERTIES,
    "description": {**DESCRIPTION, "default": ""},
    "s3_endpoint_url": {"type": "string", "pattern": r"^https?://[^\s/]+",
                        "description": "the S3 endpoint of an s3:// source"},
}, ("source",), "created_by is the X-Forestream-User header (default: api)")
VERSION_UPDATE = obj({
    "approval_status": {"type": "string", "enum": list(APPROVAL_STATUSES),
                        "description": "only Ready versions can be Approved"},
    "approval_description": DESCRIPTION,
    "customer_metadata": {**PROPERTIES, "description": "merged into the stored pairs"},
    "remove_customer_metadata": {"type": ["array", "null"], "items": STR},
    "metrics": {**MODEL_METRICS, "description": "merged into the stored metrics"},
    "tags": {**PROPERTIES, "description": "merged into the stored tags"},
}, closed=True, description="metadata is immutable; other members are refused")

# ------------------------------------------------------------------ endpoints
_WEIGHT = {"type": "number", "minimum": 0, "maximum": 1_000_000}
_WORKERS = {"type": "integer", "minimum": 1, "maximum": MAX_WORKERS_PER_VARIANT}
VARIANT_INPUT = obj({
    "variant_name": {"type": "string", "pattern": MODEL_NAME,
                     "description": "default AllTraffic when there is one variant"},
    "model": {"type": "string", "description": "group:N, group:latest or group:approved "
              "(a Ready version)"},
    "weight": {**_WEIGHT, "default": 1.0}, "workers": {**_WORKERS, "default": 1},
    "VariantName": {"type": "string", "description": "alias of variant_name"},
    "ModelName": {"type": "string", "description": "alias of model"},
    "InitialVariantWeight": {**_WEIGHT, "description": "alias of weight"},
    "InitialInstanceCount": {**_WORKERS, "description": "alias of workers"},
}, anyOf=[{"required": ["model"]}, {"required": ["ModelName"]}],
    description="at least one variant of a configuration needs a weight above 0")
VARIANTS = array(ref("VariantInput"), minItems=1, maxItems=MAX_VARIANTS)
ENDPOINT_CONFIG = obj({
    "name": STR, "created_at": ISO_TIME,
    "variants": array(obj({"variant_name": STR, "model": STR, "weight": NUM, "workers": INT},
                          ("variant_name", "model", "weight", "workers"))),
}, ("name", "variants", "created_at"))
ENDPOINT_CONFIG_CREATE = obj({"name": {"type": "string", "pattern": MODEL_NAME},
                              "variants": VARIANTS}, ("name", "variants"))
ENDPOINT = obj({
    "name": STR, "config": {"type": "string", "description": "its endpoint config"},
    "status": {"type": "string", "enum": ENDPOINT_STATUSES},
    "failure_reason": {"type": ["string", "null"]},
    "variants": array(obj({"variant_name": STR, "model": STR, "current_weight": NUM,
                           "desired_weight": NUM, "current_workers": INT,
                           "desired_workers": INT},
                          ("variant_name", "model", "current_weight", "desired_weight",
                           "current_workers", "desired_workers"))),
    "created_at": ISO_TIME, "modified_at": ISO_TIME,
}, ("name", "config", "status", "failure_reason", "variants", "created_at", "modified_at"))
ENDPOINT_CREATE = obj({
    "name": {"type": "string", "pattern": MODEL_NAME},
    "config": {"type": "string", "description": "an endpoint config name"},
    "variants": {**VARIANTS, "description": "creates a config named <name>-<UTC time>"},
}, ("name",), oneOf=[{"required": ["config"]}, {"required": ["variants"]}])
ENDPOINT_UPDATE = obj({
    "config": {"type": "string", "description": "move to this endpoint config (no request "
               "is dropped)"},
    "variants": {**VARIANTS, "description": "move to a new config made of these"},
    "weights": {"type": "object", "additionalProperties": _WEIGHT,
                "description": "live change: variant -> weight"},
    "workers": {"type": "object", "additionalProperties": _WORKERS,
                "description": "live change: variant -> worker count"},
}, anyOf=[{"required": [k]} for k in ("config", "variants", "weights", "workers")],
    description="config or variants update the endpoint (weights and workers are then "
    "ignored); otherwise weights and/or workers change live")

# ------------------------------------------------------------------ optimizer
_NULL_OR = {"type": ["string", "number", "null"]}
PREFERENCES = obj({
    "policy": {"enum": [*POLICIES, None], "default": "forestream"},
    "lookback_days": {"enum": [*LOOKBACK_DAYS, None], "default": 14},
    "cpu_percentile": {"enum": [*CPU_PERCENTILES, None], "default": 99.5},
    "cpu_headroom": {"enum": [*CPU_HEADROOMS, None], "description": "null: the policy's own"},
    "mem_headroom": {"enum": [*MEM_HEADROOMS, None], "description": "null: the policy's own"},
    "horizon_days": {"type": ["number", "null"], "minimum": 0, "maximum": 93, "default": 14},
    "max_options": {"type": ["integer", "null"], "minimum": 1, "maximum": 10, "default": 3},
    "allow_graviton": {"type": ["boolean", "null"], "default": False},
    "include_burstable": {"type": ["boolean", "null"], "default": False},
    "seed": {"type": ["integer", "null"], "default": 0},
    "slo_percentile": {"enum": [*SLO_PERCENTILES, None], "default": 99.0},
    "slo_utilization": {"type": ["number", "null"], "minimum": 50, "maximum": 100,
                        "default": 90, "description": "forestream: the percentile of "
                        "5-minute CPU utilization stays at or below this percent"},
}, closed=True, description="null members take their defaults")
SOURCE = obj({
    "path": {"type": "string", "minLength": 1, "description": "a metrics file or directory "
             "on the server"},
    "prometheus": obj({"url": STR, "preset": STR, "days": NUM, "start": _NULL_OR,
                       "end": _NULL_OR, "queries": ANY_OBJ, "headers": ANY_OBJ},
                      ("url",), closed=True, description=f"members: {', '.join(PROMETHEUS_KEYS)}"),
    "components": {"const": True, "description": "forestream's own streams, applications "
                   "and endpoints (what the component collector wrote)"},
    "resources": {"type": ["string", "object"], "description": "a resources.csv/json path, "
                  "or {resource_id: current fields}"},
    "instance_type": {"type": "string", "description": "for instances that name none"},
}, closed=True, oneOf=[{"required": [k]} for k in ("path", "prometheus", "components")])
INLINE_HISTORY = obj({
    "resource": obj({"resource_id": {"type": "string", "minLength": 1},
                     "kind": {"enum": list(RESOURCE_KINDS), "default": "instance"},
                     "current": ANY_OBJ, "tags": ANY_OBJ}, ("resource_id",)),
    "timestamps": array({"type": ["string", "number"]}, description="ISO 8601 or epoch"),
    "metrics": {"type": "object", "minProperties": 1,
                "propertyNames": {"enum": [*METRICS, *(f"{m}_max" for m in METRICS)]},
                "additionalProperties": array({"type": ["number", "null"]}),
                "description": "one value per timestamp (null: missing)"},
}, ("resource", "timestamps", "metrics"))
ANALYSIS_CREATE = obj({
    "source": ref("AnalysisSource"),
    "metrics": array(ref("InlineHistory"), minItems=1),
    "preferences": ref("Preferences"),
    "region": {"type": "string", "description": "catalog region (default: the server's)"},
    "catalog": {"type": "string", "description": "an instance catalog file on the server"},
}, closed=True, oneOf=[{"required": ["source"]}, {"required": ["metrics"]}])
TOP_SAVING = obj({"resource_id": STR, "kind": STR, "finding": STR, "current": STR,
                  "recommended": STR, "savings_monthly": NUM,
                  "savings_pct": {"type": ["number", "null"]}})
ANALYSIS_SUMMARY = obj({
    "resources": INT,
    "findings": obj({f: INT for f in ALL_FINDINGS}, additionalProperties=INT),
    "kinds": {"type": "object", "additionalProperties": INT},
    "current_monthly": NUM, "recommended_monthly": NUM, "savings_monthly": NUM,
    "extra_cost_monthly": NUM, "unpriced": INT, "top_savings": array(TOP_SAVING),
}, ("resources", "findings", "kinds", "current_monthly", "recommended_monthly",
    "savings_monthly", "extra_cost_monthly", "unpriced", "top_savings"),
    "fleet totals (USD per month, 730 hours)")
_PRICE = {"type": ["number", "null"]}
RECOMMENDATION = obj({
    "resource_id": STR, "kind": {"enum": list(RESOURCE_KINDS)}, "policy": STR,
    "finding": {"enum": list(ALL_FINDINGS)}, "reasons": array(STR),
    "workload_class": {"type": "string", "description": "idle, steady, diurnal, bursty, "
                       "trending; empty without enough data"},
    "period_hours": INT,
    "current": nullable(obj({"name": STR, "configuration": ANY_OBJ, "monthly_price": _PRICE,
                             "utilization": NUM_MAP, "performance_risk": INT,
                             "risk": {"enum": RISK_LABELS}},
                            ("name", "configuration", "monthly_price"))),
    "options": array(obj({
        "rank": {"type": "integer", "minimum": 1}, "name": STR, "configuration": ANY_OBJ,
        "monthly_price": _PRICE, "savings_monthly": _PRICE, "savings_pct": _PRICE,
        "performance_risk": {"type": "integer", "minimum": 0, "maximum": 4},
        "projected_utilization": NUM_MAP,
        "migration_effort": {"enum": ["VeryLow", "Low", "Medium", "High"]},
        "architecture": {"type": ["string", "null"]}},
        ("rank", "name", "configuration", "monthly_price", "savings_monthly"))),
    "lookback_days": INT, "data_hours": NUM, "notes": array(STR),
}, ("resource_id", "kind", "policy", "finding", "reasons", "current", "options",
    "lookback_days", "data_hours"), "Recommendation.to_dict(): options ranked, best first")
_ANALYSIS_HEAD = {"id": {"type": "string", "pattern": r"^\d{8}T\d{12}Z-[0-9a-f]{6}$"},
                  "created_at": ISO_TIME, "region": STR,
                  "source": {"type": "object", "description": "what was read"},
                  "preferences": ANY_OBJ, "summary": ref("AnalysisSummary")}
ANALYSIS_ENTRY = obj(_ANALYSIS_HEAD, tuple(_ANALYSIS_HEAD), "an analysis in a listing")
ANALYSIS = obj({**_ANALYSIS_HEAD, "recommendations": array(ref("Recommendation")),
                "series": {"type": "object", "description": "?include=series only: chart "
                           "data per resource (start, step, lines, recommended_capacity)"}},
               (*_ANALYSIS_HEAD, "recommendations"))
INSTANCE_TYPE = obj({
    "name": STR, "family": STR, "architecture": {"enum": list(ARCHITECTURES)},
    "vcpu": INT, "memory_gib": NUM, "price_per_hour": NUM, "gpus": INT,
    "gpu_memory_gib": NUM, "network_gbps": NUM, "cpu_speed": NUM, "burstable": BOOL,
    "price_estimated": BOOL, "category": STR, "processor": STR, "network_burst_gbps": NUM,
    "current_generation": BOOL, "monthly_price": NUM,
}, ("name", "family", "architecture", "vcpu", "memory_gib", "price_per_hour",
    "monthly_price"), "on-demand USD; monthly = 730 hours")
COMPONENTS_STATUS = obj({"running": BOOL, "interval_seconds": {"type": ["number", "null"]},
                         "endpoint_url": STR, "directory": STR, "resources": array(STR)},
                        ("running", "interval_seconds", "endpoint_url", "directory",
                         "resources"))


def _listing(member: str, item: str, paged: bool = False, **more) -> dict:
    props = {member: array(ref(item)), **more}
    if paged:
        props["next_token"] = NEXT_TOKEN
    return obj(props, tuple(props))


SCHEMAS: dict[str, dict] = {
    "StreamWait": {
        "type": "object", "required": ["streams"], "additionalProperties": False,
        "properties": {
            "streams": {
                "type": "object", "minProperties": 1,
                "description": "stream name -> {shard id -> the last sequence number "
                               "read, or null for none yet}",
                "additionalProperties": {
                    "type": "object", "minProperties": 1,
                    "additionalProperties": {
                        "anyOf": [{"type": "string", "pattern": "^[0-9]{1,128}$"},
                                  {"type": "null"}]}}},
            "timeout_ms": {"type": "integer", "minimum": 0, "maximum": 20000,
                           "default": 1000}}},
    "StreamWaitResult": {
        "type": "object", "required": ["ready"], "properties": {
            "ready": {"type": "object", "description": "stream -> shards with new records "
                      "(empty: the time ran out)",
                      "additionalProperties": {"type": "array",
                                               "items": {"type": "string"}}}}},
    "Problem": PROBLEM,
    "ApplicationRecord": APPLICATION_RECORD, "Application": APPLICATION,
    "ApplicationList": _listing("applications", "ApplicationRecord"),
    "ApplicationCreate": APPLICATION_CREATE, "ApplicationUpdate": APPLICATION_UPDATE,
    "Snapshot": SNAPSHOT, "SnapshotList": _listing("snapshots", "Snapshot"),
    "Upload": obj({"upload_id": STR, "source": {"type": "string", "description":
                   "upload://<id>, for a version import's source"}}, ("upload_id", "source")),
    "ModelGroup": MODEL_GROUP, "ModelGroupCreate": MODEL_GROUP_CREATE,
    "ModelGroupList": _listing("groups", "ModelGroup", paged=True),
    "ModelVersion": MODEL_VERSION, "ModelVersionImport": VERSION_IMPORT,
    "ModelVersionUpdate": VERSION_UPDATE,
    "ModelVersionList": _listing("versions", "ModelVersion", paged=True),
    "VariantInput": VARIANT_INPUT, "EndpointConfig": ENDPOINT_CONFIG,
    "EndpointConfigCreate": ENDPOINT_CONFIG_CREATE,
    "EndpointConfigList": _listing("endpoint_configs", "EndpointConfig"),
    "Endpoint": ENDPOINT, "EndpointCreate": ENDPOINT_CREATE, "EndpointUpdate": ENDPOINT_UPDATE,
    "EndpointList": _listing("endpoints", "Endpoint"),
    "AnalysisCreate": ANALYSIS_CREATE, "AnalysisSource": SOURCE, "InlineHistory": INLINE_HISTORY,
    "Preferences": PREFERENCES, "AnalysisSummary": ANALYSIS_SUMMARY,
    "Recommendation": RECOMMENDATION, "Analysis": ANALYSIS, "AnalysisListEntry": ANALYSIS_ENTRY,
    "AnalysisList": _listing("analyses", "AnalysisListEntry", paged=True),
    "RecommendationPage": _listing("recommendations", "Recommendation", paged=True,
                                   analysis_id=STR, created_at=ISO_TIME,
                                   total={"type": "integer", "minimum": 0}),
    "InstanceType": INSTANCE_TYPE,
    "CatalogPage": _listing("instance_types", "InstanceType", paged=True, region=STR,
                            total={"type": "integer", "minimum": 0}),
    "ComponentsStatus": COMPONENTS_STATUS,
    "ComponentsStart": obj({"interval_seconds": {"type": "number", "minimum": 1,
                                                 "maximum": 86400, "default": 60}},
                           closed=True),
}
PAGE_LIMIT = MAX_PAGE
