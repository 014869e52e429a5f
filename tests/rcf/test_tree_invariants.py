"""Structural invariants of the flat-array random cut trees, checked by a Python walk.

See ``check_tree_invariants`` in conftest.py for the full list: exact boxes and masses,
parent pointers, every sampled point on the correct side of each ancestor's cut, free
lists that complement the reachable nodes, tree mass equal to the sampler's heap size
and heap references equal to the leaf masses.
"""

from __future__ import annotations

import numpy as np
import pytest
from rcf_testkit import check_forest_invariants, one_numba_thread

from forestream.rcf import RandomCutForest
from forestream.rcf._tree import CUT_DIM, EMPTY, HEAP_SIZE, LEAF_MASS, ROOT


def _mixed_3d_stream(n: int, seed: int) -> np.ndarray:
    """3-D data with exact repeats, coarse rounding (near-duplicates) and a flat stretch."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    X[::7] = X[3]  # one point repeated many times
    X[1::11] = np.round(X[1::11], 1)  # frequent collisions on a coarse grid
    X[5::13] = rng.choice([-1.0, 0.0, 1.0], size=(len(X[5::13]), 3))  # a few exact values
    X[2000:2150] = 0.0  # a run of one value, longer than the sample
    X[3000:3100, 2] = 0.0  # one dimension constant for a while
    return X


@pytest.mark.parametrize("time_decay", [None, 0.0, 0.05], ids=["default", "zero", "fast"])
def test_tree_invariants_hold_through_long_insert_delete_runs(time_decay):
    X = _mixed_3d_stream(5000, seed=11)
    forest = RandomCutForest(dimensions=3, num_trees=12, sample_size=32,
                             time_decay=time_decay, random_seed=3)
    for start in range(0, len(X), 250):
        forest.score_and_update(X[start : start + 250])
        summaries = check_forest_invariants(forest)
        assert all(s["mass"] == min(start + 250, 32) for s in summaries)
    # eviction happened: the trees hold far fewer points than were streamed
    assert forest.points_seen == 5000
    assert np.array_equal(forest.tree_sizes(), np.full(12, 32))


def test_tree_invariants_hold_on_the_per_record_path_with_shingles():
    X = _mixed_3d_stream(700, seed=12)[:, :2]
    forest = RandomCutForest(dimensions=2, shingle_size=3, num_trees=10, sample_size=16,
                             random_seed=5)
    with one_numba_thread():
        for i, x in enumerate(X):
            forest.update(x)
            if i % 50 == 0:
                check_forest_invariants(forest)
    check_forest_invariants(forest)
    assert forest.points_seen == len(X) - 2


def test_tree_invariants_hold_for_values_one_ulp_apart_and_signed_zeros():
    rng = np.random.default_rng(5)
    values = np.array([1.0, np.nextafter(1.0, 2.0), np.nextafter(1.0, 0.0), 0.0, -0.0,
                       5e-324, -5e-324, 1e16, 1e16 + 2.0])
    X = rng.choice(values, size=(3000, 2))
    forest = RandomCutForest(dimensions=2, num_trees=10, sample_size=16, random_seed=3)
    for start in range(0, len(X), 300):
        scores = forest.score_and_update(X[start : start + 300])
        assert np.isfinite(scores).all()
        check_forest_invariants(forest)


def test_extreme_finite_values_are_rejected_or_keep_the_trees_consistent():
    forest = RandomCutForest(dimensions=1, num_trees=5, sample_size=8, random_seed=3,
                             output_after=1)
    try:
        forest.score_and_update(np.array([1e308, -1e308, 1e308, 0.0, 1.0, -1e308]))
    except ValueError:
        return  # refusing values whose range overflows is an acceptable fix
    check_forest_invariants(forest)


def test_duplicate_points_raise_one_leafs_mass():
    forest = RandomCutForest(dimensions=2, num_trees=8, sample_size=32, random_seed=1)
    forest.score_and_update(np.tile([[0.5, -2.0]], (10, 1)))
    state = forest._state
    for t in range(forest.num_trees):
        root = state.trees[t, ROOT]
        assert root < 0, "a tree of one repeated point is a single leaf"
        assert state.leaves[t, -root - 1, LEAF_MASS] == 10
        assert state.trees[t, HEAP_SIZE] == 10
    check_forest_invariants(forest)


def test_a_huge_time_decay_keeps_exactly_the_latest_points():
    # with a huge decay every new point evicts the oldest; the tree keeps the last S points
    forest = RandomCutForest(dimensions=1, num_trees=6, sample_size=4, time_decay=50.0,
                             random_seed=2)
    forest.score_and_update(np.arange(100.0))
    state = forest._state
    for t in range(forest.num_trees):
        assert state.trees[t, ROOT] != EMPTY
        held = sorted(state.leaf_point[t, state.heap_leaves[t, :4], 0].tolist())
        assert held == [96.0, 97.0, 98.0, 99.0]
    check_forest_invariants(forest)


def test_constant_dimension_is_never_cut():
    rng = np.random.default_rng(8)
    X = np.column_stack([rng.standard_normal(1000), np.full(1000, 3.0),
                         rng.standard_normal(1000)])
    forest = RandomCutForest(dimensions=3, num_trees=10, sample_size=32, random_seed=4)
    forest.score_and_update(X)
    check_forest_invariants(forest)
    state = forest._state
    for t in range(forest.num_trees):
        used = _internal_nodes(state, t)
        assert used and all(state.nodes[t, n, CUT_DIM] != 1 for n in used)


def test_cut_dimension_is_chosen_in_proportion_to_its_range():
    rng = np.random.default_rng(9)
    X = np.column_stack([rng.uniform(0, 100, 2000), rng.uniform(0, 1, 2000)])
    forest = RandomCutForest(dimensions=2, num_trees=60, sample_size=32, random_seed=6)
    forest.score_and_update(X)
    state = forest._state
    root_dims = [state.nodes[t, state.trees[t, ROOT], CUT_DIM] for t in range(60)]
    # P(root cut on dimension 0) = 100/101 for the full boxes
    assert sum(d == 0 for d in root_dims) >= 54
    all_dims = np.concatenate([[state.nodes[t, n, CUT_DIM] for n in _internal_nodes(state, t)]
                               for t in range(60)])
    # deeper boxes are narrower in dimension 0, so dimension 1 gets cut there more often,
    # but dimension 0 still dominates
    assert 0.6 < np.mean(all_dims == 0) < 1.0


def _internal_nodes(state, t: int) -> list[int]:
    out, stack = [], [int(state.trees[t, ROOT])]
    while stack:
        ref = stack.pop()
        if ref >= 0 and ref != EMPTY:
            out.append(ref)
            stack.extend(int(c) for c in state.nodes[t, ref, :2])
    return out
