"""Autoscaling of an application's parallelism, as Managed Service for Apache Flink does it.

Managed Flink scales an application up when its CPU utilization stays at 75% or more for
15 minutes and down when it stays under 10% for six hours. Here utilization is the share
of wall time the workers spend in steps that had records to process (their
``busy_seconds``; a worker that is always busy is at 1.0), averaged over the workers and
over the window. With the defaults, a sustained 75% for 15 minutes doubles the
parallelism (up to ``max_parallelism``, the application's key groups and, for a job
without ``key_by``, its source shards); a sustained 10% for 6 hours halves it (down to
``min_parallelism``). Rescaling restarts the workers from their checkpoints with the new
count — keyed state is laid out in key groups, so nothing is lost — and the window starts
again, so each decision rests on a full window at the new parallelism.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

from .app_config import DEFAULT_MAX_PARALLELISM, MAX_PARALLELISM
from .errors import ApplicationError


class AutoscalingConfigError(ApplicationError, ValueError):
    """An autoscaling setting is unknown or out of range."""


@dataclass(frozen=True)
class AutoscalingPolicy:
    enabled: bool = False
    min_parallelism: int = 1
    max_parallelism: int = 64
    scale_up_utilization: float = 0.75
    scale_up_after_seconds: float = 900.0
    scale_down_utilization: float = 0.10
    scale_down_after_seconds: float = 21600.0

    @classmethod
    def from_dict(cls, raw: dict | None) -> AutoscalingPolicy:
        """Validate a JSON object of settings (missing ones take the defaults)."""
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise AutoscalingConfigError(f"autoscaling must be an object of settings, got "
                                         f"{raw!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise AutoscalingConfigError(f"unknown autoscaling setting(s) {unknown}; known: "
                                         f"{sorted(known)}")
        policy = cls(**raw)
        policy.check()
        return policy

    def check(self) -> None:
        if not isinstance(self.enabled, bool):
            raise AutoscalingConfigError(f"autoscaling enabled must be true or false, got "
                                         f"{self.enabled!r}")
        for name in ("min_parallelism", "max_parallelism"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
                raise AutoscalingConfigError(f"autoscaling {name} must be an integer in "
                                             f"[1, 64], got {value!r}")
        if self.min_parallelism > self.max_parallelism:
            raise AutoscalingConfigError(
                f"autoscaling min_parallelism {self.min_parallelism} is above "
                f"max_parallelism {self.max_parallelism}")
        for name in ("scale_up_utilization", "scale_down_utilization"):
            value = getattr(self, name)
            if not _number(value) or not 0 < value <= 1:
                raise AutoscalingConfigError(f"autoscaling {name} must be in (0, 1], got "
                                             f"{value!r}")
        if self.scale_down_utilization >= self.scale_up_utilization:
            raise AutoscalingConfigError(
                f"autoscaling scale_down_utilization {self.scale_down_utilization} must be "
                f"below scale_up_utilization {self.scale_up_utilization}")
        for name in ("scale_up_after_seconds", "scale_down_after_seconds"):
            value = getattr(self, name)
            if not _number(value) or not 1 <= value <= 7 * 86400:
                raise AutoscalingConfigError(f"autoscaling {name} must be in [1, 604800] "
                                             f"seconds, got {value!r}")

    def to_dict(self) -> dict:
        return asdict(self)


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and \
        math.isfinite(value)


class UtilizationTracker:
    """Samples the workers' busy time and answers "how busy over the last N seconds?"."""

    def __init__(self) -> None:
        self.samples: deque[tuple[float, float]] = deque()  # (time, utilization)
        self.started: float | None = None
        self._last: dict[int, tuple[float, float]] = {}  # pid -> (time, busy_seconds)

    def observe(self, now: float, workers: list[dict], keep_seconds: float) -> None:
        """One sample from the workers' latest statuses (restarted workers start at 0)."""
        if self.started is None:
            self.started = now
        busy, elapsed = 0.0, 0.0
        seen = {}
        for status in workers:  # a restarted worker is a new process, counting from 0
            pid = int(status.get("pid", 0))
            value = float(status.get("busy_seconds", 0.0))
            at = float(status.get("updated", now))
            seen[pid] = (at, value)
            before = self._last.get(pid)
            if before is None or at <= before[0]:
                continue
            busy += value - before[1] if value >= before[1] else value
            elapsed += at - before[0]
        self._last = seen
        if elapsed > 0:
            self.samples.append((now, min(1.0, busy / elapsed)))
        while self.samples and self.samples[0][0] < now - keep_seconds:
            self.samples.popleft()

    def mean_over(self, now: float, seconds: float) -> float | None:
        """Mean utilization over the last ``seconds``; None until that long is covered."""
        if self.started is None or now - self.started < seconds:
            return None
        window = [u for t, u in self.samples if t >= now - seconds]
        return sum(window) / len(window) if window else None


def decide(policy: AutoscalingPolicy, parallelism: int, ceiling: int,
           tracker: UtilizationTracker, now: float) -> tuple[int, str] | None:
    """The new parallelism and why, or None to stay."""
    if not policy.enabled:
        return None
    top = max(policy.min_parallelism, min(policy.max_parallelism, ceiling))
    busy = tracker.mean_over(now, policy.scale_up_after_seconds)
    if busy is not None and busy >= policy.scale_up_utilization and parallelism < top:
        return (min(top, parallelism * 2),
                f"utilization {busy:.0%} >= {policy.scale_up_utilization:.0%} for "
                f"{policy.scale_up_after_seconds:g} s")
    quiet = tracker.mean_over(now, policy.scale_down_after_seconds)
    if quiet is not None and quiet < policy.scale_down_utilization and \
            parallelism > policy.min_parallelism:
        return (max(policy.min_parallelism, math.ceil(parallelism / 2)),
                f"utilization {quiet:.0%} < {policy.scale_down_utilization:.0%} for "
                f"{policy.scale_down_after_seconds:g} s")
    if parallelism > top:  # e.g. the ceiling went down
        return top, f"above the ceiling of {top}"
    return None


class Autoscaler:
    """The manager's side (a mixin of :class:`~.applications.ApplicationManager`): called
    by its supervisor for each running application, under its lock."""

    if TYPE_CHECKING:  # the manager's (ApplicationManager, AppFiles)
        _trackers: dict[str, UtilizationTracker]

        def _get(self, name: str, missing_ok: bool = False) -> dict[str, Any] | None: ...

        def _read_status(self, name: str) -> dict | None: ...

        def _set_status(self, doc: dict, status: str) -> None: ...

        def _log(self, name: str, line: str) -> None: ...

        def _terminate(self, name: str, take_snapshot: bool, force: bool = False) -> None: ...

        def _put(self, doc: dict) -> None: ...

        def _start(self, doc: dict) -> None: ...

    def _autoscale(self, name: str) -> None:
        """Sample the workers' utilization; rescale when the policy says so."""
        doc = self._get(name, missing_ok=True)
        if doc is None or doc["status"] != "RUNNING":
            return
        policy = AutoscalingPolicy.from_dict(doc.get("autoscaling"))
        if not policy.enabled:
            return
        status = self._read_status(name)
        workers = (status.get("workers") or [status]) if status else []
        if len(workers) != doc["parallelism"] or any("shards" not in w for w in workers):
            return  # not every worker has reported, or a job that runs in one process
        tracker = self._trackers.setdefault(name, UtilizationTracker())
        now = time.time()
        if tracker.samples and now - tracker.samples[-1][0] < min(
                5.0, policy.scale_up_after_seconds / 20):
            return
        tracker.observe(now, workers, keep_seconds=max(policy.scale_up_after_seconds,
                                                       policy.scale_down_after_seconds))
        # more workers than key groups (or, without key_by, than open source shards) idle
        ceiling = doc.get("max_parallelism", DEFAULT_MAX_PARALLELISM)
        if not any(w.get("key_groups") for w in workers):
            ceiling = min(ceiling, max(w.get("open_source_shards") or 1 for w in workers))
        decision = decide(policy, doc["parallelism"], min(MAX_PARALLELISM, ceiling),
                          tracker, now)
        if decision is None:
            return
        new, reason = decision
        self._set_status(doc, "AUTOSCALING")
        self._log(name, f"autoscaling from parallelism {doc['parallelism']} to {new}: {reason}")
        self._terminate(name, take_snapshot=False)
        doc["autoscaling_events"] = (doc.get("autoscaling_events") or [])[-19:] + [
            {"time": now, "from": doc["parallelism"], "to": new, "reason": reason}]
        doc["parallelism"] = new
        self._put(doc)
        self._trackers.pop(name, None)
        self._start(doc)
