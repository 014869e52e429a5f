"""Loading the NAB corpus: data files plus their labelled anomaly windows.

A NAB corpus directory holds ``data/<category>/<file>.csv`` (columns ``timestamp,value``)
and ``labels/combined_windows.json``, which maps ``"<category>/<file>.csv"`` to a list of
``[start, end]`` timestamp pairs. The windows are taken from the labels file as they are;
nothing here recomputes them.

Window rows follow NAB's reference sweeper rather than a plain timestamp comparison, because
a few NAB files are not strictly time-ordered (daylight-saving repeats and one backwards
jump): a window starts at the *first* row whose timestamp equals its start and ends at the
first row after that whose timestamp equals its end. Only when a boundary timestamp is not
present as a row (labels that do not line up with the data) does it fall back to the first
row at or after the start and the last row at or before the end.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

__all__ = ["NabFile", "load_corpus", "read_nab_csv"]

LABELS_RELPATH = Path("labels") / "combined_windows.json"


@dataclass(eq=False)
class NabFile:
    """One NAB data file with its labelled anomaly windows.

    Attributes:
        name: path relative to ``data/``, e.g. ``"realKnownCause/nyc_taxi.csv"``.
        category: the first path component, e.g. ``"realKnownCause"``.
        timestamps: ``datetime64[ns]`` array, one per row, in file order.
        values: ``float64`` array, one per row.
        windows: ``(start, end)`` pairs of ``datetime64[ns]``, inclusive, as labelled.
    """

    name: str
    category: str
    timestamps: np.ndarray
    values: np.ndarray
    windows: list[tuple[np.datetime64, np.datetime64]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype="datetime64[ns]")
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.timestamps.ndim != 1 or self.timestamps.shape != self.values.shape:
            raise ValueError(
                f"{self.name}: timestamps {self.timestamps.shape} and values "
                f"{self.values.shape} must be 1-d arrays of the same length"
            )
        # numpy's stubs have no datetime64(<datetime64>, unit) overload; numpy accepts it.
        self.windows = [
            (np.datetime64(start, "ns"), np.datetime64(end, "ns"))  # type: ignore[call-overload]
            for start, end in self.windows
        ]

    @property
    def n_rows(self) -> int:
        """Number of rows in the file."""
        return int(self.values.shape[0])

    @cached_property
    def window_rows(self) -> list[tuple[int, int]]:
        """Inclusive ``(first_row, last_row)`` index pairs of the windows, in row order.

        Raises ValueError naming the file and window if a window holds no rows or windows
        overlap.
        """
        spans = [_locate_window(self.timestamps, s, e, self.name) for s, e in self.windows]
        spans.sort()
        for (_, prev_end), (start, _) in zip(spans, spans[1:], strict=False):
            if start <= prev_end:
                raise ValueError(f"{self.name}: anomaly windows overlap at row {start}")
        return spans

    @property
    def labels(self) -> np.ndarray:
        """``int8`` array: 1 for rows inside a window, else 0 (NAB's ``label`` column)."""
        out = np.zeros(self.n_rows, dtype=np.int8)
        for first, last in self.window_rows:
            out[first : last + 1] = 1
        return out


def load_corpus(data_dir: str | Path) -> list[NabFile]:
    """Load every data file under ``<data_dir>/data`` with its windows from the labels file.

    Files are returned sorted by name. Label entries for files that are not present are
    ignored, so ``data_dir`` may hold any subset of NAB; a data file without a label entry
    is an error, as is a missing ``data/`` directory or ``labels/combined_windows.json``.
    """
    root = Path(data_dir)
    data_root = root / "data"
    labels_path = root / LABELS_RELPATH
    if not root.is_dir():
        raise FileNotFoundError(f"NAB corpus directory not found: {root}")
    if not data_root.is_dir():
        raise FileNotFoundError(
            f"not a NAB corpus: no data/ directory at {data_root} "
            "(expected data/<category>/<file>.csv)"
        )
    if not labels_path.is_file():
        raise FileNotFoundError(f"not a NAB corpus: labels file missing at {labels_path}")

    try:
        labels = json.loads(labels_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"cannot read NAB labels file {labels_path}: {exc}") from exc
    if not isinstance(labels, dict):
        raise ValueError(f"{labels_path}: expected a JSON object mapping file names to windows")

    csv_paths = sorted(p for p in data_root.glob("*/*.csv") if p.is_file())
    if not csv_paths:
        raise FileNotFoundError(f"no data files matching data/<category>/<file>.csv in {root}")
    names = [p.relative_to(data_root).as_posix() for p in csv_paths]
    unlabelled = [n for n in names if n not in labels]
    if unlabelled:
        raise ValueError(f"data files without an entry in {labels_path}: {', '.join(unlabelled)}")

    corpus = []
    for path, name in zip(csv_paths, names, strict=True):
        timestamps, values = read_nab_csv(path)
        windows = _parse_windows(labels[name], name, labels_path)
        corpus.append(NabFile(name, name.split("/", 1)[0], timestamps, values, windows))
    return corpus


def read_nab_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a NAB data CSV (header with ``timestamp`` and ``value`` columns).

    Returns ``(timestamps as datetime64[ns], values as float64)``; errors name the path and
    the offending line.
    """
    columns = read_csv_columns(path, ("timestamp", "value"))
    timestamps = parse_timestamps(columns["timestamp"], path)
    values = parse_floats(columns["value"], path, "value")
    return timestamps, values


# --------------------------------------------------------------------------------------
# helpers shared with the runner


def read_csv_columns(path: str | Path, wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """Read the named columns of a CSV file with a header row, as lists of strings."""
    path = Path(path)
    try:
        with path.open(newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise ValueError(f"{path}: empty file, expected a header row")
            header = [h.strip() for h in header]
            missing = [w for w in wanted if w not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; header is {header}")
            idx = [header.index(w) for w in wanted]
            out: dict[str, list[str]] = {w: [] for w in wanted}
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) < len(header):
                    raise ValueError(f"{path}:{line_no}: expected {len(header)} fields: {row}")
                for w, i in zip(wanted, idx, strict=True):
                    out[w].append(row[i])
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {path}: {exc}") from exc
    return out


def parse_timestamps(raw: list[str], path: str | Path) -> np.ndarray:
    """Parse timestamp strings (``YYYY-MM-DD HH:MM:SS[.ffffff]``) into ``datetime64[ns]``."""
    try:
        return np.array([s.strip() for s in raw], dtype="datetime64[ns]")
    except ValueError:
        for line_no, s in enumerate(raw, start=2):
            try:
                np.datetime64(s.strip(), "ns")
            except ValueError:
                raise ValueError(f"{path}:{line_no}: bad timestamp {s!r}") from None
        raise


def parse_floats(raw: list[str], path: str | Path, column: str) -> np.ndarray:
    """Parse a column of number strings into ``float64``; errors name the line and value."""
    try:
        return np.array(raw, dtype=np.float64)
    except ValueError:
        for line_no, s in enumerate(raw, start=2):
            try:
                float(s)
            except ValueError:
                raise ValueError(f"{path}:{line_no}: bad {column} {s!r}") from None
        raise


def _parse_windows(
    raw: object, name: str, labels_path: Path
) -> list[tuple[np.datetime64, np.datetime64]]:
    if not isinstance(raw, list):
        raise ValueError(f"{labels_path}: windows for {name} must be a list, got {raw!r}")
    windows: list[tuple[np.datetime64, np.datetime64]] = []
    for pair in raw:
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise ValueError(f"{labels_path}: window {pair!r} for {name} is not [start, end]")
        try:
            start, end = (np.datetime64(str(t).strip(), "ns") for t in pair)
        except ValueError:
            raise ValueError(
                f"{labels_path}: bad timestamp in window {pair!r} for {name}"
            ) from None
        if end < start:
            raise ValueError(f"{labels_path}: window {pair!r} for {name} ends before it starts")
        windows.append((start, end))
    return windows


def _locate_window(
    timestamps: np.ndarray, start: np.datetime64, end: np.datetime64, name: str
) -> tuple[int, int]:
    exact = np.flatnonzero(timestamps == start)
    if exact.size:
        first = int(exact[0])
    else:
        after = np.flatnonzero(timestamps >= start)
        if not after.size:
            raise ValueError(f"{name}: window [{start}, {end}] starts after the last row")
        first = int(after[0])
    tail = timestamps[first:]
    exact = np.flatnonzero(tail == end)
    if exact.size:
        last = first + int(exact[0])
    else:
        before = np.flatnonzero(tail <= end)
        if not before.size:
            raise ValueError(f"{name}: window [{start}, {end}] contains no rows")
        last = first + int(before[-1])
    return first, last
