"""Real model artifacts and hostile archives for the registry, staging and import tests.

Every model here is trained and saved by its real library, in the file layout that
library (or SageMaker, or MLflow) produces; every hostile archive is a real tar file
whose headers say what an attacker's would. Nothing is mocked.
"""

from __future__ import annotations

import io
import json
import tarfile
import textwrap
import warnings
from pathlib import Path

import numpy as np

ROWS = np.array([[0.1, 1.2, 0.3, 2.0], [1.5, 0.2, 2.2, 0.1], [0.3, 1.1, 0.1, 1.9],
                 [1.9, 0.1, 2.5, 0.4], [0.2, 1.4, 0.2, 2.2], [1.7, 0.3, 2.0, 0.2]] * 5)
LABELS = np.array([0, 1, 0, 1, 0, 1] * 5)
SAMPLE_JSON = json.dumps(ROWS[:2].tolist()).encode()


def sklearn_joblib(folder: Path) -> Path:
    """A fitted LogisticRegression saved with joblib (pickle-based: needs trust)."""
    import joblib
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "model.joblib"
    joblib.dump(LogisticRegression().fit(ROWS, LABELS), path)
    return path


def xgboost_booster(folder: Path, suffix: str = "json") -> Path:
    """An XGBoost Booster saved by ``Booster.save_model`` as ``model.json`` or ``.ubj``."""
    import xgboost

    folder.mkdir(parents=True, exist_ok=True)
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2},
                            xgboost.DMatrix(ROWS, label=LABELS), num_boost_round=3)
    path = folder / f"model.{suffix}"
    booster.save_model(str(path))
    return path


def lightgbm_text(folder: Path, name: str = "model.txt") -> Path:
    """A LightGBM Booster in its text format."""
    import lightgbm

    folder.mkdir(parents=True, exist_ok=True)
    booster = lightgbm.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 2,
                              "num_leaves": 4}, lightgbm.Dataset(ROWS, label=LABELS),
                             num_boost_round=3)
    path = folder / name
    booster.save_model(str(path))
    return path


def onnx_model(folder: Path) -> Path:
    """A LogisticRegression converted to ONNX by skl2onnx (input "input", float32 x 4)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    onx = convert_sklearn(LogisticRegression().fit(ROWS, LABELS),
                          initial_types=[("input", FloatTensorType([None, 4]))],
                          options={"zipmap": False})
    path = folder / "model.onnx"
    path.write_bytes(onx.SerializeToString())
    return path


def torchscript_model(folder: Path) -> Path:
    """A scripted ``torch.nn.Linear(4, 1)`` saved by ``torch.jit.save`` as ``model.pt``."""
    import torch

    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    path = folder / "model.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated upstream, still loadable
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch.nn.Linear(4, 1)), str(path))
    return path


INFERENCE_PY = textwrap.dedent('''
    """SageMaker handlers: load the XGBoost model, answer {"doubled": [...]}."""
    import json
    import os

    import numpy as np
    import xgboost


    def input_fn(body, content_type):
        if content_type != "application/json":
            raise ValueError(f"this model reads application/json, not {content_type}")
        return np.asarray(json.loads(body), dtype=float)


    def model_fn(model_dir):
        booster = xgboost.Booster()
        booster.load_model(os.path.join(model_dir, "model.json"))
        return booster


    def predict_fn(data, model):
        scores = model.predict(xgboost.DMatrix(data))
        return [2 * float(s) for s in scores]


    def output_fn(prediction, accept):
        return json.dumps({"doubled": prediction})
''')


def sagemaker_tarball(folder: Path, name: str = "model.tar.gz") -> Path:
    """SageMaker's layout: model file at the root, code/inference.py and
    code/requirements.txt beside it, packed as ``tar czf model.tar.gz -C model_dir .``."""
    model_dir = folder / "sagemaker-model"
    xgboost_booster(model_dir, "json")
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(INFERENCE_PY)
    (model_dir / "code" / "requirements.txt").write_text("# pinned for the demo\n"
                                                         "xgboost>=2.0\n\nnumpy\n")
    path = folder / name
    with tarfile.open(path, "w:gz") as tar:
        tar.add(model_dir, arcname=".")
    return path


MLMODEL = textwrap.dedent("""\
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
        serialization_format: cloudpickle
        sklearn_version: 1.5.0
    mlflow_version: 2.14.1
    model_size_bytes: 1000
    model_uuid: 4f1a2c3e0b9d4e8f9a7b6c5d4e3f2a1b
    signature:
      inputs: '[{"type": "tensor", "tensor-spec": {"dtype": "float64", "shape": [-1, 4]}}]'
      outputs: '[{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}]'
      params: null
    utc_time_created: '2024-06-01 10:00:00.000000'
    """)


def mlflow_sklearn_dir(folder: Path) -> Path:
    """An MLflow sklearn model directory as ``mlflow.sklearn.save_model`` lays it out:
    MLmodel, model.pkl (cloudpickle), conda.yaml, python_env.yaml, requirements.txt."""
    import cloudpickle
    from sklearn.linear_model import LogisticRegression

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(MLMODEL)
    with open(folder / "model.pkl", "wb") as f:
        cloudpickle.dump(LogisticRegression().fit(ROWS, LABELS), f)
    (folder / "conda.yaml").write_text("channels: [conda-forge]\ndependencies:\n- python=3.11"
                                       "\n- pip:\n  - mlflow==2.14.1\n  - scikit-learn\n"
                                       "name: mlflow-env\n")
    (folder / "python_env.yaml").write_text("python: 3.11.7\nbuild_dependencies:\n- pip\n"
                                            "dependencies:\n- -r requirements.txt\n")
    (folder / "requirements.txt").write_text("mlflow==2.14.1\ncloudpickle==3.0.0\n"
                                             "scikit-learn==1.5.0\n")
    return folder


# ---------------------------------------------------------------- hostile archives

def tar_with(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]],
             mode: str = "w:gz") -> Path:
    """Write a tar archive holding exactly ``members`` (header, data), as crafted."""
    with tarfile.open(path, mode) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def file_member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def link_member(name: str, target: str, *, hard: bool = False) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE if hard else tarfile.SYMTYPE
    info.linkname = target
    return info, None


def special_member(name: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind  # tarfile.CHRTYPE, BLKTYPE or FIFOTYPE
    info.devmajor, info.devminor = 1, 3
    return info, None


def lightgbm_bytes(tmp: Path) -> bytes:
    return lightgbm_text(tmp / "lgb-bytes").read_bytes()


# ------------------------------------------------------------------------- S3

class MotoS3:
    """A real S3-compatible HTTP server (moto) on a free local port, with a bucket."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def __enter__(self) -> MotoS3:
        import boto3

        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        self.client = boto3.client("s3", endpoint_url=self.endpoint_url,
                                   region_name="us-east-1", aws_access_key_id="test",
                                   aws_secret_access_key="test")
        self.client.create_bucket(Bucket="models")
        return self

    def __exit__(self, *exc) -> None:
        self.server.stop()


def s3_credentials(monkeypatch) -> None:
    """The credentials boto3 finds in the environment (moto accepts any)."""
    for name, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3",
                 "FORESTREAM_S3_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


def tree(root: Path) -> list[str]:
    """Every path below ``root`` (relative, sorted): what a test asserts is (not) there."""
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))
