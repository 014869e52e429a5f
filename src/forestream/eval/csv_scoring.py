"""Scoring a CSV file with the forest: the library behind ``forestream rcf score``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from forestream.rcf import RandomCutForest, ThresholdedDetector

_PROGRESS_STEP = 2000  # rows per progress-bar update


@dataclass
class ScoredTable:
    """A scored CSV: the input columns plus one score (and grade) per row."""

    timestamps: list[str] | None
    columns: list[str]
    values: np.ndarray  # (n, len(columns))
    scores: np.ndarray
    grades: np.ndarray
    explanations: list[dict | None]


def read_numeric_csv(path: str | Path, columns: list[str] | None = None
                     ) -> tuple[list[str] | None, list[str], np.ndarray]:
    """Read a CSV with a header; return (timestamps or None, value column names, values).

    A first column named like a time (``timestamp``, ``time``, ``date``, ``ts``) is kept
    as labels; the value columns are ``columns`` or every other column.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise ValueError(f"{path} is empty: expected a header row and data") from None
        rows = [row for row in reader if row]
    if not rows:
        raise ValueError(f"{path} has a header but no data rows")
    time_col = next((i for i, h in enumerate(header)
                     if h.lower() in ("timestamp", "time", "date", "datetime", "ts")), None)
    if columns:
        missing = [c for c in columns if c not in header]
        if missing:
            raise ValueError(f"column(s) {missing} not in {path}; it has {header}")
        wanted = [header.index(c) for c in columns]
    else:
        wanted = [i for i in range(len(header)) if i != time_col]
    if not wanted:
        raise ValueError(f"{path} has no value columns besides the timestamp")
    values = np.empty((len(rows), len(wanted)))
    for r, row in enumerate(rows):
        for c, i in enumerate(wanted):
            try:
                values[r, c] = float(row[i]) if row[i].strip() else np.nan
            except (ValueError, IndexError):
                raise ValueError(f"{path}, line {r + 2}, column {header[i]!r}: "
                                 f"not a number: {row[i] if i < len(row) else ''!r}") from None
    timestamps = [row[time_col] for row in rows] if time_col is not None else None
    return timestamps, [header[i] for i in wanted], values


def score_table(values: np.ndarray, mode: str = "streaming", shingle_size: int = 4,
                num_trees: int = 100, sample_size: int = 256, random_seed: int | None = 1,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[dict | None]]:
    """Score rows: ``streaming`` (each row scored before it is learned, graded, with
    explanations) or ``batch`` (one forest learns all rows, then scores each)."""
    if mode not in ("streaming", "batch"):
        raise ValueError(f"mode must be 'streaming' or 'batch', got {mode!r}")
    if np.isnan(values).any():
        values = _fill_gaps(values)
    n, dims = values.shape
    if mode == "batch":
        forest = RandomCutForest(dims, shingle_size, num_trees, sample_size, time_decay=0.0,
                                 output_after=0, random_seed=random_seed)
        forest.update_many(values)
        points = np.lib.stride_tricks.sliding_window_view(values, (shingle_size, dims))
        scores = np.zeros(n)
        scores[shingle_size - 1:] = forest.score_points(points.reshape(-1, forest.point_dimensions))
        return scores, np.clip(scores / np.log2(sample_size), 0, 1), [None] * n
    detector = ThresholdedDetector(dims, shingle_size, num_trees, sample_size,
                                   random_seed=random_seed)
    scores, grades, explanations = np.zeros(n), np.zeros(n), []
    with _progress(progress) as bar:
        task = bar.add_task("scoring", total=n)
        for start in range(0, n, _PROGRESS_STEP):
            for d in detector.process_batch(values[start : start + _PROGRESS_STEP]):
                scores[d.index], grades[d.index] = d.score, d.grade
                explanations.append(_explain(d) if d.is_anomaly else None)
            bar.update(task, completed=min(n, start + _PROGRESS_STEP))
    return scores, grades, explanations


def write_scored_csv(path: str | Path, table: ScoredTable) -> None:
    """Write input columns plus score, grade and the anomaly explanation per row."""
    with Path(path).open("w", newline="") as handle:
        writer = csv.writer(handle)
        head = (["timestamp"] if table.timestamps is not None else []) + table.columns
        writer.writerow(head + ["anomaly_score", "grade", "cause", "expected_value"])
        for i in range(len(table.scores)):
            row = [table.timestamps[i]] if table.timestamps is not None else []
            row += [f"{v:.10g}" for v in table.values[i]]
            e = table.explanations[i]
            row += [f"{table.scores[i]:.6f}", f"{table.grades[i]:.6f}",
                    e["cause"] if e else "", e["expected"] if e else ""]
            writer.writerow(row)


def _explain(d) -> dict:
    when = "this row" if d.relative_index == 0 else f"{-d.relative_index} row(s) earlier"
    return {"cause": f"column {d.dimension} ({when})",
            "expected": f"{d.expected_values[d.dimension]:.6g}"}


def _fill_gaps(values: np.ndarray) -> np.ndarray:
    """Carry the last seen value forward over empty cells (first ones: the column's first)."""
    out = values.copy()
    for c in range(out.shape[1]):
        col = out[:, c]
        seen = ~np.isnan(col)
        if not seen.any():
            raise ValueError(f"value column {c} has no numbers at all")
        idx = np.where(seen, np.arange(len(col)), 0)
        np.maximum.accumulate(idx, out=idx)
        col[:] = np.where(seen[idx], col[idx], col[seen][0])
    return out


def _progress(enabled: bool) -> Progress:
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), disable=not enabled, transient=False)
