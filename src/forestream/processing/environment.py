"""The DataStream API: an environment, streams, keyed streams — Flink's concepts, Pythonic.

Building a pipeline only records a graph; :meth:`StreamExecutionEnvironment.execute`
runs it (see :mod:`forestream.processing.runtime`). Every step has a position in the
graph that names its state in checkpoints, so a program restarted from a checkpoint must
build the same graph.

>>> from forestream.processing import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment()
>>> out = (env.from_collection([1, 2, 3, 4, 5])
...        .map(lambda x: x * 10).filter(lambda x: x != 30).collect())
>>> _ = env.execute()
>>> out.values
[10, 20, 40, 50]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .functions import KeyedProcessFunction, ProcessFunction
from .operators import (
    FilterOperator,
    FlatMapOperator,
    KeyByOperator,
    MapOperator,
    Operator,
    ProcessOperator,
    SinkOperator,
    TimestampsAndWatermarksOperator,
)
from .records import OutputTag
from .sinks import CallableSink, FileSink, ListSink, PrintSink, Sink
from .sources import CollectionSource, FileSource, GeneratorSource, Source
from .watermarks import WatermarkStrategy


@dataclass(eq=False)
class Node:
    """One vertex of the job graph: a source or an operator, and where its input comes
    from (``side`` picks a side output of the single input instead of its main output)."""

    index: int
    operator: Operator | None = None
    source: Source | None = None
    watermark_strategy: WatermarkStrategy | None = None
    inputs: list[Node] = field(default_factory=list)
    side: OutputTag | None = None
    label: str = ""

    @property
    def uid(self) -> str:
        kind = self.source.name if self.source else self.operator.name
        return f"{self.index}-{kind}"


def default_memory_limit_mb() -> float:
    """``FORESTREAM_MEMORY_LIMIT_MB``, else 75% of physical memory (0 where unknown)."""
    import os

    raw = os.environ.get("FORESTREAM_MEMORY_LIMIT_MB")
    if raw:
        try:
            return max(0.0, float(raw))
        except ValueError:
            raise ValueError(f"FORESTREAM_MEMORY_LIMIT_MB={raw!r} must be a number of MiB "
                             "(0 turns the limit off)") from None
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0.0
    return 0.75 * pages * size / 2**20


class StreamExecutionEnvironment:
    """Entry point: create sources, then ``execute`` the pipeline built on them.

    Parameters
    ----------
    properties
        Runtime properties (property groups) that functions read in ``open``.
    checkpoint_dir
        Where checkpoints go; a job started with an existing checkpoint resumes from it.
    checkpoint_interval
        Seconds between checkpoints (wall clock).
    batch_size
        Records polled per source per step: larger batches mean less per-record
        overhead, smaller ones lower latency.
    memory_limit_mb
        All state is kept in memory (there is no spilling backend). When the job's process
        grows past this many MiB it stops with :class:`StateMemoryError` naming the
        limitation, its last checkpoint intact, instead of being killed by the operating
        system. Default: ``FORESTREAM_MEMORY_LIMIT_MB``, else 75% of physical memory;
        0 turns the guard off.
    """

    def __init__(self, properties: dict | None = None, checkpoint_dir: str | Path | None = None,
                 checkpoint_interval: float = 10.0, batch_size: int = 1000,
                 clock: Callable[[], float] = time.time,
                 memory_limit_mb: float | None = None) -> None:
        self.properties = properties or {}
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_interval = checkpoint_interval
        self.batch_size = batch_size
        self.clock = clock
        self.memory_limit_mb = default_memory_limit_mb() if memory_limit_mb is None \
            else float(memory_limit_mb)
        if self.memory_limit_mb < 0:
            raise ValueError(f"memory_limit_mb {memory_limit_mb!r} must be 0 (no limit) or "
                             "a positive number of MiB")
        self.nodes: list[Node] = []
        # Set by a parallel worker: the Kinesis shards this copy of the job may read.
        self.shard_lease: set[str] | None = None

    # ------------------------------------------------------------------ sources
    def from_source(self, source: Source, watermark_strategy: WatermarkStrategy | None = None,
                    name: str = "") -> DataStream:
        """Any :class:`Source`. With a watermark strategy, event time is assigned at the
        source and watermarks are tracked per split (shard) and combined."""
        node = self._add(Node(len(self.nodes), source=source,
                              watermark_strategy=watermark_strategy, label=name))
        return DataStream(self, node)

    def from_collection(self, values: Iterable[Any], timestamps: Iterable[float] | None = None,
                        watermark_strategy: WatermarkStrategy | None = None) -> DataStream:
        return self.from_source(CollectionSource(values, timestamps), watermark_strategy)

    def from_generator(self, factory: Callable[[], Iterable[Any]],
                       watermark_strategy: WatermarkStrategy | None = None) -> DataStream:
        return self.from_source(GeneratorSource(factory), watermark_strategy)

    def from_file(self, path: str | Path, format: str = "jsonl",
                  watermark_strategy: WatermarkStrategy | None = None) -> DataStream:
        return self.from_source(FileSource(path, format), watermark_strategy)

    def from_kinesis(self, stream: str, target, start: str = "TRIM_HORIZON",
                     deserializer=None, watermark_strategy: WatermarkStrategy | None = None
                     ) -> DataStream:
        """A Kinesis stream through ``target``: a boto3 Kinesis client (any endpoint, a
        forestream server included) or an in-process StreamStore."""
        from .kinesis_io import KinesisSource

        return self.from_source(KinesisSource(stream, target, start, deserializer,
                                              shards=self.shard_lease),
                                watermark_strategy, name=stream)

    # ---------------------------------------------------------------- execution
    def execute(self, job_name: str = "job", max_seconds: float | None = None,
                until: Callable[[], bool] | None = None):
        """Run the job: bounded jobs run to the end; unbounded ones until ``until()`` is
        true, ``max_seconds`` pass, or :meth:`JobRunner.stop` is called."""
        from .runtime import JobRunner

        runner = JobRunner(self, job_name)
        return runner.run(max_seconds=max_seconds, until=until)

    def _add(self, node: Node) -> Node:
        self.nodes.append(node)
        return node


class DataStream:
    """A stream of records; each method adds a step and returns the resulting stream."""

    def __init__(self, env: StreamExecutionEnvironment, node: Node) -> None:
        self.env = env
        self.node = node

    def _then(self, operator: Operator, inputs: list[Node] | None = None,
              side: OutputTag | None = None, cls=None) -> DataStream:
        node = self.env._add(Node(len(self.env.nodes), operator=operator,
                                  inputs=inputs or [self.node], side=side))
        return (cls or DataStream)(self.env, node)

    def name(self, label: str) -> DataStream:
        self.node.label = label
        return self

    def map(self, fn: Callable[[Any], Any]) -> DataStream:
        return self._then(MapOperator(fn))

    def filter(self, fn: Callable[[Any], bool]) -> DataStream:
        return self._then(FilterOperator(fn))

    def flat_map(self, fn: Callable[[Any], Iterable[Any]]) -> DataStream:
        return self._then(FlatMapOperator(fn))

    def predict(self, fields: list[str], **kwargs) -> DataStream:
        """Add a model's prediction to each record; see
        :class:`~forestream.processing.inference.ModelInferenceOperator`."""
        from .inference import ModelInferenceOperator

        return self._then(ModelInferenceOperator(fields, **kwargs))

    def key_by(self, selector: Callable[[Any], Any]) -> KeyedStream:
        return self._then(KeyByOperator(selector), cls=KeyedStream)

    def process(self, function: ProcessFunction) -> DataStream:
        keyed = isinstance(self, KeyedStream)
        if isinstance(function, KeyedProcessFunction) and not keyed:
            raise TypeError("a KeyedProcessFunction needs a keyed stream: call key_by first")
        return self._then(ProcessOperator(function, keyed), cls=KeyedStream if keyed else None)

    def assign_timestamps_and_watermarks(self, strategy: WatermarkStrategy) -> DataStream:
        return self._then(TimestampsAndWatermarksOperator(strategy))

    def union(self, *others: DataStream) -> DataStream:
        return self._then(MapOperator(lambda v: v), inputs=[self.node] +
                          [o.node for o in others])

    def join(self, other: DataStream):
        """Window join: ``.where(key).equal_to(key).window(assigner).apply(fn)``."""
        from .joins import JoinedStreams

        return JoinedStreams(self, other)

    def connect(self, other: DataStream):
        """One :class:`~forestream.processing.joins.CoProcessFunction` over both streams
        (keyed state for this one when keyed; broadcast state from ``other``)."""
        from .joins import ConnectedStreams

        return ConnectedStreams(self, other)

    def get_side_output(self, tag: OutputTag) -> DataStream:
        return self._then(MapOperator(lambda v: v), side=tag)

    # ------------------------------------------------------------------- sinks
    def sink_to(self, sink: Sink) -> Sink:
        self._then(SinkOperator(sink))
        return sink

    def add_sink(self, fn: Callable[[Any], None]) -> Sink:
        return self.sink_to(CallableSink(fn))

    def print(self, prefix: str = "") -> Sink:
        return self.sink_to(PrintSink(prefix))

    def collect(self) -> ListSink:
        """Collect values in memory: the returned sink's ``values`` after execute."""
        return self.sink_to(ListSink())  # type: ignore[return-value]

    def write_to_file(self, path: str | Path, format: str = "jsonl") -> Sink:
        return self.sink_to(FileSink(path, format))

    def sink_to_kinesis(self, stream: str, target, partition_key=None, serializer=None) -> Sink:
        from .kinesis_io import KinesisSink

        return self.sink_to(KinesisSink(stream, target, partition_key, serializer))


class KeyedStream(DataStream):
    """A stream partitioned by key: keyed state, timers, windows and per-key models."""

    def window(self, assigner):
        from .windows import WindowedStream

        return WindowedStream(self, assigner)

    def count_window(self, size: int, slide: int | None = None):
        from .windows import CountWindows, WindowedStream

        return WindowedStream(self, CountWindows(size, slide))

    def reduce(self, fn: Callable[[Any, Any], Any]) -> DataStream:
        """Rolling reduce per key: emits the running result for every record."""
        from .windows import RollingReduceFunction

        return self.process(RollingReduceFunction(fn))

    def interval_join(self, other: KeyedStream):
        """Pairs with equal keys whose times differ by ``.between(lower, upper)``."""
        from .joins import IntervalJoined

        return IntervalJoined(self, other)

    def pattern(self, pattern) -> DataStream:
        """Complex event processing: emit ``{stage name: [events]}`` for every match of
        ``pattern`` (see :mod:`forestream.processing.cep`) per key."""
        from .cep import PatternOperator

        return self._then(PatternOperator(pattern), cls=KeyedStream)

    def random_cut_forest(self, fields: list[str], **kwargs) -> DataStream:
        """Score each record with its key's forest; see :class:`RandomCutForestOperator`."""
        from .ml import RandomCutForestOperator

        return self._then(RandomCutForestOperator(fields, **kwargs), cls=KeyedStream)

    def thresholded_random_cut_forest(self, fields: list[str], **kwargs) -> DataStream:
        """Grade each record with its key's detector; see :class:`ThresholdedRCFOperator`."""
        from .ml import ThresholdedRCFOperator

        return self._then(ThresholdedRCFOperator(fields, **kwargs), cls=KeyedStream)
