"""memoryMiB as a list: the size dimension of the cells, and single-size stacks left as they were."""

from __future__ import annotations

import runpy
from typing import Any

import pytest

from components.cells import cell_name, expand
from components.config import ARCHES, DISTROS, address_slot, parse
from tests.conftest import ROOT, FleetMocks, resolve, set_stack_config
from tests.unit.test_config import NOW
from tests.unit.test_second_up import AWS, LIBVIRT, by_step, second_up, up


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


def pre_sweep_names(config: dict[str, Any]) -> set[tuple[str, str]]:
    """The (type, name) of every resource a single-size stack registered before the sweep existed,
    written from that version's naming rule: cell `<arch>-<distro>-<n>`, and each resource named after
    its cell (components at the cell's name; children with a suffix)."""
    aws = config.get("backend") == "aws"
    reps = int(config.get("repetitions", "1"))
    names: set[tuple[str, str]] = {("tls:index/privateKey:PrivateKey", "ssh-key")}
    if aws:
        names |= {("k8s-footprint:index:AwsAccess", "aws"), ("aws:ec2/keyPair:KeyPair", "aws-key"),
                  ("aws:ec2/securityGroup:SecurityGroup", "aws-ssh")}
        machine = {("k8s-footprint:index:AwsInstance", ""), ("aws:ec2/instance:Instance", "-vm")}
    else:
        names |= {("k8s-footprint:index:LibvirtPlatform", "libvirt"), ("pulumi:providers:libvirt", "libvirt-provider"),
                  ("libvirt:index/network:Network", "libvirt-net")}
        names |= {("libvirt:index/volume:Volume", f"libvirt-base-{a}") for a in config["arches"]}
        machine = {("k8s-footprint:index:LibvirtInstance", ""), ("libvirt:index/volume:Volume", "-disk"),
                   ("libvirt:index/cloudInitDisk:CloudInitDisk", "-cidata"), ("libvirt:index/domain:Domain", "-vm")}
    per_cell = machine | {("k8s-footprint:index:DistroBootstrap", ""), ("command:remote:CopyToRemote", "-kit"),
                          ("command:remote:Command", "-bootstrap"), ("k8s-footprint:index:WorkloadBenchmark", ""),
                          ("command:remote:Command", "-benchmark")}
    for a in config["arches"]:
        for d in config["distros"]:
            for r in range(1, reps + 1):
                names |= {(typ, f"{a}-{d}-{r}{suffix}") for typ, suffix in per_cell}
    return names


@pytest.mark.parametrize("config", [LIBVIRT, {**LIBVIRT, "memoryMiB": "768", "repetitions": "2"}, AWS],
                         ids=["libvirt", "libvirt-768-x2", "aws"])
def test_a_single_size_stack_keeps_the_names_it_had_before_the_sweep(config: dict[str, Any]) -> None:
    """Cell names name every resource, so a rename would replace every existing stack's machines."""
    registered = {(r.typ, r.name) for r in up(config).values()}
    assert registered == pre_sweep_names(config)


def test_the_second_up_of_an_unchanged_sweep_changes_nothing() -> None:
    sweep = {**LIBVIRT, "memoryMiB": "[512, 1024]"}
    steps = second_up(up(sweep), up(sweep))
    assert by_step(steps) == {"same": set(steps)}
    assert any("-512m-1" in n for n in steps)
