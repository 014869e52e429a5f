"""Loading a model: import its framework's library and read the file; the worker's job.

:func:`load_model` turns a :class:`~forestream.models.frameworks.files.ModelSpec` into the
framework's native object (a scikit-learn estimator, an ``xgboost.Booster``, an ONNX
Runtime session, a torch module ...); :func:`library_versions` and
:func:`framework_version` record what loaded it. These import the framework, and
pickle-based formats execute code from the file, so they are meant for the worker
process (:mod:`forestream.models.serving.worker`): nothing in the serving process ever unpickles
a model.
"""

from __future__ import annotations

import platform

from ..errors import FrameworkUnavailable, ModelLoadError
from .files import ModelSpec

# distributions whose versions are recorded with a model of each framework
_LIBRARIES = {
    "sklearn": ("scikit-learn", "joblib", "skops", "numpy", "scipy"),
    "xgboost": ("xgboost", "xgboost-cpu", "numpy", "scipy"),
    "lightgbm": ("lightgbm", "numpy", "scipy"),
    "onnx": ("onnxruntime", "onnx", "numpy"),
    "pytorch": ("torch", "numpy"),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "keras", "numpy"),
    "mxnet": ("mxnet",),
    "forestream-rcf": ("forestream", "numpy", "numba"),
}


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


# --------------------------------------------------------------------------- loaders

def _load_joblib(spec: ModelSpec):
    try:
        import joblib
    except ImportError:
        return _load_pickle(spec)
    return joblib.load(spec.path)


def _load_skops(spec: ModelSpec):
    from skops.io import get_untrusted_types, load

    # The importer refused files with types off skops' safe list unless the user trusted
    # them (ModelSpec.trust_reason), so what is left to name here was trusted.
    return load(spec.path, trusted=get_untrusted_types(file=spec.path))


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
    "skops": _load_skops,
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
