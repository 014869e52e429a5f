"""The synthetic held-out files: the kinds NAB's missing files are, scored like NAB."""

from __future__ import annotations

import numpy as np
import pytest

from forestream.eval import probation_length, score_corpus
from forestream.eval.synthetic import (
    INCIDENTS,
    KINDS,
    STAND_IN,
    stand_in_corpus,
    synthetic_corpus,
    synthetic_file,
)


@pytest.fixture(scope="module")
def corpus():
    return synthetic_corpus(seed=0, per_kind=2)


def test_files_are_deterministic_for_a_seed():
    a, b = synthetic_file("tweets", 5), synthetic_file("tweets", 5)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.timestamps, b.timestamps)
    assert a.windows == b.windows
    assert not np.array_equal(a.values[:1000], synthetic_file("tweets", 6).values[:1000])


def test_windows_follow_nab_rules(corpus):
    """10 % of a file's rows in its windows, each after the probation, none overlapping."""
    assert {f.category for f in corpus} == {f"synthetic_{k}" for k in KINDS}
    for f in corpus:
        rows = f.window_rows  # raises on overlap
        low, high = INCIDENTS[f.category.removeprefix("synthetic_")]
        assert low <= len(rows) < high, f.name
        covered = sum(last - first + 1 for first, last in rows)
        assert 0.08 * f.n_rows <= covered <= 0.11 * f.n_rows, f.name
        assert rows[0][0] >= probation_length(f.n_rows), f.name
        assert np.all(np.diff(f.timestamps.astype(np.int64)) > 0), f.name


def test_each_kind_has_the_character_of_the_files_we_lack(corpus):
    by_kind = {k: [f for f in corpus if f.category == f"synthetic_{k}"] for k in KINDS}
    for f in by_kind["tweets"]:  # discrete, bursty counts with quiet nights
        v = f.values
        assert np.all(v == np.round(v)) and v.min() >= 0
        assert np.mean(v == 0) > 0.01 and v.max() > 5 * np.median(v)
    for f in by_kind["tweets_busy"]:  # counts in the hundreds at the peak, seldom zero
        v = f.values
        assert np.all(v == np.round(v)) and v.min() >= 0
        assert np.mean(v == 0) < 0.01 and np.percentile(v, 95) > 100
        assert v.max() > 5 * np.median(v)
    for f in by_kind["ad_exchange"]:  # hourly prices to a tenth of a cent, hours missing
        steps = np.diff(f.timestamps) / np.timedelta64(1, "h")
        assert np.median(steps) == 1 and steps.max() >= 2
        assert np.allclose(f.values, np.round(f.values, 3))
    for f in by_kind["traffic"]:  # irregular 5-minute readings, quantised values
        minutes = np.diff(f.timestamps) / np.timedelta64(1, "m")
        assert minutes.min() >= 5 and minutes.max() > 5
        assert len(np.unique(f.values)) < f.n_rows / 4


def test_incidents_per_file_are_as_many_as_nab_labels_in_files_of_that_kind():
    """NAB's public labels: 2-5 anomalies per realTweets file, 1-4 per realAdExchange
    and realTraffic file; the synthetic kinds weigh as those do."""
    assert INCIDENTS == {"tweets": (2, 6), "tweets_busy": (2, 6), "ad_exchange": (1, 5),
                         "traffic": (1, 5)}
    counts = {k: {len(synthetic_file(k, seed).windows) for seed in range(12)} for k in KINDS}
    for tweets in ("tweets", "tweets_busy"):
        assert counts[tweets] <= {2, 3, 4, 5} and max(counts[tweets]) >= 4
    assert counts["ad_exchange"] <= {1, 2, 3, 4} and counts["traffic"] <= {1, 2, 3, 4}


def test_the_stand_in_has_as_many_files_of_each_kind_as_nab_lacks():
    """realTweets 10, realAdExchange 6, realTraffic 7: 23 files, the same for a seed,
    the files of synthetic_corpus for the same seed among them."""
    files = stand_in_corpus(3)
    assert sum(STAND_IN.values()) == 23 == len(files) == len({f.name for f in files})
    kinds = [f.category.removeprefix("synthetic_") for f in files]
    assert {k: kinds.count(k) for k in STAND_IN} == STAND_IN
    assert STAND_IN["tweets"] + STAND_IN["tweets_busy"] == 10
    again = {f.name: f for f in stand_in_corpus(3)}
    assert all(np.array_equal(f.values, again[f.name].values) for f in files)
    shared = {f.name: f for f in synthetic_corpus(seed=3, per_kind=2)}
    assert all(np.array_equal(f.values, shared[f.name].values) for f in files
               if f.name in shared) and len(shared.keys() & again.keys()) == 8


def test_the_scorer_reads_the_files_as_nab():
    """A detector that fires at each window's first row scores 100; one that never
    fires scores 0."""
    files = [synthetic_file(kind, 1) for kind in KINDS]
    perfect, null = {}, {}
    for f in files:
        perfect[f.name] = np.zeros(f.n_rows)
        perfect[f.name][[first for first, _ in f.window_rows]] = 1.0
        null[f.name] = np.zeros(f.n_rows)
    assert score_corpus(perfect, files)["standard"].normalised == pytest.approx(100.0)
    assert score_corpus(null, files)["standard"].normalised == pytest.approx(0.0)


def test_bad_arguments_name_the_value():
    with pytest.raises(ValueError, match="unknown synthetic kind 'sales'.*tweets"):
        synthetic_file("sales", 1)
    with pytest.raises(ValueError, match="per_kind must be an integer >= 1, got 0"):
        synthetic_corpus(per_kind=0)
    with pytest.raises(ValueError, match="seed must be an integer, got '1'"):
        stand_in_corpus("1")  # type: ignore[arg-type]
