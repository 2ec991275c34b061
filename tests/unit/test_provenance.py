"""Every result says where it came from (issue 14, point 3): the kit's content hash beside its
version, the backend and machine the program asked for, and what the guest said about its
virtualization. The kit writes the guest part; the program stamps the rest when it reads the
kit's output, and so does the recovery from a failed update's state."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from components.commands import kit_hash
from components.results import parse_result, stamp
from components.schema import validate_result
from fleet.recover import recover_results
from tests.conftest import FleetMocks, fake_result, resolve
from tests.unit.test_program import CI_CONFIG, HOSTS, run_program
from tests.unit.test_recover import BENCH, PREFIX, command, component
from tests.unit.test_statuses import v2_result

GUEST = {"virt": "qemu", "accel": "tcg", "vcpus": 1}  # what kit 0.3.1 prints on a TCG guest
ROOT = Path(__file__).resolve().parents[2]


def kit_output(cell: str) -> dict[str, Any]:
    """A v2 result as kit 0.3.1 prints it: with the guest's part of the provenance only."""
    r = v2_result(cell)
    r["distro"], r["arch"] = cell.split("-")[1], cell.split("-")[0]
    r["api"] = None if r["distro"] in ("bare", "docker") else r["api"]
    r["provenance"] = {"guest": dict(GUEST)}
    return r


def test_stamp_adds_the_kit_hash_and_machine_beside_what_the_guest_said() -> None:
    out = stamp(kit_output("x86_64-bare-1"), "0123456789abcdef", {"backend": "libvirt", "memory_mib": 1024,
                                                                  "vcpus": 1})
    validate_result(out)
    assert out["provenance"] == {"guest": GUEST, "kit_hash": "0123456789abcdef",
                                 "machine": {"backend": "libvirt", "memory_mib": 1024, "vcpus": 1}}
    assert out["kit_version"] == "0.1.0"  # the version stays where it was; the hash is beside it


def test_a_v1_result_is_left_as_it_was_and_still_validates() -> None:
    old = fake_result("x86_64-bare-1", "bare")
    assert stamp(old, "0123456789abcdef", {"backend": "aws", "instance_type": "t3.micro"}) == old
    validate_result(old)


def test_every_committed_result_still_validates_without_provenance() -> None:
    files = sorted((ROOT / "benchmarks" / "results" / "qemu-debian12").glob("2026-*-kit*.json"))
    assert len(files) >= 21  # the 2026-11-22 runs, and later ones
    for f in files:
        validate_result(json.loads(f.read_text()))


def test_a_bad_provenance_is_refused_by_the_schema() -> None:
    import jsonschema

    bad = stamp(kit_output("x86_64-bare-1"), "0123456789abcdef", {"backend": "gcp"})
    with pytest.raises(jsonschema.ValidationError):
        validate_result(bad)
    worse = copy.deepcopy(kit_output("x86_64-bare-1"))
    worse["provenance"]["guest"]["accel"] = "fast"
    with pytest.raises(jsonschema.ValidationError):
        validate_result(worse)


def test_no_result_from_unreadable_output_is_stamped_too() -> None:
    out = stamp(parse_result("Killed\n", "x86_64-k3s-1"), "0123456789abcdef", {"backend": "hosts", "host": "pi"})
    validate_result(out)
    assert out["status"] == "no_result" and out["provenance"]["machine"] == {"backend": "hosts", "host": "pi"}


@pytest.mark.parametrize(("config", "secrets", "cell", "machine"), [
    ({"arches": ["x86_64"], "distros": ["bare"]}, None, "x86_64-bare-1",
     {"backend": "libvirt", "memory_mib": 1024, "vcpus": 1}),
    ({**CI_CONFIG, "arches": ["aarch64"], "distros": ["bare"]}, None, "aarch64-bare-1",
     {"backend": "aws", "instance_type": "t4g.micro", "memory_mib": 1024}),
    ({"backend": "hosts", "hosts": HOSTS[:1], "distros": ["bare"]}, {"sshPrivateKey": "PRIVATE-KEY-TEST"},
     "aarch64-bare-1", {"backend": "hosts", "host": "pi-bare"}),
])
def test_the_program_stamps_each_backends_machine_and_the_kit_hash(
        mocks: FleetMocks, config: dict[str, Any], secrets: dict[str, str] | None, cell: str,
        machine: dict[str, Any]) -> None:
    mocks.bench_stdout[cell] = json.dumps(kit_output(cell)) + "\n"
    program = run_program(config, secrets)
    result = program["resolved_results"][cell]
    validate_result(result)
    assert result["provenance"] == {"guest": GUEST, "kit_hash": kit_hash(), "machine": machine}
    # The same stamp is a registered output of the cell's component, which the state keeps.
    assert resolve(program["benchmarks"][cell].result)["provenance"]["machine"] == machine


def test_the_recovery_from_the_state_stamps_the_provenance_the_component_registered() -> None:
    cell = "x86_64-bare-1"
    stamped = {"kit_hash": "0123456789abcdef", "machine": {"backend": "libvirt", "memory_mib": 768, "vcpus": 1}}
    comp = component(cell)
    # A component's registered outputs are in its ResourceV3 "outputs" (sdk/go/common/apitype/core.go
    # ResourceV3.Outputs), written by the engine's SnapshotManager.RegisterResourceOutputs.
    comp["outputs"] = {"result": {}, "provenance": stamped}
    dep = {"version": 3, "deployment": {"manifest": {"time": "2026-11-30T03:00:00Z", "magic": "m",
                                                     "version": "v3.259.0"},
                                        "resources": [comp, command(cell, json.dumps(kit_output(cell)) + "\n")]}}
    result = recover_results(dep)[cell]
    validate_result(result)
    assert result["provenance"] == {"guest": GUEST, **stamped}
    # Without the component's outputs (they never resolved), the result keeps only what the kit said.
    del comp["outputs"]
    assert recover_results(dep)[cell]["provenance"] == {"guest": GUEST}
    assert BENCH in comp["urn"] and comp["urn"].startswith(PREFIX)


def test_the_vm_harness_stamps_its_own_machine_and_marks_a_fault_run() -> None:
    from tests.vm.helpers import harness_stamp

    fault = harness_stamp(kit_output("x86_64-bare-1"), "fault-oom")
    validate_result(fault)
    assert fault["provenance"] == {"guest": GUEST, "kit_hash": kit_hash(), "fault": "fault-oom",
                                   "machine": {"backend": "qemu", "memory_mib": 1024, "vcpus": 1}}
    assert "fault" not in harness_stamp(kit_output("x86_64-bare-1"), "bare")["provenance"]
