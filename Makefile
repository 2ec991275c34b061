# k8s-footprint: the two commands a newcomer needs are `make up` and `make test`.
# Both create .venv and install the pinned requirements first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= dev
# A local file backend and a development passphrase, unless you have set your own.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
export PULUMI_CONFIG_PASSPHRASE ?= k8s-footprint-dev
VM_RESULTS := benchmarks/results/qemu-debian12

.PHONY: help venv check-pulumi doctor stack up preview destroy results test test-vm lint unit bench clean

help:
	@echo "make up        create the venv, then 'pulumi up' on the $(STACK) stack (libvirt, local file state)"
	@echo "make doctor    check what the $(STACK) stack's 'pulumi up' needs; prints the fix for each problem"
	@echo "make destroy   'pulumi destroy' on the $(STACK) stack"
	@echo "make results   print the stack's results as JSON"
	@echo "make test      linters, unit and kit tests, and the VM tests but the emulated aarch64 Docker cell"
	@echo "make test-vm   the VM tests on both arches (x86_64 and emulated aarch64); writes $(VM_RESULTS)"
	@echo "make bench     program scaling under mocks, and the sampler's cost beside node-exporter"

# The venv is rebuilt when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "error: Python 3.11 or newer is needed (found $$($(PYTHON) --version 2>&1)); install python3 >= 3.11" >&2; exit 1; }
	@$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || \
		{ echo "error: Python's venv module is missing: apt-get install python3-venv" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

# ---- the main job ------------------------------------------------------------------------------

check-pulumi:
	@command -v pulumi >/dev/null || { echo "error: the pulumi CLI is not installed." \
		"Install it: curl -fsSL https://get.pulumi.com | sh -s -- --version 3.272.0  (https://www.pulumi.com/docs/install/)" >&2; exit 1; }

# Everything the selected stack's `pulumi up` needs, from its own config; every problem at once.
doctor: venv
	@$(PY) -m tools.doctor --stack $(STACK)

stack: check-pulumi venv
	@mkdir -p .pulumi-state
	@pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)
	@# `stack init` writes this machine's encryption salt into the stack file; for a tracked file
	@# (Pulumi.dev.yaml) git is told to leave that local line alone, so it is never committed.
	@if git ls-files --error-unmatch Pulumi.$(STACK).yaml >/dev/null 2>&1 && \
		grep -q '^encryptionsalt:' Pulumi.$(STACK).yaml; then git update-index --skip-worktree Pulumi.$(STACK).yaml; fi

up: check-pulumi venv stack doctor
	pulumi up --stack $(STACK) $(ARGS)

preview: check-pulumi venv stack
	pulumi preview --stack $(STACK) $(ARGS)

destroy: check-pulumi venv stack
	pulumi destroy --stack $(STACK) $(ARGS)

results: check-pulumi
	@pulumi stack output --stack $(STACK) --json results

# ---- tests -------------------------------------------------------------------------------------

lint: venv
	@command -v shellcheck >/dev/null || { echo "error: shellcheck is not installed: apt-get install shellcheck" >&2; exit 1; }
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	# From the kit's folder, so shellcheck follows the files the kit sources.
	cd benchmarks/guest && shellcheck -x k8sf lib/*.sh distros/*.sh
	shellcheck tests/guest/stub.sh .ci/run
	# The workflows: security (no finding at medium or high) and structure, both offline.
	$(VENV)/bin/zizmor --offline --min-severity medium .github/workflows/
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/*.yml

unit: venv
	$(PY) -m pytest tests/unit tests/guest

# The VM tests build and cache guest images on first use (x86_64 ~2 min, arm64 ~8; they skip with
# the reason when qemu, debootstrap or root are missing). The emulated aarch64 Docker cell alone
# takes about 35 min, so only test-vm runs it. tests/libvirt starts its own libvirtd (root) and boots
# both arches through it from the provider's XML.
test: lint
	$(PY) -m pytest tests/unit tests/guest tests/libvirt tests/vm -m "not (vm_aarch64 and vm_docker)" --capture=tee-sys

test-vm: venv
	K8SF_VM_RESULTS_DIR=$(VM_RESULTS) $(PY) -m pytest tests/vm -m vm --capture=tee-sys

bench: venv
	$(PY) perf/bench_program.py
	$(PY) perf/bench_sampler.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
