"""Histories on the recommender's 5-minute grid: the last ``T`` buckets of each
resource as rows of a ``(resources, T)`` matrix, and row statistics on such matrices."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, overload

import numpy as np

from ._stats import nan_quantiles, nanmax_from
from .types import STEP_SECONDS, UtilizationHistory

if TYPE_CHECKING:
    from typing import Literal


class _Window:
    """The last ``T`` 5-minute buckets of each history, as rows of matrices."""

    def __init__(self, histories: Sequence[UtilizationHistory], T: int) -> None:
        self.histories = histories
        self.T = T
        self.places: list[tuple[int, np.ndarray | None, int]] = []
        for h in histories:
            ts = h.timestamps
            if len(ts) == 0:
                self.places.append((0, None, 0))
                continue
            end = int(ts[-1]) - int(ts[-1]) % STEP_SECONDS
            start = end - (T - 1) * STEP_SECONDS
            first = int(np.searchsorted(ts, start))
            seg = ts[first:]
            n = len(seg)
            regular = n > 0 and int(seg[-1] - seg[0]) == STEP_SECONDS * (n - 1) and (
                int(seg[0]) - start) // STEP_SECONDS == T - n
            cols = None if regular else ((seg - start) // STEP_SECONDS).astype(np.int64)
            self.places.append((first, cols, n))

    @overload
    def matrix(self, names: Iterable[str], optional: Literal[False] = ...) -> np.ndarray: ...
    @overload
    def matrix(self, names: Iterable[str], optional: bool) -> np.ndarray | None: ...

    def matrix(self, names: Iterable[str], optional: bool = False) -> np.ndarray | None:
        """Rows of the first of ``names`` each history has (all-NaN rows if none); with
        ``optional``, None when no history has any of them."""
        names = tuple(names)
        if optional and not any(m in h.metrics for h in self.histories for m in names):
            return None
        out = np.empty((len(self.histories), self.T))
        for r, (h, (first, cols, n)) in enumerate(zip(self.histories, self.places,
                                                             strict=True)):
            name = next((m for m in names if m in h.metrics), None)
            if name is None or n == 0:
                out[r] = np.nan
                continue
            values = h.metrics[name][first:]
            if cols is None:
                out[r, : self.T - n] = np.nan
                out[r, self.T - n:] = values
            else:
                row = np.full(self.T, -np.inf)
                ok = np.isfinite(values)
                np.maximum.at(row, cols[ok], values[ok])
                out[r] = np.where(np.isneginf(row), np.nan, row)
        return out

    def sum_matrix(self, groups, optional: bool = False) -> np.ndarray | None:
        """Sum of several metrics (each the first present of a group); NaN if none."""
        parts = [p for p in (self.matrix(names, optional) for names in groups)
                 if p is not None]
        if not parts:
            return None
        present = np.zeros_like(parts[0], dtype=bool)
        total = np.zeros_like(parts[0])
        for p in parts:
            present |= np.isfinite(p)
            total += np.nan_to_num(p)
        return np.where(present, total, np.nan)

    def data_hours(self, matrix: np.ndarray) -> np.ndarray:
        """Hours between the first and last measured bucket of each row (plus one)."""
        valid = np.isfinite(matrix)
        anyv = valid.any(axis=1)
        first = np.argmax(valid, axis=1)
        last = matrix.shape[1] - 1 - np.argmax(valid[:, ::-1], axis=1)
        return np.where(anyv, (last - first + 1) * STEP_SECONDS / 3600.0, 0.0)


def _window(histories: Sequence[UtilizationHistory], T: int) -> _Window:
    return _Window(histories, T)


def _row_max(x: np.ndarray) -> np.ndarray:
    return nanmax_from(np.ascontiguousarray(x), np.zeros(x.shape[0], dtype=np.int64))


def _row_quantile(x: np.ndarray, q: float) -> np.ndarray:
    if not np.isfinite(x).any():
        return np.full(x.shape[0], np.nan)
    return nan_quantiles(x, [q])[:, 0]
