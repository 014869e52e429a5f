"""A hand-written PyFlink job: every record of a stream, as the source emits it, written
to another stream (the source's envelope becomes the output record's data).

The output record's partition key is the input's, so one key's records stay in one
output shard, in the order the job emitted them. Parallelism comes from ``flink run -p``.

usage (with flink run --python): echo_envelopes.py ENDPOINT INPUT OUTPUT [TOKEN]
"""

import json
import sys

from pyflink.common import Types, WatermarkStrategy
from pyflink.datastream import CheckpointingMode, StreamExecutionEnvironment
from pyflink.datastream.connectors import Sink, Source
from pyflink.java_gateway import get_gateway


def wrap(envelope):
    record = json.loads(envelope)
    return json.dumps({"data": record, "partitionKey": record["partitionKey"],
                       "id": f"{record['shardId']}@{record['sequenceNumber']}"})


def main(endpoint, input_stream, output_stream, token=""):
    env = StreamExecutionEnvironment.get_execution_environment()
    env.enable_checkpointing(1000, CheckpointingMode.EXACTLY_ONCE)
    jvm = get_gateway().jvm
    source = Source(jvm.forestream.flink.KinesisApiSource(endpoint, input_stream,
                                                          "TRIM_HORIZON", token)
                    .withDiscoveryIntervalMillis(500))
    sink = Sink(jvm.forestream.flink.KinesisApiSink(endpoint, output_stream, token))
    (env.from_source(source, WatermarkStrategy.no_watermarks(), "input", Types.STRING())
        .uid("input")
        .map(wrap, Types.STRING())
        .uid("wrap")
        .sink_to(sink)
        .uid("output"))
    env.execute(f"echo {input_stream} -> {output_stream}")


if __name__ == "__main__":
    main(*sys.argv[1:])
