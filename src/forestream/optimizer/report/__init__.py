"""Right-sizing results for people: the analysis document (:mod:`.analysis`), a terminal
table, JSON, and a self-contained HTML page (:mod:`.html`).

See :mod:`forestream.optimizer.report.analysis` for the analysis document's shape.
"""

from .analysis import (
    ALL_FINDINGS,
    RISK_WORDS,
    build_analysis,
    filter_recommendations,
    money,
    new_analysis_id,
    recommendation_table,
    sort_recommendations,
    summarize,
    summary_line,
    to_json,
    utilization_series,
    write_atomically,
)
from .html import render_html

__all__ = [
    "ALL_FINDINGS", "RISK_WORDS", "build_analysis", "filter_recommendations", "money",
    "new_analysis_id", "recommendation_table", "render_html", "sort_recommendations",
    "summarize", "summary_line", "to_json", "utilization_series", "write_atomically",
]
