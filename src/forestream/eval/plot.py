"""PNG plots of a scored series: values, score, and flagged points."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def plot_scored_series(path: str | Path, values: np.ndarray, scores: np.ndarray,
                       grades: np.ndarray, names: list[str], title: str = "",
                       truth: np.ndarray | None = None) -> Path:
    """Draw one panel per value column plus the score panel; anomalies marked in red.

    ``truth`` (optional boolean per row) shades the rows of known incidents.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = np.asarray(values, dtype=float).reshape(len(scores), -1)
    x = np.arange(len(scores))
    flagged = grades > 0
    fig, axes = plt.subplots(values.shape[1] + 1, 1, sharex=True,
                             figsize=(12, 1.8 * (values.shape[1] + 1) + 0.6))
    axes = np.atleast_1d(axes)
    for c in range(values.shape[1]):
        ax = axes[c]
        ax.plot(x, values[:, c], lw=0.7, color="#1f5f8b")
        ax.scatter(x[flagged], values[flagged, c], s=18, color="#d62728", zorder=3,
                   label="anomaly")
        ax.set_ylabel(names[c] if c < len(names) else f"col {c}")
        _shade(ax, truth)
    ax = axes[-1]
    ax.plot(x, scores, lw=0.7, color="#444444")
    ax.scatter(x[flagged], scores[flagged], s=14, color="#d62728", zorder=3)
    ax.set_ylabel("RCF score")
    _shade(ax, truth)
    axes[0].set_title(title)
    if flagged.any():
        axes[0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _shade(ax, truth) -> None:
    if truth is None:
        return
    truth = np.asarray(truth, dtype=bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], truth.astype(int), [0]])))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        ax.axvspan(start, end, color="#ffbf00", alpha=0.25, lw=0)
