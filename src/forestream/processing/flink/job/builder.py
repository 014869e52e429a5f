"""Builds the PyFlink job for a translated job graph (see :mod:`..translate`).

:func:`build_flink_job` walks the :class:`~..translate.FlinkPlan` in build order and
adds, for every step, the Flink construct its kind names, with the node's uid as the
Flink operator uid (so savepoints map state back to the same steps, also after
rescaling). Kinesis sources and sinks are forestream's Java connectors
(``forestream.flink.KinesisApiSource`` / ``KinesisApiSink``, made through the Py4J
gateway); everything else is PyFlink with the functions of :mod:`.functions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyflink.common import Duration, Time, Types, WatermarkStrategy
from pyflink.common.watermark_strategy import TimestampAssigner
from pyflink.datastream import DataStream, OutputTag
from pyflink.datastream.connectors import Sink, Source
from pyflink.datastream.window import (
    EventTimeSessionWindows,
    SlidingEventTimeWindows,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
)
from pyflink.java_gateway import get_gateway

from forestream.processing import windows as fs_windows
from forestream.processing.graph import JobGraph, Node
from forestream.processing.kinesis_io import KinesisSink, KinesisSource
from forestream.processing.sinks import CallableSink, PrintSink
from forestream.processing.sources import CollectionSource
from forestream.processing.watermarks import WatermarkStrategy as ForestreamStrategy

from ..translate import FlinkPlan, Step
from . import functions as fn


def _pickled() -> Any:
    """Pickled Python values' type, new each time: PyFlink caches the Java type in the
    object, which then cannot be pickled with the functions that refer to it."""
    return Types.PICKLED_BYTE_ARRAY()


def build_flink_job(env: Any, graph: JobGraph, plan: FlinkPlan, access_token: str = "",
                    collect_dir: Path | None = None) -> dict[str, Path]:
    """Add the job to the PyFlink ``env``. ``collect_dir``: where ``collect()`` sinks
    write their records (local runs); returns ``{sink node uid: file}`` for them."""
    builder = _Builder(env, graph, plan, access_token, collect_dir)
    for step in plan.steps:
        builder.add(step)
    return builder.collected


class _Builder:
    def __init__(self, env: Any, graph: JobGraph, plan: FlinkPlan, access_token: str,
                 collect_dir: Path | None) -> None:
        self.env = env
        self.graph = graph
        self.token = access_token
        self.collect_dir = collect_dir
        self.collected: dict[str, Path] = {}
        self.streams: dict[int, DataStream] = {}
        # side outputs each step must offer: step index -> {tag name: Flink OutputTag}
        self.tags: dict[int, dict[str, OutputTag]] = {}
        for step in plan.steps:
            if step.kind == "side_output":
                assert step.side is not None
                self.tags.setdefault(step.inputs[0], {})[step.side] = \
                    OutputTag(step.side, _pickled())

    def add(self, step: Step) -> None:
        node = self.graph.nodes[step.index]
        stream = getattr(self, f"_{step.kind}")(step, node)
        if stream is not None:
            self.streams[step.index] = stream

    def _input(self, step: Step) -> DataStream:
        return self.streams[step.inputs[0]]

    def _keyed(self, step: Step) -> Any:
        return self._input(step).key_by(fn.FlinkKey(), key_type=Types.STRING())

    @staticmethod
    def _named(stream: Any, step: Step, suffix: str = "") -> Any:
        return stream.uid(step.uid + suffix).name(step.label or step.uid + suffix)

    # ---------------------------------------------------------------- sources
    def _kinesis_source(self, step: Step, node: Node) -> DataStream:
        source = node.source
        assert isinstance(source, KinesisSource) and step.endpoint
        strategy = node.watermark_strategy
        at_source = strategy if strategy is None or strategy.timestamp_assigner is None \
            else None
        j_source = get_gateway().jvm.forestream.flink.KinesisApiSource(
            step.endpoint, source.stream, source.start, self.token or None)
        raw = self.env.from_source(Source(j_source), _flink_strategy(at_source),
                                   step.label or source.stream, type_info=Types.STRING())
        stream = self._named(raw, step).map(fn.KinesisRecord(), output_type=_pickled())
        stream = self._named(stream, step, "/records")
        if strategy is not None and strategy.timestamp_assigner is not None:
            stream = stream.assign_timestamps_and_watermarks(
                _flink_strategy(strategy).with_timestamp_assigner(
                    _Assigner(strategy.timestamp_assigner)))
        return stream

    def _collection_source(self, step: Step, node: Node) -> DataStream:
        source = node.source
        assert isinstance(source, CollectionSource)
        times: list[float | None] = list(source.timestamps) if source.timestamps is not None \
            else [None] * len(source.values)
        triples = [(i, value, ts) for i, (value, ts) in enumerate(zip(source.values, times,
                                                                      strict=True))]
        stream = self._named(self.env.from_collection(triples), step)
        strategy = node.watermark_strategy
        if source.timestamps is not None or (strategy and strategy.timestamp_assigner):
            flink = _flink_strategy(strategy) if strategy else \
                WatermarkStrategy.no_watermarks()
            assigner = strategy.timestamp_assigner if strategy else None
            stream = stream.assign_timestamps_and_watermarks(
                flink.with_timestamp_assigner(_CollectionAssigner(assigner)))
        elif strategy is not None:
            stream = stream.assign_timestamps_and_watermarks(_flink_strategy(strategy))
        return self._named(stream.map(fn.CollectionRecord(), output_type=_pickled()), step,
                           "/records")

    # ----------------------------------------------------------- element-wise
    def _map(self, step: Step, node: Node) -> DataStream:
        return self._named(self._input(step).map(fn.Map(node.operator.fn),  # type: ignore
                                                 output_type=_pickled()), step)

    def _filter(self, step: Step, node: Node) -> DataStream:
        return self._named(self._input(step).filter(fn.Filter(node.operator.fn)),  # type: ignore
                           step)

    def _flat_map(self, step: Step, node: Node) -> DataStream:
        return self._named(self._input(step).flat_map(
            fn.FlatMap(node.operator.fn), output_type=_pickled()), step)  # type: ignore

    def _key_by(self, step: Step, node: Node) -> DataStream:
        return self._named(self._input(step).map(
            fn.KeyBy(node.operator.selector), output_type=_pickled()), step)  # type: ignore

    def _timestamps(self, step: Step, node: Node) -> DataStream:
        strategy = node.operator.strategy  # type: ignore[union-attr]
        flink = _flink_strategy(strategy)
        if strategy.timestamp_assigner is not None:
            flink = flink.with_timestamp_assigner(_Assigner(strategy.timestamp_assigner))
        return self._input(step).assign_timestamps_and_watermarks(flink)

    def _union(self, step: Step, node: Node) -> DataStream:
        # as the embedded runtime: ids stay unique across the inputs ("<id>|<input>")
        first, *others = (self._named(self.streams[index].map(
            fn.UnionInput(i), output_type=_pickled()), step, f"/{i}")
            for i, index in enumerate(step.inputs))
        return first.union(*others)

    def _side_output(self, step: Step, node: Node) -> DataStream:
        assert step.side is not None
        return self._input(step).get_side_output(self.tags[step.inputs[0]][step.side])

    # ------------------------------------------------------------- processes
    def _process(self, step: Step, node: Node) -> DataStream:
        function = fn.Process(node.operator.function, step.uid,  # type: ignore
                              self.graph.properties, self.tags.get(step.index, {}))
        return self._named(self._input(step).process(function, output_type=_pickled()), step)

    def _keyed_process(self, step: Step, node: Node) -> DataStream:
        function = fn.KeyedProcess(node.operator.function, step.uid,  # type: ignore
                                   self.graph.properties, self.tags.get(step.index, {}))
        return self._named(self._keyed(step).process(function, output_type=_pickled()), step)

    def _random_cut_forest(self, step: Step, node: Node) -> DataStream:
        return self._named(self._keyed(step).process(
            fn.PerKeyModel(node.operator, step.uid), output_type=_pickled()), step)

    _thresholded_rcf = _random_cut_forest

    def _window(self, step: Step, node: Node) -> DataStream:
        op = node.operator
        assert isinstance(op, fs_windows.WindowOperator)
        windowed = self._keyed(step).window(_flink_assigner(op.assigner))
        if op.lateness:
            windowed = windowed.allowed_lateness(round(op.lateness * 1000))
        late = self.tags.get(step.index, {}).get(op.late_tag.name) if op.late_tag else None
        if late is not None:
            windowed = windowed.side_output_late_data(late)
        merging = isinstance(op.assigner, fs_windows.EventTimeSessionWindows)
        if op.aggregate is not None:
            result = windowed.aggregate(
                fn.WindowAggregate(op.aggregate),
                window_function=fn.WindowResults(step.uid, True, op.window_function, merging),
                output_type=_pickled())
        else:
            result = windowed.process(
                fn.WindowResults(step.uid, False, op.window_function, merging),
                output_type=_pickled())
        return self._named(result, step)

    def _count_window(self, step: Step, node: Node) -> DataStream:
        op = node.operator
        assert isinstance(op, fs_windows.CountWindowOperator)
        function = fn.CountWindow(step.uid, op.size, op.slide, op.aggregate,
                                  op.window_function)
        return self._named(self._keyed(step).process(function, output_type=_pickled()), step)

    # ----------------------------------------------------------------- sinks
    def _kinesis_sink(self, step: Step, node: Node) -> None:
        sink = node.operator.sink  # type: ignore[union-attr]
        assert isinstance(sink, KinesisSink) and step.endpoint
        entries = self._input(step).map(
            fn.KinesisEntry(sink.serializer, sink.partition_key, sink.record_ids),
            output_type=Types.STRING())
        j_sink = get_gateway().jvm.forestream.flink.KinesisApiSink(
            step.endpoint, sink.stream, self.token or None)
        self._named(self._named(entries, step, "/entries").sink_to(Sink(j_sink)), step)

    def _print_sink(self, step: Step, node: Node) -> None:
        sink = node.operator.sink  # type: ignore[union-attr]
        assert isinstance(sink, PrintSink)
        self._named(self._input(step).process(fn.CallSink(fn.Printer(sink.prefix), False)),
                    step)

    def _callable_sink(self, step: Step, node: Node) -> None:
        sink = node.operator.sink  # type: ignore[union-attr]
        assert isinstance(sink, CallableSink)
        self._named(self._input(step).process(fn.CallSink(sink.fn, sink.with_records)),
                    step)

    def _collect_sink(self, step: Step, node: Node) -> None:
        if self.collect_dir is None:
            raise ValueError("collect() needs a local run (collect_dir)")
        path = self.collect_dir / f"{step.uid}.pickles"
        path.unlink(missing_ok=True)
        self.collected[step.uid] = path
        self._named(self._input(step).process(fn.CollectToFile(str(path))), step)


class _Assigner(TimestampAssigner):
    """A forestream timestamp assigner (seconds) as Flink's (milliseconds)."""

    def __init__(self, assign: Any) -> None:
        self.assign = assign

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        return round(float(self.assign(value[0], fn.seconds(record_timestamp))) * 1000)


class _CollectionAssigner(TimestampAssigner):
    """A collection's own timestamps (and the strategy's assigner, if any)."""

    def __init__(self, assign: Any) -> None:
        self.assign = assign

    def extract_timestamp(self, value: Any, record_timestamp: int) -> int:
        _, item, stamp = value
        when = self.assign(item, stamp) if self.assign is not None else stamp
        return round(float(when) * 1000)


def _flink_strategy(strategy: ForestreamStrategy | None) -> Any:
    """forestream's strategy as Flink's: the same bound (Flink's watermark is also the
    largest time seen less the bound and a millisecond), idleness, per split when set at
    a source."""
    if strategy is None:
        return WatermarkStrategy.no_watermarks()
    flink = WatermarkStrategy.for_bounded_out_of_orderness(
        Duration.of_millis(round(strategy.out_of_orderness * 1000)))
    if strategy.idleness is not None:
        flink = flink.with_idleness(Duration.of_millis(round(strategy.idleness * 1000)))
    return flink


def _flink_assigner(assigner: Any) -> Any:
    def ms(value: float) -> Time:
        return Time.milliseconds(round(value * 1000))

    if isinstance(assigner, fs_windows.TumblingProcessingTimeWindows):
        return TumblingProcessingTimeWindows.of(ms(assigner.size), ms(assigner.offset))
    if isinstance(assigner, fs_windows.TumblingEventTimeWindows):
        return TumblingEventTimeWindows.of(ms(assigner.size), ms(assigner.offset))
    if isinstance(assigner, fs_windows.SlidingEventTimeWindows):
        return SlidingEventTimeWindows.of(ms(assigner.size), ms(assigner.slide),
                                          ms(assigner.offset))
    assert isinstance(assigner, fs_windows.EventTimeSessionWindows)
    return EventTimeSessionWindows.with_gap(ms(assigner.gap))
