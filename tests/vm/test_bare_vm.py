"""Real 1 GiB guests, x86_64 and aarch64, measured through the fleet's own command sequence.

The bare cell: the OS baseline, idempotent bootstrap, no swap, the OOM fault, and teardown.
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from components.commands import kit_files
from components.schema import validate_result
from tests.vm import qemu
from tests.vm.conftest import BareCell, save_result
from tests.vm.helpers import assert_sound

pytestmark = pytest.mark.vm

def test_bare_cell_gives_a_valid_ok_result(bare_cell: BareCell, arch: str) -> None:
    result = bare_cell.run.result
    assert_sound(result, arch, bare_cell.run.log)
    assert result["distro"] == "bare" and result["workload"] is None and result["api"] is None
    assert result["phases"]["workload"] is None
    assert bare_cell.run.bootstrap["status"] == "ok"


def test_bootstrap_twice_changes_nothing(bare_cell: BareCell) -> None:
    again = qemu.run_bootstrap(bare_cell.guest, bare_cell.run.commands, bare_cell.plan)
    assert again == bare_cell.run.bootstrap


def test_the_kit_lands_inside_kit_path_without_mode_bits_and_root_refuses_a_planted_file(bare_cell: BareCell) -> None:
    # In the guest, as CopyToRemote leaves it (tests/vm/upload.py): inside the remotePath, in the
    # SSH user's home, nothing executable; then a planted file stops every root command.
    guest, commands = bare_cell.guest, bare_cell.run.commands
    # One line per entry: mode, whether it is a folder, the path (by type, whatever the file names).
    listing = guest.ssh(f'cd "$HOME" && find {commands.kit_path} -type d -printf "%m dir %p\\n" -o '
                        f'-type f -printf "%m file %p\\n"', timeout=60).stdout
    entries = [line.split(" ", 2) for line in listing.splitlines()]
    modes = {path: mode for mode, _, path in entries}
    assert modes[f"{commands.kit_dir}/k8sf"] == "644" and f"{commands.kit_path}/k8sf" not in modes
    assert {mode for mode, kind, _ in entries if kind == "file"} == {"644"}
    assert {mode for mode, kind, _ in entries if kind == "dir"} == {"755"}
    assert sum(kind == "file" for _, kind, _ in entries) == len(kit_files())
    planted = f'"$HOME"/{commands.kit_dir}/lib/planted.sh'
    guest.ssh(f"echo 'touch /var/tmp/k8sf-planted-ran' > {planted}", timeout=30)
    try:
        proc = guest.ssh(commands.bootstrap, timeout=120, check=False)
        assert proc.returncode == 3, proc.stderr
        assert "k8sf-kit: refusing to run the kit in" in proc.stderr and "its content hash is" in proc.stderr
        assert proc.stdout == ""
        left = guest.ssh("ls -d /var/tmp/k8sf-root.* /var/tmp/k8sf-planted-ran 2>/dev/null || :", timeout=30).stdout
        assert left == "", f"root left its copy, or a planted line ran: {left}"
    finally:
        guest.ssh(f"rm -f {planted}", timeout=30)
    assert qemu.run_bootstrap(guest, commands, bare_cell.plan) == bare_cell.run.bootstrap


def oom_kill_counter(guest: qemu.Guest) -> int:
    return int(guest.ssh("awk '$1 == \"oom_kill\" { print $2 }' /proc/vmstat", timeout=60).stdout)


def test_a_memory_hog_triggers_the_oom_killer_and_status_oom(bare_cell: BareCell, arch: str) -> None:
    # The hog gets a memory limit of half what is available, as a pod gets its limit, and the
    # kernel's OOM killer ends it there. Left to exhaust the whole swapless guest, it can make
    # an emulated guest thrash for minutes before the killer acts, which tests the emulator
    # rather than the kit: that is how it once failed in CI.
    guest = bare_cell.guest
    before = oom_kill_counter(guest)
    hog = guest.ssh(
        "avail=$(awk '$1 == \"MemAvailable:\" { print int($2 / 2048) }' /proc/meminfo); "
        "sudo systemd-run --quiet --wait --collect --unit=k8sf-hog -p MemoryMax=${avail}M -p MemorySwapMax=0 "
        "timeout 300 tail /dev/zero", timeout=400, check=False)
    killed = oom_kill_counter(guest) - before
    assert hog.returncode != 0, hog.stderr  # killed, not finished
    assert killed >= 1, f"the hog exited {hog.returncode} with no OOM kill: {hog.stderr}"
    result = qemu.run_benchmark(guest, bare_cell.run.commands, bare_cell.plan)
    validate_result(result)
    save_result(result, arch, "fault-oom")
    assert result["oom_kills"] == killed  # what /proc/vmstat said, read independently above
    assert result["status"] == "oom"
    assert any(f"({killed} kernel log lines)" in e for e in result["errors"]), result["errors"]


def test_guest_has_no_swap_as_cloud_init_config_asks(bare_cell: BareCell) -> None:
    swaps = bare_cell.guest.ssh("cat /proc/swaps", timeout=30).stdout.strip().splitlines()
    assert len(swaps) == 1 and swaps[0].startswith("Filename")
    hostname = bare_cell.guest.ssh("hostname", timeout=30).stdout.strip()
    assert hostname == bare_cell.plan.cell.replace("_", "-")
    # manage_etc_hosts: the name resolves locally, so sudo says nothing about it.
    assert "unable to resolve host" not in bare_cell.guest.ssh("sudo true", timeout=30).stderr


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

