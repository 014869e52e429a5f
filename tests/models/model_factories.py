"""Real model artifacts for the runtime tests, and a harness that drives ModelWorkers.

Every model is trained and saved by its own library in the layout that library (or
SageMaker, or MLflow) writes; each factory returns the artifact directory together with
the native library's predictions for :data:`ROWS`, so a test can compare what comes
back through a worker process with what the library itself computes.
"""

from __future__ import annotations

import asyncio
import textwrap
import warnings
from pathlib import Path

import numpy as np

from forestream.models.serving.worker import Invocation, ModelWorker

_rng = np.random.default_rng(42)
TRAIN = _rng.normal(size=(120, 4))
CLASSES = (TRAIN[:, 0] + TRAIN[:, 1] > 0).astype(int) + (TRAIN[:, 2] > 1).astype(int)
TARGET = TRAIN @ np.array([1.5, -2.0, 0.5, 0.0]) + 0.1 * _rng.normal(size=len(TRAIN))
ROWS = _rng.normal(size=(5, 4))


def write_code(folder: Path, source: str) -> Path:
    """Write ``code/inference.py`` (SageMaker's custom handler file) into ``folder``."""
    code = folder / "code"
    code.mkdir(parents=True, exist_ok=True)
    path = code / "inference.py"
    path.write_text(textwrap.dedent(source))
    return path


def sklearn_model(folder: Path, kind: str = "logistic", fmt: str = "joblib"):
    """A fitted scikit-learn model saved as model.joblib or model.pkl; returns it too."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    if kind == "logistic":
        model = LogisticRegression(max_iter=500).fit(TRAIN, CLASSES)
    elif kind == "forest":
        model = RandomForestClassifier(n_estimators=8, max_depth=5, random_state=0).fit(
            TRAIN, CLASSES)
    else:
        model = RandomForestRegressor(n_estimators=6, max_depth=5, random_state=0).fit(
            TRAIN, TARGET)
    if fmt == "joblib":
        joblib.dump(model, folder / "model.joblib")
    else:
        import pickle

        (folder / "model.pkl").write_bytes(pickle.dumps(model))
    return model


CITIES = np.array(["oslo", "lima", "oslo", "pune"] * 30)


def sklearn_pipeline(folder: Path):
    """A Pipeline fitted on a DataFrame whose ColumnTransformer picks columns by name."""
    import joblib
    import pandas
    from sklearn.compose import make_column_transformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    folder.mkdir(parents=True, exist_ok=True)
    frame = pandas.DataFrame({"city": CITIES, "reading": TRAIN[:, 0]})
    labels = np.where(TRAIN[:, 1] > 0, "high", "low")
    model = make_pipeline(
        make_column_transformer((OneHotEncoder(), ["city"]), (StandardScaler(), ["reading"])),
        LogisticRegression()).fit(frame, labels)
    joblib.dump(model, folder / "model.joblib")
    return model


def xgboost_model(folder: Path, suffix: str = "json"):
    """A multi-class XGBoost Booster saved by ``save_model`` (JSON or UBJ)."""
    import xgboost

    folder.mkdir(parents=True, exist_ok=True)
    booster = xgboost.train({"objective": "multi:softprob", "num_class": 3, "max_depth": 3,
                             "nthread": 1}, xgboost.DMatrix(TRAIN, CLASSES), 8)
    booster.save_model(folder / f"model.{suffix}")
    return booster


def lightgbm_model(folder: Path):
    """A LightGBM regression Booster in its text format (``model.txt``)."""
    import lightgbm

    folder.mkdir(parents=True, exist_ok=True)
    booster = lightgbm.train({"objective": "regression", "num_leaves": 7, "verbose": -1,
                              "min_data_in_leaf": 5, "num_threads": 1},
                             lightgbm.Dataset(TRAIN, TARGET), 10)
    booster.save_model(str(folder / "model.txt"))
    return booster


def onnx_model(folder: Path):
    """A LogisticRegression converted by skl2onnx (outputs: label, probabilities ZipMap)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    model = LogisticRegression(max_iter=500).fit(TRAIN.astype(np.float32), CLASSES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        onx = to_onnx(model, TRAIN[:1].astype(np.float32), target_opset=17)
    (folder / "model.onnx").write_bytes(onx.SerializeToString())
    return model


def torch_net():
    """A small two-layer network with fixed weights (its class is :func:`_net_class`)."""
    import torch

    torch.manual_seed(0)
    return _net_class()().eval()


def _net_class():
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.hidden = torch.nn.Linear(4, 8)
            self.out = torch.nn.Linear(8, 2)

        def forward(self, x):
            return self.out(torch.tanh(self.hidden(x)))

    return Net


def _net_source() -> str:
    """The source of the network class, for an artifact's inference.py."""
    import inspect

    body = textwrap.dedent(inspect.getsource(_net_class)).splitlines()
    class_lines = body[body.index("    class Net(torch.nn.Module):"):-2]
    return "import torch\n\n\n" + textwrap.dedent("\n".join(class_lines)) + "\n"


def torchscript_model(folder: Path):
    """A TorchScript archive (``model.pt``) of :func:`torch_net`."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    net = torch_net()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is still loadable
        torch.jit.script(net).save(str(folder / "model.pt"))
    return net


def torch_eager_model(folder: Path):
    """A state_dict (``model.pth``) plus ``code/inference.py`` whose model_fn rebuilds it."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    net = torch_net()
    torch.save(net.state_dict(), folder / "model.pth")
    write_code(folder, _net_source() + """

def model_fn(model_dir):
    net = Net()
    net.load_state_dict(torch.load(model_dir + "/model.pth", weights_only=True))
    return net.eval()
""")
    return net


def rcf_model(folder: Path):
    """A trained forestream RandomCutForest saved with ``to_bytes()`` as ``model.rcf``."""
    from forestream.rcf import RandomCutForest

    folder.mkdir(parents=True, exist_ok=True)
    forest = RandomCutForest(dimensions=4, num_trees=20, sample_size=64, random_seed=3)
    forest.update_many(TRAIN)
    (folder / "model.rcf").write_bytes(forest.to_bytes())
    return forest


def mlflow_sklearn_model(folder: Path, serialization: str = "cloudpickle"):
    """An MLflow sklearn model directory as ``mlflow.sklearn.save_model`` writes it."""
    import cloudpickle
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    model = LogisticRegression(max_iter=500).fit(TRAIN, CLASSES)
    (folder / "model.pkl").write_bytes(cloudpickle.dumps(model))
    (folder / "MLmodel").write_text(textwrap.dedent(f"""\
        artifact_path: model
        flavors:
          python_function:
            env:
              virtualenv: python_env.yaml
            loader_module: mlflow.sklearn
            model_path: model.pkl
            predict_fn: predict
            python_version: 3.11.7
          sklearn:
            code: null
            pickled_model: model.pkl
            serialization_format: {serialization}
            sklearn_version: 1.9.1
        mlflow_version: 2.17.0
        model_uuid: 4f1c2d3e5a6b7c8d9e0f112233445566
        signature:
          inputs: '[{{"type": "tensor", "tensor-spec": {{"dtype": "float64", "shape": [-1, 4]}}}}]'
          outputs: '[{{"type": "tensor", "tensor-spec": {{"dtype": "int64", "shape": [-1]}}}}]'
          params: null
        utc_time_created: '2024-06-01 12:00:00.000000'
        """))
    (folder / "requirements.txt").write_text("scikit-learn==1.9.1\ncloudpickle\n")
    return model


class WorkerHarness:
    """Starts ModelWorkers on one private event loop and drives them synchronously.

    Tests share workers across a module (a worker start costs an import of the model's
    framework), so the loop must outlive single tests; ``close`` stops every worker.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.workers: list[ModelWorker] = []

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    def start(self, artifact_dir: Path, framework: str, *, trusted: bool = True,
              log_path: Path | None = None, timeout: float = 120.0, **kwargs) -> ModelWorker:
        worker = ModelWorker(artifact_dir, framework, trusted=trusted, log_path=log_path,
                             **kwargs)
        self.workers.append(worker)
        self.run(worker.start(timeout=timeout))
        return worker

    def start_many(self, specs: list[tuple[Path, str]]) -> list[ModelWorker]:
        """Start several trusted workers at once (their imports overlap)."""
        workers = [ModelWorker(path, framework, trusted=True) for path, framework in specs]
        self.workers.extend(workers)
        async def start_all():
            await asyncio.gather(*(worker.start() for worker in workers))

        self.run(start_all())
        return workers

    def invoke(self, worker: ModelWorker, body: bytes, content_type: str = "application/json",
               accept: str | None = None, custom_attributes: str | None = None,
               timeout: float = 60.0) -> Invocation:
        return self.run(worker.invoke(body, content_type, accept, custom_attributes,
                                      timeout=timeout))

    def close(self) -> None:
        async def close_all():
            await asyncio.gather(*(worker.close() for worker in self.workers))

        self.run(close_all())
        self.loop.close()


def npy_bytes(array: np.ndarray) -> bytes:
    """``array`` as an application/x-npy body."""
    import io

    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def from_npy(body: bytes) -> np.ndarray:
    import io

    return np.load(io.BytesIO(body), allow_pickle=False)


def csv_bytes(array: np.ndarray) -> bytes:
    """``array`` rows as a text/csv body with full float precision."""
    return "".join(",".join(repr(float(v)) for v in row) + "\n" for row in array).encode()
