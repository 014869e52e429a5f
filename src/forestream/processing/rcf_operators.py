"""Machine-learning operators: Random Cut Forest per key, as Kinesis Analytics' SQL
functions RANDOM_CUT_FOREST and RANDOM_CUT_FOREST_WITH_EXPLANATION provide it.

Each key gets its own forest (created on its first record); forests are part of the
operator's state, so they are checkpointed and restored with the job.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from forestream.rcf import RandomCutForest, ThresholdedDetector
from forestream.rcf.warmup import warm_up

from .keys import key_hash
from .operators import Deferred, Operator
from .records import Collector, Record

if TYPE_CHECKING:
    import numpy.typing as npt

    from forestream.rcf import Attribution

# Kinesis Analytics' defaults: numberOfTrees 100, subSampleSize 256, timeDecay 100000
# (λ = 1/100000), shingleSize 1.
KINESIS_DEFAULTS = {"num_trees": 100, "sample_size": 256, "time_decay": 1.0 / 100_000,
                    "shingle_size": 1}


def _seed(random_seed: int, key: Any) -> int:
    """A key's model seed: from the key itself, so a key gets the same model whichever
    worker or key group it lands on and in whatever order keys first appear."""
    return (random_seed * 1_000_003 + key_hash(key)) % 2**62


def _copied_models(models: Mapping[Any, RandomCutForest] | Mapping[Any, ThresholdedDetector]
                   ) -> Deferred:
    """A checkpoint of per-key models: copies now (a memcpy each, into memory the last
    round's copies handed back), their bytes on the checkpoint writer's thread
    (uncompressed: the writer compresses the whole snapshot), after which the copies'
    memory goes back for the next round."""
    copies = {k: m.copy(spare=True) for k, m in models.items()}

    def produce() -> dict[Any, bytes]:
        state = {k: m.to_bytes(compress=False) for k, m in copies.items()}
        for model in copies.values():
            model.discard()
        return state
    return Deferred(produce)


_warm = threading.Event()


class _PerKeyModelOperator(Operator):
    """Shared plumbing: numeric fields → points, records grouped by key (in order)."""

    snapshot_is_costly = True  # a copy of every key's model

    def open(self) -> None:
        # the kernels compiled (or loaded from numba's cache) before the first record,
        # not while the input piles up (once per process)
        if not _warm.is_set():
            warm_up()
            _warm.set()

    def __init__(self, fields: list[str]) -> None:
        super().__init__()
        if not fields:
            raise ValueError(f"{self.name} needs at least one numeric field")
        self.fields = list(fields)
        self._prepared: list[RandomCutForest | ThresholdedDetector] = []

    def close(self) -> None:
        self._forget_copies()

    def _prepare_copies(self, models: Iterable[RandomCutForest | ThresholdedDetector]
                        ) -> None:
        """New models of a checkpointed job: memory for their checkpoint copies, made
        meanwhile (see :func:`_copied_models`)."""
        if self.checkpointed:
            for model in models:
                model.prepare_copy()
                self._prepared.append(model)

    def _forget_copies(self) -> None:
        """The models prepared for are gone (closed, or replaced by a restore)."""
        for model in self._prepared:
            model.forget_copy()
        self._prepared = []

    def _point(self, value: dict[str, Any]) -> list[float]:
        try:
            return [float(value[f]) for f in self.fields]
        except KeyError as exc:
            raise ValueError(f"{self.uid}: record has no field {exc.args[0]!r}; "
                             f"expected {self.fields}: {value!r:.200}") from None

    def process(self, records: list[Record], out: Collector) -> None:
        by_key: dict[Any, list[int]] = defaultdict(list)
        for i, r in enumerate(records):
            by_key[r.key].append(i)
        results: list[dict[str, Any] | None] = [None] * len(records)
        for key, indexes in by_key.items():
            points = np.array([self._point(records[i].value) for i in indexes])
            values = [records[i].value for i in indexes]
            for i, result in zip(indexes, self._score_key(key, points, values), strict=True):
                results[i] = result
        out.main.extend(Record(v, r.timestamp, r.key, r.rid)
                        for v, r in zip(results, records, strict=True))

    def _score_key(self, key: Any, points: npt.NDArray[np.float64], values: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
        raise NotImplementedError


class RandomCutForestOperator(_PerKeyModelOperator):
    """Adds ``ANOMALY_SCORE`` to each record (a dict) from its key's forest over ``fields``.

    Used through ``stream.key_by(...).random_cut_forest(fields, ...)``. Each key gets a
    :class:`~forestream.rcf.RandomCutForest` of its own, created on its first record and
    seeded from ``random_seed`` and the key, so results do not depend on which worker
    runs the key. Every record is scored, then learned: the score is about 1 for
    ordinary points and grows towards ``log2(sample_size)`` for points that are easy to
    isolate from what the forest has seen; it is 0 for a key's first ``output_after``
    records, while its forest fills up.

    With ``explain=True`` also ``ANOMALY_EXPLANATION``: per field ``ATTRIBUTION_SCORE``
    (its share of the score), ``STRENGTH`` (how one-sided it is: ``|high − low| /
    (high + low)``, 0–1) and ``DIRECTION`` (``HIGH`` or ``LOW``), as
    RANDOM_CUT_FOREST_WITH_EXPLANATION reports them. Without explanations, each key's
    records in a batch are scored through the forest's compiled batch path.

    Parameters
    ----------
    fields
        Keys of the record's numeric values that make the point to score.
    explain
        Add ``ANOMALY_EXPLANATION`` (slower: records are scored one at a time).
    output_after
        Records of a key learned before scores are reported (0 before). Default: a
        quarter of ``sample_size``.
    random_seed
        Seed of the forests, for reproducible scores.
    **forest_args
        ``num_trees`` (100), ``sample_size`` (256), ``time_decay`` (1/100000) and
        ``shingle_size`` (1) of :class:`~forestream.rcf.RandomCutForest`; the defaults
        are Kinesis Analytics' RANDOM_CUT_FOREST defaults.

    Examples
    --------
    Two sensors follow a slow wave; sensor ``s2`` jumps once, at ``t = 150``. Small
    forests keep the example quick.

    >>> import math
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> readings = [{"sensor": sensor, "t": t, "value": 20 + math.sin(t / 4)}
    ...             for t in range(200) for sensor in ("s1", "s2")]
    >>> readings[2 * 150 + 1]["value"] = 35.0  # s2 at t = 150
    >>> env = StreamExecutionEnvironment()
    >>> scored = (env.from_collection(readings)
    ...           .key_by(lambda reading: reading["sensor"])
    ...           .random_cut_forest(["value"], num_trees=30, sample_size=64, random_seed=7)
    ...           .collect())
    >>> _ = env.execute()
    >>> [r["ANOMALY_SCORE"] for r in scored.values if r["sensor"] == "s1"][:3]  # warming up
    [0.0, 0.0, 0.0]
    >>> top = max(scored.values, key=lambda r: r["ANOMALY_SCORE"])
    >>> top["sensor"], top["t"], round(top["ANOMALY_SCORE"], 1)
    ('s2', 150, 5.6)

    With ``explain=True``, the explanation names the field that made a point unusual:

    >>> points = [{"t": t, "cpu": 50 + 5 * math.sin(t / 5), "mem": 60 + 5 * math.cos(t / 5)}
    ...           for t in range(120)]
    >>> points[100]["mem"] = 95.0
    >>> env = StreamExecutionEnvironment()
    >>> explained = (env.from_collection(points)
    ...              .key_by(lambda point: "host-1")
    ...              .random_cut_forest(["cpu", "mem"], explain=True, num_trees=30,
    ...                                 sample_size=64, random_seed=7)
    ...              .collect())
    >>> _ = env.execute()
    >>> top = max(explained.values, key=lambda r: r["ANOMALY_SCORE"])
    >>> top["t"], top["ANOMALY_EXPLANATION"]["mem"]["DIRECTION"]
    (100, 'HIGH')
    >>> {field: round(e["ATTRIBUTION_SCORE"], 1)
    ...  for field, e in top["ANOMALY_EXPLANATION"].items()}
    {'cpu': 0.0, 'mem': 4.7}
    """

    name = "random_cut_forest"

    def __init__(self, fields: list[str], explain: bool = False, output_after: int | None = None,
                 random_seed: int = 0, **forest_args: Any) -> None:
        super().__init__(fields)
        self.explain = explain
        self.forest_args = {**KINESIS_DEFAULTS, **forest_args, "output_after": output_after}
        self.random_seed = random_seed
        self.forests: dict[Any, RandomCutForest] = {}

    def _forest(self, key: Any) -> RandomCutForest:
        forest = self.forests.get(key)
        if forest is None:
            forest = RandomCutForest(dimensions=len(self.fields), random_seed=_seed(
                                         self.random_seed, key),
                                     **self.forest_args)
            self.forests[key] = forest
            self._prepare_copies([forest])
        return forest

    def _score_key(self, key: Any, points: npt.NDArray[np.float64], values: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
        forest = self._forest(key)
        if not self.explain:
            scores = forest.score_and_update(points)
            return [{**v, "ANOMALY_SCORE": float(s)} for v, s in zip(values, scores,
                                                                    strict=True)]
        out: list[dict[str, Any]] = []
        for point, value in zip(points, values, strict=True):
            score = forest.score(point)
            attribution = forest.attribution(point)
            forest.update(point)
            out.append({**value, "ANOMALY_SCORE": float(score),
                        "ANOMALY_EXPLANATION": self._explanation(attribution)})
        return out

    def _explanation(self, attribution: Attribution) -> dict[str, dict[str, Any]]:
        d = len(self.fields)
        high = attribution.high.reshape(-1, d).sum(axis=0)
        low = attribution.low.reshape(-1, d).sum(axis=0)
        out: dict[str, dict[str, Any]] = {}
        for j, field in enumerate(self.fields):
            total = high[j] + low[j]
            out[field] = {"ATTRIBUTION_SCORE": float(total),
                          "STRENGTH": float(abs(high[j] - low[j]) / total) if total > 0 else 0.0,
                          "DIRECTION": "HIGH" if high[j] >= low[j] else "LOW"}
        return out

    def snapshot(self) -> Deferred:
        return _copied_models(self.forests)

    def restore(self, state: dict[Any, bytes | RandomCutForest]) -> None:
        self._forget_copies()
        self.forests = {k: RandomCutForest.from_bytes(f) if isinstance(f, bytes) else f
                        for k, f in state.items()}
        self._prepare_copies(self.forests.values())


class ThresholdedRCFOperator(_PerKeyModelOperator):
    """Adds ``ANOMALY_SCORE``, ``ANOMALY_GRADE`` and, for anomalies graded at least
    ``explain_min_grade``, the explanation (which field, which earlier input, expected
    value) from a per-key :class:`~forestream.rcf.ThresholdedDetector`.

    Used through ``stream.key_by(...).thresholded_random_cut_forest(fields, ...)``. Where
    :class:`RandomCutForestOperator` leaves it to the reader to decide which score is
    high, the detector decides: it follows the recent distribution of its key's scores
    and grades a record above an adaptive threshold between 0 (not an anomaly) and 1
    (as unusual as a score can be). One incident is reported once. The explanation,
    ``ANOMALY_EXPLANATION``, is ``{"field", "relative_index", "expected_value", "kind"}``:
    the field that caused the anomaly, which input of the shingle it was in (0: the
    current record, -1: the one before, …), the value the forest expected there, and
    what was unusual (``"level"``, ``"shape"`` or ``"stuck"``: a field repeating one
    value for longer than ever before).

    Parameters
    ----------
    fields
        Keys of the record's numeric values that make the point to score.
    random_seed
        Seed of the detectors (combined with each key), for reproducible grades.
    explain_min_grade
        Explain only anomalies graded at least this high (explanations cost a replay
        of the batch up to the anomaly).
    **detector_args
        Passed to :class:`~forestream.rcf.ThresholdedDetector`: ``shingle_size`` (4),
        ``num_trees`` (100), ``sample_size`` (256), ``time_decay``, ``output_after``,
        ``alert_grade`` (0.5), ``averaging``, ``horizon``, ``warmup`` (150 scores before
        grading), ``min_deviation_ratio``, ``refractory``, ``repeat_factor``,
        ``shape_weight``, ``stuck_after``, ``clip``, ``burst_discount``, ``recurrence``
        (see its docstring for what each does and accepts).

    Examples
    --------
    Two sensors follow a slow wave; sensor ``s2`` jumps once, at ``t = 150``, and only
    that record is graded as an anomaly:

    >>> import math
    >>> from forestream.processing import StreamExecutionEnvironment
    >>> readings = [{"sensor": sensor, "t": t, "value": 20 + math.sin(t / 4)}
    ...             for t in range(200) for sensor in ("s1", "s2")]
    >>> readings[2 * 150 + 1]["value"] = 35.0  # s2 at t = 150
    >>> env = StreamExecutionEnvironment()
    >>> graded = (env.from_collection(readings)
    ...           .key_by(lambda reading: reading["sensor"])
    ...           .thresholded_random_cut_forest(["value"], num_trees=30, sample_size=64,
    ...                                          warmup=32, random_seed=7)
    ...           .collect())
    >>> _ = env.execute()
    >>> anomalies = [r for r in graded.values if r["ANOMALY_GRADE"] > 0]
    >>> [(r["sensor"], r["t"], round(r["ANOMALY_GRADE"], 1)) for r in anomalies]
    [('s2', 150, 0.8)]
    >>> explanation = anomalies[0]["ANOMALY_EXPLANATION"]
    >>> explanation["field"], explanation["relative_index"], round(explanation["expected_value"])
    ('value', 0, 20)
    """

    name = "thresholded_rcf"

    def __init__(self, fields: list[str], random_seed: int = 0, explain_min_grade: float = 0.0,
                 **detector_args: Any) -> None:
        super().__init__(fields)
        self.explain_min_grade = explain_min_grade
        self.detector_args = detector_args
        self.random_seed = random_seed
        self.detectors: dict[Any, ThresholdedDetector] = {}

    def _score_key(self, key: Any, points: npt.NDArray[np.float64], values: list[dict[str, Any]]
                   ) -> list[dict[str, Any]]:
        detector = self.detectors.get(key)
        if detector is None:
            detector = ThresholdedDetector(dimensions=len(self.fields),
                                           random_seed=_seed(self.random_seed, key),
                                           **self.detector_args)
            self.detectors[key] = detector
            self._prepare_copies([detector])
        out: list[dict[str, Any]] = []
        descriptors = detector.process_batch(points, explain_min_grade=self.explain_min_grade)
        for value, d in zip(values, descriptors, strict=True):
            result = {**value, "ANOMALY_SCORE": d.score, "ANOMALY_GRADE": d.grade}
            if d.attribution is not None:
                # an explained anomaly names its dimension and the values expected there
                assert d.dimension is not None and d.expected_values is not None
                result["ANOMALY_EXPLANATION"] = {
                    "field": self.fields[d.dimension], "relative_index": d.relative_index,
                    "expected_value": float(d.expected_values[d.dimension]),
                    "kind": d.kind}
            out.append(result)
        return out

    def snapshot(self) -> Deferred:
        return _copied_models(self.detectors)

    def restore(self, state: dict[Any, bytes]) -> None:
        self._forget_copies()
        self.detectors = {k: ThresholdedDetector.from_bytes(b) for k, b in state.items()}
        self._prepare_copies(self.detectors.values())
