"""Helpers shared by the ``forestream.processing`` tests (a plain module, not a conftest).

``ScriptedSource`` hands out one scripted batch per poll, each record tagged with a split,
so tests control exactly which records arrive in which runtime step and on which split.
``FakeClock`` is passed as the environment's ``clock`` and advanced by ``StepLimit`` (the
``until=`` callable) before every step, so processing time and idleness are deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

from forestream.processing import (
    JobRunner,
    Source,
    StreamExecutionEnvironment,
    WatermarkStrategy,
)
from forestream.processing.records import Record


class ScriptedSource(Source):
    """``steps[i]`` is the batch the i-th poll returns: a list of ``(split, value)``.

    Unbounded unless ``bounded=True`` (then finished after the last scripted batch).
    Its splits are known only once they send (see :class:`SplitAwareSource`).
    """

    name = "scripted"

    def __init__(self, steps: list[list[tuple[str, Any]]], bounded: bool = False) -> None:
        self.steps = [list(batch) for batch in steps]
        self.bounded = bounded
        self.step = 0

    def poll(self, max_records):
        if self.step >= len(self.steps):
            self.step += 1
            return []
        batch = self.steps[self.step]
        self.step += 1
        return [(split, Record(value, None, None, f"{split}@{self.step}/{i}"))
                for i, (split, value) in enumerate(batch)]

    def finished(self):
        return self.step >= len(self.steps)

    def snapshot(self):
        return {"step": self.step}

    def restore(self, state):
        self.step = state["step"]


class SplitAwareSource(ScriptedSource):
    """A ScriptedSource that declares its splits up front through ``splits()``, as a
    Kinesis source does, so a split that has sent nothing yet holds the watermark back."""

    def __init__(self, steps: list[list[tuple[str, Any]]], splits: Iterable[str],
                 bounded: bool = False) -> None:
        super().__init__(steps, bounded)
        self._splits = list(splits)

    def splits(self) -> list[str]:
        return list(self._splits)


class FakeClock:
    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class StepLimit:
    """``until=`` callable: lets ``steps`` runtime steps run, advancing ``clock`` by
    ``tick`` before each, and calls ``on_step(i)`` (i = steps done so far) first."""

    def __init__(self, steps: int, clock: FakeClock | None = None, tick: float = 1.0,
                 on_step: Callable[[int], None] | None = None) -> None:
        self.steps = steps
        self.clock = clock
        self.tick = tick
        self.on_step = on_step
        self.calls = 0

    def __call__(self) -> bool:
        if self.on_step is not None:
            self.on_step(self.calls)
        if self.calls >= self.steps:
            return True
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.tick
        return False


def event_time(out_of_orderness: float = 0.0, field: Any = None,
               idleness: float | None = None) -> WatermarkStrategy:
    """Bounded-out-of-orderness watermarks with event time read from ``value[field]``
    (or the value itself when ``field`` is None)."""

    def assigner(value, ts):
        return value if field is None else value[field]

    strategy = WatermarkStrategy.for_bounded_out_of_orderness(out_of_orderness) \
        .with_timestamp_assigner(assigner)
    return strategy.with_idleness(idleness) if idleness is not None else strategy


def watermark_trace(env: StreamExecutionEnvironment, node_index: int, steps: int,
                    clock: FakeClock | None = None) -> tuple[JobRunner, list[float]]:
    """Run ``steps`` steps of ``env``'s job and return the watermark of node
    ``node_index`` after each step."""
    trace: list[float] = []
    runner = JobRunner(env.graph, "trace")

    def record(done: int) -> None:
        if done > 0:
            trace.append(runner.watermarks[node_index])

    runner.run(until=StepLimit(steps, clock, on_step=record))
    return runner, trace


def wm(max_timestamp: float, out_of_orderness: float = 0.0) -> float:
    """The watermark the engine derives from a maximum timestamp (Flink's -1 ms)."""
    if max_timestamp == -math.inf:
        return -math.inf
    return max_timestamp - out_of_orderness - 0.001
