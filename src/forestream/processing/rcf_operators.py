"""Machine-learning operators: Random Cut Forest per key, as Kinesis Analytics' SQL
functions RANDOM_CUT_FOREST and RANDOM_CUT_FOREST_WITH_EXPLANATION provide it.

Each key gets its own forest (created on its first record); forests are part of the
operator's state, so they are checkpointed and restored with the job.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np

from forestream.rcf import RandomCutForest, ThresholdedDetector

from .keys import key_hash
from .operators import Operator
from .records import Record

# Kinesis Analytics' defaults: numberOfTrees 100, subSampleSize 256, timeDecay 100000
# (λ = 1/100000), shingleSize 1.
KINESIS_DEFAULTS = {"num_trees": 100, "sample_size": 256, "time_decay": 1.0 / 100_000,
                    "shingle_size": 1}


def _seed(random_seed: int, key) -> int:
    """A key's model seed: from the key itself, so a key gets the same model whichever
    worker or key group it lands on and in whatever order keys first appear."""
    return (random_seed * 1_000_003 + key_hash(key)) % 2**62


class _PerKeyModelOperator(Operator):
    """Shared plumbing: numeric fields → points, records grouped by key (in order)."""

    def __init__(self, fields: list[str]) -> None:
        super().__init__()
        if not fields:
            raise ValueError(f"{self.name} needs at least one numeric field")
        self.fields = list(fields)

    def _point(self, value: dict) -> list[float]:
        try:
            return [float(value[f]) for f in self.fields]
        except KeyError as exc:
            raise ValueError(f"{self.uid}: record has no field {exc.args[0]!r}; "
                             f"expected {self.fields}: {value!r:.200}") from None

    def process(self, records, out):
        by_key: dict[Any, list[int]] = defaultdict(list)
        for i, r in enumerate(records):
            by_key[r.key].append(i)
        results: list[dict | None] = [None] * len(records)
        for key, indexes in by_key.items():
            points = np.array([self._point(records[i].value) for i in indexes])
            values = [records[i].value for i in indexes]
            for i, result in zip(indexes, self._score_key(key, points, values), strict=True):
                results[i] = result
        out.main.extend(Record(v, r.timestamp, r.key, r.rid)
                        for v, r in zip(results, records, strict=True))

    def _score_key(self, key, points: np.ndarray, values: list[dict]) -> list[dict]:
        raise NotImplementedError


class RandomCutForestOperator(_PerKeyModelOperator):
    """Adds ``ANOMALY_SCORE`` to each record (a dict) from its key's forest over ``fields``.

    With ``explain=True`` also ``ANOMALY_EXPLANATION``: per field ``ATTRIBUTION_SCORE``
    (its share of the score), ``STRENGTH`` (how one-sided it is: ``|high − low| /
    (high + low)``, 0–1) and ``DIRECTION`` (``HIGH`` or ``LOW``), as
    RANDOM_CUT_FOREST_WITH_EXPLANATION reports them. Without explanations, each key's
    records in a batch are scored through the forest's compiled batch path.
    """

    name = "random_cut_forest"

    def __init__(self, fields: list[str], explain: bool = False, output_after: int | None = None,
                 random_seed: int = 0, **forest_args) -> None:
        super().__init__(fields)
        self.explain = explain
        self.forest_args = {**KINESIS_DEFAULTS, **forest_args, "output_after": output_after}
        self.random_seed = random_seed
        self.forests: dict[Any, RandomCutForest] = {}

    def _forest(self, key) -> RandomCutForest:
        forest = self.forests.get(key)
        if forest is None:
            forest = RandomCutForest(dimensions=len(self.fields), random_seed=_seed(
                                         self.random_seed, key),
                                     **self.forest_args)
            self.forests[key] = forest
        return forest

    def _score_key(self, key, points, values):
        forest = self._forest(key)
        if not self.explain:
            scores = forest.score_and_update(points)
            return [{**v, "ANOMALY_SCORE": float(s)} for v, s in zip(values, scores,
                                                                    strict=True)]
        out = []
        for point, value in zip(points, values, strict=True):
            score = forest.score(point)
            attribution = forest.attribution(point)
            forest.update(point)
            out.append({**value, "ANOMALY_SCORE": float(score),
                        "ANOMALY_EXPLANATION": self._explanation(attribution)})
        return out

    def _explanation(self, attribution) -> dict:
        d = len(self.fields)
        high = attribution.high.reshape(-1, d).sum(axis=0)
        low = attribution.low.reshape(-1, d).sum(axis=0)
        out = {}
        for j, field in enumerate(self.fields):
            total = high[j] + low[j]
            out[field] = {"ATTRIBUTION_SCORE": float(total),
                          "STRENGTH": float(abs(high[j] - low[j]) / total) if total > 0 else 0.0,
                          "DIRECTION": "HIGH" if high[j] >= low[j] else "LOW"}
        return out

    def snapshot(self):
        # uncompressed: the checkpoint writer compresses the whole snapshot in the background
        return {k: f.to_bytes(compress=False) for k, f in self.forests.items()}

    def restore(self, state):
        self.forests = {k: RandomCutForest.from_bytes(f) if isinstance(f, bytes) else f
                        for k, f in state.items()}


class ThresholdedRCFOperator(_PerKeyModelOperator):
    """Adds ``ANOMALY_SCORE``, ``ANOMALY_GRADE`` and, for anomalies graded at least
    ``explain_min_grade``, the explanation (which field, which earlier input, expected
    value) from a per-key :class:`~forestream.rcf.ThresholdedDetector`."""

    name = "thresholded_rcf"

    def __init__(self, fields: list[str], random_seed: int = 0, explain_min_grade: float = 0.0,
                 **detector_args) -> None:
        super().__init__(fields)
        self.explain_min_grade = explain_min_grade
        self.detector_args = detector_args
        self.random_seed = random_seed
        self.detectors: dict[Any, ThresholdedDetector] = {}

    def _score_key(self, key, points, values):
        detector = self.detectors.get(key)
        if detector is None:
            detector = ThresholdedDetector(dimensions=len(self.fields),
                                           random_seed=_seed(self.random_seed, key),
                                           **self.detector_args)
            self.detectors[key] = detector
        out = []
        descriptors = detector.process_batch(points, explain_min_grade=self.explain_min_grade)
        for value, d in zip(values, descriptors, strict=True):
            result = {**value, "ANOMALY_SCORE": d.score, "ANOMALY_GRADE": d.grade}
            if d.attribution is not None:
                result["ANOMALY_EXPLANATION"] = {
                    "field": self.fields[d.dimension], "relative_index": d.relative_index,
                    "expected_value": float(d.expected_values[d.dimension])}
            out.append(result)
        return out

    def snapshot(self):
        return {k: d.to_bytes(compress=False) for k, d in self.detectors.items()}

    def restore(self, state):
        self.detectors = {k: ThresholdedDetector.from_bytes(b) for k, b in state.items()}
