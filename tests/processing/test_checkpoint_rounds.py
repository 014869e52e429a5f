"""Checkpoint rounds (a worker's key groups checkpointed under one number, committed once
every file is written): a round is committed only when every one of its files was
written, and its writers start once every snapshot is taken."""

from __future__ import annotations

import pytest

from forestream.processing import JobRunner, Sink, StreamExecutionEnvironment
from forestream.processing.checkpoint_rounds import CheckpointRounds, committed_round
from forestream.processing.operators import Deferred


class _Totals(Sink):
    """Keeps a running total; its state is produced on the writer's thread, and that
    fails while ``broken`` (as serializing large state may: out of memory, say)."""

    broken = False

    def __init__(self) -> None:
        self.total = 0

    def write(self, records):
        self.total += sum(r.value for r in records)

    def snapshot(self):
        def produce():
            if _Totals.broken:
                raise MemoryError("no memory to serialize the state")
            return self.total
        return Deferred(produce)

    def restore(self, state):
        self.total = state


def _runner(folder, name: str) -> JobRunner:
    env = StreamExecutionEnvironment(checkpoint_dir=folder / name, checkpoint_interval=3600)
    env.from_collection(list(range(10))).sink_to(_Totals())
    runner = JobRunner(env.graph, name)
    runner.open(restore=False, initial_checkpoint=False)
    runner.advance()
    return runner


def _round(rounds: CheckpointRounds, runners: list[JobRunner]) -> int:
    """What a worker's round does (ParallelWorker.take_round)."""
    round_id = rounds.next_round()
    written = [(r, r.checkpoint(wait=False, checkpoint_id=round_id, start_writer=False))
               for r in runners]
    writers = [w for r in runners if (w := r.pending_write()) is not None]
    assert all(w.ident is None for w in writers)  # none started before every snapshot
    for writer in writers:
        writer.start()
    rounds.commit_when_written(
        round_id, writers,
        succeeded=lambda: all(path not in r.failed_writes for r, path in written))
    return round_id


def test_a_round_with_a_checkpoint_file_not_written_is_not_committed(tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    runners = [_runner(folder, "keygroup-a"), _runner(folder, "keygroup-b")]
    rounds = CheckpointRounds(folder, interval=3600)
    first = _round(rounds, runners)
    rounds.wait()
    assert committed_round(folder) == first

    monkeypatch.setattr(_Totals, "broken", True)
    second = _round(rounds, runners)
    with pytest.raises(OSError, match=f"round {second} not committed"):
        rounds.wait()
    assert committed_round(folder) == first  # a restart restores the complete round
    with pytest.raises(MemoryError):  # and the runner reports its own failure too
        runners[0].wait_for_checkpoint()
