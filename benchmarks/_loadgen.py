"""Closed-loop HTTP load generator for the serving benchmarks (stdlib only).

``run_load`` forks ``clients`` processes (so the GIL of one client process does not cap
the others); each opens one keep-alive ``http.client`` connection and sends the same POST
back to back, as fast as answers come, timing every request with ``perf_counter``. All
clients start together; requests that *start* in the first ``warmup`` seconds are not
recorded; of the rest, those that *finish* before the measuring window closes count
towards throughput and latency. A failed request (an exception, or a status other than
200) counts as an error and reopens the connection.

The result also carries the CPU seconds that the server's process tree (the server and
all of its descendants, e.g. model workers) and the client processes used during the
measuring window, so a reader can see who had the 2 cores of a small machine.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import signal
import socket
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class LoadResult:
    """One measuring window of one peer."""

    seconds: float
    latencies: list[float] = field(repr=False)  # seconds, every counted request
    errors: int
    error_samples: list[str]
    server_cpu_s: float
    client_cpu_s: float

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile_ms(self, q: float) -> float:
        xs = sorted(self.latencies)
        return xs[min(len(xs) - 1, int(q * len(xs)))] * 1e3 if xs else float("nan")

    def summary(self) -> dict[str, float]:
        return {"requests/s": self.requests_per_s, "p50 ms": self.percentile_ms(0.50),
                "p99 ms": self.percentile_ms(0.99),
                "max ms": max(self.latencies) * 1e3 if self.latencies else float("nan"),
                "requests": float(len(self.latencies)), "errors": float(self.errors),
                "server CPU%": self.server_cpu_s / self.seconds * 100,
                "client CPU%": self.client_cpu_s / self.seconds * 100}


def run_load(host: str, port: int, path: str, body: bytes, headers: dict[str, str], *,
             clients: int = 4, warmup: float = 2.0, seconds: float = 10.0,
             server_pid: int | None = None) -> LoadResult:
    """Drive ``POST path`` with ``clients`` closed-loop clients; see the module docstring."""
    ctx = mp.get_context("fork")  # the parent holds no threads here; fork starts fastest
    pipes, procs = [], []
    finished = False
    try:
        for _ in range(clients):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_client, args=(child_end, host, port, path, body,
                                                     headers), daemon=True)
            proc.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(proc)
        for end in pipes:  # each client is connected
            if not end.poll(30):
                raise RuntimeError("a load-generator client did not start within 30 s")
            end.recv()
        start = time.perf_counter() + 0.05
        measure_from, measure_to = start + warmup, start + warmup + seconds
        for end in pipes:
            end.send((start, measure_from, measure_to))
        time.sleep(max(0.0, measure_from - time.perf_counter()))
        server_cpu0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
        time.sleep(max(0.0, measure_to - time.perf_counter()))
        server_cpu = tree_cpu_seconds(server_pid) - server_cpu0 if server_pid else 0.0
        latencies: list[float] = []
        errors, samples, client_cpu = 0, [], 0.0
        for end in pipes:
            if not end.poll(seconds + 60):
                raise RuntimeError("a load-generator client did not report back")
            raw, n_errors, error_samples, cpu = end.recv()
            lat = array("d")
            lat.frombytes(raw)
            latencies.extend(lat)
            errors += n_errors
            samples.extend(error_samples)
            client_cpu += cpu
        finished = True
        return LoadResult(seconds, latencies, errors, samples[:5], server_cpu, client_cpu)
    finally:
        for proc in procs:  # interrupted (Ctrl-C, an error): stop the clients at once
            proc.join(5 if finished else 0)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _client(pipe, host: str, port: int, path: str, body: bytes,
            headers: dict[str, str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    conn = _connect(host, port)
    pipe.send("ready")
    start, measure_from, measure_to = pipe.recv()
    time.sleep(max(0.0, start - time.perf_counter()))
    latencies, errors, samples = array("d"), 0, []
    cpu0 = None
    perf = time.perf_counter
    while True:
        t0 = perf()
        if t0 >= measure_to:
            break
        if cpu0 is None and t0 >= measure_from:
            cpu0 = time.process_time()
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            answer = response.read()
            ok = response.status == 200
        except (OSError, http.client.HTTPException) as exc:
            ok, answer = False, f"{type(exc).__name__}: {exc}".encode()
            conn.close()
            conn = _connect(host, port)
        t1 = perf()
        if t0 < measure_from or t1 > measure_to:
            continue
        if ok:
            latencies.append(t1 - t0)
        else:
            errors += 1
            if len(samples) < 2:
                samples.append(answer[:300].decode(errors="replace"))
    cpu = time.process_time() - cpu0 if cpu0 is not None else 0.0
    conn.close()
    pipe.send((latencies.tobytes(), errors, samples, cpu))


def _connect(host: str, port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection(host, port, timeout=30)
    conn.connect()
    # http.client sends small bodies with the headers in one write already; no Nagle delay
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid`` and all of its living descendants."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    tree, frontier = {pid}, [pid]
    while frontier:
        current = frontier.pop()
        for child, parent in parents.items():
            if parent == current and child not in tree:
                tree.add(child)
                frontier.append(child)
    return sum(times.get(p, 0.0) for p in tree)
