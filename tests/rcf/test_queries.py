"""Queries beyond the score: near neighbours, imputation and forecasting."""

from __future__ import annotations

import numpy as np
import pytest
from rcf_testkit import Unchanged

from forestream.rcf import RandomCutForest

# ------------------------------------------------------------------- near neighbours


def test_near_neighbours_of_a_learned_point_include_it_at_distance_zero():
    rng = np.random.default_rng(3)
    X = rng.uniform(-5, 5, (500, 2))
    forest = RandomCutForest(dimensions=2, num_trees=30, sample_size=64, time_decay=0.0,
                             random_seed=1)
    forest.score_and_update(X)
    state = forest._state
    for t in (0, 7, 29):  # a point that tree t holds, whoever else holds it
        point = state.leaf_point[t, state.heap_leaves[t, 5]].copy()
        with Unchanged(forest):
            found = forest.near_neighbours(point, k=5)
        assert np.array_equal(found[0].point, point)
        assert found[0].distance == 0.0 and found[0].votes >= 1
        distances = [n.distance for n in found]
        assert distances == sorted(distances)
        assert len(found) <= 5
        for n in found:
            assert n.distance == pytest.approx(np.linalg.norm(n.point - point))
            assert any(np.array_equal(n.point, x) for x in X)


def test_near_neighbours_are_found_by_every_tree_when_all_points_fit_the_sample():
    rng = np.random.default_rng(4)
    X = rng.standard_normal((40, 3))
    forest = RandomCutForest(dimensions=3, num_trees=12, sample_size=64, random_seed=2)
    forest.score_and_update(X)
    for x in X[::7]:
        found = forest.near_neighbours(x, k=3)
        assert np.array_equal(found[0].point, x)
        assert found[0].distance == 0.0 and found[0].votes == 12
    found = forest.near_neighbours([10.0, 10.0, 10.0], k=1000)
    assert sum(n.votes for n in found) == 12
    distances = [n.distance for n in found]
    assert distances == sorted(distances) and distances[0] > 0.0


def test_near_neighbours_work_on_shingled_points():
    forest = RandomCutForest(shingle_size=3, num_trees=10, sample_size=64, random_seed=5)
    forest.score_and_update(np.arange(30.0))
    # the next shingle would be (28, 29, 30); its neighbour is the last one learned
    found = forest.near_neighbours(30.0, k=2)
    assert np.array_equal(found[0].point, [27.0, 28.0, 29.0])
    assert found[0].distance == pytest.approx(np.sqrt(3.0))
    assert RandomCutForest(num_trees=2, sample_size=4).near_neighbours(1.0) == []


# -------------------------------------------------------------------------- impute


def test_impute_recovers_a_linear_relation_between_dimensions():
    rng = np.random.default_rng(5)
    x0 = rng.uniform(0, 10, 1000)
    forest = RandomCutForest(dimensions=2, num_trees=30, sample_size=64, random_seed=1)
    forest.score_and_update(np.column_stack([x0, 2 * x0]))
    for v in [0.5, 3.3, 5.0, 7.5, 9.0]:
        with Unchanged(forest):
            completed = forest.impute([v, np.nan])
        assert completed[0] == v  # known values are kept exactly
        assert completed[1] == pytest.approx(2 * v, abs=1.0)
        completed = forest.impute([np.nan, 2 * v])
        assert completed[1] == 2 * v
        assert completed[0] == pytest.approx(v, abs=0.3)


def test_impute_without_missing_values_returns_the_input():
    forest = RandomCutForest(dimensions=2, num_trees=5, sample_size=16, random_seed=1)
    forest.score_and_update(np.random.default_rng(0).standard_normal((50, 2)))
    assert np.array_equal(forest.impute([0.25, -1.5]), [0.25, -1.5])


def test_impute_one_input_completes_the_current_shingle_like_forecast():
    t = np.arange(1500)
    series = np.sin(2 * np.pi * t / 16)
    forest = RandomCutForest(shingle_size=8, num_trees=30, sample_size=128, random_seed=2)
    forest.score_and_update(series)
    nxt = forest.impute([np.nan])
    assert nxt.shape == (1,)
    assert nxt[0] == pytest.approx(np.sin(2 * np.pi * 1500 / 16), abs=0.1)
    assert nxt[0] == forest.forecast(1).values[0, 0]
    # a whole shingled point with a gap in the middle
    point = np.sin(2 * np.pi * np.arange(1500, 1508) / 16)
    query = point.copy()
    query[3] = np.nan
    assert forest.impute(query)[3] == pytest.approx(point[3], abs=0.1)


# ------------------------------------------------------------------------ forecast


@pytest.mark.parametrize("noise", [0.0, 0.05])
def test_forecast_follows_a_periodic_series(noise):
    rng = np.random.default_rng(6)
    period = 16
    t = np.arange(2000)
    series = np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(len(t))
    forest = RandomCutForest(shingle_size=8, num_trees=30, sample_size=128, random_seed=2)
    forest.score_and_update(series)
    with Unchanged(forest):
        fc = forest.forecast(2 * period)
    truth = np.sin(2 * np.pi * np.arange(2000, 2000 + 2 * period) / period)
    assert fc.values.shape == fc.lower.shape == fc.upper.shape == (2 * period, 1)
    assert np.max(np.abs(fc.values[:, 0] - truth)) < 0.15 + 3 * noise
    assert np.all(fc.lower <= fc.values) and np.all(fc.values <= fc.upper)
    # the forecast repeats with the period, as the series does
    assert np.max(np.abs(fc.values[:period] - fc.values[period:])) < 0.15 + 3 * noise


def test_forecast_ranges_widen_with_coverage_and_support_several_dimensions():
    rng = np.random.default_rng(7)
    t = np.arange(1500)
    X = np.column_stack([np.sin(2 * np.pi * t / 12), 5 + np.cos(2 * np.pi * t / 12)])
    X += 0.1 * rng.standard_normal(X.shape)
    forest = RandomCutForest(dimensions=2, shingle_size=6, num_trees=30, sample_size=128,
                             random_seed=4)
    forest.score_and_update(X)
    narrow = forest.forecast(6, coverage=0.2)
    wide = forest.forecast(6, coverage=0.95)
    assert narrow.values.shape == (6, 2)
    assert np.array_equal(narrow.values, wide.values)
    assert np.all(wide.lower <= narrow.lower) and np.all(narrow.upper <= wide.upper)
    truth = np.column_stack([np.sin(2 * np.pi * np.arange(1500, 1506) / 12),
                             5 + np.cos(2 * np.pi * np.arange(1500, 1506) / 12)])
    assert np.max(np.abs(wide.values - truth)) < 0.5
