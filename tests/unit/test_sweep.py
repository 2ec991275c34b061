"""memoryMiB as a list: the size dimension of the cells, and single-size stacks left as they were."""

from __future__ import annotations

import importlib
import runpy
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.cells import cell_name, expand
from components.config import ARCHES, DISTROS, address_slot, parse
from tests.conftest import ROOT, FleetMocks, Registration, install_mocks, resolve, set_stack_config
from tests.unit.test_config import NOW
from tests.unit.test_second_up import AWS, LIBVIRT, by_step, second_up, up

# The commit h-sweep started from, and the files the sweep changed that a program run touches.
PRE_SWEEP = "414d01e"
SWEEP_FILES = ("__main__.py", "components/config.py", "components/cells.py", "components/backends.py",
               "components/cost.py")


def test_a_sweep_cell_names_its_size_and_a_single_size_cell_keeps_todays_name() -> None:
    assert cell_name("x86_64", "k3s", 1, 768) == "x86_64-k3s-768m-1"
    assert cell_name("x86_64", "k3s", 1) == "x86_64-k3s-1"
    single = parse({"memoryMiB": "768", "distros": '["k3s"]', "arches": '["x86_64"]'},
                   project="k8s-footprint", stack="dev", now=NOW)
    assert [(c.name, c.memory_mib) for c in expand(single)] == [("x86_64-k3s-1", 768)]
    sweep = parse({"memoryMiB": "[1024, 512]", "distros": '["k3s"]', "arches": '["x86_64"]', "repetitions": "2",
                   "libvirtNetworkCidr": "10.9.0.0/19"}, project="k8s-footprint", stack="dev", now=NOW)
    assert [c.name for c in expand(sweep)] == ["x86_64-k3s-512m-1", "x86_64-k3s-1024m-1",
                                               "x86_64-k3s-512m-2", "x86_64-k3s-1024m-2"]


def test_sweep_slots_depend_on_the_cell_alone_and_never_collide() -> None:
    sizes = range(256, 4097, 128)
    slots = [address_slot(a, d, r, m) for a in ARCHES for d in DISTROS for r in (1, 2, 3) for m in sizes]
    assert len(set(slots)) == len(slots)
    # Single-size stacks keep the slots they had: arch-fastest through the kit's distros, then repetitions.
    assert address_slot("x86_64", "bare", 1) == 0 and address_slot("aarch64", "k3s-minimal", 2) == 27
    # The first repetition of a sweep of the usual sizes fits the default /24 (245 guest addresses).
    usual = [address_slot(a, d, 1, m) for a in ARCHES for d in DISTROS for m in (256, 512, 768, 1024, 1536)]
    assert max(usual) < 245
    dev = parse({"memoryMiB": "[512, 768, 1024, 1536]"}, project="k8s-footprint", stack="dev", now=NOW)
    assert len(expand(dev)) == 48


def test_a_sweep_on_libvirt_registers_a_domain_per_size_and_exports_the_fit(mocks: FleetMocks) -> None:
    mocks.statuses.update({"x86_64-docker-512m-1": "oom", "x86_64-k3s-512m-1": "not_ready",
                           "x86_64-k3s-1024m-1": "api_unresponsive"})
    set_stack_config({"arches": ["x86_64"], "distros": ["docker", "k3s"], "memoryMiB": [512, 1024]})
    program = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    resolve(program["results"])
    domains = {r.name: r.inputs["memory"] for r in mocks.of_type("libvirt:index/domain:Domain")}
    assert domains == {"x86_64-docker-512m-1-vm": 512, "x86_64-docker-1024m-1-vm": 1024,
                       "x86_64-k3s-512m-1-vm": 512, "x86_64-k3s-1024m-1-vm": 1024}
    addresses = [r.inputs["networkInterfaces"][0]["addresses"][0] for r in mocks.of_type("libvirt:index/domain:Domain")]
    assert len(set(addresses)) == 4
    fit = resolve(program["fit_verdicts"])
    assert fit["x86_64"]["docker"]["smallestFitMiB"] == 1024
    assert {s: v["verdict"] + "/" + v["reason"] for s, v in fit["x86_64"]["docker"]["sizes"].items()} == {
        "512": "no/oom", "1024": "fits/ok"}
    assert fit["x86_64"]["k3s"]["smallestFitMiB"] is None
    assert {s: v["reason"] for s, v in fit["x86_64"]["k3s"]["sizes"].items()} == {
        "512": "not_ready", "1024": "api_unresponsive"}
    instances = resolve(program["instances"])
    assert instances["x86_64-docker-512m-1"]["memoryMiB"] == 512


def test_a_sweep_on_aws_gets_the_instance_type_of_each_size(mocks: FleetMocks) -> None:
    set_stack_config({**AWS, "distros": ["bare"], "memoryMiB": [512, 1024, 2048]})
    program = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    resolve(program["results"])
    types = {r.name: r.inputs["instanceType"] for r in mocks.of_type("aws:ec2/instance:Instance")}
    assert types == {f"{a}-bare-{m}m-1-vm": t for a, row in (("x86_64", ("t3.nano", "t3.micro", "t3.small")),
                                                             ("aarch64", ("t4g.nano", "t4g.micro", "t4g.small")))
                     for m, t in zip((512, 1024, 2048), row, strict=True)}
    fit = resolve(program["fit_verdicts"])
    assert {a: fit[a]["bare"]["smallestFitMiB"] for a in fit} == {"x86_64": 512, "aarch64": 512}


def test_a_size_without_an_aws_type_stops_before_any_resource(mocks: FleetMocks) -> None:
    set_stack_config({**AWS, "distros": ["bare"], "memoryMiB": [768, 1024]})
    with pytest.raises(Exception, match="memoryMiB 768 has no x86_64 AWS instance type"):
        runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    assert mocks.resources == []


def test_the_hosts_fit_takes_the_hosts_real_memtotal(mocks: FleetMocks) -> None:
    hosts = [{"name": "pi", "address": "192.0.2.10", "user": "pi", "arch": "aarch64"}]
    set_stack_config({"backend": "hosts", "hosts": hosts, "distros": ["bare"]}, {"sshPrivateKey": "PRIVATE-KEY-TEST"})
    program = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    resolve(program["results"])
    fit = resolve(program["fit_verdicts"])
    assert list(fit["aarch64"]["bare"]["sizes"]) == ["957"]  # the fake kit's MemTotal


@pytest.fixture
def pre_sweep_tree(tmp_path: Path) -> Path:
    """This tree with the sweep's files as they were before it: every other change stays in both runs,
    so what differs between the two runs is the sweep alone."""
    tree = tmp_path / "pre-sweep"
    for part in ("components", "benchmarks/guest", "benchmarks/schema"):
        shutil.copytree(ROOT / part, tree / part)
    shutil.copy(ROOT / "__main__.py", tree / "__main__.py")
    for path in SWEEP_FILES:
        old = subprocess.run(["git", "-C", str(ROOT), "show", f"{PRE_SWEEP}:{path}"], capture_output=True, text=True)
        if old.returncode != 0:
            pytest.skip(f"commit {PRE_SWEEP} is not in this checkout: {old.stderr.strip()}")
        (tree / path).write_text(old.stdout)
    (tree / "components" / "fit.py").unlink()
    return tree


@pytest.fixture
def other_tree() -> Iterator[list[Path]]:
    """Runs a program from another tree: its `components` package is imported fresh, and this
    tree's modules are put back afterwards (tests hold references to them)."""
    saved = {k: v for k, v in sys.modules.items() if k == "components" or k.startswith("components.")}
    trees: list[Path] = []
    yield trees
    for k in [k for k in sys.modules if k == "components" or k.startswith("components.")]:
        del sys.modules[k]
    sys.modules.update(saved)
    for tree in trees:
        sys.path.remove(str(tree))


def up_in(tree: Path, trees: list[Path], config: dict[str, Any]) -> dict[str, Registration]:
    for k in [k for k in sys.modules if k == "components" or k.startswith("components.")]:
        del sys.modules[k]
    sys.path.insert(0, str(tree))
    trees.append(tree)
    # The same kit folder in both runs: its path is part of the kit copy's input.
    commands: Any = importlib.import_module("components.commands")
    commands.KIT_DIR = ROOT / "benchmarks" / "guest"
    m = install_mocks(FleetMocks())
    set_stack_config(config)
    program = runpy.run_path(str(tree / "__main__.py"), run_name="__main__")
    resolve(program["results"])
    assert sys.modules["components.config"].__file__ == str(tree / "components" / "config.py")
    return dict(m.registrations)


@pytest.mark.parametrize("config", [LIBVIRT, {**LIBVIRT, "memoryMiB": "768", "repetitions": "2"}, AWS],
                         ids=["libvirt", "libvirt-768-x2", "aws"])
def test_a_single_size_stack_is_the_same_before_and_after_the_sweep(
        pre_sweep_tree: Path, other_tree: list[Path], config: dict[str, Any]) -> None:
    before = up_in(pre_sweep_tree, other_tree, config)
    after = up_in(ROOT, other_tree, config)
    assert set(after) == set(before)
    steps = second_up(before, after)
    assert by_step(steps) == {"same": set(steps)}, {n: d.why for n, d in steps.items() if d.step != "same"}


def test_the_second_up_of_an_unchanged_sweep_changes_nothing() -> None:
    sweep = {**LIBVIRT, "memoryMiB": "[512, 1024]"}
    steps = second_up(up(sweep), up(sweep))
    assert by_step(steps) == {"same": set(steps)}
    assert any("-512m-1" in n for n in steps)
