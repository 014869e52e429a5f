"""Behaviour of the streaming RandomCutForest: scores, attribution, batches, determinism,
serialization, and the ThresholdedDetector built on it."""

from __future__ import annotations

import itertools
import math

import numba
import numpy as np
import pytest
from rcf_testkit import assert_same_state, noise_with_spikes, noisy_sine, one_numba_thread

from forestream.rcf import RandomCutForest, ThresholdedDetector
from forestream.rcf._tree import CUT_DIM, EMPTY, HIGH, LEAF_MASS, LEFT, LOW, RIGHT, ROOT


def _per_row(forest: RandomCutForest, X) -> np.ndarray:
    """Scores from ``score(x)`` then ``update(x)``, one row at a time."""
    out = np.empty(len(X))
    with one_numba_thread():
        for i, x in enumerate(X):
            out[i] = forest.score(x)
            forest.update(x)
    return out


# ------------------------------------------------------------------ score semantics


def _reference_tree_score(state, t: int, p: np.ndarray) -> float:
    """The scalar score of RCF.md, computed by walking tree ``t`` in plain Python."""
    ref = int(state.trees[t, ROOT])
    if ref == EMPTY:
        return 0.0
    tree_mass = (state.leaves[t, -ref - 1, LEAF_MASS] if ref < 0
                 else state.nodes[t, ref, 4])
    path = []
    while ref >= 0:
        path.append(ref)
        side = LEFT if p[state.nodes[t, ref, CUT_DIM]] <= state.cut_values[t, ref] else RIGHT
        ref = int(state.nodes[t, ref, side])
    leaf = -ref - 1
    depth = len(path)
    if np.array_equal(state.leaf_point[t, leaf], p):
        m = state.leaves[t, leaf, LEAF_MASS]
        score = (1.0 - m / (2.0 * tree_mass)) / (depth + math.log2(m + 1.0))
    else:
        score = 1.0 / (depth + 1.0)
    for k in range(depth - 1, -1, -1):
        low, high = state.boxes[t, path[k], LOW], state.boxes[t, path[k], HIGH]
        merged = np.maximum(high, p) - np.minimum(low, p)
        q = (merged.sum() - (high - low).sum()) / merged.sum()
        score = q / (k + 1.0) + (1.0 - q) * score
    return score * math.log2(tree_mass + 1.0)


def test_score_matches_a_python_walk_of_the_documented_formula():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((800, 3))
    X[::9] = X[4]  # a repeated point, so the "seen" branch is exercised
    forest = RandomCutForest(dimensions=3, num_trees=15, sample_size=32, random_seed=8)
    forest.score_and_update(X)
    state = forest._state
    queries = [X[4], X[-1], X[-2], rng.standard_normal(3), np.array([6.0, -1.0, 0.0]),
               np.array([0.0, 0.0, 40.0])]
    for p in queries:
        expected = np.mean([_reference_tree_score(state, t, p) for t in range(15)])
        assert forest.score(p) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_ordinary_points_score_near_one_and_far_outliers_near_log2_sample_size():
    rng = np.random.default_rng(2)
    forest = RandomCutForest(dimensions=2, num_trees=30, sample_size=64, random_seed=7)
    scores = forest.score_and_update(rng.standard_normal((2000, 2)))
    assert 0.6 < np.median(scores[500:]) < 1.3
    far = forest.score([1e6, 0.0])
    assert 0.9 * math.log2(64) < far <= math.log2(64 + 1) + 1e-9


def test_scores_are_zero_until_output_after_points_are_learned():
    x = noisy_sine(300, seed=1)
    forest = RandomCutForest(shingle_size=4, num_trees=10, sample_size=32, output_after=50,
                             random_seed=1)
    scores = forest.score_and_update(x)
    # 3 inputs complete the first shingle, then 50 points are learned before reporting
    assert np.all(scores[: 3 + 50] == 0.0)
    assert np.all(scores[3 + 50 :] > 0.0)
    fresh = RandomCutForest(shingle_size=4, num_trees=10, sample_size=32, random_seed=1)
    assert fresh.output_after == 8 and not fresh.is_ready
    assert fresh.score(0.5) == 0.0


@pytest.mark.parametrize("shingle_size", [1, 8])
def test_spikes_score_far_above_ordinary_points(shingle_size):
    rng = np.random.default_rng(4)
    t = np.arange(3000)
    y = np.sin(2 * np.pi * t / 50) + 0.05 * rng.standard_normal(3000)
    spikes = np.array([1500, 2000, 2500])
    y[spikes] += [4.0, -4.0, 4.0]
    forest = RandomCutForest(shingle_size=shingle_size, num_trees=30, sample_size=128,
                             random_seed=7)
    scores = forest.score_and_update(y)
    # a spike stays in the shingle for shingle_size points: all of those are unusual
    ordinary = np.ones(len(y), dtype=bool)
    ordinary[:500] = False
    for s in spikes:
        ordinary[s : s + shingle_size] = False
    ordinary = scores[ordinary]
    assert np.all(scores[spikes] > 2.5 * np.median(ordinary))
    assert np.all(scores[spikes] > np.max(ordinary))


def test_time_decay_zero_keeps_a_uniform_sample_of_all_history():
    forest = RandomCutForest(num_trees=30, sample_size=64, time_decay=0.0, random_seed=5)
    forest.score_and_update(np.arange(2000.0))
    held = _sampled_values(forest)
    assert len(held) == 30 * 64
    assert 900 < held.mean() < 1100  # uniform over 0..1999: mean 999.5, sd of mean ~13
    assert held.min() < 200 and held.max() > 1800


def test_default_time_decay_favours_recent_points():
    forest = RandomCutForest(num_trees=30, sample_size=64, random_seed=5)
    forest.score_and_update(np.arange(2000.0))
    held = _sampled_values(forest)
    # weights grow as exp(index / 640): the mean sampled index is about 2000 - 560
    assert held.mean() > 1300
    assert np.mean(held >= 1000) > 0.75


def _sampled_values(forest: RandomCutForest) -> np.ndarray:
    state = forest._state
    sizes = state.trees[:, 3]
    return np.concatenate([state.leaf_point[t, state.heap_leaves[t, : sizes[t]], 0]
                           for t in range(forest.num_trees)])


# ---------------------------------------------------------------------- attribution


def _attribution_cases():
    rng = np.random.default_rng(1)
    ordinary_3d = rng.standard_normal((1000, 3))
    shingled = noisy_sine(1000, seed=2)
    return [
        ("3d", dict(dimensions=3), ordinary_3d,
         [ordinary_3d[-1], ordinary_3d[400], [0.1, -0.2, 0.3], [0, 9, 0], [0, 0, -9],
          [50, 50, -50]]),
        ("2d-shingle2", dict(dimensions=2, shingle_size=2), ordinary_3d[:, :2],
         [ordinary_3d[-1, :2], [7.0, 0.0], [0.0, -7.0]]),
        ("1d-shingle8", dict(shingle_size=8), shingled, [0.0, 0.7, 5.0, -5.0]),
    ]


@pytest.mark.parametrize("case", _attribution_cases(), ids=lambda c: c[0])
def test_attribution_sums_to_the_score_with_non_negative_parts(case):
    _, kwargs, X, queries = case
    forest = RandomCutForest(num_trees=30, sample_size=64, random_seed=4, **kwargs)
    forest.score_and_update(X)
    for q in queries:
        a = forest.attribution(q)
        assert a.high.shape == a.low.shape == (forest.point_dimensions,)
        assert np.all(a.high >= 0.0) and np.all(a.low >= 0.0)
        assert a.score == pytest.approx(forest.score(q), abs=1e-9)
        assert np.allclose(a.total, a.high + a.low)


@pytest.mark.parametrize("dim", [0, 1, 2])
@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["high", "low"])
def test_outlier_in_one_dimension_puts_most_attribution_there(dim, sign):
    rng = np.random.default_rng(6)
    forest = RandomCutForest(dimensions=3, num_trees=30, sample_size=64, random_seed=2)
    forest.score_and_update(rng.standard_normal((1000, 3)))
    query = np.zeros(3)
    query[dim] = 8.0 * sign
    a = forest.attribution(query)
    part = a.high if sign > 0 else a.low
    assert part[dim] > 0.75 * a.score
    assert a.direction()[dim] == ("HIGH" if sign > 0 else "LOW")


def test_attribution_of_a_shingled_spike_points_at_the_newest_input():
    forest = RandomCutForest(dimensions=2, shingle_size=4, num_trees=30, sample_size=64,
                             random_seed=3)
    rng = np.random.default_rng(0)
    forest.score_and_update(rng.standard_normal((800, 2)) * 0.1)
    a = forest.attribution([0.0, 6.0])
    per_input = a.total.reshape(4, 2)
    assert np.unravel_index(np.argmax(per_input), per_input.shape) == (3, 1)


def test_attribution_before_the_forest_is_ready_is_zero():
    forest = RandomCutForest(dimensions=2, num_trees=5, sample_size=16, random_seed=1)
    a = forest.attribution([1.0, 2.0])
    assert a.score == 0.0 and not a.high.any() and not a.low.any()


# -------------------------------------------------------------- batches, determinism


_BATCH_CONFIGS = [
    dict(dimensions=1, shingle_size=1),
    dict(dimensions=1, shingle_size=4),
    dict(dimensions=3, shingle_size=1, output_after=0),
    dict(dimensions=2, shingle_size=5, output_after=40),
    dict(dimensions=3, shingle_size=3, output_after=7, time_decay=0.0),
]


@pytest.mark.parametrize("config", _BATCH_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_batch_score_and_update_equals_per_row_score_then_update(config):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((250, config["dimensions"]))
    X[::50] += 6.0
    kwargs = dict(num_trees=20, sample_size=32, random_seed=9, **config)
    batch = RandomCutForest(**kwargs)
    single = RandomCutForest(**kwargs)
    batch_scores = batch.score_and_update(X)
    row_scores = _per_row(single, X)
    np.testing.assert_allclose(batch_scores, row_scores, rtol=0, atol=1e-12)
    assert np.array_equal(batch_scores == 0.0, row_scores == 0.0)
    # an empty forest scores 0 too, so at least one point is learned before scores
    skipped = config["shingle_size"] - 1 + max(batch.output_after, 1)
    assert np.all(batch_scores[:skipped] == 0.0) and np.all(batch_scores[skipped:] > 0.0)
    assert_same_state(batch, single)


def test_batches_split_anywhere_give_the_same_scores_as_one_batch():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((600, 2))
    kwargs = dict(dimensions=2, shingle_size=6, num_trees=15, sample_size=32, random_seed=4)
    whole = RandomCutForest(**kwargs)
    expected = whole.score_and_update(X)
    cuts = [0, 1, 3, 4, 9, 10, 200, 201, 450, 600]  # pieces shorter than a shingle too
    pieces = RandomCutForest(**kwargs)
    got = np.concatenate([pieces.score_and_update(X[a:b])
                          for a, b in zip(cuts[:-1], cuts[1:], strict=True)])
    assert np.array_equal(got, expected)
    assert_same_state(whole, pieces)
    assert np.array_equal(pieces.shingle, X[-6:])


def test_a_batch_longer_than_the_kernel_chunk_equals_smaller_batches():
    x = noisy_sine(9000, seed=4)  # forest.py runs kernels on chunks of 8192 rows
    kwargs = dict(shingle_size=2, num_trees=10, sample_size=32, random_seed=3)
    one = RandomCutForest(**kwargs)
    many = RandomCutForest(**kwargs)
    expected = np.concatenate([many.score_and_update(x[i : i + 1000])
                               for i in range(0, 9000, 1000)])
    assert np.array_equal(one.score_and_update(x), expected)
    assert_same_state(one, many)


def test_update_many_and_update_learn_like_score_and_update():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 2))
    kwargs = dict(dimensions=2, shingle_size=3, num_trees=10, sample_size=32, random_seed=5)
    reference = RandomCutForest(**kwargs)
    reference.score_and_update(X)
    per_row = RandomCutForest(**kwargs)
    with one_numba_thread():
        for x in X:
            per_row.update(x)
    assert_same_state(reference, per_row)
    bulk = RandomCutForest(**kwargs)
    bulk.update_many(X)
    assert_same_state(reference, bulk)


def test_batches_of_any_numeric_dtype_and_memory_layout_score_alike():
    rng = np.random.default_rng(4)
    X = np.round(rng.standard_normal((300, 2)) * 4)  # exactly representable in float32
    kwargs = dict(dimensions=2, shingle_size=3, num_trees=10, sample_size=32, random_seed=6)
    expected = RandomCutForest(**kwargs).score_and_update(X)
    wide = np.zeros((300, 4))
    wide[:, ::2] = X
    variants = {"float32": X.astype(np.float32), "int64": X.astype(np.int64),
                "fortran": np.asfortranarray(X), "strided": wide[:, ::2],
                "big-endian": X.astype(">f8"), "list": X.tolist()}
    for name, data in variants.items():
        got = RandomCutForest(**kwargs).score_and_update(data)
        assert np.array_equal(got, expected), name


def test_score_points_scores_whole_shingled_points_and_learns_nothing():
    x = noisy_sine(500, seed=6)
    forest = RandomCutForest(shingle_size=4, num_trees=10, sample_size=32, random_seed=2)
    forest.score_and_update(x[:400])
    windows = np.lib.stride_tricks.sliding_window_view(x[397:], 4)
    before = forest.to_bytes()
    scores = forest.score_points(windows)
    assert forest.to_bytes() == before
    assert scores[0] == pytest.approx(forest.score(x[400]), abs=1e-12)
    # nothing is learned between the points of a batch: each scores as if alone
    for i in (1, 50, 99):
        assert forest.score_points(windows[i : i + 1])[0] == pytest.approx(scores[i], abs=1e-12)


def test_same_seed_gives_identical_scores_and_different_seeds_differ():
    x = noise_with_spikes(1500, seed=3)

    def run(seed):
        return RandomCutForest(shingle_size=4, num_trees=20, sample_size=64,
                               random_seed=seed).score_and_update(x)

    first, again, other = run(42), run(42), run(43)
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.mean(first[100:] != other[100:]) > 0.9


def test_scores_do_not_depend_on_the_number_of_threads():
    x = noisy_sine(2000, seed=1)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            forest = RandomCutForest(shingle_size=4, num_trees=20, sample_size=64,
                                     random_seed=3)
            results.append(forest.score_and_update(x))
    finally:
        numba.set_num_threads(before)
    assert all(np.array_equal(results[0], r) for r in results)


# ------------------------------------------------------------------- serialization


def _assert_continues_identically(forest: RandomCutForest, X) -> None:
    restored = RandomCutForest.from_bytes(forest.to_bytes())
    assert_same_state(forest, restored)
    assert repr(restored) == repr(forest)
    expected = forest.score_and_update(X)  # the original first: no shared buffers
    assert np.array_equal(restored.score_and_update(X), expected)
    assert_same_state(forest, restored)


@pytest.mark.parametrize("learned", [0, 3, 1000], ids=["empty", "partial-shingle", "warm"])
def test_to_bytes_from_bytes_continues_exactly(learned):
    x = noise_with_spikes(learned + 500, seed=5)
    forest = RandomCutForest(shingle_size=8, num_trees=20, sample_size=64, random_seed=11)
    if learned:
        forest.score_and_update(x[:learned])
    _assert_continues_identically(forest, x[learned:])


def test_to_bytes_from_bytes_continues_exactly_per_record_and_multidimensional():
    rng = np.random.default_rng(6)
    X = rng.standard_normal((350, 3))
    forest = RandomCutForest(dimensions=3, shingle_size=2, num_trees=15, sample_size=32,
                             time_decay=0.0, output_after=5, random_seed=-7)
    with one_numba_thread():
        for x in X[:150]:
            forest.update(x)
    restored = RandomCutForest.from_bytes(bytearray(forest.to_bytes()))
    assert _per_row(restored, X[150:]).tolist() == _per_row(forest, X[150:]).tolist()
    assert restored.random_seed == -7 and restored.time_decay == 0.0


@pytest.mark.parametrize("learned", [0, 1000], ids=["empty", "warm"])
def test_raw_bytes_continue_exactly_and_read_as_the_compressed_ones(learned):
    x = noise_with_spikes(learned + 300, seed=9)
    forest = RandomCutForest(shingle_size=4, num_trees=20, sample_size=64, random_seed=3)
    if learned:
        forest.score_and_update(x[:learned])
    raw, packed = forest.to_bytes(compress=False), forest.to_bytes()
    assert raw[:6] != packed[:6] and len(raw) > len(packed)
    assert RandomCutForest.from_bytes(raw).to_bytes() == packed  # the same state
    restored = RandomCutForest.from_bytes(raw)
    assert np.array_equal(restored.score_and_update(x[learned:]),
                          forest.score_and_update(x[learned:]))


def test_to_bytes_is_a_pure_function_of_the_state():
    forest = RandomCutForest(shingle_size=2, num_trees=5, sample_size=16, random_seed=1)
    forest.score_and_update(noisy_sine(100, seed=1))
    blob = forest.to_bytes()
    assert forest.to_bytes() == blob
    assert RandomCutForest.from_bytes(blob).to_bytes() == blob


def test_pickle_round_trip_continues_exactly():
    import pickle

    forest = RandomCutForest(shingle_size=4, num_trees=10, sample_size=32, random_seed=2)
    x = noisy_sine(700, seed=2)
    forest.score_and_update(x[:200])
    restored = pickle.loads(pickle.dumps(forest))
    assert np.array_equal(restored.score_and_update(x[200:]), forest.score_and_update(x[200:]))


# ------------------------------------------------------------------------ detector


_DETECTOR = dict(shingle_size=4, num_trees=20, sample_size=64, random_seed=5, refractory=10,
                 alert_grade=0.3, warmup=50)  # small forests: coarse scores, a lower bar


def _assert_same_descriptors(got, expected) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.index == b.index
        assert np.array_equal(a.values, b.values)
        assert a.score == pytest.approx(b.score, abs=1e-12)
        assert a.grade == pytest.approx(b.grade, abs=1e-9)
        assert a.is_anomaly == b.is_anomaly
        assert a.threshold == pytest.approx(b.threshold, abs=1e-9)
        assert a.relative_index == b.relative_index
        assert a.dimension == b.dimension


def test_detector_process_batch_equals_process_per_row():
    x = noise_with_spikes(1000, seed=1, every=120)
    batch = ThresholdedDetector(**_DETECTOR).process_batch(x)
    single_detector = ThresholdedDetector(**_DETECTOR)
    with one_numba_thread():
        single = [single_detector.process(v) for v in x]
    assert [d.index for d in batch] == list(range(len(x)))
    assert sum(d.is_anomaly for d in batch) >= 5  # the comparison covers explained rows
    _assert_same_descriptors(batch, single)


def test_detector_small_batches_explained_row_by_row_equal_one_batch():
    """A stream's batches are often a few rows: those are explained row by row (no
    rewind snapshot), with the same descriptors and explanations as one large batch."""
    x = noise_with_spikes(900, seed=4, every=110)
    whole = ThresholdedDetector(**_DETECTOR).process_batch(x, explain_min_grade=0.2)
    pieces_detector = ThresholdedDetector(**_DETECTOR)
    pieces, start = [], 0
    for size in itertools.cycle((1, 3, 7, 31, 2, 64)):
        if start >= len(x):
            break
        pieces += pieces_detector.process_batch(x[start:start + size], explain_min_grade=0.2)
        start += size
    _assert_same_descriptors(pieces, whole)
    explained = [d for d in pieces if d.attribution is not None]
    assert explained and all(d.grade >= 0.2 for d in explained)
    assert all(d.attribution is None for d in pieces if 0 < d.grade < 0.2)


def test_detectors_sharing_reused_rewind_arenas_score_as_if_alone():
    """Rewind points reuse arenas handed back by earlier batches, across detectors of the
    same shape: several detectors taking turns on batches of 64 (rewinding at each
    anomaly) give exactly the descriptors each gives on its own, row by row."""
    series = [noise_with_spikes(640, seed=s, every=90) for s in (5, 6, 7)]
    turns = [ThresholdedDetector(**_DETECTOR) for _ in series]
    got: list[list] = [[] for _ in series]
    for start in range(0, 640, 64):
        for k, detector in enumerate(turns):
            got[k] += detector.process_batch(series[k][start:start + 64])
    for k, x in enumerate(series):
        alone = ThresholdedDetector(**_DETECTOR)
        with one_numba_thread():
            expected = [alone.process(v) for v in x]
        assert sum(d.is_anomaly for d in expected) >= 3  # rewinds happened
        _assert_same_descriptors(got[k], expected)


def test_detector_process_batch_equals_process_for_multidimensional_input():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((700, 2))
    X[[300, 450, 600], [0, 1, 0]] += [9.0, -9.0, 9.0]
    kwargs = dict(dimensions=2, **_DETECTOR)
    batch = ThresholdedDetector(**kwargs).process_batch(X)
    single_detector = ThresholdedDetector(**kwargs)
    with one_numba_thread():
        single = [single_detector.process(x) for x in X]
    _assert_same_descriptors(batch, single)
    flagged = {d.index: d for d in batch if d.is_anomaly}
    assert {300, 450, 600} <= flagged.keys()
    assert flagged[450].dimension == 1 and flagged[450].relative_index == 0


def test_detector_round_trip_continues_identically():
    x = noise_with_spikes(1600, seed=2)
    detector = ThresholdedDetector(**_DETECTOR)
    detector.process_batch(x[:800])
    restored = ThresholdedDetector.from_bytes(detector.to_bytes())
    assert restored.to_bytes() == detector.to_bytes()
    expected = detector.process_batch(x[800:])
    got = restored.process_batch(x[800:])
    for a, b in zip(got, expected, strict=True):
        assert (a.index, a.score, a.grade, a.threshold) == (b.index, b.score, b.grade,
                                                            b.threshold)
    assert any(d.is_anomaly for d in got)
    assert restored.to_bytes() == detector.to_bytes()


def test_fresh_detector_round_trips():
    detector = ThresholdedDetector(**_DETECTOR)
    restored = ThresholdedDetector.from_bytes(detector.to_bytes())
    x = noisy_sine(300, seed=3)
    assert [d.score for d in restored.process_batch(x)] == [
        d.score for d in detector.process_batch(x)]


def test_copies_are_independent_and_continue_identically():
    x = noise_with_spikes(1200, seed=5)
    detector = ThresholdedDetector(**_DETECTOR)
    detector.process_batch(x[:600])
    frozen = detector.to_bytes()
    twin = detector.copy()
    assert twin.to_bytes() == frozen
    ahead = detector.process_batch(x[600:])  # the original learns on
    assert twin.to_bytes() == frozen  # the copy is untouched
    again = twin.process_batch(x[600:])
    assert [(d.score, d.grade) for d in again] == [(d.score, d.grade) for d in ahead]
    forest = RandomCutForest(num_trees=20, sample_size=64, random_seed=1)
    for value in x[:300]:
        forest.update(value)
    copy_ = forest.copy()
    before = copy_.to_bytes()
    forest.update(x[300])
    assert copy_.to_bytes() == before and forest.to_bytes() != before
