"""Kinesis as AWS answers it, down to the protocol layer and the words of its errors.

What AWS's service does with requests SDKs never send (members of the wrong JSON type,
bodies that are not JSON, unknown operations, other methods on ``/``), how it reads loose
shard ids, and the rules of its operations' arguments — each as observed on AWS and
recorded by kinesalite's test suite (github:mhart/kinesalite, run against forestream by
issue 19), restated here in forestream's own words against a real ``forestream server``.
Where the current API model differs from what that suite recorded (StreamName optional,
50 tags, 8760 h retention), forestream keeps the current model.
"""

from __future__ import annotations

import base64
import json
import time

import cbor2
import httpx
import pytest

from forestream.streams.jetstream.local_cluster import JetStreamCluster
from server_support import ServerProcess

boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402

JSON = "application/x-amz-json-1.1"
CBOR = "application/x-amz-cbor-1.1"
TARGET = "Kinesis_20131202."
ACCOUNT = "000000000000"
STREAM = "conf"  # three shards, made once for the module
MAX_HASH = 2**128 - 1
#: A Signature V4 header of AWS's form (servers without credentials verify no more).
SIGNED = {"Authorization": "AWS4-HMAC-SHA256 Credential=k/20250101/us-east-1/kinesis/"
                           "aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
          "X-Amz-Date": "20250101T000000Z"}


def client(url: str):
    return boto3.client("kinesis", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="k", aws_secret_access_key="s",
                        config=Config(retries={"max_attempts": 1}))


@pytest.fixture(scope="module", params=["local", pytest.param("jetstream",
                                                              marks=pytest.mark.service)])
def conf(request, tmp_path_factory):
    """The server the raw requests go to, on each backend: the data directory, or a
    3-node JetStream cluster (3 replicas) behind two front ends — then ``kinesis``
    (boto3) talks to the other front end, so every test that uses both goes through
    two front ends of one cluster."""
    root = tmp_path_factory.mktemp(f"conformance-{request.param}")
    cluster = None
    if request.param == "local":
        servers = [ServerProcess(root / "data").start()]
    else:
        cluster = JetStreamCluster(root / "nats", nodes=3).start()
        env = {"FORESTREAM_STREAMS": cluster.url, "FORESTREAM_STREAMS_REPLICAS": "3"}
        servers = [ServerProcess(root / name, env=env).start() for name in ("a", "b")]
    server = servers[0]
    server.other = servers[-1]  # type: ignore[attr-defined]
    kinesis = client(server.other.url)
    kinesis.create_stream(StreamName=STREAM, ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName=STREAM,
                                             WaiterConfig={"Delay": 0.1})
    yield server
    for each in servers:
        each.stop()
    if cluster is not None:
        cluster.stop()


@pytest.fixture
def kinesis(conf):
    return client(conf.other.url)


def post(server, operation: str | None, body: bytes | dict | None, *,
         content_type: str | None = JSON, headers: dict | None = None,
         method: str = "POST", path: str = "/", signed: bool = True) -> httpx.Response:
    """One raw request to the Kinesis endpoint (``operation`` None: no X-Amz-Target),
    carrying a signature of AWS's form as SDKs' requests do unless ``signed`` is False
    (a default server refuses Kinesis requests without one)."""
    sent = {**(SIGNED if signed else {}), **(headers or {})}
    if operation is not None:
        sent["X-Amz-Target"] = TARGET + operation if "." not in operation else operation
    if content_type is not None:
        sent["Content-Type"] = content_type
    if isinstance(body, dict):
        body = cbor2.dumps(body) if content_type == CBOR else json.dumps(body).encode()
    return httpx.request(method, server.url + path, content=body or b"", headers=sent,
                         timeout=30)


def document(response: httpx.Response):
    if response.headers.get("content-type") == CBOR:
        return cbor2.loads(response.content)
    return response.json()


def error_of(call) -> tuple[str, str]:
    """(code, message) of the ClientError a boto3 call raises."""
    with pytest.raises(Exception) as raised:
        call()
    error = raised.value.response["Error"]
    return error["Code"], error["Message"]


# ----------------------------------------------------------- members of the wrong type

@pytest.mark.parametrize("operation,body,message", [
    ("CreateStream", {"StreamName": True},
     "class java.lang.Boolean can not be converted to an String"),
    ("CreateStream", {"StreamName": 23.5}, "class com.amazon.coral.value.json.numbers."
                                          "TruncatingBigNumber can not be converted to an String"),
    ("CreateStream", {"StreamName": "s", "ShardCount": "3"},
     "class java.lang.String can not be converted to an Integer"),
    ("ListStreams", {"Limit": []}, "Start of list found where not expected"),
    ("DescribeStream", {"StreamName": {}}, "Start of structure or map found where not expected."),
    ("AddTagsToStream", {"StreamName": STREAM, "Tags": "a=b"}, "Expected map or null"),
    ("AddTagsToStream", {"StreamName": STREAM, "Tags": []},
     "Start of list found where not expected"),
    ("RemoveTagsFromStream", {"StreamName": STREAM, "TagKeys": 7}, "Expected list or null"),
    ("ListShards", {"ShardFilter": 7}, "Expected null"),
    ("DeleteStream", {"StreamName": "s", "EnforceConsumerDeletion": "yes"},
     "'YES' can not be converted to an Boolean"),
    ("GetShardIterator", {"Timestamp": "2024-01-01"},
     "class java.lang.String can not be converted to milliseconds since epoch"),
    ("PutRecord", {"Data": 5}, "class com.amazon.coral.value.json.numbers."
                               "TruncatingBigNumber can not be converted to a Blob"),
    ("PutRecord", {"Data": "abcde"}, "'abcde' can not be converted to a Blob: Base64 encoded "
                                     "length is expected a multiple of 4 bytes but found: 5"),
    ("PutRecord", {"Data": "ab=c"}, "'ab=c' can not be converted to a Blob: Invalid Base64 "
                                    "character: '='"),
    ("PutRecord", {"Data": "+/+="}, "'+/+=' can not be converted to a Blob: Invalid last "
                                    "non-pad Base64 character dectected"),
])
def test_a_member_of_the_wrong_type_is_a_serialization_error_in_aws_words(
        conf, operation, body, message):
    answer = post(conf, operation, body)
    assert answer.status_code == 400
    assert answer.json() == {"__type": "SerializationException", "Message": message}
    assert answer.headers["x-amzn-errortype"] == "SerializationException"


def test_the_type_error_comes_before_missing_members_and_over_cbor_in_cbor(conf):
    # GetShardIterator misses ShardId and ShardIteratorType, but AWS stops at the type
    answer = post(conf, "GetShardIterator", {"StreamName": ["x"]}, content_type=CBOR)
    assert answer.status_code == 400 and answer.headers["content-type"] == CBOR
    assert document(answer) == {"__type": "SerializationException",
                                "Message": "Start of list found where not expected"}


def test_numbers_for_integers_are_truncated_as_aws_does(conf):
    answer = post(conf, "ListStreams", {"Limit": 0.9})
    assert answer.json()["message"] == (
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: "
        "Member must have value greater than or equal to 1")
    assert post(conf, "ListStreams", {"Limit": 1.5}).json()["StreamNames"] == [STREAM]


# ------------------------------------------------------------------- validation texts

def test_validation_errors_read_as_aws_writes_them(conf):
    message = post(conf, "PutRecord", {"StreamName": "", "PartitionKey": "", "Data": "",
                                       "ExplicitHashKey": ""}).json()["message"]
    assert message.startswith("4 validation errors detected: ")
    # in the model's member order; patterns as AWS prints them (matched whole, no anchors)
    assert message.index("'streamName'") < message.index("'partitionKey'") < \
        message.index("'explicitHashKey'")
    assert "Value '' at 'explicitHashKey' failed to satisfy constraint: Member must satisfy " \
           "regular expression pattern: 0|([1-9]\\d{0,38})" in message
    message = post(conf, "GetShardIterator", {"StreamName": STREAM, "ShardId": "0",
                                              "ShardIteratorType": "FIRST"}).json()["message"]
    assert message == ("1 validation error detected: Value 'FIRST' at 'shardIteratorType' "
                       "failed to satisfy constraint: Member must satisfy enum value set: "
                       "[AFTER_SEQUENCE_NUMBER, LATEST, AT_TIMESTAMP, AT_SEQUENCE_NUMBER, "
                       "TRIM_HORIZON]")


def test_collections_of_plain_values_are_judged_whole(conf):
    long_key = "k" * 129
    message = post(conf, "AddTagsToStream", {"StreamName": STREAM, "Tags": {
        "a": "1", long_key: "2"}}).json()["message"]
    assert message == (
        f"1 validation error detected: Value '{{a=1, {long_key}=2}}' at 'tags' failed to "
        "satisfy constraint: Map keys must satisfy constraint: [Member must have length less "
        "than or equal to 128, Member must have length greater than or equal to 1]")
    message = post(conf, "AddTagsToStream", {"StreamName": STREAM, "Tags": {
        "a": "v" * 257}}).json()["message"]
    assert message.endswith("at 'tags' failed to satisfy constraint: Map value must satisfy "
                            "constraint: [Member must have length less than or equal to 256, "
                            "Member must have length greater than or equal to 0]")
    message = post(conf, "RemoveTagsFromStream", {"StreamName": STREAM,
                                                  "TagKeys": ["a", long_key]}).json()["message"]
    assert message == (
        f"1 validation error detected: Value '[a, {long_key}]' at 'tagKeys' failed to "
        "satisfy constraint: Member must satisfy constraint: [Member must have length less "
        "than or equal to 128, Member must have length greater than or equal to 1]")
    assert "Value '[]' at 'tagKeys'" in post(conf, "RemoveTagsFromStream", {
        "StreamName": STREAM, "TagKeys": []}).json()["message"]
    assert "Value '{}' at 'tags'" in post(conf, "AddTagsToStream", {
        "StreamName": STREAM, "Tags": {}}).json()["message"]


def test_at_most_ten_validation_errors_are_reported(conf):
    records = [{"PartitionKey": "", "Data": ""}] * 501
    message = post(conf, "PutRecords", {"StreamName": "", "Records": records}).json()["message"]
    assert message.startswith("10 validation errors detected: Value '[")
    assert "at 'records' failed to satisfy constraint: Member must have length less than or " \
           "equal to 500" in message
    assert message.count("; ") == 9 and "'records.9.member.partitionKey'" in message


def test_long_values_are_repeated_whole(conf):
    message = post(conf, "GetRecords", {"ShardIterator": "a" * 513}).json()["message"]
    assert f"Value '{'a' * 513}' at 'shardIterator'" in message


def test_a_record_without_partition_key_is_a_validation_error_not_a_python_one(conf):
    for content_type, data in ((JSON, ""), (CBOR, b"")):
        answer = post(conf, "PutRecord", {"StreamName": STREAM, "Data": data},
                      content_type=content_type)
        body = document(answer)
        assert answer.status_code == 400 and body["__type"] == "ValidationException"
        assert body["message"] == ("1 validation error detected: Value null at "
                                   "'partitionKey' failed to satisfy constraint: Member must "
                                   "not be null")


def test_a_member_the_store_needs_is_never_missing_in_python_words():
    from forestream.server.aws.kinesis import _keywords

    def put_record(data, partition_key, stream_name=None):  # a store method's signature
        raise AssertionError("not called without its partition key")

    with pytest.raises(Exception) as refused:
        _keywords(put_record)({"Data": b"", "StreamName": "s"})
    assert (refused.value.code, refused.value.message) == (
        "ValidationException", "1 validation error detected: Value null at 'partitionKey' "
        "failed to satisfy constraint: Member must not be null")


# ------------------------------------------------------------ the protocol layer itself

@pytest.mark.parametrize("operation,content_type,code,answered_as", [
    ("ListStreams", JSON, "SerializationException", JSON),
    ("ListStreams", None, "SerializationException", CBOR),
    ("ListStreams", "application/json", "SerializationException", CBOR),
    (None, JSON, "UnknownOperationException", JSON),
    ("ListStream", JSON, "UnknownOperationException", JSON),
    ("Kinesis_20131202.", "application/x-amz-json-1.0", "UnknownOperationException", CBOR),
    ("Whatever.ListStreams", None, "UnknownOperationException", CBOR),
])
def test_an_empty_body_is_answered_by_its_target_alone(conf, operation, content_type, code,
                                                       answered_as):
    answer = post(conf, operation, None, content_type=content_type)
    assert answer.status_code == 400 and answer.headers["content-type"] == answered_as
    assert document(answer) == {"__type": code}


def test_requests_aws_cannot_route_get_its_front_ends_xml(conf):
    no_operation = post(conf, None, b"{}", content_type="application/x-www-form-urlencoded")
    assert (no_operation.status_code, no_operation.content) == (403, (
        b"<AccessDeniedException>\n  <Message>Unable to determine service/operation name to "
        b"be authorized</Message>\n</AccessDeniedException>\n"))
    assert "content-type" not in no_operation.headers
    wrong_type = post(conf, "ListStreams", b"{}", content_type="text/plain")
    assert (wrong_type.status_code, wrong_type.content) == (404,
                                                            b"<UnknownOperationException/>\n")


@pytest.mark.parametrize("body", [b"hello", b"null", b"[]", b"true"])
def test_a_body_that_is_no_object_is_a_serialization_error(conf, body):
    answer = post(conf, "ListStreams", body)
    assert answer.status_code == 400 and answer.json() == {"__type": "SerializationException"}
    old = post(conf, "ListStreams", body, content_type="application/json ;")
    assert old.status_code == 400 and old.headers["content-type"] == "application/json"
    assert old.json() == {"Output": {"__type": "com.amazon.coral.service#"
                                               "SerializationException"}, "Version": "1.0"}


def test_json_1_0_requests_are_answered_never_served(conf):
    answer = post(conf, "ListStreams", {}, content_type="application/json")
    assert answer.status_code == 404
    assert answer.json() == {"Output": {"__type": "com.amazon.coral.service#"
                                                  "UnknownOperationException"},
                             "Version": "1.0"}


def test_operations_without_output_answer_an_empty_body_with_aws_ids(conf, kinesis):
    answer = post(conf, "AddTagsToStream", {"StreamName": STREAM, "Tags": {"t": "1"}})
    assert (answer.status_code, answer.content) == (200, b"")
    assert answer.headers["content-type"] == JSON
    assert len(base64.b64decode(answer.headers["x-amz-id-2"])) == 72
    assert answer.headers["x-amzn-requestid"]
    # ... which SDKs read as they read AWS's
    assert kinesis.remove_tags_from_stream(StreamName=STREAM, TagKeys=["t"])[
        "ResponseMetadata"]["HTTPStatusCode"] == 200
    cbor = post(conf, "AddTagsToStream", {"StreamName": STREAM, "Tags": {"t": "1"}},
                content_type=CBOR)
    assert (cbor.status_code, cbor.content, cbor.headers["content-type"]) == (200, b"", CBOR)
    kinesis.remove_tags_from_stream(StreamName=STREAM, TagKeys=["t"])


# ---------------------------------------------------------- other methods, and browsers

@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "OPTIONS"])
def test_aws_clients_other_methods_on_root_get_access_denied(conf, method):
    answer = post(conf, None, None, content_type=None, headers=SIGNED, method=method)
    assert answer.status_code == 403
    assert answer.content == (b"<AccessDeniedException>\n  <Message>Unable to determine "
                              b"service/operation name to be authorized</Message>\n"
                              b"</AccessDeniedException>\n")
    assert "content-type" not in answer.headers and answer.headers["x-amzn-requestid"]


def test_browsers_keep_the_console_on_root(conf):
    page = httpx.get(conf.url + "/", headers={"Accept": "text/html"}, timeout=30)
    assert page.status_code == 401 and page.headers["content-type"].startswith("text/html")
    signed_in = httpx.get(conf.url + "/", headers={"Accept": "text/html", **conf.auth},
                          timeout=30)
    assert signed_in.status_code == 200 and "forestream" in signed_in.text


def test_preflights_are_answered_to_allowed_origins_only(tmp_path):
    server = ServerProcess(tmp_path / "data", {
        "FORESTREAM_CORS_ORIGINS": "https://app.example"}).start()
    try:
        allowed = httpx.options(server.url + "/", timeout=30, headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "x-amz-target, content-type"})
        assert allowed.status_code == 200 and allowed.content == b""
        assert allowed.headers["access-control-allow-origin"] == "https://app.example"
        assert allowed.headers["access-control-allow-headers"] == "x-amz-target, content-type"
        assert allowed.headers["access-control-max-age"] == "172800"
        refused = httpx.options(server.url + "/", timeout=30, headers={
            "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert refused.status_code == 403 and "access-control-allow-origin" not in \
            refused.headers
        posted = post(server, "ListStreams", {}, headers={"Origin": "https://evil.example"})
        assert posted.status_code == 403
    finally:
        server.stop()


# ------------------------------------------------------------------------- signatures

@pytest.fixture(scope="module")
def lax(tmp_path_factory):
    """A server started with FORESTREAM_REQUIRE_SIGNATURE=0: any signature, or none."""
    server = ServerProcess(tmp_path_factory.mktemp("lax") / "data",
                           {"FORESTREAM_REQUIRE_SIGNATURE": "0"}).start()
    yield server
    server.stop()


@pytest.mark.parametrize("path,headers,code,message", [
    ("/", {}, "MissingAuthenticationTokenException", "Missing Authentication Token"),
    ("/?X-Amz-Credential=a&X-Amz-Signature=b", {}, "MissingAuthenticationTokenException",
     "Missing Authentication Token"),
    ("/", {"Authorization": "X"}, "IncompleteSignatureException",
     "Authorization header requires 'Credential' parameter. Authorization header requires "
     "'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. "
     "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. "
     "Authorization=X"),
    ("/", {"Authorization": "AWS4- Signature=b, Credential=a", "Date": "a"},
     "IncompleteSignatureException", "Authorization header requires 'SignedHeaders' "
     "parameter. Authorization=AWS4- Signature=b, Credential=a"),
    ("/?X-Amz-Algorithm", {"Authorization": "X"}, "InvalidSignatureException",
     "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP "
     "header."),
    ("/?X-Amz-Algorithm", {}, "IncompleteSignatureException",
     "AWS query-string parameters must include 'X-Amz-Algorithm'. AWS query-string "
     "parameters must include 'X-Amz-Credential'. AWS query-string parameters must include "
     "'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. "
     "AWS query-string parameters must include 'X-Amz-Date'. Re-examine the query-string "
     "parameters."),
    ("/?X-Amz-Algorithm=a&X-Amz-Credential=b&X-Amz-Signature=c&X-Amz-Date=d", {},
     "IncompleteSignatureException", "AWS query-string parameters must include "
     "'X-Amz-SignedHeaders'. Re-examine the query-string parameters."),
])
def test_a_default_server_refuses_kinesis_requests_without_a_signature_of_awss_form(
        conf, path, headers, code, message):
    """As AWS: no credentials are configured, so nothing verifies the signature, but a
    request must still carry one of AWS's form (header or query, not both)."""
    answer = post(conf, "ListStreams", {}, headers=headers, path=path, signed=False)
    assert answer.status_code == 400 and answer.json() == {"__type": code, "message": message}


def test_signatures_are_looked_at_after_the_target_and_before_the_members(conf):
    # AWS's order: an unknown operation is that, whoever asks; a wrong type needs a signer
    assert post(conf, "ListStream", {}, signed=False).json() == {
        "__type": "UnknownOperationException"}
    assert post(conf, "ListStreams", {"Limit": "x"}, signed=False).json()["__type"] == \
        "MissingAuthenticationTokenException"
    assert post(conf, "ListStreams", {}, headers=SIGNED, signed=False).status_code == 200


def test_only_the_kinesis_api_asks_for_a_signature(conf):
    """SageMaker's API, forestream's REST API and the console keep their own rules (the
    access token), signature or not."""
    sagemaker = post(conf, "SageMaker.ListModels", {}, signed=False)
    assert sagemaker.status_code == 200 and "Models" in sagemaker.json()
    rest = httpx.get(conf.url + "/api/v1/applications", headers=conf.auth, timeout=30)
    assert rest.status_code == 200
    no_token = httpx.get(conf.url + "/api/v1/applications", headers=SIGNED, timeout=30)
    assert no_token.status_code == 401  # a Kinesis-style signature is no access token


def test_require_signature_0_takes_unsigned_kinesis_requests(lax):
    for headers in ({}, {"Authorization": "X"}):
        answer = post(lax, "ListStreams", {}, headers=headers, signed=False)
        assert answer.status_code == 200 and "StreamNames" in answer.json()
    kinesis = client(lax.url)  # and SDKs, which sign, as ever
    kinesis.create_stream(StreamName="signed", ShardCount=1)
    assert "signed" in kinesis.list_streams()["StreamNames"]


# ------------------------------------------------------------------ stream statuses

def test_a_stream_is_described_as_aws_describes_it_in_each_transient_status(tmp_path):
    """As AWS answers DescribeStream: no shards while CREATING, the old shards (still open)
    while a reshard is UPDATING, and DELETING with no shards until the stream is gone."""
    server = ServerProcess(tmp_path / "data", {"FORESTREAM_STATUS_DELAY": "2"}).start()
    waiting = {"Delay": 0.2, "MaxAttempts": 300}
    try:
        kinesis = client(server.url)
        kinesis.create_stream(StreamName="young", ShardCount=3)
        creating = kinesis.describe_stream(StreamName="young")["StreamDescription"]
        assert creating["StreamStatus"] == "CREATING"
        assert creating["Shards"] == [] and creating["HasMoreShards"] is False
        kinesis.get_waiter("stream_exists").wait(StreamName="young", WaiterConfig=waiting)
        active = kinesis.describe_stream(StreamName="young")["StreamDescription"]
        assert [s["ShardId"] for s in active["Shards"]] == [
            f"shardId-00000000000{i}" for i in range(3)]

        kinesis.merge_shards(StreamName="young", ShardToMerge="0", AdjacentShardToMerge="1")
        updating = kinesis.describe_stream(StreamName="young")["StreamDescription"]
        assert updating["StreamStatus"] == "UPDATING"
        assert updating["Shards"] == active["Shards"]  # unchanged until UPDATING ends
        kinesis.get_waiter("stream_exists").wait(StreamName="young", WaiterConfig=waiting)
        merged = kinesis.describe_stream(StreamName="young")["StreamDescription"]["Shards"]
        assert [s["ShardId"] for s in merged] == [f"shardId-00000000000{i}" for i in range(4)]
        assert [("EndingSequenceNumber" in s["SequenceNumberRange"]) for s in merged] == [
            True, True, False, False]

        kinesis.delete_stream(StreamName="young")
        deleting = kinesis.describe_stream(StreamName="young")["StreamDescription"]
        assert (deleting["StreamStatus"], deleting["Shards"]) == ("DELETING", [])
        assert kinesis.list_streams()["StreamSummaries"][0]["StreamStatus"] == "DELETING"
        kinesis.get_waiter("stream_not_exists").wait(StreamName="young", WaiterConfig=waiting)
        assert kinesis.list_streams()["StreamNames"] == []
    finally:
        server.stop()


# ----------------------------------------------------------------------- shard ids

@pytest.mark.parametrize("shard", ["shardId-000000000001", "shardId-1", "1", "shard-1",
                                   "any_prefix-00001", "-1"])
def test_a_shard_id_names_the_shard_of_its_trailing_number(kinesis, shard):
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId=shard,
                                          ShardIteratorType="LATEST")["ShardIterator"]
    assert kinesis.get_records(ShardIterator=iterator)["Records"] == []


@pytest.mark.parametrize("shard", ["ABKLFD8", "2.14E4", "2147483648", "shardId-"])
def test_an_id_that_names_no_shard_is_not_found_before_the_stream_is(kinesis, shard):
    for stream in (STREAM, "no-such-stream"):
        assert error_of(lambda stream=stream: kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard, ShardIteratorType="LATEST")) == (
            "ResourceNotFoundException",
            f"Could not find shard {shard} in stream {stream} under account {ACCOUNT}.")
        assert error_of(lambda stream=stream: kinesis.split_shard(
            StreamName=stream, ShardToSplit=shard, NewStartingHashKey="5"))[1] == \
            f"Could not find shard {shard} in stream {stream} under account {ACCOUNT}."


def test_not_found_messages_name_the_normalised_shard(kinesis):
    assert error_of(lambda: kinesis.get_shard_iterator(
        StreamName="no-such-stream", ShardId="x-7", ShardIteratorType="LATEST"))[1] == \
        f"Shard shardId-000000000007 in stream no-such-stream under account {ACCOUNT} " \
        "does not exist"
    assert error_of(lambda: kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId="shardId-5", ShardIteratorType="LATEST"))[1] == \
        f"Shard shardId-000000000005 in stream {STREAM} under account {ACCOUNT} does not exist"
    assert error_of(lambda: kinesis.merge_shards(
        StreamName=STREAM, ShardToMerge="shardId-5", AdjacentShardToMerge="0"))[1] == \
        f"Could not find shard shardId-000000000005 in stream {STREAM} under account {ACCOUNT}."
    assert error_of(lambda: kinesis.merge_shards(
        StreamName="no-such-stream", ShardToMerge="0", AdjacentShardToMerge="1"))[1] == \
        f"Stream no-such-stream under account {ACCOUNT} not found."


# ------------------------------------------------------------- GetShardIterator's rules

def test_get_shard_iterator_takes_a_sequence_number_only_with_the_types_that_use_it(kinesis):
    sequence = kinesis.put_record(StreamName=STREAM, PartitionKey="a", Data=b"x",
                                  ExplicitHashKey="0")["SequenceNumber"]
    for kind in ("LATEST", "TRIM_HORIZON"):
        assert error_of(lambda kind=kind: kinesis.get_shard_iterator(
            StreamName=STREAM, ShardId="0", ShardIteratorType=kind,
            StartingSequenceNumber=sequence)) == (
            "InvalidArgumentException",
            "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and "
            "StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no "
            f"StartingSequenceNumber. Request specified {kind} and also a "
            "StartingSequenceNumber.")
    assert error_of(lambda: kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId="0", ShardIteratorType="AFTER_SEQUENCE_NUMBER"))[1].endswith(
        "Request specified AFTER_SEQUENCE_NUMBER and no StartingSequenceNumber.")
    assert error_of(lambda: kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId="1", ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=sequence))[1] == (
        "Invalid StartingSequenceNumber. It encodes shardId-000000000000, while it was used in "
        "a call to a shard with shardId-000000000001")
    assert error_of(lambda: kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId="0", ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber="26227199374822427428162556223570313216"))[1] == (
        "StartingSequenceNumber 26227199374822427428162556223570313216 used in "
        f"GetShardIterator on shard shardId-000000000000 in stream {STREAM} under account "
        f"{ACCOUNT} is invalid.")
    iterator = kinesis.get_shard_iterator(StreamName=STREAM, ShardId="0",
                                          ShardIteratorType="AT_SEQUENCE_NUMBER",
                                          StartingSequenceNumber=sequence)["ShardIterator"]
    assert kinesis.get_records(ShardIterator=iterator)["Records"][0]["Data"] == b"x"


def test_at_timestamp_needs_a_time_that_has_come(conf, kinesis):
    assert error_of(lambda: kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId="0", ShardIteratorType="AT_TIMESTAMP"))[1] == (
        "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current "
        "request has no timestamp parameter.")
    code, message = error_of(lambda: kinesis.get_shard_iterator(
        StreamName=STREAM, ShardId="0", ShardIteratorType="AT_TIMESTAMP",
        Timestamp=time.time() + 3600))
    assert code == "InvalidArgumentException" and message.startswith(
        "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. "
        "timestampInMillis: ")
    assert kinesis.get_shard_iterator(StreamName=STREAM, ShardId="0",
                                      ShardIteratorType="AT_TIMESTAMP",
                                      Timestamp=time.time() - 60)["ShardIterator"]


def test_get_records_words_bad_and_orphaned_iterators_as_kinesis(kinesis):
    assert error_of(lambda: kinesis.get_records(ShardIterator="not-an-iterator")) == (
        "InvalidArgumentException", "Invalid ShardIterator.")
    kinesis.create_stream(StreamName="gone", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="gone", WaiterConfig={"Delay": 0.1})
    iterator = kinesis.get_shard_iterator(StreamName="gone", ShardId="0",
                                          ShardIteratorType="LATEST")["ShardIterator"]
    kinesis.delete_stream(StreamName="gone")
    kinesis.get_waiter("stream_not_exists").wait(StreamName="gone",
                                                 WaiterConfig={"Delay": 0.1})
    assert error_of(lambda: kinesis.get_records(ShardIterator=iterator)) == (
        "ResourceNotFoundException",
        f"Shard shardId-000000000000 in stream gone under account {ACCOUNT} does not exist")


def test_an_expired_iterator_says_when_in_dates(tmp_path, monkeypatch):
    from forestream.streams import iterators as iterators_module
    from forestream.streams.errors import ExpiredIteratorError

    issuer = iterators_module.ShardIterators(b"k" * 32)
    token = issuer.encode("s", 1, 0, 0)
    later = time.time() + 301
    monkeypatch.setattr(iterators_module.time, "time", lambda: later)
    with pytest.raises(ExpiredIteratorError) as expired:
        issuer.decode(token)
    assert expired.value.message.startswith("Iterator expired. The iterator was created at "
                                            "time ")
    assert expired.value.message.endswith("UTC " + time.strftime("%Y", time.gmtime(later)) +
                                          " which is further in the future than the tolerated "
                                          "delay of 300000 milliseconds.")


# --------------------------------------------------------------------------- writing

def test_sequence_number_for_ordering_must_be_one_of_this_service(kinesis):
    first = kinesis.put_record(StreamName=STREAM, PartitionKey="o", Data=b"1")
    second = kinesis.put_record(StreamName=STREAM, PartitionKey="o", Data=b"2",
                                SequenceNumberForOrdering=first["SequenceNumber"])
    assert int(second["SequenceNumber"]) > int(first["SequenceNumber"])
    foreign = "49039857307708443467467104868809893875799651909875269632"
    assert error_of(lambda: kinesis.put_record(
        StreamName=STREAM, PartitionKey="o", Data=b"3",
        SequenceNumberForOrdering=foreign)) == (
        "InvalidArgumentException", f"ExclusiveMinimumSequenceNumber {foreign} used in "
        f"PutRecord on stream {STREAM} under account {ACCOUNT} is invalid.")


def test_an_explicit_hash_key_past_the_range_is_refused_in_kinesis_words(kinesis):
    for call in (lambda: kinesis.put_record(StreamName=STREAM, PartitionKey="a", Data=b"",
                                            ExplicitHashKey=str(MAX_HASH + 1)),
                 lambda: kinesis.put_records(StreamName=STREAM, Records=[
                     {"PartitionKey": "a", "Data": b"", "ExplicitHashKey": str(MAX_HASH + 1)}])):
        assert error_of(call) == (
            "InvalidArgumentException", "Invalid ExplicitHashKey. ExplicitHashKey must be in "
            f"the range: [0, 2^128-1]. Specified value was {MAX_HASH + 1}")


# ------------------------------------------------------------------------ resharding

def test_split_shard_leaves_each_child_two_hash_keys_at_least(kinesis):
    kinesis.create_stream(StreamName="split", ShardCount=1)
    kinesis.get_waiter("stream_exists").wait(StreamName="split", WaiterConfig={"Delay": 0.1})
    for key in ("0", "1", str(MAX_HASH), str(MAX_HASH + 5)):
        assert error_of(lambda key=key: kinesis.split_shard(
            StreamName="split", ShardToSplit="shard-0", NewStartingHashKey=key)) == (
            "InvalidArgumentException",
            f"NewStartingHashKey {key} used in SplitShard() on shard shardId-000000000000 in "
            f"stream split under account {ACCOUNT} is not both greater than one plus the "
            f"shard's StartingHashKey 0 and less than the shard's EndingHashKey {MAX_HASH}.")
    assert len(kinesis.list_shards(StreamName="split")["Shards"]) == 1  # nothing changed
    kinesis.split_shard(StreamName="split", ShardToSplit="0", NewStartingHashKey="2")
    kinesis.get_waiter("stream_exists").wait(StreamName="split", WaiterConfig={"Delay": 0.1})
    children = kinesis.list_shards(StreamName="split")["Shards"][1:]
    assert [c["HashKeyRange"] for c in children] == [
        {"StartingHashKey": "0", "EndingHashKey": "1"},
        {"StartingHashKey": "2", "EndingHashKey": str(MAX_HASH)}]


def test_merge_shards_takes_the_shard_above_as_the_adjacent_one(kinesis):
    kinesis.create_stream(StreamName="merge", ShardCount=3)
    kinesis.get_waiter("stream_exists").wait(StreamName="merge", WaiterConfig={"Delay": 0.1})
    for first, second in (("shard-0", "x-2"), ("1", "0")):
        assert error_of(lambda first=first, second=second: kinesis.merge_shards(
            StreamName="merge", ShardToMerge=first, AdjacentShardToMerge=second)) == (
            "InvalidArgumentException",
            f"Shards shardId-{int(first[-1]):012d} and shardId-{int(second[-1]):012d} in "
            f"stream merge under account {ACCOUNT} are not an adjacent pair of shards "
            "eligible for merging")
    kinesis.merge_shards(StreamName="merge", ShardToMerge="shard-0",
                         AdjacentShardToMerge="merge-1")
    kinesis.get_waiter("stream_exists").wait(StreamName="merge", WaiterConfig={"Delay": 0.1})
    merged = kinesis.list_shards(StreamName="merge")["Shards"][-1]
    assert (merged["ParentShardId"], merged["AdjacentParentShardId"]) == (
        "shardId-000000000000", "shardId-000000000001")


def test_the_shard_limit_is_worded_as_kinesis_words_it(kinesis):
    code, message = error_of(lambda: kinesis.create_stream(StreamName="huge", ShardCount=1000))
    assert code == "LimitExceededException" and message.startswith(
        f"This request would exceed the shard limit for the account {ACCOUNT} in us-east-1. "
        "Current shard count for the account: ")
    assert "Limit: 500. Number of additional shards that would have resulted from this " \
           "request: 1000. Refer to the AWS Service Limits page" in message


# ------------------------------------------------------------------------------ tags

@pytest.mark.parametrize("text", ["abc;def", "abc\tdef", "abc\ndef", "abc,def"])
def test_tags_with_characters_kinesis_refuses_are_not_stored(kinesis, text):
    before = kinesis.list_tags_for_stream(StreamName=STREAM)["Tags"]
    refused = ("InvalidArgumentException", "Some tags contain invalid characters. Valid "
               "characters: Unicode letters, digits, white space, _ . / = + - % @.")
    assert error_of(lambda: kinesis.add_tags_to_stream(StreamName=STREAM,
                                                        Tags={text: "1"})) == refused
    assert error_of(lambda: kinesis.add_tags_to_stream(StreamName=STREAM,
                                                        Tags={"k": text})) == refused
    assert error_of(lambda: kinesis.remove_tags_from_stream(StreamName=STREAM,
                                                             TagKeys=[text])) == refused
    assert kinesis.list_tags_for_stream(StreamName=STREAM)["Tags"] == before


def test_a_percent_sign_in_a_tag_has_a_message_of_its_own(kinesis):
    assert error_of(lambda: kinesis.add_tags_to_stream(StreamName=STREAM,
                                                        Tags={"a%b": "1"})) == (
        "InvalidArgumentException",
        f"Failed to add tags to stream {STREAM} under account {ACCOUNT} because some tags "
        "contained illegal characters. The allowed characters are Unicode letters, "
        "white-spaces, '_',',','/','=','+','-','@'.")
    assert error_of(lambda: kinesis.remove_tags_from_stream(StreamName=STREAM,
                                                             TagKeys=["a%b"]))[1].startswith(
        f"Failed to remove tags from stream {STREAM} under account {ACCOUNT} because")
    # the stream is looked for first
    assert error_of(lambda: kinesis.add_tags_to_stream(StreamName="no-such-stream",
                                                        Tags={"a%b": "1"}))[0] == \
        "ResourceNotFoundException"


def test_tags_take_letters_of_any_script_and_at_most_fifty(kinesis):
    kinesis.create_stream(StreamName="tagged", ShardCount=1)
    tags = {"ü0 _.": "a", "/=+-@": "ü0 _./=+-@", "c": ""}
    kinesis.add_tags_to_stream(StreamName="tagged", Tags=tags)
    kinesis.add_tags_to_stream(StreamName="tagged", Tags={str(i): "x" for i in range(47)})
    assert error_of(lambda: kinesis.add_tags_to_stream(StreamName="tagged",
                                                        Tags={"one-more": "x"})) == (
        "InvalidArgumentException",
        f"Failed to add tags to stream tagged under account {ACCOUNT} because a given stream "
        "cannot have more than 50 tags associated with it.")
    stored = {t["Key"]: t["Value"] for t in kinesis.list_tags_for_stream(
        StreamName="tagged", Limit=50)["Tags"]}
    assert len(stored) == 50 and all(stored[k] == v for k, v in tags.items())


# ------------------------------------------------------------------ listing and settings

def test_list_shards_is_named_by_its_token_or_its_stream_never_both(kinesis):
    assert error_of(lambda: kinesis.list_shards()) == (
        "InvalidArgumentException", "Either NextToken or StreamName should be provided.")
    token = kinesis.list_shards(StreamName=STREAM, MaxResults=1)["NextToken"]
    assert error_of(lambda: kinesis.list_shards(StreamName=STREAM, NextToken=token)) == (
        "InvalidArgumentException", "NextToken and StreamName cannot be provided together.")
    assert error_of(lambda: kinesis.list_shards(ExclusiveStartShardId="0",
                                                NextToken=token))[1] == \
        "NextToken and ExclusiveStartShardId cannot be provided together."
    rest = kinesis.list_shards(NextToken=token)["Shards"]
    assert [s["ShardId"] for s in rest] == ["shardId-000000000001", "shardId-000000000002"]


def test_retention_periods_out_of_bounds_are_worded_as_kinesis(kinesis):
    for call in (kinesis.increase_stream_retention_period,
                 kinesis.decrease_stream_retention_period):
        assert error_of(lambda call=call: call(StreamName=STREAM, RetentionPeriodHours=23)) == (
            "InvalidArgumentException", "Minimum allowed retention period is 24 hours. "
            "Requested retention period (23 hours) is too short.")
    assert error_of(lambda: kinesis.increase_stream_retention_period(
        StreamName=STREAM, RetentionPeriodHours=8761))[1] == (
        "Maximum allowed retention period is 8760 hours. Requested retention period "
        "(8761 hours) is too long.")
    assert kinesis.describe_stream_summary(StreamName=STREAM)["StreamDescriptionSummary"][
        "RetentionPeriodHours"] == 24
