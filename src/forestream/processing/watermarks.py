"""Event time: timestamp assigners and bounded-out-of-orderness watermarks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any


@dataclass(frozen=True)
class WatermarkStrategy:
    """How event time is read from records and how far behind it the watermark trails.

    Event time is the time at which something happened, read from the record by the
    timestamp assigner; records may arrive out of that order. The watermark is the
    source's statement "no record older than this will come": the largest event time
    seen, less ``out_of_orderness`` (and a millisecond). Event-time windows, joins,
    timers and triggers act when the watermark passes their time, and a record older
    than the watermark is late. A larger bound waits longer for stragglers, at the
    cost of later results. Pass the strategy to a source
    (``env.from_collection(..., watermark_strategy=...)``, ``from_kinesis``,
    ``from_source``: then every split, e.g. a shard, has its own watermark and the
    source's is their minimum) or to :meth:`DataStream.assign_timestamps_and_watermarks
    <forestream.processing.DataStream.assign_timestamps_and_watermarks>`. Strategies are
    immutable: every ``with_…`` returns a new one.

    Parameters
    ----------
    out_of_orderness
        Seconds the watermark trails the largest event time seen
        (:meth:`for_bounded_out_of_orderness`; 0 for :meth:`for_monotonous_timestamps`).
    timestamp_assigner
        ``assigner(value, source_timestamp) -> event time in seconds``
        (:meth:`with_timestamp_assigner`); without one, records keep the source's
        timestamp (a Kinesis record's arrival time, a collection's ``timestamps``).
    idleness
        Seconds (wall clock) after which a split that sends nothing stops holding the
        watermark back (:meth:`with_idleness`); ``None``: never.

    Examples
    --------
    >>> from forestream.processing import WatermarkStrategy
    >>> strategy = (WatermarkStrategy.for_bounded_out_of_orderness(5.0)
    ...             .with_timestamp_assigner(lambda event, ts: event["time"])
    ...             .with_idleness(30.0))
    >>> strategy.out_of_orderness, strategy.idleness
    (5.0, 30.0)

    The event at 9 s arrives after the one at 12 s. With no allowance for disorder the
    watermark has passed 10 s by then, window ``[0, 10)`` has fired, and the event is
    dropped as late; with 5 seconds it is counted. (``batch_size=1`` moves the watermark
    after every record, as on a live stream.)

    >>> from forestream.processing import StreamExecutionEnvironment, TumblingEventTimeWindows
    >>> events = [{"t": t} for t in (1, 4, 12, 9, 15, 21)]
    >>> def counts_per_window(out_of_orderness):
    ...     strategy = (WatermarkStrategy.for_bounded_out_of_orderness(out_of_orderness)
    ...                 .with_timestamp_assigner(lambda event, _: event["t"]))
    ...     env = StreamExecutionEnvironment(batch_size=1)
    ...     counts = (env.from_collection(events, watermark_strategy=strategy)
    ...               .map(lambda event: 1)
    ...               .key_by(lambda one: "all")
    ...               .window(TumblingEventTimeWindows.of(10))
    ...               .reduce(lambda a, b: a + b)
    ...               .collect())
    ...     _ = env.execute()
    ...     return counts.values
    >>> counts_per_window(0)
    [2, 2, 1]
    >>> counts_per_window(5)
    [3, 2, 1]
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
