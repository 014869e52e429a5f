"""Reports of a right-sizing analysis: summary, terminal table, JSON and the HTML page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from rich.console import Console

from forestream.optimizer.catalog import load_catalog
from forestream.optimizer.recommend import recommend_many
from forestream.optimizer.report import (
    build_analysis,
    filter_recommendations,
    recommendation_table,
    render_html,
    sort_recommendations,
    summarize,
    summary_line,
    to_json,
    utilization_series,
    write_atomically,
)
from forestream.optimizer.synthetic import make_fleet
from forestream.optimizer.types import Resource, UtilizationHistory

START = 1_700_006_400  # a Monday, 00:00 UTC
HOSTILE = '<script>alert("x")</script>&'


def steady(resource: Resource, days: float, metrics: dict[str, float]) -> UtilizationHistory:
    ts = START + 300 * np.arange(int(days * 288))
    return UtilizationHistory(resource, ts, {k: np.full(ts.size, v) for k, v in metrics.items()})


@pytest.fixture(scope="module")
def catalog():
    return load_catalog("us-east-1")


@pytest.fixture(scope="module")
def fleet(catalog):
    """Synthetic instances plus one resource of each other shape a report must handle:
    a hostile id, a stream, too little data."""
    histories = make_fleet(8, seed=5, days=3, train_days=2, catalog=catalog).histories()
    histories.append(steady(Resource(HOSTILE, "instance", {"instance_type": "m5.2xlarge"},
                                     {"team": HOSTILE}), 2, {"cpu_pct": 6.0, "mem_pct": 15.0}))
    histories.append(steady(Resource("stream/clicks", "stream", {"shards": 4}), 2,
                            {"bytes_in": 200_000.0, "records_in": 100.0}))
    histories.append(steady(Resource("new-host", "instance", {"instance_type": "m5.large"}),
                            0.5, {"cpu_pct": 30.0}))
    recs = recommend_many(histories, catalog)
    return histories, recs, build_analysis(recs, histories, catalog=catalog,
                                           source={"path": f"/srv/{HOSTILE}"},
                                           preferences={"lookback_days": 14})


def test_summary_counts_every_finding_and_adds_up_positive_savings(fleet):
    _, recs, analysis = fleet
    summary = analysis["summary"]
    assert summary["resources"] == len(recs) == sum(summary["findings"].values())
    assert summary["findings"]["InsufficientData"] == 1
    best = [r.options[0] for r in recs if r.options and r.current.monthly_price is not None]
    assert summary["savings_monthly"] == pytest.approx(
        sum(o.savings_monthly for o in best if o.savings_monthly > 0), abs=0.01)
    assert summary["extra_cost_monthly"] == pytest.approx(
        -sum(o.savings_monthly for o in best if o.savings_monthly < 0), abs=0.01)
    top = [t["savings_monthly"] for t in summary["top_savings"]]
    assert top == sorted(top, reverse=True) and 0 < len(top) <= 5
    line = summary_line(summary)
    assert line.startswith(f"{len(recs)} resources:") and "/month" in line and "/year" in line


def test_series_are_hourly_peaks_of_the_lookback_as_percent_of_current_capacity(catalog):
    ts = START + 300 * np.arange(20 * 288)  # 20 days; the lookback is the last 14
    cpu = np.where(np.arange(ts.size) % 12 == 5, 40.0, 10.0)  # one 5-minute peak per hour
    history = UtilizationHistory(Resource("web-1", "instance", {"instance_type": "m5.2xlarge"}),
                                 ts, {"cpu_pct": cpu, "mem_pct": np.full(ts.size, 20.0)})
    [rec] = recommend_many([history], catalog)
    series = utilization_series(history, rec.to_dict(), catalog=catalog)
    assert series["step"] == 3600 and series["start"] > ts[0]
    assert len(series["lines"]["cpu"]) == 14 * 24
    assert set(series["lines"]["cpu"]) == {40.0} and set(series["lines"]["memory"]) == {20.0}
    # The recommended option's capacity, on the scale where the current one is 100.
    now, best = catalog[rec.current.name], catalog[rec.options[0].name]
    assert series["recommended_capacity"]["cpu"] == pytest.approx(
        100 * best.vcpu * best.cpu_speed / (now.vcpu * now.cpu_speed), abs=0.1)
    assert series["recommended_capacity"]["memory"] == pytest.approx(
        100 * best.memory_gib / now.memory_gib, abs=0.1)
    assert series["recommended_capacity"]["cpu"] < 100  # over-provisioned: sized down


def test_series_leave_gaps_where_nothing_was_measured(catalog):
    history = steady(Resource("gappy", "instance", {"instance_type": "m5.large"}), 3,
                     {"cpu_pct": 25.0})
    history.metrics["cpu_pct"][288:300] = np.nan  # one hour missing on day two
    [rec] = recommend_many([history], catalog)
    cpu = utilization_series(history, rec.to_dict())["lines"]["cpu"]
    assert cpu[24] is None and cpu[23] == cpu[25] == 25.0


def test_html_report_is_self_contained_and_escapes_user_strings(fleet):
    _, recs, analysis = fleet
    page = render_html(analysis)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page)  # nothing to fetch
    assert "@import" not in page and "url(" not in page
    checker = TagBalance()
    checker.feed(page)
    assert checker.stack == [], checker.stack


def test_html_report_has_summary_and_one_section_with_a_chart_per_resource(fleet):
    _, recs, analysis = fleet
    page = render_html(analysis)
    assert "Fleet summary" in page and "Largest savings" in page
    sections = re.findall(r'<section id="r-\d+">', page)
    assert len(sections) == len(recs)
    charts = page.count('<svg viewBox="0 0')
    assert charts == len(analysis["series"]) >= len(recs) - 1  # all but the 12-hour one
    assert page.count("current capacity</text>") == charts
    assert "recommended CPU" in page and "shard throughput" in page
    for rec in recs:  # every finding and option is in the page
        assert f">{rec.finding}</span>" in page
        for option in rec.options:
            assert option.name in page


def test_html_report_can_cap_sections_but_lists_every_resource(fleet):
    _, recs, analysis = fleet
    page = render_html(analysis, max_sections=3)
    assert len(re.findall(r'<section id="r-\d+">', page)) == 3
    assert f"{len(recs) - 3} more resources" in page
    assert page.count('<a href="#r-') >= len(recs)


def test_json_round_trip_renders_the_same_report(fleet, tmp_path):
    _, _, analysis = fleet
    path = write_atomically(tmp_path / "analysis.json", to_json(analysis))
    again = json.loads(path.read_text())
    assert again == json.loads(json.dumps(analysis))
    assert render_html(again) == render_html(analysis)
    assert [p.name for p in tmp_path.iterdir()] == ["analysis.json"]  # no temporary left


def test_table_shows_the_columns_and_rows_asked_for(fleet):
    _, recs, analysis = fleet
    over = filter_recommendations(analysis["recommendations"], finding="Overprovisioned")
    assert over and all(r["finding"] == "Overprovisioned" for r in over)
    ranked = sort_recommendations(analysis["recommendations"])
    savings = [r["options"][0]["savings_monthly"] for r in ranked if r["options"]]
    assert savings == sorted(savings, reverse=True)
    console = Console(width=250, record=True)
    console.print(recommendation_table(ranked))
    text = console.export_text()
    for column in ("resource", "kind", "class", "finding", "reasons", "current",
                   "recommended", "risk", "savings/month"):
        assert column in text
    assert "InsufficientData" in text and "hours of data" in text
    assert text.index(ranked[0]["resource_id"]) < text.index(ranked[-1]["resource_id"])


def test_summarize_handles_an_empty_fleet_and_unpriced_resources():
    empty = summarize([])
    assert empty["resources"] == 0 and empty["savings_monthly"] == 0
    unpriced = {"resource_id": "endpoint/x/a", "kind": "endpoint", "finding": "Optimized",
                "current": {"name": "2 workers", "monthly_price": None}, "options": []}
    assert summarize([unpriced])["unpriced"] == 1
    assert "savings $0.00/month" in summary_line(empty)


class TagBalance(HTMLParser):
    """Checks that every opened element is closed in order (void elements aside)."""

    VOID = {"meta", "br", "img", "input", "link", "hr", "line", "rect", "path"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        pass

    def handle_endtag(self, tag):
        if tag in self.VOID:
            return
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()
