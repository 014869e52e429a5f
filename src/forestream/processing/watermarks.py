"""Event time: timestamp assigners and bounded-out-of-orderness watermarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class WatermarkStrategy:
    """How event time is read from records and how far behind it the watermark trails.

    >>> strategy = (WatermarkStrategy.for_bounded_out_of_orderness(5.0)
    ...             .with_timestamp_assigner(lambda event, ts: event["time"])
    ...             .with_idleness(30.0))
    >>> strategy.out_of_orderness, strategy.idleness
    (5.0, 30.0)
    """

    out_of_orderness: float = 0.0
    timestamp_assigner: Callable[[Any, float | None], float] | None = None
    idleness: float | None = None

    @staticmethod
    def for_bounded_out_of_orderness(seconds: float) -> WatermarkStrategy:
        if seconds < 0:
            raise ValueError(f"out-of-orderness must be >= 0 seconds, got {seconds}")
        return WatermarkStrategy(out_of_orderness=float(seconds))

    @staticmethod
    def for_monotonous_timestamps() -> WatermarkStrategy:
        return WatermarkStrategy(out_of_orderness=0.0)

    def with_timestamp_assigner(self, assigner: Callable[[Any, float | None], float]
                                ) -> WatermarkStrategy:
        """``assigner(value, source_timestamp) -> event time in seconds``."""
        return replace(self, timestamp_assigner=assigner)

    def with_idleness(self, seconds: float) -> WatermarkStrategy:
        """A source split silent for this long (wall clock) stops holding the watermark."""
        if seconds <= 0:
            raise ValueError(f"idleness must be > 0 seconds, got {seconds}")
        return replace(self, idleness=float(seconds))
