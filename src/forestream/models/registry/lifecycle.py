"""The import lifecycle and artifact copies of :class:`~forestream.models.registry.ModelRegistry`.

A version's record goes ``Importing`` -> ``Ready`` | ``Failed``; its files are committed
to the content-addressed ``artifacts/<digest>/`` (see :mod:`.artifact_store`)
and, with an artifact URI, uploaded to S3 (see :mod:`.s3_artifacts`).
An artifact is removed (locally and in S3) when no version refers to it any more, and
restored, verified, from S3 when its local copy is gone.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import NotFoundError
from ..staging.importer import ImportRequest
from .artifact_store import ArtifactStore, UploadStore, manifest_digest
from .database import RegistryDatabase, importer_alive, now_iso, process_token
from .s3_artifacts import S3Artifacts


class _VersionLifecycle:
    """The registry's import and artifact internals (mixed into ``ModelRegistry``, whose
    ``__init__`` sets the attributes below)."""

    _db: RegistryDatabase
    store: ArtifactStore
    uploads: UploadStore
    s3_artifacts: S3Artifacts

    def _recover(self) -> None:
        """Fail imports whose process is gone; clear their staging and old uploads."""
        with self._db.transaction():
            rows = self._db.query("SELECT doc, importer FROM versions WHERE status = "
                                  "'Importing'")
            for row in rows:
                if not importer_alive(row["importer"]):
                    doc = json.loads(row["doc"])
                    doc.update(status="Failed", failure_reason="the import was interrupted: "
                               "the process importing it stopped before it finished")
                    self._db.save_version(doc)
        self.store.sweep_tmp()
        self.uploads.sweep()

    def _begin_import(self, request: ImportRequest) -> dict:
        with self._db.transaction():
            row = self._db.group_row(request.group)
            if row is None:
                self._db.insert_group(request.group, "", {}, request.created_by)
                row = self._db.group_row(request.group)
            number = row["next_version"]
            self._db.execute("UPDATE groups SET next_version = ? WHERE name = ?",
                             (number + 1, request.group))
            now = now_iso()
            doc = {
                "group": request.group, "version": number, "ref": f"{request.group}:{number}",
                "status": "Importing", "failure_reason": None,
                "approval_status": "PendingManualApproval", "approval_description": "",
                "approval_history": [{"status": "PendingManualApproval", "description": "",
                                      "at": now, "by": request.created_by}],
                "framework": request.framework, "framework_version": None,
                "python_version": None, "library_versions": {}, "signature": None,
                "files": [], "artifact_digest": None, "artifact_uri": None, "size_bytes": 0,
                "source_uri": request.source_uri, "trusted": request.trust,
                "custom_code": False, "requirements": [], "validation": None,
                "created_at": now, "updated_at": now, "created_by": request.created_by,
                "metadata": request.metadata, "customer_metadata": request.customer_metadata,
                "metrics": request.metrics, "tags": request.tags,
                "description": request.description,
            }
            self._db.save_version(doc, importer=process_token())
        return doc

    def _finish_import(self, doc: dict, prepared, staging: Path) -> None:
        validation = prepared.validation
        doc.update(
            status="Ready", framework=prepared.framework,
            framework_version=validation.get("framework_version"),
            python_version=validation.get("python_version"),
            library_versions=validation.get("library_versions") or {},
            signature=prepared.signature, files=prepared.files,
            size_bytes=sum(f["size"] for f in prepared.files),
            source_uri=prepared.staged.source_uri, custom_code=prepared.custom_code,
            requirements=prepared.requirements,
            validation={"load_seconds": validation.get("load_seconds"),
                        "sample_output": validation.get("sample_output")},
            updated_at=now_iso())
        if self.s3_artifacts.uri:  # uploaded outside the write lock: it may take minutes
            doc["artifact_uri"] = self.s3_artifacts.location(manifest_digest(prepared.files))
            self.s3_artifacts.upload(doc["artifact_uri"], staging, prepared.files)
        # committing inside the transaction orders it against a concurrent delete's
        # garbage collection of the same digest (also done under the write lock)
        with self._db.transaction():
            if doc["artifact_uri"]:  # a HEAD; uploads again only if a delete came between
                self.s3_artifacts.upload(doc["artifact_uri"], staging, prepared.files)
            stored = self.store.commit(staging, prepared.files)
            doc["artifact_digest"] = stored.digest
            try:
                self._db.save_version(doc)
            except BaseException:
                doc["artifact_digest"] = None
                self._collect(stored.digest, doc["artifact_uri"],
                              exclude=(doc["group"], doc["version"]))
                raise

    def _fail_import(self, doc: dict, reason: str) -> None:
        doc.update(status="Failed", failure_reason=reason, artifact_digest=None,
                   artifact_uri=None, updated_at=now_iso())
        self._db.save_version(doc)

    def _collect(self, digest: str | None, location: str | None = None,
                 exclude: tuple | None = None) -> None:
        """Remove ``artifacts/<digest>`` when no remaining version refers to it, and its S3
        copy at ``location`` when none refers to that (first: if S3 refuses, the caller's
        transaction rolls back and nothing changes)."""
        if not digest:
            return
        rows = self._db.query("SELECT group_name, version, json_extract(doc, '$.artifact_uri')"
                              " AS uri FROM versions WHERE artifact_digest = ?", (digest,))
        remaining = [r for r in rows if exclude != (r["group_name"], r["version"])]
        if location and all(r["uri"] != location for r in remaining):
            self.s3_artifacts.delete(location)
        if not remaining:
            self.store.remove(digest)

    def _restore(self, doc: dict) -> None:
        """Download a version's artifact from S3 into ``tmp/``, verified, and commit it."""
        digest = doc["artifact_digest"]
        rows = self._db.query("SELECT json_extract(doc, '$.artifact_uri') AS uri FROM versions "
                              "WHERE artifact_digest = ?", (digest,))
        location = doc.get("artifact_uri") or next((r["uri"] for r in rows if r["uri"]), None)
        if not location:
            raise NotFoundError(f"artifact {digest} of {doc['ref']} is missing from "
                                f"{self.store.artifacts_dir} and has no copy in S3")
        staging = self.store.new_staging_dir()
        try:
            files = self.s3_artifacts.download(location, staging)
            with self._db.transaction():  # not for a version deleted meanwhile
                if not self._db.query("SELECT 1 FROM versions WHERE artifact_digest = ?",
                                      (digest,)):
                    raise NotFoundError(f"model version {doc['ref']} was deleted while its "
                                        "artifact was being restored")
                self.store.commit(staging, files)
        except BaseException:
            self.store.discard(staging)
            raise
