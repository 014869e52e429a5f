"""What a model artifact is: its framework, the file to load, and whether loading runs code.

An *artifact* is a directory in SageMaker's layout — model files at the root, optional
custom inference code in ``code/inference.py`` — or an MLflow model directory (one with
an ``MLmodel`` file). This module looks at the files, never executes them:

* :func:`detect_framework` names the framework from file names and a sniff of their
  first bytes (an XGBoost JSON model starts with a ``"learner"`` key, a LightGBM text
  model with the line ``tree``, a TorchScript archive holds a ``code/`` folder, ...);
* :func:`resolve_model` says exactly which file or directory holds the model, in which
  format, and why loading it would execute code (:attr:`ModelSpec.trust_reason`);
* :func:`needs_trust` answers the safety question an importer must ask first;
* :func:`check_available` raises :class:`~forestream.models.errors.FrameworkUnavailable`
  when the framework's library cannot be imported here, without importing it;
* :func:`load_model` and :func:`library_versions` import the library and load the model.
  They are meant for the worker process (:mod:`forestream.models.worker`): nothing in
  the serving process ever unpickles a model.

Framework names used throughout :mod:`forestream.models`: ``"sklearn"``, ``"xgboost"``,
``"lightgbm"``, ``"onnx"``, ``"pytorch"``, ``"tensorflow"``, ``"mxnet"`` and
``"forestream-rcf"``.

>>> import tempfile, pathlib
>>> from forestream.rcf import RandomCutForest
>>> model_dir = pathlib.Path(tempfile.mkdtemp())
>>> _ = (model_dir / "model.rcf").write_bytes(RandomCutForest(dimensions=2).to_bytes())
>>> detect_framework(model_dir), needs_trust(model_dir, "forestream-rcf")
('forestream-rcf', None)
>>> _ = (model_dir / "code").mkdir(), (model_dir / "code" / "inference.py").write_text("")
>>> needs_trust(model_dir, "forestream-rcf")
'code/inference.py (custom inference code runs when the model loads and on every request)'
"""

from __future__ import annotations

import ast
import importlib.util
import json
import platform
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import FrameworkUnavailable, InvalidInput, ModelLoadError

FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "onnx", "pytorch", "tensorflow", "mxnet",
              "forestream-rcf")

#: The SageMaker handler functions that ``code/inference.py`` may define.
HANDLER_FUNCTIONS = ("model_fn", "input_fn", "predict_fn", "output_fn", "transform_fn")

INFERENCE_CODE = Path("code") / "inference.py"

TENSORFLOW_MISSING = ("TensorFlow is not installed on this server; "
                      "install forestream[tensorflow]")
MXNET_MISSING = ("MXNet cannot be installed here: Apache MXNet is retired and has no wheel "
                 "for Python 3.11 / numpy 2; export the model to ONNX "
                 "(mxnet.onnx.export_model) and import the .onnx file instead")

# framework -> (module that must be importable, distribution to install, extra)
_REQUIREMENTS = {
    "sklearn": ("sklearn", "scikit-learn", "sklearn"),
    "xgboost": ("xgboost", "xgboost", "xgboost"),
    "lightgbm": ("lightgbm", "lightgbm", "lightgbm"),
    "onnx": ("onnxruntime", "onnxruntime", "onnx"),
    "pytorch": ("torch", "torch", "torch"),
    "tensorflow": ("tensorflow", "tensorflow", "tensorflow"),
    "forestream-rcf": ("numpy", "numpy", None),
}

# distributions whose versions are recorded with a model of each framework
_LIBRARIES = {
    "sklearn": ("scikit-learn", "joblib", "numpy", "scipy"),
    "xgboost": ("xgboost", "xgboost-cpu", "numpy", "scipy"),
    "lightgbm": ("lightgbm", "numpy", "scipy"),
    "onnx": ("onnxruntime", "onnx", "numpy"),
    "pytorch": ("torch", "numpy"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "keras", "numpy"),
    "mxnet": ("mxnet",),
    "forestream-rcf": ("forestream", "numpy", "numba"),
}

_PICKLE_SUFFIXES = {".joblib": "joblib", ".pkl": "pickle", ".pickle": "pickle", ".sav": "joblib"}
_SNIFF_BYTES = 1 << 16
_MODEL_STEM = "model"


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


def detect_framework(model_dir: Path) -> str:
    """The framework of the model in ``model_dir`` (an artifact directory or one file).

    Raises :class:`InvalidInput` naming the files found when no model file is
    recognised, or when files of several frameworks make the answer ambiguous (declare
    the framework then).
    """
    return resolve_model(model_dir).framework


def needs_trust(model_dir: Path, framework: str | None = None) -> str | None:
    """Why loading this artifact would execute code from it, or ``None`` when it would not.

    Pickle-based files (pickle, joblib, cloudpickle, PyTorch eager saves) run code while
    they load, and ``code/inference.py`` is code: an importer refuses them unless the
    caller trusts the source. The reason names the files.
    """
    model_dir = Path(model_dir)
    reasons = []
    spec = resolve_model(model_dir, framework)
    if spec.trust_reason:
        reasons.append(spec.trust_reason)
    if model_dir.is_dir() and (model_dir / INFERENCE_CODE).is_file():
        reasons.append(f"{INFERENCE_CODE.as_posix()} (custom inference code runs when the "
                       "model loads and on every request)")
    return "; ".join(reasons) or None


def trust_refusal(reason: str) -> str:
    """The message that refuses an untrusted artifact, given :func:`needs_trust`'s reason."""
    return (f"refusing to load untrusted code: {reason}. Import it with trust=True "
            "(--trust on the command line) only if you trust where it came from")


def handler_functions(model_dir: Path) -> tuple[str, ...]:
    """The SageMaker handler functions ``code/inference.py`` defines, read without running it.

    The file is parsed, not imported, so this is safe on untrusted artifacts.
    """
    path = Path(model_dir) / INFERENCE_CODE
    if not path.is_file():
        return ()
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError) as exc:
        raise InvalidInput(f"{INFERENCE_CODE.as_posix()} is not valid Python: {exc}") from exc
    names = {node.name for node in tree.body
             if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}
    return tuple(name for name in HANDLER_FUNCTIONS if name in names)


def resolve_model(model_dir: Path, framework: str | None = None) -> ModelSpec:
    """Find the model inside ``model_dir`` and describe it as a :class:`ModelSpec`.

    ``framework`` restricts the search to one framework (a declared framework); without
    it the framework is detected. A ``code/inference.py`` that defines ``model_fn``
    makes a model file optional: the spec then has format ``"model_fn"``.
    """
    if framework is not None and framework not in FRAMEWORKS:
        raise InvalidInput(f"unknown framework {framework!r}; accepted: {', '.join(FRAMEWORKS)}")
    model_dir = Path(model_dir)
    if model_dir.is_file():
        found = _classify(model_dir)
        if found is None:
            raise InvalidInput(f"{model_dir.name} is not a model file this server recognises; "
                               f"{_KNOWN_FILES}")
        candidates = [found]
    elif model_dir.is_dir():
        if (model_dir / "MLmodel").is_file():
            spec = _mlflow_spec(model_dir)
            if framework is not None and spec.framework != framework:
                raise InvalidInput(f"framework {framework!r} was declared, but the MLflow model "
                                   f"is a {spec.framework} model ({spec.path.name})")
            return spec
        candidates = _candidates(model_dir)
    else:
        raise InvalidInput(f"model path {str(model_dir)!r} does not exist")
    if framework is not None:
        matching = [spec for spec in candidates if spec.framework == framework]
    else:
        matching = candidates
    frameworks = sorted({spec.framework for spec in matching})
    if len(frameworks) > 1:
        listing = ", ".join(f"{spec.path.name} ({spec.framework})" for spec in matching)
        raise InvalidInput(f"found model files of several frameworks: {listing}; "
                           "declare the framework to choose one")
    if not matching:
        if framework is not None and "model_fn" in handler_functions(model_dir):
            return ModelSpec(framework, model_dir, "model_fn")
        found = ", ".join(sorted(p.name for p in model_dir.iterdir())) if model_dir.is_dir() \
            else model_dir.name
        wanted = f"no {framework} model file" if framework else "no model file"
        raise InvalidInput(f"{wanted} found in the artifact (files: {found or 'none'}); "
                           f"{_KNOWN_FILES}")
    spec = _pick_one(matching)
    _refuse_empty(spec.path)
    return spec


def check_available(framework: str) -> None:
    """Raise :class:`FrameworkUnavailable` when ``framework`` cannot run on this server.

    Looks the library up without importing it, so the serving process stays lean.
    """
    if framework == "mxnet":
        raise FrameworkUnavailable(MXNET_MISSING)
    if framework not in _REQUIREMENTS:
        raise InvalidInput(f"unknown framework {framework!r}; accepted: {', '.join(FRAMEWORKS)}")
    module, distribution, extra = _REQUIREMENTS[framework]
    if importlib.util.find_spec(module) is None:
        if framework == "tensorflow":
            raise FrameworkUnavailable(TENSORFLOW_MISSING)
        hint = f"install forestream[{extra}]" if extra else f"install {distribution}"
        raise FrameworkUnavailable(f"{distribution} is not installed on this server, so "
                                   f"{framework} models cannot be loaded; {hint}")


def library_versions(framework: str) -> dict[str, str]:
    """Versions of the libraries that load and run ``framework`` models (installed ones only)."""
    from importlib import metadata  # slow to import; only the worker needs it

    versions = {"python": platform.python_version()}
    for distribution in _LIBRARIES.get(framework, ()):
        try:
            versions[distribution] = metadata.version(distribution)
        except metadata.PackageNotFoundError:
            continue
    return versions


def framework_version(framework: str) -> str | None:
    """Version of the framework's main library here (``None`` when it is not installed)."""
    versions = library_versions(framework)
    for distribution in _LIBRARIES.get(framework, ()):
        if distribution in versions:
            return versions[distribution]
    return None


def read_mlmodel(model_dir: Path) -> dict | None:
    """The parsed ``MLmodel`` file of an MLflow model directory, or ``None``."""
    path = Path(model_dir) / "MLmodel"
    if not path.is_file():
        return None
    import yaml

    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"MLmodel is not valid YAML: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("flavors"), dict):
        raise InvalidInput("MLmodel has no 'flavors' mapping, so it is not an MLflow model")
    return document


def mlflow_signature(model_dir: Path) -> dict | None:
    """The MLmodel ``signature`` (inputs/outputs as parsed JSON lists), or ``None``."""
    document = read_mlmodel(model_dir)
    signature = (document or {}).get("signature")
    if not isinstance(signature, dict):
        return None
    parsed = {}
    for key in ("inputs", "outputs", "params"):
        value = signature.get(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                continue
        if value is not None:
            parsed[key] = value
    return parsed or None


def load_model(spec: ModelSpec):
    """Load the model that ``spec`` describes and return the framework's native object.

    Imports the framework library; call it in a worker process. Pickle-based formats
    execute code from the file, so callers check :attr:`ModelSpec.trust_reason` first.
    """
    loader = _LOADERS.get(spec.format)
    if loader is None:
        raise ModelLoadError(f"{spec.path.name} ({spec.format}) has no built-in loader: "
                             "define model_fn in code/inference.py to load it")
    return loader(spec)


# ------------------------------------------------------------------------ detection

_KNOWN_FILES = ("recognised model files: *.joblib, *.pkl, *.pickle (scikit-learn), *.json, "
                "*.ubj, *.model, *.bst (XGBoost), *.txt, *.lgb (LightGBM text), *.onnx, *.pt, "
                "*.pth (PyTorch), saved_model.pb, *.keras, *.h5 (TensorFlow), *-symbol.json + "
                "*.params (MXNet), *.rcf (forestream RCF), or an MLflow MLmodel directory")


def _candidates(model_dir: Path) -> list[ModelSpec]:
    found = []
    for path in sorted(model_dir.iterdir()):
        if path.name.startswith(".") or path.name == "code":
            continue
        if path.is_dir():
            if (path / "saved_model.pb").is_file():
                found.append(ModelSpec("tensorflow", path, "savedmodel"))
            continue
        spec = _classify(path)
        if spec is not None:
            found.append(spec)
    if (model_dir / "saved_model.pb").is_file():
        found = [spec for spec in found if spec.framework != "tensorflow"]
        found.append(ModelSpec("tensorflow", model_dir, "savedmodel"))
    return found


def _classify(path: Path) -> ModelSpec | None:
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
    if suffix == ".onnx":
        return ModelSpec("onnx", path, "onnx")
    if suffix in (".keras", ".h5"):
        return ModelSpec("tensorflow", path, "keras")
    if suffix == ".ubj":
        return ModelSpec("xgboost", path, "xgboost-ubj")
    if suffix == ".json":
        head = _head(path)
        return ModelSpec("xgboost", path, "xgboost-json") if b'"learner"' in head else None
    if suffix in (".txt", ".lgb", ".model", ".bst"):
        if _is_lightgbm_text(_head(path)):
            return ModelSpec("lightgbm", path, "lightgbm-text")
        if suffix in (".model", ".bst"):
            head = _head(path)
            fmt = "xgboost-json" if head.lstrip().startswith(b"{\"") else "xgboost-binary"
            if head.startswith(b"{L") or head.startswith(b"{i") or head.startswith(b"{U"):
                fmt = "xgboost-ubj"
            return ModelSpec("xgboost", path, fmt)
        return None
    if suffix in (".pt", ".pth", ".bin") or name.endswith(".pth.tar"):
        if _is_torchscript(path):
            return ModelSpec("pytorch", path, "torchscript")
        if suffix == ".bin" and not zipfile.is_zipfile(path):
            return None
        return ModelSpec("pytorch", path, "torch-pickle",
                         f"{path.name} (a PyTorch eager save is a pickle: loading it runs code "
                         "stored in the file)")
    return None


def _classify_pickle(path: Path, fmt: str) -> ModelSpec:
    head = _head(path)
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


def _head(path: Path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(_SNIFF_BYTES)


def _is_lightgbm_text(head: bytes) -> bool:
    # LightGBM's text format opens with a line that says "tree", then "version=v<N>".
    return head.split(b"\n", 1)[0].strip() == b"tree"


def _is_torchscript(path: Path) -> bool:
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any("/code/" in name for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _pick_one(matching: list[ModelSpec]) -> ModelSpec:
    if len(matching) == 1:
        return matching[0]
    preferred = [spec for spec in matching if spec.path.name.split(".")[0] == _MODEL_STEM]
    if len(preferred) == 1:
        return preferred[0]
    names = ", ".join(spec.path.name for spec in matching)
    raise InvalidInput(f"found several {matching[0].framework} model files ({names}); keep one, "
                       f"or name the one to serve '{_MODEL_STEM}.<extension>'")


def _refuse_empty(path: Path) -> None:
    if path.is_file() and path.stat().st_size == 0:
        raise InvalidInput(f"model file {path.name} is empty (0 bytes)")


# ---------------------------------------------------------------------------- MLflow

def _mlflow_spec(model_dir: Path) -> ModelSpec:
    """Map an MLflow flavor to the loader of the same framework here."""
    flavors = read_mlmodel(model_dir)["flavors"]

    def file(key: str, flavor: dict) -> Path:
        relative = flavor.get(key)
        if not isinstance(relative, str) or not relative:
            raise InvalidInput(f"MLmodel flavor has no {key!r} entry naming the model file")
        path = (model_dir / relative).resolve()
        if not path.is_relative_to(model_dir.resolve()) or not path.exists():
            raise InvalidInput(f"MLmodel names {relative!r}, which is not inside the model "
                               "directory")
        _refuse_empty(path)
        return path

    if "sklearn" in flavors:
        flavor = flavors["sklearn"]
        fmt = str(flavor.get("serialization_format", "cloudpickle"))
        if fmt not in ("pickle", "cloudpickle"):
            raise InvalidInput(f"MLflow sklearn serialization_format {fmt!r} is not supported; "
                               "accepted: pickle, cloudpickle")
        path = file("pickled_model", flavor)
        return ModelSpec("sklearn", path, fmt, f"{path.relative_to(model_dir.resolve())} (an "
                         f"MLflow {fmt} file: loading it runs code stored in the file)", flavor)
    if "xgboost" in flavors:
        flavor = flavors["xgboost"]
        path = file("data", flavor)
        fmt = {"json": "xgboost-json", "ubj": "xgboost-ubj"}.get(
            str(flavor.get("model_format", "xgb")), "xgboost-binary")
        if _head(path).lstrip().startswith(b'{"'):
            fmt = "xgboost-json"
        return ModelSpec("xgboost", path, fmt, None, flavor)
    if "lightgbm" in flavors:
        flavor = flavors["lightgbm"]
        path = file("data", flavor)
        if _is_lightgbm_text(_head(path)):
            return ModelSpec("lightgbm", path, "lightgbm-text", None, flavor)
        return ModelSpec("lightgbm", path, "cloudpickle", f"{path.name} (an MLflow cloudpickle "
                         "file: loading it runs code stored in the file)", flavor)
    if "onnx" in flavors:
        flavor = flavors["onnx"]
        return ModelSpec("onnx", file("data", flavor), "onnx", None, flavor)
    if "pytorch" in flavors:
        flavor = flavors["pytorch"]
        data = file("model_data", flavor)
        path = data / "model.pth" if data.is_dir() else data
        if not path.is_file():
            raise InvalidInput(f"MLflow pytorch model_data {data.name!r} holds no model.pth")
        if _is_torchscript(path):
            return ModelSpec("pytorch", path, "torchscript", None, flavor)
        return ModelSpec("pytorch", path, "torch-pickle", f"{path.name} (an MLflow PyTorch "
                         "pickle: loading it runs code stored in the file)", flavor)
    for name, key in (("tensorflow", "saved_model_dir"), ("keras", "data")):
        if name in flavors:
            flavor = flavors[name]
            path = file(key, flavor)
            if path.is_dir():
                nested = [p for p in path.rglob("saved_model.pb")]
                if nested:
                    return ModelSpec("tensorflow", nested[0].parent, "savedmodel", None, flavor)
                kept = sorted(path.rglob("*.keras"))
                if kept:
                    return ModelSpec("tensorflow", kept[0], "keras", None, flavor)
                raise InvalidInput(f"MLflow {name} directory {path.name!r} holds no SavedModel "
                                   "or .keras file")
            return ModelSpec("tensorflow", path, "keras", None, flavor)
    names = ", ".join(sorted(flavors))
    raise InvalidInput(f"MLflow flavors {names} are not supported; accepted: sklearn, xgboost, "
                       "lightgbm, onnx, pytorch, tensorflow, keras")


# -------------------------------------------------------------------------- loaders

def _load_joblib(spec: ModelSpec):
    try:
        import joblib
    except ImportError:
        return _load_pickle(spec)
    return joblib.load(spec.path)


def _load_pickle(spec: ModelSpec):
    import pickle

    try:
        with open(spec.path, "rb") as handle:
            return pickle.load(handle)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "cloudpickle":
            raise FrameworkUnavailable(f"{spec.path.name} was written by cloudpickle, which is "
                                       "not installed on this server; pip install cloudpickle"
                                       ) from exc
        raise ModelLoadError(f"{spec.path.name} needs the module {exc.name!r}, which is not "
                             "installed on this server") from exc


def _load_xgboost(spec: ModelSpec):
    import xgboost

    model_class = (spec.mlflow or {}).get("model_class", "xgboost.core.Booster")
    if isinstance(model_class, str) and model_class.startswith("xgboost.sklearn."):
        model = getattr(xgboost, model_class.rsplit(".", 1)[1])()
        model.load_model(str(spec.path))
        return model
    return xgboost.Booster(model_file=str(spec.path))


def _load_lightgbm(spec: ModelSpec):
    import lightgbm

    return lightgbm.Booster(model_file=str(spec.path))


def _load_onnx(spec: ModelSpec):
    import os

    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One request at a time per worker: parallelism comes from more workers, and one
    # thread avoids waking a pool for every small batch.
    options.intra_op_num_threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(spec.path), options,
                                        providers=["CPUExecutionProvider"])


def _load_torchscript(spec: ModelSpec):
    import torch

    return torch.jit.load(str(spec.path), map_location="cpu").eval()


def _load_torch_pickle(spec: ModelSpec):
    import torch

    loaded = torch.load(str(spec.path), map_location="cpu", weights_only=False)
    if isinstance(loaded, torch.nn.Module):
        return loaded.eval()
    raise ModelLoadError(f"{spec.path.name} holds a {type(loaded).__name__} (e.g. a state_dict), "
                         "not a module: add code/inference.py with model_fn(model_dir) that "
                         "builds the module and loads these parameters into it")


def _load_savedmodel(spec: ModelSpec):
    import tensorflow

    return tensorflow.saved_model.load(str(spec.path))


def _load_keras(spec: ModelSpec):
    import keras

    return keras.models.load_model(str(spec.path), compile=False)


def _load_rcf(spec: ModelSpec):
    from forestream.rcf import RandomCutForest

    try:
        return RandomCutForest.from_bytes(spec.path.read_bytes())
    except Exception as exc:  # a corrupt blob fails in many ways; all mean "not a forest"
        raise ModelLoadError(f"{spec.path.name} is not a RandomCutForest.to_bytes() file: "
                             f"{exc}") from exc


_LOADERS = {
    "joblib": _load_joblib,
    "pickle": _load_joblib,
    "cloudpickle": _load_pickle,
    "xgboost-json": _load_xgboost,
    "xgboost-ubj": _load_xgboost,
    "xgboost-binary": _load_xgboost,
    "lightgbm-text": _load_lightgbm,
    "onnx": _load_onnx,
    "torchscript": _load_torchscript,
    "torch-pickle": _load_torch_pickle,
    "savedmodel": _load_savedmodel,
    "keras": _load_keras,
    "rcf": _load_rcf,
}
