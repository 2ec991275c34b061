"""Real 1 GiB guests, x86_64 and aarch64, measured through the fleet's own command sequence.

The Docker cell with a MariaDB workload from a tarball, an SSH drop mid-install, and Docker stopped
mid-sampling.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from components.schema import validate_result
from tests.vm import qemu
from tests.vm.conftest import DockerCell, save_result
from tests.vm.helpers import assert_sound, used

pytestmark = [pytest.mark.vm, pytest.mark.vm_docker]

def test_docker_cell_measures_more_at_idle_and_more_again_under_mariadb(docker_cell: DockerCell, arch: str) -> None:
    result = docker_cell.run.result
    assert_sound(result, arch, docker_cell.run.log)
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
