"""Corpus loading, layout errors, the runner and NAB's results format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from nab_testkit import make_file, stamps, write_corpus

from forestream.eval import (
    NabFile,
    NabReport,
    load_corpus,
    read_results,
    results_path,
    run_detector,
    score_corpus,
)

NAB_DIR = Path(__file__).parents[3] / "shared/datasets/nab"


def small_corpus() -> list[NabFile]:
    return [
        make_file("artificialWithAnomaly/art_one.csv", 120, [(60, 71)], seed=1),
        make_file("realKnownCause/two.csv", 150, [(40, 49), (100, 119)], seed=2),
        make_file("realKnownCause/none.csv", 80, [], seed=3),
    ]


def test_load_corpus_round_trips_files_and_windows(tmp_path):
    files = small_corpus()
    root = write_corpus(tmp_path, files, extra_labels={"realKnownCause/absent.csv": []})
    loaded = load_corpus(root)
    assert [f.name for f in loaded] == sorted(f.name for f in files)
    by_name = {f.name: f for f in loaded}
    for original in files:
        got = by_name[original.name]
        assert got.category == original.name.split("/")[0]
        assert got.timestamps.dtype == np.dtype("datetime64[ns]")
        np.testing.assert_array_equal(got.timestamps, original.timestamps)
        np.testing.assert_array_equal(got.values, original.values)
        assert got.window_rows == original.window_rows
        assert got.windows == original.windows


def test_missing_data_dir_names_path(tmp_path):
    (tmp_path / "labels").mkdir()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "data")):
        load_corpus(tmp_path)


def test_missing_labels_file_names_path(tmp_path):
    (tmp_path / "data" / "cat").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="combined_windows.json"):
        load_corpus(tmp_path)


def test_missing_corpus_dir_names_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_corpus(tmp_path / "nowhere")


def test_unlabelled_data_file_is_named(tmp_path):
    root = write_corpus(tmp_path, small_corpus())
    labels_path = root / "labels" / "combined_windows.json"
    labels = json.loads(labels_path.read_text())
    del labels["realKnownCause/two.csv"]
    labels_path.write_text(json.dumps(labels))
    with pytest.raises(ValueError, match="realKnownCause/two.csv"):
        load_corpus(root)


def test_bad_csv_names_file_and_line(tmp_path):
    root = write_corpus(tmp_path, small_corpus()[:1])
    path = root / "data" / "artificialWithAnomaly" / "art_one.csv"
    lines = path.read_text().splitlines()
    lines[3] = "2014-04-01 00:10:00,not-a-number"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"art_one.csv:4: bad value 'not-a-number'"):
        load_corpus(root)


def test_windows_follow_first_matching_row_with_repeated_timestamps():
    # A daylight-saving style repeat: rows 4..6 share a timestamp, then time goes on.
    ts = stamps(12)
    ts[5] = ts[4]
    ts[6] = ts[4]
    nab_file = NabFile("c/dst.csv", "c", ts, np.zeros(12), [(ts[4], ts[8])])
    assert nab_file.window_rows == [(4, 8)]
    assert nab_file.labels.tolist() == [0] * 4 + [1] * 5 + [0] * 3


def test_overlapping_windows_are_rejected():
    nab_file = make_file("c/overlap.csv", 50, [(10, 20), (15, 30)])
    with pytest.raises(ValueError, match="c/overlap.csv.*overlap"):
        _ = nab_file.window_rows


def test_run_detector_writes_nab_results_and_reads_them_back(tmp_path):
    files = load_corpus(write_corpus(tmp_path / "nab", small_corpus()))
    calls = []

    def detector(nab_file: NabFile) -> np.ndarray:
        calls.append(nab_file.name)
        return np.linspace(0.0, 1.0, nab_file.n_rows) ** 3

    out = tmp_path / "results"
    results = run_detector(detector, files, out_dir=out, detector_name="toy", progress=False)
    assert calls == [f.name for f in files]
    two = next(f for f in files if f.name == "realKnownCause/two.csv")
    path = out / "toy" / "realKnownCause" / "toy_two.csv"
    assert results_path(out, "toy", two) == path
    lines = path.read_text().splitlines()
    assert lines[0] == "timestamp,value,anomaly_score,label"
    assert lines[1].startswith("2014-04-01 00:00:00,")
    labels = [int(line.rsplit(",", 1)[1]) for line in lines[1:]]
    assert labels == two.labels.tolist()
    assert sum(labels) == 30

    back = read_results(out, "toy", files)
    assert back.keys() == results.keys()
    for name, scores in results.items():
        np.testing.assert_array_equal(back[name], scores)  # exact round trip
    report = score_corpus(back, files)
    assert isinstance(report, NabReport)
    assert report.as_dict()["profiles"]["standard"]["raw"] == report["standard"].raw
    json.dumps(report.as_dict())
    assert report.table().row_count == 3


def test_read_results_accepts_nab_extra_columns_and_checks_rows(tmp_path):
    nab_file = small_corpus()[2]
    path = results_path(tmp_path, "other", nab_file)
    path.parent.mkdir(parents=True)
    rows = ["timestamp,value,anomaly_score,label,S(t)_standard"]
    for i, t in enumerate(nab_file.timestamps):
        stamp = str(np.datetime_as_string(t, unit="s")).replace("T", " ")
        rows.append(f"{stamp},1.0,{i / 100},0,0.0")
    path.write_text("\n".join(rows) + "\n")
    scores = read_results(tmp_path, "other", [nab_file])[nab_file.name]
    np.testing.assert_allclose(scores, np.arange(nab_file.n_rows) / 100)

    path.write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(ValueError, match="79 rows"):
        read_results(tmp_path, "other", [nab_file])
    with pytest.raises(FileNotFoundError, match="other_none.csv"):
        read_results(tmp_path / "elsewhere", "other", [nab_file])


def test_run_detector_checks_output_length(tmp_path):
    files = small_corpus()
    with pytest.raises(ValueError, match="artificialWithAnomaly/art_one.csv"):
        run_detector(lambda f: np.zeros(3), files, progress=False)
    with pytest.raises(ValueError, match="detector_name"):
        run_detector(lambda f: np.zeros(f.n_rows), files, out_dir=tmp_path, detector_name="a/b")


def test_progress_bar_runs(tmp_path):
    files = small_corpus()
    results = run_detector(lambda f: np.zeros(f.n_rows), files, progress=True)
    assert len(results) == 3


@pytest.mark.skipif(not NAB_DIR.is_dir(), reason=f"NAB data not found at {NAB_DIR}")
def test_real_corpus_scores_plausibly():
    corpus = load_corpus(NAB_DIR)
    assert len(corpus) >= 1
    n_windows = sum(len(f.windows) for f in corpus)

    def spike_detector(nab_file: NabFile) -> np.ndarray:
        # Causal z-score of the change from the previous value, squashed into [0, 1].
        diffs = np.abs(np.diff(nab_file.values, prepend=nab_file.values[0]))
        count = np.arange(1, diffs.size + 1)
        mean = np.cumsum(diffs) / count
        var = np.maximum(np.cumsum(diffs**2) / count - mean**2, 1e-12)
        z = (diffs - mean) / np.sqrt(var)
        return 1.0 - np.exp(-np.maximum(z, 0.0) / 4.0)

    results = run_detector(spike_detector, corpus, progress=False)
    report = score_corpus(results, corpus)
    assert report.n_windows == n_windows
    for name, result in report.profiles.items():
        # Never below the null detector (its "detect nothing" threshold is always a candidate).
        assert 0.0 <= result.normalised < 100.0, name
        assert result.perfect == pytest.approx(n_windows * 1.0)
