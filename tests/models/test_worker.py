"""ModelWorker: real worker processes, real scikit-learn models, real crashes.

One worker per model is shared by the tests of this module (starting one costs an import
of scikit-learn); tests that kill or hang a worker use cheap custom-code artifacts.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from model_factories import (
    CLASSES,
    ROWS,
    TRAIN,
    WorkerHarness,
    csv_bytes,
    from_npy,
    npy_bytes,
    sklearn_model,
    sklearn_pipeline,
    write_code,
)

from forestream.models.errors import (
    ImportRefused,
    InvalidInput,
    ModelInvocationError,
    ModelLoadError,
    ModelValidationError,
    UnsupportedContentType,
    WorkerCrashed,
)
from forestream.models.serving.worker import ModelWorker, validate_artifact

# A custom-code artifact that does what the request body says: cheap to start (no
# framework import), and able to crash, hang or print on demand.
PUPPET = """
import os
import sys
import time


def model_fn(model_dir):
    return {"loaded_from": model_dir}


def transform_fn(model, body, content_type, accept):
    command = body.decode()
    if command.startswith("exit"):
        os._exit(int(command.split()[1]))
    if command == "hang":
        time.sleep(60)
    if command.startswith("say"):
        print(command[4:])
        print("to stderr", file=sys.stderr)
    return command.upper(), "text/plain"
"""


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory):
    base = tmp_path_factory.mktemp("worker-artifacts")
    models = {"logistic": sklearn_model(base / "logistic"),
              "forest": sklearn_model(base / "forest", kind="forest"),
              "regressor": sklearn_model(base / "regressor", kind="regressor", fmt="pickle"),
              "pipeline": sklearn_pipeline(base / "pipeline")}
    write_code(base / "puppet", PUPPET)
    write_code(base / "summer", """
        def model_fn(model_dir):
            return None

        def predict_fn(data, model):
            return data.sum(axis=1)
        """)
    return base, models


@pytest.fixture(scope="module")
def harness():
    harness = WorkerHarness()
    yield harness
    harness.close()


@pytest.fixture(scope="module")
def sklearn_workers(artifacts, harness):
    base, _ = artifacts
    names = ("logistic", "forest", "regressor", "pipeline")
    workers = harness.start_many([(base / name, "sklearn") for name in names])
    return dict(zip(names, workers, strict=True))


@pytest.fixture
def puppet(artifacts, harness, tmp_path):
    base, _ = artifacts
    return harness.start(base / "puppet", "sklearn", log_path=tmp_path / "puppet.log")


def as_json(rows) -> bytes:
    return json.dumps(np.asarray(rows).tolist()).encode()


# ------------------------------------------------------------------- predictions

@pytest.mark.parametrize("name", ["logistic", "forest", "regressor"])
def test_json_predictions_equal_scikit_learn(name, artifacts, harness, sklearn_workers):
    model = artifacts[1][name]
    answer = harness.invoke(sklearn_workers[name], as_json(ROWS))
    assert answer.content_type == "application/json"
    np.testing.assert_allclose(json.loads(answer.body), model.predict(ROWS), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", ["logistic", "forest"])
def test_predict_proba_through_custom_attributes_equals_scikit_learn(name, artifacts, harness,
                                                                     sklearn_workers):
    model = artifacts[1][name]
    many = np.random.default_rng(1).normal(scale=2.0, size=(300, 4))
    answer = harness.invoke(sklearn_workers[name], as_json(many),
                            custom_attributes="trace-id=7; method=predict_proba")
    np.testing.assert_allclose(json.loads(answer.body), model.predict_proba(many), rtol=0,
                               atol=1e-12)
    one = harness.invoke(sklearn_workers[name], as_json(many[0]),
                         custom_attributes="method=predict_proba")
    np.testing.assert_allclose(json.loads(one.body), model.predict_proba(many[:1]), atol=1e-12)


def test_csv_in_csv_out(artifacts, harness, sklearn_workers):
    model = artifacts[1]["regressor"]
    answer = harness.invoke(sklearn_workers["regressor"], csv_bytes(ROWS), "text/csv",
                            accept="text/csv")
    assert answer.content_type == "text/csv"
    lines = answer.body.decode().splitlines()
    assert len(lines) == len(ROWS)
    np.testing.assert_allclose([float(v) for v in lines], model.predict(ROWS), atol=1e-6)


def test_npy_in_npy_out(artifacts, harness, sklearn_workers):
    model = artifacts[1]["logistic"]
    answer = harness.invoke(sklearn_workers["logistic"], npy_bytes(ROWS), "application/x-npy",
                            accept="application/x-npy", custom_attributes="method=predict_proba")
    assert answer.content_type == "application/x-npy"
    np.testing.assert_allclose(from_npy(answer.body), model.predict_proba(ROWS), atol=1e-12)


def test_json_request_forms_all_give_the_same_rows(artifacts, harness, sklearn_workers):
    worker = sklearn_workers["logistic"]
    expected = artifacts[1]["logistic"].predict(ROWS[:1]).tolist()
    for body in (as_json(ROWS[:1]), as_json(ROWS[0]),
                 json.dumps({"instances": ROWS[:1].tolist()}).encode(),
                 json.dumps({"inputs": ROWS[:1].tolist()}).encode()):
        assert json.loads(harness.invoke(worker, body).body) == expected


def test_accept_with_weights_and_parameters_is_negotiated(harness, sklearn_workers):
    worker = sklearn_workers["regressor"]
    answer = harness.invoke(worker, as_json(ROWS[:2]), "application/json; charset=utf-8",
                            accept="text/html;q=1, text/csv;q=0.5, application/json;q=0.2")
    assert answer.content_type == "text/csv"


def test_nan_input_gets_scikit_learns_own_validation(harness, sklearn_workers):
    with pytest.raises(ModelInvocationError, match="NaN"):
        harness.invoke(sklearn_workers["logistic"], b"[[1.0, NaN, 2.0, 3.0]]".replace(
            b"NaN", b"null"))


def test_concurrent_requests_are_answered_in_order(artifacts, harness, sklearn_workers):
    worker = sklearn_workers["regressor"]
    model = artifacts[1]["regressor"]
    rows = np.random.default_rng(5).normal(size=(40, 4))

    async def many():
        return await asyncio.gather(*(worker.invoke(as_json(row), "application/json")
                                      for row in rows))

    answers = harness.run(many())
    got = [json.loads(answer.body)[0] for answer in answers]
    np.testing.assert_allclose(got, model.predict(rows), atol=1e-9)


def test_named_features_reach_a_pipeline_that_selects_columns_by_name(artifacts, harness,
                                                                       sklearn_workers):
    import pandas

    model = artifacts[1]["pipeline"]
    worker = sklearn_workers["pipeline"]
    frame = pandas.DataFrame({"city": ["lima", "oslo"], "reading": [1.5, -0.5]})
    expected = model.predict(frame).tolist()
    records = json.dumps(frame.to_dict(orient="records")).encode()
    assert json.loads(harness.invoke(worker, records).body) == expected
    # the same rows as CSV (or JSON rows) in the model's column order
    as_csv = harness.invoke(worker, b"lima,1.5\noslo,-0.5\n", "text/csv", accept="text/csv")
    assert as_csv.body.decode().split() == expected
    columns = json.dumps({"inputs": frame.to_dict(orient="list")}).encode()
    proba = harness.invoke(worker, columns, custom_attributes="method=predict_proba")
    np.testing.assert_allclose(json.loads(proba.body), model.predict_proba(frame), atol=1e-12)
    with pytest.raises(ModelInvocationError, match=r"lacks features \['reading'\]"):
        harness.invoke(worker, b'[{"city": "lima"}]')


# ------------------------------------------------------------------------ errors

def test_unsupported_content_type_is_415_naming_type_and_accepted(harness, sklearn_workers):
    with pytest.raises(UnsupportedContentType) as caught:
        harness.invoke(sklearn_workers["logistic"], b"<rows/>", "application/xml")
    assert caught.value.status == 415
    assert "application/xml" in caught.value.message
    for accepted in ("application/json", "text/csv", "application/x-npy"):
        assert accepted in caught.value.message


def test_unsupported_accept_is_415(harness, sklearn_workers):
    with pytest.raises(UnsupportedContentType, match="image/png"):
        harness.invoke(sklearn_workers["logistic"], as_json(ROWS), accept="image/png")


def test_malformed_body_is_a_model_error_and_the_worker_keeps_serving(harness,
                                                                       sklearn_workers):
    worker = sklearn_workers["logistic"]
    with pytest.raises(ModelInvocationError, match="not valid JSON") as caught:
        harness.invoke(worker, b"[[1, 2,")
    assert (caught.value.status, caught.value.code) == (424, "ModelError")
    assert worker.alive
    assert harness.invoke(worker, as_json(ROWS[:1])).body.startswith(b"[")


def test_wrong_number_of_features_quotes_scikit_learn(harness, sklearn_workers):
    with pytest.raises(ModelInvocationError, match="3 features"):
        harness.invoke(sklearn_workers["logistic"], b"[[1.0, 2.0, 3.0]]")


def test_unknown_method_lists_the_available_ones(harness, sklearn_workers):
    with pytest.raises(InvalidInput, match="predict_proba") as caught:
        harness.invoke(sklearn_workers["regressor"], as_json(ROWS),
                       custom_attributes="method=predict_proba")
    assert "available: predict" in caught.value.message


# ---------------------------------------------------------------- process lifecycle

def test_ready_info_describes_the_model(artifacts, sklearn_workers):
    import sklearn

    info = sklearn_workers["logistic"].info
    assert info["framework"] == "sklearn" and info["format"] == "joblib"
    assert info["framework_version"] == sklearn.__version__
    assert info["library_versions"]["scikit-learn"] == sklearn.__version__
    assert info["signature"]["inputs"] == [{"name": "input", "shape": [-1, 4]}]
    assert info["signature"]["outputs"][0]["classes"] == sorted(set(CLASSES.tolist()))
    assert info["custom_code"] is False and info["load_seconds"] > 0
    assert info["pid"] == sklearn_workers["logistic"].pid != os.getpid()


def test_crash_reaches_the_waiting_caller_promptly(puppet, harness):
    started = time.monotonic()
    with pytest.raises(WorkerCrashed, match="exit code 7") as caught:
        harness.invoke(puppet, b"exit 7", "text/plain", timeout=60)
    assert time.monotonic() - started < 5
    assert caught.value.status == 500
    assert not puppet.alive
    with pytest.raises(WorkerCrashed):
        harness.invoke(puppet, b"say again", "text/plain")


def test_killed_worker_fails_pending_requests_with_the_signal(puppet, harness):
    async def kill_during_request():
        pending = asyncio.ensure_future(puppet.invoke(b"hang", "text/plain"))
        await asyncio.sleep(0.3)
        os.kill(puppet.pid, 9)
        return await pending

    with pytest.raises(WorkerCrashed, match="SIGKILL"):
        harness.run(kill_during_request())


def test_a_hung_worker_times_out_and_is_stopped(puppet, harness):
    started = time.monotonic()
    with pytest.raises(WorkerCrashed, match="did not answer within 0.5 s"):
        harness.invoke(puppet, b"hang", "text/plain", timeout=0.5)
    assert time.monotonic() - started < 5
    deadline = time.monotonic() + 5
    while puppet._process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert puppet._process.poll() is not None


def test_user_output_goes_to_the_log_file(puppet, harness, tmp_path):
    answer = harness.invoke(puppet, b"say hello from user code", "text/plain")
    assert (answer.body, answer.content_type) == (b"SAY HELLO FROM USER CODE", "text/plain")
    harness.run(puppet.close())
    log = (tmp_path / "puppet.log").read_text()
    assert "hello from user code" in log and "to stderr" in log


def test_close_is_idempotent(puppet, harness):
    harness.run(puppet.close())
    harness.run(puppet.close())
    assert not puppet.alive
    with pytest.raises(WorkerCrashed, match="closed"):
        harness.invoke(puppet, b"say x", "text/plain")


def test_worker_exits_when_its_parent_dies(artifacts):
    base, _ = artifacts
    script = textwrap.dedent(f"""
        import asyncio, os
        from pathlib import Path
        from forestream.models.serving.worker import ModelWorker

        async def main():
            worker = ModelWorker(Path({str(base / "puppet")!r}), "sklearn", trusted=True)
            await worker.start()
            print(worker.pid, flush=True)
            os._exit(0)  # die without closing the worker

        asyncio.run(main())
        """)
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60)
    worker_pid = int(parent.stdout.strip())
    deadline = time.monotonic() + 10
    while _running(worker_pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _running(worker_pid)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_untrusted_pickle_is_refused_before_any_process_starts(artifacts, harness):
    base, _ = artifacts
    worker = ModelWorker(base / "logistic", "sklearn", trusted=False)
    with pytest.raises(ImportRefused, match="--trust") as caught:
        harness.run(worker.start())
    assert "model.joblib" in caught.value.message
    assert caught.value.status == 400


def test_a_model_that_fails_to_load_raises_model_load_error(tmp_path, harness):
    (tmp_path / "model.joblib").write_bytes(b"this is not a joblib file at all")
    with pytest.raises(ModelLoadError, match="model.joblib") as caught:
        harness.start(tmp_path, "sklearn")
    assert "failed" in caught.value.message


def test_model_fn_errors_are_reported_and_logged(tmp_path, harness):
    write_code(tmp_path, """
        def model_fn(model_dir):
            raise RuntimeError("weights are missing")

        def predict_fn(data, model):
            return data
        """)
    with pytest.raises(ModelLoadError, match="RuntimeError: weights are missing"):
        harness.start(tmp_path, "sklearn", log_path=tmp_path / "w.log")
    assert "Traceback" in (tmp_path / "w.log").read_text()


# ---------------------------------------------------------------- validate_artifact

def test_validate_artifact_records_versions_signature_and_sample(artifacts):
    base, models = artifacts
    result = validate_artifact(base / "logistic", "sklearn", trusted=True,
                               sample=as_json(ROWS[:2]), content_type="application/json")
    assert result["framework"] == "sklearn"
    assert result["python_version"].count(".") == 2
    assert {"scikit-learn", "numpy", "joblib"} <= set(result["library_versions"])
    assert result["signature"]["inputs"][0]["shape"] == [-1, 4]
    assert result["sample_output"]["content_type"] == "application/json"
    assert json.loads(result["sample_output"]["preview"]) == \
        models["logistic"].predict(ROWS[:2]).tolist()


def test_validate_artifact_takes_the_signature_from_the_sample_when_the_model_has_none(
        artifacts):
    base, _ = artifacts
    result = validate_artifact(base / "summer", "sklearn", trusted=True, sample=b"[[1, 2, 3]]")
    assert result["signature"]["source"] == "sample"
    assert result["signature"]["inputs"][0]["shape"] == [-1, 3]
    assert result["sample_output"]["preview"] == "[6]"


def test_validate_artifact_reports_a_failing_sample(artifacts):
    base, _ = artifacts
    with pytest.raises(ModelValidationError, match=r"sample input \(application/json, 10 "
                                                   r"bytes\) failed: AttributeError"):
        validate_artifact(base / "summer", "sklearn", trusted=True, sample=b'[{"a": 1}]')


def test_validate_artifact_refuses_untrusted_pickles_and_empty_files(artifacts, tmp_path):
    base, _ = artifacts
    with pytest.raises(ImportRefused, match="--trust"):
        validate_artifact(base / "regressor", "sklearn", trusted=False)
    (tmp_path / "model.joblib").write_bytes(b"")
    with pytest.raises(ModelValidationError, match=r"empty \(0 bytes\)"):
        validate_artifact(tmp_path, "sklearn", trusted=True)


def test_validate_artifact_works_from_inside_an_event_loop(artifacts):
    base, _ = artifacts

    async def inside_loop():
        return validate_artifact(base / "puppet", "sklearn", trusted=True, sample=b"say hi",
                                 content_type="text/plain")

    result = asyncio.run(inside_loop())
    assert result["sample_output"] == {"content_type": "text/plain", "preview": "SAY HI"}


def test_rows_drawn_at_random_agree_with_scikit_learn_bit_for_bit(artifacts, harness,
                                                                   sklearn_workers):
    """The fast paths (no scikit-learn validation) must not change a single result."""
    rows = np.vstack([TRAIN, np.random.default_rng(9).normal(scale=4.0, size=(200, 4))])
    for name in ("logistic", "forest", "regressor"):
        model = artifacts[1][name]
        answer = harness.invoke(sklearn_workers[name], npy_bytes(rows), "application/x-npy",
                                accept="application/x-npy")
        assert np.array_equal(from_npy(answer.body), model.predict(rows))


def test_bodies_larger_than_a_pipe_buffer_travel_both_ways(artifacts, harness,
                                                             sklearn_workers):
    rows = np.random.default_rng(11).normal(size=(200_000, 4))  # 6.4 MB in, 3.2 MB out
    answer = harness.invoke(sklearn_workers["regressor"], npy_bytes(rows), "application/x-npy",
                            accept="application/x-npy")
    np.testing.assert_array_equal(from_npy(answer.body), artifacts[1]["regressor"].predict(rows))


def test_worker_keeps_the_artifact_unchanged(artifacts):
    base, _ = artifacts
    assert not list(base.rglob("__pycache__"))


def test_start_twice_is_refused(artifacts, harness, sklearn_workers):
    with pytest.raises(RuntimeError, match="already started"):
        harness.run(sklearn_workers["logistic"].start())


def test_missing_artifact_is_a_clear_error(harness):
    with pytest.raises(InvalidInput, match="does not exist"):
        harness.start(Path("/nonexistent/model/dir"), "sklearn")
