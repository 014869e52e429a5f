"""boto3 against a real ``forestream server`` process: the Kinesis API unchanged."""

import base64
import json
import time
import urllib.error
import urllib.request
import uuid

import boto3
import botocore.exceptions
import cbor2
import pytest
from botocore.config import Config

from aws_signing import signed_headers
from server_support import active_consumer

pytestmark = pytest.mark.service


def error_code(excinfo) -> str:
    return excinfo.value.response["Error"]["Code"]


def create(kinesis, name, shards=2):
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name,
                                             WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})


def test_stream_lifecycle_with_waiters(kinesis):
    kinesis.create_stream(StreamName="life", ShardCount=3)
    status = kinesis.describe_stream_summary(StreamName="life")
    assert status["StreamDescriptionSummary"]["StreamStatus"] == "CREATING"
    kinesis.get_waiter("stream_exists").wait(StreamName="life",
                                             WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    summary = kinesis.describe_stream_summary(StreamName="life")["StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE" and summary["OpenShardCount"] == 3
    arn = summary["StreamARN"]
    assert kinesis.describe_stream(StreamARN=arn)["StreamDescription"]["StreamName"] == "life"
    kinesis.delete_stream(StreamName="life")
    kinesis.get_waiter("stream_not_exists").wait(StreamName="life",
                                                 WaiterConfig={"Delay": 0.1, "MaxAttempts": 50})
    with pytest.raises(botocore.exceptions.ClientError) as exc:
        kinesis.describe_stream(StreamName="life")
    assert error_code(exc) == "ResourceNotFoundException"


def test_put_get_round_trip_with_every_iterator_type(kinesis):
    create(kinesis, "rt", 1)
    first = kinesis.put_record(StreamName="rt", Data=b"a", PartitionKey="k")
    out = kinesis.put_records(StreamName="rt", Records=[
        {"Data": bytes([i]) * 100, "PartitionKey": f"k{i}"} for i in range(50)])
    assert out["FailedRecordCount"] == 0 and len(out["Records"]) == 50
    shard = first["ShardId"]
    it = kinesis.get_shard_iterator(StreamName="rt", ShardId=shard,
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = kinesis.get_records(ShardIterator=it, Limit=1000)
    assert [r["Data"] for r in page["Records"]] == [b"a"] + [bytes([i]) * 100 for i in range(50)]
    assert page["MillisBehindLatest"] == 0
    after = kinesis.get_shard_iterator(StreamName="rt", ShardId=shard,
                                       ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                       StartingSequenceNumber=first["SequenceNumber"])
    assert kinesis.get_records(ShardIterator=after["ShardIterator"])["Records"][0]["Data"] == \
        b"\x00" * 100
    stamp = page["Records"][10]["ApproximateArrivalTimestamp"]
    at = kinesis.get_shard_iterator(StreamName="rt", ShardId=shard,
                                    ShardIteratorType="AT_TIMESTAMP", Timestamp=stamp)
    assert len(kinesis.get_records(ShardIterator=at["ShardIterator"])["Records"]) >= 41


def test_pagination_walks_every_page(kinesis):
    for i in range(5):
        kinesis.create_stream(StreamName=f"p{i}", ShardCount=2)
    pages = list(kinesis.get_paginator("list_streams").paginate(PaginationConfig={
        "PageSize": 2}))
    assert len(pages) == 3
    assert [n for p in pages for n in p["StreamNames"]] == [f"p{i}" for i in range(5)]
    # ListShards pages by NextToken alone (it names the stream): as on AWS, a StreamName
    # beside it is refused, so boto3's paginator (which resends it) stops at page two
    kinesis.get_waiter("stream_exists").wait(StreamName="p0", WaiterConfig={"Delay": 0.1})
    first = kinesis.list_shards(StreamName="p0", MaxResults=1)
    second = kinesis.list_shards(NextToken=first["NextToken"], MaxResults=1)
    assert [s["ShardId"] for s in first["Shards"] + second["Shards"]] == \
        ["shardId-000000000000", "shardId-000000000001"] and "NextToken" not in second
    with pytest.raises(kinesis.exceptions.InvalidArgumentException,
                       match="NextToken and StreamName cannot be provided together"):
        list(kinesis.get_paginator("list_shards").paginate(
            StreamName="p0", PaginationConfig={"PageSize": 1}))


def test_resharding_lineage_and_child_shards(kinesis):
    create(kinesis, "rs", 1)
    kinesis.put_record(StreamName="rs", Data=b"old", PartitionKey="k")
    kinesis.split_shard(StreamName="rs", ShardToSplit="shardId-000000000000",
                        NewStartingHashKey=str(2**127))
    assert kinesis.describe_stream_summary(StreamName="rs")["StreamDescriptionSummary"][
        "StreamStatus"] == "UPDATING"
    kinesis.get_waiter("stream_exists").wait(StreamName="rs", WaiterConfig={"Delay": 0.1})
    it = kinesis.get_shard_iterator(StreamName="rs", ShardId="shardId-000000000000",
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    page = kinesis.get_records(ShardIterator=it)
    assert [r["Data"] for r in page["Records"]] == [b"old"]
    assert "NextShardIterator" not in page
    assert {c["ShardId"] for c in page["ChildShards"]} == {"shardId-000000000001",
                                                           "shardId-000000000002"}
    latest = kinesis.list_shards(StreamName="rs", ShardFilter={"Type": "AT_LATEST"})["Shards"]
    assert [s["ShardId"] for s in latest] == ["shardId-000000000001", "shardId-000000000002"]
    out = kinesis.update_shard_count(StreamName="rs", TargetShardCount=4,
                                     ScalingType="UNIFORM_SCALING")
    assert out["TargetShardCount"] == 4


def test_errors_use_aws_shapes(kinesis, server):
    create(kinesis, "err", 1)
    cases = [
        (lambda: kinesis.describe_stream(StreamName="missing"), "ResourceNotFoundException"),
        (lambda: kinesis.create_stream(StreamName="err", ShardCount=1),
         "ResourceInUseException"),
        (lambda: kinesis.create_stream(StreamName="bad/name", ShardCount=1),
         "ValidationException"),
        (lambda: kinesis.put_record(StreamName="err", Data=b"x" * (2**20), PartitionKey="k"),
         "InvalidArgumentException"),
        (lambda: kinesis.get_records(ShardIterator="bm90LWFuLWl0ZXJhdG9y"),
         "InvalidArgumentException"),
        (lambda: kinesis.decrease_stream_retention_period(StreamName="err",
                                                         RetentionPeriodHours=10),
         "InvalidArgumentException"),
        (lambda: kinesis.increase_stream_retention_period(StreamName="err",
                                                         RetentionPeriodHours=9000),
         "InvalidArgumentException"),
    ]
    answers = []
    for call, code in cases:
        with pytest.raises(botocore.exceptions.ClientError) as exc:
            call()
        assert error_code(exc) == code, exc.value
        assert exc.value.response["Error"]["Message"]
        answers.append(exc.value.response["ResponseMetadata"])
    summary = kinesis.describe_stream_summary(StreamName="err")
    assert summary["StreamDescriptionSummary"]["RetentionPeriodHours"] == 24
    # every answer, error or not, carries its own request id (a UUID 4, as AWS's) and an
    # extended id of 72 random bytes
    answers.append(summary["ResponseMetadata"])
    ids = [a["RequestId"] for a in answers]
    assert len(set(ids)) == len(ids)
    for answer in answers:
        assert uuid.UUID(answer["RequestId"]).version == 4
        assert str(uuid.UUID(answer["RequestId"])) == answer["RequestId"]
        assert len(base64.b64decode(answer["HTTPHeaders"]["x-amz-id-2"],
                                    validate=True)) == 72
    request = urllib.request.Request(server.url, data=b"{}", method="POST",
                                     headers=signed_headers(server.url, b"{}", {
                                         "X-Amz-Target": "Kinesis_20131202.NoSuchThing",
                                         "Content-Type": "application/x-amz-json-1.1"}))
    with pytest.raises(urllib.error.HTTPError) as http:
        urllib.request.urlopen(request)
    assert json.loads(http.value.read())["__type"] == "UnknownOperationException"


def test_tags_retention_encryption_monitoring_limits(kinesis):
    create(kinesis, "cfg", 1)
    kinesis.add_tags_to_stream(StreamName="cfg", Tags={"a": "1", "b": "2"})
    kinesis.remove_tags_from_stream(StreamName="cfg", TagKeys=["a"])
    assert kinesis.list_tags_for_stream(StreamName="cfg")["Tags"] == [{"Key": "b",
                                                                       "Value": "2"}]
    kinesis.increase_stream_retention_period(StreamName="cfg", RetentionPeriodHours=72)
    kinesis.decrease_stream_retention_period(StreamName="cfg", RetentionPeriodHours=48)
    kinesis.start_stream_encryption(StreamName="cfg", EncryptionType="KMS",
                                    KeyId="alias/aws/kinesis")
    kinesis.get_waiter("stream_exists").wait(StreamName="cfg", WaiterConfig={"Delay": 0.1})
    assert kinesis.put_record(StreamName="cfg", Data=b"s", PartitionKey="k")[
        "EncryptionType"] == "KMS"
    out = kinesis.enable_enhanced_monitoring(StreamName="cfg",
                                             ShardLevelMetrics=["IncomingBytes"])
    assert out["DesiredShardLevelMetrics"] == ["IncomingBytes"]
    limits = kinesis.describe_limits()
    assert limits["OpenShardCount"] == 1 and limits["ShardLimit"] >= 1
    summary = kinesis.describe_stream_summary(StreamName="cfg")["StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 48 and summary["EncryptionType"] == "KMS"
    kinesis.update_max_record_size(StreamARN=summary["StreamARN"], MaxRecordSizeInKiB=2048)
    big = kinesis.put_record(StreamName="cfg", Data=b"x" * (2**20 + 10), PartitionKey="k")
    assert big["SequenceNumber"]


def test_cbor_requests_as_the_java_sdk_sends_them(kinesis, server):
    create(kinesis, "cb", 1)

    def call(operation, body):
        data = cbor2.dumps(body)
        request = urllib.request.Request(server.url, data=data, method="POST",
                                         headers=signed_headers(server.url, data, {
                                             "X-Amz-Target": f"Kinesis_20131202.{operation}",
                                             "Content-Type": "application/x-amz-cbor-1.1"}))
        with urllib.request.urlopen(request) as response:
            assert response.headers["Content-Type"] == "application/x-amz-cbor-1.1"
            return cbor2.loads(response.read())

    put = call("PutRecord", {"StreamName": "cb", "Data": b"\x00\xffbinary", "PartitionKey": "k"})
    it = call("GetShardIterator", {"StreamName": "cb", "ShardId": put["ShardId"],
                                   "ShardIteratorType": "TRIM_HORIZON"})["ShardIterator"]
    records = call("GetRecords", {"ShardIterator": it})["Records"]
    assert records[0]["Data"] == b"\x00\xffbinary"


def test_subscribe_to_shard_streams_events(kinesis):
    create(kinesis, "fan", 1)
    arn = kinesis.describe_stream_summary(StreamName="fan")["StreamDescriptionSummary"][
        "StreamARN"]
    consumer = active_consumer(kinesis, "fan", "c1")
    for i in range(5):
        kinesis.put_record(StreamName="fan", Data=b"e%d" % i, PartitionKey="k")
    response = kinesis.subscribe_to_shard(ConsumerARN=consumer["ConsumerARN"],
                                          ShardId="shardId-000000000000",
                                          StartingPosition={"Type": "TRIM_HORIZON"})
    got = []
    for event in response["EventStream"]:
        got += [r["Data"] for r in event["SubscribeToShardEvent"]["Records"]]
        if len(got) >= 5:
            break
    response["EventStream"].close()
    assert got == [b"e%d" % i for i in range(5)]
    listed = kinesis.list_stream_consumers(StreamARN=arn)["Consumers"]
    assert [c["ConsumerName"] for c in listed] == ["c1"]
    kinesis.deregister_stream_consumer(ConsumerARN=consumer["ConsumerARN"])


def test_metrics_and_health(kinesis, server):
    create(kinesis, "m", 1)
    kinesis.put_records(StreamName="m", Records=[{"Data": b"x", "PartitionKey": "k"}] * 3)
    text = urllib.request.urlopen(server.request("/metrics")).read().decode()
    assert 'forestream_requests_total{operation="PutRecords"} 1' in text
    assert "forestream_records_in_total 3" in text
    assert "forestream_shard_records_in_total" in text
    health = json.loads(urllib.request.urlopen(server.request("/health")).read())
    assert health["status"] == "ok"


def test_signature_v4_is_enforced_when_credentials_are_configured(tmp_path, server_process):
    proc = server_process(tmp_path / "auth", env={"FORESTREAM_ACCESS_KEY_ID": "AKIDTEST",
                                                  "FORESTREAM_SECRET_ACCESS_KEY": "s3cret"})
    proc.start()
    try:
        def client(key, secret):
            return boto3.client("kinesis", endpoint_url=proc.url, region_name="us-east-1",
                                aws_access_key_id=key, aws_secret_access_key=secret,
                                config=Config(retries={"max_attempts": 1}))

        assert client("AKIDTEST", "s3cret").list_streams()["StreamNames"] == []
        for key, secret, code in (("AKIDTEST", "wrong", "InvalidSignatureException"),
                                  ("OTHER", "s3cret", "UnrecognizedClientException")):
            with pytest.raises(botocore.exceptions.ClientError) as exc:
                client(key, secret).list_streams()
            assert error_code(exc) == code
            # AWS's JSON protocol answers client errors, these included, with 400
            assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        request = proc.request("/", data=b"{}", method="POST", headers={
            "X-Amz-Target": "Kinesis_20131202.ListStreams",
            "Content-Type": "application/x-amz-json-1.1"})  # the token is no signature
        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(request)
        assert http.value.code == 400
        assert json.loads(http.value.read())["__type"] == "IncompleteSignatureException"
    finally:
        proc.stop()


def test_remaining_operations_mode_monitoring_resource_tags_describe_paging(kinesis):
    create(kinesis, "misc", 3)
    arn = kinesis.describe_stream_summary(StreamName="misc")["StreamDescriptionSummary"][
        "StreamARN"]
    kinesis.update_stream_mode(StreamARN=arn, StreamModeDetails={"StreamMode": "ON_DEMAND"})
    kinesis.get_waiter("stream_exists").wait(StreamName="misc", WaiterConfig={"Delay": 0.1})
    assert kinesis.describe_stream_summary(StreamName="misc")["StreamDescriptionSummary"][
        "StreamModeDetails"]["StreamMode"] == "ON_DEMAND"
    kinesis.enable_enhanced_monitoring(StreamName="misc", ShardLevelMetrics=["ALL"])
    out = kinesis.disable_enhanced_monitoring(StreamName="misc",
                                              ShardLevelMetrics=["IncomingBytes"])
    assert "IncomingBytes" in out["CurrentShardLevelMetrics"]
    assert "IncomingBytes" not in out["DesiredShardLevelMetrics"]
    kinesis.tag_resource(ResourceARN=arn, Tags={"env": "test", "team": "ml"})
    kinesis.untag_resource(ResourceARN=arn, TagKeys=["team"])
    assert kinesis.list_tags_for_resource(ResourceARN=arn)["Tags"] == [{"Key": "env",
                                                                        "Value": "test"}]
    page = kinesis.describe_stream(StreamName="misc", Limit=2)["StreamDescription"]
    assert len(page["Shards"]) == 2 and page["HasMoreShards"]
    rest = kinesis.describe_stream(StreamName="misc", Limit=2,
                                   ExclusiveStartShardId=page["Shards"][-1]["ShardId"])
    assert [s["ShardId"] for s in rest["StreamDescription"]["Shards"]] == [
        "shardId-000000000002"]
    assert not rest["StreamDescription"]["HasMoreShards"]


def test_throughput_limits_flag_throttles_like_kinesis(tmp_path, server_process):
    proc = server_process(tmp_path / "limits", args=("--throughput-limits",)).start()
    kinesis = boto3.client("kinesis", endpoint_url=proc.url, region_name="us-east-1",
                           aws_access_key_id="a", aws_secret_access_key="b",
                           config=Config(retries={"max_attempts": 1}))
    create(kinesis, "slow", 1)
    results = []
    for _ in range(4):  # 4 x 500 records at once: well over 1,000 records/s for one shard
        out = kinesis.put_records(StreamName="slow", Records=[
            {"Data": b"x", "PartitionKey": str(i)} for i in range(500)])
        results.append(out["FailedRecordCount"])
    assert sum(results) > 0
    failed = [r for r in out["Records"] if "ErrorCode" in r]
    assert failed and failed[0]["ErrorCode"] == "ProvisionedThroughputExceededException"
    time.sleep(1.1)  # the allowance refills
    assert kinesis.put_records(StreamName="slow", Records=[
        {"Data": b"x", "PartitionKey": "k"}])["FailedRecordCount"] == 0


def test_members_forestream_does_not_take_are_refused_by_name(kinesis, server):
    """Members of the current API model the store does not implement (StreamId, DryRun,
    RecordDistributionStrategy) are named in a ValidationException, never ignored: a
    dry run ignored would act for real."""
    create(kinesis, "members", 1)
    data = json.dumps({"StreamName": "members", "Data": "eA==", "PartitionKey": "k",
                       "DryRun": True}).encode()
    request = urllib.request.Request(server.url + "/", method="POST", data=data,
                                     headers=signed_headers(server.url + "/", data, {
                                         "X-Amz-Target": "Kinesis_20131202.PutRecord",
                                         "Content-Type": "application/x-amz-json-1.1"}))
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    body = json.loads(refused.value.read())
    assert refused.value.code == 400 and body["__type"] == "ValidationException"
    assert "DryRun is not supported" in body["message"] and "PartitionKey" in body["message"]
    iterator = kinesis.get_shard_iterator(StreamName="members", ShardId="shardId-000000000000",
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=iterator)["Records"] == []  # nothing written
