"""A streaming anomaly detector: forest scores turned into grades with explanations."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING

import numpy as np

from . import _threshold
from ._state import keep_spare
from .forest import RandomCutForest
from .results import Attribution

if TYPE_CHECKING:
    from typing import Any, TypeAlias, TypeVar

    import numpy.typing as npt

    from ._jit import Float64Array, Int64Array
    from .forest import ForestSnapshot

    # every forest's snapshot, then the grader's state (see _snapshot)
    DetectorSnapshot: TypeAlias = tuple[tuple[ForestSnapshot, ...], Float64Array]
    # forest scores: one score, or one per row of a batch
    _Scores = TypeVar("_Scores", float, Float64Array)

_MAGIC = b"FSTRD\x02"  # format 2: the likelihood grader (format 1 is still read)
_MAGIC_V1 = b"FSTRD\x01"
_CHUNK = 512  # rows scored speculatively before an explained anomaly forces a rewind
# Fewer rows than this are explained row by row. A rewind point is a memcpy of the
# forests into a reused arena (~1.4 ms for the default two forests, shingle 4); the batch
# kernels then score a key's rows with less CPU per row than one at a time, and with a
# free core on two threads. In the quickstart (12 detectors, ~17 rows a key a step) 8
# against 32 kept the worker's CPU within 3 % and its p99 latency 416-526 against
# 534-942 ms (4 alternated runs each, load 6-7).
_ROW_BY_ROW = 8


@dataclass(frozen=True)
class AnomalyDescriptor:
    """What the detector says about one input.

    ``score`` is the forests' raw score (about 1 for ordinary inputs); ``grade`` is 0 for
    ordinary inputs and in [``alert_grade``, 1] for anomalies (``-log10`` of how
    unlikely the recent scores are, over 10); ``threshold`` is the score the level
    forest's recent scores would have to average to make an anomaly now. For anomalies,
    ``kind`` says which test found it (``"level"``: an unusual value, ``"shape"``: an
    unusual pattern over the shingle, ``"stuck"``: a value repeated for longer than ever
    before); ``attribution`` splits the score over the shingled point;
    ``relative_index`` says which input caused it (0: this one, -k: the one k steps
    back, still inside the shingle), ``dimension`` which column of that input, and
    ``expected_values`` what the forests expected that input to be.
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
    kind: str | None = None

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
            "kind": self.kind,
        }
        if self.attribution is not None:
            out["attribution"] = {"high": self.attribution.high.tolist(),
                                  "low": self.attribution.low.tolist()}
        return out


class ThresholdedDetector:
    """Streaming anomaly detection with grades and explanations, RCF at the core.

    Two Random Cut Forests look at each input: a *level* forest over the input alone
    (unusual values) and a *shape* forest over the last ``shingle_size`` inputs (broken
    patterns). Their raw scores are not compared with a fixed bar: each forest's recent
    scores (the average of the last ``averaging``) are compared with the distribution of
    its scores on this series so far, as Numenta's HTM detector does, which gives the
    probability of scores this high; a series with noisy scores needs far higher scores
    to alarm than a quiet one, so one grade scale fits every series. A third test
    watches for *stuck* inputs: a column repeating one value for longer than it ever did
    before — invisible to a forest, which finds a repeated value perfectly ordinary.

    The grade is ``-log10`` of the smallest of these probabilities over 10 (a
    probability of 1e-10 is grade 1), and an input is an anomaly when its grade reaches
    ``alert_grade`` (0.5: a probability of 1e-5). One incident is reported once: within
    ``refractory`` inputs of a report only a grade ``repeat_factor`` times higher
    reports again; and a spike that keeps the series' own rhythm (the fifth of evenly
    spaced excursions to the same values: a daily backup's CPU spike) is not reported
    at all. Each anomaly comes with its attribution, the input and column that
    caused it, the value the forests expected there, and its ``kind`` (``"level"``,
    ``"shape"`` or ``"stuck"``). Everything is causal (each input graded before it is
    learned, one pass) and bounded: two forests and a few dozen numbers per series.

    Parameters
    ----------
    dimensions, shingle_size, num_trees, sample_size, time_decay, output_after, random_seed
        As for :class:`RandomCutForest` (the shape forest's shingle; the level forest's
        is 1). With ``shingle_size=1`` there is only the level forest.
    alert_grade
        Grades at or above this are anomalies (0.5 ⇔ probability 1e-5).
    averaging
        Recent raw scores averaged before they are compared with the distribution.
    horizon
        Number of recent averages the distribution's mean and deviation follow.
    warmup
        Averages learned before grading (and inputs before stuck columns are reported).
    min_deviation_ratio
        Floor on the deviation of scores, as a fraction of their mean, so a perfectly
        regular series is not flagged for noise-level changes.
    refractory
        Inputs after a report during which only a grade ``repeat_factor`` times higher
        reports again.
    repeat_factor
        How much stronger a repeat within ``refractory`` must be.
    shape_weight
        Weight of the shape forest's surprise against the level forest's (1); 0 ignores
        it for grading (it still explains which input of the shingle caused an anomaly).
    stuck_after
        Fewest repeats of one value that can make a stuck column.
    clip
        Recent averages more than this many deviations above the mean are learned as
        if they were that far (0: as they are), so an incident does not widen the
        distribution of ordinary scores and hide the next one.
    burst_discount
        In a count series (every input so far a non-negative integer, and zero among
        them: tweets or events per interval), the largest of the ``averaging`` recent
        raw scores counts only ``1 - burst_discount`` as much as the others: one
        interval's burst is ordinary noise of such counts, a rise that lasts is not (0:
        no difference; must be below 1). Whether a series is a count is learned from its
        inputs; integer measurements that never reach zero are not counts.
    recurrence
        Relative tolerance on the spacing of recurring excursions: an excursion (inputs
        graded at or above ``alert_grade``) that starts one period after an earlier
        one, itself one period after another, four in a row (each spacing within
        ``recurrence`` of the period, the period at least ``refractory`` inputs), all
        at values within 10 % of its own, is the series' rhythm and not reported. 0
        switches this off; must be below 1. Detectors saved before it existed are read
        with 0 and grade on as they did.

    Examples
    --------
    >>> import numpy as np
    >>> from forestream.rcf import ThresholdedDetector
    >>> rng = np.random.default_rng(1)
    >>> series = 10 + np.sin(np.arange(3000) / 8) + 0.1 * rng.standard_normal(3000)
    >>> series[2500] = 25.0
    >>> series[2700:2760] = series[2700]      # a sensor stuck for 60 readings
    >>> detector = ThresholdedDetector(random_seed=3)
    >>> found = [d for d in detector.process_batch(series) if d.is_anomaly]
    >>> [(d.index, d.kind) for d in found]
    [(2500, 'level'), (2705, 'stuck')]
    >>> d = found[0]
    >>> d.relative_index, bool(abs(d.expected_values[0] - 10) < 2), d.grade
    (0, True, 1.0)

    References
    ----------
    Guha, Mishra, Roy, Schrijvers. *Robust Random Cut Forest Based Anomaly Detection on
    Streams*. ICML 2016. Ahmad, Lavin, Purdy, Agha. *Unsupervised real-time anomaly
    detection for streaming data*. Neurocomputing 262, 2017 (the anomaly likelihood).
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
        alert_grade: float = 0.5,
        averaging: int = 3,
        horizon: int = 4000,
        warmup: int = 150,
        min_deviation_ratio: float = 0.3,
        refractory: int = 100,
        repeat_factor: float = 2.0,
        shape_weight: float = 0.3,
        stuck_after: int = 5,
        clip: float = 6.0,
        burst_discount: float = 0.8,
        recurrence: float = 0.05,
    ) -> None:
        self.forest = RandomCutForest(dimensions, shingle_size, num_trees, sample_size,
                                      time_decay, output_after, random_seed)
        self.level_forest: RandomCutForest | None = None
        if shingle_size > 1:
            self.level_forest = RandomCutForest(
                dimensions, 1, num_trees, sample_size, self.forest.time_decay,
                self.forest.output_after, (self.forest.random_seed + 1) % 2**63)
        self.alert_grade = _fraction("alert_grade", alert_grade)
        self.averaging = _count("averaging", averaging, 1)
        self.horizon = _count("horizon", horizon, 1)
        self.warmup = _count("warmup", warmup, 0)
        self.min_deviation_ratio = _nonnegative("min_deviation_ratio", min_deviation_ratio)
        self.refractory = _count("refractory", refractory, 0)
        self.repeat_factor = _nonnegative("repeat_factor", repeat_factor)
        self.shape_weight = _nonnegative("shape_weight", shape_weight)
        self.stuck_after = _count("stuck_after", stuck_after, 1)
        self.clip = _nonnegative("clip", clip)
        self.burst_discount = _share("burst_discount", burst_discount)
        self.recurrence = _share("recurrence", recurrence)
        params = np.zeros(_threshold.PARAM_SIZE)
        params[_threshold.AVERAGING] = self.averaging
        params[_threshold.ALPHA] = 1.0 / self.horizon
        params[_threshold.WARMUP] = self.warmup
        params[_threshold.MIN_DEVIATION_RATIO] = self.min_deviation_ratio
        params[_threshold.ALERT_GRADE] = self.alert_grade
        params[_threshold.REFRACTORY] = self.refractory
        params[_threshold.REPEAT_FACTOR] = self.repeat_factor
        params[_threshold.STUCK_AFTER] = self.stuck_after
        params[_threshold.LEVEL_WEIGHT] = 1.0
        params[_threshold.SHAPE_WEIGHT] = self.shape_weight
        params[_threshold.CLIP] = self.clip
        params[_threshold.BURST_DISCOUNT] = self.burst_discount
        params[_threshold.RECURRENCE] = self.recurrence
        tail = 10.0 ** (-self.alert_grade * _threshold.SURPRISE_SCALE)
        params[_threshold.ALERT_Z] = -NormalDist().inv_cdf(tail)
        self._params = params
        self._state = _threshold.initial_state(self.averaging, self.dimensions)

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
        level, shape = self._forest_scores(*(f._score_checked(row) for f in self._forests))
        rows = row[None, :]
        scores, grades, thresholds, causes = self._grade(
            np.array([level]), np.array([shape]), rows)
        descriptor = self._describe(index, row, scores[0], grades[0], thresholds[0],
                                    int(causes[0]),
                                    explain=bool(grades[0] >= explain_min_grade))
        for forest in self._forests:
            forest._update_checked(row)
        return descriptor

    def process_batch(self, X: npt.ArrayLike, explain: bool = True,
                      explain_min_grade: float = 0.0) -> list[AnomalyDescriptor]:
        """Process rows in order; identical to calling :meth:`process` on each row.

        Rows are scored in compiled batches. With ``explain``, the batch is rewound to
        just before each anomaly so that its attribution and expected value are computed
        on exactly the forests that scored it; ``explain_min_grade`` limits that to
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
            saved = self._snapshot(spare=True) if explain else None
            first_index = self.forest._inputs_seen
            scores, grades, thresholds, causes = self._grade(*self._score_and_update(chunk),
                                                             chunk)
            flagged = np.flatnonzero((grades > 0.0) & (grades >= explain_min_grade))
            if saved is not None and not len(flagged):  # the rewind point was not needed
                for snapshot in saved[0]:
                    keep_spare(snapshot[0])
            if saved is not None and len(flagged):  # a snapshot exactly when explaining
                j = int(flagged[0])
                replaced = [f._state for f in self._forests]
                self._restore(saved)
                for state in replaced:
                    keep_spare(state)
                if j:
                    self._grade(*self._score_and_update(chunk[:j]), chunk[:j])
                out.extend(self._describe(first_index + i, chunk[i], scores[i], grades[i],
                                          thresholds[i], int(causes[i]), explain=False)
                           for i in range(j))
                out.append(self.process(chunk[j]))
                start += j + 1
                continue
            out.extend(self._describe(first_index + i, chunk[i], scores[i], grades[i],
                                      thresholds[i], int(causes[i]), explain=False)
                       for i in range(len(chunk)))
            start += len(chunk)
        return out

    def grade_batch(self, X: npt.ArrayLike) -> tuple[Float64Array, Float64Array, Float64Array]:
        """Fast path without explanations: arrays of scores, grades and thresholds."""
        rows = self.forest._check_rows(X, single=False)
        scores, grades, thresholds, _ = self._grade(*self._score_and_update(rows), rows)
        return scores, grades, thresholds

    # --------------------------------------------------------------- serialization
    def copy(self, spare: bool = False) -> ThresholdedDetector:
        """An independent detector in the same state (forests and grader copied): what
        a checkpoint serializes off the processing thread while this one goes on.
        ``spare``: into memory an earlier copy's :meth:`discard` handed back."""
        twin = object.__new__(type(self))  # not copy.copy: that pickles
        twin.__dict__.update(self.__dict__)
        twin.forest = self.forest.copy(spare)
        if self.level_forest is not None:
            twin.level_forest = self.level_forest.copy(spare)
        twin._state = self._state.copy()
        return twin

    def prepare_copy(self) -> None:
        """Have memory for one :meth:`copy` with ``spare`` made in the background (see
        :meth:`RandomCutForest.prepare_copy`)."""
        for forest in self._forests:
            forest.prepare_copy()

    def forget_copy(self) -> None:
        """Undo :meth:`prepare_copy` (see :meth:`RandomCutForest.forget_copy`)."""
        for forest in self._forests:
            forest.forget_copy()

    def discard(self) -> None:
        """Hand the forests' memory back for later copies (:meth:`copy` with ``spare``);
        this detector must not be used afterwards."""
        for forest in self._forests:
            forest.discard()

    def to_bytes(self, compress: bool = True) -> bytes:
        """Complete state (forests and grader) as bytes (see
        :meth:`RandomCutForest.to_bytes` for ``compress``)."""
        header = json.dumps({**self._config(), "forests": len(self._forests)}).encode()
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
        """Restore a detector written by :meth:`to_bytes`.

        Detectors written by forestream before the grader changed (format 1) are read
        too: their forests exactly, their threshold's mean and deviation as the starting
        distribution of both forests' scores, so they go on grading at once."""
        if not isinstance(blob, (bytes, bytearray, memoryview)):
            raise TypeError(f"expected bytes from ThresholdedDetector.to_bytes(), got "
                            f"{type(blob)!r}")
        blob = bytes(blob)
        if not blob.startswith((_MAGIC, _MAGIC_V1)):
            raise ValueError("not a serialized forestream ThresholdedDetector")
        try:
            return cls._parse(blob, legacy=blob.startswith(_MAGIC_V1))
        except (KeyError, IndexError, TypeError, EOFError, OSError, json.JSONDecodeError,
                UnicodeDecodeError) as exc:
            raise ValueError(f"corrupt serialized ThresholdedDetector: {exc}") from exc

    @classmethod
    def _parse(cls, blob: bytes, legacy: bool) -> ThresholdedDetector:
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
        if legacy:  # format 1: threshold parameters of the old grader
            config = {"refractory": min(int(config.get("refractory", 100)), 100)}
        # written before recurring excursions were told apart: grades on as it did
        config.setdefault("recurrence", 0.0)
        detector = cls(shape.dimensions, shape.shingle_size, 1, shape.sample_size,
                       shape.time_decay, shape.output_after, shape.random_seed, **config)
        detector.forest = shape
        if shape.shingle_size > 1:
            if len(forests) > 1:
                detector.level_forest = forests[1]
            else:  # a format-1 detector without its level forest: one starts learning now
                assert detector.level_forest is not None
                detector.level_forest = RandomCutForest(
                    shape.dimensions, 1, shape.num_trees, shape.sample_size,
                    shape.time_decay, shape.output_after, (shape.random_seed + 1) % 2**63)
        else:
            detector.level_forest = None
        if legacy:
            detector._state = _legacy_state(state, detector)
            return detector
        # written before count series or recurring excursions: completed, grading as it did
        state = _threshold.upgraded_state(state, detector.averaging, detector.dimensions)
        if state.shape != detector._state.shape:
            raise ValueError(f"corrupt serialized ThresholdedDetector: grader state of "
                             f"{state.shape} numbers, expected {detector._state.shape}")
        else:
            detector._state = state
        return detector

    # ---------------------------------------------------------------------- helpers
    def _config(self) -> dict[str, float | int]:
        return {"alert_grade": self.alert_grade, "averaging": self.averaging,
                "horizon": self.horizon, "warmup": self.warmup,
                "min_deviation_ratio": self.min_deviation_ratio,
                "refractory": self.refractory, "repeat_factor": self.repeat_factor,
                "shape_weight": self.shape_weight, "stuck_after": self.stuck_after,
                "clip": self.clip, "burst_discount": self.burst_discount,
                "recurrence": self.recurrence}

    @property
    def _forests(self) -> list[RandomCutForest]:
        """The shape forest (the one with the shingle) first, then the level forest."""
        return [self.forest] if self.level_forest is None else [self.forest, self.level_forest]

    def _forest_scores(self, first: _Scores, second: _Scores | None = None
                       ) -> tuple[_Scores, _Scores]:
        """(level, shape) raw scores from the forests' scores in :attr:`_forests` order;
        with one forest (no shingle) it is the level forest and there is no shape."""
        if second is None:
            return first, first * 0.0
        return second, first

    def _score_and_update(self, rows: Float64Array) -> tuple[Float64Array, Float64Array]:
        return self._forest_scores(*(f.score_and_update(rows) for f in self._forests))

    def _snapshot(self, spare: bool = False) -> DetectorSnapshot:
        return tuple(f._snapshot(spare) for f in self._forests), self._state.copy()

    def _restore(self, saved: DetectorSnapshot) -> None:
        for forest, snapshot in zip(self._forests, saved[0], strict=True):
            forest._restore(snapshot)
        self._state = saved[1]

    def _grade(self, level: Float64Array, shape: Float64Array, rows: Float64Array
               ) -> tuple[Float64Array, Float64Array, Float64Array, Int64Array]:
        """Detector scores (the forests' mean once both report), grades, thresholds and
        causes of a batch of rows whose forest scores are ``level`` and ``shape``."""
        n = len(level)
        grades = np.zeros(n)
        thresholds = np.zeros(n)
        causes = np.full(n, _threshold.NO_CAUSE, dtype=np.int64)
        level = np.asarray(level, dtype=float)
        shape = np.asarray(shape, dtype=float)
        _threshold.grade_scores(level, shape, rows, self._params, self._state, grades,
                                thresholds, causes)
        scores = np.where(shape > 0.0, (level + shape) / 2.0, level)
        return scores, grades, thresholds, causes

    def _describe(self, index: int, values: Float64Array, score: float | Float64Array,
                  grade: float, threshold: float, cause: int = _threshold.NO_CAUSE,
                  explain: bool = True) -> AnomalyDescriptor:
        kind = _kind(cause) if grade > 0.0 else None
        if grade <= 0.0 or not explain:
            return AnomalyDescriptor(int(index), values.copy(), float(score), float(grade),
                                     float(threshold), kind=kind)
        forest = self.forest
        d, s = forest.dimensions, forest.shingle_size
        attribution = forest.attribution(values)
        if self.level_forest is not None:  # the level forest sees the newest input only
            level = self.level_forest.attribution(values)
            high, low = attribution.high.copy(), attribution.low.copy()
            high[-d:] += level.high
            low[-d:] += level.low
            attribution = Attribution(high=high / 2.0, low=low / 2.0)
        per_input = attribution.total.reshape(s, d)
        if cause >= _threshold.STUCK:  # this input made the column's run too long
            position, dimension = s - 1, cause - _threshold.STUCK
        elif cause == _threshold.LEVEL:  # an unusual value: in the newest input
            position, dimension = s - 1, int(np.argmax(per_input[-1]))
        else:
            flat = np.unravel_index(int(np.argmax(per_input)), per_input.shape)
            position, dimension = int(flat[0]), int(flat[1])
        expected = self._expected(values, position)
        return AnomalyDescriptor(int(index), values.copy(), float(score), float(grade),
                                 float(threshold), attribution, int(position) - (s - 1),
                                 int(dimension), expected, kind)

    def _expected(self, values: Float64Array, position: int) -> Float64Array:
        """What the forests expected the input at ``position`` of the shingle to be."""
        forest = self.forest
        d = forest.dimensions
        point = forest._peek_point(values)
        if point is not None and forest.is_ready:
            query = point.copy()
            query[position * d : (position + 1) * d] = np.nan
            return forest.impute(query)[position * d : (position + 1) * d]
        level = self.level_forest if self.level_forest is not None else forest
        if level.is_ready:  # a typical input, without the shingle's context
            return level.impute(np.full(d, np.nan))
        return values.copy()  # nothing learned yet to expect anything else


def _kind(cause: int) -> str | None:
    if cause == _threshold.NO_CAUSE:
        return None
    return ("level", "shape")[cause] if cause < _threshold.STUCK else "stuck"


def _legacy_state(old: Float64Array, detector: ThresholdedDetector) -> Float64Array:
    """Grader state for a format-1 detector: the old threshold's running mean and
    variance of scores become both forests' score distributions (the best guess of
    them there is), and a report within the old refractory period stays one."""
    state = _threshold.initial_state(detector.averaging, detector.dimensions)
    mean, var, count, since = float(old[0]), float(old[1]), float(old[2]), float(old[3])
    for stream in range(_threshold.STREAMS):
        base = _threshold.stream_offset(stream, detector.averaging)
        ring = slice(base + _threshold.STREAM_HEAD,
                     base + _threshold.STREAM_HEAD + detector.averaging)
        state[ring] = mean
        state[base + _threshold.SUM] = mean * detector.averaging
        state[base + _threshold.FILLED] = detector.averaging if count else 0.0
        state[base + _threshold.COUNT] = count
        state[base + _threshold.MEAN] = mean
        state[base + _threshold.VAR] = var
    state[_threshold.INPUTS] = detector.forest._inputs_seen
    # not graded as a count series, as it was not before
    state[_threshold.count_offset(detector.averaging, detector.dimensions)] = \
        _threshold.NOT_COUNTS
    state[_threshold.SINCE_ALERT] = since
    state[_threshold.LAST_GRADE] = 1.0 if np.isfinite(since) else 0.0
    return state


def _fraction(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be a number in (0, 1], got {value!r}")
    return float(value)


def _share(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _nonnegative(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            not 0.0 <= value < float("inf"):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _count(name: str, value: object, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return int(value)
