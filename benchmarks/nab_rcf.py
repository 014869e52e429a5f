"""NAB scores of forestream's detector beside AWS's RCF, on the same corpus, in one run.

Peers (all streaming: each row scored before it is learned):
- forestream: ThresholdedDetector with its defaults (the grade is the NAB score);
- rcf_kinesis: forestream's forest configured as AWS's NAB entry (Kinesis Analytics
  RANDOM_CUT_FOREST: 100 trees, sample 256, timeDecay 100000, shingle 1; score / 8);
- krcf: AWS's own open-source RCF (Rust core) in that same configuration, score / 8.

Usage: python benchmarks/nab_rcf.py [--data ../shared/datasets/nab] [--seeds 1 2 3] [--loco]
       [--synthetic] [--synthetic-seed 0] [--skip-nab] [--stand-in 0 7 ...]
Prints one row per detector and seed (standard, reward_low_FP_rate, reward_low_FN_rate
normalised scores), the median over seeds, and forestream's margin over each peer.

``--loco`` adds a leave-one-category-out check against tuning to the files at hand: for
each category, the detector's parameters are chosen from a small grid (LOCO_GRID) by
their standard score on the *other* categories; the held-out category is then scored
with them (NAB's threshold optimised over the whole corpus, as NAB does, and also the
threshold chosen on the other categories alone), beside the all-files score.

``--synthetic`` adds a held-out check on files of the kinds the development corpus lacks
(:mod:`forestream.eval.synthetic`: tweet counts of rarely and of often mentioned names,
hourly ad-exchange prices with gaps, quantised road traffic; 4 files of each kind,
generator seed ``--synthetic-seed``, 0 unless given): the same NAB scoring over all of
them and over each kind alone. ``--skip-nab`` runs only that. A generator seed that was
never looked at while changing the detector is the fair final check.

``--stand-in G [G ...]`` estimates the full 58-file score as NAB computes it — one
threshold for every file — on the 35 development files together with 23 synthetic files
standing in for the 23 we lack, in NAB's proportions (``stand_in_corpus``: 10 tweet
files, 6 ad-exchange, 7 traffic), for each generator seed G; it also prints each
stand-in kind's score at that joint threshold. The synthetic kinds are easier than
NAB's real files are likely to be, so read it as a comparison between detectors and
versions, not as the score the full corpus would give.
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

from forestream.eval import DETECTORS, PROFILES, load_corpus, run_detector, score_corpus
from forestream.eval.synthetic import KINDS, STAND_IN, stand_in_corpus, synthetic_corpus
from forestream.rcf import ThresholdedDetector

NAMES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")
# the detector's defaults are averaging 3, min_deviation_ratio 0.3, shape_weight 0.3
LOCO_GRID = [{"averaging": a, "min_deviation_ratio": m, "shape_weight": w}
             for a in (3, 5) for m in (0.2, 0.3) for w in (0.3, 0.5)]


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
    parser.add_argument("--loco", action="store_true",
                        help="leave-one-category-out check of the detector's parameters")
    parser.add_argument("--synthetic", action="store_true",
                        help="also score synthetic files of the kinds NAB's missing files are")
    parser.add_argument("--synthetic-seed", type=int, default=0,
                        help="generator seed of the synthetic files (default 0)")
    parser.add_argument("--skip-nab", action="store_true",
                        help="skip the NAB corpus (with --synthetic: only the synthetic check)")
    parser.add_argument("--stand-in", type=int, nargs="+", default=[], metavar="G",
                        help="estimate the 58-file score: the NAB files with 23 synthetic "
                             "stand-ins for the missing ones (generator seeds G)")
    args = parser.parse_args()
    if args.stand_in and args.skip_nab:
        parser.error("--stand-in scores the NAB files with the stand-ins; drop --skip-nab")
    console = Console(width=None if sys.stdout.isatty() else 160)
    if args.synthetic:
        synthetic_check(args.seeds, console, args.synthetic_seed)
    if args.skip_nab:
        return 0
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
    for col in ("detector", "seed", *NAMES, "seconds"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    medians = {}
    kept: dict[str, dict[int, dict[str, np.ndarray]]] = {}
    for name, make in peers.items():
        runs = []
        for seed in args.seeds:
            started = time.perf_counter()
            results = run_detector(make(seed), corpus, progress=False)
            kept.setdefault(name, {})[seed] = results
            report = score_corpus(results, corpus)
            runs.append([report[p].normalised for p in NAMES])
            table.add_row(name, str(seed), *(f"{v:.1f}" for v in runs[-1]),
                          f"{time.perf_counter() - started:.1f}")
        medians[name] = [statistics.median(r[i] for r in runs) for i in range(len(NAMES))]
        table.add_row(f"[bold]{name}[/]", "median", *(f"[bold]{v:.1f}[/]" for v in
                                                      medians[name]), "", end_section=True)
    console.print(table)
    base = medians["forestream"]
    for name, row in medians.items():
        if name != "forestream":
            diffs = ", ".join(f"{p} {b - v:+.1f}" for p, b, v in zip(NAMES, base, row,
                                                                       strict=True))
            console.print(f"forestream − {name}: {diffs} points")
    console.print("AWS's published NAB entry (full 58-file corpus): 51.7 / 38.4 / 59.7")
    if args.stand_in:
        stand_in_check(corpus, {name: kept[name] for name in ("forestream", "rcf_kinesis")},
                       args.stand_in, console)
    if args.loco:
        leave_one_category_out(corpus, args.seeds[0], console)
    return 0


def stand_in_check(corpus, dev_results: dict[str, dict[int, dict[str, np.ndarray]]],
                   generator_seeds: list[int], console: Console) -> None:
    """The 35 files scored together with 23 synthetic stand-ins, one threshold for all
    58 as NAB does; per generator seed, each detector and forest seed."""
    kinds = list(STAND_IN)
    table = Table(title="estimate of the 58-file score: the NAB files + 23 synthetic "
                        "stand-ins for the missing files, one threshold")
    for col in ("detector", "generator", "seed", *NAMES,
                *(f"{k} std" for k in kinds), "seconds"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    medians: dict[str, list[float]] = {}
    stand_ins = {generator: stand_in_corpus(generator) for generator in generator_seeds}
    for name, by_seed in dev_results.items():
        runs = []
        for generator, stand_in in stand_ins.items():
            for seed, dev in by_seed.items():
                started = time.perf_counter()
                results = run_detector(
                    lambda f, seed=seed, name=name: DETECTORS[name](f, seed), stand_in,
                    progress=False)
                report = score_corpus({**dev, **results}, corpus + stand_in)
                at = {p: report[p].threshold for p in NAMES}
                per_kind = [score_corpus(results, [f for f in stand_in
                                                   if f.category == f"synthetic_{k}"],
                                         thresholds=at)["standard"].normalised
                            for k in kinds]
                runs.append([report[p].normalised for p in NAMES] + per_kind)
                table.add_row(name, str(generator), str(seed),
                              *(f"{v:.1f}" for v in runs[-1]),
                              f"{time.perf_counter() - started:.1f}")
        medians[name] = [statistics.median(r[i] for r in runs) for i in range(len(runs[0]))]
        table.add_row(f"[bold]{name}[/]", "all", "median",
                      *(f"[bold]{v:.1f}[/]" for v in medians[name]), "", end_section=True)
    console.print(table)
    base = medians["forestream"]
    for name, row in medians.items():
        if name != "forestream":
            diffs = ", ".join(f"{p} {b - v:+.1f}" for p, b, v in zip(NAMES, base[:3], row[:3],
                                                                       strict=True))
            console.print(f"estimate, forestream − {name}: {diffs} points")
    console.print("(kind columns: the stand-in files of that kind at the 58 files' "
                  "threshold; the synthetic kinds are likely easier than NAB's own)")


def leave_one_category_out(corpus, seed: int, console: Console) -> None:
    """Parameters chosen without each category in turn, then that category scored."""
    started = time.perf_counter()
    results = []
    for params in LOCO_GRID:
        def run(nab_file, params=params):
            detector = ThresholdedDetector(random_seed=seed, **params)
            return detector.grade_batch(nab_file.values)[1]
        results.append(run_detector(run, corpus, progress=False))
    categories = sorted({f.category for f in corpus})
    whole = [score_corpus(r, corpus) for r in results]
    table = Table(title=f"leave one category out (seed {seed}; grid of {len(LOCO_GRID)} "
                        f"parameter sets, chosen on the other categories' standard score)")
    default = LOCO_GRID.index({"averaging": 3, "min_deviation_ratio": 0.3, "shape_weight": 0.3})
    for col in ("held out", "files", "windows", "parameters chosen", "train std",
                "held-out std", "held-out std, train thr", "held-out std, defaults",
                "all files std / FP / FN"):
        table.add_column(col, justify="left" if col in ("held out", "parameters chosen")
                         else "right")
    for category in categories:
        train = [f for f in corpus if f.category != category]
        test = [f for f in corpus if f.category == category]
        on_train = [score_corpus(r, train) for r in results]
        k = max(range(len(results)), key=lambda i: on_train[i]["standard"].normalised)
        # the held-out files at NAB's threshold for the whole corpus, and at the
        # threshold the other categories alone chose
        at_corpus = {p: whole[k][p].threshold for p in NAMES}
        held = score_corpus(results[k], test, thresholds=at_corpus)
        strict = score_corpus(results[k], test,
                              thresholds={p: on_train[k][p].threshold for p in NAMES})
        as_default = score_corpus(results[default], test,
                                  thresholds={p: whole[default][p].threshold for p in NAMES})
        table.add_row(category, str(len(test)), str(held.n_windows),
                      ", ".join(f"{key}={value}" for key, value in LOCO_GRID[k].items()),
                      f"{on_train[k]['standard'].normalised:.1f}", _shown(held),
                      _shown(strict), _shown(as_default),
                      " / ".join(f"{whole[k][p].normalised:.1f}" for p in NAMES))
    best = max(range(len(results)), key=lambda i: whole[i]["standard"].normalised)
    console.print(table)
    console.print(
        "all files, every grid point (standard): " + ", ".join(
            f"{'/'.join(str(v) for v in LOCO_GRID[i].values())} "
            f"{whole[i]['standard'].normalised:.1f}"
            for i in range(len(results))) + f"; best {LOCO_GRID[best]} "
        f"({time.perf_counter() - started:.0f} s; profiles: {', '.join(PROFILES)})")


def synthetic_check(seeds: list[int], console: Console, generator_seed: int = 0) -> None:
    """NAB scores on synthetic files of the kinds the development corpus lacks."""
    corpus = synthetic_corpus(seed=generator_seed, per_kind=4)
    kinds = [f"synthetic_{k}" for k in KINDS]
    table = Table(title=f"synthetic held-out files (generator seed {generator_seed}, "
                        f"{len(corpus)} files, "
                        f"{sum(f.n_rows for f in corpus):,} rows, "
                        f"{sum(len(f.windows) for f in corpus)} windows)")
    for col in ("detector", "seed", *NAMES, *(f"{k.removeprefix('synthetic_')} std"
                                              for k in kinds), "seconds"):
        table.add_column(col, justify="left" if col == "detector" else "right")
    for name in ("forestream", "rcf_kinesis"):
        runs = []
        for seed in seeds:
            started = time.perf_counter()
            results = run_detector(lambda f, seed=seed, name=name: DETECTORS[name](f, seed),
                                   corpus, progress=False)
            report = score_corpus(results, corpus)
            per_kind = [score_corpus(results, [f for f in corpus if f.category == k])
                        for k in kinds]
            runs.append([report[p].normalised for p in NAMES] +
                        [r["standard"].normalised for r in per_kind])
            table.add_row(name, str(seed), *(f"{v:.1f}" for v in runs[-1]),
                          f"{time.perf_counter() - started:.1f}")
        medians = [statistics.median(r[i] for r in runs) for i in range(len(runs[0]))]
        table.add_row(f"[bold]{name}[/]", "median", *(f"[bold]{v:.1f}[/]" for v in medians),
                      "", end_section=True)
    console.print(table)
    console.print("(each kind's column: that kind's files alone, their own threshold)")


def _shown(report) -> str:
    """A category's standard score: normalised, or raw with FPs where it has no windows."""
    r = report["standard"]
    return f"{r.normalised:.1f}" if report.n_windows else f"{r.raw:+.2f} ({r.fp} FP rows)"


if __name__ == "__main__":
    sys.exit(main())
