"""``forestream streams ...``: the stream commands, as a Kinesis client of a running server."""

from __future__ import annotations

import base64
import datetime as dt
import sys
import time

import click
from rich.console import Console
from rich.table import Table

from .options import endpoint_option

console = Console()


def client(endpoint_url: str):
    from forestream.processing.kinesis_io import kinesis_client

    return kinesis_client(endpoint_url, max_attempts=3)


def run(call):
    """Run a client call, turning AWS errors and connection failures into clean CLI errors."""
    import botocore.exceptions

    try:
        return call()
    except botocore.exceptions.ClientError as exc:
        error = exc.response.get("Error", {})
        raise click.ClickException(f"{error.get('Code')}: {error.get('Message')}") from None
    except botocore.exceptions.EndpointConnectionError as exc:
        raise click.ClickException(f"cannot reach {exc.kwargs.get('endpoint_url')}: is "
                                   "`forestream server` running?") from None


@click.group(short_help="Durable sharded streams (the Kinesis Data Streams API).")
def streams() -> None:
    """Durable sharded streams (Kinesis Data Streams API) on a forestream server.

    \b
    forestream server &                          # in another terminal
    forestream streams create sensors --shards 2
    echo '{"t": 21.5}' | forestream streams put sensors --partition-key m1
    forestream streams tail sensors --from trim-horizon
    """


@streams.command("create")
@click.argument("name")
@click.option("--shards", type=click.IntRange(1, 10000), help="Shard count (PROVISIONED).")
@click.option("--on-demand", is_flag=True, help="ON_DEMAND mode (shards managed for you).")
@click.option("--no-wait", is_flag=True, help="Return at once instead of waiting for ACTIVE.")
@endpoint_option
def create(name, shards, on_demand, no_wait, endpoint_url):
    """Create stream NAME and wait until it is ACTIVE: --shards N provisioned shards, or
    --on-demand.

    \b
    Examples:
      forestream streams create sensors --shards 2
      forestream streams create clicks --on-demand
    """
    if not on_demand and shards is None:
        raise click.UsageError("give --shards N, or --on-demand")
    k = client(endpoint_url)
    args = {"StreamName": name, "StreamModeDetails": {
        "StreamMode": "ON_DEMAND" if on_demand else "PROVISIONED"}}
    if shards is not None:
        args["ShardCount"] = shards
    run(lambda: k.create_stream(**args))
    if not no_wait:
        run(lambda: k.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}))
    console.print(f"stream [bold]{name}[/] created")


@streams.command("list")
@endpoint_option
def list_streams(endpoint_url):
    """List streams with their status, mode, open shards, retention and creation time.

    \b
    Examples:
      forestream streams list
      forestream streams list --endpoint-url http://127.0.0.1:4600
    """
    k = client(endpoint_url)
    table = Table(title="Streams")
    for col in ("name", "status", "mode", "open shards", "retention (h)", "created"):
        table.add_column(col, justify="right" if col in ("open shards", "retention (h)")
                         else "left")
    for page in run(lambda: list(k.get_paginator("list_streams").paginate())):
        for name in page["StreamNames"]:
            s = run(lambda n=name: k.describe_stream_summary(StreamName=n))[
                "StreamDescriptionSummary"]
            table.add_row(name, s["StreamStatus"], s["StreamModeDetails"]["StreamMode"],
                          str(s["OpenShardCount"]), str(s["RetentionPeriodHours"]),
                          s["StreamCreationTimestamp"].strftime("%Y-%m-%d %H:%M:%S"))
    console.print(table)


@streams.command("describe")
@click.argument("name")
@endpoint_option
def describe(name, endpoint_url):
    """Show stream NAME's settings and its shards (lineage, hash ranges, state).

    \b
    Example:
      forestream streams describe sensors
    """
    k = client(endpoint_url)
    s = run(lambda: k.describe_stream_summary(StreamName=name))["StreamDescriptionSummary"]
    console.print(f"[bold]{name}[/]  {s['StreamStatus']}  {s['StreamModeDetails']['StreamMode']}"
                  f"  retention {s['RetentionPeriodHours']} h  encryption "
                  f"{s['EncryptionType']}\n{s['StreamARN']}")
    table = Table(title="Shards")
    for col in ("shard", "parent", "hash range (fraction of key space)", "state"):
        table.add_column(col)
    shards = [sh for page in run(lambda: list(k.get_paginator("list_shards").paginate(
        StreamName=name))) for sh in page["Shards"]]
    for sh in shards:
        lo = int(sh["HashKeyRange"]["StartingHashKey"]) / 2**128
        hi = (int(sh["HashKeyRange"]["EndingHashKey"]) + 1) / 2**128
        parents = ", ".join(p for p in (sh.get("ParentShardId"),
                                        sh.get("AdjacentParentShardId")) if p)
        closed = "EndingSequenceNumber" in sh["SequenceNumberRange"]
        table.add_row(sh["ShardId"], parents or "-", f"{lo:.3f} – {hi:.3f}",
                      "closed" if closed else "[green]open[/]")
    console.print(table)


@streams.command("put", short_help="Put records: DATA arguments, or each line of stdin.")
@click.argument("name")
@click.argument("data", nargs=-1)
@click.option("--partition-key", "-k", help="Partition key [default: a fresh one per record].")
@click.option("--base64", "is_base64", is_flag=True, help="DATA (or stdin lines) is base64.")
@endpoint_option
def put(name, data, partition_key, is_base64, endpoint_url):
    """Put records: each DATA argument, or each line of stdin when none is given.

    \b
    Examples:
      forestream streams put sensors '{"t": 21.5}' '{"t": 21.7}' --partition-key m1
      forestream streams put sensors < readings.jsonl
      forestream streams put sensors --base64 eyJ0IjogMjEuNX0=
    """
    k = client(endpoint_url)
    items = list(data) or [line.rstrip("\n") for line in sys.stdin]
    payloads = [base64.b64decode(x) if is_base64 else x.encode() for x in items]
    if not payloads:
        raise click.UsageError("nothing to put: give DATA or pipe lines on stdin")
    stamp = time.time_ns()
    sent = failed = 0
    for start in range(0, len(payloads), 500):
        batch = [{"Data": p, "PartitionKey": partition_key or f"{stamp}-{start + i}"}
                 for i, p in enumerate(payloads[start : start + 500])]
        out = run(lambda b=batch: k.put_records(StreamName=name, Records=b))
        failed += out["FailedRecordCount"]
        sent += len(batch)
        if len(payloads) == 1 and not failed:
            r = out["Records"][0]
            console.print(f"{r['ShardId']}  {r['SequenceNumber']}")
    if len(payloads) > 1 or failed:
        console.print(f"put {sent - failed} record(s), {failed} failed")
    if failed:
        sys.exit(1)


@streams.command("get")
@click.argument("name")
@click.option("--shard", help="One shard [default: every shard].")
@click.option("--from", "start", default="trim-horizon", show_default=True,
              help="trim-horizon, latest, a sequence number, or an ISO time.")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, 10000),
              help="Records per shard.")
@endpoint_option
def get(name, shard, start, limit, endpoint_url):
    """Read records from stream NAME (every shard, or --shard) and print them as a table;
    --from picks where: trim-horizon, latest, a sequence number or an ISO time.

    \b
    Examples:
      forestream streams get sensors --limit 10
      forestream streams get sensors --shard shardId-000000000001 --from 2026-01-01T12:00:00
    """
    k = client(endpoint_url)
    table = _record_table()
    for sid in [shard] if shard else _shard_ids(k, name):
        iterator = _iterator(k, name, sid, start)
        got = 0
        while iterator and got < limit:
            page = run(lambda it=iterator, n=limit - got: k.get_records(ShardIterator=it,
                                                                         Limit=n))
            for r in page["Records"]:
                _add_record(table, sid, r)
            got += len(page["Records"])
            iterator = page.get("NextShardIterator")
            if not page["Records"]:
                break
    console.print(table)


@streams.command("tail")
@click.argument("name")
@click.option("--from", "start", default="latest", show_default=True,
              help="trim-horizon, latest, a sequence number, or an ISO time.")
@click.option("--poll", default=0.5, show_default=True, help="Seconds between empty reads.")
@endpoint_option
def tail(name, start, poll, endpoint_url):
    """Follow stream NAME: print records as they arrive, across shards and reshards
    (Ctrl-C to stop).

    \b
    Examples:
      forestream streams tail sensors
      forestream streams tail sensors --from trim-horizon
    """
    k = client(endpoint_url)
    iterators = {sid: _iterator(k, name, sid, start) for sid in _shard_ids(k, name, open_only=
                                                                             start == "latest")}
    try:
        while iterators:
            idle = True
            for sid, iterator in list(iterators.items()):
                page = run(lambda it=iterator: k.get_records(ShardIterator=it))
                for r in page["Records"]:
                    idle = False
                    ts = r["ApproximateArrivalTimestamp"].strftime("%H:%M:%S.%f")[:-3]
                    console.print(f"[dim]{ts} {sid[-4:]}[/] [cyan]{r['PartitionKey']}[/] "
                                  f"{_show(r['Data'])}")
                if "NextShardIterator" in page:
                    iterators[sid] = page["NextShardIterator"]
                else:
                    del iterators[sid]
                    for child in page.get("ChildShards", []):
                        if child["ShardId"] not in iterators:
                            iterators[child["ShardId"]] = _iterator(k, name, child["ShardId"],
                                                                    "trim-horizon")
            if idle:
                time.sleep(poll)
    except KeyboardInterrupt:
        pass


@streams.command("reshard")
@click.argument("name")
@click.option("--count", type=click.IntRange(1, 10000), help="Uniformly rescale to N shards.")
@click.option("--split", "split", help="Split this shard (with --at).")
@click.option("--at", "at", help="Hash key where the second half starts [default: middle].")
@click.option("--merge", nargs=2, help="Merge two adjacent shards.")
@click.option("--no-wait", is_flag=True,
              help="Return at once instead of waiting for the change to take effect.")
@endpoint_option
def reshard(name, count, split, at, merge, no_wait, endpoint_url):
    """Change stream NAME's shards: --count N, --split SHARD [--at KEY], or --merge A B;
    waits until it takes effect (the stream is UPDATING until then, as on AWS).

    \b
    Examples:
      forestream streams reshard sensors --count 4
      forestream streams reshard sensors --split shardId-000000000000
      forestream streams reshard sensors --merge shardId-000000000002 shardId-000000000003
    """
    k = client(endpoint_url)
    if sum(x is not None and x != () for x in (count, split, merge)) != 1:
        raise click.UsageError("give exactly one of --count, --split or --merge")
    if count:
        out = run(lambda: k.update_shard_count(StreamName=name, TargetShardCount=count,
                                               ScalingType="UNIFORM_SCALING"))
        console.print(f"{out['CurrentShardCount']} → {out['TargetShardCount']} shards")
    elif split:
        if at is None:
            shards = run(lambda: k.list_shards(StreamName=name))["Shards"]
            sh = next((s for s in shards if s["ShardId"] == split), None)
            if sh is None:
                raise click.UsageError(f"no shard {split} in {name}")
            lo, hi = (int(sh["HashKeyRange"][key]) for key in ("StartingHashKey",
                                                                "EndingHashKey"))
            at = str((lo + hi + 1) // 2)
        run(lambda: k.split_shard(StreamName=name, ShardToSplit=split, NewStartingHashKey=at))
        console.print(f"split {split} at {at}")
    else:
        run(lambda: k.merge_shards(StreamName=name, ShardToMerge=merge[0],
                                   AdjacentShardToMerge=merge[1]))
        console.print(f"merged {merge[0]} and {merge[1]}")
    if not no_wait:
        run(lambda: k.get_waiter("stream_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}))


@streams.command("delete")
@click.argument("name")
@click.option("--force", is_flag=True, help="Also delete its registered consumers.")
@click.option("--no-wait", is_flag=True,
              help="Return at once instead of waiting until the stream is gone.")
@endpoint_option
def delete(name, force, no_wait, endpoint_url):
    """Delete stream NAME and all its records (--force: its registered consumers too);
    waits until it is gone (it is DELETING until then, its name not free, as on AWS).

    \b
    Examples:
      forestream streams delete sensors
      forestream streams delete sensors --force
    """
    k = client(endpoint_url)
    run(lambda: k.delete_stream(StreamName=name, EnforceConsumerDeletion=force))
    if not no_wait:
        run(lambda: k.get_waiter("stream_not_exists").wait(
            StreamName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 300}))
    console.print(f"stream [bold]{name}[/] deleted")


def _shard_ids(k, name, open_only=False) -> list[str]:
    args = {"StreamName": name}
    if open_only:
        args["ShardFilter"] = {"Type": "AT_LATEST"}
    pages = run(lambda: list(k.get_paginator("list_shards").paginate(**args)))
    return [s["ShardId"] for p in pages for s in p["Shards"]]


def _iterator(k, name, shard, start) -> str:
    args = {"StreamName": name, "ShardId": shard}
    if start in ("trim-horizon", "latest"):
        args["ShardIteratorType"] = start.upper().replace("-", "_")
    elif start.isdigit():
        args.update(ShardIteratorType="AT_SEQUENCE_NUMBER", StartingSequenceNumber=start)
    else:
        try:
            when = dt.datetime.fromisoformat(start)
        except ValueError:
            raise click.UsageError(f"--from {start!r}: expected trim-horizon, latest, a "
                                   "sequence number or an ISO time") from None
        args.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=when)
    return run(lambda: k.get_shard_iterator(**args))["ShardIterator"]


def _record_table() -> Table:
    table = Table(title="Records")
    for col in ("shard", "sequence number", "partition key", "arrived", "data"):
        table.add_column(col, overflow="fold")
    return table


def _add_record(table: Table, sid: str, r: dict) -> None:
    table.add_row(sid, r["SequenceNumber"], r["PartitionKey"],
                  r["ApproximateArrivalTimestamp"].strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                  _show(r["Data"]))


def _show(data: bytes) -> str:
    try:
        text = data.decode("utf-8")
        if text.isprintable():
            return text if len(text) <= 200 else text[:200] + "…"
    except UnicodeDecodeError:
        pass
    return "base64:" + base64.b64encode(data[:150]).decode()
