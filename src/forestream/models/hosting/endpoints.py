"""Endpoints: registered model versions served by pools of worker processes.

An *endpoint configuration* names one or more production variants, each a model version
(``"group:3"``), a traffic weight and a worker count. An *endpoint* serves one
configuration: every variant gets a :class:`~forestream.models.hosting.pools.VariantPool` of
:class:`~forestream.models.serving.worker.ModelWorker` subprocesses holding the loaded model,
and each invocation goes to a variant picked at random in proportion to the weights
(or to the variant the caller targets), then to an idle worker of that variant.

Lifecycle, as SageMaker's: ``Creating`` → ``InService`` (or ``Failed`` with a reason);
``Updating`` while a new configuration's pools start — requests keep flowing to the old
pools until the new ones are ready, then switch, and the old pools finish their
in-flight requests before they stop (so an update drops nothing); a failed update
leaves the endpoint ``InService`` on its old configuration with the failure recorded;
``Deleting`` drains and stops the pools. Weights and worker counts change live.

Configurations and endpoints are kept in SQLite under ``<data_dir>/models/`` and an
endpoint that was in service comes back when the server restarts.

The manager lives on the server's event loop: its methods are coroutines.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path

from ..errors import (
    CodeNotAllowed,
    ConflictError,
    InvalidInput,
    ModelLoadError,
    ModelsError,
    NotFoundError,
)
from ..registry import ModelRegistry
from ..serving.worker import Invocation

# ``name as name``: re-exported for code that imports it from here, where it lived before.
from .pools import DRAIN_TIMEOUT as DRAIN_TIMEOUT
from .pools import LATENCY_BUCKETS as LATENCY_BUCKETS
from .pools import RESTARTS_PER_MINUTE as RESTARTS_PER_MINUTE
from .pools import STARTUP_TIMEOUT as STARTUP_TIMEOUT
from .pools import EndpointMetrics, LiveVariants, VariantPool

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
MAX_VARIANTS = 10
MAX_WORKERS_PER_VARIANT = 64

_SCHEMA = """
CREATE TABLE IF NOT EXISTS endpoint_configs (
    name TEXT PRIMARY KEY,
    variants TEXT NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY,
    config_name TEXT NOT NULL,
    status TEXT NOT NULL,
    failure_reason TEXT,
    weights TEXT NOT NULL,
    workers TEXT NOT NULL,
    created_at TEXT NOT NULL,
    modified_at TEXT NOT NULL
);
"""


class EndpointManager:
    """Endpoint configurations and endpoints over one :class:`ModelRegistry`."""

    def __init__(self, registry: ModelRegistry, data_dir: Path | str, *,
                 allow_code: bool = True) -> None:
        # allow_code False: versions imported with trust (they run code) are not served
        self.allow_code = allow_code
        self.registry = registry
        self.root = Path(data_dir) / "models"
        self.root.mkdir(parents=True, exist_ok=True)
        self.log_root = self.root / "endpoint-logs"
        self._db = sqlite3.connect(self.root / "endpoints.sqlite", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._db_lock = threading.Lock()
        self._live: dict[str, LiveVariants] = {}
        self._tasks: dict[str, asyncio.Task] = {}
        self.metrics = EndpointMetrics()
        registry.add_delete_guard(lambda ref: self.models_in_use().get(ref, []))

    # ------------------------------------------------------------------ storage helpers
    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._db_lock:
            return self._db.execute(sql, args).fetchall()

    def _execute(self, sql: str, args: tuple = ()) -> None:
        with self._db_lock:
            self._db.execute(sql, args)

    # ------------------------------------------------------------------ configs
    def create_endpoint_config(self, name: str, variants: list[dict]) -> dict:
        """Validate and store a configuration.

        Each variant: ``{"variant_name": str, "model": "group:version", "weight": float
        (default 1), "workers": int (default 1)}`` (SageMaker's ``ModelName``,
        ``InitialVariantWeight`` and ``InitialInstanceCount`` are accepted as aliases).
        The model versions must exist and have imported successfully.
        """
        _check_name("endpoint config name", name)
        clean = self._validate_variants(variants)
        created = _now()
        with self._db_lock:
            try:
                self._db.execute("INSERT INTO endpoint_configs VALUES (?, ?, ?)",
                                 (name, json.dumps(clean), created))
            except sqlite3.IntegrityError:
                raise ConflictError(f"endpoint config {name!r} already exists") from None
        return {"name": name, "variants": clean, "created_at": created}

    def _validate_variants(self, variants) -> list[dict]:
        if not isinstance(variants, list) or not 1 <= len(variants) <= MAX_VARIANTS:
            raise InvalidInput(f"variants must be a list of 1 to {MAX_VARIANTS} variants; got "
                               f"{variants!r}"[:300])
        clean, seen = [], set()
        for i, v in enumerate(variants):
            if not isinstance(v, dict):
                raise InvalidInput(f"variant {i} must be an object; got {v!r}"[:200])
            name = v.get("variant_name", v.get("VariantName", "AllTraffic" if len(
                variants) == 1 else None))
            _check_name(f"variant {i} name", name)
            if name in seen:
                raise InvalidInput(f"variant name {name!r} is used twice")
            seen.add(name)
            ref = v.get("model", v.get("ModelName"))
            if not isinstance(ref, str):
                raise InvalidInput(f"variant {name!r} needs 'model': a model version such as "
                                   "'churn:3'")
            version = self._resolve_model(ref)
            weight = v.get("weight", v.get("InitialVariantWeight", 1.0))
            workers = v.get("workers", v.get("InitialInstanceCount", 1))
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or \
                    not 0.0 <= float(weight) <= 1e6:
                raise InvalidInput(f"variant {name!r} weight {weight!r} must be a number "
                                   "from 0 to 1000000")
            if isinstance(workers, bool) or not isinstance(workers, int) or \
                    not 1 <= workers <= MAX_WORKERS_PER_VARIANT:
                raise InvalidInput(f"variant {name!r} workers {workers!r} must be an integer "
                                   f"from 1 to {MAX_WORKERS_PER_VARIANT}")
            clean.append({"variant_name": name, "model": version["ref"],
                          "weight": float(weight), "workers": workers})
        if sum(v["weight"] for v in clean) <= 0:
            raise InvalidInput("at least one variant needs a weight above 0")
        return clean

    def _resolve_model(self, ref: str) -> dict:
        group, version = self.registry.parse_ref(ref)
        desc = self.registry.describe_version(group, version)
        if desc["status"] != "Ready":
            raise InvalidInput(f"model version {desc['ref']} is {desc['status']}"
                               f" ({desc.get('failure_reason') or 'not ready'}); only "
                               "versions that imported successfully can be deployed")
        if desc.get("trusted") and not self.allow_code:
            raise CodeNotAllowed(f"model version {desc['ref']} was imported with trust: serving "
                                 "it runs its code, and this server refuses to run clients' "
                                 "code (start it with `forestream server --allow-code`)")
        return desc

    def describe_endpoint_config(self, name: str) -> dict:
        rows = self._query("SELECT name, variants, created_at FROM endpoint_configs "
                           "WHERE name = ?", (name,))
        if not rows:
            raise NotFoundError(f"endpoint config {name!r} does not exist")
        n, variants, created = rows[0]
        return {"name": n, "variants": json.loads(variants), "created_at": created}

    def list_endpoint_configs(self) -> list[dict]:
        return [{"name": n, "variants": json.loads(v), "created_at": c} for n, v, c in
                self._query("SELECT name, variants, created_at FROM endpoint_configs "
                            "ORDER BY name")]

    def delete_endpoint_config(self, name: str) -> None:
        self.describe_endpoint_config(name)
        users = [r[0] for r in self._query("SELECT name FROM endpoints WHERE config_name = ?",
                                           (name,))]
        if users:
            raise ConflictError(f"endpoint config {name!r} is in use by endpoint(s) "
                                f"{', '.join(users)}")
        self._execute("DELETE FROM endpoint_configs WHERE name = ?", (name,))

    # ------------------------------------------------------------------ endpoints
    def describe_endpoint(self, name: str) -> dict:
        rows = self._query("SELECT name, config_name, status, failure_reason, weights, "
                           "workers, created_at, modified_at FROM endpoints WHERE name = ?",
                           (name,))
        if not rows:
            raise NotFoundError(f"endpoint {name!r} does not exist")
        return self._endpoint_dict(rows[0])

    def _endpoint_dict(self, row) -> dict:
        name, config_name, status, reason, weights, workers, created, modified = row
        weights, workers = json.loads(weights), json.loads(workers)
        config = self.describe_endpoint_config(config_name)
        live = self._live.get(name)
        variants = []
        for v in config["variants"]:
            pool = live.pools.get(v["variant_name"]) if live and \
                live.config_name == config_name else None
            variants.append({
                "variant_name": v["variant_name"], "model": v["model"],
                "current_weight": weights.get(v["variant_name"], v["weight"]),
                "desired_weight": weights.get(v["variant_name"], v["weight"]),
                "current_workers": pool.size if pool else 0,
                "desired_workers": workers.get(v["variant_name"], v["workers"]),
            })
        return {"name": name, "config": config_name, "status": status,
                "failure_reason": reason, "variants": variants, "created_at": created,
                "modified_at": modified}

    def list_endpoints(self) -> list[dict]:
        return [self._endpoint_dict(r) for r in self._query(
            "SELECT name, config_name, status, failure_reason, weights, workers, created_at, "
            "modified_at FROM endpoints ORDER BY name")]

    def models_in_use(self) -> dict[str, list[str]]:
        """Model version ref → the endpoints whose configuration serves it."""
        used: dict[str, list[str]] = defaultdict(list)
        for name, config_name in self._query("SELECT name, config_name FROM endpoints"):
            for v in self.describe_endpoint_config(config_name)["variants"]:
                used[v["model"]].append(name)
        return dict(used)

    async def create_endpoint(self, name: str, config_name: str) -> dict:
        """Create the endpoint (``Creating``) and start its pools in the background."""
        _check_name("endpoint name", name)
        config = self.describe_endpoint_config(config_name)
        for v in config["variants"]:  # the model may have been deleted since
            self._resolve_model(v["model"])
        now = _now()
        weights = {v["variant_name"]: v["weight"] for v in config["variants"]}
        workers = {v["variant_name"]: v["workers"] for v in config["variants"]}
        with self._db_lock:
            try:
                self._db.execute("INSERT INTO endpoints VALUES (?, ?, 'Creating', NULL, ?, ?, "
                                 "?, ?)", (name, config_name, json.dumps(weights),
                                           json.dumps(workers), now, now))
            except sqlite3.IntegrityError:
                raise ConflictError(f"endpoint {name!r} already exists") from None
        self._run(name, self._bring_up(name, config_name))
        return self.describe_endpoint(name)

    def _run(self, name: str, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks[name] = task
        task.add_done_callback(lambda t: self._tasks.pop(name, None)
                               if self._tasks.get(name) is t else None)

    def _set_status(self, name: str, status: str, reason: str | None = None) -> None:
        self._execute("UPDATE endpoints SET status = ?, failure_reason = ?, modified_at = ? "
                      "WHERE name = ?", (status, reason, _now(), name))

    async def _start_pools(self, name: str, config: dict,
                           workers: dict[str, int]) -> dict[str, VariantPool]:
        pools: dict[str, VariantPool] = {}
        for v in config["variants"]:
            model = self._resolve_model(v["model"])
            group, version = self.registry.parse_ref(v["model"])
            # may download the artifact from S3 (a cache miss): off the event loop
            artifact = await asyncio.to_thread(self.registry.artifact_dir, group, version)
            pools[v["variant_name"]] = VariantPool(
                name, v["variant_name"], model, artifact,
                workers.get(v["variant_name"], v["workers"]), self.log_root / name)
        results = await asyncio.gather(*(p.start() for p in pools.values()),
                                       return_exceptions=True)
        failures = [r for r in results if isinstance(r, BaseException)]
        if failures:
            await asyncio.gather(*(p.close(0) for p in pools.values()), return_exceptions=True)
            first = failures[0]
            raise first if isinstance(first, ModelsError) else ModelLoadError(repr(first))
        return pools

    async def _bring_up(self, name: str, config_name: str) -> None:
        endpoint = self.describe_endpoint(name)
        config = self.describe_endpoint_config(config_name)
        weights = {v["variant_name"]: v["current_weight"] for v in endpoint["variants"]}
        workers = {v["variant_name"]: v["desired_workers"] for v in endpoint["variants"]}
        try:
            pools = await self._start_pools(name, config, workers)
        except ModelsError as exc:
            self._set_status(name, "Failed", exc.message)
            return
        live = LiveVariants(config_name, pools)
        live.set_weights(weights)
        self._live[name] = live
        self._set_status(name, "InService")

    async def update_endpoint(self, name: str, config_name: str) -> dict:
        """Move the endpoint to another configuration without dropping requests."""
        endpoint = self.describe_endpoint(name)
        if endpoint["status"] not in ("InService", "Failed"):
            raise ConflictError(f"endpoint {name!r} is {endpoint['status']}; it can be "
                                "updated when InService or Failed")
        config = self.describe_endpoint_config(config_name)
        for v in config["variants"]:
            self._resolve_model(v["model"])
        self._set_status(name, "Updating")
        self._run(name, self._switch(name, config))
        return self.describe_endpoint(name)

    async def _switch(self, name: str, config: dict) -> None:
        workers = {v["variant_name"]: v["workers"] for v in config["variants"]}
        weights = {v["variant_name"]: v["weight"] for v in config["variants"]}
        try:
            pools = await self._start_pools(name, config, workers)
        except ModelsError as exc:
            status = "InService" if name in self._live else "Failed"
            self._set_status(name, status, f"update to {config['name']!r} failed: "
                                           f"{exc.message}")
            return
        live = LiveVariants(config["name"], pools)
        live.set_weights(weights)
        old = self._live.get(name)
        self._live[name] = live  # new requests go to the new pools from here on
        self._execute("UPDATE endpoints SET config_name = ?, weights = ?, workers = ?, "
                      "status = 'InService', failure_reason = NULL, modified_at = ? "
                      "WHERE name = ?", (config["name"], json.dumps(weights),
                                         json.dumps(workers), _now(), name))
        if old is not None:
            await asyncio.gather(*(p.close() for p in old.pools.values()),
                                 return_exceptions=True)

    async def update_weights_and_capacities(self, name: str, weights: dict | None = None,
                                            workers: dict | None = None) -> dict:
        """Change variant weights and/or worker counts of a running endpoint, live."""
        endpoint = self.describe_endpoint(name)
        live = self._live.get(name)
        if endpoint["status"] != "InService" or live is None:
            raise ConflictError(f"endpoint {name!r} is {endpoint['status']}; weights and "
                                "capacities change only when it is InService")
        known = {v["variant_name"] for v in endpoint["variants"]}
        new_weights = {v["variant_name"]: v["current_weight"] for v in endpoint["variants"]}
        new_workers = {v["variant_name"]: v["desired_workers"] for v in endpoint["variants"]}
        for label, given, target, check in (
                ("weight", weights, new_weights,
                 lambda x: not isinstance(x, bool) and isinstance(x, (int, float))
                 and 0 <= x <= 1e6),
                ("workers", workers, new_workers,
                 lambda x: not isinstance(x, bool) and isinstance(x, int)
                 and 1 <= x <= MAX_WORKERS_PER_VARIANT)):
            for variant, value in (given or {}).items():
                if variant not in known:
                    raise InvalidInput(f"variant {variant!r} is not in endpoint {name!r}; "
                                       f"its variants: {', '.join(sorted(known))}")
                if not check(value):
                    bound = "0 to 1000000" if label == "weight" else \
                        f"an integer from 1 to {MAX_WORKERS_PER_VARIANT}"
                    raise InvalidInput(f"{label} {value!r} for variant {variant!r} must be "
                                       f"{bound}")
                target[variant] = float(value) if label == "weight" else value
        if sum(new_weights.values()) <= 0:
            raise InvalidInput("at least one variant needs a weight above 0")
        for variant, count in new_workers.items():
            pool = live.pools[variant]
            if pool.size != count:
                await pool.resize(count)
        live.set_weights(new_weights)
        self._execute("UPDATE endpoints SET weights = ?, workers = ?, modified_at = ? "
                      "WHERE name = ?", (json.dumps(new_weights), json.dumps(new_workers),
                                         _now(), name))
        return self.describe_endpoint(name)

    async def delete_endpoint(self, name: str) -> None:
        self.describe_endpoint(name)
        self._set_status(name, "Deleting")
        task = self._tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        live = self._live.pop(name, None)
        if live is not None:
            await asyncio.gather(*(p.close() for p in live.pools.values()),
                                 return_exceptions=True)
        self._execute("DELETE FROM endpoints WHERE name = ?", (name,))

    # ------------------------------------------------------------------ serving
    async def invoke(self, name: str, body: bytes, content_type: str,
                     accept: str | None = None, custom_attributes: str | None = None,
                     target_variant: str | None = None) -> tuple[Invocation, str]:
        """Answer one request; returns the model's answer and the variant that gave it."""
        live = self._live.get(name)
        if live is None:
            status = self.describe_endpoint(name)["status"]  # NotFoundError if unknown
            raise InvalidInput(f"endpoint {name!r} is {status}, not InService")
        if target_variant is not None:
            if target_variant not in live.pools:
                raise InvalidInput(f"target variant {target_variant!r} is not a variant of "
                                   f"endpoint {name!r}; its variants: "
                                   f"{', '.join(sorted(live.pools))}")
            variant = target_variant
        else:
            variant = live.pick()
        started = time.perf_counter()
        try:
            result = await live.pools[variant].invoke(body, content_type, accept,
                                                      custom_attributes)
        except ModelsError as exc:
            self.metrics.observe(name, variant, time.perf_counter() - started, exc.code)
            raise
        self.metrics.observe(name, variant, time.perf_counter() - started)
        return result, variant

    def worker_counts(self) -> dict[tuple[str, str], int]:
        return {(ep, var): pool.size for ep, live in self._live.items()
                for var, pool in live.pools.items()}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Bring back the endpoints that were serving when the server last stopped."""
        for name, config_name, status in self._query(
                "SELECT name, config_name, status FROM endpoints"):
            if status == "Deleting":
                self._execute("DELETE FROM endpoints WHERE name = ?", (name,))
            elif status in ("InService", "Creating", "Updating"):
                self._set_status(name, "Creating")
                self._run(name, self._bring_up(name, config_name))

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        for task in list(self._tasks.values()):
            with contextlib.suppress(BaseException):
                await task
        lives, self._live = list(self._live.values()), {}
        await asyncio.gather(*(p.close(5.0) for live in lives for p in live.pools.values()),
                             return_exceptions=True)
        with self._db_lock:
            self._db.close()


# --------------------------------------------------------------------------- helpers

def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def _check_name(kind: str, name) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise InvalidInput(f"{kind} {name!r} is not valid: 1-63 letters, digits and single "
                           "hyphens, starting and ending with a letter or digit")
    return name
