"""How much free memory a 1 GiB guest hides on the kernel's per-CPU page lists, and what fills them.

    python -m tests.vm.probe_pcp [--arch x86_64|aarch64]

Boots the test image (building it if it isn't cached), then prints, as JSON lines, MemFree,
MemAvailable, used (MemTotal - MemAvailable) and the free pages on the per-CPU lists (the pagesets'
"count" in /proc/zoneinfo), together with the lists' limit ("high"):
  1. once the boot is over;
  2. after one run of `cloud-init status` (a Python process, as the kit ran before kit 0.1.3);
  3. after `echo 1 > /proc/sys/vm/drop_caches`, which happens to drain the lists.
Needs what the VM tests need (qemu, root for a first image build).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from tests.vm import qemu

# Every figure in MiB, from one shell on the guest.
STATE = r"""
awk '/^(MemTotal|MemFree|MemAvailable):/ {m[$1] = $2}
     END {printf "%.1f %.1f %.1f", m["MemFree:"] / 1024, m["MemAvailable:"] / 1024,
                  (m["MemTotal:"] - m["MemAvailable:"]) / 1024}' /proc/meminfo
page=$(getconf PAGESIZE)
awk -v page="$page" '$1 == "count:" {c += $2} $1 == "high:" {h += $2}
     END {printf " %.1f %.1f", c * page / 1048576, h * page / 1048576}' /proc/zoneinfo
printf ' %s\n' "$(cat /proc/sys/vm/min_free_kbytes)"
"""
FIELDS = ("mem_free_mib", "mem_available_mib", "used_mib", "pcp_free_mib", "pcp_high_mib", "min_free_kbytes")
STEPS = [
    ("boot finished", "true"),
    ("after one `cloud-init status`", "cloud-init status >/dev/null 2>&1; true"),
    ("10 s later", "sleep 10"),
    ("after drop_caches=1", "echo 1 | sudo tee /proc/sys/vm/drop_caches >/dev/null"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=["x86_64", "aarch64"], default=os.uname().machine)
    args = parser.parse_args(argv)
    image = qemu.probe_image(args.arch, "probe_pcp")
    if image is None:
        return 2
    with qemu.boot(args.arch, image, f"{args.arch}-probe-pcp") as guest:
        time.sleep(20)  # let the login's own processes come and go
        for label, command in STEPS:
            guest.ssh(command, timeout=120)
            values = guest.ssh(STATE, timeout=60).stdout.split()
            print(json.dumps({"arch": args.arch, "step": label, **dict(zip(FIELDS, map(float, values), strict=True))}),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
