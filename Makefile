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

.PHONY: help venv check-pulumi check-libvirt stack up preview destroy results test test-vm lint unit bench clean \
	pulumi-tools test-e2e

help:
	@echo "make up        create the venv, then 'pulumi up' on the $(STACK) stack (libvirt, local file state)"
	@echo "make destroy   'pulumi destroy' on the $(STACK) stack"
	@echo "make results   print the stack's results as JSON"
	@echo "make test      linters, unit and kit tests, and the VM tests but the emulated aarch64 Docker cell"
	@echo "make test-vm   the VM tests on both arches (x86_64 and emulated aarch64); writes $(VM_RESULTS)"
	@echo "make bench     program scaling under mocks, and the sampler's cost beside node-exporter"
	@echo "make pulumi-tools  build the Pulumi CLI, Python host and providers with go, for the e2e tests (cached)"
	@echo "make test-e2e  real 'pulumi up'/'destroy' with the tools from make pulumi-tools, on qemu guests"

# The venv is rebuilt when a requirements file changes.
$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "error: Python 3.10 or newer is needed (found $$($(PYTHON) --version 2>&1)); install python3 >= 3.10" >&2; exit 1; }
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
		"Install it: curl -fsSL https://get.pulumi.com | sh  (https://www.pulumi.com/docs/install/)" >&2; exit 1; }

# Only stacks on the libvirt backend (the default) need libvirt here.
check-libvirt:
	@if grep -Eq '^\s*k8s-footprint:backend:\s*"?(aws|hosts)' Pulumi.$(STACK).yaml 2>/dev/null; then exit 0; fi; \
	command -v virsh >/dev/null || { echo "error: libvirt is not installed. On Debian/Ubuntu:" \
		"sudo apt-get install libvirt-daemon-system libvirt-clients qemu-system-x86 qemu-system-arm qemu-efi-aarch64" \
		"&& sudo adduser $$(id -un) libvirt (then log in again)" >&2; exit 1; }; \
	virsh -c qemu:///system version >/dev/null 2>&1 || { echo "error: cannot reach libvirt at qemu:///system." \
		"Start it (sudo systemctl enable --now libvirtd) and make sure you are in the libvirt group" >&2; exit 1; }; \
	virsh -c qemu:///system pool-info default >/dev/null 2>&1 || { echo "error: libvirt has no 'default' storage" \
		"pool. Create it: virsh -c qemu:///system pool-define-as default dir --target /var/lib/libvirt/images &&" \
		"virsh -c qemu:///system pool-build default && virsh -c qemu:///system pool-start default &&" \
		"virsh -c qemu:///system pool-autostart default  (or set k8s-footprint:libvirtPool)" >&2; exit 1; }

stack: check-pulumi venv
	@mkdir -p .pulumi-state
	@pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

up: check-pulumi check-libvirt venv stack
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

unit: venv
	$(PY) -m pytest tests/unit tests/guest

# The VM tests build and cache guest images on first use (x86_64 ~2 min, arm64 ~8; they skip with
# the reason when qemu, debootstrap or root are missing). The emulated aarch64 Docker cell alone
# takes about 35 min, so only test-vm runs it.
test: lint
	$(PY) -m pytest tests/unit tests/guest tests/vm -m "not (vm_aarch64 and vm_docker)" --capture=tee-sys

test-vm: venv
	K8SF_VM_RESULTS_DIR=$(VM_RESULTS) $(PY) -m pytest tests/vm -m vm --capture=tee-sys

# The e2e tests' toolchain, built from Go modules into ~/.cache/k8s-footprint/pulumi-tools (not
# part of make test: a cold build takes longer than CI can spare; see tools/pulumi/VERSIONS.md).
pulumi-tools:
	bash tools/pulumi/build.sh

# The real engine on a qemu guest of the VM harness; skips, saying why, without the tools.
test-e2e: venv
	K8SF_E2E_LOG_DIR=benchmarks/results/e2e $(PY) -m pytest tests/e2e -m e2e --capture=tee-sys

bench: venv
	$(PY) benchmarks/bench_program.py
	$(PY) benchmarks/bench_sampler.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
