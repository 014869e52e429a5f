"""GetRecords and PutRecords straight on the wire, for the Kinesis connectors' hot path.

botocore takes every call through its whole machinery (validation against the service
model, serialization, event hooks, a datetime parsed per record, retry bookkeeping). For
the two calls a running job makes all the time that costs more than the server's work:
GetRecords of 1,000 small records took 24 ms of CPU through boto3 against 7 ms on the
wire (client and server together, this 2-core machine), a PutRecords of 12 records 1.7 ms
against 1.25 ms. :class:`KinesisWire` sends the same JSON 1.1 requests boto3 sends,
signed with Signature V4 with the boto3 client's own credentials and region, over one
kept-alive HTTP/1.1 connection per thread, and retries as botocore's ``standard`` mode
does (throttling and transient error codes, 500/502/503/504, broken connections; random
exponential backoff capped at 20 s; the client's ``max_attempts``). Everything else the
connectors call (shards, iterators, stream admin) still goes through the boto3 client.

Only for plain-HTTP endpoints (a forestream server, kinesalite, LocalStack on this machine
or a private network): AWS itself and any HTTPS endpoint keep boto3's full behaviour
(regional endpoints, TLS verification settings, credential refresh hooks).

The signature is computed here rather than by botocore's ``SigV4Auth``, which builds an
``AWSRequest``, copies and re-parses its headers and derives the signing key (four
HMACs) on every call: about a third of the client's CPU per small call. The request
signed is always the same shape (``POST``, four headers), so its canonical form is
written directly and the signing key is derived once a day (:mod:`forestream.signing`,
shared with the server's check); :class:`Signer` gives the exact signature botocore
gives (tests compare the two).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import http.client
import json
import random
import threading
import time
import urllib.parse
from typing import Any

from forestream.signing import signing_key

#: Error codes botocore's standard retry mode retries (throttling and transient errors).
RETRIED_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "ProvisionedThroughputExceededException",
    "TransactionInProgressException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "RequestThrottled", "SlowDown", "PriorRequestNotComplete",
    "EC2ThrottledException", "RequestTimeout", "RequestTimeoutException",
    "InternalFailure", "ServiceUnavailable"})
RETRIED_STATUS = frozenset({500, 502, 503, 504})
MAX_BACKOFF_SECONDS = 20.0
#: What sending on a kept-alive connection the server has closed raises.
STALE_CONNECTION = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)
TARGET_PREFIX = "Kinesis_20131202."
CONTENT_TYPE = "application/x-amz-json-1.1"
ALGORITHM = "AWS4-HMAC-SHA256"


class Signer:
    """Signature V4 of the POSTs :class:`KinesisWire` sends (``Content-Type``, ``Host``,
    ``X-Amz-Date``, ``X-Amz-Target`` and, with temporary credentials,
    ``X-Amz-Security-Token``), as botocore signs them. ``host`` is the ``Host`` header
    http.client sends (``host:port`` unless the port is 80); ``path`` the URL's path."""

    def __init__(self, host: str, region: str, service: str = "kinesis",
                 path: str = "/") -> None:
        self.host, self.region, self.service = host, region, service
        self.path = urllib.parse.quote(path or "/", safe="/~")

    def headers(self, target: str, payload: bytes, access_key: str, secret_key: str,
                token: str | None = None, now: dt.datetime | None = None) -> dict[str, str]:
        """The headers to send: the content type and target, ``X-Amz-Date``, the token
        if any and ``Authorization``."""
        stamp = (now or dt.datetime.now(dt.timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
        day = stamp[:8]
        names = ["content-type", "host", "x-amz-date", "x-amz-target"]
        values = [CONTENT_TYPE, self.host, stamp, target]
        if token:
            names.insert(3, "x-amz-security-token")
            values.insert(3, token)
        signed = ";".join(names)
        canonical = "\n".join((
            "POST", self.path, "",
            *(f"{n}:{v}" for n, v in zip(names, values, strict=True)), "",
            signed, hashlib.sha256(payload).hexdigest()))
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join((ALGORITHM, stamp, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()))
        signature = hmac.new(signing_key(secret_key, day, self.region, self.service),
                             to_sign.encode(),
                             hashlib.sha256).hexdigest()
        headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": target, "X-Amz-Date": stamp,
                   "Authorization": f"{ALGORITHM} Credential={access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}"}
        if token:
            headers["X-Amz-Security-Token"] = token
        return headers


class KinesisCallError(Exception):
    """An error answer of the Kinesis API: its ``code`` (``ExpiredIteratorException``...),
    ``message`` and HTTP ``status``, as botocore's ``ClientError`` carries them."""

    def __init__(self, operation: str, code: str, message: str, status: int) -> None:
        super().__init__(f"An error occurred ({code}) when calling the {operation} "
                         f"operation: {message}")
        self.operation, self.code, self.message, self.status = operation, code, message, status


class KinesisWire:
    """GetRecords and PutRecords of one endpoint with one boto3 client's credentials."""

    def __init__(self, endpoint_url: str, region: str, client: Any = None,
                 max_attempts: int = 3, connect_timeout: float = 60.0,
                 read_timeout: float = 60.0) -> None:
        parts = urllib.parse.urlsplit(endpoint_url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"KinesisWire speaks plain HTTP only, not {endpoint_url!r}")
        self.url = endpoint_url.rstrip("/") + "/"
        self.host, self.port = parts.hostname, parts.port or 80
        self.path = parts.path or "/"
        self.region = region
        self.max_attempts = max(1, max_attempts)
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self._client = client  # whose credentials sign the calls (None: unsigned)
        self._local = threading.local()
        # the Host header http.client sends, as the signature must name it
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        self.signer = Signer(host if self.port == 80 else f"{host}:{self.port}", region,
                             "kinesis", self.path)

    @classmethod
    def for_client(cls, client: Any) -> KinesisWire | None:
        """The wire path for a boto3 Kinesis client, or None where boto3 must stay (an
        HTTPS or AWS endpoint, or an object that is not a boto3 client)."""
        meta: Any = getattr(client, "meta", None)
        endpoint = str(getattr(meta, "endpoint_url", "") or "")
        if meta is None or not endpoint.startswith("http://") or \
                not hasattr(client, "_get_credentials"):
            return None
        shared = getattr(client, "_forestream_wire", None)
        if isinstance(shared, cls):  # one per client: its sources and sinks share each
            return shared            # thread's kept-alive connection
        config = meta.config
        retries = getattr(config, "retries", None) or {}
        # botocore: total_max_attempts counts the first try, max_attempts only the retries
        attempts = int(retries["total_max_attempts"]) if "total_max_attempts" in retries \
            else int(retries["max_attempts"]) + 1 if "max_attempts" in retries else 3
        wire = cls(endpoint, str(meta.region_name or "us-east-1"), client, attempts,
                   float(config.connect_timeout or 60), float(config.read_timeout or 60))
        with contextlib.suppress(AttributeError):
            client._forestream_wire = wire
        return wire

    # ------------------------------------------------------------------------ calls
    def get_records(self, iterator: str, limit: int) -> dict[str, Any]:
        """GetRecords; each record's ``Data`` decoded to bytes and its
        ``ApproximateArrivalTimestamp`` in epoch seconds (a float)."""
        answer = self.call("GetRecords", {"ShardIterator": iterator, "Limit": limit})
        for record in answer.get("Records", ()):
            record["Data"] = base64.b64decode(record["Data"])
        return answer

    def put_records(self, stream: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        """PutRecords of entries with ``Data`` as bytes (as boto3 takes them)."""
        entries = []
        for record in records:
            entry = dict(record)
            entry["Data"] = base64.b64encode(record["Data"]).decode("ascii")
            entries.append(entry)
        return self.call("PutRecords", {"StreamName": stream, "Records": entries})

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """One operation, retried as botocore's standard mode retries it."""
        payload = json.dumps(body, separators=(",", ":")).encode()
        for attempt in range(self.max_attempts):
            try:
                try:
                    status, data = self._send(operation, payload)
                except STALE_CONNECTION:
                    if not getattr(self._local, "reused", False):
                        raise
                    # the server closed a kept-alive connection while it sat idle (after
                    # its keep-alive timeout): at once on a new one, as HTTP clients do,
                    # not after a back-off as if the server had failed
                    self._close()
                    status, data = self._send(operation, payload)
            except (OSError, http.client.HTTPException):
                self._close()
                if attempt + 1 == self.max_attempts:
                    raise
                self._backoff(attempt)
                continue
            if status == 200:
                return dict(json.loads(data)) if data else {}
            error = _error(operation, status, data)
            if attempt + 1 == self.max_attempts or not (
                    error.code in RETRIED_CODES or status in RETRIED_STATUS):
                raise error
            self._backoff(attempt)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def close(self) -> None:
        """Close this thread's connection (others close when their threads end)."""
        self._close()

    # ---------------------------------------------------------------------- helpers
    def _send(self, operation: str, payload: bytes) -> tuple[int, bytes]:
        connection = getattr(self._local, "connection", None)
        self._local.reused = connection is not None
        if connection is None:
            connection = http.client.HTTPConnection(self.host, self.port,
                                                    timeout=self.connect_timeout)
            connection.connect()
            assert connection.sock is not None  # connect() made it
            connection.sock.settimeout(self.read_timeout)
            self._local.connection = connection
        connection.request("POST", self.path, payload, self._headers(operation, payload))
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            self._close()
        return response.status, data

    def _headers(self, operation: str, payload: bytes) -> dict[str, str]:
        headers = {"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET_PREFIX + operation}
        credentials = self._client._get_credentials() if self._client is not None else None
        if credentials is None:
            return headers
        frozen = credentials.get_frozen_credentials()
        return self.signer.headers(headers["X-Amz-Target"], payload, frozen.access_key,
                                   frozen.secret_key, frozen.token)

    def _close(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            connection.close()

    @staticmethod
    def _backoff(attempt: int) -> None:
        time.sleep(random.random() * min(MAX_BACKOFF_SECONDS, 2.0 ** attempt))


def _error(operation: str, status: int, data: bytes) -> KinesisCallError:
    """The error an AWS JSON 1.1 answer carries (``__type`` may be prefixed with a
    namespace, ``message`` may be spelled ``Message``)."""
    try:
        body = json.loads(data) if data else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("__type") or body.get("code") or f"HTTP{status}").rpartition("#")[2]
    message = str(body.get("message") or body.get("Message") or data[:200].decode(
        "utf-8", "replace"))
    return KinesisCallError(operation, code, message, status)
