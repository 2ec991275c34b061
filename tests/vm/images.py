"""Build and cache Debian 12 guest images for the qemu harness.

An image is a raw ext4 root filesystem plus the kernel and initramfs to boot it with
``-kernel``/``-initrd``. It is keyed by a hash of everything that shapes it (this file, the
arch, the suite, the package list), so a second run finds it in the cache and boots in seconds.

arm64 is built on an x86 host through qemu-user-static and binfmt_misc. The slow part there is
mkinitramfs under emulation: with Debian's default ``MODULES=most`` it packs and compresses
hundreds of modules, and it runs twice when the kernel is installed before the packages that
trigger it again. We install every other package first, then the kernel once, with
``MODULES=list`` and only the virtio and ext4 modules the guest needs to find its root disk.
``--initramfs-modules most`` builds the Debian default instead, to measure the difference.

Run as root: ``python -m tests.vm.images build --arch aarch64``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
KERNEL_PACKAGE = {"x86_64": "linux-image-amd64", "aarch64": "linux-image-arm64"}
# debootstrap lays down minbase only; the rest goes in with apt inside the chroot, because
# debootstrap's own dependency ordering fails to configure cloud-init's Python stack.
PACKAGES = (
    "systemd-sysv udev kmod openssh-server cloud-init sudo ca-certificates procps "
    "iproute2 iputils-ping initramfs-tools zstd curl gnupg"
)
# What the guest needs to mount its root disk: virtio over PCI (x86, arm64 virt) or MMIO.
INITRAMFS_MODULES = ("virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi", "ext4")
IMAGE_SIZE = "8G"
# Host tools the build needs, and the Debian package that provides each.
HOST_TOOLS = {
    "debootstrap": "debootstrap",
    "mkfs.ext4": "e2fsprogs",
    "qemu-img": "qemu-utils",
}


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class GuestImage:
    arch: str
    root: Path  # raw ext4, no partition table: root=/dev/vda
    kernel: Path
    initrd: Path
    build: dict[str, object]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "k8s-footprint" / "images"


# Bump when the build steps change in a way that changes the image; the data below is hashed as is.
RECIPE_VERSION = 1


def image_key(arch: str, initramfs_modules: str) -> str:
    """Hash of everything that shapes an image, so an edit elsewhere in this file keeps the cache."""
    recipe = {
        "version": RECIPE_VERSION, "arch": DEBIAN_ARCH[arch], "suite": SUITE, "packages": PACKAGES,
        "kernel": KERNEL_PACKAGE[arch], "initramfs": initramfs_modules, "modules": INITRAMFS_MODULES,
        "size": IMAGE_SIZE, "files": GUEST_CONFIG,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def missing_host_tools(arch: str) -> list[str]:
    """Debian packages to install before an image for ``arch`` can be built here."""
    missing = [pkg for tool, pkg in HOST_TOOLS.items() if shutil.which(tool) is None]
    if arch != os.uname().machine and shutil.which(f"qemu-{arch}-static") is None:
        missing.append("qemu-user-static")
    return missing


def cached(arch: str, initramfs_modules: str = "list") -> GuestImage | None:
    d = cache_dir() / f"debian12-{arch}-{image_key(arch, initramfs_modules)}"
    meta = d / "build.json"
    if not meta.exists():
        return None
    return GuestImage(arch, d / "root.img", d / "vmlinuz", d / "initrd.img", json.loads(meta.read_text()))


def _run(cmd: list[str], log: Path, timeout: float) -> None:
    with log.open("a") as fh:
        fh.write(f"$ {' '.join(cmd)}\n")
        fh.flush()
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise BuildError(f"{cmd[0]} failed with exit {proc.returncode}; last lines of {log}:\n" + "\n".join(tail))


def _chroot(root: Path, script: str, log: Path, timeout: float) -> None:
    env_script = "export DEBIAN_FRONTEND=noninteractive LC_ALL=C\n" + script
    _run(["chroot", str(root), "/bin/sh", "-euc", env_script], log, timeout)


@contextmanager
def _mounted(root: Path) -> Iterator[None]:
    """proc, sys and dev inside the chroot for package scripts, and no service starting there."""
    mounts = [("proc", root / "proc", ["-t", "proc", "proc"]), ("sys", root / "sys", ["-t", "sysfs", "sysfs"]),
              ("dev", root / "dev", ["--bind", "/dev"]), ("pts", root / "dev/pts", ["--bind", "/dev/pts"])]
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    done: list[Path] = []
    try:
        for _, target, args in mounts:
            subprocess.run(["mount", *args, str(target)], check=True)
            done.append(target)
        yield
    finally:
        for target in reversed(done):
            subprocess.run(["umount", "-l", str(target)], check=False)
        policy.unlink(missing_ok=True)


def _remove_tree(root: Path) -> None:
    """Delete a build root, but never through a mount that is still there (it would be the host's)."""
    if any(os.path.ismount(root / sub) for sub in ("proc", "sys", "dev", "dev/pts")):
        print(f"warning: {root} still has mounts; left in place", file=sys.stderr)
        return
    shutil.rmtree(root, ignore_errors=True)


def ensure_binfmt(arch: str) -> None:
    """Let the kernel run foreign binaries through qemu-user-static (needs root)."""
    if arch == os.uname().machine:
        return
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], check=True)
    if not (binfmt / f"qemu-{arch}").exists():
        subprocess.run(["update-binfmts", "--enable", f"qemu-{arch}"], check=False)
    if not (binfmt / f"qemu-{arch}").exists():
        raise BuildError(f"binfmt_misc has no qemu-{arch} entry; install qemu-user-static and binfmt-support")


GUEST_CONFIG = {
    "etc/hostname": "k8sf-guest\n",
    "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 k8sf-guest\n",
    "etc/fstab": "/dev/vda / ext4 defaults,noatime 0 1\n",
    # qemu user-mode networking: DHCP on the first NIC, DNS at 10.0.2.3.
    "etc/systemd/network/10-dhcp.network": "[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n",
    # Only the NoCloud seed exists; probing cloud metadata services would stall boot.
    "etc/cloud/cloud.cfg.d/90-k8sf.cfg": "datasource_list: [NoCloud, None]\nnetwork: {config: disabled}\n",
    "etc/apt/apt.conf.d/90-k8sf": 'APT::Install-Recommends "false";\n',
}


def build(arch: str, initramfs_modules: str = "list", progress: bool = True) -> GuestImage:
    if arch not in DEBIAN_ARCH:
        raise BuildError(f"arch {arch!r} is not supported; choose one of {sorted(DEBIAN_ARCH)}")
    if initramfs_modules not in ("list", "most"):
        raise BuildError(f"initramfs modules {initramfs_modules!r}: choose 'list' or 'most'")
    hit = cached(arch, initramfs_modules)
    if hit is not None:
        return hit
    missing = missing_host_tools(arch)
    if missing:
        raise BuildError("building a guest image needs: apt-get install " + " ".join(missing))
    if os.geteuid() != 0:
        raise BuildError("building a guest image needs root (debootstrap, chroot, binfmt_misc)")
    ensure_binfmt(arch)

    final = cache_dir() / f"debian12-{arch}-{image_key(arch, initramfs_modules)}"
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".build-{arch}-", dir=final.parent))
    log = work / "build.log"
    root = work / "rootfs"
    timings: dict[str, float] = {}

    def step(name: str, fn: Callable[[], None]) -> None:
        t0 = time.monotonic()
        if progress:
            print(f"[image {arch}] {name} ...", file=sys.stderr, flush=True)
        fn()
        timings[name] = round(time.monotonic() - t0, 1)
        if progress:
            print(f"[image {arch}] {name} took {timings[name]} s", file=sys.stderr, flush=True)

    try:
        step("debootstrap", lambda: _run(
            ["debootstrap", "--variant=minbase", f"--arch={DEBIAN_ARCH[arch]}", SUITE, str(root), MIRROR],
            log, 3600))

        def configure() -> None:
            for rel, text in GUEST_CONFIG.items():
                p = root / rel
                p.parent.mkdir(parents=True, exist_ok=True)
                if p.is_symlink():
                    p.unlink()
                p.write_text(text)
            conf = root / "etc/initramfs-tools/conf.d/k8sf"
            conf.write_text(f"MODULES={initramfs_modules}\nCOMPRESS=zstd\n")
            if initramfs_modules == "list":
                (root / "etc/initramfs-tools/modules").write_text("\n".join(INITRAMFS_MODULES) + "\n")

        with _mounted(root):
            step("packages", lambda: _chroot(
                root, f"apt-get update -q; apt-get install -y -q {PACKAGES}", log, 3600))
            step("configure", configure)
            step("kernel+initramfs", lambda: _chroot(
                root, f"apt-get install -y -q {KERNEL_PACKAGE[arch]}", log, 3600))
            step("clean", lambda: _chroot(
                root, "systemctl enable systemd-networkd ssh; passwd -l root; apt-get clean; "
                "rm -rf /var/lib/apt/lists/* /tmp/*; truncate -s0 /etc/machine-id", log, 600))

        def extract_and_pack() -> None:
            # Written last: the chroot's apt used the host's resolver until now.
            resolv = root / "etc/resolv.conf"
            resolv.unlink(missing_ok=True)
            resolv.write_text("nameserver 10.0.2.3\n")
            boot = root / "boot"
            kernel = next(boot.glob("vmlinuz-*"))
            initrd = next(boot.glob("initrd.img-*"))
            shutil.copy2(kernel, work / "vmlinuz")
            shutil.copy2(initrd, work / "initrd.img")
            _run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(root), str(work / "root.img"), IMAGE_SIZE],
                 log, 1800)

        step("pack", extract_and_pack)
        _remove_tree(root)
        meta = {
            "arch": arch,
            "suite": SUITE,
            "initramfs_modules": initramfs_modules,
            "initrd_bytes": (work / "initrd.img").stat().st_size,
            "timings_s": timings,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (work / "build.json").write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        # Keep the log of a failed build, but never leave a half-built image where cached() looks.
        _remove_tree(root)
        raise
    image = cached(arch, initramfs_modules)
    assert image is not None
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vm.images", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or find in the cache) the image for an arch")
    b.add_argument("--arch", choices=sorted(DEBIAN_ARCH), required=True)
    b.add_argument("--initramfs-modules", choices=("list", "most"), default="list")
    args = parser.parse_args(argv)
    try:
        image = build(args.arch, args.initramfs_modules)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"root": str(image.root), "kernel": str(image.kernel), "initrd": str(image.initrd),
                      **image.build}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
