"""The provider-rules layer says what the pinned providers and the engine say (tests/providers/rules.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime import rpc

from tests.providers.rules import (
    REPLACE_ON,
    RULES,
    UNKNOWN,
    Options,
    canonical,
    decide,
    delete_before_replace,
    plan_step,
)

CMD = "command:remote:Command"
COPY = "command:remote:CopyToRemote"
DOMAIN = "libvirt:index/domain:Domain"
VOLUME = "libvirt:index/volume:Volume"
CIDATA = "libvirt:index/cloudInitDisk:CloudInitDisk"
NETWORK = "libvirt:index/network:Network"
INSTANCE = "aws:ec2/instance:Instance"
VM_URN = "urn:pulumi:dev::k8s-footprint::k8s-footprint:index:LibvirtInstance$libvirt:index/domain:Domain::c-vm"
DISK_URN = "urn:pulumi:dev::k8s-footprint::libvirt:index/volume:Volume::c-disk"

CONN: dict[str, Any] = {"host": "10.213.0.10", "user": "debian", "privateKey": "KEY", "dialErrorLimit": 60}
COMMAND: dict[str, Any] = {"connection": CONN, "create": "sudo k8sf install k3s", "triggers": ["sha-1"]}
DOM: dict[str, Any] = {
    "name": "k8sf-dev-c", "memory": 1024, "vcpu": 1, "arch": "aarch64", "machine": "virt", "type": "qemu",
    "cloudinit": "/var/lib/libvirt/images/c-cidata.iso;abc", "disks": [{"volumeId": "/pool/c.qcow2"}],
    "networkInterfaces": [{"networkId": "net-1", "hostname": "c", "waitForLease": True}],
    "consoles": [{"type": "pty", "targetPort": "0", "targetType": "serial"}],
}
ROOT: dict[str, Any] = {"volumeType": "gp3", "volumeSize": 20, "encrypted": True, "deleteOnTermination": True}
IMDS: dict[str, Any] = {"httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1}
EC2: dict[str, Any] = {
    "ami": "ami-0001", "instanceType": "t4g.micro", "keyName": "k-1", "vpcSecurityGroupIds": ["sg-1"],
    "associatePublicIpAddress": True, "tags": {"k8sf": "dev", "expires-at": "2026-12-01"},
    "rootBlockDevice": ROOT, "metadataOptions": IMDS,
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**base, **changes}


def test_every_type_the_program_uses_has_a_rule() -> None:
    for typ in (CMD, COPY, "tls:index/privateKey:PrivateKey", DOMAIN, VOLUME, CIDATA, NETWORK,
                "pulumi:providers:libvirt", INSTANCE, "aws:ec2/keyPair:KeyPair", "aws:ec2/securityGroup:SecurityGroup"):
        assert typ in RULES and REPLACE_ON[typ] == RULES[typ].replace_on


def test_create_same_and_delete() -> None:
    assert plan_step(CMD, None, COMMAND) == "create"
    assert plan_step(CMD, COMMAND, dict(COMMAND)) == "same"
    assert plan_step(CMD, COMMAND, None) == "delete"


# --- pulumi-command ---------------------------------------------------------------------------------------------

def test_command_triggers_replace_create_and_connection_update() -> None:
    assert plan_step(CMD, COMMAND, with_(COMMAND, triggers=["sha-2"])) == "replace"
    assert plan_step(CMD, COMMAND, with_(COMMAND, triggers=["sha-1", "x"])) == "replace"
    assert plan_step(CMD, with_(COMMAND, triggers=None), COMMAND) == "replace"
    # A new create (or connection, stdin, delete) is an update: the provider runs `create` again.
    assert plan_step(CMD, COMMAND, with_(COMMAND, create="sudo k8sf install k0s")) == "update"
    assert plan_step(CMD, COMMAND, with_(COMMAND, delete="sudo k8sf uninstall")) == "update"
    assert plan_step(CMD, COMMAND, with_(COMMAND, stdin="secret")) == "update"
    assert plan_step(CMD, COMMAND, with_(COMMAND, connection=with_(CONN, host="10.213.0.11"))) == "update"
    # The option the SDK itself adds (pulumi_command/remote/command.py:455), as the mock monitor sees it.
    sdk = Options(replace_on_changes=("triggers[*]",))
    assert plan_step(CMD, COMMAND, with_(COMMAND, create="x"), sdk) == "update"
    assert plan_step(CMD, COMMAND, with_(COMMAND, triggers=["sha-2"]), sdk) == "replace"


def test_command_on_a_replaced_vm_in_preview_is_an_update_not_a_replace() -> None:
    # The host comes from the replaced domain: unknown in the preview; connection does not force replacement,
    # so the engine re-runs `create` on the new VM through an update.
    d = decide(CMD, COMMAND, COMMAND, replaced={VM_URN}, property_deps={"connection": [VM_URN]})
    assert d.step == "update", d.why


def test_command_follows_replace_with_and_deleted_with() -> None:
    assert plan_step(CMD, COMMAND, COMMAND, Options(replace_with=(VM_URN,)), {VM_URN}) == "replace"
    assert plan_step(CMD, COMMAND, COMMAND, Options(replace_with=(VM_URN,)), set()) == "same"
    assert plan_step(CMD, COMMAND, COMMAND, Options(deleted_with=VM_URN), {VM_URN}) == "replace"
    assert plan_step(CMD, COMMAND, COMMAND, Options(depends_on=(VM_URN,)), {VM_URN}) == "same"


def test_copy_to_remote_updates_on_new_content_and_replaces_on_triggers(tmp_path: Path) -> None:
    kit = tmp_path / "guest"
    kit.mkdir()
    (kit / "k8sf").write_text("v1")
    old = canonical({"connection": CONN, "source": pulumi.FileArchive(str(kit)), "remotePath": "/var/tmp/k",
                     "triggers": ["d1"]})
    assert plan_step(COPY, old, {**old}) == "same"
    (kit / "k8sf").write_text("v2")
    new = {"connection": CONN, "source": pulumi.FileArchive(str(kit)), "remotePath": "/var/tmp/k", "triggers": ["d1"]}
    assert plan_step(COPY, old, new) == "update"
    assert plan_step(COPY, old, with_(old, remotePath="/home/u/k")) == "update"
    assert plan_step(COPY, old, with_(old, triggers=["d2"])) == "replace"
    with pytest.raises(TypeError):
        plan_step(COPY, new, new)


# --- the engine's options -------------------------------------------------------------------------------------

def test_replacement_trigger() -> None:
    def step(old: object, new: object, preview: bool = True) -> str:
        return plan_step(CMD, COMMAND, COMMAND, Options(replacement_trigger=new),
                         old_opts=Options(replacement_trigger=old), preview=preview)

    assert step("a", "b") == "replace"
    assert step("a", "a") == "same"
    assert step({"k": ["a"]}, {"k": ["a"]}) == "same"
    # The first `up` after adding the option: the old state holds no trigger, so nothing is replaced.
    assert step(None, "a") == "same"
    assert step("a", None) == "same"
    assert step("a", UNKNOWN) == "replace"
    assert step("a", ["x", UNKNOWN]) == "replace"
    with pytest.raises(ValueError):
        step("a", UNKNOWN, preview=False)


def test_secrets_are_compared_by_value() -> None:
    secret = {rpc._special_sig_key: rpc._special_secret_sig, "value": "KEY"}
    assert plan_step(CMD, COMMAND, with_(COMMAND, connection=with_(CONN, privateKey=secret))) == "same"


def test_ignore_changes_and_replace_on_changes_options() -> None:
    assert plan_step(INSTANCE, EC2, with_(EC2, ami="ami-0002"), Options(ignore_changes=("ami",))) == "same"
    assert plan_step(INSTANCE, EC2, with_(EC2, tags={"k8sf": "dev"}), Options(ignore_changes=("tags",))) == "same"
    assert plan_step(CMD, COMMAND, with_(COMMAND, create="x"), Options(replace_on_changes=("create",))) == "replace"


# --- libvirt ---------------------------------------------------------------------------------------------------

def test_volume_and_cidata_replace_on_any_change() -> None:
    vol = {"name": "k8sf-dev-c.qcow2", "pool": "default", "baseVolumeId": "/pool/base", "size": 20 << 30,
           "format": "qcow2"}
    assert plan_step(VOLUME, vol, with_(vol, size=30 << 30)) == "replace"
    assert plan_step(VOLUME, vol, with_(vol, size=None)) == "same"  # size is Computed
    ci = {"name": "k8sf-dev-c-cidata.iso", "pool": "default", "userData": "#cloud-config\n", "metaData": "x"}
    assert plan_step(CIDATA, ci, with_(ci, userData="#cloud-config\nruncmd: []\n")) == "replace"


def test_domain_diffs() -> None:
    # A new cidata ISO only hot-swaps the cdrom: the domain keeps its disk.
    assert plan_step(DOMAIN, DOM, with_(DOM, cloudinit="/pool/c2.iso;def")) == "update"
    assert plan_step(DOMAIN, DOM, with_(DOM, disks=[{"volumeId": "/pool/c2.qcow2"}])) == "replace"
    assert plan_step(DOMAIN, DOM, with_(DOM, memory=2048)) == "replace"
    assert plan_step(DOMAIN, DOM, with_(DOM, consoles=[])) == "replace"
    assert plan_step(DOMAIN, DOM, with_(DOM, xml={"xslt": "<xsl:stylesheet/>"})) == "replace"
    assert plan_step(DOMAIN, DOM, with_(DOM, networkInterfaces=[{"networkId": "net-2"}])) == "update"
    # libvirtAccel: `type` alone (kvm <-> qemu) replaces; the state keeps the input, Read never sets it.
    kvm = with_(DOM, type="kvm")
    assert plan_step(DOMAIN, kvm, with_(kvm, type="qemu")) == "replace"
    assert decide(DOMAIN, kvm, with_(kvm, type="qemu")).why == "type changed and forces replacement"
    # The overlay volume is replaced: in a preview its id is unknown, and `disks` forces a new domain.
    d = decide(DOMAIN, DOM, DOM, replaced={DISK_URN}, property_deps={"disks": [DISK_URN]})
    assert d.step == "replace", d.why
    assert plan_step(DOMAIN, DOM, DOM, replaced={DISK_URN}, property_deps={"disks": [DISK_URN]},
                     preview=False) == "same"  # up: the caller passes the new id as the input


def test_aarch64_firmware_read_back_replaces_unless_ignored() -> None:
    state = with_(DOM, firmware="/usr/share/AAVMF/AAVMF_CODE.fd", running=True)
    assert plan_step(DOMAIN, DOM, DOM, old_outputs=state) == "replace"
    assert plan_step(DOMAIN, DOM, DOM, Options(ignore_changes=("firmware",)), old_outputs=state) == "same"
    # After a refresh of a stopped domain, `running` reads false: the next up updates, and so starts it.
    stopped = with_(state, running=False)
    assert plan_step(DOMAIN, DOM, DOM, Options(ignore_changes=("firmware",)), old_outputs=stopped) == "update"


def test_network_and_provider() -> None:
    net = {"name": "k8sf-dev", "mode": "nat", "addresses": ["10.213.0.0/24"], "dhcp": {"enabled": True},
           "autostart": True}
    assert plan_step(NETWORK, net, with_(net, addresses=["10.214.0.0/24"])) == "replace"
    assert plan_step(NETWORK, net, with_(net, mtu=1400)) == "update"
    assert plan_step("pulumi:providers:libvirt", {"uri": "qemu:///system"}, {"uri": "qemu+ssh://h/system"}) == "update"


def test_delete_before_replace() -> None:
    assert delete_before_replace(DOMAIN, DOM)  # an explicit name: the bridge asks for delete-first
    assert not delete_before_replace(DOMAIN, with_(DOM, name=None))
    assert not delete_before_replace(DOMAIN, DOM, Options(delete_before_replace=False))
    assert not delete_before_replace(CMD, COMMAND)
    assert delete_before_replace(CMD, COMMAND, Options(delete_before_replace=True))


# --- aws -------------------------------------------------------------------------------------------------------

def test_instance_diffs() -> None:
    assert plan_step(INSTANCE, EC2, with_(EC2, ami="ami-0002")) == "replace"
    assert plan_step(INSTANCE, EC2, with_(EC2, ami=UNKNOWN)) == "replace"
    assert plan_step(INSTANCE, EC2, with_(EC2, ami=None)) == "same"  # Computed: dropping it keeps the AMI
    assert plan_step(INSTANCE, EC2, with_(EC2, tags={"k8sf": "dev", "expires-at": "2026-12-02"})) == "update"
    assert plan_step(INSTANCE, EC2, with_(EC2, instanceType="t3.micro")) == "update"
    assert plan_step(INSTANCE, EC2, with_(EC2, userData="#!/bin/sh\n")) == "update"
    assert plan_step(INSTANCE, with_(EC2, userDataReplaceOnChange=True),
                     with_(EC2, userData="#!/bin/sh\n", userDataReplaceOnChange=True)) == "replace"
    assert plan_step(INSTANCE, EC2, with_(EC2, rootBlockDevice=with_(ROOT, volumeSize=30))) == "update"
    assert plan_step(INSTANCE, EC2, with_(EC2, rootBlockDevice=with_(ROOT, encrypted=False))) == "replace"
    assert plan_step(INSTANCE, EC2, with_(EC2, metadataOptions=with_(IMDS, httpTokens="optional"))) == "update"
    assert plan_step(INSTANCE, EC2, with_(EC2, vpcSecurityGroupIds=["sg-2"])) == "update"
    assert plan_step(INSTANCE, EC2, with_(EC2, keyName="k-2")) == "replace"


def test_unknown_type_is_refused() -> None:
    with pytest.raises(KeyError):
        plan_step("random:index/randomId:RandomId", {}, {})
