"""SageMaker model hosting over forestream.models: models, endpoint configs, endpoints.

Endpoint configs and endpoints are the :class:`EndpointManager`'s own objects (the ones
``/api/v1`` shows): a variant's ``ModelName`` is translated to the registry version the
SageMaker model serves, ``InitialInstanceCount`` is the variant's worker processes and
``InitialVariantWeight`` its weight. What SageMaker records beyond that (the model names,
``InstanceType``, tags) is kept as a side record by :class:`SageMakerModels`.

Missing models, endpoint configs and endpoints answer ``ValidationException`` "Could not
find ..." as SageMaker does (boto3's ``endpoint_deleted`` waiter relies on it); names in
use answer ``ResourceInUse``; more than 64 workers per variant ``ResourceLimitExceeded``.
"""

from __future__ import annotations

import asyncio

from forestream.models.errors import NotFoundError
from forestream.models.hosting.endpoints import MAX_WORKERS_PER_VARIANT

from .common import ERRORS, Context, Handler, epoch, listing, validation

_deletions: set[asyncio.Task] = set()  # strong references to background deletions


# ---------------------------------------------------------------------- models

def create_model(ctx: Context, args: dict) -> dict:
    primary, containers = args.get("PrimaryContainer"), args.get("Containers")
    if primary is not None and containers:
        raise validation("give PrimaryContainer or Containers, not both")
    containers = [primary] if primary is not None else containers or []
    if len(containers) != 1:
        raise validation(f"forestream serves one container per model; got {len(containers)}"
                         " (inference pipelines are not supported)")
    model = ctx.models.create_model(args["ModelName"], containers[0], args)
    return {"ModelArn": model["arn"]}


def describe_model(ctx: Context, args: dict) -> dict:
    model = ctx.models.describe_model(args["ModelName"])
    request = model["request"]
    answer = {key: request[key] for key in ("PrimaryContainer", "Containers",
                                              "ExecutionRoleArn", "VpcConfig",
                                              "InferenceExecutionConfig") if key in request}
    return {"ModelName": model["name"], "ModelArn": model["arn"],
            "CreationTime": epoch(model["created_at"]),
            "EnableNetworkIsolation": bool(request.get("EnableNetworkIsolation", False)),
            **answer}


def list_models(ctx: Context, args: dict) -> dict:
    items = [{"ModelName": m["name"], "ModelArn": m["arn"],
              "CreationTime": epoch(m["created_at"])} for m in ctx.models.list_models()]
    page, token = listing("ListModels", items, args, name_key="ModelName",
                          sort_keys={"Name": "ModelName", "CreationTime": "CreationTime"})
    return {"Models": page, **({"NextToken": token} if token else {})}


def delete_model(ctx: Context, args: dict) -> dict:
    in_use = {v["model"] for c in ctx.endpoints.list_endpoint_configs() for v in c["variants"]}
    ctx.models.delete_model(args["ModelName"], in_use)
    return {}


# ---------------------------------------------------------------------- endpoint configs

def create_endpoint_config(ctx: Context, args: dict) -> dict:
    name = args["EndpointConfigName"]
    variants = []
    for given in args["ProductionVariants"]:
        model_name = given.get("ModelName")
        if model_name is None:
            raise validation(f"variant {given['VariantName']!r} needs ModelName")
        try:
            ref = ctx.models.describe_model(model_name)["ref"]
        except NotFoundError as exc:
            raise validation(exc.message) from None
        workers = given.get("InitialInstanceCount", 1)
        if workers > MAX_WORKERS_PER_VARIANT:
            raise ERRORS.ResourceLimitExceeded(_over_limit(given["VariantName"],
                                                                      workers))
        variants.append({"variant_name": given["VariantName"], "model": ref,
                         "weight": given.get("InitialVariantWeight", 1.0),
                         "workers": workers})
    config = ctx.endpoints.create_endpoint_config(name, variants)
    ctx.models.put_side("endpoint-config", name, config["created_at"],
                        {k: v for k, v in args.items() if k != "EndpointConfigName"})
    return {"EndpointConfigArn": ctx.models.arn("endpoint-config", name)}


def describe_endpoint_config(ctx: Context, args: dict) -> dict:
    name = args["EndpointConfigName"]
    config = _config(ctx, name)
    side = ctx.models.side("endpoint-config", name, config["created_at"])
    given = {v["VariantName"]: v for v in side.get("ProductionVariants", [])}
    variants = []
    for v in config["variants"]:
        recorded = given.get(v["variant_name"], {})
        names = ctx.models.model_names_for(v["model"])
        variants.append({**recorded, "VariantName": v["variant_name"],
                         "ModelName": recorded.get("ModelName") or (names[0] if names
                                                                     else v["model"]),
                         "InitialInstanceCount": v["workers"],
                         "InitialVariantWeight": v["weight"]})
    extra = {k: side[k] for k in ("DataCaptureConfig", "KmsKeyId") if k in side}
    return {"EndpointConfigName": name, "EndpointConfigArn": ctx.models.arn(
        "endpoint-config", name), "ProductionVariants": variants,
        "CreationTime": epoch(config["created_at"]), **extra}


def list_endpoint_configs(ctx: Context, args: dict) -> dict:
    items = [{"EndpointConfigName": c["name"],
              "EndpointConfigArn": ctx.models.arn("endpoint-config", c["name"]),
              "CreationTime": epoch(c["created_at"])}
             for c in ctx.endpoints.list_endpoint_configs()]
    page, token = listing("ListEndpointConfigs", items, args, name_key="EndpointConfigName",
                          sort_keys={"Name": "EndpointConfigName",
                                     "CreationTime": "CreationTime"})
    return {"EndpointConfigs": page, **({"NextToken": token} if token else {})}


def delete_endpoint_config(ctx: Context, args: dict) -> dict:
    name = args["EndpointConfigName"]
    _config(ctx, name)
    ctx.endpoints.delete_endpoint_config(name)
    ctx.models.drop_side("endpoint-config", name)
    return {}


# ---------------------------------------------------------------------- endpoints

async def create_endpoint(ctx: Context, args: dict) -> dict:
    name, config_name = args["EndpointName"], args["EndpointConfigName"]
    _config(ctx, config_name)
    endpoint = await ctx.endpoints.create_endpoint(name, config_name)
    ctx.models.put_side("endpoint", name, endpoint["created_at"],
                        {"Tags": args.get("Tags", [])})
    return {"EndpointArn": ctx.models.arn("endpoint", name)}


async def describe_endpoint(ctx: Context, args: dict) -> dict:
    endpoint = _endpoint(ctx, args["EndpointName"])
    return _render_endpoint(ctx, endpoint)


async def list_endpoints(ctx: Context, args: dict) -> dict:
    items = [{"EndpointName": e["name"], "EndpointArn": ctx.models.arn("endpoint", e["name"]),
              "CreationTime": epoch(e["created_at"]),
              "LastModifiedTime": epoch(e["modified_at"]), "EndpointStatus": e["status"]}
             for e in ctx.endpoints.list_endpoints()]
    page, token = listing("ListEndpoints", items, args, name_key="EndpointName",
                          sort_keys={"Name": "EndpointName", "CreationTime": "CreationTime",
                                     "Status": "EndpointStatus"},
                          status_key="EndpointStatus")
    return {"Endpoints": page, **({"NextToken": token} if token else {})}


async def update_endpoint(ctx: Context, args: dict) -> dict:
    name = args["EndpointName"]
    _endpoint(ctx, name)
    _config(ctx, args["EndpointConfigName"])
    await ctx.endpoints.update_endpoint(name, args["EndpointConfigName"])
    return {"EndpointArn": ctx.models.arn("endpoint", name)}


async def update_endpoint_weights_and_capacities(ctx: Context, args: dict) -> dict:
    name = args["EndpointName"]
    _endpoint(ctx, name)
    weights, workers = {}, {}
    for desired in args["DesiredWeightsAndCapacities"]:
        variant = desired["VariantName"]
        if "DesiredWeight" in desired:
            weights[variant] = desired["DesiredWeight"]
        if "DesiredInstanceCount" in desired:
            count = desired["DesiredInstanceCount"]
            if count > MAX_WORKERS_PER_VARIANT:
                raise ERRORS.ResourceLimitExceeded(_over_limit(variant, count))
            workers[variant] = count
    await ctx.endpoints.update_weights_and_capacities(name, weights, workers)
    return {"EndpointArn": ctx.models.arn("endpoint", name)}


async def delete_endpoint(ctx: Context, args: dict) -> dict:
    """Answers once the endpoint is ``Deleting``; its workers drain in the background,
    then it is gone (``endpoint_deleted`` waits for that)."""
    name = args["EndpointName"]
    _endpoint(ctx, name)
    task = asyncio.get_running_loop().create_task(ctx.endpoints.delete_endpoint(name))
    _deletions.add(task)
    task.add_done_callback(_deletions.discard)
    await asyncio.sleep(0)  # let the deletion mark the endpoint Deleting before we answer
    ctx.models.drop_side("endpoint", name)
    return {}


OPERATIONS = {
    "CreateModel": Handler(create_model),
    "DescribeModel": Handler(describe_model),
    "ListModels": Handler(list_models),
    "DeleteModel": Handler(delete_model),
    "CreateEndpointConfig": Handler(create_endpoint_config),
    "DescribeEndpointConfig": Handler(describe_endpoint_config),
    "ListEndpointConfigs": Handler(list_endpoint_configs),
    "DeleteEndpointConfig": Handler(delete_endpoint_config),
    "CreateEndpoint": Handler(create_endpoint),
    "DescribeEndpoint": Handler(describe_endpoint),
    "ListEndpoints": Handler(list_endpoints),
    "UpdateEndpoint": Handler(update_endpoint, conflict="ValidationException"),
    "UpdateEndpointWeightsAndCapacities": Handler(update_endpoint_weights_and_capacities,
                                                    conflict="ValidationException"),
    "DeleteEndpoint": Handler(delete_endpoint),
}


# ---------------------------------------------------------------------- helpers

def _config(ctx: Context, name: str) -> dict:
    try:
        return ctx.endpoints.describe_endpoint_config(name)
    except NotFoundError:
        raise validation(f"Could not find endpoint configuration \""
                         f"{ctx.models.arn('endpoint-config', name)}\".") from None


def _endpoint(ctx: Context, name: str) -> dict:
    try:
        return ctx.endpoints.describe_endpoint(name)
    except NotFoundError:
        raise validation(f"Could not find endpoint \"{ctx.models.arn('endpoint', name)}\".") \
            from None


def _render_endpoint(ctx: Context, endpoint: dict) -> dict:
    variants = [{"VariantName": v["variant_name"], "CurrentWeight": v["current_weight"],
                 "DesiredWeight": v["desired_weight"],
                 "CurrentInstanceCount": v["current_workers"],
                 "DesiredInstanceCount": v["desired_workers"]} for v in endpoint["variants"]]
    answer = {"EndpointName": endpoint["name"],
              "EndpointArn": ctx.models.arn("endpoint", endpoint["name"]),
              "EndpointConfigName": endpoint["config"], "ProductionVariants": variants,
              "EndpointStatus": endpoint["status"],
              "CreationTime": epoch(endpoint["created_at"]),
              "LastModifiedTime": epoch(endpoint["modified_at"])}
    if endpoint["failure_reason"]:
        answer["FailureReason"] = endpoint["failure_reason"]
    return answer


def _over_limit(variant: str, count: int) -> str:
    return (f"variant {variant!r} asks for {count} instances; forestream runs at most "
            f"{MAX_WORKERS_PER_VARIANT} worker processes per variant")

