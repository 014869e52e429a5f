"""Signature V4 for the tests' hand-made Kinesis requests (importable: tests/ is on sys.path).

A default ``forestream server`` refuses a Kinesis request without a signature of AWS's
form, as AWS does (``FORESTREAM_REQUIRE_SIGNATURE``, on by default); it verifies nothing
more unless it has credentials. Tests that build requests by hand to check something
else (a wire format, a status, a limit) sign them here with botocore's own signer, so
they keep testing their subject rather than the refusal.
"""

from __future__ import annotations

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

KEY, SECRET = "test", "test"


def signed_headers(url: str, body: bytes | str, headers: dict[str, str], *,
                   method: str = "POST", service: str = "kinesis",
                   region: str = "us-east-1", key: str = KEY,
                   secret: str = SECRET) -> dict[str, str]:
    """``headers`` plus ``X-Amz-Date`` and an ``Authorization`` signing the request that
    ``method`` ``url`` with ``body`` makes (the URL's host is signed as ``Host``)."""
    request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
    SigV4Auth(Credentials(key, secret), service, region).add_auth(request)
    return dict(request.headers.items())
