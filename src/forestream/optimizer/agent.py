"""A host agent: sample this machine's utilization with psutil into a metrics CSV.

Run it on each machine you want right-sized, for days (two weeks is what AWS Compute
Optimizer looks at by default), then point :func:`~forestream.optimizer.ingest.read_metrics`
at the files. Every ``interval_seconds`` the agent appends one row, in the documented
input shape, to ``<directory>/<resource_id>.csv`` (or the CSV path you give)::

    timestamp,resource_id,cpu_pct,cpu_pct_max,mem_pct,mem_pct_max,mem_used_gib,...
    2024-05-01T00:01:00Z,web-1,12.5,48.0,41.2,41.9,6.48,...

* ``cpu_pct``: busy CPU time over the interval (all cores, 0-100); ``cpu_pct_max``: the
  busiest ``probe_seconds`` slice within it, so short peaks are not averaged away.
* ``mem_pct`` / ``mem_pct_max`` / ``mem_used_gib``: memory in use (total minus
  available), mean and maximum over the probes.
* ``net_in_bytes``, ``net_out_bytes``: bytes per second over all interfaces except
  loopback and virtual bridges (``veth*``, ``docker*``, ``br-*``), which would count
  container traffic twice; ``disk_read_bytes``, ``disk_write_bytes``,
  ``disk_read_ops``, ``disk_write_ops``: per second over all disks.
* ``gpu_pct``, ``gpu_mem_pct``: mean over the machine's NVIDIA GPUs from ``nvidia-smi``
  when it is installed; empty cells otherwise (and on counters the OS does not offer).

>>> import tempfile, time
>>> folder = tempfile.mkdtemp()
>>> with HostAgent(folder, resource_id="here", interval_seconds=0.2, probe_seconds=0.05):
...     time.sleep(0.7)
>>> from forestream.optimizer.ingest import read_metrics
>>> [history] = read_metrics(folder)
>>> history.resource.resource_id, bool(0 <= history.metrics["cpu_pct"][-1] <= 100)
('here', True)

From a shell: ``python -m forestream.optimizer.agent --directory metrics --interval 60``.
"""

from __future__ import annotations

import argparse
import csv
import math
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

from .timeseries import MetricInputError

COLUMNS = ("timestamp", "resource_id", "cpu_pct", "cpu_pct_max", "mem_pct", "mem_pct_max",
           "mem_used_gib", "net_in_bytes", "net_out_bytes", "disk_read_bytes",
           "disk_write_bytes", "disk_read_ops", "disk_write_ops", "gpu_pct", "gpu_mem_pct")
VIRTUAL_INTERFACES = ("lo", "veth", "docker", "br-", "virbr", "cni", "flannel")
GIB = 2.0 ** 30


def sample_host(window_seconds: float = 1.0) -> dict[str, float]:
    """One sample of this host's utilization, measured over ``window_seconds``.

    Returns the agent's columns (less ``timestamp``/``resource_id``) plus
    ``timestamp`` as unix seconds; rates are per second over the window; metrics the
    host cannot report are NaN.
    """
    if not window_seconds > 0:
        raise MetricInputError(f"window_seconds must be > 0, got {window_seconds!r}")
    before = _Counters.read()
    memory = [_memory()]
    time.sleep(window_seconds)
    after = _Counters.read()
    memory.append(_memory())
    busy = after.cpu_busy_pct(before)
    return {"timestamp": time.time(), "cpu_pct": busy, "cpu_pct_max": busy,
            **_memory_columns(memory), **after.rates(before), **_gpu_columns()}


class HostAgent:
    """Append a row of host utilization to a CSV every ``interval_seconds``.

    ``path`` is a directory (the file is ``<resource_id>.csv`` in it) or a ``.csv``
    file. ``resource_id`` defaults to the host name. ``probe_seconds`` is how often
    CPU and memory are probed within an interval for the ``_max`` columns. Use
    :meth:`start`/:meth:`stop` or ``with HostAgent(...):``; rows are flushed as they are
    written, so a killed agent loses at most one interval. An existing file is appended
    to if its header matches, so restarting the agent continues the same file.
    """

    def __init__(self, path: str | Path, *, resource_id: str | None = None,
                 interval_seconds: float = 60.0, probe_seconds: float = 5.0,
                 gpu: bool = True) -> None:
        if not interval_seconds > 0:
            raise MetricInputError(f"interval_seconds must be > 0, got {interval_seconds!r}")
        if not probe_seconds > 0:
            raise MetricInputError(f"probe_seconds must be > 0, got {probe_seconds!r}")
        self.resource_id = resource_id or socket.gethostname()
        target = Path(path)
        self.path = target if target.suffix.lower() == ".csv" else target / (
            f"{self.resource_id}.csv")
        self.interval_seconds = float(interval_seconds)
        self.probe_seconds = min(float(probe_seconds), self.interval_seconds)
        self.gpu = gpu
        self.rows_written = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._check_header()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> HostAgent:
        if self.running:
            return self
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="forestream-host-agent",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after writing the interval in progress (if it has at least one probe)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout if timeout is not None else self.interval_seconds + 10)
            self._thread = None

    def __enter__(self) -> HostAgent:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _check_header(self) -> None:
        if self.path.exists() and self.path.stat().st_size:
            with self.path.open(newline="") as existing:
                header = next(csv.reader(existing), [])
            if tuple(header) != COLUMNS:
                raise MetricInputError(f"{self.path} exists with columns {header}; the agent "
                                       f"writes {list(COLUMNS)}: choose another path")

    def _run(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", newline="") as out:
            writer = csv.writer(out)
            if out.tell() == 0:
                writer.writerow(COLUMNS)
            start = previous = _Counters.read()
            peaks, memory = [], []
            deadline = time.monotonic() + self.interval_seconds
            while True:
                stopping = self._stop.wait(max(0.0, min(self.probe_seconds,
                                                        deadline - time.monotonic())))
                now = _Counters.read()
                slice_pct = now.cpu_busy_pct(previous)
                if not math.isnan(slice_pct):  # NaN: no clock tick in a very short probe
                    peaks.append(slice_pct)
                memory.append(_memory())
                previous = now
                if time.monotonic() >= deadline or stopping:
                    busy = now.cpu_busy_pct(start)
                    row = {"timestamp": time.time(), "cpu_pct": busy,
                           "cpu_pct_max": max(peaks, default=busy), **_memory_columns(memory),
                           **now.rates(start), **(_gpu_columns() if self.gpu else {})}
                    writer.writerow(self._cells(row))
                    out.flush()
                    self.rows_written += 1
                    start, peaks, memory = now, [], []
                    deadline += self.interval_seconds
                    if deadline <= time.monotonic():  # fell behind (slow nvidia-smi): skip
                        deadline = time.monotonic() + self.interval_seconds
                if stopping:
                    return

    def _cells(self, row: dict[str, float]) -> list[str]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(row["timestamp"]))
        cells = [f"{stamp}.{int(row['timestamp'] % 1 * 1000):03d}Z", self.resource_id]
        for column in COLUMNS[2:]:
            value = row.get(column, math.nan)
            cells.append("" if math.isnan(value) else f"{value:.6g}")
        return cells


class _Counters:
    """Cumulative OS counters at one moment (rates come from two of them)."""

    def __init__(self) -> None:
        import psutil

        self.at = time.monotonic()
        times = psutil.cpu_times()
        self.cpu_total = sum(times)
        self.cpu_idle = times.idle + getattr(times, "iowait", 0.0)
        nics = psutil.net_io_counters(pernic=True) or {}
        real = [c for name, c in nics.items() if not name.startswith(VIRTUAL_INTERFACES)]
        self.net = (sum(c.bytes_recv for c in real), sum(c.bytes_sent for c in real))
        disk = psutil.disk_io_counters()
        self.disk = (None if disk is None else
                     (disk.read_bytes, disk.write_bytes, disk.read_count, disk.write_count))

    @classmethod
    def read(cls) -> _Counters:
        return cls()

    def cpu_busy_pct(self, earlier: _Counters) -> float:
        total = self.cpu_total - earlier.cpu_total
        if total <= 0:
            return math.nan
        busy = total - (self.cpu_idle - earlier.cpu_idle)
        return min(100.0, max(0.0, 100.0 * busy / total))

    def rates(self, earlier: _Counters) -> dict[str, float]:
        seconds = self.at - earlier.at
        names = ("net_in_bytes", "net_out_bytes")
        pairs = list(zip(names, self.net, earlier.net, strict=True))
        if self.disk is not None and earlier.disk is not None:
            pairs += zip(("disk_read_bytes", "disk_write_bytes", "disk_read_ops",
                          "disk_write_ops"), self.disk, earlier.disk, strict=True)
        # A counter that went backwards was reset (interface re-created): no rate.
        return {name: (now - then) / seconds if seconds > 0 and now >= then else math.nan
                for name, now, then in pairs}


def _memory() -> tuple[float, float]:
    import psutil

    memory = psutil.virtual_memory()
    used = memory.total - memory.available
    return 100.0 * used / memory.total, used / GIB


def _memory_columns(samples: list[tuple[float, float]]) -> dict[str, float]:
    percents = [p for p, _ in samples]
    return {"mem_pct": sum(percents) / len(percents), "mem_pct_max": max(percents),
            "mem_used_gib": sum(g for _, g in samples) / len(samples)}


def _gpu_columns() -> dict[str, float]:
    found = gpu_utilization()
    return {} if found is None else {"gpu_pct": found[0], "gpu_mem_pct": found[1]}


def gpu_utilization(timeout: float = 10.0) -> tuple[float, float] | None:
    """(mean GPU busy %, mean GPU memory used %) over this host's NVIDIA GPUs, from
    ``nvidia-smi``; None when it is not installed, fails, or sees no GPU."""
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return None
    try:
        result = subprocess.run([binary, "--query-gpu=utilization.gpu,memory.used,memory.total",
                                 "--format=csv,noheader,nounits"], capture_output=True,
                                text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return parse_nvidia_smi(result.stdout) if result.returncode == 0 else None


def parse_nvidia_smi(text: str) -> tuple[float, float] | None:
    """Average ``utilization.gpu, memory.used, memory.total`` CSV lines of nvidia-smi.

    >>> parse_nvidia_smi("30, 4000, 16000\\n50, 12000, 16000\\n")
    (40.0, 50.0)
    """
    busy, memory = [], []
    for line in text.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        try:
            utilization, used, total = (float(p) for p in parts[:3])
        except ValueError:  # "[N/A]" on GPUs that do not report a field
            continue
        busy.append(utilization)
        memory.append(100.0 * used / total if total > 0 else math.nan)
    if not busy:
        return None
    return sum(busy) / len(busy), sum(memory) / len(memory)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Sample this host's utilization into a "
                                     "forestream metrics CSV until interrupted.")
    parser.add_argument("--directory", default=".", help="where <resource-id>.csv goes")
    parser.add_argument("--resource-id", default=None, help="default: the host name")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds per row")
    parser.add_argument("--probe", type=float, default=5.0, help="seconds per CPU probe")
    args = parser.parse_args(argv)
    agent = HostAgent(args.directory, resource_id=args.resource_id,
                      interval_seconds=args.interval, probe_seconds=args.probe)
    print(f"sampling every {agent.interval_seconds:g}s into {agent.path} (Ctrl-C stops)")
    agent.start()
    try:
        while agent.running:
            time.sleep(1.0)
    except KeyboardInterrupt:
        agent.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
