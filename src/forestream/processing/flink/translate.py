"""The job graph, checked and planned for Apache Flink: what runs where, or why not.

:func:`translate` reads a job graph that forestream's DataStream API built (see
:mod:`forestream.processing.graph`) and returns a :class:`FlinkPlan`: one
:class:`Step` per node, in build order, saying which Flink construct carries it. It
imports nothing of PyFlink, so the server runs it when an application with
``runtime = "flink"`` is created (a *dry translation*): a job that cannot run on Flink
exactly as it runs on the embedded runtime is refused there, with every node that
cannot be carried named with its reason (:class:`UntranslatableJob`), never started
with a silent difference. The PyFlink program (:mod:`.job.builder`) builds the Flink job
from the same plan, so the two cannot disagree about what is supported.

How records travel on Flink: every element is the tuple ``(value, key, record id)``,
event time is Flink's record timestamp (milliseconds); keyed steps run on a Flink
``KeyedStream`` keyed by a stable hash of the forestream key
(:func:`forestream.processing.keys.key_hash`), so equal keys meet whatever their
Python object identity, and state is kept in Flink *named* keyed state under each
node's uid (restored from savepoints, redistributed on rescaling).

>>> from forestream.processing import StreamExecutionEnvironment
>>> env = StreamExecutionEnvironment()
>>> _ = (env.from_collection([("a", 1), ("b", 2)]).key_by(lambda pair: pair[0])
...      .reduce(lambda x, y: (x[0], x[1] + y[1])).print())
>>> [(step.uid, step.kind) for step in translate(env.graph).steps]
[('0-collection', 'collection_source'), ('1-key_by', 'key_by'), \
('2-process', 'keyed_process'), ('3-sink', 'print_sink')]
>>> _ = env.from_generator(lambda: iter(range(3))).print()
>>> translate(env.graph)
Traceback (most recent call last):
...
forestream.processing.flink.translate.UntranslatableJob: this job cannot run on Flink: \
4-generator (generator): a generator is Python state of the submitting process; on \
Flink a source must be readable from every TaskManager: read a Kinesis stream \
(env.from_kinesis) instead
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from ..cep import PatternOperator
from ..errors import ApplicationError
from ..graph import JobGraph, Node
from ..inference import ModelInferenceOperator
from ..joins import CoProcessOperator, IntervalJoinOperator, WindowJoinOperator
from ..kinesis_io import ClientKinesis, KinesisSink, KinesisSource
from ..operators import (
    FilterOperator,
    FlatMapOperator,
    KeyByOperator,
    MapOperator,
    ProcessOperator,
    SinkOperator,
    TimestampsAndWatermarksOperator,
)
from ..rcf_operators import RandomCutForestOperator, ThresholdedRCFOperator
from ..sinks import CallableSink, ListSink, PrintSink
from ..sources import CollectionSource, FileSource, GeneratorSource
from ..windows import (
    CountTrigger,
    CountWindowOperator,
    EventTimeSessionWindows,
    GlobalWindowOperator,
    SlidingEventTimeWindows,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
    WindowOperator,
)

#: Steps whose function sees one key at a time (keyed state, timers, per-key models).
KEYED_KINDS = frozenset({"keyed_process", "window", "count_window", "random_cut_forest",
                         "thresholded_rcf"})


class UntranslatableJob(ApplicationError):
    """The job uses something Flink cannot run as the embedded runtime runs it.

    ``refusals``: ``(node uid, operator, reason)`` for every such node, in build order."""

    def __init__(self, refusals: list[tuple[str, str, str]]) -> None:
        self.refusals = refusals
        super().__init__("this job cannot run on Flink: " + "; ".join(
            f"{uid} ({what}): {why}" for uid, what, why in refusals))


@dataclass(frozen=True)
class Step:
    """One node of the job graph and the Flink construct that carries it.

    ``kind`` names the construct (see :func:`translate`); ``inputs`` are the indexes of
    the nodes it reads; ``uid`` is the Flink operator uid (the node's uid, which names
    its state in savepoints); ``endpoint`` is the Kinesis API a Kinesis source or sink
    reaches (None otherwise); ``side`` names the side output read (``side_output``)."""

    index: int
    kind: str
    uid: str
    inputs: tuple[int, ...]
    label: str = ""
    endpoint: str | None = None
    side: str | None = None

    @property
    def keyed(self) -> bool:
        return self.kind in KEYED_KINDS


@dataclass
class FlinkPlan:
    """What :func:`translate` found: the steps, in build order, and ``notes`` on how
    Flink runs some of them (differences a user should know, none silent)."""

    steps: list[Step]
    notes: list[str] = field(default_factory=list)

    def endpoints(self) -> set[str]:
        """The Kinesis API endpoints the job reads and writes."""
        return {s.endpoint for s in self.steps if s.endpoint}

    def describe(self) -> list[dict[str, Any]]:
        """The plan as JSON-ready rows (for ``apps describe`` and the REST API)."""
        return [{"uid": s.uid, "flink": s.kind, "inputs": list(s.inputs)} for s in self.steps]


def translate(graph: JobGraph, local: bool = False) -> FlinkPlan:
    """Plan ``graph`` for Flink, or raise :class:`UntranslatableJob` naming every node
    that cannot be carried and why.

    ``local``: the plan is for PyFlink's local execution in this machine (tests, trying a
    job out), where collecting results in memory (``stream.collect()``) is allowed; an
    application's job has nowhere to keep them and refuses it.
    """
    steps: list[Step] = []
    refusals: list[tuple[str, str, str]] = []
    notes: list[str] = []
    by_index: dict[int, Step] = {}
    if not graph.nodes:
        raise UntranslatableJob([("-", "job", "build(env, properties) added no source")])
    for node in graph.nodes:
        what = node.source.name if node.source is not None else \
            (node.operator.name if node.operator is not None else "node")
        try:
            step = _step(node, by_index, local, notes)
        except _Refused as refused:
            refusals.append((node.uid, what, str(refused)))
            continue
        except _Downstream:
            continue
        steps.append(step)
        by_index[node.index] = step
    if refusals:
        raise UntranslatableJob(refusals)
    return FlinkPlan(steps, notes)


class _Refused(Exception):
    """One node's reason for not being translatable."""


class _Downstream(Exception):
    """A node fed by a refused node (not a refusal of its own)."""


def _step(node: Node, done: dict[int, Step], local: bool, notes: list[str]) -> Step:
    inputs = tuple(n.index for n in node.inputs)
    if any(i not in done for i in inputs):
        raise _Downstream  # of a refused node: that one's refusal says it all

    def make(kind: str, endpoint: str | None = None, side: str | None = None) -> Step:
        return Step(node.index, kind, node.uid, inputs, node.label, endpoint, side)

    if node.source is not None:
        return _source(node, make, notes)
    op = node.operator
    if node.side is not None:
        producer = done[inputs[0]]
        if producer.kind not in ("process", "keyed_process", "window"):
            raise _Refused(f"side output {node.side.name!r} of a {producer.kind} step: on "
                           "Flink only process functions and windows have side outputs")
        return make("side_output", side=node.side.name)
    if type(op) is MapOperator and len(inputs) > 1:
        return make("union")
    simple = {MapOperator: "map", FilterOperator: "filter", FlatMapOperator: "flat_map",
              KeyByOperator: "key_by", TimestampsAndWatermarksOperator: "timestamps",
              RandomCutForestOperator: "random_cut_forest",
              ThresholdedRCFOperator: "thresholded_rcf"}
    if type(op) in simple:
        return make(simple[type(op)])
    if isinstance(op, ProcessOperator) and type(op) is ProcessOperator:
        return make("keyed_process" if op.backend is not None else "process")
    if isinstance(op, WindowOperator):
        return make(_window_kind(node, op, notes))
    if isinstance(op, CountWindowOperator):
        return make("count_window")
    if isinstance(op, GlobalWindowOperator):
        if isinstance(op.trigger, CountTrigger):
            raise _Refused("GlobalWindows number their firings across all keys of the "
                           "operator (the record ids carry that number), which per-key Flink "
                           "state cannot reproduce: use count_window(n) (the same results "
                           "as CountTrigger.of(n, purge=True))")
        raise _Refused(f"GlobalWindows with {type(op.trigger).__name__}: the embedded "
                       "runtime fires every key together at one schedule for the whole "
                       "operator (once when the watermark jumps several intervals); "
                       "Flink's trigger fires per key and per interval, so results "
                       "would differ. Use TumblingEventTimeWindows of the interval")
    if isinstance(op, SinkOperator):
        return _sink(op, make, local)
    reason = _UNSUPPORTED.get(type(op))
    if reason is None:
        reason = (f"{type(op).__name__} is not one of forestream's operators that the "
                  "Flink translation knows; its state and timing cannot be carried over")
    raise _Refused(reason)


_UNSUPPORTED: dict[type, str] = {
    PatternOperator: "complex event patterns have no PyFlink counterpart (Flink CEP is "
                     "Java only); run this job on the embedded runtime",
    WindowJoinOperator: "window joins are not translated yet (they buffer both sides in "
                        "operator state of their own); run this job on the embedded runtime",
    IntervalJoinOperator: "interval joins are not translated yet; run this job on the "
                          "embedded runtime",
    CoProcessOperator: "connected streams are not translated yet: the embedded runtime "
                       "hands the second stream's records of a batch over first, Flink "
                       "interleaves them, so results could differ; run this job on the "
                       "embedded runtime",
    ModelInferenceOperator: "model inference calls the registry and the endpoints of the "
                            "forestream server in process; run this job on the embedded "
                            "runtime",
}


def _endpoint(target: object, role: str) -> str:
    if not isinstance(target, ClientKinesis):
        raise _Refused(f"the {role} is an in-process StreamStore; a Flink job reaches "
                       "streams over the Kinesis API: pass kinesis_client() (or any boto3 "
                       "Kinesis client with an endpoint) instead")
    url = getattr(getattr(target.client, "meta", None), "endpoint_url", None)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise _Refused(f"the {role}'s client has no HTTP endpoint ({url!r}); pass "
                       "kinesis_client() or a boto3 Kinesis client made with endpoint_url")
    return url


def _source(node: Node, make: Any, notes: list[str]) -> Step:
    source = node.source
    if isinstance(source, KinesisSource):
        if source.deserializer is not json.loads and \
                getattr(source.deserializer, "__qualname__", "") != \
                "KinesisSource.__init__.<locals>.<lambda>":  # not (the default) json.loads
            raise _Refused("a custom deserializer needs the record's bytes, and the Flink "
                           "source decodes JSON on the Java side: drop the deserializer and "
                           "convert in a map")
        if source.only is not None:
            raise _Refused("a source limited to some shards (a worker's lease) cannot be "
                           "planned for Flink: Flink spreads the shards itself")
        strategy = node.watermark_strategy
        if strategy is not None and strategy.timestamp_assigner is not None:
            notes.append(f"{node.uid}: the timestamp assigner is Python code, so on Flink "
                         "it runs just after the Java source and the watermark follows "
                         "each source subtask's records rather than each shard's: give "
                         "the strategy an out-of-orderness that covers how far shards "
                         "drift apart")
        return make("kinesis_source", endpoint=_endpoint(source.api, "source"))
    if isinstance(source, CollectionSource):
        return make("collection_source")
    if isinstance(source, GeneratorSource):
        raise _Refused("a generator is Python state of the submitting process; on Flink a "
                       "source must be readable from every TaskManager: read a Kinesis "
                       "stream (env.from_kinesis) instead")
    if isinstance(source, FileSource):
        raise _Refused(f"a file on this machine ({source.path}) may not be on the Flink "
                       "TaskManagers: write it to a Kinesis stream and read that instead")
    raise _Refused(f"{type(source).__name__} is not a source the Flink translation knows "
                   "(Kinesis streams and collections are)")


def _window_kind(node: Node, op: WindowOperator, notes: list[str]) -> str:
    assigner = op.assigner
    if type(assigner) in (TumblingEventTimeWindows, SlidingEventTimeWindows,
                          EventTimeSessionWindows, TumblingProcessingTimeWindows):
        if isinstance(assigner, EventTimeSessionWindows) and op.lateness > 0:
            raise _Refused("session windows with allowed lateness fire again as late "
                           "records merge into them, and the embedded runtime numbers those "
                           "firings per merged session, which Flink's merging windows "
                           "cannot count (no per-window state): drop allowed_lateness")
        if isinstance(assigner, TumblingProcessingTimeWindows):
            notes.append(f"{node.uid}: processing-time windows follow the TaskManagers' "
                         "clocks, not the environment's clock")
        return "window"
    raise _Refused(f"window assigner {type(assigner).__name__} is not one Flink has "
                   "(tumbling, sliding, session or processing-time tumbling windows are)")


def _sink(op: SinkOperator, make: Any, local: bool) -> Step:
    sink = op.sink
    if isinstance(sink, KinesisSink):
        return make("kinesis_sink", endpoint=_endpoint(sink.api, "sink"))
    if type(sink) is PrintSink:
        return make("print_sink")
    if type(sink) is CallableSink:
        return make("callable_sink")
    if type(sink) is ListSink:
        if local:
            return make("collect_sink")
        raise _Refused("collect() keeps results in the memory of the process that runs the "
                       "job, which on Flink is a TaskManager nobody reads: write them to a "
                       "Kinesis stream (sink_to_kinesis)")
    raise _Refused(f"{type(sink).__name__} is not a sink the Flink translation knows "
                   "(Kinesis streams, print and add_sink functions are); its state lives in "
                   "forestream's checkpoints, which Flink does not take")
