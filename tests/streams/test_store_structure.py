"""How the stream store is put together: a facade over components sharing one catalog."""

import ast
import inspect
from pathlib import Path

import pytest

from forestream.streams import admin, catalog, descriptions, lifecycle, record_io, resharding
from forestream.streams.store import StreamStore

COMPONENTS = [lifecycle.StreamLifecycle, record_io.RecordIO, admin.StreamAdmin,
              resharding.Resharder]

# Every Kinesis operation the server answers through the store (it looks each one up as
# getattr(store, snake_case(name)); SubscribeToShard is built on get_records).
OPERATIONS = [
    "add_tags_to_stream", "create_stream", "decrease_stream_retention_period",
    "delete_stream", "deregister_stream_consumer", "describe_limits", "describe_stream",
    "describe_stream_consumer", "describe_stream_summary", "disable_enhanced_monitoring",
    "enable_enhanced_monitoring", "get_records", "get_shard_iterator",
    "increase_stream_retention_period", "list_shards", "list_stream_consumers",
    "list_streams", "list_tags_for_resource", "list_tags_for_stream", "merge_shards",
    "put_record", "put_records", "register_stream_consumer", "remove_tags_from_stream",
    "split_shard", "start_stream_encryption", "stop_stream_encryption", "tag_resource",
    "untag_resource", "update_max_record_size", "update_shard_count", "update_stream_mode",
]


def component_of(name):
    owners = [c for c in COMPONENTS if callable(getattr(c, name, None))]
    assert len(owners) == 1, f"{name} is implemented by {owners}"
    return owners[0]


@pytest.mark.parametrize("name", OPERATIONS + ["continuation_sequence_number",
                                               "enforce_retention"])
def test_each_store_method_has_its_components_signature(name):
    component = component_of(name)
    assert inspect.signature(getattr(StreamStore, name)) == \
        inspect.signature(getattr(component, name)), f"{name} differs from {component}"


def test_the_store_keeps_its_library_api(tmp_path):
    with StreamStore(tmp_path, status_delay=0.5, shard_limit=7, fsync=False,
                     region="eu-west-1", account="123456789012") as store:
        assert (store.data_dir, store.status_delay_ms, store.shard_limit, store.fsync) == \
            (tmp_path, 500, 7, False)
        assert store.stream_arn("s") == "arn:aws:kinesis:eu-west-1:123456789012:stream/s"
        store.create_stream("s", shard_count=2)
        assert (store.stream_names(), store.open_shard_count()) == (["s"], 2)
        assert store.enforce_retention() == 0


@pytest.mark.parametrize("module", [lifecycle, record_io, admin, resharding, catalog,
                                    descriptions])
def test_components_touch_no_private_attribute_but_their_own(module):
    tree = ast.parse(Path(module.__file__).read_text())
    foreign = [f"line {node.lineno}: {ast.unparse(node)}" for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr.startswith("_")
               and not node.attr.startswith("__")
               and not (isinstance(node.value, ast.Name) and node.value.id == "self")]
    assert foreign == []


def test_retention_removes_closed_shards_once_expired_and_empty(tmp_path, monkeypatch):
    import time

    with StreamStore(tmp_path, status_delay=0.0) as store:
        store.create_stream("s", shard_count=1)
        store.split_shard(stream_name="s", shard_to_split="shardId-000000000000",
                          new_starting_hash_key=str(2**127))
        shards = [s["ShardId"] for s in store.list_shards(stream_name="s")["Shards"]]
        assert shards == ["shardId-000000000000", "shardId-000000000001",
                          "shardId-000000000002"]
        assert store.enforce_retention() == 0
        assert len(store.list_shards(stream_name="s")["Shards"]) == 3
        real_time = time.time
        monkeypatch.setattr(time, "time", lambda: real_time() + 25 * 3600)
        assert store.enforce_retention() == 0
        shards = [s["ShardId"] for s in store.list_shards(stream_name="s")["Shards"]]
        assert shards == ["shardId-000000000001", "shardId-000000000002"]
        assert not (tmp_path / "streams" / "stream-s" / "shardId-000000000000").exists()
    with StreamStore(tmp_path, status_delay=0.0) as store:  # the metadata agrees
        assert len(store.list_shards(stream_name="s")["Shards"]) == 2
