"""The job graph: what a built pipeline is, apart from the API that built it.

The DataStream API (:mod:`.datastream`) only records steps; each becomes a :class:`Node`
of the environment's :class:`JobGraph`, in build order (a node's inputs always come
first). The runtime (:mod:`.runtime`), the exchange planner (:mod:`.exchange_plan`) and
the workers read the graph, never the API objects, as Flink's runtime reads its
``StreamGraph`` rather than ``DataStream``s. Each node's ``uid`` (position and kind) names
its state in checkpoints, so a program restarted from a checkpoint must build the same
graph.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .operators import Operator
from .records import OutputTag
from .sources import Source
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
        # a node is a source or an operator
        kind = self.source.name if self.source else cast(Operator, self.operator).name
        return f"{self.index}-{kind}"



@dataclass
class JobGraph:
    """The nodes of a job, and how it runs.

    ``properties``: runtime properties functions read in ``open``; ``checkpoint_dir`` and
    ``checkpoint_interval``: where and how often state is checkpointed; ``batch_size``:
    records polled per source per step; ``clock``: processing time; ``memory_limit_mb``:
    the process size at which the job stops cleanly (0: no limit); ``shard_lease``: set by
    a parallel worker, the Kinesis shards this copy of the job may read.
    """

    properties: dict[str, Any] = field(default_factory=dict)
    checkpoint_dir: Path | None = None
    checkpoint_interval: float = 10.0
    batch_size: int = 1000
    clock: Callable[[], float] = time.time
    memory_limit_mb: float = 0.0
    nodes: list[Node] = field(default_factory=list)
    shard_lease: set[str] | None = None

    def add(self, **parts: Any) -> Node:
        """A new node with the next index (``parts``: Node's fields), appended."""
        node = Node(len(self.nodes), **parts)
        self.nodes.append(node)
        return node
