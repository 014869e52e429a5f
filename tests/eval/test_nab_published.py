"""benchmarks/nab_published.py: published per-file NAB scores split between our files and
the others, normalised as NAB normalises."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from forestream.eval.nab import scaled_sigmoid

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "nab_published.py"
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
# file -> windows; the first two are "ours"
FILES = {"realA/one.csv": 2, "realA/two.csv": 1, "realB/three.csv": 3}


def _module():
    spec = importlib.util.spec_from_file_location("nab_published", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write(results: Path, detector: str, scores: dict[str, dict[str, float]]) -> None:
    (results / detector).mkdir(parents=True)
    for profile in PROFILES:
        lines = ["Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count"]
        lines += [f"{detector},{profile},{f},0.5,{s},0,0,0,0,0"
                  for f, s in scores[profile].items()]
        lines.append(f"Totals,,,,{sum(scores[profile].values())},0,0,0,0,0")
        (results / detector / f"{detector}_{profile}_scores.csv").write_text(
            "\n".join(lines) + "\n")


@pytest.fixture()
def layout(tmp_path: Path) -> tuple[Path, Path]:
    results, data = tmp_path / "results", tmp_path / "nab"
    fn = {"standard": 1.0, "reward_low_FP_rate": 1.0, "reward_low_FN_rate": 2.0}
    _write(results, "null", {p: {f: -fn[p] * w for f, w in FILES.items()} for p in PROFILES})
    hit = float(scaled_sigmoid(-1.0))
    # "perfect" finds every window at its first row; "half" finds our files' windows only
    _write(results, "perfect", {p: {f: hit * w for f, w in FILES.items()} for p in PROFILES})
    _write(results, "half", {p: {f: (hit * w if f.startswith("realA") else -fn[p] * w)
                                 for f, w in FILES.items()} for p in PROFILES})
    (data / "labels").mkdir(parents=True)
    (data / "labels" / "combined_windows.json").write_text(
        json.dumps({f: [] for f in FILES if f.startswith("realA")}))
    return results, data


def test_normalisation_gives_the_null_detector_0_and_the_perfect_one_100():
    module = _module()
    for profile in PROFILES:
        fn = 2.0 if profile == "reward_low_FN_rate" else 1.0
        assert module.normalised(-fn * 7, 7, profile) == pytest.approx(0.0)
        assert module.normalised(float(scaled_sigmoid(-1.0)) * 7, 7, profile) == \
            pytest.approx(100.0)


def test_the_split_between_our_files_and_the_others(layout):
    results, data = layout
    out = subprocess.run([sys.executable, str(SCRIPT), "--nab-results", str(results),
                          "--data", str(data)], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    assert "3 files, 6 windows; the 35: 3 windows; the 23 others: 3" in out
    perfect = next(line for line in out.splitlines() if "perfect" in line)
    assert perfect.count("100.0 / 100.0 / 100.0") == 3
    half = next(line for line in out.splitlines() if "half" in line)
    assert half.count("50.0 / 100.0 / 0.0") == 3 and "-100.0" in half


def test_a_missing_results_folder_is_named(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--nab-results", str(tmp_path),
                           "--data", str(tmp_path)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "need NAB's results/" in done.stdout
