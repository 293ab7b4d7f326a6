# modelops: `make demo` runs the main job, `make test` runs everything CI runs.
SHELL := /bin/bash
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/.cluster/bin:$(PATH)

.PHONY: all venv system-deps lint test test-unit test-serving test-faults crd cluster-binaries \
        cluster-up cluster-down demo bench-serving bench-controller bench-retraining clean tools manifests \
        helm-check docs image-deps image test-image ghz grpc-stubs

all: test

$(BIN)/python: pyproject.toml
	@command -v $(PY) >/dev/null || { echo "python3.11 is required"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(BIN)/python

venv: $(BIN)/python

# Installs the Debian packages named in $(1) that are missing.
define apt_install
	@missing=""; \
	for pkg in $(1); do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

# Debian packages the tests use: Prometheus (analysis; promtool checks the alert rules), wrk (load),
# iproute2 (node network namespaces), openssl (cluster certificates), lua5.1 (the Argo CD health check,
# which Argo CD runs in gopher-lua, a Lua 5.1); the real nodes' containerd, runc, CNI plugins, nftables
# (kube-proxy's mode) and iptables (the kubelet's chains), gcc and umoci (the sandbox image, built here).
system-deps:
	$(call apt_install,prometheus wrk iproute2 openssl lua5.1 containerd runc containernetworking-plugins \
	  nftables iptables gcc libc6-dev umoci)

# Debian packages the images need (README "Images"): mmdebstrap makes the base root filesystem,
# buildah builds the Containerfile without a daemon, umoci and runc run the result in tests/image.
image-deps:
	$(call apt_install,mmdebstrap buildah umoci runc)

lint: venv
	$(BIN)/ruff check operator tests benchmarks image devcluster demo
	$(BIN)/mypy operator
	$(BIN)/lint-imports

crd: venv
	$(BIN)/modelops crd -o crds/modeldeployments.modelops.dev.yaml

cluster-binaries: venv
	$(BIN)/python -m devcluster binaries

# helm and the kstatus probe (tests/gitops/kstatus), built from their Go modules and cached.
tools: venv
	$(BIN)/python -m devcluster.build tools

# install.yaml and the Helm chart's copies of the CRD, alerts and dashboard, from manifests/.
manifests: venv
	$(BIN)/python -m tests.gitops.render

helm-check: tools
	.cluster/bin/helm lint --strict charts/modelops
	.cluster/bin/helm template modelops charts/modelops --namespace modelops-system --include-crds >/dev/null

# docs/api.md (from the pydantic models) and docs/events.md (from the state machine's Event reasons).
docs: venv
	$(BIN)/python -m tests.gitops.apidocs

cluster-up: venv system-deps
	$(BIN)/python -m devcluster up

cluster-down: venv
	$(BIN)/python -m devcluster down

test-unit: venv
	$(BIN)/pytest tests/unit

test-serving: venv
	$(BIN)/pytest tests/unit/serving tests/unit/drift tests/serving

# Every test marked `faults`: the controller under faults (apiserver restarts, etcd outage, leader
# killed, command storms), a real node's faults (a serving container killed, the kubelet stopped, the
# leader pod deleted, a 17 s API outage) and the long retraining scenarios: a minute or two each, kept
# out of `make test` and its 20 minutes.
test-faults: venv system-deps image
	$(BIN)/pytest -m faults tests/e2e --durations=15

# The e2e tests run every pod from the images (make image; imported into the real node's containerd).
test: venv system-deps lint tools helm-check image
	$(BIN)/pytest --ignore=tests/image -m "not faults" --durations=15

# OCI archives of the operator, server and trainer images and the server-testing image in dist/,
# loadable with `kind load image-archive dist/<archive>`. Buildah builds only the dependencies (cached
# under ~/.cache/modelops/image); the project's code is one layer on top (image/layer.py). Each
# step's time is printed, and a table of them at the end.
image: venv image-deps
	image/build.sh

test-image: image
	$(BIN)/pytest tests/image

demo: venv system-deps image
	$(BIN)/python -m demo

# ghz (gRPC load generator) for the serving benchmark's gRPC rows, built from its Go module and
# cached next to the cluster binaries.
GHZ_VERSION := v0.120.0
GHZ := $(HOME)/.cache/modelops/bin/ghz-$(GHZ_VERSION)

$(GHZ):
	@mkdir -p $(dir $(GHZ))
	tmp=$$(mktemp -d) && GOFLAGS=-buildvcs=false GOBIN=$$tmp go install github.com/bojand/ghz/cmd/ghz@$(GHZ_VERSION) \
	  && mv $$tmp/ghz $(GHZ) && rmdir $$tmp

ghz: $(GHZ)

bench-serving: venv system-deps ghz
	$(BIN)/python benchmarks/serving/run.py

# Regenerate the OIP v2 gRPC stubs (checked in) from operator/modelops/serving/grpc_v2/grpc_predict_v2.proto.
grpc-stubs: venv
	$(BIN)/python -m grpc_tools.protoc -I operator --python_out=operator --pyi_out=operator \
	  --grpc_python_out=operator operator/modelops/serving/grpc_v2/grpc_predict_v2.proto

# BENCH_ARGS picks parts, e.g. `make bench-controller BENCH_ARGS="--sizes 100 --skip-reaction"`. The control
# plane's own floor under the bulk apply (the same objects, no operator):
# `.venv/bin/python -m benchmarks.controller.floor --size 1000`. What one child write costs the API server,
# a create against a server-side apply: `.venv/bin/python -m benchmarks.controller.writes`.
bench-controller: venv system-deps
	$(BIN)/python -m benchmarks.controller.run $(BENCH_ARGS)

# False retraining triggers over 500 no-drift windows (derived vs fixed drift thresholds; pure, ~15 s),
# then the loop timed on the local control plane: drift onset -> trigger -> Job done -> promoted (~2 min).
bench-retraining: venv system-deps image
	$(BIN)/python -m benchmarks.retraining.false_alarms
	$(BIN)/python -m benchmarks.retraining.loop $(BENCH_ARGS)

clean: cluster-down
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
