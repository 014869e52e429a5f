"""Key groups: keyed state shared correctly by the parallel workers of an application.

With parallelism above 1, a job whose pipeline has a ``key_by`` runs in two stages, as
Flink's ``keyBy`` shuffle does between its tasks:

1. *Read stage*, one copy per leased shard of the source stream: the source and the
   stateless steps up to and including ``key_by``, then an :class:`ExchangeWriter` that
   sends every record, with its key, to the application's *exchange stream* — an internal
   Kinesis stream with one shard per key group (``max_parallelism`` of them). A record goes
   to the shard whose hash range holds the MD5 of its key (for a string key: exactly the
   shard Kinesis would pick for that partition key).
2. *Keyed stage*, one copy per leased key group: an :class:`ExchangeReader` reading that
   key group's shard, then the rest of the pipeline. Its state is checkpointed per key
   group, so it moves with the key group's lease when workers start, stop or die, and a
   key's state no longer depends on which source shard its records arrive on (resharding
   the source keeps it).

Exactly-once across the exchange. The read stage checkpoints only its source positions,
so after a crash it sends again what it sent since its checkpoint. Every record carries
its origin (source shard), the source sequence number and an index among the outputs of
that source record; per origin, the keyed stage remembers the highest (sequence, index)
it has processed — checkpointed with its state — and drops anything not above it. One
writer per origin sends to each key-group shard in order (a step's message to a shard is
acknowledged, retried if need be, before the next), so this is exact.

Event time. Each message carries its origin's watermark (and whether the origin is idle);
a shard that ends sends +inf. The keyed stage's watermark is the minimum over the source
stream's unfinished shards, an origin not heard from yet holding it back (for at most the
idleness timeout, when the strategy sets one), as a single reader's would be.

Messages are pickles signed with HMAC-SHA256 under a key in the application's folder: a
record that anyone else wrote to the exchange stream is logged and skipped, never
unpickled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import pickle
import re
import secrets
import time
from bisect import bisect_right
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from forestream import errors
from forestream.streams.hashing import shard_id, uniform_ranges

from .keys import key_hash
from .kinesis_io import KinesisSource, kinesis_api
from .operators import MIN_WATERMARK, Operator
from .records import Record
from .sources import Source

EXCHANGE_FILE = "exchange.json"  # in the checkpoints folder: a fresh start gets a new one
KEY_FILE = "exchange.key"
MAX_MESSAGE_BYTES = 900_000  # a message's items, pickled: room below the record limit
MAX_RECORD_BYTES = 2**20  # Kinesis' default record size limit
MAX_CALL_BYTES = 5 * 2**20 - 64 * 1024  # PutRecords' request limit, less some room
MARKER_SECONDS = 0.2  # at most this often a watermark-only message per key group
ORIGIN_LIST_SECONDS = 5.0
PUT_GIVE_UP_SECONDS = 300.0
IDLE_POLL_MAX_SECONDS = 0.1  # an empty key group is polled at least this often
_SEQUENCE = re.compile(r"@(\d+)")


class ExchangeError(errors.InvalidInputError, ValueError):
    """The job cannot run its keyed part across parallel workers as written."""


class Codec:
    """Signed pickles: HMAC-SHA256 over the body, checked before anything is unpickled."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def encode(self, message) -> bytes:
        body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        return hmac.new(self.secret, body, hashlib.sha256).digest() + body

    def decode(self, data: bytes):
        mac, body = data[:32], data[32:]
        if not hmac.compare_digest(mac, hmac.new(self.secret, body, hashlib.sha256).digest()):
            raise ExchangeError("exchange record not signed by this application")
        return pickle.loads(body)


@dataclass
class ExchangeConfig:
    stream: str
    key_groups: int
    secret: bytes

    @classmethod
    def load(cls, app_dir: Path, app_name: str, key_groups: int) -> ExchangeConfig:
        """The application's exchange (created on first use, race-free between workers):
        the stream name lives in ``checkpoints/exchange.json`` so a start that drops the
        checkpoints gets a fresh, empty exchange stream."""
        path = app_dir / "checkpoints" / EXCHANGE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            safe = re.sub(r"[^a-zA-Z0-9_.-]", "-", app_name)[:80]
            doc = {"stream": f"forestream-exchange-{safe}-{secrets.token_hex(4)}",
                   "key_groups": key_groups}
            tmp = path.with_name(f".{EXCHANGE_FILE}.{os.getpid()}")
            tmp.write_text(json.dumps(doc))
            try:
                os.link(tmp, path)  # fails if another worker got there first: use theirs
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        doc = json.loads(path.read_text())
        return cls(doc["stream"], int(doc["key_groups"]), cls._secret(app_dir))

    @staticmethod
    def _secret(app_dir: Path) -> bytes:
        """The application's signing key (created on first use, race-free)."""
        key_path = app_dir / KEY_FILE
        if not key_path.exists():
            tmp = key_path.with_name(f".{KEY_FILE}.{os.getpid()}")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(secrets.token_bytes(32))
            try:
                os.link(tmp, key_path)
            except FileExistsError:
                pass
            finally:
                tmp.unlink(missing_ok=True)
        return key_path.read_bytes()

    @classmethod
    def existing(cls, app_dir: Path, key_groups: int, target) -> ExchangeConfig:
        """For a worker that exchanges in memory: the exchange stream the checkpoints still
        name, if it exists (its key groups are drained from it first), else none (an
        empty stream name); the signing key either way."""
        path = app_dir / "checkpoints" / EXCHANGE_FILE
        stream = ""
        if path.exists():
            named = json.loads(path.read_text())["stream"]
            if named in kinesis_api(target).stream_names():
                stream = named
        config = cls.load(app_dir, "", key_groups) if stream else None
        secret = config.secret if config is not None else cls._secret(app_dir)
        return cls(stream, key_groups, secret)

    def ensure_stream(self, target, timeout: float = 30.0) -> None:
        """Create the exchange stream (one shard per key group) if it is not there yet."""
        api = kinesis_api(target)
        api.create_stream(self.stream, self.key_groups)
        deadline = time.monotonic() + timeout
        while api.stream_status(self.stream) != "ACTIVE":
            if time.monotonic() > deadline:
                raise TimeoutError(f"exchange stream {self.stream} did not become ACTIVE")
            time.sleep(0.1)


class LocalExchange:
    """The exchange in memory, for a worker that runs every key group (parallelism 1):
    per key group, the messages an :class:`ExchangeWriter` would have sent to its shard,
    in order, handed over by reference (nothing pickled, nothing written). Key groups
    have the exchange stream's shard ids and hash ranges, so checkpoints are laid out as
    with the exchange stream and a job moves between the two at a committed round."""

    def __init__(self, key_groups: int) -> None:
        self.starts = [start for start, _ in uniform_ranges(key_groups)]
        self.shards = [shard_id(group) for group in range(key_groups)]
        self.queues: list[deque[dict]] = [deque() for _ in range(key_groups)]

    def group_of(self, shard: str) -> int:
        return self.shards.index(shard)

    def put(self, group: int, message: dict) -> None:
        self.queues[group].append(message)

    def take(self, group: int) -> list[dict]:
        queue = self.queues[group]
        taken = list(queue)
        queue.clear()
        return taken

    def empty(self) -> bool:
        return not any(self.queues)


# ------------------------------------------------------------------- the two ends
class ExchangeWriter(Operator):
    """The end of a read stage: each step's records go to their key groups' shards."""

    name = "exchange"

    def __init__(self, exchange: ExchangeConfig, target, origin: str,
                 idleness: float | None = None) -> None:
        super().__init__()
        self.exchange = exchange
        self.local = target if isinstance(target, LocalExchange) else None
        self.api = None if self.local is not None else kinesis_api(target)
        self.codec = Codec(exchange.secret)
        self.origin = origin
        self.idleness = idleness
        self.pending: list[Record] = []
        self._starts: list[int] = []
        self._sent: dict[int, tuple] = {}
        self._marker_at = 0.0
        self._last_record = 0.0

    def open(self) -> None:
        if self.local is not None:
            self._starts = list(self.local.starts)
        else:
            assert self.api is not None  # not in memory: the exchange stream's API
            shards = sorted(self.api.list_shards(self.exchange.stream),
                            key=lambda s: int(s["HashKeyRange"]["StartingHashKey"]))
            self._starts = [int(s["HashKeyRange"]["StartingHashKey"]) for s in shards]
        self._last_record = self.clock()

    def process(self, records, out):
        self.pending += records
        self._last_record = self.clock()

    def on_processing_time(self, now, out):
        self._flush(now, final=False)

    def finish(self, out):
        self.watermark = math.inf
        self._flush(self.clock(), final=True)

    def _flush(self, now: float, final: bool) -> None:
        groups: dict[int, list[tuple]] = {}
        # The index of a record among the outputs of its source record: the outputs of one
        # source record all come out of one step, in an order that does not depend on the
        # step's size, so a replay numbers them the same (a union interleaves them: count
        # per sequence number, then sort each key group's items by (sequence, index)).
        seen: dict[int, int] = {}
        for r in self.pending:
            found = _SEQUENCE.search(r.rid)
            if found is None:
                raise ExchangeError(f"record id {r.rid!r} does not name its source position")
            seq = int(found.group(1))
            sub = seen.get(seq, -1) + 1
            seen[seq] = sub
            group = bisect_right(self._starts, key_hash(r.key)) - 1
            groups.setdefault(group, []).append((seq, sub, r.value, r.timestamp, r.key, r.rid))
        for queued in groups.values():
            queued.sort(key=lambda item: (item[0], item[1]))
        self.pending = []
        idle = self.idleness is not None and now - self._last_record >= self.idleness
        mark = (self.watermark, idle, final)
        markers_due = final or now - self._marker_at >= MARKER_SECONDS
        waves: list[dict[int, dict]] = []
        for group in range(len(self._starts)):
            items = groups.get(group)
            if not items and not (markers_due and self._sent.get(group) != mark):
                continue
            self._sent[group] = mark
            for index, chunk in enumerate(self._chunks(items or [])):
                while len(waves) <= index:
                    waves.append({})
                waves[index][group] = {"o": self.origin, "wm": self.watermark, "idle": idle,
                                       "fin": final, "items": chunk}
        if markers_due:
            self._marker_at = now
        if self.local is not None:  # in memory: the messages themselves, in order
            for wave in waves:
                for group, message in wave.items():
                    self.local.put(group, message)
            return
        for wave in waves:  # a group's second chunk only after its first is stored: order
            entries = []
            for group, message in wave.items():
                data = self.codec.encode(message)
                if len(data) + 1 > MAX_RECORD_BYTES:  # + the partition key "k"
                    raise ExchangeError(
                        f"record {message['items'][0][5]!r} is {len(data):,} bytes pickled, "
                        f"over the {MAX_RECORD_BYTES:,}-byte record limit of the exchange "
                        "stream; make values smaller before key_by")
                entries.append({"Data": data, "PartitionKey": "k",
                                "ExplicitHashKey": str(self._starts[group])})
            # PutRecords takes at most 5 MiB per call: send the wave in slices (each slice's
            # entries go to distinct key groups, so order per group holds)
            batch: list[dict] = []
            size = 0
            for entry in entries:
                if batch and size + len(entry["Data"]) > MAX_CALL_BYTES:
                    self._put(batch)
                    batch, size = [], 0
                batch.append(entry)
                size += len(entry["Data"]) + 1
            if batch:
                self._put(batch)

    def _chunks(self, items: list[tuple]) -> list[list[tuple]]:
        if self.local is not None or len(items) <= 1 or \
                len(pickle.dumps(items, protocol=5)) <= MAX_MESSAGE_BYTES:
            return [items]
        half = len(items) // 2
        return self._chunks(items[:half]) + self._chunks(items[half:])

    def _put(self, entries: list[dict]) -> None:
        assert self.api is not None  # not in memory: the exchange stream's API
        delay, give_up = 0.05, time.monotonic() + PUT_GIVE_UP_SECONDS
        while entries:
            try:
                out = self.api.put_records(self.exchange.stream, entries)
            except Exception as exc:  # throttled or unreachable: try again, in order
                if time.monotonic() > give_up or not _transient(exc):
                    raise
                print(f"exchange: PutRecords failed ({exc}); retrying", flush=True)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            if out["FailedRecordCount"] == 0:
                return
            # entries of one call go to distinct shards, so retrying only the failed ones
            # keeps each shard's order
            entries = [e for e, r in zip(entries, out["Records"], strict=True)
                       if "ErrorCode" in r]
            if time.monotonic() > give_up:
                raise RuntimeError(f"{len(entries)} exchange record(s) could not be written to "
                                   f"{self.exchange.stream} in {PUT_GIVE_UP_SECONDS:.0f} s")
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _transient(exc: Exception) -> bool:
    """Errors worth retrying: throttling, server-side failures, a lost connection."""
    name = type(exc).__name__
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if any(word in name + code for word in ("Throughput", "Throttl", "Limit", "Internal",
                                             "ServiceUnavailable", "Connection", "Timeout",
                                             "EndpointConnection")):
        return True
    status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return isinstance(exc, OSError) or status >= 500


class ExchangeReader(Source):
    """The start of a keyed stage: one key group's records, deduplicated, in order."""

    name = "exchange"
    bounded = False

    def __init__(self, exchange: ExchangeConfig, target, shard: str, origin_api,
                 origin_stream: str, idleness: float | None = None) -> None:
        self.local = target if isinstance(target, LocalExchange) else None
        self.inner: KinesisSource | None = None
        if self.local is None:
            self.inner = KinesisSource(exchange.stream, target, "TRIM_HORIZON",
                                       deserializer=lambda data: data, batch_limit=20,
                                       shards={shard})
            self.inner.bounded = False
        self.shard = shard
        self.codec = Codec(exchange.secret)
        self.origin_api = origin_api
        self.origin_stream = origin_stream
        self.idleness = idleness
        # origin shard -> [last sequence, last index, watermark, idle, finished]
        self.origins: dict[str, list] = {}
        self.watermark = MIN_WATERMARK
        self.rejected = 0
        self.duplicates = 0
        self._listed: frozenset[str] | None = None
        self._next_list = 0.0
        self._started: float | None = None
        self._next_poll = 0.0
        self._empty_polls = 0

    @property
    def millis_behind(self) -> dict[str, int]:
        return self.inner.millis_behind if self.inner is not None else {}

    def open(self) -> None:
        if self.inner is not None:
            self.inner.open()

    def poll(self, max_records):
        out: list[tuple[str, Record]] = []
        if self.local is not None:
            for message in self.local.take(self.local.group_of(self.shard)):
                out += self._accept(message)
            return out
        now = time.monotonic()
        if now < self._next_poll:  # an idle key group is asked less often
            return out
        assert self.inner is not None  # not in memory: reads the exchange stream
        while len(out) < max_records:
            page = self.inner.poll(20)
            if not page:
                break
            for _, packed in page:
                out += self._unpack(packed)
        self._empty_polls = 0 if out else self._empty_polls + 1
        self._next_poll = now + min(IDLE_POLL_MAX_SECONDS, 0.002 * 2 ** min(
            self._empty_polls, 10)) if self._empty_polls else 0.0
        return out

    def _unpack(self, packed: Record) -> list[tuple[str, Record]]:
        try:
            message = self.codec.decode(packed.value)
        except ExchangeError as exc:
            self.rejected += 1
            print(f"exchange {self.shard}: skipped record {packed.rid}: {exc}", flush=True)
            return []
        except Exception as exc:  # signed by us, yet unreadable: never skip it silently
            raise ExchangeError(
                f"exchange record {packed.rid} (signed by this application) cannot be "
                f"unpickled: {type(exc).__name__}: {exc}. Did a code update rename or remove "
                "a class carried in records across key_by? Roll that update back, or start "
                "with restore SKIP") from exc
        return self._accept(message)

    def _accept(self, message: dict) -> list[tuple[str, Record]]:
        """A message's records this key group has not processed yet (per origin: above
        the highest (sequence, index) seen), and its origin's watermark."""
        state = self.origins.setdefault(message["o"], [-1, -1, MIN_WATERMARK, False, False])
        out = []
        for seq, sub, value, timestamp, key, rid in message["items"]:
            if (seq, sub) <= (state[0], state[1]):
                self.duplicates += 1  # sent again after the read stage restarted
                continue
            state[0], state[1] = seq, sub
            out.append((self.shard, Record(value, timestamp, key, rid)))
        state[2] = max(state[2], message["wm"])
        state[3] = message["idle"]
        state[4] = state[4] or message["fin"]
        return out

    def current_watermark(self, now: float) -> float:
        """The minimum watermark over the source stream's unfinished shards."""
        if self._started is None:
            self._started = now
        if self._listed is None or now >= self._next_list:
            self._listed = _origin_shards(self.origin_api, self.origin_stream, now)
            self._next_list = now + ORIGIN_LIST_SECONDS
        expected = [s for s in self._listed if not (s in self.origins and self.origins[s][4])]
        unseen = [s for s in expected if s not in self.origins]
        if unseen and (self.idleness is None or now - self._started < self.idleness):
            return self.watermark
        active = [self.origins[s][2] for s in expected
                  if s in self.origins and not self.origins[s][3]]
        if active:
            self.watermark = max(self.watermark, min(active))
        return self.watermark

    def finished(self) -> bool:
        return False

    def snapshot(self):
        # in memory there is no exchange position: what was taken is processed at once
        return {"inner": self.inner.snapshot() if self.inner is not None else None,
                "origins": {k: list(v) for k, v in self.origins.items()},
                "watermark": self.watermark}

    def restore(self, state):
        # a snapshot of the other kind restores the per-origin positions alone: taken in
        # memory (no exchange position: the exchange read from its start, deduplicated),
        # or from the exchange stream (drained before a worker went in memory)
        if self.inner is not None and state["inner"] is not None:
            self.inner.restore(state["inner"])
        self.origins = {k: list(v) for k, v in state["origins"].items()}
        self.watermark = state["watermark"]

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    def caught_up(self) -> bool:
        """Whether everything the exchange stream holds for this key group was read."""
        if self.inner is None:
            return True
        return bool(self.inner.millis_behind) and \
            max(self.inner.millis_behind.values()) == 0 and self._empty_polls > 0


#: (endpoint, stream) -> (listed at, shard ids): the key groups of one worker share a
#: listing of their source stream (each asked a server for one every few seconds
#: through boto3: 16 ListShards a round for the same answer)
_ORIGIN_LISTINGS: dict[tuple[object, str], tuple[float, frozenset[str]]] = {}


def _origin_shards(api, stream: str, now: float) -> frozenset[str]:
    """The shard ids of ``stream`` (on ``api``), listed at most every
    :data:`ORIGIN_LIST_SECONDS` per worker process."""
    target = api.target_key()
    if not (isinstance(target, tuple) and target[0] == "endpoint"):
        # in process (a StreamStore) a listing is cheap, and a store's id may be reused
        return frozenset(s["ShardId"] for s in api.list_shards(stream))
    key = (target, stream)
    listed = _ORIGIN_LISTINGS.get(key)
    if listed is None or not 0 <= now - listed[0] < ORIGIN_LIST_SECONDS:
        listed = (now, frozenset(s["ShardId"] for s in api.list_shards(stream)))
        _ORIGIN_LISTINGS[key] = listed
    return listed[1]
