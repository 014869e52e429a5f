"""Every program under examples/ runs as a user would run it, and says what it promises."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(example):
    proc = subprocess.run([sys.executable, str(example)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()


def test_streaming_example_reports_both_incidents():
    """The spike at 3000 and the level shift from 3500 are each reported within a few
    readings of their start (a shift of 12 sigma may need a reading or two to tell apart
    from a spike), and nothing else is."""
    out = subprocess.run([sys.executable, str(EXAMPLES[0].with_name("rcf_streaming.py"))],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    reported = [int(t) for t in re.findall(r"^t=\s*(\d+)", out, re.MULTILINE)]
    assert any(3000 <= t <= 3003 for t in reported), out
    assert any(3500 <= t <= 3505 for t in reported), out
    assert all(3000 <= t <= 3003 or 3500 <= t <= 3600 for t in reported), out
