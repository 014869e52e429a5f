"""A few minutes of counters, kept in memory for the console's charts.

The server already counts what an operator wants to see over time: records and bytes in
and out per shard (:class:`forestream.server.metrics.Metrics`, fed by the Kinesis API),
each application's records in and lag (its workers' status files), each endpoint
variant's invocations, errors and latency (:class:`EndpointMetrics`). These are totals
since the start; a chart needs them over time. :class:`ConsoleHistory` copies them into a
ring every :data:`SAMPLE_SECONDS` (a few dictionary copies: cheap), and turns the ring
into rates per second on demand.

The sampler is a daemon thread started by the first console request, so servers that
nobody looks at (and the many in-process apps of the test suite) never run it; the
charts then start from that moment.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forestream.models.hosting.endpoints import EndpointManager
    from forestream.processing.applications import ApplicationManager

    from ..metrics import Metrics

SAMPLE_SECONDS = 2.0
KEEP_SAMPLES = 300  # ten minutes at one sample every two seconds


@dataclass
class Sample:
    """The counters at one moment (epoch seconds)."""

    time: float
    shards: dict[tuple[str, str], tuple[int, int, int, int]]  # records/bytes in/out
    apps: dict[str, dict] = field(default_factory=dict)  # records_in, lag, behind
    variants: dict[tuple[str, str], tuple[int, int, float]] = field(default_factory=dict)


@dataclass
class Series:
    """Points of a chart: ``times`` (epoch seconds) and one list of values per label."""

    times: list[float]
    values: dict[str, list[float | None]]

    def as_chart(self) -> list[dict]:
        return [{"label": label, "values": values} for label, values in self.values.items()]


class ConsoleHistory:
    """The ring of :class:`Sample` and the rates the console's charts show."""

    def __init__(self, metrics: Metrics, applications: ApplicationManager,
                 endpoints: EndpointManager, interval: float = SAMPLE_SECONDS,
                 keep: int = KEEP_SAMPLES) -> None:
        self.metrics = metrics
        self.applications = applications
        self.endpoints = endpoints
        self.interval = interval
        self.samples: deque[Sample] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def ensure_started(self) -> None:
        """Start sampling (once; later calls return at once)."""
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="console-history",
                                                daemon=True)
                self._thread.start()

    def sample(self) -> None:
        """Take one sample now (the thread calls this; so do tests and a page that wants
        its newest point)."""
        shards = self.metrics.shard_totals()
        apps: dict[str, dict] = {}
        with contextlib.suppress(Exception):  # the manager closed at shutdown
            for name, workers in self.applications.runtime_statuses().items():
                lag: dict[str, float] = {}
                for worker in workers:
                    for shard, millis in (worker.get("millis_behind_latest") or {}).items():
                        lag[shard] = max(lag.get(shard, 0.0), float(millis))
                apps[name] = {
                    "records_in": sum(int(w.get("records_in") or 0) for w in workers),
                    "lag": lag,
                    "behind": sum(sum((w.get("records_behind") or {}).values())
                                  for w in workers)}
        variants: dict[tuple[str, str], tuple[int, int, float]] = {}
        with contextlib.suppress(Exception):
            for endpoint in self.endpoints.list_endpoints():
                name = endpoint["name"]
                for variant, stats in self.endpoints.metrics.summary(name).items():
                    variants[(name, variant)] = (stats["invocations"], stats["errors"],
                                                 stats["latency_sum"])
        with self._lock:
            self.samples.append(Sample(time.time(), shards, apps, variants))

    # ------------------------------------------------------------------ series
    def stream_rates(self, stream: str, shard_ids: Iterable[str] = ()) -> dict[str, Series]:
        """Per shard of ``stream`` (those counted, and ``shard_ids``, quiet ones at 0):
        records in, bytes in, records out, bytes out per second between consecutive
        samples (keys ``records_in``... ``bytes_out``)."""
        names = ("records_in", "bytes_in", "records_out", "bytes_out")
        samples = self._copy()
        shards = sorted({s for sample in samples for (st, s) in sample.shards if st == stream}
                        | set(shard_ids))
        out = {n: Series([], {s: [] for s in shards}) for n in names}
        for before, after in zip(samples, samples[1:], strict=False):
            seconds = after.time - before.time
            for n in names:
                out[n].times.append(after.time)
            for shard in shards:
                new = after.shards.get((stream, shard), (0, 0, 0, 0))
                old = before.shards.get((stream, shard), (0, 0, 0, 0))
                for i, n in enumerate(names):
                    out[n].values[shard].append(max(new[i] - old[i], 0) / seconds)
        return out

    def application_series(self, name: str) -> dict[str, Series]:
        """``throughput`` (records in per second), ``lag`` (millis behind latest per
        source shard) and ``behind`` (records not yet read, all shards)."""
        samples = [s for s in self._copy() if name in s.apps]
        shards = sorted({shard for s in samples for shard in s.apps[name]["lag"]})
        throughput = Series([], {"records in / s": []})
        for before, after in zip(samples, samples[1:], strict=False):
            gained = after.apps[name]["records_in"] - before.apps[name]["records_in"]
            throughput.times.append(after.time)
            # a restarted worker counts from zero again: no negative rates
            throughput.values["records in / s"].append(max(gained, 0) /
                                                       (after.time - before.time))
        lag = Series([s.time for s in samples],
                     {shard: [s.apps[name]["lag"].get(shard) for s in samples]
                      for shard in shards})
        behind = Series([s.time for s in samples],
                        {"records behind": [float(s.apps[name]["behind"]) for s in samples]})
        return {"throughput": throughput, "lag": lag, "behind": behind}

    def endpoint_series(self, name: str) -> dict[str, Series]:
        """Per variant: ``invocations`` and ``errors`` per second, ``latency`` (mean ms
        of the calls between two samples; none when there were none)."""
        samples = self._copy()
        variants = sorted({v for s in samples for (ep, v) in s.variants if ep == name})
        out = {n: Series([], {v: [] for v in variants})
               for n in ("invocations", "errors", "latency")}
        for before, after in zip(samples, samples[1:], strict=False):
            seconds = after.time - before.time
            for series in out.values():
                series.times.append(after.time)
            for v in variants:
                new = after.variants.get((name, v), (0, 0, 0.0))
                old = before.variants.get((name, v), (0, 0, 0.0))
                calls = new[0] - old[0]
                out["invocations"].values[v].append(max(calls, 0) / seconds)
                out["errors"].values[v].append(max(new[1] - old[1], 0) / seconds)
                out["latency"].values[v].append(1000 * (new[2] - old[2]) / calls
                                                if calls > 0 else None)
        return out

    # ------------------------------------------------------------------ helpers
    def _copy(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    def _run(self) -> None:
        while True:
            with contextlib.suppress(Exception):  # a failed round is retried next time
                self.sample()
            time.sleep(self.interval)
