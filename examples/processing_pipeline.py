"""A stream processing job: event-time windows and per-key anomaly scores.

Reads sensor readings from a stream in an in-process store, computes a 10-minute mean per
machine (tumbling event-time windows, 30 s out-of-orderness), scores every reading with a
per-machine Random Cut Forest, and writes anomalies to another stream. Checkpoints make
a restarted job continue with exactly-once state. A shard that receives nothing would
hold the watermark back (as in Flink); ``with_idleness`` lets the others move it.

Run: .venv/bin/python examples/processing_pipeline.py
"""

import json
import tempfile

import numpy as np

from forestream.processing import (
    AggregateFunction,
    StreamExecutionEnvironment,
    TumblingEventTimeWindows,
    WatermarkStrategy,
)
from forestream.streams.store import StreamStore


class Mean(AggregateFunction):
    def create_accumulator(self):
        return (0.0, 0)

    def add(self, value, acc):
        return acc[0] + value["temp"], acc[1] + 1

    def get_result(self, acc):
        return round(acc[0] / acc[1], 2)

    def merge(self, a, b):
        return a[0] + b[0], a[1] + b[1]


workdir = tempfile.mkdtemp()
store = StreamStore(f"{workdir}/data", status_delay=0.0)
store.create_stream("readings", shard_count=2)
store.create_stream("alerts", shard_count=1)
rng = np.random.default_rng(0)
records = []
for i in range(1200):  # one reading per machine every 10 s
    for machine in ("m1", "m2"):
        temp = 60 + 5 * np.sin(i / 60) + rng.normal(0, 0.3)
        if machine == "m2" and i == 900:
            temp += 15  # an incident
        records.append({"Data": json.dumps({"machine": machine, "time": 1_700_000_000 + 10 * i,
                                            "temp": round(float(temp), 3)}).encode(),
                        "PartitionKey": machine})
for start in range(0, len(records), 500):
    store.put_records(stream_name="readings", records=records[start : start + 500])

env = StreamExecutionEnvironment(checkpoint_dir=f"{workdir}/checkpoints")
readings = env.from_kinesis(
    "readings", store,
    watermark_strategy=WatermarkStrategy.for_bounded_out_of_orderness(30)
    .with_timestamp_assigner(lambda event, _: event["time"])
    .with_idleness(1.0))
by_machine = readings.key_by(lambda e: e["machine"])
means = by_machine.window(TumblingEventTimeWindows.of(600)).aggregate(Mean()).collect()
scored = by_machine.random_cut_forest(["temp"], num_trees=50, output_after=64)
alerts = scored.filter(lambda e: e["ANOMALY_SCORE"] > 3.0)
alerts.sink_to_kinesis("alerts", store, partition_key=lambda e: e["machine"])
found = alerts.collect()
result = env.execute("temperatures", until=lambda: len(means.values) >= 38, max_seconds=60)

print(f"{len(means.values)} ten-minute means, first five: {means.values[:5]}")
print("alerts:", [(e["machine"], e["time"] - 1_700_000_000, round(e["ANOMALY_SCORE"], 2))
                  for e in found.values])
print(f"{result.records_in} records in {result.seconds:.1f} s, {result.checkpoints} "
      "checkpoint(s)")
store.close()
