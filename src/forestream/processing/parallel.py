"""One worker of an application on a Kinesis source: leases, runners, back-pressure, drain.

Jobs without ``key_by`` run one copy per leased shard of the source (checkpoints in
``checkpoints/<shard>``). Keyed jobs run in two stages through the application's exchange
stream (see :mod:`forestream.processing.exchange`): a read stage per leased source shard
and a keyed stage per leased key group (``checkpoints/keygroup-<shard>``).

Read stages pause while a key group this worker runs is more than
``BACKPRESSURE_MILLIS`` behind the exchange stream, so the exchange never holds much
unprocessed data. On SIGTERM the read stages stop first (with a final checkpoint), then
the keyed stages drain what is left in their key groups (for up to ``DRAIN_SECONDS``)
before their final checkpoints.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from . import exchange as ex
from .environment import StreamExecutionEnvironment
from .exchange_plan import keyed_stage, read_stage
from .leases import LeaseTable
from .runtime import JobRunner

BALANCE_SECONDS = 1.0
BACKPRESSURE_MILLIS = 30_000
DRAIN_SECONDS = 8.0


class ParallelWorker:
    def __init__(self, app_dir: Path, config: dict, module, source, plan, exchange,
                 exchange_target, worker: int, workers: int) -> None:
        self.app_dir, self.config, self.module = app_dir, config, module
        self.properties = config.get("properties", {})
        self.api, self.plan, self.exchange = source.api, plan, exchange
        self.exchange_target = exchange_target
        self.worker, self.workers = worker, workers
        # the pid lets a successor take the leases of a dead worker at once (leases.py)
        owner = f"worker-{worker}-{os.getpid()}"
        self.tables = {"source": (LeaseTable(app_dir / "leases.db", owner), source.stream)}
        if exchange is not None:
            self.tables["keyed"] = (LeaseTable(app_dir / "leases-keygroups.db", owner),
                                    exchange.stream)
        self.runners: dict[tuple[str, str], JobRunner] = {}
        self.open_source_shards = 0
        self.records = 0
        self.steps = 0
        self.busy_retired = 0.0  # busy seconds of runners closed since the start

    # ------------------------------------------------------------------ leases
    def balance(self) -> None:
        for kind, (leases, stream) in self.tables.items():
            shards = self.api.list_shards(stream)
            if kind == "source":
                self.open_source_shards = sum(
                    1 for s in shards
                    if "EndingSequenceNumber" not in s.get("SequenceNumberRange", {}))
            leases.sync_shards(shards)
            owned = leases.balance(shards, self.workers,
                                   before_release=lambda s, k=kind: self.hand_back(k, s))
            for key in [k for k in self.runners if k[0] == kind and k[1] not in owned]:
                # expired and taken by another worker: its checkpoint rules
                self._retire(self.runners.pop(key), final_checkpoint=False)
            for shard in sorted(owned - {k[1] for k in self.runners if k[0] == kind}):
                self.runners[(kind, shard)] = self._start(kind, shard)

    def hand_back(self, kind: str, shards: set[str]) -> None:
        """Final checkpoints of these runners (before their leases are given back)."""
        for shard in sorted(shards):
            runner = self.runners.pop((kind, shard), None)
            if runner is not None:
                self._retire(runner, final_checkpoint=True)

    def _retire(self, runner: JobRunner, final_checkpoint: bool) -> None:
        """Close a runner, keeping its busy time in the worker's running total."""
        self.busy_retired += runner.result.busy_seconds
        runner.close(final_checkpoint=final_checkpoint)

    def _start(self, kind: str, shard: str) -> JobRunner:
        folder = shard if kind == "source" else f"keygroup-{shard}"
        env = StreamExecutionEnvironment(
            properties=self.properties, checkpoint_dir=self.app_dir / "checkpoints" / folder,
            checkpoint_interval=float(self.config.get("checkpoint_interval", 10.0)),
            batch_size=int(self.config.get("batch_size", 1000)))
        env.shard_lease = {shard} if kind == "source" else set()
        self.module.build(env, self.properties)
        if self.plan is not None and kind == "source":
            read_stage(env.graph, self.plan, self.exchange, self.exchange_target, origin=shard)
        elif self.plan is not None:
            keyed_stage(env.graph, self.plan, self.exchange, self.exchange_target, shard)
        runner = JobRunner(env.graph, f"{self.config['name']}/{folder}")
        runner.open()
        print(f"worker {self.worker}: leased {folder} (restored from checkpoint "
              f"{runner.result.restored_from})", flush=True)
        return runner

    # ------------------------------------------------------------------- steps
    def step(self, kinds: tuple[str, ...] = ("source", "keyed")) -> int:
        """Advance every runner of these kinds once; the records they polled."""
        self.steps += 1
        polled_any = 0
        if "source" in kinds and self._key_groups_lagging():
            kinds = tuple(k for k in kinds if k != "source")  # back-pressure
        for (kind, shard), runner in list(self.runners.items()):
            if kind not in kinds:
                continue
            polled, finished = runner.advance()
            polled_any += polled
            if kind == "source":
                self.records += polled
            if finished:
                self._retire(self.runners.pop((kind, shard)), final_checkpoint=True)
                self.tables[kind][0].finish(shard)
                print(f"worker {self.worker}: {shard} finished", flush=True)
        return polled_any

    def _key_groups_lagging(self) -> bool:
        return any(max(runner.nodes[0].source.millis_behind.values(), default=0)
                   > BACKPRESSURE_MILLIS
                   for (kind, _), runner in self.runners.items() if kind == "keyed")

    def status(self) -> dict:
        metrics = runner_metrics(self.runners)  # busy time only grows (autoscaling reads it)
        metrics["busy_seconds"] = round(metrics["busy_seconds"] + self.busy_retired, 3)
        return {"records_in": self.records,
                "shards": sorted(s for k, s in self.runners if k == "source"),
                "key_groups": sorted(s for k, s in self.runners if k == "keyed"),
                "open_source_shards": self.open_source_shards, "worker_count": self.workers,
                **metrics}

    # -------------------------------------------------------------------- stop
    def stop(self, drain: bool = True) -> None:
        """Read stages first; then the key groups drain what the exchange still holds
        (unless ``drain`` is false: the server is gone); then every lease is given back.
        A runner that fails to close does not keep the others from closing."""
        errors = []
        for kind in ("source", "keyed"):
            if kind not in self.tables:
                continue
            leases = self.tables[kind][0]
            mine = {s for k, s in self.runners if k == kind}
            if kind == "keyed" and drain:
                try:
                    self._drain(leases, mine)
                except Exception:
                    errors.append(traceback.format_exc(limit=3))
            for shard in sorted(mine):
                try:
                    self.hand_back(kind, {shard})
                except Exception:  # noqa: PERF203 - keep closing the others
                    errors.append(traceback.format_exc(limit=3))
            leases.release(mine | set(leases.owners()))
        for error in errors:
            print(f"worker {self.worker}: a final checkpoint failed:\n{error}", flush=True)

    def _drain(self, leases: LeaseTable, shards: set[str]) -> None:
        deadline = time.monotonic() + DRAIN_SECONDS
        quiet_since = renewed = time.monotonic()
        leases.renew(shards)  # nobody takes a key group over while it drains
        while time.monotonic() < deadline:
            if time.monotonic() - renewed >= BALANCE_SECONDS:
                leases.renew(shards)
                renewed = time.monotonic()
            if self.step(kinds=("keyed",)):
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 2 * ex.IDLE_POLL_MAX_SECONDS:
                return
            else:
                time.sleep(0.01)


def runner_metrics(runners: dict) -> dict:
    """Operator counts, shard lag, checkpoint figures and busy time summed over the
    runners (one per leased shard) of a parallel worker."""
    operators: dict[str, list[int]] = {}
    lag: dict[str, float] = {}
    out = {"checkpoints": 0, "checkpoint_seconds": 0.0, "checkpoint_bytes": 0,
           "busy_seconds": 0.0}
    for runner in runners.values():
        r = runner.result
        out["checkpoints"] += r.checkpoints
        out["checkpoint_seconds"] = max(out["checkpoint_seconds"], r.last_checkpoint_seconds)
        out["checkpoint_bytes"] += r.last_checkpoint_bytes
        out["busy_seconds"] += r.busy_seconds
        for n in runner.nodes:
            if n.operator is not None:
                counts = operators.setdefault(n.uid, [0, 0])
                counts[0] += n.operator.records_in
                counts[1] += n.operator.records_out
            if n.source is not None:
                for shard, millis in getattr(n.source, "millis_behind", {}).items():
                    lag[f"{n.uid}/{shard}"] = millis
    out["busy_seconds"] = round(out["busy_seconds"], 3)
    return {**out, "operators": operators, "millis_behind_latest": lag}
