"""Prometheus metrics for the server: request counts, latency, bytes, per-shard writes."""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import TYPE_CHECKING

from forestream.streams.batch import BatchResult, RecordBatch
from forestream.streams.hashing import parse_sequence_number, shard_id

if TYPE_CHECKING:
    from collections.abc import Sequence

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[str, int] = defaultdict(int)
        self.errors: dict[tuple[str, str], int] = defaultdict(int)
        self.latency_sum: dict[str, float] = defaultdict(float)
        self.latency_buckets: dict[str, list[int]] = defaultdict(
            lambda: [0] * len(LATENCY_BUCKETS))
        self.records_in = 0
        #: PutRecords calls stored by the fast path (forestream.server.aws.fast_put_records)
        self.put_records_batched = 0
        self.bytes_in = 0
        self.records_out = 0
        self.bytes_out = 0
        self.shard_records_in: dict[tuple[str, str], int] = defaultdict(int)
        self.shard_bytes_in: dict[tuple[str, str], int] = defaultdict(int)
        self.shard_records_out: dict[tuple[str, str], int] = defaultdict(int)
        self.shard_bytes_out: dict[tuple[str, str], int] = defaultdict(int)

    def observe(self, operation: str, args: dict, result: dict, seconds: float) -> None:
        with self._lock:
            self.requests[operation] += 1
            self.latency_sum[operation] += seconds
            buckets = self.latency_buckets[operation]
            for i, bound in enumerate(LATENCY_BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            stream = args.get("StreamName") or (args.get("StreamARN") or "").rsplit("/", 1)[-1]
            if operation == "PutRecord":
                self.records_in += 1
                self.bytes_in += len(args["Data"])
                self.shard_records_in[(stream, result["ShardId"])] += 1
                self.shard_bytes_in[(stream, result["ShardId"])] += len(args["Data"])
            elif operation == "PutRecords":  # 500 records a call: summed per shard first
                counts: dict[str, int] = {}
                sizes: dict[str, int] = {}
                records = args["Records"]
                if isinstance(result, BatchResult):  # the fast path's: totals at once
                    self.put_records_batched += 1
                    for shard, (count, size) in result.shard_totals(records).items():
                        counts[shard], sizes[shard] = count, size
                else:
                    lengths = (records.data_len + records.tail_len).tolist() \
                        if isinstance(records, RecordBatch) else \
                        [len(r["Data"]) for r in records]
                    for length, out in zip(lengths, result["Records"], strict=True):
                        shard = out.get("ShardId")
                        if shard is not None:
                            counts[shard] = counts.get(shard, 0) + 1
                            sizes[shard] = sizes.get(shard, 0) + length
                for shard, count in counts.items():
                    self.records_in += count
                    self.bytes_in += sizes[shard]
                    self.shard_records_in[(stream, shard)] += count
                    self.shard_bytes_in[(stream, shard)] += sizes[shard]
            elif operation == "GetRecords":
                records = result["Records"]
                size = sum(len(r["Data"]) for r in records)
                self.records_out += len(records)
                self.bytes_out += size
                if records:  # the shard is in the sequence numbers; the stream is not
                    shard = shard_id(parse_sequence_number(records[0]["SequenceNumber"])[0])
                    key = (result.get("StreamName", ""), shard)
                    self.shard_records_out[key] += len(records)
                    self.shard_bytes_out[key] += size

    def shard_totals(self) -> dict[tuple[str, str], tuple[int, int, int, int]]:
        """(stream, shard) -> (records in, bytes in, records out, bytes out) so far: a
        consistent copy, for the console's charts of throughput over time."""
        with self._lock:
            keys = {*self.shard_records_in, *self.shard_records_out}
            return {key: (self.shard_records_in.get(key, 0), self.shard_bytes_in.get(key, 0),
                          self.shard_records_out.get(key, 0), self.shard_bytes_out.get(key, 0))
                    for key in keys}

    def error(self, operation: str, code: str) -> None:
        with self._lock:
            self.errors[(operation, code)] += 1

    def render(self, store) -> str:
        lines = ["# TYPE forestream_requests_total counter"]
        with self._lock:
            for op, n in sorted(self.requests.items()):
                lines.append(f'forestream_requests_total{{operation="{op}"}} {n}')
            lines.append("# TYPE forestream_request_errors_total counter")
            for (op, code), n in sorted(self.errors.items()):
                lines.append(f'forestream_request_errors_total{{operation="{op}",'
                             f'code="{code}"}} {n}')
            lines.append("# TYPE forestream_request_seconds histogram")
            for op, buckets in sorted(self.latency_buckets.items()):
                for bound, n in zip(LATENCY_BUCKETS, buckets, strict=True):
                    lines.append(f'forestream_request_seconds_bucket{{operation="{op}",'
                                 f'le="{bound}"}} {n}')
                count = self.requests[op]
                lines.append(f'forestream_request_seconds_bucket{{operation="{op}",le="+Inf"}} '
                             f'{count}')
                lines.append(f'forestream_request_seconds_sum{{operation="{op}"}} '
                             f'{self.latency_sum[op]:.6f}')
                lines.append(f'forestream_request_seconds_count{{operation="{op}"}} {count}')
            lines += ["# TYPE forestream_records_in_total counter",
                      f"forestream_records_in_total {self.records_in}",
                      "# TYPE forestream_bytes_in_total counter",
                      f"forestream_bytes_in_total {self.bytes_in}",
                      "# TYPE forestream_put_records_batched_total counter",
                      f"forestream_put_records_batched_total {self.put_records_batched}",
                      "# TYPE forestream_records_out_total counter",
                      f"forestream_records_out_total {self.records_out}",
                      "# TYPE forestream_bytes_out_total counter",
                      f"forestream_bytes_out_total {self.bytes_out}",
                      "# TYPE forestream_shard_records_in_total counter"]
            for metric, table in (("records_in", self.shard_records_in),
                                  ("bytes_in", self.shard_bytes_in),
                                  ("records_out", self.shard_records_out),
                                  ("bytes_out", self.shard_bytes_out)):
                if metric != "records_in":
                    lines.append(f"# TYPE forestream_shard_{metric}_total counter")
                for (stream, shard), n in sorted(table.items()):
                    lines.append(f'forestream_shard_{metric}_total{{stream="{stream}",'
                                 f'shard="{shard}"}} {n}')
        lines += ["# TYPE forestream_open_shards gauge",
                  f"forestream_open_shards {store.open_shard_count()}"]
        return "\n".join(lines) + "\n"


def render_applications(statuses: dict[str, list[dict]]) -> str:
    """Prometheus text for stream processing applications, from their workers' status
    files: records in/out per operator, MillisBehindLatest and records behind per source
    shard, checkpoint count, duration and size, and busy seconds (time spent in steps
    with records)."""
    lines = []

    def family(name: str, kind: str, rows: Sequence[tuple[str, float]]) -> None:
        lines.append(f"# TYPE forestream_application_{name} {kind}")
        lines.extend(f"forestream_application_{name}{{{labels}}} {value}"
                     for labels, value in rows)

    records, lag, behind, checkpoints, ck_seconds, ck_bytes, busy, workers = (
        [] for _ in range(8))
    for app, app_statuses in sorted(statuses.items()):
        running = 0
        for i, status in enumerate(app_statuses):
            base = f'application="{app}",worker="{i}"'
            running += status.get("state") == "RUNNING"
            for op, counts in sorted((status.get("operators") or {}).items()):
                records.append((f'{base},operator="{op}",direction="in"', counts[0]))
                records.append((f'{base},operator="{op}",direction="out"', counts[1]))
            for shard, millis in sorted((status.get("millis_behind_latest") or {}).items()):
                lag.append((f'{base},shard="{shard}"', millis))
            for shard, count in sorted((status.get("records_behind") or {}).items()):
                behind.append((f'{base},shard="{shard}"', count))
            checkpoints.append((base, status.get("checkpoints", 0)))
            ck_seconds.append((base, status.get("checkpoint_seconds", 0.0)))
            ck_bytes.append((base, status.get("checkpoint_bytes", 0)))
            busy.append((base, status.get("busy_seconds", 0.0)))
        workers.append((f'application="{app}"', running))
    family("operator_records_total", "counter", records)
    family("millis_behind_latest", "gauge", lag)
    family("records_behind", "gauge", behind)
    family("checkpoints_total", "counter", checkpoints)
    family("last_checkpoint_seconds", "gauge", ck_seconds)
    family("last_checkpoint_bytes", "gauge", ck_bytes)
    family("busy_seconds_total", "counter", busy)
    family("running_workers", "gauge", workers)
    return "\n".join(lines) + "\n"
