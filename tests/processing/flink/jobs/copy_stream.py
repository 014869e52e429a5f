"""A hand-written PyFlink job with no Python operator: KinesisApiSource straight into
KinesisApiSink. The source's envelope is a valid sink element (``data`` and
``partitionKey``; the other fields are ignored), so records are copied, data and
partition key unchanged, entirely in Java.

With KEY and SECRET, both connectors sign with them (the constructors that take
credentials) instead of the TaskManagers' environment.

usage (with flink run --python): copy_stream.py ENDPOINT INPUT OUTPUT [TOKEN [KEY SECRET]]
"""

import sys

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment
from pyflink.datastream.connectors import Sink, Source
from pyflink.java_gateway import get_gateway


def main(endpoint, input_stream, output_stream, token="", key=None, secret=None):
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(1000, CheckpointingMode.EXACTLY_ONCE)
    jvm = get_gateway().jvm
    connectors = jvm.forestream.flink
    if key is None:
        source = connectors.KinesisApiSource(endpoint, input_stream, "TRIM_HORIZON", token)
        sink = connectors.KinesisApiSink(endpoint, output_stream, token)
    else:  # region None: from the environment, else us-east-1
        source = connectors.KinesisApiSource(endpoint, input_stream, "TRIM_HORIZON", token,
                                             key, secret, None)
        sink = connectors.KinesisApiSink(endpoint, output_stream, token, key, secret, None)
    source, sink = Source(source), Sink(sink)
    (env.from_source(source, WatermarkStrategy.no_watermarks(), "input", Types.STRING())
        .uid("input")
        .sink_to(sink)
        .uid("output"))
    env.execute(f"copy {input_stream} -> {output_stream}")


if __name__ == "__main__":
    main(*sys.argv[1:])
