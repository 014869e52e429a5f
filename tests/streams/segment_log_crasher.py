"""Helper for the SegmentLog crash test (run as a script; killed with SIGKILL by the test).

Usage: python segment_log_crasher.py DIRECTORY SEED

Opens the log (recovering it), prints ``ready``, then appends batches forever with
``fsync=True``. Each record's key and value are a pure function of its offset
(:func:`payload`), so the test can check any record it finds, acknowledged or not. After each
append returns, prints ``FIRST COUNT SHA256`` (SHA-256 of the batch's values), flushed.
"""

from __future__ import annotations

import hashlib
import random
import sys

SEGMENT_MAX_BYTES = 200_000
INDEX_EVERY_BYTES = 1024


def payload(offset: int) -> tuple[bytes, bytes]:
    """The (key, value) the crasher writes at ``offset``: 32 B to ~240 KB."""
    unit = hashlib.sha256(b"%d" % offset).digest() * (1 + offset % 37)
    return b"key-%d" % offset, unit * (200 if offset % 101 == 0 else 1)


def main(directory: str, seed: int) -> None:
    from forestream.streams.segment_log import SegmentLog

    rng = random.Random(seed)
    log = SegmentLog(directory, segment_max_bytes=SEGMENT_MAX_BYTES, fsync=True,
                     index_every_bytes=INDEX_EVERY_BYTES)
    print("ready", flush=True)
    while True:
        first = log.next_offset
        batch = [payload(o) for o in range(first, first + rng.randint(1, 30))]
        got, _ts = log.append(batch)
        if got != first:
            print(f"error: expected offset {first}, got {got}", flush=True)
            sys.exit(2)
        sha = hashlib.sha256(b"".join(v for _k, v in batch)).hexdigest()
        print(f"{first} {len(batch)} {sha}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
