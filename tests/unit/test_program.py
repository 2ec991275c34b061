"""The whole program under Pulumi's mocks, run as the engine runs it (runpy on __main__.py)."""

from __future__ import annotations

import json
import re
import runpy
from datetime import UTC, datetime
from typing import Any

import pytest

from components.config import ConfigError, native_arch
from tests.conftest import ROOT, FleetMocks, resolve, set_stack_config

SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret value
CI_CONFIG = {"backend": "aws", "sshAllowedCidrs": ["203.0.113.0/24"], "ttlHours": "3"}
HOSTS: list[dict[str, Any]] = [
    {"name": f"pi-{d}", "address": f"192.0.2.{i + 10}", "user": "pi", "arch": "aarch64", "port": 2222}
    for i, d in enumerate(["bare", "docker", "k3s"])
]


def run_program(values: dict[str, Any], secrets: dict[str, str] | None = None) -> dict[str, Any]:
    """Run __main__.py; resolving every result also waits for every resource to be registered."""
    set_stack_config(values, secrets)
    program = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    program["resolved_results"] = resolve(program["results"])
    return program


def counts(mocks: FleetMocks) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in mocks.resources:
        out[r.typ] = out.get(r.typ, 0) + 1
    return out


def cell_of(resource_name: str) -> str:
    return resource_name.rsplit("-", 1)[0]


def connection_of(resource: Any) -> dict[str, Any]:
    """The SSH connection of a remote command; it must reach the provider as a secret (it holds the key)."""
    wrapped = resource.inputs["connection"]
    assert wrapped.get(SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270", f"{resource.name}: connection is not secret"
    return dict(wrapped["value"])


def assert_commands_reach_their_own_cell(mocks: FleetMocks, machine_suffix: str) -> None:
    remote = [r for r in mocks.resources if r.typ.startswith("command:remote:")]
    assert remote
    for r in remote:
        connection = connection_of(r)
        assert connection["host"] == mocks.addresses[f"{cell_of(r.name)}-{machine_suffix}"], r.name
        assert connection["privateKey"] == "PRIVATE-KEY-TEST"
        # No secret is ever part of a command string (a failing command prints its text).
        assert "PRIVATE-KEY-TEST" not in json.dumps({k: r.inputs.get(k) for k in ("create", "delete", "triggers")})


def test_dev_stack_creates_a_libvirt_fleet_of_twelve_cells(mocks: FleetMocks) -> None:
    program = run_program({"backend": "libvirt", "arches": ["x86_64", "aarch64"], "repetitions": "1"})
    results = program["resolved_results"]
    assert counts(mocks) == {
        "tls:index/privateKey:PrivateKey": 1,
        "k8s-footprint:index:LibvirtPlatform": 1, "pulumi:providers:libvirt": 1,
        "libvirt:index/network:Network": 1, "libvirt:index/volume:Volume": 2 + 12,
        "k8s-footprint:index:LibvirtInstance": 12, "libvirt:index/cloudInitDisk:CloudInitDisk": 12,
        "libvirt:index/domain:Domain": 12,
        "k8s-footprint:index:DistroBootstrap": 12, "command:remote:CopyToRemote": 12,
        "k8s-footprint:index:WorkloadBenchmark": 12, "command:remote:Command": 24,
    }
    assert sorted(results) == sorted(f"{a}-{d}-1" for a in ("x86_64", "aarch64")
                                     for d in ("bare", "docker", "k3s", "k0s", "microk8s", "microk8s-noha"))
    assert all(r["cell"] == cell and r["status"] == "ok" for cell, r in results.items())
    assert_commands_reach_their_own_cell(mocks, "vm")


def test_libvirt_guests_have_1_gib_one_vcpu_and_emulated_arm_arguments(mocks: FleetMocks) -> None:
    run_program({"distros": ["bare"], "memoryMiB": "1024"})
    domains = {d.name: d.inputs for d in mocks.of_type("libvirt:index/domain:Domain")}
    assert set(domains) == {"x86_64-bare-1-vm", "aarch64-bare-1-vm"}
    for inputs in domains.values():
        assert inputs["memory"] == 1024 and inputs["vcpu"] == 1
        assert inputs["networkInterfaces"][0]["waitForLease"] is True
        assert inputs["consoles"][0] == {"type": "pty", "targetPort": "0", "targetType": "serial"}
        assert "firmware" not in inputs and "nvram" not in inputs
    foreign = "aarch64" if native_arch() != "aarch64" else "x86_64"
    emulated = domains[f"{foreign}-bare-1-vm"]
    assert emulated["arch"] == foreign and emulated["type"] == "qemu" and emulated["cpu"] == {"mode": "maximum"}
    arm = domains["aarch64-bare-1-vm"]
    assert arm["machine"] == "virt"
    native = domains[f"{native_arch()}-bare-1-vm"]
    assert native["type"] == "kvm"
    cidata = mocks.of_type("libvirt:index/cloudInitDisk:CloudInitDisk")[0].inputs
    assert cidata["userData"].startswith("#cloud-config\n")
    assert "ssh-ed25519 AAAAC3NzaTEST k8sf" in cidata["userData"] and '"swapoff"' in cidata["userData"]
    overlays = [v.inputs for v in mocks.of_type("libvirt:index/volume:Volume") if "baseVolumeId" in v.inputs]
    assert len(overlays) == 2 and all(v["size"] == 20 * 1024**3 for v in overlays)


def test_libvirt_accel_tcg_emulates_the_hosts_own_arch_too(mocks: FleetMocks) -> None:
    """libvirtAccel tcg: a host without working KVM (a CI runner without nested KVM) gets a qemu
    domain with -cpu max for its own arch; host-passthrough needs KVM."""
    run_program({"distros": ["bare"], "libvirtAccel": "tcg"})
    domains = {d.name: d.inputs for d in mocks.of_type("libvirt:index/domain:Domain")}
    assert set(domains) == {"x86_64-bare-1-vm", "aarch64-bare-1-vm"}
    for inputs in domains.values():
        assert inputs["type"] == "qemu" and inputs["cpu"] == {"mode": "maximum"}, inputs
    native = domains[f"{native_arch()}-bare-1-vm"]
    assert native["arch"] == native_arch()


def test_ci_stack_creates_locked_down_tagged_aws_instances(mocks: FleetMocks) -> None:
    program = run_program(CI_CONFIG)
    results = program["resolved_results"]
    assert len(results) == 12
    assert counts(mocks) == {
        "tls:index/privateKey:PrivateKey": 1, "k8s-footprint:index:AwsAccess": 1,
        "aws:ec2/keyPair:KeyPair": 1, "aws:ec2/securityGroup:SecurityGroup": 1,
        "k8s-footprint:index:AwsInstance": 12, "aws:ec2/instance:Instance": 12,
        "k8s-footprint:index:DistroBootstrap": 12, "command:remote:CopyToRemote": 12,
        "k8s-footprint:index:WorkloadBenchmark": 12, "command:remote:Command": 24,
    }
    # AMIs from Canonical's public SSM parameter, per arch.
    params = sorted(c.args["name"] for c in mocks.calls if c.token == "aws:ssm/getParameter:getParameter")
    assert params == sorted(
        [f"/aws/service/canonical/ubuntu/server/24.04/stable/current/{a}/hvm/ebs-gp3/ami-id" for a in ("amd64",) * 6]
        + [f"/aws/service/canonical/ubuntu/server/24.04/stable/current/{a}/hvm/ebs-gp3/ami-id" for a in ("arm64",) * 6])
    instances = {i.name: i.inputs for i in mocks.of_type("aws:ec2/instance:Instance")}
    for name, inputs in instances.items():
        arch = "aarch64" if name.startswith("aarch64") else "x86_64"
        assert inputs["instanceType"] == {"aarch64": "t4g.micro", "x86_64": "t3.micro"}[arch]
        assert inputs["ami"] == {"aarch64": "ami-arm64", "x86_64": "ami-amd64"}[arch]
        assert inputs["metadataOptions"]["httpTokens"] == "required"
        assert inputs["rootBlockDevice"] == {"deleteOnTermination": True, "encrypted": True, "volumeSize": 20,
                                             "volumeType": "gp3"}
        assert inputs["tags"]["k8s-footprint:cell"] == cell_of(name)
        assert inputs["volumeTags"] == inputs["tags"]
        assert "instanceMarketOptions" not in inputs
    sg = mocks.of_type("aws:ec2/securityGroup:SecurityGroup")[0].inputs
    assert [(r["fromPort"], r["toPort"], r["cidrBlocks"]) for r in sg["ingress"]] == [(22, 22, ["203.0.113.0/24"])]
    assert sg["egress"][0]["cidrBlocks"] == ["0.0.0.0/0"]
    expiry = None
    for r in mocks.resources:
        if r.typ.startswith("aws:"):
            tags = r.inputs["tags"]
            assert tags["k8s-footprint:stack"] == "dev" and tags["k8s-footprint:run-id"] == "dev"
            expiry = tags["k8s-footprint:expires-at"]
    assert expiry is not None
    hours = (datetime.strptime(expiry, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
             - datetime.now(UTC)).total_seconds() / 3600
    assert 2.9 < hours <= 3.0
    assert_commands_reach_their_own_cell(mocks, "vm")
    described = resolve(program["instances"])
    assert described["aarch64-k3s-1"]["instanceType"] == "t4g.micro"
    assert described["aarch64-k3s-1"]["backend"] == "aws"


def test_spot_instances_when_asked(mocks: FleetMocks) -> None:
    run_program({**CI_CONFIG, "spot": "true", "distros": ["bare"], "arches": ["x86_64"]})
    market = mocks.of_type("aws:ec2/instance:Instance")[0].inputs["instanceMarketOptions"]
    assert market["marketType"] == "spot"


def test_hosts_stack_runs_on_the_given_machines_and_leaves_them_installed_by_default(mocks: FleetMocks) -> None:
    program = run_program({"backend": "hosts", "hosts": HOSTS, "distros": ["bare", "docker", "k3s"]},
                          secrets={"sshPrivateKey": "PRIVATE-KEY-TEST"})
    results = program["resolved_results"]
    assert sorted(results) == ["aarch64-bare-1", "aarch64-docker-1", "aarch64-k3s-1"]
    assert not any(r.typ.startswith(("aws:", "libvirt:", "tls:")) for r in mocks.resources)
    by_cell = {f"aarch64-{h['name'][3:]}-1": h["address"] for h in HOSTS}
    for r in mocks.of_type("command:remote:Command"):
        connection = connection_of(r)
        assert connection["host"] == by_cell[cell_of(r.name)]
        assert connection["port"] == 2222 and connection["user"] == "pi"
        assert connection["privateKey"] == "PRIVATE-KEY-TEST"
    boots = [r for r in mocks.of_type("command:remote:Command") if r.name.endswith("-bootstrap")]
    # Without allowUninstall, destroy removes only the kit, and says it leaves the distro.
    assert all(" uninstall " not in r.inputs["delete"] and "leaving" in r.inputs["delete"]
               and 'rm -rf -- "$HOME"/.k8s-footprint/kit-' in r.inputs["delete"] for r in boots)


def test_hosts_with_allow_uninstall_uninstall_the_distro_and_the_kit_on_destroy(mocks: FleetMocks) -> None:
    run_program({"backend": "hosts", "hosts": HOSTS, "distros": ["bare", "docker", "k3s"], "allowUninstall": "true"},
                secrets={"sshPrivateKey": "PRIVATE-KEY-TEST"})
    boots = {r.name: r.inputs for r in mocks.of_type("command:remote:Command") if r.name.endswith("-bootstrap")}
    assert len(boots) == 3
    for name, inputs in boots.items():
        distro = name.split("-")[1]
        # The kit's uninstall, then the kit folder itself.
        assert re.search(rf" uninstall {distro} && rm -rf -- \"\$HOME\"/.k8s-footprint/kit-[0-9a-f]{{16}}$",
                         inputs["delete"])
        assert "update" not in inputs  # a changed command set replaces, deleting first
    options = {r.name: r.options for r in mocks.registrations.values() if r.name.endswith("-bootstrap")}
    assert all(o.delete_before_replace is True and o.replacement_trigger for o in options.values())


def test_allow_uninstall_is_refused_outside_the_hosts_backend(mocks: FleetMocks) -> None:
    with pytest.raises(ConfigError, match="allowUninstall is only used by the hosts backend"):
        run_program({"allowUninstall": "true"})
    assert mocks.resources == []


def test_libvirt_guests_have_fixed_addresses_and_ignore_what_a_refresh_reads_back(mocks: FleetMocks) -> None:
    run_program({"distros": ["bare", "docker"], "libvirtNetworkCidr": "10.77.0.0/24"})
    domains = {r.name: r for r in mocks.registrations.values() if r.typ == "libvirt:index/domain:Domain"}
    # Slots follow the cell alone: bare and docker are distros 0 and 1, x86_64 and aarch64 arches 0 and 1.
    assert {n: r.inputs["networkInterfaces"][0]["addresses"] for n, r in domains.items()} == {
        "x86_64-bare-1-vm": ["10.77.0.10"], "aarch64-bare-1-vm": ["10.77.0.11"],
        "x86_64-docker-1-vm": ["10.77.0.12"], "aarch64-docker-1-vm": ["10.77.0.13"]}
    for r in domains.values():
        assert set(r.options.ignore_changes) == {"running", "networkInterfaces[*].addresses", "firmware", "nvram"}
        assert r.options.replacement_trigger
    # The overlay and the seed are replaced with the domain; the shared base image is not.
    per_cell = [r for r in mocks.registrations.values()
                if r.typ in ("libvirt:index/volume:Volume", "libvirt:index/cloudInitDisk:CloudInitDisk")]
    assert all(bool(r.options.replacement_trigger) == (not r.name.startswith("libvirt-base-")) for r in per_cell)
    for r in mocks.registrations.values():
        if r.typ.startswith("command:remote:"):
            machine = next(u for u in r.options.replace_with)
            assert machine.endswith(f"::{cell_of(r.name)}-vm") and r.options.deleted_with == machine


def test_aws_instances_keep_their_ami_and_expiry_and_follow_their_commands(mocks: FleetMocks) -> None:
    run_program({**CI_CONFIG, "distros": ["bare"]})
    for r in mocks.registrations.values():
        if r.typ == "aws:ec2/instance:Instance":
            assert {"ami", 'tags["k8s-footprint:expires-at"]', 'volumeTags["k8s-footprint:expires-at"]'} <= set(
                r.options.ignore_changes)
            assert r.options.replacement_trigger
        elif r.typ.startswith("aws:"):
            assert 'tags["k8s-footprint:expires-at"]' in r.options.ignore_changes
    sg = next(r for r in mocks.registrations.values() if r.typ == "aws:ec2/securityGroup:SecurityGroup")
    assert sg.inputs["vpcId"] == "vpc-default"


def test_the_ami_id_is_not_a_secret_output(mocks: FleetMocks) -> None:
    run_program({**CI_CONFIG, "distros": ["bare"], "arches": ["x86_64"]})
    instance = next(r for r in mocks.resources if r.typ == "aws:ec2/instance:Instance")
    assert instance.inputs["ami"] == "ami-amd64"  # plain: a secret would arrive wrapped with its signature


def test_an_account_without_a_default_vpc_gets_a_clear_error() -> None:
    from components.aws import NoDefaultVpcError
    from tests.conftest import install_mocks

    m = install_mocks(FleetMocks(default_vpc=False))
    with pytest.raises(NoDefaultVpcError, match="create-default-vpc"):
        run_program({**CI_CONFIG, "distros": ["bare"], "arches": ["x86_64"]})
    assert not any(r.typ == "aws:ec2/instance:Instance" for r in m.resources)


def test_a_cell_that_ran_out_of_memory_is_a_result_not_a_failure(mocks: FleetMocks) -> None:
    mocks.statuses["x86_64-k3s-1"] = "oom"
    program = run_program({"distros": ["bare", "k3s"], "arches": ["x86_64"]})
    results = program["resolved_results"]
    assert results["x86_64-k3s-1"]["status"] == "oom"
    assert results["x86_64-bare-1"]["status"] == "ok"
    summary = resolve(program["summary"])
    assert "| x86_64-k3s-1 | oom |" in summary


def test_invalid_config_fails_before_any_resource_exists(mocks: FleetMocks) -> None:
    with pytest.raises(ConfigError) as err:
        run_program({"backend": "aws", "repetitions": "0"})
    assert "sshAllowedCidrs is required" in str(err.value) and "repetitions = '0'" in str(err.value)
    assert mocks.resources == []
