"""Signature V4 as AWS checks it: AWS's published test vectors verify; forged, replayed,
mis-scoped and expired signatures do not (unit tests of forestream.server.aws.sigv4)."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest

from forestream.server.aws.sigv4 import Credentials, SignedRequest, is_signed, verify

SUITE_KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
SUITE_NOW = dt.datetime(2015, 8, 30, 12, 36, tzinfo=dt.timezone.utc)
SCOPE = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"


def suite_request(method, query=(), headers=None, signed="host;x-amz-date", signature=""):
    return SignedRequest(method, "/", list(query), {
        "host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z", **(headers or {}),
        "authorization": f"AWS4-HMAC-SHA256 Credential={SCOPE}, SignedHeaders={signed}, "
                         f"Signature={signature}"})


# (name in AWS's SigV4 test suite, method, query, extra headers, body, signed headers,
#  the suite's expected signature)
VECTORS = [
    ("get-vanilla", "GET", [], {}, b"", "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("post-vanilla", "POST", [], {}, b"", "host;x-amz-date",
     "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
    ("get-vanilla-query-order-key-case", "GET", [("Param2", "value2"), ("Param1", "value1")],
     {}, b"", "host;x-amz-date",
     "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("post-x-www-form-urlencoded", "POST", [],
     {"content-type": "application/x-www-form-urlencoded"}, b"Param1=value1",
     "content-type;host;x-amz-date",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"),
]


@pytest.mark.parametrize("name,method,query,headers,body,signed,signature", VECTORS,
                         ids=[v[0] for v in VECTORS])
def test_aws_test_suite_vectors_verify(name, method, query, headers, body, signed,
                                       signature):
    request = suite_request(method, query, headers, signed, signature)
    assert verify(request, hashlib.sha256(body).hexdigest(), SUITE_KEYS, "us-east-1",
                  "service", SUITE_NOW) is None


def test_a_changed_body_or_query_or_method_no_longer_verifies():
    _, method, query, headers, body, signed, signature = VECTORS[3]
    good = suite_request(method, query, headers, signed, signature)
    assert verify(good, hashlib.sha256(b"Param1=value2").hexdigest(), SUITE_KEYS,
                  "us-east-1", "service", SUITE_NOW).code == "InvalidSignatureException"
    moved = suite_request("PUT", query, headers, signed, signature)
    assert verify(moved, hashlib.sha256(body).hexdigest(), SUITE_KEYS, "us-east-1",
                  "service", SUITE_NOW).code == "InvalidSignatureException"
    queried = suite_request(method, [("x", "1")], headers, signed, signature)
    assert verify(queried, hashlib.sha256(body).hexdigest(), SUITE_KEYS, "us-east-1",
                  "service", SUITE_NOW).code == "InvalidSignatureException"


def test_a_content_hash_header_must_be_the_bodys_hash():
    _, method, query, headers, body, _, _ = VECTORS[1]
    claimed = hashlib.sha256(b"the body that was signed").hexdigest()
    request = suite_request(method, query, {"x-amz-content-sha256": claimed},
                            "host;x-amz-content-sha256;x-amz-date", "0" * 64)
    failure = verify(request, hashlib.sha256(b"another body").hexdigest(), SUITE_KEYS,
                     "us-east-1", "service", SUITE_NOW)
    assert failure.code == "InvalidSignatureException"
    assert "x-amz-content-sha256" in failure.message
    unsigned = suite_request(method, query, {"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
                             "host;x-amz-content-sha256;x-amz-date", "0" * 64)
    assert "UNSIGNED-PAYLOAD" in verify(unsigned, hashlib.sha256(b"").hexdigest(), SUITE_KEYS,
                                        "us-east-1", "service", SUITE_NOW).message


@pytest.mark.parametrize("region,service,needle", [
    ("eu-west-1", "service", "valid region"), ("us-east-1", "kinesis", "correct service")])
def test_the_scope_is_pinned_to_the_servers_region_and_the_routes_service(region, service,
                                                                          needle):
    _, method, query, headers, body, signed, signature = VECTORS[0]
    failure = verify(suite_request(method, query, headers, signed, signature),
                     hashlib.sha256(body).hexdigest(), SUITE_KEYS, region, service, SUITE_NOW)
    assert failure.code == "InvalidSignatureException" and needle in failure.message


def test_the_scope_date_must_be_the_day_of_x_amz_date():
    request = SignedRequest("GET", "/", [], {
        "host": "example.amazonaws.com", "x-amz-date": "20150830T123600Z",
        "authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20010101/us-east-1/service/"
                         "aws4_request, SignedHeaders=host;x-amz-date, Signature=" + "0" * 64})
    failure = verify(request, hashlib.sha256(b"").hexdigest(), SUITE_KEYS, "us-east-1",
                     "service", SUITE_NOW)
    assert "valid date" in failure.message


@pytest.mark.parametrize("signed,extra,missing", [
    ("x-amz-date", {}, "host"),
    ("host", {}, "x-amz-date"),
    ("host;x-amz-date", {"x-amz-target": "Kinesis_20131202.DeleteStream"}, "x-amz-target"),
])
def test_host_date_and_target_must_be_signed(signed, extra, missing):
    request = suite_request("POST", (), extra, signed, "0" * 64)
    failure = verify(request, hashlib.sha256(b"").hexdigest(), SUITE_KEYS, "us-east-1",
                     "service", SUITE_NOW)
    assert failure.code == "InvalidSignatureException"
    assert f"'{missing}' must be a 'SignedHeader'" in failure.message


@pytest.mark.parametrize("minutes,needle", [(6, "Signature expired"),
                                            (-6, "not yet current")])
def test_the_clock_skew_is_bounded_to_five_minutes(minutes, needle):
    _, method, query, headers, body, signed, signature = VECTORS[0]
    failure = verify(suite_request(method, query, headers, signed, signature),
                     hashlib.sha256(body).hexdigest(), SUITE_KEYS, "us-east-1", "service",
                     SUITE_NOW + dt.timedelta(minutes=minutes))
    assert needle in failure.message
    assert verify(suite_request(method, query, headers, signed, signature),
                  hashlib.sha256(body).hexdigest(), SUITE_KEYS, "us-east-1", "service",
                  SUITE_NOW + dt.timedelta(minutes=4)) is None


def test_missing_malformed_and_foreign_credentials_get_aws_error_codes():
    bare = SignedRequest("POST", "/", [], {"host": "h"})
    assert not is_signed(bare)
    assert verify(bare, "", SUITE_KEYS, "us-east-1", "service", SUITE_NOW).code == \
        "MissingAuthenticationTokenException"
    partial = SignedRequest("POST", "/", [], {"host": "h", "authorization":
                                              "AWS4-HMAC-SHA256 Credential=x"})
    failure = verify(partial, "", SUITE_KEYS, "us-east-1", "service", SUITE_NOW)
    assert failure.code == "IncompleteSignatureException"
    assert "requires 'Signature'" in failure.message and "'X-Amz-Date'" in failure.message
    signed = suite_request("GET", signature=VECTORS[0][-1]).headers
    other = signed["authorization"].replace("AKIDEXAMPLE", "AKIDOTHER")
    stranger = SignedRequest("GET", "/", [], {**signed, "authorization": other})
    assert verify(stranger, "", SUITE_KEYS, "us-east-1", "service", SUITE_NOW).code == \
        "UnrecognizedClientException"
    both = SignedRequest("GET", "/", [("X-Amz-Algorithm", "AWS4-HMAC-SHA256")],
                         suite_request("GET").headers)
    assert "Found both" in verify(both, "", SUITE_KEYS, "us-east-1", "service",
                                  SUITE_NOW).message


def test_presigned_urls_verify_until_they_expire():
    from botocore.auth import SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials as BotoCredentials

    now = dt.datetime.now(dt.timezone.utc)
    request = AWSRequest(method="POST", url="http://127.0.0.1:4567/?a=b",
                         headers={"host": "127.0.0.1:4567"})
    SigV4QueryAuth(BotoCredentials("AKID", "secret"), "kinesis", "us-east-1",
                   expires=60).add_auth(request)
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(request.url)
    signed = SignedRequest("POST", parts.path, parse_qsl(parts.query),
                           {"host": "127.0.0.1:4567"})
    keys = Credentials("AKID", "secret")
    empty = hashlib.sha256(b"").hexdigest()
    assert verify(signed, empty, keys, "us-east-1", "kinesis", now) is None
    late = verify(signed, empty, keys, "us-east-1", "kinesis", now + dt.timedelta(minutes=2))
    assert "Signature expired" in late.message
