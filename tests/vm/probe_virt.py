"""What a guest's own tools say about its virtualization: the facts the kit records in
`provenance.guest` (virt, accel, vCPUs).

    python -m tests.vm.probe_virt [--arch x86_64|aarch64] [--accel tcg|kvm] [--ssh-timeout S]

Boots the test image (building it if it isn't cached) and prints one JSON line: what
`systemd-detect-virt --vm` and `systemd-detect-virt` print, nproc, MemTotal and the DMI vendor, beside the
accelerator qemu was started with. Needs what the VM tests need (qemu, root for a first image build).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from tests.vm import qemu

PROBE = r"""
printf '%s\n' "$(systemd-detect-virt --vm 2>/dev/null || true)"
printf '%s\n' "$(systemd-detect-virt 2>/dev/null || true)"
nproc
awk '$1 == "MemTotal:" {printf "%.1f\n", $2 / 1024}' /proc/meminfo
printf '%s\n' "$(cat /sys/class/dmi/id/sys_vendor 2>/dev/null || echo -)"
"""
FIELDS = ("detect_virt_vm", "detect_virt", "nproc", "mem_total_mib", "dmi_sys_vendor")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["x86_64", "aarch64"], default=os.uname().machine)
    parser.add_argument("--accel", choices=["tcg", "kvm"], default="tcg")
    parser.add_argument("--ssh-timeout", type=float, default=None, help="seconds to wait for SSH")
    args = parser.parse_args(argv)
    image = qemu.probe_image(args.arch, "probe_virt")
    if image is None:
        return 2
    with qemu.boot(args.arch, image, f"{args.arch}-probe-virt", accel=args.accel,
                   ssh_timeout=args.ssh_timeout) as guest:
        values = guest.ssh(PROBE, timeout=120).stdout.splitlines()
    record = dict(zip(FIELDS, values, strict=True))
    print(json.dumps({"arch": args.arch, "qemu_accel": args.accel, "boot_s": guest.boot_s, **record}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
