"""Pulumi mocks that answer like the real providers, and a resolve() that refuses vacuous passes."""

from __future__ import annotations

import json
import shlex
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from components.commands import copy_destination, kit_args  # noqa: E402 - after the path is set
from tests.providers.rules import Options, canonical  # noqa: E402

PROJECT = "k8s-footprint"


def resolve(output: Any) -> Any:
    """The value of an Output. Fails if its apply callback never ran (preview mode, or an unknown
    value), so an assertion on it can never pass without being checked."""
    seen: list[Any] = []

    def record(value: Any) -> Any:
        seen.append(value)
        return value

    captured = pulumi.Output.from_input(output).apply(record)
    _sync_await(captured.future(with_unknowns=True))
    if not seen:
        raise AssertionError("the output never resolved: its apply callback did not run")
    return seen[0]


def fake_result(cell: str, distro: str, status: str = "ok") -> dict[str, Any]:
    """What the guest kit prints for a cell, as far as the program looks at it."""
    kube = distro not in ("bare", "docker")
    used = {"median": 300.0, "p95": 310.0, "min": 290.0, "max": 320.0}
    phase = {"samples": 5, "interval_s": 5, "used_mib": used, "available_mib": used,
             "used_legacy_mib": {"median": 200.0}, "cgroups_mib": {}, "top_processes": []}
    return {
        "schema": "k8s-footprint/result/v1", "kit_version": "0.1.0", "cell": cell, "distro": distro,
        "distro_version": None, "arch": cell.split("-")[0], "kernel": "6.1.0", "os": "Ubuntu 24.04",
        "mem_total_mib": 957.0, "status": status, "phases": {"os": phase, "idle": phase, "workload": None},
        "api": {"idle": {"ok": True, "latency_ms": 12, "error": None}, "workload": None} if kube else None,
        "workload": None, "oom_kills": 0,
        "timings_s": {"bootstrap": 1, "ready": 1, "settle": 1, "workload_ready": None}, "errors": [],
    }


@dataclass(frozen=True)
class Registration:
    """One RegisterResource request as the engine receives it: the inputs and the resource options.

    MockResourceArgs carries only the inputs; the options (ignoreChanges, replaceWith, ...) are
    what decide a second `up`, so they are read from the request itself.
    """

    urn: str
    typ: str
    name: str
    custom: bool
    inputs: dict[str, Any]  # through rules.canonical(): assets as content hashes, secrets unwrapped
    options: Options
    property_deps: dict[str, tuple[str, ...]]
    custom_timeouts: dict[str, str]


class RecordingMonitor(MockMonitor):
    """The SDK's mock monitor, keeping each registration's options (pulumi 3.272.0
    runtime/resource.py:1286-1325 builds the request these fields come from)."""

    def __init__(self, mocks: FleetMocks) -> None:
        super().__init__(mocks)
        self.fleet = mocks

    def RegisterResource(self, request: Any) -> Any:
        if request.type != "pulumi:pulumi:Stack":
            trigger = (json_format.MessageToDict(request.replacement_trigger)
                       if request.HasField("replacement_trigger") else None)
            options = Options(
                ignore_changes=tuple(request.ignoreChanges),
                delete_before_replace=request.deleteBeforeReplace if request.deleteBeforeReplaceDefined else None,
                replacement_trigger=trigger,
                replace_with=tuple(request.replace_with),
                deleted_with=request.deletedWith,
                depends_on=tuple(request.dependencies),
                replace_on_changes=tuple(request.replaceOnChanges),
            )
            timeouts = {k: getattr(request.customTimeouts, k) for k in ("create", "update", "delete")
                        if getattr(request.customTimeouts, k)}
            # Seen before new_resource runs, so a mock that rejects the inputs still leaves a record.
            self.fleet.pending_options[(request.type, request.name)] = (
                options, {k: tuple(v.urns) for k, v in request.propertyDependencies.items()}, timeouts)
        response: Any = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            options, deps, timeouts = self.fleet.pending_options.pop((request.type, request.name))
            inputs = rpc.deserialize_properties(request.object)
            self.fleet.registrations[response.urn] = Registration(
                response.urn, request.type, request.name, request.custom, canonical(inputs), options, deps, timeouts)
        return response


class ProviderError(RuntimeError):
    """What the real provider answers for inputs it refuses; the mock raises it where the provider would."""


@dataclass
class FleetMocks(pulumi.runtime.Mocks):
    """Records every resource and invoke; returns provider-shaped state (camelCase keys).

    Where the real provider refuses inputs, or a real command would fail, this raises ProviderError
    instead of answering: a program the real `pulumi up` would fail on fails here too.
    """

    resources: list[pulumi.runtime.MockResourceArgs] = field(default_factory=list)
    calls: list[pulumi.runtime.MockCallArgs] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # cell -> status the fake kit reports
    bench_stdout: dict[str, str] = field(default_factory=dict)  # cell -> what its benchmark prints instead
    addresses: dict[str, str] = field(default_factory=dict)  # machine resource name -> its address
    registrations: dict[str, Registration] = field(default_factory=dict)  # urn -> request, with options
    pending_options: dict[tuple[str, str], Any] = field(default_factory=dict)
    ami: dict[str, str] = field(default_factory=lambda: {"amd64": "ami-amd64", "arm64": "ami-arm64"})
    default_vpc: bool = True
    # host:port -> files the CopyToRemote placed there, by pulumi-command's rule.
    remote_files: dict[str, set[str]] = field(default_factory=dict)

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        n = len(self.resources)
        state = dict(args.inputs)
        if args.typ == "tls:index/privateKey:PrivateKey":
            state.update(publicKeyOpenssh="ssh-ed25519 AAAAC3NzaTEST k8sf", privateKeyOpenssh="PRIVATE-KEY-TEST")
        elif args.typ == "aws:ec2/instance:Instance":
            # Stable per instance, as a running instance's address is from one `up` to the next.
            slot = zlib.crc32(args.name.encode()) % 250
            state.update(publicIp=f"198.51.100.{slot}", arn=f"arn:aws:ec2:::instance/i-{slot}")
            self.addresses[args.name] = state["publicIp"]
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            state.setdefault("keyName", f"{args.name}-key")
        elif args.typ == "libvirt:index/domain:Domain":
            self._check_cdrom_bus(args.name, args.inputs)
            nics = state.get("networkInterfaces") or [{}]
            # Given addresses are the guest's (terraform-provider-libvirt v0.8.1 libvirt/domain.go:785-797
            # puts them in the network's DHCP host table); else DHCP picks one.
            nics[0] = {**nics[0], "addresses": nics[0].get("addresses") or [f"10.213.0.{n % 250}"]}
            state["networkInterfaces"] = nics
            self.addresses[args.name] = nics[0]["addresses"][0]
        elif args.typ == "command:remote:CopyToRemote":
            self._copy_to_remote(args.inputs)
        elif args.typ == "command:remote:Command":
            self._check_kit_present(args.name, args.inputs)
            words = kit_args(args.inputs["create"])
            verb, distro = words[0], words[1]
            stdout: dict[str, Any]
            if verb == "bootstrap":
                stdout = {"schema": "k8s-footprint/bootstrap/v1", "kit_version": "0.1.0", "distro": distro,
                          "status": "ok", "distro_version": None, "timings_s": {"bootstrap": 1, "ready": 1},
                          "errors": []}
            else:
                cell = words[words.index("--cell") + 1]
                stdout = fake_result(cell, distro, self.statuses.get(cell, "ok"))
            text = json.dumps(stdout) + "\n"
            if verb == "benchmark":
                text = self.bench_stdout.get(stdout["cell"], text)
            state.update(stdout=text, stderr="")
        return f"{args.name}-id", state

    @staticmethod
    def _endpoint(inputs: dict[str, Any]) -> str:
        connection = inputs["connection"]
        connection = connection.get("value", connection)  # it arrives as a secret
        return f"{connection['host']}:{connection.get('port', 22)}"

    def _copy_to_remote(self, inputs: dict[str, Any]) -> None:
        source, remote_path = inputs.get("source"), inputs.get("remotePath")
        # pulumi-command v1.2.1 provider/pkg/provider/remote/copy.go:37-40: source is an asset or an
        # archive, remotePath a string; both required.
        if not isinstance(source, pulumi.Asset | pulumi.Archive) or not isinstance(remote_path, str):
            raise ProviderError(f"CopyToRemote needs an asset or archive source and a remotePath, got {source!r}, "
                                f"{remote_path!r}")
        files = self.remote_files.setdefault(self._endpoint(inputs), set())
        if isinstance(source, pulumi.FileArchive):
            root = Path(source.path)
            landing = copy_destination(remote_path, source.path)
            files.update(f"{landing}/{p.relative_to(root).as_posix()}" for p in root.rglob("*") if p.is_file())
        elif isinstance(source, pulumi.FileAsset):
            files.add(remote_path)

    def _check_cdrom_bus(self, name: str, inputs: dict[str, Any]) -> None:
        """libvirt refuses the provider's cloud-init cdrom on a machine without IDE, unless the domain's
        xml.xslt moved it.

        terraform-provider-libvirt v0.8.1 attaches the CloudInitDisk as `<target dev='hdd' bus='ide'/>`
        whatever the machine (libvirt/domain.go:204-219), picks `pc` for x86 and `virt` for aarch64 when
        no machine is given (libvirt/utils_domain_def.go:101-105), and applies xml.xslt with xsltproc
        before it defines the domain (libvirt/utils_xslt.go:46-110). libvirt 9.0 refuses IDE on aarch64
        `virt` and x86 `q35` at define (../shared/FACTS.md section 7; tests/libvirt/test_real_libvirt.py
        shows it on the real libvirt).
        """
        if not inputs.get("cloudinit"):
            return
        arch = inputs.get("arch") or "x86_64"
        machine = inputs.get("machine") or ("virt" if arch == "aarch64" else "pc")
        if arch == "x86_64" and not machine.startswith("q35"):
            return  # i440fx (pc) has IDE
        from tests.libvirt.provider_model import apply_xslt

        cdrom = ("<domain><devices><disk type='file' device='cdrom'><target dev='hdd' bus='ide'/>"
                 "<serial>cloudinit</serial></disk></devices></domain>")
        if "bus='ide'" in apply_xslt(cdrom, (inputs.get("xml") or {}).get("xslt")).replace('"', "'"):
            raise ProviderError(f"{name}: error defining libvirt domain: unsupported configuration: IDE "
                                "controllers are unsupported for this QEMU binary or machine type")

    def _check_kit_present(self, name: str, inputs: dict[str, Any]) -> None:
        """A command that runs the kit from a folder where the copy put no kit fails on the real host:
        root's check exits 3 with "there is no such folder" (components/commands.py _VERIFY_AND_RUN), and
        pulumi-command fails the resource with the command's text (v1.2.1
        provider/pkg/provider/remote/commandController.go:63-83)."""
        files = self.remote_files.get(self._endpoint(inputs), set())
        for command in (inputs.get("create"), inputs.get("update")):
            if not command or "k8sf-kit " not in command:
                continue
            folder = shlex.split(command.split("k8sf-kit ", 1)[1])[0]
            home_relative = folder.removeprefix("$HOME/")
            if f"{home_relative}/k8sf" not in files:
                raise ProviderError(f"{name}: Process exited with status 3: k8sf-kit: refusing to run the kit in "
                                    f"{folder}: there is no such folder (the copy placed: {sorted(files)[:3]}...)")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args)
        if args.token == "aws:ssm/getParameter:getParameter":
            arch = "arm64" if "/arm64/" in args.args["name"] else "amd64"
            # The provider answers `value` as a secret (the data source marks it Sensitive);
            # insecureValue is the same, in the clear (pulumi_aws 7.51.1 ssm/get_parameter.py:75-80).
            ami = self.ami[arch]
            return {"name": args.args["name"], "type": "String", "id": args.args["name"], "insecureValue": ami,
                    "value": {rpc._special_sig_key: rpc._special_secret_sig, "value": ami}}, []
        if args.token == "aws:ec2/getVpc:getVpc":
            if not self.default_vpc:
                # What the provider answers when no VPC matches (data source aws_vpc).
                raise ProviderError("no matching EC2 VPC found")
            return {"id": "vpc-default", "default": True, "cidrBlock": "172.31.0.0/16"}, []
        raise AssertionError(f"no mock for invoke {args.token}")

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]


def install_mocks(m: FleetMocks, stack: str = "dev") -> FleetMocks:
    pulumi.runtime.set_mocks(m, project=PROJECT, stack=stack, preview=False, monitor=RecordingMonitor(m))
    return m


@pytest.fixture
def mocks() -> Iterator[FleetMocks]:
    m = install_mocks(FleetMocks())
    pulumi.runtime.set_all_config({}, [])
    yield m
    pulumi.runtime.set_all_config({}, [])


def set_stack_config(values: dict[str, Any], secrets: dict[str, str] | None = None) -> None:
    """Stack config as the engine hands it to a program: strings, structured values as JSON."""
    raw = {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}
    secret_keys = []
    for k, v in (secrets or {}).items():
        raw[f"{PROJECT}:{k}"] = v
        secret_keys.append(f"{PROJECT}:{k}")
    pulumi.runtime.set_all_config(raw, secret_keys)
