"""Server CPU per small Kinesis call: what each of a worker's or an application's many
small requests costs ``forestream server`` (issue 12), before and after a change.

An application polls and writes in small calls (PutRecords of a dozen readings,
GetRecords that find nothing new, DescribeStreamSummary), 150-250 a second in the
quickstart; at that rate the fixed cost of a call, not the records, is what the server
spends. This starts ``forestream server`` (embedded store, fsync on, with credentials, so
every call's SigV4 signature is verified; ``streams_throughput.Peer``) and, with
``--baseline-src``, a second one running forestream's ``src/`` from another tree, then
makes the same calls one at a time with boto3 (keep-alive), in batches of --batch
alternating between the two servers for --rounds rounds per kind of call, so both see
the same moments of a shared machine. Reported per call: the server process's user +
system CPU (``/proc/PID/stat``, all its threads) and the client's wall time.

    git worktree add -f /tmp/base c38cbcb   # forestream before the direct Kinesis path
    .venv/bin/python benchmarks/streams_request_cost.py --baseline-src /tmp/base/src
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from streams_throughput import Peer, boto

STREAM = "small-calls"


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def calls(port: int) -> dict[str, object]:
    """The kinds of call, each a function making one call to the server on ``port``."""
    client = boto(port)
    client.create_stream(StreamName=STREAM, ShardCount=2)
    client.get_waiter("stream_exists").wait(StreamName=STREAM,
                                            WaiterConfig={"Delay": 0.2, "MaxAttempts": 150})
    shard = client.list_shards(StreamName=STREAM)["Shards"][0]["ShardId"]
    iterator = client.get_shard_iterator(StreamName=STREAM, ShardId=shard,
                                         ShardIteratorType="LATEST")["ShardIterator"]
    readings = [{"Data": json.dumps({"machine": f"m{i % 4}", "value": i,
                                     "sent_at": time.time()}).encode(),
                 "PartitionKey": f"m{i % 4}"} for i in range(12)]
    return {
        "PutRecords, 12 readings": lambda: client.put_records(StreamName=STREAM,
                                                              Records=readings),
        "GetRecords, nothing new": lambda: client.get_records(ShardIterator=iterator,
                                                              Limit=100),
        "DescribeStreamSummary": lambda: client.describe_stream_summary(StreamName=STREAM),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=12,
                    help="batches per kind of call and server (default 12)")
    ap.add_argument("--batch", type=int, default=50, help="calls per batch (default 50)")
    ap.add_argument("--baseline-src", type=Path, metavar="DIR",
                    help="forestream src/ of another tree, measured beside this one")
    args = ap.parse_args()
    if args.rounds < 1 or args.batch < 1:
        ap.error(f"--rounds and --batch must be at least 1; got {args.rounds}, {args.batch}")
    if args.baseline_src is not None and not (args.baseline_src / "forestream").is_dir():
        ap.error(f"--baseline-src {args.baseline_src} holds no forestream package")
    sides = ["this"] + (["base"] if args.baseline_src else [])
    console = Console(width=130)
    console.print(f"load average at the start: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        peers = {}
        for side in sides:
            (Path(tmp) / side).mkdir()
            peers[side] = Peer("fsync@base" if side == "base" else "fsync",
                               Path(tmp) / side, None, None, args.baseline_src)
        try:
            kinds = {side: calls(peer.port) for side, peer in peers.items()}
            rows = []
            for kind in kinds["this"]:
                spent = {side: [0.0, 0.0, 0] for side in sides}
                for r in range(args.rounds):
                    for side in (sides if r % 2 == 0 else sides[::-1]):
                        fn, pid = kinds[side][kind], peers[side].proc.pid
                        c0, t0 = cpu_seconds(pid), time.perf_counter()
                        for _ in range(args.batch):
                            fn()
                        spent[side][0] += cpu_seconds(pid) - c0
                        spent[side][1] += time.perf_counter() - t0
                        spent[side][2] += args.batch
                rows.append((kind, {s: (1e6 * v[0] / v[2], 1e3 * v[1] / v[2])
                                    for s, v in spent.items()}, os.getloadavg()[0]))
        finally:
            for peer in peers.values():
                peer.stop()
    table = Table(title="Server CPU per small Kinesis call (boto3, one at a time, SigV4 "
                        "verified, fsync on)")
    table.add_column("call")
    for side in sides:
        table.add_column(f"{side}: server CPU us", justify="right")
        table.add_column(f"{side}: wall ms", justify="right")
    if "base" in sides:
        table.add_column("base / this", justify="right")
    table.add_column("load", justify="right")
    for kind, per, load in rows:
        cells = [kind]
        for side in sides:
            cells += [f"{per[side][0]:,.0f}", f"{per[side][1]:.1f}"]
        if "base" in sides:
            cells.append(f"{per['base'][0] / max(per['this'][0], 1e-9):.2f}x")
        table.add_row(*cells, f"{load:.1f}")
    console.print(table)
    console.print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
