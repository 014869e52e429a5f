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

``run_ring_load`` is the same loop for writes that must be checked afterwards: each client
builds its own ring of distinct requests (in the client process, after the fork, so a
ring of large pre-signed bodies costs the parent nothing) and sends them round and round;
a ``judge`` tells, per answer, how many of the request's units (records) were
acknowledged. Every send is entered in a ledger by ring position (warm-up and late ones
too), so a reader can check afterwards that exactly what was acknowledged was stored.
"""

from __future__ import annotations

import http.client
import multiprocessing as mp
import os
import signal
import socket
import time
from array import array
from collections.abc import Callable
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
    #: units (e.g. records) acknowledged by the counted requests (run_ring_load)
    units: int = 0
    #: per client, per ring position: a :class:`Ledger` of every send (run_ring_load)
    ledgers: list[list[Ledger]] = field(default_factory=list, repr=False)

    @property
    def units_per_s(self) -> float:
        return self.units / self.seconds

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


@dataclass
class Ledger:
    """What became of the sends of one ring position: ``acked`` sends whose every unit
    was acknowledged, ``partial`` the unit indexes acknowledged by sends acknowledged in
    part, ``unknown`` sends whose fate is unknown (no answer, a server error: the request
    may or may not have been applied), ``refused`` sends refused whole (not applied)."""

    acked: int = 0
    partial: list[list[int]] = field(default_factory=list)
    unknown: int = 0
    refused: int = 0


#: ``judge(status, answer)`` → ("ok" | "partial" | "unknown" | "refused", acknowledged
#: unit indexes for "partial", else None)
Judge = Callable[[int, bytes], tuple[str, list[int] | None]]
#: ``make_requests(client_index)`` → the client's ring of (body, headers, units)
RequestRing = Callable[[int], list[tuple[bytes, dict[str, str], int]]]


def status_judge(status: int, answer: bytes) -> tuple[str, list[int] | None]:
    """200 acknowledges the request, 5xx leaves it unknown, anything else refuses it."""
    return ("ok" if status == 200 else "unknown" if status >= 500 else "refused"), None


def run_load(host: str, port: int, path: str, body: bytes, headers: dict[str, str], *,
             clients: int = 4, warmup: float = 2.0, seconds: float = 10.0,
             server_pid: int | None = None) -> LoadResult:
    """Drive ``POST path`` with ``clients`` closed-loop clients; see the module docstring."""
    return run_ring_load(host, port, path, lambda _client: [(body, headers, 1)],
                         clients=clients, warmup=warmup, seconds=seconds,
                         server_pids=[server_pid] if server_pid else [])


def run_ring_load(host: str, port: int, path: str, make_requests: RequestRing, *,
                  judge: Judge = status_judge, clients: int = 4, warmup: float = 2.0,
                  seconds: float = 10.0, server_pids: list[int] | None = None,
                  ) -> LoadResult:
    """Drive ``POST path`` with ``clients`` closed-loop clients, each sending its ring of
    requests in turn (see the module docstring). Server CPU: the process trees of
    ``server_pids`` (e.g. a front end and the cluster nodes behind it)."""
    server_pids = server_pids or []
    ctx = mp.get_context("fork")  # the parent holds no threads here; fork starts fastest
    pipes, procs = [], []
    finished = False
    try:
        for _ in range(clients):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(target=_client, args=(child_end, host, port, path,
                                                     make_requests, judge, len(procs)),
                               daemon=True)
            proc.start()
            child_end.close()
            pipes.append(parent_end)
            procs.append(proc)
        for end in pipes:  # each client is connected
            if not end.poll(120):  # a ring of large bodies takes a while to build
                raise RuntimeError("a load-generator client did not start within 30 s")
            end.recv()
        start = time.perf_counter() + 0.05
        measure_from, measure_to = start + warmup, start + warmup + seconds
        for end in pipes:
            end.send((start, measure_from, measure_to))
        time.sleep(max(0.0, measure_from - time.perf_counter()))
        server_cpu0 = sum(tree_cpu_seconds(pid) for pid in server_pids)
        time.sleep(max(0.0, measure_to - time.perf_counter()))
        server_cpu = sum(tree_cpu_seconds(pid) for pid in server_pids) - server_cpu0
        latencies: list[float] = []
        errors, samples, client_cpu, units = 0, [], 0.0, 0
        ledgers: list[list[Ledger]] = []
        for end in pipes:
            if not end.poll(seconds + 60):
                raise RuntimeError("a load-generator client did not report back")
            raw, n_errors, error_samples, cpu, n_units, ledger = end.recv()
            lat = array("d")
            lat.frombytes(raw)
            latencies.extend(lat)
            errors += n_errors
            samples.extend(error_samples)
            client_cpu += cpu
            units += n_units
            ledgers.append(ledger)
        finished = True
        return LoadResult(seconds, latencies, errors, samples[:5], server_cpu, client_cpu,
                          units, ledgers)
    finally:
        for proc in procs:  # interrupted (Ctrl-C, an error): stop the clients at once
            proc.join(5 if finished else 0)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _client(pipe, host: str, port: int, path: str, make_requests: RequestRing,
            judge: Judge, index: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    ring = make_requests(index)
    ledger = [Ledger() for _ in ring]
    conn = _connect(host, port)
    pipe.send("ready")
    start, measure_from, measure_to = pipe.recv()
    time.sleep(max(0.0, start - time.perf_counter()))
    latencies, errors, samples, units = array("d"), 0, [], 0
    cpu0 = None
    perf = time.perf_counter
    position = 0
    while True:
        t0 = perf()
        if t0 >= measure_to:
            break
        if cpu0 is None and t0 >= measure_from:
            cpu0 = time.process_time()
        body, headers, size = ring[position]
        entry = ledger[position]
        position = (position + 1) % len(ring)
        try:
            conn.request("POST", path, body, headers)
            response = conn.getresponse()
            answer = response.read()
            verdict, acked = judge(response.status, answer)
        except (OSError, http.client.HTTPException) as exc:
            verdict, acked = "unknown", None
            answer = f"{type(exc).__name__}: {exc}".encode()
            conn.close()
            conn = _connect(host, port)
        if verdict == "ok":
            entry.acked += 1
            acked_units = size
        elif verdict == "partial":
            entry.partial.append(acked or [])
            acked_units = len(acked or [])
        else:
            acked_units = 0
            if verdict == "unknown":
                entry.unknown += 1
            else:
                entry.refused += 1
        t1 = perf()
        if t0 < measure_from or t1 > measure_to:
            continue
        if verdict in ("ok", "partial"):  # answered: its latency counts
            latencies.append(t1 - t0)
        else:
            errors += 1
            if len(samples) < 2:
                samples.append(answer[:300].decode(errors="replace"))
        units += acked_units
    cpu = time.process_time() - cpu0 if cpu0 is not None else 0.0
    conn.close()
    pipe.send((latencies.tobytes(), errors, samples, cpu, units, ledger))


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
