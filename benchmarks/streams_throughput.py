"""Kinesis PutRecords/GetRecords throughput: forestream vs kinesalite vs moto, side by side.

Every peer is started here on 127.0.0.1 (and only there) on a free port, gets one stream with
4 shards (polled with DescribeStreamSummary until ACTIVE), then:

* put phase: --writers threads, each with its own boto3 client (no retries), send PutRecords
  of 500 records x 1 KiB for --seconds. Each payload starts with a 16-byte id (writer, counter)
  followed by 1008 bytes cut from a seeded random pool; partition keys are unique, so records
  of all writers interleave on every shard. Reported: acknowledged records/s and MB/s
  (records with a SequenceNumber; MB = 10^6 bytes of payload), p50/p99 latency of one
  PutRecords call, records that came back with an ErrorCode, and the CPU used by the server
  process and by this (client) process during the phase, in % of one core.
* get phase: one reader walks every shard from TRIM_HORIZON with GetRecords(Limit=10000)
  until an empty answer with MillisBehindLatest 0. Reported: records/s and MB/s read.
* check: every acknowledged id must be read exactly once with its exact bytes. "lost" =
  acknowledged but never read, "dup" = extra copies read, "unacked" = read although its put
  failed (only allowed when the whole call failed, i.e. ambiguously), "bad" = wrong bytes.

Peers: forestream with fsync (default) and with --no-fsync, each on a fresh data dir;
kinesalite (npm, installed on demand into ~/.cache/forestream-bench, run with LevelDB on
disk via its `path` option and 0 ms state delays; its CLI binds every interface, so it is
started through its module API with listen(port, '127.0.0.1')); moto_server (pip, own venv
in ~/.cache/forestream-bench/moto-venv). A peer that cannot be installed is skipped with a
note. The "boto3 only" row answers PutRecords inside the client (a botocore before-send
hook), so it measures the client-side ceiling: building, validating, serializing, signing
requests and parsing responses with the same writer threads, no server at all.
With --repeats N every peer runs N times (fresh server each time, peers interleaved) and the
table shows the median of each rate, latency and CPU column and the total of the error/loss
columns. ratio = forestream (fsync) put records/s / the row's put records/s.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from importlib import metadata
from pathlib import Path

import boto3
import botocore
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from rich.console import Console
from rich.table import Table

REC, BATCH, SHARDS, STREAM, SEED = 1024, 500, 4, "bench", 7
CACHE = Path.home() / ".cache" / "forestream-bench"
POOL = __import__("random").Random(SEED).randbytes(1 << 20)
HERE = Path(__file__).resolve().parent.parent
console = Console(width=None if sys.stdout.isatty() else 160)
COLS = ["put rec/s", "put MB/s", "p50 ms", "p99 ms", "put err", "srv CPU%", "cli CPU%",
        "get rec/s", "get MB/s", "lost", "dup", "unacked", "bad"]
SUMMED = {"put err", "lost", "dup", "unacked", "bad"}


def payload(w: int, i: int) -> bytes:
    off = (i * 7919 + w * 104729) % (len(POOL) - REC)
    return struct.pack(">QQ", w, i) + POOL[off:off + REC - 16]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port: int | None):
    return boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{port or 9}",
                        region_name="us-east-1", aws_access_key_id="bench",
                        aws_secret_access_key="bench",
                        config=Config(retries={"total_max_attempts": 1}, read_timeout=300,
                                      connect_timeout=10))


def proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError):
        return 0.0


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def ensure(name: str, target: Path, cmds: list[list[str]]) -> Path | None:
    """Install a peer into CACHE on first use; None (after a note) if that fails."""
    if not target.exists():
        console.print(f"installing {name} into {CACHE} ...", markup=False)
        CACHE.mkdir(parents=True, exist_ok=True)
        err = ""
        for cmd in cmds:
            try:
                r = subprocess.run(cmd, capture_output=True, text=True)
            except OSError as exc:
                r = subprocess.CompletedProcess(cmd, 1, "", str(exc))
            err += r.stderr[-300:]
            if r.returncode:
                break
        if not target.exists():
            console.print(f"note: installing {name} failed, skipping it: {err}", markup=False)
            return None
    return target


KINESALITE_JS = ("const [mod, port, path] = process.argv.slice(1);"
                 "require(mod)({path, createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0,"
                 " shardLimit: 100}).listen(+port, '127.0.0.1')")


class Server:
    """One peer process on 127.0.0.1:port with its own temp dir; always killed on exit."""

    def __init__(self, argv, port: int, tmp: str) -> None:
        with open(Path(tmp) / "server.log", "wb") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        LIVE.add(self)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                log = (Path(tmp) / "server.log").read_text(errors="replace")[-800:]
                raise RuntimeError(f"{argv[0]} did not start: {log}")
            try:
                client(port).list_streams()
                return
            except Exception:
                time.sleep(0.2)

    def stop(self) -> None:
        LIVE.discard(self)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


LIVE: set[Server] = set()


def fake_send(request, **_):
    """before-send hook: answer PutRecords in the client, as a fast server would."""
    n = len(json.loads(request.body)["Records"])
    body = json.dumps({"FailedRecordCount": 0, "Records": [
        {"SequenceNumber": f"4960{i:052d}", "ShardId": "shardId-000000000000"}
        for i in range(n)]}).encode()

    class Raw:
        def stream(self, *a, **k):
            yield body
    return AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.1"}, Raw())


def put_phase(port, args, pid):
    acked, failed_ids, ambiguous, lat, errors = [], [], [], [], Counter()
    lock, start = threading.Lock(), threading.Barrier(args.writers + 1)

    def writer(w: int) -> None:
        kin = client(port)
        if port is None:
            kin.meta.events.register("before-send.kinesis.PutRecords", fake_send)
        i, mine, bad, amb, times, errs = 0, [], [], [], [], Counter()
        start.wait()
        while time.perf_counter() < deadline:
            ids = range(i, i + BATCH)
            recs = [{"Data": payload(w, j), "PartitionKey": f"{w}-{j}"} for j in ids]
            i += BATCH
            t0 = time.perf_counter()
            try:
                res = kin.put_records(StreamName=STREAM, Records=recs)["Records"]
            except Exception as exc:
                errs[type(exc).__name__] += 1
                amb += [(w, j) for j in ids]
                continue
            times.append(time.perf_counter() - t0)
            for j, r in zip(ids, res, strict=False):
                (mine if "SequenceNumber" in r else bad).append((w, j))
                errs.update([r["ErrorCode"]] if "SequenceNumber" not in r else [])
        with lock:
            acked.extend(mine)
            failed_ids.extend(bad)
            ambiguous.extend(amb)
            lat.extend(times)
            errors.update(errs)

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(args.writers)]
    for t in threads:
        t.start()
    c0, s0 = time.process_time(), proc_cpu(pid) if pid else 0.0
    t0 = time.perf_counter()
    deadline = t0 + args.seconds
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    srv = (proc_cpu(pid) - s0) / wall * 100 if pid else float("nan")
    row = {"put rec/s": len(acked) / wall, "put MB/s": len(acked) * REC / wall / 1e6,
           "p50 ms": pct(lat, 0.5) * 1e3, "p99 ms": pct(lat, 0.99) * 1e3,
           "put err": len(failed_ids) + len(ambiguous), "srv CPU%": srv,
           "cli CPU%": (time.process_time() - c0) / wall * 100}
    return row, acked, failed_ids, ambiguous, errors


def get_phase(port, acked, ambiguous):
    kin, seen, bad, n = client(port), Counter(), 0, 0
    t0 = time.perf_counter()
    for shard in kin.list_shards(StreamName=STREAM)["Shards"]:
        it = kin.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        empties = 0
        while it and empties < 3:
            res = kin.get_records(ShardIterator=it, Limit=10000)
            it = res.get("NextShardIterator")
            for r in res["Records"]:
                w, j = struct.unpack(">QQ", r["Data"][:16])
                seen[(w, j)] += 1
                bad += r["Data"] != payload(w, j)
            n += len(res["Records"])
            if not res["Records"]:
                empties = 3 if res.get("MillisBehindLatest", 0) == 0 else empties + 1
    wall = time.perf_counter() - t0
    acked_set, amb = set(acked), set(ambiguous)
    digest = hashlib.sha256(repr(sorted(acked_set)).encode()).hexdigest()[:12]
    read_digest = hashlib.sha256(repr(sorted(seen.keys() & acked_set)).encode()).hexdigest()[:12]
    return {"get rec/s": n / wall, "get MB/s": n * REC / wall / 1e6,
            "lost": len(acked_set - seen.keys()),
            "dup": sum(c - 1 for c in seen.values() if c > 1),
            "unacked": len(seen.keys() - acked_set - amb), "bad": bad,
            "_amb_read": len(seen.keys() & amb), "_hash": (digest, read_digest)}


def run_peer(name, mode, make_argv, args):
    tmp = tempfile.mkdtemp(prefix="fs-bench-")
    server, port, pid = None, None, None
    try:
        if make_argv is not None:
            port = free_port()
            server = Server(make_argv(port, tmp), port, tmp)
            pid = server.proc.pid
            kin = client(port)
            kin.create_stream(StreamName=STREAM, ShardCount=SHARDS)
            while kin.describe_stream_summary(StreamName=STREAM)[
                    "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
                time.sleep(0.1)
        row, acked, failed_ids, ambiguous, errors = put_phase(port, args, pid)
        if port is not None:
            row |= get_phase(port, acked, ambiguous)
        extra = f" errors {dict(errors)}" if errors else ""
        if "_hash" in row:
            h = row.pop("_hash")
            extra += f" sha256(acked ids) {h[0]} / read {h[1]}; ambiguous ids read " \
                     f"{row.pop('_amb_read')} of {len(ambiguous)}"
        console.print(f"  {name:10} {mode:22} acked {len(acked):,}, "
                      f"{row['put rec/s']:,.0f} rec/s;{extra}", markup=False)
        return row
    finally:
        if server:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def version(cmd) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20, help="put phase length (default 20)")
    ap.add_argument("--writers", type=int, default=4, help="writer threads (default 4)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per peer; medians (default 1)")
    ap.add_argument("--skip-kinesalite", action="store_true")
    ap.add_argument("--skip-moto", action="store_true")
    args = ap.parse_args()
    def fs(*extra):
        return lambda p, d: [str(Path(sys.executable).parent / "forestream"), "server",
                             "--host", "127.0.0.1", "--port", str(p), "--data-dir", d, *extra]
    peers = [("boto3 only", "no server (client ceiling)", None),
             ("forestream", "fsync", fs()), ("forestream", "no-fsync", fs("--no-fsync"))]
    venv = CACHE / "moto-venv"
    kl = None if args.skip_kinesalite else ensure(
        "kinesalite", CACHE / "node_modules" / "kinesalite" / "index.js",
        [["npm", "install", "--prefix", str(CACHE), "kinesalite"]])
    kl = kl and kl.parent
    if kl:
        peers.append(("kinesalite", "LevelDB on disk (--path)", lambda p, d: [
            "node", "-e", KINESALITE_JS, str(kl / "index.js"), str(p), str(Path(d) / "ldb")]))
    moto = None if args.skip_moto else ensure("moto[server]", venv / "bin" / "moto_server", [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "-q", "moto[server]"]])
    if moto:
        peers.append(("moto", "in memory", lambda p, d: [str(moto), "-H", "127.0.0.1",
                                                         "-p", str(p)]))
    git = version(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"])
    kv = json.loads((kl / "package.json").read_text())["version"] if kl else "-"
    mv = version([str(moto.parent / "python"), "-c",
                  "import moto; print(moto.__version__)"]) if moto else "-"
    console.print(f"machine: nproc={os.cpu_count()}, {platform.machine()}, Linux "
                  f"{platform.release()}, load average {os.getloadavg()}\n"
                  f"python {platform.python_version()}, boto3 {boto3.__version__}, botocore "
                  f"{botocore.__version__}, forestream {metadata.version('forestream')} (git "
                  f"{git}), node {version(['node', '--version'])}, kinesalite {kv}, moto {mv}\n"
                  f"workload: {SHARDS} shards, {args.writers} writer threads x {args.seconds:g}"
                  f" s, PutRecords of {BATCH} x {REC} B, {args.repeats} repeat(s)", markup=False)
    runs: dict[tuple[str, str], list[dict]] = {(n, m): [] for n, m, _ in peers}
    try:
        for rep in range(args.repeats):
            console.print(f"repeat {rep + 1}/{args.repeats}")
            for name, mode, make_argv in peers:
                try:
                    runs[name, mode].append(run_peer(name, mode, make_argv, args))
                except Exception as exc:
                    console.print(f"[yellow]note: {name} {mode} failed: {exc!r}"[:600])
    finally:
        for s in list(LIVE):
            s.stop()
    med = {k: {c: (sum if c in SUMMED else statistics.median)([r[c] for r in v]) for c in v[0]}
           for k, v in runs.items() if v}
    base = med.get(("forestream", "fsync"), {}).get("put rec/s")
    what = f"median of {args.repeats} repeats" if args.repeats > 1 else "one run"
    table = Table(title=f"Kinesis PutRecords / GetRecords over HTTP on 127.0.0.1 ({what})",
                  caption="ratio = forestream (fsync) put rec/s / this row's; MB = 10^6 B; "
                          "put err, lost, dup, unacked, bad: totals over all repeats")
    for c in ["peer", "mode", *COLS, "ratio"]:
        table.add_column(c, justify="left" if c in ("peer", "mode") else "right")
    for (name, mode), m in med.items():
        cells = [f"{m[c]:,.0f}" if c in m and m[c] == m[c] else "-" for c in COLS]
        cells[1] = f"{m['put MB/s']:.1f}"
        if "get MB/s" in m:
            cells[8] = f"{m['get MB/s']:.1f}"
        ratio = f"{base / m['put rec/s']:.2f}" if base and m["put rec/s"] else "-"
        table.add_row(name, mode, *cells, ratio)
    console.print(table)
    console.print(f"load average at the end: {os.getloadavg()}", markup=False)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the servers
    try:
        main()
    except KeyboardInterrupt:
        for s in list(LIVE):
            s.stop()
        sys.exit(130)
