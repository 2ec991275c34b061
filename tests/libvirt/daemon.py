"""A real libvirtd for tests, inside a network namespace the test creates and removes.

There is no systemd on these machines, so nothing is socket-activated: virtlogd and libvirtd are
started with ``-d`` and stopped by the pids in their pid files (../shared/FACTS.md §7). Both run
inside the namespace, as does every client, so a guest's bridge, its DHCP server, its NAT rules
and ``ip_forward`` all live there and vanish with it: no guest traffic can reach a private address
outside it. ``/dev/kvm`` is not usable by the ``libvirt-qemu`` user here, so qemu.conf gets
``user``/``group`` root while the test runs, and its old text back afterwards.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

URI = "qemu:///system"
LIBVIRTD, VIRTLOGD = Path("/usr/sbin/libvirtd"), Path("/usr/sbin/virtlogd")
PIDFILES = {"libvirtd": Path("/run/libvirtd.pid"), "virtlogd": Path("/run/virtlogd.pid")}
QEMU_CONF = Path("/etc/libvirt/qemu.conf")
AAVMF = Path("/usr/share/AAVMF/AAVMF_CODE.fd")
# What the real-libvirt test runs, and the Debian package that provides each (FACTS §7).
HOST_TOOLS = {
    str(LIBVIRTD): "libvirt-daemon-system", str(VIRTLOGD): "libvirt-daemon-system", "virsh": "libvirt-clients",
    "qemu-system-x86_64": "qemu-system-x86", "qemu-system-aarch64": "qemu-system-arm",
    str(AAVMF): "qemu-efi-aarch64", "qemu-img": "qemu-utils", "mkisofs": "genisoimage",
    "xsltproc": "xsltproc", "dnsmasq": "dnsmasq-base", "ip": "iproute2", "iptables-save": "iptables",
}


class LibvirtError(RuntimeError):
    pass


def log(msg: str) -> None:
    print(f"[libvirt {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def missing_packages() -> list[str]:
    def present(tool: str) -> bool:
        return Path(tool).exists() if tool.startswith("/") else shutil.which(tool) is not None

    return sorted({pkg for tool, pkg in HOST_TOOLS.items() if not present(tool)})


def _alive(pidfile: Path) -> int | None:
    """The pid in a pid file if that process runs, else None."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def running_daemons() -> list[str]:
    return [f"{name} (pid {pid})" for name, f in PIDFILES.items() if (pid := _alive(f)) is not None]


def _stop_pid(pid: int, name: str, timeout: float = 20) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    log(f"{name} (pid {pid}) ignored SIGTERM for {timeout:.0f} s: SIGKILL")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


@dataclass
class Libvirt:
    """libvirtd in network namespace ``netns``; run clients through run() or virsh()."""

    netns: str

    def run(self, argv: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["ip", "netns", "exec", self.netns, *argv], capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            detail = proc.stderr.strip() or proc.stdout.strip()
            raise LibvirtError(f"{' '.join(argv)} exited {proc.returncode}: {detail}")
        return proc

    def virsh(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run(["virsh", "-q", "-c", URI, *args], timeout=timeout, check=check)

    def names(self, kind: str) -> set[str]:
        """Every domain, network or pool libvirt knows, active or not."""
        cmd = {"domain": ["list", "--all", "--name"], "network": ["net-list", "--all", "--name"],
               "pool": ["pool-list", "--all", "--name"]}[kind]
        return {n.strip() for n in self.virsh(*cmd).stdout.splitlines() if n.strip()}

    def wait_ready(self, timeout: float = 120) -> None:
        deadline, last = time.monotonic() + timeout, ""
        while time.monotonic() < deadline:
            proc = self.virsh("version", timeout=60, check=False)
            if proc.returncode == 0:
                return
            last = proc.stderr.strip()
            time.sleep(0.5)
        raise LibvirtError(f"libvirtd did not answer `virsh -c {URI} version` within {timeout:.0f} s: {last}")


def _host_network_state() -> dict[str, str]:
    """What a NAT network would change if it leaked out of the namespace (FACTS §7)."""
    rules = subprocess.run(["iptables-save"], capture_output=True, text=True, timeout=30, check=False).stdout
    return {
        "ip_forward": Path("/proc/sys/net/ipv4/ip_forward").read_text().strip(),
        "LIBVIRT chains": "\n".join(sorted(line for line in rules.splitlines() if "LIBVIRT" in line)),
        "links": "\n".join(sorted(p.name for p in Path("/sys/class/net").iterdir() if p.name.startswith("virbr"))),
    }


@contextlib.contextmanager
def libvirt_in_netns(netns: str) -> Iterator[Libvirt]:
    """Start virtlogd and libvirtd inside a new network namespace; stop them and remove it after.

    The caller removes the libvirt objects it made while libvirtd still runs; this asserts that the
    host's forwarding, iptables and links are as they were."""
    if os.geteuid() != 0:
        raise PermissionError("needs root: it starts libvirtd and creates a network namespace")
    busy = running_daemons()
    if busy:
        raise LibvirtError(f"a libvirt daemon already runs here ({', '.join(busy)}); this test starts its own")
    before = _host_network_state()
    conf_text = QEMU_CONF.read_text()
    started: dict[str, int] = {}
    lv = Libvirt(netns)
    subprocess.run(["ip", "netns", "add", netns], check=True, timeout=30)
    try:
        subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True, timeout=30)
        QEMU_CONF.write_text(conf_text + '\n# k8s-footprint real-libvirt test (restored after)\nuser = "root"\n'
                             'group = "root"\n')
        t0 = time.monotonic()
        for name, binary in (("virtlogd", VIRTLOGD), ("libvirtd", LIBVIRTD)):
            PIDFILES[name].unlink(missing_ok=True)
            lv.run([str(binary), "-d"], timeout=60)
            deadline = time.monotonic() + 30
            while (pid := _alive(PIDFILES[name])) is None:
                if time.monotonic() > deadline:
                    raise LibvirtError(f"{name} -d wrote no live pid to {PIDFILES[name]} within 30 s")
                time.sleep(0.1)
            started[name] = pid
        log(f"virtlogd (pid {started['virtlogd']}) and libvirtd (pid {started['libvirtd']}) started in netns "
            f"{netns}; waiting for `virsh version`")
        lv.wait_ready()
        log(f"libvirtd answers after {time.monotonic() - t0:.1f} s")
        yield lv
    finally:
        for name in ("libvirtd", "virtlogd"):
            if name in started:
                _stop_pid(started[name], name)
        QEMU_CONF.write_text(conf_text)
        subprocess.run(["ip", "netns", "delete", netns], check=False, timeout=30)
    after = _host_network_state()
    if after != before:
        raise LibvirtError(f"the host's network state changed: before {before}, after {after}")
    if netns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False).stdout.split():
        raise LibvirtError(f"network namespace {netns} is still there")
