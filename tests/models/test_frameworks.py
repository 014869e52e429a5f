"""Framework detection, trust, MLflow mapping, and each framework served by a real worker.

Artifacts are written by the real libraries; predictions that come back through a
ModelWorker are compared with the same library's own predictions in this process.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
import sys
import textwrap

import numpy as np
import pytest
from model_factories import (
    CLASSES,
    ROWS,
    TRAIN,
    WorkerHarness,
    csv_bytes,
    from_npy,
    lightgbm_model,
    mlflow_sklearn_model,
    npy_bytes,
    onnx_model,
    rcf_model,
    sklearn_model,
    torch_eager_model,
    torchscript_model,
    write_code,
    xgboost_model,
)

from forestream.models.errors import (
    FrameworkUnavailable,
    InvalidInput,
    ModelInvocationError,
    ModelLoadError,
)
from forestream.models.frameworks import (
    FRAMEWORKS,
    TENSORFLOW_MISSING,
    check_available,
    detect_framework,
    handler_functions,
    load_model,
    mlflow_signature,
    needs_trust,
    resolve_model,
)

BODY = json.dumps(ROWS.tolist()).encode()

# name -> (factory, framework, format, needs trust)
BUILT = {
    "sklearn": (sklearn_model, "sklearn", "joblib", True),
    "xgboost-json": (xgboost_model, "xgboost", "xgboost-json", False),
    "xgboost-ubj": (lambda folder: xgboost_model(folder, "ubj"), "xgboost", "xgboost-ubj",
                    False),
    "lightgbm": (lightgbm_model, "lightgbm", "lightgbm-text", False),
    "onnx": (onnx_model, "onnx", "onnx", False),
    "torchscript": (torchscript_model, "pytorch", "torchscript", False),
    "torch-eager": (torch_eager_model, "pytorch", "torch-pickle", True),
    "rcf": (rcf_model, "forestream-rcf", "rcf", False),
    "mlflow": (mlflow_sklearn_model, "sklearn", "cloudpickle", True),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("frameworks")
    return {name: (base / name, factory(base / name))
            for name, (factory, *_rest) in BUILT.items()}


@pytest.fixture(scope="module")
def harness():
    harness = WorkerHarness()
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def workers(built, harness):
    names = list(BUILT)
    started = harness.start_many([(built[name][0], BUILT[name][1]) for name in names])
    return dict(zip(names, started, strict=True))


# --------------------------------------------------------------------- detection

@pytest.mark.parametrize("name", list(BUILT))
def test_detects_framework_and_format_from_the_files(name, built):
    folder, _ = built[name]
    _, framework, fmt, trust = BUILT[name]
    assert detect_framework(folder) == framework
    assert resolve_model(folder).format == fmt
    assert (needs_trust(folder, framework) is not None) is trust


def test_a_single_file_can_be_detected(built):
    folder, _ = built["xgboost-ubj"]
    assert detect_framework(folder / "model.ubj") == "xgboost"


def test_json_and_txt_files_that_are_not_models_are_ignored(tmp_path):
    (tmp_path / "config.json").write_text('{"threshold": 0.5}')
    (tmp_path / "notes.txt").write_text("trained on march data\n")
    with pytest.raises(InvalidInput, match="no model file found.*config.json, notes.txt"):
        detect_framework(tmp_path)


def test_files_of_several_frameworks_are_ambiguous_until_one_is_declared(built, tmp_path):
    (tmp_path / "model.onnx").write_bytes((built["onnx"][0] / "model.onnx").read_bytes())
    (tmp_path / "model.txt").write_bytes((built["lightgbm"][0] / "model.txt").read_bytes())
    with pytest.raises(InvalidInput, match="several frameworks.*declare"):
        detect_framework(tmp_path)
    assert resolve_model(tmp_path, "onnx").path.name == "model.onnx"


def test_a_declared_framework_must_have_its_file(built):
    with pytest.raises(InvalidInput, match="no onnx model file"):
        resolve_model(built["lightgbm"][0], "onnx")


def test_unknown_framework_names_the_accepted_ones(built):
    with pytest.raises(InvalidInput, match="unknown framework 'caffe'") as caught:
        resolve_model(built["onnx"][0], "caffe")
    for name in FRAMEWORKS:
        assert name in caught.value.message


def test_zero_byte_model_file_is_refused(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"")
    with pytest.raises(InvalidInput, match=r"model.onnx is empty \(0 bytes\)"):
        detect_framework(tmp_path)


def test_model_fn_makes_a_model_file_optional_for_a_declared_framework(tmp_path):
    write_code(tmp_path, "def model_fn(model_dir):\n    return None\n")
    spec = resolve_model(tmp_path, "pytorch")
    assert (spec.framework, spec.format) == ("pytorch", "model_fn")


def test_needs_trust_names_pickles_and_inference_code(built):
    assert "model.joblib" in needs_trust(built["sklearn"][0], "sklearn")
    reason = needs_trust(built["torch-eager"][0], "pytorch")
    assert "model.pth" in reason and "code/inference.py" in reason
    for name in ("xgboost-json", "lightgbm", "onnx", "torchscript", "rcf"):
        assert needs_trust(built[name][0]) is None


def test_pickled_rcf_estimator_is_an_rcf_model_that_needs_trust(tmp_path):
    from forestream.rcf import RandomCutForestEstimator

    estimator = RandomCutForestEstimator(num_trees=10, random_state=0).fit(TRAIN)
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(estimator))
    assert detect_framework(tmp_path) == "forestream-rcf"
    assert "model.pkl" in needs_trust(tmp_path)


def test_handler_functions_are_read_without_running_the_code(tmp_path):
    write_code(tmp_path, """
        raise SystemExit("importing this file would stop the server")

        def model_fn(model_dir):
            pass

        def transform_fn(model, body, content_type, accept):
            pass
        """)
    assert handler_functions(tmp_path) == ("model_fn", "transform_fn")


def test_mxnet_is_detected_and_explained_as_not_installable(tmp_path):
    (tmp_path / "resnet-symbol.json").write_text('{"nodes": []}')
    (tmp_path / "resnet-0000.params").write_bytes(b"\x12\x01\x00\x00")
    assert detect_framework(tmp_path) == "mxnet"
    with pytest.raises(FrameworkUnavailable, match="MXNet cannot be installed here") as caught:
        check_available("mxnet")
    assert "ONNX" in caught.value.message


def test_tensorflow_savedmodel_and_keras_files_are_detected(tmp_path):
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"\x08\x01")
    spec = resolve_model(tmp_path)
    assert (spec.framework, spec.format, spec.path.name) == ("tensorflow", "savedmodel", "1")
    keras_dir = tmp_path / "k"
    keras_dir.mkdir()
    (keras_dir / "model.keras").write_bytes(b"PK\x03\x04")
    assert resolve_model(keras_dir).format == "keras"


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is not None,
                    reason="TensorFlow is installed here")
def test_missing_tensorflow_names_the_extra_to_install():
    with pytest.raises(FrameworkUnavailable) as caught:
        check_available("tensorflow")
    assert caught.value.message == TENSORFLOW_MISSING
    assert "forestream[tensorflow]" in caught.value.message


# ------------------------------------------------------------------------ MLflow

def _mlmodel(folder, flavors: str):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "MLmodel").write_text(textwrap.dedent(flavors))


def test_mlflow_flavors_map_to_our_loaders(built, tmp_path):
    xgb_dir = tmp_path / "xgb"
    _mlmodel(xgb_dir, """
        flavors:
          xgboost:
            data: model.xgb
            model_class: xgboost.core.Booster
            model_format: xgb
            xgb_version: 3.2.0
        """)
    (xgb_dir / "model.xgb").write_bytes((built["xgboost-json"][0] / "model.json").read_bytes())
    spec = resolve_model(xgb_dir)
    assert (spec.framework, spec.format, spec.trust_reason) == ("xgboost", "xgboost-json", None)

    onnx_dir = tmp_path / "onnx"
    _mlmodel(onnx_dir, "flavors:\n  onnx:\n    data: model.onnx\n    onnx_version: 1.17.0\n")
    (onnx_dir / "model.onnx").write_bytes((built["onnx"][0] / "model.onnx").read_bytes())
    assert detect_framework(onnx_dir) == "onnx"

    mlflow_dir = built["mlflow"][0]
    spec = resolve_model(mlflow_dir)
    assert (spec.framework, spec.format) == ("sklearn", "cloudpickle")
    assert "model.pkl" in needs_trust(mlflow_dir)
    signature = mlflow_signature(mlflow_dir)
    assert signature["inputs"][0]["tensor-spec"]["shape"] == [-1, 4]


def test_a_cloudpickle_model_without_cloudpickle_says_what_to_install(tmp_path, monkeypatch):
    import cloudpickle
    from sklearn.preprocessing import FunctionTransformer

    mlflow_sklearn_model(tmp_path)
    doubler = FunctionTransformer(func=lambda rows: rows * 2)  # pickled by value
    (tmp_path / "model.pkl").write_bytes(cloudpickle.dumps(doubler.fit(TRAIN)))
    spec = resolve_model(tmp_path)
    for name in [name for name in sys.modules if name.split(".")[0] == "cloudpickle"]:
        monkeypatch.setitem(sys.modules, name, None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "cloudpickle", None)
    with pytest.raises(FrameworkUnavailable, match="written by cloudpickle.*pip install "
                                                   "cloudpickle"):
        load_model(spec)


def test_mlflow_flavors_without_a_loader_here_are_refused_by_name(tmp_path):
    _mlmodel(tmp_path, """
        flavors:
          python_function:
            loader_module: my_company.models
        """)
    with pytest.raises(InvalidInput, match="python_function are not supported"):
        detect_framework(tmp_path)


def test_mlflow_file_outside_the_directory_is_refused(tmp_path):
    _mlmodel(tmp_path, "flavors:\n  onnx:\n    data: ../../etc/passwd\n")
    with pytest.raises(InvalidInput, match="not inside the model directory"):
        detect_framework(tmp_path)


# ------------------------------------------------------------- served predictions

def _native(name, model, rows):
    """The library's own prediction for ``rows`` (what the worker must reproduce)."""
    if name in ("sklearn", "mlflow"):
        return model.predict(rows)
    if name.startswith("xgboost"):
        import xgboost

        return model.predict(xgboost.DMatrix(rows))
    if name == "lightgbm":
        return model.predict(rows)
    if name == "onnx":
        return model.predict(rows.astype(np.float32))
    if name in ("torchscript", "torch-eager"):
        import torch

        with torch.no_grad():
            return model(torch.tensor(rows, dtype=torch.float32)).numpy()
    return model.score_points(rows)


@pytest.mark.parametrize("name", list(BUILT))
def test_worker_predictions_equal_the_native_library(name, built, workers, harness):
    _, model = built[name]
    answer = harness.invoke(workers[name], BODY)
    got = json.loads(answer.body)
    if name == "rcf":
        assert list(got) == ["scores"]
        got = [item["score"] for item in got["scores"]]
    np.testing.assert_allclose(got, _native(name, model, ROWS), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["xgboost-ubj", "lightgbm", "torchscript", "rcf"])
def test_csv_and_npy_bodies_give_the_same_predictions(name, built, workers, harness):
    _, model = built[name]
    expected = _native(name, model, ROWS)
    from_csv = harness.invoke(workers[name], csv_bytes(ROWS), "text/csv", accept="text/csv")
    rows = [[float(v) for v in line.split(",")] for line in from_csv.body.decode().split()]
    np.testing.assert_allclose(np.squeeze(rows), expected, atol=1e-6)
    from_npy_body = harness.invoke(workers[name], npy_bytes(ROWS), "application/x-npy",
                                   accept="application/x-npy")
    np.testing.assert_allclose(from_npy(from_npy_body.body), expected, atol=1e-6)


def test_xgboost_margin_and_missing_values(built, workers, harness):
    import xgboost

    _, booster = built["xgboost-json"]
    answer = harness.invoke(workers["xgboost-json"], BODY,
                            custom_attributes="method=predict_margin")
    np.testing.assert_allclose(json.loads(answer.body),
                               booster.predict(xgboost.DMatrix(ROWS), output_margin=True),
                               atol=1e-6)
    # an empty CSV cell is a missing value, as in SageMaker's XGBoost container
    with_gap = harness.invoke(workers["xgboost-json"], b"0.5,,1.0,-1.0\n", "text/csv")
    expected = booster.predict(xgboost.DMatrix(np.array([[0.5, np.nan, 1.0, -1.0]])))
    np.testing.assert_allclose(json.loads(with_gap.body), expected, atol=1e-6)


def test_lightgbm_raw_scores(built, workers, harness):
    _, booster = built["lightgbm"]
    answer = harness.invoke(workers["lightgbm"], BODY, custom_attributes="method=predict_raw")
    np.testing.assert_allclose(json.loads(answer.body), booster.predict(ROWS, raw_score=True),
                               atol=1e-6)


def test_onnx_probabilities_and_named_outputs(built, workers, harness):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(built["onnx"][0] / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    label, zipmap = session.run(None, {"X": ROWS.astype(np.float32)})
    expected = [[row[key] for key in sorted(row)] for row in zipmap]
    answer = harness.invoke(workers["onnx"], BODY, custom_attributes="method=predict_proba")
    np.testing.assert_allclose(json.loads(answer.body), expected, atol=1e-6)
    named = harness.invoke(workers["onnx"], BODY, custom_attributes="method=output_label")
    assert json.loads(named.body) == label.tolist()
    signature = workers["onnx"].info["signature"]
    assert signature["inputs"] == [{"name": "X", "type": "tensor(float)", "shape": [-1, 4]}]
    assert [output["name"] for output in signature["outputs"]] == ["output_label",
                                                                   "output_probability"]


def test_rcf_scoring_never_changes_the_forest(built, workers, harness):
    first = json.loads(harness.invoke(workers["rcf"], BODY).body)
    for _ in range(3):
        harness.invoke(workers["rcf"], csv_bytes(ROWS * 5), "text/csv")
    assert json.loads(harness.invoke(workers["rcf"], BODY).body) == first
    with pytest.raises(ModelInvocationError, match="takes rows of 4 values"):
        harness.invoke(workers["rcf"], b"[[1, 2, 3]]")


def test_torch_eager_model_fn_and_torchscript_agree(workers, harness):
    eager = json.loads(harness.invoke(workers["torch-eager"], BODY).body)
    scripted = json.loads(harness.invoke(workers["torchscript"], BODY).body)
    np.testing.assert_allclose(eager, scripted, atol=1e-6)
    assert workers["torch-eager"].info["handler_functions"] == ["model_fn"]


def test_signatures_come_from_the_models(workers):
    assert workers["xgboost-json"].info["signature"]["inputs"][0]["shape"] == [-1, 4]
    assert workers["xgboost-json"].info["signature"]["outputs"][0]["shape"] == [-1, 3]
    assert workers["lightgbm"].info["signature"]["inputs"][0]["shape"] == [-1, 4]
    assert workers["rcf"].info["signature"]["outputs"][0]["name"] == "scores"
    mlflow = workers["mlflow"].info
    assert mlflow["signature"]["source"] == "mlflow"
    assert mlflow["saved_with"] == {"sklearn_version": "1.9.1", "mlflow": "2.17.0"}
    sklearn_outputs = workers["sklearn"].info["signature"]["outputs"]
    assert sklearn_outputs[0]["classes"] == sorted(set(CLASSES.tolist()))


def test_versions_are_recorded_for_each_framework(workers):
    import lightgbm
    import onnxruntime
    import torch
    import xgboost

    expected = {"xgboost-json": xgboost.__version__, "lightgbm": lightgbm.__version__,
                "onnx": onnxruntime.__version__, "torchscript": torch.__version__}
    for name, version in expected.items():
        assert workers[name].info["framework_version"] == version


def test_a_state_dict_without_model_fn_explains_what_is_missing(built, tmp_path):
    (tmp_path / "model.pth").write_bytes((built["torch-eager"][0] / "model.pth").read_bytes())
    with pytest.raises(ModelLoadError, match="state_dict.*model_fn"):
        load_model(resolve_model(tmp_path))


@pytest.mark.tensorflow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Keras internals on numpy 2
def test_keras_and_savedmodel_predictions_equal_tensorflow(tmp_path, harness):
    tensorflow = pytest.importorskip("tensorflow")
    keras = tensorflow.keras
    tensorflow.random.set_seed(0)
    keras_model = keras.Sequential([keras.Input(shape=(4,)),
                                    keras.layers.Dense(3, activation="tanh"),
                                    keras.layers.Dense(1)])
    (tmp_path / "keras").mkdir()
    keras_model.save(tmp_path / "keras" / "model.keras")
    exported = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Dense(2)])
    exported.export(str(tmp_path / "savedmodel" / "1"))
    assert resolve_model(tmp_path / "keras").format == "keras"
    assert resolve_model(tmp_path / "savedmodel").format == "savedmodel"
    workers = harness.start_many([(tmp_path / "keras", "tensorflow"),
                                  (tmp_path / "savedmodel", "tensorflow")])
    for worker, model in zip(workers, (keras_model, exported), strict=True):
        expected = model(ROWS.astype(np.float32), training=False).numpy()
        answer = harness.invoke(worker, BODY)
        np.testing.assert_allclose(json.loads(answer.body), expected, atol=1e-6)
