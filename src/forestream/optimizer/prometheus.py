"""Read utilization metrics from a Prometheus server, and parse Prometheus text format.

:func:`read_prometheus` asks a Prometheus server's HTTP API (``GET
/api/v1/query_range``, https://prometheus.io/docs/prometheus/latest/querying/api/) one
PromQL query per metric at a 5-minute step, and turns each matrix result into one
:class:`~forestream.optimizer.types.UtilizationHistory` per resource. A resource is
named by the result's labels (``instance`` for node_exporter, ``namespace/pod`` for
cAdvisor); every query must therefore keep those labels (``sum by (instance) (...)``).

Two presets give sensible defaults:

* ``"node_exporter"`` (hosts, kind ``instance``): CPU busy %, memory used % and GiB,
  network and disk bytes/operations per second, and NVIDIA DCGM exporter GPU metrics.
* ``"cadvisor"`` (containers, kind ``container``): CPU as % of the container's CPU limit,
  working-set memory as % of its memory limit, network and filesystem I/O.

Pass ``queries={"cpu_pct": "...", ...}`` to replace or add queries (keys are names from
``METRICS``; values are PromQL). A metric whose query returns nothing is left out; a
query Prometheus rejects raises :class:`PrometheusError` with its error message.

:func:`parse_exposition` reads the text a ``/metrics`` endpoint serves (exposition
format 0.0.4) into :class:`Sample` tuples:

>>> parse_exposition('# TYPE x counter\\nx{shard="a",stream="s"} 3\\nup 1\\n')
[Sample(name='x', labels={'shard': 'a', 'stream': 's'}, value=3.0), \
Sample(name='up', labels={}, value=1.0)]
"""

from __future__ import annotations

import json
import math
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from forestream import errors

from .timeseries import BUCKET_SECONDS, MetricInputError, canonical_metric, parse_timestamps
from .types import METRICS, Resource, UtilizationHistory

_HOST_DEVICES = 'device!~"lo|veth.*|docker.*|br-.*|cni.*|flannel.*|virbr.*"'
NODE_EXPORTER_QUERIES: dict[str, str] = {
    "cpu_pct": '100 * (1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}[5m])))',
    "mem_pct": "100 * (1 - node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes)",
    "mem_used_gib": "(node_memory_MemTotal_bytes - node_memory_MemAvailable_bytes) / 2^30",
    "net_in_bytes": f"sum by (instance) (rate(node_network_receive_bytes_total{{{_HOST_DEVICES}}}"
                    "[5m]))",
    "net_out_bytes": "sum by (instance) (rate(node_network_transmit_bytes_total"
                     f"{{{_HOST_DEVICES}}}[5m]))",
    "disk_read_bytes": "sum by (instance) (rate(node_disk_read_bytes_total[5m]))",
    "disk_write_bytes": "sum by (instance) (rate(node_disk_written_bytes_total[5m]))",
    "disk_read_ops": "sum by (instance) (rate(node_disk_reads_completed_total[5m]))",
    "disk_write_ops": "sum by (instance) (rate(node_disk_writes_completed_total[5m]))",
    "gpu_pct": "avg by (instance) (DCGM_FI_DEV_GPU_UTIL)",
    "gpu_mem_pct": "100 * sum by (instance) (DCGM_FI_DEV_FB_USED) / sum by (instance) "
                   "(DCGM_FI_DEV_FB_USED + DCGM_FI_DEV_FB_FREE)",
}
_POD = "namespace, pod"
_CONTAINERS = 'container!="", container!="POD"'
CADVISOR_QUERIES: dict[str, str] = {
    "cpu_pct": f"100 * sum by ({_POD}) (rate(container_cpu_usage_seconds_total{{{_CONTAINERS}}}"
               f"[5m])) / sum by ({_POD}) (container_spec_cpu_quota{{{_CONTAINERS}}} "
               f"/ container_spec_cpu_period{{{_CONTAINERS}}})",
    "mem_pct": f"100 * sum by ({_POD}) (container_memory_working_set_bytes{{{_CONTAINERS}}}) "
               f"/ sum by ({_POD}) (container_spec_memory_limit_bytes{{{_CONTAINERS}}} > 0)",
    "mem_used_gib": f"sum by ({_POD}) (container_memory_working_set_bytes{{{_CONTAINERS}}}) "
                    "/ 2^30",
    "net_in_bytes": f"sum by ({_POD}) (rate(container_network_receive_bytes_total[5m]))",
    "net_out_bytes": f"sum by ({_POD}) (rate(container_network_transmit_bytes_total[5m]))",
    "disk_read_bytes": f"sum by ({_POD}) (rate(container_fs_reads_bytes_total[5m]))",
    "disk_write_bytes": f"sum by ({_POD}) (rate(container_fs_writes_bytes_total[5m]))",
    "disk_read_ops": f"sum by ({_POD}) (rate(container_fs_reads_total[5m]))",
    "disk_write_ops": f"sum by ({_POD}) (rate(container_fs_writes_total[5m]))",
}
#: preset -> (queries, labels naming a resource, resource kind)
PRESETS: dict[str, tuple[dict[str, str], tuple[str, ...], str]] = {
    "node_exporter": (NODE_EXPORTER_QUERIES, ("instance",), "instance"),
    "cadvisor": (CADVISOR_QUERIES, ("namespace", "pod"), "container"),
}
MAX_POINTS_PER_REQUEST = 11_000  # Prometheus refuses query_range answers above 11,000 points


class PrometheusError(errors.UpstreamError, RuntimeError):
    """The Prometheus server could not be reached or rejected a query."""


class Sample(NamedTuple):
    """One line of Prometheus text format: metric name, labels, value."""

    name: str
    labels: dict[str, str]
    value: float


def read_prometheus(url: str, *, start: float | str | None = None,
                    end: float | str | None = None, days: float = 14.0,
                    preset: str = "node_exporter", queries: Mapping[str, str] | None = None,
                    resource_labels: tuple[str, ...] | None = None, kind: str | None = None,
                    step_seconds: int = BUCKET_SECONDS, headers: Mapping[str, str] | None = None,
                    timeout: float = 30.0,
                    max_points_per_request: int = MAX_POINTS_PER_REQUEST
                    ) -> list[UtilizationHistory]:
    """Histories of every resource the queries return between ``start`` and ``end``.

    ``url`` is the server's base URL (``http://prometheus:9090``). ``start``/``end``
    are epoch seconds or ISO 8601 (default: the ``days`` before now). ``preset`` picks
    default queries, resource labels and kind; ``queries`` overrides or adds queries per
    metric; ``resource_labels`` and ``kind`` override the preset's. ``headers`` are sent
    with each request (``{"Authorization": "Bearer ..."}``). Long ranges are split so no
    answer exceeds ``max_points_per_request`` points per series.
    """
    if preset not in PRESETS:
        raise MetricInputError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
    preset_queries, preset_labels, preset_kind = PRESETS[preset]
    chosen = {**preset_queries, **(queries or {})}
    bad = [name for name in chosen
           if (known := canonical_metric(name)) is None or known[0] != name]
    if bad:
        raise MetricInputError(f"query names {bad} are not metric names; accepted: "
                               f"{', '.join(METRICS)} (and their _max variants)")
    if not (isinstance(step_seconds, int) and step_seconds > 0):
        raise MetricInputError(f"step_seconds must be a positive whole number, got "
                               f"{step_seconds!r}")
    if not days > 0:
        raise MetricInputError(f"days must be > 0, got {days!r}")
    end_s = time.time() if end is None else float(parse_timestamps([end], "end")[0])
    start_s = end_s - days * 86400 if start is None else float(
        parse_timestamps([start], "start")[0])
    if start_s >= end_s:
        raise MetricInputError(f"start ({start!r}) must be before end ({end!r})")
    labels = resource_labels or preset_labels
    # Align to the step so every query's samples fall on the same grid.
    start_s = math.floor(start_s / step_seconds) * step_seconds
    end_s = math.floor(end_s / step_seconds) * step_seconds
    found: dict[str, dict[str, list[tuple[np.ndarray, np.ndarray]]]] = defaultdict(
        lambda: defaultdict(list))
    tags: dict[str, dict[str, str]] = {}
    chunk = step_seconds * (max_points_per_request - 1)
    for metric, promql in chosen.items():
        window_start = start_s
        while window_start <= end_s:
            window_end = min(end_s, window_start + chunk)
            for series in query_range(url, promql, window_start, window_end, step_seconds,
                                      headers=headers, timeout=timeout):
                resource_id = "/".join(series["metric"][label] for label in labels
                                       if series["metric"].get(label))
                if not resource_id:
                    raise PrometheusError(f"a result of the {metric} query has none of the "
                                          f"labels {list(labels)} that name a resource "
                                          f"(labels: {series['metric']}); keep them in the "
                                          "query's 'by (...)' clause")
                tags[resource_id] = {label: series["metric"][label] for label in labels
                                     if series["metric"].get(label)}
                stamps, values = _matrix_values(series["values"])
                found[resource_id][metric].append((stamps, values))
            window_start = window_end + step_seconds
    grid_all = np.arange(start_s, end_s + 1, step_seconds, dtype=np.int64)
    histories = []
    for resource_id in sorted(found):
        metrics = {}
        for metric, parts in found[resource_id].items():
            column = np.full(len(grid_all), np.nan)
            for stamps, values in parts:
                index = ((stamps - start_s) // step_seconds).astype(np.int64)
                keep = (index >= 0) & (index < len(grid_all))
                column[index[keep]] = values[keep]
            metrics[metric] = column
            # Prometheus gives one point per step: the bucket's maximum is that point.
            metrics.setdefault(f"{metric}_max", column.copy())
        present = np.flatnonzero(np.any([np.isfinite(c) for c in metrics.values()], axis=0))
        span = slice(present[0], present[-1] + 1) if present.size else slice(0, 0)
        resource = Resource(resource_id, kind=kind or preset_kind, tags=tags[resource_id])
        histories.append(UtilizationHistory(resource, grid_all[span],
                                            {k: v[span] for k, v in metrics.items()}))
    return histories


def query_range(url: str, promql: str, start: float, end: float, step_seconds: int, *,
                headers: Mapping[str, str] | None = None, timeout: float = 30.0) -> list[dict]:
    """The ``result`` list of one ``/api/v1/query_range`` call (matrix results)."""
    params = urllib.parse.urlencode({"query": promql, "start": f"{start:.3f}",
                                     "end": f"{end:.3f}", "step": f"{step_seconds}s"})
    request = urllib.request.Request(f"{url.rstrip('/')}/api/v1/query_range?{params}",
                                     headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            body = json.loads(error.read())
        except ValueError:
            raise PrometheusError(f"Prometheus at {url} answered HTTP {error.code} "
                                  f"({error.reason}) to query {promql!r}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise PrometheusError(f"cannot reach Prometheus at {url}: {reason}") from None
    except ValueError:
        raise PrometheusError(f"Prometheus at {url} did not answer JSON to query "
                              f"{promql!r}") from None
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus rejected query {promql!r}: "
                              f"{body.get('errorType', 'error')}: {body.get('error')}")
    data = body.get("data", {})
    if data.get("resultType") != "matrix":
        raise PrometheusError(f"query {promql!r} gave a {data.get('resultType')!r} result; "
                              "query_range needs an expression that yields a range vector "
                              "(a 'matrix')")
    return data.get("result", [])


def parse_exposition(text: str) -> list[Sample]:
    """Samples of Prometheus text exposition format (comments and timestamps ignored)."""
    samples = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise MetricInputError(f"line {number} is not Prometheus text format: {line!r}")
        labels = {key: _unescape(value)
                  for key, value in _LABEL.findall(match.group("labels") or "")}
        samples.append(Sample(match.group("name"), labels, _number(match.group("value"))))
    return samples


_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+"
                     r"(?P<value>\S+)(?:\s+-?\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"')


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


_SPECIAL = {"+Inf": math.inf, "Inf": math.inf, "-Inf": -math.inf, "NaN": math.nan}


def _number(text: str) -> float:
    return _SPECIAL[text] if text in _SPECIAL else float(text)


def _matrix_values(values: list) -> tuple[np.ndarray, np.ndarray]:
    if not values:
        return np.zeros(0), np.zeros(0)
    stamps = np.array([float(v[0]) for v in values])
    numbers = np.array([_number(str(v[1])) for v in values])
    numbers[~np.isfinite(numbers)] = np.nan  # NaN/Inf (e.g. x/0) is "not measured"
    return stamps, numbers

