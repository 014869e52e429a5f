"""What the console's forms do: each action calls the same library method as the API
(the Kinesis API for streams, the REST API for applications, models and endpoints), so
its checks and its error messages are the API's.

An action takes the form's fields and answers an :class:`Outcome`; :mod:`.routes` turns
that into a flash message for htmx (with the ``forestream-changed`` event, so the page's
live parts refresh at once) or a redirect back for a plain form post. Errors a user can
cause come back as the package's error (code, status, message) and change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from forestream.errors import InvalidInputError
from forestream.models.hosting.endpoints import EndpointManager
from forestream.models.registry import ModelRegistry
from forestream.processing.applications import ApplicationManager
from forestream.processing.errors import ApplicationError
from forestream.streams.errors import (
    ResourceInUseError,
    ResourceNotFoundError,
    StreamError,
    ValidationError,
)
from forestream.streams.store import StreamStore

from ..metrics import Metrics
from . import kinesis
from .app_create import read_create_form
from .forms import Form
from .pages import path_of
from .records import encode

STREAM_MODES = ("PROVISIONED", "ON_DEMAND")
MAX_INVOKE_SHOWN = 16 * 1024  # characters of a model's answer shown on the page


@dataclass(frozen=True)
class Outcome:
    """A done action: what to tell the user, and where to go when the page is gone (a
    created or deleted resource) or None to stay."""

    message: str
    redirect: str | None = None
    answer: dict | None = None  # an invocation's answer, shown as such


def whole_number(form: Mapping[str, str], name: str, low: int = 1, high: int = 10_000) -> int:
    raw = (form.get(name) or "").strip()
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise InvalidInputError(f"{name} {raw!r} must be a whole number from {low} to {high}")
    return int(raw)


class StreamActions:
    """Create, put a test record, split, merge and delete, as the Kinesis API does them
    (:mod:`.kinesis`); a record put here is counted as a PutRecord is."""

    def __init__(self, store: StreamStore, metrics: Metrics) -> None:
        self.store = store
        self.metrics = metrics

    def create(self, form: Mapping[str, str]) -> Outcome:
        name = (form.get("name") or "").strip()
        mode = form.get("mode") or "PROVISIONED"
        if mode not in STREAM_MODES:
            raise ValidationError(f"mode {mode!r} must be one of {', '.join(STREAM_MODES)}")
        shards = None if mode == "ON_DEMAND" else whole_number(form, "shards")
        kinesis.call(self.store, "CreateStream", StreamName=name, ShardCount=shards,
                     StreamModeDetails={"StreamMode": mode})
        return Outcome(f"stream {name} created", redirect=path_of("streams", name))

    def put(self, stream: str, form: Mapping[str, str]) -> Outcome:
        data = encode(form.get("data") or "", form.get("encoding") or "text")
        key = form.get("partition_key") or ""
        explicit = (form.get("explicit_hash_key") or "").strip() or None
        started = time.perf_counter()
        result = self.call(stream, "PutRecord", StreamName=stream, Data=data,
                           PartitionKey=key, ExplicitHashKey=explicit)
        self.metrics.observe("PutRecord", {"StreamName": stream, "Data": data}, result,
                             time.perf_counter() - started)
        return Outcome(f"record {result['SequenceNumber']} put on {result['ShardId']} "
                       f"({len(data)} bytes)")

    def split(self, stream: str, form: Mapping[str, str]) -> Outcome:
        shard = form.get("shard") or ""
        key = (form.get("new_starting_hash_key") or "").strip()
        if not key:  # the middle of the shard's range
            found = [s for s in self.store.list_shards(stream_name=stream)["Shards"]
                     if s["ShardId"] == shard]
            if not found:
                raise ResourceNotFoundError(f"Shard {shard} in stream {stream} under account "
                                            f"{self.store.account} does not exist")
            lo = int(found[0]["HashKeyRange"]["StartingHashKey"])
            hi = int(found[0]["HashKeyRange"]["EndingHashKey"])
            key = str((lo + hi + 1) // 2)
        self.call(stream, "SplitShard", StreamName=stream, ShardToSplit=shard,
                  NewStartingHashKey=key)
        return Outcome(f"{shard} split at hash key {key}")

    def merge(self, stream: str, form: Mapping[str, str]) -> Outcome:
        shard, adjacent = form.get("shard") or "", form.get("adjacent") or ""
        self.call(stream, "MergeShards", StreamName=stream, ShardToMerge=shard,
                  AdjacentShardToMerge=adjacent)
        return Outcome(f"{shard} and {adjacent} merged")

    def call(self, stream: str, operation: str, **members: object) -> dict:
        """``operation`` on ``stream`` as the API runs it; refused because the stream is
        not ACTIVE, the API's words gain what the page's user needs: AWS answers a
        PutRecord to a CREATING or DELETING stream 'not found' (while the page shows it)
        and a reshard while UPDATING 'not ACTIVE', neither saying when to try again."""
        try:
            return kinesis.call(self.store, operation, **members)
        except (ResourceNotFoundError, ResourceInUseError) as exc:
            raise self._settling(stream, exc) from None

    def _settling(self, stream: str, error: StreamError) -> StreamError:
        try:
            status = self.store.describe_stream_summary(stream_name=stream)[
                "StreamDescriptionSummary"]["StreamStatus"]
        except ResourceNotFoundError:
            return error  # gone, as the API says
        if status in ("CREATING", "UPDATING"):
            hint = (f"stream {stream} is {status}: send this again once it is ACTIVE, in a "
                    "moment; its status is on this page")
        elif status == "DELETING":
            hint = f"stream {stream} is DELETING: it takes nothing more"
        else:
            return error
        return type(error)(f"{error.message} ({hint})")

    def delete(self, stream: str, form: Mapping[str, str]) -> Outcome:
        confirm = (form.get("confirm") or "").strip()
        if confirm != stream:
            raise InvalidInputError(f"type the stream's name, {stream!r}, to delete it "
                                    f"(got {confirm!r}); nothing was deleted")
        kinesis.call(self.store, "DeleteStream", StreamName=stream)
        return Outcome(f"stream {stream} deleted", redirect="/console/streams")


class ApplicationActions:
    """Create, start, stop, snapshot, restore (start from a snapshot) and scale, as the
    REST API does them."""

    def __init__(self, manager: ApplicationManager) -> None:
        self.manager = manager

    def create(self, form: Form) -> Outcome:
        """``POST /api/v1/applications`` from the form (see :mod:`.app_create`), then
        the application's page; "start now" starts it as its Start button does."""
        request = read_create_form(form)
        app = self.manager.create_application(request.name, request.code,
                                              **request.options)
        runtime = app.get("runtime_environment", request.options["runtime"])
        message = f"application {request.name} created ({runtime} runtime)"
        if request.start:
            try:
                self.manager.start_application(request.name)
            except ApplicationError as exc:  # created all the same: say why it waits here
                return Outcome(f"{message}, but not started: {exc.code}: {exc.message}")
            message += " and started"
        return Outcome(message, redirect=path_of("applications", request.name))

    def start(self, name: str, form: Mapping[str, str]) -> Outcome:
        restore = form.get("restore") or "LATEST"
        snapshot = (form.get("snapshot") or "").strip() or None
        if restore == "SNAPSHOT" and snapshot is None:
            raise InvalidInputError("choose the snapshot to restore (restore SNAPSHOT)")
        self.manager.start_application(name, restore, snapshot)
        how = {"LATEST": "from its latest checkpoint", "SKIP": "empty (no state restored)",
               "SNAPSHOT": f"from snapshot {snapshot}"}.get(restore, restore)
        return Outcome(f"application {name} started {how}")

    def stop(self, name: str, form: Mapping[str, str]) -> Outcome:
        snapshot, force = form.get("snapshot") == "1", form.get("force") == "1"
        self.manager.stop_application(name, force, snapshot)
        return Outcome(f"application {name} stopped"
                       + (" with a snapshot" if snapshot and not force else ""))

    def snapshot(self, name: str, form: Mapping[str, str]) -> Outcome:
        snapshot = (form.get("snapshot") or "").strip()
        if not snapshot:
            raise InvalidInputError("give the snapshot a name")
        self.manager.create_snapshot(name, snapshot)
        return Outcome(f"snapshot {snapshot} of {name} taken")

    def scale(self, name: str, form: Mapping[str, str]) -> Outcome:
        parallelism = whole_number(form, "parallelism", 1, 10_000)
        self.manager.update_application(name, parallelism=parallelism)
        return Outcome(f"application {name} scaled to parallelism {parallelism}")


class ModelActions:
    """Approve or reject a version; invoke an endpoint and change its weights."""

    def __init__(self, registry: ModelRegistry, endpoints: EndpointManager) -> None:
        self.registry = registry
        self.endpoints = endpoints

    def approval(self, group: str, raw_version: str, form: Mapping[str, str]) -> Outcome:
        if not raw_version.isdigit():
            raise InvalidInputError(f"version {raw_version!r} must be a positive integer")
        status = form.get("approval_status") or ""
        self.registry.update_version(
            group, int(raw_version), approval_status=status,
            approval_description=(form.get("approval_description") or None),
            updated_by="console")
        return Outcome(f"{group}:{raw_version} is now {status}")

    async def invoke(self, name: str, form: Mapping[str, str]) -> Outcome:
        body = (form.get("body") or "").encode("utf-8")
        started = time.perf_counter()
        result, variant = await self.endpoints.invoke(
            name, body, form.get("content_type") or "text/csv",
            (form.get("accept") or "").strip() or None, None,
            (form.get("variant") or "").strip() or None)
        millis = 1000 * (time.perf_counter() - started)
        shown = result.body.decode("utf-8", errors="replace")[:MAX_INVOKE_SHOWN]
        return Outcome(f"{variant} answered", answer={
            "variant": variant, "millis": millis, "content_type": result.content_type,
            "body": shown})

    async def weights(self, name: str, form: Mapping[str, str]) -> Outcome:
        weights: dict[str, float] = {}
        workers: dict[str, int] = {}
        for key, raw in form.items():
            kind, _, variant = key.partition(".")
            if kind == "weight" and variant:
                try:
                    weights[variant] = float(raw)
                except ValueError:
                    raise InvalidInputError(f"weight of {variant} {raw!r} must be a number "
                                            "of at least 0") from None
            elif kind == "workers" and variant:
                workers[variant] = whole_number(form, key, 1, 64)
        await self.endpoints.update_weights_and_capacities(name, weights or None,
                                                           workers or None)
        return Outcome(f"endpoint {name}: weights and workers set")
