"""The shard lease table of parallel workers: fair shares, hand-back to a newcomer,
children after their parents, expiry, and immediate takeover from a dead owner."""

from __future__ import annotations

import subprocess
import sys
import time

from forestream.processing.leases import LeaseTable, owner_alive


def shards(n, parents=None):
    out = [{"ShardId": f"s{i}"} for i in range(n)]
    for child, parent in (parents or {}).items():
        out.append({"ShardId": child, "ParentShardId": parent})
    return out


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_two_workers_split_four_shards_and_a_newcomer_gets_its_share(tmp_path):
    listing = shards(4)
    a = LeaseTable(tmp_path / "l.db", "worker-0-1")
    a.sync_shards(listing)
    assert a.balance(listing, workers=1) == {"s0", "s1", "s2", "s3"}
    handed = []
    b = LeaseTable(tmp_path / "l.db", "worker-1-1")
    assert a.balance(listing, workers=2, before_release=handed.append) == {"s0", "s1"}
    assert handed == [{"s2", "s3"}]  # checkpointed by the caller before release
    assert b.balance(listing, workers=2) == {"s2", "s3"}
    assert a.owners() == {"s0": "worker-0-1", "s1": "worker-0-1", "s2": "worker-1-1",
                          "s3": "worker-1-1"}


def test_children_wait_for_their_parent_to_finish(tmp_path):
    listing = shards(1, parents={"c0": "s0", "c1": "s0"})
    table = LeaseTable(tmp_path / "l.db", "worker-0-1")
    table.sync_shards(listing)
    assert table.balance(listing, workers=1) == {"s0"}
    table.finish("s0")
    assert table.balance(listing, workers=1) == {"c0", "c1"}


def test_leases_of_a_live_owner_expire_and_of_a_dead_one_are_free_at_once(tmp_path):
    listing = shards(2)
    gone = LeaseTable(tmp_path / "l.db", f"worker-0-{dead_pid()}", lease_seconds=60)
    gone.sync_shards(listing)
    assert gone.balance(listing, workers=1) == {"s0", "s1"}
    successor = LeaseTable(tmp_path / "l.db", "worker-0-1")  # pid 1 is alive
    assert successor.balance(listing, workers=1) == {"s0", "s1"}  # no 60 s wait

    slow = LeaseTable(tmp_path / "m.db", "worker-0-1", lease_seconds=0.3)
    slow.sync_shards(listing)
    assert slow.balance(listing, workers=1) == {"s0", "s1"}
    other = LeaseTable(tmp_path / "m.db", "worker-1-1")
    assert other.balance(listing, workers=1) == set()  # still held by a live owner
    time.sleep(0.4)
    assert other.balance(listing, workers=1) == {"s0", "s1"}


def test_owner_alive_reads_the_pid_at_the_end_of_the_name():
    assert owner_alive("worker-3-1")
    assert not owner_alive(f"worker-3-{dead_pid()}")
    assert owner_alive("someone-without-a-pid") and owner_alive(None)


def test_a_worker_takes_back_its_own_lease_after_it_expired_unclaimed(tmp_path):
    listing = shards(2)
    table = LeaseTable(tmp_path / "l.db", "worker-0-1", lease_seconds=0.2)
    table.sync_shards(listing)
    assert table.balance(listing, workers=1) == {"s0", "s1"}
    time.sleep(0.3)  # a long pause: nobody else took them
    assert table.balance(listing, workers=1) == {"s0", "s1"}
    time.sleep(0.1)
    table.renew({"s0"})  # a drain in progress keeps its key group
    time.sleep(0.15)  # s1's lease has run out, s0's renewed one has not
    other = LeaseTable(tmp_path / "l.db", "worker-1-1")
    assert other.balance(listing, workers=2) == {"s1"}
