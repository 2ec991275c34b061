"""A VM harness image made bootable the way a cloud image is: a partitioned disk whose own
bootloader loads the kernel and initrd from the image's /boot. Test-side only: users' stacks boot
the cloud images they name in `images`.

The harness images (tests/vm/images.py) are a bare ext4 root booted with qemu's -kernel/-initrd.
The libvirt backend's domains boot from their disk (no kernel, no initrd given), so the real-engine
test of that backend needs the same root behind a bootloader, the one each arch's domain boots:
- x86_64: a BIOS `pc` machine (components/libvirt.py gives no machine for x86_64; the provider
  picks `pc`): an MBR disk, the root in partition 1, GRUB for i386-pc in the MBR and its gap.
- aarch64: `virt` with UEFI (the provider asks for `<os firmware='efi'>`): a GPT disk, an EFI
  system partition (FAT) holding GRUB for arm64-efi at the removable-media path
  /EFI/BOOT/BOOTAA64.EFI (no NVRAM entry needed), the root in partition 2. Debian ships GRUB's
  arm64-efi modules only as an arm64 package, so it is fetched with `apt-get download` into a
  private apt state under the cache (the host's apt configuration is not touched).

How, with no mount and no loop device (a container may have neither):
- copy the root filesystem and edit it in place with `debugfs -w`: fstab names the root partition,
  and /boot/grub/grub.cfg boots /boot/vmlinuz-* with /boot/initrd.img-* (both already in the
  image: the harness installed the kernel in the chroot);
- a partitioned disk holding that filesystem (sfdisk, dd);
- x86_64: GRUB's core image (`grub-mkimage -O i386-pc`, prefix (hd0,msdos1)/boot/grub, with the
  modules it needs built in) in the gap after the MBR, and boot.img's first 440 bytes in the MBR,
  which is what grub-bios-setup does for an MBR disk whose gap holds core.img: boot.img loads
  sector 1 (its kernel_sector default) and core.img's first sector loads the rest (its blocklist,
  which grub-mkimage fills in for i386-pc);
- aarch64: `grub-mkimage -O arm64-efi` (prefix (hd0,gpt2)/boot/grub) into a FAT image made with
  mkfs.vfat and filled with mcopy.
The result is cached beside the harness image, keyed by that image's key and this recipe.

Run as root: ``python -m tests.vm.bootable build --arch x86_64`` (or ``--arch aarch64``).
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
from dataclasses import dataclass
from pathlib import Path

from tests.vm import images

GRUB_PC_DIR = Path("/usr/lib/grub/i386-pc")
HOST_TOOLS = {"grub-mkimage": "grub-common", "sfdisk": "fdisk", "debugfs": "e2fsprogs", "qemu-img": "qemu-utils"}
EFI_HOST_TOOLS = {"mkfs.vfat": "dosfstools", "mcopy": "mtools", "apt-get": "apt", "dpkg-deb": "dpkg"}
PART_START = 2048  # sectors: the first partition starts at 1 MiB, leaving the gap for core.img
SECTOR = 512
ESP_MIB = 32
GRUB_MODULES = {
    "x86_64": ("biosdisk", "part_msdos", "ext2", "normal", "linux", "echo", "test", "configfile", "search"),
    "aarch64": ("part_gpt", "ext2", "fat", "normal", "linux", "gzio", "echo", "test", "configfile", "search",
                "efi_gop"),
}
ROOT_PART = {"x86_64": "/dev/vda1", "aarch64": "/dev/vda2"}
CONSOLE = {"x86_64": "console=tty0 console=ttyS0,115200", "aarch64": "console=ttyAMA0"}
GRUB_EFI_PACKAGE = "grub-efi-arm64-bin"  # Debian bookworm, arm64 only
RECIPE_VERSION = 2


def kernel_args(arch: str) -> str:
    return f"root={ROOT_PART[arch]} ro {CONSOLE[arch]} panic=-1"


class BootableError(RuntimeError):
    pass


@dataclass(frozen=True)
class BootableImage:
    arch: str
    disk: Path  # raw, MBR, partition 1 = the harness root
    build: dict[str, object]


def missing_host_tools(arch: str) -> list[str]:
    _check_arch(arch)
    tools = {**HOST_TOOLS, **(EFI_HOST_TOOLS if arch == "aarch64" else {})}
    missing = {pkg for tool, pkg in tools.items() if shutil.which(tool) is None}
    if arch == "x86_64" and not (GRUB_PC_DIR / "boot.img").exists():
        missing.add("grub-pc-bin")
    return sorted(missing)


def _check_arch(arch: str) -> None:
    if arch not in ROOT_PART:
        raise BootableError(f"arch {arch!r}: choose one of {sorted(ROOT_PART)}")


def bootable_key(arch: str) -> str:
    base = images.image_key(arch, "list")
    recipe = {"version": RECIPE_VERSION, "base": base, "modules": GRUB_MODULES[arch], "args": kernel_args(arch),
              "start": PART_START, "esp": ESP_MIB if arch == "aarch64" else 0}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def _dir(arch: str) -> Path:
    return images.cache_dir() / f"debian12-{arch}-bootable-{bootable_key(arch)}"


def cached(arch: str) -> BootableImage | None:
    d = _dir(arch)
    if not (d / "build.json").exists():
        return None
    return BootableImage(arch, d / "disk.img", json.loads((d / "build.json").read_text()))


def grub_cfg(arch: str, kernel: str, initrd: str) -> str:
    return (f"set timeout=0\nset default=0\nmenuentry 'debian' {{\n"
            f"  linux /boot/{kernel} {kernel_args(arch)}\n  initrd /boot/{initrd}\n}}\n")


def _run(cmd: list[str], timeout: float, stdin: str | None = None) -> str:
    proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise BootableError(f"{' '.join(cmd[:3])} … exited {proc.returncode}: {proc.stderr[-1500:]}")
    return proc.stdout


def _boot_files(root_img: Path) -> tuple[str, str]:
    """The kernel and initrd names in the image's /boot (debugfs `ls -p`: /ino/mode/uid/gid/name/size/)."""
    listing = _run(["debugfs", "-R", "ls -p /boot", str(root_img)], 120)
    names = [f.split("/")[5] for f in listing.splitlines() if f.count("/") >= 6]
    kernels = sorted(n for n in names if n.startswith("vmlinuz-"))
    initrds = sorted(n for n in names if n.startswith("initrd.img-"))
    if len(kernels) != 1 or len(initrds) != 1:
        raise BootableError(f"{root_img}: expected one kernel and one initrd in /boot, found {kernels} {initrds}")
    return kernels[0], initrds[0]


def _debugfs_write(root_img: Path, local: Path, target: str) -> None:
    # rm fails harmlessly when the file is absent; write refuses to overwrite.
    _run(["debugfs", "-w", "-R", f"rm {target}", str(root_img)], 120)
    _run(["debugfs", "-w", "-R", f"write {local} {target}", str(root_img)], 120)


def grub_efi_dir() -> Path:
    """GRUB's arm64-efi modules: Debian's arm64 package, fetched once with apt-get into the cache,
    with an apt state of its own (the host's sources and architectures are left alone)."""
    d = images.cache_dir() / "grub-efi-arm64"
    mods = d / "root/usr/lib/grub/arm64-efi"
    if (mods / "linux.mod").exists():
        return mods
    apt = d / "apt"
    for sub in ("state/lists/partial", "cache/archives/partial"):
        (apt / sub).mkdir(parents=True, exist_ok=True)
    (apt / "sources.list").write_text(f"deb [arch=arm64] {images.MIRROR} {images.SUITE} main\n")
    opts = [f"-oDir::State={apt / 'state'}", f"-oDir::Cache={apt / 'cache'}",
            f"-oDir::Etc::SourceList={apt / 'sources.list'}", "-oDir::Etc::SourceParts=/dev/null",
            "-oAPT::Architecture=arm64", "-oAPT::Architectures=arm64"]
    _run(["apt-get", *opts, "update"], 600)
    proc = subprocess.run(["apt-get", *opts, "download", GRUB_EFI_PACKAGE], cwd=d, capture_output=True, text=True,
                          timeout=600, check=False)
    debs = sorted(d.glob(f"{GRUB_EFI_PACKAGE}_*_arm64.deb"))
    if proc.returncode != 0 or not debs:
        raise BootableError(f"apt-get download {GRUB_EFI_PACKAGE} exited {proc.returncode}: {proc.stderr[-1000:]}")
    _run(["dpkg-deb", "-x", str(debs[-1]), str(d / "root")], 300)
    if not (mods / "linux.mod").exists():
        raise BootableError(f"{debs[-1].name} has no {mods.relative_to(d / 'root')}/linux.mod")
    return mods


def _esp(work: Path) -> Path:
    """A FAT EFI system partition with GRUB at the removable-media path."""
    efi = work / "BOOTAA64.EFI"
    _run(["grub-mkimage", "-O", "arm64-efi", "-d", str(grub_efi_dir()), "-o", str(efi),
          "-p", "(hd0,gpt2)/boot/grub", *GRUB_MODULES["aarch64"]], 120)
    esp = work / "esp.img"
    _run(["truncate", "-s", f"{ESP_MIB}M", str(esp)], 60)
    _run(["mkfs.vfat", "-n", "EFI", str(esp)], 60)  # FAT16 at this size; mtools refuses a FAT32 this small
    _run(["mmd", "-i", str(esp), "::/EFI", "::/EFI/BOOT"], 60)
    _run(["mcopy", "-i", str(esp), str(efi), "::/EFI/BOOT/BOOTAA64.EFI"], 60)
    efi.unlink()
    return esp


def build(arch: str) -> BootableImage:
    _check_arch(arch)
    hit = cached(arch)
    if hit is not None:
        return hit
    missing = missing_host_tools(arch)
    if missing:
        raise BootableError("making a bootable image needs: apt-get install " + " ".join(missing))
    base = images.cached(arch)
    if base is None:
        raise BootableError(f"no VM harness image for {arch}: run `python -m tests.vm.images build --arch {arch}`")
    final = _dir(arch)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".bootable-{arch}-", dir=final.parent))
    t0 = time.monotonic()
    try:
        root = work / "root.img"
        _run(["cp", "--sparse=always", str(base.root), str(root)], 600)
        kernel, initrd = _boot_files(root)
        (work / "fstab").write_text(f"{ROOT_PART[arch]} / ext4 defaults,noatime 0 1\n")
        _debugfs_write(root, work / "fstab", "/etc/fstab")
        _run(["debugfs", "-w", "-R", "mkdir /boot/grub", str(root)], 120)
        (work / "grub.cfg").write_text(grub_cfg(arch, kernel, initrd))
        _debugfs_write(root, work / "grub.cfg", "/boot/grub/grub.cfg")

        root_bytes = root.stat().st_size
        disk = work / "disk.img"
        if arch == "x86_64":
            root_start = PART_START
            layout = f"label: dos\nstart={root_start}, type=83, bootable\n"
            tail = 0
        else:
            esp = _esp(work)
            root_start = PART_START + ESP_MIB * 1024 * 1024 // SECTOR
            layout = (f"label: gpt\nstart={PART_START}, size={ESP_MIB}MiB, type=U, name=esp\n"
                      f"start={root_start}, size={root_bytes // SECTOR}, type=L, name=root\n")
            tail = 1024 * 1024  # the backup GPT
        _run(["truncate", "-s", str(root_start * SECTOR + root_bytes + tail), str(disk)], 60)
        _run(["sfdisk", "--quiet", str(disk)], 60, stdin=layout)
        _run(["dd", f"if={root}", f"of={disk}", "bs=1M", f"seek={root_start * SECTOR >> 20}", "conv=notrunc,sparse",
              "status=none"], 1200)
        root.unlink()
        if arch == "x86_64":
            core = work / "core.img"
            _run(["grub-mkimage", "-O", "i386-pc", "-d", str(GRUB_PC_DIR), "-o", str(core),
                  "-p", "(hd0,msdos1)/boot/grub", *GRUB_MODULES[arch]], 120)
            if core.stat().st_size > (PART_START - 1) * SECTOR:
                raise BootableError(f"core.img is {core.stat().st_size} bytes: it does not fit before sector "
                                    f"{PART_START}")
            with disk.open("r+b") as fh:
                fh.seek(0)
                fh.write((GRUB_PC_DIR / "boot.img").read_bytes()[:440])  # keep the partition table
                fh.seek(SECTOR)
                fh.write(core.read_bytes())
            core.unlink()
        else:
            _run(["dd", f"if={esp}", f"of={disk}", "bs=1M", f"seek={PART_START * SECTOR >> 20}", "conv=notrunc",
                  "status=none"], 300)
            esp.unlink()
        meta = {"arch": arch, "base": str(base.root), "kernel": kernel, "initrd": initrd,
                "kernel_args": kernel_args(arch), "grub_modules": list(GRUB_MODULES[arch]),
                "build_s": round(time.monotonic() - t0, 1),
                "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        (work / "build.json").write_text(json.dumps(meta, indent=2) + "\n")
        if final.exists():
            shutil.rmtree(final)
        work.rename(final)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    made = cached(arch)
    assert made is not None
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vm.bootable", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or find in the cache) the bootable disk for an arch")
    b.add_argument("--arch", choices=sorted(ROOT_PART), required=True)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("warning: not root; debugfs on a root-owned cache may fail", file=sys.stderr)
    try:
        image = build(args.arch)
    except BootableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"disk": str(image.disk), **image.build}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
