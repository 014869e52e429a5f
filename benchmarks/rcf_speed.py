"""Streaming Random Cut Forest speed: forestream vs krcf, jrcf and rrcf, side by side.

Every peer runs the same forest: 100 trees, sample size 256, shingle size 8, 1-D input,
over a seeded noisy sine with a few spikes. Table 1 (stream) times score-then-learn of
every point: forestream's batch fast path and its per-record Python loops, krcf (AWS Rust
core) and jrcf (AWS Java core) per-record loops, and rrcf (pure Python) on a short stretch.
Table 2 (score only) trains once, then times scoring the same 8-D points without learning
(its forests take the pre-shingled windows as dimensions=8, shingle_size=1 points).

Each row runs --repeats times (stream rows on a fresh forest; rrcf continues its one
filled forest; score-only rows rescore the same trained forest) and reports the MEDIAN
points/s, with the ratios "forestream batch / this" (and "forestream per-point / this").
Not timed: forest construction, numba compilation (forestream is warmed up on separate
small forests first), JVM start-up and JIT warm-up (a separate 2,000-point jrcf forest per
mode), rrcf's initial fill of 256 points. Per-point loops pay one Python call (and, for
krcf/jrcf, a binding crossing) per record; the batch path pays one call for all points.
jrcf runs last: the JVM's lingering thread pools can slow numba's thread wake-ups.
Table 3 (detector) times forestream's ThresholdedDetector with its defaults (two forests
of 100 trees, sample 256, shingle 4, the likelihood grader) over the same 1-D series:
``grade_batch`` (scores and grades) and ``process_batch`` (descriptors, anomalies
explained), the batch scoring of one series that issue 15 asks to stay >= 10k points/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table

TREES, SAMPLE, SHINGLE, SEED, OUTPUT_AFTER = 100, 256, 8, 1, 64
FS = "forestream"
FS_BATCH, FS_POINT = "batch score_and_update(x)", "loop score_and_update([v])"
console = Console(width=None if sys.stdout.isatty() else 140)


def say(msg: str, style: str | None = None) -> None:
    console.print(msg, style=style, markup=False, highlight=False)


@dataclass
class Row:
    impl: str
    mode: str
    points: int
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)


def make_series(n: int, seed: int = 7) -> np.ndarray:
    """Noisy sine (period 50) with a few +-3..6 spikes after the first sample fills."""
    rng = np.random.default_rng(seed)
    x = np.sin(2 * np.pi * np.arange(n) / 50) + 0.1 * rng.standard_normal(n)
    k = max(1, n // 2000)
    at = rng.choice(np.arange(min(SAMPLE, n - 1), n), size=min(k, n // 2), replace=False)
    x[at] += rng.choice([-1.0, 1.0], size=len(at)) * rng.uniform(3, 6, size=len(at))
    return x


def windows(x: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.lib.stride_tricks.sliding_window_view(x, SHINGLE))


def bench(impl, mode, n, repeats, setup, run) -> Row:
    """Time ``run(setup())`` ``repeats`` times; only ``run`` is inside the clock."""
    row = Row(impl, mode, n)
    for _ in range(repeats):
        obj = setup()
        t0 = time.perf_counter()
        run(obj)
        row.rates.append(n / (time.perf_counter() - t0))
    rates = ", ".join(f"{r:,.0f}" for r in row.rates)
    say(f"  {impl:<11} {mode:<44} points/s per repeat: {rates}", "dim")
    return row


# ------------------------------------------------------------------------ stream peers
def fs_forest(dimensions=1, shingle=SHINGLE):
    from forestream.rcf import RandomCutForest

    return RandomCutForest(dimensions=dimensions, shingle_size=shingle, num_trees=TREES,
                           sample_size=SAMPLE, output_after=OUTPUT_AFTER, random_seed=SEED)


def fs_warm_up(x: np.ndarray) -> None:
    """Compile (or load from cache) every numba path used below, on throwaway forests."""
    fs_forest().score_and_update(x[:600])
    f = fs_forest()
    for v in x[:300].tolist():
        f.score_and_update([v])
        f.score(v)
        f.update(v)
    fs_score_batch(fs_trained(windows(x[:600])), windows(x[:600]))


def peer_forestream(x, repeats) -> list[Row]:
    xs, n = x.tolist(), len(x)

    def loop_sau(f):
        for v in xs:
            f.score_and_update([v])

    def loop_split(f):
        for v in xs:
            f.score(v)
            f.update(v)

    return [bench(FS, FS_BATCH, n, repeats, fs_forest, lambda f: f.score_and_update(x)),
            bench(FS, FS_POINT, n, repeats, fs_forest, loop_sau),
            bench(FS, "loop score(v); update(v)", n, repeats, fs_forest, loop_split)]


def peer_detector(x, repeats) -> list[Row]:
    from forestream.rcf import ThresholdedDetector

    def make():
        return ThresholdedDetector(random_seed=SEED)

    return [bench(FS, "ThresholdedDetector.grade_batch(x)", len(x), repeats, make,
                  lambda d: d.grade_batch(x)),
            bench(FS, "ThresholdedDetector.process_batch(x)", len(x), repeats, make,
                  lambda d: d.process_batch(x))]


def krcf_forest(parallel=None, dimensions=1, shingle=SHINGLE):
    import krcf

    opts = {"dimensions": dimensions, "shingle_size": shingle, "num_trees": TREES,
            "sample_size": SAMPLE, "random_seed": SEED, "output_after": OUTPUT_AFTER}
    if parallel is not None:
        opts["parallel_execution_enabled"] = parallel
    return krcf.RandomCutForest(opts)


def peer_krcf(x, repeats) -> list[Row]:
    import krcf  # noqa: F401  (fail early, before any timing)

    default = krcf_forest().options().get("parallel_execution_enabled")
    say(f"  krcf options() parallel_execution_enabled default: {default!r} (unset: "
        "sequential; the 'parallel on' row sets it True)", "dim")
    xs = x.tolist()

    def loop(f):
        for v in xs:
            f.score([v])
            f.update([v])

    return [bench("krcf", "loop score([v]); update([v]), parallel off", len(x), repeats,
                  krcf_forest, loop),
            bench("krcf", "loop score([v]); update([v]), parallel on", len(x), repeats,
                  lambda: krcf_forest(parallel=True), loop)]


def peer_jrcf(x, repeats) -> list[Row]:
    import jrcf  # starts the JVM
    from jrcf.rcf import RandomCutForestModel

    say(f"  jrcf {jrcf.__version__}: JVM started at import; each mode is warmed up on a "
        "separate forest with 2,000 points (untimed)", "dim")
    xs = x.tolist()

    def make(parallel):
        return lambda: RandomCutForestModel(
            dimensions=1, shingle_size=SHINGLE, num_trees=TREES, sample_size=SAMPLE,
            output_after=OUTPUT_AFTER, random_seed=SEED, parallel_execution_enabled=parallel)

    def loop(f, values=xs):
        for v in values:
            f.score([v])
            f.update([v])

    pool = make(True)().get_thread_pool_size()
    say(f"  jrcf parallel on: default thread pool size {pool} (available processors - 1)", "dim")
    rows = []
    for parallel in (False, True):
        warm = make_series(2000, seed=99).tolist()
        loop(make(parallel)(), warm)  # JIT warm-up, untimed, separate forest
        rows.append(bench("jrcf", f"loop score([v]); update([v]), parallel "
                          f"{'on' if parallel else 'off'}", len(x), repeats, make(parallel),
                          loop))
    return rows


def peer_rrcf(x, repeats, n_points) -> list[Row]:
    import rrcf

    pts = windows(x)  # too short a series raises IndexError below: reported as a skip
    forest = [rrcf.RCTree(random_state=SEED + i) for i in range(TREES)]
    say(f"  rrcf: filling {TREES} trees with {SAMPLE} points (untimed); each repeat then "
        f"times the next {n_points} points on the same forest", "dim")
    for i in range(SAMPLE):
        for tree in forest:
            tree.insert_point(pts[i], index=i)
    start = [SAMPLE]

    def stretch(_):  # the documented streaming loop: forget the oldest, insert, codisp
        lo = start[0]
        for i in range(lo, lo + n_points):
            score = 0.0
            for tree in forest:
                if len(tree.leaves) > SAMPLE:
                    tree.forget_point(i - SAMPLE)
                tree.insert_point(pts[i], index=i)
                score += tree.codisp(i) / TREES
        start[0] = lo + n_points

    return [bench("rrcf", "loop forget/insert/codisp per tree", n_points, repeats,
                  lambda: None, stretch)]


# -------------------------------------------------------------------- score-only peers
def fs_trained(train_pts):
    f = fs_forest(dimensions=SHINGLE, shingle=1)
    f.score_and_update(train_pts)
    return f


def fs_score_batch(f, pts) -> np.ndarray:
    """Public ``score_points`` if this forestream has it, else the internal batch kernel."""
    if hasattr(f, "score_points"):
        return f.score_points(pts)
    from forestream.rcf import _kernels

    out = np.zeros((f.num_trees, len(pts)))
    _kernels.score_and_update(pts, f.points_seen, f.time_decay, True, False, out,
                              *f._state.kernel_args())
    return out.mean(axis=0)


def score_only(x_train, x_test, repeats, skip_krcf) -> tuple[list[Row], list[str]]:
    train, test = windows(x_train), windows(x_test)
    n, rows, notes = len(test), [], []
    f = fs_trained(train)
    mode = ("batch score_points(P)" if hasattr(f, "score_points")
            else "batch internal kernel, want_update=False")
    rows.append(bench(FS, mode, n, repeats, lambda: f,
                      lambda g: fs_score_batch(g, test)))
    rows.append(bench(FS, "loop score(p) (public)", n, repeats, lambda: f,
                      lambda g: [g.score(p) for p in test]))
    batch = fs_score_batch(f, test)
    loop = np.array([f.score(p) for p in test])
    notes.append(f"forestream {mode} == loop score(p): {np.array_equal(batch, loop)} "
                 f"(bit-identical), allclose: {np.allclose(batch, loop)}")
    if not skip_krcf:
        k = krcf_forest(dimensions=SHINGLE, shingle=1)
        for p in train:
            k.update(p)
        rows.append(bench("krcf", "loop score(p), parallel off", n, repeats, lambda: k,
                          lambda g: [g.score(p) for p in test]))
        ks = np.array([k.score(p) for p in test])
        r = np.corrcoef(batch, ks)[0, 1]
        notes.append(f"score means forestream {batch.mean():.3f} / krcf {ks.mean():.3f}, "
                     f"Pearson r = {r:.3f}")
    return rows, notes


# ---------------------------------------------------------------------------- output
def machine_info() -> str:
    import numba

    pkgs = ["forestream", "numpy", "numba", "krcf", "jrcf", "jpype1", "rrcf"]
    git = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True,
                         text=True, cwd=os.path.dirname(os.path.abspath(__file__)))
    return (f"machine: nproc={len(os.sched_getaffinity(0))} (os.cpu_count={os.cpu_count()}), "
            f"numba threads={numba.config.NUMBA_NUM_THREADS}, {platform.machine()}, "
            f"{platform.system()} {platform.release()}, load average at start "
            f"(1, 5, 15 min): {os.getloadavg()}\n"
            f"python {platform.python_version()} ({platform.python_implementation()})\n"
            + ", ".join(f"{p} {version(p)}" for p in pkgs)
            + f" (git {git.stdout.strip() or 'unknown'})")


def version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def render(title, rows, ref, per_point=None, markdown=False) -> None:
    cols = ["implementation", "mode", "points", "median points/s", "ratio (fs batch ÷ this)"]
    caption = f"fs batch = {ref.impl} {ref.mode}"
    if per_point is not None:
        cols.append("ratio (fs per-point ÷ this)")
        caption += f"; fs per-point = {per_point.impl} {per_point.mode}"
    body = []
    for r in rows:
        cells = [r.impl, r.mode, f"{r.points:,}", f"{r.median:,.0f}",
                 f"{ref.median / r.median:.2f}"]
        if per_point is not None:
            cells.append(f"{per_point.median / r.median:.2f}")
        body.append(cells)
    table = Table(title=title, caption=escape(caption))
    for i, c in enumerate(cols):
        table.add_column(c, justify="left" if i < 2 else "right")
    for cells in body:
        table.add_row(*map(escape, cells))
    console.print(table)
    if markdown:
        lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |" for cells in body]
        say(f"\n**{title}** ({caption})\n\n" + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--points", type=int, default=20_000, help="stream length (default 20000)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per peer; median reported")
    ap.add_argument("--rrcf-points", type=int, default=300,
                    help="points timed per rrcf repeat, after filling 256 (default 300)")
    ap.add_argument("--skip-jrcf", action="store_true", help="do not run jrcf (JVM)")
    ap.add_argument("--skip-rrcf", action="store_true", help="do not run rrcf (slow)")
    ap.add_argument("--markdown", action="store_true", help="also print tables as markdown")
    args = ap.parse_args(argv)
    if args.points < 1000 or args.repeats < 1:
        ap.error("--points must be >= 1000 and --repeats >= 1")

    say(machine_info())
    say(f"config: {TREES} trees, sample size {SAMPLE}, shingle {SHINGLE}, 1-D input, "
        f"{args.points:,} points, {args.repeats} repeats, seed {SEED}, output_after "
        f"{OUTPUT_AFTER}; per-point loops iterate Python floats; run order: forestream, krcf, "
        "score-only table, rrcf, jrcf (the JVM last: its leftover threads can disturb others)")
    x = make_series(args.points)
    fs_warm_up(make_series(1000, seed=3))

    rows, skipped = peer_forestream(x, args.repeats), {}

    def guarded(name, run) -> list[Row]:  # a peer that cannot run is reported, not fatal
        try:
            return run()
        except Exception as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
            say(f"note: {name} skipped: {skipped[name]}", "yellow")
            return []

    rows += guarded("krcf", lambda: peer_krcf(x, args.repeats))
    # Everything else runs before the JVM exists: jrcf's parallel forests leave thread pools
    # behind, which were seen to slow the wake-up of numba's threads in later calls.
    x_test = make_series(args.points + SHINGLE - 1, seed=8)
    srows, notes = score_only(x, x_test, args.repeats, "krcf" in skipped)
    if not args.skip_rrcf:
        rows += guarded("rrcf", lambda: peer_rrcf(x, args.repeats, args.rrcf_points))
    if not args.skip_jrcf:
        rows += guarded("jrcf", lambda: peer_jrcf(x, args.repeats))
    render("RCF streaming: score then update every point", rows, rows[0], rows[1],
           args.markdown)
    render("RCF score only (fitted forest, no update; 8-D pre-shingled points)", srows,
           srows[0], markdown=args.markdown)
    drows = peer_detector(x, args.repeats)
    render("forestream ThresholdedDetector (defaults), one 1-D series in one batch", drows,
           drows[0], markdown=args.markdown)
    for note in notes:
        say(f"note: {note}")
    for name, why in skipped.items():
        say(f"note: {name} was skipped ({why})")
    say(f"load average at the end (1, 5, 15 min): {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
