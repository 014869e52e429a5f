"""The inference operator: each record scored by a registered model version (in a worker
process) or by a deployed endpoint (through the SageMaker runtime API)."""

from __future__ import annotations

import json
import time
import urllib.request

import joblib
import numpy as np
import pytest

from forestream.models import ModelRegistry
from forestream.processing import StreamExecutionEnvironment

RNG = np.random.default_rng(3)
X = RNG.normal(size=(120, 3))


@pytest.fixture(scope="module")
def regression(tmp_path_factory):
    from sklearn.linear_model import LinearRegression

    root = tmp_path_factory.mktemp("inference")
    model = LinearRegression().fit(X, X @ np.array([2.0, -1.0, 0.5]) + 3)
    joblib.dump(model, root / "model.joblib")
    return root / "model.joblib", model


def records():
    return [{"id": i, "a": float(r[0]), "b": float(r[1]), "c": float(r[2])}
            for i, r in enumerate(X)]


def test_predict_with_a_registered_version(tmp_path, regression):
    path, model = regression
    registry = ModelRegistry(tmp_path / "data")
    version = registry.import_version("demand", path, trust=True)
    registry.close()

    env = StreamExecutionEnvironment(batch_size=32)
    out = (env.from_collection(records())
           .predict(["a", "b", "c"], model=version["ref"], data_dir=tmp_path / "data",
                    output_field="forecast", batch_size=25).collect())
    env.execute()
    got = sorted(out.values, key=lambda v: v["id"])
    assert [v["id"] for v in got] == list(range(len(X)))
    np.testing.assert_allclose([v["forecast"] for v in got], model.predict(X), atol=1e-6)


def test_predict_rejects_bad_arguments():
    env = StreamExecutionEnvironment()
    stream = env.from_collection(records())
    with pytest.raises(ValueError, match="exactly one of"):
        stream.predict(["a"])
    with pytest.raises(ValueError, match="batch_size 0"):
        stream.predict(["a"], endpoint="x", batch_size=0)


def test_predict_through_a_deployed_endpoint(server, regression):
    path, model = regression
    raw = path.read_bytes()
    req = server.request("/api/v1/models/uploads?filename=model.joblib",
                                 data=raw, method="POST")
    upload = json.loads(urllib.request.urlopen(req).read())

    def post(route, body):
        req = server.request(route, data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
        return json.loads(urllib.request.urlopen(req).read())

    version = post("/api/v1/models/groups/demand/versions",
                   {"source": upload["source"], "trust": True})
    post("/api/v1/endpoints", {"name": "demand", "variants": [{"model": version["ref"]}]})
    deadline = time.monotonic() + 60
    while json.loads(urllib.request.urlopen(server.request(
            "/api/v1/endpoints/demand")).read())["status"] != "InService":
        assert time.monotonic() < deadline
        time.sleep(0.2)

    env = StreamExecutionEnvironment(batch_size=50)
    out = (env.from_collection(records())
           .predict(["a", "b", "c"], endpoint="demand", endpoint_url=server.url).collect())
    env.execute()
    got = sorted(out.values, key=lambda v: v["id"])
    np.testing.assert_allclose([v["prediction"] for v in got], model.predict(X), atol=1e-6)
