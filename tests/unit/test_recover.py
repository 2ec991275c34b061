"""Recovering every finished cell's result from a state export, before any destroy (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks import report
from components.schema import validate_result
from fleet.recover import engine_errors, read_event_log, recover_results
from tests.conftest import fake_result

STACK, PROJECT = "k8sf-ci1", "k8s-footprint"
PREFIX = f"urn:pulumi:{STACK}::{PROJECT}::"
STACK_URN = f"{PREFIX}pulumi:pulumi:Stack::{PROJECT}-{STACK}"
BENCH = "k8s-footprint:index:WorkloadBenchmark"


def component(cell: str) -> dict[str, Any]:
    # A component resource as the engine records it (ResourceV3, sdk/go/common/apitype/core.go:489-510).
    return {"urn": f"{PREFIX}{BENCH}::{cell}", "custom": False, "type": BENCH, "parent": STACK_URN}


def command(cell: str, stdout: str) -> dict[str, Any]:
    # A child's URN type is qualified by its parent's type: Parent$Child.
    return {"urn": f"{PREFIX}{BENCH}$command:remote:Command::{cell}{'-benchmark'}", "custom": True,
            "id": f"{cell}-benchmark-1a2b", "type": "command:remote:Command",
            "inputs": {"create": "..."}, "outputs": {"create": "...", "stdout": stdout, "stderr": "log"},
            "parent": f"{PREFIX}{BENCH}::{cell}", "provider": f"{PREFIX}pulumi:providers:command::default_1_2_1::x"}


def export(failed: str, *, pending: bool) -> dict[str, Any]:
    """`pulumi stack export` of an update in which `failed`'s benchmark Command failed: the engine
    records no state for a failed create, or, when the CLI died mid-create, a pending "creating"
    operation (OperationV2, core.go:374-379). The UntypedDeployment wrapper is version 3."""
    ok = ["x86_64-bare-1", "x86_64-docker-1"]
    resources: list[dict[str, Any]] = [
        {"urn": STACK_URN, "custom": False, "type": "pulumi:pulumi:Stack"},  # no outputs: the update failed
        {"urn": f"{PREFIX}pulumi:providers:command::default_1_2_1", "custom": True, "id": "x",
         "type": "pulumi:providers:command", "inputs": {"version": "1.2.1"}, "outputs": {"version": "1.2.1"}},
    ]
    for cell in [*ok, failed]:
        resources.append(component(cell))
    for cell in ok:
        resources.append(command(cell, "noise\n" + json.dumps(fake_result(cell, cell.split("-")[1])) + "\n"))
    dep: dict[str, Any] = {"manifest": {"time": "2026-11-30T03:00:00Z", "magic": "m", "version": "v3.259.0"},
                           "resources": resources}
    if pending:
        dep["pending_operations"] = [{"resource": command(failed, ""), "type": "creating"}]
        del dep["pending_operations"][0]["resource"]["outputs"]
    return {"version": 3, "deployment": dep}


FAILED = "x86_64-k3s-1"
FAILED_URN = f"{PREFIX}{BENCH}$command:remote:Command::{FAILED}-benchmark"
EVENTS = [
    {"sequence": 1, "timestamp": 1, "resOpFailedEvent": {"metadata": {"urn": FAILED_URN}, "status": 1, "steps": 1}},
    {"sequence": 2, "timestamp": 2, "diagnosticEvent": {"urn": FAILED_URN, "severity": "error", "color": "never",
                                                        "message": "ssh: handshake failed: EOF\n"}},
    {"sequence": 3, "timestamp": 3, "diagnosticEvent": {"urn": FAILED_URN, "severity": "info", "message": "x"}},
]


def test_finished_cells_come_back_and_the_failed_one_is_no_result_with_the_engines_error() -> None:
    for pending in (False, True):
        results = recover_results(export(FAILED, pending=pending), EVENTS)
        assert sorted(results) == ["x86_64-bare-1", "x86_64-docker-1", FAILED]
        assert results["x86_64-bare-1"] == fake_result("x86_64-bare-1", "bare")
        bad = results[FAILED]
        validate_result(bad)
        assert bad["status"] == "no_result"
        assert bad["error"].endswith("; engine: ssh: handshake failed: EOF")
        assert ("pending operation" in bad["error"]) is pending


def test_the_report_shows_both_the_recovered_results_and_the_no_result() -> None:
    results = list(recover_results(export(FAILED, pending=False), EVENTS).values())
    table = report.markdown(report.build_rows(results), report.no_results(results))
    assert "| bare | x86_64 | 1 | 300 | 300 |" in table and "| docker | x86_64 | 1 |" in table
    assert "Cells without a result:\n- x86_64-k3s-1: no result (the benchmark command has no record" in table
    assert table.rstrip().endswith("engine: ssh: handshake failed: EOF)")


def test_event_log_lines_cut_short_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(json.dumps(e) for e in EVENTS) + '\n{"sequence": 4, "diag')
    assert engine_errors(read_event_log(log)) == {FAILED_URN: "ssh: handshake failed: EOF"}


class FailedUpStack:
    """StackOps after an `up` in which one cell's benchmark failed: no outputs, the state as exported."""

    name = STACK

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.calls: list[str] = []

    def prepare(self, config: dict[str, tuple[str, bool]], create: bool) -> bool:
        return True

    def up(self) -> None:
        from fleet.driver import CliError

        self.calls.append("up")
        raise CliError("pulumi up exited 255")

    def outputs(self) -> dict[str, Any]:
        return {}  # a failed update records no new stack outputs

    def refresh(self) -> None:
        self.calls.append("refresh")

    def destroy(self) -> None:
        self.calls.append("destroy")
        self.state = {"version": 3, "deployment": {}}

    def export(self) -> dict[str, Any]:
        self.calls.append("export")
        return self.state

    def remove(self) -> None:
        self.calls.append("remove")


def test_the_driver_recovers_results_from_the_state_before_the_destroy(tmp_path: Path) -> None:
    from fleet import driver

    artifacts = tmp_path / "artifacts"
    (artifacts / "cli").mkdir(parents=True)
    driver.event_log(artifacts).write_text("\n".join(json.dumps(e) for e in EVENTS) + "\n")
    run = driver.Run(stack_name=STACK, run_id="ci1", artifacts=artifacts, retry_wait_s=0,
                     config={"sshPrivateKey": ("KEY", True), "backend": ("aws", False)}, results_root=tmp_path / "r")
    stack = FailedUpStack(export(FAILED, pending=False))
    code = driver.Driver(run, stack, lambda line: None).execute(driver.SignalLatch())
    assert code == driver.EXIT_INFRA
    assert stack.calls[:3] == ["up", "export", "destroy"]  # the state is read before anything is destroyed
    results = json.loads((artifacts / "results.json").read_text())
    assert results["x86_64-bare-1"]["status"] == "ok" and results["x86_64-docker-1"]["status"] == "ok"
    assert results[FAILED]["status"] == "no_result" and "handshake failed" in results[FAILED]["error"]
    md = (artifacts / "report.md").read_text()
    assert "| bare | x86_64 | 1 |" in md and f"- {FAILED}: no result (" in md
    [run_dir] = (tmp_path / "r").iterdir()  # the fleet run's run folder, kept after the teardown
    assert run_dir.name.startswith(f"{STACK}-ci1-")
    assert (run_dir / "report.md").read_text() == md.replace(f"run {STACK}", f"run {run_dir.name}")
    manifest = (run_dir / "manifest.json").read_text()
    assert "KEY" not in manifest and json.loads(manifest)["config"]["k8s-footprint:backend"]["value"] == "aws"


def test_when_every_cell_failed_the_report_is_the_list_of_no_results(tmp_path: Path) -> None:
    from fleet import driver

    state = export(FAILED, pending=False)
    dep = state["deployment"]
    dep["resources"] = [r for r in dep["resources"] if r["type"] != "command:remote:Command"]
    run = driver.Run(stack_name=STACK, run_id="ci1", artifacts=tmp_path / "a", config={}, retry_wait_s=0)
    assert driver.Driver(run, FailedUpStack(state), lambda line: None).execute(driver.SignalLatch()) == 1
    md = (tmp_path / "a" / "report.md").read_text()
    assert md.count(": no result (the benchmark command has no record in the state") == 3
