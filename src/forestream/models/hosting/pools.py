"""What serves an endpoint's traffic: a pool of workers per variant, and its counters.

* :class:`VariantPool` — the :class:`~forestream.models.serving.worker.ModelWorker` processes of
  one production variant: a request takes an idle worker, a dead one is replaced in the
  background (within a restart budget), and the pool grows, shrinks and drains on
  request;
* :class:`LiveVariants` — the pools an endpoint serves from right now, and the random
  pick of a variant in proportion to the weights;
* :class:`EndpointMetrics` — request, error and latency counters per variant, rendered
  for Prometheus.

:class:`~forestream.models.hosting.endpoints.EndpointManager` owns these; they live on the
server's event loop.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidInput, ModelInvocationError, ModelLoadError, ModelsError, WorkerCrashed
from ..serving.worker import Invocation, ModelWorker

STARTUP_TIMEOUT = 300.0
DRAIN_TIMEOUT = 60.0
RESTARTS_PER_MINUTE = 5
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0)


class VariantPool:
    """The worker processes of one production variant, and the queue of idle ones.

    A request takes an idle worker (waiting when all are busy), invokes it and gives it
    back. A worker that dies is replaced in the background; more than
    ``RESTARTS_PER_MINUTE`` deaths in a minute stop the replacements (the variant then
    answers ModelError until it is redeployed) so that a crashing model cannot spin.
    """

    def __init__(self, endpoint: str, variant: str, model: dict, artifact_dir: Path,
                 workers: int, log_dir: Path) -> None:
        self.endpoint = endpoint
        self.variant = variant
        self.model = model
        self.artifact_dir = artifact_dir
        self.desired = workers
        self.log_dir = log_dir
        self._workers: list[ModelWorker] = []
        self._idle: asyncio.Queue[ModelWorker] = asyncio.Queue()
        self._in_flight = 0
        self._restarts: list[float] = []
        self._serial = 0
        self._closed = False
        self._background: set[asyncio.Task] = set()

    @property
    def size(self) -> int:
        return len(self._workers)

    def _new_worker(self) -> ModelWorker:
        self._serial += 1
        log = self.log_dir / f"{self.variant}-{self._serial}.log"
        return ModelWorker(self.artifact_dir, self.model["framework"],
                           trusted=bool(self.model.get("trusted")), log_path=log)

    async def start(self) -> None:
        """Start ``desired`` workers at once; any failure stops them all and raises."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        workers = [self._new_worker() for _ in range(self.desired)]
        results = await asyncio.gather(*(w.start(timeout=STARTUP_TIMEOUT) for w in workers),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
            first = failures[0]
            reason = first.message if isinstance(first, ModelsError) else repr(first)
            raise ModelLoadError(f"variant {self.variant!r} ({self.model['ref']}) did not "
                                 f"start: {reason}")
        for w in workers:
            self._workers.append(w)
            self._idle.put_nowait(w)

    async def invoke(self, body: bytes, content_type: str, accept: str | None,
                     custom_attributes: str | None) -> Invocation:
        if self._closed or not self._workers:
            raise ModelInvocationError(f"variant {self.variant!r} has no running worker")
        worker = await self._idle.get()
        self._in_flight += 1
        crashed = False
        try:
            return await worker.invoke(body, content_type, accept, custom_attributes)
        except WorkerCrashed:
            self._replace(worker)
            crashed = True
            raise
        finally:
            self._in_flight -= 1
            if not crashed:
                if worker in self._workers:
                    self._idle.put_nowait(worker)
                else:  # removed by a resize while it was busy
                    self._spawn(worker.close())

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _replace(self, dead: ModelWorker) -> None:
        if dead in self._workers:
            self._workers.remove(dead)
        self._spawn(dead.close())
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < 60.0]
        if self._closed or len(self._restarts) >= RESTARTS_PER_MINUTE:
            return
        self._restarts.append(now)
        self._spawn(self._add_worker())

    async def _add_worker(self) -> None:
        worker = self._new_worker()
        try:
            await worker.start(timeout=STARTUP_TIMEOUT)
        except Exception:  # noqa: BLE001 — counted as a restart; the pool stays smaller
            await worker.close()
            return
        if self._closed:
            await worker.close()
            return
        self._workers.append(worker)
        self._idle.put_nowait(worker)

    async def resize(self, workers: int) -> None:
        """Grow or shrink to ``workers`` processes; busy workers finish their request."""
        self.desired = workers
        while len(self._workers) < workers:
            before = len(self._workers)
            await self._add_worker()
            if len(self._workers) == before:
                raise ModelLoadError(f"variant {self.variant!r}: a new worker did not start")
        while len(self._workers) > workers:
            worker = await self._idle.get()  # an idle one, so no request is cut off
            self._workers.remove(worker)
            await worker.close()

    async def close(self, drain_timeout: float = DRAIN_TIMEOUT) -> None:
        """Stop taking requests, let in-flight ones finish (bounded), stop the workers."""
        self._closed = True
        deadline = time.monotonic() + drain_timeout
        while self._in_flight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        workers, self._workers = self._workers, []
        await asyncio.gather(*(w.close() for w in workers), return_exceptions=True)
        for task in list(self._background):
            task.cancel()


@dataclass
class LiveVariants:
    """An endpoint's serving state: the variant pools that take traffic now, and the
    weighted pick between them (or an error when every weight is 0)."""

    config_name: str
    pools: dict[str, VariantPool] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    names: list[str] = field(default_factory=list)
    cumulative: list[float] = field(default_factory=list)

    def set_weights(self, weights: dict[str, float]) -> None:
        self.weights = dict(weights)
        self.names = [n for n in self.pools if self.weights.get(n, 0.0) > 0.0]
        total, self.cumulative = 0.0, []
        for n in self.names:
            total += self.weights[n]
            self.cumulative.append(total)

    def pick(self) -> str:
        if not self.names:
            raise InvalidInput("every variant of this endpoint has weight 0; target one "
                               "with TargetVariant or raise a weight")
        if len(self.names) == 1:
            return self.names[0]
        x = random.random() * self.cumulative[-1]
        for name, bound in zip(self.names, self.cumulative, strict=True):
            if x < bound:
                return name
        return self.names[-1]


class EndpointMetrics:
    """Per-variant request, error and latency counters, rendered for Prometheus."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.invocations: dict[tuple[str, str], int] = defaultdict(int)
        self.errors: dict[tuple[str, str, str], int] = defaultdict(int)
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.latency_buckets: dict[tuple[str, str], list[int]] = defaultdict(
            lambda: [0] * len(LATENCY_BUCKETS))

    def summary(self, endpoint: str) -> dict[str, dict]:
        """Variant → ``invocations``, ``errors``, ``latency_sum`` and per-bucket
        ``buckets`` counts (bounds: ``LATENCY_BUCKETS``) for one endpoint."""
        with self._lock:
            out: dict[str, dict] = {
                variant: {"invocations": count, "errors": 0,
                          "latency_sum": self.latency_sum.get((ep, variant), 0.0),
                          "buckets": list(self.latency_buckets.get((ep, variant), []))}
                for (ep, variant), count in self.invocations.items() if ep == endpoint}
            for (ep, variant, _code), count in self.errors.items():
                if ep == endpoint and variant in out:
                    out[variant]["errors"] += count
        return out

    def observe(self, endpoint: str, variant: str, seconds: float,
                error: str | None = None) -> None:
        key = (endpoint, variant)
        with self._lock:
            self.invocations[key] += 1
            if error is not None:
                self.errors[(endpoint, variant, error)] += 1
            self.latency_sum[key] += seconds
            buckets = self.latency_buckets[key]
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
                    break

    def render(self, workers: dict[tuple[str, str], int]) -> str:
        lines = ["# TYPE forestream_endpoint_invocations_total counter"]
        with self._lock:
            for (ep, var), n in sorted(self.invocations.items()):
                lines.append(f'forestream_endpoint_invocations_total{{endpoint="{ep}",'
                             f'variant="{var}"}} {n}')
            lines.append("# TYPE forestream_endpoint_errors_total counter")
            for (ep, var, code), n in sorted(self.errors.items()):
                lines.append(f'forestream_endpoint_errors_total{{endpoint="{ep}",'
                             f'variant="{var}",code="{code}"}} {n}')
            lines.append("# TYPE forestream_endpoint_latency_seconds histogram")
            for (ep, var), buckets in sorted(self.latency_buckets.items()):
                labels = f'endpoint="{ep}",variant="{var}"'
                running = 0
                for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
                    running += n
                    lines.append(f'forestream_endpoint_latency_seconds_bucket{{{labels},'
                                 f'le="{bound}"}} {running}')
                count = self.invocations[(ep, var)]
                lines.append(f'forestream_endpoint_latency_seconds_bucket{{{labels},'
                             f'le="+Inf"}} {count}')
                lines.append(f"forestream_endpoint_latency_seconds_sum{{{labels}}} "
                             f"{self.latency_sum[(ep, var)]:.6f}")
                lines.append(f"forestream_endpoint_latency_seconds_count{{{labels}}} {count}")
        lines.append("# TYPE forestream_endpoint_workers gauge")
        for (ep, var), n in sorted(workers.items()):
            lines.append(f'forestream_endpoint_workers{{endpoint="{ep}",variant="{var}"}} {n}')
        return "\n".join(lines) + "\n"
