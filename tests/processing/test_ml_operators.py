"""Per-key Random Cut Forest operators: ANOMALY_SCORE, explanations, thresholded grades,
one forest per key, and exact continuation across checkpoint/restore."""

from __future__ import annotations

import math
import random

import pytest
from processing_testkit import StepLimit

from forestream.processing import ListSink, StreamExecutionEnvironment

SMALL = {"num_trees": 20, "sample_size": 64}


class Crash(RuntimeError):
    pass


def two_keys(n=300, seed=0):
    """Key A around (100, 50), key B around (0, 0): interleaved A, B, A, B, ..."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        out.append({"k": "A", "i": i, "x": 100 + rng.gauss(0, 1), "y": 50 + rng.gauss(0, 1)})
        out.append({"k": "B", "i": i, "x": rng.gauss(0, 1), "y": rng.gauss(0, 1)})
    return out


def score(data, batch_size=50, **kwargs):
    env = StreamExecutionEnvironment(batch_size=batch_size)
    out = (env.from_collection(data).key_by(lambda v: v["k"])
           .random_cut_forest(["x", "y"], **{**SMALL, **kwargs}).collect())
    env.execute()
    return out


def test_scores_are_added_and_zero_until_output_after_per_key():
    data = two_keys(100)
    out = score(data, output_after=16)
    assert [{k: v for k, v in r.items() if k != "ANOMALY_SCORE"} for r in out.values] == data
    assert [r.key for r in out.records] == [d["k"] for d in data]
    for key in "AB":
        scores = [v["ANOMALY_SCORE"] for v in out.values if v["k"] == key]
        assert scores[:16] == [0.0] * 16
        assert all(s > 0 for s in scores[16:])
        assert all(isinstance(s, float) for s in scores)


def test_the_default_output_after_is_a_quarter_of_the_sample_size():
    out = score(two_keys(40), batch_size=7)
    for key in "AB":
        scores = [v["ANOMALY_SCORE"] for v in out.values if v["k"] == key]
        assert scores[:16] == [0.0] * 16 and scores[16] > 0


def test_each_key_has_its_own_forest():
    probe = {"x": 100.0, "y": 50.0, "probe": True}
    data = two_keys(300) + [{"k": "A", "i": -1, **probe}, {"k": "B", "i": -1, **probe}]
    out = score(data)
    normal_b = [v["ANOMALY_SCORE"] for v in out.values[-202:-2] if v["k"] == "B"]
    probe_a, probe_b = (v["ANOMALY_SCORE"] for v in out.values[-2:])
    # (100, 50) is ordinary for A and far out for B
    assert probe_b > 3 * probe_a
    assert probe_b > 1.5 * max(normal_b)
    assert probe_a < 1.5


def test_scores_do_not_depend_on_batching():
    data = two_keys(120, seed=3)
    reference = [v["ANOMALY_SCORE"] for v in score(data, batch_size=1).values]
    for batch_size in (7, 1000):
        assert [v["ANOMALY_SCORE"] for v in score(data, batch_size).values] == reference


def test_a_key_scores_the_same_with_or_without_other_keys():
    # forests are seeded in the order keys first appear: B first in both runs
    data = two_keys(120, seed=6)
    b_first = [x for pair in zip(data[1::2], data[0::2], strict=True) for x in pair]
    interleaved = [v["ANOMALY_SCORE"] for v in score(b_first, batch_size=9).values
                   if v["k"] == "B"]
    alone = [v["ANOMALY_SCORE"] for v in score(data[1::2], batch_size=9).values]
    assert interleaved == alone


def test_runs_are_deterministic_and_seeded():
    data = two_keys(80)
    first = [v["ANOMALY_SCORE"] for v in score(data).values]
    assert [v["ANOMALY_SCORE"] for v in score(data).values] == first
    assert [v["ANOMALY_SCORE"] for v in score(data, random_seed=9).values] != first


def test_a_record_without_the_field_is_an_error_naming_it():
    env = StreamExecutionEnvironment()
    (env.from_collection([{"k": 1, "x": 1.0}]).key_by(lambda v: v["k"])
     .random_cut_forest(["x", "y"], **SMALL).collect())
    with pytest.raises(ValueError, match="'y'"):
        env.execute()


# ------------------------------------------------------------------------ explanations
def explained(data, **kwargs):
    out = score(data, explain=True, **kwargs)
    return out.values


def test_explanations_add_up_to_the_score_and_point_the_right_way():
    rng = random.Random(5)
    data = [{"k": "s", "x": 10 + rng.gauss(0, 0.5), "y": 20 + rng.gauss(0, 0.5)}
            for _ in range(200)]
    data.append({"k": "s", "x": 25.0, "y": 20.0, "spike": "x up"})
    data.append({"k": "s", "x": 10.0, "y": 5.0, "spike": "y down"})
    values = explained(data)
    for v in values:
        parts = v["ANOMALY_EXPLANATION"]
        assert set(parts) == {"x", "y"}
        assert abs(sum(p["ATTRIBUTION_SCORE"] for p in parts.values())
                   - v["ANOMALY_SCORE"]) <= 1e-9
        for p in parts.values():
            assert 0.0 <= p["STRENGTH"] <= 1.0
            assert p["DIRECTION"] in ("HIGH", "LOW")
            assert p["ATTRIBUTION_SCORE"] >= 0.0
    up, down = values[-2], values[-1]
    normal = [v["ANOMALY_SCORE"] for v in values[100:200]]
    assert up["ANOMALY_SCORE"] > 2 * max(normal)
    assert up["ANOMALY_EXPLANATION"]["x"]["DIRECTION"] == "HIGH"
    assert up["ANOMALY_EXPLANATION"]["x"]["ATTRIBUTION_SCORE"] > \
        3 * up["ANOMALY_EXPLANATION"]["y"]["ATTRIBUTION_SCORE"]
    assert up["ANOMALY_EXPLANATION"]["x"]["STRENGTH"] > 0.9
    assert down["ANOMALY_EXPLANATION"]["y"]["DIRECTION"] == "LOW"
    assert down["ANOMALY_EXPLANATION"]["y"]["ATTRIBUTION_SCORE"] > \
        down["ANOMALY_EXPLANATION"]["x"]["ATTRIBUTION_SCORE"]


def test_explanations_before_output_after_are_zero():
    values = explained(two_keys(20), output_after=16)
    first = values[0]
    assert first["ANOMALY_SCORE"] == 0.0
    assert all(p["ATTRIBUTION_SCORE"] == 0.0 and p["STRENGTH"] == 0.0
               for p in first["ANOMALY_EXPLANATION"].values())


def test_explained_scores_equal_the_batch_path_scores():
    data = two_keys(100, seed=11)
    plain = [v["ANOMALY_SCORE"] for v in score(data, batch_size=25).values]
    with_explanations = [v["ANOMALY_SCORE"] for v in explained(data, batch_size=25)]
    assert with_explanations == plain


# -------------------------------------------------------------------------- thresholded
def series(n=600, spike_at=500, seed=1):
    rng = random.Random(seed)
    data = [{"k": "s", "i": i, "v": 10 + math.sin(i / 8) + 0.1 * rng.gauss(0, 1)}
            for i in range(n)]
    data[spike_at]["v"] = 25.0
    return data


def graded(data, batch_size=100):
    env = StreamExecutionEnvironment(batch_size=batch_size)
    out = (env.from_collection(data).key_by(lambda v: v["k"])
           .thresholded_random_cut_forest(["v"], random_seed=3, **SMALL).collect())
    env.execute()
    return out.values


def test_thresholded_rcf_flags_an_injected_spike():
    values = graded(series())
    assert all(0.0 <= v["ANOMALY_GRADE"] <= 1.0 for v in values)
    assert all("ANOMALY_SCORE" in v for v in values)
    strong = [v["i"] for v in values if v["ANOMALY_GRADE"] > 0.5]
    assert strong == [500]
    spike = values[500]
    assert spike["ANOMALY_EXPLANATION"]["field"] == "v"
    assert spike["ANOMALY_EXPLANATION"]["relative_index"] == 0
    assert abs(spike["ANOMALY_EXPLANATION"]["expected_value"] - 10) < 2
    assert all("ANOMALY_EXPLANATION" not in v for v in values if v["ANOMALY_GRADE"] == 0)


def test_thresholded_rcf_keeps_a_detector_per_key():
    a = series(seed=1)
    # t's own spike more than `refractory` (100) inputs before its second incident
    b = [dict(d, k="t", v=d["v"] + 1000) for d in series(seed=2, spike_at=380)]
    b[500]["v"] = 10.0  # ordinary for key s, far out for key t
    values = graded([x for pair in zip(a, b, strict=True) for x in pair])
    flagged = {(v["k"], v["i"]) for v in values if v["ANOMALY_GRADE"] > 0.5}
    assert ("s", 500) in flagged and ("t", 380) in flagged and ("t", 500) in flagged


# ---------------------------------------------------------------- checkpoint / restore
def ml_job(env, sink_scores, sink_grades, crash=None):
    def crash_at(v):
        if crash is not None and v.get("n") == crash:
            raise Crash(str(crash))
        return v

    data = [dict(d, n=n) for n, d in enumerate(two_keys(150, seed=4))]
    source = env.from_collection(data).map(crash_at).key_by(lambda v: v["k"])
    source.random_cut_forest(["x", "y"], explain=True, **SMALL).sink_to(sink_scores)
    (env.from_collection(series(300, spike_at=250)).key_by(lambda v: v["k"])
     .thresholded_random_cut_forest(["v"], random_seed=3, **SMALL).sink_to(sink_grades))


def test_scores_after_checkpoint_and_restore_equal_an_uninterrupted_run(tmp_path):
    ref_scores, ref_grades = ListSink(), ListSink()
    env = StreamExecutionEnvironment(batch_size=20)
    ml_job(env, ref_scores, ref_grades)
    env.execute()
    assert max(v["ANOMALY_GRADE"] for v in ref_grades.values) > 0.5

    def env_():
        return StreamExecutionEnvironment(batch_size=20, checkpoint_dir=tmp_path / "ckpt",
                                          checkpoint_interval=0.0)

    scores, grades = ListSink(), ListSink()
    env = env_()
    ml_job(env, scores, grades, crash=171)  # a crash in the middle of a batch
    with pytest.raises(Crash):
        env.execute()
    env = env_()
    ml_job(env, scores, grades)
    assert env.execute().restored_from is not None
    assert scores.values == ref_scores.values
    assert grades.values == ref_grades.values


def test_scores_after_stop_and_resume_equal_an_uninterrupted_run(tmp_path):
    ref_scores, ref_grades = ListSink(), ListSink()
    env = StreamExecutionEnvironment(batch_size=20)
    ml_job(env, ref_scores, ref_grades)
    env.execute()
    runs = []
    for until in (StepLimit(4), StepLimit(3), None):
        env = StreamExecutionEnvironment(batch_size=20, checkpoint_dir=tmp_path / "ckpt",
                                         checkpoint_interval=3600)
        scores, grades = ListSink(), ListSink()
        ml_job(env, scores, grades)
        env.execute(until=until)
        runs.append((scores.values, grades.values))
    assert [v for s, _ in runs for v in s] == ref_scores.values
    assert [v for _, g in runs for v in g] == ref_grades.values
