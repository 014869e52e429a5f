"""How the published NAB detectors' scores split between our 35 files and the 23 we lack.

NAB publishes, for every detector on its scoreboard, the raw score of every file at the
threshold NAB chose for the whole corpus (``results/<detector>/<detector>_<profile>_
scores.csv`` in a checkout of https://github.com/numenta/NAB). Summed over a subset of
files and normalised as NAB normalises (null detector 0, perfect detector 100: every
window found at its first row), they give each detector's score on the 35 development
files of ``../shared/datasets/nab`` and on the 23 other files, at the same threshold.
That says how much harder or easier the files we cannot see were for detectors that were
never tuned to our split — what a score on the 35 files predicts for all 58.

Only published per-file *scores* are read; no data file of the 23 is needed or read.

Usage: python benchmarks/nab_published.py --nab-results NAB/results [--data ../shared/datasets/nab]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from forestream.eval import PROFILES
from forestream.eval.nab import scaled_sigmoid

NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
PERFECT_HIT = float(scaled_sigmoid(-1.0))  # a window found at its first row


def read_scores(results: Path, detector: str, profile: str) -> dict[str, float]:
    """File (category/name.csv) -> raw score, from one published scores file."""
    path = results / detector / f"{detector}_{profile}_scores.csv"
    with path.open(newline="") as handle:
        return {row["File"]: float(row["Score"]) for row in csv.DictReader(handle)
                if row["File"].endswith(".csv")}


def normalised(raw: float, windows: float, profile: str) -> float:
    """NAB's normalisation of a raw score over files holding ``windows`` windows."""
    w = PROFILES[profile]
    null, perfect = -w.fn * windows, w.tp * PERFECT_HIT * windows
    return 100.0 * (raw - null) / (perfect - null)


def _category(scores: dict[str, float], windows: dict[str, float], category: str) -> float:
    """A detector's standard score on one category's files alone."""
    inside = [f for f in windows if f.startswith(category + "/")]
    return normalised(sum(scores[f] for f in inside), sum(windows[f] for f in inside),
                      "standard")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"
    parser.add_argument("--nab-results", type=Path, required=True,
                        help="the results/ folder of a numenta/NAB checkout")
    parser.add_argument("--data", type=Path, default=default,
                        help="our NAB-layout directory (its labels name the 35 files)")
    args = parser.parse_args()
    console = Console(width=None if sys.stdout.isatty() else 160)
    labels = args.data / "labels" / "combined_windows.json"
    if not (args.nab_results / "null").is_dir() or not labels.is_file():
        console.print(f"[red]need NAB's results/ (with null/) and {labels}[/]")
        return 2
    ours = set(json.loads(labels.read_text()))
    # the null detector misses every window: its standard score is -1 per window
    windows = {f: -s for f, s in read_scores(args.nab_results, "null", "standard").items()}
    dev_windows = sum(w for f, w in windows.items() if f in ours)
    all_windows = sum(windows.values())
    console.print(f"{len(windows)} files, {all_windows:.0f} windows; the 35: "
                  f"{dev_windows:.0f} windows; the 23 others: {all_windows - dev_windows:.0f}")
    detectors = sorted(d.name for d in args.nab_results.iterdir()
                       if d.is_dir() and d.name not in ("null", "random")
                       and (d / f"{d.name}_standard_scores.csv").is_file())
    table = Table(title="published NAB scores, split: all 58 files / our 35 / the 23 others "
                        "(each at the threshold NAB chose for all 58)")
    table.add_column("detector")
    for profile in NAMES:
        table.add_column(f"{profile}\nall / 35 / 23", justify="right")
    table.add_column("23 − 35\n(standard)", justify="right")
    scores = {(d, p): read_scores(args.nab_results, d, p) for d in detectors for p in NAMES}
    splits: dict[str, dict[str, tuple[float, float, float]]] = {}
    for detector in detectors:
        splits[detector] = {}
        for profile in NAMES:
            per_file = scores[detector, profile]
            total = sum(per_file.values())
            dev = sum(s for f, s in per_file.items() if f in ours)
            splits[detector][profile] = (
                normalised(total, all_windows, profile),
                normalised(dev, dev_windows, profile),
                normalised(total - dev, all_windows - dev_windows, profile))
    ranked = sorted(detectors, key=lambda d: splits[d]["standard"][0], reverse=True)
    for detector in ranked:
        standard = splits[detector]["standard"]
        table.add_row(detector, *(" / ".join(f"{v:.1f}" for v in splits[detector][p])
                                  for p in NAMES), f"{standard[2] - standard[1]:+.1f}")
    console.print(table)
    categories = sorted({f.split("/")[0] for f in windows if windows[f] > 0})
    by_category = Table(title="published standard scores by category (at NAB's threshold "
                              "for all 58); * marks the categories we lack")
    by_category.add_column("detector")
    for category in categories:
        mark = "" if any(f.startswith(category + "/") for f in ours) else " *"
        count = sum(w for f, w in windows.items() if f.startswith(category + "/"))
        by_category.add_column(f"{category.removeprefix('real')}{mark}\n"
                               f"{count:.0f} windows", justify="right")
    for detector in ranked:
        by_category.add_row(detector, *(
            f"{_category(scores[detector, 'standard'], windows, c):.1f}" for c in categories))
    console.print(by_category)
    return 0


if __name__ == "__main__":
    sys.exit(main())
