"""Hand-computed NAB scores and the exactness of the threshold sweep."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from nab_testkit import make_file, naive_file_score

from forestream.eval import (
    NO_DETECTION_THRESHOLD,
    PROFILES,
    CostWeights,
    probation_length,
    scaled_sigmoid,
    score_corpus,
    threshold_curve,
)

# One file of 100 rows: probationary period 15 rows, one window over rows 50..59 (width 10).
N, FIRST, LAST = 100, 50, 59
S_MINUS_1 = math.tanh(2.5)  # S(y) = tanh(-5y/2), so S(-1) = tanh(2.5)
A_FP = PROFILES["standard"].fp


def one_window_file():
    return make_file("cat/one.csv", N, [(FIRST, LAST)])


def standard_at(detections: list[int], threshold: float = 0.5, nab_file=None):
    """Raw standard-profile result with detections (score 1.0) at the given rows."""
    nab_file = nab_file or one_window_file()
    scores = np.zeros(nab_file.n_rows)
    scores[detections] = 1.0
    report = score_corpus(
        {nab_file.name: scores},
        [nab_file],
        profiles={"standard": PROFILES["standard"]},
        thresholds={"standard": threshold},
    )
    return report["standard"]


def test_profiles_match_nab_config():
    assert PROFILES["standard"] == CostWeights(tp=1.0, fp=0.11, fn=1.0, tn=1.0)
    assert PROFILES["reward_low_FP_rate"] == CostWeights(tp=1.0, fp=0.22, fn=1.0, tn=1.0)
    assert PROFILES["reward_low_FN_rate"] == CostWeights(tp=1.0, fp=0.11, fn=2.0, tn=1.0)
    assert PROFILES["standard"]["fpWeight"] == 0.11


def test_scaled_sigmoid_and_probation():
    assert float(scaled_sigmoid(-1.0)) == pytest.approx(0.98661, abs=1e-5)
    assert float(scaled_sigmoid(0.0)) == 0.0
    assert float(scaled_sigmoid(3.0)) > -1.0  # only y > 3 is clamped
    assert float(scaled_sigmoid(3.0001)) == -1.0
    assert probation_length(100) == 15
    assert probation_length(4032) == 604
    assert probation_length(5000) == 750
    assert probation_length(22695) == 750


def test_detection_at_window_start_is_worth_exactly_one():
    result = standard_at([FIRST])
    assert result.raw == pytest.approx(1.0, abs=1e-12)
    assert (result.detected_windows, result.missed_windows) == (1, 0)
    assert (result.tp, result.fp) == (1, 0)


def test_detection_at_window_end():
    # y = -(59 - 59 + 1) / 10 = -0.1, so the TP is worth S(-0.1) / S(-1).
    result = standard_at([LAST])
    assert result.raw == pytest.approx(math.tanh(0.25) / S_MINUS_1, abs=1e-12)
    assert result.raw == pytest.approx(0.248242, abs=1e-6)


def test_detection_before_window_is_full_false_positive():
    # No preceding window: -A_FP, plus the window is missed: -A_FN.
    result = standard_at([30])
    assert result.raw == pytest.approx(-A_FP - 1.0, abs=1e-12)
    assert (result.fp, result.missed_windows) == (1, 1)


def test_detection_just_after_window_costs_little():
    # y' = |59 - 60| / (10 - 1) = 1/9; the FP is worth A_FP * S(1/9).
    result = standard_at([FIRST, LAST + 1])
    fp = A_FP * math.tanh(-5.0 / 18.0)
    assert fp == pytest.approx(-0.0298, abs=1e-4)
    assert result.raw == pytest.approx(1.0 + fp, abs=1e-12)
    # Far after the window (y' = 28/9 > 3) it costs the full A_FP.
    far = standard_at([FIRST, LAST + 28])
    assert far.raw == pytest.approx(1.0 - A_FP, abs=1e-12)


def test_two_detections_in_one_window_count_once():
    # Only the first detection counts: y = -(59 - 52 + 1) / 10 = -0.8.
    result = standard_at([52, 55])
    assert result.raw == pytest.approx(math.tanh(2.0) / S_MINUS_1, abs=1e-12)
    assert result.detected_windows == 1
    assert result.tp == 2  # NAB counts detected rows


def test_detections_in_probationary_period_are_ignored():
    result = standard_at([0, 5, 14])
    assert result.raw == pytest.approx(-1.0, abs=1e-12)
    assert result.fp == 0
    # Row 15 is the first scored row.
    assert standard_at([15]).raw == pytest.approx(-1.0 - A_FP, abs=1e-12)


def test_window_in_probationary_period_is_neither_hit_nor_missed():
    nab_file = make_file("cat/early.csv", N, [(2, 8), (FIRST, LAST)])
    result = standard_at([FIRST], nab_file=nab_file)
    assert result.raw == pytest.approx(1.0, abs=1e-12)
    assert result.missed_windows == 0
    # A detection after it is still judged against it (y' = |8 - 20| / 6 = 2).
    after = standard_at([FIRST, 20], nab_file=nab_file)
    assert after.raw == pytest.approx(1.0 + A_FP * math.tanh(-5.0), abs=1e-12)


def test_missed_window_costs_fn_weight_per_profile():
    nab_file = one_window_file()
    report = score_corpus(
        {nab_file.name: np.zeros(N)}, [nab_file], thresholds=dict.fromkeys(PROFILES, 0.5)
    )
    assert report["standard"].raw == pytest.approx(-1.0)
    assert report["reward_low_FP_rate"].raw == pytest.approx(-1.0)
    assert report["reward_low_FN_rate"].raw == pytest.approx(-2.0)


def test_file_without_windows_or_detections_scores_zero():
    quiet = make_file("cat/quiet.csv", N, [])
    report = score_corpus({quiet.name: np.zeros(N)}, [quiet])
    for result in report.profiles.values():
        assert result.raw == 0.0
        assert result.file_scores == {quiet.name: 0.0}
        assert math.isnan(result.normalised)  # perfect == null == 0: undefined


def test_perfect_detector_scores_100_and_null_scores_0():
    corpus = [
        make_file("a/one.csv", 400, [(100, 139), (300, 339)]),
        make_file("a/two.csv", 300, [(200, 229)]),
        make_file("b/none.csv", 250, []),
    ]
    perfect = {}
    for f in corpus:
        scores = np.zeros(f.n_rows)
        for first, _ in f.window_rows:
            scores[first] = 1.0
        perfect[f.name] = scores
    report = score_corpus(perfect, corpus)
    for name, result in report.profiles.items():
        assert result.normalised == pytest.approx(100.0), name
        assert result.perfect == pytest.approx(3 * PROFILES[name].tp)
        assert result.null == pytest.approx(-3 * PROFILES[name].fn)
        assert result.threshold == 1.0
    null = score_corpus({f.name: np.full(f.n_rows, 0.5) for f in corpus}, corpus)
    for result in null.profiles.values():
        assert result.normalised == pytest.approx(0.0)
        assert result.threshold == NO_DETECTION_THRESHOLD


def random_corpus(seed: int):
    rng = np.random.default_rng(seed)
    corpus = [
        make_file("r/a.csv", 300, [(60, 89), (200, 229)]),
        make_file("r/b.csv", 240, [(30, 49), (150, 189)]),  # first window in probation
        make_file("r/c.csv", 200, []),
        make_file("s/d.csv", 260, [(100, 100), (230, 259)]),  # one-row window, window at end
    ]
    # Rounded scores create ties inside and across files; a few spikes sit in windows.
    results = {}
    for f in corpus:
        scores = np.round(rng.beta(0.5, 3.0, f.n_rows), 2)
        for first, last in f.window_rows:
            scores[rng.integers(first, last + 1)] = np.round(rng.uniform(0.5, 1.0), 2)
        results[f.name] = scores
    return corpus, results


def naive_total(corpus, results, weights: CostWeights, threshold: float) -> float:
    return sum(
        naive_file_score(
            f.window_rows,
            results[f.name],
            threshold,
            weights.tp,
            weights.fp,
            weights.fn,
            probation_length(f.n_rows),
        )
        for f in corpus
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threshold_optimisation_matches_brute_force(seed):
    corpus, results = random_corpus(seed)
    report = score_corpus(results, corpus)
    all_scores = np.concatenate([results[f.name] for f in corpus])
    candidates = [NO_DETECTION_THRESHOLD, *np.unique(all_scores).tolist()]
    for name, weights in PROFILES.items():
        brute = {t: naive_total(corpus, results, weights, t) for t in candidates}
        best = max(brute.values())
        result = report[name]
        assert result.raw == pytest.approx(best, abs=1e-9), name
        assert brute[result.threshold] == pytest.approx(best, abs=1e-9), name
        assert result.threshold == max(t for t, s in brute.items() if s >= best - 1e-9)
        assert sum(result.file_scores.values()) == pytest.approx(result.raw, abs=1e-12)
        # The whole sweep agrees with the brute force at every candidate threshold.
        thresholds, totals = threshold_curve(results, corpus, weights)
        assert thresholds[0] == NO_DETECTION_THRESHOLD
        assert np.all(np.diff(thresholds) < 0)
        naive = np.array([naive_total(corpus, results, weights, t) for t in thresholds])
        np.testing.assert_allclose(totals, naive, atol=1e-9)


def test_fixed_threshold_scores_like_brute_force():
    corpus, results = random_corpus(5)
    report = score_corpus(results, corpus, thresholds={"standard": 0.37})
    expected = naive_total(corpus, results, PROFILES["standard"], 0.37)
    assert report["standard"].threshold == 0.37
    assert report["standard"].raw == pytest.approx(expected, abs=1e-9)


def test_bad_scores_are_rejected_with_file_name():
    nab_file = one_window_file()
    with pytest.raises(KeyError, match="cat/one.csv"):
        score_corpus({}, [nab_file])
    with pytest.raises(ValueError, match="cat/one.csv.*expected 100"):
        score_corpus({nab_file.name: np.zeros(99)}, [nab_file])
    bad = np.zeros(N)
    bad[7] = np.nan
    with pytest.raises(ValueError, match="row 7"):
        score_corpus({nab_file.name: bad}, [nab_file])
    with pytest.raises(ValueError, match="unknown profile"):
        score_corpus({nab_file.name: np.zeros(N)}, [nab_file], thresholds={"nope": 0.5})


def test_sweep_is_fast_on_nab_sized_corpus():
    rng = np.random.default_rng(3)
    corpus, results = [], {}
    for k in range(20):  # 200k rows, ~200k distinct thresholds
        n = 10_000
        spans = [(int(a), int(a) + 199) for a in (2000, 5000, 8000)]
        nab_file = make_file(f"big/f{k}.csv", n, spans, seed=k)
        corpus.append(nab_file)
        results[nab_file.name] = rng.random(n)
    start = time.perf_counter()
    report = score_corpus(results, corpus)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0, f"scoring 200k rows took {elapsed:.2f}s"
    assert report.n_rows == 200_000 and report.n_windows == 60
