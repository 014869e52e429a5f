"""Numba kernels on ``(resources, samples)`` matrices for the workload analysis and the
policies: hourly peaks and means, NaN-aware row quantiles (from a start column on),
row maxima and the share of samples pinned at a level. Each row runs in parallel."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True)
def hourly_stats(X, per_hour):
    """Per-row hourly maximum and mean of ``X`` (NaN-aware; NaN for an empty hour)."""
    R, T = X.shape
    H = T // per_hour
    peak = np.full((R, H), np.nan)
    mean = np.full((R, H), np.nan)
    for r in prange(R):
        for h in range(H):
            m = -np.inf
            s = 0.0
            n = 0
            for t in range(h * per_hour, (h + 1) * per_hour):
                v = X[r, t]
                if v == v:
                    n += 1
                    s += v
                    if v > m:
                        m = v
            if n > 0:
                peak[r, h] = m
                mean[r, h] = s / n
    return peak, mean


@njit(parallel=True, cache=True)
def nan_quantiles_masked(X, start, qs):
    """Quantiles ``qs`` (0-1, ascending; linear interpolation as numpy's default) of each
    row of ``X`` from column ``start[r]`` on, ignoring NaN; NaN for a row without values.
    One copy of each row, selected in place from the lowest quantile up."""
    R = X.shape[0]
    out = np.full((R, len(qs)), np.nan)
    for r in prange(R):
        _row_quantiles(X[r], start[r], qs, out[r])
    return out


@njit(cache=True)
def _row_quantiles(row, start, qs, out):
    buf = np.empty(len(row) - start)
    n = 0
    for t in range(start, len(row)):
        v = row[t]
        if v == v:
            buf[n] = v
            n += 1
    if n == 0:
        return
    low = 0
    for k in range(len(qs)):
        pos = qs[k] * (n - 1)
        lo = int(np.floor(pos))
        _select(buf, low, n - 1, lo)
        value = buf[lo]
        if lo + 1 < n and pos > lo:
            nxt = buf[lo + 1]
            for j in range(lo + 2, n):
                if buf[j] < nxt:
                    nxt = buf[j]
            value = value + (nxt - value) * (pos - lo)
        out[k] = value
        low = lo


@njit(cache=True)
def _select(a, left, right, k):
    """Quickselect in place: afterwards a[k] is the k-th smallest of a[left:right+1],
    smaller values before it and larger after it. Three-way partitioning keeps runs of
    equal values (a saturated or idle series) linear."""
    while right > left:
        mid = (left + right) // 2
        x, y, z = a[left], a[mid], a[right]
        pivot = max(min(x, y), min(max(x, y), z))  # median of three
        lt = left
        gt = right
        i = left
        while i <= gt:
            if a[i] < pivot:
                a[lt], a[i] = a[i], a[lt]
                lt += 1
                i += 1
            elif a[i] > pivot:
                a[gt], a[i] = a[i], a[gt]
                gt -= 1
            else:
                i += 1
        if k < lt:
            right = lt - 1
        elif k > gt:
            left = gt + 1
        else:
            return


@njit(parallel=True, cache=True)
def nan_quantile_per_row(X, start, q):
    """Quantile ``q[r]`` of row ``r`` of ``X`` from column ``start[r]`` on (NaN-aware)."""
    R = X.shape[0]
    out = np.full(R, np.nan)
    for r in prange(R):
        one = np.full(1, np.nan)
        _row_quantiles(X[r], start[r], q[r: r + 1], one)
        out[r] = one[0]
    return out


@njit(parallel=True, cache=True)
def nanmax_from(X, start):
    """Maximum of each row of ``X`` from column ``start[r]`` on (NaN-aware)."""
    R, T = X.shape
    out = np.full(R, np.nan)
    for r in prange(R):
        m = -np.inf
        for t in range(start[r], T):
            v = X[r, t]
            if v > m:
                m = v
        if m > -np.inf:
            out[r] = m
    return out


@njit(parallel=True, cache=True)
def pinned_share(X, low, high, start):
    """Per row (from ``start[r]``), the share of measured samples in [low, high], or 0
    when any sample is above ``high`` (then the series is not capped at ``high``)."""
    R, T = X.shape
    out = np.zeros(R)
    for r in prange(R):
        hits = 0
        n = 0
        above = False
        for t in range(start[r], T):
            v = X[r, t]
            if v == v:
                n += 1
                if v > high:
                    above = True
                    break
                if v >= low:
                    hits += 1
        if n > 0 and not above:
            out[r] = hits / n
    return out


def nan_quantiles(X: np.ndarray, qs) -> np.ndarray:
    """``(R, len(qs))`` quantiles of each row of ``X``, ignoring NaN."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    return nan_quantiles_masked(X, np.zeros(X.shape[0], dtype=np.int64),
                                np.asarray(qs, dtype=np.float64))
