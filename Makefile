# forestream — the two commands a user types: `make quickstart` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed
TFSTAMP := $(VENV)/.installed-tensorflow
JSCLIENT := tests/clients/js/node_modules/.package-lock.json
FLINKJAR := build/flink/forestream-flink-connector.jar
CONSOLE_NPM := src/forestream/server/console/frontend
CONSOLE_ASSETS := src/forestream/server/console/static/vendor/.built

.PHONY: quickstart quickstart-flink test lint bench nab server cluster flink clean console-assets chromium iproute2

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(VENV)/bin/python pyproject.toml
	$(PIP) install --quiet -e '.[test,sklearn,plot]'
	$(PY) -m forestream.rcf.warmup  # compile the RCF kernels into numba's cache, once
	$(PY) -c 'from forestream.server.aws.kinesis import warm_up_put_records as w; w()'  # and PutRecords'
	touch $(STAMP)

# TensorFlow (~1.6 GB) only for the test suite, not the quickstart.
$(TFSTAMP): $(STAMP)
	$(PIP) install --quiet -e '.[test,sklearn,plot,tensorflow]'
	touch $(TFSTAMP)

# The AWS SDK for JavaScript, for tests/clients (a real HTTP/2 client); skipped without npm.
$(JSCLIENT): tests/clients/js/package-lock.json
	@if command -v npm >/dev/null; then \
		cd tests/clients/js && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: tests/clients will skip the JavaScript SDK"; fi

# The web console's htmx and uPlot, from npm (pinned by the lock), copied where the server
# serves them; without npm the console works without charts and live updates.
$(CONSOLE_ASSETS): $(CONSOLE_NPM)/package-lock.json $(CONSOLE_NPM)/build.mjs
	@if command -v npm >/dev/null; then \
		cd $(CONSOLE_NPM) && npm ci --no-audit --no-fund --loglevel=error && \
		npm run --silent build && touch ../static/vendor/.built; \
	else echo "npm not found: the console will have no charts and no live updates"; fi

console-assets: $(CONSOLE_ASSETS)

# Debian's Chromium for the console's browser tests (installed as root when missing;
# without it those tests skip, saying why).
chromium:
	@if ! command -v chromium >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			 apt-get install -y -qq --no-install-recommends chromium >/dev/null) || \
			echo "chromium could not be installed: the console's browser tests will skip"; \
		else echo "chromium not found (install it as root): browser tests will skip"; fi; \
	fi

# iproute2 (`ip netns`) for the JetStream network-partition test (installed as root when
# missing; without it that test skips, saying why).
iproute2:
	@if ! command -v ip >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			 apt-get install -y -qq --no-install-recommends iproute2 >/dev/null) || \
			echo "iproute2 could not be installed: the partition test will skip"; \
		else echo "ip not found (install iproute2 as root): the partition test will skip"; fi; \
	fi

# Apache Flink (--runtime flink): apache-flink in a venv of its own (.venv-flink; its pins
# of apache-beam/pandas/pyarrow conflict with ours) and forestream's Kinesis-API connector
# compiled with javac against Flink's jars; skipped without a JDK (the Flink tests skip).
$(FLINKJAR): $(STAMP) $(wildcard java/flink-connector/src/forestream/flink/*.java)
	@if command -v javac >/dev/null; then \
		$(PY) -m forestream.processing.flink && touch $@; \
	else echo "javac not found: tests/processing/flink will skip Apache Flink"; fi

flink: $(FLINKJAR)

quickstart: $(STAMP)
	$(VENV)/bin/forestream quickstart

quickstart-flink: $(STAMP) $(FLINKJAR)  # the same application as a job on a local Apache Flink cluster
	$(VENV)/bin/forestream quickstart --runtime flink

test: $(STAMP) $(TFSTAMP) $(JSCLIENT) $(FLINKJAR) $(CONSOLE_ASSETS) chromium iproute2
	$(VENV)/bin/ruff check src tests benchmarks examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 --dist loadfile --durations=25 src tests  # the slowest tests listed: CI must stay under 25 minutes

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

server: $(STAMP) $(CONSOLE_ASSETS)  # the forestream server on http://127.0.0.1:4567 (data in ./.forestream)
	$(VENV)/bin/forestream server

cluster: $(STAMP)  # 3 JetStream nodes + 2 forestream front ends on loopback, until Ctrl-C
	$(PIP) install --quiet -e '.[nats]'
	$(PY) -m forestream.streams.jetstream.local_cluster

nab: $(STAMP)
	$(VENV)/bin/forestream rcf nab --data ../shared/datasets/nab --out .nab-results

clean:
	rm -rf $(VENV) .venv-flink .nab-results .pytest_cache build src/*.egg-info tests/clients/js/node_modules \
		$(CONSOLE_NPM)/node_modules src/forestream/server/console/static/vendor
