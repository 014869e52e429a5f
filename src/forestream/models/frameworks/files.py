"""What one model file is: its framework and format, from its name and first bytes.

:func:`classify_file` names the framework and format of a file (an XGBoost JSON model
starts with a ``"learner"`` key, a LightGBM text model with the line ``tree``, a
TorchScript archive holds a ``code/`` folder, a pickle names the classes it rebuilds)
and says whether loading it executes code; the answer is a :class:`ModelSpec`. Nothing
here imports a framework or executes the file. :mod:`forestream.models.frameworks`
applies this to a whole artifact; :mod:`forestream.models.frameworks.mlflow` to the file an
MLmodel names.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import FrameworkUnavailable, InvalidInput

KNOWN_FILES = ("recognised model files: *.joblib, *.pkl, *.pickle (scikit-learn), *.json, "
               "*.ubj, *.model, *.bst (XGBoost), *.txt, *.lgb (LightGBM text), *.onnx, *.pt, "
               "*.pth (PyTorch), saved_model.pb, *.keras, *.h5 (TensorFlow), *-symbol.json + "
               "*.params (MXNet), *.rcf (forestream RCF), or an MLflow MLmodel directory")

_PICKLE_SUFFIXES = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle", ".sav": "joblib"}
_SNIFF_BYTES = 1 << 16


@dataclass(frozen=True)
class ModelSpec:
    """Where a model lives inside an artifact and how to load it.

    ``path`` is the file (or directory, for a SavedModel) to load; ``format`` one of
    ``"joblib"``, ``"pickle"``, ``"cloudpickle"``, ``"xgboost-json"``, ``"xgboost-ubj"``,
    ``"xgboost-binary"``, ``"lightgbm-text"``, ``"onnx"``, ``"torchscript"``,
    ``"torch-pickle"``, ``"savedmodel"``, ``"keras"``, ``"mxnet"``, ``"rcf"`` or
    ``"model_fn"`` (only custom code knows how to load it); ``trust_reason`` says why
    loading the file executes code (``None`` when it does not); ``mlflow`` is the flavor
    configuration when the artifact is an MLflow model directory.
    """

    framework: str
    path: Path
    format: str
    trust_reason: str | None = None
    mlflow: dict | None = None


def classify_file(path: Path) -> ModelSpec | None:
    """The framework and format of one file, from its name and first bytes."""
    name = path.name.lower()
    suffix = path.suffix.lower()
    if name == "saved_model.pb":
        return ModelSpec("tensorflow", path.parent, "savedmodel")
    if name.endswith("-symbol.json"):
        return ModelSpec("mxnet", path, "mxnet")
    if suffix in _PICKLE_SUFFIXES:
        return _classify_pickle(path, _PICKLE_SUFFIXES[suffix])
    if suffix == ".rcf":
        return ModelSpec("forestream-rcf", path, "rcf")
    if suffix == ".skops":
        return skops_spec(path)
    if suffix == ".onnx":
        return ModelSpec("onnx", path, "onnx")
    if suffix in (".keras", ".h5"):
        return ModelSpec("tensorflow", path, "keras")
    if suffix == ".ubj":
        return ModelSpec("xgboost", path, "xgboost-ubj")
    if suffix == ".json":
        head = read_head(path)
        return ModelSpec("xgboost", path, "xgboost-json") if b'"learner"' in head else None
    if suffix in (".txt", ".lgb", ".model", ".bst"):
        if is_lightgbm_text(read_head(path)):
            return ModelSpec("lightgbm", path, "lightgbm-text")
        if suffix in (".model", ".bst"):
            head = read_head(path)
            fmt = "xgboost-json" if head.lstrip().startswith(b"{\"") else "xgboost-binary"
            if head.startswith(b"{L") or head.startswith(b"{i") or head.startswith(b"{U"):
                fmt = "xgboost-ubj"
            return ModelSpec("xgboost", path, fmt)
        return None
    if suffix in (".pt", ".pth", ".bin") or name.endswith(".pth.tar"):
        if is_torchscript(path):
            return ModelSpec("pytorch", path, "torchscript")
        if suffix == ".bin" and not zipfile.is_zipfile(path):
            return None
        return ModelSpec("pytorch", path, "torch-pickle",
                         f"{path.name} (a PyTorch eager save is a pickle: loading it runs code "
                         "stored in the file)")
    return None


def skops_spec(path: Path, mlflow: dict | None = None) -> ModelSpec:
    """A scikit-learn model saved with skops (MLflow 3's default for sklearn).

    skops rebuilds objects from a schema instead of unpickling them, and only from types
    on its safe list; a file naming other types needs trust, and the reason lists them.
    Reading the schema runs nothing.
    """
    try:
        from skops.io import get_untrusted_types
    except ImportError:
        raise FrameworkUnavailable(f"{path.name} is a skops file and skops is not installed "
                                   "on this server; install forestream[sklearn]") from None
    try:
        untrusted = get_untrusted_types(file=path)
    except Exception as exc:  # a corrupt zip or schema fails in many ways
        raise InvalidInput(f"{path.name} is not a readable skops file: {exc}") from exc
    reason = None
    if untrusted:
        reason = (f"{path.name} (a skops file with types outside skops' safe list: "
                  f"{', '.join(sorted(untrusted))}; loading them can run code)")
    return ModelSpec("sklearn", path, "skops", reason, mlflow)


def read_head(path: Path) -> bytes:
    """The first 64 KiB of ``path``: enough to tell the formats apart."""
    with open(path, "rb") as handle:
        return handle.read(_SNIFF_BYTES)


def is_lightgbm_text(head: bytes) -> bool:
    """Whether a file's first bytes are LightGBM's text model format."""
    # LightGBM's text format opens with a line that says "tree", then "version=v<N>".
    return head.split(b"\n", 1)[0].strip() == b"tree"


def is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (a zip with ``code/``), not an eager save."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def refuse_empty(path: Path) -> None:
    """Refuse a zero-byte model file (an interrupted save) before a loader chokes on it."""
    if path.is_file() and path.stat().st_size == 0:
        raise InvalidInput(f"model file {path.name} is empty (0 bytes)")


# --------------------------------------------------------------------------- helpers

def _classify_pickle(path: Path, fmt: str) -> ModelSpec:
    head = read_head(path)
    # Uncompressed pickles name the classes they rebuild; compressed joblib files do not,
    # and are taken for scikit-learn, the common case.
    if b"forestream.rcf" in head:
        framework = "forestream-rcf"
    elif b"xgboost.core" in head and b"xgboost.sklearn" not in head:
        framework = "xgboost"
    elif b"lightgbm.basic" in head and b"lightgbm.sklearn" not in head:
        framework = "lightgbm"
    else:
        framework = "sklearn"
    return ModelSpec(framework, path, fmt,
                     f"{path.name} (a {fmt} file: loading it runs code stored in the file)")
