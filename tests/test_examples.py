"""Every program under examples/ runs as a user would run it, and says what it promises."""

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
    out = subprocess.run([sys.executable, str(EXAMPLES[0].with_name("rcf_streaming.py"))],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    assert "t= 3000" in out and "t= 3500" in out
