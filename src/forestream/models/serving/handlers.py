"""Serving a loaded model: SageMaker's handler contract and forestream's default handlers.

A request flows through four functions, exactly as in SageMaker's inference toolkits::

    model = model_fn(model_dir)                       # once, when the worker starts
    data = input_fn(request_body, content_type)       # bytes -> model input
    prediction = predict_fn(data, model)              # model input -> prediction
    response = output_fn(prediction, accept)          # prediction -> bytes

or through ``transform_fn(model, request_body, content_type, accept)``, which does the
last three at once. ``code/inference.py`` in the artifact may define any of them (each
may take a trailing ``context`` argument, an :class:`InvocationContext`); the ones it
leaves out are filled by the defaults of the model's framework:

* ``model_fn`` — :func:`forestream.models.frameworks.load_model`;
* ``input_fn`` — :func:`forestream.models.serving.codecs.decode` of ``application/json``,
  ``text/csv`` or ``application/x-npy``, then the framework's usual input (a numpy
  array for scikit-learn, a ``DMatrix`` for XGBoost, a tensor for PyTorch);
* ``predict_fn`` — the framework's prediction call. The request's CustomAttributes may
  pick another method, e.g. ``method=predict_proba`` for a classifier's probabilities;
* ``output_fn`` — :func:`forestream.models.serving.codecs.encode` for the ``Accept`` type
  (JSON by default). A forestream RCF model answers as SageMaker's RCF does,
  ``{"scores": [{"score": s}, ...]}``.

A content type outside the three raises
:class:`~forestream.models.errors.UnsupportedContentType` (415) naming it.

This module runs inside the worker process (:mod:`.worker`). The default ``input_fn``
and ``predict_fn`` of each framework, and the model's signature, come from its
:class:`~forestream.models.serving.predictors.Predictor` (:mod:`.predictors`,
:mod:`.tensor_predictors`); :func:`make_predictor` picks one per model.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from ..errors import ImportRefused, ModelLoadError, ModelsError
from ..frameworks import (
    HANDLER_FUNCTIONS,
    INFERENCE_CODE,
    ModelSpec,
    check_available,
    needs_trust,
    resolve_model,
    trust_refusal,
)
from ..frameworks.loaders import framework_version, library_versions, load_model
from ..frameworks.mlflow import mlflow_signature, read_mlmodel
from . import codecs

# ``name as name``: re-exported for code that imports it from here, where it lived before.
from .predictors import (
    LightGBMPredictor,
    Predictor,
    RcfPredictor,
    SklearnPredictor,
    XGBoostPredictor,
)
from .predictors import as_rows as as_rows
from .predictors import worker_threads as worker_threads
from .tensor_predictors import OnnxPredictor, TensorFlowPredictor, TorchPredictor


@dataclass
class InvocationContext:
    """What a handler function that takes a ``context`` argument receives.

    ``custom_attributes`` is the current request's CustomAttributes header;
    setting ``response_custom_attributes`` sends a CustomAttributes header back.
    ``system_properties`` mirrors the SageMaker toolkit's (``model_dir``, ``gpu_id``).
    """

    model_dir: str
    framework: str
    custom_attributes: str | None = None
    response_custom_attributes: str | None = None
    system_properties: dict = field(default_factory=dict)


class InferenceHandler:
    """A loaded model and the handler functions that serve it (see the module docstring).

    Build one with :meth:`load`, then call
    ``invoke(body, content_type, accept, custom_attributes)`` per request; it returns
    ``(response body, response content type, response CustomAttributes or None)``.
    ``invoke`` is bound at load time to the all-defaults path or to the custom-code
    path, so a request pays for no dispatch. Not thread-safe: a worker serves one
    request at a time.
    """

    def __init__(self, model_dir: Path, spec: ModelSpec, model, predictor: Predictor | None,
                 functions: dict, context: InvocationContext, load_seconds: float,
                 load_warnings: list[str]) -> None:
        self.model_dir = model_dir
        self.spec = spec
        self.framework = spec.framework
        self.model = model
        self.predictor = predictor
        self.functions = functions
        self.context = context
        self.load_seconds = load_seconds
        self.load_warnings = load_warnings
        self._takes_context = {name: _takes_context(fn, name) for name, fn in functions.items()}
        # choose the request path once, not per request
        self.invoke = self._invoke_custom if functions.keys() - {"model_fn"} else \
            self._invoke_default

    @classmethod
    def load(cls, model_dir: Path, framework: str | None = None, *,
             trusted: bool) -> InferenceHandler:
        """Load the artifact in ``model_dir``: custom code first, then the model.

        Refuses (:class:`ImportRefused`) an artifact that would execute code unless
        ``trusted``; raises :class:`ModelLoadError` when the model or ``model_fn`` fails.
        """
        model_dir = Path(model_dir)
        spec = resolve_model(model_dir, framework)
        check_available(spec.framework)
        reason = needs_trust(model_dir, spec.framework)
        if reason and not trusted:
            raise ImportRefused(trust_refusal(reason))
        functions = _import_inference_code(model_dir)
        if "transform_fn" in functions and functions.keys() & {"input_fn", "predict_fn",
                                                              "output_fn"}:
            raise ModelLoadError(f"{INFERENCE_CODE.as_posix()} defines transform_fn together "
                                 "with input_fn/predict_fn/output_fn; define one or the other")
        context = InvocationContext(str(model_dir), spec.framework,
                                    system_properties={"model_dir": str(model_dir),
                                                       "gpu_id": None})
        started = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                if "model_fn" in functions:
                    model = _call(functions["model_fn"], _takes_context(
                        functions["model_fn"], "model_fn"), context, str(model_dir))
                else:
                    model = load_model(spec)
            except ModelsError:
                raise
            except Exception as exc:
                traceback.print_exc()
                where = "model_fn" if "model_fn" in functions else spec.path.name
                raise ModelLoadError(f"loading {where} failed: {type(exc).__name__}: {exc}"
                                     ) from exc
        load_seconds = time.perf_counter() - started
        predictor = make_predictor(spec.framework, model)
        default_predict = "transform_fn" not in functions and "predict_fn" not in functions
        if predictor is None and default_predict:
            raise ModelLoadError(f"the model is a {type(model).__module__}."
                                 f"{type(model).__name__}, which the default {spec.framework} "
                                 "predict_fn cannot call: define predict_fn in "
                                 f"{INFERENCE_CODE.as_posix()}")
        notes = [f"{w.category.__name__}: {w.message}" for w in caught][:10]
        return cls(model_dir, spec, model, predictor, functions, context, load_seconds, notes)

    # ----------------------------------------------------------------------- requests
    def _invoke_default(self, body: bytes, content_type: str | None, accept: str | None,
                        custom_attributes: str | None) -> tuple[bytes, str, str | None]:
        """The default handlers, all in one lean call: decode, predict, encode."""
        media = codecs.input_media_type(content_type)
        out_media = codecs.negotiate_accept(accept)
        predictor = self.predictor
        assert predictor is not None  # load() refuses a default path without a predictor
        inputs = predictor.prepare(codecs.decode(body, media))
        prediction = predictor.predict(inputs, requested_method(custom_attributes))
        return (codecs.encode(predictor.document(prediction, out_media), out_media), out_media,
                None)

    def _invoke_custom(self, body: bytes, content_type: str | None, accept: str | None,
                       custom_attributes: str | None) -> tuple[bytes, str, str | None]:
        """Custom handler functions, with defaults for the ones the code leaves out."""
        fns, ctx, takes = self.functions, self.context, self._takes_context
        ctx.custom_attributes = custom_attributes
        ctx.response_custom_attributes = None
        wanted = accept if accept and accept.strip() not in ("*/*", "*") else codecs.JSON
        if "transform_fn" in fns:
            result = _call(fns["transform_fn"], takes["transform_fn"], ctx, self.model, body,
                           content_type or codecs.JSON, wanted)
            out, out_type = _response(result, wanted)
            return out, out_type, ctx.response_custom_attributes
        predictor = self.predictor
        if "input_fn" in fns:
            data = _call(fns["input_fn"], takes["input_fn"], ctx, body,
                         content_type or codecs.JSON)
        else:
            data = codecs.decode(body, codecs.input_media_type(content_type))
            if predictor is not None:
                data = predictor.default_input(data)
        if "predict_fn" in fns:
            prediction = _call(fns["predict_fn"], takes["predict_fn"], ctx, data, self.model)
        else:
            assert predictor is not None  # load() refuses a default predict without one
            prediction = predictor.predict(predictor.prepare(data),
                                           requested_method(custom_attributes))
        if "output_fn" in fns:
            result = _call(fns["output_fn"], takes["output_fn"], ctx, prediction, wanted)
            out, out_type = _response(result, wanted)
        else:
            out_type = codecs.negotiate_accept(accept)
            if predictor is not None:
                prediction = predictor.document(prediction, out_type)
            out = codecs.encode(prediction, out_type)
        return out, out_type, ctx.response_custom_attributes

    def run_sample(self, body: bytes, content_type: str | None,
                   accept: str | None = None) -> tuple[bytes, str, dict | None]:
        """Serve one request as :meth:`invoke` does, and describe the data it saw.

        Returns the response body, its content type, and a signature
        (``{"inputs": [...], "outputs": [...]}``) taken from the decoded sample and the
        prediction, or ``None`` where custom code hides them.
        """
        if self.invoke == self._invoke_default:
            media = codecs.input_media_type(content_type)
            out_media = codecs.negotiate_accept(accept)
            data = codecs.decode(body, media)
            predictor = self.predictor
            assert predictor is not None  # load() refuses a default path without a predictor
            prediction = predictor.predict(predictor.prepare(data), "predict")
            out = codecs.encode(predictor.document(prediction, out_media), out_media)
            return out, out_media, {"inputs": [_describe_value("input", data)],
                                    "outputs": [_describe_value("prediction", prediction)]}
        out, out_type, _ = self.invoke(body, content_type, accept, None)
        try:
            data = codecs.decode(body, codecs.input_media_type(content_type))
        except ModelsError:
            return out, out_type, None
        return out, out_type, {"inputs": [_describe_value("input", data)], "outputs": []}

    # ----------------------------------------------------------------------- metadata
    def signature(self) -> dict:
        """Inputs, outputs and callable methods, from MLmodel when present, else the model."""
        found = self.predictor.signature() if self.predictor is not None else \
            {"inputs": [], "outputs": [], "methods": []}
        found.setdefault("source", "model")
        recorded = mlflow_signature(self.model_dir) if self.model_dir.is_dir() else None
        if recorded:
            found.update(recorded)
            found["source"] = "mlflow"
        return found

    def describe(self) -> dict:
        """What the worker reports when it is ready: framework, versions, signature, timing."""
        versions = library_versions(self.framework)
        document = read_mlmodel(self.model_dir) if self.model_dir.is_dir() else None
        saved_with = {key: value for key, value in (self.spec.mlflow or {}).items()
                      if key.endswith("_version")}
        if document and document.get("mlflow_version"):
            saved_with["mlflow"] = document["mlflow_version"]
        try:
            model_file = self.spec.path.relative_to(self.model_dir).as_posix() or "."
        except ValueError:
            model_file = self.spec.path.name
        return {
            "framework": self.framework,
            "format": self.spec.format,
            "model_file": model_file,
            "framework_version": framework_version(self.framework),
            "python_version": versions["python"],
            "library_versions": versions,
            "signature": self.signature(),
            "load_seconds": round(self.load_seconds, 6),
            "custom_code": bool(self.functions) or (self.model_dir / INFERENCE_CODE).is_file(),
            "handler_functions": sorted(self.functions),
            "saved_with": saved_with,
            "load_warnings": self.load_warnings,
        }


@lru_cache(maxsize=256)
def requested_method(custom_attributes: str | None) -> str:
    """The prediction method a request's CustomAttributes asks for (``"predict"`` by default).

    CustomAttributes is free text; ``method=<name>`` in it, among other ``key=value``
    pairs separated by ``;`` or ``,``, selects the method.

    >>> requested_method("trace=abc; method=predict_proba")
    'predict_proba'
    """
    if custom_attributes:
        for part in custom_attributes.replace(",", ";").split(";"):
            key, sep, value = part.partition("=")
            if sep and key.strip().lower() == "method" and value.strip():
                return value.strip()
    return "predict"


def make_predictor(framework: str, model) -> Predictor | None:
    """The default predictor for ``model``, chosen by its type, or ``None`` if none fits."""
    kind = f"{type(model).__module__}.{type(model).__name__}"
    scores = hasattr(model, "score_points") or hasattr(model, "anomaly_score")
    if scores and (framework == "forestream-rcf" or kind.startswith("forestream.rcf.")):
        return RcfPredictor(model)
    if kind.startswith("xgboost.") and kind.endswith(".Booster"):
        return XGBoostPredictor(model)
    if kind.startswith("lightgbm.") and kind.endswith(".Booster"):
        return LightGBMPredictor(model)
    if kind.startswith("onnxruntime."):
        return OnnxPredictor(model)
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module):
        return TorchPredictor(model)
    if framework == "tensorflow" or kind.startswith(("keras.", "tensorflow.")):
        return TensorFlowPredictor(model)
    if callable(getattr(model, "predict", None)):
        return SklearnPredictor(model)
    return None


# --------------------------------------------------------------------------- helpers

def _import_inference_code(model_dir: Path) -> dict:
    """Import ``code/inference.py`` (as module ``inference``) and collect its handlers."""
    path = model_dir / INFERENCE_CODE
    if not path.is_file():
        return {}
    code_dir = str(path.parent)
    if code_dir not in sys.path:
        sys.path.insert(0, code_dir)  # so inference.py can import its sibling modules
    module_spec = importlib.util.spec_from_file_location("inference", path)
    if module_spec is None or module_spec.loader is None:  # not for a .py file, in practice
        raise ModelLoadError(f"{INFERENCE_CODE.as_posix()} cannot be imported")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["inference"] = module
    try:
        module_spec.loader.exec_module(module)
    except Exception as exc:
        traceback.print_exc()
        raise ModelLoadError(f"{INFERENCE_CODE.as_posix()} failed to import: "
                             f"{type(exc).__name__}: {exc}") from exc
    return {name: getattr(module, name) for name in HANDLER_FUNCTIONS
            if callable(getattr(module, name, None))}


_ARITY = {"model_fn": 1, "input_fn": 2, "predict_fn": 2, "output_fn": 2, "transform_fn": 4}


def _takes_context(fn, name: str) -> bool:
    """Whether a handler takes the optional trailing ``context`` argument."""
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY,
                                                      p.POSITIONAL_OR_KEYWORD)]
    if any(p.kind == p.VAR_POSITIONAL for p in parameters):
        return False
    return len(positional) > _ARITY[name]


def _call(fn, takes_context: bool, context: InvocationContext, *args):
    return fn(*args, context) if takes_context else fn(*args)


def _response(result, accept: str) -> tuple[bytes, str]:
    """Normalise what output_fn/transform_fn returned to ``(bytes, content type)``."""
    content_type = None
    if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], str):
        result, content_type = result
    concrete = accept if "*" not in accept and "," not in accept else codecs.JSON
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result), content_type or concrete
    if isinstance(result, str):
        return result.encode("utf-8"), content_type or concrete
    media = codecs.negotiate_accept(content_type or accept)
    return codecs.encode(result, media), media


def _describe_value(name: str, value) -> dict:
    """A tensor-spec style description (dtype, shape with -1 for rows) of a sample value."""
    if isinstance(value, dict):
        return {"name": name, "type": "named",
                "fields": {str(key): _describe_value(str(key), item)["shape"]
                           for key, item in value.items()}, "shape": None}
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return {"name": name, "type": "records", "columns": sorted(map(str, value[0])),
                "shape": [-1, len(value[0])]}
    try:
        array = codecs.to_numpy(value)
    except ModelsError:
        return {"name": name, "type": type(value).__name__, "shape": None}
    shape = [-1, *array.shape[1:]] if array.ndim else []
    return {"name": name, "dtype": str(array.dtype), "shape": shape}
