"""Where the provider's cloud-init cdrom can stay on IDE, and the stylesheet that moves it elsewhere.

terraform-provider-libvirt 0.8.1 (inside pulumi-libvirt 0.5.4) puts the CloudInitDisk on an IDE
cdrom whatever the machine (libvirt/domain.go:204-219). libvirt 9 refuses IDE on aarch64 ``virt``
and x86 ``q35``, so those domains get the stylesheet through the Domain's ``xml.xslt`` argument,
which the provider applies with ``xsltproc`` on the machine that runs Pulumi
(libvirt/utils_xslt.go:84-89) before it defines the domain.
"""

from __future__ import annotations

from pathlib import Path

import pulumi_libvirt as libvirt

CDROM_XSLT = Path(__file__).with_name("libvirt-cdrom.xslt")


def cdrom_xslt() -> str:
    """The stylesheet that moves an IDE cdrom to virtio-scsi (components/libvirt-cdrom.xslt)."""
    return CDROM_XSLT.read_text()


def machine_has_ide(arch: str, machine: str | None) -> bool:
    """Only x86's i440fx machine has an IDE controller. With no machine given, the provider picks
    ``pc`` for x86 (libvirt/utils_domain_def.go:101-103) and ``virt`` for aarch64 (:104-105)."""
    if arch not in ("x86_64", "i686"):
        return False
    return machine is None or machine == "pc" or machine.startswith("pc-i440fx")


def domain_xml(arch: str, machine: str | None) -> libvirt.DomainXmlArgs | None:
    """The Domain's ``xml`` argument: the cdrom stylesheet where IDE is missing, else nothing, so
    x86 ``pc`` domains keep the provider's own XML (and need no xsltproc)."""
    return None if machine_has_ide(arch, machine) else libvirt.DomainXmlArgs(xslt=cdrom_xslt())
