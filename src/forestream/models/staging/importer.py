"""The import pipeline: check the request, stage the source, decide trust, validate.

:class:`ImportRequest` is an import's parameters after every check a caller can fail
(group name, source syntax, metadata sizes ...): building one raises
:class:`InvalidInput` before anything is stored. :func:`prepare_artifact` then turns the
request into a validated staging directory:

1. :func:`~forestream.models.staging.sources.stage_source` copies the source into ``tmp/``;
2. the framework is the declared one, else
   :func:`~forestream.models.frameworks.detect_framework`'s answer (which maps an MLflow
   directory's flavor); a framework this server cannot run fails here;
3. :func:`~forestream.models.frameworks.needs_trust` names any file that would execute
   code on load (pickles, ``code/inference.py``); without ``trust=True`` the import is
   refused with :class:`ImportRefused` and nothing is loaded;
4. every file is hashed (the manifest that becomes the artifact's digest);
5. :func:`~forestream.models.serving.worker.validate_artifact` loads the model in a subprocess
   and runs the sample input through it, if one was given;
6. whatever the load wrote into the staging directory (``__pycache__``, caches) is
   removed, and a file the load *changed* fails the import, so the digest stays true.

The registry commits the result into the artifact store; on any error it removes the
staging directory and records the version as ``Failed``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ImportFailed, ImportRefused, InvalidInput, ModelsError
from ..frameworks import (
    FRAMEWORKS,
    check_available,
    detect_framework,
    mlflow_signature,
    needs_trust,
)
from ..serving.worker import validate_artifact
from .manifest import build_manifest
from .sources import ImportLimits, StagedSource, local_path, parse_s3_uri, stage_source

GROUP_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
IMMUTABLE_METADATA_KEYS = ("commit", "repository", "generated_by")
PROPERTY_KEY = re.compile(r"[\w .:/=+\-@]{1,128}", re.ASCII)  # as the API documents it
MAX_DESCRIPTION = 1024
MAX_IMMUTABLE_VALUE = 1024
MAX_PROPERTIES = 50  # customer metadata entries, and tags (SageMaker's limits)
MAX_PROPERTY_VALUE = 256
MAX_METRICS = 100
MAX_SAMPLE_BYTES = 6 * 1024 * 1024  # SageMaker's invocation payload limit


@dataclass(frozen=True)
class ImportRequest:
    """One import's parameters, checked; see ``ModelRegistry.import_version``."""

    group: str
    source: str
    source_uri: str
    framework: str | None = None
    trust: bool = False
    sample_input: bytes | None = None
    sample_content_type: str | None = None
    metadata: dict = field(default_factory=dict)
    customer_metadata: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    tags: dict = field(default_factory=dict)
    description: str = ""
    created_by: str | None = None
    s3_endpoint_url: str | None = None

    @classmethod
    def build(cls, group, source, *, framework=None, trust=False, sample_input=None,
              sample_content_type=None, metadata=None, customer_metadata=None, metrics=None,
              tags=None, description="", created_by=None,
              s3_endpoint_url=None) -> ImportRequest:
        """Check every parameter; :class:`InvalidInput` names the first bad one."""
        check_group_name(group)
        source_text, source_uri = _check_source(source)
        if framework is not None and framework not in FRAMEWORKS:
            raise InvalidInput(f"framework {framework!r} is not supported; accepted: "
                               f"{', '.join(FRAMEWORKS)} (or omit it to detect)")
        if not isinstance(trust, bool):
            raise InvalidInput(f"trust must be true or false; got {trust!r}")
        if sample_input is not None:
            if not isinstance(sample_input, (bytes, bytearray)):
                raise InvalidInput("sample_input must be bytes")
            if not 0 < len(sample_input) <= MAX_SAMPLE_BYTES:
                raise InvalidInput(f"sample_input is {len(sample_input)} bytes; accepted: 1 "
                                   f"to {MAX_SAMPLE_BYTES} bytes")
            sample_content_type = sample_content_type or "application/json"
            check_text("sample_content_type", sample_content_type, 256, allow_empty=False)
        if s3_endpoint_url is not None and not (
                isinstance(s3_endpoint_url, str)
                and re.match(r"^https?://[^\s/]+", s3_endpoint_url)):
            raise InvalidInput(f"s3_endpoint_url {s3_endpoint_url!r} must be an http:// or "
                               "https:// URL")
        if created_by is not None:
            check_text("created_by", created_by, 256)
        return cls(group=group, source=source_text, source_uri=source_uri,
                   framework=framework, trust=trust,
                   sample_input=bytes(sample_input) if sample_input is not None else None,
                   sample_content_type=sample_content_type if sample_input else None,
                   metadata=check_immutable_metadata(metadata or {}),
                   customer_metadata=check_properties("customer_metadata",
                                                      customer_metadata or {}),
                   metrics=check_metrics(metrics or {}),
                   tags=check_properties("tags", tags or {}),
                   description=check_text("description", description, MAX_DESCRIPTION),
                   created_by=created_by, s3_endpoint_url=s3_endpoint_url)


@dataclass(frozen=True)
class PreparedArtifact:
    """A staged, validated model directory and everything the registry records of it."""

    staged: StagedSource
    framework: str
    validation: dict
    files: list[dict]
    signature: dict | None
    custom_code: bool
    requirements: list[str]


def prepare_artifact(request: ImportRequest, staging: Path, *, limits: ImportLimits,
                     uploads_dir: Path, timeout: float) -> PreparedArtifact:
    """Run steps 1-6 of the module docstring on ``staging`` (an empty directory)."""
    staged = stage_source(request.source, staging, s3_endpoint_url=request.s3_endpoint_url,
                          limits=limits, uploads_dir=uploads_dir)
    framework = request.framework or detect_framework(staging)
    check_available(framework)
    reason = needs_trust(staging, framework)
    if reason and not request.trust:
        raise ImportRefused(f"{reason}. Loading it executes code; review the source, then "
                            "import again with --trust (trust=True)")
    files = build_manifest(staging)
    before = _fingerprints(staging)
    validation = validate_artifact(staging, framework, trusted=request.trust,
                                   sample=request.sample_input,
                                   content_type=request.sample_content_type, timeout=timeout)
    _undo_load_side_effects(staging, before)
    signature = validation.get("signature")
    if not _has_signature(signature):
        signature = mlflow_signature(staging) or signature  # an MLflow model's own record
    requirements_file = staging / "code" / "requirements.txt"
    if not requirements_file.is_file() and (staging / "MLmodel").is_file():
        requirements_file = staging / "requirements.txt"  # MLflow writes it at the root
    return PreparedArtifact(
        staged=staged, framework=framework, validation=validation, files=files,
        signature=signature, custom_code=(staging / "code" / "inference.py").is_file(),
        requirements=read_requirements(requirements_file))


def failure_of(err: BaseException) -> tuple[str, BaseException | None]:
    """The ``failure_reason`` to record for ``err``, and the error to raise instead of it
    (None: re-raise ``err`` itself). Safety refusals stay :class:`ImportRefused`; every
    other failure becomes :class:`ImportFailed` (the caller adds the version number)."""
    if isinstance(err, ImportRefused):
        return err.message, None
    if isinstance(err, ModelsError):
        return err.message, ImportFailed(err.message)
    if isinstance(err, Exception):
        reason = f"unexpected error while importing: {type(err).__name__}: {err}"
        return reason, ImportFailed(reason)
    return f"the import was interrupted ({type(err).__name__})", None


def read_requirements(path: Path) -> list[str]:
    """The requirement lines of a requirements.txt (comments and blanks dropped).
    They are recorded for the user to see; the server does not install them."""
    if not path.is_file():
        return []
    lines = path.read_text(errors="replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def check_group_name(name) -> str:
    if not isinstance(name, str) or not GROUP_NAME.fullmatch(name):
        raise InvalidInput(f"model group name {name!r} is invalid; accepted: 1 to 63 letters, "
                           "digits and hyphens, starting and ending with a letter or digit "
                           "(pattern ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$)")
    return name


def check_version(version) -> int:
    """A version number: a positive integer, or its decimal spelling (``"3"``)."""
    if isinstance(version, str) and version.isdigit():
        version = int(version)
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**63:
        raise InvalidInput(f"model version {version!r} is invalid; accepted: an integer from "
                           "1 upwards (1, 2, 3 ...)")
    return version


def check_text(name: str, value, max_length: int, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str) or len(value) > max_length or (not value and not
                                                                  allow_empty):
        shown = value if not isinstance(value, str) or len(value) <= 40 else value[:40] + "..."
        raise InvalidInput(f"{name} {shown!r} is invalid; accepted: a string of "
                           f"{0 if allow_empty else 1} to {max_length} characters")
    return value


def check_immutable_metadata(metadata) -> dict:
    if not isinstance(metadata, dict):
        raise InvalidInput("metadata must be a mapping with keys "
                           f"{', '.join(IMMUTABLE_METADATA_KEYS)}")
    for key, value in metadata.items():
        if key not in IMMUTABLE_METADATA_KEYS:
            raise InvalidInput(f"metadata key {key!r} is not accepted; accepted keys: "
                               f"{', '.join(IMMUTABLE_METADATA_KEYS)} (use customer_metadata "
                               "for anything else)")
        check_text(f"metadata {key}", value, MAX_IMMUTABLE_VALUE)
    return dict(metadata)


def check_properties(name: str, properties, max_value: int = MAX_PROPERTY_VALUE) -> dict:
    """Customer metadata or tags: at most 50 string pairs, keys 1-128 characters of
    letters, digits, spaces and ``_.:/=+-@``, values up to ``max_value`` characters."""
    if not isinstance(properties, dict):
        raise InvalidInput(f"{name} must be a mapping of strings to strings")
    if len(properties) > MAX_PROPERTIES:
        raise InvalidInput(f"{name} has {len(properties)} entries; accepted: at most "
                           f"{MAX_PROPERTIES}")
    for key, value in properties.items():
        if not isinstance(key, str) or not PROPERTY_KEY.fullmatch(key):
            raise InvalidInput(f"{name} key {key!r} is invalid; accepted: 1 to 128 ASCII letters, "
                               "digits, spaces and _.:/=+-@")
        check_text(f"{name} value for {key!r}", value, max_value)
    return dict(properties)


def check_metrics(metrics) -> dict:
    """Metrics: at most 100 entries, name (like a property key) -> finite number."""
    if not isinstance(metrics, dict):
        raise InvalidInput("metrics must be a mapping of names to numbers")
    if len(metrics) > MAX_METRICS:
        raise InvalidInput(f"metrics has {len(metrics)} entries; accepted: at most "
                           f"{MAX_METRICS}")
    for key, value in metrics.items():
        if not isinstance(key, str) or not PROPERTY_KEY.fullmatch(key):
            raise InvalidInput(f"metric name {key!r} is invalid; accepted: 1 to 128 ASCII letters, "
                               "digits, spaces and _.:/=+-@")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise InvalidInput(f"metric {key!r} = {value!r} is invalid; accepted: a finite "
                               "number")
    return dict(metrics)


def _check_source(source) -> tuple[str, str]:
    """The source as text, and the URI recorded for it (absolute ``file://`` for paths)."""
    if isinstance(source, Path):
        source = str(source)
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(f"source {source!r} is invalid; accepted: a local path, file://, "
                           "s3://bucket/key, s3://bucket/prefix/ or upload://<id>")
    if source.startswith("s3://"):
        parse_s3_uri(source)
        return source, source
    if source.startswith("upload://"):
        upload_id = source.removeprefix("upload://")
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise InvalidInput(f"upload id {upload_id!r} is malformed; expected the 32 hex "
                               "characters returned by store_upload")
        return source, source
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source) and not source.startswith("file://"):
        raise InvalidInput(f"source {source!r} is not understood; accepted: a local path, "
                           "file://, s3://bucket/key, s3://bucket/prefix/ or upload://<id>")
    path = local_path(source).resolve()
    return str(path), path.as_uri()


def _has_signature(signature) -> bool:
    return isinstance(signature, dict) and any(signature.get(k) for k in ("inputs", "outputs"))


def _fingerprints(root: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def _undo_load_side_effects(root: Path, before: dict[str, tuple[int, int]]) -> None:
    """Remove what loading created (``__pycache__``, caches); fail if it changed or
    removed a model file, since the manifest hashed before the load would then lie."""
    after = _fingerprints(root)
    changed = sorted(name for name, stamp in before.items() if after.get(name) != stamp)
    if changed:
        raise ImportFailed(f"loading the model modified its own files ({', '.join(changed)});"
                           " inference code must not write into the model directory")
    for name in sorted(set(after) - set(before)):
        (root / name).unlink()
    known_dirs = {Path(name).parent for name in before}
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        rel = path.relative_to(root)
        if path.is_symlink():
            path.unlink()
        elif path.is_dir() and not any(rel == d or rel in d.parents for d in known_dirs):
            path.rmdir()
