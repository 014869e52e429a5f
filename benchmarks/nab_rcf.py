"""NAB scores of forestream's detector beside AWS's RCF, on the same corpus, in one run.

Peers (all streaming: each row scored before it is learned):
- forestream: ThresholdedDetector with its defaults (the grade is the NAB score);
- rcf_kinesis: forestream's forest configured as AWS's NAB entry (Kinesis Analytics
  RANDOM_CUT_FOREST: 100 trees, sample 256, timeDecay 100000, shingle 1; score / 8);
- krcf: AWS's own open-source RCF (Rust core) in that same configuration, score / 8.

Usage: python benchmarks/nab_rcf.py [--data ../shared/datasets/nab] [--seeds 1 2 3]
Prints one row per detector and seed (standard, reward_low_FP_rate, reward_low_FN_rate
normalised scores), the median over seeds, and forestream's margin over each peer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from forestream.eval import DETECTORS, load_corpus, run_detector, score_corpus

PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def krcf_detector(seed: int):
    import krcf

    def run(nab_file):
        forest = krcf.RandomCutForest({"dimensions": 1, "shingle_size": 1, "num_trees": 100,
                                       "sample_size": 256, "random_seed": seed,
                                       "lambda": 1.0 / 100_000, "output_after": 64})
        out = np.empty(nab_file.n_rows)
        for i, v in enumerate(nab_file.values):
            out[i] = forest.score([float(v)])
            forest.update([float(v)])
        return np.clip(out / 8.0, 0.0, 1.0)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "nab"
    parser.add_argument("--data", type=Path, default=default, help="NAB-layout directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--skip-krcf", action="store_true")
    args = parser.parse_args()
    console = Console()
    if not (args.data / "labels" / "combined_windows.json").is_file():
        console.print(f"[yellow]no NAB corpus at {args.data}; nothing to measure[/]")
        return 0
    corpus = load_corpus(args.data)
    peers = {"forestream": lambda seed: (lambda f: DETECTORS["forestream"](f, seed)),
             "rcf_kinesis": lambda seed: (lambda f: DETECTORS["rcf_kinesis"](f, seed))}
    if not args.skip_krcf:
        try:
            import krcf  # noqa: F401
            peers["krcf (AWS)"] = krcf_detector
        except ImportError:
            console.print("[yellow]krcf not installed: skipping AWS's own RCF[/]")
    table = Table(title=f"NAB normalised scores, {len(corpus)} files, "
                        f"{sum(f.n_rows for f in corpus):,} rows")
    for col in ("detector", "seed", *PROFILES, "seconds"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    medians = {}
    for name, make in peers.items():
        runs = []
        for seed in args.seeds:
            started = time.perf_counter()
            results = run_detector(make(seed), corpus, progress=False)
            report = score_corpus(results, corpus)
            runs.append([report[p].normalised for p in PROFILES])
            table.add_row(name, str(seed), *(f"{v:.1f}" for v in runs[-1]),
                          f"{time.perf_counter() - started:.1f}")
        medians[name] = [statistics.median(r[i] for r in runs) for i in range(len(PROFILES))]
        table.add_row(f"[bold]{name}[/]", "median", *(f"[bold]{v:.1f}[/]" for v in
                                                      medians[name]), "", end_section=True)
    console.print(table)
    base = medians["forestream"]
    for name, row in medians.items():
        if name != "forestream":
            diffs = ", ".join(f"{p} {b - v:+.1f}" for p, b, v in zip(PROFILES, base, row,
                                                                       strict=True))
            console.print(f"forestream − {name}: {diffs} points")
    console.print("AWS's published NAB entry (full 58-file corpus): 51.7 / 38.4 / 59.7")
    return 0


if __name__ == "__main__":
    sys.exit(main())
