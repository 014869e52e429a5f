"""Applications with ``runtime = "flink"``: the lifecycle of a managed application mapped
onto a Flink cluster, as Managed Service for Apache Flink maps it.

- create: the code is planned for Flink in a child process (:mod:`.dry_run`); what
  cannot run there as it runs on the embedded runtime is refused now, naming the step;
- start: the PyFlink program (:mod:`.job.main`) is submitted with the connector jar,
  at the application's parallelism, from the latest snapshot (a savepoint) unless
  ``restore`` says SKIP, or from the named one (SNAPSHOT);
- stop: stop-with-savepoint into a new snapshot ``stop-<time>`` (``force``: cancel);
- snapshots: savepoints, each in its folder under the application's ``snapshots/``
  (create = trigger a savepoint of the running job);
- update: savepoint, then the new code or configuration submitted from it (a new
  parallelism rescales: Flink redistributes keyed state by key group);
- describe: the job's state, records in and out and checkpoints from Flink's REST API.

The Flink job runs on the cluster, not under the server: a server that restarts finds
it running there. :class:`FlinkApplications` holds this for the
:class:`~forestream.processing.applications.ApplicationManager`, which dispatches to it.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ApplicationError, ConflictError, NotFoundError

if TYPE_CHECKING:
    from ..applications import ApplicationManager

RUNTIMES = ("embedded", "flink")
JOB_CONFIG = "flink-job.json"
#: Flink job states after which the job runs no more.
TERMINAL = {"FAILED", "CANCELED", "FINISHED"}
FLINK_URL_ENV = "FORESTREAM_FLINK_URL"
REST_TIMEOUT_SECONDS = 10.0


#: Seconds a job's metrics from Flink's REST API are reused by describe (see _metrics).
METRICS_MAX_AGE = 2.0


class FlinkApplications:
    """The Flink side of the application manager (it owns the metadata and locks)."""

    def __init__(self, manager: ApplicationManager,
                 rest_factory: Callable[[str], Any] | None = None) -> None:
        self.manager = manager
        self._rest_factory = rest_factory
        # job id -> (monotonic time, metrics): see _metrics
        self._metrics_cache: dict[str, tuple[float, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ create
    def plan(self, code_dir: Path, entry: str, properties: dict[str, Any]) -> dict[str, Any]:
        """The dry translation of the installed code (raises ApplicationError)."""
        from .dry_run import dry_translate

        return dry_translate(code_dir, entry, properties,
                             endpoint=self.manager.environment.get("FORESTREAM_ENDPOINT_URL"))

    def plan_update(self, doc: dict[str, Any], code: Any, properties: dict | None) -> None:
        """Plan new code (a path or ApplicationCode) or properties for Flink before
        anything changes (raises the refusal); the new plan replaces the application's."""
        app_dir = self.manager._app_dir(doc["name"])
        trial = app_dir / ".plan"
        shutil.rmtree(trial, ignore_errors=True)
        try:
            if code is not None:
                entry, code_dir = self.manager._install_code(trial, code), trial / "code"
            else:
                entry, code_dir = doc["entry"], app_dir / "code"
            planned = self.plan(code_dir, entry, doc["properties"] if properties is None
                                else properties)
        finally:
            shutil.rmtree(trial, ignore_errors=True)
        doc["flink"].update(plan=planned["plan"], notes=planned["notes"])

    @staticmethod
    def check_url(url: object) -> str | None:
        if url is None or url == "":
            return None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")) or \
                len(url) > 2048:
            raise ApplicationError(f"flink_url {url!r:.80} must be the http(s) URL of a "
                                   "Flink cluster's REST API, e.g. http://127.0.0.1:8081")
        return url.rstrip("/")

    # --------------------------------------------------------------- lifecycle
    def start(self, doc: dict[str, Any], restore: str, snapshot: str | None) -> None:
        name = doc["name"]
        if restore == "SKIP":
            savepoint = None
        elif restore == "SNAPSHOT":
            savepoint = self._savepoint_of(name, snapshot)
        elif restore == "LATEST":
            latest = self.latest_snapshot(name)
            savepoint = self._savepoint_of(name, latest) if latest else None
        else:
            raise ApplicationError(f"restore must be LATEST, SKIP or SNAPSHOT, got "
                                   f"{restore!r}")
        self._submit(doc, savepoint)

    def _submit(self, doc: dict[str, Any], savepoint: str | None) -> None:
        from .install import connector_jar

        name = doc["name"]
        app_dir = self.manager.root / name
        env = self.manager.environment
        config = {"name": f"forestream {name} v{doc['version']}",
                  "code_dir": str(app_dir / "code"), "entry": doc["entry"],
                  "properties": doc["properties"],
                  "checkpoint_interval": doc["checkpoint_interval"],
                  "endpoint": env.get("FORESTREAM_ENDPOINT_URL"),
                  "access_token": env.get("FORESTREAM_TOKEN", ""),
                  "max_parallelism": 128}
        (app_dir / JOB_CONFIG).write_text(json.dumps(config))
        flink = doc.setdefault("flink", {})
        self.manager._set_status(doc, "STARTING")
        try:
            rest = self._rest(doc)
            job_id = rest.submit_python(str(_job_script()), [str(app_dir / JOB_CONFIG)],
                                        jars=[str(connector_jar())],
                                        parallelism=doc["parallelism"], savepoint=savepoint)
        except Exception as exc:
            doc["last_failure"] = {"time": time.time(), "reason": f"submission to Flink "
                                   f"failed: {exc}"}
            self.manager._set_status(doc, "READY")
            self._log(name, f"submission failed: {exc}")
            raise ApplicationError(f"application {name} could not be submitted to Flink at "
                                   f"{flink.get('url') or self.url(doc)}: {exc}") from exc
        flink.update({"job_id": job_id, "restored_from": savepoint, "submitted": time.time()})
        self._log(name, f"submitted as Flink job {job_id} (parallelism {doc['parallelism']}"
                        f"{', from ' + savepoint if savepoint else ''})")
        self.manager._set_status(doc, "RUNNING")

    def stop(self, doc: dict[str, Any], force: bool, snapshot: bool) -> None:
        name = doc["name"]
        job_id = (doc.get("flink") or {}).get("job_id")
        self.manager._set_status(doc, "STOPPING")
        rest = self._rest(doc)
        label = None
        try:
            if not job_id:
                pass  # the job ended on the cluster already
            elif force or not snapshot:
                rest.cancel(job_id)
                self._log(name, f"Flink job {job_id} cancelled")
            else:
                label = self._new_label(name, f"stop-{time.strftime('%Y%m%d-%H%M%S')}")
                path = rest.stop_with_savepoint(job_id, str(self._snapshot_dir(name, label)))
                self._record(name, label, path, job_id)
                self._log(name, f"Flink job {job_id} stopped with savepoint {path}")
        except Exception as exc:
            if label is not None:  # no savepoint in it: not a snapshot
                shutil.rmtree(self.manager.root / name / "snapshots" / label,
                              ignore_errors=True)
            doc["last_failure"] = {"time": time.time(), "reason": f"stopping Flink job "
                                   f"{job_id} failed: {exc}"}
            self._log(name, doc["last_failure"]["reason"])
            raise ConflictError(f"{doc['last_failure']['reason']}; the application is READY "
                                f"(see the job at {self.url(doc)})") from exc
        finally:
            doc["flink"]["job_id"] = None
            self.manager._set_status(doc, "READY")

    def update(self, doc: dict[str, Any], apply: Callable[[], None]) -> None:
        """Savepoint the running job, apply the new code or configuration, resubmit
        from the savepoint."""
        name = doc["name"]
        job_id = doc["flink"]["job_id"]
        self.manager._set_status(doc, "UPDATING")
        label = self._new_label(name, f"update-{time.strftime('%Y%m%d-%H%M%S')}-"
                                      f"v{doc['version']}")
        try:
            path = self._rest(doc).stop_with_savepoint(job_id,
                                                       str(self._snapshot_dir(name, label)))
        except Exception as exc:  # the job runs on unchanged
            shutil.rmtree(self.manager.root / name / "snapshots" / label, ignore_errors=True)
            self.manager._set_status(doc, "RUNNING")
            raise ConflictError(f"the savepoint before the update of {name} failed, nothing "
                                f"changed: {exc}") from exc
        self._record(name, label, path, job_id)
        doc["flink"]["job_id"] = None
        apply()
        self._submit(doc, path)

    # -------------------------------------------------------------- snapshots
    def create_snapshot(self, doc: dict[str, Any], snapshot: str) -> None:
        job_id = (doc.get("flink") or {}).get("job_id")
        if doc["status"] != "RUNNING" or not job_id:
            raise ConflictError(f"application {doc['name']} is {doc['status']}: a snapshot of "
                                "a Flink application is a savepoint of its running job")
        path = self._rest(doc).trigger_savepoint(
            job_id, str(self._snapshot_dir(doc["name"], snapshot)))
        self._record(doc["name"], snapshot, path, job_id)

    def describe_snapshot(self, folder: Path) -> dict[str, Any]:
        record = json.loads((folder / "savepoint.json").read_text())
        local = _local_path(record["path"])
        size = sum(p.stat().st_size for p in local.rglob("*") if p.is_file()) \
            if local is not None and local.exists() else 0
        return {"created": record["created"], "bytes": size, "parts": [],
                "savepoint": record["path"], "flink_job": record.get("job_id")}

    def latest_snapshot(self, name: str) -> str | None:
        folder = self.manager.root / name / "snapshots"
        found = [(json.loads((d / "savepoint.json").read_text())["created"], d.name)
                 for d in folder.glob("*") if (d / "savepoint.json").is_file()] \
            if folder.is_dir() else []
        return max(found)[1] if found else None

    def _savepoint_of(self, name: str, snapshot: str | None) -> str:
        folder = self.manager._snapshot_path(name, snapshot)
        record = folder / "savepoint.json"
        if not record.is_file():
            raise NotFoundError(f"snapshot {snapshot} of {name} holds no Flink savepoint "
                                "(it was taken on the embedded runtime)")
        return str(json.loads(record.read_text())["path"])

    def _new_label(self, name: str, label: str) -> str:
        """``label``, or ``label-2``, ``-3``…: not yet a snapshot of the application."""
        folder = self.manager.root / name / "snapshots"
        found, n = label, 1
        while (folder / found).exists():
            n += 1
            found = f"{label}-{n}"
        return found

    def _snapshot_dir(self, name: str, snapshot: str) -> Path:
        target = self.manager._child(self.manager.root / name / "snapshots", snapshot,
                                     "snapshot name")
        if target.exists():
            raise ConflictError(f"snapshot {snapshot} of {name} already exists")
        target.mkdir(parents=True)
        return target.resolve()

    def _record(self, name: str, snapshot: str, path: str, job_id: str | None) -> None:
        folder = self.manager.root / name / "snapshots" / snapshot
        tmp = folder / "savepoint.json.tmp"
        tmp.write_text(json.dumps({"path": path, "job_id": job_id, "created": time.time()}))
        os.replace(tmp, folder / "savepoint.json")

    # ----------------------------------------------------------------- status
    def status(self, doc: dict[str, Any]) -> dict[str, Any] | None:
        """The job's status for ``describe`` (None when no job runs); a job that ended
        on its own on the cluster leaves the application READY with the reason."""
        flink = doc.get("flink") or {}
        job_id = flink.get("job_id")
        if not job_id:
            return None
        rest = self._rest(doc)
        try:
            job = rest.job(job_id)
        except Exception as exc:  # noqa: BLE001 - the cluster is unreachable: say so
            return {"state": "UNKNOWN", "error": f"Flink at {self.url(doc)}: {exc}",
                    "flink_job": job_id}
        state = job.get("state", "UNKNOWN")
        status: dict[str, Any] = {"state": "RUNNING" if state == "RUNNING" else state,
                                  "flink_job": job_id, "flink_url": self.url(doc),
                                  "parallelism": doc["parallelism"]}
        try:
            status.update(_metrics_fields(self._metrics(rest, job_id)))
        except Exception as exc:  # noqa: BLE001 - metrics are not there yet (just started)
            status["metrics_error"] = str(exc)
        if state in TERMINAL and doc["status"] == "RUNNING":
            with self.manager._lock:
                reason = f"Flink job {job_id} is {state}"
                try:
                    exceptions = rest.exceptions(job_id)
                    if exceptions:
                        reason += f": {str(exceptions)[:500]}"
                except Exception:  # noqa: BLE001 - the reason is enough without them
                    pass
                doc["last_failure"] = {"time": time.time(), "reason": reason}
                doc["flink"]["job_id"] = None
                self.manager._set_status(doc, "READY")
        return status

    def logs(self, doc: dict[str, Any]) -> list[str]:
        """What the manager logged, then the job's exceptions from Flink."""
        lines: list[str] = []
        job_id = (doc.get("flink") or {}).get("job_id")
        if job_id:
            try:
                failures = self._rest(doc).exceptions(job_id)
                for failure in reversed(failures.get("history") or []):
                    lines.append(f"--- Flink job {job_id} failure at {failure.get('time')} "
                                 f"in {failure.get('task')}:")
                    lines += str(failure.get("exception") or "").splitlines()[-60:]
            except Exception as exc:  # noqa: BLE001 - the cluster is unreachable: say so
                lines.append(f"--- Flink at {self.url(doc)} unreachable: {exc}")
        return lines

    # ---------------------------------------------------------------- helpers
    def _metrics(self, rest: Any, job_id: str) -> dict[str, Any]:
        """The job's metrics, read from Flink at most every METRICS_MAX_AGE seconds.

        A describe asks the JobManager for the job and every vertex's metrics (about ten
        REST calls); a console or a script polling describe several times a second kept
        the JobManager busy (measured: ~6 CPU-s in a 40 s benchmark run polling 5 times
        a second), while Flink itself refreshes the metrics it serves only every
        ``metrics.fetcher.update-interval`` (10 s by default), so fresher reads return
        the same numbers. The job's state is read on every describe."""
        now = time.monotonic()
        cached = self._metrics_cache.get(job_id)
        if cached is not None and now - cached[0] < METRICS_MAX_AGE:
            return cached[1]
        metrics: dict[str, Any] = rest.metrics(job_id)
        self._metrics_cache = {k: v for k, v in self._metrics_cache.items()
                               if now - v[0] < METRICS_MAX_AGE}
        self._metrics_cache[job_id] = (now, metrics)
        return metrics

    def url(self, doc: dict[str, Any]) -> str:
        url = (doc.get("flink") or {}).get("url") or os.environ.get(FLINK_URL_ENV)
        if url:
            return str(url)
        from .cluster import LocalFlinkCluster

        local = LocalFlinkCluster(self.manager.root.parent)  # attaches; starts nothing
        found = local.rest_url if local.running() else None
        if found is None:
            raise ApplicationError(
                f"application {doc['name']} has no Flink cluster: create it with --flink URL,"
                f" set {FLINK_URL_ENV}, or start a local one with `forestream flink start "
                f"--data-dir {self.manager.root.parent}`")
        return found

    def _rest(self, doc: dict[str, Any]) -> Any:
        url = self.url(doc)
        if self._rest_factory is not None:
            return self._rest_factory(url)
        from .rest_api import FlinkRest

        # short: describe and /metrics ask too, and an unreachable cluster must not hold
        # them (savepoints and submissions wait on their own deadlines)
        return FlinkRest(url, timeout=REST_TIMEOUT_SECONDS)

    def _log(self, name: str, line: str) -> None:
        self.manager._log(name, line)


def _job_script() -> Path:
    return Path(__file__).with_name("job") / "main.py"


def _local_path(uri: str) -> Path | None:
    if uri.startswith("file://"):
        return Path(uri[len("file://"):])
    if uri.startswith("file:"):
        return Path(uri[len("file:"):])
    if uri.startswith("/"):
        return Path(uri)
    return None


def _metrics_fields(metrics: dict[str, Any]) -> dict[str, Any]:
    """The REST client's job metrics in the fields ``apps describe`` shows."""
    checkpoints = metrics.get("checkpoints") or {}
    out: dict[str, Any] = {
        "records_in": metrics.get("records_in", 0), "records_out": metrics.get("records_out", 0),
        "checkpoints": checkpoints.get("completed", 0), "flink_checkpoints": checkpoints,
        "operators": {v["name"]: [v.get("read_records", 0), v.get("write_records", 0)]
                      for v in metrics.get("vertices", [])}}
    if metrics.get("millis_behind_latest") is not None:
        out["millis_behind_latest"] = {"sources/most behind shard":
                                       metrics["millis_behind_latest"]}
    return out

