"""make doctor: check everything a stack's `pulumi up` needs, report every problem at once, and
print the one line that fixes each. `make up` runs it first.

It reads the selected stack's own config (Pulumi.<stack>.yaml), through the program's own parser,
so it checks the libvirt URI, pool, arches and network that stack will use, not the defaults.

    python -m tools.doctor --stack dev
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import ipaddress
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components import config  # noqa: E402 - after the path is set
from components.config import FleetSpec  # noqa: E402

# The SDK the program is pinned to (requirements.txt), and the oldest CLI that honours the resource
# options the program relies on. pulumi CHANGELOG: 3.207.0 added ReplaceWith (#20693), 3.208.0
# replacement_trigger (#20936), and 3.226.0 fixed "ReplacementTrigger firing due to dependency
# changes" (#22119). An older CLI ignores the options it doesn't know, silently: a changed command
# set would then re-run on a used machine.
PINNED_CLI = "3.272.0"
MIN_CLI = "3.226.0"
# Resource plugins the program loads, per backend (the SDK versions pinned in requirements.txt).
PLUGINS = {"command": "1.2.1", "tls": "5.6.2", "libvirt": "0.5.4", "aws": "7.51.1"}
# Disk a libvirt fleet needs in its pool: a base image per arch, and an overlay per cell that grows
# with what the cell installs (MicroK8s and k3s images are the largest).
BASE_IMAGE_GIB = 1
OVERLAY_GIB = 3
KVM_GET_API_VERSION = 0xAE00  # linux/kvm.h: _IO(KVMIO, 0x00)
AAVMF_FILES = ("/usr/share/AAVMF/AAVMF_CODE.fd", "/usr/share/qemu-efi-aarch64/QEMU_EFI.fd")
QEMU = {"x86_64": ("qemu-system-x86_64", "qemu-system-x86"), "aarch64": ("qemu-system-aarch64", "qemu-system-arm")}


@dataclass(frozen=True)
class Finding:
    check: str
    ok: bool
    detail: str
    fix: str = ""  # the one line that fixes it
    blocking: bool = True  # a non-blocking finding is a note: up can go on


@dataclass
class Machine:
    """What the checks read from this machine; tests replace parts of it."""

    run: Callable[[Sequence[str], float], subprocess.CompletedProcess[str]] = field(default=lambda argv, t: (
        subprocess.run(list(argv), capture_output=True, text=True, timeout=t, check=False)))
    which: Callable[[str], str | None] = shutil.which
    python: tuple[int, int] = (sys.version_info.major, sys.version_info.minor)
    kvm_path: str = "/dev/kvm"
    files: Callable[[str], bool] = os.path.exists
    free_bytes: Callable[[str], int] = field(default=lambda path: shutil.disk_usage(path).free)
    aws_session: Callable[[str | None], Any] | None = None

    def sh(self, argv: Sequence[str], timeout: float = 20) -> subprocess.CompletedProcess[str]:
        try:
            return self.run(argv, timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return subprocess.CompletedProcess(list(argv), 124, "", str(exc))


def version_tuple(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in match.groups()) if match else ()


# ---- checks everyone needs ---------------------------------------------------------------------


def check_python(m: Machine) -> Finding:
    ok = m.python >= (3, 11)
    return Finding("python", ok, f"Python {m.python[0]}.{m.python[1]}",
                   "" if ok else "install Python 3.11 or newer (Debian 12: apt-get install python3), "
                   "then make clean && make doctor")


def check_pulumi_cli(m: Machine) -> Finding:
    if m.which("pulumi") is None:
        return Finding("pulumi CLI", False, "not on PATH",
                       f"curl -fsSL https://get.pulumi.com | sh -s -- --version {PINNED_CLI}")
    out = m.sh(["pulumi", "version"])
    have = version_tuple(out.stdout)
    if not have:
        return Finding("pulumi CLI", False, f"`pulumi version` printed {out.stdout.strip()!r} ({out.stderr.strip()})",
                       f"reinstall it: curl -fsSL https://get.pulumi.com | sh -s -- --version {PINNED_CLI}")
    shown = ".".join(map(str, have))
    if have < version_tuple(MIN_CLI):
        return Finding("pulumi CLI", False,
                       f"{shown} is older than {MIN_CLI}, which it needs for replacement_trigger and replace_with "
                       "(an older CLI ignores them, and changed commands would re-run on used machines)",
                       f"curl -fsSL https://get.pulumi.com | sh -s -- --version {PINNED_CLI}")
    note = "" if shown == PINNED_CLI else f" (the SDK is pinned to {PINNED_CLI}; {MIN_CLI} or newer works)"
    return Finding("pulumi CLI", True, f"{shown}{note}")


def check_plugins(m: Machine, spec: FleetSpec) -> list[Finding]:
    wanted = {"command": PLUGINS["command"]}
    if spec.backend != "hosts":
        wanted["tls"] = PLUGINS["tls"]
    if spec.backend in ("libvirt", "aws"):
        wanted[spec.backend] = PLUGINS[spec.backend]
    have: set[tuple[str, str]] = set()
    if m.which("pulumi") is not None:
        out = m.sh(["pulumi", "plugin", "ls", "--json"], 60)
        try:
            have = {(p["name"], p["version"]) for p in json.loads(out.stdout or "[]") if p.get("kind") == "resource"}
        except (json.JSONDecodeError, TypeError, KeyError):
            have = set()
    findings = []
    for name, version in wanted.items():
        # `pulumi up` downloads a missing plugin itself where the network allows: a note, not a stop.
        ok = (name, version) in have
        findings.append(Finding(f"plugin {name} {version}", ok, "installed" if ok else "not installed yet",
                                "" if ok else f"pulumi plugin install resource {name} {version}", blocking=False))
    return findings


# ---- libvirt -----------------------------------------------------------------------------------


def _virsh(m: Machine, spec: FleetSpec, *args: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    return m.sh(["virsh", "-c", spec.libvirt_uri, *args], timeout)


def kvm_works(m: Machine) -> tuple[bool, str]:
    """Can this user open /dev/kvm and talk to it? Existing is not enough: on some machines it is
    there but owned by a group nobody is in, or the module refuses."""
    try:
        fd = os.open(m.kvm_path, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return False, f"{m.kvm_path}: {exc.strerror}"
    try:
        api = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return False, f"{m.kvm_path}: KVM_GET_API_VERSION failed: {exc.strerror}"
    finally:
        os.close(fd)
    return api == 12, f"KVM API version {api}"


def check_libvirt(m: Machine, spec: FleetSpec) -> list[Finding]:
    if m.which("virsh") is None:
        return [Finding("libvirt", False, "virsh is not installed",
                        "sudo apt-get install libvirt-daemon-system libvirt-clients && sudo adduser $USER libvirt")]
    version = _virsh(m, spec, "version")
    if version.returncode != 0:
        return [Finding("libvirt", False, f"{spec.libvirt_uri} does not answer: {version.stderr.strip()[:200]}",
                        "sudo systemctl enable --now libvirtd, and be in the libvirt group "
                        "(sudo adduser $USER libvirt, then log in again)")]
    findings = [Finding("libvirt", True, f"{spec.libvirt_uri} answers")]
    pool = _virsh(m, spec, "pool-info", spec.libvirt_pool)
    if pool.returncode != 0:
        v, p = f"virsh -c {spec.libvirt_uri}", spec.libvirt_pool
        findings.append(Finding(f"pool {p}", False, "no such storage pool",
                                f"{v} pool-define-as {p} dir --target /var/lib/libvirt/images && {v} pool-build {p} "
                                f"&& {v} pool-start {p} && {v} pool-autostart {p}"))
    else:
        findings.append(check_pool_space(spec, pool.stdout))
    for arch in spec.arches:
        findings.extend(check_arch(m, spec, arch))
    findings.append(check_network(m, spec))
    return findings


def _pool_bytes(pool_info: str, field_name: str) -> int | None:
    match = re.search(rf"^{field_name}:\s+([\d.]+)\s+(\w+)", pool_info, re.MULTILINE)
    if not match:
        return None
    units = {"B": 1, "KiB": 1024, "MiB": 1024**2, "GiB": 1024**3, "TiB": 1024**4}
    return int(float(match.group(1)) * units.get(match.group(2), 1))


def needed_pool_bytes(spec: FleetSpec) -> int:
    cells = len(spec.arches) * len(spec.distros) * spec.repetitions
    return (BASE_IMAGE_GIB * len(spec.arches) + OVERLAY_GIB * cells) * 1024**3


def check_pool_space(spec: FleetSpec, pool_info: str) -> Finding:
    available = _pool_bytes(pool_info, "Available")
    need = needed_pool_bytes(spec)
    name = f"pool {spec.libvirt_pool}"
    if available is None:
        return Finding(name, False, "virsh pool-info shows no Available line (is the pool running?)",
                       f"virsh -c {spec.libvirt_uri} pool-start {spec.libvirt_pool}")
    gib = available / 1024**3
    ok = available >= need
    return Finding(name, ok, f"{gib:.1f} GiB free, {need / 1024**3:.0f} GiB wanted "
                   f"({BASE_IMAGE_GIB} GiB per base image, {OVERLAY_GIB} GiB per cell)",
                   "" if ok else "free space in the pool's folder, or narrow distros, arches or repetitions")


def check_arch(m: Machine, spec: FleetSpec, arch: str) -> list[Finding]:
    findings = []
    binary, package = QEMU[arch]
    native = arch == spec.libvirt_host_arch
    local = config.libvirt_uri_is_local(spec.libvirt_uri)
    # libvirt's own view: can it run this arch, with KVM where the program asks for it?
    virttype = "kvm" if native else "qemu"
    caps_args = ["domcapabilities", "--arch", arch, "--virttype", virttype]
    if arch == "aarch64":
        caps_args += ["--machine", "virt"]
    caps = _virsh(m, spec, *caps_args)
    if caps.returncode != 0:
        fix = f"sudo apt-get install {package}" if virttype == "qemu" else (
            "make /dev/kvm usable by libvirt's qemu (its group, the kvm module) or measure this arch emulated on "
            "another host")
        findings.append(Finding(f"{arch} guests ({virttype})", False,
                                f"libvirt can't run them: {caps.stderr.strip()[:200]}", fix))
    else:
        findings.append(Finding(f"{arch} guests ({virttype})", True, "libvirt can run them"))
    if local and m.which(binary) is None:
        findings.append(Finding(f"{binary}", False, "not installed", f"sudo apt-get install {package}"))
    if native and local:
        ok, detail = kvm_works(m)
        findings.append(Finding("/dev/kvm", ok, detail, "" if ok else
                                "load the kvm module and add your user to its group (sudo adduser $USER kvm); on a VM, "
                                "enable nested virtualisation"))
    if arch == "aarch64":
        loaders = re.findall(r"<value>([^<]*(?:AAVMF|QEMU_EFI|edk2)[^<]*)</value>", caps.stdout)
        ok = bool(loaders) or (local and any(m.files(f) for f in AAVMF_FILES))
        findings.append(Finding("aarch64 UEFI firmware", ok, loaders[0] if loaders else
                                ("found" if ok else "libvirt lists no aarch64 UEFI loader"),
                                "" if ok else "sudo apt-get install qemu-efi-aarch64"))
    return findings


def check_network(m: Machine, spec: FleetSpec) -> Finding:
    """The stack's NAT range must not overlap another libvirt network or a route of this host."""
    ours = f"k8sf-{spec.stack}"[:30]
    net = ipaddress.ip_network(spec.libvirt_network_cidr)
    clashes = []
    names = _virsh(m, spec, "net-list", "--all", "--name").stdout.split()
    for name in names:
        if name == ours:
            continue
        xml = _virsh(m, spec, "net-dumpxml", name).stdout
        for address, prefix in re.findall(r"<ip[^>]*address=['\"]([\d.]+)['\"][^>]*(?:prefix|netmask)=['\"]([\d.]+)",
                                          xml):
            other = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
            if other.overlaps(net):
                clashes.append(f"libvirt network {name} ({other})")
    if config.libvirt_uri_is_local(spec.libvirt_uri):
        routes = m.sh(["ip", "-j", "-4", "route", "show"]).stdout
        try:
            for route in json.loads(routes or "[]"):
                dst = route.get("dst", "")
                if dst and dst != "default" and "dev" in route and not route["dev"].startswith("virbr"):
                    other = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32", strict=False)
                    if other.overlaps(net) and other.prefixlen > 0:
                        clashes.append(f"route {dst} on {route['dev']}")
        except json.JSONDecodeError:
            pass
    if clashes:
        return Finding("network", False, f"{spec.libvirt_network_cidr} is already in use: {', '.join(clashes)}",
                       f"pulumi config set k8s-footprint:libvirtNetworkCidr <a free private /24> --stack {spec.stack}")
    return Finding("network", True, f"{spec.libvirt_network_cidr} is free")


def check_xsltproc(m: Machine, spec: FleetSpec) -> Finding | None:
    """Domains without IDE (aarch64 virt) carry the cdrom stylesheet, which the provider applies
    with `xsltproc` on the machine that runs Pulumi (terraform-provider-libvirt v0.8.1
    libvirt/utils_xslt.go:84-89)."""
    from components.libvirt import domain_shape
    from components.libvirt_cdrom import domain_xml

    if not any(domain_xml(a, domain_shape(a, spec.libvirt_host_arch).machine) for a in spec.arches):
        return None
    ok = m.which("xsltproc") is not None
    return Finding("xsltproc", ok, "on PATH" if ok else "not on PATH (the aarch64 domains' stylesheet runs here)",
                   "" if ok else "sudo apt-get install xsltproc")


def check_mkisofs(m: Machine) -> Finding:
    """pulumi-libvirt's CloudInitDisk runs `mkisofs`, by that name, on the machine that runs Pulumi
    (terraform-provider-libvirt v0.8.1 libvirt/cloudinit_def.go:149-150)."""
    ok = m.which("mkisofs") is not None
    return Finding("mkisofs", ok, "on PATH" if ok else "not on PATH (CloudInitDisk runs it here)",
                   "" if ok else "sudo apt-get install genisoimage   (it provides mkisofs)")


def check_chromium(m: Machine) -> Finding:
    """Only the report page's browser test (tests/unit/test_page_in_browser.py) opens Chromium; it
    skips without it. So a missing one is a note, never a stop."""
    from benchmarks.pagecheck import CHROMIUM_NAMES, INSTALL_HINT

    found = next((name for name in CHROMIUM_NAMES if m.which(name)), None)
    return Finding("chromium", found is not None,
                   f"{found} on PATH" if found else "not on PATH (the report page's browser test skips without it)",
                   "" if found else f"sudo {INSTALL_HINT}", blocking=False)


# ---- aws ---------------------------------------------------------------------------------------


def check_aws(m: Machine, spec: FleetSpec, region: str | None) -> list[Finding]:
    if not region:
        return [Finding("aws region", False, "aws:region is not set for this stack",
                        f"pulumi config set aws:region us-east-1 --stack {spec.stack}")]
    try:
        session = m.aws_session(region) if m.aws_session else _boto_session(region)
        ident = session.client("sts").get_caller_identity()
    except Exception as exc:
        return [Finding("aws credentials", False, f"{type(exc).__name__}: {str(exc)[:200]}",
                        "aws configure   (or set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")]
    findings = [Finding("aws credentials", True, f"account {ident.get('Account')} in {region}")]
    vpcs = session.client("ec2").describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    findings.append(Finding("aws default VPC", bool(vpcs), vpcs[0]["VpcId"] if vpcs else f"none in {region}",
                            "" if vpcs else f"aws ec2 create-default-vpc --region {region}"))
    return findings


def _boto_session(region: str) -> Any:
    import boto3

    return boto3.session.Session(region_name=region)


# ---- hosts -------------------------------------------------------------------------------------

# Like pulumi-command's own connection, which checks no host key; and nothing is written to
# ~/.ssh/known_hosts by a preflight.
SSH_OPTS = ("-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR")


def check_hosts(m: Machine, spec: FleetSpec, key_file: str | None) -> list[Finding]:
    findings = []
    for host in spec.hosts:
        name = f"host {host.name} ({host.user}@{host.address}:{host.port})"
        try:
            with socket.create_connection((host.address, host.port), timeout=10) as s:
                s.settimeout(10)
                banner = s.recv(64).decode(errors="replace")
        except OSError as exc:
            findings.append(Finding(name, False, f"no SSH: {exc}", f"check the address and port, and that sshd runs "
                                    f"on {host.address}"))
            continue
        if not banner.startswith("SSH-"):
            findings.append(Finding(name, False, f"port {host.port} answers {banner.strip()!r}, not SSH",
                                    "point the host's port at its sshd"))
            continue
        if key_file is None:
            findings.append(Finding(name, True, "SSH answers (sudo and packages not checked: no key to log in with)"))
            continue
        argv = ["ssh", *SSH_OPTS, "-i", key_file, "-p", str(host.port), f"{host.user}@{host.address}",
                # As the kit's commands do (components/commands.py _AS_ROOT): root runs them
                # directly, anyone else through non-interactive sudo.
                'if [ "$(id -u)" = 0 ] || sudo -n true; then echo sudo-ok; fi; '
                "command -v apt-get >/dev/null && echo apt; command -v snap >/dev/null && echo snap; true"]
        out = m.sh(argv, 30)
        if out.returncode != 0:
            findings.append(Finding(name, False, f"SSH login failed: {out.stderr.strip()[:200]}",
                                    f"add the stack's sshPrivateKey's public key to ~{host.user}/.ssh/authorized_keys"))
            continue
        said = out.stdout.split()
        findings.append(Finding(name, "sudo-ok" in said, "sudo -n works" if "sudo-ok" in said else
                                "sudo asks for a password", "" if "sudo-ok" in said else
                                f"echo '{host.user} ALL=(ALL) NOPASSWD:ALL' | sudo tee /etc/sudoers.d/k8sf"))
        manager = "apt" in said or "snap" in said
        findings.append(Finding(f"{name} packages", manager, "apt-get or snap found" if manager else
                                "neither apt-get nor snap", "" if manager else
                                "use a Debian- or Ubuntu-based OS: the kit installs distros with apt-get or snap"))
    return findings


# ---- the whole run -----------------------------------------------------------------------------


def load_stack(stack: str, root: Path = ROOT) -> tuple[FleetSpec, dict[str, Any]]:
    """The stack's config as the program will see it (raises config.ConfigError like the program)."""
    import yaml

    path = root / f"Pulumi.{stack}.yaml"
    doc = yaml.safe_load(path.read_text()) if path.exists() else {}
    values: dict[str, Any] = dict((doc or {}).get("config") or {})
    prefix = f"{config.NAMESPACE}:"
    raw = {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}
    has_key = raw.pop("sshPrivateKey", None) not in (None, "")
    spec = config.parse(raw, project=config.NAMESPACE, stack=stack, now=datetime.now(UTC), has_ssh_private_key=has_key)
    return spec, values


def diagnose(stack: str, m: Machine | None = None, key_file: str | None = None, root: Path = ROOT
             ) -> list[Finding]:
    m = m or Machine()
    findings = [check_python(m), check_pulumi_cli(m), check_chromium(m)]
    try:
        spec, values = load_stack(stack, root)
    except config.ConfigError as exc:
        return [*findings, Finding(f"Pulumi.{stack}.yaml", False, str(exc), "fix the keys named above")]
    findings.extend(check_plugins(m, spec))
    if spec.backend == "libvirt":
        findings.append(check_mkisofs(m))
        xslt = check_xsltproc(m, spec)
        if xslt is not None:
            findings.append(xslt)
        findings.extend(check_libvirt(m, spec))
    elif spec.backend == "aws":
        region = values.get("aws:region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        findings.extend(check_aws(m, spec, region))
    else:
        findings.extend(check_hosts(m, spec, key_file))
    return findings


def plan(stack: str, root: Path = ROOT) -> list[str]:
    """The stack's cells, lanes and expected wall time; nothing when its config doesn't parse."""
    from components.cells import plan_lines

    try:
        spec, _ = load_stack(stack, root)
    except config.ConfigError:
        return []
    return plan_lines(spec)


def report(findings: list[Finding], out: Any = sys.stdout) -> int:
    problems = [f for f in findings if not f.ok and f.blocking]
    for f in findings:
        mark = "ok  " if f.ok else ("FAIL" if f.blocking else "note")
        print(f"{mark}  {f.check}: {f.detail}", file=out)
        if f.fix and not f.ok:
            print(f"      fix: {f.fix}", file=out)
    print(f"doctor: {len(problems)} problem(s)" + (", nothing to fix" if not problems else ""), file=out)
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", default=os.environ.get("STACK", "dev"))
    parser.add_argument("--ssh-key", help="hosts backend: a private key file to log in with (for the sudo and "
                        "package checks); default: the stack's sshPrivateKey, read with pulumi config")
    args = parser.parse_args(argv)
    if args.ssh_key:
        rc = report(diagnose(args.stack, key_file=args.ssh_key))
    else:
        with stack_key(args.stack) as key_file:
            rc = report(diagnose(args.stack, key_file=key_file))
    print("\n".join(plan(args.stack)))
    return rc


@contextlib.contextmanager
def stack_key(stack: str) -> Iterator[str | None]:
    """The hosts' key from the stack's secret config, in a private temporary file; never printed."""
    if shutil.which("pulumi") is None:
        yield None
        return
    out = subprocess.run(["pulumi", "config", "get", f"{config.NAMESPACE}:sshPrivateKey", "--stack", stack],
                         capture_output=True, text=True, timeout=60, check=False)
    if out.returncode != 0 or "PRIVATE KEY" not in out.stdout:
        yield None
        return
    with tempfile.TemporaryDirectory(prefix="k8sf-doctor-") as tmp:
        path = Path(tmp) / "key"
        path.touch(mode=0o600)
        path.write_text(out.stdout.strip() + "\n")
        yield str(path)


if __name__ == "__main__":
    sys.exit(main())
