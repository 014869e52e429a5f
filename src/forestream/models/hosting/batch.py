"""Batch transform: score every row of a file or a stream, into a file or a stream.

What SageMaker's batch transform does, over any invoker: the input is split into
mini-batches of ``batch_size`` rows, each sent as one request in the input's content
type (CSV lines, or a JSON array of the JSON-lines values), up to ``concurrency``
requests in flight, answers written in input order, one output row per input row —
a JSON line (the prediction, or ``{"input": ..., "output": ...}`` with
``join_input=True``) or a CSV line.

Inputs and outputs are paths (``.csv`` → ``text/csv``, ``.jsonl``/``.json`` →
``application/json``) or streams written ``kinesis://NAME`` (read from the oldest record
of every shard to the current end; written one record per output row).

>>> def double(body: bytes, content_type: str):
...     rows = [float(x) * 2 for x in body.decode().split()]
...     return "\\n".join(str(r) for r in rows).encode(), "text/csv"
>>> import io
>>> out = io.StringIO()
>>> summary = transform_lines(["1", "2", "3"], out, double, content_type="text/csv",
...                           batch_size=2)
>>> out.getvalue().split(), summary["rows"], summary["requests"]
(['2.0', '4.0', '6.0'], 3, 2)
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from ..errors import InvalidInput, ModelInvocationError

#: ``invoke(body, content_type) -> (answer body, answer content type)``
Invoker = Callable[[bytes, str], tuple[bytes, str]]

MAX_BATCH_SIZE = 100_000
MAX_CONCURRENCY = 64


def content_type_for(path: str) -> str:
    lower = path.lower()
    if lower.endswith(".csv"):
        return "text/csv"
    if lower.endswith((".jsonl", ".json", ".ndjson")):
        return "application/json"
    raise InvalidInput(f"cannot tell the content type of {path!r}: use a .csv or .jsonl "
                       "file, or pass the content type")


def _encode(rows: list[str], content_type: str) -> bytes:
    if content_type == "text/csv":
        return ("\n".join(rows) + "\n").encode()
    return ("[" + ",".join(rows) + "]").encode()


def _split_answer(body: bytes, content_type: str, expected: int) -> list[str]:
    """One output line per input row, from a model's answer to a mini-batch."""
    kind = content_type.split(";")[0].strip().lower()
    if kind == "text/csv":
        lines = [line for line in body.decode().splitlines() if line.strip()]
    elif kind == "application/json":
        data = json.loads(body)
        if isinstance(data, dict):  # {"predictions": [...]}, {"scores": [...]}, ...
            lists = [v for v in data.values() if isinstance(v, list)]
            if len(lists) != 1:
                raise ModelInvocationError(
                    f"cannot split the model's JSON answer into rows: an object with keys "
                    f"{sorted(data)} (expected a list, or an object holding one list)")
            data = lists[0]
        if not isinstance(data, list):
            data = [data]
        lines = [json.dumps(item) for item in data]
    else:
        raise ModelInvocationError(f"batch transform reads text/csv or application/json "
                                   f"answers; the model answered {content_type!r}")
    if len(lines) != expected:
        raise ModelInvocationError(f"the model answered {len(lines)} rows for a mini-batch "
                                   f"of {expected}; batch transform needs one per row")
    return lines


def _batches(lines: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for line in lines:
        line = line.rstrip("\r\n")
        if not line.strip():
            continue
        batch.append(line)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def transform_lines(lines: Iterable[str], out: IO[str] | Callable[[str], None],
                    invoke: Invoker, *, content_type: str, batch_size: int = 100,
                    concurrency: int = 2, join_input: bool = False,
                    progress: Callable[[int], None] | None = None) -> dict:
    """Score ``lines`` (CSV rows or JSON values) and write one line per row to ``out``
    (a text file or a callable taking each line). Returns a summary."""
    if content_type not in ("text/csv", "application/json"):
        raise InvalidInput(f"content type {content_type!r} is not one batch transform "
                           "splits; use text/csv or application/json")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or \
            not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise InvalidInput(f"batch size {batch_size!r} must be an integer from 1 to "
                           f"{MAX_BATCH_SIZE}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or \
            not 1 <= concurrency <= MAX_CONCURRENCY:
        raise InvalidInput(f"concurrency {concurrency!r} must be an integer from 1 to "
                           f"{MAX_CONCURRENCY}")
    write = out if callable(out) else (lambda line: out.write(line + "\n"))
    started = time.perf_counter()
    rows = requests = 0

    def run(batch: list[str]) -> tuple[list[str], list[str]]:
        body, answer_type = invoke(_encode(batch, content_type), content_type)
        return batch, _split_answer(body, answer_type, len(batch))

    def emit(batch: list[str], answers: list[str]) -> None:
        nonlocal rows, requests
        for row, answer in zip(batch, answers, strict=True):
            if join_input:
                value = json.loads(row) if content_type == "application/json" else row
                write(json.dumps({"input": value, "output": json.loads(answer)
                                  if content_type == "application/json" or
                                  answer[:1] in "[{" else answer}))
            else:
                write(answer)
        rows += len(batch)
        requests += 1
        if progress is not None:
            progress(len(batch))

    with cf.ThreadPoolExecutor(max_workers=concurrency) as pool:
        pending: list[cf.Future] = []
        for batch in _batches(lines, batch_size):
            pending.append(pool.submit(run, batch))
            while len(pending) >= concurrency * 2:  # bounded memory, order kept
                emit(*pending.pop(0).result())
        for future in pending:
            emit(*future.result())
    seconds = time.perf_counter() - started
    return {"rows": rows, "requests": requests, "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds, 1) if seconds > 0 else None}


# ------------------------------------------------------------------ streams

def _stream_name(location: str) -> str | None:
    return location[len("kinesis://"):] if location.startswith("kinesis://") else None


def read_stream_lines(client, stream: str) -> Iterator[str]:
    """Every record of ``stream`` (all shards, oldest first per shard, parents before
    children), decoded as UTF-8 lines, up to the current end of each shard."""
    shards = client.list_shards(StreamName=stream)["Shards"]
    for shard in sorted(shards, key=lambda s: int(s["SequenceNumberRange"]
                                                   ["StartingSequenceNumber"])):
        iterator = client.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                yield from record["Data"].decode().splitlines()
            if not page["Records"] and page.get("MillisBehindLatest", 0) == 0:
                break
            iterator = page.get("NextShardIterator")


class StreamWriter:
    """Writes output lines as records (PutRecords batches of up to 500)."""

    def __init__(self, client, stream: str) -> None:
        self.client, self.stream = client, stream
        self.buffer: list[dict] = []
        self.count = 0

    def __call__(self, line: str) -> None:
        self.buffer.append({"Data": line.encode(), "PartitionKey": str(self.count)})
        self.count += 1
        if len(self.buffer) == 500:
            self.flush()

    def flush(self) -> None:
        records, self.buffer = self.buffer, []
        while records:
            result = self.client.put_records(StreamName=self.stream, Records=records)
            records = [r for r, out in zip(records, result["Records"], strict=True)
                       if "ErrorCode" in out]
            if records:
                time.sleep(0.1)


def transform(source: str, destination: str, invoke: Invoker, *,
              content_type: str | None = None, batch_size: int = 100, concurrency: int = 2,
              join_input: bool = False, kinesis_client=None, show_progress: bool = True,
              console=None) -> dict:
    """Batch-transform ``source`` into ``destination`` (paths or ``kinesis://NAME``).

    ``kinesis_client`` (a boto3 Kinesis client) is needed for stream locations. A file
    destination is written to a temporary name and renamed when complete, so a failed
    run leaves no partial output file.
    """
    in_stream, out_stream = _stream_name(source), _stream_name(destination)
    if (in_stream or out_stream) and kinesis_client is None:
        raise InvalidInput("a kinesis:// location needs a Kinesis client")
    if content_type is None:
        if in_stream:
            raise InvalidInput("reading a stream needs the content type of its records "
                               "(text/csv or application/json)")
        content_type = content_type_for(source)
    total = None
    if in_stream:
        lines: Iterable[str] = read_stream_lines(kinesis_client, in_stream)
    else:
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"input {source!r} is not a file")
        with path.open("rb") as fh:
            total = sum(1 for line in fh if line.strip())
        lines = path.open(encoding="utf-8")

    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    progress = Progress(TextColumn("[bold]transform"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("rows"), TimeRemainingColumn(), console=console,
                        disable=not show_progress, transient=True)
    try:
        with progress:
            task = progress.add_task("rows", total=total)

            def advance(n: int) -> None:
                progress.advance(task, n)

            if out_stream:
                writer = StreamWriter(kinesis_client, out_stream)
                summary = transform_lines(lines, writer, invoke, content_type=content_type,
                                          batch_size=batch_size, concurrency=concurrency,
                                          join_input=join_input, progress=advance)
                writer.flush()
            else:
                target = Path(destination)
                partial = target.with_name(f".{target.name}.partial")
                try:
                    with partial.open("w", encoding="utf-8") as out:
                        summary = transform_lines(lines, out, invoke,
                                                  content_type=content_type,
                                                  batch_size=batch_size,
                                                  concurrency=concurrency,
                                                  join_input=join_input, progress=advance)
                    partial.replace(target)
                finally:
                    partial.unlink(missing_ok=True)
    finally:
        if hasattr(lines, "close"):
            lines.close()
    return {**summary, "source": source, "destination": destination}


def endpoint_invoker(endpoint_url: str, endpoint_name: str, *, accept: str | None = None,
                     region: str | None = None) -> Invoker:
    """An invoker calling a forestream (or SageMaker) endpoint with boto3's
    ``sagemaker-runtime`` client."""
    import boto3
    from botocore.config import Config

    from forestream.config import client_credentials, client_region

    key, secret = client_credentials()
    client = boto3.client("sagemaker-runtime", endpoint_url=endpoint_url,
                          region_name=region or client_region(),
                          aws_access_key_id=key or "local",
                          aws_secret_access_key=secret or "local",
                          config=Config(retries={"max_attempts": 3, "mode": "standard"},
                                        max_pool_connections=MAX_CONCURRENCY))

    def invoke(body: bytes, content_type: str) -> tuple[bytes, str]:
        args = {"EndpointName": endpoint_name, "Body": body, "ContentType": content_type}
        if accept:
            args["Accept"] = accept
        answer = client.invoke_endpoint(**args)
        return answer["Body"].read(), answer.get("ContentType") or "application/json"

    return invoke
