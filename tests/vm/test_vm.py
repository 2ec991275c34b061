"""Real 1 GiB guests, x86_64 and aarch64, measured through the fleet's own command sequence.

These boot Debian 12 under qemu (TCG), run `bare` and `docker` (with a MariaDB workload loaded
from a tarball) exactly as DistroBootstrap and WorkloadBenchmark would, and inject faults.
"""

from __future__ import annotations

import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from components.schema import validate_result
from tests.vm import qemu
from tests.vm.conftest import BareCell, DockerCell, save_result

pytestmark = pytest.mark.vm


def used(result: dict[str, Any], phase: str) -> float:
    return float(result["phases"][phase]["used_mib"]["median"])


def assert_sound(result: dict[str, Any], arch: str) -> None:
    validate_result(result)
    assert result["status"] == "ok", result["errors"]
    assert result["arch"] == arch
    assert 900 <= result["mem_total_mib"] <= 1024
    assert 40 <= used(result, "os") <= 400
    assert result["oom_kills"] == 0
    assert result["timings_s"]["bootstrap"] is not None and result["timings_s"]["ready"] is not None
    assert result["timings_s"]["settle"] > 0
    assert result["phases"]["idle"]["samples"] == 5


def test_bare_cell_gives_a_valid_ok_result(bare_cell: BareCell, arch: str) -> None:
    result = bare_cell.run.result
    assert_sound(result, arch)
    assert result["distro"] == "bare" and result["workload"] is None and result["api"] is None
    assert result["phases"]["workload"] is None
    assert bare_cell.run.bootstrap["status"] == "ok"


def test_docker_cell_measures_more_at_idle_and_more_again_under_mariadb(docker_cell: DockerCell, arch: str) -> None:
    result = docker_cell.run.result
    assert_sound(result, arch)
    assert result["workload"]["ready"] is True and result["workload"]["image"] == "k8sf/mariadb:bookworm"
    assert result["timings_s"]["workload_ready"] is not None
    assert used(result, "idle") > used(result, "os")
    assert used(result, "workload") > used(result, "idle")
    assert "docker.service" in result["phases"]["idle"]["cgroups_mib"]
    assert result["phases"]["workload"]["cgroups_mib"].get("docker-containers", 0) > 0


def test_ssh_drop_during_bootstrap_then_rerun_succeeds_and_installs_once(docker_cell: DockerCell) -> None:
    # The first attempt was cut off by killing the SSH client mid-install.
    assert docker_cell.first_attempt_rc != 0
    assert docker_cell.run.bootstrap["status"] == "ok"
    assert docker_cell.installs_of_docker == 1


def test_bootstrap_twice_changes_nothing(bare_cell: BareCell) -> None:
    again = qemu.run_bootstrap(bare_cell.guest, bare_cell.run.commands, bare_cell.plan)
    assert again == bare_cell.run.bootstrap


def test_stopping_the_service_during_sampling_still_prints_a_non_ok_result(docker_cell: DockerCell,
                                                                           arch: str) -> None:
    guest, commands, plan = docker_cell.guest, docker_cell.run.commands, docker_cell.plan
    box: dict[str, Any] = {}

    def bench() -> None:
        box["result"] = qemu.run_benchmark(guest, commands, plan)

    worker = threading.Thread(target=bench)
    worker.start()
    # Into the idle phase's sampling (settle 10 s), then stop Docker under the benchmark's feet.
    time.sleep(plan.settle_s + 8)
    guest.ssh("sudo systemctl stop docker.socket docker.service", timeout=120)
    worker.join(timeout=plan.benchmark_timeout_s() + 120)
    result = box["result"]
    validate_result(result)
    save_result(result, arch, "fault-docker-stopped")
    assert result["status"] == "not_ready"
    assert any("was not running at the end of the idle phase" in e for e in result["errors"])


def test_a_memory_hog_triggers_the_oom_killer_and_status_oom(bare_cell: BareCell, arch: str) -> None:
    guest = bare_cell.guest
    hog = guest.ssh("sudo timeout 300 tail /dev/zero", timeout=400, check=False)
    assert hog.returncode in (137, 143, 255), hog.returncode  # killed by the kernel, not finished
    result = qemu.run_benchmark(guest, bare_cell.run.commands, bare_cell.plan)
    validate_result(result)
    save_result(result, arch, "fault-oom")
    assert result["oom_kills"] > 0
    assert result["status"] == "oom"


def test_guest_has_no_swap_as_cloud_init_config_asks(bare_cell: BareCell) -> None:
    swaps = bare_cell.guest.ssh("cat /proc/swaps", timeout=30).stdout.strip().splitlines()
    assert len(swaps) == 1 and swaps[0].startswith("Filename")
    hostname = bare_cell.guest.ssh("hostname", timeout=30).stdout.strip()
    assert hostname == bare_cell.plan.cell.replace("_", "-")


def test_a_boot_that_fails_stops_qemu_and_removes_its_overlay(arch: str) -> None:
    from tests.vm.conftest import guest_image

    image = guest_image(arch)

    def qemus() -> set[str]:
        out = subprocess.run(["pgrep", "-af", "qemu-system"], capture_output=True, text=True, check=False)
        return set(out.stdout.splitlines())

    before_procs, before_dirs = qemus(), set(Path(tempfile.gettempdir()).glob("k8sf-vm-*"))
    with pytest.raises(qemu.GuestError, match="no SSH after 3 s"), qemu.boot(arch, image, "teardown", ssh_timeout=3):
        pass
    time.sleep(1)
    assert qemus() <= before_procs
    assert set(Path(tempfile.gettempdir()).glob("k8sf-vm-*")) <= before_dirs
