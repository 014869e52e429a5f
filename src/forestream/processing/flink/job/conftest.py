"""pytest collects doctests from ``src``: the modules here import PyFlink, which only the
Flink virtual environment has, so they are collected there only."""

import importlib.util

collect_ignore_glob = [] if importlib.util.find_spec("pyflink") else ["*.py"]
