"""The streaming Random Cut Forest."""

from __future__ import annotations

import math
import os
import secrets
import time
from typing import TYPE_CHECKING

import numpy as np

from . import _kernels
from ._state import ForestState, forget_spare, keep_spare, pack, prepare_spare, unpack
from .results import Attribution, Forecast, Neighbour

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import TypeAlias

    import numpy.typing as npt

    from ._jit import BoolArray, Float64Array, Int32Array

    # what learning changes: state, shingle, inputs seen, points seen (see _snapshot)
    ForestSnapshot: TypeAlias = tuple[ForestState, Float64Array, int, int]

_CHUNK = 8192  # rows per kernel call: bounds the per-tree score buffer
_PARALLEL_FROM = 32  # fewer rows run on the calling thread: starting threads costs more,
# and on a busy machine waits for a free core (measured: 20k -> 2k points/s under load)
_LOAD_CHECK_SECONDS = 1.0
_MAX_ABS_VALUE = 1e300  # beyond this, sums of ranges could overflow float64
_FORMAT_VERSION = 1


class RandomCutForest:
    """A streaming Random Cut Forest for anomaly detection on numeric data.

    Each of ``num_trees`` trees holds a sample of at most ``sample_size`` recent points,
    kept by time-decayed reservoir sampling, and organises it by random cuts: at every
    node a dimension is picked with probability proportional to the range of the points
    below it, and cut at a uniform position. A point that is easy to isolate — one that
    would sit near the root if it were inserted — is anomalous. The score is the
    expected change in tree complexity caused by inserting the point: about 1 for
    ordinary points, approaching ``log2(sample_size)`` for far outliers.

    With ``shingle_size`` s > 1 the forest works on the last s inputs glued together,
    which turns a time series into points whose shape, not only whose level, is
    learned. The forest keeps that window itself: callers pass one input at a time.

    Parameters
    ----------
    dimensions
        Width of one input row, before shingling.
    shingle_size
        Number of consecutive inputs in each point the trees see.
    num_trees
        Trees in the forest (more trees: smoother scores, slower).
    sample_size
        Points kept per tree.
    time_decay
        λ of the sampler: a point's sampling weight decays as ``exp(-λ·age)``.
        Default ``1 / (10 * sample_size)``; 0 keeps a uniform sample of all history.
    output_after
        Points to learn before scores are reported (0 before). Default ``sample_size // 4``.
    random_seed
        Seed for reproducible forests; ``None`` draws one.

    Examples
    --------
    >>> import numpy as np
    >>> from forestream.rcf import RandomCutForest
    >>> rng = np.random.default_rng(7)
    >>> forest = RandomCutForest(dimensions=1, shingle_size=4, num_trees=50, random_seed=7)
    >>> series = np.sin(np.arange(2000) / 10) + 0.05 * rng.standard_normal(2000)
    >>> series[1500] += 3.0
    >>> scores = forest.score_and_update(series)
    >>> bool(scores[1500] > 3 * np.median(scores[500:1400]))
    True
    >>> restored = RandomCutForest.from_bytes(forest.to_bytes())
    >>> restored.score([0.5]) == forest.score([0.5])
    True

    References
    ----------
    Guha, Mishra, Roy, Schrijvers. *Robust Random Cut Forest Based Anomaly Detection on
    Streams*. ICML 2016.
    """

    def __init__(
        self,
        dimensions: int = 1,
        shingle_size: int = 1,
        num_trees: int = 100,
        sample_size: int = 256,
        time_decay: float | None = None,
        output_after: int | None = None,
        random_seed: int | None = None,
    ) -> None:
        self.dimensions = _check_int("dimensions", dimensions, 1, 10_000)
        self.shingle_size = _check_int("shingle_size", shingle_size, 1, 1_000)
        self.num_trees = _check_int("num_trees", num_trees, 1, 10_000)
        self.sample_size = _check_int("sample_size", sample_size, 2, 1_000_000)
        if self.dimensions * self.shingle_size > 100_000:
            raise ValueError(
                f"dimensions * shingle_size = {self.dimensions * self.shingle_size} is too "
                "large: at most 100000 values per shingled point"
            )
        if time_decay is None:
            time_decay = 1.0 / (10 * self.sample_size)
        if isinstance(time_decay, bool) or not isinstance(time_decay, (int, float, np.number)) \
                or not (0.0 <= float(time_decay) < math.inf):
            raise ValueError(f"time_decay must be a finite number >= 0, got {time_decay!r}")
        self.time_decay = float(time_decay)
        if output_after is None:
            output_after = self.sample_size // 4
        self.output_after = _check_int("output_after", output_after, 0, 2**62)
        if random_seed is None:
            random_seed = secrets.randbits(63)
        self.random_seed = _check_int("random_seed", random_seed, -(2**63), 2**64 - 1)
        self._state = ForestState.empty(
            self.num_trees, self.sample_size, self.point_dimensions, self.random_seed
        )
        self._shingle = np.zeros((self.shingle_size, self.dimensions), dtype=np.float64)
        self._inputs_seen = 0
        self._points_seen = 0

    # ----------------------------------------------------------------------- properties
    @property
    def point_dimensions(self) -> int:
        """Width of the points the trees see: ``dimensions * shingle_size``."""
        return self.dimensions * self.shingle_size

    @property
    def points_seen(self) -> int:
        """Number of (shingled) points the forest has learned."""
        return self._points_seen

    @property
    def is_ready(self) -> bool:
        """Whether scores are being reported (``output_after`` points learned)."""
        return self._points_seen >= self.output_after and self._points_seen > 0

    @property
    def shingle(self) -> Float64Array:
        """The current shingle (last ``shingle_size`` inputs, oldest first), a copy."""
        return self._shingle.copy()

    # -------------------------------------------------------------------------- stream
    def score(self, x: npt.ArrayLike) -> float:
        """Anomaly score of input ``x`` given what the forest has learned; learns nothing."""
        row = self._check_rows(x, single=True)[0]
        if self._inputs_seen + 1 < self.shingle_size or not self.is_ready:
            return 0.0
        return self._step(row, want_score=True, learn=False)

    def update(self, x: npt.ArrayLike) -> None:
        """Learn input ``x`` (one row of ``dimensions`` values)."""
        self._step(self._check_rows(x, single=True)[0], want_score=False, learn=True)

    def _score_checked(self, row: Float64Array) -> float:
        """:meth:`score` of a row :meth:`_check_rows` has passed already (a detector
        checks its batch once, then scores and learns each row on two forests: checking
        again per call was an eighth of its per-record time)."""
        if self._inputs_seen + 1 < self.shingle_size or not self.is_ready:
            return 0.0
        return self._step(row, want_score=True, learn=False)

    def _update_checked(self, row: Float64Array) -> None:
        """:meth:`update` of a row :meth:`_check_rows` has passed already."""
        self._step(row, want_score=False, learn=True)

    def update_many(self, X: npt.ArrayLike) -> None:
        """Learn every row of ``X`` in order, without scoring (faster than scoring too)."""
        self._stream(self._check_rows(X, single=False), want_scores=False)

    def score_and_update(self, X: npt.ArrayLike) -> Float64Array:
        """Score each row of ``X``, then learn it; the batch fast path.

        Equivalent to ``[forest.score(x) for x in X]`` interleaved with ``update(x)``,
        but run in compiled code over all trees in parallel. Rows whose shingle is not yet
        full, or that arrive before ``output_after`` points were learned, score 0.
        """
        return self._stream(self._check_rows(X, single=False), want_scores=True)

    def attribution(self, x: npt.ArrayLike) -> Attribution:
        """Split the score of input ``x`` over the dimensions of its shingled point."""
        row = self._check_rows(x, single=True)
        point = self._peek_point(row[0])
        zeros = np.zeros(self.point_dimensions)
        if point is None or not self.is_ready:
            return Attribution(high=zeros, low=zeros.copy())
        s = self._state
        out = np.zeros((self.num_trees, 1, 2 * self.point_dimensions))
        _kernels.attribution_batch(point[None, :], out, s.nodes, s.cut_values, s.boxes,
                                   s.leaves, s.leaf_point, s.trees)
        mean = out[:, 0, :].mean(axis=0)
        return Attribution(high=mean[: self.point_dimensions],
                           low=mean[self.point_dimensions :])

    def score_points(self, points: npt.ArrayLike) -> Float64Array:
        """Scores of whole (already shingled) points, ``(n, point_dimensions)``; learns nothing.

        The batch path for a fitted forest, e.g. scoring a data set after training.
        """
        arr = np.asarray(points, dtype=np.float64)
        if arr.ndim == 1 and self.point_dimensions == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.point_dimensions or len(arr) == 0:
            raise ValueError(f"expected points of shape (n >= 1, {self.point_dimensions}), "
                             f"got shape {arr.shape}")
        if not (np.abs(arr) <= _MAX_ABS_VALUE).all():
            raise ValueError(f"points must hold finite numbers within ±{_MAX_ABS_VALUE:g}")
        if not self.is_ready:
            return np.zeros(len(arr))
        return self._run(np.ascontiguousarray(arr), want_scores=True, want_update=False)

    # ------------------------------------------------------------------------- queries
    def near_neighbours(self, x: npt.ArrayLike, k: int = 5) -> list[Neighbour]:
        """Up to ``k`` sampled points closest to the shingled point of input ``x``.

        Each tree proposes the sampled point in the leaf where ``x`` falls; proposals are
        merged, counted (``votes``) and sorted by Euclidean distance.
        """
        _check_int("k", k, 1, 1_000_000)
        point = self._peek_point(self._check_rows(x, single=True)[0])
        if point is None or self._points_seen == 0:
            return []
        s = self._state
        found = np.empty((self.num_trees, self.point_dimensions))
        distance = np.empty(self.num_trees)
        _kernels.neighbours(point, found, distance, s.nodes, s.cut_values, s.leaf_point,
                            s.trees)
        unique, inverse, votes = np.unique(found, axis=0, return_inverse=True,
                                           return_counts=True)
        dist = np.zeros(len(unique))
        dist[inverse.ravel()] = distance
        order = np.argsort(dist, kind="stable")[:k]
        return [Neighbour(unique[i], float(dist[i]), int(votes[i])) for i in order]

    def impute(self, x: npt.ArrayLike, max_leaves: int = 256) -> Float64Array:
        """Fill the NaN values of ``x`` with the forest's most likely completion.

        ``x`` is either one input row (``dimensions`` values, completed in the context
        of the current shingle) or a whole shingled point (``point_dimensions`` values).
        Each tree explores the leaves compatible with the known values and keeps the
        completion it finds least anomalous; the forest answers with the median.
        """
        per_tree, missing, width = self._impute_per_tree(x, max_leaves)
        completed: Float64Array = np.median(per_tree, axis=0)
        return completed[-width:] if width == self.dimensions else completed

    def forecast(self, horizon: int, coverage: float = 0.8) -> Forecast:
        """Forecast the next ``horizon`` inputs of a shingled series, with ranges.

        Step by step, the next input is imputed as the missing last part of the shingle
        that follows the current one; the median over trees is the forecast and fed back,
        and the ``coverage`` central range of the trees' answers is the interval.
        """
        _check_int("horizon", horizon, 1, 10_000)
        if self.shingle_size < 2:
            raise ValueError("forecast needs shingle_size >= 2 (the series' recent shape)")
        if not 0.0 < coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), got {coverage!r}")
        if self._points_seen == 0:
            raise ValueError("forecast needs a forest that has learned at least one point")
        d = self.dimensions
        window = self._shingle.reshape(-1).copy()
        values = np.empty((horizon, d))
        lower = np.empty((horizon, d))
        upper = np.empty((horizon, d))
        tail = (1.0 - coverage) / 2.0
        for h in range(horizon):
            query = np.concatenate([window[d:], np.full(d, np.nan)])
            per_tree, _, _ = self._impute_per_tree(query, 256)
            nxt = per_tree[:, -d:]
            values[h] = np.median(nxt, axis=0)
            lower[h] = np.quantile(nxt, tail, axis=0)
            upper[h] = np.quantile(nxt, 1.0 - tail, axis=0)
            window = np.concatenate([window[d:], values[h]])
        return Forecast(values=values, lower=lower, upper=upper)

    # ------------------------------------------------------------------- serialization
    def to_bytes(self, compress: bool = True) -> bytes:
        """The complete state (trees, samplers, generators, shingle) as bytes.
        ``compress=False`` is much faster and ~2.3x larger (checkpoints compress the whole
        snapshot off the processing thread instead)."""
        config = {
            "format": _FORMAT_VERSION,
            "dimensions": self.dimensions,
            "shingle_size": self.shingle_size,
            "num_trees": self.num_trees,
            "sample_size": self.sample_size,
            "time_decay": self.time_decay,
            "output_after": self.output_after,
            "random_seed": self.random_seed,
            "inputs_seen": self._inputs_seen,
            "points_seen": self._points_seen,
        }
        return pack(config, self._state, {"shingle": self._shingle}, compress=compress)

    @classmethod
    def from_bytes(cls, blob: bytes) -> RandomCutForest:
        """Restore a forest written by :meth:`to_bytes`; it continues exactly as before."""
        config, state, extra = unpack(blob)
        if config.get("format") != _FORMAT_VERSION:
            raise ValueError(f"unsupported forest format {config.get('format')!r}")
        forest = cls.__new__(cls)
        for key in ("dimensions", "shingle_size", "num_trees", "sample_size", "time_decay",
                    "output_after", "random_seed"):
            setattr(forest, key, config[key])
        forest._state = state
        forest._shingle = extra["shingle"]
        forest._inputs_seen = config["inputs_seen"]
        forest._points_seen = config["points_seen"]
        expected = (forest.num_trees, forest.sample_size, 2, forest.point_dimensions)
        if state.boxes.shape != expected or forest._shingle.shape != (forest.shingle_size,
                                                                       forest.dimensions):
            raise ValueError("corrupt serialized RandomCutForest: array shapes disagree")
        return forest

    def __reduce__(self) -> tuple[Callable[[bytes], RandomCutForest], tuple[bytes]]:
        # pickling goes through the same exact byte format as checkpoints
        return (RandomCutForest.from_bytes, (self.to_bytes(),))

    def __repr__(self) -> str:
        return (f"RandomCutForest(dimensions={self.dimensions}, shingle_size="
                f"{self.shingle_size}, num_trees={self.num_trees}, sample_size="
                f"{self.sample_size}, time_decay={self.time_decay:g}, output_after="
                f"{self.output_after}, points_seen={self._points_seen})")

    def copy(self, spare: bool = False) -> RandomCutForest:
        """An independent forest in the same state: learning in one leaves the other as it
        was (a copy of the arrays, ~20x faster than a round trip through bytes).

        ``spare``: into memory a :meth:`discard` handed back, when there is some — for
        copies taken again and again, such as a checkpoint's."""
        twin = object.__new__(type(self))  # not copy.copy: that pickles
        twin.__dict__.update(self.__dict__)
        twin._restore(self._snapshot(spare))
        return twin

    def prepare_copy(self) -> None:
        """Have memory for one :meth:`copy` with ``spare`` made in the background (a job
        that checkpoints does so for each new forest, ahead of its first round)."""
        prepare_spare(self._state)

    def forget_copy(self) -> None:
        """Undo :meth:`prepare_copy`: this forest's checkpoints are over (its job closed
        or replaced it), so one arena of its shape fewer is kept."""
        forget_spare(self._state)

    def discard(self) -> None:
        """Hand this forest's memory back for later copies to reuse; the forest must not
        be used afterwards (a copy that has been serialized, say)."""
        keep_spare(self._state)
        del self.__state, self._kernel_args  # a later use fails at once, reads no reused memory

    def _snapshot(self, spare: bool = False) -> ForestSnapshot:
        """Everything that learning changes, for an exact in-memory rewind (``spare``:
        into a reused arena, see :meth:`ForestState.copy`)."""
        return (self._state.copy(spare=spare), self._shingle.copy(), self._inputs_seen,
                self._points_seen)

    def _restore(self, snapshot: ForestSnapshot) -> None:
        state, shingle, inputs_seen, points_seen = snapshot
        self._state = state
        self._shingle = shingle
        self._inputs_seen = inputs_seen
        self._points_seen = points_seen

    def tree_sizes(self) -> Int32Array:
        """Number of sampled points (with multiplicity) held by each tree."""
        return self._state.trees[:, 3].copy()

    # ------------------------------------------------------------------------ helpers
    def _check_rows(self, X: npt.ArrayLike, single: bool) -> Float64Array:
        if single and self.dimensions == 1 and isinstance(X, (float, np.floating)) and \
                abs(X) <= _MAX_ABS_VALUE:  # type: ignore[operator]  # mypy infers abs() as object
            return np.array([[X]], dtype=np.float64)
        try:
            raw = np.asarray(X)
            if raw.dtype.kind not in "biuf":
                raise TypeError(f"dtype {raw.dtype}")
            arr = raw.astype(np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise ValueError(f"input must be numeric, got {X!r:.80}") from exc
        d = self.dimensions
        if single:
            if arr.ndim == 0 and d == 1:
                arr = arr.reshape(1)
            if arr.ndim != 1 or arr.shape[0] != d:
                raise ValueError(f"expected one input of {d} value(s), got shape {arr.shape}")
            arr = arr[None, :]
        else:
            if arr.ndim == 1 and d == 1:
                arr = arr[:, None]
            if arr.ndim != 2 or arr.shape[1] != d:
                raise ValueError(
                    f"expected a batch of shape (n, {d}), got shape {arr.shape}")
            if arr.shape[0] == 0:
                raise ValueError("empty batch: score_and_update needs at least one row")
        bad_mask = ~(np.abs(arr) <= _MAX_ABS_VALUE)
        if bad_mask.any():
            bad = np.argwhere(bad_mask)[0]
            raise ValueError(
                f"value {arr[tuple(bad)]} at row {bad[0]}, column {bad[-1]} is not a finite "
                f"number within ±{_MAX_ABS_VALUE:g}; use impute() to fill missing values")
        return arr

    def _peek_point(self, row: Float64Array) -> Float64Array | None:
        """The shingled point that learning ``row`` would produce, or None if incomplete."""
        if self._inputs_seen + 1 < self.shingle_size:
            return None
        return np.concatenate([self._shingle[1:].reshape(-1), row])

    def _stream(self, rows: Float64Array, want_scores: bool) -> Float64Array:
        s = self.shingle_size
        n = rows.shape[0]
        scores = np.zeros(n)
        if n == 1:  # the per-record streaming path: one compiled call, nothing allocated
            ready = self._points_seen >= self.output_after
            score = self._step(rows[0], want_score=want_scores and ready, learn=True)
            scores[0] = score if ready and self._inputs_seen >= s else 0.0
            return scores
        known = min(self._inputs_seen, s - 1)  # earlier inputs that start the first shingle
        joined = np.concatenate([self._shingle[s - known :], rows])
        skipped = s - 1 - known  # leading rows without a full shingle
        if len(joined) >= s:
            windows = np.lib.stride_tricks.sliding_window_view(joined, (s, self.dimensions))
            points = np.ascontiguousarray(windows.reshape(-1, self.point_dimensions))
            ready_from = max(0, self.output_after - self._points_seen)
            point_scores = self._run(points, want_scores=want_scores, want_update=True)
            point_scores[:ready_from] = 0.0
            scores[skipped:] = point_scores
        self._shingle = np.ascontiguousarray(np.concatenate([self._shingle, rows])[-s:])
        self._inputs_seen += n
        return scores

    def _step(self, row: Float64Array, want_score: bool, learn: bool) -> float:
        """Score and/or learn one input through the per-record kernel."""
        complete = self._inputs_seen + 1 >= self.shingle_size
        score = _kernels.step_one(self._shingle, row, self._point, want_score and complete,
                                  learn and complete, learn, self._points_seen,
                                  self.time_decay, self._paths, *self._kernel_args)
        if learn:
            self._inputs_seen += 1
            self._points_seen += complete
        return score

    def _run(self, points: Float64Array, want_scores: bool, want_update: bool) -> Float64Array:
        args = self._kernel_args
        n = len(points)
        out = np.zeros(n)
        for start in range(0, n, _CHUNK):
            chunk = points[start : start + _CHUNK]
            tree_scores = np.zeros((self.num_trees, len(chunk)))
            kernel = _kernels.score_and_update if _parallel_pays(len(chunk)) else \
                _kernels.score_and_update_serial
            kernel(chunk, self._points_seen, self.time_decay, want_scores, want_update,
                   tree_scores, *args)
            if want_update:
                self._points_seen += len(chunk)
            if want_scores:
                _kernels.mean_over_trees(tree_scores, out[start : start + len(chunk)])
        return out

    @property
    def _state(self) -> ForestState:
        return self.__state

    @_state.setter
    def _state(self, state: ForestState) -> None:
        self.__state = state
        self._kernel_args = state.kernel_args()
        self._point = np.zeros(self.dimensions * self.shingle_size)
        # the per-record kernel's scratch: the descents of a group of trees
        self._paths = np.zeros((_kernels.GROUP, self.sample_size + 1), dtype=np.int32)

    def _impute_per_tree(self, x: npt.ArrayLike, max_leaves: int
                         ) -> tuple[Float64Array, BoolArray, int]:
        _check_int("max_leaves", max_leaves, 1, 1_000_000)
        arr = np.asarray(x, dtype=np.float64).reshape(-1)
        width = arr.shape[0]
        if width == self.dimensions:
            if self._inputs_seen + 1 < self.shingle_size:
                raise ValueError("impute of one input needs a full shingle of history")
            point = np.concatenate([self._shingle[1:].reshape(-1), arr])
        elif width == self.point_dimensions:
            point = arr.copy()
        else:
            raise ValueError(f"impute expects {self.dimensions} or {self.point_dimensions} "
                             f"values, got {width}")
        missing = np.isnan(point)
        if (np.abs(point[~missing]) > _MAX_ABS_VALUE).any():
            raise ValueError("impute accepts NaN for missing values; the known values must "
                             f"be finite numbers within ±{_MAX_ABS_VALUE:g}")
        if self._points_seen == 0:
            raise ValueError("impute needs a forest that has learned at least one point")
        s = self._state
        per_tree = np.empty((self.num_trees, self.point_dimensions))
        _kernels.impute(np.where(missing, 0.0, point), missing, max_leaves, per_tree,
                        s.nodes, s.cut_values, s.boxes, s.leaves, s.leaf_point, s.trees)
        return per_tree, missing, width


def _check_int(name: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    if not low <= int(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value}")
    return int(value)


_free_cores = {"at": -1.0, "free": 0.0}


def _parallel_pays(rows: int) -> bool:
    """Whether the threaded kernel beats the serial one for ``rows`` points now: enough
    rows to pay for starting threads, and a core free for the second thread — on a
    machine another process keeps busy the threaded kernel waits for cores and runs ten
    times slower (measured; benchmarks/RESULTS.md), so it falls back to one thread.
    Free cores are the core count less the 1-minute load average (which counts this
    process too), looked at once a second."""
    if rows < _PARALLEL_FROM:
        return False
    now = time.monotonic()
    if now - _free_cores["at"] >= _LOAD_CHECK_SECONDS:
        try:
            load = os.getloadavg()[0]
        except OSError:  # not on this platform: assume the cores are there
            load = 0.0
        _free_cores["at"], _free_cores["free"] = now, (os.cpu_count() or 1) - load
    return _free_cores["free"] >= 1.0
