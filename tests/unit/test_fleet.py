"""The fleet driver's control flow, against a test double at the Automation API boundary
(FakeAutomationStack stands in for pulumi.automation); one test uses the real CLI when present."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from fleet import driver
from tests.conftest import fake_result


@dataclass
class FakeAutomationStack:
    """Test double for pulumi.automation: records calls, and fails or gets signalled on request."""

    name: str = "k8sf-test"
    up_outputs: dict[str, Any] = field(default_factory=dict)
    up_error: Exception | None = None
    signal_during_up: int | None = None
    destroy_failures: int = 0
    calls: list[str] = field(default_factory=list)
    config: dict[str, tuple[str, bool]] = field(default_factory=dict)

    def set_config(self, values: dict[str, tuple[str, bool]]) -> None:
        self.calls.append("set_config")
        self.config = values

    def up(self, on_output: Callable[[str], None]) -> dict[str, Any]:
        self.calls.append("up")
        on_output("Updating (k8sf-test):\n")
        if self.signal_during_up is not None:
            os.kill(os.getpid(), self.signal_during_up)
        if self.up_error:
            raise self.up_error
        return self.up_outputs

    def outputs(self) -> dict[str, Any]:
        self.calls.append("outputs")
        return {"runId": "partial"}

    def refresh_clearing_pending(self, on_output: Callable[[str], None]) -> None:
        self.calls.append("refresh")

    def destroy_and_remove(self, on_output: Callable[[str], None]) -> None:
        self.calls.append("destroy")
        if self.destroy_failures > 0:
            self.destroy_failures -= 1
            raise RuntimeError("error: resource is still in use")

    def leftovers(self) -> list[str]:
        return ["urn:pulumi:k8sf-test::k8s-footprint::aws:ec2/instance:Instance::x86_64-k3s-1-vm"]


OUTPUTS = {"runId": "r1", "results": {"x86_64-bare-1": fake_result("x86_64-bare-1", "bare"),
                                      "x86_64-k3s-1": fake_result("x86_64-k3s-1", "k3s", "oom")}}


def run_with(stack: FakeAutomationStack, tmp_path: Path, **kw: Any) -> tuple[int, str]:
    run = driver.Run(stack_name=stack.name, artifacts=tmp_path / "artifacts",
                    config={"k8s-footprint:runId": ("r1", False)}, retry_wait_s=0, **kw)
    out = io.StringIO()
    code = driver.execute(run, stack, out)
    return code, out.getvalue()


def test_success_writes_outputs_and_report_then_tears_down(tmp_path: Path) -> None:
    stack = FakeAutomationStack(up_outputs=OUTPUTS)
    code, out = run_with(stack, tmp_path)
    assert code == 0
    assert stack.calls == ["set_config", "up", "destroy"]
    artifacts = tmp_path / "artifacts"
    assert json.loads((artifacts / "outputs.json").read_text())["runId"] == "r1"
    assert "| k3s | x86_64 |" in (artifacts / "report.md").read_text()
    assert (artifacts / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "Updating (k8sf-test):" in (artifacts / "fleet.log").read_text()
    assert "destroyed and removed" in out


def test_failed_up_still_writes_artifacts_and_tears_down(tmp_path: Path) -> None:
    stack = FakeAutomationStack(up_error=RuntimeError("error: ssh: handshake failed"))
    code, out = run_with(stack, tmp_path)
    assert code == driver.EXIT_INFRA
    assert stack.calls == ["set_config", "up", "outputs", "destroy"]
    assert "fleet: up failed: error: ssh: handshake failed" in out
    status = json.loads((tmp_path / "artifacts" / "status.json").read_text())
    assert status == {"stack": "k8sf-test", "up": "failed", "error": "up failed: error: ssh: handshake failed"}
    assert json.loads((tmp_path / "artifacts" / "outputs.json").read_text()) == {"runId": "partial"}


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_up_still_tears_down(tmp_path: Path, signum: int) -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    stack = FakeAutomationStack(up_outputs=OUTPUTS, signal_during_up=signum)
    code, out = run_with(stack, tmp_path)
    assert code == driver.EXIT_INFRA
    assert stack.calls[-1] == "destroy"
    assert f"interrupted by {signal.Signals(signum).name}; tearing down" in out
    # The driver puts back whatever handlers it found (pytest's, or another conftest's), not SIG_DFL.
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_destroy_is_retried_after_clearing_pending_operations(tmp_path: Path) -> None:
    stack = FakeAutomationStack(up_outputs=OUTPUTS, destroy_failures=2)
    code, _ = run_with(stack, tmp_path)
    assert code == 0
    assert stack.calls == ["set_config", "up", "destroy", "refresh", "destroy", "refresh", "destroy"]


def test_a_destroy_that_keeps_failing_is_reported_loudly_with_what_is_left(tmp_path: Path) -> None:
    stack = FakeAutomationStack(up_outputs=OUTPUTS, destroy_failures=99)
    code, out = run_with(stack, tmp_path)
    assert code == driver.EXIT_INFRA
    assert stack.calls.count("destroy") == 3
    assert "TEARDOWN FAILED: stack k8sf-test still holds 1 resource(s)" in out
    assert "left: urn:pulumi:k8sf-test::k8s-footprint::aws:ec2/instance:Instance::x86_64-k3s-1-vm" in out
    assert "TEARDOWN FAILED" in (tmp_path / "artifacts" / "fleet.log").read_text()


def test_keep_skips_teardown_on_purpose(tmp_path: Path) -> None:
    stack = FakeAutomationStack(up_outputs=OUTPUTS)
    code, out = run_with(stack, tmp_path, keep=True)
    assert code == 0 and "destroy" not in stack.calls and "left up on purpose" in out


def test_strict_fails_when_a_cell_is_not_ok(tmp_path: Path) -> None:
    code, out = run_with(FakeAutomationStack(up_outputs=OUTPUTS), tmp_path, strict=True)
    assert code == driver.EXIT_STRICT and "'x86_64-k3s-1': 'oom'" in out


def test_config_from_stack_file_and_flags(tmp_path: Path) -> None:
    values = driver.parse_config(Path(__file__).resolve().parents[2] / "Pulumi.ci.yaml",
                                ["sshAllowedCidrs=[\"198.51.100.7/32\"]", "aws:region=eu-west-1", "sshPrivateKey=K"],
                                "run-7")
    assert values["k8s-footprint:backend"] == ("aws", False)
    assert values["k8s-footprint:sshAllowedCidrs"] == ('["198.51.100.7/32"]', False)
    assert values["aws:region"] == ("eu-west-1", False)
    assert values["k8s-footprint:sshPrivateKey"] == ("K", True)
    assert values["k8s-footprint:runId"] == ("run-7", False)
    assert json.loads(values["k8s-footprint:distros"][0])[0] == "bare"
    with pytest.raises(SystemExit, match="expected key=value"):
        driver.parse_config(None, ["oops"], "r")


def test_without_the_cli_it_stops_at_once_with_the_install_instruction(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("fleet.driver.shutil.which", lambda _: None)
    assert driver.main(["run"]) == driver.EXIT_USAGE
    assert "curl -fsSL https://get.pulumi.com | sh" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("pulumi") is None,
                    reason="the pulumi CLI is not installed here (no reachable registry has it)")
def test_real_cli_creates_and_removes_a_stack(tmp_path: Path) -> None:
    env = {"PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "test"}
    stack = driver.AutomationStack("k8sf-cli-test", env)
    stack.set_config({"k8s-footprint:backend": ("hosts", False)})
    stack.destroy_and_remove(lambda _: None)
    assert not list(tmp_path.rglob("k8sf-cli-test.json"))


def test_ci_workflow_runs_the_driver_compares_and_always_reaps() -> None:
    import yaml

    wf = yaml.safe_load((Path(__file__).resolve().parents[2] / ".github/workflows/fleet.yml").read_text())
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key "on" as True
    assert "workflow_dispatch" in triggers and triggers["schedule"][0]["cron"]
    steps = " ".join(str(s.get("run", "")) for s in wf["jobs"]["fleet"]["steps"])
    assert "fleet.driver run --stack-file Pulumi.ci.yaml" in steps
    assert "benchmarks.report artifacts/outputs.json --baseline" in steps
    assert any(s.get("uses", "").startswith("actions/upload-artifact") and s.get("if") == "always()"
               for s in wf["jobs"]["fleet"]["steps"])
    assert wf["jobs"]["reaper"]["if"] == "always()" and wf["jobs"]["reaper"]["needs"] == "fleet"
    assert "fleet.reaper" in " ".join(str(s.get("run", "")) for s in wf["jobs"]["reaper"]["steps"])


@pytest.mark.parametrize(("old", "new"), [("benchmarks.fleet", "fleet.driver"), ("benchmarks.reaper", "fleet.reaper")])
def test_the_old_module_paths_still_run_and_say_where_the_code_went(old: str, new: str) -> None:
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", old, "--help"], cwd=root, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert f"python -m {new}" in proc.stdout and f"moved to {new}" in proc.stderr


def test_make_bench_runs_the_self_benchmarks_from_perf() -> None:
    root = Path(__file__).resolve().parents[2]
    bench = (root / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    scripts = [word for word in bench.split() if word.endswith(".py")]
    assert scripts == ["perf/bench_program.py", "perf/bench_sampler.py"]
    assert all((root / s).is_file() for s in scripts)
