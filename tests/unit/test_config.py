"""Stack config: defaults, and bad values rejected together, before any resource exists."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from components.config import (
    ARCHES,
    DEFAULT_DISTROS,
    DEFAULT_IMAGES,
    DEFAULT_INSTANCE_TYPES,
    KEYS,
    ConfigError,
    FleetSpec,
    HostEntry,
    address_slot,
    default_network_cidr,
    native_arch,
    parse,
)
from tests.conftest import ROOT

NOW = datetime(2026, 11, 22, 3, 30, 15, tzinfo=UTC)
PI = {"name": "pi-1", "address": "192.0.2.10", "user": "pi", "arch": "aarch64"}


def spec(raw: dict[str, Any], has_key: bool = False) -> FleetSpec:
    return parse(raw, project="k8s-footprint", stack="dev", now=NOW, has_ssh_private_key=has_key)


def problems(raw: dict[str, Any], has_key: bool = False) -> list[str]:
    with pytest.raises(ConfigError) as err:
        spec(raw, has_key)
    return err.value.problems


def test_empty_config_gives_the_local_default_fleet() -> None:
    s = spec({})
    assert s.backend == "libvirt"
    assert s.arches == ARCHES == ("x86_64", "aarch64")
    assert s.distros == DEFAULT_DISTROS == ("bare", "docker", "k3s", "k0s", "microk8s", "microk8s-noha")
    assert s.repetitions == 1
    assert dict(s.versions) == {}
    assert s.workload == "mysql"
    assert (s.settle_seconds, s.sample_interval_seconds, s.samples) == (300, 5, 12)
    assert s.max_parallel_cells == 2
    assert s.memory_sizes == (1024,) and not s.sweep
    assert s.disk_gib == 20
    assert s.power_off_after is True
    assert dict(s.instance_types) == DEFAULT_INSTANCE_TYPES
    assert (s.instance_type("x86_64", 1024), s.instance_type("aarch64", 1024)) == ("t3.micro", "t4g.micro")
    assert s.fit_headroom_mib == 100
    assert s.ssh_allowed_cidrs == ()
    assert s.ttl_hours == 4
    assert s.spot is False
    assert s.libvirt_uri == "qemu:///system"
    assert dict(s.images) == DEFAULT_IMAGES
    assert "noble-server-cloudimg-arm64" in s.images["aarch64"]
    assert s.hosts == ()
    assert s.run_id == "dev"
    assert s.expires_at == "2026-11-22T07:30:00Z"


def test_aws_defaults_differ_from_libvirt_where_the_table_says() -> None:
    s = spec({"backend": "aws", "sshAllowedCidrs": '["203.0.113.7/32"]'})
    assert s.max_parallel_cells is None
    assert s.power_off_after is False
    assert s.ssh_allowed_cidrs == ("203.0.113.7/32",)


def test_values_arrive_as_engine_strings_and_parse() -> None:
    s = spec({"arches": '["aarch64"]', "distros": "k3s,k0s", "repetitions": "3", "versions": '{"k3s": "v1.31.4+k3s1"}',
              "powerOffAfter": "false", "settleSeconds": "60", "maxParallelCells": "4", "workload": "none"})
    assert s.arches == ("aarch64",)
    assert s.distros == ("k3s", "k0s")
    assert s.repetitions == 3
    assert dict(s.versions) == {"k3s": "v1.31.4+k3s1"}
    assert s.power_off_after is False
    assert (s.settle_seconds, s.max_parallel_cells, s.workload) == (60, 4, "none")


def test_hosts_backend_takes_its_arches_from_the_hosts() -> None:
    hosts = [dict(PI, name=f"pi-{i}") for i in range(6)]
    s = spec({"backend": "hosts", "hosts": hosts}, has_key=True)
    assert s.arches == ("aarch64",)
    assert s.hosts[0] == HostEntry(name="pi-0", address="192.0.2.10", user="pi", arch="aarch64", port=22)


@pytest.mark.parametrize(("raw", "expected"), [
    ({"backend": "gcp"}, "backend = 'gcp': must be one of libvirt, aws, hosts"),
    ({"arches": '["arm64"]'}, "arm64 not allowed; a list from x86_64, aarch64"),
    ({"arches": "[]"}, "must be a non-empty list"),
    ({"distros": '["k3s", "kind"]'}, "kind not allowed"),
    ({"distros": '["k3s", "k3s"]'}, "lists a value twice"),
    ({"repetitions": "0"}, "repetitions = '0': must be a whole number from 1 to 20"),
    ({"repetitions": "two"}, "repetitions = 'two'"),
    ({"versions": '{"k8s": "1.30"}'}, "unknown key(s) k8s"),
    ({"versions": '{"k3s": "v1.30; rm -rf /"}'}, "bad value(s) k3s=v1.30; rm -rf /"),
    ({"workload": "postgres"}, "workload = 'postgres': must be one of mysql, none"),
    ({"settleSeconds": "-5"}, "settleSeconds = '-5'"),
    ({"sampleIntervalSeconds": "0"}, "sampleIntervalSeconds = '0'"),
    ({"samples": "3"}, "samples = '3': must be a whole number from 5 to 720"),
    ({"maxParallelCells": "0"}, "maxParallelCells = '0'"),
    ({"memoryMiB": "255"}, "memoryMiB = '255'"),
    ({"memoryMiB": "[512, 700]"}, "700 not allowed on libvirt"),
    ({"memoryMiB": "[512, 512]"}, "lists a size twice"),
    ({"fitHeadroomMiB": "-1"}, "fitHeadroomMiB = '-1'"),
    ({"allowOtherSizes": "true"}, "allowOtherSizes is gone"),
    ({"powerOffAfter": "yes"}, "powerOffAfter = 'yes': must be true or false"),
    ({"ttlHours": "1000"}, "ttlHours = '1000'"),
    ({"spot": "maybe"}, "spot = 'maybe'"),
    ({"libvirtUri": "localhost"}, "libvirtUri = 'localhost'"),
    ({"libvirtNetworkCidr": "8.8.8.0/24"}, "libvirtNetworkCidr = '8.8.8.0/24'"),
    ({"images": '{"riscv64": "x.img"}'}, "unknown key(s) riscv64"),
    ({"arches": "[x86_64"}, "is not valid JSON"),
    ({"runId": "has space"}, "runId = 'has space'"),
    ({"hosts": [PI]}, "hosts is only used by the hosts backend, not libvirt"),
    ({"arche": '["x86_64"]'}, "arche is not a known key; did you mean 'arches'?"),
])
def test_bad_value_is_named_with_what_is_allowed(raw: dict[str, Any], expected: str) -> None:
    found = problems(raw)
    assert any(expected in p for p in found), found


def test_aws_needs_ssh_cidrs_and_never_defaults_to_the_world() -> None:
    found = problems({"backend": "aws"})
    assert any("sshAllowedCidrs is required for the aws backend" in p for p in found)
    assert any("10.0.0.1/8" in p for p in problems({"backend": "aws", "sshAllowedCidrs": '["10.0.0.1/8"]'}))


AWS_BASE = {"backend": "aws", "sshAllowedCidrs": '["203.0.113.7/32"]'}


def test_aws_maps_each_arch_and_size_to_one_instance_type() -> None:
    s = spec({**AWS_BASE, "memoryMiB": "[512, 1024, 2048]"})
    assert {(a, m): s.instance_type(a, m) for a in s.arches for m in s.memory_sizes} == {
        ("x86_64", 512): "t3.nano", ("x86_64", 1024): "t3.micro", ("x86_64", 2048): "t3.small",
        ("aarch64", 512): "t4g.nano", ("aarch64", 1024): "t4g.micro", ("aarch64", 2048): "t4g.small"}
    assert spec(AWS_BASE).instance_type("x86_64", 1024) == "t3.micro"  # today's stacks keep their type
    # An entry replaces or adds one (arch, size); the rest stay the defaults.
    other = spec({**AWS_BASE, "memoryMiB": "[1024, 4096]",
                  "instanceTypes": '{"x86_64": {"1024": "t3a.micro", "4096": "m5.large"}, '
                                   '"aarch64": {"4096": "m7g.medium"}}'})
    assert other.instance_type("x86_64", 1024) == "t3a.micro" and other.instance_type("x86_64", 4096) == "m5.large"
    assert other.instance_type("aarch64", 1024) == "t4g.micro"


def test_aws_refuses_a_size_without_a_type_naming_the_size_and_the_types_known() -> None:
    found = problems({**AWS_BASE, "memoryMiB": "[768, 1024]"})
    assert any("memoryMiB 768 has no x86_64 AWS instance type (known: 512 MiB: t3.nano, 1024 MiB: t3.micro, "
               "2048 MiB: t3.small)" in p for p in found), found
    assert any("memoryMiB 768 has no aarch64 AWS instance type" in p for p in found)
    assert not any("1024" in p.split("has no")[0] for p in found if "has no" in p)
    assert any("memoryMiB = '256'" in p for p in problems({**AWS_BASE, "memoryMiB": "256"}))  # AWS's floor is 512


def test_an_instance_type_override_must_match_its_arch_and_its_size() -> None:
    found = problems({**AWS_BASE, "instanceTypes": '{"x86_64": {"1024": "t4g.micro"}}'})
    assert any("x86_64.1024=t4g.micro: t4g.micro is not an x86_64 type" in p for p in found)
    found = problems({**AWS_BASE, "instanceTypes": '{"aarch64": {"512": "t4g.small"}}'})
    assert any("t4g.small has 2048 MiB, not 512" in p for p in found)
    found = problems({**AWS_BASE, "instanceTypes": '{"aarch64": {"4096": "m7i.large"}}'})
    assert any("m7i.large is not an aarch64 type" in p for p in found)
    # Today's shape (arch -> one type) is refused with what replaced it, not misread.
    found = problems({**AWS_BASE, "instanceTypes": '{"x86_64": "t3.micro"}'})
    assert any("one table now maps each arch and memoryMiB to a type" in p for p in found)


def test_memory_sizes_a_list_is_a_sweep_and_libvirt_goes_down_to_256() -> None:
    s = spec({"memoryMiB": "[1024, 256, 768]"})
    assert s.memory_sizes == (256, 768, 1024) and s.sweep
    assert spec({"memoryMiB": "256"}).memory_sizes == (256,)
    assert spec({"memoryMiB": [512, 1024]}).memory_sizes == (512, 1024)  # a YAML list from the stack file


def test_the_hosts_backend_takes_no_list_of_sizes() -> None:
    hosts = {"backend": "hosts", "hosts": [PI], "distros": ["bare"], "arches": ["aarch64"]}
    found = problems({**hosts, "memoryMiB": "[512, 1024]"}, has_key=True)
    assert any("memoryMiB = '[512, 1024]': takes no list on the hosts backend" in p for p in found), found


def test_hosts_backend_needs_hosts_a_key_and_a_host_per_cell() -> None:
    found = problems({"backend": "hosts"})
    assert any("hosts is required for the hosts backend" in p for p in found)
    assert any("sshPrivateKey is required for the hosts backend" in p for p in found)
    found = problems({"backend": "hosts", "hosts": [PI], "distros": '["k3s", "k0s"]'}, has_key=True)
    assert any("has 1 aarch64 host(s) for 2 aarch64 cell(s)" in p for p in found)


def test_bad_host_entries_name_the_entry_and_the_field() -> None:
    hosts = [PI, {"name": "Bad Name", "address": "x y", "user": "root", "arch": "riscv64", "port": 70000},
             {"name": "pi-2"}, dict(PI)]
    found = problems({"backend": "hosts", "hosts": hosts}, has_key=True)
    text = "\n".join(found)
    assert "hosts[1]: name 'Bad Name'" in text
    assert "address 'x y'" in text and "arch 'riscv64'" in text and "port 70000" in text
    assert "hosts[2]: missing address, user, arch" in text
    assert "name(s) used twice: pi-1" in text


def test_every_problem_is_reported_at_once() -> None:
    found = problems({"backend": "aws", "repetitions": "0", "workload": "x", "arches": '["sparc"]'})
    assert len(found) == 4
    assert any(p.startswith("k8s-footprint:sshAllowedCidrs") for p in found)


def test_error_message_says_nothing_was_created_and_lists_each_problem() -> None:
    with pytest.raises(ConfigError) as err:
        spec({"repetitions": "0", "spot": "x"})
    message = str(err.value)
    assert "nothing was created" in message
    assert message.count("\n  - ") == 2


def test_pulumi_yaml_documents_exactly_the_keys_the_program_reads() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    documented = {k.split(":", 1)[1] for k in project["template"]["config"]}
    assert documented == set(KEYS)
    assert project["name"] == "k8s-footprint"
    assert project["runtime"]["options"]["virtualenv"] == ".venv"


def test_pulumi_yaml_template_defaults_are_strings_as_the_cli_reads_them() -> None:
    """The CLI reads template.config.*.default into a string (pulumi sdk go/common/apitype/templates.go:131,
    `Default string`); a YAML list or map there fails `pulumi stack init` with "cannot unmarshal !!seq
    into string", as the first real run showed (benchmarks/results/e2e/). Lists and maps go as JSON text,
    which is also how `pulumi config set` hands them to the program, and the program parses them."""
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    defaults = {k.split(":", 1)[1]: v["default"] for k, v in project["template"]["config"].items()}
    assert {k: type(v).__name__ for k, v in defaults.items() if not isinstance(v, str)} == {}
    for key in ("arches", "distros", "versions", "instanceTypes", "images"):
        spec({key: defaults[key]})  # the documented default is a value the program accepts
    documented = spec({k: defaults[k] for k in ("memoryMiB", "instanceTypes", "fitHeadroomMiB")})
    assert (documented.instance_types, documented.memory_sizes, documented.fit_headroom_mib) == (
        DEFAULT_INSTANCE_TYPES, (1024,), 100)


def test_pulumi_yaml_says_what_each_key_allows_in_the_words_of_config_keys() -> None:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    for name, entry in project["template"]["config"].items():
        key = name.split(":", 1)[1]
        assert entry["description"].endswith(f"Allowed: {KEYS[key]}."), key


def stack_values(stack_file: str) -> dict[str, Any]:
    values = yaml.safe_load((ROOT / stack_file).read_text())["config"]
    return {k.split(":", 1)[1]: v if isinstance(v, str) else __import__("json").dumps(v)
            for k, v in values.items() if k.startswith("k8s-footprint:")}


@pytest.mark.parametrize("stack_file", ["Pulumi.dev.yaml", "Pulumi.ci.yaml"])
def test_committed_stack_files_are_valid(stack_file: str) -> None:
    s = spec(stack_values(stack_file))
    assert s.arches == ("x86_64", "aarch64")
    assert len(s.distros) == 6


def test_the_example_stacks_are_valid_and_small() -> None:
    quick = spec(stack_values("Pulumi.quick.yaml"))
    assert quick.backend == "libvirt" and quick.arches == ("x86_64",) and quick.distros == ("bare", "k3s")
    assert quick.settle_seconds == 60
    aws = spec(stack_values("Pulumi.aws-example.yaml"))
    assert aws.backend == "aws" and aws.ssh_allowed_cidrs == ("203.0.113.7/32",)
    hosts = spec(stack_values("Pulumi.hosts-example.yaml"), has_key=True)
    assert hosts.backend == "hosts" and hosts.allow_uninstall is False and len(hosts.hosts) == 2
    assert {p.name for p in ROOT.glob("Pulumi.*.yaml")} >= {"Pulumi.quick.yaml", "Pulumi.aws-example.yaml",
                                                           "Pulumi.hosts-example.yaml"}


def test_host_arch_defaults_to_this_machine_for_a_local_uri() -> None:
    assert spec({}).libvirt_host_arch == native_arch()
    assert spec({"libvirtUri": "qemu:///session"}).libvirt_host_arch == native_arch()


def test_a_remote_libvirt_uri_needs_its_host_arch() -> None:
    found = problems({"libvirtUri": "qemu+ssh://pi@lab/system"})
    assert any("libvirtHostArch is required when libvirtUri ('qemu+ssh://pi@lab/system')" in p for p in found)
    remote = spec({"libvirtUri": "qemu+ssh://pi@lab/system", "libvirtHostArch": "aarch64"})
    assert remote.libvirt_host_arch == "aarch64"


def test_a_host_arch_that_contradicts_the_local_machine_is_refused() -> None:
    other = "aarch64" if native_arch() == "x86_64" else "x86_64"
    found = problems({"libvirtHostArch": other})
    assert any(f"libvirtHostArch = '{other}'" in p and f"which is {native_arch()}" in p for p in found)
    assert any("libvirtHostArch = 'riscv64'" in p for p in problems({"libvirtHostArch": "riscv64"}))


def test_libvirt_accel_defaults_to_kvm_and_refuses_anything_but_kvm_or_tcg() -> None:
    assert spec({}).libvirt_accel == "kvm"
    assert spec({"libvirtAccel": "tcg"}).libvirt_accel == "tcg"
    found = problems({"libvirtAccel": "hvf"})
    assert found == ["k8s-footprint:libvirtAccel = 'hvf': must be kvm or tcg: how guests of the host's own arch "
                     "run (tcg: emulated, for hosts without KVM)"], found


def test_each_stack_gets_its_own_nat_range_unless_one_is_set() -> None:
    dev = parse({}, project="k8s-footprint", stack="dev", now=NOW).libvirt_network_cidr
    lab = parse({}, project="k8s-footprint", stack="lab", now=NOW).libvirt_network_cidr
    assert dev != lab and dev.startswith("10.213.") and dev.endswith(".0/24")
    assert dev == default_network_cidr("k8s-footprint", "dev")  # the same on every run
    assert spec({"libvirtNetworkCidr": "10.9.8.0/24"}).libvirt_network_cidr == "10.9.8.0/24"


def test_a_network_too_small_for_the_cells_address_slots_is_refused() -> None:
    # Slots go arch-fastest through every distro the kit knows, then repetitions: 7 x 2 = 14 per repetition.
    assert address_slot("x86_64", "bare", 1) == 0 and address_slot("aarch64", "k3s-minimal", 2) == 27
    assert spec({"libvirtNetworkCidr": "10.9.8.0/27", "distros": ["bare"]}).libvirt_network_cidr == "10.9.8.0/27"
    found = problems({"libvirtNetworkCidr": "10.9.8.0/27", "repetitions": "2"})
    assert any("libvirtNetworkCidr 10.9.8.0/27 has 21 guest addresses" in p for p in found)


def test_allow_uninstall_is_for_the_hosts_backend_only() -> None:
    hosts = {"backend": "hosts", "hosts": [PI], "distros": ["bare"], "arches": ["aarch64"]}
    assert spec(hosts, has_key=True).allow_uninstall is False
    assert spec({**hosts, "allowUninstall": "true"}, has_key=True).allow_uninstall is True
    assert any("allowUninstall is only used by the hosts backend, not libvirt" in p
               for p in problems({"allowUninstall": "true"}))


def test_measure_preinstalled_is_a_boolean_for_the_hosts_backend_only() -> None:
    hosts = {"backend": "hosts", "hosts": [PI], "distros": ["bare"], "arches": ["aarch64"]}
    assert spec(hosts, has_key=True).measure_preinstalled is False
    assert spec({**hosts, "measurePreinstalled": "true"}, has_key=True).measure_preinstalled is True
    assert any("measurePreinstalled = 'maybe': must be true or false" in p
               for p in problems({**hosts, "measurePreinstalled": "maybe"}, has_key=True))
    assert any("measurePreinstalled is only used by the hosts backend, not aws" in p
               for p in problems({"backend": "aws", "measurePreinstalled": "true"}))


def test_versions_take_each_projects_own_form_including_a_microk8s_channel() -> None:
    s = spec({"versions": {"k3s": "v1.31.4+k3s1", "k0s": "v1.32.7+k0s.0", "microk8s": "1.32/stable"}})
    assert s.versions["microk8s"] == "1.32/stable"
    assert any("versions" in p for p in problems({"versions": {"k3s": "v1 31"}}))
