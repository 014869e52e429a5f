"""What a model artifact is: its framework, the file to load, and whether loading runs code.

An *artifact* is a directory in SageMaker's layout — model files at the root, optional
custom inference code in ``code/inference.py`` — or an MLflow model directory (one with
an ``MLmodel`` file). This module looks at the files, never executes them:

* :func:`detect_framework` names the framework from file names and a sniff of their
  first bytes (:mod:`forestream.models.frameworks.files` classifies each file, and
  :mod:`forestream.models.frameworks.mlflow` reads an ``MLmodel`` file);
* :func:`resolve_model` says exactly which file or directory holds the model, in which
  format, and why loading it would execute code (:attr:`ModelSpec.trust_reason`);
* :func:`needs_trust` answers the safety question an importer must ask first;
* :func:`check_available` raises :class:`~forestream.models.errors.FrameworkUnavailable`
  when the framework's library cannot be imported here, without importing it;
* :func:`~forestream.models.frameworks.loaders.load_model` and
  :func:`~forestream.models.frameworks.loaders.library_versions` (in :mod:`.loaders`,
  and importable from here) import the library and load the model. They are meant for
  the worker process (:mod:`forestream.models.serving.worker`): nothing in the serving process
  ever unpickles a model.

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
from pathlib import Path

from ..errors import FrameworkUnavailable, InvalidInput
from .files import KNOWN_FILES, ModelSpec, classify_file, refuse_empty

# ``name as name``: re-exported for code that imports it from here, where it lived before.
from .loaders import framework_version as framework_version
from .loaders import library_versions as library_versions
from .loaders import load_model as load_model
from .mlflow import mlflow_signature as mlflow_signature
from .mlflow import mlflow_spec
from .mlflow import read_mlmodel as read_mlmodel

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

_MODEL_STEM = "model"  # the name that picks one of several model files


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
        found = classify_file(model_dir)
        if found is None:
            raise InvalidInput(f"{model_dir.name} is not a model file this server recognises; "
                               f"{KNOWN_FILES}")
        candidates = [found]
    elif model_dir.is_dir():
        if (model_dir / "MLmodel").is_file():
            spec = mlflow_spec(model_dir)
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
        present = ", ".join(sorted(p.name for p in model_dir.iterdir())) \
            if model_dir.is_dir() else model_dir.name
        wanted = f"no {framework} model file" if framework else "no model file"
        raise InvalidInput(f"{wanted} found in the artifact (files: {present or 'none'}); "
                           f"{KNOWN_FILES}")
    spec = _pick_one(matching)
    refuse_empty(spec.path)
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


# ------------------------------------------------------------------------ detection

def _candidates(model_dir: Path) -> list[ModelSpec]:
    found = []
    for path in sorted(model_dir.iterdir()):
        if path.name.startswith(".") or path.name == "code":
            continue
        if path.is_dir():
            if (path / "saved_model.pb").is_file():
                found.append(ModelSpec("tensorflow", path, "savedmodel"))
            continue
        spec = classify_file(path)
        if spec is not None:
            found.append(spec)
    if (model_dir / "saved_model.pb").is_file():
        found = [spec for spec in found if spec.framework != "tensorflow"]
        found.append(ModelSpec("tensorflow", model_dir, "savedmodel"))
    return found


def _pick_one(matching: list[ModelSpec]) -> ModelSpec:
    if len(matching) == 1:
        return matching[0]
    preferred = [spec for spec in matching if spec.path.name.split(".")[0] == _MODEL_STEM]
    if len(preferred) == 1:
        return preferred[0]
    names = ", ".join(spec.path.name for spec in matching)
    raise InvalidInput(f"found several {matching[0].framework} model files ({names}); keep one, "
                       f"or name the one to serve '{_MODEL_STEM}.<extension>'")
