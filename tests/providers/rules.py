"""Which step the Pulumi engine takes for a resource on a second `pulumi up`, as the pinned providers decide.

One table (`RULES`) says, per resource type the program uses, which input paths force a replacement and
which the provider fills in itself. One function (`plan_step`) applies the engine's order of checks to
old and new inputs plus the resource options. Every rule cites the source it was read from.

Sources (read, not guessed; "file:line@version"):
  CMD   github.com/pulumi/pulumi-command, git tag v1.2.1, provider/pkg/provider/...
  GOP   github.com/pulumi/pulumi-go-provider v1.3.0 (the version pulumi-command v1.2.1's provider/go.mod pins)
  ENG   github.com/pulumi/pulumi/pkg/v3 v3.274.0, resource/deploy/step_generator.go. v3.272.0 itself could not
        be had (the Go proxy lists v3.260.0 then v3.274.0; v3.272.0 answers 403). Every function cited here
        (shouldTriggerReplace, diff, processIgnoreChanges, applyReplaceOnChanges, calculateDependentReplacements,
        findDependentCascadeReplacements, generateStepsFromDiff) is byte-identical in v3.260.0 and v3.274.0,
        both downloaded from the proxy, so v3.272.0 has them too. Line numbers are v3.274.0's.
  BR    github.com/pulumi/pulumi-terraform-bridge/v3 v3.99.0 (pinned by pulumi-libvirt v0.5.4 provider/go.mod)
  SDK   github.com/pulumi/terraform-plugin-sdk/v2 0c0bf0d65f10 (pulumi-libvirt v0.5.4's replace), helper/schema
  TPL   github.com/dmacvicar/terraform-provider-libvirt v0.8.1, libvirt/...
  PLV   github.com/pulumi/pulumi-libvirt v0.5.4 (provider/resources.go, cmd/pulumi-resource-libvirt/schema.json)
  TLS   github.com/hashicorp/terraform-provider-tls main d72d90e (2026-04-28). pulumi-tls 5.6.2 wraps
        609226f53114 (2026-05-13), which is not in the snapshot: NOT verified at the pinned commit.
  AWS   terraform-provider-aws. The version pulumi-aws 7.51.1 wraps could not be determined: pulumi-aws
        builds it from ../upstream, a git submodule (provider/go.mod, in the copy read), the repository
        (730 MB) is over the fetch limit, and the module is not on the Go proxy. Read instead:
        internal/service/ec2/ec2_instance.go@0015dfcd (aws-sdk-go v1 era) and a later aws-sdk-go-v2 copy
        (search-index file 1794561789, commit not given), ec2_key_pair.go@05bc9541 and
        vpc_security_group.go@01606926 (both v6 era). Confirmed at the pinned version only where the installed
        pulumi_aws 7.51.1 SDK's docstrings say so (PYAWS below).
  PYCMD / PYAWS   the installed SDKs: pulumi_command 1.2.1, pulumi_aws 7.51.1 (site-packages paths).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import pulumi
from pulumi.output import Unknown as _PulumiUnknown
from pulumi.runtime import rpc as _rpc

Step = Literal["create", "same", "update", "replace", "delete"]
Kind = Literal["tf", "infer", "provider"]


class _Unknown:
    """A value the engine does not know yet (a preview of something that depends on a new resource)."""

    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Final = _Unknown()


def is_unknown(value: object) -> bool:
    """Our sentinel, the SDK's preview-time `Unknown()`, or the wire sentinel string (rpc.py:62)."""
    return value is UNKNOWN or isinstance(value, _PulumiUnknown) or (isinstance(value, str) and value == _rpc.UNKNOWN)


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


ABSENT: Final = _Absent()  # the program leaves the property out


@dataclass(frozen=True)
class Rule:
    """How one resource type diffs.

    kind: "tf"       a Terraform SDKv2 resource behind the bridge. A change at a path under a ForceNew attribute
                     replaces (SDK schema.go:538-548, finalizeDiff: RequiresNew = Old != New || NewComputed, so an
                     unknown new value on a ForceNew path replaces too); any other change updates (BR
                     diff.go:257-262, UPDATE_REPLACE iff RequiresNew).
          "infer"    a pulumi-go-provider resource: a change to a `provider:"replaceOnChanges"` input replaces,
                     any other change updates (GOP infer/resource.go:1132-1152, 1228-1245).
          "provider" an explicit provider resource: DiffConfig replaces only for ForcesProviderReplace config
                     (BR provider.go:824-835, 855-867).
    replace_on: input paths (camelCase, `[*]` for any list index) whose change replaces. A change at the path
                or anywhere under it counts (the engine's PropertyPath.Contains, sdk properties_path.go:314-342;
                for TF, a ForceNew block marks every nested attribute).
    computed:   Optional+Computed inputs: leaving one out of the program later is no diff, the provider keeps
                its value (SDK schema.go:1576-1581: removed && Computed -> no attribute diff).
    read_back:  Optional, NOT Computed inputs that the provider's Read writes into state even when the program
                left them out; value = what an absent input means. With the old provider state given, a state
                value that differs from it is a diff (SDK schema.go:1576-1594, removed -> NewRemoved diff).
    named_dbr:  the bridge's autonaming field. An explicit value makes the provider ask for
                delete-before-replace (BR provider.go:1247-1248, schema.go:242-245).
    """

    kind: Kind
    replace_on: frozenset[str]
    computed: frozenset[str] = frozenset()
    read_back: Mapping[str, Any] = field(default_factory=dict)
    named_dbr: str = ""


def _f(*paths: str) -> frozenset[str]:
    return frozenset(paths)


RULES: Final[dict[str, Rule]] = {
    # --- pulumi-command 1.2.1 ------------------------------------------------------------------------------
    # Only `triggers` carries `provider:"replaceOnChanges"` (CMD common/inputs.go:10; the schema,
    # provider/cmd/pulumi-resource-command/schema.json:468). `create`, `update`, `delete` (inputs.go:12-14),
    # `stdin`, `logging`, `connection`, `environment`, `addPreviousOutputInEnv` (remote/command.go:44-48) have no
    # tag: a change is an update, and Update runs `update` if set, else `create` again, on the NEW connection
    # (remote/commandController.go:63-83). Delete runs `delete` only if set (commandController.go:86-92).
    # How `triggers` replaces: the provider marks a top-level "triggers" add/remove as replace (GOP
    # resource.go:1141-1146), but an element change is keyed "triggers[0]", which that lookup misses; the SDK
    # adds the option replace_on_changes=["triggers[*]"] (PYCMD remote/command.py:455), which the engine
    # applies (ENG step_generator.go:2045, 3339). Either way a change in triggers replaces.
    "command:remote:Command": Rule("infer", _f("triggers")),
    # CopyToRemote: only `triggers` replaces (CMD remote/copy.go:38, schema.json:587; PYCMD
    # remote/copy_to_remote.py:259).
    # `source`, `remotePath`, `connection` (copy.go:37-40) update; Update copies again only when the source's
    # hash or remotePath changed (copyController.go:148-153). There is no Delete (copyController.go:66-70 lists
    # no CustomDelete): a replace or destroy leaves the old files on the host.
    "command:remote:CopyToRemote": Rule("infer", _f("triggers")),
    # --- pulumi-tls 5.6.2 (TLS, not at the pinned commit) ----------------------------------------------------
    # algorithm, rsa_bits, ecdsa_curve: RequiresReplace (internal/provider/resource_private_key.go:57-84).
    # Update is empty (resource_private_key.go:270).
    "tls:index/privateKey:PrivateKey": Rule("tf", _f("algorithm", "rsaBits", "ecdsaCurve"),
                                           computed=_f("rsaBits", "ecdsaCurve")),
    # --- pulumi-libvirt 0.5.4 / terraform-provider-libvirt 0.8.1 ---------------------------------------------
    # TPL resource_libvirt_domain.go schema, lines 46-478. ForceNew: name 46-50, description 51-55, vcpu 61-66,
    # memory 67-72, firmware 73-77, type 78-83, nvram 84-106, coreos_ignition 119-124, fw_cfg_name 125-130,
    # filesystem 131-157, disk 158-193 (so a new volume id replaces the domain), graphics 251-288, every field
    # of console 303-342, cpu 343-358, cmdline 408-416, every field of tpm 424-464, xml.xslt 465-478. The same
    # set is what PLV schema.json marks willReplaceOnChanges.
    # NOT ForceNew, so an update: `cloudinit` 114-118 (Update hot-swaps the cdrom, 688-710: a new CloudInitDisk
    # does NOT give a new domain), network_interface 194-250 (Update only re-registers DHCP hosts, 724-760),
    # running 107-113, autostart, machine 364-368, arch 369-373, kernel, initrd, boot_device, video, qemu_agent,
    # metadata. Any Update first starts a stopped domain (681-686).
    # `type` (config libvirtAccel): Optional, ForceNew, Default "kvm" (78-83); Create copies it into
    # `<domain type=...>` (518-522; TERRAFORM_LIBVIRT_TEST_DOMAIN_TYPE in the provider's environment overrides
    # it, which the program never sets); Read never sets it (no d.Set("type")), so no drift, and a change
    # kvm <-> qemu replaces the domain.
    # Computed: nvram, cpu, autostart, machine, arch, emulator (and nested mac/addresses/network_id/wwn).
    # read_back: Read sets `firmware` from the loader libvirt picked (822-824). On aarch64 the provider asks for
    # `<os firmware='efi'>` (domain_def.go:118-122), libvirt fills in the loader, so the state holds a firmware
    # path the program never set; `firmware` is Optional, not Computed, ForceNew: every later `up` would
    # replace the domain unless ignore_changes covers "firmware" (the bridge drops ignored attribute diffs
    # found in the old state: BR diff.go:288-315, tfshim/sdk-v2/instance_diff.go:100-114).
    # Read also sets `running` to the live state (852); Create restores the configured value (616-622), so a
    # diff on `running` appears only after a `pulumi refresh` of a stopped domain, and that update starts it.
    # named_dbr: SetAutonaming makes `name` autonamed (PLV resources.go:170; BR info/autonaming.go:43-63), so
    # the program's explicit names make every libvirt replace delete-before-create (no name collision).
    "libvirt:index/domain:Domain": Rule(
        "tf",
        _f("name", "description", "vcpu", "memory", "firmware", "type", "nvram", "coreosIgnition", "fwCfgName",
           "filesystems", "disks", "graphics", "consoles", "cpu", "cmdlines", "tpm", "xml.xslt"),
        computed=_f("nvram", "cpu", "autostart", "machine", "arch", "emulator"),
        read_back={"firmware": ABSENT, "running": True},
        named_dbr="name",
    ),
    # Volume has no Update (TPL resource_libvirt_volume.go:15-18), so every input is ForceNew (20-76); size and
    # format are Computed (36-47), so a base volume without them never diffs on them.
    "libvirt:index/volume:Volume": Rule(
        "tf",
        _f("name", "pool", "source", "size", "format", "baseVolumeId", "baseVolumePool", "baseVolumeName", "xml"),
        computed=_f("size", "format"),
        named_dbr="name",
    ),
    # CloudInitDisk has no Update (TPL resource_libvirt_cloud_init.go:13-16); every input ForceNew (18-43):
    # new user data is a new ISO.
    "libvirt:index/cloudInitDisk:CloudInitDisk": Rule(
        "tf", _f("name", "pool", "userData", "metaData", "networkConfig"), named_dbr="name"),
    # Network (TPL resource_libvirt_network.go): ForceNew name 53-57, domain 58-63, mode 64-69, bridge 70-75,
    # addresses 81-88, dns forwarders/srvs 113-183, dhcp 211-227, routes 228-244, xml 277-290. Updatable: mtu
    # 76-80, autostart 89-94, dns.enabled/localOnly/hosts, dnsmasqOptions 245-276.
    "libvirt:index/network:Network": Rule(
        "tf",
        _f("name", "domain", "mode", "bridge", "addresses", "dns.forwarders", "dns.srvs", "dhcp", "routes", "xml"),
        computed=_f("bridge", "autostart", "dns", "dhcp"),
        named_dbr="name",
    ),
    # The explicit provider: only `uri` (PLV resources.go:84-90), without ForcesProviderReplace, so a new URI
    # is an update of the provider and no resource is replaced for it (BR provider.go:824-835).
    "pulumi:providers:libvirt": Rule("provider", _f()),
    # --- pulumi-aws 7.51.1 (AWS: not at the pinned terraform-provider-aws version; see module docstring) -----
    # Two copies of internal/service/ec2/ec2_instance.go were read: @0015dfcd (aws-sdk-go v1) and a later
    # aws-sdk-go-v2 copy (search-index file id 1794561789, commit not reported). Both: ami ForceNew + Computed +
    # Optional (the first schema attribute: lines 61-66 @0015dfcd), and ForceNew associate_public_ip_address,
    # availability_zone, cpu_core_count, cpu_threads_per_core, cpu_options.*, ebs_block_device.*, ebs_optimized,
    # enclave_options.enabled, ephemeral_block_device, hibernation, host_id, ipv6_addresses, key_name,
    # launch_template, network_interface.*, placement_group, placement_partition_number,
    # private_dns_name_options, private_ip, security_groups, subnet_id, tenancy,
    # root_block_device.{encrypted,kms_key_id}. The v2 copy adds instance_market_options, ForceNew down to
    # every spot_options field, and drops ForceNew from ipv6_address_count.
    # Confirmed at the pinned version by the installed SDK (PYAWS): root_block_device encrypted/kms_key_id
    # replace (ec2/_inputs.py:6590), security_groups replace (ec2/instance.py:217).
    # Updatable: tags, volume_tags, vpc_security_group_ids, metadata_options (ModifyInstanceMetadataOptions),
    # root_block_device.{volume_size,volume_type,iops,throughput,delete_on_termination,tags} (ModifyVolume),
    # instance_type and user_data with a stop/start of the instance (modifyInstanceAttributeWithStopStart;
    # PYAWS ec2/instance.py:99, 125). user_data replaces only with user_data_replace_on_change (ForceNewIf in
    # CustomizeDiff; PYAWS ec2/instance.py:125-127): see _conditional_replace_on.
    # `region` (new in pulumi-aws v7, injected by the v6 provider): UNVERIFIED, assumed to replace.
    "aws:ec2/instance:Instance": Rule(
        "tf",
        _f("ami", "associatePublicIpAddress", "availabilityZone", "cpuCoreCount", "cpuThreadsPerCore",
           "cpuOptions", "ebsBlockDevices", "ebsOptimized", "enclaveOptions", "ephemeralBlockDevices", "hibernation",
           "hostId", "ipv6Addresses", "keyName", "launchTemplate", "networkInterfaces",
           "placementGroup", "placementPartitionNumber", "privateDnsNameOptions", "privateIp", "securityGroups",
           "subnetId", "tenancy", "rootBlockDevice.encrypted", "rootBlockDevice.kmsKeyId", "instanceMarketOptions",
           "region"),
        computed=_f("ami", "associatePublicIpAddress", "availabilityZone", "instanceType", "keyName",
                    "metadataOptions", "rootBlockDevice", "vpcSecurityGroupIds", "subnetId", "tenancy", "userData",
                    "privateIp", "ebsBlockDevices", "instanceMarketOptions"),
    ),
    # ec2_key_pair.go@05bc9541: key_name, key_name_prefix, public_key ForceNew; Update is "Tags only".
    "aws:ec2/keyPair:KeyPair": Rule("tf", _f("keyName", "keyNamePrefix", "publicKey", "region"),
                                    computed=_f("keyName", "keyNamePrefix"), named_dbr="keyName"),
    # vpc_security_group.go@01606926: description (default "Managed by Terraform", Pulumi's is "Managed by
    # Pulumi"), name, name_prefix, vpc_id ForceNew; ingress/egress are Optional+Computed sets updated in place
    # by updateSecurityGroupRules; tags update. Create revokes AWS's default allow-all egress.
    "aws:ec2/securityGroup:SecurityGroup": Rule(
        "tf", _f("description", "name", "namePrefix", "vpcId", "region"),
        computed=_f("name", "namePrefix", "vpcId", "ingress", "egress"), named_dbr="name"),
}

REPLACE_ON: Final[dict[str, frozenset[str]]] = {typ: rule.replace_on for typ, rule in RULES.items()}


@dataclass(frozen=True)
class Options:
    """The resource options the engine reads, as the mock monitor's RegisterResourceRequest carries them.

    replacement_trigger: None means the option is not set. replace_with / deleted_with: URNs.
    replace_on_changes: the request's list, which includes what the SDK adds itself ("triggers[*]").
    """

    ignore_changes: tuple[str, ...] = ()
    delete_before_replace: bool | None = None
    replacement_trigger: Any = None
    replace_with: tuple[str, ...] = ()
    deleted_with: str = ""
    depends_on: tuple[str, ...] = ()
    replace_on_changes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Decision:
    step: Step
    why: str


# --- values -------------------------------------------------------------------------------------------------


def canonical(value: Any) -> Any:
    """A comparable copy of an input as the mock receives it: secrets unwrapped (the engine diffs through them,
    ENG step_generator.go:3844-3866), assets and archives reduced to their content hash (CopyToRemote copies
    again when the hash changes, CMD copyController.go:148). Call it when recording inputs, since an archive's
    folder may change on disk before the next run."""
    if _rpc.is_rpc_secret(value):
        return canonical(_rpc.unwrap_rpc_secret(value))
    if isinstance(value, pulumi.FileArchive | pulumi.FileAsset):
        return {"__asset": value.path, "hash": _tree_hash(str(value.path))}
    if isinstance(value, pulumi.StringAsset):
        return {"__asset": "text", "hash": hashlib.sha256(value.text.encode()).hexdigest()}
    if isinstance(value, pulumi.RemoteAsset | pulumi.RemoteArchive):
        return {"__asset": value.uri}
    if isinstance(value, pulumi.AssetArchive):
        return {"__archive": {k: canonical(v) for k, v in value.assets.items()}}
    if isinstance(value, Mapping):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [canonical(v) for v in value]
    return value


def _tree_hash(path: str) -> str:
    digest = hashlib.sha256()
    if os.path.isfile(path):
        with open(path, "rb") as fh:
            digest.update(fh.read())
        return digest.hexdigest()
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, path).encode() + b"\0")
            with open(full, "rb") as fh:
                digest.update(fh.read())
    return digest.hexdigest()


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    """(path, value) for every leaf; an empty list or map is a leaf, so [] differs from absent."""
    if isinstance(value, Mapping) and value:
        for key, sub in value.items():
            yield from _leaves(sub, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list | tuple) and value:
        for i, sub in enumerate(value):
            yield from _leaves(sub, f"{path}[{i}]")
    else:
        yield path, value


def _flat(props: Mapping[str, Any]) -> dict[str, Any]:
    """Leaves of a property map; a None value is the same as an absent one (the SDK does not send it:
    pulumi 3.272.0 runtime/rpc.py:243-244)."""
    return {path: val for key, sub in props.items() for path, val in _leaves(sub, key) if val is not None}


def _raw_assets(value: Any) -> bool:
    if isinstance(value, pulumi.Asset | pulumi.Archive):
        return True
    if isinstance(value, Mapping):
        return any(_raw_assets(v) for v in value.values())
    return isinstance(value, list | tuple) and any(_raw_assets(v) for v in value)


_SEGMENT = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[([^\]]*)\]|([^.\[\]]+)')


def _segments(path: str) -> list[str]:
    """A property path's segments: `a.b[0]`, `a[*].b` and `tags["k:v"]` (a quoted key may hold `.` and `:`),
    as the engine parses them (sdk go/common/resource/properties_path.go:314-342 ParsePropertyPath)."""
    return [quoted or bracket or bare for quoted, bracket, bare in _SEGMENT.findall(path)]


def _under(path: str, pattern: str) -> bool:
    """`path` is `pattern` or lies under it; `*` in the pattern matches one segment."""
    p, q = _segments(path), _segments(pattern)
    return len(p) >= len(q) and all(b in ("*", a) for a, b in zip(p, q, strict=False))


def _touches(path: str, patterns: Collection[str]) -> bool:
    """A change at `path` reaches a pattern: it lies under one, or (a whole block added, removed or unknown)
    one lies under it."""
    return any(_under(path, pat) or _under(pat, path) for pat in patterns)


def _changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """Leaf paths whose value differs, mapped to the new value (ABSENT when removed)."""
    a, b = _flat(old), _flat(new)
    out: dict[str, Any] = {}
    for path in a.keys() | b.keys():
        va, vb = a.get(path, ABSENT), b.get(path, ABSENT)
        if is_unknown(vb) or va != vb:
            out[path] = vb
    return out


def _conditional_replace_on(typ: str, new_inputs: Mapping[str, Any]) -> frozenset[str]:
    # ec2_instance.go@0015dfcd CustomizeDiff: ForceNewIf("user_data"/"user_data_base64") when
    # user_data_replace_on_change is true; PYAWS ec2/instance.py:125-127.
    if typ == "aws:ec2/instance:Instance" and new_inputs.get("userDataReplaceOnChange") is True:
        return _f("userData", "userDataBase64")
    return _f()


def _trigger_replaces(new: Any, old: Any) -> bool:
    """ENG step_generator.go:3827-3842 shouldTriggerReplace: unknown on either side replaces; None on either
    side (the option not set, now or in the old state) never does; otherwise replace iff the values differ.
    So the first `up` after ADDING the option replaces nothing: the old state has no trigger."""
    if is_unknown(new) or is_unknown(old) or any(is_unknown(v) for _, v in _leaves(new, "")):
        return True
    if old is None or new is None:
        return False
    return bool(canonical(new) != canonical(old))


# --- the engine's decision ----------------------------------------------------------------------------------


def decide(
    typ: str,
    old_inputs: Mapping[str, Any] | None,
    new_inputs: Mapping[str, Any] | None,
    opts: Options | None = None,
    replaced: Collection[str] = frozenset(),
    *,
    old_opts: Options | None = None,
    old_outputs: Mapping[str, Any] | None = None,
    property_deps: Mapping[str, Collection[str]] | None = None,
    preview: bool = True,
) -> Decision:
    """The step for one resource, in the engine's order of checks.

    typ: the type token. old_inputs: last run's inputs (None: not in the state). new_inputs: this run's (None:
    not registered this run). opts / old_opts: this run's and last run's options (old_opts None: no old state).
    replaced: URNs the engine has already decided to replace in this run; call in registration order.
    old_outputs: last run's provider state, for `read_back` rules. property_deps: the registration's
    propertyDependencies; in a preview, an input that depends on a replaced resource is unknown (the
    replacement's outputs are not known until it is created), so it counts as changed.
    """
    if new_inputs is None:
        return Decision("delete", "not registered in this run")
    if old_inputs is None:
        return Decision("create", "not in the old state")
    rule = RULES.get(typ)
    if rule is None:
        raise KeyError(f"no provider rule for {typ}; read its provider's source and add one")
    if _raw_assets(old_inputs):
        raise TypeError("record old inputs through canonical(): an archive's folder may have changed since")
    opts = opts or Options()
    old_opts = old_opts or Options()

    # ENG step_generator.go:1896-1900: an unknown trigger outside a preview is an error, not a replace.
    if not preview and is_unknown(opts.replacement_trigger):
        raise ValueError(f"replacement trigger contains unknowns for {typ} (the engine fails the update)")
    # ENG step_generator.go:1903, 2052: a trigger change replaces before the provider is asked.
    if _trigger_replaces(opts.replacement_trigger, old_opts.replacement_trigger):
        return Decision("replace", "replacementTrigger changed")
    # ENG step_generator.go:3031-3041: replaced because a resource in replaceWith is being replaced.
    hit = [urn for urn in opts.replace_with if urn in replaced]
    if hit:
        return Decision("replace", f"replaceWith {hit[0]} is replaced")
    # ENG step_generator.go:3045-3053 (since v3.260.0, pulumi/pulumi#23818): replaced with its deletedWith target.
    if opts.deleted_with and opts.deleted_with in replaced:
        return Decision("replace", f"deletedWith {opts.deleted_with} is replaced")
    # dependsOn alone changes no input, so it never replaces (ENG step_generator.go:3480-3484).

    new = {k: canonical(v) for k, v in new_inputs.items()}
    if preview and property_deps:
        for key, deps in property_deps.items():
            if key in new and any(urn in replaced for urn in deps):
                new[key] = UNKNOWN
    old = dict(old_inputs)
    # ENG step_generator.go:1363, 3216-3236 processIgnoreChanges: an ignored path takes its old value.
    for path in opts.ignore_changes:
        top = _segments(path)[0]
        if top in old and _segments(path) == [top]:
            new[top] = old[top]

    changed = _changed(old, new)
    if rule.kind == "tf":
        # A Computed input the program no longer sets: the provider keeps its value, no diff.
        changed = {p: v for p, v in changed.items() if not (v is ABSENT and _segments(p)[0] in rule.computed)}
        if old_outputs is not None:
            for prop, absent_means in rule.read_back.items():
                state, want = old_outputs.get(prop, ABSENT), new.get(prop, absent_means)
                if state is not ABSENT and state != want:
                    changed.setdefault(prop, want)
    # The bridge and the engine both drop ignored paths from the diff (BR instance_diff.go:100-114).
    changed = {p: v for p, v in changed.items() if not any(_under(p, ig) for ig in opts.ignore_changes)}
    if not changed:
        return Decision("same", "no input changed")

    force = rule.replace_on | _conditional_replace_on(typ, new) | frozenset(opts.replace_on_changes)
    for path, value in sorted(changed.items()):
        if _touches(path, force):
            what = "unknown" if is_unknown(value) else "changed"
            return Decision("replace", f"{path} {what} and forces replacement")
    return Decision("update", "changed in place: " + ", ".join(sorted(changed)))


def plan_step(
    typ: str,
    old_inputs: Mapping[str, Any] | None,
    new_inputs: Mapping[str, Any] | None,
    opts: Options | None = None,
    replaced: Collection[str] = frozenset(),
    **kwargs: Any,
) -> Step:
    """`decide(...).step`."""
    return decide(typ, old_inputs, new_inputs, opts, replaced, **kwargs).step


def delete_before_replace(typ: str, new_inputs: Mapping[str, Any], opts: Options | None = None) -> bool:
    """Whether a replace deletes the old resource first. The option wins over the provider (ENG
    step_generator.go:2142-2146); the bridge asks for it when the autonamed field is set explicitly (BR
    provider.go:1247-1248, schema.go:242-245): every libvirt resource of this program, whose names are fixed.
    Delete-before-replace also deletes first every dependent that the change would replace
    (step_generator.go:2159-2177, through calculateDependentReplacements and findDependentCascadeReplacements)."""
    if opts is not None and opts.delete_before_replace is not None:
        return opts.delete_before_replace
    rule = RULES.get(typ)
    return bool(rule and rule.named_dbr and new_inputs.get(rule.named_dbr) is not None)


# What the libvirt provider fills into a domain that the program does not set. Only what matters for diffs;
# the full XML is modelled elsewhere.
DOMAIN_FILLED_IN: Final[dict[str, str]] = {
    # TPL domain_def.go:118-122: aarch64 gets <os firmware='efi'>; libvirt picks loader and nvram, and Read
    # copies the loader path into `firmware` (resource_libvirt_domain.go:822-824), nvram into `nvram` (826-837).
    "aarch64.firmware": "set by libvirt's firmware autoselection (e.g. /usr/share/AAVMF/AAVMF_CODE.fd)",
    # TPL domain_def.go:144-157: machine unset -> the host caps' default for the arch, canonicalised;
    # Read maps it back to the alias (resource_libvirt_domain.go:864-869), so a set alias reads back unchanged.
    "machine": "capabilities default for the arch when unset",
    # TPL domain.go:204-219: the cloud-init ISO is a cdrom, target dev 'hdd' bus 'ide', serial 'cloudinit'
    # (Read skips it, resource_libvirt_domain.go:895-900, so it never shows in `disks`).
    "cloudinit": "cdrom hdd on bus ide",
}
