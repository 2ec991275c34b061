"""Pulumi mocks that answer like the real providers, and a resolve() that refuses vacuous passes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import pytest
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

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


@dataclass
class FleetMocks(pulumi.runtime.Mocks):
    """Records every resource and invoke; returns provider-shaped state (camelCase keys)."""

    resources: list[pulumi.runtime.MockResourceArgs] = field(default_factory=list)
    calls: list[pulumi.runtime.MockCallArgs] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)  # cell -> status the fake kit reports
    addresses: dict[str, str] = field(default_factory=dict)  # machine resource name -> its address

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.resources.append(args)
        n = len(self.resources)
        state = dict(args.inputs)
        if args.typ == "tls:index/privateKey:PrivateKey":
            state.update(publicKeyOpenssh="ssh-ed25519 AAAAC3NzaTEST k8sf", privateKeyOpenssh="PRIVATE-KEY-TEST")
        elif args.typ == "aws:ec2/instance:Instance":
            state.update(publicIp=f"198.51.100.{n % 250}", arn=f"arn:aws:ec2:::instance/i-{n}")
            self.addresses[args.name] = state["publicIp"]
        elif args.typ == "aws:ec2/keyPair:KeyPair":
            state.setdefault("keyName", f"{args.name}-key")
        elif args.typ == "libvirt:index/domain:Domain":
            nics = state.get("networkInterfaces") or [{}]
            nics[0] = {**nics[0], "addresses": [f"10.213.0.{n % 250}"]}
            state["networkInterfaces"] = nics
            self.addresses[args.name] = nics[0]["addresses"][0]
        elif args.typ == "command:remote:Command":
            from components.commands import kit_args  # after the sys.path line above

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
            state.update(stdout=json.dumps(stdout) + "\n", stderr="")
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.calls.append(args)
        if args.token == "aws:ssm/getParameter:getParameter":
            arch = "arm64" if "/arm64/" in args.args["name"] else "amd64"
            return {"name": args.args["name"], "type": "String", "value": f"ami-{arch}", "id": args.args["name"]}, []
        raise AssertionError(f"no mock for invoke {args.token}")

    def of_type(self, typ: str) -> list[pulumi.runtime.MockResourceArgs]:
        return [r for r in self.resources if r.typ == typ]


@pytest.fixture
def mocks() -> Iterator[FleetMocks]:
    m = FleetMocks()
    pulumi.runtime.set_mocks(m, project=PROJECT, stack="dev", preview=False)
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
