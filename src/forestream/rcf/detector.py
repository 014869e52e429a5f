"""A streaming anomaly detector: forest scores turned into grades with explanations."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast

import numpy as np

from . import _threshold
from .forest import RandomCutForest
from .results import Attribution

if TYPE_CHECKING:
    from typing import Any, TypeAlias, TypeVar

    import numpy.typing as npt

    from ._jit import Float64Array
    from .forest import ForestSnapshot

    # every forest's snapshot, then the threshold state (see _snapshot)
    DetectorSnapshot: TypeAlias = tuple[tuple[ForestSnapshot, ...], Float64Array]
    # forest scores: one score, or one per row of a batch
    _Scores = TypeVar("_Scores", float, Float64Array)

_MAGIC = b"FSTRD\x01"
_CHUNK = 512  # rows scored speculatively before an explained anomaly forces a rewind
# Fewer rows than this are explained row by row: saving the forests for a rewind costs as
# much as scoring a few dozen rows one at a time (measured: ~2 ms against ~0.2 ms a row
# for two forests of 100 trees), and a streaming job's batches are often that small.
_ROW_BY_ROW = 32


@dataclass(frozen=True)
class AnomalyDescriptor:
    """What the detector says about one input.

    ``grade`` is 0 for ordinary inputs and in (0, 1] for anomalies (how far above the
    threshold). For anomalies, ``attribution`` splits the score over the shingled point;
    ``relative_index`` says which input caused it (0: this one, -k: the one k steps
    back, still inside the shingle), ``dimension`` which column of that input, and
    ``expected_values`` what the forest expected that input to be.
    """

    index: int
    values: Float64Array
    score: float
    grade: float
    threshold: float
    attribution: Attribution | None = field(default=None, repr=False)
    relative_index: int | None = None
    dimension: int | None = None
    expected_values: Float64Array | None = None

    @property
    def is_anomaly(self) -> bool:
        return self.grade > 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (lists instead of arrays)."""
        out = {
            "index": self.index,
            "values": self.values.tolist(),
            "score": self.score,
            "grade": self.grade,
            "threshold": self.threshold,
            "is_anomaly": self.is_anomaly,
            "relative_index": self.relative_index,
            "dimension": self.dimension,
            "expected_values": None if self.expected_values is None
            else self.expected_values.tolist(),
        }
        if self.attribution is not None:
            out["attribution"] = {"high": self.attribution.high.tolist(),
                                  "low": self.attribution.low.tolist()}
        return out


class ThresholdedDetector:
    """Streaming anomaly detection with grades, like AWS's ThresholdedRandomCutForest.

    Two forests look at each input at two scales: a *shape* forest over the last
    ``shingle_size`` inputs (catches changes of pattern) and a *level* forest over the
    input alone (catches unusual values); the detector's score is their mean. An
    adaptive threshold follows the recent distribution of scores (mean plus ``z_factor``
    deviations, learned with anomalies clipped so an incident does not hide its own
    continuation). Above it, the grade is the score as a fraction of the largest
    possible score, ``log2(sample_size)``, so grades compare across series. One event is
    reported once: within ``refractory`` inputs of a report, only a higher score reports
    again. Each anomaly comes with its attribution, the input and column that caused
    it, and the value the forest expected there.

    Parameters
    ----------
    dimensions, shingle_size, num_trees, sample_size, time_decay, output_after, random_seed
        As for :class:`RandomCutForest`.
    z_factor
        Deviations above the mean score that make an anomaly.
    horizon
        Number of recent scores the mean and deviation follow.
    warmup
        Scores to learn before grading.
    min_deviation
        Floor on the score deviation, so a perfectly regular series is not flagged for
        noise-level changes.
    refractory
        Inputs after a report during which only a stronger score reports again
        (at least ``shingle_size``).
    multi_scale
        Add the level forest (only meaningful when ``shingle_size > 1``); ``False``
        uses the shape forest alone, at half the cost.

    Examples
    --------
    >>> import numpy as np
    >>> from forestream.rcf import ThresholdedDetector
    >>> rng = np.random.default_rng(1)
    >>> series = 10 + np.sin(np.arange(3000) / 8) + 0.1 * rng.standard_normal(3000)
    >>> series[2500] = 25.0
    >>> detector = ThresholdedDetector(random_seed=3)
    >>> found = [d for d in detector.process_batch(series) if d.is_anomaly]
    >>> [d.index for d in found if d.grade > 0.5]
    [2500]
    >>> d = next(d for d in found if d.index == 2500)
    >>> d.relative_index, bool(abs(d.expected_values[0] - 10) < 2)
    (0, True)
    """

    def __init__(
        self,
        dimensions: int = 1,
        shingle_size: int = 4,
        num_trees: int = 100,
        sample_size: int = 256,
        time_decay: float | None = None,
        output_after: int | None = None,
        random_seed: int | None = None,
        z_factor: float = 3.0,
        horizon: int = 1000,
        warmup: int = 64,
        min_deviation: float = 0.05,
        refractory: int = 200,
        multi_scale: bool = True,
    ) -> None:
        self.forest = RandomCutForest(dimensions, shingle_size, num_trees, sample_size,
                                      time_decay, output_after, random_seed)
        self.level_forest: RandomCutForest | None = None
        if multi_scale and shingle_size > 1:
            self.level_forest = RandomCutForest(
                dimensions, 1, num_trees, sample_size, self.forest.time_decay,
                self.forest.output_after, (self.forest.random_seed + 1) % 2**63)
        self.z_factor = _positive("z_factor", z_factor)
        self.horizon = _count("horizon", horizon, 1)
        self.warmup = _count("warmup", warmup, 0)
        self.min_deviation = _positive("min_deviation", min_deviation)
        self.refractory = max(_count("refractory", refractory, 0), self.forest.shingle_size)
        self.multi_scale = bool(multi_scale)
        max_score = np.log2(self.forest.sample_size)
        self._params = np.array([self.z_factor, self.horizon, self.warmup,
                                 self.min_deviation, max_score, self.refractory], dtype=float)
        self._state = _threshold.initial_state()

    @property
    def dimensions(self) -> int:
        return self.forest.dimensions

    @property
    def shingle_size(self) -> int:
        return self.forest.shingle_size

    # ------------------------------------------------------------------------ stream
    def process(self, x: npt.ArrayLike) -> AnomalyDescriptor:
        """Score, grade and explain input ``x``, then learn it."""
        return self._process_row(self.forest._check_rows(x, single=True)[0], 0.0)

    def _process_row(self, row: Float64Array, explain_min_grade: float) -> AnomalyDescriptor:
        index = self.forest._inputs_seen
        score = self._combine(*(f.score(row) for f in self._forests))
        grades, thresholds = self._grade(np.array([score]))
        descriptor = self._describe(index, row, score, grades[0], thresholds[0],
                                    explain=bool(grades[0] >= explain_min_grade))
        for forest in self._forests:
            forest.update(row)
        return descriptor

    def process_batch(self, X: npt.ArrayLike, explain: bool = True,
                      explain_min_grade: float = 0.0) -> list[AnomalyDescriptor]:
        """Process rows in order; identical to calling :meth:`process` on each row.

        Rows are scored in compiled batches. With ``explain``, the batch is rewound to
        just before each anomaly so that its attribution and expected value are computed
        on exactly the forest that scored it; ``explain_min_grade`` limits that to
        anomalies graded at least that high (the others come without explanation), which
        saves the rewinds when only strong anomalies are shown.
        """
        rows = self.forest._check_rows(X, single=False)
        out: list[AnomalyDescriptor] = []
        start = 0
        if explain and len(rows) < _ROW_BY_ROW:
            return [self._process_row(row, explain_min_grade) for row in rows]
        while start < len(rows):
            chunk = rows[start : start + _CHUNK] if explain else rows[start:]
            saved = self._snapshot() if explain else None
            first_index = self.forest._inputs_seen
            scores = self._score_and_update(chunk)
            grades, thresholds = self._grade(scores)
            flagged = np.flatnonzero((grades > 0.0) & (grades >= explain_min_grade))
            if saved is not None and len(flagged):  # a snapshot exactly when explaining
                j = int(flagged[0])
                self._restore(saved)
                if j:
                    self._score_and_update(chunk[:j])
                    self._grade(scores[:j])
                out.extend(self._describe(first_index + i, chunk[i], scores[i], grades[i],
                                          thresholds[i], explain=False) for i in range(j))
                out.append(self.process(chunk[j]))
                start += j + 1
                continue
            out.extend(self._describe(first_index + i, chunk[i], scores[i], grades[i],
                                      thresholds[i], explain=False) for i in range(len(chunk)))
            start += len(chunk)
        return out

    def grade_batch(self, X: npt.ArrayLike) -> tuple[Float64Array, Float64Array, Float64Array]:
        """Fast path without explanations: arrays of scores, grades and thresholds."""
        scores = self._score_and_update(self.forest._check_rows(X, single=False))
        grades, thresholds = self._grade(scores)
        return scores, grades, thresholds

    # --------------------------------------------------------------- serialization
    def copy(self) -> ThresholdedDetector:
        """An independent detector in the same state (forests and threshold copied): what
        a checkpoint serializes off the processing thread while this one goes on."""
        twin = object.__new__(type(self))  # not copy.copy: that pickles
        twin.__dict__.update(self.__dict__)
        twin.forest = self.forest.copy()
        if self.level_forest is not None:
            twin.level_forest = self.level_forest.copy()
        twin._state = self._state.copy()
        return twin

    def to_bytes(self, compress: bool = True) -> bytes:
        """Complete state (forest and threshold) as bytes (see
        :meth:`RandomCutForest.to_bytes` for ``compress``)."""
        config = {"z_factor": self.z_factor, "horizon": self.horizon, "warmup": self.warmup,
                  "min_deviation": self.min_deviation, "refractory": self.refractory,
                  "multi_scale": self.multi_scale}
        header = json.dumps({**config, "forests": len(self._forests)}).encode()
        parts = [_MAGIC, len(header).to_bytes(4, "little"), header]
        for forest in self._forests:
            blob = forest.to_bytes(compress=compress)
            parts += [len(blob).to_bytes(8, "little"), blob]
        buffer = io.BytesIO()
        np.save(buffer, self._state, allow_pickle=False)
        parts.append(buffer.getvalue())
        return b"".join(parts)

    @classmethod
    def from_bytes(cls, blob: bytes) -> ThresholdedDetector:
        """Restore a detector written by :meth:`to_bytes`."""
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes from ThresholdedDetector.to_bytes(), got "
                            f"{type(blob)!r}")
        blob = bytes(blob)
        if not blob.startswith(_MAGIC):
            raise ValueError("not a serialized forestream ThresholdedDetector")
        try:
            return cls._parse(blob)
        except (KeyError, IndexError, TypeError, EOFError, OSError, json.JSONDecodeError,
                UnicodeDecodeError) as exc:
            raise ValueError(f"corrupt serialized ThresholdedDetector: {exc}") from exc

    @classmethod
    def _parse(cls, blob: bytes) -> ThresholdedDetector:
        pos = len(_MAGIC)
        n = int.from_bytes(blob[pos : pos + 4], "little")
        config = json.loads(blob[pos + 4 : pos + 4 + n])
        pos += 4 + n
        forests = []
        for _ in range(config.pop("forests")):
            m = int.from_bytes(blob[pos : pos + 8], "little")
            forests.append(RandomCutForest.from_bytes(blob[pos + 8 : pos + 8 + m]))
            pos += 8 + m
        state = np.load(io.BytesIO(blob[pos:]), allow_pickle=False)
        shape = forests[0]
        detector = cls(shape.dimensions, shape.shingle_size, 1, shape.sample_size,
                       shape.time_decay, shape.output_after, shape.random_seed, **config)
        detector.forest = shape
        detector.level_forest = forests[1] if len(forests) > 1 else None
        detector._state = state
        return detector

    # ---------------------------------------------------------------------- helpers
    @property
    def _forests(self) -> list[RandomCutForest]:
        return [self.forest] if self.level_forest is None else [self.forest, self.level_forest]

    def _combine(self, shape: _Scores, level: _Scores | None = None
                 ) -> _Scores | Float64Array:
        """Detector score from the forests' scores: 0 until the shape forest reports."""
        if level is None:
            return shape
        return np.where(np.asarray(shape) > 0.0, (shape + level) / 2.0, 0.0)

    def _score_and_update(self, rows: Float64Array) -> Float64Array:
        return self._combine(*(f.score_and_update(rows) for f in self._forests))

    def _snapshot(self) -> DetectorSnapshot:
        return tuple(f._snapshot() for f in self._forests), self._state.copy()

    def _restore(self, saved: DetectorSnapshot) -> None:
        for forest, snapshot in zip(self._forests, saved[0], strict=True):
            forest._restore(snapshot)
        self._state = saved[1]

    def _grade(self, scores: Float64Array) -> tuple[Float64Array, Float64Array]:
        grades = np.zeros(len(scores))
        thresholds = np.zeros(len(scores))
        _threshold.threshold_scores(np.asarray(scores, dtype=float), self._params,
                                    self._state, grades, thresholds)
        return grades, thresholds

    def _describe(self, index: int, values: Float64Array, score: float | Float64Array,
                  grade: float, threshold: float, explain: bool = True) -> AnomalyDescriptor:
        if grade <= 0.0 or not explain:
            return AnomalyDescriptor(int(index), values.copy(), float(score), float(grade),
                                     float(threshold))
        forest = self.forest
        point = forest._peek_point(values)
        attribution = forest.attribution(values)
        d, s = forest.dimensions, forest.shingle_size
        if self.level_forest is not None:  # the level forest sees the newest input only
            level = self.level_forest.attribution(values)
            high, low = attribution.high.copy(), attribution.low.copy()
            high[-d:] += level.high
            low[-d:] += level.low
            attribution = Attribution(high=high / 2.0, low=low / 2.0)
        per_input = attribution.total.reshape(s, d)
        position, dimension = np.unravel_index(int(np.argmax(per_input)), per_input.shape)
        query = cast("Float64Array", point).copy()  # a grade > 0 needs a full shingle
        query[position * d : (position + 1) * d] = np.nan
        expected = forest.impute(query)[position * d : (position + 1) * d]
        return AnomalyDescriptor(int(index), values.copy(), float(score), float(grade),
                                 float(threshold), attribution, int(position) - (s - 1),
                                 int(dimension), expected)


def _positive(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0, got {value!r}")
    return float(value)


def _count(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)
