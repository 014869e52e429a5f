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
* ``input_fn`` — :func:`forestream.models.codecs.decode` of ``application/json``,
  ``text/csv`` or ``application/x-npy``, then the framework's usual input (a numpy
  array for scikit-learn, a ``DMatrix`` for XGBoost, a tensor for PyTorch);
* ``predict_fn`` — the framework's prediction call. The request's CustomAttributes may
  pick another method, e.g. ``method=predict_proba`` for a classifier's probabilities;
* ``output_fn`` — :func:`forestream.models.codecs.encode` for the ``Accept`` type
  (JSON by default). A forestream RCF model answers as SageMaker's RCF does,
  ``{"scores": [{"score": s}, ...]}``.

A content type outside the three raises
:class:`~forestream.models.errors.UnsupportedContentType` (415) naming it.

This module runs inside the worker process (:mod:`forestream.models.worker`). Its second
half holds one :class:`Predictor` per framework: the default ``input_fn`` and
``predict_fn`` of that framework, and the model's signature.
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

import numpy as np

from . import codecs
from .errors import (
    ImportRefused,
    InvalidInput,
    ModelInvocationError,
    ModelLoadError,
    ModelsError,
)
from .frameworks import (
    HANDLER_FUNCTIONS,
    INFERENCE_CODE,
    ModelSpec,
    check_available,
    framework_version,
    library_versions,
    load_model,
    mlflow_signature,
    needs_trust,
    read_mlmodel,
    resolve_model,
    trust_refusal,
)


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
            prediction = self.predictor.predict(self.predictor.prepare(data), "predict")
            out = codecs.encode(self.predictor.document(prediction, out_media), out_media)
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




# ======================================================================== predictors

def as_rows(array: np.ndarray, n_features: int | None) -> np.ndarray:
    """A batch of rows from decoded data: a single row becomes one row, a scalar ``[[x]]``.

    A flat list is one row — unless the model takes one feature, when it is a column of
    single-value rows. Arrays of rank 2 or more are already batches.
    """
    if array.ndim >= 2:
        return array
    if array.ndim == 1:
        return array[:, None] if n_features == 1 and array.shape[0] != 1 else array[None, :]
    return array.reshape(1, 1)


def worker_threads() -> int:
    """Threads one prediction may use: ``OMP_NUM_THREADS`` (the worker sets it; default 1).

    A worker serves one request at a time, and callers get parallelism from more
    workers, so a pool of threads per prediction would only compete with them.
    """
    import os

    try:
        return max(1, int(os.environ.get("OMP_NUM_THREADS") or 1))
    except ValueError:
        return 1


class Predictor:
    """The default ``input_fn``/``predict_fn`` of one framework, and the model's signature.

    ``prepare`` turns decoded request data into the model's input; ``default_input`` is
    what the framework's SageMaker container hands a custom ``predict_fn`` (a ``DMatrix``
    for XGBoost, a tensor for PyTorch, else the prepared array); ``predict`` calls the
    method a request names; ``document`` shapes a prediction for a response type.
    """

    def __init__(self, model, calls: dict) -> None:
        self.model = model
        self._calls = calls
        self.methods = tuple(calls)

    def prepare(self, data):
        return data

    def default_input(self, data):
        return self.prepare(data)

    def predict(self, inputs, method: str = "predict"):
        try:
            call = self._calls[method]
        except KeyError:
            raise InvalidInput(f"method {method!r} is not available for this "
                               f"{type(self.model).__name__} model; available: "
                               f"{', '.join(self.methods)}") from None
        return call(inputs)

    def document(self, prediction, media: str):
        return prediction

    def signature(self) -> dict:
        return {"inputs": [], "outputs": [], "methods": list(self.methods)}

    def _frame(self, data, feature_names: list[str] | None):
        """Named features (records or columns) as a DataFrame in the model's column order."""
        try:
            import pandas
        except ImportError as exc:
            raise ModelInvocationError("named features need pandas on the server; send rows "
                                       "of values in the model's feature order") from exc
        if isinstance(data, dict):
            data = {key: np.atleast_1d(np.asarray(value)) for key, value in data.items()}
        frame = pandas.DataFrame(data)
        if feature_names:
            missing = [name for name in feature_names if name not in frame.columns]
            if missing:
                raise ModelInvocationError(f"the request lacks features {missing}; the model "
                                           f"takes {feature_names}")
            frame = frame[feature_names]
        return frame


_SKLEARN_METHODS = ("predict", "predict_proba", "predict_log_proba", "decision_function",
                    "score_samples", "transform")


class SklearnPredictor(Predictor):
    """scikit-learn estimators and pipelines (and any object with a ``predict`` method).

    scikit-learn validates its input on every call, which costs far more than the
    arithmetic of a small model on one row. Two shortcuts keep results identical:

    * the worker sets scikit-learn's ``assume_finite``, and this predictor checks float
      input for NaN/inf itself (one vectorised ``isfinite``); input that is not
      all-finite, or not a plain float array, goes to scikit-learn with full validation,
      so its errors (and NaN support) are unchanged;
    * for a few common estimators — linear models and tree ensembles, by exact type —
      :func:`_sklearn_shortcuts` computes ``predict`` and friends from the fitted
      attributes as scikit-learn itself does, for a finite float64 array of the right
      width. Each shortcut is checked against scikit-learn on probe rows when the model
      loads and dropped if it disagrees in any bit beyond 1e-12.
    """

    def __init__(self, model) -> None:
        calls = {}
        for name in _SKLEARN_METHODS:
            call = getattr(model, name, None)  # available_if hides e.g. SVC.predict_proba
            if callable(call):
                calls[name] = call
        super().__init__(model, calls)
        n_features = getattr(model, "n_features_in_", None)
        self.n_features = int(n_features) if isinstance(n_features, (int, np.integer)) else None
        names = getattr(model, "feature_names_in_", None)
        self.feature_names = [str(name) for name in names] if names is not None else None
        self._full_validation = _sklearn_fast_path()
        # n_jobs decides how many threads a prediction uses, never its result.
        try:
            if "n_jobs" in model.get_params(deep=False):
                model.set_params(n_jobs=worker_threads() if worker_threads() > 1 else None)
        except Exception:  # not a scikit-learn estimator: leave it as it is
            pass
        self._shortcuts = _checked_shortcuts(model, self.n_features)
        # A ColumnTransformer that picks columns by name needs a DataFrame, even when the
        # request arrived as plain CSV or JSON rows in the model's column order.
        self._rows_as_frame = bool(self.feature_names) and _selects_columns_by_name(model)

    def prepare(self, data):
        if isinstance(data, np.ndarray):
            rows = as_rows(data, self.n_features)
            if self._rows_as_frame and rows.ndim == 2 and rows.shape[1] == self.n_features:
                return self._frame(dict(zip(self.feature_names, rows.T, strict=True)),
                                   self.feature_names)
            return rows
        if isinstance(data, (list, dict)):
            frame = self._frame(data, self.feature_names)
            return frame if self.feature_names else frame.to_numpy()
        return data

    def predict(self, inputs, method: str = "predict"):
        if type(inputs) is np.ndarray and inputs.dtype.kind == "f" and np.isfinite(inputs).all():
            shortcut = self._shortcuts.get(method)
            if shortcut is not None and inputs.dtype == np.float64 and inputs.ndim == 2 \
                    and inputs.shape[1] == self.n_features:
                return shortcut(inputs)
            return super().predict(inputs, method)
        with self._full_validation():
            return super().predict(inputs, method)

    def signature(self) -> dict:
        inputs, outputs = [], []
        if self.n_features is not None:
            spec = {"name": "input", "shape": [-1, self.n_features]}
            if self.feature_names:
                spec["feature_names"] = self.feature_names
            inputs.append(spec)
        classes = getattr(self.model, "classes_", None)
        if isinstance(classes, np.ndarray) and classes.ndim == 1:
            outputs.append({"name": "predict", "dtype": str(classes.dtype), "shape": [-1],
                            "classes": classes.tolist()})
            if "predict_proba" in self.methods:
                outputs.append({"name": "predict_proba", "dtype": "float64",
                                "shape": [-1, len(classes)]})
        elif "predict" in self.methods:
            outputs.append({"name": "predict", "dtype": "float64", "shape": [-1]})
        return {"inputs": inputs, "outputs": outputs, "methods": list(self.methods)}


def _selects_columns_by_name(model) -> bool:
    """Whether ``model`` holds a ColumnTransformer (which may select columns by name)."""
    try:
        parts = [model, *model.get_params(deep=True).values()]
    except Exception:
        return False
    return any(type(part).__name__ == "ColumnTransformer" for part in parts)


def _sklearn_fast_path():
    """Turn on scikit-learn's assume_finite; return the context that turns it back off."""
    import contextlib

    try:
        import sklearn
    except ImportError:
        return contextlib.nullcontext
    sklearn.set_config(assume_finite=True)
    # Rows arrive as arrays, so a model fitted on a DataFrame would warn on every request.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    return lambda: sklearn.config_context(assume_finite=False)


def _sklearn_shortcuts(model) -> dict:
    """Exact fast equivalents of ``predict`` (and friends) for common estimators.

    Each function takes a finite, C-ordered float64 array of ``n_features_in_`` columns
    and performs the same arithmetic, in the same order, as the estimator's method
    after its input validation: ``X @ coef_.T + intercept_`` for linear models, and the
    per-tree ``tree_.predict`` on float32 input summed in estimator order for forests.
    """
    try:
        from sklearn import ensemble, linear_model, svm, tree
        from sklearn.utils.extmath import softmax
    except ImportError:
        return {}
    from scipy.special import expit

    kind = type(model)
    if getattr(model, "n_outputs_", 1) != 1:
        return {}
    forests = (ensemble.RandomForestClassifier, ensemble.ExtraTreesClassifier,
               tree.DecisionTreeClassifier, ensemble.RandomForestRegressor,
               ensemble.ExtraTreesRegressor, tree.DecisionTreeRegressor)
    if kind in forests:
        trees = [e.tree_ for e in model.estimators_] if hasattr(model, "estimators_") \
            else [model.tree_]
        single = not hasattr(model, "estimators_")
        if hasattr(model, "classes_"):
            classes, n_classes = model.classes_, int(model.n_classes_)

            def proba(X):
                X32 = np.ascontiguousarray(X, dtype=np.float32)
                if single:
                    return trees[0].predict(X32)[:, :n_classes]
                total = np.zeros((X.shape[0], n_classes))
                for t in trees:
                    total += t.predict(X32)[:, :n_classes]
                total /= len(trees)
                return total

            return {"predict": lambda X: classes.take(np.argmax(proba(X), axis=1), axis=0),
                    "predict_proba": proba, "predict_log_proba": lambda X: np.log(proba(X))}

        def regress(X):
            X32 = np.ascontiguousarray(X, dtype=np.float32)
            if single:
                return trees[0].predict(X32)[:, 0]
            total = np.zeros(X.shape[0])
            for t in trees:
                total += t.predict(X32)[:, 0]
            total /= len(trees)
            return total

        return {"predict": regress}
    linear_classifiers = (linear_model.LogisticRegression, linear_model.RidgeClassifier,
                          linear_model.SGDClassifier, linear_model.Perceptron, svm.LinearSVC)
    if kind in linear_classifiers:
        coef_t = model.coef_.T if model.coef_.ndim == 2 else model.coef_
        intercept, classes = model.intercept_, model.classes_

        def decision(X):
            scores = X @ coef_t + intercept
            return scores.reshape(-1) if scores.ndim > 1 and scores.shape[1] == 1 else scores

        def predict(X):
            scores = decision(X)
            indices = (scores > 0).astype(np.intp) if scores.ndim == 1 else scores.argmax(axis=1)
            return classes.take(indices, axis=0)

        shortcuts = {"predict": predict, "decision_function": decision}
        if kind is linear_model.LogisticRegression:
            def proba(X):
                scores = decision(X)
                if scores.ndim == 1:
                    positive = expit(scores)
                    return np.stack([1 - positive, positive], axis=1)
                return softmax(scores, copy=False)

            shortcuts["predict_proba"] = proba
            shortcuts["predict_log_proba"] = lambda X: np.log(proba(X))
        return shortcuts
    if kind in (linear_model.LinearRegression, linear_model.Ridge, linear_model.Lasso,
                linear_model.ElasticNet):
        coef, intercept = model.coef_, model.intercept_
        if coef.ndim == 1:
            return {"predict": lambda X: X @ coef + intercept}
        return {"predict": lambda X: X @ coef.T + intercept}
    return {}


def _checked_shortcuts(model, n_features: int | None) -> dict:
    """The shortcuts that reproduce scikit-learn on probe rows (within 1e-12)."""
    if not n_features:
        return {}
    try:
        shortcuts = _sklearn_shortcuts(model)
    except Exception:  # an estimator with unusual fitted attributes: no shortcut
        return {}
    probe = np.random.default_rng(20240601).normal(scale=3.0, size=(7, n_features))
    kept = {}
    for method, shortcut in shortcuts.items():
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")  # log(0) of a pure leaf, on probe rows
                expected = getattr(model, method)(probe)
                got = shortcut(probe.copy())
        except Exception:
            continue
        expected, got = np.asarray(expected), np.asarray(got)
        if expected.shape != got.shape or expected.dtype != got.dtype:
            continue
        same = np.array_equal(expected, got) if expected.dtype.kind not in "fc" else \
            np.allclose(expected, got, rtol=0.0, atol=1e-12, equal_nan=True)
        if same:
            kept[method] = shortcut
    return kept


class XGBoostPredictor(Predictor):
    """An ``xgboost.Booster``: ``predict`` (transformed) or ``predict_margin`` (raw margin).

    Arrays go through ``inplace_predict`` (no ``DMatrix`` per request); a ``DMatrix`` from
    custom ``input_fn`` code goes through ``Booster.predict``. NaN is a missing value, so
    an empty CSV cell is one too, as in SageMaker's XGBoost container.
    """

    def __init__(self, booster) -> None:
        import json

        import xgboost

        self._xgboost = xgboost
        booster.set_param({"nthread": worker_threads()})
        super().__init__(booster, {"predict": self._value, "predict_margin": self._margin})
        self.n_features = booster.num_features()
        self.feature_names = list(booster.feature_names or []) or None
        learner = json.loads(booster.save_config())["learner"]
        self.objective = learner["objective"]["name"]
        self.num_class = int(float(learner["learner_model_param"].get("num_class", 0)))

    def prepare(self, data):
        if isinstance(data, np.ndarray):
            rows = as_rows(data, self.n_features)
            return rows.astype(np.float64) if rows.dtype.kind not in "biuf" else rows
        if isinstance(data, (list, dict)):
            return self._frame(data, self.feature_names)
        return data

    def default_input(self, data):
        prepared = self.prepare(data)
        if isinstance(prepared, self._xgboost.DMatrix):
            return prepared
        return self._xgboost.DMatrix(prepared, feature_names=self.feature_names)

    def _value(self, inputs):
        if isinstance(inputs, self._xgboost.DMatrix):
            return self.model.predict(inputs)
        return self.model.inplace_predict(inputs)

    def _margin(self, inputs):
        if isinstance(inputs, self._xgboost.DMatrix):
            return self.model.predict(inputs, output_margin=True)
        return self.model.inplace_predict(inputs, predict_type="margin")

    def signature(self) -> dict:
        spec = {"name": "input", "dtype": "float32", "shape": [-1, self.n_features]}
        if self.feature_names:
            spec["feature_names"] = self.feature_names
        shape = [-1, self.num_class] if self.objective == "multi:softprob" else [-1]
        return {"inputs": [spec], "outputs": [{"name": "predict", "dtype": "float32",
                                               "shape": shape, "objective": self.objective}],
                "methods": list(self.methods)}


class LightGBMPredictor(Predictor):
    """A ``lightgbm.Booster``: ``predict`` (transformed) or ``predict_raw`` (raw scores)."""

    def __init__(self, booster) -> None:
        threads = worker_threads()
        super().__init__(booster, {
            "predict": lambda rows: booster.predict(rows, num_threads=threads),
            "predict_raw": lambda rows: booster.predict(rows, raw_score=True,
                                                        num_threads=threads),
        })
        self.n_features = booster.num_feature()
        self.feature_names = list(booster.feature_name())
        self.objective = str(booster.params.get("objective", "")) or None
        self.outputs_per_row = booster.num_model_per_iteration()

    def prepare(self, data):
        if isinstance(data, np.ndarray):
            rows = as_rows(data, self.n_features)
            return rows.astype(np.float64) if rows.dtype.kind not in "biuf" else rows
        if isinstance(data, (list, dict)):
            return self._frame(data, self.feature_names)
        return data

    def signature(self) -> dict:
        shape = [-1, self.outputs_per_row] if self.outputs_per_row > 1 else [-1]
        return {"inputs": [{"name": "input", "dtype": "float64", "shape": [-1, self.n_features],
                            "feature_names": self.feature_names}],
                "outputs": [{"name": "predict", "dtype": "float64", "shape": shape,
                             "objective": self.objective}],
                "methods": list(self.methods)}


_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64,
               "tensor(float16)": np.float16, "tensor(int64)": np.int64,
               "tensor(int32)": np.int32, "tensor(int8)": np.int8, "tensor(uint8)": np.uint8,
               "tensor(bool)": np.bool_, "tensor(string)": object}


class OnnxPredictor(Predictor):
    """An ONNX Runtime session: rows go to its input, cast to the input's element type.

    ``predict`` returns the first output, ``predict_proba`` the first output whose name
    says "prob" (skl2onnx classifiers), and ``method=<output name>`` any output. A model
    with several inputs takes ``{"inputs": {"<input name>": values, ...}}``; a list of
    records works when the column names are the input names (skl2onnx per-column
    inputs). ZipMap outputs (a list of ``{class: probability}``) become a 2-D array.
    """

    def __init__(self, session) -> None:
        from functools import partial

        self._inputs = [(i.name, _ONNX_TYPES.get(i.type, np.float32), i.shape, i.type)
                        for i in session.get_inputs()]
        self._outputs = [(o.name, o.type, o.shape) for o in session.get_outputs()]
        names = [name for name, _, _ in self._outputs]
        calls = {"predict": partial(self._run, names[0])}
        probabilities = [name for name in names if "prob" in name.lower()]
        if probabilities:
            calls["predict_proba"] = partial(self._run, probabilities[0])
        for name in names:
            calls.setdefault(name, partial(self._run, name))
        super().__init__(session, calls)
        shape = self._inputs[0][2]
        self.n_features = shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None

    def prepare(self, data):
        if isinstance(data, list):  # records: one column per named input
            data = {key: [row.get(key) for row in data] for key in data[0]}
        if isinstance(data, dict):
            missing = [name for name, *_ in self._inputs if name not in data]
            if missing:
                raise ModelInvocationError(f"the request lacks inputs {missing}; the model "
                                           f"takes {[name for name, *_ in self._inputs]}")
            return {name: _onnx_cast(codecs.rows_array(data[name]), dtype, shape)
                    for name, dtype, shape, _ in self._inputs}
        if len(self._inputs) != 1:
            names = [name for name, *_ in self._inputs]
            raise ModelInvocationError(f"the model has inputs {names}: send "
                                       '{"inputs": {"<name>": values, ...}} with one entry each')
        name, dtype, shape, _ = self._inputs[0]
        return {name: _onnx_cast(as_rows(codecs.to_numpy(data), self.n_features), dtype, shape)}

    def _run(self, output: str, feed: dict):
        result = self.model.run([output], feed)[0]
        if isinstance(result, list) and result and isinstance(result[0], dict):
            keys = list(result[0])
            return np.array([[row[key] for key in keys] for row in result])
        return result

    def signature(self) -> dict:
        def spec(name, type_name, shape):
            dims = [dim if isinstance(dim, int) else -1 for dim in shape or []]
            return {"name": name, "type": type_name, "shape": dims}

        return {"inputs": [spec(name, type_name, shape)
                           for name, _, shape, type_name in self._inputs],
                "outputs": [spec(name, type_name, shape)
                            for name, type_name, shape in self._outputs],
                "methods": list(self.methods)}


def _onnx_cast(array: np.ndarray, dtype, shape) -> np.ndarray:
    if len(shape or ()) == 2 and array.ndim == 1:
        array = array[:, None]
    if dtype is object:
        return array.astype(str).astype(object)
    return np.ascontiguousarray(array, dtype=dtype)


class TorchPredictor(Predictor):
    """A PyTorch module (TorchScript or eager): rows become a tensor of the module's dtype.

    As in SageMaker's PyTorch container, numbers are given to the module as its
    floating-point type (the dtype of its first floating parameter, float32 when it has
    none); custom ``input_fn`` code may hand over any tensor instead. Inference runs
    under ``torch.inference_mode()``; the output tensor (or tuple/dict of tensors)
    becomes numpy.
    """

    def __init__(self, module) -> None:
        import torch

        self._torch = torch
        torch.set_num_threads(worker_threads())
        super().__init__(module, {"predict": self._forward})
        self.dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()),
                          torch.float32)
        self._numpy_dtype = torch.empty(0, dtype=self.dtype).numpy().dtype

    def prepare(self, data):
        if isinstance(data, self._torch.Tensor):
            return data
        if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
            raise ModelInvocationError("a PyTorch model takes numeric rows (a list of rows, a "
                                       "CSV body or an .npy array)")
        rows = as_rows(data, None)
        return self._torch.from_numpy(np.ascontiguousarray(rows, dtype=self._numpy_dtype))

    def _forward(self, tensor):
        with self._torch.inference_mode():
            return _tensors_to_numpy(self.model(tensor))

    def signature(self) -> dict:
        inputs = []
        schema = getattr(getattr(self.model, "forward", None), "schema", None)
        if schema is not None:  # TorchScript keeps the typed signature of forward()
            inputs = [{"name": argument.name, "type": str(argument.type), "shape": None}
                      for argument in schema.arguments[1:]]
        return {"inputs": inputs, "outputs": [], "methods": list(self.methods),
                "dtype": str(self.dtype).replace("torch.", "")}


def _tensors_to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, (tuple, list)):
        return [_tensors_to_numpy(item) for item in value]
    if isinstance(value, dict):
        return {key: _tensors_to_numpy(item) for key, item in value.items()}
    return value


class TensorFlowPredictor(Predictor):
    """A Keras model (``.keras``) or a SavedModel's ``serving_default`` signature.

    Rows become a tensor of the input's dtype. A SavedModel with several outputs
    answers ``predict`` with all of them (``{name: values}``) and ``method=<output
    name>`` with one; a single output answers with its values.
    """

    def __init__(self, model) -> None:
        import tensorflow

        self._tf = tensorflow
        signatures = getattr(model, "signatures", None)
        if hasattr(model, "layers") and callable(model):
            self._serving = None
            inputs = getattr(model, "inputs", None) or []
            self._input_specs = {getattr(i, "name", "input"): (_dtype_name(i), tuple(i.shape))
                                 for i in inputs}
            super().__init__(model, {"predict": self._call_keras})
        elif signatures is not None and "serving_default" in signatures:
            self._serving = signatures["serving_default"]
            self._input_specs = {name: (spec.dtype.name, tuple(spec.shape))
                                 for name, spec in self._serving.structured_input_signature[1]
                                 .items()}
            outputs = sorted(self._serving.structured_outputs)
            calls = {"predict": lambda feed: self._call_serving(feed, None)}
            for name in outputs:
                calls[name] = lambda feed, name=name: self._call_serving(feed, name)
            super().__init__(model, calls)
            self._output_names = outputs
        else:
            raise ModelLoadError("the SavedModel has no 'serving_default' signature to call; "
                                 "export it with one (model.export() or tf.saved_model.save "
                                 "with signatures=...)")

    def prepare(self, data):
        names = list(self._input_specs)
        if isinstance(data, dict):
            return {name: self._tensor(codecs.rows_array(data[name]), name) for name in names
                    if name in data}
        if isinstance(data, np.ndarray):
            if len(names) > 1:
                raise ModelInvocationError(f"the model has inputs {names}: send "
                                           '{"inputs": {"<name>": values, ...}}')
            return {names[0] if names else "input": self._tensor(as_rows(data, None),
                                                                 names[0] if names else None)}
        return data

    def _tensor(self, array: np.ndarray, name: str | None):
        dtype = self._input_specs.get(name, ("float32", ()))[0]
        return self._tf.convert_to_tensor(array, dtype=dtype)

    def _call_keras(self, feed):
        tensors = list(feed.values()) if isinstance(feed, dict) else [feed]
        result = self.model(tensors[0] if len(tensors) == 1 else tensors, training=False)
        return _tensors_to_numpy_tf(result)

    def _call_serving(self, feed, output: str | None):
        result = self._serving(**feed)
        if output is not None:
            return result[output].numpy()
        if len(result) == 1:
            return next(iter(result.values())).numpy()
        return {key: value.numpy() for key, value in result.items()}

    def signature(self) -> dict:
        inputs = [{"name": name, "dtype": dtype, "shape": [d if isinstance(d, int) else -1
                                                           for d in shape]}
                  for name, (dtype, shape) in self._input_specs.items()]
        outputs = [{"name": name} for name in getattr(self, "_output_names", [])]
        return {"inputs": inputs, "outputs": outputs, "methods": list(self.methods)}


def _dtype_name(tensor) -> str:
    """``"float32"`` from a Keras tensor (dtype is a string) or a TF spec (a DType)."""
    dtype = getattr(tensor, "dtype", "float32")
    return str(getattr(dtype, "name", dtype))


def _tensors_to_numpy_tf(value):
    if hasattr(value, "numpy"):
        return value.numpy()
    if isinstance(value, (tuple, list)):
        return [_tensors_to_numpy_tf(item) for item in value]
    if isinstance(value, dict):
        return {key: _tensors_to_numpy_tf(item) for key, item in value.items()}
    return value


class RcfPredictor(Predictor):
    """A forestream Random Cut Forest (or its scikit-learn estimator): anomaly scores.

    Scoring never changes the forest, so a served model is the model that was imported.
    A :class:`~forestream.rcf.RandomCutForest` takes rows of ``dimensions`` values (each
    scored as the next input after the forest's current shingle) or of
    ``dimensions * shingle_size`` values (whole shingled points). The JSON answer is
    SageMaker RCF's ``{"scores": [{"score": s}, ...]}``; CSV and npy answers are the
    scores alone.
    """

    def __init__(self, model) -> None:
        super().__init__(model, {"predict": self._score})
        self._estimator = hasattr(model, "anomaly_score")
        if self._estimator:
            self.n_features = int(model.n_features_in_)
        else:
            self.n_features = int(model.point_dimensions)

    def prepare(self, data):
        if not isinstance(data, np.ndarray) or data.dtype.kind not in "biuf":
            raise ModelInvocationError("a Random Cut Forest takes numeric rows")
        return as_rows(data, self.n_features).astype(np.float64, copy=False)

    def _score(self, rows: np.ndarray) -> np.ndarray:
        if self._estimator:
            return self.model.anomaly_score(rows)
        forest = self.model
        if rows.ndim == 2 and rows.shape[1] == forest.point_dimensions:
            return forest.score_points(rows)
        if rows.ndim == 2 and rows.shape[1] == forest.dimensions:
            return np.array([forest.score(row) for row in rows])
        raise ModelInvocationError(
            f"rows of shape {list(rows.shape)} do not fit this forest: it takes rows of "
            f"{forest.dimensions} values (one input) or {forest.point_dimensions} values "
            "(a whole shingle)")

    def document(self, prediction, media: str):
        if media == codecs.JSON:
            return {"scores": [{"score": score} for score in prediction.tolist()]}
        return prediction

    def signature(self) -> dict:
        return {"inputs": [{"name": "features", "dtype": "float64",
                            "shape": [-1, self.n_features]}],
                "outputs": [{"name": "scores", "dtype": "float64", "shape": [-1]}],
                "methods": list(self.methods)}


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
