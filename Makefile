# forestream — the two commands a user types: `make quickstart` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TFSTAMP := $(VENV)/.installed-tensorflow

.PHONY: quickstart test lint bench nab server clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet -e '.[test,sklearn,plot]'
	$(PY) -m forestream.rcf.warmup  # compile the RCF kernels into numba's cache, once
	touch $(STAMP)

# TensorFlow (~1.6 GB) only for the test suite, not the quickstart.
$(TFSTAMP): $(STAMP)
	$(PIP) install --quiet -e '.[test,sklearn,plot,tensorflow]'
	touch $(TFSTAMP)

quickstart: $(STAMP)
	$(VENV)/bin/forestream quickstart

test: $(STAMP) $(TFSTAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 --dist loadfile src tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

bench: $(STAMP)  # every benchmark, peers side by side (several minutes; see benchmarks/RESULTS.md)
	$(PIP) install --quiet -e '.[bench]'
	$(PY) benchmarks/rcf_speed.py
	$(PY) benchmarks/nab_rcf.py
	$(PY) benchmarks/streams_throughput.py
	$(PY) benchmarks/processing_throughput.py
	$(PY) benchmarks/serving_latency.py
	$(PY) benchmarks/rightsizing_eval.py

server: $(STAMP)  # the forestream server on http://127.0.0.1:4567 (data in ./.forestream)
	$(VENV)/bin/forestream server

nab: $(STAMP)
	$(VENV)/bin/forestream rcf nab --data ../shared/datasets/nab --out .nab-results

clean:
	rm -rf $(VENV) .nab-results .pytest_cache build src/*.egg-info
