"""Forest-level numba kernels: the batch fast path, the sampler and the query walks.

Trees are independent, so every kernel loops over trees in parallel (``prange``) and,
inside one tree, over the points of a batch in order. Scoring point i and then learning
it in tree t never depends on another tree, which makes this loop order equivalent to
the textbook "for each point, for each tree" while keeping one tree's arrays hot in
cache and using every core.

The sampler of each tree is a time-decayed weighted reservoir (AWS's compact sampler):
point number ``seq`` gets the key ``log(-log(u)) - λ·seq`` for u uniform in (0, 1), and
the tree keeps the ``S`` points with the smallest keys in a max-heap. With λ = 0 this is
a uniform reservoir sample; with λ > 0 recent points are favoured, the weight of a point
decaying as ``exp(-λ·age)``.

The kernels called from Python release the GIL (``nogil``): a job's other threads (its
sinks' writes, a checkpoint being serialized) run meanwhile. A forest's arrays are only
ever touched by the thread that owns the forest.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._jit import njit, prange
from ._rng import next_uniform
from ._tree import (
    CUT_DIM,
    EMPTY,
    HEAP_SIZE,
    LEFT,
    NO_PARENT,
    RIGHT,
    ROOT,
    attribute_point,
    delete_begin,
    delete_leaf,
    delete_step,
    descend,
    insert_into_empty,
    insert_point,
    insert_step,
    score_from_path,
    score_point,
)

#: Trees walked side by side by the per-record kernel. A walk down one tree is a chain of
#: dependent memory reads; taking one level of each of several trees in turn lets the
#: processor wait for all of their reads at once (measured with 12 detectors, cold in
#: cache: 4 trees 10–20 % slower than 8; 16 and 32 no faster than 8).
GROUP = 8

if TYPE_CHECKING:
    from ._jit import BoolArray, Float64Array, Int32Array, UInt64Array


@njit(cache=True, nogil=True)
def _sample_and_insert(t: int, p: Float64Array, seq: int, time_decay: float,
                       nodes: Int32Array, cut_values: Float64Array, boxes: Float64Array,
                       leaves: Int32Array, leaf_point: Float64Array, free_nodes: Int32Array,
                       free_leaves: Int32Array, trees: Int32Array, heap_keys: Float64Array,
                       heap_leaves: Int32Array, rng: UInt64Array) -> None:
    capacity = heap_keys.shape[1]
    u = next_uniform(rng, t)
    if u <= 0.0:
        u = 1e-300
    key = math.log(-math.log(u)) - time_decay * seq
    size = trees[t, HEAP_SIZE]
    if size < capacity:
        leaf = insert_point(t, p, nodes, cut_values, boxes, leaves, leaf_point, free_nodes,
                            free_leaves, trees, rng)
        _heap_push(heap_keys, heap_leaves, t, size, key, leaf)
        trees[t, HEAP_SIZE] = size + 1
        return
    if key >= heap_keys[t, 0]:
        return
    delete_leaf(t, heap_leaves[t, 0], nodes, cut_values, boxes, leaves, leaf_point,
                free_nodes, free_leaves, trees)
    leaf = insert_point(t, p, nodes, cut_values, boxes, leaves, leaf_point, free_nodes,
                        free_leaves, trees, rng)
    _heap_replace_top(heap_keys, heap_leaves, t, size, key, leaf)


@njit(cache=True, parallel=True, nogil=True)
def score_and_update(points: Float64Array, first_seq: int, time_decay: float,
                     want_scores: bool, want_update: bool, tree_scores: Float64Array,
                     nodes: Int32Array, cut_values: Float64Array, boxes: Float64Array,
                     leaves: Int32Array, leaf_point: Float64Array, free_nodes: Int32Array,
                     free_leaves: Int32Array, trees: Int32Array, heap_keys: Float64Array,
                     heap_leaves: Int32Array, rng: UInt64Array) -> None:
    """Score each row of ``points`` in every tree (into ``tree_scores[t, i]``), then learn it."""
    for t in prange(trees.shape[0]):
        _stream_tree(t, points, first_seq, time_decay, want_scores, want_update, tree_scores,
                     nodes, cut_values, boxes, leaves, leaf_point, free_nodes, free_leaves,
                     trees, heap_keys, heap_leaves, rng)


@njit(cache=True, nogil=True)
def score_and_update_serial(points: Float64Array, first_seq: int, time_decay: float,
                            want_scores: bool, want_update: bool, tree_scores: Float64Array,
                            nodes: Int32Array, cut_values: Float64Array, boxes: Float64Array,
                            leaves: Int32Array, leaf_point: Float64Array, free_nodes: Int32Array,
                            free_leaves: Int32Array, trees: Int32Array, heap_keys: Float64Array,
                            heap_leaves: Int32Array, rng: UInt64Array) -> None:
    """:func:`score_and_update` on the calling thread: for a record or a few at a time,
    where starting worker threads costs more than it saves (and, on a busy machine,
    waits for a free core)."""
    for t in range(trees.shape[0]):
        _stream_tree(t, points, first_seq, time_decay, want_scores, want_update, tree_scores,
                     nodes, cut_values, boxes, leaves, leaf_point, free_nodes, free_leaves,
                     trees, heap_keys, heap_leaves, rng)


@njit(cache=True, nogil=True)
def mean_over_trees(tree_scores: Float64Array, out: Float64Array) -> None:
    """``out[i]`` = mean of ``tree_scores[:, i]``, summed in tree order (one rounding for
    every path, so batch and per-record scores are bit-identical)."""
    n_trees = tree_scores.shape[0]
    for i in range(tree_scores.shape[1]):
        total = 0.0
        for t in range(n_trees):
            total += tree_scores[t, i]
        out[i] = total / n_trees


@njit(cache=True, nogil=True)
def _stream_tree(t: int, points: Float64Array, first_seq: int, time_decay: float,
                 want_scores: bool, want_update: bool, tree_scores: Float64Array,
                 nodes: Int32Array, cut_values: Float64Array, boxes: Float64Array,
                 leaves: Int32Array, leaf_point: Float64Array, free_nodes: Int32Array,
                 free_leaves: Int32Array, trees: Int32Array, heap_keys: Float64Array,
                 heap_leaves: Int32Array, rng: UInt64Array) -> None:
    path = np.empty(heap_keys.shape[1] + 1, dtype=np.int32)
    for i in range(points.shape[0]):
        p = points[i]
        if want_scores:
            tree_scores[t, i] = score_point(t, p, nodes, cut_values, boxes, leaves, leaf_point,
                                            trees, path)
        if want_update:
            _sample_and_insert(t, p, first_seq + i, time_decay, nodes, cut_values, boxes,
                               leaves, leaf_point, free_nodes, free_leaves, trees, heap_keys,
                               heap_leaves, rng)


@njit(cache=True, parallel=True, nogil=True)
def attribution_batch(points: Float64Array, out: Float64Array, nodes: Int32Array,
                      cut_values: Float64Array, boxes: Float64Array, leaves: Int32Array,
                      leaf_point: Float64Array, trees: Int32Array) -> None:
    """Per-tree attribution of each point: ``out[t, i, 0:D]`` high, ``out[t, i, D:2D]`` low."""
    n_trees = trees.shape[0]
    depth_limit = leaves.shape[1] + 1
    for t in prange(n_trees):
        path = np.empty(depth_limit, dtype=np.int32)
        for i in range(points.shape[0]):
            attribute_point(t, points[i], nodes, cut_values, boxes, leaves, leaf_point, trees,
                            path, out[t, i])


@njit(cache=True, parallel=True, nogil=True)
def neighbours(point: Float64Array, out_points: Float64Array, out_distance: Float64Array,
               nodes: Int32Array, cut_values: Float64Array, leaf_point: Float64Array,
               trees: Int32Array) -> None:
    """For each tree, the sampled point in the leaf that ``point`` falls into."""
    n_trees = trees.shape[0]
    dims = point.shape[0]
    depth_limit = leaf_point.shape[1] + 1
    for t in prange(n_trees):
        if trees[t, 0] == EMPTY:
            out_distance[t] = np.inf
            continue
        path = np.empty(depth_limit, dtype=np.int32)
        leaf, _ = descend(t, point, nodes, cut_values, trees, path)
        dist = 0.0
        for d in range(dims):
            out_points[t, d] = leaf_point[t, leaf, d]
            diff = leaf_point[t, leaf, d] - point[d]
            dist += diff * diff
        out_distance[t] = math.sqrt(dist)


@njit(cache=True, parallel=True, nogil=True)
def impute(point: Float64Array, missing: BoolArray, max_leaves: int, out: Float64Array,
           nodes: Int32Array, cut_values: Float64Array, boxes: Float64Array,
           leaves: Int32Array, leaf_point: Float64Array, trees: Int32Array) -> None:
    """Per tree, the completion of ``point`` (missing dims taken from a sampled point)
    that this tree finds least anomalous. Explores both sides of every cut on a missing
    dimension, visiting at most ``max_leaves`` leaves per tree."""
    n_trees = trees.shape[0]
    dims = point.shape[0]
    capacity = leaf_point.shape[1]
    for t in prange(n_trees):
        path = np.empty(capacity + 1, dtype=np.int32)
        stack = np.empty(2 * capacity + 2, dtype=np.int32)
        candidate = point.copy()
        best = np.inf
        for d in range(dims):
            out[t, d] = point[d]
        root = trees[t, 0]
        if root == EMPTY:
            continue
        top = 0
        stack[top] = root
        top += 1
        visited = 0
        while top > 0 and visited < max_leaves:
            top -= 1
            ref = stack[top]
            if ref < 0:
                leaf = -ref - 1
                for d in range(dims):
                    if missing[d]:
                        candidate[d] = leaf_point[t, leaf, d]
                s = score_point(t, candidate, nodes, cut_values, boxes, leaves, leaf_point,
                                trees, path)
                if s < best:
                    best = s
                    for d in range(dims):
                        out[t, d] = candidate[d]
                visited += 1
                continue
            d = nodes[t, ref, 3]
            if missing[d]:
                stack[top] = nodes[t, ref, 0]
                stack[top + 1] = nodes[t, ref, 1]
                top += 2
            elif point[d] <= cut_values[t, ref]:
                stack[top] = nodes[t, ref, 0]
                top += 1
            else:
                stack[top] = nodes[t, ref, 1]
                top += 1


@njit(cache=True, inline="always")
def _heap_push(keys: Float64Array, leaf_ids: Int32Array, t: int, size: int, key: float,
               leaf: int) -> None:
    i = size
    while i > 0:
        parent = (i - 1) >> 1
        if keys[t, parent] >= key:
            break
        keys[t, i] = keys[t, parent]
        leaf_ids[t, i] = leaf_ids[t, parent]
        i = parent
    keys[t, i] = key
    leaf_ids[t, i] = leaf


@njit(cache=True, inline="always")
def _heap_replace_top(keys: Float64Array, leaf_ids: Int32Array, t: int, size: int, key: float,
                      leaf: int) -> None:
    i = 0
    while True:
        child = 2 * i + 1
        if child >= size:
            break
        if child + 1 < size and keys[t, child + 1] > keys[t, child]:
            child += 1
        if keys[t, child] <= key:
            break
        keys[t, i] = keys[t, child]
        leaf_ids[t, i] = leaf_ids[t, child]
        i = child
    keys[t, i] = key
    leaf_ids[t, i] = leaf


@njit(cache=True, nogil=True)
def step_one(shingle: Float64Array, row: Float64Array, point: Float64Array, want_score: bool,
             want_update: bool, advance_shingle: bool, seq: int, time_decay: float,
             paths: Int32Array, nodes: Int32Array, cut_values: Float64Array, boxes: Float64Array,
             leaves: Int32Array, leaf_point: Float64Array, free_nodes: Int32Array,
             free_leaves: Int32Array, trees: Int32Array, heap_keys: Float64Array,
             heap_leaves: Int32Array, rng: UInt64Array) -> float:
    """One record on the calling thread: build its shingled point from ``shingle`` (the last
    inputs, oldest first) and ``row``, score it (mean over trees, summed in tree order as
    :func:`mean_over_trees` does), learn it, and shift the shingle. The per-record path:
    no thread start-up, and the trees walked GROUP at a time (``paths``: GROUP rows of
    scratch, one descent each); the scores and the forest afterwards are exactly those
    of one tree after another."""
    s, d = shingle.shape
    for j in range(s - 1):
        for c in range(d):
            point[j * d + c] = shingle[j + 1, c]
    for c in range(d):
        point[(s - 1) * d + c] = row[c]
    total = 0.0
    if want_score:
        total = _score_interleaved(point, paths, nodes, cut_values, boxes, leaves, leaf_point,
                                   trees)
    if want_update:
        _learn_interleaved(point, seq, time_decay, nodes, cut_values, boxes, leaves,
                           leaf_point, free_nodes, free_leaves, trees, heap_keys, heap_leaves,
                           rng)
    if advance_shingle:
        for j in range(s - 1):
            for c in range(d):
                shingle[j, c] = shingle[j + 1, c]
        for c in range(d):
            shingle[s - 1, c] = row[c]
    n_trees: int = trees.shape[0]
    return total / n_trees


@njit(cache=True, nogil=True)
def _score_interleaved(point: Float64Array, paths: Int32Array, nodes: Int32Array,
                       cut_values: Float64Array, boxes: Float64Array, leaves: Int32Array,
                       leaf_point: Float64Array, trees: Int32Array) -> float:
    """The sum over trees of ``point``'s score, the trees' descents run GROUP at a time,
    one level of each in turn."""
    n_trees = trees.shape[0]
    refs = np.empty(GROUP, dtype=np.int64)
    depths = np.empty(GROUP, dtype=np.int64)
    total = 0.0
    for t0 in range(0, n_trees, GROUP):
        width = min(GROUP, n_trees - t0)
        for g in range(width):
            refs[g] = trees[t0 + g, ROOT]
            depths[g] = 0
        active = width
        while active > 0:
            active = 0
            for g in range(width):
                ref = refs[g]
                if ref >= 0 and ref != EMPTY:
                    t = t0 + g
                    paths[g, depths[g]] = ref
                    depths[g] += 1
                    if point[nodes[t, ref, CUT_DIM]] <= cut_values[t, ref]:
                        refs[g] = nodes[t, ref, LEFT]
                    else:
                        refs[g] = nodes[t, ref, RIGHT]
                    active += 1
        for g in range(width):
            if refs[g] != EMPTY:  # in tree order, as mean_over_trees sums
                total += score_from_path(t0 + g, point, -refs[g] - 1, depths[g], nodes, boxes,
                                         leaves, leaf_point, trees, paths[g])
    return total


@njit(cache=True, nogil=True)
def _learn_interleaved(point: Float64Array, seq: int, time_decay: float, nodes: Int32Array,
                       cut_values: Float64Array, boxes: Float64Array, leaves: Int32Array,
                       leaf_point: Float64Array, free_nodes: Int32Array,
                       free_leaves: Int32Array, trees: Int32Array, heap_keys: Float64Array,
                       heap_leaves: Int32Array, rng: UInt64Array) -> None:
    """:func:`_sample_and_insert` of ``point`` in every tree, the same draws in the same
    order per tree: first each sampler's decision, then the deletions and insertions of
    the trees that take the point, GROUP of them side by side one level at a time."""
    n_trees = trees.shape[0]
    capacity = heap_keys.shape[1]
    taken = np.empty(n_trees, dtype=np.int64)
    keys = np.empty(n_trees, dtype=np.float64)
    n_taken = 0
    for t in range(n_trees):
        u = next_uniform(rng, t)
        if u <= 0.0:
            u = 1e-300
        key = math.log(-math.log(u)) - time_decay * seq
        if trees[t, HEAP_SIZE] < capacity or key < heap_keys[t, 0]:
            taken[n_taken] = t
            keys[n_taken] = key
            n_taken += 1
    at = np.empty(GROUP, dtype=np.int64)
    above = np.empty(GROUP, dtype=np.int64)
    refresh = np.empty(GROUP, dtype=np.bool_)
    placed = np.empty(GROUP, dtype=np.int64)
    for a0 in range(0, n_taken, GROUP):
        width = min(GROUP, n_taken - a0)
        active = 0
        for g in range(width):
            t = taken[a0 + g]
            at[g] = NO_PARENT
            if trees[t, HEAP_SIZE] == capacity:
                at[g], refresh[g] = delete_begin(t, heap_leaves[t, 0], nodes, leaves,
                                                 free_nodes, free_leaves, trees)
                active += at[g] != NO_PARENT
        while active > 0:
            active = 0
            for g in range(width):
                if at[g] != NO_PARENT:
                    at[g], refresh[g] = delete_step(taken[a0 + g], at[g], refresh[g], nodes,
                                                    boxes, leaf_point)
                    active += at[g] != NO_PARENT
        for g in range(width):
            t = taken[a0 + g]
            placed[g] = -1
            at[g] = trees[t, ROOT]
            above[g] = NO_PARENT
            if at[g] == EMPTY:
                placed[g] = insert_into_empty(t, point, leaves, leaf_point, free_leaves, trees)
            else:
                active += 1
        while active > 0:
            active = 0
            for g in range(width):
                if placed[g] < 0:
                    placed[g], at[g], above[g] = insert_step(
                        taken[a0 + g], point, at[g], above[g], nodes, cut_values, boxes,
                        leaves, leaf_point, free_nodes, free_leaves, trees, rng)
                    active += placed[g] < 0
        for g in range(width):
            t = taken[a0 + g]
            size = trees[t, HEAP_SIZE]
            if size < capacity:
                _heap_push(heap_keys, heap_leaves, t, size, keys[a0 + g], placed[g])
                trees[t, HEAP_SIZE] = size + 1
            else:
                _heap_replace_top(heap_keys, heap_leaves, t, size, keys[a0 + g], placed[g])
