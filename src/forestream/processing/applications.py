"""Managed applications: user code + configuration, run and supervised as worker processes.

An application is a Python file defining ``build(env, properties)`` plus runtime
properties (property groups the code reads), a checkpoint interval and a parallelism.
:class:`ApplicationManager` keeps applications under ``<data_dir>/apps`` (metadata in
SQLite, each application's code copy, checkpoints, snapshots and logs in its own folder)
and drives their lifecycle as Managed Service for Apache Flink does:

READY → STARTING → RUNNING → STOPPING → READY, UPDATING while new code or configuration
is rolled out (restarting from the latest checkpoint), AUTOSCALING while the workers are
restarted with a new parallelism (see :mod:`forestream.processing.autoscaling`), DELETING.
A worker that crashes is restarted from its latest checkpoint, each worker at most
``max_restarts`` times within ``restart_window`` seconds; then the application returns to
READY with the failure recorded. Stopping takes a snapshot by default.

Parallelism N: N worker processes share the shards of the job's Kinesis source through
a lease table (see :mod:`forestream.processing.leases`). A keyed job's state is split
into ``max_parallelism`` key groups that the workers lease too: records reach their key
group through the application's exchange stream (see :mod:`forestream.processing.exchange`),
so each key's state lives in one place whichever shard its records arrive on, and moves
with its key group. When a worker dies, the others take its leases over after they
expire, continuing from their checkpoints.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, overload

from forestream.names import UnsafeName, child_path, shorten

from .app_code import ApplicationCode
from .app_config import DEFAULT_MAX_PARALLELISM, _check_config
from .app_files import EXCHANGE_FILE, JOB_PART, AppFiles
from .autoscaling import Autoscaler, AutoscalingPolicy, UtilizationTracker
from .errors import ApplicationError, ConflictError, ForbiddenError, NotFoundError
from .flink.application import RUNTIMES, FlinkApplications

STOP_TIMEOUT_SECONDS = 30.0
SUPERVISE_SECONDS = 0.5


class ApplicationManager(AppFiles, Autoscaler):
    """``allow_code``: whether applications may be created, updated and started at all
    (they run their code as this process's user). A server sets it from
    ``Settings.allow_code``; off, :meth:`start` leaves applications that were running
    stopped, with the reason recorded, and the lifecycle calls raise
    :class:`~.errors.ForbiddenError`."""

    def __init__(self, data_dir: str | Path, max_restarts: int = 3,
                 restart_window: float = 600.0, environment: dict[str, str] | None = None,
                 delete_stream: Callable[[str], object] | None = None, allow_code: bool = True,
                 records_behind: Callable[[str, str, str | None], int] | None = None
                 ) -> None:
        self.allow_code = allow_code
        self.root = Path(data_dir) / "apps"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.environment = environment or {}
        # Removes an application's exchange stream (given by the server: its stream store).
        self.delete_stream = delete_stream
        # Counts a reader's lag in records: (stream, shard, last sequence read) -> records
        # after it (given by the server: its stream store).
        self.records_behind = records_behind
        self._db = sqlite3.connect(self.root / "apps.db", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS apps (name TEXT PRIMARY KEY, "
                         "doc TEXT NOT NULL)")
        self._lock = threading.RLock()
        self._workers: dict[str, list[subprocess.Popen[bytes] | None]] = {}
        # (application, worker) -> when it was restarted: each worker has its own budget,
        # so one crash of every worker at once (a killed host) is not N failures of one
        self._restarts: dict[tuple[str, int], list[float]] = {}
        self._stopping: set[str] = set()
        self._supervisor_stop = threading.Event()
        self._closed = False
        self._supervisor: threading.Thread | None = None
        self._trackers: dict[str, UtilizationTracker] = {}
        # applications with runtime "flink" run as Flink jobs (see .flink.application)
        self.flink = FlinkApplications(self)

    def start(self) -> None:
        """Start supervising, and start again the applications that were running when the
        previous manager on this data directory stopped (call once the server listens)."""
        with self._lock:
            for app in self.list_applications():
                if _on_flink(app):  # its job runs on the cluster, not under this server
                    if app["status"] != "RUNNING":
                        self._set_status(app, "READY")
                elif app["status"] in ("RUNNING", "STARTING", "UPDATING") and \
                        not self.allow_code:
                    app["last_failure"] = {"time": time.time(), "reason": (
                        "not restarted: the server now refuses to run application code "
                        "(start it with --allow-code)")}
                    self._set_status(app, "READY")
                elif app["status"] in ("RUNNING", "STARTING", "UPDATING"):
                    self._spawn(app["name"])
                    self._set_status(app, "RUNNING")
                elif app["status"] in ("STOPPING", "DELETING"):
                    self._set_status(app, "READY")
        self._supervisor = threading.Thread(target=self._supervise, name="apps-supervisor",
                                            daemon=True)
        self._supervisor.start()

    # ----------------------------------------------------------------- lifecycle
    def create_application(self, name: str, code: str | Path | ApplicationCode,
                           properties: dict | None = None,
                           checkpoint_interval: float = 10.0, parallelism: int = 1,
                           description: str = "",
                           max_parallelism: int = DEFAULT_MAX_PARALLELISM,
                           autoscaling: dict | None = None, runtime: str = "embedded",
                           flink_url: str | None = None) -> dict:
        """``code``: a ``.py`` file or a folder with ``main.py`` (a path), or
        :class:`~.app_code.ApplicationCode` sent with a request. ``runtime``:
        ``embedded`` (worker processes of this server) or ``flink`` (a Flink job on the
        cluster at ``flink_url``; the code is planned for Flink now and refused if some
        step cannot run there, see :mod:`.flink.application`)."""
        app_dir = self._app_dir(name)  # checked before anything on disk is touched
        self._require_code("creating an application")
        _check_config(checkpoint_interval, parallelism, properties, max_parallelism)
        if not isinstance(description, str) or len(description) > 1024:
            raise ApplicationError(f"description {description!r:.60} must be a string of at "
                                   "most 1024 characters")
        policy = AutoscalingPolicy.from_dict(autoscaling)
        if runtime not in RUNTIMES:
            raise ApplicationError(f"runtime {runtime!r:.40} must be one of {list(RUNTIMES)}")
        flink_url = self.flink.check_url(flink_url)
        if runtime != "flink" and flink_url:
            raise ApplicationError("flink_url is for runtime 'flink' only")
        if runtime == "flink" and policy.to_dict().get("enabled"):
            raise ApplicationError("autoscaling is not available for runtime 'flink' yet: "
                                   "set the parallelism (apps update --parallelism N "
                                   "rescales from a savepoint)")
        with self._lock:
            if self._get(name, missing_ok=True) is not None:
                raise ConflictError(f"application {name} already exists")
            shutil.rmtree(app_dir, ignore_errors=True)  # left by a create that failed
            entry = self._install_code(app_dir, code)
            flink = None
            if runtime == "flink":
                try:
                    planned = self.flink.plan(app_dir / "code", entry, properties or {})
                except ApplicationError:
                    shutil.rmtree(app_dir, ignore_errors=True)
                    raise
                flink = {"url": flink_url, "plan": planned["plan"],
                         "notes": planned["notes"], "job_id": None}
            now = time.time()
            doc = {"name": name, "description": description, "status": "READY",
                   "entry": entry, "code_source": _source_of(code),
                   "properties": properties or {},
                   "checkpoint_interval": checkpoint_interval, "parallelism": parallelism,
                   "max_parallelism": max_parallelism, "autoscaling": policy.to_dict(),
                   "autoscaling_events": [], "version": 1, "created": now,
                   "updated": now, "last_failure": None, "runtime_environment": runtime}
            if flink is not None:
                doc["flink"] = flink
            self._put(doc)
            return self.describe_application(name)

    def describe_application(self, name: str) -> dict:
        doc = self._get(name)
        if _on_flink(doc):
            status = self.flink.status(doc)
            doc = self._get(name)  # the status may have found the job ended
            return {**doc, "runtime": status, "snapshots": len(self.list_snapshots(name))}
        status = self._with_lag(self._read_status(name))
        return {**doc, "runtime": status, "snapshots": len(self.list_snapshots(name))}

    def runtime_statuses(self) -> dict[str, list[dict]]:
        """Application name → the latest status of each of its workers (for metrics; a
        Flink application's job counts as one worker)."""
        out = {}
        for doc in self.list_applications():
            if _on_flink(doc):
                status = self.flink.status(doc) if doc["status"] == "RUNNING" else None
                if status is not None:
                    out[doc["name"]] = [status]
                continue
            status = self._with_lag(self._read_status(doc["name"]))
            if status is not None:
                out[doc["name"]] = status.get("workers") or [status]
        return out

    def _with_lag(self, status: dict | None) -> dict | None:
        """The status with ``records_behind`` ("<source>/<shard>" -> records after the
        worker's position, as the stream holds them now) per worker, and their sum."""
        if status is None or self.records_behind is None:
            return status
        workers = status.get("workers") or [status]
        total = 0
        for worker in workers:
            behind = {}
            for where, (stream, sequence) in (worker.get("read_positions") or {}).items():
                try:
                    behind[where] = self.records_behind(stream, where.rpartition("/")[2],
                                                        sequence)
                except Exception:  # noqa: BLE001 - a stream deleted or resharded meanwhile
                    continue
            worker["records_behind"] = behind
            total += sum(behind.values())
        status["records_behind_total"] = total
        return status

    def list_applications(self) -> list[dict]:
        rows = self._db.execute("SELECT doc FROM apps ORDER BY name").fetchall()
        return [json.loads(r[0]) for r in rows]

    def update_application(self, name: str, code: str | Path | None = None,
                           properties: dict | None = None,
                           checkpoint_interval: float | None = None,
                           parallelism: int | None = None,
                           autoscaling: dict | None = None) -> dict:
        if code is not None:
            self._require_code("updating an application's code")
        with self._lock:
            doc = self._get(name)
            if doc["status"] not in ("READY", "RUNNING"):
                raise ConflictError(f"application {name} is {doc['status']}; it can be "
                                    "updated when READY or RUNNING")
            _check_config(doc["checkpoint_interval"] if checkpoint_interval is None
                          else checkpoint_interval,
                          doc["parallelism"] if parallelism is None else parallelism,
                          properties, doc.get("max_parallelism", DEFAULT_MAX_PARALLELISM))
            # settings not given keep their values (a PATCH)
            policy = None if autoscaling is None else AutoscalingPolicy.from_dict(
                {**(doc.get("autoscaling") or {}), **autoscaling}
                if isinstance(autoscaling, dict) else autoscaling)
            on_flink = _on_flink(doc)
            if on_flink:
                if policy is not None and policy.to_dict().get("enabled"):
                    raise ApplicationError("autoscaling is not available for runtime "
                                           "'flink' yet: set the parallelism")
                if code is not None or properties is not None:  # refused before any change
                    self.flink.plan_update(doc, code, properties)
            # a new autoscaling policy alone takes effect without restarting the workers
            running = doc["status"] == "RUNNING" and (
                code, properties, checkpoint_interval, parallelism) != (None,) * 4
            if running and not on_flink:
                self._set_status(doc, "UPDATING")
                self._terminate(name, take_snapshot=False)

            def apply() -> None:
                if code is not None:
                    doc["entry"] = self._install_code(self._app_dir(name), code, replace=True)
                    doc["code_source"] = _source_of(code)
                if properties is not None:
                    doc["properties"] = properties
                if checkpoint_interval is not None:
                    doc["checkpoint_interval"] = checkpoint_interval
                if parallelism is not None:
                    doc["parallelism"] = parallelism
                if policy is not None:
                    doc["autoscaling"] = policy.to_dict()
                doc["version"] += 1
                self._put(doc)

            if running and on_flink:  # savepoint, then resubmitted from it
                self.flink.update(doc, apply)
                return self.describe_application(name)
            apply()
            if running:  # continue from the latest checkpoint with the new code/config
                self._start(doc)
            return self.describe_application(name)

    def start_application(self, name: str, restore: str = "LATEST",
                          snapshot: str | None = None) -> dict:
        """``restore``: LATEST (continue from the latest checkpoint), SKIP (start empty)
        or SNAPSHOT (from the named snapshot)."""
        self._require_code("starting an application")
        with self._lock:
            doc = self._get(name)
            if doc["status"] != "READY":
                raise ConflictError(f"application {name} is {doc['status']}, not READY")
            if _on_flink(doc):
                doc["last_failure"] = None
                self.flink.start(doc, restore, snapshot)
                return self.describe_application(name)
            checkpoints = self._app_dir(name) / "checkpoints"
            self._exchanges(name)  # note the current exchange before its file may go
            if restore == "SKIP":
                shutil.rmtree(checkpoints, ignore_errors=True)
                self._reset_leases(name)
                self._drop_unused_exchanges(name)
            elif restore == "SNAPSHOT":
                source = self._snapshot_path(name, snapshot)
                shutil.rmtree(checkpoints, ignore_errors=True)
                for part in source.glob("*.pkl"):  # job.pkl, or one file per shard
                    folder = checkpoints if part.stem == JOB_PART else checkpoints / part.stem
                    folder.mkdir(parents=True, exist_ok=True)
                    # numbered 0 (not unpickled here: it may hold the application's own
                    # classes); the job numbers its next checkpoints from the id inside
                    shutil.copy2(part, folder / "checkpoint-00000000.pkl")
                self._reset_leases(name)
                if (source / EXCHANGE_FILE).exists():  # the exchange its key groups read
                    shutil.copy2(source / EXCHANGE_FILE, checkpoints / EXCHANGE_FILE)
                self._drop_unused_exchanges(name)
            elif restore != "LATEST":
                raise ApplicationError(f"restore must be LATEST, SKIP or SNAPSHOT, got "
                                       f"{restore!r}")
            for key in [k for k in self._restarts if k[0] == name]:
                del self._restarts[key]
            doc["last_failure"] = None
            self._start(doc)
            return self.describe_application(name)

    def stop_application(self, name: str, force: bool = False, snapshot: bool = True) -> dict:
        with self._lock:
            doc = self._get(name)
            if doc["status"] not in ("RUNNING", "STARTING"):
                raise ConflictError(f"application {name} is {doc['status']}, not RUNNING")
            if _on_flink(doc):
                self.flink.stop(doc, force, snapshot)
                return self.describe_application(name)
            self._set_status(doc, "STOPPING")
            self._terminate(name, take_snapshot=snapshot and not force, force=force)
            self._set_status(doc, "READY")
            return self.describe_application(name)

    def delete_application(self, name: str) -> None:
        with self._lock:
            doc = self._get(name)
            if doc["status"] not in ("READY",):
                raise ConflictError(f"application {name} is {doc['status']}; stop it first")
            self._set_status(doc, "DELETING")
            self._drop_unused_exchanges(name, keep=False)
            self._db.execute("DELETE FROM apps WHERE name=?", (name,))
            shutil.rmtree(self._app_dir(name), ignore_errors=True)

    def logs(self, name: str, tail: int = 200) -> list[str]:
        doc = self._get(name)
        path = self.root / name / "logs" / "worker.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        if _on_flink(doc):
            lines += self.flink.logs(doc)
        return lines[-tail:]

    def stop_workers(self) -> None:
        """Stop supervising and stop running workers with a checkpoint; the next manager
        on this data directory starts them again. A server calls this while it still
        serves, so that workers can flush to its streams on the way out."""
        self._supervisor_stop.set()
        with self._lock:
            for name in list(self._workers):
                self._terminate(name, take_snapshot=False)

    def close(self) -> None:
        """:meth:`stop_workers`, then release the database (idempotent)."""
        if self._closed:
            return
        self.stop_workers()
        self._closed = True
        self._db.close()

    # ----------------------------------------------------------------- snapshots
    def create_snapshot(self, name: str, snapshot: str) -> dict:
        with self._lock:
            doc = self._get(name)
            target = self._child(self._app_dir(name) / "snapshots", snapshot, "snapshot name")
            if target.exists():
                raise ConflictError(f"snapshot {snapshot} of {name} already exists")
            if _on_flink(doc):
                self.flink.create_snapshot(doc, snapshot)
                return self.describe_snapshot(name, snapshot)
            if not self._latest_checkpoints(name):
                raise ConflictError(f"application {name} has no checkpoint to snapshot yet")
            self._copy_snapshot(name, snapshot)
            return self.describe_snapshot(name, snapshot)

    def list_snapshots(self, name: str) -> list[dict]:
        folder = self.root / name / "snapshots"
        if not folder.is_dir():
            return []
        return [self.describe_snapshot(name, p.name) for p in sorted(folder.iterdir())
                if p.is_dir()]

    def describe_snapshot(self, name: str, snapshot: str) -> dict:
        path = self._snapshot_path(name, snapshot)
        if (path / "savepoint.json").is_file():  # a Flink savepoint
            return {"application": name, "name": snapshot, "status": "READY",
                    **self.flink.describe_snapshot(path)}
        parts = sorted(path.glob("*.pkl"))
        return {"application": name, "name": snapshot, "created": path.stat().st_mtime,
                "bytes": sum(p.stat().st_size for p in parts),
                "parts": [p.stem for p in parts], "status": "READY"}

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        with self._lock:
            shutil.rmtree(self._snapshot_path(name, snapshot))
            self._drop_unused_exchanges(name)  # an exchange only it referred to

    # ------------------------------------------------------------------ helpers
    def _app_dir(self, name: object) -> Path:
        return self._child(self.root, name, "application name")

    @staticmethod
    def _child(root: Path, name: object, what: str) -> Path:
        try:
            return child_path(root, name, what)
        except UnsafeName as exc:
            raise ApplicationError(str(exc)) from None

    def _require_code(self, action: str) -> None:
        if not self.allow_code:
            raise ForbiddenError(f"{action} runs its code on the server, and this server "
                                 "refuses to run clients' code: start it with `forestream "
                                 "server --allow-code` (or FORESTREAM_ALLOW_CODE=1)")

    def _install_code(self, app_dir: Path, code: str | Path | ApplicationCode,
                      replace: bool = False) -> str:
        target = app_dir / "code"
        if isinstance(code, ApplicationCode):
            staging = app_dir / ".code.new"
            shutil.rmtree(staging, ignore_errors=True)
            entry = code.install(staging)
            if replace:
                shutil.rmtree(target, ignore_errors=True)
            os.replace(staging, target)
            return entry
        code = Path(code)
        if replace:
            shutil.rmtree(target, ignore_errors=True)
        if code.is_file() and code.suffix == ".py":
            target.mkdir(parents=True)
            shutil.copy2(code, target / code.name)
            return code.name
        if code.is_dir() and (code / "main.py").is_file():
            shutil.copytree(code, target)
            return "main.py"
        raise ApplicationError(f"code {str(code)!r} must be a .py file, or a directory with "
                               "main.py, defining build(env, properties)")

    def _start(self, doc: dict) -> None:
        self._trackers.pop(doc["name"], None)
        self._set_status(doc, "STARTING")
        self._spawn(doc["name"])
        self._set_status(doc, "RUNNING")

    def _spawn(self, name: str, only: int | None = None) -> None:
        """Start the application's workers (or just worker ``only``, after it died)."""
        doc = self._get(name)
        app_dir = self.root / name
        (app_dir / "logs").mkdir(parents=True, exist_ok=True)
        config = {"name": name, "entry": doc["entry"], "properties": doc["properties"],
                  "checkpoint_interval": doc["checkpoint_interval"],
                  "max_parallelism": doc.get("max_parallelism", DEFAULT_MAX_PARALLELISM)}
        (app_dir / "config.json").write_text(json.dumps(config))
        count = doc["parallelism"]
        if only is None and count > 1:  # rounds are for one worker running every stage
            self._settle_rounds(name)
        if only is None:  # workers beyond the count (before a rescale) report no more
            for path in app_dir.glob("status*.json"):
                path.unlink(missing_ok=True)
        workers = self._workers.setdefault(name, [None] * count)
        for i in range(count) if only is None else [only]:
            (app_dir / ("status.json" if i == 0 else f"status-{i}.json")).unlink(missing_ok=True)
            log = (app_dir / "logs" / "worker.log").open("a")
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting worker {i} of "
                      f"version {doc['version']}\n")
            log.flush()
            args = [sys.executable, "-m", "forestream.processing.worker", str(app_dir),
                    str(i), str(count)]
            workers[i] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, **self.environment,
                                               "PYTHONUNBUFFERED": "1"})
            log.close()

    def _terminate(self, name: str, take_snapshot: bool, force: bool = False) -> None:
        procs = [p for p in self._workers.pop(name, []) if p is not None]
        if not procs:
            return
        self._stopping.add(name)
        try:
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL if force else signal.SIGTERM)
            for proc in procs:
                try:
                    proc.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            self._stopping.discard(name)
        if take_snapshot and self._latest_checkpoints(name):
            self._copy_snapshot(name, f"stop-{time.strftime('%Y%m%d-%H%M%S')}")

    def _supervise(self) -> None:
        while not self._supervisor_stop.wait(SUPERVISE_SECONDS):
            try:
                self._supervise_once()
            except Exception:  # never let one bad moment stop the restarts of every app
                print(f"application supervisor: {traceback.format_exc()}", file=sys.stderr,
                      flush=True)

    def _supervise_once(self) -> None:
        with self._lock:
            for name, procs in list(self._workers.items()):
                if name in self._stopping:
                    continue
                for i, proc in enumerate(procs):
                    code = None if proc is None else proc.poll()
                    if code is not None:
                        self._handle_exit(name, i, code)
                if name in self._workers and not self._supervisor_stop.is_set():
                    self._autoscale(name)

    def _handle_exit(self, name: str, worker: int, code: int) -> None:
        doc = self._get(name, missing_ok=True)
        procs = self._workers.get(name, [])
        if doc is None:
            self._workers.pop(name, None)
            return
        procs[worker] = None
        if code == 0:  # a bounded job finished (all workers: the application is done)
            if all(p is None for p in procs):
                self._workers.pop(name, None)
                self._set_status(doc, "READY")
            return
        now = time.time()
        recent = [t for t in self._restarts.get((name, worker), [])
                  if now - t < self.restart_window]
        if len(recent) < self.max_restarts:
            recent.append(now)
            self._restarts[(name, worker)] = recent
            self._spawn(name, only=worker)  # from its latest checkpoint(s)
            return
        doc["last_failure"] = {"time": now, "exit_code": code,
                               "reason": f"worker {worker} failed {len(recent) + 1} times "
                                         f"within {self.restart_window:.0f} s; see its logs"}
        self._workers.pop(name, None)
        for proc in procs:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        self._set_status(doc, "READY")

    def _worker_pids(self, name: str) -> list[int]:
        return [p.pid for p in self._workers.get(name, []) if p is not None]

    @overload
    def _get(self, name: str, missing_ok: Literal[False] = False) -> dict[str, Any]: ...

    @overload
    def _get(self, name: str, missing_ok: bool = False) -> dict[str, Any] | None: ...

    def _get(self, name: str, missing_ok: bool = False) -> dict[str, Any] | None:
        row = self._db.execute("SELECT doc FROM apps WHERE name=?", (name,)).fetchone()
        if row is None:
            if missing_ok:
                return None
            raise NotFoundError(f"application {shorten(name)} not found")
        return json.loads(row[0])

    def _put(self, doc: dict) -> None:
        doc["updated"] = time.time()
        self._db.execute("INSERT OR REPLACE INTO apps VALUES (?, ?)",
                         (doc["name"], json.dumps(doc)))

    def _set_status(self, doc: dict, status: str) -> None:
        doc["status"] = status
        self._put(doc)


def _on_flink(doc: dict) -> bool:
    return doc.get("runtime_environment") == "flink"


def _source_of(code: str | Path | ApplicationCode) -> str:
    """What the application's metadata records as where its code came from."""
    if isinstance(code, ApplicationCode):
        return f"uploaded ({len(code.files)} file{'s' if len(code.files) != 1 else ''}, " \
               f"entry {code.entry})"
    return str(code)
