"""``forestream rcf ...``: Random Cut Forest scoring of files and the NAB benchmark."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

console = Console()


@click.group()
def rcf() -> None:
    """Random Cut Forest anomaly detection: score files, run benchmarks.

    `rcf score` scores every row of a CSV file (streaming, as RANDOM_CUT_FOREST does, or
    in batch) with grades, causes and expected values; `rcf nab` scores a detector on
    the Numenta Anomaly Benchmark. Scoring a live stream: an application (`forestream
    apps --help`), or `forestream quickstart`.

    \b
    forestream rcf score machine.csv --plot machine.png
    forestream rcf score machine.csv --mode batch --columns cpu,latency
    forestream rcf nab --data ../shared/datasets/nab --out nab-results
    """


@rcf.command("score")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the scored CSV [default: FILE.scored.csv].")
@click.option("--columns", "-c", help="Comma-separated value columns [default: all but time].")
@click.option("--mode", type=click.Choice(["streaming", "batch"]), default="streaming",
              show_default=True,
              help="streaming: each row scored before it is learned, graded and explained; "
                   "batch: one forest learns the whole file, then scores every row.")
@click.option("--shingle-size", default=4, show_default=True, type=click.IntRange(1, 1000),
              help="Consecutive rows per point (pattern length the forest sees).")
@click.option("--num-trees", default=100, show_default=True, type=click.IntRange(1, 10000),
              help="Trees in the forest (more: steadier scores, slower).")
@click.option("--sample-size", default=256, show_default=True, type=click.IntRange(2, 1000000),
              help="Points each tree keeps (its memory of the recent past).")
@click.option("--seed", default=1, show_default=True, type=int, help="Random seed.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Also draw a PNG of the series, the score and the flagged rows.")
@click.option("--top", default=10, show_default=True, help="Anomalies to list on screen.")
def rcf_score(csv_file, out, columns, mode, shingle_size, num_trees, sample_size, seed, plot,
              top):
    """Score every row of CSV_FILE (a header row; an optional time column).

    Writes the input with anomaly_score, grade (0 ordinary, up to 1), the cause (which
    column, which row of the shingle) and the expected value of each anomaly.

    \b
    Example:
      forestream rcf score machine.csv --plot machine.png
    """
    import numpy as np

    from forestream.eval.csv_scoring import (
        ScoredTable,
        read_numeric_csv,
        score_table,
        write_scored_csv,
    )

    wanted = [c.strip() for c in columns.split(",")] if columns else None
    try:
        stamps, names, values = read_numeric_csv(csv_file, wanted)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    started = time.perf_counter()
    scores, grades, explanations = score_table(values, mode, shingle_size, num_trees,
                                               sample_size, seed, progress=True)
    elapsed = time.perf_counter() - started
    out = out or csv_file.with_suffix(".scored.csv")
    table = ScoredTable(stamps, names, values, scores, grades, explanations)
    write_scored_csv(out, table)
    flagged = np.flatnonzero(grades > 0)
    console.print(f"[bold]{len(values):,}[/] rows scored in {elapsed:.1f} s "
                  f"({len(values) / max(elapsed, 1e-9):,.0f} rows/s); "
                  f"[bold red]{len(flagged)}[/] anomalies; written to [cyan]{out}[/]")
    if len(flagged):
        shown = Table(title=f"Strongest anomalies (top {top})")
        for col in ("row", "time", "grade", "score", "cause", "expected"):
            shown.add_column(col, justify="right" if col in ("row", "grade", "score") else "left")
        for i in flagged[np.argsort(-grades[flagged])][:top]:
            e = explanations[i] or {}
            shown.add_row(str(i), stamps[i] if stamps else "", f"{grades[i]:.3f}",
                          f"{scores[i]:.3f}", e.get("cause", ""), e.get("expected", ""))
        console.print(shown)
    if plot:
        from forestream.eval.plot import plot_scored_series

        plot_scored_series(plot, values, scores, grades, names, title=csv_file.name)
        console.print(f"plot written to [cyan]{plot}[/]")


@rcf.command("nab")
@click.option("--data", "data_dir", required=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="A NAB-layout directory: data/<category>/<file>.csv and "
                   "labels/combined_windows.json.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write results in NAB's format under OUT/<detector>/.")
@click.option("--detector", default="forestream", show_default=True,
              help="Detector to run (forestream, rcf_kinesis) — or the name of results "
                   "already in OUT to score without running anything (with --score-only).")
@click.option("--score-only", is_flag=True,
              help="Do not run a detector: score the results already under OUT/<detector>/.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def rcf_nab(data_dir, out_dir, detector, score_only, as_json):
    """Run a detector over a NAB corpus and print its three profile scores.

    \b
    Example:
      forestream rcf nab --data ../shared/datasets/nab --out nab-results
    """
    from forestream.eval import DETECTORS, load_corpus, read_results, run_detector, score_corpus

    try:
        corpus = load_corpus(data_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.UsageError(str(exc)) from None
    if score_only:
        if out_dir is None:
            raise click.UsageError("--score-only needs --out, where the results are")
        results = read_results(out_dir, detector, corpus)
    else:
        if detector not in DETECTORS:
            raise click.UsageError(f"unknown detector {detector!r}; choose from "
                                   f"{sorted(DETECTORS)}")
        results = run_detector(DETECTORS[detector], corpus, out_dir=out_dir,
                               detector_name=detector, progress=not as_json)
    report = score_corpus(results, corpus)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        console.print(report.table(title=f"NAB — {detector} on {data_dir} "
                                         f"({report.n_files} files)"))
