"""Read the JSON that the AWS CLI prints for CloudWatch metric queries.

Two shapes, both as ``aws ... --output json`` writes them:

``aws cloudwatch get-metric-data``::

    {"MetricDataResults": [{"Id": "cpu", "Label": "CPUUtilization",
                            "Timestamps": ["2024-05-01T00:05:00+00:00", ...],
                            "Values": [12.5, ...], "StatusCode": "Complete"}],
     "Messages": []}

The metric is read from ``Label`` (else ``Id``): an AWS name (``CPUUtilization``,
``NetworkIn``) or a canonical one (``cpu_pct``). A label ``"<resource_id> <MetricName>"``
(what a ``SEARCH`` expression with ``LABEL`` set to the instance id gives) names the
resource too; otherwise the file's resource is used. Ask CloudWatch for the ``Sum``
statistic of counters (``NetworkIn``, ``DiskReadOps``, ``Invocations``): they are
divided by the sample period to get per-second rates.

``aws cloudwatch get-metric-statistics``::

    {"Label": "CPUUtilization",
     "Datapoints": [{"Timestamp": "2024-05-01T00:05:00+00:00", "Average": 12.5,
                     "Maximum": 40.0, "Unit": "Percent"}]}

``Average`` (else ``Sum``) becomes the metric's samples and ``Maximum`` its ``_max``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np

from .timeseries import (
    MetricInputError,
    accepted_metric_names,
    canonical_metric,
    metric_from_filename,
    parse_timestamps,
)

if TYPE_CHECKING:
    from typing import TypeGuard

Series = tuple[str, str, np.ndarray, np.ndarray, bool]


def is_cloudwatch_output(data: object) -> TypeGuard[dict]:
    """True for get-metric-data or get-metric-statistics output."""
    return isinstance(data, dict) and ("MetricDataResults" in data or "Datapoints" in data)


def cloudwatch_series(data: dict, file: str, default_id: str) -> Iterator[Series]:
    """Yield ``(resource_id, column, unix seconds, values, values are period totals)``."""
    if "MetricDataResults" in data:
        results = data["MetricDataResults"]
        if not isinstance(results, list):
            raise MetricInputError(f"{file}: MetricDataResults must be a list")
        for number, result in enumerate(results, start=1):
            where = f"{file} MetricDataResults[{number - 1}]"
            label = str(result.get("Label") or "")
            rid, metric = _resource_and_metric(label, str(result.get("Id") or ""), default_id,
                                               where)
            stamps, values = result.get("Timestamps", []), result.get("Values", [])
            if len(stamps) != len(values):
                raise MetricInputError(f"{where}: {len(stamps)} Timestamps but "
                                       f"{len(values)} Values")
            yield (rid, metric[0], parse_timestamps(stamps, where),
                   _floats(values), metric[1])
        return
    points = data["Datapoints"]
    where = f"{file} Datapoints"
    rid, metric = _resource_and_metric(str(data.get("Label") or ""), "", default_id, where)
    if not isinstance(points, list) or not all(isinstance(p, dict) for p in points):
        raise MetricInputError(f"{where}: must be a list of objects")
    if not points:
        return
    seconds = parse_timestamps([p.get("Timestamp") for p in points], where)
    statistic = next((s for s in ("Average", "Sum") if s in points[0]), None)
    if statistic is None and "Maximum" not in points[0]:
        raise MetricInputError(f"{where}: datapoints carry none of Average, Sum, Maximum; "
                               "ask for --statistics Average Maximum")
    if statistic:
        yield rid, metric[0], seconds, _floats([p.get(statistic) for p in points]), metric[1]
    if "Maximum" in points[0]:
        yield (rid, f"{metric[0]}_max", seconds, _floats([p.get("Maximum") for p in points]),
               metric[1])


def _resource_and_metric(label: str, query_id: str, default_id: str,
                         where: str) -> tuple[str, tuple[str, bool]]:
    parts = label.split()
    if len(parts) == 2 and (known := canonical_metric(parts[1])):
        return parts[0], known
    for candidate in (label, query_id):
        if candidate and (known := canonical_metric(candidate)):
            return default_id, known
    found = metric_from_filename(label) or metric_from_filename(query_id)
    if found:
        return default_id, found
    raise MetricInputError(f"{where}: neither Label {label!r} nor Id {query_id!r} names a "
                           f"known metric; accepted: {', '.join(accepted_metric_names())}")


def _floats(values: list) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
