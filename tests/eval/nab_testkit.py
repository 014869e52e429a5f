"""Helpers for the NAB tests: tiny corpora on disk and a slow, obvious reference scorer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from forestream.eval import NabFile

START = np.datetime64("2014-04-01T00:00:00", "ns")
STEP = np.timedelta64(5, "m")


def stamps(n: int) -> np.ndarray:
    """``n`` timestamps five minutes apart."""
    return START + STEP * np.arange(n)


def make_file(name: str, n: int, windows: list[tuple[int, int]], seed: int = 0) -> NabFile:
    """An in-memory NabFile of ``n`` rows with windows given as inclusive row ranges."""
    ts = stamps(n)
    values = np.random.default_rng(seed).normal(size=n)
    return NabFile(name, name.split("/")[0], ts, values, [(ts[a], ts[b]) for a, b in windows])


def fmt(ts: np.datetime64) -> str:
    return str(np.datetime_as_string(ts, unit="s")).replace("T", " ")


def write_corpus(root: Path, files: list[NabFile], extra_labels: dict | None = None) -> Path:
    """Write files in NAB's layout (data/ + labels/combined_windows.json) under ``root``."""
    labels = dict(extra_labels or {})
    for f in files:
        path = root / "data" / f.name
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = ["timestamp,value"] + [
            f"{fmt(t)},{v!r}" for t, v in zip(f.timestamps, f.values.tolist(), strict=True)
        ]
        path.write_text("\n".join(lines) + "\n")
        labels[f.name] = [[fmt(s) + ".000000", fmt(e) + ".000000"] for s, e in f.windows]
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "labels" / "combined_windows.json").write_text(json.dumps(labels, indent=1))
    return root


def sigmoid_scaled(y: float) -> float:
    return -1.0 if y > 3.0 else 2.0 / (1.0 + math.exp(5.0 * y)) - 1.0


def naive_file_score(
    spans: list[tuple[int, int]],
    scores: np.ndarray,
    threshold: float,
    tp_w: float,
    fp_w: float,
    fn_w: float,
    probation: int,
) -> float:
    """Row-by-row NAB score of one file at one threshold, written as plainly as possible."""
    total = 0.0
    for first, last in spans:
        scorable = [i for i in range(first, last + 1) if i >= probation]
        if not scorable:
            continue  # a window entirely in the probationary period does not count
        hits = [i for i in scorable if scores[i] >= threshold]
        if hits:
            width = last - first + 1
            y = -(last - hits[0] + 1) / width
            total += tp_w * sigmoid_scaled(y) / sigmoid_scaled(-1.0)
        else:
            total -= fn_w
    for i in range(probation, len(scores)):
        if scores[i] < threshold or any(a <= i <= b for a, b in spans):
            continue
        before = [(a, b) for a, b in spans if b < i]
        if not before:
            total -= fp_w
        else:
            a, b = before[-1]
            total += fp_w * sigmoid_scaled(abs(b - i) / max(b - a, 1))  # NAB: w - 1
    return total
