"""Shared helpers for the Random Cut Forest tests (a plain module, not a conftest, so
that ``from rcf_testkit import ...`` cannot clash with another folder's conftest).

``check_forest_invariants`` walks every tree of a forest from its root, in plain Python,
and checks the structural invariants of the flat-array layout documented in
``forestream.rcf._tree``. ``forest_state`` decodes a forest's serialized state so two
forests (or one forest before and after a call) can be compared exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numba
import numpy as np

from forestream.rcf import RandomCutForest
from forestream.rcf._state import unpack
from forestream.rcf._tree import (
    CUT_DIM,
    EMPTY,
    FREE_LEAVES,
    FREE_NODES,
    HEAP_SIZE,
    HIGH,
    LEAF_MASS,
    LEAF_PARENT,
    LEFT,
    LOW,
    MASS,
    NO_PARENT,
    PARENT,
    RIGHT,
    ROOT,
)

# ------------------------------------------------------------------------------- series


def noisy_sine(n: int, seed: int, period: float = 20.0, noise: float = 0.1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return np.sin(2 * np.pi * t / period) + noise * rng.standard_normal(n)


def random_walk(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.standard_normal(n))


def noise_with_spikes(n: int, seed: int, every: int = 150, height: float = 8.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n)
    spikes = np.arange(every // 2, n, every)
    x[spikes] += height * rng.choice([-1.0, 1.0], size=len(spikes))
    return x


# ---------------------------------------------------------------------------- threads


@contextmanager
def one_numba_thread() -> Iterator[None]:
    """Run the compiled kernels on one thread inside the block.

    Results do not depend on the thread count (test_forest.py checks that), but the
    per-record paths launch one parallel kernel per call, and on a busy machine each
    launch waits for a second core (about 1 ms instead of 15 us): tests that stream
    thousands of single records run under this to stay fast.
    """
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yield
    finally:
        numba.set_num_threads(before)


# ------------------------------------------------------------------------ state access


def forest_state(forest: RandomCutForest) -> tuple[dict, dict[str, np.ndarray]]:
    """The decoded serialized state: (config, {array name: array})."""
    config, state, extra = unpack(forest.to_bytes())
    arrays = {name: getattr(state, name) for name in state.__dataclass_fields__}
    arrays.update({f"extra.{k}": v for k, v in extra.items()})
    return config, arrays


def assert_same_state(a: RandomCutForest, b: RandomCutForest) -> None:
    """Both forests hold exactly the same state (config and every array, bit for bit)."""
    config_a, arrays_a = forest_state(a)
    config_b, arrays_b = forest_state(b)
    assert config_a == config_b
    assert arrays_a.keys() == arrays_b.keys()
    for name in arrays_a:
        assert arrays_a[name].dtype == arrays_b[name].dtype, name
        assert arrays_a[name].shape == arrays_b[name].shape, name
        assert np.array_equal(arrays_a[name], arrays_b[name], equal_nan=True), name


class Unchanged:
    """Context manager: the forest's serialized state is identical on exit."""

    def __init__(self, forest: RandomCutForest) -> None:
        self.forest = forest

    def __enter__(self) -> Unchanged:
        self.before = self.forest.to_bytes()
        return self

    def __exit__(self, *exc) -> None:
        assert self.forest.to_bytes() == self.before, "the forest's state changed"


# -------------------------------------------------------------------------- invariants


def _ref_box(state, t: int, ref: int) -> tuple[np.ndarray, np.ndarray]:
    if ref < 0:
        p = state.leaf_point[t, -ref - 1]
        return p, p
    return state.boxes[t, ref, LOW], state.boxes[t, ref, HIGH]


def _ref_mass(state, t: int, ref: int) -> int:
    if ref < 0:
        return int(state.leaves[t, -ref - 1, LEAF_MASS])
    return int(state.nodes[t, ref, MASS])


def check_tree_invariants(state, t: int) -> dict:
    """Walk tree ``t`` from its root and assert every structural invariant.

    Returns a small summary (number of leaves, internal nodes, total mass).
    """
    sample_size = state.heap_keys.shape[1]
    root = int(state.trees[t, ROOT])
    heap_size = int(state.trees[t, HEAP_SIZE])
    free_nodes = int(state.trees[t, FREE_NODES])
    free_leaves = int(state.trees[t, FREE_LEAVES])
    assert 0 <= heap_size <= sample_size
    assert 0 <= free_nodes <= sample_size
    assert 0 <= free_leaves <= sample_size

    seen_nodes: set[int] = set()
    seen_leaves: set[int] = set()
    if root == EMPTY:
        assert heap_size == 0
    else:
        # (ref, parent id, list of (ancestor node, went_left))
        stack: list[tuple[int, int, tuple]] = [(root, int(NO_PARENT), ())]
        while stack:
            ref, parent, ancestors = stack.pop()
            if ref < 0:
                leaf = -ref - 1
                assert 0 <= leaf < sample_size
                assert leaf not in seen_leaves, f"tree {t}: leaf {leaf} reached twice"
                seen_leaves.add(leaf)
                assert state.leaves[t, leaf, LEAF_MASS] >= 1, f"tree {t}: empty leaf {leaf}"
                assert state.leaves[t, leaf, LEAF_PARENT] == parent
                point = state.leaf_point[t, leaf]
                for node, went_left in ancestors:
                    dim = state.nodes[t, node, CUT_DIM]
                    goes_left = point[dim] <= state.cut_values[t, node]
                    assert goes_left == went_left, (
                        f"tree {t}: leaf {leaf} on the wrong side of node {node}'s cut")
                continue
            node = ref
            assert 0 <= node < sample_size
            assert node not in seen_nodes, f"tree {t}: node {node} reached twice (a cycle)"
            seen_nodes.add(node)
            assert state.nodes[t, node, PARENT] == parent, f"tree {t}: node {node} parent"
            left = int(state.nodes[t, node, LEFT])
            right = int(state.nodes[t, node, RIGHT])
            low_l, high_l = _ref_box(state, t, left)
            low_r, high_r = _ref_box(state, t, right)
            assert np.array_equal(state.boxes[t, node, LOW], np.minimum(low_l, low_r)), (
                f"tree {t}: node {node} low corner is not the union of its children")
            assert np.array_equal(state.boxes[t, node, HIGH], np.maximum(high_l, high_r)), (
                f"tree {t}: node {node} high corner is not the union of its children")
            assert state.nodes[t, node, MASS] == _ref_mass(state, t, left) + _ref_mass(
                state, t, right), f"tree {t}: node {node} mass"
            dim = int(state.nodes[t, node, CUT_DIM])
            assert 0 <= dim < state.boxes.shape[3]
            cut = state.cut_values[t, node]
            # the cut separates the children, so it lies inside the node's box
            assert high_l[dim] <= cut < low_r[dim], f"tree {t}: node {node} cut"
            stack.append((left, node, (*ancestors, (node, True))))
            stack.append((right, node, (*ancestors, (node, False))))

    n_leaves = len(seen_leaves)
    n_nodes = len(seen_nodes)
    assert n_nodes == max(n_leaves - 1, 0)
    # free-list counters and contents are the complement of what the walk reached
    assert n_leaves == sample_size - free_leaves
    assert n_nodes == sample_size - free_nodes
    free_leaf_ids = set(state.free_leaves[t, :free_leaves].tolist())
    free_node_ids = set(state.free_nodes[t, :free_nodes].tolist())
    assert len(free_leaf_ids) == free_leaves and not free_leaf_ids & seen_leaves
    assert len(free_node_ids) == free_nodes and not free_node_ids & seen_nodes

    # total mass equals the sampler's heap size, and the heap's leaf references are
    # exactly the leaves with their masses as multiplicities
    total_mass = 0 if root == EMPTY else _ref_mass(state, t, root)
    assert total_mass == heap_size
    referenced = state.heap_leaves[t, :heap_size]
    ids, counts = np.unique(referenced, return_counts=True)
    assert set(ids.tolist()) == seen_leaves
    for leaf, count in zip(ids, counts, strict=True):
        assert state.leaves[t, leaf, LEAF_MASS] == count, f"tree {t}: leaf {leaf} mass"
    # the sampler heap is a max-heap on its keys
    keys = state.heap_keys[t, :heap_size]
    for i in range(1, heap_size):
        assert keys[(i - 1) // 2] >= keys[i], f"tree {t}: heap order broken at {i}"
    # distinct leaves hold distinct points (duplicates are merged into a leaf's mass)
    if n_leaves:
        points = state.leaf_point[t, sorted(seen_leaves)]
        assert len(np.unique(points, axis=0)) == n_leaves, f"tree {t}: duplicate leaves"
    return {"leaves": n_leaves, "nodes": n_nodes, "mass": total_mass}


def check_forest_invariants(forest: RandomCutForest) -> list[dict]:
    state = forest._state
    return [check_tree_invariants(state, t) for t in range(forest.num_trees)]


def detector_as_written_before(blob: bytes, dropped: tuple[str, ...], state_len: int
                               ) -> bytes:
    """A serialized ThresholdedDetector (format 2) as an older forestream wrote it: its
    header without the ``dropped`` parameters, its grader state cut to ``state_len``
    numbers (the slots later versions appended)."""
    import io
    import json

    magic, pos = blob[:6], 6
    n = int.from_bytes(blob[pos : pos + 4], "little")
    header = json.loads(blob[pos + 4 : pos + 4 + n])
    pos += 4 + n
    forests = []
    for _ in range(header["forests"]):
        m = int.from_bytes(blob[pos : pos + 8], "little")
        forests.append(blob[pos : pos + 8 + m])
        pos += 8 + m
    state = np.load(io.BytesIO(blob[pos:]), allow_pickle=False)
    assert state_len < len(state)  # the slots added since are there to cut
    for name in dropped:
        del header[name]
    text = json.dumps(header).encode()
    buffer = io.BytesIO()
    np.save(buffer, state[:state_len], allow_pickle=False)
    return b"".join([magic, len(text).to_bytes(4, "little"), text, *forests,
                     buffer.getvalue()])
