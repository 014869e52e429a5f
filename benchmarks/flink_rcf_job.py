"""The benchmark's job written by hand in PyFlink (the peer of the translated application).

JSON decode → key by ``k`` → per-key Random Cut Forest (forestream's library, Kinesis
defaults) kept in named keyed state → ``{"k", "s"}`` to the output stream, through
forestream's Kinesis-API connectors. What a PyFlink user would write without the
translation; run by ``benchmarks/app_scaling.py --flink`` with ``flink run --python``.

usage: flink_rcf_job.py ENDPOINT INPUT OUTPUT TOKEN
"""

import json
import sys

import numpy as np
from pyflink.common import Configuration, Types, WatermarkStrategy
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors import Sink, Source
from pyflink.datastream.functions import KeyedProcessFunction
from pyflink.datastream.state import ValueStateDescriptor
from pyflink.java_gateway import get_gateway


class Score(KeyedProcessFunction):
    def open(self, runtime_context):
        self.state = runtime_context.get_state(
            ValueStateDescriptor("forest", Types.PICKLED_BYTE_ARRAY()))
        self.forests = {}

    def process_element(self, event, ctx):
        from forestream.rcf import RandomCutForest

        key = event["k"]
        forest = self.forests.get(key)
        if forest is None:
            forest = self.state.value() or RandomCutForest(time_decay=1 / 100_000)
            self.forests[key] = forest
        score = float(forest.score_and_update(np.array([[event["v"]]]))[0])
        self.state.update(forest)  # pickled when the bundle ends
        yield json.dumps({"data": {"k": key, "s": score}, "partitionKey": key})


def main(endpoint, input_stream, output_stream, token=""):
    settings = Configuration()
    settings.set_string("python.fn-execution.bundle.time", "10000")
    env = StreamExecutionEnvironment.get_execution_environment(settings)
    env.enable_checkpointing(10_000)
    jvm = get_gateway().jvm
    source = Source(jvm.forestream.flink.KinesisApiSource(endpoint, input_stream,
                                                          "TRIM_HORIZON", token))
    sink = Sink(jvm.forestream.flink.KinesisApiSink(endpoint, output_stream, token))
    (env.from_source(source, WatermarkStrategy.no_watermarks(), "input", Types.STRING())
        .uid("input")
        .map(lambda envelope: json.loads(envelope)["data"])
        .uid("decode")
        .key_by(lambda event: event["k"], Types.STRING())
        .process(Score(), Types.STRING())
        .uid("score")
        .sink_to(sink)
        .uid("output"))
    env.execute(f"hand-written RCF {input_stream} -> {output_stream}")


if __name__ == "__main__":
    main(*sys.argv[1:])
