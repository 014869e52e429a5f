"""Checkpoint rounds: consistent checkpoints of several runners that exchange records in
memory.

When one worker runs every stage of a keyed job (parallelism 1), its read stages hand
records to its key groups in memory (:class:`~.exchange.LocalExchange`) instead of
through the durable exchange stream. A checkpoint of one runner alone is then not enough
to restart from: what a read stage had read but a key group not yet processed would be
lost. So the worker takes checkpoints in *rounds*, as Flink's checkpoint barriers do:
between two steps, with every in-memory queue empty, every runner snapshots under the
same round number; once all their files are on disk the round is *committed* by writing
its number to ``checkpoints/committed.json``. A restart restores every runner from the
committed round (newer files, of a round cut short, are dropped). Actions that must not
run before the state they follow is safe — marking a finished source shard as done —
wait for the commit of the round that holds it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path

from forestream.durable import write_atomically

from .runtime import checkpoint_files

COMMITTED_FILE = "committed.json"


def committed_round(checkpoints: Path) -> int | None:
    """The round last committed under ``checkpoints``, or None."""
    try:
        return int(json.loads((checkpoints / COMMITTED_FILE).read_text())["round"])
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{checkpoints / COMMITTED_FILE} is unreadable ({exc}); start the "
                         "application with restore SKIP") from None


def write_committed(checkpoints: Path, round_id: int) -> None:
    checkpoints.mkdir(parents=True, exist_ok=True)
    write_atomically(checkpoints / COMMITTED_FILE, json.dumps({"round": round_id}) + "\n")


def latest_checkpoint_id(checkpoints: Path) -> int:
    """The highest checkpoint number in any runner folder under ``checkpoints``."""
    highest = 0
    for folder in [checkpoints, *(p for p in checkpoints.glob("*") if p.is_dir())]:
        for path in checkpoint_files(folder):
            number = path.stem.rpartition("-")[2]
            if number.isdigit():
                highest = max(highest, int(number))
    return highest


class CheckpointRounds:
    """Numbers, commits and waits for rounds under one ``checkpoints`` folder."""

    def __init__(self, checkpoints: Path, interval: float) -> None:
        self.checkpoints = checkpoints
        self.interval = interval
        self.committed = committed_round(checkpoints)
        self.current = max(self.committed or 0, latest_checkpoint_id(checkpoints))
        self._deferred: list[tuple[int, Callable[[], None]]] = []
        self._committer: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def next_round(self) -> int:
        """A new round number (above every file already on disk)."""
        self.wait()
        self.current += 1
        return self.current

    def commit_when_written(self, round_id: int, writers: list[threading.Thread],
                            wait: bool = False,
                            succeeded: Callable[[], bool] = lambda: True) -> None:
        """Commit ``round_id`` once its runners' background writes (``writers``) are done
        (on a thread of its own unless ``wait``), and only if ``succeeded()`` says every
        one of them wrote its file: a round committed without one runner's checkpoint
        would restore that runner from an older state, or from nothing, while the sources
        resume from the round's positions."""
        def commit() -> None:
            for writer in writers:
                writer.join()
            if not succeeded():  # surfaced to the processing thread by wait()
                self._error = OSError(f"checkpoint round {round_id} not committed: a "
                                      "checkpoint file of it was not written")
                return
            try:
                write_committed(self.checkpoints, round_id)
            except BaseException as exc:  # surfaced to the processing thread by wait()
                self._error = exc
                return
            with self._lock:
                self.committed = round_id
        if wait:
            commit()
            self._raise()
            return
        self._committer = threading.Thread(target=commit, name=f"commit-round-{round_id}",
                                           daemon=True)
        self._committer.start()

    def defer(self, action: Callable[[], None]) -> None:
        """Run ``action`` once the next round to be taken is committed."""
        self._deferred.append((self.current + 1, action))

    def run_committed(self) -> None:
        """Run the deferred actions whose round has been committed (processing thread)."""
        self._raise()
        with self._lock:
            committed = self.committed or 0
        due = [a for r, a in self._deferred if r <= committed]
        self._deferred = [(r, a) for r, a in self._deferred if r > committed]
        for action in due:
            action()

    def wait(self) -> None:
        """Until the round being committed (if any) is committed."""
        if self._committer is not None:
            self._committer.join()
            self._committer = None
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
