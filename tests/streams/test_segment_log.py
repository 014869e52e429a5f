"""Tests of the embedded segment log (forestream.streams.segment_log)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from forestream.streams import segment_log
from forestream.streams.segment_log import CorruptLogError, LogRecord, SegmentLog

HEADER = 26  # frame header bytes (crc, length, offset, timestamp, key length)
CRASHER = Path(__file__).with_name("segment_log_crasher.py")


def entries(start: int, n: int, size: int = 100) -> list[tuple[bytes, bytes]]:
    return [(b"k%d" % i, ((b"%d:" % i) * size)[:size]) for i in range(start, start + n)]


def frame_size(key: bytes, value: bytes) -> int:
    return HEADER + len(key) + len(value)


def read_all(log: SegmentLog, offset: int = 0) -> list[LogRecord]:
    out: list[LogRecord] = []
    while batch := log.read(offset):
        out += batch
        offset = batch[-1].offset + 1
    return out


def logs(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.log"))


# ------------------------------------------------------------------ basics
def test_round_trip_offsets_contiguous(tmp_path):
    log = SegmentLog(tmp_path)
    written = []
    for b in range(20):
        batch = entries(len(written), b % 7 + 1)
        first, ts = log.append(batch)
        assert first == len(written)
        written += [(k, v, ts) for k, v in batch]
    assert log.next_offset == len(written) == 77 and log.start_offset == 0
    got = log.read(0)
    assert [r.offset for r in got] == list(range(len(written)))
    assert [(r.key, r.value, r.timestamp_ms) for r in got] == written
    assert log.read(log.next_offset) == [] and log.read(10**9) == []
    assert [r.offset for r in log.read(40, max_records=3)] == [40, 41, 42]
    assert log.size_bytes() == sum(frame_size(k, v) for k, v, _ in written)
    log.close()


def test_read_limits(tmp_path):
    log = SegmentLog(tmp_path, fsync=False)
    log.append([(b"k", b"x" * 100)] * 50)
    assert len(log.read(0, max_records=7)) == 7
    assert len(log.read(0, max_bytes=101 * 5)) == 5  # key + value bytes count
    assert len(log.read(0, max_bytes=101 * 5 - 1)) == 4
    assert [r.offset for r in log.read(10, max_bytes=1)] == [10]  # always at least one
    assert [r.offset for r in log.read(-5, max_records=2)] == [0, 1]
    assert len(log.read(0)) == 50 and log.read(49)[0].offset == 49
    with pytest.raises(ValueError):
        log.read(0, max_records=0)
    log.close()


def test_append_validation_and_empty_batch(tmp_path):
    log = SegmentLog(tmp_path)
    assert log.append([], timestamp_ms=5) == (0, 5)
    with pytest.raises(ValueError):
        log.append([(b"k" * 1025, b"v")])
    with pytest.raises(ValueError):
        log.append([(b"k", b"v" * (10 * 2**20 + 1))])
    with pytest.raises(TypeError):
        log.append([("text", b"v")])
    assert log.next_offset == 0 and log.size_bytes() == 0
    first, _ = log.append([(bytearray(b"k"), memoryview(b"value"))])
    assert first == 0 and log.read(0) == [LogRecord(0, log.last_timestamp_ms, b"k", b"value")]
    log.close()


def test_close_is_idempotent_and_final(tmp_path):
    log = SegmentLog(tmp_path / "s")
    log.append(entries(0, 3))
    log.close()
    log.close()
    with pytest.raises(ValueError):
        log.append(entries(3, 1))
    with pytest.raises(ValueError):
        log.read(0)
    log = SegmentLog(tmp_path / "s")
    log.delete()
    assert not (tmp_path / "s").exists()


# ------------------------------------------------------------------ segments
def test_rollover_and_reads_across_segments(tmp_path):
    log = SegmentLog(tmp_path, segment_max_bytes=2000, index_every_bytes=300)
    batch = entries(0, 100)
    log.append(batch[:60])
    log.append(batch[60:])
    files = logs(tmp_path)
    assert len(files) > 3
    assert all(f.stat().st_size <= 2000 for f in files)
    bases = [int(f.stem) for f in files]
    assert bases[0] == 0 and bases == sorted(bases)
    assert [(r.key, r.value) for r in log.read(0)] == batch
    assert [r.offset for r in log.read(bases[1] - 2, max_records=5)] == list(
        range(bases[1] - 2, bases[1] + 3))
    sizes = [len(k) + len(v) for k, v in batch]
    fits = max(n for n in range(1, 101) if sum(sizes[:n]) <= 5000)
    assert len(log.read(0, max_bytes=5000)) == fits and fits > 40  # crosses segments
    # a record larger than a segment goes alone into its own segment
    huge = (b"big", b"H" * 5000)
    first, _ = log.append([huge, (b"after", b"a")])
    assert first == 100
    big_file = tmp_path / f"{100:020d}.log"
    assert big_file.stat().st_size == frame_size(*huge)
    assert (tmp_path / f"{101:020d}.log").exists()
    assert [(r.key, r.value) for r in log.read(99, max_records=3)][1:] == [huge, (b"after", b"a")]
    log.close()


def test_reopen_preserves_everything_and_rebuilds_indexes(tmp_path):
    log = SegmentLog(tmp_path, segment_max_bytes=3000, index_every_bytes=256)
    batch = entries(0, 120)
    for i in range(0, 120, 10):
        log.append(batch[i:i + 10], timestamp_ms=1000 + i)
    log.close()
    idx_before = {p.name: p.read_bytes() for p in tmp_path.glob("*.idx")}
    log = SegmentLog(tmp_path, segment_max_bytes=3000, index_every_bytes=256)
    assert log.next_offset == 120 and log.last_timestamp_ms == 1110
    assert [(r.key, r.value) for r in read_all(log)] == batch
    assert log.append(entries(120, 1))[0] == 120
    log.close()
    # index files deleted, garbled, or cut short -> rebuilt from the logs
    idx = sorted(tmp_path.glob("*.idx"))
    idx[0].unlink()
    idx[1].write_bytes(b"\x01" * 100)
    idx[2].write_bytes(idx_before[idx[2].name][:28])
    idx[-1].unlink()
    log = SegmentLog(tmp_path, segment_max_bytes=3000, index_every_bytes=256)
    assert {p.name: p.read_bytes() for p in tmp_path.glob("*.idx")
            if p.name in idx_before and p != idx[-1]} == {
        k: v for k, v in idx_before.items() if k != idx[-1].name}
    assert [(r.key, r.value) for r in read_all(log)] == batch + entries(120, 1)
    assert [r.offset for r in log.read(77, max_records=2)] == [77, 78]
    assert log.offset_at_time(1055) == 60
    log.close()


def test_read_seeks_with_sparse_index(tmp_path, monkeypatch):
    log = SegmentLog(tmp_path, index_every_bytes=1000, fsync=False)
    batch = [(b"k", b"v" * 100)] * 1000  # 127-byte frames, one 64 MiB segment
    log.append(batch)
    starts = []
    real = segment_log.iter_frames

    def spy(fd, pos, end, *args):
        starts.append(pos)
        return real(fd, pos, end, *args)

    monkeypatch.setattr(segment_log, "iter_frames", spy)
    for target in (0, 7, 500, 999):
        starts.clear()
        assert log.read(target, max_records=1)[0].offset == target
        assert starts[0] <= target * 127 < starts[0] + 1000 + 127
    starts.clear()
    assert log.offset_at_time(log.last_timestamp_ms) == 0
    assert starts == [0]
    log.close()


def test_readers_see_only_committed_records(tmp_path, monkeypatch):
    log = SegmentLog(tmp_path)
    log.append(entries(0, 3))
    gate, syncing = threading.Event(), threading.Event()
    real = segment_log._fsync

    def held(fd: int) -> None:
        syncing.set()
        assert gate.wait(10)
        real(fd)

    monkeypatch.setattr(segment_log, "_fsync", held)
    writer = threading.Thread(target=log.append, args=(entries(3, 2),))
    writer.start()
    assert syncing.wait(10)
    assert (log.next_offset, log.committed_offset) == (5, 3)
    assert [r.offset for r in log.read(0)] == [0, 1, 2] and log.read(3) == []
    assert log.offset_at_time(log.last_timestamp_ms + 1) == 3
    gate.set()
    writer.join()
    assert [r.offset for r in log.read(0)] == [0, 1, 2, 3, 4] and log.committed_offset == 5
    log.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
def test_reads_keep_file_descriptors_bounded(tmp_path):
    log = SegmentLog(tmp_path, segment_max_bytes=500, fsync=False)
    for i in range(0, 200, 4):
        log.append(entries(i, 4))
    assert len(logs(tmp_path)) > 40
    before = len(os.listdir("/proc/self/fd"))
    assert len(read_all(log)) == 200
    assert [r.offset for r in log.read(0, max_records=3)] == [0, 1, 2]
    assert log.offset_at_time(0) == 0
    assert len(os.listdir("/proc/self/fd")) == before
    log.close()


def test_retention_while_reading(tmp_path):
    log = SegmentLog(tmp_path, segment_max_bytes=600, fsync=False)
    stop, errors = threading.Event(), []

    def reader() -> None:
        while not stop.is_set():
            got = log.read(0, max_records=50)
            offsets = [r.offset for r in got]
            if got and offsets != list(range(offsets[0], offsets[0] + len(got))):
                errors.append(offsets)

    rd = threading.Thread(target=reader)
    rd.start()
    dropped = 0
    for i in range(400):
        log.append(entries(i, 1), timestamp_ms=i)
        if i % 10 == 0:
            dropped += log.delete_before(i - 50)
    stop.set()
    rd.join()
    assert not errors and dropped == log.start_offset > 250
    log.close()


# ------------------------------------------------------------------ recovery
@pytest.mark.parametrize("damage", ["garbage", "flip", "truncate", "zeros"])
def test_torn_tail_is_truncated(tmp_path, damage):
    log = SegmentLog(tmp_path, index_every_bytes=200)
    batch = entries(0, 30)
    for i in range(30):
        log.append(batch[i:i + 1])
    log.close()
    (path,) = logs(tmp_path)
    size = path.stat().st_size
    last = frame_size(*batch[-1])
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data += b"\x17\x00\x00\x00\x30\x00" + os.urandom(20)  # a partial frame
        keep = 30
    elif damage == "flip":
        data[size - last // 2] ^= 0x40
        keep = 29
    elif damage == "truncate":
        del data[size - last // 3:]
        keep = 29
    else:  # zero-filled blocks after the last frame (e.g. after a power cut)
        data += bytes(4096)
        keep = 30
    path.write_bytes(bytes(data))
    log = SegmentLog(tmp_path, index_every_bytes=200)
    assert log.next_offset == keep
    assert path.stat().st_size == sum(frame_size(k, v) for k, v in batch[:keep])
    assert [(r.key, r.value) for r in read_all(log)] == batch[:keep]
    assert log.append(entries(keep, 2))[0] == keep
    log.close()
    log = SegmentLog(tmp_path)
    assert [(r.key, r.value) for r in read_all(log)] == batch[:keep] + entries(keep, 2)
    log.close()


def _sealed_segments(tmp_path) -> tuple[Path, list[tuple[bytes, bytes]]]:
    log = SegmentLog(tmp_path, segment_max_bytes=1500, index_every_bytes=200)
    batch = entries(0, 40)
    log.append(batch)
    log.close()
    return logs(tmp_path)[0], batch


def test_damage_in_older_segment_truncated_raises(tmp_path):
    first, _ = _sealed_segments(tmp_path)
    with open(first, "r+b") as f:
        f.truncate(first.stat().st_size - 10)
    with pytest.raises(CorruptLogError, match=first.name) as info:
        SegmentLog(tmp_path)
    assert info.value.path == str(first)


@pytest.mark.parametrize("where", [0.3, 0.95])
def test_damage_in_older_segment_flipped_byte_raises(tmp_path, where):
    first, batch = _sealed_segments(tmp_path)
    data = bytearray(first.read_bytes())
    data[int(len(data) * where)] ^= 0x01
    first.write_bytes(bytes(data))
    with pytest.raises(CorruptLogError, match=first.name):  # at open or, at the latest, read
        log = SegmentLog(tmp_path)
        try:
            read_all(log)
        finally:
            log.close()


# ------------------------------------------------------------------ time
def test_offset_at_time_and_monotonic_timestamps(tmp_path):
    log = SegmentLog(tmp_path, segment_max_bytes=1000, index_every_bytes=100)
    for i in range(50):  # timestamps 1000, 1000, 1010, 1010, ...
        assert log.append(entries(i, 1), timestamp_ms=1000 + (i // 2) * 10) == (
            i, 1000 + (i // 2) * 10)
    assert len(logs(tmp_path)) > 3
    assert log.offset_at_time(0) == 0
    assert log.offset_at_time(1000) == 0
    assert log.offset_at_time(1001) == 2
    assert log.offset_at_time(1100) == 20
    assert log.offset_at_time(1245) == 50 == log.next_offset
    for t in range(995, 1250, 3):
        expected = next((r.offset for r in log.read(0) if r.timestamp_ms >= t), 50)
        assert log.offset_at_time(t) == expected
    # an older timestamp is raised to the last one
    assert log.append(entries(50, 1), timestamp_ms=5) == (50, 1240)
    assert log.read(50)[0].timestamp_ms == 1240
    log.close()
    log = SegmentLog(tmp_path)
    assert log.last_timestamp_ms == 1240
    assert log.append(entries(51, 1), timestamp_ms=7)[1] == 1240
    _first, now_ts = log.append(entries(52, 1))
    assert abs(now_ts - time.time() * 1000) < 60_000
    log.close()


def test_delete_before_drops_whole_old_segments(tmp_path):
    log = SegmentLog(tmp_path, segment_max_bytes=1000)
    for i in range(40):
        log.append(entries(i, 1), timestamp_ms=10 * i)
    segs = [int(p.stem) for p in logs(tmp_path)]
    assert len(segs) >= 4
    # segment k holds offsets segs[k] .. segs[k+1]-1; its last timestamp is 10*(segs[k+1]-1)
    cut = 10 * (segs[2] - 1) + 1  # just after the last record of segment 1
    assert log.delete_before(cut - 1) == segs[1]  # only segment 0
    assert log.start_offset == segs[1]
    assert log.delete_before(cut) == segs[2] - segs[1]
    assert log.start_offset == segs[2] and int(logs(tmp_path)[0].stem) == segs[2]
    assert log.read(0, max_records=1)[0].offset == segs[2]
    assert log.offset_at_time(0) == segs[2]
    assert log.delete_before(10**9) == segs[-1] - segs[2]  # never the active segment
    assert log.start_offset == segs[-1] and len(logs(tmp_path)) == 1
    log.close()
    log = SegmentLog(tmp_path)
    assert (log.start_offset, log.next_offset) == (segs[-1], 40)
    assert log.append(entries(40, 1))[0] == 40
    assert [r.offset for r in log.read(0)] == list(range(segs[-1], 41))
    log.close()


def test_offsets_never_reused_after_everything_expires(tmp_path):
    log = SegmentLog(tmp_path, segment_max_bytes=200)
    for i in range(10):
        log.append(entries(i, 1, size=150), timestamp_ms=i)
    log.append(entries(10, 1, size=150), timestamp_ms=10**6)
    assert log.delete_before(10**5) == 10
    log.close()
    log = SegmentLog(tmp_path, segment_max_bytes=200)
    assert (log.start_offset, log.next_offset) == (10, 11)
    assert log.append(entries(11, 1))[0] == 11
    log.close()


# ------------------------------------------------------------------ concurrency
def _hammer(log: SegmentLog, threads: int = 8, batches: int = 200) -> dict:
    results: dict[int, list[tuple[int, int, str]]] = {t: [] for t in range(threads)}
    stop = threading.Event()
    reader_errors: list[str] = []

    def writer(t: int) -> None:
        rng = random.Random(t)
        for b in range(batches):
            batch = [(b"t%d-%d-%d" % (t, b, j), os.urandom(rng.randint(1, 300)))
                     for j in range(rng.randint(1, 8))]
            first, _ = log.append(batch)
            sha = hashlib.sha256(b"".join(k + v for k, v in batch)).hexdigest()
            results[t].append((first, len(batch), sha))

    def reader() -> None:  # concurrent reads see only whole, contiguous, committed records
        offset = 0
        while not stop.is_set() or offset < log.committed_offset:
            got = log.read(offset, max_records=500)
            if got and [r.offset for r in got] != list(range(offset, offset + len(got))):
                reader_errors.append(f"gap at {offset}")
            if got and not got[0].key.startswith(b"t"):
                reader_errors.append(f"bad record {got[0]}")
            offset += len(got)
            if not got:
                time.sleep(0.0005)

    workers = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    rd = threading.Thread(target=reader)
    rd.start()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    stop.set()
    rd.join()
    assert not reader_errors
    return results


def _check_hammer(log: SegmentLog, results: dict) -> int:
    ranges = sorted((f, f + n) for runs in results.values() for f, n, _ in runs)
    assert all(a[1] <= b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    total = sum(n for runs in results.values() for _, n, _ in runs)
    assert log.next_offset == total and ranges[-1][1] == total
    records = read_all(log)
    assert len(records) == total
    for t, runs in results.items():
        for first, n, sha in runs:
            got = records[first:first + n]
            assert all(r.key.startswith(b"t%d-" % t) for r in got)
            assert hashlib.sha256(b"".join(r.key + r.value for r in got)).hexdigest() == sha
    return sum(len(runs) for runs in results.values())


def test_group_commit_many_threads(tmp_path):
    log = SegmentLog(tmp_path)
    results = _hammer(log)
    appends = _check_hammer(log, results)
    print(f"\ngroup commit: {appends} appends, {log.fsync_count} fsyncs")
    assert appends == 1600 and log.fsync_count < appends
    log.close()
    log = SegmentLog(tmp_path)
    _check_hammer(log, results)
    log.close()


def test_group_commit_shares_slow_fsyncs(tmp_path, monkeypatch):
    real = segment_log._fsync

    def slow(fd: int) -> None:
        time.sleep(0.002)
        real(fd)

    monkeypatch.setattr(segment_log, "_fsync", slow)
    log = SegmentLog(tmp_path, segment_max_bytes=256 * 1024)  # some rollovers too
    results = _hammer(log, batches=100)
    appends = _check_hammer(log, results)
    print(f"\ngroup commit (2 ms fsync): {appends} appends, {log.fsync_count} fsyncs")
    assert log.fsync_count <= appends / 3
    log.close()


# ------------------------------------------------------------------ crash
@pytest.mark.slow
def test_crash_recovery_sigkill(tmp_path):
    spec = importlib.util.spec_from_file_location("_segment_log_crasher_under_test", CRASHER)
    crasher = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(crasher)
    payload = crasher.payload
    rng = random.Random(1234)
    acked: list[tuple[int, int, str]] = []
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    for round_ in range(10):
        proc = subprocess.Popen([sys.executable, str(CRASHER), str(tmp_path), str(round_)],
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(rng.uniform(0.02, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        out = proc.stdout.read()
        proc.wait()
        proc.stdout.close()
        lines = out.split(b"\n")[:-1]  # the last piece may be a partial line
        assert not any(line.startswith(b"error") for line in lines), lines
        acked += [(int(f), int(n), s.decode()) for f, n, s in (line.split() for line in lines)]
        log = SegmentLog(tmp_path, segment_max_bytes=crasher.SEGMENT_MAX_BYTES,
                         index_every_bytes=crasher.INDEX_EVERY_BYTES)
        try:
            records = read_all(log)
            assert [r.offset for r in records] == list(range(log.next_offset))
            for r in records:  # acknowledged or not, every stored record is one attempted
                assert (r.key, r.value) == payload(r.offset), r.offset
            for first, n, sha in acked:
                assert first + n <= log.next_offset
                got = b"".join(r.value for r in records[first:first + n])
                assert hashlib.sha256(got).hexdigest() == sha
        finally:
            log.close()
    assert len(acked) > 10
    print(f"\ncrash test: {len(acked)} acknowledged batches, {log.next_offset} records")
