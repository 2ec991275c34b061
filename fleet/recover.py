"""Every finished cell's result, from the stack's state, and the engine's error for the others.

A failed resource leaves the update without new stack outputs (components/commands.py:no_result_guard
cites the engine and SDK lines), but every Command that finished is in the state with its stdout:
`pulumi stack export` prints it as an apitype.UntypedDeployment, {"version": 3, "deployment": ...},
whose deployment is a DeploymentV3 (sdk/go/common/apitype/core.go:154-170 at v3.259.0): "resources"
(ResourceV3, core.go:489-510: urn, custom, type, outputs, parent) and "pending_operations"
(OperationV2, core.go:374-379: resource, type "creating" | "updating" | ...). So this reads the state,
before any destroy, and never the stack outputs alone.

A cell whose WorkloadBenchmark component is in the state but whose benchmark Command is not (its
create failed, and the engine keeps no record of a failed create) or is only a pending operation
(the CLI died mid-create) is that cell's no_result, with the engine's error from `up --event-log`:
JSON lines of apitype.EngineEvent (sdk/go/common/apitype/events.go:339-375), whose diagnosticEvent
(events.go:70-79) carries the resource's urn, a message and a severity.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from components.results import no_result, parse_result, stamp

BENCHMARK_COMPONENT = "k8s-footprint:index:WorkloadBenchmark"
COMMAND = "command:remote:Command"
BENCHMARK_SUFFIX = "-benchmark"  # components/benchmark.py names its Command <cell>-benchmark
SECRET_SIG = "4dabf18193072939515e22adb298388d"  # how the engine marks a secret value in state


def deployment_of(export: Mapping[str, Any]) -> Mapping[str, Any]:
    """The DeploymentV3 inside `pulumi stack export`'s UntypedDeployment (or one given bare)."""
    inner = export.get("deployment")
    return inner if isinstance(inner, Mapping) else export


def _name(urn: str) -> str:
    return urn.rsplit("::", 1)[-1]


def _benchmark_cell(resource: Mapping[str, Any]) -> str | None:
    urn = str(resource.get("urn", ""))
    # The Command's type in its URN is qualified by its parent's: ...WorkloadBenchmark$command:remote:Command
    if resource.get("type") != COMMAND or f"{BENCHMARK_COMPONENT}$" not in urn:
        return None
    name = _name(urn)
    return name[: -len(BENCHMARK_SUFFIX)] if name.endswith(BENCHMARK_SUFFIX) else None


def engine_errors(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """urn -> the engine's error messages for it, in order, from an `up --event-log` stream."""
    errors: dict[str, list[str]] = {}
    for event in events:
        diag = event.get("diagnosticEvent")
        if isinstance(diag, Mapping) and diag.get("severity") == "error" and diag.get("urn"):
            errors.setdefault(str(diag["urn"]), []).append(str(diag.get("message", "")).strip())
    return {urn: " ".join(m for m in msgs if m) for urn, msgs in errors.items()}


def read_event_log(path: Path) -> list[dict[str, Any]]:
    """The engine events of an `--event-log` file; a line cut short by a killed CLI is skipped."""
    events: list[dict[str, Any]] = []
    if not path.is_file():
        return events
    for line in path.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def recover_results(export: Mapping[str, Any], events: Iterable[Mapping[str, Any]] = ()) -> dict[str, dict[str, Any]]:
    """cell -> its result, for every cell the state knows of: parsed from the benchmark Command's
    stdout when it finished, else that cell's no_result with the engine's error."""
    dep = deployment_of(export)
    resources = [r for r in dep.get("resources") or [] if isinstance(r, Mapping)]
    pending = {str((op.get("resource") or {}).get("urn", "")): str(op.get("type", ""))
               for op in dep.get("pending_operations") or [] if isinstance(op, Mapping)}
    errors = engine_errors(events)
    cells = {_name(str(r["urn"])): str(r["urn"]) for r in resources if r.get("type") == BENCHMARK_COMPONENT}
    # The provenance the program registered on each WorkloadBenchmark component (components/benchmark.py):
    # the kit's hash and the machine asked for. Missing when the component's outputs never resolved.
    stamps = {_name(str(r["urn"])): (r.get("outputs") or {}).get("provenance") or {}
              for r in resources if r.get("type") == BENCHMARK_COMPONENT}
    results: dict[str, dict[str, Any]] = {}
    for r in resources:
        cell = _benchmark_cell(r)
        if cell is None or str(r["urn"]) in pending:
            continue
        stdout = (r.get("outputs") or {}).get("stdout")
        if isinstance(stdout, Mapping) and SECRET_SIG in stdout:
            stdout = stdout.get("plaintext")  # `stack export --show-secrets`; else ciphertext only
            if not isinstance(stdout, str):
                results[cell] = no_result(cell, "the benchmark's stdout is a secret in the state; "
                                                "export it with --show-secrets")
                continue
        mark = stamps.get(cell) or {}
        results[cell] = stamp(parse_result(stdout if isinstance(stdout, str) else "", cell),
                              mark.get("kit_hash"), mark.get("machine"))
    for cell, component in sorted(cells.items()):
        if cell in results:
            continue
        command_urn = f"{component.rsplit('::', 1)[0]}${COMMAND}::{cell}{BENCHMARK_SUFFIX}"
        said = errors.get(command_urn) or errors.get(component)
        op = pending.get(command_urn)
        why = (f"the benchmark command was still {op} when the update ended (pending operation)" if op
               else "the benchmark command has no record in the state: it failed or never ran")
        results[cell] = no_result(cell, f"{why}; engine: {said}" if said else why)
    return results
