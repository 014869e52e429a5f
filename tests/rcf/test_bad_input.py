"""Bad input is refused with a ValueError and leaves the forest exactly as it was.

"Unchanged" means ``to_bytes()`` before == ``to_bytes()`` after the failed call.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from rcf_testkit import Unchanged, noisy_sine

from forestream.rcf import RandomCutForest, ThresholdedDetector


@pytest.fixture
def forest() -> RandomCutForest:
    """A warm 2-D forest with a shingle of 3 (two inputs of history in the shingle)."""
    f = RandomCutForest(dimensions=2, shingle_size=3, num_trees=10, sample_size=32,
                        random_seed=1)
    f.score_and_update(np.random.default_rng(0).standard_normal((100, 2)))
    return f


@pytest.fixture
def forest_1d() -> RandomCutForest:
    f = RandomCutForest(num_trees=10, sample_size=32, random_seed=1)
    f.score_and_update(noisy_sine(100, seed=1))
    return f


BAD_ROWS = {
    "too-short": [1.0],
    "too-long": [1.0, 2.0, 3.0],
    "nan": [np.nan, 1.0],
    "inf": [1.0, np.inf],
    "minus-inf": [-np.inf, 0.0],
    "strings": ["a", "b"],
    "none": None,
    "dict": {},
    "object": [object(), 1.0],
    "complex": [1 + 2j, 1.0],
    "3d-array": np.zeros((2, 2, 2)),
    "row-in-a-batch": [[1.0, 2.0]],
    "ragged": [[1.0, 2.0], [3.0]],
    "scalar": 1.0,
    "empty": [],
}

SINGLE_ROW_METHODS = ["score", "update", "attribution", "near_neighbours"]


@pytest.mark.parametrize("method", SINGLE_ROW_METHODS)
@pytest.mark.parametrize("bad", BAD_ROWS.values(), ids=BAD_ROWS.keys())
def test_bad_single_row_raises_value_error_and_leaves_forest_unchanged(forest, method, bad):
    with Unchanged(forest), pytest.raises(ValueError):
        getattr(forest, method)(bad)


BAD_BATCHES = {
    "wrong-width": np.zeros((5, 3)),
    "one-row-vector": np.zeros(2),
    "nan-in-last-row": np.vstack([np.zeros((9, 2)), [[0.0, np.nan]]]),
    "inf-in-first-row": np.vstack([[[np.inf, 0.0]], np.zeros((9, 2))]),
    "empty": np.zeros((0, 2)),
    "empty-list": [],
    "3d-array": np.zeros((4, 2, 2)),
    "strings": [["a", "b"], ["c", "d"]],
    "ragged": [[1.0, 2.0], [3.0]],
    "scalar": 3.0,
    "none": None,
}


@pytest.mark.parametrize("method", ["score_and_update", "update_many"])
@pytest.mark.parametrize("bad", BAD_BATCHES.values(), ids=BAD_BATCHES.keys())
def test_bad_batch_raises_value_error_and_learns_nothing(forest, method, bad):
    with Unchanged(forest), pytest.raises(ValueError):
        getattr(forest, method)(bad)


@pytest.mark.parametrize("bad", [np.nan, math.inf, -math.inf, "abc", None, [], [1.0, 2.0],
                                 [[1.0]], np.zeros((1, 1, 1))],
                         ids=["nan", "inf", "-inf", "str", "none", "empty", "two-values",
                              "2d", "3d"])
def test_bad_input_to_a_one_dimensional_forest(forest_1d, bad):
    for method in SINGLE_ROW_METHODS:
        with Unchanged(forest_1d), pytest.raises(ValueError):
            getattr(forest_1d, method)(bad)


def test_bad_input_is_refused_before_the_shingle_is_full():
    f = RandomCutForest(dimensions=2, shingle_size=4, num_trees=5, sample_size=16,
                        random_seed=3)
    f.update([1.0, 2.0])
    for bad in ([np.nan, 0.0], [1.0], "x"):
        with Unchanged(f), pytest.raises(ValueError):
            f.update(bad)
    assert np.array_equal(f.shingle[-1], [1.0, 2.0])


@pytest.mark.parametrize("call", [
    lambda f: f.impute([1.0]),  # wrong width
    lambda f: f.impute([np.inf, np.nan]),
    lambda f: f.impute(np.full(7, np.nan)),
    lambda f: f.near_neighbours([0.0, 0.0], k=0),
    lambda f: f.forecast(0),
    lambda f: f.forecast(3, coverage=0.0),
    lambda f: f.forecast(3, coverage=1.0),
    lambda f: f.forecast(3, coverage=float("nan")),
], ids=["impute-width", "impute-inf", "impute-width-7", "k-0", "horizon-0", "coverage-0",
        "coverage-1", "coverage-nan"])
def test_bad_query_arguments_raise_value_error_and_change_nothing(forest, call):
    with Unchanged(forest), pytest.raises(ValueError):
        call(forest)


def test_queries_that_need_data_or_shingles_say_so():
    empty = RandomCutForest(dimensions=2, num_trees=5, sample_size=16, random_seed=1)
    with pytest.raises(ValueError, match="at least one point"):
        empty.impute([1.0, np.nan])
    shingled = RandomCutForest(shingle_size=4, num_trees=5, sample_size=16, random_seed=1)
    with pytest.raises(ValueError, match="at least one point"):
        shingled.forecast(2)
    with pytest.raises(ValueError, match="full shingle"):
        shingled.impute([np.nan])
    unshingled = RandomCutForest(num_trees=5, sample_size=16, random_seed=1)
    unshingled.score_and_update(np.arange(10.0))
    with pytest.raises(ValueError, match="shingle_size >= 2"):
        unshingled.forecast(2)


def test_integers_too_large_for_float_raise_value_error(forest_1d):
    for call in (lambda f: f.score(10**400), lambda f: f.update([10**400]),
                 lambda f: f.score_and_update([1.0, 10**400])):
        with Unchanged(forest_1d), pytest.raises(ValueError):
            call(forest_1d)


def test_impute_with_no_leaves_to_visit_is_refused(forest_1d):
    with pytest.raises(ValueError, match="max_leaves"):
        forest_1d.impute([np.nan], max_leaves=0)


# ------------------------------------------------------------------- constructor


BAD_PARAMETERS = [
    (dict(num_trees=0), "num_trees", "[1, 10000]"),
    (dict(num_trees=-3), "num_trees", "[1, 10000]"),
    (dict(num_trees=100_000), "num_trees", "[1, 10000]"),
    (dict(num_trees=2.0), "num_trees", "[1, 10000]"),
    (dict(sample_size=1), "sample_size", "[2, 1000000]"),
    (dict(sample_size=0), "sample_size", "[2, 1000000]"),
    (dict(sample_size=None), "sample_size", "[2, 1000000]"),
    (dict(shingle_size=0), "shingle_size", "[1, 1000]"),
    (dict(shingle_size=1001), "shingle_size", "[1, 1000]"),
    (dict(time_decay=-1), "time_decay", ">= 0"),
    (dict(time_decay=-1e-9), "time_decay", ">= 0"),
    (dict(time_decay=float("nan")), "time_decay", ">= 0"),
    (dict(time_decay=float("inf")), "time_decay", ">= 0"),
    (dict(time_decay="0.1"), "time_decay", ">= 0"),
    (dict(dimensions=1.5), "dimensions", "[1, 10000]"),
    (dict(dimensions=0), "dimensions", "[1, 10000]"),
    (dict(dimensions=True), "dimensions", "[1, 10000]"),
    (dict(dimensions="2"), "dimensions", "[1, 10000]"),
    (dict(output_after=-1), "output_after", "[0, "),
    (dict(random_seed="x"), "random_seed", "integer"),
    (dict(random_seed=1.5), "random_seed", "integer"),
    (dict(dimensions=1000, shingle_size=1000), "dimensions * shingle_size", "100000"),
]


@pytest.mark.parametrize("kwargs, name, accepted", BAD_PARAMETERS,
                         ids=[",".join(f"{k}={v!r}" for k, v in kw.items())
                              for kw, _, _ in BAD_PARAMETERS])
def test_bad_constructor_parameter_names_itself_and_the_accepted_range(kwargs, name, accepted):
    with pytest.raises(ValueError) as info:
        RandomCutForest(**kwargs)
    message = str(info.value)
    assert name in message and accepted in message


def test_numpy_integers_are_accepted_as_integer_parameters():
    f = RandomCutForest(dimensions=np.int64(2), num_trees=np.int32(3),
                        sample_size=np.int16(8), random_seed=np.uint64(5))
    assert (f.dimensions, f.num_trees, f.sample_size) == (2, 3, 8)


def test_boolean_time_decay_is_refused():
    with pytest.raises(ValueError, match="time_decay"):
        RandomCutForest(time_decay=True)


def test_numpy_float32_time_decay_is_accepted():
    assert RandomCutForest(time_decay=np.float32(0.01)).time_decay == pytest.approx(0.01)


@pytest.mark.parametrize("kwargs, name", [
    (dict(alert_grade=0), "alert_grade"),
    (dict(alert_grade=1.5), "alert_grade"),
    (dict(alert_grade=float("nan")), "alert_grade"),
    (dict(averaging=0), "averaging"),
    (dict(horizon=0), "horizon"),
    (dict(warmup=-1), "warmup"),
    (dict(min_deviation_ratio=-1.0), "min_deviation_ratio"),
    (dict(refractory=-1), "refractory"),
    (dict(repeat_factor=float("inf")), "repeat_factor"),
    (dict(shape_weight=-0.5), "shape_weight"),
    (dict(stuck_after=0), "stuck_after"),
    (dict(clip=-1.0), "clip"),
    (dict(clip=float("nan")), "clip"),
    (dict(num_trees=0), "num_trees"),
    (dict(shingle_size=0), "shingle_size"),
], ids=lambda v: str(v))
def test_bad_detector_parameter_names_itself(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ThresholdedDetector(**kwargs)


def test_bad_input_leaves_the_detector_unchanged():
    detector = ThresholdedDetector(num_trees=10, sample_size=32, random_seed=1)
    detector.process_batch(noisy_sine(200, seed=2))
    before = detector.to_bytes()
    for bad in (np.nan, [1.0, 2.0], "x", None):
        with pytest.raises(ValueError):
            detector.process(bad)
    for bad in ([], np.array([0.0, np.inf]), np.zeros((3, 2)), np.zeros((2, 2, 2))):
        with pytest.raises(ValueError):
            detector.process_batch(bad)
    assert detector.to_bytes() == before


# ------------------------------------------------------------------ serialization


def _blob(compress: bool = True) -> bytes:
    f = RandomCutForest(shingle_size=4, num_trees=10, sample_size=32, random_seed=1)
    f.score_and_update(noisy_sine(200, seed=1))
    return f.to_bytes(compress=compress)


@pytest.mark.parametrize("compress", [True, False], ids=["zip", "raw"])
def test_garbage_bytes_raise_value_error(compress):
    blob = _blob(compress)
    magic = blob[:6]
    detector_blob = ThresholdedDetector(num_trees=5, sample_size=16, random_seed=1).to_bytes()
    garbage = {
        "empty": b"",
        "text": b"hello, forest",
        "random": np.random.default_rng(0).bytes(5000),
        "magic-only": magic,
        "bad-json-header": magic + (5).to_bytes(4, "little") + b"{nope",
        "detector-blob": detector_blob,
        "reversed": blob[::-1],
    }
    for name, bad in garbage.items():
        with pytest.raises(ValueError):
            RandomCutForest.from_bytes(bad)
        if name != "detector-blob":
            with pytest.raises(ValueError):
                ThresholdedDetector.from_bytes(bad)
    with pytest.raises(ValueError):
        ThresholdedDetector.from_bytes(blob)  # a forest is not a detector
    with pytest.raises((TypeError, ValueError)):
        RandomCutForest.from_bytes("not bytes")


@pytest.mark.parametrize("compress", [True, False], ids=["zip", "raw"])
def test_truncated_or_damaged_bytes_raise_value_error(compress):
    blob = _blob(compress)
    header_end = 6 + 4 + int.from_bytes(blob[6:10], "little")
    damaged = [blob[:n] for n in (header_end, header_end + 10, len(blob) // 2, len(blob) - 1)]
    mid = len(blob) // 2
    damaged.append(blob[:mid] + bytes([blob[mid] ^ 0xFF]) + blob[mid + 1 :])
    damaged.append(blob[:-200] + bytes([blob[-200] ^ 0xFF]) + blob[-199:])
    for bad in damaged:
        with pytest.raises(ValueError):
            RandomCutForest.from_bytes(bad)
    detector = ThresholdedDetector(num_trees=5, sample_size=16, random_seed=1).to_bytes(
        compress=compress)
    for n in (len(detector) // 2, len(detector) - 1):
        with pytest.raises(ValueError):
            ThresholdedDetector.from_bytes(detector[:n])


def test_raw_layout_refuses_arrays_it_does_not_know():
    import json as json_module
    import zlib

    blob = _blob(compress=False)
    n = int.from_bytes(blob[6:10], "little")
    header = json_module.loads(blob[10 : 10 + n])
    for change in ({"dtype": "|O"}, {"shape": [-1]}, {"shape": [10**9]}):
        bad = json_module.loads(json_module.dumps(header))
        entry = bad["arrays"][0]
        entry[1] = change.get("dtype", entry[1])
        entry[2] = change.get("shape", entry[2])
        encoded = json_module.dumps(bad).encode()
        with pytest.raises(ValueError):
            RandomCutForest.from_bytes(blob[:6] + len(encoded).to_bytes(4, "little") + encoded
                                       + blob[10 + n :])
    extra = blob + b"\0" * 8  # bytes after the last array (checksum made to match)
    header["crc32"] = zlib.crc32(extra[10 + n :])
    encoded = json_module.dumps(header).encode()
    with pytest.raises(ValueError, match="after the last array"):
        RandomCutForest.from_bytes(extra[:6] + len(encoded).to_bytes(4, "little") + encoded
                                   + extra[10 + n :])
