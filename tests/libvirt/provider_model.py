"""A model of the libvirt XML that pulumi-libvirt 0.5.4 writes for the program's resources.

pulumi-libvirt 0.5.4 wraps terraform-provider-libvirt v0.8.1 (pulumi-libvirt v0.5.4,
provider/go.mod:14). Every rule below cites that provider's source at tag v0.8.1
(github.com/dmacvicar/terraform-provider-libvirt, commit 1cd90b7c), file:line, under libvirt/.
The provider marshals libvirt.org/go/libvirtxml v1.10007.0 structs (go.mod:15); element order
here follows those structs, though libvirt does not care about it.

Inputs are what the program hands the provider: the inputs a Pulumi mock receives (camelCase
keys). What the provider looks up in libvirt while it builds the XML (a volume's pool, path and
format; a network's name; the canonical machine name) is passed in as looked-up facts, so the
test can take them from the real libvirt. Only the paths the program uses are modelled:
``disk.volume_id`` disks, ``network_id`` interfaces, pty consoles, ``cloudinit``, ``xml.xslt``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class VolumeFacts:
    """What the provider reads back from libvirt about a volume it was given by key."""

    key: str
    pool: str
    name: str
    path: str
    format: str | None  # <target><format type=...> of the volume, None when libvirt shows none
    capacity: int = 0


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: v for k, v in attrs.items() if v != ""})
    if text is not None:
        el.text = text
    return el


def tostring(root: ET.Element) -> str:
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def canonical(xml: str) -> list[str]:
    """One line per element: its path, sorted attributes and text; siblings in order. Whitespace,
    quoting and empty-element forms, which libvirt ignores, drop out."""
    lines: list[str] = []

    def walk(el: ET.Element, path: str) -> None:
        attrs = " ".join(f"{k}={v!r}" for k, v in sorted(el.attrib.items()))
        lines.append(f"{path}/{el.tag} [{attrs}] {(el.text or '').strip()!r}")
        for child in el:
            walk(child, f"{path}/{el.tag}")

    walk(ET.fromstring(xml), "")
    return lines


# ---- machine types ------------------------------------------------------------------------------

def default_machine(arch: str) -> list[str]:
    """The machines the provider tries, in order, when none is given
    (libvirt/utils_domain_def.go:95-119: x86 "pc" (:102-103), aarch64 "virt" then "vexpress-a15" (:104-105))."""
    if arch in ("i686", "x86_64"):
        return ["pc"]
    if arch in ("aarch64", "armv7l"):
        return ["virt", "vexpress-a15"]
    raise ValueError(f"the model does not cover arch {arch!r}")


def canonical_machine(caps_xml: str, arch: str, machine: str | None) -> str:
    """The machine name the provider writes: the given one, or its default, made canonical from the
    host's capabilities (libvirt/domain_def.go:144-157; libvirt/utils_domain_def.go:13-58). The
    capabilities guest is looked up by arch and os type "hvm" (domain_def.go:47, :133)."""
    caps = ET.fromstring(caps_xml)
    guest = next((g for g in caps.findall("guest")
                  if g.findtext("os_type") == "hvm" and g.find("arch") is not None
                  and g.find("arch").get("name") == arch), None)  # type: ignore[union-attr]
    if guest is None:
        raise LookupError(f"Could not find any guests for architecture type hvm/{arch}")
    arch_el = guest.find("arch")
    assert arch_el is not None
    # Machines sit under <arch> and under each <arch><domain> (utils_domain_def.go:42-55).
    levels = [arch_el.findall("machine")] + [d.findall("machine") for d in arch_el.findall("domain")]

    def lookup(name: str) -> str:
        for machines in levels:
            for m in machines:
                if (m.text or "").strip() == name:
                    return m.get("canonical") or name
        return ""

    wanted = [machine] if machine else default_machine(arch)
    for name in wanted:
        found = lookup(name)
        if found:
            return found
    raise LookupError(f"Cannot find machine type {wanted} for hvm/{arch}")


# ---- the domain ---------------------------------------------------------------------------------

def cloudinit_volume_key(cloudinit_id: str) -> str:
    """A CloudInitDisk's id is "<volume key>;<uuid>" (libvirt/cloudinit_def.go:126-137)."""
    key, sep, _ = cloudinit_id.partition(";")
    if not sep:
        raise ValueError(f"{cloudinit_id} is not a valid key")
    return key


def domain_xml(inputs: Mapping[str, Any], *, host_arch: str, machine: str, volumes: Mapping[str, VolumeFacts],
               networks: Mapping[str, str], macs: Sequence[str], domain_type_env: str | None = None) -> str:
    """The XML resourceLibvirtDomainCreate marshals, before any XSLT
    (libvirt/resource_libvirt_domain.go:483-577).

    ``machine`` is the canonical machine (see canonical_machine); ``volumes`` maps a volume key to
    what libvirt says about it; ``networks`` maps a network UUID (the Network's id) to its name;
    ``macs`` are the MACs the provider would draw at random (libvirt/utils_net.go:13-31).
    """
    arch = inputs["arch"]  # the program always sets it; the provider copies it (resource_libvirt_domain.go:514)
    # libvirtxml's Domain: type attribute, then name, description, memory, vcpu, os, features, cpu, devices.
    # Type: "kvm" unless set (resource_libvirt_domain.go:78-83), or the test env var (:518-522).
    root = ET.Element("domain", {"type": domain_type_env or inputs.get("type") or "kvm"})
    _sub(root, "name", inputs["name"])  # :493-495
    if inputs.get("description"):
        _sub(root, "description", inputs["description"])  # :510
    # Memory in MiB, default 512 (:67-72, :503-506; domain_def.go:14). Both are TypeInt in the schema;
    # numbers reach a Pulumi provider (and its mocks) as floats.
    _sub(root, "memory", str(int(inputs.get("memory", 512))), unit="MiB")
    # vcpu is replaced without the default's placement='static' (:507-509; domain_def.go:54-57).
    _sub(root, "vcpu", str(int(inputs.get("vcpu", 1))))

    os_el = _sub(root, "os")
    if arch == "aarch64":
        # "for aarch64 speciffying this will automatically select the firmware" (domain_def.go:118-122).
        os_el.set("firmware", "efi")
    _sub(os_el, "type", "hvm", arch=arch, machine=machine)  # domain_def.go:45-48, :144-157
    if inputs.get("firmware"):  # a loader only when firmware is set (domain.go:389-414)
        _sub(os_el, "loader", inputs["firmware"], readonly="yes", secure="no", type="pflash")
    for tag in ("kernel", "initrd"):  # resource_libvirt_domain.go:512-513
        if inputs.get(tag):
            _sub(os_el, tag, inputs[tag])

    # Default features (domain_def.go:80-84); dropped only for s390x (:124-127).
    features = _sub(root, "features")
    for tag in ("pae", "acpi", "apic"):
        _sub(features, tag)
    # <cpu mode=...> when cpu.0.mode is set, else the default empty <cpu> (:497-501; domain_def.go:58).
    cpu = _sub(root, "cpu")
    mode = (inputs.get("cpu") or {}).get("mode")
    if mode:
        cpu.set("mode", mode)

    devices = _sub(root, "devices")
    # No <emulator>: the one taken from the capabilities (domain_def.go:138-142) is overwritten with
    # the computed, still empty, "emulator" argument (resource_libvirt_domain.go:516).

    # Disks (domain.go:488-639), a volume_id disk: virtio vdX (disk_def.go:11-25) with the pool and
    # volume name (domain.go:549-554) and a driver that matches the volume's format (:524-547).
    for i, disk in enumerate(inputs.get("disks") or []):
        vol = volumes[disk["volumeId"]]
        d = _sub(devices, "disk", type="volume", device="disk")
        _sub(d, "driver", name="qemu", type=vol.format if vol.format in ("qcow2", "raw") else "raw")
        _sub(d, "source", pool=vol.pool, volume=vol.name)
        _sub(d, "target", dev="vd" + "abcdefghijklmnopqrstuvwxyz"[i], bus="virtio")

    # The cloud-init ISO, appended after the disks (resource_libvirt_domain.go:548-558): an IDE cdrom
    # "hdd" with serial "cloudinit", source by file path (domain.go:204-237, :677-691).
    if inputs.get("cloudinit"):
        vol = volumes[cloudinit_volume_key(inputs["cloudinit"])]
        d = _sub(devices, "disk", type="file", device="cdrom")
        _sub(d, "driver", name="qemu", type="raw")
        _sub(d, "source", file=vol.path)
        _sub(d, "target", dev="hdd", bus="ide")
        _sub(d, "serial", "cloudinit")

    # Network interfaces: virtio, a random MAC, <source network=NAME> for network_id (domain.go:693-836).
    for i, nic in enumerate(inputs.get("networkInterfaces") or []):
        iface = _sub(devices, "interface", type="network")
        _sub(iface, "mac", address=nic["mac"].upper() if nic.get("mac") else macs[i])
        _sub(iface, "source", network=networks[nic["networkId"]])
        _sub(iface, "model", type="virtio")

    # Consoles (domain.go:429-486): a pty console without source_path has no <source>, so libvirtxml
    # writes no type attribute (libvirtxml domain.go:4866-4878) and libvirt reads that as pty.
    for console in inputs.get("consoles") or []:
        if console["type"] != "pty" or console.get("sourcePath"):
            raise NotImplementedError("the model covers pty consoles without source_path only")
        c = _sub(devices, "console")
        _sub(c, "target", type=console.get("targetType", ""), port=str(int(console["targetPort"])))

    # The default guest-agent channel (domain_def.go:67-78). Its empty UNIX source writes no <source>
    # element, only type='unix' (seen in the provider's own log by tests/libvirt/provider_run.py).
    ch = _sub(devices, "channel", type="unix")
    _sub(ch, "target", type="virtio", name="org.qemu.guest_agent.0")

    # Spice graphics by default (domain_def.go:60-66), dropped when the *host* (not the guest) is
    # aarch64, s390x or ppc64 (domain.go:311-316 with the host arch from resource_libvirt_domain.go:524-529).
    if not (host_arch in ("aarch64", "s390x") or host_arch.startswith("ppc64")):
        if inputs.get("graphics"):
            raise NotImplementedError("the model covers the default graphics only")
        _sub(devices, "graphics", type="spice", autoport="yes")

    # The default virtio RNG fed from /dev/urandom (domain_def.go:87-100).
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")
    return tostring(root)


def domain_xslt(inputs: Mapping[str, Any]) -> str | None:
    """The Domain's ``xml.xslt`` argument (resource_libvirt_domain.go:465-478)."""
    return (inputs.get("xml") or {}).get("xslt")


def apply_xslt(xml: str, xslt: str | None) -> str:
    """What the provider does with ``xml.xslt`` before it defines a domain, network or volume:
    nothing when empty, else xsltproc --nomkdir --nonet --nowrite on temp files, the stylesheet
    trimmed of surrounding space (libvirt/utils_xslt.go:46-110; resource_libvirt_domain.go:579-584)."""
    if xslt is None or not xslt.strip():
        return xml
    if shutil.which("xsltproc") is None:
        raise FileNotFoundError("xsltproc is not installed (apt-get install xsltproc)")
    with tempfile.TemporaryDirectory(prefix="k8sf-xslt-") as tmp:
        sheet, doc = Path(tmp, "sheet.xslt"), Path(tmp, "doc.xml")
        sheet.write_text(xslt.strip())
        doc.write_text(xml)
        out = subprocess.run(["xsltproc", "--nomkdir", "--nonet", "--nowrite", str(sheet), str(doc)],
                             capture_output=True, text=True, timeout=60, check=True)
    return out.stdout


# ---- the network --------------------------------------------------------------------------------

def _dhcp_range(net: IPv4Network | IPv6Network) -> tuple[str, str, str]:
    """Host address .1, DHCP from .2 to the last address but one (libvirt/network.go:144-194)."""
    if net.max_prefixlen - net.prefixlen < 3:
        raise ValueError(f"netmask seems to be too strict: {net}")
    first, last = net.network_address, net.broadcast_address
    return str(first + 1), str(first + 2), str(last - 1)


def network_xml(inputs: Mapping[str, Any]) -> str:
    """resourceLibvirtNetworkCreate for mode nat/route/open/none with addresses
    (libvirt/resource_libvirt_network.go:341-453)."""
    mode = str(inputs.get("mode", "nat")).lower()  # default "nat" (resource_libvirt_network.go:64-69)
    if mode not in ("nat", "none", "route", "open"):
        raise NotImplementedError(f"the model does not cover network mode {mode!r}")
    root = ET.Element("network")
    _sub(root, "name", inputs["name"])  # :350
    if mode != "none":
        # The default's <nat><port .../></nat> is lost: Forward is replaced by {Mode} (:359-361),
        # and route/open have no NAT (:369-372). "none" (isolated) has no forward at all (:366-368).
        _sub(root, "forward", mode=mode)
    if inputs.get("domain"):
        _sub(root, "domain", name=inputs["domain"])  # network.go:214-231
    # A bridge with stp on, its name left to libvirt unless given (network.go:197-210).
    _sub(root, "bridge", name=inputs.get("bridge", ""), stp="on")
    dhcp_on = (inputs.get("dhcp") or {}).get("enabled", True)  # DHCP on unless disabled (network.go:94-136)
    for address in inputs.get("addresses") or []:
        net = ip_network(address, strict=False)
        host, start, end = _dhcp_range(net)
        ip = _sub(root, "ip", address=host, family="ipv6" if net.version == 6 else "ipv4", prefix=str(net.prefixlen))
        if dhcp_on:
            _sub(_sub(ip, "dhcp"), "range", start=start, end=end)
    # An empty dnsmasq options element is always there (resource_libvirt_network.go:415-419).
    ET.SubElement(root, "{http://libvirt.org/schemas/network/dnsmasq/1.0}options")
    ET.register_namespace("dnsmasq", "http://libvirt.org/schemas/network/dnsmasq/1.0")
    return tostring(root)


# ---- volumes ------------------------------------------------------------------------------------

def _volume(name: str, capacity: int, unit: str, fmt: str) -> ET.Element:
    """newDefVolume: qcow2, mode 644 (libvirt/volume_def.go:11-26)."""
    root = ET.Element("volume")
    _sub(root, "name", name)
    _sub(root, "capacity", str(capacity), unit=unit)
    target = _sub(root, "target")
    _sub(target, "format", type=fmt)
    _sub(_sub(target, "permissions"), "mode", "644")
    return root


def source_volume_xml(inputs: Mapping[str, Any], *, source_is_qcow2: bool, source_size: int) -> str:
    """A Volume with ``source``: capacity in B = the source file's size, format qcow2 when the file
    is qcow2, else the given format, else qcow2 (libvirt/resource_libvirt_volume.go:113-163;
    volume_image.go:35-63). The bytes are then uploaded as they are (:257-267; volume_image.go:65-85).
    A raw image declared ``format = "qcow2"`` is not caught (the check at :151 is one-way)."""
    fmt = "qcow2" if source_is_qcow2 else inputs.get("format", "qcow2")
    return tostring(_volume(inputs["name"], source_size, "B", fmt))


def overlay_volume_xml(inputs: Mapping[str, Any], *, base: VolumeFacts) -> str:
    """A Volume with ``base_volume_id``: a backing store at the base's path and format, capacity
    ``size`` (bytes) or else the base's, never below the base's (resource_libvirt_volume.go:164-227;
    volume_def.go:50-70)."""
    size = int(inputs.get("size") or base.capacity)
    if size < base.capacity:
        raise ValueError("when 'size' is specified, it shouldn't be smaller than the backing store")
    root = _volume(inputs["name"], size, "bytes", inputs.get("format", "qcow2"))
    backing = _sub(root, "backingStore")
    _sub(backing, "path", base.path)
    if base.format:
        _sub(backing, "format", type=base.format)
    return tostring(root)


def cloudinit_volume_xml(name: str, iso_size: int) -> str:
    """The CloudInitDisk's volume: raw, capacity = the ISO's size in B (libvirt/cloudinit_def.go:79-105)."""
    return tostring(_volume(name, iso_size, "B", "raw"))


def cloudinit_iso(inputs: Mapping[str, Any], out_dir: Path) -> Path:
    """The ISO the provider builds on the Pulumi host: user-data, meta-data and an always-present
    (here empty) network-config, by ``mkisofs`` under that name (libvirt/cloudinit_def.go:141-195)."""
    if shutil.which("mkisofs") is None:
        raise FileNotFoundError("mkisofs is not installed (apt-get install genisoimage)")
    files = {"user-data": inputs.get("userData", ""), "meta-data": inputs.get("metaData", ""),
             "network-config": inputs.get("networkConfig", "")}
    for fname, text in files.items():
        (out_dir / fname).write_text(text)
    iso: Path = out_dir / str(inputs["name"])
    subprocess.run(["mkisofs", "-output", str(iso), "-volid", "cidata", "-joliet", "-rock",
                    *(str(out_dir / f) for f in files)], check=True, capture_output=True, timeout=60)
    return iso
