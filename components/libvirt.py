"""Local 1 GiB VMs through libvirt: a NAT network, a base image per arch, an overlay per cell."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_libvirt as libvirt

from components.cloudinit import GUEST_USER, hostname, render_meta_data
from components.config import FIRST_GUEST_OFFSET
from components.host import Host
from components.libvirt_cdrom import domain_xml

GIB = 1024**3
VCPUS = 1  # every libvirt guest: the 2022 VMs had one vCPU


def guest_address(network_cidr: str, index: int) -> str:
    """The fixed address of the index-th cell's guest.

    Fixed, not read back from the domain: terraform-provider-libvirt v0.8.1 reads a domain's
    addresses from its DHCP leases, and a domain that is not running has none
    (libvirt/domain.go:172-180, domainGetIfacesInfo; resource_libvirt_domain.go:1006). A guest
    that powered itself off after its result, and was then refreshed, would lose its address.
    Given here, the provider adds it to the network's DHCP host table at create
    (libvirt/domain.go:785-797), so the guest gets exactly this address.
    """
    net = ipaddress.ip_network(network_cidr)
    return str(net.network_address + FIRST_GUEST_OFFSET + index)


@dataclass(frozen=True)
class DomainShape:
    """How libvirt runs a guest of one arch on this host."""

    arch: str
    machine: str | None
    type: str  # kvm on the host's own arch, qemu (emulation) otherwise
    cpu_mode: str
    create_timeout: str


def domain_shape(arch: str, host_arch: str, accel: str = "kvm") -> DomainShape:
    """kvm runs the host's own arch under KVM; tcg (config libvirtAccel) emulates it as well, as every
    other arch always is. The domain's `type` is what decides (terraform-provider-libvirt v0.8.1
    libvirt/resource_libvirt_domain.go:518-522 copies it into `<domain type=...>`; default "kvm", 78-83)."""
    if accel not in ("kvm", "tcg"):
        raise ValueError(f"libvirt accel {accel!r}: choose kvm or tcg")
    emulated = arch != host_arch or accel == "tcg"
    return DomainShape(
        arch=arch,
        machine="virt" if arch == "aarch64" else None,
        type="qemu" if emulated else "kvm",
        # Under emulation qemu's default CPU for "virt" is a 32-bit core; "maximum" is -cpu max.
        # host-passthrough needs KVM: libvirt refuses it for a qemu (TCG) domain.
        cpu_mode="maximum" if emulated else "host-passthrough",
        create_timeout="40m" if emulated else "10m",
    )


# Domain properties whose drift must not touch a guest (terraform-provider-libvirt v0.8.1,
# libvirt/resource_libvirt_domain.go):
# - running (:107-112, default true, updatable): a guest that powered itself off after its result
#   reads back as not running (:852); without this, the next `up` would start every such guest.
# - networkInterfaces[*].addresses (:240-247): read from DHCP leases, empty while powered off.
# - firmware (:73-77, ForceNew, not Computed) and nvram (:84-105): read back from the domain XML
#   (:822-836), where libvirt put the UEFI loader for aarch64 itself. The program never sets them,
#   so the read-back value would plan a removal, and ForceNew would replace the guest on every `up`.
DOMAIN_IGNORED_CHANGES = ("running", "networkInterfaces[*].addresses", "firmware", "nvram")


@dataclass(frozen=True)
class LibvirtPlatformArgs:
    stack: str
    uri: str
    pool: str
    network_cidr: str
    images: Mapping[str, str]  # arch -> image URL or path, only for the arches in use


class LibvirtPlatform(pulumi.ComponentResource):
    """What the stack's libvirt guests share: the connection, a NAT network and base images."""

    def __init__(self, name: str, args: LibvirtPlatformArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:LibvirtPlatform", name, None, opts)
        self.pool = args.pool
        self.provider = libvirt.Provider(f"{name}-provider", uri=args.uri, opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, provider=self.provider)
        self.network = libvirt.Network(
            f"{name}-net", name=f"k8sf-{args.stack}"[:30], mode="nat", addresses=[args.network_cidr],
            dhcp=libvirt.NetworkDhcpArgs(enabled=True), autostart=True, opts=child)
        self.base_volumes = {
            arch: libvirt.Volume(f"{name}-base-{arch}", name=f"k8sf-{args.stack}-base-{arch}.qcow2", pool=args.pool,
                                 source=url, format="qcow2", opts=child)
            for arch, url in args.images.items()
        }
        self.register_outputs({"networkId": self.network.id})


@dataclass(frozen=True)
class LibvirtInstanceArgs:
    stack: str
    cell: str
    arch: str
    platform: LibvirtPlatform
    user_data: pulumi.Input[str]
    private_key: pulumi.Output[str]
    address: str  # guest_address(): fixed per cell
    host_arch: str  # the arch of the machine libvirt runs on (config libvirtHostArch)
    # Changes whenever the cell's commands or kit change: the cell then gets a new disk, seed and
    # domain, never a re-run on a machine that already holds the old install.
    replacement_trigger: str
    memory_mib: int = 1024
    disk_gib: int = 20
    accel: str = "kvm"  # config libvirtAccel: how a guest of host_arch runs
    after: Sequence[pulumi.Resource] = field(default_factory=tuple)


class LibvirtInstance(pulumi.ComponentResource):
    def __init__(self, name: str, args: LibvirtInstanceArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("k8s-footprint:index:LibvirtInstance", name, None, opts)
        plat = args.platform
        shape = domain_shape(args.arch, args.host_arch, args.accel)
        child = pulumi.ResourceOptions(parent=self, provider=plat.provider, depends_on=list(args.after),
                                       replacement_trigger=args.replacement_trigger)
        self.disk = libvirt.Volume(
            f"{name}-disk", name=f"k8sf-{args.stack}-{args.cell}.qcow2", pool=plat.pool,
            base_volume_id=plat.base_volumes[args.arch].id, size=args.disk_gib * GIB, format="qcow2", opts=child)
        self.cloudinit = libvirt.CloudInitDisk(
            f"{name}-cidata", name=f"k8sf-{args.stack}-{args.cell}-cidata.iso", pool=plat.pool,
            user_data=args.user_data, meta_data=render_meta_data(args.cell), opts=child)
        self.domain = libvirt.Domain(
            f"{name}-vm",
            name=f"k8sf-{args.stack}-{args.cell}",
            memory=args.memory_mib,
            vcpu=VCPUS,
            arch=shape.arch,
            machine=shape.machine,
            type=shape.type,
            cpu=libvirt.DomainCpuArgs(mode=shape.cpu_mode),
            cloudinit=self.cloudinit.id,
            disks=[libvirt.DomainDiskArgs(volume_id=self.disk.id)],
            network_interfaces=[libvirt.DomainNetworkInterfaceArgs(
                network_id=plat.network.id, hostname=hostname(args.cell), addresses=[args.address],
                wait_for_lease=True)],
            consoles=[libvirt.DomainConsoleArgs(type="pty", target_port="0", target_type="serial")],
            # aarch64 virt has no IDE for the provider's cloud-init cdrom: move it to virtio-scsi.
            xml=domain_xml(shape.arch, shape.machine),
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                custom_timeouts=pulumi.CustomTimeouts(create=shape.create_timeout),
                ignore_changes=list(DOMAIN_IGNORED_CHANGES),
                # A new seed ISO would be swapped into the running domain as an IDE cdrom without the
                # stylesheet (terraform-provider-libvirt v0.8.1 resource_libvirt_domain.go:688-709),
                # which aarch64 virt refuses ("target hdd doesn't exist"): a new seed, a new domain.
                replace_on_changes=["cloudinit"])),
        )
        # The fixed address, once the domain exists: commands wait for the domain through it.
        address = self.domain.id.apply(lambda _: args.address)
        # An emulated guest takes minutes to boot: give SSH a long redial budget.
        self.host = Host(address=address, user=GUEST_USER, arch=args.arch, private_key=args.private_key,
                         dial_error_limit=120 if shape.type == "qemu" else 60)
        self.register_outputs({"address": address, "memoryMiB": args.memory_mib, "arch": args.arch})
