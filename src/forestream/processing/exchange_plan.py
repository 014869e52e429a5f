"""Where a keyed job splits for parallel workers, and the two stages built from it.

:func:`plan` finds the job's ``key_by``: the *read stage* is the source and every step not
downstream of it (stateless steps, and the ``key_by`` itself), ending in an
:class:`~forestream.processing.exchange.ExchangeWriter`; the *keyed stage* starts with an
:class:`~forestream.processing.exchange.ExchangeReader` in place of the ``key_by`` and
runs everything downstream of it. :func:`shardable` says whether a job can run this way
at all (see :mod:`forestream.processing.exchange`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from .exchange import ExchangeConfig, ExchangeError, ExchangeReader, ExchangeWriter
from .graph import JobGraph, Node
from .inference import ModelInferenceOperator
from .operators import KeyByOperator, SinkOperator
from .operators import TimestampsAndWatermarksOperator as _Timestamps
from .sinks import FileSink

if TYPE_CHECKING:
    from .kinesis_io import KinesisSource


@dataclass
class ExchangePlan:
    """Where a job splits: node indexes of the read stage and of the keyed stage."""

    key_by: int
    source: int
    read: list[int]
    keyed: list[int]


def plan(graph: JobGraph) -> ExchangePlan | None:
    """Split a built job at its ``key_by``; None when it has none (every step then runs
    per source shard). Raises :class:`ExchangeError` for graphs the exchange cannot run."""
    nodes = graph.nodes
    children: dict[int, list[int]] = {n.index: [] for n in nodes}
    for n in nodes:
        for upstream in n.inputs:
            children[upstream.index].append(n.index)

    def below(start: int) -> set[int]:
        seen, todo = set(), list(children[start])
        while todo:
            i = todo.pop()
            if i not in seen:
                seen.add(i)
                todo += children[i]
        return seen

    key_bys = [n.index for n in nodes if isinstance(n.operator, KeyByOperator)]
    if not key_bys:
        return None
    downstream = {i: below(i) for i in key_bys}
    first = [i for i in key_bys if not any(i in downstream[j] for j in key_bys if j != i)]
    if len(first) > 1:
        raise ExchangeError(
            f"with parallelism > 1 a job may key its source stream once; this one calls "
            f"key_by {len(first)} times on unkeyed streams (nodes {first}). Key once and "
            "branch after key_by, or run with parallelism 1")
    key_by = first[0]
    keyed = sorted(downstream[key_by])
    for i in keyed:
        node = nodes[i]
        if isinstance(node.operator, KeyByOperator):
            raise ExchangeError(
                f"step {node.uid} keys an already keyed stream again: re-keying needs a second "
                "exchange, which parallel jobs do not have yet; run with parallelism 1")
        stray = [u.uid for u in node.inputs if u.index != key_by and u.index not in keyed]
        if stray:
            raise ExchangeError(
                f"step {node.uid} combines the keyed stream with {', '.join(stray)}, which is "
                "not keyed the same way; with parallelism > 1 every input of a keyed step "
                "must come after the one key_by")
    read = sorted(set(range(len(nodes))) - set(keyed))
    stateful = _unkeyed_state(nodes, read)
    if stateful:
        raise ExchangeError(
            f"step {stateful} keeps state before key_by; with parallelism > 1 state must be "
            "keyed (move it after key_by) or run with parallelism 1")
    sources = [i for i in read if nodes[i].source is not None]
    return ExchangePlan(key_by, sources[0], read, keyed)


def _unkeyed_state(nodes, indexes) -> str | None:
    """The first of these steps that keeps state of its own (not per key), if any."""
    for i in indexes:
        op = nodes[i].operator
        if op is None or isinstance(op, SinkOperator | KeyByOperator | _Timestamps |
                                    ModelInferenceOperator):
            continue  # sinks' positions, watermarks and model names are per copy anyway
        if op.snapshot() is not None:
            return nodes[i].uid
    return None


def shardable(graph: JobGraph) -> str | None:
    """Why this job cannot run as copies per source shard and key group (None: it can):
    its plan fails, a step outside the keyed part keeps state, or it writes files (each
    copy would write, and on restore truncate, the same file)."""
    try:
        found = plan(graph)
    except ExchangeError as exc:
        return str(exc)
    if found is None:
        stateful = _unkeyed_state(graph.nodes, range(len(graph.nodes)))
        if stateful:
            return (f"step {stateful} keeps state that is not keyed; with parallelism > 1 "
                    "it would be split by source shard: key the stream first")
    for node in graph.nodes:
        if isinstance(node.operator, SinkOperator) and isinstance(node.operator.sink, FileSink):
            return (f"step {node.uid} writes a file; with parallelism > 1 every copy would "
                    "write it: write to a stream instead")
    return None


def read_stage(graph: JobGraph, plan: ExchangePlan, exchange: ExchangeConfig,
               target, origin: str) -> None:
    """Turn a freshly built job into its read stage for source shard ``origin``."""
    source_node = graph.nodes[plan.source]
    strategy = source_node.watermark_strategy
    writer = ExchangeWriter(exchange, target, origin,
                            idleness=getattr(strategy, "idleness", None))
    node = Node(len(graph.nodes), operator=writer, inputs=[graph.nodes[plan.key_by]])
    graph.nodes = [graph.nodes[i] for i in plan.read] + [node]


def keyed_stage(graph: JobGraph, plan: ExchangePlan, exchange: ExchangeConfig,
                target, shard: str) -> None:
    """Turn a freshly built job into its keyed stage for key-group shard ``shard``."""
    user_source = graph.nodes[plan.source]
    strategy = user_source.watermark_strategy
    source = cast("KinesisSource", user_source.source)  # a parallel job reads one stream
    reader = ExchangeReader(exchange, target, shard, source.api, source.stream,
                            idleness=getattr(strategy, "idleness", None))
    node = graph.nodes[plan.key_by]  # downstream steps keep pointing at this node
    node.operator, node.source, node.inputs, node.watermark_strategy = None, reader, [], None
    graph.nodes = [node] + [graph.nodes[i] for i in plan.keyed]
