"""Machines Pulumi can't create (a Raspberry Pi, a lab box): reached as they are."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config import HostEntry
from components.host import Host


@dataclass(frozen=True)
class ExistingHostArgs:
    entry: HostEntry
    private_key: pulumi.Output[str]


class ExistingHost(pulumi.ComponentResource):
    def __init__(self, name: str, args: ExistingHostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:ExistingHost", name, None, opts)
        e = args.entry
        self.host = Host(address=pulumi.Output.from_input(e.address), user=e.user, arch=e.arch,
                         private_key=args.private_key, port=e.port, dial_error_limit=10)
        self.register_outputs({"address": e.address, "arch": e.arch, "hostName": e.name})
