"""The cloud-init user-data every libvirt guest boots with. The qemu test harness boots its
guests with exactly this text, so what the fleet relies on is tested on a real VM."""

from __future__ import annotations

import json

GUEST_USER = "k8sf"


def hostname(cell: str) -> str:
    """A valid host name for a cell (x86_64 has an underscore, which host names may not)."""
    return cell.replace("_", "-").lower()[:63]


def render_user_data(public_key: str, user: str = GUEST_USER) -> str:
    """#cloud-config as JSON (valid YAML), so no value can break the document's structure."""
    doc = {
        "users": [{
            "name": user,
            "sudo": "ALL=(ALL) NOPASSWD:ALL",
            "shell": "/bin/bash",
            # No password exists to log in with, so ssh_pwauth is left alone: setting it makes
            # cloud-init restart sshd just as the fleet's first SSH session starts.
            "lock_passwd": True,
            "ssh_authorized_keys": [public_key.strip()],
        }],
        # The cell's host name must resolve locally, or every sudo stalls on a DNS lookup.
        "manage_etc_hosts": True,
        "disable_root": True,
        "package_update": False,
        "package_upgrade": False,
        # Swap would hide exactly the memory pressure we measure.
        "swap": {"size": 0},
        "runcmd": [["swapoff", "-a"], ["sed", "-i", "/[[:space:]]swap[[:space:]]/d", "/etc/fstab"]],
    }
    return "#cloud-config\n" + json.dumps(doc, indent=2) + "\n"


def render_meta_data(cell: str) -> str:
    return f"instance-id: k8sf-{hostname(cell)}\nlocal-hostname: {hostname(cell)}\n"
