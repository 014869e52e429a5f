"""A hand-written PyFlink job: each record of a stream holds, as its data, one element
for KinesisApiSink (``{"data": ..., "partitionKey": ...}`` text), written as it is.

For the tests of what the connectors refuse: START is the source's starting position
(anything but TRIM_HORIZON/LATEST is refused while the job is built), and an element
that breaks the sink's rules fails the job with a message naming it.

usage (with flink run --python): write_elements.py ENDPOINT INPUT OUTPUT START
"""

import json
import sys

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import StreamExecutionEnvironment
from pyflink.datastream.connectors import Sink, Source
from pyflink.java_gateway import get_gateway


def element(envelope):
    data = json.loads(envelope)["data"]
    return data if isinstance(data, str) else json.dumps(data)


def main(endpoint, input_stream, output_stream, start):
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(1000)
    jvm = get_gateway().jvm
    source = Source(jvm.forestream.flink.KinesisApiSource(endpoint, input_stream, start, ""))
    sink = Sink(jvm.forestream.flink.KinesisApiSink(endpoint, output_stream, ""))
    (env.from_source(source, WatermarkStrategy.no_watermarks(), "input", Types.STRING())
        .map(element, Types.STRING())
        .sink_to(sink))
    env.execute(f"write elements {input_stream} -> {output_stream}")


if __name__ == "__main__":
    main(*sys.argv[1:])
