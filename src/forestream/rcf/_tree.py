"""Random cut trees over flat arrays: insertion, deletion and the scoring walks.

A forest of ``T`` trees with sample size ``S`` over ``D``-dimensional points is kept as a
struct of arrays (see :class:`forestream.rcf._state.ForestState`), indexed first by tree.
Every function here works on one tree ``t`` of those arrays, so trees can be processed
in parallel without locks.

Encoding. Internal nodes are numbered ``0 .. S-2`` and leaves ``0 .. S-1`` in separate
pools. A child reference ``c`` is an internal node when ``c >= 0`` and the leaf
``-c - 1`` when ``c < 0``; an empty tree has root ``EMPTY``. Every internal node keeps
the bounding box of the points below it, so the probability that a random cut separates
a query point from a subtree is exact and costs O(D). A point goes left at a node when
``point[cut_dim] <= cut_value``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from ._jit import njit
from ._rng import next_uniform

if TYPE_CHECKING:
    from ._jit import Float64Array, Int32Array, UInt64Array

EMPTY = np.int32(0x7FFFFFFF)
NO_PARENT = np.int32(-1)

# columns of the per-node integer table ``nodes[t, n, :]``
LEFT = 0
RIGHT = 1
PARENT = 2
CUT_DIM = 3
MASS = 4
NODE_FIELDS = 5

# columns of the per-leaf integer table ``leaves[t, l, :]``
LEAF_MASS = 0
LEAF_PARENT = 1
LEAF_FIELDS = 2

# columns of the per-tree integer table ``trees[t, :]``
ROOT = 0
FREE_NODES = 1
FREE_LEAVES = 2
HEAP_SIZE = 3
TREE_FIELDS = 4

# the two rows of a node's box ``boxes[t, n, :, :]``
LOW = 0
HIGH = 1


@njit(cache=True, inline="always")
def _is_leaf(ref: int) -> bool:
    return ref < 0


@njit(cache=True, inline="always")
def _leaf_index(ref: int) -> int:
    return -ref - 1


@njit(cache=True, inline="always")
def _leaf_ref(leaf: int) -> int:
    return -leaf - 1


@njit(cache=True)
def leaf_equals(leaf_point: Float64Array, t: int, leaf: int, p: Float64Array) -> bool:
    for d in range(p.shape[0]):
        if leaf_point[t, leaf, d] != p[d]:
            return False
    return True


@njit(cache=True)
def subtree_mass(nodes: Int32Array, leaves: Int32Array, t: int, ref: int) -> int:
    if ref < 0:
        leaf_mass: int = leaves[t, -ref - 1, LEAF_MASS]
        return leaf_mass
    node_mass: int = nodes[t, ref, MASS]
    return node_mass


@njit(cache=True)
def tree_mass(nodes: Int32Array, leaves: Int32Array, trees: Int32Array, t: int) -> int:
    root = trees[t, ROOT]
    if root == EMPTY:
        return 0
    return subtree_mass(nodes, leaves, t, root)


@njit(cache=True)
def _set_parent(nodes: Int32Array, leaves: Int32Array, t: int, ref: int,
                parent: int | np.int32) -> None:
    if ref < 0:
        leaves[t, -ref - 1, LEAF_PARENT] = parent
    else:
        nodes[t, ref, PARENT] = parent


@njit(cache=True)
def _replace_child(nodes: Int32Array, trees: Int32Array, t: int, parent: int | np.int32,
                   old_ref: int, new_ref: int) -> None:
    if parent == NO_PARENT:
        trees[t, ROOT] = new_ref
    elif nodes[t, parent, LEFT] == old_ref:
        nodes[t, parent, LEFT] = new_ref
    else:
        nodes[t, parent, RIGHT] = new_ref


@njit(cache=True)
def insert_point(t: int, p: Float64Array, nodes: Int32Array, cut_values: Float64Array,
                 boxes: Float64Array, leaves: Int32Array, leaf_point: Float64Array,
                 free_nodes: Int32Array, free_leaves: Int32Array, trees: Int32Array,
                 rng: UInt64Array) -> int:
    """Insert ``p`` into tree ``t`` and return the leaf that now holds it.

    Walks down from the root. At each subtree with box B a cut is drawn on B ∪ {p}
    (dimension in proportion to its range, value uniform in it); if it separates p from
    B, p becomes a new leaf beside that subtree, else the walk continues on p's side of
    the node's own cut. A point equal to an existing leaf raises that leaf's mass.

    The batch kernels' form, one loop; :func:`insert_step` takes the same decisions one
    level per call for the per-record kernel, which interleaves trees. Written through
    the steps this loop ran 35 % slower (serial batch scoring: 5.6k vs 7.5-8.2k points/s
    of a 1-D series), so both forms stay; tests check they build identical trees.
    """
    dims = p.shape[0]
    root: int = trees[t, ROOT]
    if root == EMPTY:
        leaf = _pop_leaf(free_leaves, trees, t)
        for d in range(dims):
            leaf_point[t, leaf, d] = p[d]
        leaves[t, leaf, LEAF_MASS] = 1
        leaves[t, leaf, LEAF_PARENT] = NO_PARENT
        trees[t, ROOT] = _leaf_ref(leaf)
        return leaf

    ref = root
    parent: int | np.int32 = NO_PARENT
    while True:
        if ref < 0:
            leaf = -ref - 1
            if leaf_equals(leaf_point, t, leaf, p):
                leaves[t, leaf, LEAF_MASS] += 1
                return leaf
            total = 0.0
            for d in range(dims):
                total += abs(p[d] - leaf_point[t, leaf, d])
            r = next_uniform(rng, t) * total
            cut_dim = dims - 1
            acc = 0.0
            for d in range(dims):
                width = abs(p[d] - leaf_point[t, leaf, d])
                if width > 0.0 and r < acc + width:
                    cut_dim = d
                    break
                acc += width
            q = leaf_point[t, leaf, cut_dim]
            lo = min(q, p[cut_dim])
            hi = max(q, p[cut_dim])
            if hi == lo:  # only reachable through rounding at the end of the range
                for d in range(dims - 1, -1, -1):
                    if p[d] != leaf_point[t, leaf, d]:
                        cut_dim = d
                        break
                q = leaf_point[t, leaf, cut_dim]
                lo = min(q, p[cut_dim])
                hi = max(q, p[cut_dim])
            cut = lo + (r - acc)
            if cut >= hi or cut < lo:
                cut = lo
            return _split_above(t, p, ref, parent, cut_dim, cut, nodes, cut_values, boxes,
                                leaves, leaf_point, free_nodes, free_leaves, trees)

        total = 0.0
        for d in range(dims):
            total += max(boxes[t, ref, HIGH, d], p[d]) - min(boxes[t, ref, LOW, d], p[d])
        r = next_uniform(rng, t) * total
        cut_dim = -1
        acc = 0.0
        for d in range(dims):
            width = max(boxes[t, ref, HIGH, d], p[d]) - min(boxes[t, ref, LOW, d], p[d])
            if width > 0.0 and r < acc + width:
                cut_dim = d
                break
            acc += width
        if cut_dim >= 0:
            low = boxes[t, ref, LOW, cut_dim]
            high = boxes[t, ref, HIGH, cut_dim]
            cut = min(low, p[cut_dim]) + (r - acc)
            if p[cut_dim] < low and cut < low:
                return _split_above(t, p, ref, parent, cut_dim, cut, nodes, cut_values, boxes,
                                    leaves, leaf_point, free_nodes, free_leaves, trees)
            if p[cut_dim] > high and cut >= high:
                if cut >= p[cut_dim]:
                    cut = high
                return _split_above(t, p, ref, parent, cut_dim, cut, nodes, cut_values, boxes,
                                    leaves, leaf_point, free_nodes, free_leaves, trees)
        # the cut falls inside the box: p joins this subtree
        for d in range(dims):
            if p[d] < boxes[t, ref, LOW, d]:
                boxes[t, ref, LOW, d] = p[d]
            if p[d] > boxes[t, ref, HIGH, d]:
                boxes[t, ref, HIGH, d] = p[d]
        nodes[t, ref, MASS] += 1
        parent = ref
        if p[nodes[t, ref, CUT_DIM]] <= cut_values[t, ref]:
            ref = nodes[t, ref, LEFT]
        else:
            ref = nodes[t, ref, RIGHT]


@njit(cache=True)
def insert_into_empty(t: int, p: Float64Array, leaves: Int32Array, leaf_point: Float64Array,
                      free_leaves: Int32Array, trees: Int32Array) -> int:
    """Make ``p`` the only leaf of the empty tree ``t``; return that leaf."""
    leaf = _pop_leaf(free_leaves, trees, t)
    for d in range(p.shape[0]):
        leaf_point[t, leaf, d] = p[d]
    leaves[t, leaf, LEAF_MASS] = 1
    leaves[t, leaf, LEAF_PARENT] = NO_PARENT
    trees[t, ROOT] = _leaf_ref(leaf)
    return leaf


@njit(cache=True)
def insert_step(t: int, p: Float64Array, ref: int, parent: int, nodes: Int32Array,
                cut_values: Float64Array, boxes: Float64Array, leaves: Int32Array,
                leaf_point: Float64Array, free_nodes: Int32Array, free_leaves: Int32Array,
                trees: Int32Array, rng: UInt64Array) -> tuple[int, int, int]:
    """One level of an insertion into a non-empty tree, at subtree ``ref`` below ``parent``.

    A cut is drawn on the subtree's box B ∪ {p} (dimension in proportion to its range,
    value uniform in it); if it separates p from B, p becomes a new leaf beside that
    subtree, else p joins the subtree and the walk goes on at p's side of the node's own
    cut. A point equal to an existing leaf raises that leaf's mass. Returns ``(leaf, ref,
    parent)``: the leaf now holding ``p`` (``-1`` while the walk goes on) and where the
    next step starts. One level at a time, so a caller can advance the insertions of
    several trees side by side and overlap their memory waits.
    """
    dims = p.shape[0]
    if ref < 0:
        leaf = -ref - 1
        if leaf_equals(leaf_point, t, leaf, p):
            leaves[t, leaf, LEAF_MASS] += 1
            return leaf, ref, parent
        total = 0.0
        for d in range(dims):
            total += abs(p[d] - leaf_point[t, leaf, d])
        r = next_uniform(rng, t) * total
        cut_dim = dims - 1
        acc = 0.0
        for d in range(dims):
            width = abs(p[d] - leaf_point[t, leaf, d])
            if width > 0.0 and r < acc + width:
                cut_dim = d
                break
            acc += width
        q = leaf_point[t, leaf, cut_dim]
        lo = min(q, p[cut_dim])
        hi = max(q, p[cut_dim])
        if hi == lo:  # only reachable through rounding at the end of the range
            for d in range(dims - 1, -1, -1):
                if p[d] != leaf_point[t, leaf, d]:
                    cut_dim = d
                    break
            q = leaf_point[t, leaf, cut_dim]
            lo = min(q, p[cut_dim])
            hi = max(q, p[cut_dim])
        cut = lo + (r - acc)
        if cut >= hi or cut < lo:
            cut = lo
        return _split_above(t, p, ref, parent, cut_dim, cut, nodes, cut_values, boxes,
                            leaves, leaf_point, free_nodes, free_leaves, trees), ref, parent

    total = 0.0
    for d in range(dims):
        total += max(boxes[t, ref, HIGH, d], p[d]) - min(boxes[t, ref, LOW, d], p[d])
    r = next_uniform(rng, t) * total
    cut_dim = -1
    acc = 0.0
    for d in range(dims):
        width = max(boxes[t, ref, HIGH, d], p[d]) - min(boxes[t, ref, LOW, d], p[d])
        if width > 0.0 and r < acc + width:
            cut_dim = d
            break
        acc += width
    if cut_dim >= 0:
        low = boxes[t, ref, LOW, cut_dim]
        high = boxes[t, ref, HIGH, cut_dim]
        cut = min(low, p[cut_dim]) + (r - acc)
        if p[cut_dim] < low and cut < low:
            return _split_above(t, p, ref, parent, cut_dim, cut, nodes, cut_values, boxes,
                                leaves, leaf_point, free_nodes, free_leaves, trees), ref, parent
        if p[cut_dim] > high and cut >= high:
            if cut >= p[cut_dim]:
                cut = high
            return _split_above(t, p, ref, parent, cut_dim, cut, nodes, cut_values, boxes,
                                leaves, leaf_point, free_nodes, free_leaves, trees), ref, parent
    # the cut falls inside the box: p joins this subtree
    for d in range(dims):
        if p[d] < boxes[t, ref, LOW, d]:
            boxes[t, ref, LOW, d] = p[d]
        if p[d] > boxes[t, ref, HIGH, d]:
            boxes[t, ref, HIGH, d] = p[d]
    nodes[t, ref, MASS] += 1
    if p[nodes[t, ref, CUT_DIM]] <= cut_values[t, ref]:
        return -1, nodes[t, ref, LEFT], ref
    return -1, nodes[t, ref, RIGHT], ref


@njit(cache=True)
def _split_above(t: int, p: Float64Array, sibling: int, parent: int | np.int32,
                 cut_dim: int, cut: float, nodes: Int32Array, cut_values: Float64Array,
                 boxes: Float64Array, leaves: Int32Array, leaf_point: Float64Array,
                 free_nodes: Int32Array, free_leaves: Int32Array, trees: Int32Array) -> int:
    """Put a new node with the given cut above ``sibling``, with a new leaf for ``p``."""
    dims = p.shape[0]
    leaf = _pop_leaf(free_leaves, trees, t)
    for d in range(dims):
        leaf_point[t, leaf, d] = p[d]
    leaves[t, leaf, LEAF_MASS] = 1
    node = _pop_node(free_nodes, trees, t)
    nodes[t, node, CUT_DIM] = cut_dim
    cut_values[t, node] = cut
    nodes[t, node, PARENT] = parent
    nodes[t, node, MASS] = subtree_mass(nodes, leaves, t, sibling) + 1
    if sibling < 0:
        s = -sibling - 1
        for d in range(dims):
            boxes[t, node, LOW, d] = min(leaf_point[t, s, d], p[d])
            boxes[t, node, HIGH, d] = max(leaf_point[t, s, d], p[d])
    else:
        for d in range(dims):
            boxes[t, node, LOW, d] = min(boxes[t, sibling, LOW, d], p[d])
            boxes[t, node, HIGH, d] = max(boxes[t, sibling, HIGH, d], p[d])
    if p[cut_dim] <= cut:
        nodes[t, node, LEFT] = _leaf_ref(leaf)
        nodes[t, node, RIGHT] = sibling
    else:
        nodes[t, node, LEFT] = sibling
        nodes[t, node, RIGHT] = _leaf_ref(leaf)
    leaves[t, leaf, LEAF_PARENT] = node
    _replace_child(nodes, trees, t, parent, sibling, node)
    _set_parent(nodes, leaves, t, sibling, node)
    return leaf


@njit(cache=True)
def delete_leaf(t: int, leaf: int, nodes: Int32Array, cut_values: Float64Array,
                boxes: Float64Array, leaves: Int32Array, leaf_point: Float64Array,
                free_nodes: Int32Array, free_leaves: Int32Array, trees: Int32Array) -> None:
    """Remove one copy of ``leaf``'s point from tree ``t``; lift its sibling if it goes."""
    dims = leaf_point.shape[2]
    if leaves[t, leaf, LEAF_MASS] > 1:
        leaves[t, leaf, LEAF_MASS] -= 1
        n = leaves[t, leaf, LEAF_PARENT]
        while n != NO_PARENT:
            nodes[t, n, MASS] -= 1
            n = nodes[t, n, PARENT]
        return
    parent = leaves[t, leaf, LEAF_PARENT]
    leaves[t, leaf, LEAF_MASS] = 0
    _push_leaf(free_leaves, trees, t, leaf)
    if parent == NO_PARENT:
        trees[t, ROOT] = EMPTY
        return
    ref = _leaf_ref(leaf)
    sibling = nodes[t, parent, RIGHT] if nodes[t, parent, LEFT] == ref else nodes[t, parent, LEFT]
    grand = nodes[t, parent, PARENT]
    _set_parent(nodes, leaves, t, sibling, grand)
    _replace_child(nodes, trees, t, grand, parent, sibling)
    _push_node(free_nodes, trees, t, parent)

    refresh_boxes = True
    n = grand
    while n != NO_PARENT:
        nodes[t, n, MASS] -= 1
        if refresh_boxes:
            refresh_boxes = _refresh_box(t, n, nodes, boxes, leaf_point, dims)
        n = nodes[t, n, PARENT]


@njit(cache=True)
def delete_begin(t: int, leaf: int, nodes: Int32Array, leaves: Int32Array,
                 free_nodes: Int32Array, free_leaves: Int32Array,
                 trees: Int32Array) -> tuple[int, bool]:
    """The local part of :func:`delete_leaf`: drop one copy of the leaf's point, and the
    leaf and its parent node when it was the last. Returns the first ancestor whose mass
    (and, with the second value, box) :func:`delete_step` must then update."""
    if leaves[t, leaf, LEAF_MASS] > 1:
        leaves[t, leaf, LEAF_MASS] -= 1
        above: int = leaves[t, leaf, LEAF_PARENT]
        return above, False
    parent = leaves[t, leaf, LEAF_PARENT]
    leaves[t, leaf, LEAF_MASS] = 0
    _push_leaf(free_leaves, trees, t, leaf)
    if parent == NO_PARENT:
        trees[t, ROOT] = EMPTY
        return int(NO_PARENT), False
    ref = _leaf_ref(leaf)
    sibling = nodes[t, parent, RIGHT] if nodes[t, parent, LEFT] == ref else nodes[t, parent, LEFT]
    grand: int = nodes[t, parent, PARENT]
    _set_parent(nodes, leaves, t, sibling, grand)
    _replace_child(nodes, trees, t, grand, parent, sibling)
    _push_node(free_nodes, trees, t, parent)
    return grand, True


@njit(cache=True)
def delete_step(t: int, n: int, refresh: bool, nodes: Int32Array, boxes: Float64Array,
                leaf_point: Float64Array) -> tuple[int, bool]:
    """One ancestor of a deletion: one point less below ``n``, and its box recomputed
    while the boxes below changed. Returns the next ancestor and whether its box may
    change."""
    nodes[t, n, MASS] -= 1
    if refresh:
        refresh = _refresh_box(t, n, nodes, boxes, leaf_point, leaf_point.shape[2])
    above: int = nodes[t, n, PARENT]
    return above, refresh


@njit(cache=True)
def _refresh_box(t: int, n: int, nodes: Int32Array, boxes: Float64Array,
                 leaf_point: Float64Array, dims: int) -> bool:
    """Recompute node ``n``'s box from its children; return whether it changed."""
    left = nodes[t, n, LEFT]
    right = nodes[t, n, RIGHT]
    changed = False
    for d in range(dims):
        if left < 0:
            lo_a = leaf_point[t, -left - 1, d]
            hi_a = lo_a
        else:
            lo_a = boxes[t, left, LOW, d]
            hi_a = boxes[t, left, HIGH, d]
        if right < 0:
            lo_b = leaf_point[t, -right - 1, d]
            hi_b = lo_b
        else:
            lo_b = boxes[t, right, LOW, d]
            hi_b = boxes[t, right, HIGH, d]
        lo = min(lo_a, lo_b)
        hi = max(hi_a, hi_b)
        if lo != boxes[t, n, LOW, d] or hi != boxes[t, n, HIGH, d]:
            changed = True
            boxes[t, n, LOW, d] = lo
            boxes[t, n, HIGH, d] = hi
    return changed


@njit(cache=True)
def descend(t: int, p: Float64Array, nodes: Int32Array, cut_values: Float64Array,
            trees: Int32Array, path: Int32Array) -> tuple[int, int]:
    """Follow the cuts from the root; fill ``path`` with internal nodes, return (leaf, depth)."""
    ref = trees[t, ROOT]
    depth = 0
    while ref >= 0:
        path[depth] = ref
        depth += 1
        if p[nodes[t, ref, CUT_DIM]] <= cut_values[t, ref]:
            ref = nodes[t, ref, LEFT]
        else:
            ref = nodes[t, ref, RIGHT]
    return -ref - 1, depth


@njit(cache=True)
def score_from_path(t: int, p: Float64Array, leaf: int, depth: int, nodes: Int32Array,
                    boxes: Float64Array, leaves: Int32Array, leaf_point: Float64Array,
                    trees: Int32Array, path: Int32Array) -> float:
    """:func:`score_point` once the descent to ``leaf`` is known: ``path[:depth]`` holds
    the internal nodes from the root down. The score walks back up the path while ``p``
    lies outside the nodes' boxes."""
    total_mass = tree_mass(nodes, leaves, trees, t)
    if leaf_equals(leaf_point, t, leaf, p):
        m = leaves[t, leaf, LEAF_MASS]
        damp = 1.0 - m / (2.0 * total_mass)
        score: float = damp / (depth + math.log2(m + 1.0))
    else:
        score = 1.0 / (depth + 1.0)
    dims = p.shape[0]
    for k in range(depth - 1, -1, -1):
        n = path[k]
        outside = 0.0
        spread = 0.0
        for d in range(dims):
            low = boxes[t, n, LOW, d]
            high = boxes[t, n, HIGH, d]
            x = p[d]
            if x > high:
                outside += x - high
                spread += x - low
            elif x < low:
                outside += low - x
                spread += high - x
            else:
                spread += high - low
        if outside == 0.0:
            break
        q = outside / spread
        score = q / (k + 1.0) + (1.0 - q) * score
    return score * math.log2(total_mass + 1.0)


@njit(cache=True)
def score_point(t: int, p: Float64Array, nodes: Int32Array, cut_values: Float64Array,
                boxes: Float64Array, leaves: Int32Array, leaf_point: Float64Array,
                trees: Int32Array, path: Int32Array) -> float:
    """Anomaly score of ``p`` in tree ``t``, normalised by log2(tree mass + 1)."""
    if trees[t, ROOT] == EMPTY:
        return 0.0
    leaf, depth = descend(t, p, nodes, cut_values, trees, path)
    return score_from_path(t, p, leaf, depth, nodes, boxes, leaves, leaf_point, trees, path)


@njit(cache=True)
def attribute_point(t: int, p: Float64Array, nodes: Int32Array, cut_values: Float64Array,
                    boxes: Float64Array, leaves: Int32Array, leaf_point: Float64Array,
                    trees: Int32Array, path: Int32Array, out: Float64Array) -> None:
    """Write tree ``t``'s attribution of ``p`` into ``out`` (high[0:D], low[D:2D])."""
    dims = p.shape[0]
    for j in range(2 * dims):
        out[j] = 0.0
    if trees[t, ROOT] == EMPTY:
        return
    total_mass = tree_mass(nodes, leaves, trees, t)
    leaf, depth = descend(t, p, nodes, cut_values, trees, path)
    if leaf_equals(leaf_point, t, leaf, p):
        m = leaves[t, leaf, LEAF_MASS]
        score = (1.0 - m / (2.0 * total_mass)) / (depth + math.log2(m + 1.0))
        share = score / (2.0 * dims)
        for j in range(2 * dims):
            out[j] = share
    else:
        unseen = 1.0 / (depth + 1.0)
        spread = 0.0
        for d in range(dims):
            spread += abs(p[d] - leaf_point[t, leaf, d])
        for d in range(dims):
            diff = p[d] - leaf_point[t, leaf, d]
            if diff > 0.0:
                out[d] = unseen * diff / spread
            else:
                out[dims + d] = -unseen * diff / spread
    for k in range(depth - 1, -1, -1):
        n = path[k]
        outside = 0.0
        spread = 0.0
        for d in range(dims):
            low = boxes[t, n, LOW, d]
            high = boxes[t, n, HIGH, d]
            x = p[d]
            if x > high:
                outside += x - high
                spread += x - low
            elif x < low:
                outside += low - x
                spread += high - x
            else:
                spread += high - low
        if outside == 0.0:
            break
        q = outside / spread
        unseen = 1.0 / (k + 1.0)
        for d in range(dims):
            x = p[d]
            above = max(x - boxes[t, n, HIGH, d], 0.0) / spread
            below = max(boxes[t, n, LOW, d] - x, 0.0) / spread
            out[d] = above * unseen + (1.0 - q) * out[d]
            out[dims + d] = below * unseen + (1.0 - q) * out[dims + d]
    scale = math.log2(total_mass + 1.0)
    for j in range(2 * dims):
        out[j] *= scale


@njit(cache=True, inline="always")
def _pop_node(free_nodes: Int32Array, trees: Int32Array, t: int) -> int:
    trees[t, FREE_NODES] -= 1
    node: int = free_nodes[t, trees[t, FREE_NODES]]
    return node


@njit(cache=True, inline="always")
def _push_node(free_nodes: Int32Array, trees: Int32Array, t: int, n: int) -> None:
    free_nodes[t, trees[t, FREE_NODES]] = n
    trees[t, FREE_NODES] += 1


@njit(cache=True, inline="always")
def _pop_leaf(free_leaves: Int32Array, trees: Int32Array, t: int) -> int:
    trees[t, FREE_LEAVES] -= 1
    leaf: int = free_leaves[t, trees[t, FREE_LEAVES]]
    return leaf


@njit(cache=True, inline="always")
def _push_leaf(free_leaves: Int32Array, trees: Int32Array, t: int, leaf: int) -> None:
    free_leaves[t, trees[t, FREE_LEAVES]] = leaf
    trees[t, FREE_LEAVES] += 1
