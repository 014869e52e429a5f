"""A stream's transient statuses, as Kinesis documents them and kinesalite's suite recorded
them on AWS: CREATING (no shards yet, no records taken), UPDATING after a reshard (the
old shards stay the stream's shards until the change takes effect) and DELETING (listed
and described for a while, then gone).

Each test uses a store whose status delay is long enough that the transient state is
still there when it is looked at on a loaded machine, and waits for the change by
polling its status (bounded by a deadline, never by a fixed sleep).
"""

from __future__ import annotations

import time

import pytest

from forestream.streams.errors import ResourceInUseError, ResourceNotFoundError
from forestream.streams.hashing import MAX_HASH_KEY
from forestream.streams.store import StreamStore

DELAY = 2.0  # seconds a transient status lasts here
ACCOUNT = "000000000000"


@pytest.fixture
def store(tmp_path):
    with StreamStore(tmp_path / "data", fsync=False, status_delay=DELAY) as s:
        yield s


def status(store, name):
    return store.describe_stream_summary(stream_name=name)[
        "StreamDescriptionSummary"]["StreamStatus"]


def wait_until(condition, what, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still waiting for {what}"
        time.sleep(0.05)


def active(store, name, shards=1):
    store.create_stream(name, shard_count=shards)
    wait_until(lambda: status(store, name) == "ACTIVE", f"{name} ACTIVE")


def gone(store, name):
    try:
        store.describe_stream_summary(stream_name=name)
    except ResourceNotFoundError:
        return True
    return False


def files_of(folder):
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


def shards_of(store, name):
    return store.describe_stream(stream_name=name)["StreamDescription"]["Shards"]


def data_of(store, name, shard):
    iterator = store.get_shard_iterator(stream_name=name, shard_id=shard,
                                        shard_iterator_type="TRIM_HORIZON")["ShardIterator"]
    return [r["Data"] for r in store.get_records(iterator)["Records"]]


# -------------------------------------------------------------------------- CREATING

def test_a_creating_stream_takes_no_records_and_has_no_shard_to_read(store):
    store.create_stream("young", shard_count=1)
    not_found = f"Stream young under account {ACCOUNT} not found."
    with pytest.raises(ResourceNotFoundError) as put:
        store.put_record(stream_name="young", data=b"x", partition_key="k")
    assert str(put.value) == not_found
    with pytest.raises(ResourceNotFoundError) as puts:
        store.put_records(stream_name="young", records=[{"Data": b"x", "PartitionKey": "k"}])
    assert str(puts.value) == not_found
    with pytest.raises(ResourceNotFoundError) as iterator:
        store.get_shard_iterator(stream_name="young", shard_id="0",
                                 shard_iterator_type="LATEST")
    assert str(iterator.value) == (f"Shard shardId-000000000000 in stream young under "
                                   f"account {ACCOUNT} does not exist")
    wait_until(lambda: status(store, "young") == "ACTIVE", "young ACTIVE")
    assert store.put_record(stream_name="young", data=b"x", partition_key="k")[
        "ShardId"] == "shardId-000000000000"


# -------------------------------------------------------------------------- DELETING

def test_a_deleted_stream_is_listed_as_deleting_then_gone(store):
    active(store, "old")
    store.put_record(stream_name="old", data=b"kept until the end", partition_key="k")
    store.delete_stream(stream_name="old")

    description = store.describe_stream(stream_name="old")["StreamDescription"]
    assert description["StreamStatus"] == "DELETING"
    assert description["Shards"] == [] and description["HasMoreShards"] is False
    listed = store.list_streams()
    assert listed["StreamNames"] == ["old"]
    assert listed["StreamSummaries"][0]["StreamStatus"] == "DELETING"
    assert store.stream_names() == []  # for forestream's own use it is gone already
    with pytest.raises(ResourceNotFoundError, match=f"^Stream old under account {ACCOUNT} "
                                                    "not found.$"):
        store.put_record(stream_name="old", data=b"x", partition_key="k")
    with pytest.raises(ResourceInUseError, match="not ACTIVE, instead in state DELETING"):
        store.split_shard(stream_name="old", shard_to_split="0",
                          new_starting_hash_key=str(2**127))
    store.delete_stream(stream_name="old")  # deleting again changes nothing

    wait_until(lambda: gone(store, "old"), "old gone")
    assert store.list_streams()["StreamNames"] == []
    assert files_of(store.data_dir / "streams" / "stream-old") == []


def test_a_name_is_free_again_once_its_deletion_is_over(store):
    active(store, "again")
    store.delete_stream(stream_name="again")
    with pytest.raises(ResourceInUseError, match="already exists"):
        store.create_stream("again", shard_count=1)
    wait_until(lambda: gone(store, "again"), "again gone")
    store.create_stream("again", shard_count=2)
    wait_until(lambda: status(store, "again") == "ACTIVE", "again ACTIVE")
    assert len(shards_of(store, "again")) == 2


def test_deleting_streams_do_not_hold_shards_of_the_limit(tmp_path):
    with StreamStore(tmp_path / "data", fsync=False, status_delay=DELAY,
                     shard_limit=3) as store:
        active(store, "first", shards=3)
        store.delete_stream(stream_name="first")
        store.create_stream("second", shard_count=3)
        assert store.open_shard_count() == 3


def test_a_deletion_under_way_at_shutdown_is_finished_on_restart(tmp_path):
    with StreamStore(tmp_path, fsync=False, status_delay=DELAY) as store:
        active(store, "brief")
        store.put_record(stream_name="brief", data=b"x", partition_key="k")
        store.delete_stream(stream_name="brief")
    time.sleep(DELAY)  # the deletion's time runs out while no store is open
    with StreamStore(tmp_path, fsync=False, status_delay=DELAY) as store:
        assert store.list_streams()["StreamNames"] == []
        assert files_of(tmp_path / "streams" / "stream-brief") == []


# -------------------------------------------------------------------------- UPDATING

def test_a_split_takes_effect_when_the_stream_turns_active(store):
    active(store, "split")
    store.put_record(stream_name="split", data=b"before", partition_key="k")
    store.split_shard(stream_name="split", shard_to_split="shardId-000000000000",
                      new_starting_hash_key=str(2**127))

    assert status(store, "split") == "UPDATING"
    (parent,) = shards_of(store, "split")  # the old shard, still open
    assert parent["ShardId"] == "shardId-000000000000"
    assert "EndingSequenceNumber" not in parent["SequenceNumberRange"]
    assert [s["ShardId"] for s in store.list_shards(stream_name="split")["Shards"]] == [
        "shardId-000000000000"]
    during = store.put_record(stream_name="split", data=b"during", partition_key="k",
                              explicit_hash_key=str(MAX_HASH_KEY))
    assert during["ShardId"] == "shardId-000000000000"
    with pytest.raises(ResourceNotFoundError):
        store.get_shard_iterator(stream_name="split", shard_id="1",
                                 shard_iterator_type="LATEST")

    wait_until(lambda: status(store, "split") == "ACTIVE", "split ACTIVE")
    shards = {s["ShardId"]: s for s in shards_of(store, "split")}
    assert list(shards) == [f"shardId-00000000000{i}" for i in range(3)]
    assert shards["shardId-000000000000"]["SequenceNumberRange"][
        "EndingSequenceNumber"] == during["SequenceNumber"]
    assert data_of(store, "split", "0") == [b"before", b"during"]
    after = store.put_record(stream_name="split", data=b"after", partition_key="k",
                             explicit_hash_key=str(MAX_HASH_KEY))
    assert after["ShardId"] == "shardId-000000000002"
    assert store.describe_stream_summary(stream_name="split")[
        "StreamDescriptionSummary"]["OpenShardCount"] == 2


def test_a_merge_and_a_new_shard_count_wait_for_their_turn_too(store):
    active(store, "merge", shards=2)
    store.merge_shards(stream_name="merge", shard_to_merge="0", adjacent_shard_to_merge="1")
    assert [s["ShardId"] for s in shards_of(store, "merge")] == [
        "shardId-000000000000", "shardId-000000000001"]
    assert store.put_record(stream_name="merge", data=b"x", partition_key="k",
                            explicit_hash_key="0")["ShardId"] == "shardId-000000000000"
    wait_until(lambda: status(store, "merge") == "ACTIVE", "merge ACTIVE")
    merged = shards_of(store, "merge")[-1]
    assert (merged["ShardId"], merged["ParentShardId"], merged["AdjacentParentShardId"]) == (
        "shardId-000000000002", "shardId-000000000000", "shardId-000000000001")

    out = store.update_shard_count(stream_name="merge", target_shard_count=2,
                                   scaling_type="UNIFORM_SCALING")
    assert (out["CurrentShardCount"], out["TargetShardCount"]) == (1, 2)
    latest = store.list_shards(stream_name="merge", shard_filter={"Type": "AT_LATEST"})
    assert [s["ShardId"] for s in latest["Shards"]] == ["shardId-000000000002"]
    wait_until(lambda: status(store, "merge") == "ACTIVE", "merge ACTIVE again")
    latest = store.list_shards(stream_name="merge", shard_filter={"Type": "AT_LATEST"})
    assert [s["ShardId"] for s in latest["Shards"]] == ["shardId-000000000003",
                                                        "shardId-000000000004"]


def test_a_reshard_under_way_at_shutdown_takes_effect_after_restart(tmp_path):
    with StreamStore(tmp_path, fsync=False, status_delay=DELAY) as store:
        active(store, "pending")
        store.put_record(stream_name="pending", data=b"one", partition_key="k")
        store.split_shard(stream_name="pending", shard_to_split="0",
                          new_starting_hash_key=str(2**127))
        assert status(store, "pending") == "UPDATING"
    with StreamStore(tmp_path, fsync=False, status_delay=DELAY) as store:
        wait_until(lambda: status(store, "pending") == "ACTIVE", "pending ACTIVE")
        shards = shards_of(store, "pending")
        assert [s["ShardId"] for s in shards] == [f"shardId-00000000000{i}" for i in range(3)]
        assert "EndingSequenceNumber" in shards[0]["SequenceNumberRange"]
        assert data_of(store, "pending", "0") == [b"one"]
