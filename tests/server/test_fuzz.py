"""Bounded fuzzing of the server's wire APIs: no answer may be a 5xx, none may hang, and
no data the requests cannot name may change.

* Kinesis (every operation of botocore's ``kinesis`` model) and the SageMaker control
  plane (every operation :data:`forestream.server.aws.sagemaker.OPERATIONS` serves), as
  raw ``POST /`` requests (not boto3, so invalid input gets through). Bodies are drawn by
  Hypothesis from the botocore input shapes: well-typed requests whose values keep the
  shape's constraints or name existing resources (to reach the operations themselves),
  wild ones with random members, out-of-range numbers, non-base64 blobs and wrong types
  anywhere, and garbage bodies; Kinesis also over CBOR (NaN, infinities, bignums,
  semantic tags, self-referencing values). Every answer must be below 500, come within
  :data:`ANSWER_SECONDS` and be AWS-shaped (``__type`` and ``message`` in errors).
* The REST API under ``/api/v1``: schemathesis, from the server's own OpenAPI document,
  positive and negative cases per operation; no 5xx, and answers as documented.
* Sentinels: a stream with records and a model group, created before fuzzing, whose
  names no generated value contains: afterwards the stream holds exactly its records,
  its files are unchanged and the group is as it was. The server's log holds no
  traceback.

Budgets are fixed and runs are derandomized, so CI sees the same requests every time.
``FORESTREAM_FUZZ_SCALE=N`` multiplies the example counts for a deeper local run, and
``FORESTREAM_FUZZ_SEED=N`` draws other requests; ``FORESTREAM_FUZZ_REPORT=1`` (with ``-s``)
prints how each operation answered, to see how deep the requests reach.
"""

from __future__ import annotations

import base64
import collections
import datetime as dt
import decimal
import fractions
import hashlib
import inspect
import json
import math
import os
import re
import threading
import time
import uuid
from pathlib import Path

import boto3
import botocore.session
import cbor2
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from aws_signing import signed_headers
from forestream.config import Settings
from forestream.server.aws.kinesis import REQUIRED_HERE as KINESIS_REQUIRED
from forestream.server.aws.sagemaker import OPERATIONS as SAGEMAKER_SUPPORTED
from forestream.server.rest.openapi import build_document
from forestream.streams.store import StreamStore
from server_support import ServerProcess, free_port

pytestmark = [pytest.mark.service]

SCALE = max(1, int(os.environ.get("FORESTREAM_FUZZ_SCALE", "1")))
KINESIS_EXAMPLES = 40 * SCALE  # per supported Kinesis operation
UNSUPPORTED_EXAMPLES = 4 * SCALE  # per Kinesis operation the store does not implement
SAGEMAKER_EXAMPLES = 40 * SCALE  # per SageMaker operation
REST_EXAMPLES = 15 * SCALE  # per REST operation
MIB = 1024 * 1024
ANSWER_SECONDS = 10.0  # a hang is an answer that takes longer

JSON_TYPE = "application/x-amz-json-1.1"
CBOR_TYPE = "application/x-amz-cbor-1.1"
KINESIS_TARGET = "Kinesis_20131202."
SAGEMAKER_TARGET = "SageMaker."
REGION, ACCOUNT = "us-east-1", "000000000000"

#: No generated value contains this (case-insensitive), so no request can name the sentinels.
SENTINEL = "fuzzkeep"
SENTINEL_STREAM = f"{SENTINEL}-stream"
SENTINEL_GROUP = f"{SENTINEL}-group"
SENTINEL_RECORDS = [(f"key-{i}", f"precious record {i}".encode() * (i + 1)) for i in range(6)]
#: Resources the fuzzer may name (and change, or delete): requests reach past validation.
PLAY_STREAM, PLAY_CONSUMER, PLAY_GROUP = "play", "play-consumer", "play-group"
STREAM_ARN = f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{{}}"
SAGEMAKER_ARN = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:{{}}/{{}}"

_SESSION = botocore.session.get_session()
KINESIS_MODEL = _SESSION.get_service_model("kinesis")
SAGEMAKER_MODEL = _SESSION.get_service_model("sagemaker")
KINESIS_OPERATIONS = sorted(KINESIS_MODEL.operation_names)
SAGEMAKER_OPERATIONS = sorted(SAGEMAKER_SUPPORTED)


def _snake(name: str) -> str:
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower()


def _supported(operation: str) -> bool:
    return operation == "SubscribeToShard" or hasattr(StreamStore, _snake(operation))


def _accepted(operation: str) -> set[str] | None:
    """The request members the store's method for a Kinesis operation takes (None: all)."""
    if operation == "SubscribeToShard" or not _supported(operation):
        return None
    parameters = inspect.signature(getattr(StreamStore, _snake(operation))).parameters
    members = KINESIS_MODEL.operation_model(operation).input_shape.members
    return {name for name in members if _snake(name) in parameters}


def _settings(examples: int):
    """Hypothesis settings of a fuzz test: derandomized (CI sees the same requests every
    time) unless ``FORESTREAM_FUZZ_SEED`` asks for other ones, no example database."""
    chosen = os.environ.get("FORESTREAM_FUZZ_SEED") or None
    configured = settings(max_examples=examples, derandomize=chosen is None, database=None,
                          deadline=None, phases=(Phase.explicit, Phase.generate, Phase.shrink),
                          suppress_health_check=list(HealthCheck), print_blob=False)
    if chosen is None:
        return configured
    return lambda test: seed(int(chosen))(configured(test))


# ------------------------------------------------------------------ values of any type

def _no_sentinel(text: str) -> bool:
    return SENTINEL not in text.lower()


TEXT = st.text(max_size=24).filter(_no_sentinel)
NASTY_STRINGS = st.sampled_from([
    "", " ", ".", "..", "/", "../../etc/passwd", "a/b", "\x00", "%2e%2e%2f", "CON", "\ud7ff",
    "a" * 129, "b" * 300, "ü" * 64, "😀" * 40, "'; DROP TABLE streams; --", "${jndi:x}",
    "arn:aws:kinesis:us-east-1:000000000000:stream/", "shardId-", "shardId-999999999999",
    "shardId-" + "9" * 40, "-1", "1e999", "NaN", "null", "c" * 5000])
BIG_INTS = st.sampled_from([2**31 - 1, 2**31, -2**31 - 1, 2**53 + 1, 2**63 - 1, 2**63,
                            -2**63 - 1, 2**64, 10**30, -10**30])
JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), BIG_INTS,
                         st.floats(allow_nan=False, allow_infinity=False), TEXT, NASTY_STRINGS)
ANY_JSON = st.recursive(JSON_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)), max_leaves=6)
#: CBOR carries more than JSON: bytes, non-finite floats, bignums, datetimes, tags.
SEMANTIC_TAGS = [0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 28, 29, 30, 32, 35, 36, 37, 100, 256,
                 258, 259, 260, 261, 1004, 55799]
CBOR_EXTRAS = st.one_of(
    st.binary(max_size=24),
    st.sampled_from([math.nan, math.inf, -math.inf, 10**40, -(10**40), cbor2.undefined,
                     cbor2.CBORSimpleValue(99), decimal.Decimal("1e400"),
                     fractions.Fraction(1, 3), uuid.UUID(int=7), {1, 2}, b"\xff" * 3]),
    st.datetimes(min_value=dt.datetime(1, 1, 2), timezones=st.just(dt.timezone.utc)),
    st.builds(cbor2.CBORTag, st.sampled_from(SEMANTIC_TAGS),
              st.one_of(JSON_SCALARS, st.binary(max_size=8), st.lists(st.integers(), max_size=3))))
ANY_CBOR = st.recursive(st.one_of(JSON_SCALARS, CBOR_EXTRAS), lambda inner: st.one_of(
    st.lists(inner, max_size=3),
    st.dictionaries(st.one_of(TEXT, st.integers(), st.binary(max_size=4)), inner,
                    max_size=3)), max_leaves=6)


ABSENT = object()  # a member left out


def _weighted(*pairs: tuple[int, st.SearchStrategy]) -> st.SearchStrategy:
    """One of the strategies, chosen with the given integer weights."""
    bag = [strategy for weight, strategy in pairs for _ in range(weight)]
    return st.sampled_from(range(len(bag))).flatmap(bag.__getitem__)


def _truncate(limit: int | None):
    return (lambda text: text[:limit]) if limit else (lambda text: text)


@st.composite
def _huge_blob(draw, limit: int | None, binary: bool):
    """A blob about its size limit, or a stream's default record size limit (1 MiB) if
    that is lower, built without drawing every byte."""
    size = min(limit or MIB, MIB) + draw(st.sampled_from([-1, 0, 1, 4096]))
    data = bytes([draw(st.integers(0, 255))]) * max(size, 0)
    return data if binary else base64.b64encode(data).decode()


# ------------------------------------------------------------ values of botocore shapes

class ShapeValues:
    """Hypothesis strategies for a botocore service model's input shapes.

    ``wild`` False: well-typed values that keep the shape's constraints (enums, patterns,
    lengths, ranges) or come from ``hints`` (existing resources, by member name), so that
    requests pass validation and reach the operation. ``wild`` True: any subset of
    members, values out of range and of the wrong type anywhere. ``binary``: values for a
    CBOR body (blobs as bytes, NaN and infinities allowed) rather than JSON.
    """

    MAX_DEPTH = 5

    def __init__(self, hints: dict[str, list], *, wild: bool, binary: bool,
                 required: dict[str, str] | None = None) -> None:
        self.hints = hints
        self.required = required or {}  # shape name -> a member the server requires too
        self.wild = wild
        self.binary = binary
        self.anything = ANY_CBOR if binary else ANY_JSON
        self._cache: dict[tuple, st.SearchStrategy] = {}

    def request(self, shape, accepted: set[str] | None = None) -> st.SearchStrategy:
        """Request bodies of an operation's input ``shape``; tame ones only carry the
        ``accepted`` members (when given: those the implementation takes)."""
        if shape is None:
            return st.just({})
        if accepted is None or self.wild:
            return self.value(shape, 0, None)
        members = {name: self.value(member, 1, name) for name, member in
                   shape.members.items() if name in accepted}
        return self._tame_structure(shape, members, optional=True)

    def _tame_structure(self, shape, members: dict, optional: bool) -> st.SearchStrategy:
        """Required members always; optional ones that name resources (hints) mostly, and
        (when ``optional``) the others now and then."""
        required = self._required(shape)
        hinted = {k: _weighted((3, v), (1, st.just(ABSENT))) for k, v in members.items()
                  if k not in required and k in self.hints}
        others = {k: v for k, v in members.items() if k not in required and k not in hinted}
        fixed = {**{k: v for k, v in members.items() if k in required}, **hinted}
        return st.fixed_dictionaries(fixed, optional=others if optional else {}).map(
            lambda d: {k: v for k, v in d.items() if v is not ABSENT})

    def value(self, shape, depth: int, member: str | None) -> st.SearchStrategy:
        key = (shape.name, depth, member)
        if key not in self._cache:
            self._cache[key] = st.deferred(lambda: self._value(shape, depth, member))
        return self._cache[key]

    def _value(self, shape, depth: int, member: str | None) -> st.SearchStrategy:
        typed = self._typed(shape, depth)
        hint = self.hints.get(member or "")
        if self.wild:
            pairs = [(6, typed), (2, self.anything)]
            if hint:
                pairs.append((1, st.sampled_from(hint)))
            return _weighted(*pairs)
        return _weighted((1, typed), (3, st.sampled_from(hint))) if hint else typed

    def _required(self, shape) -> set[str]:
        extra = self.required.get(shape.name)
        return set(shape.required_members) | ({extra} if extra else set())

    def _typed(self, shape, depth: int) -> st.SearchStrategy:
        kind = shape.type_name
        meta = shape.metadata
        low, high = meta.get("min"), meta.get("max")
        if kind == "structure":
            if meta.get("document"):
                return self.anything
            if depth >= 2 * self.MAX_DEPTH:
                return st.just({})
            members = {name: self.value(member, depth + 1, name)
                       for name, member in shape.members.items()}
            if self.wild:
                return st.fixed_dictionaries({}, optional=members)
            return self._tame_structure(shape, members, optional=depth < self.MAX_DEPTH)
        if kind == "list":
            item = self.value(shape.member, depth + 1, None)
            lo = low or 0
            lists = st.lists(item, min_size=lo, max_size=max(lo, min(high or 3, 3)))
            if not self.wild:
                return lists
            if high is None or high > 1000:
                return st.lists(item, max_size=4)
            too_many = st.just([None] * (high + 1))  # over the limit, cheaply
            return _weighted((5, st.lists(item, max_size=4)), (1, too_many))
        if kind == "map":
            keys = self._string(shape.key)  # map keys must be hashable
            values = self.value(shape.value, depth + 1, None)
            lo = low or 0
            return st.dictionaries(keys, values, min_size=lo,
                                   max_size=max(lo, min(high or 3, 3)))
        if kind == "string":
            return self._string(shape)
        if kind in ("integer", "long"):
            bounded = st.integers(low if low is not None else -(2**31),
                                  high if high is not None else 2**31)
            if not self.wild:
                return bounded
            edges = [v for v in (low, high) if v is not None]
            near = st.sampled_from([e + d for e in edges for d in (-1, 0, 1)]) if edges \
                else BIG_INTS
            return _weighted((3, bounded), (2, near), (2, BIG_INTS), (1, st.integers()),
                             (1, st.floats(allow_nan=False, allow_infinity=False)),
                             (1, st.integers().map(str)))
        if kind in ("float", "double"):
            finite = st.floats(low if low is not None else None,
                               high if high is not None else None,
                               allow_nan=False, allow_infinity=False)
            if not self.wild:
                return finite
            loose = st.floats(allow_nan=self.binary, allow_infinity=self.binary)
            return _weighted((3, finite), (2, loose), (1, BIG_INTS))
        if kind == "boolean":
            return st.booleans()
        if kind == "blob":
            raw = st.binary(max_size=min(high or 64, 64), min_size=min(low or 0, 64))
            valid = raw if self.binary else raw.map(lambda b: base64.b64encode(b).decode())
            if not self.wild:
                return valid
            return _weighted((3, valid), (1, _huge_blob(high, self.binary)), (2, TEXT),
                             (1, st.binary(max_size=16) if self.binary else NASTY_STRINGS))
        if kind == "timestamp":
            epoch = st.one_of(st.floats(0, 4e9), st.integers(0, 4_000_000_000))
            if self.binary:
                epoch = st.one_of(epoch, st.datetimes(
                    min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1),
                    timezones=st.just(dt.timezone.utc)))
            if not self.wild:
                return epoch
            loose = st.floats(allow_nan=self.binary, allow_infinity=self.binary)
            iso = st.sampled_from(["2024-01-01T00:00:00Z", "2024-13-45T99:00:00Z",
                                   "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-12:00",
                                   "yesterday", ""])
            return _weighted((3, epoch), (2, loose), (2, BIG_INTS), (2, iso))
        return self.anything

    def _string(self, shape) -> st.SearchStrategy:
        meta = shape.metadata
        low, high = meta.get("min") or 0, meta.get("max")
        if shape.enum:
            valid = st.sampled_from(list(shape.enum))
        else:
            plain = st.text(min_size=low, max_size=max(low, min(high or 40, 40)))
            valid = plain
            pattern = meta.get("pattern")
            if pattern and _python_regex(pattern):
                matching = st.from_regex(pattern, fullmatch=True).map(_truncate(high))
                valid = _weighted((3, matching), (1, plain))
        valid = valid.filter(_no_sentinel)
        if not self.wild:
            return valid
        return _weighted((3, valid), (2, TEXT), (2, NASTY_STRINGS))


def _mostly(good: list, *bad) -> list:
    """Hint values: the good ones three times as often as the bad."""
    return [*good * 3, *bad] if bad else list(good)


def _python_regex(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except re.error:  # Java's \p{L} classes
        return False
    return True


# ------------------------------------------------------------------ request bodies

def _encode(value, binary: bool) -> bytes:
    if binary:
        return cbor2.dumps(value, timezone=dt.timezone.utc)
    return json.dumps(value, allow_nan=False).encode()


def _self_referencing(members: list[str]) -> st.SearchStrategy:
    """A CBOR map whose member refers back to the map itself (shared-value tags 28/29)."""
    def build(name: str) -> bytes:  # tag 28 {name: tag 29 (reference 0)}
        return b"\xd8\x1c\xa1" + cbor2.dumps(name) + b"\xd8\x1d\x00"
    return st.sampled_from(members or ["StreamName"]).map(build)


def _garbage(binary: bool, members: list[str]) -> st.SearchStrategy:
    """Bodies that are not the operation's object at all."""
    raw = st.one_of(st.binary(max_size=64), st.sampled_from([
        b"", b"{", b"[" * 2000, b'{"a":' * 600, b"\xff\xfe", b"null", b"[]", b'"x"',
        b"\x81" * 1000 + b"\x00", b"\xbf\xbf\xbf", b"\x9f\xff", b"\xa1\x81\x00\x00",
        b"\xc1\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00", b"\xd8\x1e\x82\x01\x00"]))
    if binary:
        return st.one_of(raw, ANY_CBOR.map(lambda v: _encode(v, True)),
                         _self_referencing(members))
    return st.one_of(raw, ANY_JSON.map(lambda v: _encode(v, False)))


def _bodies(shape, hints: dict[str, list], binary: bool, accepted: set[str] | None = None,
            required: dict[str, str] | None = None) -> st.SearchStrategy:
    members = list(shape.members) if shape is not None else []
    tame = ShapeValues(hints, wild=False, binary=binary, required=required).request(
        shape, accepted)
    wild = ShapeValues(hints, wild=True, binary=binary).request(shape)
    return _weighted((4, tame.map(lambda v: _encode(v, binary))),
                     (4, wild.map(lambda v: _encode(v, binary))),
                     (1, _garbage(binary, members)))


# ------------------------------------------------------------------ the server

class StderrTail:
    """Reads the server's stderr as it comes (a full pipe would block the server) and
    keeps its last lines for failure messages."""

    def __init__(self, stream) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=4000)
        self.tracebacks = 0
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip()
            self.lines.append(line)
            if "Traceback (most recent call last)" in line:
                self.tracebacks += 1

    def tail(self, count: int = 60) -> str:
        return "\n".join(list(self.lines)[-count:])


def _kinesis_client(server: ServerProcess):
    return boto3.client("kinesis", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id="fuzz", aws_secret_access_key="fuzz",
                        config=Config(retries={"max_attempts": 1}))


def _sagemaker_client(server: ServerProcess):
    return boto3.client("sagemaker", endpoint_url=server.url, region_name=REGION,
                        aws_access_key_id="fuzz", aws_secret_access_key="fuzz",
                        config=Config(retries={"max_attempts": 1}))


def _wait_active(kinesis, stream: str) -> None:
    kinesis.get_waiter("stream_exists").wait(StreamName=stream,
                                             WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})


def _read_stream(kinesis, stream: str) -> list[tuple[str, bytes]]:
    """Every record of ``stream``, shard by shard, as (partition key, data)."""
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
            out += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
            if not page["Records"] or not page.get("NextShardIterator"):
                break
            iterator = page["NextShardIterator"]
    return out


def _fingerprint(data_dir: Path) -> dict[str, str]:
    """Relative path -> SHA-256 of the data directory's files that belong to a sentinel
    (their paths name it: the stream's segment logs and indexes, its key if any), less
    SQLite side files, locks and log files (a stream's segments, NNN.log, are data)."""
    out = {}
    for path in sorted(data_dir.rglob("*")):
        relative = str(path.relative_to(data_dir))
        name = path.name
        if not path.is_file() or SENTINEL not in relative.lower() or \
                name.endswith(("-wal", "-shm", ".lock")) or \
                name.endswith(".log") and not path.stem.isdigit():
            continue
        out[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


class Fuzzed:
    """The fuzzed server, its sentinels and the resources requests may name."""

    def __init__(self, server: ServerProcess, stderr: StderrTail) -> None:
        self.server = server
        self.stderr = stderr
        self.http = httpx.Client(base_url=server.url, timeout=ANSWER_SECONDS)
        self.kinesis = _kinesis_client(server)
        self.sagemaker = _sagemaker_client(server)
        self.answers: collections.Counter = collections.Counter()  # (target, status)
        self.errors: collections.Counter = collections.Counter()
        self.hints: dict[str, list] = {}
        self.sentinel: dict = {}

    # ------------------------------------------------------------ set-up
    def prepare(self) -> None:
        """Create the sentinels (through boto3 and the REST API) and fingerprint them."""
        kinesis = self.kinesis
        kinesis.create_stream(StreamName=SENTINEL_STREAM, ShardCount=2)
        _wait_active(kinesis, SENTINEL_STREAM)
        for key, data in SENTINEL_RECORDS:
            kinesis.put_record(StreamName=SENTINEL_STREAM, PartitionKey=key, Data=data)
        kinesis.add_tags_to_stream(StreamName=SENTINEL_STREAM, Tags={"keep": "yes"})
        created = self.http.post("/api/v1/models/groups", headers=self.server.auth,
                                 json={"name": SENTINEL_GROUP, "description": "keep me"})
        assert created.status_code == 201, created.text
        self.sentinel = self._snapshot()
        assert any(name.endswith(".log") for name in self.sentinel["files"]), \
            f"the sentinel stream's segments are not fingerprinted: {self.sentinel['files']}"

    def refresh_play(self) -> None:
        """(Re)create the play resources an earlier test may have deleted or changed, and
        the hints that name them (iterators and consumer ARNs are new each time)."""
        kinesis = self.kinesis
        play_arn = STREAM_ARN.format(PLAY_STREAM)
        self._play_stream()
        put = kinesis.put_records(StreamName=PLAY_STREAM, Records=[
            {"PartitionKey": f"p{i}", "Data": b"play"} for i in range(4)])
        sequences = [r["SequenceNumber"] for r in put["Records"] if "SequenceNumber" in r]
        consumer = self._play_consumer(play_arn)
        shards = [s["ShardId"] for s in kinesis.list_shards(StreamName=PLAY_STREAM)["Shards"]]
        iterators = [kinesis.get_shard_iterator(
            StreamName=PLAY_STREAM, ShardId=shard, ShardIteratorType=kind)["ShardIterator"]
            for shard in shards[:3] for kind in ("TRIM_HORIZON", "LATEST")]
        try:
            self.sagemaker.describe_model_package_group(ModelPackageGroupName=PLAY_GROUP)
        except ClientError:
            self.sagemaker.create_model_package_group(ModelPackageGroupName=PLAY_GROUP)
        shards = sorted(set(shards[:4]) | {"shardId-000000000000", "shardId-000000000009"})
        max_hash = str(2**128 - 1)
        self.hints = {  # existing resources mostly, missing or malformed ones sometimes
            "StreamName": _mostly([PLAY_STREAM], "no-such-stream"),
            "StreamARN": _mostly([play_arn], STREAM_ARN.format("no-such-stream")),
            "ResourceARN": _mostly([play_arn], consumer["ConsumerARN"]),
            "ConsumerARN": _mostly([consumer["ConsumerARN"]], consumer["ConsumerARN"] + "0"),
            "ConsumerName": _mostly([PLAY_CONSUMER], "other-consumer"),
            "ShardId": shards, "ExclusiveStartShardId": shards, "ShardToSplit": shards,
            "ShardToMerge": shards, "AdjacentShardToMerge": shards,
            "ShardIterator": iterators,
            "StartingSequenceNumber": sequences, "SequenceNumber": sequences,
            "SequenceNumberForOrdering": sequences,
            "ExplicitHashKey": _mostly(["0", str(2**127), max_hash], str(2**128), "-1"),
            "NewStartingHashKey": _mostly(["1", str(2**127), max_hash], "0"),
            "PartitionKey": _mostly(["p0", "\u00e9t\u00e9"], "k" * 257),
            "KeyId": ["alias/aws/kinesis"],
            "ModelPackageGroupName": _mostly([PLAY_GROUP, SAGEMAKER_ARN.format(
                "model-package-group", PLAY_GROUP)], "no-such-group"),
            "ModelPackageName": [f"{PLAY_GROUP}/1", SAGEMAKER_ARN.format(
                "model-package", f"{PLAY_GROUP}/1"), "no-such-group/7", f"{PLAY_GROUP}/x"],
            "ModelPackageArn": [SAGEMAKER_ARN.format("model-package", f"{PLAY_GROUP}/1")],
            "ModelName": ["play-model"], "EndpointConfigName": ["play-config"],
            "EndpointName": ["play-endpoint"],
            "ModelDataUrl": ["s3://bucket/models/model.tar.gz", "s3://b", "s3://bucket/x/",
                             "https://example.invalid/model.tar.gz", "file:///etc/passwd"],
            "S3Uri": ["s3://bucket/models/model.tar.gz", "s3://../x"],
            "Environment": [{"FORESTREAM_TRUST": "true"}, {"SAGEMAKER_PROGRAM": "x.py"},
                            {"FORESTREAM_TRUST": "maybe"}],
        }

    def _play_stream(self) -> None:
        kinesis = self.kinesis
        try:
            status = kinesis.describe_stream_summary(StreamName=PLAY_STREAM)[
                "StreamDescriptionSummary"]["StreamStatus"]
        except kinesis.exceptions.ResourceNotFoundException:
            status = None
        if status == "DELETING":  # a fuzzed DeleteStream: the name is free once it is gone
            kinesis.get_waiter("stream_not_exists").wait(
                StreamName=PLAY_STREAM, WaiterConfig={"Delay": 0.1, "MaxAttempts": 100})
            status = None
        if status is None:
            try:
                kinesis.create_stream(StreamName=PLAY_STREAM, ShardCount=2)
            except kinesis.exceptions.LimitExceededException:  # fuzzed streams hold them
                for page in kinesis.get_paginator("list_streams").paginate():
                    for name in set(page["StreamNames"]) - {SENTINEL_STREAM}:
                        kinesis.delete_stream(StreamName=name, EnforceConsumerDeletion=True)
                kinesis.create_stream(StreamName=PLAY_STREAM, ShardCount=2)
        _wait_active(kinesis, PLAY_STREAM)

    def _play_consumer(self, play_arn: str) -> dict:
        """The play consumer, registered (again) if need be, and ACTIVE."""
        kinesis = self.kinesis
        consumers = kinesis.list_stream_consumers(StreamARN=play_arn)["Consumers"]
        consumer = next((c for c in consumers if c["ConsumerName"] == PLAY_CONSUMER), None)
        if consumer is None:
            if len(consumers) >= 20:  # fuzzed consumers took every place
                for other in consumers:
                    kinesis.deregister_stream_consumer(ConsumerARN=other["ConsumerARN"])
            consumer = kinesis.register_stream_consumer(StreamARN=play_arn,
                                                        ConsumerName=PLAY_CONSUMER)["Consumer"]
        deadline = time.monotonic() + 10
        while kinesis.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"])[
                "ConsumerDescription"]["ConsumerStatus"] != "ACTIVE":
            assert time.monotonic() < deadline, "the play consumer did not become ACTIVE"
            time.sleep(0.05)
        return consumer

    def _snapshot(self) -> dict:
        summary = self.kinesis.describe_stream_summary(StreamName=SENTINEL_STREAM)[
            "StreamDescriptionSummary"]
        group = self.http.get(f"/api/v1/models/groups/{SENTINEL_GROUP}",
                              headers=self.server.auth)
        return {"files": _fingerprint(self.server.data_dir), "summary": summary,
                "shards": self.kinesis.list_shards(StreamName=SENTINEL_STREAM)["Shards"],
                "tags": self.kinesis.list_tags_for_stream(StreamName=SENTINEL_STREAM)["Tags"],
                "group": (group.status_code, group.json())}

    # ------------------------------------------------------------ requests
    def post_aws(self, target: str, body: bytes, binary: bool) -> None:
        """Send one AWS request and check its answer (status, time, shape)."""
        headers = {"X-Amz-Target": target, "Content-Type": CBOR_TYPE if binary else JSON_TYPE}
        if target.startswith(KINESIS_TARGET):  # signed as SDKs sign: unsigned is refused
            headers = signed_headers(self.server.url + "/", body, headers)
        what = f"{target} {'CBOR' if binary else 'JSON'} body {body[:300]!r}"
        started = time.monotonic()
        try:
            with self.http.stream("POST", "/", content=body, headers=headers) as response:
                if response.status_code == 200 and target.endswith(".SubscribeToShard"):
                    # an event stream that lasts minutes: its start is the answer
                    assert response.headers["content-type"] == \
                        "application/vnd.amazon.eventstream", what
                    self.answers[target, 200] += 1
                    return
                response.read()
        except httpx.TimeoutException:
            pytest.fail(f"no answer within {ANSWER_SECONDS} s to {what}\n{self._log()}")
        except httpx.TransportError as exc:
            pytest.fail(f"connection failed ({exc!r}) on {what}\n{self._log()}")
        elapsed = time.monotonic() - started
        status = response.status_code
        self.answers[target, status] += 1
        assert status < 500, f"{status} for {what}: {response.content[:500]!r}\n{self._log()}"
        assert elapsed < ANSWER_SECONDS, f"{elapsed:.1f} s for {what}"
        self._check_shape(response, binary, what, target)
        if os.environ.get("FORESTREAM_FUZZ_REPORT") and status >= 400:
            document = cbor2.loads(response.content) if binary else json.loads(response.content)
            self.errors[target, document["__type"],
                        document.get("message", document.get("Message", ""))[:70]] += 1

    def _check_shape(self, response: httpx.Response, binary: bool, what: str,
                     target: str) -> None:
        media = response.headers.get("content-type", "")
        assert media == (CBOR_TYPE if binary else JSON_TYPE), f"content type {media} for {what}"
        assert response.headers.get("x-amzn-requestid"), f"no x-amzn-RequestId for {what}"
        if response.status_code == 200 and not response.content:
            # AWS's answer to an operation without output is an empty body
            service, operation = target.split(".", 1)
            model = KINESIS_MODEL if service + "." == KINESIS_TARGET else SAGEMAKER_MODEL
            assert model.operation_model(operation).output_shape is None, \
                f"empty answer to {what}"
            return
        document = cbor2.loads(response.content) if binary else json.loads(response.content)
        assert isinstance(document, dict), f"answer {document!r} to {what}"
        if response.status_code >= 400:
            kind = document.get("__type")
            assert isinstance(kind, str) and kind, f"no __type in {document!r} for {what}"
            # AWS's protocol layer answers bodies it cannot read with a bare __type, and
            # members of the wrong type with "Message"; everything else has "message"
            message = document.get("message", document.get("Message"))
            if kind not in ("SerializationException", "UnknownOperationException"):
                assert "message" in document, f"no message in {document!r} for {what}"
            assert message is None or isinstance(message, str), what
            assert response.headers.get("x-amzn-errortype") == kind, what

    def alive(self) -> None:
        assert self.server.proc.poll() is None, f"the server exited\n{self._log()}"

    def _log(self, lines: int = 60) -> str:
        return f"server log (last lines):\n{self.stderr.tail(lines)}"

    def close(self) -> None:
        self.http.close()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory):
    """A server refusing clients' code, whose S3 is a closed local port (imports fail at
    once and nothing leaves this machine), with the sentinels and play resources."""
    root = tmp_path_factory.mktemp("fuzz")
    env = {"FORESTREAM_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
           "AWS_ACCESS_KEY_ID": "fuzz", "AWS_SECRET_ACCESS_KEY": "fuzz",
           "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": REGION}
    server = ServerProcess(root / "data", env, allow_code=False).start()
    stderr = StderrTail(server.proc.stderr)
    state = Fuzzed(server, stderr)
    try:
        state.prepare()
        yield state
        if os.environ.get("FORESTREAM_FUZZ_REPORT"):  # what the requests reached
            for (target, status), count in sorted(state.answers.items()):
                print(f"{target:60} {status} {count}")
            for key, count in state.errors.most_common():
                print(count, *key)
    finally:
        state.close()
        server.stop()


# ------------------------------------------------------------------ AWS JSON 1.1 / CBOR

def _aws_requests(service: str, operation: str, hints: dict) -> st.SearchStrategy:
    """(binary, body) pairs for one operation (Kinesis: JSON and CBOR)."""
    model = KINESIS_MODEL if service == "kinesis" else SAGEMAKER_MODEL
    shape = model.operation_model(operation).input_shape
    accepted = _accepted(operation) if service == "kinesis" else None
    required = KINESIS_REQUIRED if service == "kinesis" else None
    json_bodies = _bodies(shape, hints, False, accepted, required).map(lambda b: (False, b))
    if service != "kinesis":
        return json_bodies
    cbor_bodies = _bodies(shape, hints, True, accepted, required).map(lambda b: (True, b))
    return _weighted((2, json_bodies), (1, cbor_bodies))


@pytest.mark.parametrize("operation", KINESIS_OPERATIONS)
def test_kinesis_operation_answers_fuzzed_requests(fuzzed, operation):
    """JSON and CBOR bodies for one Kinesis operation (those the store lacks get a few, to
    see them refused in AWS's shape)."""
    examples = KINESIS_EXAMPLES if _supported(operation) else UNSUPPORTED_EXAMPLES
    fuzzed.refresh_play()

    requests = _aws_requests("kinesis", operation, fuzzed.hints)

    @_settings(examples)
    @given(st.data())
    def run(data):  # drawn inside: the strategy's repr is too long for a report
        binary, body = data.draw(requests)
        fuzzed.post_aws(KINESIS_TARGET + operation, body, binary)

    run()
    fuzzed.alive()


@pytest.mark.parametrize("operation", SAGEMAKER_OPERATIONS)
def test_sagemaker_operation_answers_fuzzed_requests(fuzzed, operation):
    """JSON bodies for one SageMaker control-plane operation."""
    fuzzed.refresh_play()
    requests = _aws_requests("sagemaker", operation, fuzzed.hints)

    @_settings(SAGEMAKER_EXAMPLES)
    @given(st.data())
    def run(data):
        binary, body = data.draw(requests)
        fuzzed.post_aws(SAGEMAKER_TARGET + operation, body, binary)

    run()
    fuzzed.alive()


def test_put_records_without_a_partition_key_is_a_validation_error(fuzzed):
    """Found by this fuzzer: a record without PartitionKey (optional in newer botocore
    models, for AUTO distribution) was a 500 (KeyError in the store)."""
    body = {"StreamName": PLAY_STREAM, "Records": [{"Data": "", "PartitionKey": "a"},
                                                    {"Data": ""}]}
    data = json.dumps(body).encode()
    answer = fuzzed.http.post("/", content=data, headers=signed_headers(
        fuzzed.server.url + "/", data,
        {"X-Amz-Target": KINESIS_TARGET + "PutRecords", "Content-Type": JSON_TYPE}))
    assert answer.status_code == 400
    assert answer.json()["__type"] == "ValidationException"
    assert "'records.2.member.partitionKey'" in answer.json()["message"]


# ------------------------------------------------------------------ REST (/api/v1)

def _rest_operations() -> list[tuple[str, str]]:
    document = build_document(Settings(data_dir=Path("unused")))
    return [(method.upper(), path) for path, item in document["paths"].items()
            for method in item if method in ("get", "put", "post", "patch", "delete")]


REST_OPERATIONS = _rest_operations()


@pytest.fixture(scope="module")
def rest_schema(fuzzed):
    schemathesis = pytest.importorskip("schemathesis")
    return schemathesis.openapi.from_url(f"{fuzzed.server.url}/api/v1/openapi.json",
                                         timeout=ANSWER_SECONDS)


@pytest.mark.parametrize("method,path", REST_OPERATIONS,
                         ids=[f"{m} {p}" for m, p in REST_OPERATIONS])
def test_rest_operation_answers_fuzzed_requests(fuzzed, rest_schema, method, path):
    """schemathesis, positive and negative cases: no 5xx, no hang, answers as documented
    (status codes, content types, bodies matching the response schemas)."""
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    fuzzed.refresh_play()
    operation = rest_schema[path][method]
    cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                      operation.as_strategy(GenerationMode.NEGATIVE))
    if "{group}" in path:  # also an existing group, so that requests get past the 404
        cases = st.one_of(cases, operation.as_strategy(
            GenerationMode.POSITIVE, path_parameters={"group": PLAY_GROUP}))
    cases = cases.filter(lambda case: _no_sentinel(repr((
        case.path_parameters, case.query, case.body, case.headers))))
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]

    @_settings(REST_EXAMPLES)
    @given(cases)
    def run(case):
        # always the token: negative cases would spend themselves on the guard's 401
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"} | fuzzed.server.auth
        try:
            response = case.call(base_url=fuzzed.server.url, timeout=ANSWER_SECONDS)
        except Exception as exc:  # requests' timeouts and connection errors
            pytest.fail(f"{method} {path}: no answer ({exc!r})\n{fuzzed._log()}")
        fuzzed.answers[f"{method} {path}", response.status_code] += 1
        assert response.elapsed < ANSWER_SECONDS, f"{method} {path}: {response.elapsed} s"
        case.validate_response(response, checks=checks, headers=fuzzed.server.auth)

    run()
    fuzzed.alive()


def test_tag_keys_the_server_accepts_match_the_documented_pattern(fuzzed):
    """Found by this fuzzer (FORESTREAM_FUZZ_SEED=11, scale 5): a group tagged with a
    non-ASCII letter ('ª') was accepted, then listed against its own schema, whose
    pattern (JSON Schema, ECMA-262) reads ``\\w`` as ASCII. Keys are ASCII now, as
    documented: such a tag is refused, an ASCII one kept and valid."""
    jsonschema_rs = pytest.importorskip("jsonschema_rs")
    refused = fuzzed.http.post("/api/v1/models/groups", headers=fuzzed.server.auth,
                               json={"name": "tagged-group", "tags": {"\u00aa": "x"}})
    assert refused.status_code == 400 and "\u00aa" in refused.text
    created = fuzzed.http.post("/api/v1/models/groups", headers=fuzzed.server.auth,
                               json={"name": "tagged-group", "tags": {"team:ml": "x"}})
    assert created.status_code == 201, created.text
    document = fuzzed.http.get("/api/v1/openapi.json").json()
    schema = {**document["components"]["schemas"]["ModelGroup"],
              "components": document["components"]}
    assert jsonschema_rs.validator_for(schema).is_valid(created.json())


# ------------------------------------------------------------------ after the fuzzing

def test_sentinels_are_unchanged_and_nothing_went_wrong_inside(fuzzed):
    """Runs last in this file (pytest keeps a file's order; xdist's loadfile keeps the
    file on one worker): what the fuzzing could not name is as it was."""
    fuzzed.alive()
    before = fuzzed.sentinel
    after = fuzzed._snapshot()
    assert after["files"] == before["files"], "the sentinel stream's files changed"
    assert after["summary"] == before["summary"]
    assert after["shards"] == before["shards"]
    assert after["tags"] == before["tags"]
    assert after["group"] == before["group"]
    assert sorted(_read_stream(fuzzed.kinesis, SENTINEL_STREAM)) == sorted(SENTINEL_RECORDS)
    assert fuzzed.stderr.tracebacks == 0, f"tracebacks in the server log:\n{fuzzed._log(200)}"
