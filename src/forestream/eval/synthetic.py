"""Synthetic NAB-style files of the kinds missing from the development corpus.

The 35 NAB files on this machine are CPU, network, temperature and taxi series. The
other 23 files of the full corpus are of kinds we do not have: hourly ad-exchange prices
(CPC/CPM, with missing hours), 5-minute road traffic (integer speeds, quantised occupancy,
travel times that stand still for long stretches) and 5-minute tweet counts (discrete,
bursty, heavy-tailed: of a rarely mentioned name, with quiet nights near zero, or of a
much-mentioned one, hundreds per interval at the day's peak and seldom zero). A detector
tuned on the 35 files could fail on those in ways the 35 files never show: a repeated
count taken for a stuck sensor, ordinary bursts taken for incidents, quantisation steps
taken for changes.

This module makes files of those kinds, with labelled incidents and NAB's windows (10 %
of the file spread over its incidents, each window centred on its incident), so that
:func:`forestream.eval.score_corpus` scores a detector on them exactly as on NAB. The
generators are our own (Poisson/negative-binomial counts on daily cycles, log-normal
bursts, random gaps) and deterministic for a seed; nothing here comes from the missing
files, so a score on them is a held-out check, not a fit. Each file has a handful of
incidents, as many as NAB's own labels give the files of that kind (its public
``labels/combined_labels.json``: 2-5 per realTweets file, 33 in its 10 files; 1-4 per
realAdExchange file and per realTraffic file), that a person watching the series would
call incidents — a burst several times the usual peak lasting hours, an outage to zero, a
price jump, a traffic jam at an odd hour — beside ordinary bursts and noise that are
not incidents.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .corpus import NabFile

__all__ = ["INCIDENTS", "KINDS", "STAND_IN", "stand_in_corpus", "synthetic_corpus",
           "synthetic_file"]

_FIVE_MIN = np.timedelta64(5, "m")
_HOUR = np.timedelta64(1, "h")
_START = np.datetime64("2015-03-01T00:00:00", "ns")
INCIDENTS = {"tweets": (2, 6), "tweets_busy": (2, 6), "ad_exchange": (1, 5),
             "traffic": (1, 5)}
"""Incidents per file of each kind, ``[low, high)``: the range of labelled anomalies per
file of that kind in NAB's public labels (realTweets 2-5, realAdExchange and realTraffic
1-4), so that the kinds weigh in the synthetic corpus about as they weigh in NAB's."""
STAND_IN = {"tweets": 5, "tweets_busy": 5, "ad_exchange": 6, "traffic": 7}
"""Files per kind in :func:`stand_in_corpus`: as many as NAB has of the kinds we lack
(10 realTweets files — companies mentioned rarely and often, half each here —, 6
realAdExchange, 7 realTraffic)."""


def synthetic_corpus(seed: int = 0, per_kind: int = 3) -> list[NabFile]:
    """``per_kind`` files of every kind in :data:`KINDS`, deterministic for ``seed``."""
    if isinstance(per_kind, bool) or not isinstance(per_kind, int) or per_kind < 1:
        raise ValueError(f"per_kind must be an integer >= 1, got {per_kind!r}")
    return [synthetic_file(kind, seed * 1000 + i) for kind in KINDS
            for i in range(per_kind)]


def stand_in_corpus(seed: int = 0) -> list[NabFile]:
    """23 files standing in for the 23 NAB files the development corpus lacks, kinds in
    NAB's proportions (:data:`STAND_IN`), deterministic for ``seed``. Scored together
    with the 35 development files, as NAB scores its 58 (one threshold for all), they
    estimate how a detector fares on the full corpus."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    return [synthetic_file(kind, seed * 1000 + i) for kind, count in STAND_IN.items()
            for i in range(count)]


def synthetic_file(kind: str, seed: int) -> NabFile:
    """One file of ``kind`` (a key of :data:`KINDS`), deterministic for ``seed``."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; choose one of {sorted(KINDS)}")
    rng = np.random.default_rng([seed, sorted(KINDS).index(kind)])
    timestamps, values, incidents = KINDS[kind](rng)
    windows = _windows(timestamps, incidents)
    return NabFile(name=f"synthetic_{kind}/{kind}_{seed}.csv", category=f"synthetic_{kind}",
                   timestamps=timestamps, values=values, windows=windows)


# ------------------------------------------------------------------------- kinds
def _tweets(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """5-minute tweet counts: a daily cycle from near zero at night to a few dozen by
    day, negative-binomial noise, ordinary short bursts (a retweet storm: log-normal
    size, tens of minutes) and 2-5 incidents — a surge several times the day's peak for
    hours, or the mentions all but vanishing for most of a day."""
    return _mentions(rng, peaks=(8.0, 40.0), night=0.08, incidents=INCIDENTS["tweets"])


def _tweets_busy(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """5-minute counts of a much-mentioned name: the day's peak 60-600 mentions, nights
    at 15 % of it (so a zero is rare: an outage, a quiet night of a smaller name), with
    the same negative-binomial noise, ordinary bursts and incidents as :func:`_tweets`."""
    return _mentions(rng, peaks=(60.0, 600.0), night=0.15,
                     incidents=INCIDENTS["tweets_busy"])


def _mentions(rng: np.random.Generator, peaks: tuple[float, float], night: float,
              incidents: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Counts per 5 minutes on a daily cycle whose peak is drawn from ``peaks`` and whose
    night is ``night`` of the peak, with the bursts of tweet counts and ``[low, high)``
    ``incidents``."""
    n = int(rng.integers(12_000, 16_000))
    t = np.arange(n)
    day = 288
    peak = rng.uniform(*peaks)
    cycle = peak * (night + (1.0 - night) *
                    np.clip(np.sin(2 * np.pi * (t % day) / day - 1.2), 0, 1) ** 1.5)
    rate = cycle * np.exp(0.15 * rng.standard_normal(n))
    for start in rng.integers(0, n - 12, int(n / 700)):  # ordinary bursts
        rate[start : start + rng.integers(2, 10)] *= rng.lognormal(0.8, 0.5)
    rows = _incident_rows(rng, n, int(rng.integers(*incidents)))
    for row in rows:
        length = int(rng.integers(24, 120))
        if rng.random() < 0.75:
            rate[row : row + length] += peak * rng.uniform(3.0, 8.0) * \
                np.exp(-np.arange(len(rate[row : row + length])) / (length / 2))
        else:
            rate[row : row + 200] *= 0.05
    counts = rng.negative_binomial(3.0, 3.0 / (3.0 + np.maximum(rate, 1e-3)))
    return _times(n, _FIVE_MIN, rng, jitter=0.0), counts.astype(float), rows


def _ad_exchange(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Hourly cost per click or per mille: a daily and weekly cycle, prices rounded to
    a tenth of a cent, hours missing here and there (the rows simply absent), and 1-4
    incidents — the price jumping to several times its level for some hours, or
    collapsing towards zero."""
    n = int(rng.integers(1_500, 1_700))
    t = np.arange(n)
    base = rng.uniform(0.1, 2.0)
    level = base * (1 + 0.25 * np.sin(2 * np.pi * t / 24) + 0.1 * np.sin(2 * np.pi * t / 168))
    values = level * rng.lognormal(0.0, 0.12, n)
    incidents = _incident_rows(rng, n, int(rng.integers(*INCIDENTS["ad_exchange"])))
    for row in incidents:
        length = int(rng.integers(3, 12))
        values[row : row + length] *= rng.uniform(2.5, 5.0) if rng.random() < 0.6 \
            else rng.uniform(0.05, 0.3)
    values = np.round(values, 3)
    keep = rng.random(n) > 0.03  # about one hour in 30 missing
    keep[incidents] = True
    timestamps = _times(n, _HOUR, rng, jitter=0.0)[keep]
    rows = np.cumsum(keep) - 1
    return timestamps, values[keep], [int(rows[r]) for r in incidents]


def _traffic(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """Road sensors every ~5 minutes (irregular): integer speeds (mph) dipping in the rush
    hours, or travel times in whole seconds that stand still for long quiet stretches,
    or occupancy quantised to 0.1 %; 1-4 incidents — a jam at an odd hour (speed
    collapsing, travel time multiplied) for half an hour to two hours."""
    n = int(rng.integers(2_200, 2_600))
    t = np.arange(n)
    day = 288
    hour = (t % day) / 12.0
    rush = np.exp(-((hour - 8.0) ** 2) / 2.0) + np.exp(-((hour - 17.5) ** 2) / 3.0)
    metric = rng.choice(["speed", "travel_time", "occupancy"])
    incidents = _incident_rows(rng, n, int(rng.integers(*INCIDENTS["traffic"])))
    jam = np.zeros(n)
    for row in incidents:
        length = int(rng.integers(6, 24))
        jam[row : row + length] = rng.uniform(0.5, 0.9)
    if metric == "speed":
        limit = rng.choice([55.0, 65.0, 70.0])
        v = limit * (1 - 0.35 * rush) * (1 - jam) + 3.0 * rng.standard_normal(n)
        values = np.round(np.clip(v, 3, None))
    elif metric == "travel_time":
        free = rng.uniform(120, 600)
        v = free * (1 + 0.8 * rush + 4.0 * jam)
        values = np.round(v * (1 + 0.05 * rng.standard_normal(n)))
        # the same free-flow estimate all night, unless a jam is on
        quiet = ((hour < 5.5) | (hour > 22.0)) & (jam == 0.0)
        values[quiet] = np.round(free)
    else:
        v = 0.03 + 0.12 * rush + 0.35 * jam + 0.01 * rng.standard_normal(n)
        values = np.round(np.clip(v, 0.0, 1.0), 3)
    return _times(n, _FIVE_MIN, rng, jitter=0.3), values.astype(float), incidents


KINDS: dict[str, Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray, list[int]]]] = {
    "tweets": _tweets,
    "tweets_busy": _tweets_busy,
    "ad_exchange": _ad_exchange,
    "traffic": _traffic,
}
"""Kind name -> generator ``rng -> (timestamps, values, incident rows)``."""


# ----------------------------------------------------------------------- helpers
def _incident_rows(rng: np.random.Generator, n: int, count: int) -> list[int]:
    """Incident rows after NAB's probation (15 %) and apart from one another by more
    than their windows, so windows never overlap."""
    low, high = int(0.2 * n), n - int(0.06 * n)
    gap = int(0.1 * n / count) + 24
    rows: list[int] = []
    while len(rows) < count:
        row = int(rng.integers(low, high))
        if all(abs(row - r) > gap for r in rows):
            rows.append(row)
    return sorted(rows)


def _times(n: int, step: np.timedelta64, rng: np.random.Generator,
           jitter: float) -> np.ndarray:
    """``n`` increasing timestamps ``step`` apart, each step stretched by up to
    ``jitter`` of itself (irregular sensors)."""
    scale = 1.0 + jitter * rng.random(n)
    seconds = np.cumsum(np.round(scale * (step / np.timedelta64(1, "s"))).astype(np.int64))
    return _START + (seconds - seconds[0]).astype("timedelta64[s]").astype("timedelta64[ns]")


def _windows(timestamps: np.ndarray, incidents: list[int]
             ) -> list[tuple[np.datetime64, np.datetime64]]:
    """NAB's windows: 10 % of the file's rows shared by its incidents, each centred on
    its incident (clipped to the file)."""
    n = len(timestamps)
    width = int(0.1 * n / max(len(incidents), 1))
    out = []
    for row in incidents:
        first = max(0, row - width // 2)
        last = min(n - 1, first + width - 1)
        out.append((timestamps[first], timestamps[last]))
    return out
