"""The default predictors of the tensor frameworks: ONNX Runtime, PyTorch and TensorFlow.

Each is a :class:`~forestream.models.serving.predictors.Predictor` (see that module for the
contract): request rows become the tensor type the model's input declares, and the
model's outputs come back as numpy arrays. They run inside the worker process, and
import their framework only when a model of it is served.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ModelInvocationError, ModelLoadError
from . import codecs
from .predictors import Predictor, as_rows, worker_threads

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

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
        self._serving: Callable[..., Any] | None
        if hasattr(model, "layers") and callable(model):
            self._serving = None
            inputs = getattr(model, "inputs", None) or []
            self._input_specs = {getattr(i, "name", "input"): (_dtype_name(i), tuple(i.shape))
                                 for i in inputs}
            super().__init__(model, {"predict": self._call_keras})
        elif signatures is not None and "serving_default" in signatures:
            serving = self._serving = signatures["serving_default"]
            self._input_specs = {name: (spec.dtype.name, tuple(spec.shape))
                                 for name, spec in serving.structured_input_signature[1]
                                 .items()}
            outputs = sorted(serving.structured_outputs)
            calls: dict[str, Callable[..., Any]] = {
                "predict": lambda feed: self._call_serving(feed, None)}
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
        serving = self._serving
        assert serving is not None  # a method only a SavedModel's signature registers
        result = serving(**feed)
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


# --------------------------------------------------------------------------- helpers

def _onnx_cast(array: np.ndarray, dtype, shape) -> np.ndarray:
    if len(shape or ()) == 2 and array.ndim == 1:
        array = array[:, None]
    if dtype is object:
        return array.astype(str).astype(object)
    return np.ascontiguousarray(array, dtype=dtype)


def _tensors_to_numpy(value):
    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    if isinstance(value, (tuple, list)):
        return [_tensors_to_numpy(item) for item in value]
    if isinstance(value, dict):
        return {key: _tensors_to_numpy(item) for key, item in value.items()}
    return value


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
