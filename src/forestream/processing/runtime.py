"""Running a job graph: micro-batches through chained operators, watermarks, checkpoints.

One step polls every source for a batch, then visits the graph in topological order:
each operator processes what its inputs produced in this step, then sees the new input
watermark (the minimum of its inputs'). Between steps no record is in flight, so a
checkpoint taken there — source positions plus every operator's state, written to a file
atomically — is consistent: a job restored from it continues with exactly-once state.

The snapshot is taken and pickled on the processing thread; compressing, writing and
fsyncing it happen on a background thread while processing goes on (one checkpoint in
flight at a time, in order). A checkpoint counts once its file is in place: a crash
before that restores the previous one.
"""

from __future__ import annotations

import math
import os
import pickle
import resource
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

import zstandard

from forestream.durable import write_atomically_with
from forestream.priority import lower_this_thread

from .graph import JobGraph, Node
from .kinesis_io import wait_for_input
from .operators import MIN_WATERMARK, Deferred, TwoInputOperator
from .records import Collector, Record

if TYPE_CHECKING:
    from .sources import Source

KEEP_CHECKPOINTS = 3
#: Format 2 of checkpoint files ("FSCKPT" + version + "s" for zstd): then one zstd frame
#: of the snapshot's pickle (its length first, 8 bytes little-endian) followed by the
#: pickle of the deferred operator states ({uid: state}, see :class:`.operators.Deferred`).
#: A new format gets a new version (see docs/architecture.md, on-disk formats); format 1
#: (``FSCKPT1z``: one zlib-compressed pickle) is still read.
CHECKPOINT_MAGIC = b"FSCKPT2s"
CHECKPOINT_MAGIC_V1 = b"FSCKPT1z"
#: zstd level 1: ~4x faster than zlib's fastest and smaller, on forests' float arrays
ZSTD_LEVEL = 1
IDLE_SLEEP_SECONDS = 0.05
#: An idle job waits this long for records on sources that can wait (Kinesis sources on
#: a forestream server or StreamStore: woken the moment a record arrives); steps also
#: fire processing-time timers and take periodic checkpoints, so it stays short.
IDLE_WAIT_SECONDS = 0.1


MEMORY_CHECK_SECONDS = 1.0
#: Checkpoint files are written one at a time per process: a round checkpoints every key
#: group at once, and a dozen writer threads would take turns with the processing thread
#: for the interpreter instead of leaving it to process.
_ONE_WRITE_AT_A_TIME = threading.Lock()
#: Checkpoint writers run this much nicer than the processing thread (Linux: a thread's
#: own nice value): a round's ~0.4 CPU-s of serializing and compressing (12 quickstart
#: detectors) then yields the cores to processing, so records are not held up behind a
#: background write — on a busy 2-core machine the round's latency spikes were the job's
#: p99.
WRITER_NICENESS = 5


class StateMemoryError(MemoryError):
    """The job's state outgrew the memory limit: state lives in memory (no spilling
    backend), so the job stops, naming the limitation, before the system kills it."""


def resident_mb() -> float:
    """This process's resident memory in MiB (Linux /proc; peak RSS elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass
class JobResult:
    job_name: str
    steps: int = 0
    records_in: int = 0
    seconds: float = 0.0
    checkpoints: int = 0
    restored_from: int | None = None
    operator_records: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_checkpoint_seconds: float = 0.0
    last_checkpoint_bytes: int = 0
    busy_seconds: float = 0.0  # time in steps that had records to process


def checkpoint_files(directory: Path) -> list[Path]:
    """A folder's checkpoint files (``checkpoint-<8 digits>.pkl``), oldest first."""
    return sorted(directory.glob("checkpoint-*.pkl"), key=_number)


def _number(path: Path) -> int:
    number = path.stem.rpartition("-")[2]
    return int(number) if number.isdigit() else -1


def read_checkpoint(path: Path) -> dict[str, Any]:
    """The snapshot in a checkpoint file (format 2, or 1: see :data:`CHECKPOINT_MAGIC`),
    deferred operator states in place."""
    data = Path(path).read_bytes()
    if data.startswith(CHECKPOINT_MAGIC_V1):
        return pickle.loads(zlib.decompress(data[len(CHECKPOINT_MAGIC_V1):]))
    if not data.startswith(CHECKPOINT_MAGIC):
        raise ValueError(f"{path} is not a checkpoint of this forestream version (format "
                         f"{CHECKPOINT_MAGIC[:7].decode()}): start the application with "
                         "restore SKIP, or with the forestream version that wrote it")
    payload = zstandard.ZstdDecompressor().decompressobj().decompress(
        data[len(CHECKPOINT_MAGIC):])
    length = int.from_bytes(payload[:8], "little")
    snapshot = pickle.loads(payload[8:8 + length])
    for uid, state in pickle.loads(payload[8 + length:]).items():
        snapshot["operators"][uid] = (state, snapshot["operators"][uid][1])
    return snapshot


class _SourceState:
    """Per-split event-time tracking of one source (bounded out-of-orderness, idleness)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.max_ts: dict[str, float] = {}
        self.last_seen: dict[str, float] = {}
        self.watermark = MIN_WATERMARK
        self.started: float | None = None

    def observe(self, split: str, record: Record, now: float) -> None:
        strategy = self.node.watermark_strategy
        if strategy is None:
            return
        if strategy.timestamp_assigner is not None:
            record.timestamp = float(strategy.timestamp_assigner(record.value, record.timestamp))
        if record.timestamp is not None and record.timestamp > self.max_ts.get(split, -math.inf):
            self.max_ts[split] = record.timestamp
        self.last_seen[split] = now

    def advance(self, now: float) -> float:
        current = getattr(self.node.source, "current_watermark", None)
        if current is not None:  # a source that knows its watermark (the key-group exchange)
            self.watermark = current(now)
            return self.watermark
        strategy = self.node.watermark_strategy
        if strategy is None:
            return self.watermark
        if self.started is None:
            self.started = now
        idle = strategy.idleness
        candidates = list(self.max_ts)
        listed = getattr(self.node.source, "splits", None)
        if listed is not None:
            current = set(listed())
            candidates = [s for s in candidates if s in current]  # finished splits drop out
            unseen = current - set(self.max_ts)
            # a split that has sent nothing yet holds the watermark back (for the idleness
            # timeout, when one is set, counted from the start)
            if unseen and (idle is None or now - self.started < idle):
                return self.watermark
        active = [s for s in candidates
                  if idle is None or now - self.last_seen.get(s, now) < idle]
        if active:
            candidate = min(self.max_ts[s] for s in active) - strategy.out_of_orderness - 0.001
            self.watermark = max(self.watermark, candidate)
        return self.watermark


class JobRunner:
    def __init__(self, graph: JobGraph, job_name: str) -> None:
        self.graph = graph
        self.job_name = job_name
        self.nodes = list(graph.nodes)  # built in order: inputs always come first
        self.sources = {n.index: _SourceState(n) for n in self.nodes if n.source is not None}
        self.watermarks: dict[int, float] = {n.index: MIN_WATERMARK for n in self.nodes}
        self._stop = False
        self.result = JobResult(job_name)
        self._checkpoint_id = 0
        self._last_checkpoint = 0.0
        self._writer: threading.Thread | None = None
        self._writer_error: BaseException | None = None
        #: checkpoint files whose background write failed (a round containing one is
        #: not committed; see CheckpointRounds.commit_when_written)
        self.failed_writes: set[Path] = set()
        self._last_memory_check = 0.0

    def stop(self) -> None:
        """Ask the job to stop after the current step (and a final checkpoint)."""
        self._stop = True

    def run(self, max_seconds: float | None = None,
            until: Callable[[], bool] | None = None) -> JobResult:
        started = time.monotonic()
        self.open()
        clean = False
        try:
            while not self._stop:
                if max_seconds is not None and time.monotonic() - started >= max_seconds:
                    break
                if until is not None and until():
                    break
                polled, finished = self.advance()
                if finished:
                    break
                if not polled:
                    self.wait_for_input(IDLE_WAIT_SECONDS)
            clean = True
        finally:
            # after a failure the state may hold half a step: never checkpoint it
            self.close(final_checkpoint=clean)
        self.result.seconds = time.monotonic() - started
        return self.result

    def sources_now(self) -> list[Source]:
        """The job's sources (what :meth:`wait_for_input` waits on)."""
        return [n.source for n in self.nodes if n.source is not None]

    def wait_for_input(self, timeout: float) -> None:
        """After a step that polled nothing: until a source may have records (at most
        ``timeout``; a short sleep for sources that cannot say)."""
        wait_for_input(self.sources_now(), timeout, IDLE_SLEEP_SECONDS)

    # The step-wise interface, for drivers that interleave several runners (parallel
    # workers run one runner per leased shard).
    def open(self, restore_id: int | None = None, *, restore: bool = True,
             initial_checkpoint: bool = True) -> None:
        """Open sources and operators and restore a checkpoint: the latest, or with
        ``restore_id`` that one (a round of checkpoints a coordinator committed; newer
        ones were never committed and are dropped). ``restore`` False starts empty (a
        coordinator that committed no round yet). ``initial_checkpoint``: checkpoint the
        restored or empty state at once (a coordinator does that in its own round)."""
        for node in self.nodes:
            if node.operator is not None:
                node.operator.uid = node.uid
                node.operator.properties = self.graph.properties
                node.operator.clock = self.graph.clock
                node.operator.checkpointed = self.graph.checkpoint_dir is not None
        for node in self.nodes:
            part = node.source or node.operator
            assert part is not None  # a node is a source or an operator
            part.open()
        if restore:
            self._restore(restore_id)
        elif self.graph.checkpoint_dir is not None and self.graph.checkpoint_dir.exists():
            for stale in checkpoint_files(self.graph.checkpoint_dir):
                stale.unlink(missing_ok=True)  # written by a round that never committed
        if initial_checkpoint and self.graph.checkpoint_dir and \
                self.result.restored_from is None:
            # a first checkpoint of the empty state: a crash before the first interval
            # then restarts from here (and truncates file sinks) instead of duplicating
            self.checkpoint()
        self._last_checkpoint = time.monotonic()

    def advance(self) -> tuple[int, bool]:
        """One step (and a checkpoint when due): (records polled, bounded input done)."""
        started = time.perf_counter()
        polled = self._step(final=False)
        if polled:
            self.result.busy_seconds += time.perf_counter() - started
            if self.graph.memory_limit_mb and \
                    started - self._last_memory_check >= MEMORY_CHECK_SECONDS:
                self._last_memory_check = started
                self._check_memory()
        if self._bounded_done():
            self._step(final=True)
            return polled, True
        if self.graph.checkpoint_dir and time.monotonic() - self._last_checkpoint >= \
                self.graph.checkpoint_interval:
            self.checkpoint(wait=False)
        return polled, False

    def _check_memory(self) -> None:
        used = resident_mb()
        if used <= self.graph.memory_limit_mb:
            return
        stateful = [n.uid for n in self.nodes if n.operator is not None and (
                    n.operator.snapshot_is_costly or n.operator.snapshot() is not None)]
        raise StateMemoryError(
            f"job {self.job_name!r} uses {used:,.0f} MiB, over its memory limit of "
            f"{self.graph.memory_limit_mb:,.0f} MiB. forestream keeps all state in memory (there "
            f"is no spilling backend yet); stateful operators: {', '.join(stateful) or 'none'}. "
            "Clear state of idle keys (timers), reduce key cardinality, raise the limit "
            "(FORESTREAM_MEMORY_LIMIT_MB or memory_limit_mb=), or run with more parallelism. "
            "The last checkpoint is intact.")

    def close(self, final_checkpoint: bool = True) -> None:
        """A last checkpoint (unless told otherwise), then close everything."""
        try:
            if final_checkpoint and self.graph.checkpoint_dir:
                self.checkpoint()
            else:
                self.wait_for_checkpoint()
        finally:
            for node in self.nodes:
                part = node.source or node.operator
                assert part is not None  # a node is a source or an operator
                part.close()
            self.result.operator_records = {
                n.uid: (n.operator.records_in, n.operator.records_out)
                for n in self.nodes if n.operator is not None}

    # ---------------------------------------------------------------------- steps
    def _step(self, final: bool) -> int:
        outputs: dict[int, Collector] = {}
        now = self.graph.clock()
        polled = 0
        for node in self.nodes:
            out = Collector()
            if node.source is not None:
                state = self.sources[node.index]
                if not final:
                    for split, record in node.source.poll(self.graph.batch_size):
                        state.observe(split, record, now)
                        out.main.append(record)
                    polled += len(out.main)
                self.watermarks[node.index] = math.inf if final else state.advance(now)
            else:
                op = node.operator
                assert op is not None  # a node that is not a source is an operator
                records = []
                per_input = []
                for i, upstream in enumerate(node.inputs):
                    produced = outputs[upstream.index]
                    batch = produced.side.get(node.side, []) if node.side else produced.main
                    if len(node.inputs) > 1:  # keep ids unique across the inputs
                        batch = [Record(r.value, r.timestamp, r.key, f"{r.rid}|{i}")
                                 for r in batch]
                    per_input.append(batch)
                    records += batch
                op.records_in += len(records)
                if getattr(op, "two_input", False):  # joins and connected streams
                    if records:
                        cast(TwoInputOperator, op).process_inputs(
                            per_input[0], per_input[1], out)
                elif records:
                    op.process(records, out)
                incoming = min(self.watermarks[u.index] for u in node.inputs)
                if incoming > op.watermark:
                    op.watermark = incoming
                    op.on_watermark(incoming, out)
                op.on_processing_time(now, out)
                if final:
                    op.finish(out)
                op.records_out += len(out.main)
                self.watermarks[node.index] = op.output_watermark(incoming)
            outputs[node.index] = out
        self.result.steps += 1
        self.result.records_in += polled
        return polled

    def _bounded_done(self) -> bool:
        return all(s.bounded and s.finished() for s in
                   (n.source for n in self.nodes if n.source is not None))

    # ---------------------------------------------------------------- checkpoints
    def checkpoint(self, wait: bool = True, checkpoint_id: int | None = None,
                   start_writer: bool = True) -> Path:
        """Snapshot now; the file is written in the background (``wait``: and is in place
        when this returns). ``checkpoint_id``: the number a coordinator gives its round
        (default: the next of this runner's own). ``start_writer=False``: the writer
        thread (:meth:`pending_write`) is left for the caller to start — a round starts
        its writers once every runner has taken its snapshot, so that they do not contend
        with the snapshots still being taken. Raises what a previous background write
        raised."""
        started = time.monotonic()
        self.wait_for_checkpoint()
        directory = self.graph.checkpoint_dir
        assert directory is not None  # only jobs with a checkpoint folder checkpoint
        directory.mkdir(parents=True, exist_ok=True)
        self._checkpoint_id = self._checkpoint_id + 1 if checkpoint_id is None \
            else checkpoint_id
        snapshot: dict[str, Any] = {
            "job": self.job_name, "id": self._checkpoint_id,
            "graph": [n.uid for n in self.nodes],
            "sources": {n.uid: n.source.snapshot() for n in self.nodes if n.source},
            "source_time": {n.uid: (self.sources[n.index].max_ts,
                                    self.sources[n.index].watermark)
                            for n in self.nodes if n.source is not None},
            "operators": {n.uid: (n.operator.snapshot(), n.operator.watermark)
                          for n in self.nodes if n.operator},
            "watermarks": dict(self.watermarks),
        }
        # states an operator hands over as Deferred are produced on the writer's thread;
        # the rest is pickled now, before the job changes it
        deferred = {uid: state for uid, (state, _) in snapshot["operators"].items()
                    if isinstance(state, Deferred)}
        for uid in deferred:
            snapshot["operators"][uid] = (None, snapshot["operators"][uid][1])
        blob = pickle.dumps(snapshot, protocol=pickle.HIGHEST_PROTOCOL)
        path = directory / f"checkpoint-{self._checkpoint_id:08d}.pkl"
        self._last_checkpoint = time.monotonic()
        self._writer = threading.Thread(target=self._write,
                                        args=(path, blob, deferred, started),
                                        name=f"checkpoint-{self._checkpoint_id}", daemon=True)
        if start_writer or wait:
            self._writer.start()
        if wait:
            self.wait_for_checkpoint()
        return path

    def pending_write(self) -> threading.Thread | None:
        """The thread writing the last checkpoint, while it writes (for coordinators)."""
        return self._writer

    def wait_for_checkpoint(self) -> None:
        """Until the checkpoint being written (if any) is in place."""
        if self._writer is not None:
            if self._writer.ident is None:  # left for a round to start, which did not
                self._writer.start()
            self._writer.join()
            self._writer = None
        if self._writer_error is not None:
            error, self._writer_error = self._writer_error, None
            raise error

    def _write(self, path: Path, blob: bytes, deferred: dict[str, Deferred],
               started: float) -> None:
        """Produce the deferred states, compress, write durably (temp file, fsync, rename,
        fsync the folder), prune."""
        try:
            lower_this_thread(WRITER_NICENESS)
            with _ONE_WRITE_AT_A_TIME:
                self._write_now(path, blob, deferred, started)
        except BaseException as exc:  # raised on the processing thread at the next wait
            self.failed_writes.add(path)
            self._writer_error = exc

    def _write_now(self, path: Path, blob: bytes, deferred: dict[str, Deferred],
                   started: float) -> None:
        produced = {uid: d.produce() for uid, d in deferred.items()}
        size = 0

        def write(out: BinaryIO) -> None:
            # streamed: the pickle's large parts (a forest's bytes) go to the compressor
            # as they are, and its output to the file, with no whole copy in between
            nonlocal size
            out.write(CHECKPOINT_MAGIC)
            with zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(
                    out, closefd=False) as frame:
                frame.write(len(blob).to_bytes(8, "little"))
                frame.write(blob)
                pickle.dump(produced, frame, protocol=pickle.HIGHEST_PROTOCOL)
            size = out.tell()

        write_atomically_with(path, write)
        for old in checkpoint_files(path.parent)[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
        self.result.checkpoints += 1
        self.result.last_checkpoint_seconds = time.monotonic() - started
        self.result.last_checkpoint_bytes = size

    def _restore(self, checkpoint_id: int | None) -> None:
        directory = self.graph.checkpoint_dir
        if directory is None or not directory.exists():
            return
        for pattern in (".checkpoint-*.tmp", "checkpoint-*.tmp"):  # writes a crash cut short
            for torn in directory.glob(pattern):
                torn.unlink(missing_ok=True)
        candidates = checkpoint_files(directory)
        if checkpoint_id is not None:
            wanted = directory / f"checkpoint-{checkpoint_id:08d}.pkl"
            newer = [p for p in candidates if _number(p) > checkpoint_id]
            for stale in newer:  # a round that never committed
                stale.unlink(missing_ok=True)
            if not wanted.exists():
                if any(_number(p) < checkpoint_id for p in candidates):
                    raise ValueError(f"{directory} has no checkpoint {checkpoint_id}, the "
                                     "committed round, but older ones: start the "
                                     "application with restore SKIP")
                return  # this part did not exist yet at that round: it starts empty
            candidates = [wanted]
        if not candidates:
            return
        snapshot = read_checkpoint(candidates[-1])
        graph = [n.uid for n in self.nodes]
        if snapshot["graph"] != graph:
            raise ValueError(f"checkpoint {candidates[-1]} was taken from a different job "
                             f"graph ({snapshot['graph']} vs {graph}); start with an empty "
                             "checkpoint directory or restore the original program")
        for node in self.nodes:
            if node.source is not None:
                node.source.restore(snapshot["sources"][node.uid])
                state = self.sources[node.index]
                state.max_ts, state.watermark = snapshot["source_time"][node.uid]
            else:
                op_state, watermark = snapshot["operators"][node.uid]
                assert node.operator is not None  # a node is a source or an operator
                node.operator.restore(op_state)
                node.operator.watermark = watermark
        self.watermarks = {int(k): v for k, v in snapshot["watermarks"].items()}
        self._checkpoint_id = snapshot["id"]
        self.result.restored_from = snapshot["id"]
