"""The configuration of a local Flink cluster: ports, memory sized for the machine,
checkpoints and savepoints under the data directory, failure handling.

Kept apart from :mod:`.cluster` (which starts and stops processes) because the numbers
here are choices worth reading on their own:

* everything binds to loopback, on free ports picked at start;
* memory: the JobManager gets 1 GiB, each TaskManager 1.75 GiB on a machine with 8 GiB or
  more (1.25 GiB below); 40% of a TaskManager's Flink memory is managed memory, which
  PyFlink's Python workers draw from; the JVM metaspace is 512 MiB, twice Flink's default,
  because each PyFlink job loads its classes anew and a TaskManager died of
  ``OutOfMemoryError: Metaspace`` after about ten submissions with 256 MiB;
* failures: heartbeats every 2 s with a 15 s timeout, so a TaskManager killed with
  ``kill -9`` is noticed in seconds, not the default 50; jobs restart every 2 s without a
  limit on attempts (a local cluster has nobody to page), from their latest checkpoint;
* checkpoints (``checkpoints/``) and savepoints (``savepoints/``) under the cluster's
  folder, the heap state backend, and Python workers run by the Flink environment's
  interpreter.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

GIB = 1024


def machine_memory_mb() -> int:
    """Physical memory in MiB (from /proc/meminfo; 8 GiB if it cannot be read)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 8 * GIB


def default_task_manager_memory_mb() -> int:
    """A TaskManager's process size for this machine (see the module documentation)."""
    return 1792 if machine_memory_mb() >= 8 * GIB else 1280


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_conf_dir(conf_dir: Path, flink_home: Path, *, rpc_port: int, rest_port: int,
                   slots: int, python: Path, state_dir: Path,
                   job_manager_memory_mb: int = GIB,
                   task_manager_memory_mb: int | None = None,
                   metaspace_mb: int = 512) -> Path:
    """Write ``config.yaml`` and Flink's log4j files into ``conf_dir``; returns it."""
    conf_dir.mkdir(parents=True, exist_ok=True)
    for name in os.listdir(flink_home / "conf"):
        if name.startswith("log4j") or name == "logback.xml":
            shutil.copyfile(flink_home / "conf" / name, conf_dir / name)
    settings: dict[str, object] = {
        # the wheel's --add-opens/--add-exports: Java 17+ refuses Flink's reflection without
        "env.java.opts.all": _wheel_java_options(flink_home),
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.rpc.port": rpc_port,
        "jobmanager.bind-host": "127.0.0.1",
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.port": rest_port,
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "taskmanager.numberOfTaskSlots": slots,
        "blob.server.port": "0",
        "taskmanager.rpc.port": "0",
        "taskmanager.data.port": 0,
        "metrics.internal.query-service.port": "0",
        "jobmanager.memory.process.size": f"{job_manager_memory_mb}m",
        "taskmanager.memory.process.size":
            f"{task_manager_memory_mb or default_task_manager_memory_mb()}m",
        "taskmanager.memory.jvm-metaspace.size": f"{metaspace_mb}m",
        "taskmanager.memory.managed.fraction": 0.4,
        "heartbeat.interval": 2000,
        "heartbeat.timeout": 15000,
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": 2147483647,
        "restart-strategy.fixed-delay.delay": "2 s",
        "state.backend.type": "hashmap",
        "execution.checkpointing.dir": (state_dir / "checkpoints").resolve().as_uri(),
        "execution.checkpointing.savepoint-dir": (state_dir / "savepoints").resolve().as_uri(),
        "python.executable": str(python),
        "python.client.executable": str(python),
        "env.pid.dir": str(state_dir),
        "web.submit.enable": "true",
        "web.cancel.enable": "true",
    }
    lines = [f"{key}: {_yaml(value)}" for key, value in settings.items()]
    (conf_dir / "config.yaml").write_text("\n".join(lines) + "\n")
    return conf_dir


def _wheel_java_options(flink_home: Path) -> str:
    """``env.java.opts.all`` of the wheel's own ``conf/config.yaml`` ('' if none)."""
    import yaml

    try:
        conf = yaml.safe_load((flink_home / "conf" / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return ""
    options = conf.get("env.java.opts.all")
    if options is None:
        options = conf.get("env", {}).get("java", {}).get("opts", {}).get("all", "")
    return str(options or "")


def _yaml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return "'" + text.replace("'", "''") + "'"
