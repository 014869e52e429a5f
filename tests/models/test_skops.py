"""scikit-learn models saved with skops, alone and as MLflow 3 saves them by default."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from forestream.models import ImportFailed, ImportRefused, ModelRegistry, ModelWorker

skops_io = pytest.importorskip("skops.io")

RNG = np.random.default_rng(11)
X = RNG.normal(size=(60, 3))
Y = (X[:, 0] - X[:, 2] > 0).astype(int)

# What MLflow 3.17's mlflow.sklearn.save_model writes next to model.skops by default.
MLMODEL = """flavors:
  python_function:
    loader_module: mlflow.sklearn
    model_path: model.skops
    predict_fn: predict
    python_version: 3.11.7
  sklearn:
    code: null
    pickled_model: model.skops
    serialization_format: skops
    sklearn_version: 1.9.1
    skops_trusted_types: null
mlflow_version: 3.17.2
"""


class Doubler(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X * 2


def predictions(registry: ModelRegistry, version: dict, rows: np.ndarray) -> list:
    async def run():
        group, number = registry.parse_ref(version["ref"])
        worker = ModelWorker(registry.artifact_dir(group, number), version["framework"],
                             trusted=version["trusted"])
        await worker.start()
        try:
            answer = await worker.invoke(json.dumps(rows.tolist()).encode(),
                                         "application/json")
        finally:
            await worker.close()
        return json.loads(answer.body)

    return asyncio.run(run())


def test_skops_file_and_mlflow3_default_directory_import_without_trust(tmp_path):
    model = LogisticRegression().fit(X, Y)
    skops_io.dump(model, tmp_path / "model.skops")
    mlflow_dir = tmp_path / "mlflow-model"
    mlflow_dir.mkdir()
    skops_io.dump(model, mlflow_dir / "model.skops")
    (mlflow_dir / "MLmodel").write_text(MLMODEL)

    with ModelRegistry(tmp_path / "data") as registry:
        for source in (tmp_path / "model.skops", mlflow_dir):
            version = registry.import_version("skops", source)  # no trust needed
            assert version["status"] == "Ready" and version["framework"] == "sklearn"
            assert version["trusted"] is False
            assert predictions(registry, version, X[:7]) == model.predict(X[:7]).tolist()


def test_skops_file_with_unknown_types_needs_trust(tmp_path):
    pipeline = make_pipeline(Doubler(), LogisticRegression()).fit(X, Y)
    skops_io.dump(pipeline, tmp_path / "custom.skops")
    with ModelRegistry(tmp_path / "data") as registry:
        with pytest.raises((ImportRefused, ImportFailed)) as info:
            registry.import_version("custom", tmp_path / "custom.skops")
        assert "Doubler" in str(info.value) and "trust" in str(info.value)
        failed = registry.describe_version("custom", 1)
        assert failed["status"] == "Failed" and "Doubler" in failed["failure_reason"]
