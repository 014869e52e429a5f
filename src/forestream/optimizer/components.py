"""Utilization of forestream's own components, sampled from a running server.

A :class:`ComponentCollector` polls one ``forestream server`` every
``interval_seconds`` and turns its counters into per-second rates, one row per
component, in the documented input shape (see :mod:`forestream.optimizer.ingest`), so
``read_metrics(directory)`` reads what it wrote and right-sizing treats forestream like
any other workload. What it reads, and the resources it reports:

``stream/<name>`` (kind ``stream``, ``current={"shards": <open shards>}``)
    The sum over the stream's shards, plus one ``stream/<name>/<shard id>`` resource per
    shard (``current={"shards": 1}``, tags ``stream``, ``shard``) so a recommender can
    see a hot shard. Rates come from the server's ``/metrics`` counters
    ``forestream_shard_records_in_total{stream,shard}`` and, where the server exports
    them, ``forestream_shard_bytes_in_total``, ``forestream_shard_records_out_total``,
    ``forestream_shard_bytes_out_total`` (columns ``records_in``, ``bytes_in``,
    ``records_out``, ``bytes_out``; a counter the server does not export stays empty).
    Open shard counts come from the Kinesis API (``ListStreams`` +
    ``DescribeStreamSummary``).
``application/<name>`` (kind ``application``, ``current={"parallelism": n}``)
    From ``GET /api/v1/applications`` and each application's description: ``records_in``
    per second (the workers' summed counter; a restart that resets it is not a negative
    rate) and ``millis_behind`` (the largest ``MillisBehindLatest`` over its shards).
``endpoint/<name>/<variant>`` (kind ``endpoint``, ``current={"workers": n}``)
    From ``/metrics``: ``invocations`` per second, ``duration_ms`` (mean latency over
    the interval) and ``busy_pct`` = invocations/s x mean latency / workers x 100, the
    share of worker time spent serving (Little's law). A server without model endpoints
    simply reports none.

>>> collector = ComponentCollector("http://127.0.0.1:4567", interval_seconds=60)
>>> collector.interval_seconds, collector.histories()
(60.0, [])
"""

from __future__ import annotations

import csv
import json
import math
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np

from forestream import errors

from .prometheus import Sample, parse_exposition
from .timeseries import MetricInputError, resample
from .types import Resource, UtilizationHistory

COLUMNS_BY_KIND = {
    "stream": ("records_in", "bytes_in", "records_out", "bytes_out"),
    "application": ("records_in", "millis_behind"),
    "endpoint": ("invocations", "duration_ms", "busy_pct"),
}
SHARD_COUNTERS = {
    "forestream_shard_records_in_total": "records_in",
    "forestream_shard_bytes_in_total": "bytes_in",
    "forestream_shard_records_out_total": "records_out",
    "forestream_shard_bytes_out_total": "bytes_out",
}


class ComponentError(errors.UpstreamError, RuntimeError):
    """The forestream server could not be reached or answered something unexpected."""


class ComponentCollector:
    """Poll a forestream server and record its components' utilization.

    ``endpoint_url`` is the server (``http://127.0.0.1:4567``). ``directory``, when
    given, receives one CSV per component and a ``resources.json`` (rewritten each
    round with current shard counts, parallelism and workers). ``credentials`` is an
    ``(access key, secret key)`` pair for a server that requires signed requests
    (default: ``FORESTREAM_ACCESS_KEY_ID``/``AWS_ACCESS_KEY_ID`` and friends); ``token``
    the server's access token (default: found as the forestream commands find it, see
    :mod:`forestream.access_token`), sent instead of a signature when known.
    :meth:`collect` takes one round by hand; :meth:`start`/:meth:`stop` run rounds on a
    thread. Rates need two rounds: the first only sets the baseline.
    """

    def __init__(self, endpoint_url: str, directory: str | Path | None = None, *,
                 interval_seconds: float = 60.0, per_shard: bool = True,
                 credentials: tuple[str, str] | None = None, region: str | None = None,
                 timeout: float = 10.0, token: str | None = None) -> None:
        if not interval_seconds > 0:
            raise MetricInputError(f"interval_seconds must be > 0, got {interval_seconds!r}")
        self.endpoint_url = endpoint_url.rstrip("/")
        if token is None:
            from forestream.access_token import find_token

            token = find_token(self.endpoint_url)
        self.token = token
        self.directory = Path(directory) if directory is not None else None
        self.interval_seconds = float(interval_seconds)
        self.per_shard = per_shard
        self.timeout = timeout
        if credentials is None:
            from forestream.config import client_credentials

            key, secret = client_credentials()  # both set, or both None
            credentials = (key, secret) if key and secret else None
        self.credentials = credentials
        if region is None:
            from forestream.config import client_region

            region = client_region()
        self.region = region
        self.resources: dict[str, Resource] = {}
        self._rows: dict[str, list[dict[str, float]]] = defaultdict(list)
        self._previous: tuple[float, dict[str, dict[str, float]]] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def collect(self) -> dict[str, dict[str, float]]:
        """One round: read the server, and return (and record) each component's row of
        rates since the previous round; {} on the first round."""
        at = time.time()
        counters, gauges, resources = self._read_server()
        self.resources.update(resources)
        previous, self._previous = self._previous, (at, counters)
        if previous is None:
            return {}
        seconds = at - previous[0]
        rows: dict[str, dict[str, float]] = {}
        for rid, values in counters.items():
            before = previous[1].get(rid, {})
            row = {}
            for name, now in values.items():
                then = before.get(name)
                if then is None:
                    then = 0.0 if rid not in previous[1] else math.nan
                # A counter that went down was reset (a restarted worker): count from zero.
                row[name] = (now - then if now >= then else now) / seconds
            rows[rid] = row
        for rid, values in gauges.items():
            rows.setdefault(rid, {}).update(values)
        _derive_endpoint_metrics(rows, counters, resources)
        for rid, row in rows.items():
            kind = self.resources[rid].kind
            row = {name: row.get(name, math.nan) for name in COLUMNS_BY_KIND[kind]}
            row["timestamp"] = at
            rows[rid] = row
            self._rows[rid].append(row)
        if self.directory is not None:
            self._write(self.directory, rows)
        return rows

    def histories(self, bucket_seconds: int = 300) -> list[UtilizationHistory]:
        """What this collector recorded, resampled as :func:`read_metrics` would."""
        out = []
        for rid in sorted(self._rows):
            rows = self._rows[rid]
            stamps = np.array([r["timestamp"] for r in rows])
            metrics = {name: np.array([r[name] for r in rows], dtype=np.float64)
                       for name in rows[0] if name != "timestamp"}
            grid, resampled = resample(stamps, metrics, bucket_seconds)
            out.append(UtilizationHistory(self.resources[rid], grid, resampled))
        return out

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ComponentCollector:
        if not self.running:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="forestream-components",
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout * 3 + 5)
            self._thread = None

    def __enter__(self) -> ComponentCollector:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        while True:
            try:
                self.collect()
            except ComponentError:
                self._previous = None  # server away: restart the rates when it is back
            if self._stop.wait(self.interval_seconds):
                return

    def _read_server(self):
        samples = parse_exposition(self._get("/metrics").decode())
        counters: dict[str, dict[str, float]] = defaultdict(dict)
        gauges: dict[str, dict[str, float]] = defaultdict(dict)
        resources: dict[str, Resource] = {}
        # The server lists a shard's counter once it has traffic, so a stream without
        # samples of an exported counter family had none: zero, not unknown. records_in
        # is always exported; the other families count as exported once any shard has one.
        exported = {"records_in"} | {SHARD_COUNTERS[s.name] for s in samples
                                     if s.name in SHARD_COUNTERS}
        for name, shards in self._open_shard_counts().items():
            resources[f"stream/{name}"] = Resource(f"stream/{name}", "stream",
                                                   {"shards": shards})
            counters[f"stream/{name}"] = dict.fromkeys(sorted(exported), 0.0)
        for sample in samples:
            self._add_sample(sample, counters, resources)
        for app in self._applications():
            rid = f"application/{app['name']}"
            resources[rid] = Resource(rid, "application",
                                      {"parallelism": int(app.get("parallelism") or 1)})
            runtime = app.get("runtime") or {}
            counters[rid]["records_in"] = float(runtime.get("records_in") or 0)
            lags = [float(v) for v in (runtime.get("millis_behind_latest") or {}).values()]
            gauges[rid]["millis_behind"] = max(lags) if lags else math.nan
        return dict(counters), dict(gauges), resources

    def _add_sample(self, sample: Sample, counters, resources) -> None:
        labels = sample.labels
        if sample.name in SHARD_COUNTERS and "stream" in labels and "shard" in labels:
            metric = SHARD_COUNTERS[sample.name]
            stream = f"stream/{labels['stream']}"
            if stream not in resources:  # deleted since: its counters linger in /metrics
                return
            counters[stream][metric] = counters[stream].get(metric, 0.0) + sample.value
            if self.per_shard:
                rid = f"{stream}/{labels['shard']}"
                resources[rid] = Resource(rid, "stream", {"shards": 1},
                                          {"stream": labels["stream"], "shard": labels["shard"]})
                counters[rid][metric] = sample.value
        elif sample.name.startswith("forestream_endpoint_") and "endpoint" in labels:
            rid = f"endpoint/{labels['endpoint']}/{labels.get('variant', 'default')}"
            resource = resources.setdefault(rid, Resource(rid, "endpoint", {"workers": 0},
                                                          {"endpoint": labels["endpoint"]}))
            if sample.name == "forestream_endpoint_workers":
                resource.current["workers"] = int(sample.value)
            elif sample.name == "forestream_endpoint_invocations_total":
                counters[rid]["invocations"] = sample.value
            elif sample.name == "forestream_endpoint_latency_seconds_sum":
                counters[rid]["_latency_sum"] = sample.value

    def _open_shard_counts(self) -> dict[str, int]:
        client = self._kinesis()
        names: list[str] = []
        try:
            for page in client.get_paginator("list_streams").paginate():
                names += page["StreamNames"]
            counts = {}
            for name in names:
                try:
                    summary = client.describe_stream_summary(StreamName=name)
                except client.exceptions.ResourceNotFoundException:
                    continue  # deleted between the two calls
                counts[name] = int(summary["StreamDescriptionSummary"]["OpenShardCount"])
        except Exception as error:
            if type(error).__module__.startswith(("botocore", "urllib3")):
                raise ComponentError(f"cannot list streams at {self.endpoint_url}: "
                                     f"{error}") from None
            raise
        return counts

    def _kinesis(self):
        if not hasattr(self, "_client"):
            import boto3
            from botocore.config import Config

            key, secret = self.credentials or ("forestream", "forestream")
            self._client = boto3.client(
                "kinesis", endpoint_url=self.endpoint_url, region_name=self.region,
                aws_access_key_id=key, aws_secret_access_key=secret,
                config=Config(retries={"max_attempts": 2}, connect_timeout=self.timeout,
                              read_timeout=self.timeout))
        return self._client

    def _applications(self) -> list[dict]:
        try:
            listing = json.loads(self._get("/api/v1/applications"))["applications"]
        except ComponentError as error:
            if "HTTP 404" in str(error):  # a server without the applications API
                return []
            raise
        described = []
        for app in listing:
            name = urllib.parse.quote(app["name"], safe="")
            try:
                described.append(json.loads(self._get(f"/api/v1/applications/{name}")))
            except ComponentError as error:
                if "HTTP 404" not in str(error):  # 404: deleted between the two calls
                    raise
        return described

    def _get(self, path: str) -> bytes:
        url = f"{self.endpoint_url}{path}"
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else \
            _signature_headers(url, self.credentials, self.region)
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                        timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raise ComponentError(f"GET {url} answered HTTP {error.code}") from None
        except (urllib.error.URLError, OSError) as error:
            raise ComponentError(f"cannot reach the forestream server at "
                                 f"{self.endpoint_url}: {getattr(error, 'reason', error)}"
                                 ) from None

    def _write(self, directory: Path, rows: dict[str, dict[str, float]]) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for rid, row in rows.items():
            path = directory / (re.sub(r"[^A-Za-z0-9._-]", "_", rid) + ".csv")
            names = COLUMNS_BY_KIND[self.resources[rid].kind]
            new = not path.exists() or path.stat().st_size == 0
            with path.open("a", newline="") as out:
                writer = csv.writer(out)
                if new:
                    writer.writerow(["timestamp", "resource_id", *names])
                stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(row["timestamp"]))
                writer.writerow([stamp, rid, *("" if math.isnan(row[n]) else f"{row[n]:.6g}"
                                               for n in names)])
        described = [{"resource_id": rid, "kind": r.kind, "current": r.current, "tags": r.tags}
                     for rid, r in sorted(self.resources.items()) if rid in self._rows]
        index = directory / "resources.json"
        temporary = index.with_suffix(".tmp")
        temporary.write_text(json.dumps(described, indent=1, sort_keys=True) + "\n")
        temporary.replace(index)


def _derive_endpoint_metrics(rows, counters, resources) -> None:
    """Mean latency and busy share of each endpoint variant over the interval."""
    for rid in counters:
        if not rid.startswith("endpoint/") or rid not in rows:
            continue
        row = rows[rid]
        latency_seconds = row.pop("_latency_sum", math.nan)  # seconds of latency per second
        calls = row.get("invocations", math.nan)
        row["duration_ms"] = 1000 * latency_seconds / calls if calls > 0 else math.nan
        workers = resources[rid].current.get("workers", 0)
        row["busy_pct"] = (min(100.0, 100 * latency_seconds / workers)
                           if workers > 0 and not math.isnan(latency_seconds) else math.nan)


def _signature_headers(url: str, credentials: tuple[str, str] | None,
                       region: str) -> dict[str, str]:
    """SigV4 headers (service ``forestream``) for a server that requires signed requests."""
    if credentials is None:
        return {}
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=url, data=b"")
    SigV4Auth(Credentials(*credentials), "forestream", region).add_auth(request)
    return dict(request.headers.items())
