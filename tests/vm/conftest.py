"""Fixtures for the real-VM tests: images, a booted guest per (distro, arch), and result files."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.commands import KIT_DIR, BenchPlan, cell_commands, kit_hash
from tests.vm import images, qemu, workload_image
from tests.vm.helpers import harness_stamp

KIT_VERSION = (KIT_DIR / "VERSION").read_text().strip()


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (a CI cancel, a kill) would end Python without running any finally: make it an
    # interrupt, so the harness still stops every qemu and removes its overlay.
    raise KeyboardInterrupt(f"signal {signum}")


signal.signal(signal.SIGTERM, _terminate)
# Short windows: enough samples for the statistics, without making the suite slow.
SETTLE_S, INTERVAL_S, SAMPLES = 10, 2, 5


def results_dir() -> Path | None:
    """Where measured results are kept (make test-vm sets it); None: don't write into the tree."""
    value = os.environ.get("K8SF_VM_RESULTS_DIR")
    return Path(value) if value else None


def require_vm_host(arch: str) -> None:
    missing = sorted(set(images.missing_host_tools(arch)) | set(qemu.missing_tools(arch)))
    if missing:
        pytest.skip(f"VM tests for {arch} need these Debian packages: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        pytest.skip("VM tests need root: debootstrap, chroot and binfmt_misc build the guest images")


@dataclass
class Durations:
    """Measured duration of each phase, per arch; written next to the results."""

    data: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(self, arch: str, key: str, value: Any) -> None:
        self.data.setdefault(arch, {})[key] = value


DURATIONS = Durations()


@pytest.fixture(scope="session", autouse=True)
def _write_durations() -> Iterator[None]:
    yield
    out = results_dir()
    if out is not None and DURATIONS.data:
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"durations-{time.strftime('%Y-%m-%d')}-kit{KIT_VERSION}.json"
        previous = json.loads(path.read_text()) if path.exists() else {}
        path.write_text(json.dumps({**previous, **DURATIONS.data}, indent=2, sort_keys=True) + "\n")


def guest_image(arch: str) -> images.GuestImage:
    require_vm_host(arch)
    t0 = time.monotonic()
    image = images.build(arch)
    DURATIONS.add(arch, "image_lookup_or_build_s", round(time.monotonic() - t0, 2))
    DURATIONS.add(arch, "image_build_cold_s", image.build["timings_s"])
    return image


def save_result(result: dict[str, Any], arch: str, name: str) -> None:
    out = results_dir()
    if out is None:
        return
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{time.strftime('%Y-%m-%d')}-{arch}-{name}-kit{KIT_VERSION}.json"
    path.write_text(json.dumps(harness_stamp(result, name), indent=2) + "\n")



def plan(arch: str, distro: str, **kw: Any) -> BenchPlan:
    return BenchPlan(cell=f"{arch}-{distro}-1", distro=distro, settle_s=SETTLE_S, interval_s=INTERVAL_S,
                     samples=SAMPLES, **kw)


@dataclass
class BareCell:
    guest: qemu.Guest
    run: qemu.CellRun
    plan: BenchPlan


@dataclass
class DockerCell:
    guest: qemu.Guest
    run: qemu.CellRun
    plan: BenchPlan
    dropped_after_s: float
    first_attempt_rc: int | None
    installs_of_docker: int


def _bare(arch: str) -> Iterator[BareCell]:
    image = guest_image(arch)
    p = plan(arch, "bare", workload="none")
    with qemu.boot(arch, image, p.cell) as guest:
        run = qemu.run_cell(guest, p)
        DURATIONS.add(arch, "bare", run.timings_s)
        save_result(run.result, arch, "bare")
        yield BareCell(guest, run, p)


def _docker(arch: str) -> Iterator[DockerCell]:
    image = guest_image(arch)
    t0 = time.monotonic()
    tar = workload_image.build(arch)
    DURATIONS.add(arch, "workload_image_lookup_or_build_s", round(time.monotonic() - t0, 1))
    tar_remote = "/var/tmp/k8sf-workload.tar"
    # Under emulation, docker load of a ~400 MiB image alone took over 900 s (aarch64 on x86).
    emulated = arch != os.uname().machine
    p = plan(arch, "docker", image=workload_image.IMAGE_NAME, image_tar=tar_remote,
             workload_timeout_s=3600 if emulated else 900)
    with qemu.boot(arch, image, p.cell) as guest:
        commands = cell_commands(p, kit_hash())
        qemu.install_kit(guest, commands)
        # Fault: the SSH connection drops in the middle of the bootstrap (apt is installing).
        drop_after = 60.0 if arch == os.uname().machine else 150.0
        first = subprocess.Popen(guest.ssh_argv(commands.bootstrap), stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
        timer = threading.Timer(drop_after, first.kill)
        timer.start()
        first.wait()
        timer.cancel()
        qemu.log(f"{p.cell}: first bootstrap ended with {first.returncode} (killed after {drop_after} s: the drop)")
        t0 = time.monotonic()
        guest.copy_file(tar, tar_remote)
        DURATIONS.add(arch, "copy_workload_tar_s", round(time.monotonic() - t0, 1))
        run = qemu.run_cell(guest, p)
        installs = int(guest.ssh("grep -c ' install docker.io' /var/log/dpkg.log || true", 30).stdout.strip() or 0)
        DURATIONS.add(arch, "docker", run.timings_s)
        save_result(run.result, arch, "docker-mariadb")
        yield DockerCell(guest, run, p, drop_after, first.returncode, installs)


@pytest.fixture(scope="module", params=[
    pytest.param("x86_64", marks=pytest.mark.vm),
    pytest.param("aarch64", marks=[pytest.mark.vm, pytest.mark.vm_aarch64]),
])
def arch(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def bare_cell(arch: str) -> Iterator[BareCell]:
    yield from _bare(arch)


@pytest.fixture(scope="module")
def docker_cell(arch: str) -> Iterator[DockerCell]:
    yield from _docker(arch)
