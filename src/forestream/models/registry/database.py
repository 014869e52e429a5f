"""The registry's SQLite file: schema, connection and transactions, rows, page tokens.

Storage under :class:`~forestream.models.registry.ModelRegistry`, which owns the rules:

* :data:`SCHEMA` — groups, versions (the whole version dict as JSON, plus the columns
  that filters use) and version properties (metadata rows for key=value search);
* :class:`RegistryDatabase` — one connection in WAL mode; ``transaction()`` takes
  SQLite's write lock, so concurrent imports from other processes queue behind it;
  it saves and reads group and version rows, and pages through them;
* :func:`encode_token` / :func:`decode_token` — opaque ``next_token`` values that only
  continue the query they came from; :func:`check_limit` — the page size;
* :func:`now_iso`, :func:`iso_to_micros`, :func:`to_micros` — timestamps as stored
  (ISO 8601 UTC) and as filtered (microseconds since the epoch);
* :func:`process_token` / :func:`importer_alive` — which process is importing a
  version, so that one a dead process left ``Importing`` can be failed on open.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import sqlite3
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InvalidInput

if TYPE_CHECKING:
    from typing import Literal

MAX_PAGE = 1000


SCHEMA = """
CREATE TABLE IF NOT EXISTS groups (
    name TEXT PRIMARY KEY,
    description TEXT NOT NULL,
    created_at TEXT NOT NULL,
    created_by TEXT,
    tags TEXT NOT NULL,
    next_version INTEGER NOT NULL        -- numbers are never reused, even after deletes
);
CREATE TABLE IF NOT EXISTS versions (
    group_name TEXT NOT NULL REFERENCES groups(name),
    version INTEGER NOT NULL,
    status TEXT NOT NULL,
    approval_status TEXT NOT NULL,
    created_us INTEGER NOT NULL,         -- microseconds since the epoch, for time filters
    description TEXT NOT NULL,
    artifact_digest TEXT,
    importer TEXT,                       -- "pid:start-time" of the importing process
    doc TEXT NOT NULL,                   -- the whole version dict, as JSON
    PRIMARY KEY (group_name, version)
);
CREATE INDEX IF NOT EXISTS versions_by_digest ON versions(artifact_digest);
CREATE TABLE IF NOT EXISTS version_properties (   -- metadata rows for key=value search
    group_name TEXT NOT NULL,
    version INTEGER NOT NULL,
    scope TEXT NOT NULL,                 -- "immutable" or "customer"
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (group_name, version, scope, key),
    FOREIGN KEY (group_name, version) REFERENCES versions(group_name, version)
        ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS properties_by_pair ON version_properties(key, value);
"""


class RegistryDatabase:
    """One SQLite connection in WAL mode behind a re-entrant lock; ``transaction()``
    takes SQLite's write lock (BEGIN IMMEDIATE), so other processes queue behind it.

    Besides ``execute`` and ``query``, it reads and writes the rows of groups and
    versions; ``ModelRegistry`` decides what to write.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                                     timeout=30.0)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.executescript(SCHEMA)  # idempotent: every statement is IF NOT EXISTS
        self.lock = threading.RLock()
        self._depth = 0

    def close(self) -> None:
        with self.lock:
            self._conn.close()

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self.lock:
            return self._conn.execute(sql, args)

    def query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        with self.lock:
            return self._conn.execute(sql, args).fetchall()

    def transaction(self) -> Transaction:
        return Transaction(self)

    # -- pages ------------------------------------------------------------------------

    def groups_page(self, limit: int, next_token: str | None) -> tuple[list[dict], str | None]:
        """Up to ``limit`` groups by name after ``next_token``'s, and the next token."""
        after = decode_token(next_token, "groups")
        with self.lock:
            rows = self.query(
                "SELECT * FROM groups WHERE name > ? ORDER BY name LIMIT ?",
                (after[0] if after else "", limit + 1))
            groups = [self.group_dict(row) for row in rows[:limit]]
        token = encode_token([rows[limit - 1]["name"]], "groups") if len(rows) > limit \
            else None
        return groups, token

    def versions_page(self, *, group: str | None, approval_status: str | None,
                      status: str | None, created_after_us: int | None,
                      created_before_us: int | None, metadata: dict, search: str | None,
                      limit: int, next_token: str | None) -> tuple[list[dict], str | None]:
        """Up to ``limit`` version dicts matching every filter given (the caller validated
        them), ordered by (group, version) after ``next_token``'s, and the next token."""
        where = ["1 = 1"]
        args: list[object] = []
        if group is not None:
            where.append("v.group_name = ?")
            args.append(group)
        for name, value in (("approval_status", approval_status), ("status", status)):
            if value is not None:
                where.append(f"v.{name} = ?")
                args.append(value)
        for micros, op in ((created_after_us, ">"), (created_before_us, "<")):
            if micros is not None:
                where.append(f"v.created_us {op} ?")
                args.append(micros)
        for key, value in metadata.items():
            where.append("EXISTS (SELECT 1 FROM version_properties p WHERE p.group_name = "
                         "v.group_name AND p.version = v.version AND p.key = ? AND "
                         "p.value = ?)")
            args += [key, value]
        if search is not None:
            pattern = "%" + search.replace("\\", "\\\\").replace("%", "\\%") \
                .replace("_", "\\_") + "%"
            where.append("(v.group_name LIKE ? ESCAPE '\\' OR v.description LIKE ? ESCAPE "
                         "'\\' OR g.description LIKE ? ESCAPE '\\')")
            args += [pattern] * 3
        query = hashlib.sha256(json.dumps([where, args]).encode()).hexdigest()[:16]
        after = decode_token(next_token, query)
        if after:
            where.append("(v.group_name, v.version) > (?, ?)")
            args += after
        rows = self.query(
            "SELECT v.doc FROM versions v JOIN groups g ON g.name = v.group_name WHERE "
            + " AND ".join(where) + " ORDER BY v.group_name, v.version LIMIT ?",
            (*args, limit + 1))
        docs = [json.loads(row["doc"]) for row in rows]
        token = None
        if len(docs) > limit:
            token = encode_token([docs[limit - 1]["group"], docs[limit - 1]["version"]], query)
        return docs[:limit], token

    # -- rows -------------------------------------------------------------------------

    def save_version(self, doc: dict, importer: str | None = None) -> None:
        """Write ``doc`` and its searchable columns; ``importer`` marks an import that is
        in progress in this process (see ``ModelRegistry._recover``)."""
        self.execute(
            "INSERT INTO versions VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (group_name, version) "
            "DO UPDATE SET status = excluded.status, approval_status = "
            "excluded.approval_status, description = excluded.description, artifact_digest ="
            " excluded.artifact_digest, importer = excluded.importer, doc = excluded.doc",
            (doc["group"], doc["version"], doc["status"], doc["approval_status"],
             iso_to_micros(doc["created_at"]), doc["description"], doc["artifact_digest"],
             importer, json.dumps(doc)))
        self.execute("DELETE FROM version_properties WHERE group_name = ? AND version = ?",
                     (doc["group"], doc["version"]))
        for scope, values in (("immutable", doc["metadata"]),
                              ("customer", doc["customer_metadata"])):
            for key, value in values.items():
                self.execute("INSERT INTO version_properties VALUES (?,?,?,?,?)",
                             (doc["group"], doc["version"], scope, key, value))

    def group_row(self, name: str):
        rows = self.query("SELECT * FROM groups WHERE name = ?", (name,))
        return rows[0] if rows else None

    def insert_group(self, name: str, description: str, tags: dict,
                     created_by: str | None) -> None:
        self.execute("INSERT INTO groups VALUES (?,?,?,?,?,1)",
                     (name, description, now_iso(), created_by, json.dumps(tags)))

    def group_dict(self, row) -> dict:
        stats = self.query(
            "SELECT COUNT(*) AS n, MAX(version) AS latest, MAX(CASE WHEN status = 'Ready' AND "
            "approval_status = 'Approved' THEN version END) AS approved FROM versions WHERE "
            "group_name = ?", (row["name"],))[0]
        return {"name": row["name"], "description": row["description"],
                "created_at": row["created_at"], "created_by": row["created_by"],
                "tags": json.loads(row["tags"]), "version_count": stats["n"],
                "latest_version": stats["latest"], "latest_approved_version": stats["approved"]}


class Transaction:
    """A write transaction; nested ones join the outermost, which commits or rolls back."""

    def __init__(self, db: RegistryDatabase) -> None:
        self.db = db

    def __enter__(self) -> Transaction:
        self.db.lock.acquire()
        try:
            if self.db._depth == 0:
                self.db._conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.db.lock.release()
            raise
        self.db._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        try:
            self.db._depth -= 1
            if self.db._depth == 0:
                self.db._conn.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self.db.lock.release()
        return False


def check_limit(limit) -> None:
    """Refuse a page size outside 1 to :data:`MAX_PAGE`."""
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_PAGE:
        raise InvalidInput(f"limit {limit!r} is invalid; accepted: an integer from 1 to "
                           f"{MAX_PAGE}")


def encode_token(after: list, query: str) -> str:
    """The ``next_token`` that continues ``query`` after the row whose key is ``after``."""
    raw = json.dumps({"after": after, "query": query}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str | None, query: str) -> list | None:
    """The position a ``next_token`` continues from; it must come from the same query."""
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        after, token_query = data["after"], data["query"]
    except (ValueError, TypeError, KeyError) as err:
        raise InvalidInput(f"next_token {token!r} is invalid; pass the next_token of the "
                           "previous page unchanged") from err
    if token_query != query or not isinstance(after, list):
        raise InvalidInput("next_token belongs to a different query; repeat the same "
                           "filters as the page it came from")
    return after


def now_iso() -> str:
    """Now, as stored: ISO 8601 UTC with microseconds and a ``Z``."""
    return datetime.now(timezone.utc).isoformat(timespec="microseconds") \
        .replace("+00:00", "Z")


def iso_to_micros(text: str) -> int:
    """A stored timestamp as microseconds since the epoch (the filterable column)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def to_micros(name: str, value) -> int:
    """A time filter (datetime, ISO 8601 string or epoch seconds) as epoch microseconds."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(round(value * 1_000_000))
    elif isinstance(value, str):
        parsed: datetime | None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is None:
            raise InvalidInput(f"{name} {value!r} is invalid; accepted: an ISO 8601 time "
                               "(2024-05-01T12:00:00Z), epoch seconds or a datetime")
        moment = parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    else:
        raise InvalidInput(f"{name} {value!r} is invalid; accepted: an ISO 8601 time "
                           "(2024-05-01T12:00:00Z), epoch seconds or a datetime")
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def process_token() -> str:
    """This process as ``"pid:start-time"``: a pid alone could be reused after a reboot."""
    return f"{os.getpid()}:{_start_time(os.getpid())}"


def importer_alive(token: str | None) -> bool:
    """Whether the process a :func:`process_token` names is still the one running."""
    if not token:
        return False
    pid_text, _, started = token.partition(":")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not started or _start_time(pid) in ("", started)


# --------------------------------------------------------------------------- helpers

def _start_time(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""
