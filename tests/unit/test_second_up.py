"""What a second `pulumi up` does after each kind of change, decided by the providers' rules.

The program runs twice under the mocks. Each run's registrations carry the inputs and the resource
options the engine received (tests/conftest.py RecordingMonitor). tests/providers/rules.py then
decides each resource's step the way the pinned engine and providers would, in a preview: a
resource that depends on a replaced one sees unknown inputs. The mocks' own answers decide
nothing here.
"""

from __future__ import annotations

import runpy
import shutil
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import components.backends
import components.cloudinit
import components.commands
import components.config
from components.config import native_arch
from tests.conftest import ROOT, FleetMocks, Registration, install_mocks, resolve, set_stack_config
from tests.providers.rules import Decision, decide

LIBVIRT: dict[str, Any] = {"backend": "libvirt", "arches": ["x86_64", "aarch64"], "distros": ["bare", "k3s"]}
AWS: dict[str, Any] = {"backend": "aws", "sshAllowedCidrs": ["203.0.113.0/24"], "arches": ["x86_64", "aarch64"],
                       "distros": ["bare", "k3s"]}
HOSTS: dict[str, Any] = {"backend": "hosts", "distros": ["bare"], "arches": ["x86_64"],
                         "hosts": [{"name": "lab", "address": "192.0.2.10", "user": "pi", "arch": "x86_64"}]}
SECRETS = {"sshPrivateKey": "PRIVATE-KEY-TEST"}
CELL_MACHINE = ("-disk", "-cidata", "-vm")  # a libvirt cell's overlay, seed ISO and domain
CELL_COMMANDS = ("-kit", "-bootstrap", "-benchmark")


def up(config: Mapping[str, Any], mocks: FleetMocks | None = None, secrets: dict[str, str] | None = None
       ) -> dict[str, Registration]:
    """One run of the program; returns what the engine received, by URN, in registration order."""
    m = install_mocks(mocks or FleetMocks())
    set_stack_config(dict(config), secrets)
    program = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    resolve(program["results"])  # every resource registered
    return dict(m.registrations)


def second_up(first: dict[str, Registration], second: dict[str, Registration],
              old_outputs: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Decision]:
    """The engine's step for each resource of the second run (and deletes for the ones it dropped)."""
    replaced: set[str] = set()
    steps: dict[str, Decision] = {}
    for urn, new in second.items():
        if not new.custom:
            continue  # components have no provider; their children carry the steps
        old = first.get(urn)
        decision = decide(new.typ, old.inputs if old else None, new.inputs, new.options, replaced,
                          old_opts=old.options if old else None,
                          old_outputs=(old_outputs or {}).get(new.name), property_deps=new.property_deps)
        if decision.step == "replace":
            replaced.add(urn)
        steps[new.name] = decision
    for urn, old in first.items():
        if old.custom and urn not in second:
            steps[old.name] = Decision("delete", "not registered in this run")
    return steps


def by_step(steps: dict[str, Decision]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, decision in steps.items():
        out.setdefault(decision.step, set()).add(name)
    return out


def cell_resources(cell: str, suffixes: tuple[str, ...]) -> set[str]:
    return {f"{cell}{s}" for s in suffixes}


@pytest.fixture
def kit_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The guest kit, copied, so a test can change its content as a developer would."""
    kit = tmp_path / "guest"
    shutil.copytree(components.commands.KIT_DIR, kit)
    monkeypatch.setattr(components.commands, "KIT_DIR", kit)
    yield kit


def test_an_unchanged_program_changes_nothing(kit_copy: Path) -> None:
    steps = second_up(up(LIBVIRT), up(LIBVIRT))
    assert by_step(steps) == {"same": set(steps)}, {n: d.why for n, d in steps.items() if d.step != "same"}


def test_a_kit_change_gives_every_cell_a_fresh_machine_and_keeps_the_shared_ones(kit_copy: Path) -> None:
    first = up(LIBVIRT)
    (kit_copy / "VERSION").write_text("9.9.9\n")
    steps = by_step(second_up(first, up(LIBVIRT)))
    cells = [f"{a}-{d}-1" for a in ("x86_64", "aarch64") for d in ("bare", "k3s")]
    fresh = set().union(*(cell_resources(c, CELL_MACHINE + CELL_COMMANDS) for c in cells))
    assert steps["replace"] == fresh
    # The network, the base images, the provider and the SSH key stay.
    assert steps["same"] == {"libvirt-provider", "libvirt-net", "libvirt-base-x86_64", "libvirt-base-aarch64",
                             "ssh-key"}
    assert "update" not in steps  # nothing re-runs on a machine that holds the old install


def test_a_new_settle_window_is_a_new_command_set_and_so_a_new_machine(kit_copy: Path) -> None:
    first = up(LIBVIRT)
    steps = by_step(second_up(first, up({**LIBVIRT, "settleSeconds": "60"})))
    assert {n for n in steps["replace"] if n.endswith("-vm")} == {
        f"{a}-{d}-1-vm" for a in ("x86_64", "aarch64") for d in ("bare", "k3s")}
    assert "update" not in steps


def test_a_new_k3s_version_replaces_only_the_k3s_cells(kit_copy: Path) -> None:
    first = up(LIBVIRT)
    steps = by_step(second_up(first, up({**LIBVIRT, "versions": {"k3s": "v1.31.4+k3s1"}})))
    k3s = set().union(*(cell_resources(f"{a}-k3s-1", CELL_MACHINE + CELL_COMMANDS) for a in ("x86_64", "aarch64")))
    assert steps["replace"] == k3s
    assert not any(n.startswith(("x86_64-bare", "aarch64-bare")) for n in steps["replace"] | steps.get("update", set()))


def test_adding_a_distro_leaves_the_existing_cells_alone(kit_copy: Path) -> None:
    first = up(LIBVIRT)
    steps = by_step(second_up(first, up({**LIBVIRT, "distros": ["bare", "docker", "k3s"]})))
    assert steps["create"] == set().union(*(cell_resources(f"{a}-docker-1", CELL_MACHINE + CELL_COMMANDS)
                                            for a in ("x86_64", "aarch64")))
    assert "replace" not in steps and "update" not in steps


def test_a_new_cloud_init_seed_replaces_the_domain_rather_than_swapping_the_cdrom(
        kit_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = up(LIBVIRT)
    monkeypatch.setattr(components.backends, "render_user_data",
                        lambda key: components.cloudinit.render_user_data(key) + "# a changed seed\n")
    steps = second_up(first, up(LIBVIRT))
    for cell in ("x86_64-bare-1", "aarch64-bare-1"):
        assert steps[f"{cell}-cidata"].step == "replace"
        assert steps[f"{cell}-vm"].step == "replace", steps[f"{cell}-vm"].why


def test_a_refreshed_powered_off_guest_is_left_alone_by_the_next_up(kit_copy: Path) -> None:
    """After `pulumi refresh`, a guest that powered itself off reads back as not running, with no
    addresses (its DHCP lease is gone), and aarch64 with the firmware path libvirt chose."""
    first = up(LIBVIRT)
    refreshed = {}
    for reg in first.values():
        if reg.typ == "libvirt:index/domain:Domain":
            nics = [{**nic, "addresses": []} for nic in reg.inputs["networkInterfaces"]]
            refreshed[reg.name] = {**reg.inputs, "running": False, "networkInterfaces": nics,
                                   "firmware": "/usr/share/AAVMF/AAVMF_CODE.fd" if reg.name.startswith("aarch64")
                                   else None}
            # The refreshed state is what the next diff starts from.
            first[reg.urn] = Registration(reg.urn, reg.typ, reg.name, reg.custom, refreshed[reg.name], reg.options,
                                          reg.property_deps, reg.custom_timeouts)
    steps = second_up(first, up(LIBVIRT), old_outputs=refreshed)
    domains = {n: d for n, d in steps.items() if n.endswith("-vm")}
    assert {d.step for d in domains.values()} == {"same"}, {n: d.why for n, d in domains.items()}


def test_a_refreshed_powered_off_guest_keeps_its_address_in_the_program(kit_copy: Path) -> None:
    """The commands reach a guest at its fixed address, whatever the domain reads back."""
    m = FleetMocks()
    up(LIBVIRT, m)
    hosts = {r.inputs["connection"]["value"]["host"] for r in m.of_type("command:remote:Command")}
    assert hosts == {f"10.213.{components.config.default_network_cidr('k8s-footprint', 'dev').split('.')[2]}.{x}"
                     for x in (10, 11, 14, 15)}


def test_aws_a_new_ami_and_a_later_expiry_change_nothing(kit_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    start = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    monkeypatch.setattr(components.config, "datetime", _clock(start))
    first = up(AWS)
    monkeypatch.setattr(components.config, "datetime", _clock(start + timedelta(hours=2)))
    newer = FleetMocks(ami={"amd64": "ami-amd64-2", "arm64": "ami-arm64-2"})
    second = up(AWS, newer)
    assert {r.inputs["ami"] for r in second.values() if r.typ == "aws:ec2/instance:Instance"} == {
        "ami-amd64-2", "ami-arm64-2"}
    expiries = {r.inputs["tags"]["k8s-footprint:expires-at"] for r in (*first.values(), *second.values())
                if r.typ.startswith("aws:")}
    assert len(expiries) == 2  # the tag value did move
    steps = second_up(first, second)
    assert by_step(steps) == {"same": set(steps)}, {n: d.why for n, d in steps.items() if d.step != "same"}


def test_aws_a_kit_change_replaces_the_instances(kit_copy: Path) -> None:
    first = up(AWS)
    (kit_copy / "VERSION").write_text("9.9.9\n")
    steps = by_step(second_up(first, up(AWS)))
    assert {n for n in steps["replace"] if n.endswith("-vm")} == {
        f"{a}-{d}-1-vm" for a in ("x86_64", "aarch64") for d in ("bare", "k3s")}
    assert {"aws-key", "aws-ssh", "ssh-key"} <= steps["same"]
    assert "update" not in steps


def test_hosts_without_allow_uninstall_refuse_changed_commands(kit_copy: Path) -> None:
    first = up(HOSTS, secrets=SECRETS)
    second = up({**HOSTS, "settleSeconds": "60"}, secrets=SECRETS)
    steps = second_up(first, second)
    # pulumi-command runs `update`, when set, instead of `create` again: it refuses, with the reason.
    assert steps["x86_64-bare-1-bootstrap"].step == "same"
    assert steps["x86_64-bare-1-benchmark"].step == "update"
    bootstrap = next(r for r in second.values() if r.name == "x86_64-bare-1-bootstrap")
    assert "allowUninstall" in bootstrap.inputs["update"] and bootstrap.inputs["update"].endswith("exit 1")
    assert "uninstall" not in bootstrap.inputs["delete"] and "leaving bare installed" in bootstrap.inputs["delete"]


def test_hosts_with_allow_uninstall_uninstall_first_then_install_again(kit_copy: Path) -> None:
    config = {**HOSTS, "allowUninstall": "true"}
    first = up(config, secrets=SECRETS)
    second = up({**config, "settleSeconds": "60"}, secrets=SECRETS)
    steps = second_up(first, second)
    assert steps["x86_64-bare-1-bootstrap"].step == "replace"
    assert steps["x86_64-bare-1-benchmark"].step == "replace"
    # Its delete removes the kit folder, so the copy is replaced too, deleting first: uploaded again
    # after the old bootstrap's delete, before the new install.
    assert steps["x86_64-bare-1-kit"].step == "replace"
    kit = next(r for r in second.values() if r.name == "x86_64-bare-1-kit")
    assert kit.options.delete_before_replace is True
    bootstrap = next(r for r in second.values() if r.name == "x86_64-bare-1-bootstrap")
    assert bootstrap.options.delete_before_replace is True  # the old distro goes before the new install
    assert "k8sf' uninstall bare" in bootstrap.inputs["delete"] or " uninstall bare" in bootstrap.inputs["delete"]


def test_hosts_with_allow_uninstall_delete_the_old_bootstrap_before_the_kit_is_uploaded_again(
        kit_copy: Path) -> None:
    """The old bootstrap's delete removes the kit folder, at the same path when only the commands
    changed. The engine runs a delete-before-replace's dependents' deletes first only for those that
    take one of its outputs as an input (pulumi pkg/v3 v3.259.0 step_generator.go
    calculateDependentReplacements: a bare depends_on never counts). The real engine, without that
    input, uploaded the kit again, then ran the old delete, and the new install found no kit
    (benchmarks/results/e2e/2026-11-30-hosts-x86_64-bare-6-second-up-kit-removed.log)."""
    config = {**HOSTS, "allowUninstall": "true"}
    second = up({**config, "settleSeconds": "60"}, secrets=SECRETS)
    kit = next(r for r in second.values() if r.name == "x86_64-bare-1-kit")
    bootstrap = next(r for r in second.values() if r.name == "x86_64-bare-1-bootstrap")
    assert kit.options.delete_before_replace is True
    assert kit.urn in bootstrap.property_deps.get("triggers", ()), bootstrap.property_deps
    # Without allowUninstall nothing is replaced on the host, so the copy's id is no input there:
    # a new kit must not replace (install again on) a used host.
    plain = up(HOSTS, secrets=SECRETS)
    bootstrap = next(r for r in plain.values() if r.name == "x86_64-bare-1-bootstrap")
    assert not bootstrap.property_deps.get("triggers"), bootstrap.property_deps


def _clock(moment: datetime) -> type[datetime]:
    class Clock(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Clock:
            return cls.fromtimestamp(moment.timestamp(), tz)

    return Clock


def test_switching_libvirt_accel_replaces_only_the_native_domains(kit_copy: Path) -> None:
    """libvirtAccel kvm -> tcg changes the native domains' `type` (kvm -> qemu) and `cpu`, both ForceNew
    in terraform-provider-libvirt v0.8.1 (resource_libvirt_domain.go:78-83 and 343-358; tests/providers/
    rules.py): a new domain, not an update. The emulated arch was qemu already, so its cells stay."""
    native = native_arch()
    first = up(LIBVIRT)
    steps = second_up(first, up({**LIBVIRT, "libvirtAccel": "tcg"}))
    for d in ("bare", "k3s"):
        vm = steps[f"{native}-{d}-1-vm"]
        assert vm.step == "replace", vm
        assert steps[f"{native}-{d}-1-disk"].step == "same"  # the disk and seed are not the domain's to lose
    other = "aarch64" if native == "x86_64" else "x86_64"
    assert all(dec.step == "same" for n, dec in steps.items() if n.startswith(other)), {
        n: dec.why for n, dec in steps.items() if n.startswith(other) and dec.step != "same"}
    assert "update" not in by_step(steps)


def test_hosts_with_allow_uninstall_a_kit_change_uninstalls_then_installs_from_the_new_kit(kit_copy: Path) -> None:
    """A new kit is a new hash, so a new folder: the copy, the install and the measurement are all
    replaced; the old bootstrap's delete (uninstall, then remove the old kit folder) runs first, as
    the copy is delete-before-replace and the bootstrap takes its id (see the test above)."""
    config = {**HOSTS, "allowUninstall": "true"}
    first = up(config, secrets=SECRETS)
    with (kit_copy / "lib" / "common.sh").open("a") as f:
        f.write("# a harmless change\n")
    second = up(config, secrets=SECRETS)
    steps = second_up(first, second)
    # The cell's three commands are all the hosts backend registers.
    assert by_step(steps) == {"replace": cell_resources("x86_64-bare-1", CELL_COMMANDS)}, {
        n: d.why for n, d in steps.items()}
    kits = [next(r for r in run.values() if r.name == "x86_64-bare-1-kit") for run in (first, second)]
    assert kits[0].inputs["remotePath"] != kits[1].inputs["remotePath"]  # the new kit has a folder of its own
