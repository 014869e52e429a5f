"""Kinesis PutRecords throughput and server CPU per record: forestream (embedded segment log,
and on a NATS JetStream cluster with 1 and 3 replicas) vs kinesalite, side by side.

Every peer is started here on 127.0.0.1 (and only there) on free ports and gets one stream
of 4 shards (polled with DescribeStreamSummary until ACTIVE). Then:

* load: --clients loader *processes* (benchmarks/_loadgen.py; not boto3, which tops out
  near 35k records/s on its own), each with one keep-alive HTTP/1.1 connection, send
  PutRecords back to back (closed loop) for --warmup + --seconds. Each loader builds, before
  the clock starts, a ring of --ring distinct request bodies of 500 records x 1 KiB (a
  16-byte id: loader, ring position, record; then bytes cut from a seeded random pool;
  unique partition keys), signed with AWS Signature V4 (botocore's signer, credentials
  ``bench``/``bench``), and sends the ring round and round. Before that a forestream
  server gets large PutRecords on a stream of its own until its PutRecords fast path has
  loaded its numba kernels (``forestream_put_records_batched_total`` > 0), so that their
  loading (or compiling) is not in the window. forestream runs with those
  credentials configured, so it verifies every signature (and the body's SHA-256);
  kinesalite checks none.
* reported, over the measuring window: acknowledged records/s and MB/s (records with a
  SequenceNumber; MB = 10^6 bytes of payload), p50/p99 of one PutRecords call, and the
  **server CPU in microseconds per acknowledged record**: user + system CPU of every
  server process (the front end and its children; for JetStream rows the nats-server
  nodes as well) over the window, divided by the records acknowledged in it. "loader
  CPU%" is the loaders' CPU (100 = one core).
* check: afterwards every shard is read from TRIM_HORIZON (boto3 GetRecords) and every
  record counted by its id. A record must be read exactly as many times as sends of it
  were acknowledged (the ring repeats bodies; every repeat is a new record to Kinesis):
  "lost" = acknowledged copies never read, "dup" = copies read beyond the acknowledged
  ones and those of sends whose answer never came, "bad" = wrong bytes.

Peers (--peers, in this order; interleaved per repeat): ``fsync`` forestream with its
default fsync; ``no-fsync``; ``js-r1`` forestream on a one-node JetStream (file storage);
``js-r3`` forestream on three JetStream nodes with 3 replicas (one front end; all nodes on
this machine); ``kinesalite`` (npm, installed on demand into ~/.cache/forestream-bench,
LevelDB on disk, 0 ms state delays, bound to 127.0.0.1 through its module API); ``moto``
(pip, in memory; its own venv there). A peer that cannot be installed is skipped with a
note. With --repeats N each peer runs N times (fresh servers each time, peers interleaved)
and the table shows medians (error and loss columns: totals). "CPU x" = kinesalite's
server CPU per record / the row's.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from importlib import metadata
from pathlib import Path

import boto3
import botocore
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _loadgen import run_ring_load  # noqa: E402

from forestream.streams.jetstream.local_cluster import (  # noqa: E402
    JetStreamCluster,
    nats_server_binary,
)

REC, BATCH, SHARDS, STREAM, SEED = 1024, 500, 4, "bench", 7
KEY = "bench"
CACHE = Path.home() / ".cache" / "forestream-bench"
POOL = __import__("random").Random(SEED).randbytes(1 << 20)
HERE = Path(__file__).resolve().parent.parent
console = Console(width=None if sys.stdout.isatty() else 170)
PEERS = ["fsync", "no-fsync", "js-r1", "js-r3", "kinesalite", "moto"]
COLS = ["rec/s", "MB/s", "p50 ms", "p99 ms", "srv CPU us/rec", "srv CPU%", "loader CPU%",
        "errors", "lost", "dup", "bad"]
SUMMED = {"errors", "lost", "dup", "bad"}
KINESALITE_JS = ("const [mod, port, path] = process.argv.slice(1);"
                 "require(mod)({path, createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0,"
                 " shardLimit: 100}).listen(+port, '127.0.0.1')")


def payload(client: int, ring: int, i: int) -> bytes:
    off = (i * 7919 + ring * 104729 + client * 1299709) % (len(POOL) - REC)
    return struct.pack(">IIQ", client, ring, i) + POOL[off:off + REC - 16]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def boto(port: int):
    return boto3.client("kinesis", endpoint_url=f"http://127.0.0.1:{port}",
                        region_name="us-east-1", aws_access_key_id=KEY,
                        aws_secret_access_key=KEY,
                        config=Config(retries={"max_attempts": 5}, read_timeout=300))


def signed_ring(port: int, ring: int):
    """A loader's requests: ``ring`` PutRecords bodies, each signed (SigV4) once."""
    signer = SigV4Auth(Credentials(KEY, KEY), "kinesis", "us-east-1")

    def make(client: int) -> list[tuple[bytes, dict[str, str], int]]:
        out = []
        for r in range(ring):
            records = [{"Data": base64.b64encode(payload(client, r, i)).decode(),
                        "PartitionKey": f"{client}-{r}-{i}"} for i in range(BATCH)]
            body = json.dumps({"StreamName": STREAM, "Records": records},
                              separators=(",", ":")).encode()
            request = AWSRequest("POST", f"http://127.0.0.1:{port}/", data=body, headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": "Kinesis_20131202.PutRecords"})
            signer.add_auth(request)
            out.append((body, dict(request.headers.items()), BATCH))
        return out
    return make


def judge(status: int, answer: bytes) -> tuple[str, list[int] | None]:
    """A PutRecords answer: all acknowledged, some (their indexes), none, or unknown."""
    if status >= 500:
        return "unknown", None
    if status != 200:
        return "refused", None
    if b'"FailedRecordCount":0' in answer:
        return "ok", None
    results = json.loads(answer)["Records"]
    return "partial", [i for i, r in enumerate(results) if "SequenceNumber" in r]


def ensure(name: str, target: Path, cmds: list[list[str]]) -> Path | None:
    """Install a peer into CACHE on first use; None (after a note) if that fails."""
    if not target.exists():
        console.print(f"installing {name} into {CACHE} ...", markup=False)
        CACHE.mkdir(parents=True, exist_ok=True)
        err = ""
        for cmd in cmds:
            try:
                r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as exc:
                r = subprocess.CompletedProcess(cmd, 1, "", str(exc))
            err += r.stderr[-300:]
            if r.returncode:
                break
        if not target.exists():
            console.print(f"note: installing {name} failed, skipping it: {err}", markup=False)
            return None
    return target


class Peer:
    """One peer's processes on 127.0.0.1, started fresh; always stopped."""

    def __init__(self, name: str, tmp: Path, kinesalite: Path | None, moto: Path | None,
                 baseline: Path | None = None):
        self.name, self.tmp = name, tmp
        self.port = free_port()
        self.cluster: JetStreamCluster | None = None
        env = {**os.environ, "FORESTREAM_ACCESS_KEY_ID": KEY,
               "FORESTREAM_SECRET_ACCESS_KEY": KEY, "FORESTREAM_NO_TOKEN": "1"}
        if name.endswith("@base"):  # the same peer, forestream's code from another tree
            name = name[:-len("@base")]
            env["PYTHONPATH"] = str(baseline)
        fs = [str(Path(sys.executable).parent / "forestream"), "server", "--host",
              "127.0.0.1", "--port", str(self.port), "--data-dir", str(tmp / "data"),
              "--log-level", "warning"]
        if name == "no-fsync":
            fs.append("--no-fsync")
        if name.startswith("js-"):
            replicas = int(name[-1])
            self.cluster = JetStreamCluster(tmp / "nats", nodes=replicas).start()
            fs += ["--streams", self.cluster.url, "--replicas", str(replicas)]
        argv = {"kinesalite": ["node", "-e", KINESALITE_JS, str(kinesalite),
                               str(self.port), str(tmp / "ldb")],
                "moto": [str(moto), "-H", "127.0.0.1", "-p", str(self.port)]}.get(name, fs)
        with open(tmp / "server.log", "wb") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        LIVE.add(self)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"{name} did not start: "
                                   f"{(tmp / 'server.log').read_text(errors='replace')[-800:]}")
            try:
                boto(self.port).list_streams()
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.2)

    @property
    def pids(self) -> list[int]:
        nodes = [p.pid for p in self.cluster.procs if p is not None] if self.cluster else []
        return [self.proc.pid, *nodes]

    def stop(self) -> None:
        LIVE.discard(self)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.cluster is not None:
            self.cluster.stop()


LIVE: set[Peer] = set()


def read_back(port: int) -> Counter:
    """How many times each (loader, ring, record) id is stored, and bad copies."""
    kin, seen = boto(port), Counter()
    for shard in kin.list_shards(StreamName=STREAM)["Shards"]:
        it = kin.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                    ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        empties = 0
        while it and empties < 3:
            res = kin.get_records(ShardIterator=it, Limit=10000)
            it = res.get("NextShardIterator")
            for r in res["Records"]:
                key = struct.unpack(">IIQ", r["Data"][:16])
                seen[key] += 1
                seen["bad"] += r["Data"] != payload(*key)
            if not res["Records"]:
                empties = 3 if res.get("MillisBehindLatest", 0) == 0 else empties + 1
    return seen


def check(ledgers, seen: Counter) -> dict[str, int]:
    lost = dup = 0
    for client, ledger in enumerate(ledgers):
        for r, entry in enumerate(ledger):
            partial = Counter(i for acked in entry.partial for i in acked)
            for i in range(BATCH):
                want = entry.acked + partial[i]
                got = seen.pop((client, r, i), 0)
                lost += max(0, want - got)
                dup += max(0, got - want - entry.unknown)
    bad = seen.pop("bad", 0)
    return {"lost": lost, "dup": dup + sum(seen.values()), "bad": bad}


def warm_fast_path(port: int, kin) -> None:
    """Have a forestream server load PutRecords' fast-path kernels (numba: about 1 s of
    CPU from numba's cache, more where it compiles them) before the clock starts: large
    PutRecords to a stream of their own until /metrics counts one call taken by the fast
    path. A server without that metric (code from before it) has nothing to load."""
    kin.create_stream(StreamName="warm-up", ShardCount=1)
    kin.get_waiter("stream_exists").wait(StreamName="warm-up",
                                         WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})
    records = [{"Data": bytes(REC), "PartitionKey": str(i)} for i in range(50)]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        kin.put_records(StreamName="warm-up", Records=records)
        basic = base64.b64encode(f"{KEY}:{KEY}".encode()).decode()  # the key pair
        request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                         headers={"Authorization": f"Basic {basic}"})
        with urllib.request.urlopen(request) as answer:
            text = answer.read().decode()
        taken = re.search(r"^forestream_put_records_batched_total (\d+)$", text, re.M)
        if taken is None or int(taken.group(1)) > 0:
            return
        time.sleep(0.3)
    raise RuntimeError("the server's PutRecords fast path did not get ready in 300 s")


def run_peer(name: str, args, kinesalite: Path | None, moto: Path | None) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-"))
    peer = None
    try:
        peer = Peer(name, tmp, kinesalite, moto, args.baseline_src)
        kin = boto(peer.port)
        kin.create_stream(StreamName=STREAM, ShardCount=SHARDS)
        kin.get_waiter("stream_exists").wait(  # every peer: CREATING until ACTIVE
            StreamName=STREAM, WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})
        if name not in ("kinesalite", "moto"):
            warm_fast_path(peer.port, kin)
        result = run_ring_load("127.0.0.1", peer.port, "/", signed_ring(peer.port, args.ring),
                               judge=judge, clients=args.clients, warmup=args.warmup,
                               seconds=args.seconds, server_pids=peer.pids)
        sent = sum(e.acked * BATCH + sum(map(len, e.partial))
                   for ledger in result.ledgers for e in ledger)
        verdict = check(result.ledgers, read_back(peer.port))
        row = {"rec/s": result.units_per_s, "MB/s": result.units_per_s * REC / 1e6,
               "p50 ms": result.percentile_ms(0.5), "p99 ms": result.percentile_ms(0.99),
               "srv CPU us/rec": result.server_cpu_s / max(result.units, 1) * 1e6,
               "srv CPU%": result.server_cpu_s / result.seconds * 100,
               "loader CPU%": result.client_cpu_s / result.seconds * 100,
               "errors": result.errors, **verdict}
        console.print(f"  {name:10} {row['rec/s']:>9,.0f} rec/s, {row['srv CPU us/rec']:5.1f}"
                      f" us/rec; acknowledged {sent:,} in all, lost {verdict['lost']}, dup "
                      f"{verdict['dup']}, bad {verdict['bad']}; errors {result.errors} "
                      f"{result.error_samples[:1]}; load {os.getloadavg()[0]:.2f}",
                      markup=False)
        return row
    finally:
        if peer is not None:
            peer.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def version(cmd) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "?"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10, help="measuring window (default 10)")
    ap.add_argument("--warmup", type=float, default=2, help="unmeasured start (default 2)")
    ap.add_argument("--clients", type=int, default=3, help="loader processes (default 3)")
    ap.add_argument("--ring", type=int, default=8,
                    help="distinct pre-signed bodies per loader (default 8)")
    ap.add_argument("--repeats", type=int, default=1, help="runs per peer; medians (default 1)")
    ap.add_argument("--peers", default="fsync,js-r1,js-r3,kinesalite",
                    help=f"comma-separated, of {','.join(PEERS)}; NAME@base: NAME with "
                         "--baseline-src (default fsync,js-r1,js-r3,kinesalite)")
    ap.add_argument("--baseline-src", type=Path, metavar="DIR",
                    help="a src/ folder of another forestream tree (e.g. `git archive HEAD "
                         "src | tar -x -C /tmp/base`): peers named NAME@base run it")
    args = ap.parse_args()
    peers = [p.strip() for p in args.peers.split(",") if p.strip()]
    if unknown := {p.removesuffix("@base") for p in peers} - set(PEERS):
        ap.error(f"unknown peers {sorted(unknown)}; choose from {', '.join(PEERS)}")
    if any(p.endswith("@base") for p in peers) and args.baseline_src is None:
        ap.error("peers NAME@base need --baseline-src")
    kl = ensure("kinesalite", CACHE / "node_modules" / "kinesalite" / "index.js",
                [["npm", "install", "--prefix", str(CACHE), "kinesalite"]]) \
        if "kinesalite" in peers else None
    venv = CACHE / "moto-venv"
    moto = ensure("moto[server]", venv / "bin" / "moto_server", [
        [sys.executable, "-m", "venv", str(venv)],
        [str(venv / "bin" / "pip"), "install", "-q", "moto[server]"]]) \
        if "moto" in peers else None
    peers = [p for p in peers if (p != "kinesalite" or kl) and (p != "moto" or moto)]
    git = version(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"])
    kv = json.loads((kl.parent / "package.json").read_text())["version"] if kl else "-"
    nats = version([nats_server_binary(), "--version"])
    console.print(f"machine: nproc={os.cpu_count()}, {platform.machine()}, Linux "
                  f"{platform.release()}, load average {os.getloadavg()}\n"
                  f"python {platform.python_version()}, botocore {botocore.__version__}, "
                  f"forestream {metadata.version('forestream')} (git {git}), node "
                  f"{version(['node', '--version'])}, kinesalite {kv}, {nats}\n"
                  f"workload: {SHARDS} shards, {args.clients} loader processes, "
                  f"{args.warmup:g} s warm-up + {args.seconds:g} s measured, PutRecords of "
                  f"{BATCH} x {REC} B, ring of {args.ring} signed bodies per loader, "
                  f"{args.repeats} repeat(s)", markup=False)
    runs: dict[str, list[dict]] = {p: [] for p in peers}
    try:
        for rep in range(args.repeats):
            console.print(f"repeat {rep + 1}/{args.repeats} (load average "
                          f"{os.getloadavg()[0]:.2f})", markup=False)
            for name in peers:
                try:
                    runs[name].append(run_peer(name, args, kl, moto))
                except Exception as exc:  # noqa: BLE001 - one peer's failure is a note
                    console.print(f"note: {name} failed: {exc!r}"[:600], markup=False)
    finally:
        for peer in list(LIVE):
            peer.stop()
    med = {k: {c: (sum if c in SUMMED else statistics.median)([r[c] for r in v]) for c in v[0]}
           for k, v in runs.items() if v}
    base = med.get("kinesalite", {}).get("srv CPU us/rec")
    what = f"median of {args.repeats} repeats" if args.repeats > 1 else "one run"
    table = Table(title=f"Kinesis PutRecords over HTTP on 127.0.0.1 ({what})",
                  caption="srv CPU us/rec: all server processes' CPU per acknowledged "
                          "record; CPU x = kinesalite's us/rec / this row's; errors, lost, "
                          "dup, bad: totals over all repeats")
    for c in ["peer", *COLS, "CPU x"]:
        table.add_column(c, justify="left" if c == "peer" else "right")
    for name, m in med.items():
        cells = [f"{m[c]:,.1f}" if c in ("MB/s", "srv CPU us/rec") else f"{m[c]:,.0f}"
                 for c in COLS]
        ratio = f"{base / m['srv CPU us/rec']:.1f}" if base and m["srv CPU us/rec"] else "-"
        table.add_row(name, *cells, ratio)
    console.print(table)
    console.print(f"load average at the end: {os.getloadavg()}", markup=False)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the servers
    try:
        main()
    except KeyboardInterrupt:
        for p in list(LIVE):
            p.stop()
        sys.exit(130)
