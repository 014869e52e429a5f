"""The optimizer as the server runs it: stored analyses and a component collector.

:class:`OptimizerService` is what ``/api/v1/optimizer`` calls (see
:mod:`forestream.server.rest.optimizer`); it is plain Python, usable without a server.
An *analysis* reads utilization histories from one source, runs
:func:`~forestream.optimizer.recommend.recommend_many` on them and keeps the result
(:func:`~forestream.optimizer.report.build_analysis`) as
``<data_dir>/optimizer/analyses/<id>.json``, written atomically, so it survives
restarts and can be listed, filtered, rendered as HTML and deleted. A request is a
JSON object::

    {"source": {"path": "/srv/metrics"},            # a directory or file on the server
     "preferences": {"lookback_days": 14, "cpu_percentile": 99.5},
     "region": "us-east-1"}

with one source among:

* ``{"path": P}``: :func:`~forestream.optimizer.ingest.read_metrics` of a file or
  directory on the server (``"resources"``: a resources.csv/json path);
* ``{"prometheus": {"url": U, "preset": "node_exporter", "days": 14}}``: a Prometheus
  server (also ``"start"``, ``"end"``, ``"queries"``, ``"headers"``);
* ``{"components": true}``: forestream's own streams, applications and endpoints, from
  what the collector (below) has written;
* or, instead of ``"source"``, ``"metrics"``: inline histories, each ``{"resource":
  {"resource_id", "kind", "current", "tags"}, "timestamps": [...], "metrics":
  {"cpu_pct": [...], ...}}`` (ISO 8601 or epoch timestamps; canonical metric names).

Every source also takes ``"instance_type"`` (for resources that name none, e.g. hosts
from Prometheus) and ``"resources"`` (``{resource_id: current}``, e.g. ``{"node-1:9100":
{"instance_type": "m5.xlarge"}}``). A bad request raises :class:`InvalidRequestError`
naming the value and what is accepted, and stores nothing.

The *component collector* (a :class:`~forestream.optimizer.components.ComponentCollector`)
samples this server's own components every ``interval_seconds`` into
``<data_dir>/optimizer/components/``. It runs while the server runs when
``FORESTREAM_OPTIMIZER_COLLECT_SECONDS`` is set to a positive number, or after
:meth:`OptimizerService.start_components` (which remembers the choice across restarts
in ``<data_dir>/optimizer/collector.json``).

>>> import tempfile
>>> service = OptimizerService(tempfile.mkdtemp())
>>> service.list_analyses()
{'analyses': [], 'next_token': None}
>>> try:
...     service.create_analysis({"source": {"path": "/nowhere"}})
... except InvalidRequestError as error:
...     print(error.status, error)
400 metrics path '/nowhere' does not exist
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from forestream import errors
from forestream.names import shorten

from .analysis_input import (
    InvalidRequestError,
    OptimizerError,
    apply_resources,
    check_filter,
    check_preferences,
    inline_histories,
)
from .catalog import CatalogError, load_catalog
from .components import ComponentCollector
from .ingest import read_metrics, read_resources
from .prometheus import PrometheusError, read_prometheus
from .recommend import recommend_many
from .report import (
    ALL_FINDINGS,
    build_analysis,
    filter_recommendations,
    render_html,
    to_json,
    write_atomically,
)
from .timeseries import MetricInputError
from .types import RESOURCE_KINDS, RecommendationError, UtilizationHistory

COLLECT_ENV = "FORESTREAM_OPTIMIZER_COLLECT_SECONDS"
REQUEST_KEYS = ("source", "metrics", "preferences", "region", "catalog")
SOURCE_KINDS = ("path", "prometheus", "components")
SOURCE_OPTIONS = ("resources", "instance_type")
PROMETHEUS_KEYS = ("url", "preset", "days", "start", "end", "queries", "headers")
_ID = re.compile(r"^\d{8}T\d{12}Z-[0-9a-f]{6}$")


class AnalysisNotFoundError(errors.NotFoundError, OptimizerError):
    """No stored analysis of that id."""


class SourceUnavailableError(errors.UpstreamError, OptimizerError):
    """The metric source (a Prometheus server) failed or could not be reached."""


class OptimizerService:
    """Stored analyses under ``<data_dir>/optimizer`` and the component collector.

    ``endpoint_url`` is where the collector finds this server's API (default
    ``http://127.0.0.1:4567``), ``token`` the server's access token it sends; ``region``
    the default catalog region. ``check_path(path, what)`` and ``check_url(url, what)``,
    when given, vet the server paths (metric files, resource files) and Prometheus URLs a
    request names before they are read: they return the path or URL, or raise (a server
    sets them from its import roots and outbound hosts).
    """

    def __init__(self, data_dir: str | Path, *, endpoint_url: str = "http://127.0.0.1:4567",
                 region: str = "us-east-1", token: str | None = None,
                 check_path: Callable[[str, str], object] | None = None,
                 check_url: Callable[[str, str], object] | None = None) -> None:
        self.token = token
        self.check_path = check_path
        self.check_url = check_url
        self.root = Path(data_dir) / "optimizer"
        self.analyses_dir = self.root / "analyses"
        self.components_dir = self.root / "components"
        self.endpoint_url = endpoint_url
        self.region = region
        self.collector: ComponentCollector | None = None
        self._run_lock = threading.Lock()  # numba's parallel kernels: one fleet at a time
        self._summaries: dict[str, tuple[int, dict]] = {}

    # ------------------------------------------------------------------ analyses
    def create_analysis(self, request: Mapping) -> dict:
        """Read the request's source, recommend, store and return the analysis."""
        if not isinstance(request, Mapping):
            raise InvalidRequestError("the request must be a JSON object")
        unknown = sorted(set(request) - set(REQUEST_KEYS))
        if unknown:
            raise InvalidRequestError(f"unknown request fields {unknown}; accepted: "
                                      f"{', '.join(REQUEST_KEYS)}")
        preferences = check_preferences(request.get("preferences"))
        region = request.get("region") or self.region
        catalog_path = request.get("catalog")
        if catalog_path is not None:
            if not isinstance(catalog_path, str) or not catalog_path:
                raise InvalidRequestError(f"catalog {shorten(catalog_path)} must be the path "
                                          "of a catalog CSV on the server")
            self._vet_path(catalog_path, "catalog")
        try:
            catalog = load_catalog(region, catalog_path)
        except (CatalogError, OSError) as error:
            raise InvalidRequestError(str(error)) from None
        histories, source = self._histories(request)
        if not histories:
            raise InvalidRequestError(f"the source {source} has no resources")
        with self._run_lock:
            try:
                recommendations = recommend_many(histories, catalog, **preferences)
            except RecommendationError as error:
                raise InvalidRequestError(str(error)) from None
            analysis = build_analysis(recommendations, histories, preferences=preferences,
                                      region=region, source=source, catalog=catalog)
            write_atomically(self.analyses_dir / f"{analysis['id']}.json",
                             to_json(analysis, indent=None))
        return analysis

    def list_analyses(self, limit: int = 50, next_token: str | None = None) -> dict:
        """Newest first: id, created_at, region, source, preferences and summary."""
        ids = sorted((p.stem for p in self.analyses_dir.glob("*.json") if _ID.match(p.stem)),
                     reverse=True) if self.analyses_dir.is_dir() else []
        if next_token:
            ids = [i for i in ids if i < next_token]
        summaries = [self._summary(i) for i in ids[:limit]]
        page = [p for p in summaries if p is not None]
        # the last id looked at, even if it was deleted meanwhile (the page may be empty)
        return {"analyses": page, "next_token": ids[limit - 1] if len(ids) > limit else None}

    def get_analysis(self, analysis_id: str, *, include_series: bool = False) -> dict:
        """The stored analysis; ``series`` (chart data) only when asked for."""
        analysis = self._load(analysis_id)
        if not include_series:
            analysis.pop("series", None)
        return analysis

    def latest_analysis_id(self) -> str:
        listing = self.list_analyses(limit=1)["analyses"]
        if not listing:
            raise AnalysisNotFoundError("no analyses yet: create one with POST "
                                        "/api/v1/optimizer/analyses")
        return listing[0]["id"]

    def recommendations(self, *, analysis_id: str | None = None, finding: str | None = None,
                        kind: str | None = None, limit: int = 100, offset: int = 0) -> dict:
        """Recommendations of one analysis (default: the latest), filtered and paged."""
        check_filter("finding", finding, ALL_FINDINGS)
        check_filter("kind", kind, RESOURCE_KINDS)
        analysis = self._load(analysis_id or self.latest_analysis_id())
        chosen = filter_recommendations(analysis["recommendations"], finding=finding, kind=kind)
        page = chosen[offset: offset + limit]
        more = offset + limit < len(chosen)
        return {"analysis_id": analysis["id"], "created_at": analysis["created_at"],
                "total": len(chosen), "recommendations": page,
                "next_token": str(offset + limit) if more else None}

    def report_html(self, analysis_id: str, *, max_sections: int | None = None) -> str:
        """The analysis's HTML report (see :mod:`forestream.optimizer.report.html`)."""
        return render_html(self._load(analysis_id), max_sections=max_sections)

    def delete_analysis(self, analysis_id: str) -> None:
        path = self._path(analysis_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise AnalysisNotFoundError(f"no analysis {analysis_id!r}") from None
        self._summaries.pop(analysis_id, None)

    # ------------------------------------------------------------------ catalog
    def catalog(self, *, region: str | None = None, families: list[str] | None = None,
                architecture: str | None = None, min_vcpu: float = 0,
                min_memory_gib: float = 0, gpus: bool | None = None, limit: int = 100,
                offset: int = 0) -> dict:
        """Instance types of a region, cheapest first, as JSON-ready rows."""
        try:
            catalog = load_catalog(region or self.region)
            chosen = catalog.filter(families=families, architecture=architecture,
                                    min_vcpu=min_vcpu, min_memory_gib=min_memory_gib,
                                    gpus=gpus)
        except CatalogError as error:
            raise InvalidRequestError(str(error)) from None
        rows = [{**asdict(t), "monthly_price": round(t.price_per_hour * 730, 2)}
                for t in chosen[offset: offset + limit]]
        return {"region": catalog.region, "total": len(chosen), "instance_types": rows,
                "next_token": str(offset + limit) if offset + limit < len(chosen) else None}

    # ------------------------------------------------------------------ collector
    def start(self) -> None:
        """Start the collector if ``FORESTREAM_OPTIMIZER_COLLECT_SECONDS`` or a previous
        :meth:`start_components` asks for it (the server calls this at startup)."""
        interval = os.environ.get(COLLECT_ENV)
        if interval is None:
            saved = self._collector_settings()
            interval = saved.get("interval_seconds") if saved.get("enabled") else None
        try:
            seconds = float(interval) if interval is not None else 0.0
        except ValueError:
            seconds = 0.0
        if seconds > 0:
            self._start_collector(seconds)

    def close(self) -> None:
        """Stop the collector (the server calls this at shutdown)."""
        if self.collector is not None:
            self.collector.stop()
            self.collector = None

    def start_components(self, interval_seconds: float = 60.0) -> dict:
        """(Re)start the collector every ``interval_seconds``; kept across restarts."""
        if isinstance(interval_seconds, bool) or not isinstance(interval_seconds, (int, float)) \
                or not 1 <= interval_seconds <= 86400:
            raise InvalidRequestError(f"interval_seconds must be a number from 1 to 86400, "
                                      f"got {interval_seconds!r}")
        self.close()
        self._start_collector(float(interval_seconds))
        write_atomically(self.root / "collector.json", json.dumps(
            {"enabled": True, "interval_seconds": float(interval_seconds)}) + "\n")
        return self.components_status()

    def stop_components(self) -> dict:
        self.close()
        write_atomically(self.root / "collector.json", json.dumps({"enabled": False}) + "\n")
        return self.components_status()

    def components_status(self) -> dict:
        """Whether the collector runs, and the components it has metrics of."""
        try:
            described = json.loads((self.components_dir / "resources.json").read_text())
            resources = sorted(r["resource_id"] for r in described)
        except (OSError, ValueError, KeyError, TypeError):
            resources = []
        return {"running": bool(self.collector and self.collector.running),
                "interval_seconds": self.collector.interval_seconds if self.collector else None,
                "endpoint_url": self.endpoint_url, "directory": str(self.components_dir),
                "resources": resources}

    # ------------------------------------------------------------------ helpers
    def _start_collector(self, seconds: float) -> None:
        self.collector = ComponentCollector(self.endpoint_url, self.components_dir,
                                            interval_seconds=seconds, region=self.region,
                                            token=self.token)
        self.collector.start()

    def _collector_settings(self) -> dict:
        try:
            return json.loads((self.root / "collector.json").read_text())
        except (OSError, ValueError):
            return {}

    def _histories(self, request: Mapping) -> tuple[list[UtilizationHistory], dict]:
        """The histories a request names, and a description of its source."""
        if ("source" in request) == ("metrics" in request):
            raise InvalidRequestError("give exactly one of 'source' ({\"path\": ...}, "
                                      "{\"prometheus\": {...}} or {\"components\": true}) "
                                      "and 'metrics' (inline histories)")
        if "metrics" in request:
            return inline_histories(request["metrics"]), {"inline": len(request["metrics"])}
        source = request["source"]
        if not isinstance(source, Mapping):
            raise InvalidRequestError("'source' must be an object with one of "
                                      f"{', '.join(SOURCE_KINDS)}")
        kinds = [k for k in SOURCE_KINDS if k in source]
        unknown = sorted(set(source) - set(SOURCE_KINDS) - set(SOURCE_OPTIONS))
        if len(kinds) != 1 or unknown:
            raise InvalidRequestError(f"'source' must have exactly one of "
                                      f"{', '.join(SOURCE_KINDS)} (and optionally "
                                      f"{', '.join(SOURCE_OPTIONS)}); got {sorted(source)}")
        resources = source.get("resources")
        described = {kinds[0]: source[kinds[0]]}
        try:
            if kinds[0] == "path":
                if not isinstance(source["path"], str) or not source["path"]:
                    raise InvalidRequestError("source.path must be a path on the server")
                self._vet_path(source["path"], "source.path")
                file_resources = resources if isinstance(resources, str) else None
                if file_resources is not None:
                    self._vet_path(file_resources, "source.resources")
                histories = read_metrics(source["path"], resources=file_resources)
            elif kinds[0] == "prometheus":
                histories = self._prometheus(source["prometheus"])
                described = {"prometheus": source["prometheus"].get("url")}
            else:
                if source["components"] is not True:
                    raise InvalidRequestError("source.components must be true")
                histories = self._components()
        except MetricInputError as error:
            raise InvalidRequestError(str(error)) from None
        except PrometheusError as error:
            raise SourceUnavailableError(str(error)) from None
        if isinstance(resources, str) and kinds[0] != "path":
            self._vet_path(resources, "source.resources")
            try:
                resources = read_resources(resources)
            except MetricInputError as error:
                raise InvalidRequestError(str(error)) from None
        overrides = resources if isinstance(resources, Mapping) else {}
        return apply_resources(histories, overrides, source.get("instance_type")), described

    def _prometheus(self, options) -> list[UtilizationHistory]:
        if not isinstance(options, Mapping) or not isinstance(options.get("url"), str):
            raise InvalidRequestError("source.prometheus must be an object with a 'url' "
                                      f"(and optionally {', '.join(PROMETHEUS_KEYS[1:])})")
        unknown = sorted(set(options) - set(PROMETHEUS_KEYS))
        if unknown:
            raise InvalidRequestError(f"unknown source.prometheus fields {unknown}; "
                                      f"accepted: {', '.join(PROMETHEUS_KEYS)}")
        if self.check_url is not None:
            try:
                self.check_url(options["url"], "source.prometheus.url")
            except ValueError as error:
                raise InvalidRequestError(str(error)) from None
        args = {k: options[k] for k in PROMETHEUS_KEYS[1:] if options.get(k) is not None}
        if "days" in args and (isinstance(args["days"], bool)
                               or not isinstance(args["days"], (int, float))):
            raise InvalidRequestError(f"source.prometheus.days must be a number, got "
                                      f"{args['days']!r}")
        return read_prometheus(options["url"], **args)

    def _vet_path(self, path: str, what: str) -> None:
        if self.check_path is not None:
            self.check_path(path, what)

    def _components(self) -> list[UtilizationHistory]:
        if not any(self.components_dir.glob("*.csv")):
            raise InvalidRequestError(
                f"no component metrics in {self.components_dir} yet: start the collector "
                "(PUT /api/v1/optimizer/components {\"interval_seconds\": 60}, or "
                f"{COLLECT_ENV}=60) and analyse after at least 30 hours")
        return read_metrics(self.components_dir)

    def _path(self, analysis_id: str) -> Path:
        if not isinstance(analysis_id, str) or not _ID.match(analysis_id):
            raise AnalysisNotFoundError(f"no analysis {analysis_id!r} (ids look like "
                                        "20240501T120000123456Z-3fa9c2)")
        return self.analyses_dir / f"{analysis_id}.json"

    def _load(self, analysis_id: str) -> dict:
        try:
            return json.loads(self._path(analysis_id).read_text())
        except FileNotFoundError:
            raise AnalysisNotFoundError(f"no analysis {analysis_id!r}") from None

    def _summary(self, analysis_id: str) -> dict | None:
        """The listing entry of an analysis, cached by file version (analyses can be
        large; listing should not parse them all each time)."""
        path = self._path(analysis_id)
        try:
            version = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        cached = self._summaries.get(analysis_id)
        if cached is None or cached[0] != version:
            analysis = self._load(analysis_id)
            entry = {k: analysis.get(k) for k in ("id", "created_at", "region", "source",
                                                  "preferences", "summary")}
            cached = self._summaries[analysis_id] = (version, entry)
        return cached[1]
