"""SageMaker's handler contract (custom code in real workers) and the default codecs."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from model_factories import ROWS, TARGET, TRAIN, WorkerHarness, sklearn_model, write_code

from forestream.models.errors import (
    ImportRefused,
    ModelInvocationError,
    ModelLoadError,
    UnsupportedContentType,
)
from forestream.models.serving import codecs
from forestream.models.serving.handlers import as_rows, make_predictor, requested_method

# model_fn, input_fn, predict_fn and output_fn, with a private content type and a
# context argument that sends CustomAttributes back.
FULL_CONTRACT = """
import json

import joblib
import numpy as np


def model_fn(model_dir):
    return joblib.load(model_dir + "/model.joblib")


def input_fn(request_body, content_type):
    if content_type != "text/x-pipe":
        raise ValueError(f"this model reads text/x-pipe, not {content_type}")
    lines = request_body.decode().splitlines()
    return np.array([[float(v) for v in line.split("|")] for line in lines])


def predict_fn(data, model):
    return model.predict_proba(data)


def output_fn(prediction, accept, context):
    context.response_custom_attributes = f"rows={len(prediction)}; seen={context.custom_attributes}"
    return json.dumps({"probabilities": prediction.tolist()}), "application/vnd.probs+json"
"""

# transform_fn only, a model_fn that takes the context, and a sibling helper module.
TRANSFORM = """
import json

import numpy as np
from weights import WEIGHTS


def model_fn(model_dir, context):
    return {"weights": np.array(WEIGHTS), "model_dir": context.system_properties["model_dir"]}


def transform_fn(model, request_body, content_type, accept):
    rows = np.array(json.loads(request_body))
    return json.dumps({"scores": (rows @ model["weights"]).tolist(), "accept": accept,
                       "content_type": content_type, "model_dir": model["model_dir"]})
"""

# only predict_fn: the default model_fn, input_fn and output_fn fill in.
PREDICT_ONLY = """
import numpy as np


def predict_fn(data, model):
    if not isinstance(data, np.ndarray):
        raise TypeError(f"expected the default input_fn to give an array, got {type(data)}")
    return model.predict(data) * 2
"""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    base = tmp_path_factory.mktemp("handlers")
    classifier = sklearn_model(base / "full")
    write_code(base / "full", FULL_CONTRACT)
    write_code(base / "transform", TRANSFORM)
    (base / "transform" / "code" / "weights.py").write_text("WEIGHTS = [1.0, -1.0, 0.5, 2.0]\n")
    regressor = sklearn_model(base / "predict-only", kind="regressor")
    write_code(base / "predict-only", PREDICT_ONLY)
    return base, {"full": classifier, "predict-only": regressor}


@pytest.fixture(scope="module")
def harness():
    harness = WorkerHarness()
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def workers(artifacts, harness):
    base, _ = artifacts
    names = ("full", "transform", "predict-only")
    started = harness.start_many([(base / name, "sklearn") for name in names])
    return dict(zip(names, started, strict=True))


# --------------------------------------------------------------- custom handlers

def test_all_four_handler_functions_run_in_the_worker(artifacts, workers, harness):
    model = artifacts[1]["full"]
    body = "\n".join("|".join(repr(v) for v in row) for row in ROWS.tolist()).encode()
    answer = harness.invoke(workers["full"], body, "text/x-pipe", custom_attributes="trace=42")
    assert answer.content_type == "application/vnd.probs+json"
    assert answer.custom_attributes == f"rows={len(ROWS)}; seen=trace=42"
    np.testing.assert_allclose(json.loads(answer.body)["probabilities"],
                               model.predict_proba(ROWS), atol=1e-6)
    assert workers["full"].info["handler_functions"] == ["input_fn", "model_fn", "output_fn",
                                                         "predict_fn"]
    assert workers["full"].info["custom_code"] is True


def test_errors_in_custom_code_are_model_errors_with_the_message(workers, harness):
    with pytest.raises(ModelInvocationError,
                       match="ValueError: this model reads text/x-pipe, not text/plain"):
        harness.invoke(workers["full"], b"1|2|3|4", "text/plain")
    assert workers["full"].alive


def test_transform_fn_gets_the_body_types_and_a_context_aware_model_fn(artifacts, workers,
                                                                       harness):
    base, _ = artifacts
    weights = np.array([1.0, -1.0, 0.5, 2.0])
    answer = harness.invoke(workers["transform"], json.dumps(ROWS.tolist()).encode(),
                            "application/json")
    result = json.loads(answer.body)
    np.testing.assert_allclose(result["scores"], ROWS @ weights, atol=1e-12)
    assert (result["accept"], result["content_type"]) == ("application/json",
                                                          "application/json")
    assert result["model_dir"] == str(base / "transform")
    assert answer.content_type == "application/json"
    # a custom handler may speak any type: the Accept header reaches it as sent
    odd = harness.invoke(workers["transform"], b"[[0, 0, 0, 1]]", "application/json",
                         accept="application/vnd.custom")
    assert json.loads(odd.body)["accept"] == "application/vnd.custom"
    assert odd.content_type == "application/vnd.custom"


def test_default_handlers_fill_in_around_a_custom_predict_fn(artifacts, workers, harness):
    model = artifacts[1]["predict-only"]
    body = "".join(",".join(repr(v) for v in row) + "\n" for row in ROWS.tolist()).encode()
    answer = harness.invoke(workers["predict-only"], body, "text/csv", accept="text/csv")
    assert answer.content_type == "text/csv"
    got = [float(line) for line in answer.body.decode().split()]
    np.testing.assert_allclose(got, model.predict(ROWS) * 2, atol=1e-9)
    with pytest.raises(UnsupportedContentType, match="text/xml"):
        harness.invoke(workers["predict-only"], b"<x/>", "text/xml")


def test_transform_fn_with_predict_fn_is_refused_at_load(tmp_path, harness):
    write_code(tmp_path, """
        def model_fn(model_dir):
            return None

        def predict_fn(data, model):
            return data

        def transform_fn(model, body, content_type, accept):
            return body
        """)
    with pytest.raises(ModelLoadError, match="transform_fn together with"):
        harness.start(tmp_path, "sklearn")


def test_inference_code_that_fails_to_import_is_a_load_error(tmp_path, harness):
    write_code(tmp_path, """
        import a_module_that_is_not_installed

        def model_fn(model_dir):
            return a_module_that_is_not_installed.load(model_dir)
        """)
    with pytest.raises(ModelLoadError, match="a_module_that_is_not_installed"):
        harness.start(tmp_path, "sklearn")


def test_untrusted_inference_code_is_refused(artifacts, harness):
    base, _ = artifacts
    with pytest.raises(ImportRefused, match="code/inference.py.*--trust"):
        harness.start(base / "transform", "sklearn", trusted=False)


# ------------------------------------------------------------------ default inputs

def test_default_input_fn_gives_each_framework_its_own_type():
    import torch
    import xgboost

    booster = xgboost.train({"nthread": 1}, xgboost.DMatrix(TRAIN, TARGET), 2)
    predictor = make_predictor("xgboost", booster)
    assert isinstance(predictor.default_input(ROWS), xgboost.DMatrix)
    np.testing.assert_allclose(predictor.predict(predictor.default_input(ROWS)),
                               predictor.predict(predictor.prepare(ROWS)), atol=1e-7)

    torch_predictor = make_predictor("pytorch", torch.nn.Linear(4, 1).double())
    tensor = torch_predictor.default_input(ROWS)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64


def test_a_single_row_is_one_row_unless_the_model_takes_one_feature():
    assert as_rows(np.array([1.0, 2.0, 3.0]), 3).shape == (1, 3)
    assert as_rows(np.array([1.0, 2.0, 3.0]), 1).shape == (3, 1)
    assert as_rows(np.array(5.0), None).shape == (1, 1)
    assert as_rows(np.zeros((2, 3, 4)), None).shape == (2, 3, 4)


def test_method_is_read_from_custom_attributes():
    assert requested_method(None) == "predict"
    assert requested_method("method=predict_proba") == "predict_proba"
    assert requested_method("a=1, Method = decision_function ;b=2") == "decision_function"
    assert requested_method("opaque-token-without-pairs") == "predict"


# --------------------------------------------------------------------------- codecs

@pytest.mark.parametrize("body", [b"[[1, 2.5], [3, 4]]", b'{"instances": [[1, 2.5], [3, 4]]}',
                                  b'{"inputs": [[1, 2.5], [3, 4]]}'])
def test_json_rows_in_every_accepted_shape(body):
    assert codecs.decode(body, codecs.JSON).tolist() == [[1.0, 2.5], [3.0, 4.0]]


def test_json_keeps_text_as_text_and_null_as_nan():
    mixed = codecs.decode(b'[["red", 1.5], ["blue", 2]]', codecs.JSON)
    assert mixed.dtype == object and mixed[0].tolist() == ["red", 1.5]
    with_null = codecs.decode(b"[[1.0, null]]", codecs.JSON)
    assert with_null.dtype == np.float64 and np.isnan(with_null[0, 1])


def test_json_records_and_named_inputs_pass_through():
    records = codecs.decode(b'[{"a": 1, "b": 2}]', codecs.JSON)
    assert records == [{"a": 1, "b": 2}]
    named = codecs.decode(b'{"inputs": {"x": [[1, 2]], "mask": [[1]]}}', codecs.JSON)
    assert set(named) == {"x", "mask"}


@pytest.mark.parametrize(("body", "message"), [
    (b"", "empty"),
    (b"[[1, 2], [3]]", "not rectangular"),
    (b"[]", "no rows"),
    (b'{"rows": [[1]]}', "'instances' or 'inputs'"),
    (b"{not json", "not valid JSON"),
])
def test_bad_json_bodies_are_explained(body, message):
    with pytest.raises(ModelInvocationError, match=message):
        codecs.decode(body, codecs.JSON)


def test_csv_rows_quotes_and_missing_cells():
    assert codecs.decode(b"1,2\n3,4\n\n", codecs.CSV).tolist() == [[1.0, 2.0], [3.0, 4.0]]
    quoted = codecs.decode(b'"Paris, France",3\n"Oslo",4\n', codecs.CSV)
    assert quoted.tolist() == [["Paris, France", 3.0], ["Oslo", 4.0]]
    gap = codecs.decode(b"1,,3\n", codecs.CSV)
    assert np.isnan(gap[0, 1]) and gap[0, 2] == 3.0
    with pytest.raises(ModelInvocationError, match="line 2 has 1 values; line 1 has 2"):
        codecs.decode(b"1,2\n3\n", codecs.CSV)


def test_npy_bodies_never_unpickle():
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ModelInvocationError, match="refused"):
        codecs.decode(buffer.getvalue(), codecs.NPY)
    with pytest.raises(ModelInvocationError, match="not a valid .npy"):
        codecs.decode(b"\x93NUMPY garbage", codecs.NPY)


def test_encoders_write_each_type():
    assert codecs.encode(np.array([0.1, 0.2], dtype=np.float32), codecs.JSON) == b"[0.1,0.2]"
    assert codecs.encode({"scores": [{"score": 1.5}]}, codecs.JSON) == \
        b'{"scores":[{"score":1.5}]}'
    assert codecs.encode(np.array([[1, 2], [3, 4]]), codecs.CSV) == b"1,2\n3,4\n"
    assert codecs.encode(np.array([0.1], dtype=np.float32), codecs.CSV) == b"0.1\n"
    labels = np.load(io.BytesIO(codecs.encode(np.array(["a", "b"], dtype=object), codecs.NPY)))
    assert labels.tolist() == ["a", "b"]
    with pytest.raises(ModelInvocationError, match="dict"):
        codecs.encode({"a": 1}, codecs.CSV)


def test_accept_negotiation():
    assert codecs.negotiate_accept(None) == codecs.JSON
    assert codecs.negotiate_accept("*/*") == codecs.JSON
    assert codecs.negotiate_accept("text/*") == codecs.CSV
    assert codecs.negotiate_accept("application/x-npy;q=0.1, text/csv;q=0.9") == codecs.CSV
    assert codecs.negotiate_accept("text/csv;q=0, application/json") == codecs.JSON
    with pytest.raises(UnsupportedContentType, match="'image/png'.*application/json, "
                                                     "text/csv, application/x-npy"):
        codecs.negotiate_accept("image/png")


def test_content_type_parameters_and_case_are_ignored():
    assert codecs.input_media_type("Text/CSV; charset=utf-8") == codecs.CSV
    assert codecs.input_media_type(None) == codecs.JSON
    with pytest.raises(UnsupportedContentType, match="'application/protobuf' is not accepted"):
        codecs.input_media_type("application/protobuf")
