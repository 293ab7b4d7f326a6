# modelops: `make demo` runs the main job, `make test` runs everything CI runs.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/.cluster/bin:$(PATH)

.PHONY: all venv system-deps lint test test-unit test-serving test-faults crd cluster-binaries \
        cluster-up cluster-down demo bench-serving bench-controller bench-retraining clean

all: test

$(BIN)/python: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "python3.11 is required"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(BIN)/python

venv: $(BIN)/python

# Debian packages the tests use: Prometheus (analysis), wrk (load), iproute2 (pod network
# namespaces), openssl (cluster certificates).
system-deps:
	@missing=""; \
	for pkg in prometheus wrk iproute2 openssl; do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: venv
	$(BIN)/ruff check operator tests benchmarks
	$(BIN)/mypy operator
	$(BIN)/lint-imports

crd: venv
	$(BIN)/modelops crd -o crds/modeldeployments.modelops.dev.yaml

cluster-binaries: venv
	$(BIN)/python -m tests.cluster binaries

cluster-up: venv system-deps
	$(BIN)/python -m tests.cluster up

cluster-down: venv
	$(BIN)/python -m tests.cluster down

test-unit: venv
	$(BIN)/pytest tests/unit

test-serving: venv
	$(BIN)/pytest tests/unit/serving tests/unit/drift tests/serving

# The controller under faults (apiserver restarts, etcd outage, leader killed, command storms).
test-faults: venv system-deps
	$(BIN)/pytest tests/e2e/test_faults.py

test: venv system-deps lint
	$(BIN)/pytest

demo: venv system-deps
	$(BIN)/python -m tests.e2e.demo

bench-serving: venv system-deps
	$(BIN)/python benchmarks/serving/run.py

# BENCH_ARGS picks parts, e.g. `make bench-controller BENCH_ARGS="--sizes 100 --skip-reaction"`.
bench-controller: venv system-deps
	$(BIN)/python -m benchmarks.controller.run $(BENCH_ARGS)

# False retraining triggers over 500 no-drift windows (derived vs fixed drift thresholds); pure, ~15 s.
bench-retraining: venv
	$(BIN)/python -m benchmarks.retraining.false_alarms

clean: cluster-down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
