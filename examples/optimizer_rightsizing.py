"""Right-size a fleet: metric files in, findings, savings and an HTML report out.

Generates 40 synthetic EC2 instances with two weeks of 5-minute CPU and memory
utilization (idle, steady, daily and weekly cycles, bursts, memory leaks, workloads
that moved, GPU boxes) in the documented input shape (one CSV per instance plus
resources.json), reads them back as a user's own files would be read, recommends with
forestream's policy, and writes the analysis as JSON and as a self-contained HTML
report with a utilization chart per instance.

Run: .venv/bin/python examples/optimizer_rightsizing.py [OUTPUT_DIRECTORY]
"""

import sys
import tempfile
from collections import Counter
from pathlib import Path

from forestream.optimizer import load_catalog, read_metrics, write_metrics
from forestream.optimizer.recommend import recommend_many
from forestream.optimizer.report import (
    build_analysis,
    money,
    render_html,
    summary_line,
    to_json,
    write_atomically,
)
from forestream.optimizer.synthetic import make_fleet

out = Path(sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="rightsizing-"))
catalog = load_catalog("us-east-1")

# 1. Metric files, as an agent, a CloudWatch export or Prometheus would give them.
fleet = make_fleet(40, seed=7, days=15, train_days=14, catalog=catalog)
write_metrics(fleet.histories(), out / "metrics")  # web-1.csv, ..., resources.json

# 2. Read them back and recommend (the same as `forestream optimizer recommend DIR`).
histories = read_metrics(out / "metrics")
recommendations = recommend_many(histories, catalog, lookback_days=14, cpu_percentile=99.5)

# 3. Keep the result as an analysis and render it.
analysis = build_analysis(recommendations, histories, catalog=catalog, region="us-east-1",
                          source={"path": str(out / "metrics")},
                          preferences={"lookback_days": 14, "cpu_percentile": 99.5})
write_atomically(out / "analysis.json", to_json(analysis))
write_atomically(out / "report.html", render_html(analysis))

print(summary_line(analysis["summary"]))
print("workload classes:", dict(Counter(r.workload_class for r in recommendations)))
print("largest savings:")
for item in analysis["summary"]["top_savings"]:
    print(f"  {item['resource_id']}: {item['current']} -> {item['recommended']} "
          f"saves {money(item['savings_monthly'])}/month ({item['savings_pct']:.0f}%)")
truth = dict(zip((r.resource_id for r in fleet.resources), fleet.finding, strict=True))
agree = sum(r.finding == truth[r.resource_id] for r in recommendations)
print(f"finding agrees with the generator's truth for {agree} of {len(recommendations)} "
      "(the truth is what the held-back week needed)")
print(f"analysis: {out / 'analysis.json'}")
print(f"HTML report: {out / 'report.html'}")
