"""Managed applications: user code + configuration, run and supervised as worker processes.

An application is a Python file defining ``build(env, properties)`` plus runtime
properties (property groups the code reads), a checkpoint interval and a parallelism.
:class:`ApplicationManager` keeps applications under ``<data_dir>/apps`` (metadata in
SQLite, each application's code copy, checkpoints, snapshots and logs in its own folder)
and drives their lifecycle as Managed Service for Apache Flink does:

READY → STARTING → RUNNING → STOPPING → READY, UPDATING while new code or configuration
is rolled out (restarting from the latest checkpoint), DELETING. A worker that crashes is
restarted from its latest checkpoint, at most ``max_restarts`` times within
``restart_window`` seconds; then the application returns to READY with the failure
recorded. Stopping takes a snapshot by default.

Parallelism: one worker process runs the whole job today; ``parallelism`` is recorded
and reported, and values above 1 are refused until workers can share shards.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

from .errors import ApplicationError, ConflictError, NotFoundError

NAME = re.compile(r"^[a-zA-Z0-9_.-]{1,128}$")
STOP_TIMEOUT_SECONDS = 30.0
SUPERVISE_SECONDS = 0.5


class ApplicationManager:
    def __init__(self, data_dir: str | Path, max_restarts: int = 3,
                 restart_window: float = 600.0, environment: dict[str, str] | None = None
                 ) -> None:
        self.root = Path(data_dir) / "apps"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_restarts = max_restarts
        self.restart_window = restart_window
        self.environment = environment or {}
        self._db = sqlite3.connect(self.root / "apps.db", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS apps (name TEXT PRIMARY KEY, "
                         "doc TEXT NOT NULL)")
        self._lock = threading.RLock()
        self._workers: dict[str, subprocess.Popen] = {}
        self._restarts: dict[str, list[float]] = {}
        self._stopping: set[str] = set()
        self._supervisor_stop = threading.Event()
        self._supervisor: threading.Thread | None = None

    def start(self) -> None:
        """Start supervising, and start again the applications that were running when the
        previous manager on this data directory stopped (call once the server listens)."""
        with self._lock:
            for app in self.list_applications():
                if app["status"] in ("RUNNING", "STARTING", "UPDATING"):
                    self._spawn(app["name"])
                    self._set_status(app, "RUNNING")
                elif app["status"] in ("STOPPING", "DELETING"):
                    self._set_status(app, "READY")
        self._supervisor = threading.Thread(target=self._supervise, name="apps-supervisor",
                                            daemon=True)
        self._supervisor.start()

    # ----------------------------------------------------------------- lifecycle
    def create_application(self, name: str, code: str | Path, properties: dict | None = None,
                           checkpoint_interval: float = 10.0, parallelism: int = 1,
                           description: str = "") -> dict:
        if not NAME.match(name or ""):
            raise ApplicationError(f"application name {name!r} must be 1-128 characters of "
                                   "letters, digits, '_', '.', '-'")
        _check_config(checkpoint_interval, parallelism, properties)
        with self._lock:
            if self._get(name, missing_ok=True) is not None:
                raise ConflictError(f"application {name} already exists")
            app_dir = self.root / name
            shutil.rmtree(app_dir, ignore_errors=True)
            entry = self._install_code(app_dir, code)
            now = time.time()
            doc = {"name": name, "description": description, "status": "READY",
                   "entry": entry, "code_source": str(code), "properties": properties or {},
                   "checkpoint_interval": checkpoint_interval, "parallelism": parallelism,
                   "version": 1, "created": now, "updated": now, "last_failure": None}
            self._put(doc)
            return self.describe_application(name)

    def describe_application(self, name: str) -> dict:
        doc = self._get(name)
        status = self._read_status(name)
        return {**doc, "runtime": status, "snapshots": len(self.list_snapshots(name))}

    def list_applications(self) -> list[dict]:
        rows = self._db.execute("SELECT doc FROM apps ORDER BY name").fetchall()
        return [json.loads(r[0]) for r in rows]

    def update_application(self, name: str, code: str | Path | None = None,
                           properties: dict | None = None,
                           checkpoint_interval: float | None = None,
                           parallelism: int | None = None) -> dict:
        with self._lock:
            doc = self._get(name)
            if doc["status"] not in ("READY", "RUNNING"):
                raise ConflictError(f"application {name} is {doc['status']}; it can be "
                                    "updated when READY or RUNNING")
            _check_config(checkpoint_interval or doc["checkpoint_interval"],
                          parallelism or doc["parallelism"], properties)
            running = doc["status"] == "RUNNING"
            if running:
                self._set_status(doc, "UPDATING")
                self._terminate(name, take_snapshot=False)
            if code is not None:
                doc["entry"] = self._install_code(self.root / name, code, replace=True)
                doc["code_source"] = str(code)
            if properties is not None:
                doc["properties"] = properties
            if checkpoint_interval is not None:
                doc["checkpoint_interval"] = checkpoint_interval
            if parallelism is not None:
                doc["parallelism"] = parallelism
            doc["version"] += 1
            self._put(doc)
            if running:  # continue from the latest checkpoint with the new code/config
                self._start(doc)
            return self.describe_application(name)

    def start_application(self, name: str, restore: str = "LATEST",
                          snapshot: str | None = None) -> dict:
        """``restore``: LATEST (continue from the latest checkpoint), SKIP (start empty)
        or SNAPSHOT (from the named snapshot)."""
        with self._lock:
            doc = self._get(name)
            if doc["status"] != "READY":
                raise ConflictError(f"application {name} is {doc['status']}, not READY")
            checkpoints = self.root / name / "checkpoints"
            if restore == "SKIP":
                shutil.rmtree(checkpoints, ignore_errors=True)
            elif restore == "SNAPSHOT":
                source = self._snapshot_path(name, snapshot)
                shutil.rmtree(checkpoints, ignore_errors=True)
                checkpoints.mkdir(parents=True)
                shutil.copy2(source, checkpoints / "checkpoint-99999999.pkl")
            elif restore != "LATEST":
                raise ApplicationError(f"restore must be LATEST, SKIP or SNAPSHOT, got "
                                       f"{restore!r}")
            self._restarts[name] = []
            doc["last_failure"] = None
            self._start(doc)
            return self.describe_application(name)

    def stop_application(self, name: str, force: bool = False, snapshot: bool = True) -> dict:
        with self._lock:
            doc = self._get(name)
            if doc["status"] not in ("RUNNING", "STARTING"):
                raise ConflictError(f"application {name} is {doc['status']}, not RUNNING")
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
            self._db.execute("DELETE FROM apps WHERE name=?", (name,))
            shutil.rmtree(self.root / name, ignore_errors=True)

    def logs(self, name: str, tail: int = 200) -> list[str]:
        self._get(name)
        path = self.root / name / "logs" / "worker.log"
        if not path.exists():
            return []
        return path.read_text(errors="replace").splitlines()[-tail:]

    def close(self) -> None:
        """Stop supervising; running workers are stopped with a checkpoint and will be
        started again by the next manager on this data directory."""
        self._supervisor_stop.set()
        with self._lock:
            for name in list(self._workers):
                self._terminate(name, take_snapshot=False)
        self._db.close()

    # ----------------------------------------------------------------- snapshots
    def create_snapshot(self, name: str, snapshot: str) -> dict:
        if not NAME.match(snapshot or ""):
            raise ApplicationError(f"snapshot name {snapshot!r} must be 1-128 characters of "
                                   "letters, digits, '_', '.', '-'")
        with self._lock:
            self._get(name)
            target = self.root / name / "snapshots" / f"{snapshot}.pkl"
            if target.exists():
                raise ConflictError(f"snapshot {snapshot} of {name} already exists")
            latest = self._latest_checkpoint(name)
            if latest is None:
                raise ConflictError(f"application {name} has no checkpoint to snapshot yet")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(latest, target)
            return self.describe_snapshot(name, snapshot)

    def list_snapshots(self, name: str) -> list[dict]:
        folder = self.root / name / "snapshots"
        if not folder.is_dir():
            return []
        return [self.describe_snapshot(name, p.stem) for p in sorted(folder.glob("*.pkl"))]

    def describe_snapshot(self, name: str, snapshot: str) -> dict:
        path = self._snapshot_path(name, snapshot)
        stat = path.stat()
        return {"application": name, "name": snapshot, "created": stat.st_mtime,
                "bytes": stat.st_size, "status": "READY"}

    def delete_snapshot(self, name: str, snapshot: str) -> None:
        self._snapshot_path(name, snapshot).unlink()

    # ------------------------------------------------------------------ helpers
    def _install_code(self, app_dir: Path, code: str | Path, replace: bool = False) -> str:
        code = Path(code)
        target = app_dir / "code"
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
        self._set_status(doc, "STARTING")
        self._spawn(doc["name"])
        self._set_status(doc, "RUNNING")

    def _spawn(self, name: str) -> None:
        doc = self._get(name)
        app_dir = self.root / name
        (app_dir / "logs").mkdir(parents=True, exist_ok=True)
        config = {"name": name, "entry": doc["entry"], "properties": doc["properties"],
                  "checkpoint_interval": doc["checkpoint_interval"]}
        (app_dir / "config.json").write_text(json.dumps(config))
        (app_dir / "status.json").unlink(missing_ok=True)
        log = (app_dir / "logs" / "worker.log").open("a")
        log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting version "
                  f"{doc['version']}\n")
        log.flush()
        self._workers[name] = subprocess.Popen(
            [sys.executable, "-m", "forestream.processing.worker", str(app_dir)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.environment,
                                                       "PYTHONUNBUFFERED": "1"})
        log.close()

    def _terminate(self, name: str, take_snapshot: bool, force: bool = False) -> None:
        proc = self._workers.pop(name, None)
        if proc is None:
            return
        self._stopping.add(name)
        try:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL if force else signal.SIGTERM)
                try:
                    proc.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            self._stopping.discard(name)
        if take_snapshot and self._latest_checkpoint(name) is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            target = self.root / name / "snapshots" / f"stop-{stamp}.pkl"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(self._latest_checkpoint(name), target)

    def _supervise(self) -> None:
        while not self._supervisor_stop.wait(SUPERVISE_SECONDS):
            with self._lock:
                for name, proc in list(self._workers.items()):
                    code = proc.poll()
                    if code is None or name in self._stopping:
                        continue
                    del self._workers[name]
                    doc = self._get(name, missing_ok=True)
                    if doc is None:
                        continue
                    if code == 0:  # a bounded job finished
                        self._set_status(doc, "READY")
                        continue
                    now = time.time()
                    recent = [t for t in self._restarts.get(name, [])
                              if now - t < self.restart_window]
                    if len(recent) < self.max_restarts:
                        recent.append(now)
                        self._restarts[name] = recent
                        self._spawn(name)  # from the latest checkpoint
                    else:
                        doc["last_failure"] = {
                            "time": now, "exit_code": code,
                            "reason": f"worker failed {len(recent) + 1} times within "
                                      f"{self.restart_window:.0f} s; see its logs"}
                        self._set_status(doc, "READY")

    def _latest_checkpoint(self, name: str) -> Path | None:
        found = sorted((self.root / name / "checkpoints").glob("checkpoint-*.pkl"))
        return found[-1] if found else None

    def _snapshot_path(self, name: str, snapshot: str | None) -> Path:
        self._get(name)
        path = self.root / name / "snapshots" / f"{snapshot}.pkl"
        if not snapshot or not path.is_file():
            raise NotFoundError(f"application {name} has no snapshot {snapshot!r}")
        return path

    def _read_status(self, name: str) -> dict | None:
        path = self.root / name / "status.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def _get(self, name: str, missing_ok: bool = False) -> dict | None:
        row = self._db.execute("SELECT doc FROM apps WHERE name=?", (name,)).fetchone()
        if row is None:
            if missing_ok:
                return None
            raise NotFoundError(f"application {name!r} not found")
        return json.loads(row[0])

    def _put(self, doc: dict) -> None:
        doc["updated"] = time.time()
        self._db.execute("INSERT OR REPLACE INTO apps VALUES (?, ?)",
                         (doc["name"], json.dumps(doc)))

    def _set_status(self, doc: dict, status: str) -> None:
        doc["status"] = status
        self._put(doc)


def _check_config(checkpoint_interval, parallelism, properties) -> None:
    if not isinstance(checkpoint_interval, (int, float)) or not 0.1 <= checkpoint_interval \
            <= 86400:
        raise ApplicationError(f"checkpoint_interval must be in [0.1, 86400] seconds, got "
                               f"{checkpoint_interval!r}")
    if not isinstance(parallelism, int) or parallelism < 1:
        raise ApplicationError(f"parallelism must be an integer >= 1, got {parallelism!r}")
    if parallelism > 1:
        raise ApplicationError(f"parallelism {parallelism} is not supported yet: one worker "
                               "process runs the whole job (parallel workers sharing shards "
                               "are planned)")
    if properties is not None and not (isinstance(properties, dict) and all(
            isinstance(v, dict) for v in properties.values())):
        raise ApplicationError("properties must map property-group names to "
                               "{key: value} objects")
