"""``forestream quickstart``: the main job on the embedded default, end to end.

Until the streaming server lands, the quickstart streams generated sensor data straight
through one :class:`ThresholdedDetector` per machine and sensor (as the stream
processing application will do, keyed by machine), in time order, and reports what it
finds against the incidents it injected.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from forestream.demo import DAY, SENSORS, event_metrics, generate_machine
from forestream.rcf import ThresholdedDetector

ALERT_GRADE = 0.3  # grades at or above this are alerts (score >= 0.3 * log2(sample size))
TICK = 48  # rows per streaming step (4 hours of 5-minute samples)


def run_quickstart(console: Console, machines: int = 4, days: int = 8,
                   out_dir: str | Path = "quickstart-output", seed: int = 0) -> dict:
    """Run the demo; return the summary numbers (also printed)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    fleet = [generate_machine(f"machine-{m}", days * DAY, seed + m) for m in range(machines)]
    rows = days * DAY
    detectors = {(d.machine, s): ThresholdedDetector(random_seed=seed + i)
                 for i, d in enumerate(fleet) for s in SENSORS}
    grades = {key: np.zeros(rows) for key in detectors}
    scores = {key: np.zeros(rows) for key in detectors}
    console.rule("[bold]forestream quickstart[/] — streaming anomaly detection")
    console.print(f"{machines} machines × {len(SENSORS)} sensors × {rows:,} readings "
                  f"({days} days of 5-minute samples); one Random Cut Forest detector per "
                  f"sensor; alerts at grade ≥ {ALERT_GRADE}\n")
    log = (out_dir / "anomalies.log").open("w")
    started = time.perf_counter()
    with Progress(TextColumn("streaming"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("readings"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("", total=rows * len(detectors))
        for start in range(0, rows, TICK):
            for data in fleet:
                for sensor in SENSORS:
                    key = (data.machine, sensor)
                    chunk = data.values[sensor][start : start + TICK]
                    for d in detectors[key].process_batch(chunk):
                        grades[key][d.index], scores[key][d.index] = d.grade, d.score
                        if d.grade >= ALERT_GRADE:
                            line = _describe(data.machine, sensor, d)
                            bar.console.print(line)
                            log.write(line + "\n")
                    bar.advance(task, len(chunk))
    elapsed = time.perf_counter() - started
    log.close()
    return _summarise(console, fleet, grades, scores, elapsed, out_dir)


def _describe(machine: str, sensor: str, d) -> str:
    day, minute = divmod(d.index * 5, 24 * 60)
    when = "this reading" if d.relative_index == 0 else f"{-d.relative_index} readings earlier"
    expected = d.expected_values[d.dimension] if d.expected_values is not None else float("nan")
    return (f"[red]ANOMALY[/] day {day} {minute // 60:02d}:{minute % 60:02d}  {machine:<10} "
            f"{sensor:<12} value {d.values[0]:9.2f}  expected ≈ {expected:9.2f}  "
            f"grade {d.grade:.2f}  (caused by {when})")


def _summarise(console, fleet, grades, scores, elapsed, out_dir) -> dict:
    table = Table(title="Detection against the injected incidents")
    for col in ("incident kind", "injected", "found", "recall"):
        table.add_column(col, justify="left" if col == "incident kind" else "right")
    per_kind: dict[str, list[int]] = {}
    totals = np.zeros(4, dtype=int)
    for data in fleet:
        for sensor in SENSORS:
            flags = grades[(data.machine, sensor)] >= ALERT_GRADE
            totals += event_metrics(flags, data.truth(sensor))
            for inc in data.incidents:
                if inc.sensor == sensor:
                    hit = flags[inc.start : min(len(flags), inc.end + 13)].any()
                    per_kind.setdefault(inc.kind, [0, 0])
                    per_kind[inc.kind][0] += 1
                    per_kind[inc.kind][1] += int(hit)
    for kind, (n, hit) in sorted(per_kind.items()):
        table.add_row(kind, str(n), str(hit), f"{hit / n:.0%}")
    found, incidents, true_flags, flags = (int(v) for v in totals)
    readings = sum(len(g) for g in grades.values())
    summary = {
        "incidents": incidents, "found": found, "recall": found / max(incidents, 1),
        "alerts": flags, "precision": true_flags / max(flags, 1),
        "readings": readings, "seconds": elapsed, "readings_per_second": readings / elapsed,
    }
    console.print()
    console.print(table)
    console.print(
        f"recall [bold]{summary['recall']:.0%}[/] ({found}/{incidents} incidents), "
        f"precision [bold]{summary['precision']:.0%}[/] ({true_flags}/{flags} alerts inside "
        f"an incident or within an hour after it)\n"
        f"{readings:,} readings in {elapsed:.1f} s = [bold]{summary['readings_per_second']:,.0f}"
        f"[/] readings/s; mean latency per {TICK}-reading step "
        f"{1000 * elapsed / (readings / TICK):.2f} ms")
    for data in fleet:
        path = out_dir / f"{data.machine}.png"
        _plot_machine(path, data, grades, scores)
    console.print(f"plots and the anomaly log are in [cyan]{out_dir}/[/]")
    console.print("\n[bold]Next[/]: score your own data with "
                  "[cyan]forestream rcf score FILE.csv --plot out.png[/], or measure the "
                  "detector on NAB with [cyan]make nab[/]. See docs/rcf.md.")
    return summary


def _plot_machine(path: Path, data, grades, scores) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(SENSORS), 1, sharex=True, figsize=(13, 7.5))
    for ax, sensor in zip(axes, SENSORS, strict=True):
        key = (data.machine, sensor)
        values = data.values[sensor]
        x = np.arange(len(values))
        truth = data.truth(sensor)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], truth.astype(int), [0]])))
        for s, e in zip(edges[::2], edges[1::2], strict=True):
            ax.axvspan(s, e, color="#ffbf00", alpha=0.3, lw=0)
        ax.plot(x, values, lw=0.6, color="#1f5f8b")
        flagged = grades[key] >= ALERT_GRADE
        ax.scatter(x[flagged], values[flagged], color="#d62728", s=22, zorder=3)
        twin = ax.twinx()
        twin.plot(x, scores[key], lw=0.5, color="#888888", alpha=0.7)
        twin.set_ylabel("score", color="#888888")
        ax.set_ylabel(sensor)
    axes[0].set_title(f"{data.machine}: readings (blue), RCF score (grey), alerts (red), "
                      "injected incidents (shaded)")
    axes[-1].set_xlabel("reading (5-minute samples)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
