"""One Kinesis shard as one JetStream stream: the segment log's interface on a cluster.

Mapping (offsets are the store's, from 0; JetStream sequences are from 1):

- offset = JetStream sequence − 1; ``start_offset`` = first sequence − 1, ``next_offset``
  = last sequence; a record's timestamp is the server's arrival time (``Nats-Time-Stamp``,
  in milliseconds), so AT_TIMESTAMP positions use the same clock the records report.
- a record is one message on the shard's subject: 2 bytes of partition-key length, the
  key, the (sealed) value. The records of one PutRecords for a shard go in one *atomic
  batch* (all stored or none), each with a ``Nats-Msg-Id``: when an acknowledgement is
  lost and the batch is sent again, the cluster refuses the duplicate and the sequence
  numbers are recovered from the stored batch — a record is never stored twice.
- reads are *batch direct gets* (any replica answers, one request per page);
- retention drops records by purging below a sequence; a closed shard's stream is sealed,
  so a front end with stale metadata cannot append behind a SplitShard or MergeShards.

Needs nats-server ≥ 2.12 (atomic batches; batch direct get is 2.11).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Sequence
from typing import Any

from ..segment_log import LogRecord
from .bridge import ClusterUnavailableError, NatsBridge

#: how long a front end trusts what it last learnt of a shard's end (a cheap request)
INFO_MAX_AGE_SECONDS = 0.05
#: how long a write or read is retried while the cluster elects a leader
RETRY_SECONDS = 15.0
#: JetStream's error codes this module tells apart
_NOT_FOUND = 10059
_DUPLICATE_IN_BATCH = 10201
_SEALED = 10109


class ClusterConfigError(ClusterUnavailableError):
    """The cluster is set up in a way that refuses this request (not worth a retry)."""


def token(name: str) -> str:
    """A Kinesis stream name as a NATS subject token / stream-name part ('.' is not
    allowed there; Kinesis names use letters, digits, '_', '-' and '.')."""
    return name.replace(".", "~")


class JetStreamError(ClusterUnavailableError):
    """An error answer of the JetStream API (``code``/``err_code``/``description``)."""

    def __init__(self, api: str, error: dict[str, Any]) -> None:
        super().__init__(f"JetStream {api}: {error.get('description', error)} "
                         f"(err_code {error.get('err_code')})")
        self.err_code = int(error.get("err_code") or 0)
        self.http_code = int(error.get("code") or 0)


def parse_time_ms(stamp: str) -> int:
    """``Nats-Time-Stamp`` (RFC 3339 with nanoseconds) in epoch milliseconds."""
    head, _, rest = stamp.rstrip("Z").partition(".")
    seconds = dt.datetime.fromisoformat(head).replace(tzinfo=dt.timezone.utc).timestamp()
    fraction = int((rest + "000")[:3]) if rest else 0
    return int(seconds) * 1000 + fraction


def _iso(timestamp_ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(timestamp_ms / 1000, dt.timezone.utc)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{timestamp_ms % 1000:03d}000000Z"


class JetStreamApi:
    """The JetStream JSON API over a bridge, retried while the cluster cannot answer."""

    def __init__(self, bridge: NatsBridge) -> None:
        self.bridge = bridge

    def request(self, subject: str, body: dict[str, Any] | None = None,
                timeout: float = 5.0, retry: bool = True) -> dict[str, Any]:
        payload = json.dumps(body).encode() if body is not None else b""
        deadline = time.monotonic() + (RETRY_SECONDS if retry else 0)
        while True:
            try:
                answer = self.bridge.call(self._ask(subject, payload, timeout), timeout + 5)
            except ClusterUnavailableError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.25)
                continue
            error = answer.get("error")
            if error is None:
                return answer
            exc = JetStreamError(subject.rsplit(".", 2)[-2] if "." in subject else subject,
                                 error)
            # 503: no leader (an election under way) — worth waiting for
            if exc.http_code == 503 and time.monotonic() < deadline:
                time.sleep(0.25)
                continue
            raise exc

    async def _ask(self, subject: str, payload: bytes, timeout: float) -> dict[str, Any]:
        import nats.errors

        try:
            msg = await self.bridge.nc.request(subject, payload, timeout=timeout)
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.errors.ConnectionClosedError, asyncio.TimeoutError) as exc:
            raise ClusterUnavailableError(f"JetStream did not answer {subject}: "
                                          f"{type(exc).__name__}") from None
        return dict(json.loads(msg.data)) if msg.data else {}


class JetStreamShardLog:
    """A shard's records in the JetStream stream ``<namespace>_<stream>_<number>``."""

    def __init__(self, api: JetStreamApi, namespace: str, stream: str, number: int,
                 replicas: int = 1, *, create: bool = True) -> None:
        self.api = api
        self.name = f"{namespace}_{token(stream)}_{number}"
        self.subject = f"{namespace}.{token(stream)}.{number}"
        self.replicas = replicas
        self._first = 1
        self._last = 0
        self._bytes = 0
        self._last_ts: int | None = None
        self._info_at = -1.0
        self._closed = False
        if create:
            self._create()
        self._refresh(force=True)

    # ---------------------------------------------------------------- lifecycle
    def config(self, sealed: bool = False) -> dict[str, Any]:
        config: dict[str, Any] = {
            "name": self.name, "subjects": [self.subject], "storage": "file",
            "retention": "limits", "discard": "old", "num_replicas": self.replicas,
            "allow_direct": True, "allow_atomic": True, "duplicate_window": 120 * 10**9,
            "max_msg_size": -1}
        if sealed:
            config["sealed"] = True
        return config

    def _create(self) -> None:
        try:
            self.api.request(f"$JS.API.STREAM.CREATE.{self.name}", self.config())
        except JetStreamError as exc:
            if "already in use" not in str(exc):
                raise

    def seal(self) -> None:
        """No more appends (a closed shard); reads go on."""
        info = self.api.request(f"$JS.API.STREAM.INFO.{self.name}")
        if info["config"].get("sealed"):
            return
        config = {**info["config"], "sealed": True}
        self.api.request(f"$JS.API.STREAM.UPDATE.{self.name}", config)
        self._info_at = -1.0

    def close(self) -> None:
        self._closed = True

    def delete(self) -> None:
        self._closed = True
        with contextlib.suppress(JetStreamError):
            self.api.request(f"$JS.API.STREAM.DELETE.{self.name}")

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"shard log {self.name} is closed")

    # --------------------------------------------------------------- positions
    def _refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._info_at < INFO_MAX_AGE_SECONDS:
            return
        try:
            state = self.api.request(f"$JS.API.STREAM.INFO.{self.name}")["state"]
        except JetStreamError as exc:
            if exc.err_code == _NOT_FOUND:  # created lazily by the first append
                self._create()
                state = self.api.request(f"$JS.API.STREAM.INFO.{self.name}")["state"]
            else:
                raise
        self._first = int(state.get("first_seq") or 1)
        self._last = int(state.get("last_seq") or 0)
        self._bytes = int(state.get("bytes") or 0)
        stamp = state.get("last_ts")
        self._last_ts = parse_time_ms(stamp) if self._last and stamp and \
            not stamp.startswith("0001") else None
        self._info_at = time.monotonic()

    @property
    def next_offset(self) -> int:
        self._refresh()
        return self._last

    @property
    def committed_offset(self) -> int:
        return self.next_offset

    @property
    def start_offset(self) -> int:
        self._refresh()
        # an emptied stream reports first = last + 1: nothing is kept below that
        return max(0, self._first - 1)

    @property
    def last_timestamp_ms(self) -> int | None:
        self._refresh()
        return self._last_ts

    def size_bytes(self) -> int:
        self._refresh(force=True)
        return self._bytes

    # ------------------------------------------------------------------- append
    def append(self, entries: Sequence[tuple[bytes, bytes]], timestamp_ms: int | None = None,
               *, durable: bool = True) -> tuple[int, int]:
        """Store ``(key, value)`` entries in order, all or none; (first offset, the
        arrival time in ms as this front end saw it). Stored is durable here (the cluster
        acknowledges what its replicas hold), whatever ``durable`` asks."""
        self._check_open()
        if not entries:
            raise ValueError("nothing to append")
        payloads = [len(k).to_bytes(2, "big") + k + v for k, v in entries]
        # one random prefix per append (a uuid4 per record cost ~2 us each): unique in
        # the cluster's duplicate window, and the same ids on every retry of this append
        prefix = uuid.uuid4().hex
        ids = [f"{prefix}-{i}" for i in range(len(payloads))]
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                last = self.api.bridge.call(self._publish(payloads, ids))
                break
            except JetStreamError as exc:
                if exc.err_code == _DUPLICATE_IN_BATCH or "duplicate" in str(exc).lower():
                    last = self._recover(ids[-1])  # stored by an attempt whose ack was lost
                    break
                if exc.http_code == 503 and time.monotonic() < deadline:
                    time.sleep(0.25)
                    continue
                raise
            except ClusterConfigError:
                raise  # waiting would not help
            except ClusterUnavailableError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.25)
        first = last - len(payloads) + 1
        self._last = max(self._last, last)
        return first - 1, int(time.time() * 1000) if timestamp_ms is None else timestamp_ms

    def sync_through(self, end: int) -> None:
        """Nothing to wait for: an append returns once the cluster has stored it."""

    async def _publish(self, payloads: list[bytes], ids: list[str]) -> int:
        import nats.errors

        nc = self.api.bridge.nc
        try:
            if len(payloads) == 1:
                msg = await nc.request(self.subject, payloads[0],
                                       headers={"Nats-Msg-Id": ids[0]}, timeout=5)
            else:
                batch = uuid.uuid4().hex
                for i, payload in enumerate(payloads[:-1], start=1):
                    await nc.publish(self.subject, payload, headers={
                        "Nats-Batch-Id": batch, "Nats-Batch-Sequence": str(i),
                        "Nats-Msg-Id": ids[i - 1]})
                msg = await nc.request(self.subject, payloads[-1], timeout=5, headers={
                    "Nats-Batch-Id": batch, "Nats-Batch-Sequence": str(len(payloads)),
                    "Nats-Batch-Commit": "1", "Nats-Msg-Id": ids[-1]})
        except (nats.errors.TimeoutError, nats.errors.NoRespondersError,
                nats.errors.ConnectionClosedError, asyncio.TimeoutError) as exc:
            raise ClusterUnavailableError(f"append to {self.name}: {type(exc).__name__}"
                                          ) from None
        except nats.errors.MaxPayloadError:
            raise ClusterConfigError(
                f"append to {self.name}: a record of {max(map(len, payloads)):,} bytes is "
                f"above the NATS cluster's max_payload ({nc.max_payload:,} bytes); set "
                "max_payload: 8MB in every node's config (see docs/streams.md)") from None
        answer = json.loads(msg.data) if msg.data else {}
        if "error" in answer:
            raise JetStreamError("publish", answer["error"])
        if answer.get("duplicate"):  # a single message stored before: its sequence
            return int(answer["seq"])
        return int(answer["seq"])

    def _recover(self, last_id: str) -> int:
        """The sequence of the stored message with id ``last_id`` (a batch stored by an
        earlier attempt), looked for among the newest messages."""
        self._refresh(force=True)
        start = max(self._first, self._last - 2000)
        for record_seq, headers, _ in self._direct_batch(start, 10_000, 64 * 2**20):
            if headers.get("Nats-Msg-Id") == last_id:
                return record_seq
        raise ClusterUnavailableError(f"append to {self.name}: an earlier attempt was "
                                      "stored but could not be found again")

    # -------------------------------------------------------------------- reads
    def read(self, offset: int, max_records: int = 10_000, max_bytes: int = 10 * 2**20
             ) -> list[LogRecord]:
        self._check_open()
        if max_records < 1:
            raise ValueError("max_records must be >= 1")
        out = []
        for seq, headers, data in self._direct_batch(max(offset + 1, 1), max_records,
                                                      max_bytes):
            klen = int.from_bytes(data[:2], "big")
            out.append(LogRecord(seq - 1, parse_time_ms(headers["Nats-Time-Stamp"]),
                                 data[2:2 + klen], data[2 + klen:]))
        return out

    def _direct_batch(self, seq: int, batch: int, max_bytes: int
                      ) -> list[tuple[int, dict[str, str], bytes]]:
        request = {"seq": seq, "batch": batch, "max_bytes": max_bytes}
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            try:
                return self.api.bridge.call(self._direct(request))
            except ClusterUnavailableError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.25)

    async def _direct(self, request: dict[str, Any]
                      ) -> list[tuple[int, dict[str, str], bytes]]:
        nc = self.api.bridge.nc
        inbox = nc.new_inbox()
        out: list[tuple[int, dict[str, str], bytes]] = []
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def take(msg: Any) -> None:
            headers = msg.headers or {}
            status = headers.get("Status")
            if status is not None:  # 204: end of the batch; 404: nothing there; else error
                if not done.done():
                    if status in ("204", "404", "408"):
                        done.set_result(None)
                    else:
                        done.set_exception(ClusterUnavailableError(
                            f"direct get from {self.name}: status {status} "
                            f"{headers.get('Description', '')}"))
                return
            out.append((int(headers["Nats-Sequence"]), headers, msg.data))
        sub = await nc.subscribe(inbox, cb=take)
        try:
            await nc.publish(f"$JS.API.DIRECT.GET.{self.name}",
                             json.dumps(request).encode(), reply=inbox)
            await asyncio.wait_for(done, 10)
        except asyncio.TimeoutError:
            raise ClusterUnavailableError(f"direct get from {self.name} timed out") from None
        finally:
            await sub.unsubscribe()
        return out

    def offset_at_time(self, timestamp_ms: int) -> int:
        """First offset whose arrival time >= ``timestamp_ms`` (else the end)."""
        self._check_open()
        request = {"start_time": _iso(timestamp_ms), "batch": 1}
        found = self.api.bridge.call(self._direct(request))
        if not found:
            return self.next_offset
        return found[0][0] - 1

    # ---------------------------------------------------------------- retention
    def delete_before(self, timestamp_ms: int) -> int:
        """Drop the records older than ``timestamp_ms``; how many were dropped."""
        self._check_open()
        keep_from = self.offset_at_time(timestamp_ms) + 1
        self._refresh(force=True)
        if keep_from <= self._first:
            return 0
        answer = self.api.request(f"$JS.API.STREAM.PURGE.{self.name}", {"seq": keep_from})
        self._info_at = -1.0
        return int(answer.get("purged") or 0)

    def __repr__(self) -> str:
        return f"JetStreamShardLog({self.name!r})"
