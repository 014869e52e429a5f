"""A small client of Apache Flink's REST API, plus job submission with Flink's CLI.

:class:`FlinkRest` covers what forestream's application lifecycle needs from a Flink
cluster (local, remote session, or an application cluster): the cluster overview and
TaskManagers, a job's status, metrics (records in/out, checkpoints, lag), exceptions,
savepoints (trigger, stop-with-savepoint), cancel, and the JobManager's log.

**Why submissions go through ``flink run --python``, not ``POST /jars/:id/run``.** A
PyFlink program is Python code that builds the job graph by talking to a JVM. The CLI
runs that Python here, with the Flink environment's interpreter and the job's files as
they are on this machine, and sends only the finished job graph and the jars to the
cluster. The REST route would run Flink's ``PythonDriver`` inside the JobManager: the
JobManager's host would need our Python environment and the script at the same path,
which holds for a local cluster but not for a remote one, and a failing script would
run (and fail) inside the JobManager. The price is a client JVM per submission (7 to 13 s
here), paid only at start, restore and update.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from . import install

_JOB_ID = re.compile(r"JobID\s+([0-9a-f]{32})")
TERMINAL_STATES = ("FINISHED", "FAILED", "CANCELED", "SUSPENDED")


class FlinkRestError(RuntimeError):
    """Flink answered an error (``status`` is the HTTP status, 0 when unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FlinkSubmitError(RuntimeError):
    """``flink run`` did not submit the job; the message carries the CLI's output."""


class FlinkRest:
    """Flink's REST API at ``url`` (e.g. ``http://127.0.0.1:8081``)."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    # ------------------------------------------------------------------ cluster
    def overview(self) -> dict[str, Any]:
        """Flink version, TaskManagers, slots (total/available), jobs by state."""
        return self._call("GET", "/overview")

    def taskmanagers(self) -> list[dict[str, Any]]:
        """The TaskManagers: id, address, slots, free slots, memory, last heartbeat."""
        return list(self._call("GET", "/taskmanagers")["taskmanagers"])

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the cluster knows: jid, name, state, start time, duration."""
        return list(self._call("GET", "/jobs/overview")["jobs"])

    def jobmanager_log(self, tail: int = 20_000) -> str:
        """The last ``tail`` characters of the JobManager's log."""
        return self._text("/jobmanager/log")[-tail:]

    def taskmanager_log(self, taskmanager_id: str, tail: int = 20_000) -> str:
        """The last ``tail`` characters of a TaskManager's log (ids: :meth:`taskmanagers`)."""
        return self._text(f"/taskmanagers/{quote(taskmanager_id, safe='')}/log")[-tail:]

    # ------------------------------------------------------------------ jobs
    def job(self, job_id: str) -> dict[str, Any]:
        """A job's details: ``state``, ``vertices`` (with read/write record counts), ..."""
        return self._call("GET", f"/jobs/{job_id}")

    def wait_for_state(self, job_id: str, states: Sequence[str], timeout: float = 120.0
                       ) -> str:
        """Wait until the job is in one of ``states``; raises if it ends in another one
        (naming the root exception) or the time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            state = str(self.job(job_id)["state"])
            if state in states:
                return state
            if state in TERMINAL_STATES:
                raise FlinkRestError(0, f"job {job_id} is {state}, not {'/'.join(states)}: "
                                        f"{self.exceptions(job_id).get('root') or 'no exception'}")
            if time.monotonic() > deadline:
                raise FlinkRestError(0, f"job {job_id} still {state} after {timeout:.0f} s "
                                        f"(waiting for {'/'.join(states)})")
            time.sleep(0.5)

    def vertex(self, job_id: str, vertex_id: str) -> dict[str, Any]:
        """One vertex of a job: its ``subtasks`` with status and TaskManager."""
        return self._call("GET", f"/jobs/{job_id}/vertices/{vertex_id}")

    def cancel(self, job_id: str) -> None:
        """Cancel the job (no savepoint)."""
        self._call("PATCH", f"/jobs/{job_id}?mode=cancel")

    def trigger_savepoint(self, job_id: str, directory: str | None = None,
                          cancel: bool = False, timeout: float = 300.0) -> str:
        """Take a savepoint of a running job; returns its path (``cancel``: then cancel)."""
        body: dict[str, Any] = {"cancel-job": cancel, "formatType": "CANONICAL"}
        if directory:
            body["target-directory"] = directory
        request = self._call("POST", f"/jobs/{job_id}/savepoints", body)
        return self._savepoint_result(job_id, request["request-id"], timeout)

    def stop_with_savepoint(self, job_id: str, directory: str | None = None,
                            drain: bool = False, timeout: float = 300.0) -> str:
        """Stop the job with a savepoint (sources stop first, so nothing is in flight);
        returns the savepoint's path. ``drain``: flush event time to the end (windows
        fire) — not for a job that will be resumed."""
        body: dict[str, Any] = {"drain": drain, "formatType": "CANONICAL"}
        if directory:
            body["targetDirectory"] = directory
        request = self._call("POST", f"/jobs/{job_id}/stop", body)
        return self._savepoint_result(job_id, request["request-id"], timeout)

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        """Checkpoint counts and the latest completed/failed/restored checkpoint."""
        return self._call("GET", f"/jobs/{job_id}/checkpoints")

    def exceptions(self, job_id: str) -> dict[str, Any]:
        """``root``: the latest failure's stack trace (None if none); ``history``: recent
        failures, newest first (time, exception, task, TaskManager)."""
        raw = self._call("GET", f"/jobs/{job_id}/exceptions?maxExceptions=20")
        history = [{"time": entry.get("timestamp"),
                    "exception": entry.get("stacktrace") or entry.get("exceptionName"),
                    "task": entry.get("taskName"),
                    "location": entry.get("endpoint") or entry.get("taskManagerId")}
                   for entry in raw.get("exceptionHistory", {}).get("entries", [])]
        root = history[0]["exception"] if history else raw.get("root-exception")
        return {"root": root, "history": history}

    def metrics(self, job_id: str) -> dict[str, Any]:
        """A job's numbers: state, records read by its sources and written by its sinks,
        the largest ``millisBehindLatest`` of forestream sources, checkpoints, and each
        vertex's record counts between tasks."""
        job = self.job(job_id)
        vertices = []
        records_in = records_out = 0
        behind: int | None = None
        for vertex in job.get("vertices", []):
            values = self._vertex_metrics(job_id, vertex["id"])
            name = str(vertex["name"])
            records_in += int(values.get("source_records", 0))
            records_out += int(values.get("sink_records", 0))
            if "millisBehindLatest" in values:
                behind = max(behind or 0, int(values["millisBehindLatest"]))
            counts = vertex.get("metrics", {})
            vertices.append({"name": name, "parallelism": vertex.get("parallelism"),
                             "status": vertex.get("status"),
                             "read_records": counts.get("read-records", 0),
                             "write_records": counts.get("write-records", 0)})
        counts = self.checkpoints(job_id)
        latest = (counts.get("latest") or {}).get("completed") or {}
        return {"state": job["state"], "records_in": records_in, "records_out": records_out,
                "millis_behind_latest": behind,
                "checkpoints": {"completed": counts.get("counts", {}).get("completed", 0),
                                "failed": counts.get("counts", {}).get("failed", 0),
                                "in_progress": counts.get("counts", {}).get("in_progress", 0),
                                "latest_id": latest.get("id"),
                                "latest_path": latest.get("external_path"),
                                "latest_time": latest.get("latest_ack_timestamp")},
                "vertices": vertices}

    # ------------------------------------------------------------------ submission
    def submit_python(self, script: str | Path, args: Sequence[str] = (),
                      jars: Sequence[str | Path] | None = None, parallelism: int | None = None,
                      savepoint: str | None = None, allow_non_restored: bool = False, *,
                      python: str | Path | None = None, timeout: float = 300.0) -> str:
        """Submit a PyFlink program with ``flink run --python`` (detached); returns the
        job id. ``jars`` default to forestream's connector jar; ``savepoint``: restore
        from it (``allow_non_restored``: even if some of its state has no operator)."""
        home = install.flink_home()
        interpreter = str(python or install.flink_python())
        jar_list = [Path(j) for j in (jars if jars is not None else [install.connector_jar()])]
        parts = urlsplit(self.url)
        command = [str(home / "bin" / "flink"), "run", "--detached",
                   f"-Drest.address={parts.hostname}", f"-Drest.port={parts.port or 80}",
                   "--python", str(Path(script).resolve()),
                   "--pyExecutable", interpreter, "--pyClientExecutable", interpreter]
        if jar_list:
            command += ["--jarfile", str(jar_list[0].resolve())]
            for extra in jar_list[1:]:
                command += ["--classpath", extra.resolve().as_uri()]
        if parallelism is not None:
            command += ["--parallelism", str(parallelism)]
        if savepoint:
            command += ["--fromSavepoint", savepoint]
            if allow_non_restored:
                command.append("--allowNonRestoredState")
        command += [str(arg) for arg in args]
        env = {**os.environ, "PYFLINK_CLIENT_EXECUTABLE": interpreter,
               "JVM_ARGS": os.environ.get("FORESTREAM_FLINK_CLI_JVM_ARGS", "-Xmx384m")}
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  env=env, cwd=Path(script).resolve().parent)
        except subprocess.TimeoutExpired as exc:
            raise FlinkSubmitError(f"flink run did not finish in {timeout:.0f} s: "
                                   f"{str(exc.stdout or '')[-3000:]}") from None
        found = _JOB_ID.search(proc.stdout + proc.stderr)
        if proc.returncode or not found:
            raise FlinkSubmitError(f"flink run {Path(script).name} failed (exit "
                                   f"{proc.returncode}):\n{(proc.stdout + proc.stderr)[-6000:]}")
        return found.group(1)

    # ------------------------------------------------------------------ plumbing
    def _savepoint_result(self, job_id: str, request_id: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            answer = self._call("GET", f"/jobs/{job_id}/savepoints/{request_id}")
            if answer.get("status", {}).get("id") == "COMPLETED":
                operation = answer.get("operation", {})
                if "location" in operation:
                    return str(operation["location"])
                cause = operation.get("failure-cause", {})
                raise FlinkRestError(0, f"savepoint of job {job_id} failed: "
                                        f"{cause.get('stack-trace') or cause}"[:6000])
            if time.monotonic() > deadline:
                raise FlinkRestError(0, f"savepoint of job {job_id} not done after "
                                        f"{timeout:.0f} s")
            time.sleep(0.5)

    def _vertex_metrics(self, job_id: str, vertex_id: str) -> dict[str, float]:
        """Operator metrics of one vertex summed over subtasks: records read by FLIP-27
        sources (``source_records``), sent by sinks (``sink_records``), and the largest
        ``millisBehindLatest``."""
        base = f"/jobs/{job_id}/vertices/{vertex_id}/subtasks/metrics"
        names = [m["id"] for m in self._call("GET", base)]
        wanted = [n for n in names if _is_source_input(n) or
                  n.endswith((".numRecordsSend", ".millisBehindLatest"))]
        if not wanted:
            return {}
        out: dict[str, float] = {}
        for item in self._call("GET", f"{base}?get={','.join(wanted)}&agg=sum,max"):
            name = str(item["id"])
            if name.endswith(".millisBehindLatest"):
                out["millisBehindLatest"] = max(out.get("millisBehindLatest", 0),
                                                float(item.get("max", 0)))
            elif name.endswith(".numRecordsSend"):
                out["sink_records"] = out.get("sink_records", 0) + float(item.get("sum", 0))
            else:
                out["source_records"] = out.get("source_records", 0) + float(item.get("sum", 0))
        return out

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")
            try:
                errors = json.loads(detail).get("errors", [detail])
                detail = "; ".join(str(e) for e in errors)
            except (ValueError, AttributeError):
                pass
            raise FlinkRestError(exc.code, f"{method} {path}: HTTP {exc.code}: "
                                           f"{detail[:3000]}") from None
        except OSError as exc:
            raise FlinkRestError(0, f"Flink's REST API at {self.url} is unreachable ({exc}); "
                                    "is the cluster running? (forestream flink status)") from None
        return json.loads(raw) if raw else {}

    def _text(self, path: str) -> str:
        try:
            with urllib.request.urlopen(self.url + path, timeout=self.timeout) as answer:
                return str(answer.read().decode(errors="replace"))
        except OSError as exc:
            raise FlinkRestError(0, f"GET {path} at {self.url} failed: {exc}") from None


def _is_source_input(metric: str) -> bool:
    """``[N.]Source__NAME.numRecordsIn``: records a FLIP-27 source read."""
    operator, _, name = metric.rpartition(".")
    return name == "numRecordsIn" and operator.rpartition(".")[2].startswith("Source__")
