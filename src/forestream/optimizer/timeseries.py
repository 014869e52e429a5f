"""Metric names, timestamps and 5-minute resampling shared by every metric source.

Every source (files, Prometheus, the host agent, forestream's own components) ends in
the same place: per resource, a regular grid of ``bucket_seconds`` buckets (5 minutes
by default, Compute Optimizer's granularity) with, for each metric, the bucket mean under
the canonical name (``cpu_pct``) and the bucket maximum under ``<name>_max``
(``cpu_pct_max``). Buckets without samples hold NaN: a gap stays a gap, so a recommender
can tell "idle" from "not measured".

>>> import numpy as np
>>> cpu = np.array([10.0, 30.0, 20.0, 5.0])
>>> grid, metrics = resample(np.array([0, 60, 120, 900]), {"cpu_pct": cpu})
>>> grid.tolist()
[0, 300, 600, 900]
>>> metrics["cpu_pct"].tolist(), metrics["cpu_pct_max"].tolist()
([20.0, nan, nan, 5.0], [30.0, nan, nan, 5.0])
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping

import numpy as np

from forestream import errors

from .types import METRICS

BUCKET_SECONDS = 300

#: Metric names used by AWS (CloudWatch, the CloudWatch agent, Container Insights,
#: SageMaker, Kinesis) -> (canonical name, value is a total over the sample period).
#: A period total is divided by the period to give the per-second rate METRICS asks for.
CLOUDWATCH_NAMES: dict[str, tuple[str, bool]] = {
    "CPUUtilization": ("cpu_pct", False),
    "mem_used_percent": ("mem_pct", False),
    "MemoryUtilization": ("mem_pct", False),
    "NetworkIn": ("net_in_bytes", True),
    "NetworkOut": ("net_out_bytes", True),
    "DiskReadBytes": ("disk_read_bytes", True),
    "DiskWriteBytes": ("disk_write_bytes", True),
    "DiskReadOps": ("disk_read_ops", True),
    "DiskWriteOps": ("disk_write_ops", True),
    "EBSReadBytes": ("disk_read_bytes", True),
    "EBSWriteBytes": ("disk_write_bytes", True),
    "EBSReadOps": ("disk_read_ops", True),
    "EBSWriteOps": ("disk_write_ops", True),
    "VolumeReadBytes": ("disk_read_bytes", True),
    "VolumeWriteBytes": ("disk_write_bytes", True),
    "VolumeReadOps": ("disk_read_ops", True),
    "VolumeWriteOps": ("disk_write_ops", True),
    "GPUUtilization": ("gpu_pct", False),
    "GPUMemoryUtilization": ("gpu_mem_pct", False),
    "nvidia_smi_utilization_gpu": ("gpu_pct", False),
    "Invocations": ("invocations", True),
    "Duration": ("duration_ms", False),
    "IncomingRecords": ("records_in", True),
    "IncomingBytes": ("bytes_in", True),
    "GetRecords.Records": ("records_out", True),
    "GetRecords.Bytes": ("bytes_out", True),
    "GetRecords.IteratorAgeMilliseconds": ("millis_behind", False),
    "MillisBehindLatest": ("millis_behind", False),
}

PERCENT_METRICS = frozenset(m for m in METRICS if m.endswith("_pct"))


class MetricInputError(errors.InvalidInputError, ValueError):
    """Metric input that cannot be used; the message names the value and what is accepted."""


def _normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_ALIASES = {_normalized(k): v for k, v in CLOUDWATCH_NAMES.items()}
_ALIASES.update({_normalized(m): (m, False) for m in METRICS})


def canonical_metric(name: str) -> tuple[str, bool] | None:
    """``(canonical name, is a period total)`` for a canonical or AWS metric name, else
    None. ``"cpu_pct"`` -> ``("cpu_pct", False)``; ``"NetworkIn"`` ->
    ``("net_in_bytes", True)``; a ``_max`` suffix is kept: ``"cpu_pct_max"`` ->
    ``("cpu_pct_max", False)``."""
    if name.endswith("_max") and name[:-4] in METRICS:
        return name, False
    return _ALIASES.get(_normalized(name))


def metric_from_filename(stem: str) -> tuple[str, bool] | None:
    """The metric a file's name mentions (``ec2_cpu_utilization_5f5533`` -> cpu_pct,
    ``iio_us-east-1_i-a2eb1cd9_NetworkIn`` -> net_in_bytes), longest name first."""
    key = _normalized(stem)
    for alias in sorted(_ALIASES, key=len, reverse=True):
        if alias in key:
            return _ALIASES[alias]
    return None


def accepted_metric_names() -> list[str]:
    """Every metric column name a file may use (canonical, ``_max`` and AWS names)."""
    return [*METRICS, *(f"{m}_max" for m in METRICS), *CLOUDWATCH_NAMES]


def parse_timestamps(values: Iterable, where: str = "timestamps") -> np.ndarray:
    """Unix seconds (float64) from ISO 8601 strings, epoch seconds or epoch milliseconds
    (micro/nanoseconds too), or numpy datetimes. Numbers above 1e11 are milliseconds, above
    1e14 microseconds, above 1e17 nanoseconds (1e11 s is the year 5138). ISO strings
    without an offset are UTC."""
    array = np.asarray(values if not isinstance(values, np.ndarray) else values)
    if array.size == 0:
        return np.zeros(0)
    if np.issubdtype(array.dtype, np.datetime64):
        return array.astype("datetime64[ns]").astype(np.int64) / 1e9
    if np.issubdtype(array.dtype, np.number):
        return _epoch_to_seconds(array.astype(np.float64), where)
    try:
        numbers = array.astype(np.float64)
    except (TypeError, ValueError):
        numbers = None
    if numbers is not None:
        return _epoch_to_seconds(numbers, where)
    return np.array([_iso_seconds(v, where, i) for i, v in enumerate(array.tolist())])


def _epoch_to_seconds(numbers: np.ndarray, where: str) -> np.ndarray:
    if np.isnan(numbers).any():
        row = int(np.flatnonzero(np.isnan(numbers))[0])
        raise MetricInputError(f"{where}: timestamp number {row + 1} is missing; every row "
                               "needs a timestamp")
    scale = np.ones_like(numbers)
    magnitude = np.abs(numbers)
    scale[magnitude > 1e11] = 1e-3
    scale[magnitude > 1e14] = 1e-6
    scale[magnitude > 1e17] = 1e-9
    return numbers * scale


def _iso_seconds(value: object, where: str, index: int) -> float:
    if isinstance(value, dt.datetime):
        moment = value
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            number = None
        if number is not None and not np.isnan(number):
            return float(_epoch_to_seconds(np.array([number]), where)[0])
        try:
            moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
        except ValueError:
            raise MetricInputError(
                f"{where}: timestamp {value!r} (number {index + 1}) is neither ISO 8601 "
                "(2024-05-01T12:00:00Z) nor epoch seconds/milliseconds") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def resample(timestamps: np.ndarray, metrics: Mapping[str, np.ndarray],
             bucket_seconds: int = BUCKET_SECONDS, start: float | None = None,
             end: float | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bucket samples onto a regular grid: ``name`` = mean, ``name_max`` = maximum.

    ``timestamps`` are unix seconds (any order, duplicates allowed); each metric array
    has one value per timestamp, NaN for a missing one. A ``<name>_max`` input (a
    maximum measured within its own sample period) feeds the bucket maximum of ``name``.
    The grid runs from the bucket holding ``start`` (default: the first sample) to the
    bucket holding ``end`` (default: the last); empty buckets are NaN.
    """
    if bucket_seconds <= 0 or int(bucket_seconds) != bucket_seconds:
        raise MetricInputError(f"bucket_seconds must be a positive whole number of seconds, "
                               f"got {bucket_seconds!r}")
    seconds = np.asarray(timestamps, dtype=np.float64)
    if seconds.size == 0:
        return np.zeros(0, dtype=np.int64), {}
    first = np.floor((seconds.min() if start is None else start) / bucket_seconds)
    last = np.floor((seconds.max() if end is None else end) / bucket_seconds)
    grid = (np.arange(first, last + 1) * bucket_seconds).astype(np.int64)
    index = (np.floor(seconds / bucket_seconds) - first).astype(np.int64)
    inside = (index >= 0) & (index < len(grid))
    out: dict[str, np.ndarray] = {}
    means = {n for n in metrics if not n.endswith("_max")}
    maxima = {n[:-4] for n in metrics if n.endswith("_max")}
    for name in sorted(means | maxima):
        values = np.asarray(metrics[name], dtype=np.float64) if name in means else None
        peaks = np.asarray(metrics[f"{name}_max"], dtype=np.float64) if name in maxima else None
        if values is not None:
            out[name] = _bucket_mean(index, values, inside, len(grid))
        candidates = [v for v in (values, peaks) if v is not None]
        out[f"{name}_max"] = np.fmax.reduce([_bucket_max(index, v, inside, len(grid))
                                             for v in candidates])
    return grid, out


def _bucket_mean(index: np.ndarray, values: np.ndarray, inside: np.ndarray,
                 size: int) -> np.ndarray:
    keep = inside & np.isfinite(values)
    total = np.bincount(index[keep], weights=values[keep], minlength=size)
    count = np.bincount(index[keep], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _bucket_max(index: np.ndarray, values: np.ndarray, inside: np.ndarray,
                size: int) -> np.ndarray:
    keep = inside & np.isfinite(values)
    peak = np.full(size, -np.inf)
    np.maximum.at(peak, index[keep], values[keep])
    peak[np.isneginf(peak)] = np.nan
    return peak


def check_range(name: str, values: np.ndarray, where: str) -> None:
    """Reject negative values, and percentages above 100, naming the first bad one."""
    base = name[:-4] if name.endswith("_max") else name
    upper = 100.0 if base in PERCENT_METRICS else np.inf
    bad = np.flatnonzero((values < 0) | (values > upper + 1e-6))
    if bad.size:
        accepted = "0 to 100" if base in PERCENT_METRICS else ">= 0"
        raise MetricInputError(f"{where}: {name} value {float(values[bad[0]])!r} (sample "
                               f"{bad[0] + 1}) is out of range; accepted: {accepted}")
