"""What an analysis request may carry, checked: preferences, inline histories and the
resource fields a source could not provide.

Used by :class:`~forestream.optimizer.service.OptimizerService`; each function raises
:class:`InvalidRequestError` with a message that names the bad value and what is
accepted, before anything is computed or stored.

>>> histories = inline_histories([{"resource": {"resource_id": "web-1"},
...     "timestamps": ["2024-05-01T00:00:00Z", "2024-05-01T00:05:00Z"],
...     "metrics": {"cpu_pct": [10, None]}}])
>>> histories[0].resource.kind, histories[0].metrics["cpu_pct"].tolist()
('instance', [10.0, nan])
>>> try:
...     check_preferences({"lookback_days": 15})
... except InvalidRequestError as error:
...     print(error)
lookback_days must be one of 14, 32, 93; got 15
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from forestream import errors

from .timeseries import MetricInputError, canonical_metric, check_range, parse_timestamps, resample
from .types import (
    METRICS,
    RESOURCE_KINDS,
    InvalidParameterError,
    Preferences,
    Resource,
    UtilizationHistory,
)

#: The preferences a request may set (the fields of recommend.Preferences).
PREFERENCE_NAMES = ("policy", "lookback_days", "cpu_percentile", "cpu_headroom",
                    "mem_headroom", "horizon_days", "max_options", "allow_graviton",
                    "include_burstable", "seed", "slo_percentile", "slo_utilization")


class OptimizerError(errors.ForestreamError):
    """An error of the optimizer's service a client caused or should know about."""


class InvalidRequestError(errors.InvalidInputError, OptimizerError):
    """The request names a bad value; the message says which and what is accepted."""


def inline_histories(items) -> list[UtilizationHistory]:
    """Histories from the inline ``metrics`` of a request (see the module docstring),
    resampled onto the 5-minute grid as files are."""
    if not isinstance(items, list) or not items:
        raise InvalidRequestError("'metrics' must be a non-empty list of {\"resource\", "
                                  "\"timestamps\", \"metrics\"} objects")
    histories, seen = [], set()
    for number, item in enumerate(items, start=1):
        where = f"metrics[{number - 1}]"
        if not isinstance(item, Mapping) or not isinstance(item.get("resource"), Mapping):
            raise InvalidRequestError(f"{where} must be an object with 'resource', "
                                      "'timestamps' and 'metrics'")
        described = item["resource"]
        rid = described.get("resource_id")
        kind = described.get("kind", "instance")
        if not isinstance(rid, str) or not rid:
            raise InvalidRequestError(f"{where}.resource.resource_id must be a non-empty string")
        if rid in seen:
            raise InvalidRequestError(f"{where}: resource_id {rid!r} appears twice")
        seen.add(rid)
        if kind not in RESOURCE_KINDS:
            raise InvalidRequestError(f"{where}.resource.kind {kind!r} is not one of "
                                      f"{', '.join(RESOURCE_KINDS)}")
        current, tags = described.get("current") or {}, described.get("tags") or {}
        if not isinstance(current, Mapping) or not isinstance(tags, Mapping):
            raise InvalidRequestError(f"{where}.resource: current and tags must be objects")
        metrics = item.get("metrics")
        stamps = item.get("timestamps")
        if not isinstance(metrics, Mapping) or not metrics or not isinstance(stamps, list):
            raise InvalidRequestError(f"{where} needs 'timestamps' (a list) and 'metrics' "
                                      "(an object of equal-length lists)")
        try:
            seconds = parse_timestamps(stamps, where=f"{where}.timestamps")
            columns = {}
            for name, values in metrics.items():
                if canonical_metric(name) != (name, False):
                    raise MetricInputError(f"{where}: unknown metric {name!r}; accepted: "
                                           f"{', '.join(METRICS)} and their _max variants")
                numeric = isinstance(values, list) and all(
                    v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))
                    for v in values)
                if not numeric or len(values) != len(seconds):
                    raise MetricInputError(f"{where}.metrics.{name} must be a list of "
                                           f"{len(seconds)} numbers (null for a missing "
                                           "sample), one per timestamp")
                array = np.array([np.nan if v is None else v for v in values], dtype=float)
                check_range(name, array, where)
                columns[name] = array
        except MetricInputError as error:
            raise InvalidRequestError(str(error)) from None
        grid, resampled = resample(seconds, columns)
        histories.append(UtilizationHistory(Resource(rid, kind, dict(current), dict(tags)),
                                            grid, resampled))
    return histories


def apply_resources(histories: list[UtilizationHistory], resources: Mapping,
                    instance_type: str | None = None) -> list[UtilizationHistory]:
    """Fill in what the metrics could not say: ``resources`` maps a resource id to its
    ``current`` fields (merged over what was read) or to a :class:`Resource` (from a
    resources file: its kind, current and tags replace what was read);
    ``instance_type`` is given to instances and Auto Scaling groups that still name
    none."""
    for history in histories:
        extra = resources.get(history.resource.resource_id)
        if isinstance(extra, Resource):
            history.resource = extra
        resource = history.resource
        if extra is not None and not isinstance(extra, Resource):
            if not isinstance(extra, Mapping):
                raise InvalidRequestError(f"resources[{resource.resource_id!r}] must be an "
                                          "object of current fields, e.g. "
                                          '{"instance_type": "m5.xlarge"}')
            resource.current.update(extra)
        if instance_type and resource.kind in ("instance", "asg") and \
                not resource.current.get("instance_type"):
            resource.current["instance_type"] = instance_type
    return histories


def check_preferences(raw) -> dict:
    """The preferences of a request (``None`` -> ``{}``), checked as
    :func:`~forestream.optimizer.recommend.recommend_many` would, plus types JSON can get
    wrong (``"allow_graviton": "yes"``)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidRequestError("'preferences' must be an object")
    unknown = sorted(set(raw) - set(PREFERENCE_NAMES))
    if unknown:
        raise InvalidRequestError(f"unknown preferences {unknown}; accepted: "
                                  f"{', '.join(PREFERENCE_NAMES)}")
    chosen = {k: v for k, v in raw.items() if v is not None}
    for name in ("allow_graviton", "include_burstable"):
        if name in chosen and not isinstance(chosen[name], bool):
            raise InvalidRequestError(f"{name} must be true or false, got {chosen[name]!r}")
    if "seed" in chosen and (isinstance(chosen["seed"], bool)
                             or not isinstance(chosen["seed"], int)):
        raise InvalidRequestError(f"seed must be a whole number, got {chosen['seed']!r}")
    try:
        Preferences(**chosen)
    except InvalidParameterError as error:
        raise InvalidRequestError(str(error)) from None
    return chosen


def check_filter(name: str, value: str | None, accepted: tuple) -> None:
    """A list filter (``finding``, ``kind``) is one of ``accepted`` or None."""
    if value is not None and value not in accepted:
        raise InvalidRequestError(f"{name} {value!r} is not one of {', '.join(accepted)}")
