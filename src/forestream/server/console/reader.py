"""Gathers each console page's data through the packages' public read methods.

Blocking (SQLite, files): the route handlers call these on a worker thread. The endpoint
counters live on the event loop and are read there (:mod:`.routes`).
"""

from __future__ import annotations

import os
from pathlib import Path

from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.optimizer.service import OptimizerService
from forestream.processing.applications import ApplicationManager
from forestream.processing.errors import NotFoundError as ApplicationNotFound
from forestream.processing.flink import LocalFlinkCluster
from forestream.processing.flink.application import FLINK_URL_ENV
from forestream.streams.errors import ResourceNotFoundError
from forestream.streams.store import StreamStore

RECENT_ANALYSES = 5
ALL_ANALYSES = 100
APPLICATION_LOG_LINES = 100
ENDPOINT_LOG_FILES = 4  # the newest worker logs of an endpoint
ENDPOINT_LOG_LINES = 50
LOG_TAIL_BYTES = 64 * 1024


class ConsoleReader:
    """Read-only views of the server's objects, one method per page (or part)."""

    def __init__(self, store: StreamStore, applications: ApplicationManager,
                 registry: ModelRegistry, endpoints: EndpointManager,
                 optimizer: OptimizerService) -> None:
        self.store = store
        self.applications = applications
        self.registry = registry
        self.endpoints = endpoints
        self.optimizer = optimizer

    def overview(self) -> dict:
        return {"data_dir": str(self.store.data_dir.resolve()), "streams": self.streams(),
                "applications": self.application_list(), "groups": self.groups(),
                "endpoints": self.endpoints.list_endpoints(),
                "analyses": self.analyses(RECENT_ANALYSES)}

    def streams(self) -> list[dict]:
        out = []
        for name in self.store.stream_names():
            try:
                out.append(self.store.describe_stream_summary(
                    stream_name=name)["StreamDescriptionSummary"])
            except ResourceNotFoundError:  # deleted meanwhile
                continue
        return out

    def application_list(self) -> list[dict]:
        out = []
        for doc in self.applications.list_applications():
            try:
                out.append(self.applications.describe_application(doc["name"]))
            except ApplicationNotFound:
                continue
        return out

    def application_index(self) -> dict:
        """The applications, and where a Flink application created without a URL will
        be submitted (the create form says so)."""
        return {"applications": self.application_list(), "flink": self.flink_default()}

    def flink_default(self) -> dict:
        """The cluster an application with no Flink URL is started on, resolved at each
        start: ``FORESTREAM_FLINK_URL``, else the local cluster that ``forestream flink
        start`` runs for the server's data directory (a new port at each start of it,
        so the form leaves the URL empty rather than pinning today's)."""
        data_dir = self.applications.root.parent
        local = LocalFlinkCluster(data_dir)  # attaches to what is recorded; starts nothing
        return {"env": os.environ.get(FLINK_URL_ENV) or None,
                "local": local.rest_url if local.running() else None,
                "data_dir": str(data_dir.resolve())}

    def groups(self) -> list[dict]:
        groups, token = [], None
        while True:
            listing = self.registry.list_groups(limit=1000, next_token=token)
            groups += listing["groups"]
            token = listing["next_token"]
            if not token:
                return groups

    def analyses(self, limit: int = ALL_ANALYSES) -> list[dict]:
        return self.optimizer.list_analyses(limit=limit)["analyses"]

    def stream(self, name: str) -> dict:
        summary = self.store.describe_stream_summary(stream_name=name)
        summary = summary["StreamDescriptionSummary"]
        shards, token = [], None
        while True:
            listing = self.store.list_shards(stream_name=name) if token is None else \
                self.store.list_shards(next_token=token)
            shards += listing["Shards"]
            token = listing.get("NextToken")
            if not token:
                break
        arn = summary["StreamARN"]
        tags = {t["Key"]: t["Value"] for t in self.store.list_tags_for_resource(arn)["Tags"]}
        consumers = self.store.list_stream_consumers(stream_arn=arn)["Consumers"]
        return {"summary": summary, "shards": shards, "tags": tags, "consumers": consumers}

    def application(self, name: str) -> dict:
        return {"application": self.applications.describe_application(name),
                "logs": self.applications.logs(name, tail=APPLICATION_LOG_LINES),
                "snapshots": self.applications.list_snapshots(name),
                "stream_names": self.store.stream_names()}

    def model_group(self, name: str) -> dict:
        group = self.registry.describe_group(name)
        versions, token = [], None
        while True:
            listing = self.registry.list_versions(group=name, limit=1000, next_token=token)
            versions += listing["versions"]
            token = listing["next_token"]
            if not token:
                break
        versions.sort(key=lambda v: v["version"], reverse=True)
        return {"group": group, "versions": versions}

    def version(self, group: str, version: int) -> dict:
        return self.registry.describe_version(group, version)

    def endpoint(self, name: str) -> dict:
        description = self.endpoints.describe_endpoint(name)
        folder = self.endpoints.log_root / name
        files = sorted(folder.glob("*.log"), key=_mtime, reverse=True) \
            if folder.is_dir() else []
        logs = {path.stem: _tail(path, ENDPOINT_LOG_LINES)
                for path in files[:ENDPOINT_LOG_FILES]}
        return {"endpoint": description, "logs": logs}


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _tail(path: Path, lines: int) -> list[str]:
    """The last ``lines`` lines of a file, reading at most its last LOG_TAIL_BYTES."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            handle.seek(max(0, end - LOG_TAIL_BYTES))
            data = handle.read()
    except OSError:
        return []
    text = data.decode("utf-8", errors="replace").splitlines()
    if end > LOG_TAIL_BYTES and text:
        text = text[1:]  # the first line was cut by the seek
    return text[-lines:]
