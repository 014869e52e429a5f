"""The stream store as a library: streams, records, iterators, resharding, persistence."""

import time

import pytest

from forestream.streams.errors import (
    ExpiredIteratorError,
    InvalidArgumentError,
    LimitExceededError,
    ResourceInUseError,
    ResourceNotFoundError,
)
from forestream.streams.hashing import MAX_HASH_KEY, parse_sequence_number, partition_hash
from forestream.streams.store import StreamStore


@pytest.fixture
def store(tmp_path):
    with StreamStore(tmp_path / "data", status_delay=0.0) as s:
        yield s


def read_all(store, name, shard, kind="TRIM_HORIZON", **kw):
    it = store.get_shard_iterator(stream_name=name, shard_id=shard, shard_iterator_type=kind,
                                  **kw)["ShardIterator"]
    out = []
    while it:
        page = store.get_records(it)
        out += page["Records"]
        it = page.get("NextShardIterator")
        if not page["Records"]:
            break
    return out


def shard_ids(store, name):
    return [s["ShardId"] for s in store.list_shards(stream_name=name)["Shards"]]


def test_records_route_by_md5_of_partition_key_and_read_back_in_order(store):
    store.create_stream("s", shard_count=4)
    keys = [f"key-{i}" for i in range(200)]
    for i, key in enumerate(keys):
        store.put_record(stream_name="s", data=f"{i}".encode(), partition_key=key)
    shards = store.list_shards(stream_name="s")["Shards"]
    seen = 0
    for shard in shards:
        lo, hi = int(shard["HashKeyRange"]["StartingHashKey"]), \
            int(shard["HashKeyRange"]["EndingHashKey"])
        records = read_all(store, "s", shard["ShardId"])
        seen += len(records)
        assert all(lo <= partition_hash(r["PartitionKey"]) <= hi for r in records)
        values = [int(r["Data"]) for r in records]
        assert values == sorted(values)  # arrival order within a shard
        seqs = [int(r["SequenceNumber"]) for r in records]
        assert seqs == sorted(set(seqs))
    assert seen == 200


def test_explicit_hash_key_overrides_partition_key(store):
    store.create_stream("s", shard_count=2)
    out = store.put_record(stream_name="s", data=b"x", partition_key="anything",
                           explicit_hash_key=str(MAX_HASH_KEY))
    assert out["ShardId"] == "shardId-000000000001"
    with pytest.raises(InvalidArgumentError, match=r"must be in the range: \[0, 2\^128-1\]"):
        store.put_record(stream_name="s", data=b"x", partition_key="k",
                         explicit_hash_key=str(MAX_HASH_KEY + 1))


def test_sequence_numbers_are_unique_across_the_stream_and_name_their_shard(store):
    store.create_stream("s", shard_count=3)
    out = store.put_records(stream_name="s", records=[
        {"Data": b"d", "PartitionKey": f"k{i}"} for i in range(300)])
    assert out["FailedRecordCount"] == 0
    seqs = [r["SequenceNumber"] for r in out["Records"]]
    assert len(set(seqs)) == 300
    for r in out["Records"]:
        assert parse_sequence_number(r["SequenceNumber"])[0] == int(r["ShardId"][-12:])


def test_iterator_types(store):
    store.create_stream("s", shard_count=1)
    shard = "shardId-000000000000"
    seqs = [store.put_record(stream_name="s", data=bytes([i]), partition_key="k")
            ["SequenceNumber"] for i in range(10)]
    assert [r["Data"] for r in read_all(store, "s", shard)] == [bytes([i]) for i in range(10)]
    at = read_all(store, "s", shard, "AT_SEQUENCE_NUMBER", starting_sequence_number=seqs[4])
    assert at[0]["Data"] == b"\x04"
    after = read_all(store, "s", shard, "AFTER_SEQUENCE_NUMBER",
                     starting_sequence_number=seqs[4])
    assert after[0]["Data"] == b"\x05"
    latest = store.get_shard_iterator(stream_name="s", shard_id=shard,
                                      shard_iterator_type="LATEST")["ShardIterator"]
    assert store.get_records(latest)["Records"] == []
    store.put_record(stream_name="s", data=b"new", partition_key="k")
    assert [r["Data"] for r in store.get_records(latest)["Records"]] == [b"new"]
    time.sleep(0.01)
    cut = time.time()
    time.sleep(0.01)
    store.put_record(stream_name="s", data=b"later", partition_key="k")
    by_time = read_all(store, "s", shard, "AT_TIMESTAMP", timestamp=cut)
    assert [r["Data"] for r in by_time] == [b"later"]


def test_get_records_limit_pages_through_the_shard(store):
    store.create_stream("s", shard_count=1)
    store.put_records(stream_name="s", records=[{"Data": bytes([i]), "PartitionKey": "k"}
                                                for i in range(25)])
    it = store.get_shard_iterator(stream_name="s", shard_id="shardId-000000000000",
                                  shard_iterator_type="TRIM_HORIZON")["ShardIterator"]
    pages = []
    for _ in range(3):
        page = store.get_records(it, limit=10)
        pages.append(len(page["Records"]))
        it = page["NextShardIterator"]
    assert pages == [10, 10, 5]


def test_split_closes_parent_and_readers_follow_child_shards(store):
    store.create_stream("s", shard_count=1)
    store.put_record(stream_name="s", data=b"before", partition_key="k")
    store.split_shard(stream_name="s", shard_to_split="shardId-000000000000",
                      new_starting_hash_key=str(2**127))
    shards = {s["ShardId"]: s for s in store.list_shards(stream_name="s")["Shards"]}
    parent = shards["shardId-000000000000"]
    assert "EndingSequenceNumber" in parent["SequenceNumberRange"]
    assert shards["shardId-000000000001"]["ParentShardId"] == "shardId-000000000000"
    assert shards["shardId-000000000002"]["HashKeyRange"]["StartingHashKey"] == str(2**127)
    it = store.get_shard_iterator(stream_name="s", shard_id="shardId-000000000000",
                                  shard_iterator_type="TRIM_HORIZON")["ShardIterator"]
    page = store.get_records(it)
    assert [r["Data"] for r in page["Records"]] == [b"before"]
    assert "NextShardIterator" not in page
    assert sorted(c["ShardId"] for c in page["ChildShards"]) == ["shardId-000000000001",
                                                                 "shardId-000000000002"]
    out = store.put_record(stream_name="s", data=b"after", partition_key="k")
    assert out["ShardId"] in ("shardId-000000000001", "shardId-000000000002")


def test_merge_and_update_shard_count(store):
    store.create_stream("s", shard_count=2)
    store.merge_shards(stream_name="s", shard_to_merge="shardId-000000000000",
                       adjacent_shard_to_merge="shardId-000000000001")
    merged = store.list_shards(stream_name="s")["Shards"][-1]
    assert merged["ParentShardId"] == "shardId-000000000000"
    assert merged["AdjacentParentShardId"] == "shardId-000000000001"
    assert merged["HashKeyRange"] == {"StartingHashKey": "0",
                                      "EndingHashKey": str(MAX_HASH_KEY)}
    out = store.update_shard_count(stream_name="s", target_shard_count=2,
                                   scaling_type="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (1, 2)
    open_shards = store.list_shards(stream_name="s", shard_filter={"Type": "AT_LATEST"})
    assert len(open_shards["Shards"]) == 2
    with pytest.raises(InvalidArgumentError, match="between half and double"):
        store.update_shard_count(stream_name="s", target_shard_count=5,
                                 scaling_type="UNIFORM_SCALING")


def test_resharding_errors_leave_shards_untouched(store):
    store.create_stream("s", shard_count=3)
    before = store.list_shards(stream_name="s")
    with pytest.raises(InvalidArgumentError, match="not an adjacent pair"):
        store.merge_shards(stream_name="s", shard_to_merge="shardId-000000000000",
                           adjacent_shard_to_merge="shardId-000000000002")
    with pytest.raises(InvalidArgumentError, match="NewStartingHashKey"):
        store.split_shard(stream_name="s", shard_to_split="shardId-000000000000",
                          new_starting_hash_key="0")
    with pytest.raises(ResourceNotFoundError):
        store.split_shard(stream_name="s", shard_to_split="shardId-000000000009",
                          new_starting_hash_key="5")
    assert store.list_shards(stream_name="s") == before


def test_everything_survives_a_restart(tmp_path):
    with StreamStore(tmp_path, status_delay=0.0) as store:
        store.create_stream("s", shard_count=2, tags={"team": "ml"})
        store.put_records(stream_name="s", records=[{"Data": b"%d" % i, "PartitionKey": str(i)}
                                                    for i in range(50)])
        store.split_shard(stream_name="s", shard_to_split="shardId-000000000000",
                          new_starting_hash_key=str(2**126))
        store.increase_stream_retention_period(stream_name="s", retention_period_hours=48)
        before = {sid: read_all(store, "s", sid) for sid in shard_ids(store, "s")}
    with StreamStore(tmp_path, status_delay=0.0) as store:
        after = {sid: read_all(store, "s", sid) for sid in shard_ids(store, "s")}
        assert after == before
        summary = store.describe_stream_summary(stream_name="s")["StreamDescriptionSummary"]
        assert summary["RetentionPeriodHours"] == 48 and summary["OpenShardCount"] == 3
        assert store.list_tags_for_stream(stream_name="s")["Tags"] == [
            {"Key": "team", "Value": "ml"}]
        out = store.put_record(stream_name="s", data=b"more", partition_key="0")
        assert int(out["SequenceNumber"]) > 0


def test_encryption_at_rest_round_trips_and_hides_plaintext(tmp_path):
    with StreamStore(tmp_path, status_delay=0.0) as store:
        store.create_stream("s", shard_count=1)
        store.put_record(stream_name="s", data=b"plain-secret-1", partition_key="k")
        store.start_stream_encryption(stream_name="s", encryption_type="KMS",
                                      key_id="alias/aws/kinesis")
        out = store.put_record(stream_name="s", data=b"cipher-secret-2", partition_key="k")
        assert out["EncryptionType"] == "KMS"
        records = read_all(store, "s", "shardId-000000000000")
        assert [(r["Data"], r["EncryptionType"]) for r in records] == [
            (b"plain-secret-1", "NONE"), (b"cipher-secret-2", "KMS")]
    raw = b"".join(p.read_bytes() for p in (tmp_path / "streams").rglob("*.log"))
    assert b"plain-secret-1" in raw and b"cipher-secret-2" not in raw
    key = tmp_path / "keys" / "s.key"
    assert key.stat().st_mode & 0o077 == 0


def test_validation_errors_name_values_and_store_nothing(store):
    store.create_stream("s", shard_count=1)
    with pytest.raises(InvalidArgumentError, match="1048577 bytes.*1048576"):
        store.put_record(stream_name="s", data=b"x" * (2**20), partition_key="k")
    with pytest.raises(ResourceNotFoundError, match="nope"):
        store.put_record(stream_name="nope", data=b"x", partition_key="k")
    with pytest.raises(ResourceInUseError, match="already exists"):
        store.create_stream("s", shard_count=1)
    with pytest.raises(LimitExceededError, match="shard limit"):
        store.create_stream("big", shard_count=10_000)
    with pytest.raises(InvalidArgumentError, match="can not be longer"):
        store.decrease_stream_retention_period(stream_name="s", retention_period_hours=48)
    assert read_all(store, "s", "shardId-000000000000") == []
    assert store.list_streams()["StreamNames"] == ["s"]


def test_iterators_expire_and_cannot_be_forged(store, monkeypatch):
    store.create_stream("s", shard_count=1)
    it = store.get_shard_iterator(stream_name="s", shard_id="shardId-000000000000",
                                  shard_iterator_type="TRIM_HORIZON")["ShardIterator"]
    forged = it[:-4] + ("AAAA" if not it.endswith("AAAA") else "BBBB")
    with pytest.raises(InvalidArgumentError):
        store.get_records(forged)
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 301)
    with pytest.raises(ExpiredIteratorError, match="expired"):
        store.get_records(it)


def test_retention_drops_only_expired_data(tmp_path):
    with StreamStore(tmp_path, status_delay=0.0) as store:
        store.create_stream("s", shard_count=1)
        store.put_record(stream_name="s", data=b"keep", partition_key="k")
        assert store.enforce_retention() == 0
        assert len(read_all(store, "s", "shardId-000000000000")) == 1


def test_list_streams_and_shards_paginate(store):
    for i in range(7):
        store.create_stream(f"s{i}", shard_count=3)
    page = store.list_streams(limit=3)
    names = list(page["StreamNames"])
    while page["HasMoreStreams"]:
        page = store.list_streams(limit=3, next_token=page["NextToken"])
        names += page["StreamNames"]
    assert names == [f"s{i}" for i in range(7)]
    page = store.list_shards(stream_name="s0", max_results=2)
    ids = [s["ShardId"] for s in page["Shards"]]
    page = store.list_shards(next_token=page["NextToken"], max_results=2)
    ids += [s["ShardId"] for s in page["Shards"]]
    assert ids == [f"shardId-00000000000{i}" for i in range(3)] and "NextToken" not in page


def test_consumers_register_describe_list_deregister(store):
    store.create_stream("s", shard_count=1)
    arn = store.stream_arn("s")
    consumer = store.register_stream_consumer(stream_arn=arn, consumer_name="app")["Consumer"]
    assert consumer["ConsumerARN"].startswith(arn + "/consumer/app:")
    described = store.describe_stream_consumer(consumer_arn=consumer["ConsumerARN"])
    assert described["ConsumerDescription"]["StreamARN"] == arn
    assert [c["ConsumerName"] for c in store.list_stream_consumers(stream_arn=arn)
            ["Consumers"]] == ["app"]
    with pytest.raises(ResourceInUseError, match="registered consumers"):
        store.delete_stream(stream_name="s")
    store.deregister_stream_consumer(consumer_arn=consumer["ConsumerARN"])
    assert store.list_stream_consumers(stream_arn=arn)["Consumers"] == []
    store.delete_stream(stream_name="s")
    assert store.list_streams()["StreamNames"] == []


def test_a_data_directory_has_one_owner(tmp_path):
    with StreamStore(tmp_path, status_delay=0.0), \
            pytest.raises(ResourceInUseError, match="in use by another process"):
        StreamStore(tmp_path)
    with StreamStore(tmp_path, status_delay=0.0) as again:  # released on close
        assert again.list_streams()["StreamNames"] == []


def test_shard_iterators_never_look_like_command_line_options(store):
    store.create_stream("s", shard_count=1)
    for _ in range(300):  # the random-looking part varies with the time of issue
        it = store.get_shard_iterator(stream_name="s", shard_id="shardId-000000000000",
                                      shard_iterator_type="LATEST")["ShardIterator"]
        assert it.startswith("AAAA")
    assert store.get_records(it)["Records"] == []
