"""A hand-written PyFlink job: a running count per partition key of a forestream stream.

forestream's KinesisApiSource reads the input stream; the count lives in named keyed
state (``ValueState`` "count": PyFlink's ``reduce`` would name its state with a random
UUID and lose it on every restore); KinesisApiSink writes ``{"k": key, "n": count}`` with
the id ``key:count``, which a replay after a failure reproduces, so readers can drop the
repeats of at-least-once delivery. Checkpoints every second, exactly-once mode.

usage (with flink run --python): keyed_counts.py ENDPOINT INPUT OUTPUT [TOKEN]
"""

import json
import sys

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment
from pyflink.datastream.connectors import Sink, Source
from pyflink.datastream.functions import KeyedProcessFunction, RuntimeContext
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.java_gateway import get_gateway


class RunningCount(KeyedProcessFunction):
    def open(self, runtime_context: RuntimeContext):
        self.count = runtime_context.get_state(ValueStateDescriptor("count", Types.LONG()))

    def process_element(self, key, ctx):
        n = (self.count.value() or 0) + 1
        self.count.update(n)
        yield json.dumps({"data": {"k": key, "n": n}, "partitionKey": key, "id": f"{key}:{n}"})


def main(endpoint, input_stream, output_stream, token=""):
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(1000, CheckpointingMode.EXACTLY_ONCE)
    jvm = get_gateway().jvm
    source = Source(jvm.forestream.flink.KinesisApiSource(endpoint, input_stream,
                                                          "TRIM_HORIZON", token))
    sink = Sink(jvm.forestream.flink.KinesisApiSink(endpoint, output_stream, token))
    (env.from_source(source, WatermarkStrategy.no_watermarks(), "input", Types.STRING())
        .uid("input")
        .map(lambda envelope: json.loads(envelope)["partitionKey"], Types.STRING())
        .uid("partition-key")
        .key_by(lambda key: key, Types.STRING())
        .process(RunningCount(), Types.STRING())
        .uid("running-count")
        .sink_to(sink)
        .uid("output"))
    env.execute(f"keyed counts {input_stream} -> {output_stream}")


if __name__ == "__main__":
    main(*sys.argv[1:])
