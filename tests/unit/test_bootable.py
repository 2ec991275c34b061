"""tests/vm/bootable.py on a tiny stand-in for the harness image: a real ext4 root made with
mkfs.ext4 -d, turned into a disk as the real one is. What boots it is shown by the real-engine run
(benchmarks/results/e2e/2026-11-30-libvirt-bare-{x86_64,aarch64}-full.log); this checks the layout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.vm import bootable, images

# GRUB's arm64-efi modules as bootable.grub_efi_dir() fetches them (once, into the real cache).
GRUB_EFI = images.cache_dir() / "grub-efi-arm64/root/usr/lib/grub/arm64-efi"


def _root(tmp_path: Path, kernels: tuple[str, ...] = ("6.1.0-50-amd64",)) -> Path:
    tree = tmp_path / "tree"
    (tree / "boot").mkdir(parents=True)
    (tree / "etc").mkdir()
    (tree / "etc/fstab").write_text("/dev/vda / ext4 defaults,noatime 0 1\n")
    for k in kernels:
        (tree / f"boot/vmlinuz-{k}").write_bytes(b"kernel")
        (tree / f"boot/initrd.img-{k}").write_bytes(b"initrd")
    img = tmp_path / "root.img"
    subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "root", "-d", str(tree), str(img), "16M"], check=True, timeout=60)
    return img


@pytest.fixture
def stand_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for arch in ("x86_64", "aarch64"):
        if bootable.missing_host_tools(arch):
            pytest.skip("needs: apt-get install " + " ".join(bootable.missing_host_tools(arch)))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    img = _root(tmp_path)
    monkeypatch.setattr(images, "cached", lambda arch, modules="list": images.GuestImage(
        arch, img, tmp_path / "vmlinuz", tmp_path / "initrd.img", {}))
    return img


def _cat(fs: Path, path: str) -> str:
    return subprocess.run(["debugfs", "-R", f"cat {path}", str(fs)], capture_output=True, text=True,
                          check=True, timeout=60).stdout


def test_the_disk_has_an_mbr_partition_grub_and_a_root_that_names_it(stand_in: Path, tmp_path: Path) -> None:
    made = bootable.build("x86_64")
    disk = made.disk.read_bytes()
    assert disk[510:512] == b"\x55\xaa"
    boot_img = (bootable.GRUB_PC_DIR / "boot.img").read_bytes()
    assert disk[:440] == boot_img[:440]  # GRUB's MBR code, the partition table kept
    table = subprocess.run(["sfdisk", "-d", str(made.disk)], capture_output=True, text=True, check=True,
                           timeout=60).stdout
    assert "start=        2048" in table and "bootable" in table, table
    # core.img in the gap: it begins with diskboot.img, the sector boot.img loads.
    assert disk[512:1024][:64] == (bootable.GRUB_PC_DIR / "diskboot.img").read_bytes()[:64]
    part = tmp_path / "part.img"
    part.write_bytes(disk[bootable.PART_START * bootable.SECTOR:])
    assert _cat(part, "/etc/fstab").startswith("/dev/vda1 / ext4")
    cfg = _cat(part, "/boot/grub/grub.cfg")
    assert "linux /boot/vmlinuz-6.1.0-50-amd64 root=/dev/vda1" in cfg
    assert "initrd /boot/initrd.img-6.1.0-50-amd64" in cfg
    assert bootable.cached("x86_64") == made  # cached: a second build is the same disk


def test_two_kernels_are_refused_by_name(tmp_path: Path) -> None:
    img = _root(tmp_path, ("6.1.0-49-amd64", "6.1.0-50-amd64"))
    with pytest.raises(bootable.BootableError, match=r"expected one kernel and one initrd.*6\.1\.0-49"):
        bootable._boot_files(img)


def test_aarch64_has_an_efi_system_partition_with_grub_at_the_removable_path(
        stand_in: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not (GRUB_EFI / "linux.mod").exists():
        pytest.skip(f"no GRUB arm64-efi modules in {GRUB_EFI}: `python -m tests.vm.bootable build --arch aarch64` "
                    "fetches them")
    monkeypatch.setattr(bootable, "grub_efi_dir", lambda: GRUB_EFI)
    made = bootable.build("aarch64")
    table = subprocess.run(["sfdisk", "-d", str(made.disk)], capture_output=True, text=True, check=True,
                           timeout=60).stdout
    assert "label: gpt" in table
    lines = [line for line in table.splitlines() if "start=" in line]
    assert "type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B" in lines[0]  # the EFI system partition
    disk = made.disk.read_bytes()
    esp = tmp_path / "esp.img"
    esp.write_bytes(disk[bootable.PART_START * bootable.SECTOR:][:bootable.ESP_MIB << 20])
    listing = subprocess.run(["mdir", "-i", str(esp), "-b", "::/EFI/BOOT"], capture_output=True, text=True,
                             check=True, timeout=60).stdout
    assert "BOOTAA64.EFI" in listing.upper(), listing
    part = tmp_path / "part.img"
    part.write_bytes(disk[(bootable.PART_START + (bootable.ESP_MIB << 11)) * bootable.SECTOR:])
    assert _cat(part, "/etc/fstab").startswith("/dev/vda2 / ext4")
    assert "root=/dev/vda2 ro console=ttyAMA0" in _cat(part, "/boot/grub/grub.cfg")


def test_an_unknown_arch_is_refused_by_name() -> None:
    with pytest.raises(bootable.BootableError, match=r"arch 'riscv64': choose one of \['aarch64', 'x86_64'\]"):
        bootable.build("riscv64")
