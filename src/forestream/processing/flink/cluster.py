"""A local standalone Flink cluster: one JobManager and N TaskManagers on this machine.

Not Flink's in-process MiniCluster: real processes, started from the Flink environment's
own scripts (``bin/jobmanager.sh`` / ``bin/taskmanager.sh start-foreground``, which
compute the JVM's memory flags from the configuration), each in a session of its own so
that the cluster outlives the command that started it. Everything lives under
``<data dir>/flink/``: ``conf/`` (written at start, see :mod:`.cluster_config`), ``log/<process>/``,
``checkpoints/``, ``savepoints/`` and ``cluster.json``, which records the REST URL and the
processes' ids so that ``forestream flink status`` and ``stop`` find the cluster from
another process. One cluster per data directory.

>>> from forestream.processing.flink.cluster import LocalFlinkCluster
>>> cluster = LocalFlinkCluster("/tmp/nowhere", task_managers=2, slots=2)
>>> cluster.running()
False
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import install
from .cluster_config import free_port, write_conf_dir
from .rest_api import FlinkRest, FlinkRestError

STATE_FILE = "cluster.json"


class FlinkClusterError(RuntimeError):
    """The local cluster could not be started or reached (the message says why)."""


class LocalFlinkCluster:
    """JobManager + ``task_managers`` TaskManagers with ``slots`` slots each, under
    ``<data_dir>/flink``. ``start()`` returns once every slot is registered;
    ``rest_url`` is the REST API (and web UI); ``stop()`` ends every process.

    Parameters
    ----------
    data_dir
        forestream's data directory; the cluster keeps its files in ``flink/`` there.
    task_managers, slots
        TaskManager processes, and task slots in each (1 to 64 each).
    task_manager_memory_mb
        Process size of each TaskManager; default sized for the machine (see
        :mod:`.cluster_config`).
    """

    def __init__(self, data_dir: str | Path, task_managers: int = 2, slots: int = 2, *,
                 task_manager_memory_mb: int | None = None) -> None:
        for name, value in (("task_managers", task_managers), ("slots", slots)):
            if not 1 <= value <= 64:
                raise ValueError(f"{name} must be 1 to 64, got {value}")
        self.base = Path(data_dir) / "flink"
        self.task_managers = task_managers
        self.slots = slots
        self.task_manager_memory_mb = task_manager_memory_mb
        self.rest_url = ""
        self.pids: dict[str, int] = {}
        # processes this object started: their exit is known for sure from ``poll()``
        self._children: dict[str, subprocess.Popen[bytes]] = {}
        self._attach()

    # ------------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 240.0) -> LocalFlinkCluster:
        """Start the processes and wait until all slots are registered."""
        if self.running():
            raise FlinkClusterError(f"a Flink cluster already runs for this data directory "
                                    f"at {self.rest_url} (forestream flink stop ends it)")
        home, python = install.flink_home(), install.flink_python()
        rest_port, rpc_port = free_port(), free_port()
        write_conf_dir(self.conf_dir, home, rpc_port=rpc_port, rest_port=rest_port,
                       slots=self.slots, python=python, state_dir=self.base,
                       task_manager_memory_mb=self.task_manager_memory_mb)
        self.rest_url = f"http://127.0.0.1:{rest_port}"
        self._children = {"jobmanager": self._launch("jobmanager", home)}
        self.pids = {"jobmanager": self._children["jobmanager"].pid}
        self._save()
        for index in range(self.task_managers):
            self.start_task_manager(f"taskmanager-{index}")
        try:
            self._wait_ready(timeout)
        except FlinkClusterError:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """TaskManagers first, then the JobManager: SIGTERM, SIGKILL after ``timeout``."""
        names = sorted(self.pids, key=lambda n: n == "jobmanager")
        ours = {name for name in names if self._alive(self.pids[name])}  # leading now
        for name in names:
            self._signal(self.pids[name], signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for name in names:
            while self._alive(self.pids[name]) and time.monotonic() < deadline:
                time.sleep(0.1)
            self._signal(self.pids[name], signal.SIGKILL)
            if name in ours:  # its session is still ours to clear (never a stale id's)
                self._kill_leftovers(self.pids[name])
        for child in self._children.values():
            with contextlib.suppress(ChildProcessError):
                child.poll()  # reap
        self.pids, self._children = {}, {}
        with contextlib.suppress(FileNotFoundError):
            (self.base / STATE_FILE).unlink()

    def running(self) -> bool:
        """Whether this data directory's JobManager process is alive."""
        return "jobmanager" in self.pids and self._alive(self.pids["jobmanager"])

    def status(self) -> dict[str, Any]:
        """Processes (alive or not), the REST URL and, when it answers, Flink's overview."""
        processes = {name: {"pid": pid, "alive": self._alive(pid)}
                     for name, pid in sorted(self.pids.items())}
        out: dict[str, Any] = {"rest_url": self.rest_url or None, "processes": processes,
                               "data_dir": str(self.base)}
        if self.running():
            try:
                out["overview"] = self.rest.overview()
            except FlinkRestError as exc:
                out["error"] = str(exc)
        return out

    # ------------------------------------------------------------------ TaskManagers
    def start_task_manager(self, name: str | None = None) -> str:
        """Start a TaskManager named ``name`` (``taskmanager-N``; default: the first name
        without a live process); returns its name."""
        if name is None:
            index = 0
            while self._alive(self.pids.get(f"taskmanager-{index}", -1)):
                index += 1
            name = f"taskmanager-{index}"
        if self._alive(self.pids.get(name, -1)):
            raise FlinkClusterError(f"{name} is running already (pid {self.pids[name]})")
        self._children[name] = self._launch(name, install.flink_home())
        self.pids[name] = self._children[name].pid
        self._save()
        return name

    def task_managers_of(self, job_id: str) -> list[str]:
        """Names of the TaskManagers running a task of ``job_id`` (each TaskManager's
        Flink resource id is its name here, plus a start stamp)."""
        rest = self.rest
        ids = {str(subtask.get("taskmanager-id", ""))
               for vertex in rest.job(job_id).get("vertices", [])
               for subtask in rest.vertex(job_id, vertex["id"]).get("subtasks", [])}
        return sorted(name for name in self.pids if any(i.startswith(f"{name}@") for i in ids))

    def kill_task_manager(self, name: str = "taskmanager-0") -> int:
        """``kill -9`` a TaskManager and the Python workers it started, as the loss of
        its machine would (for failure tests); returns its pid. (Its Python workers
        outlive a TaskManager killed alone: orphans that held memory until the end.)"""
        pid = self.pids[name]
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)  # its session: started with a new one
        deadline = time.monotonic() + 10
        while self._alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        return pid

    # ------------------------------------------------------------------ jobs
    @property
    def rest(self) -> FlinkRest:
        return FlinkRest(self.rest_url)

    def run_python_job(self, path: str | Path, args: Sequence[str] = (), *,
                       parallelism: int | None = None,
                       jars: Sequence[str | Path] | None = None,
                       savepoint: str | None = None, allow_non_restored: bool = False,
                       timeout: float = 300.0) -> str:
        """Submit a PyFlink program to this cluster; returns its job id (see
        :meth:`FlinkRest.submit_python`)."""
        return self.rest.submit_python(path, args, jars, parallelism, savepoint,
                                       allow_non_restored, timeout=timeout)

    # ------------------------------------------------------------------ files
    @property
    def conf_dir(self) -> Path:
        return self.base / "conf"

    def log_dir(self, name: str) -> Path:
        return self.base / "log" / name

    def log_tail(self, name: str, chars: int = 4000) -> str:
        """The end of a process's log and console output."""
        texts = []
        for path in sorted(self.log_dir(name).glob("*")):
            with contextlib.suppress(OSError):
                texts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(texts)

    # ------------------------------------------------------------------ plumbing
    def _launch(self, name: str, home: Path) -> subprocess.Popen[bytes]:
        script, args = "jobmanager.sh", ["start-foreground"]
        if name != "jobmanager":  # the name shows in Flink's REST API as the resource id
            script = "taskmanager.sh"
            args.append(f"-Dtaskmanager.resource-id={name}@{time.time_ns() // 1000000}")
        log_dir = self.log_dir(name)
        log_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "FLINK_CONF_DIR": str(self.conf_dir),
               "FLINK_LOG_DIR": str(log_dir), "FLINK_PID_DIR": str(self.base)}
        with open(log_dir / "console.out", "ab") as console:
            proc = subprocess.Popen([str(home / "bin" / script), *args],
                                    env=env, stdout=console, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self.base)
        return proc

    def _wait_ready(self, timeout: float) -> None:
        wanted = self.task_managers * self.slots
        deadline = time.monotonic() + timeout
        seen = "no answer"
        while time.monotonic() < deadline:
            dead = [(name, code) for name, code in
                    ((name, self._exit_code(name)) for name in self.pids) if code is not None]
            if dead:
                name, code = dead[0]
                raise FlinkClusterError(f"{name} exited during start (exit status {code}):\n"
                                        f"{self.log_tail(name)}")
            try:
                overview = FlinkRest(self.rest_url, timeout=5).overview()
                seen = f"{overview['taskmanagers']} TaskManagers, {overview['slots-total']} slots"
                if overview["slots-total"] >= wanted:
                    return
            except FlinkRestError:
                pass
            time.sleep(0.5)
        raise FlinkClusterError(f"the Flink cluster was not ready after {timeout:.0f} s "
                                f"({seen}; {wanted} slots wanted); logs in {self.base / 'log'}")

    def _exit_code(self, name: str) -> int | None:
        """The exit status of a process that has ended, None while it runs. A process
        started here is asked directly; another is judged from /proc (see :meth:`_alive`)."""
        child = self._children.get(name)
        if child is not None:
            return child.poll()
        return None if self._alive(self.pids[name]) else -1

    def _save(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        state = {"rest_url": self.rest_url, "pids": self.pids,
                 "task_managers": self.task_managers, "slots": self.slots}
        partial = self.base / (STATE_FILE + ".partial")
        partial.write_text(json.dumps(state, indent=1))
        partial.replace(self.base / STATE_FILE)

    def _attach(self) -> None:
        """Pick up the cluster recorded in the data directory, if any."""
        with contextlib.suppress(OSError, ValueError):
            state = json.loads((self.base / STATE_FILE).read_text())
            self.rest_url = str(state["rest_url"])
            self.pids = {str(k): int(v) for k, v in state["pids"].items()}
            self.task_managers = int(state["task_managers"])
            self.slots = int(state["slots"])

    def _alive(self, pid: int) -> bool:
        """Alive and ours: started with this cluster's configuration folder in its
        environment (a recycled pid of another program is never signalled)."""
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
            if not environ:  # read while the process was in execve (the launch script
                time.sleep(0.05)  # exec-ing java): its memory was being replaced
                environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        if stat.rsplit(")", 1)[-1].split()[0] == "Z":
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # our own child, dead: reap it
            return False
        return f"FLINK_CONF_DIR={self.conf_dir}".encode() in environ.split(b"\0")

    def _kill_leftovers(self, pid: int) -> None:
        """SIGKILL what is left of the session a process of ours led (each process is
        started in a session of its own, its id the leader's): the PyFlink workers a
        TaskManager started, which do not always end with it."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    def _signal(self, pid: int, signum: int) -> None:
        if self._alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
