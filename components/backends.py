"""One place that knows which instance component a backend uses; the rest see only a Host."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_tls as tls

from components import config
from components.aws import AwsAccess, AwsAccessArgs, AwsInstance, AwsInstanceArgs, fleet_tags
from components.cells import Cell
from components.cloudinit import render_user_data
from components.config import FleetSpec
from components.host import Host
from components.hosts import ExistingHost, ExistingHostArgs
from components.libvirt import (
    VCPUS,
    LibvirtInstance,
    LibvirtInstanceArgs,
    LibvirtPlatform,
    LibvirtPlatformArgs,
    guest_address,
)


@dataclass(frozen=True)
class Instance:
    host: Host
    # The resource whose deletion takes the machine with it (None: the machine outlives the stack).
    machine: pulumi.Resource | None
    description: pulumi.Output[dict[str, Any]]
    # What the program asked for, as the result's provenance.machine records it (result-v2.json).
    provenance: dict[str, Any]


class Backend:
    def __init__(self, spec: FleetSpec) -> None:
        self.spec = spec
        if spec.backend == "hosts":
            # The hosts' own key, from the stack's secret config; it stays a secret throughout.
            self.private_key: pulumi.Output[str] = config.ssh_private_key()
            return
        # A key per stack, made by Pulumi and kept in its state as a secret.
        self.ssh_key = tls.PrivateKey("ssh-key", algorithm="ED25519")
        self.private_key = pulumi.Output.secret(self.ssh_key.private_key_openssh)
        if spec.backend == "aws":
            self.access = AwsAccess("aws", AwsAccessArgs(
                ssh_allowed_cidrs=spec.ssh_allowed_cidrs, public_key=self.ssh_key.public_key_openssh,
                tags=fleet_tags(spec.stack, spec.run_id, spec.expires_at)))
        else:
            self.platform = LibvirtPlatform("libvirt", LibvirtPlatformArgs(
                stack=spec.stack, uri=spec.libvirt_uri, pool=spec.libvirt_pool,
                network_cidr=spec.libvirt_network_cidr, images={a: spec.images[a] for a in spec.arches}))
            self.user_data = self.ssh_key.public_key_openssh.apply(render_user_data)

    def instance(self, cell: Cell, after: Sequence[pulumi.Resource], fingerprint: str) -> Instance:
        """The cell's machine; `fingerprint` changes with its commands, and a change replaces it."""
        spec = self.spec
        if spec.backend == "aws":
            itype = spec.instance_type(cell.arch, cell.memory_mib)
            aws_vm = AwsInstance(cell.name, AwsInstanceArgs(
                cell=cell.name, arch=cell.arch, instance_type=itype, access=self.access,
                private_key=self.private_key, tags=fleet_tags(spec.stack, spec.run_id, spec.expires_at, cell.name),
                replacement_trigger=fingerprint, disk_gib=spec.disk_gib, spot=spec.spot, after=after))
            return Instance(aws_vm.host, aws_vm.instance, aws_vm.host.address.apply(
                lambda a: {"backend": "aws", "arch": cell.arch, "address": a, "instanceType": itype}),
                {"backend": "aws", "instance_type": itype, "memory_mib": cell.memory_mib})
        if spec.backend == "libvirt":
            vm = LibvirtInstance(cell.name, LibvirtInstanceArgs(
                stack=spec.stack, cell=cell.name, arch=cell.arch, platform=self.platform, user_data=self.user_data,
                private_key=self.private_key, address=guest_address(spec.libvirt_network_cidr, cell.slot),
                host_arch=spec.libvirt_host_arch, replacement_trigger=fingerprint, memory_mib=cell.memory_mib,
                disk_gib=spec.disk_gib, accel=spec.libvirt_accel, after=after))
            return Instance(vm.host, vm.domain, vm.host.address.apply(
                lambda a: {"backend": "libvirt", "arch": cell.arch, "address": a, "memoryMiB": cell.memory_mib}),
                {"backend": "libvirt", "memory_mib": cell.memory_mib, "vcpus": VCPUS})
        assert cell.host is not None, "config assigns every hosts-backend cell a host"
        entry = cell.host
        existing = ExistingHost(cell.name, ExistingHostArgs(entry=entry, private_key=self.private_key))
        return Instance(existing.host, None, pulumi.Output.from_input(
            {"backend": "hosts", "arch": cell.arch, "address": entry.address, "hostName": entry.name}),
            {"backend": "hosts", "host": entry.name})
