"""The cdrom stylesheet and where the program applies it, on the model's XML, with xsltproc.

No libvirt needed: test_real_libvirt.py shows what libvirt itself makes of the result."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from components.libvirt_cdrom import cdrom_xslt, domain_xml, machine_has_ide
from tests.libvirt import provider_model as model

pytestmark = pytest.mark.skipif(shutil.which("xsltproc") is None, reason="needs xsltproc (apt-get install xsltproc)")

DISK = model.VolumeFacts(key="/pool/disk.qcow2", pool="default", name="disk.qcow2", path="/pool/disk.qcow2",
                         format="qcow2")
CIDATA = model.VolumeFacts(key="/pool/cidata.iso", pool="default", name="cidata.iso", path="/pool/cidata.iso",
                           format="raw")


def provider_xml(arch: str, machine: str, **extra: Any) -> str:
    inputs = {"name": "vm", "memory": 1024.0, "vcpu": 1.0, "arch": arch, "type": "qemu", "cpu": {"mode": "maximum"},
              "cloudinit": f"{CIDATA.key};5f0c", "disks": [{"volumeId": DISK.key}],
              "networkInterfaces": [{"networkId": "uuid-1", "hostname": "vm", "waitForLease": True}],
              "consoles": [{"type": "pty", "targetPort": "0", "targetType": "serial"}], **extra}
    return model.domain_xml(inputs, host_arch="x86_64", machine=machine,
                            volumes={DISK.key: DISK, CIDATA.key: CIDATA}, networks={"uuid-1": "net"},
                            macs=["52:54:00:12:34:56"])


def test_x86_pc_keeps_the_providers_xml_and_other_machines_get_the_stylesheet() -> None:
    assert machine_has_ide("x86_64", None) and machine_has_ide("x86_64", "pc-i440fx-7.2")
    assert domain_xml("x86_64", None) is None
    assert not machine_has_ide("x86_64", "q35") and not machine_has_ide("aarch64", "virt")
    args = domain_xml("aarch64", "virt")
    assert args is not None and args.xslt == cdrom_xslt()


def test_the_cloud_init_cdrom_moves_to_virtio_scsi_and_keeps_its_serial() -> None:
    before = provider_xml("aarch64", "virt-7.2")
    assert "<target dev=\"hdd\" bus=\"ide\"" in before
    after = ET.fromstring(model.apply_xslt(before, cdrom_xslt()))
    cdrom = after.find("devices/disk[@device='cdrom']")
    assert cdrom is not None and cdrom.findtext("serial") == "cloudinit"  # the provider finds its disk by it
    assert cdrom.find("target").attrib == {"dev": "sda", "bus": "scsi"}  # type: ignore[union-attr]
    assert [c.attrib for c in after.findall("devices/controller")] == [{"type": "scsi", "model": "virtio-scsi"}]
    # Nothing else changes: the provider's XML with just that target and that controller.
    expected = ET.fromstring(before)
    expected.find("devices/disk[@device='cdrom']/target").attrib.update(dev="sda", bus="scsi")  # type: ignore[union-attr]
    ET.SubElement(expected.find("devices"), "controller", type="scsi", model="virtio-scsi")  # type: ignore[arg-type]
    assert model.canonical(ET.tostring(after, encoding="unicode")) == \
        model.canonical(ET.tostring(expected, encoding="unicode"))


def test_a_domain_with_a_scsi_controller_gets_no_second_one_and_the_next_scsi_name() -> None:
    before = ET.fromstring(provider_xml("aarch64", "virt-7.2"))
    devices = before.find("devices")
    assert devices is not None
    # What the provider writes for a disk with scsi = true (libvirt/domain.go:497-511, :630-636).
    vda = devices.find("disk/target[@bus='virtio']")
    assert vda is not None
    vda.attrib.update(dev="sda", bus="scsi")
    ET.SubElement(devices, "controller", type="scsi", model="virtio-scsi")
    after = ET.fromstring(model.apply_xslt(ET.tostring(before, encoding="unicode"), cdrom_xslt()))
    assert len(after.findall("devices/controller")) == 1
    assert after.find("devices/disk[@device='cdrom']/target").attrib == {"dev": "sdb", "bus": "scsi"}  # type: ignore[union-attr]
