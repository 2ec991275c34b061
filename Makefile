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
SWEEP_RESULTS := benchmarks/results/sweep
UP_EVENTS = .pulumi-state/events/$(STACK)-up.jsonl

.PHONY: pulumi-tools test-e2e help venv check-pulumi doctor stack up preview destroy config output results report test test-vm sweep-vm lint unit bench clean

help:
	@echo "Every target acts on the stack STACK=$(STACK) (make up STACK=quick), with state in .pulumi-state/"
	@echo "and the passphrase in PULUMI_CONFIG_PASSPHRASE (default k8s-footprint-dev). '. ./env.sh' sets the same"
	@echo "for plain pulumi commands."
	@echo ""
	@echo "make up        make doctor, then 'pulumi up' on the stack (ARGS=... passes flags, e.g. ARGS=--yes),"
	@echo "               then a run folder results/<stack>-<runId>-<UTC time>/ (never deleted by make)"
	@echo "make doctor    check what the stack's 'pulumi up' needs, print the fix for each problem, and the plan"
	@echo "make preview   'pulumi preview' on the stack"
	@echo "make destroy   'pulumi destroy' on the stack"
	@echo "make config    'pulumi config' on the stack, e.g. make config ARGS='set k8s-footprint:repetitions 3'"
	@echo "make output    'pulumi stack output' on the stack, e.g. make output ARGS='--json summary'"
	@echo "make results   print every cell's result as JSON, recovered from the stack's state"
	@echo "make report    redraw the newest run folder's report in results/ (RUN=results/<folder> for another)"
	@echo "make test      linters, unit and kit tests, real libvirt, and the VM tests but the emulated aarch64 Docker cell"
	@echo "make test-vm   the VM tests on both arches (x86_64 and emulated aarch64); writes $(VM_RESULTS)"
	@echo "make sweep-vm  bare and Docker+MariaDB in qemu guests at 256-1024 MiB (x86_64) and 256/384 (aarch64),"
	@echo "               two at a time, about 2 h; resumes cell by cell; writes $(SWEEP_RESULTS) (ARGS=--sizes ...)"
	@echo "make lint      ruff, mypy, shellcheck and the workflow linters"
	@echo "make unit      the unit and kit tests alone (no root, no VMs)"
	@echo "make bench     program scaling under mocks, and the sampler's cost beside node-exporter"
	@echo "make venv      create .venv with the pinned requirements"
	@echo "make clean     remove .venv and the tools' caches (never .pulumi-state/ or results)"
	@echo "make pulumi-tools  build the Pulumi CLI, Python host and providers with go, for the e2e tests (cached)"
	@echo "make test-e2e  real 'pulumi up'/'destroy' with the tools from make pulumi-tools, on qemu guests"

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

# After every up, failed or not, a run folder in results/ (fleet/runfolder.py): results/ is never
# deleted by any target. The engine's events name the error of each cell that produced nothing.
up: check-pulumi venv stack doctor
	@mkdir -p $(dir $(UP_EVENTS)) && rm -f $(UP_EVENTS)
	@started=$$(date +%s); pulumi up --stack $(STACK) --event-log $(UP_EVENTS) $(ARGS); rc=$$?; \
		$(PY) -m fleet.runfolder write --stack $(STACK) --events $(UP_EVENTS) --started $$started \
		|| [ $$rc -ne 0 ] || rc=1; exit $$rc

preview: check-pulumi venv stack
	pulumi preview --stack $(STACK) $(ARGS)

destroy: check-pulumi venv stack
	pulumi destroy --stack $(STACK) $(ARGS)

config: check-pulumi venv stack
	@pulumi config --stack $(STACK) $(ARGS)

output: check-pulumi
	@pulumi stack output --stack $(STACK) $(ARGS)

# Every cell's result, recovered from the state: a failed update records no new outputs.
results: check-pulumi venv
	@$(PY) -m fleet.runfolder results --stack $(STACK) --events $(UP_EVENTS)

# Redraw the newest run folder's report (or RUN=results/<folder>).
report: venv
	@$(PY) -m fleet.runfolder report --stack $(STACK) $(RUN)

# ---- tests -------------------------------------------------------------------------------------

lint: venv
	@command -v shellcheck >/dev/null || { echo "error: shellcheck is not installed: apt-get install shellcheck" >&2; exit 1; }
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	# From the kit's folder, so shellcheck follows the files the kit sources.
	cd benchmarks/guest && shellcheck -x k8sf lib/*.sh distros/*.sh
	shellcheck tests/guest/fakes.sh tests/vm/apiserver_standin.sh .ci/run env.sh
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

# The memory sweep in real VMs (tests/vm/sweep.py), not part of make test: about 2 h. Each
# finished cell is kept under $(SWEEP_RESULTS)/cells and skipped by the next run of the same kit,
# so run it again to resume. ARGS: --sizes 'x86_64=256,512;aarch64=384' --distros bare --jobs 1.
sweep-vm: venv
	$(PY) -m tests.vm.sweep run --out $(SWEEP_RESULTS) $(ARGS)

# The e2e tests' toolchain, built from Go modules into ~/.cache/k8s-footprint/pulumi-tools (not
# part of make test: a cold build takes longer than CI can spare; see tools/pulumi/VERSIONS.md).
pulumi-tools:
	bash tools/pulumi/build.sh

# The real engine on a qemu guest of the VM harness; skips, saying why, without the tools.
test-e2e: venv
	K8SF_E2E_LOG_DIR=benchmarks/results/e2e $(PY) -m pytest tests/e2e -m e2e --capture=tee-sys

bench: venv
	$(PY) perf/bench_program.py
	$(PY) perf/bench_sampler.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
