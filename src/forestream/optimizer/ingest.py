"""Read utilization metrics from files: :func:`read_metrics` -> ``list[UtilizationHistory]``.

The documented input shape
==========================

``read_metrics(path)`` takes one file or a directory.

**A directory** holds one metrics file per resource, named ``<resource_id>.<ext>``
(``web-1.csv``; ``.csv``, ``.json``, ``.jsonl``, ``.parquet``, each optionally ``.gz``
except Parquet; subdirectories and dot-files are ignored), and optionally
``resources.csv`` or ``resources.json`` describing the resources (below). A file that
has a ``resource_id`` column may hold several resources; its rows go to the resources
they name, not to the file's stem.

**A metrics file** is a table with one row per timestamp:

* ``timestamp`` (also accepted: ``time``, ``ts``, ``datetime``, ``date``): ISO 8601
  (``2024-05-01T12:00:00Z``, ``2024-05-01 12:00:00``; no offset means UTC) or epoch
  seconds or milliseconds. Rows need not be sorted; duplicates are averaged.
* ``resource_id`` (optional): which resource the row belongs to.
* metric columns, by canonical name from ``forestream.optimizer.types.METRICS``:
  ``cpu_pct``, ``mem_pct`` (0-100 of the resource's capacity), ``mem_used_gib``,
  ``net_in_bytes``, ``net_out_bytes``, ``disk_read_bytes``, ``disk_write_bytes``,
  ``disk_read_ops``, ``disk_write_ops`` (per second), ``gpu_pct``, ``gpu_mem_pct``
  (0-100), ``invocations`` (per second) and ``duration_ms`` for functions, and
  ``records_in``, ``bytes_in``, ``records_out``, ``bytes_out`` (per second),
  ``millis_behind``, ``busy_pct`` for forestream's components. ``<metric>_max``
  columns carry a maximum measured within the row's period. AWS metric names are
  accepted too (``CPUUtilization``, ``NetworkIn``, ``DiskWriteOps``, ``Invocations``,
  ...: :data:`~forestream.optimizer.timeseries.CLOUDWATCH_NAMES`); CloudWatch byte,
  operation and count metrics are totals over the sample period, so they are divided
  by the period (the median spacing of the timestamps, or ``period_seconds=``).
  Any other column is an error that lists the accepted names; ``rename=`` maps your
  column names onto them. Empty cells, ``NaN`` and ``null`` are missing samples.
* **CloudWatch two-column files** ``timestamp,value`` (as in NAB's
  ``realAWSCloudwatch``): the metric is ``metric=`` or is read from the file name
  (``ec2_cpu_utilization_5f5533.csv`` -> ``cpu_pct``; ``..._NetworkIn.csv`` ->
  ``net_in_bytes``). Such a file is taken as a CloudWatch export: a counter metric
  read from the file name is a period total (divided by the period); ``metric=`` with a
  canonical name (``net_in_bytes``) says the values are per second already.

CSV has a header row. JSON is a list of row objects, an object of equal-length column
lists, or JSON Lines (``.jsonl``); AWS CLI output is recognised as well:
``aws cloudwatch get-metric-data`` (``MetricDataResults`` with ``Id``, ``Label``,
``Timestamps``, ``Values``; the metric comes from the label, else the id; a label of the
form ``"<resource_id> <MetricName>"`` names the resource) and ``aws cloudwatch
get-metric-statistics`` (``Label`` + ``Datapoints``; ``Average`` -> mean,
``Maximum`` -> max). Parquet needs ``pyarrow``.

**resources.csv / resources.json** describe each resource (one row or object each):
``resource_id`` (required), ``kind`` (one of ``RESOURCE_KINDS``, default ``instance``),
the fields of :class:`~forestream.optimizer.types.Resource` ``current`` as columns —
``instance_type``, ``min_size``, ``max_size``, ``desired`` (instance/asg); ``cpu``,
``memory_gib`` (container); ``memory_mb`` (function); ``volume_type``, ``size_gib``,
``iops``, ``throughput_mbps`` (volume); ``shards`` (stream); ``parallelism``
(application); ``workers`` (endpoint) — and ``tag:<key>`` columns for tags. In JSON an
object may instead carry ``current`` and ``tags`` objects. A resource listed there
with no metrics file is returned with no samples.

Output
------
One :class:`~forestream.optimizer.types.UtilizationHistory` per resource, sorted by
``resource_id``: timestamps on a regular 5-minute grid (``bucket_seconds``) from the
first sample to the last, each metric as the bucket mean under its name and the bucket
maximum under ``<name>_max``; buckets with no sample are NaN.

>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "web-1.csv").write_text(
...     "timestamp,cpu_pct,mem_pct\\n2024-05-01T00:00:00Z,10,40\\n"
...     "2024-05-01T00:01:00Z,30,42\\n2024-05-01T00:15:00Z,5,41\\n")
>>> _ = (folder / "resources.csv").write_text("resource_id,kind,instance_type\\n"
...                                           "web-1,instance,m5.xlarge\\n")
>>> [history] = read_metrics(folder)
>>> history.resource.current, len(history.timestamps)
({'instance_type': 'm5.xlarge'}, 4)
>>> history.metrics["cpu_pct"].tolist(), history.metrics["cpu_pct_max"].tolist()
([20.0, nan, nan, 5.0], [30.0, nan, nan, 5.0])
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from .cloudwatch import cloudwatch_series, is_cloudwatch_output
from .timeseries import (
    BUCKET_SECONDS,
    MetricInputError,
    accepted_metric_names,
    canonical_metric,
    check_range,
    metric_from_filename,
    parse_timestamps,
    resample,
)
from .types import RESOURCE_KINDS, Resource, UtilizationHistory

__all__ = ["MetricInputError", "read_metrics", "read_resources", "write_metrics"]

METRIC_SUFFIXES = (".csv", ".csv.gz", ".json", ".json.gz", ".jsonl", ".jsonl.gz", ".parquet")
RESOURCE_FILES = ("resources.csv", "resources.json")
TIMESTAMP_COLUMNS = ("timestamp", "time", "ts", "datetime", "date")
#: Resource.current fields accepted as resources.csv columns, with their types.
CURRENT_FIELDS: dict[str, type] = {
    "instance_type": str, "min_size": int, "max_size": int, "desired": int,
    "cpu": float, "memory_gib": float, "memory_mb": int,
    "volume_type": str, "size_gib": float, "iops": int, "throughput_mbps": float,
    "shards": int, "parallelism": int, "workers": int,
}


def read_metrics(path: str | Path, *, metric: str | None = None,
                 resource_id: str | None = None, kind: str = "instance",
                 resources: str | Path | Mapping[str, Resource] | None = None,
                 rename: Mapping[str, str] | None = None,
                 bucket_seconds: int = BUCKET_SECONDS,
                 period_seconds: float | None = None) -> list[UtilizationHistory]:
    """Utilization histories from a metrics file or a directory in the documented shape.

    ``metric`` names the metric of ``timestamp,value`` files (default: from the file
    name). ``resource_id`` names the resource of a single file without a
    ``resource_id`` column (default: the file's stem). ``kind`` is the kind of resources
    no resources file describes. ``resources`` is a resources.csv/json path or a mapping
    of id to :class:`Resource` (default for a directory: its ``resources.*`` file).
    ``rename`` maps input column names to accepted ones. ``period_seconds`` is the
    sample period of CloudWatch period totals (default: the median timestamp spacing).
    """
    source = Path(path)
    if kind not in RESOURCE_KINDS:
        raise MetricInputError(f"kind must be one of {RESOURCE_KINDS}, got {kind!r}")
    if metric is not None and canonical_metric(metric) is None:
        raise MetricInputError(f"metric {metric!r} is not a known metric name; accepted: "
                               f"{', '.join(accepted_metric_names())}")
    if period_seconds is not None and not period_seconds > 0:
        raise MetricInputError(f"period_seconds must be > 0, got {period_seconds!r}")
    if source.is_dir():
        files = sorted(f for f in source.iterdir() if f.is_file()
                       and not f.name.startswith(".") and f.name not in RESOURCE_FILES
                       and f.name.lower().endswith(METRIC_SUFFIXES))
        if resources is None:
            described = [source / name for name in RESOURCE_FILES if (source / name).exists()]
            resources = described[0] if described else None
        if not files and resources is None:
            raise MetricInputError(f"directory {str(source)!r} has no metrics files (accepted "
                                   f"endings: {', '.join(METRIC_SUFFIXES)})")
    elif source.is_file():
        files = [source]
    else:
        raise MetricInputError(f"metrics path {str(source)!r} does not exist")
    known = (read_resources(resources) if isinstance(resources, (str, Path))
             else dict(resources or {}))
    samples: dict[str, list[tuple[np.ndarray, dict[str, np.ndarray]]]] = defaultdict(list)
    for file in files:
        default_id = resource_id if (resource_id and not source.is_dir()) else _stem(file)
        for rid, seconds, columns in _read_file(file, default_id, metric, rename or {},
                                                period_seconds):
            samples[rid].append((seconds, columns))
    histories = []
    for rid in sorted(set(samples) | set(known)):
        resource = known.get(rid) or Resource(rid, kind=kind)
        histories.append(_history(resource, samples.get(rid, []), bucket_seconds))
    return histories


def read_resources(path: str | Path) -> dict[str, Resource]:
    """Resource descriptions from a resources.csv or resources.json file, by id."""
    source = Path(path)
    if not source.is_file():
        raise MetricInputError(f"resources file {str(source)!r} does not exist")
    text = _read_text(source)
    if source.name.lower().endswith((".json", ".json.gz")):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise MetricInputError(f"{source.name}: not valid JSON: {error}") from None
        if isinstance(data, dict):
            data = data.get("resources", data)
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise MetricInputError(f"{source.name}: expected a JSON list of resource objects")
        rows = data
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
    accepted = ["resource_id", "kind", *CURRENT_FIELDS, "tag:<key>", "current", "tags"]
    found: dict[str, Resource] = {}
    for number, row in enumerate(rows, start=1):
        where = f"{source.name} resource {number}"
        unknown = [k for k in row if k not in accepted[:-3] and not str(k).startswith("tag:")
                   and k not in ("current", "tags")]
        if unknown:
            raise MetricInputError(f"{where}: unknown fields {unknown}; accepted: {accepted}")
        rid = str(row.get("resource_id") or "").strip()
        if not rid:
            raise MetricInputError(f"{where}: resource_id is empty; it is required")
        if rid in found:
            raise MetricInputError(f"{where}: resource_id {rid!r} is listed twice")
        kind = str(row.get("kind") or "instance").strip()
        if kind not in RESOURCE_KINDS:
            raise MetricInputError(f"{where}: kind must be one of {RESOURCE_KINDS}, "
                                   f"got {kind!r}")
        current = dict(row.get("current") or {})
        current.update({k: v for k, v in row.items() if k in CURRENT_FIELDS})
        tags = dict(row.get("tags") or {})
        tags.update({k[4:]: v for k, v in row.items() if str(k).startswith("tag:") and v})
        found[rid] = Resource(rid, kind=kind, current=_typed_current(current, where),
                              tags=tags)
    return found


def write_metrics(histories: Iterable[UtilizationHistory], directory: str | Path) -> list[Path]:
    """Write histories in the documented directory shape (``<resource_id>.csv`` with ISO
    timestamps, plus ``resources.json``), so :func:`read_metrics` reads them back."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    written, described = [], []
    for history in histories:
        rid = history.resource.resource_id
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", rid)
        names = sorted(history.metrics)
        path = folder / f"{safe}.csv"
        with path.open("w", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(["timestamp", "resource_id", *names])
            for i, moment in enumerate(history.timestamps):
                stamp = np.datetime_as_string(np.datetime64(int(moment), "s")) + "Z"
                writer.writerow([stamp, rid, *(_cell(history.metrics[n][i]) for n in names)])
        written.append(path)
        resource = history.resource
        described.append({"resource_id": rid, "kind": resource.kind,
                          "current": resource.current, "tags": resource.tags})
    index = folder / "resources.json"
    index.write_text(json.dumps(described, indent=1, sort_keys=True, default=str) + "\n")
    return [*written, index]


def _cell(value: float) -> str:
    return "" if np.isnan(value) else repr(float(value))


def _stem(file: Path) -> str:
    name = file.name
    for suffix in sorted(METRIC_SUFFIXES, key=len, reverse=True):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return file.stem


def _typed_current(current: dict, where: str) -> dict:
    typed = {}
    for name, value in current.items():
        if value is None or value == "":
            continue
        kind = CURRENT_FIELDS.get(name)
        if kind is None or kind is str:
            typed[name] = value.strip() if isinstance(value, str) else value
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = float("nan")
        if not number >= 0 or (kind is int and number != int(number)):
            expected = "a whole number >= 0" if kind is int else "a number >= 0"
            raise MetricInputError(f"{where}: {name} must be {expected}, got {value!r}")
        typed[name] = kind(number)
    return typed


def _history(resource: Resource, parts: list[tuple[np.ndarray, dict[str, np.ndarray]]],
             bucket_seconds: int) -> UtilizationHistory:
    if not parts:
        return UtilizationHistory(resource, np.zeros(0, dtype=np.int64), {})
    seconds = np.concatenate([p[0] for p in parts])
    names = sorted({name for _, columns in parts for name in columns})
    merged = {name: np.concatenate([columns.get(name, np.full(len(s), np.nan))
                                    for s, columns in parts]) for name in names}
    grid, metrics = resample(seconds, merged, bucket_seconds)
    return UtilizationHistory(resource, grid, metrics)


def _read_text(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MetricInputError(f"{path.name}: not UTF-8 text") from None


def _read_file(path: Path, default_id: str, metric: str | None, rename: Mapping[str, str],
               period: float | None):
    """Yield (resource_id, unix seconds, {canonical column: per-second values})."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        yield from _from_table(_parquet_columns(path), path, default_id, metric, rename, period)
        return
    text = _read_text(path)
    if name.endswith((".csv", ".csv.gz")):
        reader = csv.reader(io.StringIO(text))
        header = [h.strip() for h in next(reader, [])]
        rows = [r for r in reader if r]
        for number, row in enumerate(rows, start=2):
            if len(row) != len(header):
                raise MetricInputError(f"{path.name} line {number}: {len(row)} fields, the "
                                       f"header has {len(header)}")
        table = {h: [r[i] for r in rows] for i, h in enumerate(header)}
        yield from _from_table(table, path, default_id, metric, rename, period)
        return
    try:
        data = ([json.loads(line) for line in text.splitlines() if line.strip()]
                if name.endswith((".jsonl", ".jsonl.gz")) else json.loads(text))
    except json.JSONDecodeError as error:
        raise MetricInputError(f"{path.name}: not valid JSON: {error}") from None
    if is_cloudwatch_output(data):
        for rid, column, seconds, values, total in cloudwatch_series(data, path.name,
                                                                      default_id):
            yield rid, seconds, {column: _per_second(values, seconds, total, period)}
        return
    if isinstance(data, list) and all(isinstance(r, dict) for r in data):
        keys = list(dict.fromkeys(k for r in data for k in r))
        table = {k: [r.get(k) for r in data] for k in keys}
    elif isinstance(data, dict) and all(isinstance(v, list) for v in data.values()):
        table = data
    else:
        raise MetricInputError(f"{path.name}: JSON must be a list of row objects, an object "
                               "of column lists, or aws cloudwatch get-metric-data / "
                               "get-metric-statistics output")
    yield from _from_table(table, path, default_id, metric, rename, period)


def _parquet_columns(path: Path) -> dict[str, np.ndarray]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        raise MetricInputError(f"{path.name}: reading Parquet needs pyarrow "
                               "(pip install 'forestream[optimizer]')") from None
    table = parquet.read_table(path)
    return {n: table.column(n).to_numpy(zero_copy_only=False) for n in table.column_names}


def _from_table(table: Mapping[str, list | np.ndarray], path: Path, default_id: str,
                metric: str | None, rename: Mapping[str, str], period: float | None):
    table = {rename.get(str(k).strip(), str(k).strip()): v for k, v in table.items()}
    time_column = next((c for c in table if c.lower() in TIMESTAMP_COLUMNS), None)
    if time_column is None:
        raise MetricInputError(f"{path.name}: no timestamp column; columns are "
                               f"{list(table)}, one must be named one of {TIMESTAMP_COLUMNS}")
    value_columns = [c for c in table if c not in (time_column, "resource_id")]
    mapping: dict[str, tuple[str, bool]] = {}
    if [c.lower() for c in value_columns] == ["value"]:
        found = canonical_metric(metric) if metric else metric_from_filename(path.stem)
        if found is None:
            raise MetricInputError(f"{path.name}: a timestamp,value file whose name "
                                   "names no known metric; pass metric= (accepted: "
                                   f"{', '.join(accepted_metric_names())})")
        # A CloudWatch export: its counters are period totals even under a canonical name.
        cloudwatch_total = found[0] in _PERIOD_TOTAL_CANONICAL
        mapping[value_columns[0]] = (found[0], found[1] or (metric is None and cloudwatch_total))
    else:
        known = {c: canonical_metric(c) for c in value_columns}
        unknown = [c for c, m in known.items() if m is None]
        if unknown:
            raise MetricInputError(f"{path.name}: unknown columns {unknown}; accepted: "
                                   f"{list(TIMESTAMP_COLUMNS)}, 'resource_id', "
                                   f"{', '.join(accepted_metric_names())} (or pass rename=)")
        mapping = {c: m for c, m in known.items() if m is not None}
    seconds = parse_timestamps(table[time_column], where=path.name)
    owners = (np.asarray([str(v).strip() for v in table["resource_id"]], dtype=object)
              if "resource_id" in table else None)
    for rid in (sorted(set(owners)) if owners is not None else [default_id]):
        rows = owners == rid if owners is not None else slice(None)
        stamps = seconds[rows]
        columns: dict[str, np.ndarray] = {}
        for column, (canonical, total) in mapping.items():
            values = _numbers(np.asarray(table[column], dtype=object)[rows], path.name, column)
            values = _per_second(values, stamps, total, period)
            check_range(canonical, values, f"{path.name} ({rid})")
            columns[canonical] = (values if canonical not in columns
                                  else np.fmax(columns[canonical], values))
        yield rid, stamps, columns


_PERIOD_TOTAL_CANONICAL = frozenset({
    "net_in_bytes", "net_out_bytes", "disk_read_bytes", "disk_write_bytes", "disk_read_ops",
    "disk_write_ops", "invocations", "records_in", "bytes_in", "records_out", "bytes_out"})
_MISSING = {"", "nan", "null", "none", "na", "n/a"}


def _numbers(values: np.ndarray, file: str, column: str) -> np.ndarray:
    try:
        return values.astype(np.float64)
    except (TypeError, ValueError):
        pass
    out = np.empty(len(values))
    for i, value in enumerate(values):
        if value is None or (isinstance(value, str) and value.strip().lower() in _MISSING):
            out[i] = np.nan
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            raise MetricInputError(f"{file}: column {column!r} row {i + 1}: {value!r} is not "
                                   "a number (leave the cell empty for a missing sample)"
                                   ) from None
    return out


def _per_second(values: np.ndarray, seconds: np.ndarray, total: bool,
                period: float | None) -> np.ndarray:
    """Turn CloudWatch period totals into per-second rates; other values pass through."""
    if not total:
        return values
    if period is None:
        spacing = np.diff(np.unique(seconds))
        period = float(np.median(spacing)) if spacing.size else float(BUCKET_SECONDS)
    return values / period
