"""The exact commands a cell runs on its instance, from one function.

DistroBootstrap and WorkloadBenchmark run these strings over SSH, and the qemu test harness
runs the very same strings, so what the tests prove is what the fleet does. No secret is ever
part of a command: the guest kit makes the workload's password on the guest itself.
"""

from __future__ import annotations

import hashlib
import shlex
from dataclasses import dataclass
from pathlib import Path

from components.cells import Cell
from components.config import FleetSpec

KIT_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "guest"
DEFAULT_IMAGE = "mysql:8.4"
OS_SETTLE_MAX_S = 60  # the OS baseline needs less settling than a distro does
MARGIN_S = 300


def kit_files(kit_dir: Path | None = None) -> list[Path]:
    kit_dir = kit_dir or KIT_DIR
    return sorted(p for p in kit_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def kit_hash(kit_dir: Path | None = None) -> str:
    """Content hash of the guest kit: a new kit is uploaded to a new path and re-runs its cells."""
    kit_dir = kit_dir or KIT_DIR
    h = hashlib.sha256()
    for path in kit_files(kit_dir):
        h.update(path.relative_to(kit_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def remote_kit_path(digest: str) -> str:
    # /var/tmp survives reboots (a user_data change restarts an AWS instance); the hash makes
    # the path new for every kit, which is what CopyToRemote needs to place the folder there.
    return f"/var/tmp/k8sf-kit-{digest}"


@dataclass(frozen=True)
class BenchPlan:
    """Everything that shapes one cell's commands."""

    cell: str
    distro: str
    version: str | None = None
    workload: str = "mysql"
    settle_s: int = 300
    interval_s: int = 5
    samples: int = 12
    image: str = DEFAULT_IMAGE
    image_tar: str | None = None  # a path on the instance
    power_off_after: bool = False
    install_timeout_s: int = 1800
    ready_timeout_s: int = 900
    workload_timeout_s: int = 900

    @classmethod
    def for_cell(cls, spec: FleetSpec, cell: Cell) -> BenchPlan:
        return cls(
            cell=cell.name, distro=cell.distro, version=spec.versions.get(cell.distro),
            workload=spec.workload, settle_s=spec.settle_seconds, interval_s=spec.sample_interval_seconds,
            samples=spec.samples, power_off_after=spec.power_off_after,
        )

    @property
    def os_settle_s(self) -> int:
        return min(self.settle_s, OS_SETTLE_MAX_S)

    @property
    def window_s(self) -> int:
        return self.samples * self.interval_s

    def bootstrap_timeout_s(self) -> int:
        return self.os_settle_s + self.window_s + self.install_timeout_s + self.ready_timeout_s + 60 + MARGIN_S

    def benchmark_timeout_s(self) -> int:
        idle = self.settle_s + self.window_s + 60
        workload = 0
        if self.workload != "none":
            workload = self.workload_timeout_s + 30 + self.settle_s + self.window_s + 60
            if self.image_tar:
                workload += self.workload_timeout_s  # the import has the same bound
        return idle + workload + MARGIN_S


@dataclass(frozen=True)
class CellCommands:
    kit_path: str
    bootstrap: str
    benchmark: str
    uninstall: str
    # The hosts backend without allowUninstall: what destroy runs, and what a changed command set
    # runs instead of a second install (it refuses).
    leave_installed: str = ""
    refuse_reinstall: str = ""

    def fingerprint(self) -> str:
        """Changes with any command a cell runs (and so with the kit, whose hash is in its path):
        the instance's replacement trigger, so changed commands never re-run on a used machine."""
        text = "\0".join((self.kit_path, self.bootstrap, self.benchmark))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Root runs the kit directly; anyone else through non-interactive sudo, which fails instead of
# waiting for a password nobody will type.
_AS_ROOT = 'S=; [ "$(id -u)" = 0 ] || S="sudo -n"'


def cell_commands(plan: BenchPlan, digest: str) -> CellCommands:
    copy_to = remote_kit_path(digest)
    kit = copy_destination(copy_to, str(KIT_DIR))  # where CopyToRemote really puts the files
    q = shlex.quote
    k8sf = f'$S sh {q(kit)}/k8sf'

    boot = ["bootstrap", plan.distro]
    if plan.version:
        boot += ["--version", plan.version]
    boot += ["--settle", str(plan.os_settle_s), "--interval", str(plan.interval_s), "--samples", str(plan.samples),
             "--install-timeout", str(plan.install_timeout_s), "--ready-timeout", str(plan.ready_timeout_s)]

    bench = ["benchmark", plan.distro, "--settle", str(plan.settle_s), "--interval", str(plan.interval_s),
             "--samples", str(plan.samples), "--workload", plan.workload, "--image", plan.image,
             "--workload-timeout", str(plan.workload_timeout_s), "--cell", plan.cell]
    if plan.image_tar:
        bench += ["--image-tar", plan.image_tar]

    def line(args: list[str], timeout_s: int) -> str:
        return f"{_AS_ROOT}; timeout {timeout_s} {k8sf} {' '.join(q(a) for a in args)}"

    benchmark = line(bench, plan.benchmark_timeout_s())
    if plan.power_off_after:
        # Once the result is out, free the host's memory for the next cell; only on success, so
        # a failed cell stays up to be looked at.
        benchmark = (f"{benchmark}; rc=$?; if [ $rc -eq 0 ]; then $S systemd-run --on-active=5 "
                     f"--unit=k8sf-poweroff /bin/systemctl poweroff >/dev/null 2>&1 || :; fi; exit $rc")
    # The kit folder goes too: nothing of the cell is left on a machine it doesn't own.
    remove_kit = f"rm -rf {q(copy_to)}"
    uninstall = (f"{_AS_ROOT}; if [ -f {q(kit)}/k8sf ]; then timeout 1200 {k8sf} uninstall {q(plan.distro)}; fi "
                 f"&& {remove_kit}")
    leave = (f"echo 'k8s-footprint: {plan.cell}: leaving {plan.distro} installed on this host "
             f"(allowUninstall is false); removing only the kit' >&2; {remove_kit}")
    refuse = (f"echo 'k8s-footprint: {plan.cell}: the commands changed, but this host already holds {plan.distro} "
              "from the earlier run, and a clean install cannot be measured on it. Set allowUninstall: true to "
              "let pulumi uninstall it and install again, or remove it by hand and run "
              f"pulumi up --replace on this cell.' >&2; exit 1")
    return CellCommands(kit_path=copy_to, bootstrap=line(boot, plan.bootstrap_timeout_s()), benchmark=benchmark,
                        uninstall=uninstall, leave_installed=leave, refuse_reinstall=refuse)


def copy_destination(remote_path: str, source_dir: str) -> str:
    """Where remote.CopyToRemote puts a folder: inside remote_path, under the folder's own name,
    unless the source path ends in '/' (then its contents go to remote_path itself)."""
    if source_dir.endswith("/"):
        return remote_path.rstrip("/") or "/"
    return f"{remote_path.rstrip('/')}/{Path(source_dir).name}"
