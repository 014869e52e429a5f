"""Files of managed applications: checkpoints, snapshots, exchange streams, leases,
worker statuses and the log (a mixin of :class:`~.applications.ApplicationManager`)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forestream.names import UnsafeName, child_path, shorten

from .checkpoint_rounds import COMMITTED_FILE, committed_round
from .errors import NotFoundError
from .exchange import EXCHANGE_FILE
from .runtime import checkpoint_files

JOB_PART = "job"  # a snapshot's file for a single-worker job; parallel jobs: one per shard


class AppFiles:
    """Needs ``self.root`` (the apps folder), ``self.delete_stream`` and ``self._get``
    from the manager."""

    if TYPE_CHECKING:  # the manager's (ApplicationManager)
        root: Path
        delete_stream: Callable[[str], object] | None

        def _get(self, name: str, missing_ok: bool = False) -> dict[str, Any] | None: ...

    def _reset_leases(self, name: str) -> None:
        """Forget who read what: the checkpoints now say where each shard stands."""
        for path in (self.root / name).glob("leases*.db*"):
            path.unlink(missing_ok=True)

    def _log(self, name: str, line: str) -> None:
        folder = self.root / name / "logs"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "worker.log").open("a") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    def _latest_checkpoints(self, name: str) -> dict[str, Path]:
        """The newest checkpoint of the job (``job``) or of each shard (parallel); where a
        worker checkpoints in rounds, those of the last committed round."""
        root = self.root / name / "checkpoints"
        committed = committed_round(root) if root.is_dir() else None
        found = {}
        for folder, part in [(root, JOB_PART)] + [(d, d.name) for d in sorted(root.glob("*"))
                                                  if d.is_dir()]:
            files = checkpoint_files(folder)
            if committed is not None:
                files = [f for f in files if f.name == f"checkpoint-{committed:08d}.pkl"]
            if files:
                found[part] = files[-1]
        return found

    def _settle_rounds(self, name: str) -> None:
        """Before workers that checkpoint on their own (parallelism above 1): keep each
        folder's checkpoints up to the last committed round (newer ones were never
        committed), and forget the round."""
        root = self.root / name / "checkpoints"
        committed = committed_round(root) if root.is_dir() else None
        if committed is None:
            return
        for folder in [d for d in root.glob("*") if d.is_dir()]:
            for path in checkpoint_files(folder):
                number = path.stem.rpartition("-")[2]
                if number.isdigit() and int(number) > committed:
                    path.unlink(missing_ok=True)
        (root / COMMITTED_FILE).unlink(missing_ok=True)

    def _copy_snapshot(self, name: str, snapshot: str) -> None:
        target = self.root / name / "snapshots" / snapshot
        tmp = target.with_name(f".{snapshot}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for part, path in self._latest_checkpoints(name).items():
            shutil.copy2(path, tmp / f"{part}.pkl")
        exchange = self.root / name / "checkpoints" / EXCHANGE_FILE
        if exchange.exists():
            shutil.copy2(exchange, tmp / EXCHANGE_FILE)
        os.replace(tmp, target)

    def _drop_unused_exchanges(self, name: str, keep: bool = True) -> None:
        """Delete exchange streams that neither the checkpoints nor a snapshot refer to
        (all of them when ``keep`` is false). Every one ever used is listed in
        ``exchanges.txt``."""
        app_dir = self.root / name
        known, referenced = self._exchanges(name)
        if self.delete_stream is None:
            return  # nothing can delete them here: keep them listed
        for stream in sorted(known - referenced if keep else known):
            try:
                self.delete_stream(stream)
            except Exception as exc:  # already gone: nothing to do
                if "NotFound" not in type(exc).__name__ + str(exc):
                    raise
            known.discard(stream)
        if app_dir.exists():
            (app_dir / "exchanges.txt").write_text("".join(f"{s}\n" for s in sorted(known)))

    def _exchanges(self, name: str) -> tuple[set[str], set[str]]:
        """(every exchange stream the application has used, those still referred to),
        recording new ones in ``exchanges.txt``."""
        app_dir = self.root / name
        ledger = app_dir / "exchanges.txt"
        referenced = set()
        for path in [app_dir / "checkpoints" / EXCHANGE_FILE,
                     *(app_dir / "snapshots").glob(f"*/{EXCHANGE_FILE}")]:
            try:
                referenced.add(json.loads(path.read_text())["stream"])
            except (OSError, ValueError, KeyError):
                continue
        known = set(ledger.read_text().split()) if ledger.exists() else set()
        if referenced - known and app_dir.exists():
            known |= referenced
            ledger.write_text("".join(f"{s}\n" for s in sorted(known)))
        return known, referenced

    def _snapshot_path(self, name: str, snapshot: str | None) -> Path:
        self._get(name)
        folder = self.root / name / "snapshots"
        try:
            path = child_path(folder, snapshot, "snapshot name")
        except UnsafeName:
            path = None
        if path is None or not path.is_dir():
            raise NotFoundError(f"application {name} has no snapshot {shorten(snapshot)}")
        return path

    def _read_status(self, name: str) -> dict | None:
        """The first worker's status; with parallel workers, all of them under
        ``workers`` and their records summed."""
        statuses = []
        for path in sorted((self.root / name).glob("status*.json")):
            try:
                statuses.append(json.loads(path.read_text()))
            except (OSError, ValueError):
                continue
        if not statuses:
            return None
        statuses.sort(key=lambda status: status.get("worker", 0))
        if len(statuses) == 1:
            return statuses[0]
        return {**statuses[0], "workers": statuses,
                "records_in": sum(s.get("records_in", 0) for s in statuses)}
