"""boto3's ``sagemaker`` client against a real ``forestream server`` process: models from
``s3://`` archives on a real moto S3 server, endpoint configs, endpoints, waiters,
invocations through ``sagemaker-runtime``, and the Model Registry — mapped onto the same
registry versions and endpoints that ``/api/v1`` shows."""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
import uuid
from types import SimpleNamespace

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from registry_factories import MotoS3

from server_support import ServerProcess

pytestmark = pytest.mark.service

FAST_WAIT = {"Delay": 0.3, "MaxAttempts": 100}
TRUST = {"FORESTREAM_TRUST": "true"}
ROWS = np.random.default_rng(7).normal(size=(6, 4))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A moto S3 server holding a scikit-learn model.tar.gz, and a forestream server that
    reads S3 there; clients for both SageMaker APIs."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 4))
    model = LogisticRegression().fit(features, (features[:, 0] - features[:, 2] > 0))
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        info = tarfile.TarInfo("model.joblib")
        info.size = len(buffer.getvalue())
        tar.addfile(info, io.BytesIO(buffer.getvalue()))
    with MotoS3() as s3:
        s3.client.put_object(Bucket="models", Key="churn/model.tar.gz",
                             Body=archive.getvalue())
        env = {"FORESTREAM_S3_ENDPOINT_URL": s3.endpoint_url, "AWS_ACCESS_KEY_ID": "test",
               "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
        server = ServerProcess(tmp_path_factory.mktemp("sagemaker") / "data", env).start()
        try:
            yield SimpleNamespace(
                server=server, model=model, url="s3://models/churn/model.tar.gz",
                sm=client("sagemaker", server.url), runtime=client("sagemaker-runtime",
                                                                   server.url),
                unchecked=client("sagemaker", server.url, parameter_validation=False))
        finally:
            server.stop()


def client(service: str, url: str, key: str = "test", secret: str = "test", **config):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(retries={"max_attempts": 1}, **config))


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rest(stack, path: str):
    """GET on forestream's own REST API: (status, JSON)."""
    try:
        with urllib.request.urlopen(stack.server.request(f"{path}")) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def error_of(call, **kwargs) -> tuple[str, str]:
    with pytest.raises(ClientError) as info:
        call(**kwargs)
    error = info.value.response["Error"]
    return error["Code"], error["Message"]


def csv(rows: np.ndarray) -> str:
    return "\n".join(",".join(repr(float(x)) for x in row) for row in rows)


# ------------------------------------------------------------------------ hosting

def test_model_from_s3_archive_is_deployed_served_reweighted_and_deleted(stack):
    sm, model_name, name = stack.sm, unique("churn"), unique("ep")
    arn = sm.create_model(ModelName=model_name,
                          ExecutionRoleArn="arn:aws:iam::000000000000:role/deploy",
                          PrimaryContainer={"Image": "sklearn:1.2", "ModelDataUrl": stack.url,
                                            "Environment": TRUST})["ModelArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:model/{model_name}"
    described = sm.describe_model(ModelName=model_name)
    assert described["PrimaryContainer"]["ModelDataUrl"] == stack.url
    assert described["PrimaryContainer"]["Image"] == "sklearn:1.2"
    # the model is registry version 1 of the group named after it
    status, version = rest(stack, f"/api/v1/models/groups/{model_name}/versions/1")
    assert status == 200 and (version["status"], version["source_uri"]) == ("Ready", stack.url)

    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "blue", "ModelName": model_name, "InitialInstanceCount": 1,
         "InitialVariantWeight": 1.0, "InstanceType": "ml.m5.large"},
        {"VariantName": "green", "ModelName": model_name, "InitialInstanceCount": 1,
         "InitialVariantWeight": 1.0, "InstanceType": "ml.m5.large"}])
    config = sm.describe_endpoint_config(EndpointConfigName=name)
    assert [(v["VariantName"], v["ModelName"], v["InstanceType"])
            for v in config["ProductionVariants"]] == [
        ("blue", model_name, "ml.m5.large"), ("green", model_name, "ml.m5.large")]
    sm.create_endpoint(EndpointName=name, EndpointConfigName=name)
    assert sm.describe_endpoint(EndpointName=name)["EndpointStatus"] in ("Creating",
                                                                         "InService")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
    endpoint = sm.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointStatus"] == "InService"
    assert [(v["VariantName"], v["CurrentInstanceCount"], v["DesiredInstanceCount"],
             v["CurrentWeight"]) for v in endpoint["ProductionVariants"]] == [
        ("blue", 1, 1, 1.0), ("green", 1, 1, 1.0)]
    # the same endpoint, through forestream's REST API
    status, same = rest(stack, f"/api/v1/endpoints/{name}")
    assert status == 200 and same["config"] == name
    assert {v["model"] for v in same["variants"]} == {f"{model_name}:1"}

    answer = stack.runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                           Body=csv(ROWS))
    assert json.loads(answer["Body"].read()) == stack.model.predict(ROWS).tolist()

    sm.update_endpoint_weights_and_capacities(EndpointName=name, DesiredWeightsAndCapacities=[
        {"VariantName": "blue", "DesiredWeight": 0.0},
        {"VariantName": "green", "DesiredWeight": 2.0, "DesiredInstanceCount": 2}])
    variants = {v["VariantName"]: v for v in
                sm.describe_endpoint(EndpointName=name)["ProductionVariants"]}
    assert (variants["blue"]["CurrentWeight"], variants["green"]["CurrentWeight"]) == (0.0, 2.0)
    assert variants["green"]["CurrentInstanceCount"] == 2
    served = {stack.runtime.invoke_endpoint(EndpointName=name, ContentType="text/csv",
                                            Body=csv(ROWS[:1]))["InvokedProductionVariant"]
              for _ in range(8)}
    assert served == {"green"}

    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
    assert name not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]
    sm.delete_endpoint_config(EndpointConfigName=name)
    sm.delete_model(ModelName=model_name)
    assert error_of(sm.describe_model, ModelName=model_name)[0] == "ValidationException"
    # the version the model imported went with it: nothing is left behind
    assert rest(stack, f"/api/v1/models/groups/{model_name}")[0] == 404


def test_endpoint_update_switches_to_a_new_config(stack):
    sm, model_name, name = stack.sm, unique("upd"), unique("ep")
    sm.create_model(ModelName=model_name, PrimaryContainer={"ModelDataUrl": stack.url,
                                                            "Environment": TRUST})
    for config, variant in ((f"{name}-a", "a"), (f"{name}-b", "b")):
        sm.create_endpoint_config(EndpointConfigName=config, ProductionVariants=[
            {"VariantName": variant, "ModelName": model_name, "InitialInstanceCount": 1}])
    sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-a")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
    # a config in use cannot go
    assert error_of(sm.delete_endpoint_config,
                    EndpointConfigName=f"{name}-a")[0] == "ResourceInUse"
    sm.update_endpoint(EndpointName=name, EndpointConfigName=f"{name}-b")
    sm.get_waiter("endpoint_in_service").wait(EndpointName=name, WaiterConfig=FAST_WAIT)
    endpoint = sm.describe_endpoint(EndpointName=name)
    assert endpoint["EndpointConfigName"] == f"{name}-b"
    assert [v["VariantName"] for v in endpoint["ProductionVariants"]] == ["b"]
    sm.delete_endpoint(EndpointName=name)
    sm.get_waiter("endpoint_deleted").wait(EndpointName=name, WaiterConfig=FAST_WAIT)


def test_pickle_without_the_trust_flag_is_refused_and_leaves_nothing(stack):
    model_name = unique("untrusted")
    code, message = error_of(stack.sm.create_model, ModelName=model_name,
                             PrimaryContainer={"ModelDataUrl": stack.url})
    assert code == "ValidationException"
    assert "FORESTREAM_TRUST" in message and "model.joblib" in message
    assert model_name not in [m["ModelName"] for m in stack.sm.list_models(
        MaxResults=100)["Models"]]
    assert rest(stack, f"/api/v1/models/groups/{model_name}")[0] == 404


# ------------------------------------------------------------------------ registry

def test_model_package_approval_is_the_registry_version_approval(stack):
    sm, group = stack.sm, unique("reg")
    sm.create_model_package_group(ModelPackageGroupName=group,
                                  ModelPackageGroupDescription="churn models")
    arn = sm.create_model_package(
        ModelPackageGroupName=group, ModelPackageDescription="march retrain",
        InferenceSpecification={"Containers": [{"Image": "sklearn", "ModelDataUrl": stack.url,
                                                "Environment": TRUST}],
                                "SupportedContentTypes": ["text/csv"],
                                "SupportedResponseMIMETypes": ["application/json"]},
        MetadataProperties={"CommitId": "4f2a9c1"},
        CustomerMetadataProperties={"owner": "risk", "stage": "dev"})["ModelPackageArn"]
    assert arn == f"arn:aws:sagemaker:us-east-1:000000000000:model-package/{group}/1"
    package = sm.describe_model_package(ModelPackageName=arn)
    assert (package["ModelPackageVersion"], package["ModelPackageStatus"],
            package["ModelApprovalStatus"]) == (1, "Completed", "PendingManualApproval")
    assert package["InferenceSpecification"]["SupportedContentTypes"] == ["text/csv"]
    assert package["MetadataProperties"] == {"CommitId": "4f2a9c1"}

    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved",
                            ApprovalDescription="AUC 0.91",
                            CustomerMetadataProperties={"stage": "prod"},
                            CustomerMetadataPropertiesToRemove=["owner"])
    status, version = rest(stack, f"/api/v1/models/groups/{group}/versions/1")
    assert status == 200
    assert (version["approval_status"], version["approval_description"]) == ("Approved",
                                                                             "AUC 0.91")
    assert version["customer_metadata"] == {"stage": "prod"}
    assert version["metadata"]["commit"] == "4f2a9c1"
    assert rest(stack, f"/api/v1/models/groups/{group}/latest-approved")[1]["version"] == 1
    approved = sm.list_model_packages(ModelPackageGroupName=group,
                                      ModelApprovalStatus="Approved")
    assert [p["ModelPackageArn"] for p in approved["ModelPackageSummaryList"]] == [arn]

    # a model made from the package serves that very version, and imports nothing
    sm.create_model(ModelName=f"{group}-m", PrimaryContainer={"ModelPackageName": arn})
    assert sm.describe_model(ModelName=f"{group}-m")["PrimaryContainer"][
        "ModelPackageName"] == arn
    assert rest(stack, f"/api/v1/models/groups/{group}")[1]["version_count"] == 1
    code, _ = error_of(sm.delete_model_package_group, ModelPackageGroupName=group)
    assert code == "ConflictException"  # it still has a version


def test_lists_filter_sort_and_paginate(stack):
    sm, prefix = stack.sm, unique("page")
    for i in range(5):
        sm.create_model_package_group(ModelPackageGroupName=f"{prefix}-{i}")
    paginator = sm.get_paginator("list_model_package_groups")
    pages = list(paginator.paginate(NameContains=prefix, SortBy="Name", SortOrder="Ascending",
                                    PaginationConfig={"PageSize": 2}))
    assert [len(p["ModelPackageGroupSummaryList"]) for p in pages] == [2, 2, 1]
    assert [g["ModelPackageGroupName"] for p in pages
            for g in p["ModelPackageGroupSummaryList"]] == [f"{prefix}-{i}" for i in range(5)]
    newest = sm.list_model_package_groups(NameContains=prefix.upper(), MaxResults=1)
    assert newest["ModelPackageGroupSummaryList"][0]["ModelPackageGroupName"] == f"{prefix}-4"

    arn = sm.create_model_package(ModelPackageGroupName=f"{prefix}-0", InferenceSpecification={
        "Containers": [{"ModelDataUrl": stack.url, "Environment": TRUST}]})["ModelPackageArn"]
    for i in range(3):
        sm.create_model(ModelName=f"{prefix}-m{i}", PrimaryContainer={"ModelPackageName": arn})
    first = sm.list_models(NameContains=prefix, SortBy="Name", SortOrder="Descending",
                           MaxResults=2)
    assert [m["ModelName"] for m in first["Models"]] == [f"{prefix}-m2", f"{prefix}-m1"]
    rest_of = sm.list_models(NameContains=prefix, SortBy="Name", SortOrder="Descending",
                             MaxResults=2, NextToken=first["NextToken"])
    assert [m["ModelName"] for m in rest_of["Models"]] == [f"{prefix}-m0"]
    assert "NextToken" not in rest_of
    assert error_of(sm.list_models, NextToken="bogus")[0] == "ValidationException"


# ------------------------------------------------------------------------ bad input

def test_bad_input_answers_aws_errors_naming_the_value(stack):
    sm, raw, name = stack.sm, stack.unchecked, unique("bad")
    code, message = error_of(sm.create_endpoint_config, EndpointConfigName=name,
                             ProductionVariants=[{"VariantName": "v", "ModelName": "nosuch",
                                                  "InitialInstanceCount": 1}])
    assert code == "ValidationException" and "model/nosuch" in message
    # the server's own check, past boto3's client-side validation
    code, message = error_of(raw.create_endpoint_config, EndpointConfigName=name,
                             ProductionVariants=[{"VariantName": "v", "ModelName": "x",
                                                  "InitialVariantWeight": -1.0}])
    assert code == "ValidationException"
    assert "'-1.0' at 'productionVariants.1.member.initialVariantWeight'" in message
    code, message = error_of(sm.describe_endpoint, EndpointName="absent")
    assert (code, message) == ("ValidationException", 'Could not find endpoint '
                               '"arn:aws:sagemaker:us-east-1:000000000000:endpoint/absent".')
    assert error_of(sm.describe_model_package,
                    ModelPackageName="absent/1")[0] == "ResourceNotFound"

    sm.create_model_package_group(ModelPackageGroupName=name)
    assert error_of(sm.create_model_package_group,
                    ModelPackageGroupName=name)[0] == "ResourceInUse"
    arn = sm.create_model_package(ModelPackageGroupName=name, InferenceSpecification={
        "Containers": [{"ModelDataUrl": stack.url, "Environment": TRUST}]})["ModelPackageArn"]
    sm.create_model(ModelName=name, PrimaryContainer={"ModelPackageName": arn})
    assert error_of(sm.create_model, ModelName=name,
                    PrimaryContainer={"ModelPackageName": arn})[0] == "ResourceInUse"
    code, message = error_of(sm.create_endpoint_config, EndpointConfigName=name,
                             ProductionVariants=[{"VariantName": "v", "ModelName": name,
                                                  "InitialInstanceCount": 100}])
    assert code == "ResourceLimitExceeded" and "100" in message
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "v", "ModelName": name, "InitialInstanceCount": 1}])
    assert error_of(sm.create_endpoint_config, EndpointConfigName=name, ProductionVariants=[
        {"VariantName": "v", "ModelName": name}])[0] == "ResourceInUse"
    code, message = error_of(sm.create_model, ModelName=unique("img"),
                             PrimaryContainer={"Image": "my/serving:latest"})
    assert code == "ValidationException" and "my/serving:latest" in message
    code, message = error_of(sm.create_model, ModelName=unique("env"), PrimaryContainer={
        "ModelDataUrl": stack.url, "Environment": {"SAGEMAKER_PROGRAM": "serve.py"}})
    assert code == "ValidationException" and "serve.py" in message


def test_signed_requests_are_required_when_credentials_are_configured(server_process,
                                                                      tmp_path):
    server = server_process(tmp_path / "data", {"FORESTREAM_ACCESS_KEY_ID": "AKIDLOCAL",
                                                "FORESTREAM_SECRET_ACCESS_KEY": "s3cr3t"})
    server.start()
    good = client("sagemaker", server.url, "AKIDLOCAL", "s3cr3t")
    assert good.list_models()["Models"] == []
    wrong = client("sagemaker", server.url, "AKIDLOCAL", "not-the-secret")
    with pytest.raises(ClientError) as info:
        wrong.list_models()
    assert info.value.response["Error"]["Code"] == "InvalidSignatureException"
    # AWS's JSON protocol answers client errors, these included, with 400
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
