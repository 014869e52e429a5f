"""Running a detector over a NAB corpus, and NAB's results-file format.

The runner is indifferent to how a detector works: it calls ``detector_factory(nab_file)``
once per file and expects one anomaly score per row back (computed causally, which is the
detector's business). Scores can be written in NAB's own results layout,
``<out_dir>/<detector>/<category>/<detector>_<file>.csv`` with columns
``timestamp,value,anomaly_score,label``, and read back, so results produced by any NAB
detector (including the files shipped in numenta/NAB's ``results/``) can be scored the same
way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from .corpus import NabFile, parse_floats, parse_timestamps, read_csv_columns

if TYPE_CHECKING:
    from typing import Literal

__all__ = ["read_results", "results_path", "run_detector", "write_results"]

RESULTS_HEADER = ("timestamp", "value", "anomaly_score", "label")

DetectorFactory = Callable[[NabFile], np.ndarray]


def run_detector(
    detector_factory: DetectorFactory,
    corpus: list[NabFile],
    out_dir: str | Path | None = None,
    detector_name: str = "forestream",
    progress: bool = True,
) -> dict[str, np.ndarray]:
    """Run a detector over every file of a corpus and collect its anomaly scores.

    Args:
        detector_factory: called with each :class:`NabFile`; returns the anomaly score of
            every row of that file (any array-like of length ``n_rows``).
        corpus: the files, from :func:`load_corpus`.
        out_dir: if given, each file's scores are also written in NAB's results format
            under ``<out_dir>/<detector_name>/``.
        detector_name: name used for the results directory and file prefix.
        progress: show a rich progress bar (files done, rows per second).

    Returns:
        File name -> ``float64`` array of anomaly scores.
    """
    _check_detector_name(detector_name)
    results: dict[str, np.ndarray] = {}
    total_rows = sum(f.n_rows for f in corpus)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[files]}/{task.fields[n_files]} files"),
        MofNCompleteColumn(),
        _RowsPerSecondColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        disable=not progress,
    ) as bar:
        task = bar.add_task(
            f"NAB {detector_name}", total=total_rows, files=0, n_files=len(corpus), current=""
        )
        for done, nab_file in enumerate(corpus):
            bar.update(task, current=nab_file.name)
            scores = np.asarray(detector_factory(nab_file), dtype=np.float64)
            if scores.shape != (nab_file.n_rows,):
                raise ValueError(
                    f"detector returned shape {scores.shape} for {nab_file.name}, "
                    f"expected ({nab_file.n_rows},)"
                )
            results[nab_file.name] = scores
            if out_dir is not None:
                write_results(out_dir, detector_name, nab_file, scores)
            bar.update(task, advance=nab_file.n_rows, files=done + 1)
        bar.update(task, current="")
    return results


def write_results(
    out_dir: str | Path, detector_name: str, nab_file: NabFile, scores: np.ndarray
) -> Path:
    """Write one file's scores in NAB's results format; returns the path written.

    Timestamps are written as ``YYYY-MM-DD HH:MM:SS`` (with fractional seconds only if the
    data has them), values and scores with full round-trip precision, and ``label`` is 1
    for rows inside a labelled window.
    """
    _check_detector_name(detector_name)
    scores = np.asarray(scores, dtype=np.float64)
    if scores.shape != (nab_file.n_rows,):
        raise ValueError(
            f"{nab_file.name}: {scores.shape[0] if scores.ndim else 0} scores for "
            f"{nab_file.n_rows} rows"
        )
    path = results_path(out_dir, detector_name, nab_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    stamps = _format_timestamps(nab_file.timestamps)
    labels = nab_file.labels
    lines = [",".join(RESULTS_HEADER)]
    lines.extend(
        f"{t},{v!r},{s!r},{lab}"
        for t, v, s, lab in zip(
            stamps, nab_file.values.tolist(), scores.tolist(), labels.tolist(), strict=True
        )
    )
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    return path


def read_results(
    out_dir: str | Path, detector_name: str, corpus: list[NabFile]
) -> dict[str, np.ndarray]:
    """Read NAB-format results of ``detector_name`` for every file of ``corpus``.

    Only the ``timestamp`` and ``anomaly_score`` columns are used, so NAB's own results
    files (which carry extra ``S(t)_<profile>`` columns) read fine. Each file must have one
    row per corpus row with the same timestamps; errors name the file.
    """
    _check_detector_name(detector_name)
    results = {}
    for nab_file in corpus:
        path = results_path(out_dir, detector_name, nab_file)
        if not path.is_file():
            raise FileNotFoundError(f"no results for {nab_file.name}: {path} does not exist")
        columns = read_csv_columns(path, ("timestamp", "anomaly_score"))
        stamps = parse_timestamps(columns["timestamp"], path)
        if stamps.shape != nab_file.timestamps.shape:
            raise ValueError(
                f"{path}: {stamps.shape[0]} rows, but {nab_file.name} has {nab_file.n_rows}"
            )
        differ = np.flatnonzero(stamps != nab_file.timestamps)
        if differ.size:
            i = int(differ[0])
            raise ValueError(
                f"{path}: row {i} has timestamp {stamps[i]}, but {nab_file.name} has "
                f"{nab_file.timestamps[i]}"
            )
        results[nab_file.name] = parse_floats(columns["anomaly_score"], path, "anomaly_score")
    return results


def results_path(out_dir: str | Path, detector_name: str, nab_file: NabFile) -> Path:
    """``<out_dir>/<detector_name>/<category>/<detector_name>_<file>.csv`` for a file."""
    category, _, base = nab_file.name.rpartition("/")
    return Path(out_dir) / detector_name / category / f"{detector_name}_{base}"


# --------------------------------------------------------------------------------------
# helpers


class _RowsPerSecondColumn(ProgressColumn):
    """Throughput over the whole run (rich's own estimate only looks at recent updates)."""

    def __init__(self) -> None:
        super().__init__()
        self._start = time.perf_counter()

    def render(self, task: Task) -> Text:
        elapsed = time.perf_counter() - self._start
        rate = task.completed / elapsed if elapsed > 0 and task.completed else 0.0
        return Text(f"{rate:,.0f} rows/s", style="progress.data.speed")


def _check_detector_name(name: str) -> None:
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        raise ValueError(f"detector_name must be a plain, non-empty name, got {name!r}")


def _format_timestamps(timestamps: np.ndarray) -> list[str]:
    ns = timestamps.astype("datetime64[ns]")
    ticks = ns.astype(np.int64)
    unit: Literal["ns", "us", "s"] = "ns"
    if np.all(ticks % 1000 == 0):
        unit = "s" if np.all(ticks % 1_000_000_000 == 0) else "us"
    text = np.datetime_as_string(ns, unit=unit)
    return [t.replace("T", " ") for t in text.tolist()]
