"""Shard leases for parallel workers, as the Kinesis Client Library keeps them.

The workers of one application share a lease table (SQLite, in the application's folder):
one row per shard with its owner and an expiry. Each worker renews its leases every
second or so, takes free or expired ones up to its fair share (shards ÷ workers, rounded
up), and gives back leases beyond its share so a newly started worker gets some. A shard
becomes available only once its parents are finished, so per-key order survives
resharding. A worker that dies stops renewing; its leases expire and the others take them
over, each shard continuing from its own checkpoint. Owners are named
``worker-<n>-<pid>``: a lease whose owner process no longer exists on this machine is free
at once, so a restarted worker does not wait for its predecessor's leases to expire.
"""

from __future__ import annotations

import math
import os
import re
import sqlite3
import time
from pathlib import Path

LEASE_SECONDS = 10.0
_PID = re.compile(r"-(\d+)$")


def owner_alive(owner: str | None) -> bool:
    """False when ``owner`` names a process (``...-<pid>``) that no longer exists here."""
    found = _PID.search(owner or "")
    if found is None:
        return True
    try:
        os.kill(int(found.group(1)), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


class LeaseTable:
    def __init__(self, path: Path, owner: str, lease_seconds: float = LEASE_SECONDS) -> None:
        self.owner = owner
        self.lease_seconds = lease_seconds
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS leases (shard TEXT PRIMARY KEY, "
                         "owner TEXT, expires REAL NOT NULL DEFAULT 0, "
                         "finished INTEGER NOT NULL DEFAULT 0)")

    def sync_shards(self, shards: list[dict]) -> None:
        """Add a row for every shard of the stream (from ListShards)."""
        self._db.executemany("INSERT OR IGNORE INTO leases (shard) VALUES (?)",
                             [(s["ShardId"],) for s in shards])

    def balance(self, shards: list[dict], workers: int,
                before_release=None) -> set[str]:
        """Renew, take and give back leases; return the shards this worker now owns.

        ``before_release(shards)`` runs before leases beyond this worker's share are given
        back (checkpoint them first, so the next owner continues from the right place)."""
        now = time.time()
        parents = {s["ShardId"]: [p for p in (s.get("ParentShardId"),
                                              s.get("AdjacentParentShardId")) if p]
                   for s in shards}
        extra: set[str] = set()
        self._db.execute("BEGIN IMMEDIATE")
        try:
            rows = self._db.execute("SELECT shard, owner, expires, finished FROM leases"
                                    ).fetchall()
            finished = {r[0] for r in rows if r[3]}
            open_rows = [r for r in rows if not r[3] and r[0] in parents and
                         all(p in finished or p not in parents for p in parents[r[0]])]
            share = max(1, math.ceil(len(open_rows) / max(workers, 1)))
            # ours even if expired: nobody took it meanwhile (we are in the transaction)
            mine = sorted(r[0] for r in open_rows if r[1] == self.owner)
            extra = set(mine[share:])  # over our share: given back below, after checkpoints
            mine = mine[:share]
            free = sorted(r[0] for r in open_rows if r[1] != self.owner and
                          (r[1] is None or r[2] <= now or not owner_alive(r[1])))
            mine += free[: max(0, share - len(mine))]
            for shard in mine + sorted(extra):  # extra ones stay ours until handed back
                self._db.execute("UPDATE leases SET owner=?, expires=? WHERE shard=?",
                                 (self.owner, now + self.lease_seconds, shard))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        if extra:  # checkpoint them (outside the transaction: fsyncs take a while), then
            if before_release is not None:  # give them back for a newcomer to take
                before_release(extra)
            self.release(extra)
        return set(mine)

    def renew(self, shards: set[str]) -> None:
        """Extend these leases (still ours) while a long task (a drain) runs."""
        until = time.time() + self.lease_seconds
        self._db.executemany("UPDATE leases SET expires=? WHERE shard=? AND owner=?",
                             [(until, s, self.owner) for s in shards])

    def finish(self, shard: str) -> None:
        """The shard is closed and fully processed: its children may start."""
        self._db.execute("UPDATE leases SET finished=1, owner=NULL WHERE shard=?", (shard,))

    def release(self, shards: set[str]) -> None:
        self._db.executemany("UPDATE leases SET owner=NULL, expires=0 WHERE shard=? AND "
                             "owner=?", [(s, self.owner) for s in shards])

    def owners(self) -> dict[str, str | None]:
        now = time.time()
        return {shard: owner if expires > now else None for shard, owner, expires in
                self._db.execute("SELECT shard, owner, expires FROM leases")}

    def close(self) -> None:
        self._db.close()
