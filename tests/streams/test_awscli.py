"""The real AWS CLI (``aws kinesis ...``, a subprocess) against a real ``forestream server``.

The installed CLI is v1: it has no ``--cli-binary-format``, and a blob argument such as
``put-record --data`` is sent as the literal text given (the CLI base64-encodes it on the
wire), while ``fileb://PATH`` sends a file's raw bytes. Output blobs (``get-records`` Data)
come back base64-encoded.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from server_support import ServerProcess

pytestmark = pytest.mark.service

AWS = Path(sys.executable).with_name("aws")
ERROR_EXIT_CODES = (254, 255)  # v2 answers a service error with 254, v1 with 255


class AwsCli:
    """Run ``aws kinesis <op> ...`` against ``url`` with an isolated configuration."""

    def __init__(self, url: str, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        (home / "config").write_text("")
        (home / "credentials").write_text("")
        self.url = url
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.env.update({
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_CONFIG_FILE": str(home / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / "credentials"),
            "AWS_PAGER": "", "AWS_MAX_ATTEMPTS": "1", "AWS_RETRY_MODE": "standard",
            "HOME": str(home)})

    def run(self, *args: str) -> subprocess.CompletedProcess:
        cmd = [str(AWS), "kinesis", *args, "--endpoint-url", self.url,
               "--region", "us-east-1", "--output", "json"]
        return subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)

    def __call__(self, *args: str) -> dict:
        """Run a command that must succeed; its JSON output (``{}`` when it prints none)."""
        done = self.run(*args)
        assert done.returncode == 0, (args, done.returncode, done.stderr)
        return json.loads(done.stdout) if done.stdout.strip() else {}

    def each(self, *commands: tuple[str, ...]) -> list[dict]:
        """Run independent commands concurrently (each must succeed); their outputs."""
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda args: self(*args), commands))

    def fails(self, *args: str, code: str) -> str:
        """Run a command that must fail with the AWS error ``code``; its stderr."""
        done = self.run(*args)
        assert done.returncode in ERROR_EXIT_CODES, (args, done.returncode, done.stdout,
                                                     done.stderr)
        assert code in done.stderr, (args, done.stderr)
        return done.stderr


@pytest.fixture(scope="module")
def cli_server(tmp_path_factory):
    proc = ServerProcess(tmp_path_factory.mktemp("awscli") / "data").start()
    yield proc
    proc.stop()


@pytest.fixture
def aws(cli_server, tmp_path):
    if not AWS.exists():
        pytest.skip(f"no AWS CLI at {AWS}")
    return AwsCli(cli_server.url, tmp_path / "awshome")


@pytest.fixture
def own_aws(server, tmp_path):
    """The CLI against a server of its own (for listings no other test can disturb)."""
    if not AWS.exists():
        pytest.skip(f"no AWS CLI at {AWS}")
    return AwsCli(server.url, tmp_path / "awshome")


def requests_made(server: ServerProcess, operation: str) -> int:
    text = urllib.request.urlopen(server.request("/metrics")).read().decode()
    prefix = f'forestream_requests_total{{operation="{operation}"}} '
    return next((int(float(line[len(prefix):])) for line in text.splitlines()
                 if line.startswith(prefix)), 0)


def records_of(aws: AwsCli, stream: str, shard: str, *position: str) -> list[dict]:
    """Every record of ``shard`` from ``position`` (default TRIM_HORIZON) to its end."""
    position = position or ("--shard-iterator-type", "TRIM_HORIZON")
    iterator = aws("get-shard-iterator", "--stream-name", stream, "--shard-id", shard,
                   *position)["ShardIterator"]
    out = aws("get-records", "--shard-iterator", iterator, "--limit", "10000")
    assert out["MillisBehindLatest"] == 0
    return out["Records"]


def wait_active(aws: AwsCli, stream: str, seconds: float = 60.0) -> None:
    """Poll ``describe-stream-summary`` until ``stream`` is ACTIVE, bounded by ``seconds``:
    for where the CLI's own waiter (tested above) is not the subject, since it sleeps 10 s
    after any poll that finds the stream not ACTIVE yet."""
    deadline = time.monotonic() + seconds
    while aws("describe-stream-summary", "--stream-name", stream)[
            "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        assert time.monotonic() < deadline, f"{stream} still not ACTIVE after {seconds} s"
        time.sleep(0.1)


def test_cli_version_is_what_this_file_assumes(aws):
    done = subprocess.run([str(AWS), "--version"], env=aws.env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0
    assert (done.stdout + done.stderr).startswith("aws-cli/1."), done.stdout + done.stderr


def test_create_wait_describe_list_paginated_delete(own_aws, server):
    aws = own_aws
    names = [f"cli-list-{i}" for i in range(5)]
    assert aws.each(*[("create-stream", "--stream-name", name, "--shard-count", "2")
                      for name in names]) == [{}] * 5
    started = time.monotonic()
    aws("wait", "stream-exists", "--stream-name", names[-1])
    # The CLI's waiter sleeps 10 s between polls: this one must have succeeded at once.
    assert time.monotonic() - started < 8
    summary = aws("describe-stream-summary", "--stream-name", names[0])[
        "StreamDescriptionSummary"]
    assert summary["StreamStatus"] == "ACTIVE"
    assert summary["OpenShardCount"] == 2 and summary["RetentionPeriodHours"] == 24
    assert summary["StreamARN"] == f"arn:aws:kinesis:us-east-1:000000000000:stream/{names[0]}"

    # --page-size 2: the CLI walks NextToken itself, three requests, one merged answer.
    before = requests_made(server, "ListStreams")
    listed = aws("list-streams", "--page-size", "2")
    assert listed["StreamNames"] == names
    assert [s["StreamName"] for s in listed["StreamSummaries"]] == names
    assert all(s["StreamStatus"] == "ACTIVE" for s in listed["StreamSummaries"])
    assert "NextToken" not in listed
    assert requests_made(server, "ListStreams") - before == 3

    # --max-items: the CLI stops early and hands back its own token to resume from.
    head = aws("list-streams", "--max-items", "3", "--page-size", "2")
    assert head["StreamNames"] == names[:3] and head["NextToken"]
    tail = aws("list-streams", "--starting-token", head["NextToken"], "--page-size", "2")
    assert tail["StreamNames"] == names[3:]

    assert aws("delete-stream", "--stream-name", names[0]) == {}
    aws("wait", "stream-not-exists", "--stream-name", names[0])
    aws.fails("describe-stream-summary", "--stream-name", names[0],
              code="ResourceNotFoundException")
    assert aws("list-streams")["StreamNames"] == names[1:]


def test_put_and_get_records_round_trip_bytes(aws, tmp_path):
    aws("create-stream", "--stream-name", "cli-rec", "--shard-count", "2")
    aws("wait", "stream-exists", "--stream-name", "cli-rec")
    low, high = "0", str(2**127)  # explicit hash keys: shard 0, shard 1

    # CLI v1: --data is sent as the literal text given (not decoded from base64) ...
    text = aws("put-record", "--stream-name", "cli-rec", "--data", "aGVsbG8=",
               "--partition-key", "pk", "--explicit-hash-key", low)
    assert text["ShardId"] == "shardId-000000000000"
    assert text["EncryptionType"] == "NONE"
    # ... and fileb:// sends a file's bytes unchanged, including non-UTF-8 ones.
    raw = bytes(range(256)) + b"\x00\xff\xfe"
    (tmp_path / "blob.bin").write_bytes(raw)
    binary = aws("put-record", "--stream-name", "cli-rec", "--data",
                 f"fileb://{tmp_path / 'blob.bin'}", "--partition-key", "pk",
                 "--explicit-hash-key", low,
                 "--sequence-number-for-ordering", text["SequenceNumber"])
    assert int(binary["SequenceNumber"]) > int(text["SequenceNumber"])

    # put-records in shorthand and in JSON; entries answer in request order.
    short = aws("put-records", "--stream-name", "cli-rec", "--records",
                f"Data=one,PartitionKey=a,ExplicitHashKey={high}",
                f"Data=two,PartitionKey=b,ExplicitHashKey={low}")
    assert short["FailedRecordCount"] == 0
    assert [r["ShardId"] for r in short["Records"]] == ["shardId-000000000001",
                                                        "shardId-000000000000"]
    entries = [{"Data": f"json-{i}", "PartitionKey": f"k{i}", "ExplicitHashKey": high}
               for i in range(3)]
    batch = aws("put-records", "--stream-name", "cli-rec", "--records", json.dumps(entries))
    assert batch["FailedRecordCount"] == 0 and len(batch["Records"]) == 3
    seqs = [int(r["SequenceNumber"]) for r in batch["Records"]]
    assert seqs == sorted(seqs) and len(set(seqs)) == 3

    shard0 = records_of(aws, "cli-rec", "shardId-000000000000")
    assert [base64.b64decode(r["Data"]) for r in shard0] == [b"aGVsbG8=", raw, b"two"]
    assert [r["SequenceNumber"] for r in shard0] == [
        text["SequenceNumber"], binary["SequenceNumber"], short["Records"][1]["SequenceNumber"]]
    assert {r["PartitionKey"] for r in shard0} == {"pk", "b"}
    shard1 = records_of(aws, "cli-rec", "shardId-000000000001")
    assert [base64.b64decode(r["Data"]) for r in shard1] == [b"one", b"json-0", b"json-1",
                                                             b"json-2"]
    assert [r["PartitionKey"] for r in shard1] == ["a", "k0", "k1", "k2"]

    after = records_of(aws, "cli-rec", "shardId-000000000001", "--shard-iterator-type",
                       "AFTER_SEQUENCE_NUMBER", "--starting-sequence-number",
                       batch["Records"][0]["SequenceNumber"])
    assert [base64.b64decode(r["Data"]) for r in after] == [b"json-1", b"json-2"]


def test_resharding_split_merge_update_list_shards(aws):
    aws("create-stream", "--stream-name", "cli-rs", "--shard-count", "1")
    aws("wait", "stream-exists", "--stream-name", "cli-rs")
    aws("put-record", "--stream-name", "cli-rs", "--data", "before-split",
        "--partition-key", "k")
    assert aws("split-shard", "--stream-name", "cli-rs", "--shard-to-split",
               "shardId-000000000000", "--new-starting-hash-key", str(2**127)) == {}
    aws("wait", "stream-exists", "--stream-name", "cli-rs")
    shards = aws("list-shards", "--stream-name", "cli-rs")["Shards"]
    assert [s["ShardId"] for s in shards] == [f"shardId-00000000000{i}" for i in range(3)]
    assert "EndingSequenceNumber" in shards[0]["SequenceNumberRange"]
    assert [s.get("ParentShardId") for s in shards] == [None, "shardId-000000000000",
                                                        "shardId-000000000000"]
    assert shards[2]["HashKeyRange"]["StartingHashKey"] == str(2**127)

    assert aws("merge-shards", "--stream-name", "cli-rs", "--shard-to-merge",
               "shardId-000000000001", "--adjacent-shard-to-merge",
               "shardId-000000000002") == {}
    wait_active(aws, "cli-rs")  # UPDATING until the merge takes effect
    out = aws("update-shard-count", "--stream-name", "cli-rs", "--target-shard-count", "2",
              "--scaling-type", "UNIFORM_SCALING")
    assert out["CurrentShardCount"] == 1 and out["TargetShardCount"] == 2
    assert out["StreamName"] == "cli-rs"
    aws("wait", "stream-exists", "--stream-name", "cli-rs")
    latest = aws("list-shards", "--stream-name", "cli-rs", "--shard-filter",
                 "Type=AT_LATEST")["Shards"]
    assert [s["ShardId"] for s in latest] == ["shardId-000000000004", "shardId-000000000005"]
    assert latest[0]["ParentShardId"] == "shardId-000000000003"
    # Pages follow NextToken alone (it names the stream); the CLI's own paging resends
    # --stream-name with it, which AWS refuses, and so does forestream.
    first = aws("list-shards", "--stream-name", "cli-rs", "--max-results", "4")
    rest = aws("list-shards", "--next-token", first["NextToken"])
    assert [s["ShardId"] for s in first["Shards"] + rest["Shards"]] == \
        [f"shardId-00000000000{i}" for i in range(6)]
    aws.fails("list-shards", "--stream-name", "cli-rs", "--page-size", "2",
              code="NextToken and StreamName cannot be provided together")
    # The record written before the split is still on the closed parent.
    old = records_of(aws, "cli-rs", "shardId-000000000000")
    assert [base64.b64decode(r["Data"]) for r in old] == [b"before-split"]


def test_tags_retention_encryption_and_consumers(aws):
    aws("create-stream", "--stream-name", "cli-cfg", "--shard-count", "1")
    aws("wait", "stream-exists", "--stream-name", "cli-cfg")
    arn = "arn:aws:kinesis:us-east-1:000000000000:stream/cli-cfg"

    # Four independent lanes of commands on the same stream, run side by side (the CLI's
    # start-up dominates: about half a second of CPU per command).
    def tags():
        assert aws("add-tags-to-stream", "--stream-name", "cli-cfg", "--tags",
                   "team=ml,env=test,tier=gold") == {}
        assert aws("remove-tags-from-stream", "--stream-name", "cli-cfg", "--tag-keys",
                   "env") == {}
        listed = aws("list-tags-for-stream", "--stream-name", "cli-cfg")
        assert listed["Tags"] == [{"Key": "team", "Value": "ml"},
                                  {"Key": "tier", "Value": "gold"}]
        assert listed["HasMoreTags"] is False

    def retention():
        aws("increase-stream-retention-period", "--stream-name", "cli-cfg",
            "--retention-period-hours", "72")
        aws("decrease-stream-retention-period", "--stream-name", "cli-cfg",
            "--retention-period-hours", "48")
        aws.fails("decrease-stream-retention-period", "--stream-name", "cli-cfg",
                  "--retention-period-hours", "12", code="InvalidArgumentException")

    def encryption():
        aws("start-stream-encryption", "--stream-name", "cli-cfg", "--encryption-type",
            "KMS", "--key-id", "alias/aws/kinesis")
        aws("wait", "stream-exists", "--stream-name", "cli-cfg")
        summary = aws("describe-stream-summary", "--stream-name", "cli-cfg")[
            "StreamDescriptionSummary"]
        assert summary["EncryptionType"] == "KMS" and summary["KeyId"] == "alias/aws/kinesis"
        sealed = aws("put-record", "--stream-name", "cli-cfg", "--data", "secret",
                     "--partition-key", "k")
        assert sealed["EncryptionType"] == "KMS"
        aws("stop-stream-encryption", "--stream-name", "cli-cfg", "--encryption-type", "KMS",
            "--key-id", "alias/aws/kinesis")
        plain = aws("put-record", "--stream-name", "cli-cfg", "--data", "public",
                    "--partition-key", "k")
        assert plain["EncryptionType"] == "NONE"
        got = records_of(aws, "cli-cfg", "shardId-000000000000")
        assert [(base64.b64decode(r["Data"]), r["EncryptionType"]) for r in got] == [
            (b"secret", "KMS"), (b"public", "NONE")]

    def consumers():
        consumer = aws("register-stream-consumer", "--stream-arn", arn, "--consumer-name",
                       "reader")["Consumer"]
        assert consumer["ConsumerName"] == "reader"
        assert consumer["ConsumerARN"].startswith(f"{arn}/consumer/reader:")
        described = aws("describe-stream-consumer", "--consumer-arn",
                        consumer["ConsumerARN"])["ConsumerDescription"]
        assert described["StreamARN"] == arn and described["ConsumerStatus"] == "ACTIVE"
        listed = aws("list-stream-consumers", "--stream-arn", arn)["Consumers"]
        assert [c["ConsumerARN"] for c in listed] == [consumer["ConsumerARN"]]
        aws.fails("delete-stream", "--stream-name", "cli-cfg", code="ResourceInUseException")
        assert aws("deregister-stream-consumer", "--stream-arn", arn, "--consumer-name",
                   "reader") == {}
        assert aws("list-stream-consumers", "--stream-arn", arn)["Consumers"] == []

    with ThreadPoolExecutor(max_workers=4) as pool:
        for lane in [pool.submit(f) for f in (tags, retention, encryption, consumers)]:
            lane.result()
    summary = aws("describe-stream-summary", "--stream-name", "cli-cfg")[
        "StreamDescriptionSummary"]
    assert summary["RetentionPeriodHours"] == 48 and summary["EncryptionType"] == "NONE"
    assert "KeyId" not in summary and summary["ConsumerCount"] == 0
    assert aws("delete-stream", "--stream-name", "cli-cfg") == {}


def test_errors_exit_non_zero_with_the_aws_error_code(aws):
    cases = [
        (("describe-stream", "--stream-name", "cli-missing"), "ResourceNotFoundException"),
        (("put-record", "--stream-name", "cli-missing", "--data", "x", "--partition-key", "k"),
         "ResourceNotFoundException"),
        (("create-stream", "--stream-name", "bad/name", "--shard-count", "1"),
         "ValidationException"),
        (("get-records", "--shard-iterator", "bm90LWFuLWl0ZXJhdG9y"),
         "InvalidArgumentException"),
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        errors = list(pool.map(lambda case: aws.fails(*case[0], code=case[1]), cases))
    assert "cli-missing" in errors[0] and "DescribeStream" in errors[0]
    assert "PutRecord" in errors[1]
