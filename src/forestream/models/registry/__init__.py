"""The model registry: model groups, numbered versions, approval, metadata, lineage.

Modelled on SageMaker's Model Registry. A *model group* (a model package group) holds
*versions* numbered 1, 2, 3 ... in import order; numbers are allocated inside a SQLite
write transaction, so concurrent imports — from threads or processes — never collide,
and a deleted version's number is never reused. Each version records:

* its import: ``status`` (``Importing`` -> ``Ready`` | ``Failed`` with
  ``failure_reason``), framework and library versions, input/output ``signature``,
  every file's sha256 and size, the ``artifact_digest`` naming its content-addressed
  directory, ``source_uri``, ``trusted``, ``custom_code``, the ``requirements`` it
  declares (recorded, never installed) and ``validation`` (load time, and the sample
  input's output preview when a sample was given);
* its approval: ``PendingManualApproval`` (the default), ``Approved`` or ``Rejected``,
  with a description and the full ``approval_history`` (status, description, at, by);
* ``metadata`` — ``commit``, ``repository``, ``generated_by`` — fixed at import and
  immutable afterwards; ``customer_metadata`` (string pairs), ``metrics`` (name ->
  number) and ``tags``, all editable within SageMaker's size limits;
* lineage: ``source_uri``, ``artifact_digest``, ``created_at``/``created_by`` and
  ``updated_at`` (ISO 8601 UTC).

State lives under ``<data_dir>/models/``: ``registry.sqlite`` (WAL) for records,
``artifacts/<digest>/`` for model files (see :mod:`.artifact_store`), ``tmp/``
for imports in progress and ``uploads/`` for uploaded files. A new ``ModelRegistry`` on
the same directory sees everything; imports that a dead process left ``Importing`` are
marked ``Failed`` when it opens. One instance is safe to use from many threads.

With an artifact URI (``s3://bucket/prefix``) every artifact is also uploaded to S3 and
the version's ``artifact_uri`` says where; ``artifacts/`` is then a cache that
:meth:`ModelRegistry.artifact_dir` refills, verified, from S3 (see
:mod:`forestream.models.registry.s3_artifacts`).

Every method returns JSON-ready dicts and raises :mod:`forestream.models.errors`:
``InvalidInput`` for a malformed argument (nothing is changed), ``NotFoundError``,
``ConflictError`` (e.g. deleting a group that still has versions), and from imports
``ImportRefused`` (unsafe or untrusted content) or ``ImportFailed`` (the version is
kept as ``Failed``; the error's ``version`` says which).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from ..errors import CodeNotAllowed, ConflictError, InvalidInput, NotFoundError
from ..staging import importer
from ..staging.importer import (
    ImportRequest,
    check_group_name,
    check_metrics,
    check_properties,
    check_text,
    check_version,
)
from ..staging.sources import ImportLimits, is_archive_name
from .artifact_store import ArtifactStore, UploadStore

# ``name as name``: re-exported for code that imports it from here, where it lived before.
from .database import MAX_PAGE as MAX_PAGE
from .database import SCHEMA as SCHEMA
from .database import (
    RegistryDatabase,
    check_limit,
    now_iso,
    to_micros,
)
from .lifecycle import _VersionLifecycle
from .s3_artifacts import S3Artifacts

STATUSES = ("Importing", "Ready", "Failed")
APPROVAL_STATUSES = ("PendingManualApproval", "Approved", "Rejected")


class ModelRegistry(_VersionLifecycle):
    """Model groups and versions under ``<data_dir>/models/`` (see the module docstring).

    ``limits`` bounds what an import may stage (default: :meth:`ImportLimits.from_env`);
    ``validation_timeout`` is how long loading a model plus its sample may take;
    ``upload_ttl_seconds`` how long uploads are kept. ``artifact_uri`` (default:
    ``$FORESTREAM_MODEL_ARTIFACT_URI``; ``""`` for none) keeps every artifact in S3 too,
    at ``s3://bucket/prefix/<digest>/``, on the endpoint ``FORESTREAM_S3_ENDPOINT_URL``.
    """

    def __init__(self, data_dir: Path | str, *, limits: ImportLimits | None = None,
                 validation_timeout: float = 300.0, upload_ttl_seconds: float = 24 * 3600,
                 artifact_uri: str | None = None, allow_code: bool = True) -> None:
        # allow_code False: imports that need trust=True (they run code) are refused
        self.allow_code = allow_code
        self.s3_artifacts = S3Artifacts.configured(artifact_uri)  # checked before any write
        self.root = Path(data_dir) / "models"
        self.limits = limits or ImportLimits.from_env()
        self.validation_timeout = validation_timeout
        self.store = ArtifactStore(self.root)
        self.uploads = UploadStore(self.root / "uploads", upload_ttl_seconds)
        self._db = RegistryDatabase(self.root / "registry.sqlite")
        self._delete_guards: list[Callable[[str], list[str]]] = []
        self._recover()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ModelRegistry:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- groups -----------------------------------------------------------------------

    def create_group(self, name: str, description: str = "", tags: dict | None = None,
                     created_by: str | None = None) -> dict:
        check_group_name(name)
        check_text("description", description, importer.MAX_DESCRIPTION)
        tags = check_properties("tags", tags or {})
        if created_by is not None:
            check_text("created_by", created_by, 256)
        with self._db.transaction():
            if self._db.group_row(name):
                raise ConflictError(f"model group {name!r} already exists")
            self._db.insert_group(name, description, tags, created_by)
        return self.describe_group(name)

    def describe_group(self, name: str) -> dict:
        check_group_name(name)
        with self._db.lock:
            row = self._db.group_row(name)
            if row is None:
                raise NotFoundError(f"model group {name!r} does not exist")
            return self._db.group_dict(row)

    def list_groups(self, limit: int = 100, next_token: str | None = None) -> dict:
        check_limit(limit)
        groups, token = self._db.groups_page(limit, next_token)
        return {"groups": groups, "next_token": token}

    def delete_group(self, name: str) -> None:
        check_group_name(name)
        with self._db.transaction():
            if self._db.group_row(name) is None:
                raise NotFoundError(f"model group {name!r} does not exist")
            count = self._db.query("SELECT COUNT(*) AS n FROM versions WHERE group_name = ?",
                                   (name,))[0]["n"]
            if count:
                raise ConflictError(f"model group {name!r} still has {count} version(s); "
                                    "delete them first")
            self._db.execute("DELETE FROM groups WHERE name = ?", (name,))

    # -- import -----------------------------------------------------------------------

    def store_upload(self, data, filename: str) -> str:
        """Keep uploaded bytes (bytes, a binary file object or an iterable of chunks) as
        ``filename`` for a later ``import_version(group, "upload://<id>")``; returns the
        id. Archives may be up to ``max_total_bytes``, other files ``max_file_bytes``."""
        limit = self.limits.max_total_bytes if isinstance(filename, str) and \
            is_archive_name(filename) else self.limits.max_file_bytes
        return self.uploads.store(data, filename, limit=limit)

    def import_version(self, group: str, source: str | Path, *, framework: str | None = None,
                       trust: bool = False, sample_input: bytes | None = None,
                       sample_content_type: str | None = None, metadata: dict | None = None,
                       customer_metadata: dict | None = None, metrics: dict | None = None,
                       tags: dict | None = None, description: str = "",
                       created_by: str | None = None,
                       s3_endpoint_url: str | None = None) -> dict:
        """Import ``source`` as the next version of ``group`` (created if missing).

        The steps are :func:`forestream.models.staging.importer.prepare_artifact`'s; a refusal or
        failure at any step leaves the version recorded as ``Failed`` with the reason and
        nothing in ``artifacts/`` or ``tmp/``, and raises ``ImportRefused`` or
        ``ImportFailed`` (both with ``.version``). With an artifact URI, a failed upload
        fails the import too. Returns the ``Ready`` version's dict.
        """
        if trust and not self.allow_code:
            raise CodeNotAllowed(
                "importing with trust runs the model's code (pickles, inference scripts) on "
                "the server, and this server refuses to run clients' code: start it with "
                "`forestream server --allow-code` (or FORESTREAM_ALLOW_CODE=1)")
        request = ImportRequest.build(
            group, source, framework=framework, trust=trust, sample_input=sample_input,
            sample_content_type=sample_content_type, metadata=metadata,
            customer_metadata=customer_metadata, metrics=metrics, tags=tags,
            description=description, created_by=created_by, s3_endpoint_url=s3_endpoint_url)
        doc = self._begin_import(request)
        staging = self.store.new_staging_dir()
        try:
            prepared = importer.prepare_artifact(
                request, staging, limits=self.limits, uploads_dir=self.uploads.root,
                timeout=self.validation_timeout)
            self._finish_import(doc, prepared, staging)
        except BaseException as err:
            self.store.discard(staging)
            reason, replacement = importer.failure_of(err)
            self._fail_import(doc, reason)
            raised = replacement or err
            # Whatever is raised carries the number: ImportFailed, ImportRefused and an
            # interruption (KeyboardInterrupt, ...) alike; BaseException declares no .version.
            setattr(raised, "version", doc["version"])  # noqa: B010
            if replacement is None:
                raise
            raise replacement from err
        return self._public(doc)

    # -- versions ---------------------------------------------------------------------

    def describe_version(self, group: str, version: int) -> dict:
        return self._public(self._load(group, version))

    def latest_approved(self, group: str) -> dict:
        """The highest-numbered version of ``group`` that is Approved and Ready."""
        self.describe_group(group)
        rows = self._db.query("SELECT doc FROM versions WHERE group_name = ? AND status = "
                              "'Ready' AND approval_status = 'Approved' ORDER BY version DESC "
                              "LIMIT 1", (group,))
        if not rows:
            raise NotFoundError(f"model group {group!r} has no approved version")
        return self._public(json.loads(rows[0]["doc"]))

    def parse_ref(self, ref: str) -> tuple[str, int]:
        """``"group:3"`` -> ``("group", 3)``; ``"group:latest"`` is the newest Ready
        version, ``"group:approved"`` the newest Approved one (see :meth:`latest_approved`)."""
        group, sep, which = ref.rpartition(":") if isinstance(ref, str) else ("", "", "")
        if not sep or not group:
            raise InvalidInput(f"model reference {ref!r} is invalid; accepted: group:N, "
                               "group:latest or group:approved")
        check_group_name(group)
        if which == "approved":
            return group, self.latest_approved(group)["version"]
        if which == "latest":
            self.describe_group(group)
            rows = self._db.query("SELECT MAX(version) AS v FROM versions WHERE group_name = ?"
                                  " AND status = 'Ready'", (group,))
            if rows[0]["v"] is None:
                raise NotFoundError(f"model group {group!r} has no Ready version")
            return group, rows[0]["v"]
        return group, check_version(which)

    def list_versions(self, group: str | None = None, approval_status: str | None = None,
                      status: str | None = None, created_after=None, created_before=None,
                      metadata: dict | None = None, search: str | None = None,
                      limit: int = 100, next_token: str | None = None) -> dict:
        """Versions matching every given filter, ordered by (group, version).

        ``created_after``/``created_before`` take a datetime (naive = UTC), an ISO 8601
        string or epoch seconds, and are exclusive. ``metadata`` matches key=value pairs
        against customer and immutable metadata (all pairs must match); ``search`` is a
        case-insensitive substring of the group name, the group's or the version's
        description. ``next_token`` continues a previous page of the same query.
        """
        check_limit(limit)
        if group is not None:
            self.describe_group(group)
        for name, value, accepted in (("approval_status", approval_status, APPROVAL_STATUSES),
                                      ("status", status, STATUSES)):
            if value is not None:
                _check_choice(name, value, accepted)
        created = {name: to_micros(name, value) for name, value in
                   (("created_after", created_after), ("created_before", created_before))
                   if value is not None}
        pairs = check_properties("metadata filter", metadata or {},
                                 importer.MAX_IMMUTABLE_VALUE)
        if search is not None:
            check_text("search", search, 256)
        docs, token = self._db.versions_page(
            group=group, approval_status=approval_status, status=status,
            created_after_us=created.get("created_after"),
            created_before_us=created.get("created_before"), metadata=pairs, search=search,
            limit=limit, next_token=next_token)
        return {"versions": [self._public(d) for d in docs], "next_token": token}

    def update_version(self, group: str, version: int, *, approval_status: str | None = None,
                       approval_description: str | None = None,
                       customer_metadata: dict | None = None,
                       remove_customer_metadata=(), metrics: dict | None = None,
                       tags: dict | None = None, remove_tags=(),
                       description: str | None = None, metadata: dict | None = None,
                       updated_by: str | None = None) -> dict:
        """Change a version's approval, customer metadata, metrics, tags or description.

        Mappings are merged into what is stored; ``remove_*`` drop keys. A new approval
        status or description appends to ``approval_history``. Only Ready versions can be
        Approved. ``metadata`` (commit, repository, generated_by) is immutable: passing
        values that differ from the stored ones raises InvalidInput.
        """
        if approval_status is not None:
            _check_choice("approval_status", approval_status, APPROVAL_STATUSES)
        if approval_description is not None:
            check_text("approval_description", approval_description, importer.MAX_DESCRIPTION)
        if description is not None:
            check_text("description", description, importer.MAX_DESCRIPTION)
        if updated_by is not None:
            check_text("updated_by", updated_by, 256)
        with self._db.transaction():
            doc = self._load(group, version)
            for key, value in importer.check_immutable_metadata(metadata or {}).items():
                if doc["metadata"].get(key) != value:
                    raise InvalidInput(f"metadata {key!r} is immutable (stored: "
                                       f"{doc['metadata'].get(key)!r}, given: {value!r}); "
                                       "import a new version to record a different value")
            changed = {
                "customer_metadata": _merge("customer_metadata", doc["customer_metadata"],
                                            customer_metadata, remove_customer_metadata),
                "tags": _merge("tags", doc["tags"], tags, remove_tags),
                "metrics": check_metrics({**doc["metrics"], **check_metrics(metrics or {})}),
            }
            if approval_status == "Approved" and doc["status"] != "Ready":
                raise ConflictError(f"model version {doc['ref']} is {doc['status']}; only "
                                    "Ready versions can be approved")
            doc.update(changed)
            if description is not None:
                doc["description"] = description
            if approval_status is not None or approval_description is not None:
                doc["approval_status"] = approval_status or doc["approval_status"]
                if approval_description is not None:
                    doc["approval_description"] = approval_description
                doc["approval_history"].append({
                    "status": doc["approval_status"], "description": doc["approval_description"],
                    "at": now_iso(), "by": updated_by})
            doc["updated_at"] = now_iso()
            self._db.save_version(doc)
        return self._public(doc)

    def add_delete_guard(self, users: Callable[[str], list[str]]) -> None:
        """Refuse deleting a version while ``users(ref)`` names something that serves it
        (the endpoint manager registers one for its endpoints)."""
        self._delete_guards.append(users)

    def delete_version(self, group: str, version: int) -> dict:
        """Delete a version; its artifact goes too unless another version shares it.
        Returns the deleted version's dict. The number is not reused. Refused while the
        version is importing or a delete guard names a user of it."""
        with self._db.transaction():
            doc = self._load(group, version)
            if doc["status"] == "Importing":
                raise ConflictError(f"model version {doc['ref']} is still importing")
            users = [user for guard in self._delete_guards for user in guard(doc["ref"])]
            if users:
                raise ConflictError(f"model version {doc['ref']} is deployed on endpoint(s) "
                                    f"{', '.join(users)}; delete or update them first")
            self._db.execute("DELETE FROM versions WHERE group_name = ? AND version = ?",
                             (doc["group"], doc["version"]))
            self._collect(doc.get("artifact_digest"), doc.get("artifact_uri"))
        return self._public(doc)

    def artifact_dir(self, group: str, version: int) -> Path:
        """The read-only directory holding a Ready version's files; when the local copy
        is gone, it is first restored from S3 (the version's ``artifact_uri``, else that of
        another version with the same files)."""
        doc = self._load(group, version)
        if doc["status"] != "Ready":
            raise ConflictError(f"model version {doc['ref']} is {doc['status']} and has no "
                                "artifact")
        path = self.store.path(doc["artifact_digest"])
        if not path.is_dir():
            self._restore(doc)
        return path

    def evict_local(self, group: str, version: int) -> None:
        """Drop the local copy of a version's artifact (shared by every version with the
        same files) when S3 holds it; :meth:`artifact_dir` restores it on next use.
        Workers already running keep their open files; new ones wait for the restore."""
        doc = self._load(group, version)
        location = doc.get("artifact_uri")
        if doc["status"] != "Ready" or not location or not self.s3_artifacts.exists(location):
            raise ConflictError(f"model version {doc['ref']} ({doc['status']}) has no complete "
                                f"copy in S3 (artifact_uri {location!r}); its local artifact is "
                                "the only one and is kept")
        self.store.remove(doc["artifact_digest"])

    # -- internals (imports and artifact copies: see _registry_lifecycle) ---------------

    def _load(self, group: str, version) -> dict:
        check_group_name(group)
        number = check_version(version)
        rows = self._db.query("SELECT doc FROM versions WHERE group_name = ? AND version = ?",
                              (group, number))
        if not rows:
            if self._db.group_row(group) is None:
                raise NotFoundError(f"model group {group!r} does not exist")
            raise NotFoundError(f"model version {group}:{number} does not exist")
        return json.loads(rows[0]["doc"])

    def _public(self, doc: dict) -> dict:
        public = json.loads(json.dumps(doc))  # a deep copy callers may change freely
        public.setdefault("artifact_uri", None)  # versions recorded before S3 copies
        return public


# --------------------------------------------------------------------------- helpers

def _merge(name: str, stored: dict, updates: dict | None, removals) -> dict:
    if isinstance(removals, str) or not all(isinstance(k, str) for k in removals):
        raise InvalidInput(f"keys to remove from {name} must be a list of strings")
    merged = {**stored, **check_properties(name, updates or {})}
    for key in removals:
        merged.pop(key, None)
    return check_properties(name, merged)


def _check_choice(name: str, value, accepted: tuple) -> None:
    if value not in accepted:
        raise InvalidInput(f"{name} {value!r} is invalid; accepted: {', '.join(accepted)}")
