"""NAB scoring: per-row weights, an exact threshold sweep, and normalisation.

Every scorable row (past the probationary period) gets a weight that it contributes when it
is a detection (anomaly score >= threshold):

* inside a window whose last row is ``r`` and width ``w`` rows, row ``i`` is worth
  ``A_TP * S(-(r - i + 1) / w) / S(-1)``; only the best (= earliest) detection of a window
  counts, and a window without one costs ``-A_FN``;
* outside windows, a detection costs ``A_FP * S(|r' - i| / (w' - 1))`` where ``r'``, ``w'``
  belong to the closest preceding window, or ``-A_FP`` when no window precedes it;

with the scaled sigmoid ``S(y) = 2 / (1 + exp(5y)) - 1`` (and ``-1`` for ``y > 3``).

The threshold is optimised exactly, as NAB's sweeper does: rows of the whole corpus are
sorted by anomaly score, highest first, and each row is turned into a score *increment*
that applies to every threshold at or below its anomaly score. A false-positive row adds its
weight; a window row adds how much it raises its window's running best (starting from
``-A_FN``). A cumulative sum over the sorted increments then gives the corpus score at every
distinct anomaly score in O(n log n), ties resolved toward the highest threshold as NAB's
stable sort does. The starting threshold 1.1 stands for "never detect".

Normalisation follows NAB: ``100 * (S - S_null) / (S_perfect - S_null)`` with the null
detector a constant score of 0.5 (threshold-optimised like any detector, so in practice it
never detects) and the perfect score ``A_TP`` times the number of labelled windows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .corpus import NabFile
from .report import NabReport, ProfileResult

__all__ = [
    "NO_DETECTION_THRESHOLD",
    "PROBATION_PERCENT",
    "PROFILES",
    "CostWeights",
    "probation_length",
    "scaled_sigmoid",
    "score_corpus",
    "threshold_curve",
]

PROBATION_PERCENT = 0.15
NO_DETECTION_THRESHOLD = 1.1
"""NAB's starting threshold: above every valid score, so nothing is detected."""
NULL_DETECTOR_SCORE = 0.5


@dataclass(frozen=True)
class CostWeights:
    """Weights of one NAB application profile (NAB's ``CostMatrix``)."""

    tp: float
    fp: float
    fn: float
    tn: float = 1.0

    def __getitem__(self, key: str) -> float:
        """Look a weight up by NAB's name (``"tpWeight"``) or the short one (``"tp"``)."""
        short = key.removesuffix("Weight")
        if short not in ("tp", "fp", "fn", "tn"):
            raise KeyError(f"unknown cost weight {key!r}; expected tpWeight/fpWeight/...")
        return float(getattr(self, short))

    def as_dict(self) -> dict[str, float]:
        """The weights under NAB's key names."""
        return {f"{k}Weight": float(getattr(self, k)) for k in ("tp", "fp", "fn", "tn")}


PROFILES: dict[str, CostWeights] = {
    "standard": CostWeights(tp=1.0, fp=0.11, fn=1.0),
    "reward_low_FP_rate": CostWeights(tp=1.0, fp=0.22, fn=1.0),
    "reward_low_FN_rate": CostWeights(tp=1.0, fp=0.11, fn=2.0),
}
"""NAB's application profiles, as in numenta/NAB ``config/profiles.json``."""


def score_corpus(
    results: Mapping[str, np.ndarray],
    corpus: list[NabFile],
    *,
    profiles: Mapping[str, CostWeights] | None = None,
    thresholds: Mapping[str, float] | None = None,
    probation_percent: float = PROBATION_PERCENT,
) -> NabReport:
    """Score a detector's per-row anomaly scores on a corpus under each NAB profile.

    Args:
        results: file name -> anomaly scores in [0, 1], one per row of that file. Every
            corpus file must be present; extra entries are ignored.
        corpus: the files to score, from :func:`load_corpus`.
        profiles: profile name -> weights; default :data:`PROFILES`.
        thresholds: optional fixed threshold per profile name (e.g. NAB's published
            ``config/thresholds.json``); profiles not listed are optimised.
        probation_percent: fraction of each file (capped at ``5000 * fraction`` rows) that
            is not scored.

    Returns:
        A :class:`NabReport` with, per profile, the threshold maximising the corpus score,
        raw / null / perfect / normalised scores, counts and per-file scores.
    """
    profiles = PROFILES if profiles is None else profiles
    thresholds = thresholds or {}
    unknown = sorted(set(thresholds) - set(profiles))
    if unknown:
        raise ValueError(f"thresholds given for unknown profile(s) {unknown}")
    rows = _ScorableRows.build(results, corpus, probation_percent)
    null_rows = rows.with_scores(np.full_like(rows.score, NULL_DETECTOR_SCORE))
    n_windows = sum(len(f.windows) for f in corpus)

    out = {}
    for name, weights in profiles.items():
        if name in thresholds:
            threshold = float(thresholds[name])
        else:
            candidates, totals = _sweep(rows, weights)
            # First maximum: the highest threshold among ties, as NAB's stable sort picks.
            threshold = float(candidates[int(np.argmax(totals))])
        null = float(np.max(_sweep(null_rows, weights)[1]))
        perfect = weights.tp * n_windows
        file_scores, counts = _score_at(rows, weights, threshold)
        raw = float(sum(file_scores))
        denom = perfect - null
        normalised = 100.0 * (raw - null) / denom if denom != 0 else math.nan
        out[name] = ProfileResult(
            profile=name,
            threshold=threshold,
            raw=raw,
            null=null,
            perfect=perfect,
            normalised=normalised,
            file_scores={f.name: float(s) for f, s in zip(corpus, file_scores, strict=True)},
            **counts,
        )
    return NabReport(
        profiles=out,
        n_files=len(corpus),
        n_rows=sum(f.n_rows for f in corpus),
        n_windows=n_windows,
    )


def threshold_curve(
    results: Mapping[str, np.ndarray],
    corpus: list[NabFile],
    weights: CostWeights | str = "standard",
    probation_percent: float = PROBATION_PERCENT,
) -> tuple[np.ndarray, np.ndarray]:
    """Corpus raw score at every candidate threshold, as NAB's sweeper lists them.

    Returns ``(thresholds, scores)``: thresholds descending, starting with
    :data:`NO_DETECTION_THRESHOLD`, then each distinct anomaly score of a scorable row; the
    score at ``t`` counts every row with anomaly score ``>= t`` as a detection.
    """
    if isinstance(weights, str):
        if weights not in PROFILES:
            raise KeyError(f"unknown NAB profile {weights!r}; known: {sorted(PROFILES)}")
        weights = PROFILES[weights]
    rows = _ScorableRows.build(results, corpus, probation_percent)
    return _sweep(rows, weights)


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray:
    """NAB's scaled sigmoid ``2 / (1 + exp(5y)) - 1``, and ``-1`` where ``y > 3``.

    >>> [round(float(v), 5) for v in scaled_sigmoid([-1.0, 0.0, 1.0, 3.5])]
    [0.98661, 0.0, -0.98661, -1.0]
    """
    y = np.asarray(y, dtype=np.float64)
    curve = 2.0 / (1.0 + np.exp(5.0 * np.minimum(y, 4.0))) - 1.0
    return np.where(y > 3.0, -1.0, curve)


def probation_length(n_rows: int, probation_percent: float = PROBATION_PERCENT) -> int:
    """Rows at the start of a file that are not scored.

    NAB's ``getProbationPeriod``: ``min(floor(p * n), p * 5000)``, i.e. ``min(floor(0.15 n),
    750)`` for the default; rows with index below it are ignored.

    >>> probation_length(4032), probation_length(22695)
    (604, 750)
    """
    bound = min(math.floor(probation_percent * n_rows), probation_percent * 5000)
    return max(0, math.ceil(bound))


# --------------------------------------------------------------------------------------
# helpers


@dataclass(frozen=True)
class _ScorableRows:
    """All scorable rows of a corpus, concatenated, with profile-independent weights."""

    score: np.ndarray  # anomaly score
    file_idx: np.ndarray  # index into the corpus list
    window: np.ndarray  # global window id, -1 outside windows
    unweighted: np.ndarray  # S(...)/S(-1) inside windows, S(...) outside
    n_windows: int  # windows with at least one scorable row (ids 0..n-1)
    window_file: np.ndarray  # file index of each such window
    n_files: int

    @staticmethod
    def build(
        results: Mapping[str, np.ndarray], corpus: list[NabFile], probation_percent: float
    ) -> _ScorableRows:
        missing = [f.name for f in corpus if f.name not in results]
        if missing:
            raise KeyError(f"no anomaly scores for: {', '.join(missing)}")
        max_tp = float(scaled_sigmoid(-1.0))
        parts: dict[str, list[np.ndarray]] = {k: [] for k in ("s", "f", "w", "u")}
        window_file: list[int] = []
        for fi, nab_file in enumerate(corpus):
            scores = _check_scores(results[nab_file.name], nab_file)
            n = nab_file.n_rows
            rows = np.arange(n)
            window = np.full(n, -1, dtype=np.int64)
            unweighted = np.full(n, -1.0)  # FP with no preceding window
            spans = nab_file.window_rows
            for k, (first, last) in enumerate(spans):
                width = last - first + 1
                inside = rows[first : last + 1]
                window[first : last + 1] = k
                unweighted[first : last + 1] = scaled_sigmoid(-(last - inside + 1) / width) / max_tp
            if spans:
                ends = np.array([last for _, last in spans])
                widths = np.array([last - first + 1 for first, last in spans])
                prev = np.searchsorted(ends, rows, side="left") - 1
                after = (window < 0) & (prev >= 0)
                r_prev, w_prev = ends[prev[after]], widths[prev[after]]
                # NAB divides by (w' - 1); a one-row window would divide by zero there.
                unweighted[after] = scaled_sigmoid(
                    np.abs(r_prev - rows[after]) / np.maximum(w_prev - 1, 1)
                )
            keep = slice(probation_length(n, probation_percent), None)
            # Renumber windows globally, keeping only those with scorable rows.
            local = window[keep]
            present = np.unique(local[local >= 0])
            remap = np.full(len(spans) + 1, -1, dtype=np.int64)
            remap[present] = len(window_file) + np.arange(present.size)
            window_file.extend([fi] * present.size)
            parts["s"].append(scores[keep])
            parts["f"].append(np.full(local.size, fi, dtype=np.int64))
            parts["w"].append(remap[local])  # local -1 maps to remap[-1] == -1
            parts["u"].append(unweighted[keep])

        def cat(key: str, dtype: type) -> np.ndarray:
            return np.concatenate(parts[key]) if parts[key] else np.zeros(0, dtype)

        return _ScorableRows(
            score=cat("s", np.float64),
            file_idx=cat("f", np.int64),
            window=cat("w", np.int64),
            unweighted=cat("u", np.float64),
            n_windows=len(window_file),
            window_file=np.array(window_file, dtype=np.int64),
            n_files=len(corpus),
        )

    def with_scores(self, score: np.ndarray) -> _ScorableRows:
        return _ScorableRows(
            score, self.file_idx, self.window, self.unweighted,
            self.n_windows, self.window_file, self.n_files,
        )  # fmt: skip

    def weights(self, w: CostWeights) -> np.ndarray:
        return np.where(self.window >= 0, w.tp, w.fp) * self.unweighted


def _check_scores(raw: np.ndarray, nab_file: NabFile) -> np.ndarray:
    scores = np.asarray(raw, dtype=np.float64)
    if scores.shape != (nab_file.n_rows,):
        raise ValueError(
            f"{nab_file.name}: expected {nab_file.n_rows} anomaly scores, got shape {scores.shape}"
        )
    bad = np.flatnonzero(~np.isfinite(scores) | (scores < 0.0) | (scores > 1.0))
    if bad.size:
        i = int(bad[0])
        raise ValueError(
            f"{nab_file.name}: anomaly scores must lie in [0, 1]; row {i} is {scores[i]!r} "
            f"({bad.size} bad rows)"
        )
    return scores


def _sweep(rows: _ScorableRows, w: CostWeights) -> tuple[np.ndarray, np.ndarray]:
    """Thresholds (descending, from 1.1) and the corpus score at each."""
    weight = rows.weights(w)
    increment = np.where(rows.window >= 0, 0.0, weight)

    # Window rows: order by window, then score descending; the increment of a row is how
    # much it lifts its window's running best above -A_FN.
    in_win = np.flatnonzero(rows.window >= 0)
    if in_win.size:
        order = in_win[np.lexsort((-rows.score[in_win], rows.window[in_win]))]
        groups = rows.window[order]
        starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
        for seg in np.split(order, starts[1:]):
            best = np.maximum.accumulate(np.maximum(weight[seg], -w.fn))
            increment[seg] = np.diff(best, prepend=-w.fn)

    base = -w.fn * rows.n_windows
    order = np.argsort(-rows.score, kind="stable")
    sorted_scores = rows.score[order]
    totals = base + np.cumsum(increment[order])
    last_of_group = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    thresholds = np.r_[NO_DETECTION_THRESHOLD, sorted_scores[last_of_group]]
    return thresholds, np.r_[base, totals[last_of_group]]


def _score_at(
    rows: _ScorableRows, w: CostWeights, threshold: float
) -> tuple[np.ndarray, dict[str, int]]:
    """Per-file raw scores and NAB counts with detections at score >= threshold."""
    weight = rows.weights(w)
    detected = rows.score >= threshold
    in_win = rows.window >= 0

    fp_rows = detected & ~in_win
    file_scores = np.bincount(
        rows.file_idx[fp_rows], weights=weight[fp_rows], minlength=rows.n_files
    ).astype(np.float64)

    best = np.full(rows.n_windows, -np.inf)
    tp_rows = detected & in_win
    np.maximum.at(best, rows.window[tp_rows], weight[tp_rows])
    hit = np.isfinite(best)
    window_value = np.where(hit, best, -w.fn)
    file_scores += np.bincount(rows.window_file, weights=window_value, minlength=rows.n_files)

    counts = {
        "tp": int(tp_rows.sum()),
        "fp": int(fp_rows.sum()),
        "fn": int((~detected & in_win).sum()),
        "tn": int((~detected & ~in_win).sum()),
        "detected_windows": int(hit.sum()),
        "missed_windows": int((~hit).sum()),
    }
    return file_scores, counts
