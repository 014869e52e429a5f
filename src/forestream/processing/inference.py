"""Model inference inside a pipeline: score each record with a registered model.

``stream.predict(fields=[...], model="churn:3")`` loads model version 3 of group
``churn`` from the model registry (``forestream.models``) into a worker subprocess —
models never run inside the pipeline's own process — and sends each batch of records
as one request; ``stream.predict(fields=[...], endpoint="churn")`` calls a deployed
endpoint through the SageMaker runtime API instead (the server in
``FORESTREAM_ENDPOINT_URL`` or ``endpoint_url``), so many pipelines can share one
endpoint's workers.

Each record (a dict) gets the model's answer for its row under ``output_field``. The
operator holds no state of its own; a checkpoint restores nothing but the model
reference, and a restarted job loads the same version again.

This module is the one place where ``forestream.processing`` uses ``forestream.models``
(the registry and workers, for a model version); ``forestream.models`` never imports
``forestream.processing``.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import boto3
import orjson
from botocore.config import Config

from forestream.config import Settings, client_credentials, client_region
from forestream.models import ModelRegistry, ModelWorker

from .operators import Operator
from .records import Record

MAX_BATCH = 10_000


class _LoopThread:
    """An event loop on a daemon thread, to drive an async worker from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="model-worker",
                                       daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class ModelInferenceOperator(Operator):
    """Adds ``output_field`` to each record with a model's prediction for its ``fields``.

    Give exactly one of ``model`` (a registered version, ``"group:version"``, loaded
    from the registry under ``data_dir``) or ``endpoint`` (a deployed endpoint's name).
    ``batch_size`` records at most go into one request.
    """

    name = "predict"

    def __init__(self, fields: list[str], *, model: str | None = None,
                 endpoint: str | None = None, output_field: str = "prediction",
                 batch_size: int = 500, data_dir: str | Path | None = None,
                 endpoint_url: str | None = None, custom_attributes: str | None = None) -> None:
        super().__init__()
        if (model is None) == (endpoint is None):
            raise ValueError("predict needs exactly one of model='group:version' or "
                             "endpoint='name'")
        if not fields:
            raise ValueError("predict needs at least one input field")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or \
                not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size {batch_size!r} must be an integer from 1 to "
                             f"{MAX_BATCH}")
        self.fields = list(fields)
        self.model = model
        self.endpoint = endpoint
        self.output_field = output_field
        self.batch_size = batch_size
        self.data_dir = data_dir
        self.endpoint_url = endpoint_url
        self.custom_attributes = custom_attributes
        self._loop: _LoopThread | None = None
        self._worker: ModelWorker | None = None
        self._client: Any = None  # a boto3 SageMaker runtime client, for an endpoint

    def open(self) -> None:
        if self.model is not None:
            registry = ModelRegistry(Path(self.data_dir) if self.data_dir is not None
                                     else Settings().data_dir)
            group, version = registry.parse_ref(self.model)
            desc = registry.describe_version(group, version)
            if desc["status"] != "Ready":
                raise ValueError(f"model version {desc['ref']} is {desc['status']}: "
                                 f"{desc.get('failure_reason') or 'not ready'}")
            self._loop = _LoopThread()
            self._worker = ModelWorker(registry.artifact_dir(group, version),
                                       desc["framework"], trusted=bool(desc.get("trusted")))
            self._loop.run(self._worker.start())
        else:
            key, secret = client_credentials()
            url = self.endpoint_url or os.environ.get("FORESTREAM_ENDPOINT_URL",
                                                      "http://127.0.0.1:4567")
            self._client = boto3.client(
                "sagemaker-runtime", endpoint_url=url, region_name=client_region(),
                aws_access_key_id=key or "local", aws_secret_access_key=secret or "local",
                config=Config(retries={"max_attempts": 5, "mode": "standard"}))

    def _row(self, value) -> list:
        try:
            return [value[f] for f in self.fields]
        except (KeyError, TypeError):
            raise ValueError(f"{self.uid}: record has no field(s) {self.fields} "
                             f"(got {value!r:.200})") from None

    def _invoke(self, body: bytes) -> bytes:
        if self._worker is not None:
            assert self._loop is not None  # started with the worker
            answer = self._loop.run(self._worker.invoke(
                body, "application/json", "application/json", self.custom_attributes))
            return answer.body
        args = {"EndpointName": self.endpoint, "Body": body,
                "ContentType": "application/json", "Accept": "application/json"}
        if self.custom_attributes:
            args["CustomAttributes"] = self.custom_attributes
        return self._client.invoke_endpoint(**args)["Body"].read()

    def process(self, records, out):
        for start in range(0, len(records), self.batch_size):
            chunk = records[start:start + self.batch_size]
            body = orjson.dumps([self._row(r.value) for r in chunk],
                                option=orjson.OPT_SERIALIZE_NUMPY)
            answer = orjson.loads(self._invoke(body))
            if isinstance(answer, dict):  # {"predictions": [...]}, {"scores": [...]}
                lists = [v for v in answer.values() if isinstance(v, list)]
                answer = lists[0] if len(lists) == 1 else answer
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise ValueError(f"{self.uid}: the model answered {str(answer)[:200]} for "
                                 f"{len(chunk)} rows; expected one prediction per row")
            out.main.extend(Record({**r.value, self.output_field: a}, r.timestamp, r.key,
                                   r.rid) for r, a in zip(chunk, answer, strict=True))

    def close(self) -> None:
        if self._worker is not None:
            assert self._loop is not None  # started with the worker
            self._loop.run(self._worker.close())
            self._worker = None
        if self._loop is not None:
            self._loop.stop()
            self._loop = None
        self._client = None

    def snapshot(self):
        return {"model": self.model, "endpoint": self.endpoint}

    def restore(self, state):
        pass
