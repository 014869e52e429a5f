"""One worker of an application on a Kinesis source: leases, runners, back-pressure, drain.

Jobs without ``key_by`` run one copy per leased shard of the source (checkpoints in
``checkpoints/<shard>``). Keyed jobs run in two stages (see
:mod:`forestream.processing.exchange`): a read stage per leased source shard and a keyed
stage per leased key group (``checkpoints/keygroup-<shard>``). With several workers the
stages meet in the application's exchange stream (durable: workers may come and go, on
any machine). A worker that runs every stage (parallelism 1) hands records over in memory
instead (:class:`~.exchange.LocalExchange`): no pickling, no writes, no reads back; only
the sinks and the checkpoints touch the disk, and checkpoints are taken in committed
rounds (:mod:`.checkpoint_rounds`) so that a crash resumes every stage from one instant.
Checkpoints are laid out the same way in both modes; a worker that goes into memory
first drains what the exchange stream still holds for its key groups.

Read stages pause while a key group this worker runs is more than
``BACKPRESSURE_MILLIS`` behind the exchange stream, so the exchange never holds much
unprocessed data. On SIGTERM the read stages stop first (with a final checkpoint), then
the keyed stages drain what is left in their key groups (for up to ``DRAIN_SECONDS``)
before their final checkpoints.
"""

from __future__ import annotations

import fcntl
import math
import os
import time
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, cast

from . import exchange as ex
from .checkpoint_rounds import CheckpointRounds
from .environment import StreamExecutionEnvironment
from .exchange_plan import ExchangePlan, keyed_stage, read_stage
from .kinesis_io import KinesisSink, KinesisSource, PutBatcher, wait_for_input
from .leases import LeaseTable
from .runtime import IDLE_SLEEP_SECONDS, JobRunner

if TYPE_CHECKING:
    from collections.abc import Callable

BALANCE_SECONDS = 1.0
#: Threads that advance the key groups of a worker running them all in memory (default:
#: 2 where there are 2 cores or more; ``FORESTREAM_KEYED_THREADS=1`` keeps one thread).
KEYED_THREADS = max(1, int(os.environ.get("FORESTREAM_KEYED_THREADS",
                                          min(2, os.cpu_count() or 1))))
BACKPRESSURE_MILLIS = 30_000
DRAIN_SECONDS = 8.0


class ParallelWorker:
    """Worker ``worker`` of ``workers``. ``local``: an in-memory :class:`LocalExchange`
    (this worker runs every key group) instead of the exchange stream ``exchange`` names;
    a keyed job then checkpoints in rounds."""

    def __init__(self, app_dir: Path, config: dict, module, source: KinesisSource | _Source,
                 plan: ExchangePlan | None, exchange,
                 exchange_target, worker: int, workers: int,
                 local: ex.LocalExchange | None = None) -> None:
        self.app_dir, self.config, self.module = app_dir, config, module
        self.properties = config.get("properties", {})
        self.api, self.plan, self.exchange = source.api, plan, exchange
        self.local = local if plan is not None else None
        self.exchange_target = self.local if self.local is not None else exchange_target
        self.worker, self.workers = worker, workers
        # the pid lets a successor take the leases of a dead worker at once (leases.py)
        owner = f"worker-{worker}-{os.getpid()}"
        self.tables = {"source": (LeaseTable(app_dir / "leases.db", owner), source.stream)}
        if exchange is not None and self.local is None:
            self.tables["keyed"] = (LeaseTable(app_dir / "leases-keygroups.db", owner),
                                    exchange.stream)
        if self.local is not None:  # one worker in memory at a time (see _exclusive)
            self._lock = _exclusive(app_dir / "checkpoints" / ".in-memory.lock")
        self.rounds = CheckpointRounds(
            app_dir / "checkpoints", float(config.get("checkpoint_interval", 10.0))) \
            if self.local is not None else None
        self._restore_latest = False  # in memory after the exchange stream: see enter_memory
        self.puts = PutBatcher()  # in memory: the key groups' sinks write once per step
        self._pool = ThreadPoolExecutor(KEYED_THREADS, thread_name_prefix="key-groups") \
            if self.local is not None and KEYED_THREADS > 1 else None
        self._round_at = time.monotonic()
        self._finishing: set[tuple[str, str]] = set()
        self.runners: dict[tuple[str, str], JobRunner] = {}
        self.open_source_shards = 0
        self.records = 0
        self.steps = 0
        self.busy_retired = 0.0  # busy seconds of runners closed since the start

    # ------------------------------------------------------------------ leases
    def balance(self) -> None:
        if self.local is not None:  # every key group is this worker's
            for shard in self.local.shards:
                if ("keyed", shard) not in self.runners:
                    self.runners[("keyed", shard)] = self._start("keyed", shard)
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
        # in memory, the worker takes the checkpoints (in rounds), not each runner
        interval = math.inf if self.local is not None else \
            float(self.config.get("checkpoint_interval", 10.0))
        env = StreamExecutionEnvironment(
            properties=self.properties, checkpoint_dir=self.app_dir / "checkpoints" / folder,
            checkpoint_interval=interval, batch_size=int(self.config.get("batch_size", 1000)))
        env.shard_lease = {shard} if kind == "source" else set()
        self.module.build(env, self.properties)
        if self.plan is not None and kind == "source":
            read_stage(env.graph, self.plan, self.exchange, self.exchange_target, origin=shard)
        elif self.plan is not None:
            keyed_stage(env.graph, self.plan, self.exchange, self.exchange_target, shard)
        if self.local is not None and kind == "keyed":
            for node in env.graph.nodes:
                sink = getattr(node.operator, "sink", None)
                if isinstance(sink, KinesisSink):
                    sink.batcher = self.puts
        runner = JobRunner(env.graph, f"{self.config['name']}/{folder}")
        if self.rounds is None:
            runner.open()
        elif self._restore_latest:  # checkpoints of the exchange-stream era, just drained
            runner.open(initial_checkpoint=False)
        else:
            runner.open(self.rounds.committed, restore=self.rounds.committed is not None,
                        initial_checkpoint=False)
        print(f"worker {self.worker}: leased {folder} (restored from checkpoint "
              f"{runner.result.restored_from})", flush=True)
        return runner

    # ------------------------------------------------------------------- steps
    def step(self, kinds: tuple[str, ...] = ("source", "keyed")) -> int:
        """Advance every runner of these kinds once; the records they polled."""
        if self.local is not None:
            return self._step_in_memory()
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

    def _step_in_memory(self) -> int:
        """Read stages, then the key groups until every hand-over queue is empty; a round
        of checkpoints when one is due (between steps: nothing in flight)."""
        assert self.rounds is not None and self.local is not None  # set when in memory
        self.steps += 1
        polled_any = 0
        for key, runner in list(self.runners.items()):
            if key[0] != "source" or key in self._finishing:
                continue
            polled, finished = runner.advance()
            polled_any += polled
            self.records += polled
            if finished:  # retired once a committed round holds its final state
                self._finishing.add(key)
                # (cast: mypy cannot infer a lambda whose default binds the loop variable)
                self.rounds.defer(cast("Callable[[], None]", lambda key=key: self._finished(key)))
        keyed = [r for k, r in self.runners.items() if k[0] == "keyed"]
        while True:
            polled_any += self._advance_key_groups(keyed)
            if self.local.empty():
                break
        self.puts.flush(wait=False)  # written while the next step reads and processes
        self.rounds.run_committed()
        if time.monotonic() - self._round_at >= self.rounds.interval:
            self.take_round()
        return polled_any

    def _advance_key_groups(self, keyed: list[JobRunner]) -> int:
        """Advance every key group once; the records they polled. Key groups share
        nothing (state, operators and hand-over queue are each their own), so with
        ``KEYED_THREADS`` > 1 they run on a pool: the RCF kernels release the GIL, and a
        second core scores one key group while another is scored. The sinks' records go
        out between key groups either way."""
        polled_any = 0
        if self._pool is None or len(keyed) < 2:
            for runner in keyed:
                polled, _ = runner.advance()
                polled_any += polled
                self.puts.send_if_idle()
            return polled_any
        for done in as_completed([self._pool.submit(runner.advance) for runner in keyed]):
            polled, _ = done.result()  # raises what the key group raised
            polled_any += polled
            self.puts.send_if_idle()
        return polled_any

    def wait_for_input(self, timeout: float) -> None:
        """After a step that polled nothing: until a record may have arrived (at most
        ``timeout``). In memory only the read stages have sources to wait on (the
        hand-over queues are empty between steps); otherwise every runner's."""
        runners = [r for k, r in self.runners.items()
                   if self.local is None or k[0] == "source"]
        wait_for_input([s for r in runners for s in r.sources_now()], timeout,
                       IDLE_SLEEP_SECONDS)

    def take_round(self, wait: bool = False) -> int:
        """Checkpoint every runner under one new round number, committed once written."""
        assert self.rounds is not None  # rounds are taken in memory only
        self.puts.wait()  # what the round covers is written first
        round_id = self.rounds.next_round()
        writers = []
        written: list[tuple[JobRunner, Path]] = []
        try:
            for runner in self.runners.values():
                path = runner.checkpoint(wait=False, checkpoint_id=round_id,
                                         start_writer=False)
                written.append((runner, path))
                writer = runner.pending_write()
                if writer is not None:
                    writers.append(writer)
        finally:  # once every snapshot is taken (see JobRunner.checkpoint), or one failed
            for writer in writers:
                writer.start()
        self.rounds.commit_when_written(
            round_id, writers, wait=wait,
            succeeded=lambda: all(path not in r.failed_writes for r, path in written))
        self._round_at = time.monotonic()
        return round_id

    def _finished(self, key: tuple[str, str]) -> None:
        runner = self.runners.pop(key, None)
        self._finishing.discard(key)
        if runner is not None:
            self._retire(runner, final_checkpoint=False)
            self.tables[key[0]][0].finish(key[1])
            print(f"worker {self.worker}: {key[1]} finished", flush=True)

    def enter_memory(self, exchange_target, drain_seconds: float = 120.0) -> None:
        """Start in memory. Checkpoints of the exchange-stream era (no committed round)
        are made consistent first: their key groups read what the exchange stream still
        holds for them, then every runner restores its latest checkpoint and a round is
        committed at once."""
        assert self.rounds is not None  # a worker in memory takes rounds
        if self.rounds.committed is not None or not self._has_checkpoints():
            return
        if self.exchange is not None and self.exchange.stream:
            self._drain_exchange(exchange_target, drain_seconds)
        self._restore_latest = True
        self.balance()
        self.take_round(wait=True)
        self._restore_latest = False
        (self.app_dir / "checkpoints" / ex.EXCHANGE_FILE).unlink(missing_ok=True)

    def _has_checkpoints(self) -> bool:
        root = self.app_dir / "checkpoints"
        return root.is_dir() and any(p.is_dir() for p in root.iterdir())

    def _drain_exchange(self, target, seconds: float) -> None:
        durable = ParallelWorker(self.app_dir, self.config, self.module, _Source(
            self.api, self.tables["source"][1]), self.plan, self.exchange, target,
            self.worker, self.workers)
        durable.tables = {}  # key groups only: nothing is read from the source meanwhile
        assert self.local is not None  # enter_memory drains: the worker runs in memory
        for shard in self.local.shards:
            durable.runners[("keyed", shard)] = durable._start("keyed", shard)
        deadline = time.monotonic() + seconds
        readers = [cast(ex.ExchangeReader, r.nodes[0].source)
                   for r in durable.runners.values()]
        while time.monotonic() < deadline:
            polled = durable.step(kinds=("keyed",))
            if not polled and all(reader.caught_up() for reader in readers):
                break
            if not polled:
                time.sleep(0.01)
        else:
            raise RuntimeError(f"key groups did not catch up with {self.exchange.stream} "
                               f"within {seconds:.0f} s")
        for key in list(durable.runners):
            durable._retire(durable.runners.pop(key), final_checkpoint=True)

    def _key_groups_lagging(self) -> bool:
        # a keyed runner starts with its key group's ExchangeReader
        return any(max(cast(ex.ExchangeReader, runner.nodes[0].source).millis_behind.values(),
                       default=0) > BACKPRESSURE_MILLIS
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
        In memory: one last committed round. A runner that fails to close does not keep
        the others from closing."""
        if self.local is not None:
            self._stop_in_memory()
            return
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

    def _stop_in_memory(self) -> None:
        assert self.rounds is not None  # set when in memory
        try:
            self.take_round(wait=True)
            self.rounds.run_committed()
        finally:
            for key in list(self.runners):
                self._retire(self.runners.pop(key), final_checkpoint=False)
            leases = self.tables["source"][0]
            leases.release(set(leases.owners()))
            if self._pool is not None:
                self._pool.shutdown(wait=True)

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


def _exclusive(path: Path, seconds: float = 60.0):
    """An exclusive lock on ``path``, held while the returned file stays open. A worker
    in memory owns every key group without leases; a predecessor still finishing (an
    orphan of a killed server taking its last round) must be done before it starts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a+")
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise RuntimeError(f"another worker of this application still runs in "
                                   f"memory ({path} is locked)") from None
            time.sleep(0.1)


class _Source:
    """The source stream as a worker needs it: its Kinesis API and name."""

    def __init__(self, api, stream: str) -> None:
        self.api, self.stream = api, stream


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
    return {**out, "operators": operators, "millis_behind_latest": lag,
            "read_positions": read_positions(runners.values())}


def read_positions(runners) -> dict[str, list]:
    """``"<source uid>/<shard>" -> [stream, last sequence number read or None]`` over the
    runners' Kinesis sources (the job's input streams, not its exchange stream): the
    server counts the records behind each (``records_behind`` in the status)."""
    out: dict[str, list] = {}
    for runner in runners:
        for n in runner.nodes:
            if isinstance(n.source, KinesisSource):
                for shard, sequence in n.source.read_positions().items():
                    out[f"{n.uid}/{shard}"] = [n.source.stream, sequence]
    return out
