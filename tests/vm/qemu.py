"""Boot a real 1 GiB guest under qemu and drive it over SSH, as the fleet drives its instances.

The NoCloud seed carries the very user-data LibvirtInstance renders, and a cell is run with the
very command strings DistroBootstrap and WorkloadBenchmark run (components.commands). qemu is
always stopped and the overlay removed, on success, failure or interrupt.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.cloudinit import GUEST_USER, render_meta_data, render_user_data
from components.commands import KIT_DIR, BenchPlan, CellCommands, cell_commands, kit_hash
from components.results import parse_bootstrap, read_result
from tests.vm import images
from tests.vm.images import GuestImage
from tests.vm.upload import UploadError, sftp_upload

QEMU = {"x86_64": "qemu-system-x86_64", "aarch64": "qemu-system-aarch64"}
CONSOLE = {"x86_64": "ttyS0", "aarch64": "ttyAMA0"}
# Debian packages that provide each host tool the harness runs.
HOST_TOOLS = {"qemu-system-x86_64": "qemu-system-x86", "qemu-system-aarch64": "qemu-system-arm",
              "qemu-img": "qemu-utils", "genisoimage": "genisoimage", "ssh": "openssh-client",
              "ssh-keygen": "openssh-client", "scp": "openssh-client", "sftp": "openssh-client"}


class GuestError(RuntimeError):
    pass


def missing_tools(arch: str) -> list[str]:
    wanted = [t for t in HOST_TOOLS if not t.startswith("qemu-system") or t == QEMU[arch]]
    return sorted({HOST_TOOLS[t] for t in wanted if shutil.which(t) is None})


def probe_image(arch: str, tool: str) -> GuestImage | None:
    """For a probe on the command line: the test image for `arch`, built if it isn't cached; None,
    after naming on stderr what the host lacks, when qemu can't run it."""
    missing = missing_tools(arch)
    if missing:
        print(f"{tool}: missing {', '.join(missing)}", file=sys.stderr)
        return None
    return images.cached(arch) or images.build(arch)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log(msg: str) -> None:
    print(f"[vm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@dataclass
class Guest:
    arch: str
    port: int
    key: Path
    workdir: Path
    proc: subprocess.Popen[bytes]
    boot_s: float = 0.0
    cloud_init_s: float = 0.0
    connect_timeout: int = 10  # ssh's ConnectTimeout: the TCP connection and the banner exchange

    def _ssh_base(self) -> list[str]:
        return ["-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", f"ConnectTimeout={self.connect_timeout}",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=8"]

    def ssh_argv(self, command: str) -> list[str]:
        return ["ssh", *self._ssh_base(), "-p", str(self.port), f"{GUEST_USER}@127.0.0.1", command]

    def ssh(self, command: str, timeout: float, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(self.ssh_argv(command), capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            # 255 is ssh's own failure: the guest itself is the suspect, so show its console too.
            console = f"\nconsole tail:\n{self.console_tail(20)}" if proc.returncode == 255 else ""
            raise GuestError(f"ssh exited {proc.returncode}: {command[:200]}\nstderr tail:\n{proc.stderr[-2000:]}"
                             f"{console}")
        return proc

    def _scp(self, args: list[str], timeout: float, attempts: int = 3) -> None:
        for attempt in range(1, attempts + 1):
            proc = subprocess.run(["scp", *self._ssh_base(), "-q", "-P", str(self.port), *args],
                                  capture_output=True, text=True, timeout=timeout, check=False)
            if proc.returncode == 0:
                return
            log(f"scp attempt {attempt} of {attempts} failed: {proc.stderr.strip()}")
            time.sleep(5 * attempt)
        raise GuestError(f"scp {' '.join(args)} failed {attempts} times")

    def copy_dir(self, local: Path, remote: str, timeout: float = 300, attempts: int = 3) -> str:
        """CopyToRemote with a folder, by the provider's rule (tests/vm/upload.py): over SFTP, the
        folder placed inside `remote`, no mode bits. Returns where the files landed."""
        for attempt in range(1, attempts + 1):
            try:
                return sftp_upload(local, remote, port=self.port, destination=f"{GUEST_USER}@127.0.0.1",
                                   ssh_options=self._ssh_base(), timeout=timeout)
            except UploadError as e:
                if attempt == attempts:
                    raise GuestError(str(e)) from e
                log(f"sftp attempt {attempt} of {attempts} failed: {e}")
                time.sleep(5 * attempt)
        raise AssertionError("unreachable")

    def copy_file(self, local: Path, remote: str, timeout: float = 900) -> None:
        self._scp([str(local), f"{GUEST_USER}@127.0.0.1:{remote}"], timeout)

    def console_tail(self, lines: int = 30) -> str:
        path = self.workdir / "console.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def alive(self) -> bool:
        return self.proc.poll() is None


def qemu_argv(arch: str, image: GuestImage, overlay: Path, seed: Path, port: int, memory_mib: int,
              accel: str, console_log: Path) -> list[str]:
    machine = ["-M", "virt"] if arch == "aarch64" else ["-M", "q35"]
    return [
        QEMU[arch], *machine, "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
        "-m", str(memory_mib), "-smp", "1",
        "-kernel", str(image.kernel), "-initrd", str(image.initrd),
        "-append", f"root=/dev/vda rw console={CONSOLE[arch]} panic=-1",
        "-drive", f"file={overlay},if=virtio,format=qcow2",
        "-drive", f"file={seed},if=virtio,format=raw,readonly=on",
        "-netdev", f"user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:22", "-device", "virtio-net-pci,netdev=n0",
        "-display", "none", "-serial", f"file:{console_log}", "-monitor", "none", "-no-reboot",
    ]


def default_accel(arch: str) -> str:
    """TCG unless K8SF_VM_ACCEL says kvm: on these machines KVM guests hang at kernel start."""
    wanted = os.environ.get("K8SF_VM_ACCEL", "tcg")
    if wanted not in ("tcg", "kvm"):
        raise GuestError(f"K8SF_VM_ACCEL={wanted!r}: choose tcg or kvm")
    return wanted if arch == os.uname().machine else "tcg"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=15)


@contextlib.contextmanager
def boot(arch: str, image: GuestImage, cell: str, memory_mib: int = 1024, ssh_timeout: float | None = None,
         accel: str | None = None, probe_timeout: float = 30, connect_timeout: int = 10) -> Iterator[Guest]:
    """A booted guest. `connect_timeout` (ssh's ConnectTimeout) and `probe_timeout` (each `ssh true`
    while waiting) are for loaded hosts: there an emulated guest took 1 min 54 s to let one login
    in, and a probe cut off before that never gets in at all."""
    workdir = Path(tempfile.mkdtemp(prefix=f"k8sf-vm-{arch}-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        key = workdir / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        (workdir / "user-data").write_text(render_user_data(Path(f"{key}.pub").read_text()))
        (workdir / "meta-data").write_text(render_meta_data(cell))
        seed = workdir / "seed.iso"
        subprocess.run(["genisoimage", "-quiet", "-output", str(seed), "-volid", "cidata", "-joliet", "-rock",
                        str(workdir / "user-data"), str(workdir / "meta-data")], check=True)
        overlay = workdir / "overlay.qcow2"
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(image.root), "-F", "raw",
                        str(overlay)], check=True)
        port = free_port()
        argv = qemu_argv(arch, image, overlay, seed, port, memory_mib, accel or default_accel(arch),
                         workdir / "console.log")
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=open(workdir / "qemu.err", "wb"))  # noqa: SIM115 - closed with the process
        guest = Guest(arch, port, key, workdir, proc, connect_timeout=connect_timeout)
        # K8SF_VM_SSH_TIMEOUT: more time on a machine that is busy with other work (TCG boots slow down).
        limit = ssh_timeout or float(os.environ.get("K8SF_VM_SSH_TIMEOUT") or
                                     (900 if arch != os.uname().machine else 420))
        log(f"{cell}: booting {arch} (1 vCPU, {memory_mib} MiB), waiting for SSH on port {port}")
        while True:
            if not guest.alive():
                raise GuestError(f"qemu exited {proc.returncode}: {(workdir / 'qemu.err').read_text()[-1000:]}\n"
                                 f"console:\n{guest.console_tail()}")
            try:
                if guest.ssh("true", timeout=probe_timeout, check=False).returncode == 0:
                    break
            except subprocess.TimeoutExpired:
                # qemu's port forward accepts before the guest's sshd does; the banner never comes.
                pass
            if time.monotonic() - t0 > limit:
                raise GuestError(f"{cell}: no SSH after {limit:.0f} s; console:\n{guest.console_tail()}")
            time.sleep(3)
        guest.boot_s = round(time.monotonic() - t0, 1)
        log(f"{cell}: SSH answered after {guest.boot_s} s; waiting for the boot (cloud-init included) to finish")
        # cloud-init is still at work when SSH first answers; let it finish so nothing it
        # restarts cuts a copy off. Its stages are boot jobs, so systemd's wait covers them, as in
        # the kit's bootstrap, and runs no Python on the guest right before the OS baseline.
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                # Any answer means the boot is over (1 is "degraded": the test image has no
                # locales, so cloud-init's locale module fails); 255 is ssh's own: the connection dropped.
                if guest.ssh("timeout 600 systemctl is-system-running --wait >/dev/null", timeout=620,
                             check=False).returncode != 255:
                    break
            except subprocess.TimeoutExpired:
                pass
            time.sleep(3)
        guest.cloud_init_s = round(time.monotonic() - t0 - guest.boot_s, 1)
        yield guest
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class CellRun:
    commands: CellCommands
    bootstrap: dict[str, Any]
    result: dict[str, Any]
    timings_s: dict[str, float]
    log: str = ""  # the kit's stderr, for failure messages


def install_kit(guest: Guest, commands: CellCommands) -> None:
    """DistroBootstrap's CopyToRemote: the kit folder to commands.kit_path, every time, as the
    provider copies on every create (copyController.go:118-135) whatever is already there."""
    landed = guest.copy_dir(KIT_DIR, commands.kit_path)
    if landed != commands.kit_dir:
        raise GuestError(f"the kit landed in {landed}, but the commands run it from {commands.kit_dir}")


def _run_step(guest: Guest, command: str, timeout_s: int, parse: Callable[[str, str], dict[str, Any]], cell: str,
              log: list[str] | None) -> dict[str, Any]:
    """One remote step as the fleet runs it; the kit's stderr (its log) is kept when asked."""
    out = guest.ssh(command, timeout=timeout_s + 60)
    if log is not None:
        log.append(out.stderr)
    return parse(out.stdout, cell)


def run_bootstrap(guest: Guest, commands: CellCommands, plan: BenchPlan, log: list[str] | None = None
                  ) -> dict[str, Any]:
    return _run_step(guest, commands.bootstrap, plan.bootstrap_timeout_s(), parse_bootstrap, plan.cell, log)


def run_benchmark(guest: Guest, commands: CellCommands, plan: BenchPlan, log: list[str] | None = None
                  ) -> dict[str, Any]:
    return _run_step(guest, commands.benchmark, plan.benchmark_timeout_s(), read_result, plan.cell, log)


def run_cell(guest: Guest, plan: BenchPlan) -> CellRun:
    """The fleet's sequence for one cell: upload the kit, bootstrap, benchmark; parsed as the program does."""
    commands = cell_commands(plan, kit_hash())
    timings: dict[str, float] = {"boot_to_ssh": guest.boot_s, "cloud_init_after_ssh": guest.cloud_init_s}
    t0 = time.monotonic()
    install_kit(guest, commands)
    timings["upload_kit"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    log(f"{plan.cell}: bootstrap {plan.distro}")
    kit_log: list[str] = []
    boot_doc = run_bootstrap(guest, commands, plan, kit_log)
    timings["bootstrap"] = round(time.monotonic() - t0, 1)
    t0 = time.monotonic()
    log(f"{plan.cell}: benchmark {plan.distro} (bootstrap status {boot_doc['status']})")
    result = run_benchmark(guest, commands, plan, kit_log)
    timings["benchmark"] = round(time.monotonic() - t0, 1)
    log(f"{plan.cell}: status {result['status']}, timings {timings}")
    return CellRun(commands, boot_doc, result, timings, "".join(kit_log))
