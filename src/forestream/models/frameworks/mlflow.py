"""MLflow model directories: the ``MLmodel`` file, its signature, and the file it names.

An MLflow model directory holds an ``MLmodel`` YAML file whose ``flavors`` say which
library saved the model and where the file is. :func:`read_mlmodel` parses it,
:func:`mlflow_signature` reads the recorded input/output signature, and
:func:`mlflow_spec` maps a flavor (sklearn, xgboost, lightgbm, onnx, pytorch,
tensorflow, keras) to the :class:`~forestream.models.frameworks.files.ModelSpec` that this
server's loader of the same framework reads. MLflow itself is never imported.

(Named ``mlflow_format`` so that it never shadows the ``mlflow`` package.)
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InvalidInput
from .files import (
    ModelSpec,
    is_lightgbm_text,
    is_torchscript,
    read_head,
    refuse_empty,
    skops_spec,
)


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


def mlflow_spec(model_dir: Path) -> ModelSpec:
    """Map an MLflow flavor to the loader of the same framework here."""
    document = read_mlmodel(model_dir)
    if document is None:
        raise InvalidInput("the model directory has no MLmodel file, so it is not an MLflow "
                           "model")
    flavors = document["flavors"]

    def file(key: str, flavor: dict) -> Path:
        relative = flavor.get(key)
        if not isinstance(relative, str) or not relative:
            raise InvalidInput(f"MLmodel flavor has no {key!r} entry naming the model file")
        path = (model_dir / relative).resolve()
        if not path.is_relative_to(model_dir.resolve()) or not path.exists():
            raise InvalidInput(f"MLmodel names {relative!r}, which is not inside the model "
                               "directory")
        refuse_empty(path)
        return path

    if "sklearn" in flavors:
        flavor = flavors["sklearn"]
        fmt = str(flavor.get("serialization_format", "cloudpickle"))
        if fmt not in ("pickle", "cloudpickle", "skops"):
            raise InvalidInput(f"MLflow sklearn serialization_format {fmt!r} is not supported; "
                               "accepted: skops, pickle, cloudpickle")
        path = file("pickled_model", flavor)
        if fmt == "skops":
            return skops_spec(path, flavor)
        return ModelSpec("sklearn", path, fmt, f"{path.relative_to(model_dir.resolve())} (an "
                         f"MLflow {fmt} file: loading it runs code stored in the file)", flavor)
    if "xgboost" in flavors:
        flavor = flavors["xgboost"]
        path = file("data", flavor)
        fmt = {"json": "xgboost-json", "ubj": "xgboost-ubj"}.get(
            str(flavor.get("model_format", "xgb")), "xgboost-binary")
        if read_head(path).lstrip().startswith(b'{"'):
            fmt = "xgboost-json"
        return ModelSpec("xgboost", path, fmt, None, flavor)
    if "lightgbm" in flavors:
        flavor = flavors["lightgbm"]
        path = file("data", flavor)
        if is_lightgbm_text(read_head(path)):
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
        if is_torchscript(path):
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
