"""SageMaker's control-plane objects over the registry: models, and what SageMaker records
about endpoint configs, endpoints and model packages beyond what forestream keeps.

A SageMaker *model* names one container. Here it maps onto a registry version:

* ``ModelDataUrl`` (or ``ModelDataSource.S3DataSource.S3Uri``) ``s3://...`` is imported
  through :meth:`ModelRegistry.import_version` as the next version of the registry group
  named after the model (created if missing), on the S3 endpoint the registry uses
  (``FORESTREAM_S3_ENDPOINT_URL``); the model *owns* that version;
* ``ModelPackageName`` (a model package ARN or ``group/version``) points at an existing
  registry version, which the model does not own.

``Image`` is recorded, not run: the framework is detected from the files. Of the
container ``Environment``, ``SAGEMAKER_PROGRAM`` may only name ``inference.py`` and
``SAGEMAKER_SUBMIT_DIRECTORY`` only ``/opt/ml/model/code`` (the importer reads
``code/inference.py`` from the archive), and ``FORESTREAM_TRUST`` = ``"true"`` is the
explicit trust flag pickle-based artifacts and custom code need (``--trust`` on the
command line). A failed import leaves nothing behind: the failed version, and a group
the import created, are deleted.

Deleting a model deletes its record, and its owned version unless an endpoint config
still serves it (that version stays in the registry, listed by ``/api/v1``).

Records live in ``<data_dir>/models/sagemaker.sqlite`` (WAL). Side records of endpoint
configs and endpoints carry the ``created_at`` of the object they describe, so a record
left by an object deleted through another API is never shown for a new one.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from pathlib import Path

from ..errors import ConflictError, ImportRefused, InvalidInput, ModelsError, NotFoundError
from . import ModelRegistry
from .database import now_iso

ACCOUNT = "000000000000"
TRUST_VARIABLE = "FORESTREAM_TRUST"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY,
    ref TEXT NOT NULL,             -- the registry version served: "group:N"
    owns_version INTEGER NOT NULL, -- imported by CreateModel (deleted with it)
    owns_group INTEGER NOT NULL,   -- the group was created by that import
    created_at TEXT NOT NULL,
    doc TEXT NOT NULL              -- the CreateModel request as given
);
CREATE INDEX IF NOT EXISTS models_by_ref ON models(ref);
CREATE TABLE IF NOT EXISTS side_records (
    kind TEXT NOT NULL,            -- "endpoint-config", "endpoint" or "model-package"
    name TEXT NOT NULL,
    stamp TEXT NOT NULL,           -- created_at of the object described
    doc TEXT NOT NULL,
    PRIMARY KEY (kind, name)
);
"""


class SageMakerModels:
    """SageMaker models and side records over one :class:`ModelRegistry`."""

    def __init__(self, registry: ModelRegistry, data_dir: Path | str,
                 region: str = "us-east-1") -> None:
        self.registry = registry
        self.region = region
        root = Path(data_dir) / "models"
        root.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(root / "sagemaker.sqlite", check_same_thread=False,
                                   isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ ARNs
    def arn(self, kind: str, name: str) -> str:
        """SageMaker's ARN of a ``model``, ``endpoint-config``, ``endpoint`` (names in
        lower case, as SageMaker writes them) or ``model-package-group``."""
        shown = name if kind.startswith("model-package") else name.lower()
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:{kind}/{shown}"

    def package_arn(self, group: str, version: int) -> str:
        return f"arn:aws:sagemaker:{self.region}:{ACCOUNT}:model-package/{group}/{version}"

    def parse_package(self, name: str) -> tuple[str, int]:
        """A versioned model package's ARN or ``group/version`` as ``(group, version)``."""
        tail = name.split(":model-package/", 1)[1] if ":model-package/" in name else name
        group, sep, number = tail.rpartition("/")
        if not sep or not number.isdigit():
            raise InvalidInput(f"model package {name!r} is not a versioned model package; "
                               "accepted: its ARN (...:model-package/GROUP/VERSION) or "
                               "GROUP/VERSION")
        return group, int(number)

    # ------------------------------------------------------------------ models
    def create_model(self, name: str, container: dict, request: dict) -> dict:
        """Create model ``name`` from one ``container`` (SageMaker's ContainerDefinition);
        ``request`` is the whole CreateModel request, recorded. Imports the artifact when
        the container has a model data URL (see the module docstring)."""
        if self._row(name) is not None:
            raise ConflictError(f"Cannot create already existing model "
                                f"\"{self.arn('model', name)}\".")
        owns_group = False
        if container.get("ModelPackageName"):
            group, number = self.parse_package(container["ModelPackageName"])
            version = self.registry.describe_version(group, number)
            if version["status"] != "Ready":
                raise InvalidInput(f"model package {self.package_arn(group, number)} is "
                                   f"{version['status']}; only a Completed package can back "
                                   "a model")
        else:
            source = model_data_url(container)
            if source is None:
                raise InvalidInput(
                    "the container needs ModelDataUrl (s3://bucket/key/model.tar.gz), "
                    "ModelDataSource.S3DataSource.S3Uri or ModelPackageName: forestream "
                    f"does not run container images (Image {container.get('Image')!r} is "
                    "only recorded)")
            owns_group = not self._group_exists(name)
            version = self.import_artifact(name, source, container.get("Environment") or {},
                                           created_by="sagemaker:CreateModel",
                                           metadata={"generated_by": "SageMaker CreateModel"})
        created = now_iso()
        ref, owned = version["ref"], not container.get("ModelPackageName")
        try:
            with self._lock:
                self._db.execute("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?)",
                                 (name, ref, int(owned), int(owns_group), created,
                                  json.dumps(request)))
        except sqlite3.IntegrityError:  # created concurrently by another request
            if owned:
                self._discard(version["group"], version["version"], owns_group)
            raise ConflictError(f"Cannot create already existing model "
                                f"\"{self.arn('model', name)}\".") from None
        return self.describe_model(name)

    def describe_model(self, name: str) -> dict:
        """``{"name", "arn", "ref", "owns_version", "created_at", "request"}``."""
        row = self._row(name)
        if row is None:
            raise NotFoundError(f"Could not find model \"{self.arn('model', name)}\".")
        return _model_dict(row, self)

    def list_models(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM models ORDER BY name").fetchall()
        return [_model_dict(row, self) for row in rows]

    def model_names_for(self, ref: str) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT name FROM models WHERE ref = ? ORDER BY name", (ref,))]

    def delete_model(self, name: str, refs_in_use: set[str]) -> None:
        """Delete the record; an owned version goes too unless ``refs_in_use`` (the
        versions endpoint configs serve) holds it."""
        model = self.describe_model(name)
        with self._lock:
            self._db.execute("DELETE FROM models WHERE name = ?", (name,))
        if model["owns_version"] and model["ref"] not in refs_in_use and \
                not self.model_names_for(model["ref"]):
            group, _, number = model["ref"].rpartition(":")
            # deleted or deployed through another API meanwhile: then it is theirs
            with contextlib.suppress(NotFoundError, ConflictError):
                self._discard(group, int(number), model["owns_group"])

    # ------------------------------------------------------------------ imports
    def import_artifact(self, group: str, source: str, environment: dict, **kwargs) -> dict:
        """Import ``source`` into ``group`` under a container ``environment``'s rules
        (trust flag, handler location); on failure nothing is kept and the error is
        :class:`InvalidInput` (an :class:`ImportRefused` keeps its class) naming it."""
        trust = check_environment(environment)
        created_group = not self._group_exists(group)
        try:
            return self.registry.import_version(group, source, trust=trust, **kwargs)
        except ModelsError as err:
            number = getattr(err, "version", None)
            if number is not None:
                self._discard(group, number, created_group)
            if isinstance(err, ImportRefused):
                raise ImportRefused(f"{err.message}. Through the SageMaker API, set the "
                                    f"container's Environment {{\"{TRUST_VARIABLE}\": "
                                    "\"true\"} after reviewing the artifact") from None
            if isinstance(err, InvalidInput) or err.status < 500:
                raise InvalidInput(f"could not import {source}: {err.message}") from None
            raise

    # ------------------------------------------------------------------ side records
    def put_side(self, kind: str, name: str, stamp: str, doc: dict) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO side_records VALUES (?, ?, ?, ?)",
                             (kind, name, stamp, json.dumps(doc)))

    def side(self, kind: str, name: str, stamp: str) -> dict:
        """The side record of object ``name`` created at ``stamp``; {} when none."""
        with self._lock:
            rows = self._db.execute("SELECT stamp, doc FROM side_records WHERE kind = ? AND "
                                    "name = ?", (kind, name)).fetchall()
        return json.loads(rows[0][1]) if rows and rows[0][0] == stamp else {}

    def drop_side(self, kind: str, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM side_records WHERE kind = ? AND name = ?",
                             (kind, name))

    # ------------------------------------------------------------------ helpers
    def _row(self, name: str):
        with self._lock:
            return self._db.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()

    def _group_exists(self, group: str) -> bool:
        try:
            self.registry.describe_group(group)
        except NotFoundError:
            return False
        return True

    def _discard(self, group: str, number: int, with_group: bool) -> None:
        self.registry.delete_version(group, number)
        self.drop_side("model-package", f"{group}/{number}")
        if with_group and not self.registry.describe_group(group)["version_count"]:
            self.registry.delete_group(group)


def model_data_url(container: dict) -> str | None:
    """The s3:// location of a container's model data, or None when it names none."""
    url = container.get("ModelDataUrl")
    if url is None:
        url = ((container.get("ModelDataSource") or {}).get("S3DataSource") or {}).get("S3Uri")
    if url is not None and not url.startswith("s3://"):
        raise InvalidInput(f"model data URL {url!r} is not supported; accepted: s3://bucket/"
                           "key (on FORESTREAM_S3_ENDPOINT_URL's S3 endpoint)")
    return url


def check_environment(environment: dict) -> bool:
    """The trust flag a container ``Environment`` sets; refuses handler locations the
    importer does not read (it reads ``code/inference.py`` inside the artifact)."""
    program = environment.get("SAGEMAKER_PROGRAM")
    if program not in (None, "", "inference.py"):
        raise InvalidInput(f"SAGEMAKER_PROGRAM {program!r} is not supported: forestream "
                           "runs code/inference.py from the model archive (accepted: "
                           "'inference.py' or unset)")
    directory = environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
    if directory not in (None, "", "/opt/ml/model/code", "/opt/ml/model/code/"):
        raise InvalidInput(f"SAGEMAKER_SUBMIT_DIRECTORY {directory!r} is not supported: put "
                           "the handlers in code/inference.py inside model.tar.gz (accepted: "
                           "'/opt/ml/model/code' or unset)")
    flag = environment.get(TRUST_VARIABLE, "false")
    if not isinstance(flag, str) or flag.lower() not in ("true", "false"):
        raise InvalidInput(f"{TRUST_VARIABLE} {flag!r} is invalid; accepted: 'true' (load "
                           "pickle-based artifacts and custom code) or 'false'")
    return flag.lower() == "true"


def _model_dict(row, models: SageMakerModels) -> dict:
    name, ref, owns_version, owns_group, created, doc = row
    return {"name": name, "arn": models.arn("model", name), "ref": ref,
            "owns_version": bool(owns_version), "owns_group": bool(owns_group),
            "created_at": created, "request": json.loads(doc)}
