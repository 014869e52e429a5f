"""Optional per-shard throughput limits, as Kinesis enforces them on provisioned shards.

Writes: 1 MiB/s and 1,000 records/s per shard; reads: 2 MiB/s and 5 GetRecords calls/s.
Each limit is a token bucket holding one second's allowance. Off by default; when on,
producers see ProvisionedThroughputExceededException exactly where AWS would send it, so
their retry logic can be tested locally.
"""

from __future__ import annotations

import threading
import time

from .errors import ThroughputExceededError

WRITE_BYTES_PER_S = 2**20
WRITE_RECORDS_PER_S = 1000
READ_BYTES_PER_S = 2 * 2**20
READ_CALLS_PER_S = 5


class _Bucket:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now


class ShardThrottle:
    def __init__(self, enabled: bool, name: str) -> None:
        self.enabled = enabled
        self.name = name
        self._lock = threading.Lock()
        self._write_bytes = _Bucket(WRITE_BYTES_PER_S)
        self._write_records = _Bucket(WRITE_RECORDS_PER_S)
        self._read_bytes = _Bucket(READ_BYTES_PER_S)
        self._read_calls = _Bucket(READ_CALLS_PER_S)

    def take_write(self, records: int, size: int) -> None:
        if self.enabled and not self.admit([size], [0]):
            raise ThroughputExceededError(f"Rate exceeded for shard {self.name}.")

    def admit(self, sizes: list[int], indexes: list[int]) -> list[int]:
        """The prefix of ``indexes`` that fits the write allowance (all when disabled)."""
        if not self.enabled:
            return list(indexes)
        admitted = []
        with self._lock:
            self._write_bytes.refill()
            self._write_records.refill()
            for size, index in zip(sizes, indexes, strict=True):
                if self._write_records.tokens < 1 or self._write_bytes.tokens < size:
                    break
                self._write_records.tokens -= 1
                self._write_bytes.tokens -= size
                admitted.append(index)
        return admitted

    def take_read(self, size: int) -> None:
        if not self.enabled:
            return
        with self._lock:
            self._read_bytes.refill()
            self._read_calls.refill()
            if self._read_calls.tokens < 1 or self._read_bytes.tokens <= 0:
                raise ThroughputExceededError(f"Rate exceeded for shard {self.name}.")
            self._read_calls.tokens -= 1
            self._read_bytes.tokens -= size
