"""forestream.processing — a Flink-style dataflow engine for streams.

Sources (Kinesis-API streams, files, Python iterables), ``map`` / ``filter`` /
``flat_map`` / ``key_by`` / ``process`` with keyed state and timers, event time with
watermarks, windows, side outputs, per-key Random Cut Forest operators, sinks, and
checkpoints that give exactly-once state across restarts.
"""

from .cep import Pattern
from .datastream import (
    ConnectedStreams,
    DataStream,
    IntervalJoined,
    JoinedStreams,
    KeyedStream,
    WindowedStream,
)
from .environment import StreamExecutionEnvironment
from .functions import (
    AggregateFunction,
    KeyedProcessFunction,
    ProcessFunction,
    ProcessWindowFunction,
)
from .joins import CoProcessFunction
from .kinesis_io import KinesisSink, KinesisSource, kinesis_client
from .records import OutputTag, Record
from .runtime import JobResult, JobRunner, StateMemoryError
from .sinks import CallableSink, FileSink, ListSink, PrintSink, Sink
from .sources import CollectionSource, FileSource, GeneratorSource, Source
from .state import ListStateDescriptor, MapStateDescriptor, ValueStateDescriptor
from .watermarks import WatermarkStrategy
from .windows import (
    ContinuousEventTimeTrigger,
    ContinuousProcessingTimeTrigger,
    CountTrigger,
    CountWindows,
    EventTimeSessionWindows,
    GlobalWindows,
    SlidingEventTimeWindows,
    TimeWindow,
    TumblingEventTimeWindows,
    TumblingProcessingTimeWindows,
)

__all__ = [
    "AggregateFunction", "CallableSink", "CoProcessFunction", "CollectionSource",
    "ConnectedStreams", "IntervalJoined", "JoinedStreams", "WindowedStream",
    "ContinuousEventTimeTrigger", "ContinuousProcessingTimeTrigger", "CountTrigger",
    "CountWindows", "DataStream", "GlobalWindows",
    "EventTimeSessionWindows", "FileSink", "FileSource", "GeneratorSource", "JobResult",
    "JobRunner", "KeyedProcessFunction", "KeyedStream", "KinesisSink", "KinesisSource",
    "ListSink", "ListStateDescriptor", "MapStateDescriptor", "OutputTag", "Pattern", "PrintSink",
    "ProcessFunction", "ProcessWindowFunction", "Record", "Sink", "SlidingEventTimeWindows",
    "Source", "StateMemoryError", "StreamExecutionEnvironment", "TimeWindow",
    "TumblingEventTimeWindows",
    "TumblingProcessingTimeWindows", "ValueStateDescriptor", "WatermarkStrategy", "kinesis_client",
]
