"""The execution environment: where a pipeline starts (its sources) and how it runs.

Building a pipeline only records a graph (:mod:`.graph`, through the DataStream API of
:mod:`.datastream`); :meth:`StreamExecutionEnvironment.execute` runs it (see
:mod:`.runtime`). Every step has a position in the graph that names its state in
checkpoints, so a program restarted from a checkpoint must build the same graph.

>>> from forestream.processing import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment()
>>> out = (env.from_collection([1, 2, 3, 4, 5])
...        .map(lambda x: x * 10).filter(lambda x: x != 30).collect())
>>> _ = env.execute()
>>> out.values
[10, 20, 40, 50]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .datastream import DataStream
from .graph import JobGraph, Node
from .kinesis_io import KinesisSource
from .runtime import JobResult, JobRunner
from .sources import CollectionSource, FileSource, GeneratorSource, Source
from .watermarks import WatermarkStrategy


def default_memory_limit_mb() -> float:
    """``FORESTREAM_MEMORY_LIMIT_MB``, else 75% of physical memory (0 where unknown)."""
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

    def __init__(self, properties: dict[str, Any] | None = None,
                 checkpoint_dir: str | Path | None = None,
                 checkpoint_interval: float = 10.0, batch_size: int = 1000,
                 clock: Callable[[], float] = time.time,
                 memory_limit_mb: float | None = None) -> None:
        limit = default_memory_limit_mb() if memory_limit_mb is None \
            else float(memory_limit_mb)
        if limit < 0:
            raise ValueError(f"memory_limit_mb {memory_limit_mb!r} must be 0 (no limit) or "
                             "a positive number of MiB")
        self.graph = JobGraph(properties=properties or {},
                              checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir else None,
                              checkpoint_interval=checkpoint_interval, batch_size=batch_size,
                              clock=clock, memory_limit_mb=limit)

    @property
    def properties(self) -> dict[str, Any]:
        return self.graph.properties

    @property
    def checkpoint_dir(self) -> Path | None:
        return self.graph.checkpoint_dir

    @property
    def checkpoint_interval(self) -> float:
        return self.graph.checkpoint_interval

    @property
    def batch_size(self) -> int:
        return self.graph.batch_size

    @property
    def memory_limit_mb(self) -> float:
        return self.graph.memory_limit_mb

    @property
    def nodes(self) -> list[Node]:
        """The job graph's nodes, in build order."""
        return self.graph.nodes

    @property
    def shard_lease(self) -> set[str] | None:
        """Set by a parallel worker: the Kinesis shards this copy of the job may read."""
        return self.graph.shard_lease

    @shard_lease.setter
    def shard_lease(self, shards: set[str] | None) -> None:
        self.graph.shard_lease = shards

    # ------------------------------------------------------------------ sources
    def from_source(self, source: Source, watermark_strategy: WatermarkStrategy | None = None,
                    name: str = "") -> DataStream:
        """Any :class:`Source`. With a watermark strategy, event time is assigned at the
        source and watermarks are tracked per split (shard) and combined."""
        node = self.graph.add(source=source, watermark_strategy=watermark_strategy,
                              label=name)
        return DataStream(self.graph, node)

    def from_collection(self, values: Iterable[Any], timestamps: Iterable[float] | None = None,
                        watermark_strategy: WatermarkStrategy | None = None) -> DataStream:
        return self.from_source(CollectionSource(values, timestamps), watermark_strategy)

    def from_generator(self, factory: Callable[[], Iterable[Any]],
                       watermark_strategy: WatermarkStrategy | None = None) -> DataStream:
        return self.from_source(GeneratorSource(factory), watermark_strategy)

    def from_file(self, path: str | Path, format: str = "jsonl",
                  watermark_strategy: WatermarkStrategy | None = None) -> DataStream:
        return self.from_source(FileSource(path, format), watermark_strategy)

    def from_kinesis(self, stream: str, target: Any, start: str = "TRIM_HORIZON",
                     deserializer: Callable[[bytes], Any] | None = None,
                     watermark_strategy: WatermarkStrategy | None = None
                     ) -> DataStream:
        """A Kinesis stream through ``target``: a boto3 Kinesis client (any endpoint, a
        forestream server included) or an in-process StreamStore."""
        return self.from_source(KinesisSource(stream, target, start, deserializer,
                                              shards=self.shard_lease),
                                watermark_strategy, name=stream)

    # ---------------------------------------------------------------- execution
    def execute(self, job_name: str = "job", max_seconds: float | None = None,
                until: Callable[[], bool] | None = None) -> JobResult:
        """Run the job: bounded jobs run to the end; unbounded ones until ``until()`` is
        true, ``max_seconds`` pass, or :meth:`JobRunner.stop` is called."""
        runner = JobRunner(self.graph, job_name)
        return runner.run(max_seconds=max_seconds, until=until)


