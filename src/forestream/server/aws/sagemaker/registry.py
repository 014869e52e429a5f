"""SageMaker Model Registry over :class:`ModelRegistry`: package groups and versions.

A model package group is a registry group; a versioned model package is a registry
version (``ModelPackageVersion`` = the version number, ARN
``arn:aws:sagemaker:<region>:000000000000:model-package/<group>/<version>``).
``CreateModelPackage`` imports ``InferenceSpecification.Containers[0].ModelDataUrl`` (the
container ``Environment`` rules of :mod:`forestream.models.registry.sagemaker_models` apply,
``FORESTREAM_TRUST`` included); ``MetadataProperties`` become the version's immutable
metadata (CommitId → commit, Repository → repository, GeneratedBy → generated_by),
``CustomerMetadataProperties`` its customer metadata, ``Tags`` its tags; the rest of the
request (the inference specification, ``ModelMetrics``, ...) is recorded and described
back. ``ModelPackageStatus`` is the import status: Completed (Ready), Failed,
InProgress (Importing). Unversioned model packages are not supported.

Missing groups and packages answer ``ResourceNotFound``; a group name in use
``ResourceInUse``; deleting a group that has versions, or approving a version that did
not import, ``ConflictException``.
"""

from __future__ import annotations

from forestream.models.registry.sagemaker_models import model_data_url

from .common import Context, Handler, epoch, listing, tag_map, validation

PACKAGE_STATUS = {"Ready": "Completed", "Failed": "Failed", "Importing": "InProgress"}
METADATA_KEYS = {"CommitId": "commit", "Repository": "repository",
                 "GeneratedBy": "generated_by"}
_PAGE = 1000


def create_model_package_group(ctx: Context, args: dict) -> dict:
    name = args["ModelPackageGroupName"]
    ctx.registry.create_group(name, args.get("ModelPackageGroupDescription", ""),
                              tag_map(args.get("Tags")), created_by="sagemaker")
    return {"ModelPackageGroupArn": ctx.models.arn("model-package-group", name)}


def describe_model_package_group(ctx: Context, args: dict) -> dict:
    group = ctx.registry.describe_group(_group_name(args["ModelPackageGroupName"]))
    return {**_render_group(ctx, group), "CreatedBy": {}}


def list_model_package_groups(ctx: Context, args: dict) -> dict:
    groups, token = [], None
    while True:
        page = ctx.registry.list_groups(_PAGE, token)
        groups += page["groups"]
        token = page["next_token"]
        if not token:
            break
    items = [_render_group(ctx, g) for g in groups]
    summaries, token = listing("ListModelPackageGroups", items, args,
                               name_key="ModelPackageGroupName",
                               sort_keys={"Name": "ModelPackageGroupName",
                                          "CreationTime": "CreationTime"})
    return {"ModelPackageGroupSummaryList": summaries,
            **({"NextToken": token} if token else {})}


def delete_model_package_group(ctx: Context, args: dict) -> dict:
    ctx.registry.delete_group(_group_name(args["ModelPackageGroupName"]))
    return {}


def create_model_package(ctx: Context, args: dict) -> dict:
    group = args.get("ModelPackageGroupName")
    if group is None:
        raise validation("ModelPackageGroupName is required: forestream keeps versioned "
                         "model packages only (unversioned ModelPackageName is not supported)")
    group = _group_name(group)
    containers = (args.get("InferenceSpecification") or {}).get("Containers") or []
    if len(containers) != 1:
        raise validation("InferenceSpecification.Containers must hold exactly one container "
                         f"with ModelDataUrl; got {len(containers)}")
    source = model_data_url(containers[0])
    if source is None:
        raise validation("InferenceSpecification.Containers[0] needs ModelDataUrl "
                         "(s3://bucket/key/model.tar.gz): forestream does not run images")
    ctx.registry.describe_group(group)  # ResourceNotFound before anything is imported
    metadata = {METADATA_KEYS[k]: v for k, v in (args.get("MetadataProperties") or {}).items()
                if k in METADATA_KEYS}
    version = ctx.models.import_artifact(
        group, source, containers[0].get("Environment") or {},
        created_by="sagemaker:CreateModelPackage", metadata=metadata,
        customer_metadata=args.get("CustomerMetadataProperties"),
        tags=tag_map(args.get("Tags")), description=args.get("ModelPackageDescription", ""))
    if args.get("ModelApprovalStatus", "PendingManualApproval") != "PendingManualApproval":
        version = ctx.registry.update_version(group, version["version"],
                                              approval_status=args["ModelApprovalStatus"],
                                              updated_by="sagemaker")
    recorded = {k: v for k, v in args.items() if k not in (
        "ModelPackageGroupName", "ModelPackageDescription", "CustomerMetadataProperties",
        "Tags", "ModelApprovalStatus", "ClientToken")}
    ctx.models.put_side("model-package", f"{group}/{version['version']}",
                        version["created_at"], recorded)
    return {"ModelPackageArn": ctx.models.package_arn(group, version["version"])}


def describe_model_package(ctx: Context, args: dict) -> dict:
    group, number = ctx.models.parse_package(args["ModelPackageName"])
    version = ctx.registry.describe_version(group, number)
    side = ctx.models.side("model-package", f"{group}/{number}", version["created_at"])
    status = PACKAGE_STATUS[version["status"]]
    check = {"Name": "forestream-load", "Status": "Completed" if status == "Completed" else
             status if status == "Failed" else "InProgress"}
    if version["failure_reason"]:
        check["FailureReason"] = version["failure_reason"]
    spec = side.get("InferenceSpecification") or {
        "Containers": [{"Image": f"forestream/{version['framework']}",
                        **({"ModelDataUrl": version["source_uri"]}
                           if str(version["source_uri"]).startswith("s3://") else {})}]}
    metadata = {k: version["metadata"][v] for k, v in METADATA_KEYS.items()
                if version["metadata"].get(v)}
    metadata.update({k: v for k, v in (side.get("MetadataProperties") or {}).items()
                     if k not in METADATA_KEYS})
    answer = {**_render_version(ctx, version), "InferenceSpecification": spec,
              "ModelPackageStatusDetails": {"ValidationStatuses": [check]},
              "CertifyForMarketplace": False,
              "ApprovalDescription": version["approval_description"],
              "CustomerMetadataProperties": version["customer_metadata"],
              "LastModifiedTime": epoch(version["updated_at"]), "CreatedBy": {}}
    if metadata:
        answer["MetadataProperties"] = metadata
    for key in ("ModelMetrics", "Domain", "Task", "SamplePayloadUrl", "DriftCheckBaselines",
                "SourceUri"):
        if key in side:
            answer[key] = side[key]
    return answer


def list_model_packages(ctx: Context, args: dict) -> dict:
    if args.get("ModelPackageType") == "Unversioned":
        return {"ModelPackageSummaryList": []}
    group = args.get("ModelPackageGroupName")
    versions, token = [], None
    while True:
        page = ctx.registry.list_versions(
            group=_group_name(group) if group else None,
            approval_status=args.get("ModelApprovalStatus"), limit=_PAGE, next_token=token)
        versions += page["versions"]
        token = page["next_token"]
        if not token:
            break
    items = [_render_version(ctx, v) for v in versions]
    summaries, token = listing("ListModelPackages", items, args,
                               name_key="ModelPackageGroupName",
                               sort_keys={"Name": "ModelPackageGroupName",
                                          "CreationTime": "CreationTime"},
                               default_order="Ascending")
    return {"ModelPackageSummaryList": summaries, **({"NextToken": token} if token else {})}


def update_model_package(ctx: Context, args: dict) -> dict:
    group, number = ctx.models.parse_package(args["ModelPackageArn"])
    unsupported = sorted(set(args) & {"AdditionalInferenceSpecificationsToAdd",
                                      "InferenceSpecification", "ModelCard", "SourceUri"})
    if unsupported:
        raise validation(f"UpdateModelPackage cannot change {', '.join(unsupported)} here; "
                         "accepted: ModelApprovalStatus, ApprovalDescription, "
                         "CustomerMetadataProperties, CustomerMetadataPropertiesToRemove")
    ctx.registry.update_version(
        group, number, approval_status=args.get("ModelApprovalStatus"),
        approval_description=args.get("ApprovalDescription"),
        customer_metadata=args.get("CustomerMetadataProperties"),
        remove_customer_metadata=tuple(args.get("CustomerMetadataPropertiesToRemove", ())),
        updated_by="sagemaker")
    return {"ModelPackageArn": ctx.models.package_arn(group, number)}


_REGISTRY = dict(not_found="ResourceNotFound", conflict="ConflictException")
OPERATIONS = {
    "CreateModelPackageGroup": Handler(create_model_package_group),
    "DescribeModelPackageGroup": Handler(describe_model_package_group, **_REGISTRY),
    "ListModelPackageGroups": Handler(list_model_package_groups, **_REGISTRY),
    "DeleteModelPackageGroup": Handler(delete_model_package_group, **_REGISTRY),
    "CreateModelPackage": Handler(create_model_package, **_REGISTRY),
    "DescribeModelPackage": Handler(describe_model_package, **_REGISTRY),
    "ListModelPackages": Handler(list_model_packages, **_REGISTRY),
    "UpdateModelPackage": Handler(update_model_package, **_REGISTRY),
}


# ---------------------------------------------------------------------- helpers

def _group_name(name: str) -> str:
    """A group name, or the name at the end of a model package group ARN."""
    return name.rsplit("/", 1)[-1] if name.startswith("arn:") else name


def _render_group(ctx: Context, group: dict) -> dict:
    return {"ModelPackageGroupName": group["name"],
            "ModelPackageGroupArn": ctx.models.arn("model-package-group", group["name"]),
            "ModelPackageGroupDescription": group["description"],
            "CreationTime": epoch(group["created_at"]), "ModelPackageGroupStatus": "Completed"}


def _render_version(ctx: Context, version: dict) -> dict:
    return {"ModelPackageName": version["group"], "ModelPackageGroupName": version["group"],
            "ModelPackageVersion": version["version"],
            "ModelPackageArn": ctx.models.package_arn(version["group"], version["version"]),
            "ModelPackageDescription": version["description"],
            "CreationTime": epoch(version["created_at"]),
            "ModelPackageStatus": PACKAGE_STATUS[version["status"]],
            "ModelApprovalStatus": version["approval_status"]}
