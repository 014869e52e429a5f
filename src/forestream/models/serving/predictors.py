"""The default ``input_fn``/``predict_fn`` of each framework: one :class:`Predictor` each.

A :class:`Predictor` wraps one loaded model and knows what its framework's SageMaker
container does with a request: how decoded request data becomes the model's input,
which methods a request may call (``method=predict_proba`` in CustomAttributes), how a
prediction is shaped for the response, and what the model's signature is.

This module holds the contract (:class:`Predictor`, :func:`as_rows`,
:func:`worker_threads`) and the predictors of scikit-learn, XGBoost, LightGBM and
forestream's Random Cut Forest; :mod:`forestream.models.serving.tensor_predictors` holds those of
ONNX Runtime, PyTorch and TensorFlow, and :func:`forestream.models.serving.handlers.make_predictor`
picks one for a loaded model. Like the handlers, they run inside the worker process.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput, ModelInvocationError
from . import codecs
from .sklearn_shortcuts import checked_shortcuts, selects_columns_by_name, sklearn_fast_path


class Predictor:
    """The default ``input_fn``/``predict_fn`` of one framework, and the model's signature.

    ``prepare`` turns decoded request data into the model's input; ``default_input`` is
    what the framework's SageMaker container hands a custom ``predict_fn`` (a ``DMatrix``
    for XGBoost, a tensor for PyTorch, else the prepared array); ``predict`` calls the
    method a request names; ``document`` shapes a prediction for a response type.
    """

    # Set by the predictors whose models take feature rows (read by ``_booster_input``).
    n_features: int | None
    feature_names: list[str] | None

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

    def _booster_input(self, data):
        """Rows for a gradient-boosting booster (XGBoost, LightGBM): numeric arrays as
        they are (others as float64), named records as a DataFrame in feature order."""
        if isinstance(data, np.ndarray):
            rows = as_rows(data, self.n_features)
            return rows.astype(np.float64) if rows.dtype.kind not in "biuf" else rows
        if isinstance(data, (list, dict)):
            return self._frame(data, self.feature_names)
        return data

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
      :mod:`~forestream.models.serving.sklearn_shortcuts` computes ``predict`` and friends from
      the fitted attributes as scikit-learn itself does, for a finite float64 array of
      the right width. Each shortcut is checked against scikit-learn on probe rows when
      the model loads and dropped if it disagrees in any bit beyond 1e-12.
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
        self._full_validation = sklearn_fast_path()
        # n_jobs decides how many threads a prediction uses, never its result.
        try:
            if "n_jobs" in model.get_params(deep=False):
                model.set_params(n_jobs=worker_threads() if worker_threads() > 1 else None)
        except Exception:  # not a scikit-learn estimator: leave it as it is
            pass
        self._shortcuts = checked_shortcuts(model, self.n_features)
        # A ColumnTransformer that picks columns by name needs a DataFrame, even when the
        # request arrived as plain CSV or JSON rows in the model's column order.
        self._rows_as_frame = bool(self.feature_names) and selects_columns_by_name(model)

    def prepare(self, data):
        if isinstance(data, np.ndarray):
            rows = as_rows(data, self.n_features)
            names = self.feature_names  # never None when _rows_as_frame is set
            if (self._rows_as_frame and names is not None and rows.ndim == 2
                    and rows.shape[1] == self.n_features):
                return self._frame(dict(zip(names, rows.T, strict=True)), names)
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
        return self._booster_input(data)

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
        return self._booster_input(data)

    def signature(self) -> dict:
        shape = [-1, self.outputs_per_row] if self.outputs_per_row > 1 else [-1]
        return {"inputs": [{"name": "input", "dtype": "float64", "shape": [-1, self.n_features],
                            "feature_names": self.feature_names}],
                "outputs": [{"name": "predict", "dtype": "float64", "shape": shape,
                             "objective": self.objective}],
                "methods": list(self.methods)}


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


# --------------------------------------------------------------------------- helpers

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
