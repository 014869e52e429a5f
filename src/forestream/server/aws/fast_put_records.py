"""PutRecords' fast path: a plain JSON body to a stored batch without a Python object
per record.

The general path (orjson, then the model's walk, then the store) makes a dict, two
strings and a bytes object per record and hashes, routes and frames them one by one:
about 6 us of the 12-14 us of server CPU a record cost under
``benchmarks/streams_throughput.py`` (issue 13). Here :mod:`._put_records_scan` finds the
members' spans in the body, the data of all records is base64-decoded in one call
(pybase64's SIMD codec) and :meth:`StreamStore.put_records_batch
<forestream.streams.store.StreamStore.put_records_batch>` routes and frames the batch
with numba.

The fast path only takes what it is sure of: a body of the plain form every SDK sends
whose every value the model accepts (the same constraint checks as the model's walk).
Anything else — escapes, unknown or repeated members, nulls, bad base64, values out of
range, CBOR — returns None and goes the general way, which reads it and answers exactly
as before; so a request gets the same answer, and stores the same records, either way
(tests/server/test_put_records_fast.py compares the two).

Only bodies of :data:`MIN_BODY_BYTES` or more come this way: a small call's cost is
the call's, not its records' (the quickstart's PutRecords of 12 readings are 2-3 KB), and
a server that never sees a large one never loads the kernels. They compile (or load from
numba's cache: about 0.7 s of CPU) on a thread when the first large PutRecords comes;
calls go the general way until they are ready.
"""

from __future__ import annotations

import binascii
import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from .shapes import ServiceShapes, _breaks

try:
    import pybase64
except ImportError:  # pragma: no cover - a dependency; binascii does the same, slower
    pybase64 = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from forestream.streams.batch import BatchResult, RecordBatch
    from forestream.streams.store import StreamStore

log = logging.getLogger(__name__)

#: the smallest body taken by the fast path (see the module docstring)
MIN_BODY_BYTES = 16 * 1024


class FastPutRecords:
    """``PutRecords`` on ``store`` from a JSON body, or None where the general path must
    read it (see the module docstring). Callable as an
    :class:`~.protocol.Operation`'s ``fast``."""

    def __init__(self, store: StreamStore, shapes: ServiceShapes,
                 min_body: int = MIN_BODY_BYTES) -> None:
        self.store = store
        self.min_body = min_body
        model = shapes.shapes
        self._name, self._arn = model["StreamName"], model["StreamARN"]
        self._key, self._data = model["PartitionKey"], model["Data"]
        self._hash = model["HashKey"]
        entries = model["PutRecordsRequestEntryList"]
        from ._put_records_scan import MAX_ENTRIES  # no numba here: only a constant

        # the scanner assumes the model's list limits and a partition key without pattern
        self._usable = entries.get("min") == 1 and entries.get("max") == MAX_ENTRIES and \
            "pattern" not in self._key
        self._ready = threading.Event()
        self._tried = threading.Event()  # loading ended, the kernels loaded or not
        self._loading = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ readiness
    def ready(self) -> bool:
        """Whether the kernels are loaded; the first call starts loading them."""
        if self._ready.is_set():
            return True
        with self._lock:
            if not self._loading and self._usable:
                self._loading = True
                threading.Thread(target=self._load, name="put-records-kernels",
                                 daemon=True).start()
        return False

    def wait_ready(self, timeout: float = 300.0) -> bool:
        """Load the kernels now and wait until they are loaded, or failed to load (then
        False at once, not after ``timeout``): tests and ``make``'s warm-up; a server
        warms them on its first PutRecords."""
        if self.ready():
            return True
        if not self._usable:
            return False
        self._tried.wait(timeout)
        return self._ready.is_set()

    def _load(self) -> None:
        try:
            from forestream.streams.batch import warm

            if not warm():
                log.info("PutRecords' fast path is off: zlib or libcrypto not found")
                return
            sample = (b'{"StreamName": "s", "Records": [{"Data": "QUJD", "PartitionKey": '
                      b'"k", "ExplicitHashKey": "1"}, {"PartitionKey": "k", "Data": "QQ=="}]}')
            parsed = self.parse(sample)
            if parsed is None:
                raise RuntimeError("the fast path refused a plain PutRecords body")
            from forestream.streams.batch import BatchResult

            routed = np.zeros(parsed[0].count, dtype=np.int64)
            if render(BatchResult("NONE", [0], routed, {0: 0})) is None:
                raise RuntimeError("the fast path could not write an answer")
            self._ready.set()
        except Exception:  # noqa: BLE001 - the general path serves on; say why once
            log.warning("PutRecords' fast path is off", exc_info=True)
        finally:
            self._tried.set()

    # ------------------------------------------------------------------ the call
    def __call__(self, body: bytes) -> tuple[dict[str, Any], Any, bytes | None] | None:
        """(the arguments and result as metrics see them, the JSON answer — None: render
        the result), or None."""
        if len(body) < self.min_body or not self.ready():
            return None
        parsed = self.parse(body)
        if parsed is None:
            return None
        batch, name, arn = parsed
        args: dict[str, Any] = {"Records": batch}
        if name is not None:
            args["StreamName"] = name
        if arn is not None:
            args["StreamARN"] = arn
        stored = self.store.put_records_batch(batch, name, arn)
        rendered = None if stored.routed is None else render(stored)
        if rendered is None:  # stored either way: the answer from the result instead
            return args, stored.answer(), None
        return args, stored, rendered

    def parse(self, body: bytes) -> tuple[RecordBatch, str | None, str | None] | None:
        """The body as a batch, with its StreamName and StreamARN, or None."""
        from forestream.streams.batch import RecordBatch

        from ._put_records_scan import ARN, HASH, KEY, MAX_ENTRIES, NAME, gather_base64, scan

        view = np.frombuffer(body, dtype=np.uint8)
        spans = np.empty((MAX_ENTRIES, 6), dtype=np.int64)
        top = np.empty(4, dtype=np.int64)
        count = scan(view, spans, top)
        if count < 0:
            return None
        name = arn = None
        if top[NAME] >= 0:
            name = body[top[NAME]:top[NAME + 1]].decode("ascii")
            if _breaks(name, self._name):
                return None
        if top[ARN] >= 0:
            arn = body[top[ARN]:top[ARN + 1]].decode("ascii")
            if _breaks(arn, self._arn):
                return None
        spans = spans[:count]
        key_len = spans[:, KEY + 1] - spans[:, KEY]  # printable ASCII: characters = bytes
        low, high = self._key.get("min", 0), self._key.get("max")
        if key_len.min() < low or high is not None and key_len.max() > high:
            return None
        bulk = np.empty(int((spans[:, 1] - spans[:, 0]).sum()), dtype=np.uint8)
        main_start = np.empty(count, dtype=np.int64)
        main_len = np.empty(count, dtype=np.int64)
        tails = np.zeros((count, 3), dtype=np.uint8)
        tail_len = np.empty(count, dtype=np.int64)
        used = gather_base64(view, spans, count, bulk, main_start, main_len, tails, tail_len)
        if used < 0:
            return None
        try:
            decoded = pybase64.b64decode(bulk.data[:used], validate=True) \
                if pybase64 is not None else \
                binascii.a2b_base64(bulk.data[:used], strict_mode=True)
        except (binascii.Error, ValueError):
            return None
        sizes = main_len + tail_len
        low, high = self._data.get("min", 0), self._data.get("max")
        if sizes.min() < low or high is not None and sizes.max() > high:
            return None
        explicit = {}
        for i in np.flatnonzero(spans[:, HASH] >= 0).tolist():
            text = body[spans[i, HASH]:spans[i, HASH + 1]].decode("ascii")
            if _breaks(text, self._hash):
                return None
            explicit[i] = text
        batch = RecordBatch(count, view, np.ascontiguousarray(spans[:, KEY]), key_len,
                            np.frombuffer(decoded, dtype=np.uint8), main_start, main_len,
                            tails, tail_len, explicit)
        return batch, name, arn


def render(stored: BatchResult) -> bytes | None:
    """``orjson.dumps`` of the rendered ``stored.answer()``, written by numba (500
    result dicts, their sequence numbers' ``str`` and the JSON encoding cost about
    0.7 us a record); None where it cannot be written so."""
    from forestream.streams.hashing import sequence_base, shard_id

    from ._put_records_scan import render_answer

    assert stored.routed is not None
    starts = [str(sequence_base(stored.numbers[k]) + stored.firsts.get(k, 0))
              for k in range(len(stored.numbers))]
    ids = [shard_id(number) for number in stored.numbers]
    if len({len(s) for s in starts}) != 1 or len({len(i) for i in ids}) != 1:
        return None  # the kernel writes fixed-width columns
    sequences = np.frombuffer("".join(starts).encode("ascii"), dtype=np.uint8)
    shard_ids = np.frombuffer("".join(ids).encode("ascii"), dtype=np.uint8)
    head = b'{"FailedRecordCount":0,"Records":['
    tail = b'],"EncryptionType":' + orjson.dumps(stored.encryption) + b"}"
    count = len(stored.routed)
    out = np.empty(len(head) + len(tail) + count * (len(starts[0]) + len(ids[0]) + 40),
                   dtype=np.uint8)
    used = render_answer(out, np.frombuffer(head, dtype=np.uint8),
                         np.frombuffer(tail, dtype=np.uint8), stored.routed,
                         sequences.reshape(len(starts), -1).copy(),
                         shard_ids.reshape(len(ids), -1))
    return out[:used].tobytes() if used >= 0 else None
