"""The fleet driver, against a stand-in for the pulumi CLI at the process boundary.

tests/unit/fake_pulumi.py is a real child process that stands in for the `pulumi` CLI: the driver
starts it, reads its output and exit code, and signals it, exactly as it does the real CLI. It
mimics the engine's cancellation protocol at the pinned version (a first SIGINT/SIGTERM lets the
operation in flight finish, a second terminates at once) and keeps a "cloud" file beside its state,
so a test can tell a resource that exists from one the state records. The signal tests run the
driver itself as a process too, and signal it the way a CI runner does. One test uses the real
CLI when it is installed.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fleet import driver
from tests.conftest import fake_result

ROOT = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).with_name("fake_pulumi.py")
OUTPUTS = {"runId": "r1",
           "instances": {"x86_64-bare-1": {"backend": "aws", "arch": "x86_64", "instanceType": "t3.micro"},
                         "x86_64-k3s-1": {"backend": "aws", "arch": "x86_64", "instanceType": "t3.micro"}},
           "results": {"x86_64-bare-1": fake_result("x86_64-bare-1", "bare"),
                       "x86_64-k3s-1": fake_result("x86_64-k3s-1", "k3s", "oom")}}


@dataclass
class FakeCli:
    """The stand-in CLI on PATH, and what it recorded."""

    dir: Path
    env: dict[str, str]

    @property
    def exe(self) -> str:
        return str(self.dir / "bin" / "pulumi")

    def state(self) -> dict[str, Any]:
        path = self.dir / "state.json"
        return dict(json.loads(path.read_text())) if path.exists() else {}

    def cloud(self) -> list[dict[str, Any]]:
        path = self.dir / "cloud.json"
        return list(json.loads(path.read_text())) if path.exists() else []

    def calls(self) -> list[dict[str, Any]]:
        path = self.dir / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def signals_to(self, verb: str) -> list[str]:
        pids = {c["pid"] for c in self.calls() if c["event"] == "start" and verb in c["argv"]}
        return [c["signal"] for c in self.calls() if c["event"] == "signal" and c["pid"] in pids]

    def wait_for(self, what: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not what():
            assert time.monotonic() < deadline, "timed out"
            time.sleep(0.05)


@pytest.fixture
def cli(tmp_path: Path) -> FakeCli:
    fake_dir = tmp_path / "fake"
    (fake_dir / "bin").mkdir(parents=True)
    wrapper = fake_dir / "bin" / "pulumi"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
    wrapper.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    env.update(PATH=f"{fake_dir / 'bin'}{os.pathsep}{env['PATH']}", FAKE_PULUMI_DIR=str(fake_dir),
               PULUMI_BACKEND_URL=f"file://{tmp_path / 'state'}", PULUMI_CONFIG_PASSPHRASE="test-only",
               PYTHONPATH=str(ROOT))
    return FakeCli(fake_dir, env)


def in_process(cli: FakeCli, tmp_path: Path, extra_env: dict[str, str] | None = None,
               **kw: Any) -> tuple[driver.Driver, io.StringIO]:
    run = driver.Run(stack_name="k8sf-r1", run_id="r1", artifacts=tmp_path / "artifacts",
                     config={"k8s-footprint:runId": ("r1", False), "k8s-footprint:sshPrivateKey": ("KEY", True)},
                     retry_wait_s=0, **kw)
    out = io.StringIO()
    say = driver.logger(run, out)
    latch = driver.SignalLatch()  # never entered: these tests send no signals
    stack = driver.CliStack(run.stack_name, driver.Cli(cli.exe, {**cli.env, **(extra_env or {})}, run.artifacts,
                                                       latch, say))
    return driver.Driver(run, stack, say), out


def execute(cli: FakeCli, tmp_path: Path, extra_env: dict[str, str] | None = None,
            **kw: Any) -> tuple[int, str]:
    d, out = in_process(cli, tmp_path, extra_env, **kw)
    return d.execute(driver.SignalLatch()), out.getvalue()


# ---- control flow ------------------------------------------------------------------------------

def test_success_writes_outputs_and_report_then_tears_down(cli: FakeCli, tmp_path: Path) -> None:
    code, out = execute(cli, tmp_path, {"FAKE_UP_OUTPUTS": json.dumps(OUTPUTS)})
    assert code == 0, out
    artifacts = tmp_path / "artifacts"
    assert json.loads((artifacts / "outputs.json").read_text())["runId"] == "r1"
    assert "| k3s | x86_64 |" in (artifacts / "report.md").read_text()
    assert (artifacts / "report.png").read_bytes()[:4] == b"\x89PNG"
    assert "aws:ec2:Instance cell-2-vm created" in (artifacts / "fleet.log").read_text()
    assert "k8sf-r1 destroyed and removed" in out
    assert cli.cloud() == [] and cli.state() == {}
    assert "cost: actual instance-hours at most" in out and "2 x t3.micro" in out


def test_secret_config_goes_to_the_cli_on_stdin_not_in_argv(cli: FakeCli, tmp_path: Path) -> None:
    execute(cli, tmp_path, keep=True)
    assert not any("KEY" in " ".join(c["argv"]) for c in cli.calls() if c["event"] == "start")
    stack = cli.state()["k8sf-r1"]
    assert stack["config"]["k8s-footprint:sshPrivateKey"] == "KEY"
    assert stack["secrets"] == ["k8s-footprint:sshPrivateKey"]


def test_failed_up_still_writes_artifacts_and_tears_down(cli: FakeCli, tmp_path: Path) -> None:
    code, out = execute(cli, tmp_path, {"FAKE_UP_FAIL": "ssh: handshake failed"})
    assert code == driver.EXIT_INFRA
    assert "error: ssh: handshake failed" in out and "fleet: up failed: pulumi up exited 255" in out
    status = json.loads((tmp_path / "artifacts" / "status.json").read_text())
    assert status["up"] == "failed" and status["error"] == "pulumi up exited 255"
    assert cli.cloud() == [] and cli.state() == {}


def test_destroy_is_retried_after_a_refresh_that_keeps_pending_creates(cli: FakeCli, tmp_path: Path) -> None:
    code, out = execute(cli, tmp_path, {"FAKE_DESTROY_FAILURES": "2"})
    assert code == 0, out
    refreshes = [c for c in cli.calls() if c["event"] == "refresh"]
    assert len(refreshes) == 2 and not any(c["clear_pending_creates"] for c in refreshes)
    assert cli.cloud() == [] and cli.state() == {}


def test_a_stack_with_pending_creates_is_kept_and_points_at_the_reaper(cli: FakeCli, tmp_path: Path) -> None:
    # What a CLI killed mid-create leaves: the resource exists, the state has only a pending create.
    urn = "urn:pulumi:k8sf-r1::k8s-footprint::aws:ec2/instance:Instance::cell-0-vm"
    (cli.dir / "state.json").write_text(json.dumps({"k8sf-r1": {
        "config": {}, "secrets": [], "resources": [], "outputs": {},
        "pending": [{"type": "creating", "resource": {"urn": urn, "type": "aws:ec2/instance:Instance"}}]}}))
    d, out = in_process(cli, tmp_path)
    assert d.destroy_later(driver.SignalLatch(), wait_s=5) == driver.EXIT_INFRA
    text = out.getvalue()
    assert "TEARDOWN INCOMPLETE: stack k8sf-r1 still records 0 resource(s) and 1 pending operation(s)" in text
    assert f"pending: creating {urn}" in text
    assert "python -m fleet.reaper --regions <region> --run-id r1 --delete" in text
    assert cli.state()["k8sf-r1"]["pending"][0]["resource"]["urn"] == urn  # not cleared, not removed


def test_keep_and_defer_teardown_leave_the_stack_and_say_how_to_remove_it(cli: FakeCli, tmp_path: Path) -> None:
    code, out = execute(cli, tmp_path, keep=True)
    assert code == 0 and "left up on purpose" in out and cli.state()["k8sf-r1"]["resources"]
    code, out = execute(cli, tmp_path / "b", defer_teardown=True)
    assert code == 0 and "teardown deferred to: python -m fleet.driver destroy --run-id r1" in out
    assert not any(c["event"] == "start" and "destroy" in c["argv"] for c in cli.calls())


def test_strict_fails_when_a_cell_is_not_ok(cli: FakeCli, tmp_path: Path) -> None:
    code, out = execute(cli, tmp_path, {"FAKE_UP_OUTPUTS": json.dumps(OUTPUTS)}, strict=True)
    assert code == driver.EXIT_STRICT and "'x86_64-k3s-1': 'oom'" in out


def test_config_from_stack_file_and_flags() -> None:
    values = driver.parse_config(ROOT / "Pulumi.ci.yaml",
                                 ["sshAllowedCidrs=[\"198.51.100.7/32\"]", "aws:region=eu-west-1", "sshPrivateKey=K"],
                                 "run-7")
    assert values["k8s-footprint:backend"] == ("aws", False)
    assert values["k8s-footprint:sshAllowedCidrs"] == ('["198.51.100.7/32"]', False)
    assert values["aws:region"] == ("eu-west-1", False)
    assert values["k8s-footprint:sshPrivateKey"] == ("K", True)
    assert values["k8s-footprint:runId"] == ("run-7", False)
    assert json.loads(values["k8s-footprint:distros"][0])[0] == "bare"
    with pytest.raises(driver.UsageError, match="expected key=value"):
        driver.parse_config(None, ["oops"], "r")


def test_a_bad_config_flag_or_a_missing_stack_file_exits_2_with_a_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad_yaml = tmp_path / "Pulumi.bad.yaml"
    bad_yaml.write_text("config: [unclosed\n")
    for args, said in ((["--config", "oops"], "error: --config 'oops': expected key=value"),
                       (["--stack-file", str(tmp_path / "nope.yaml")], "No such file or directory"),
                       (["--stack-file", str(bad_yaml)], "not YAML")):
        assert driver.main(["run", "--dry-run", *args]) == driver.EXIT_USAGE
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err


@pytest.mark.parametrize("bad", [
    ["--config", "oops"],
    ["--stack-file", "nope.yaml"],
    ["--config", 'distros=["kind"]'],  # key=value, but a value the program refuses
    ["--config", "repetitions=0", "--config", "spot=maybe"],
])
def test_a_real_run_with_bad_config_exits_2_with_a_message_before_it_looks_for_the_cli(
        bad: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("fleet.driver.shutil.which", lambda _: pytest.fail("a bad config reached the CLI"))
    assert driver.main(["run", "--artifacts", str(tmp_path / "a"), *bad]) == driver.EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not (tmp_path / "a").exists()


# ---- toolchain, passphrase, cost ---------------------------------------------------------------

def test_without_the_cli_it_stops_at_once_with_the_pinned_install_instruction(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("fleet.driver.shutil.which", lambda _: None)
    assert driver.main(["run"]) == driver.EXIT_USAGE
    assert "curl -fsSL https://get.pulumi.com | sh -s -- --version 3.272.0" in capsys.readouterr().err


def test_a_cli_version_other_than_the_pinned_sdk_warns_with_both(cli: FakeCli,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setenv("FAKE_PULUMI_DIR", str(cli.dir))
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.250.0")
    driver.check_cli_version(cli.exe, lines.append)
    assert driver.pinned_sdk_version() == "3.272.0"
    assert len(lines) == 1 and "pulumi CLI v3.250.0 does not match the pinned SDK pulumi==3.272.0" in lines[0]
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.272.0")
    lines.clear()
    assert driver.check_cli_version(cli.exe, lines.append)
    assert lines == []


def test_a_cli_too_old_for_replacement_trigger_is_refused_before_anything_runs(
        cli: FakeCli, monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    monkeypatch.setenv("FAKE_PULUMI_DIR", str(cli.dir))
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.207.0")  # has ReplaceWith, not yet replacement_trigger
    assert not driver.check_cli_version(cli.exe, lines.append)
    assert "older than 3.226.0" in lines[0]
    monkeypatch.setenv("FAKE_PULUMI_VERSION", "v3.226.0")
    assert driver.check_cli_version(cli.exe, lines.append)


@pytest.mark.parametrize("passphrase", [None, "", "k8s-footprint-dev"])
def test_ci_refuses_the_default_or_a_missing_passphrase(passphrase: str | None) -> None:
    env = {"CI": "true"} | ({} if passphrase is None else {"PULUMI_CONFIG_PASSPHRASE": passphrase})
    assert "CI must use a passphrase of its own" in (driver.passphrase_problem(env) or "")
    assert driver.passphrase_problem({"CI": "true", "PULUMI_CONFIG_PASSPHRASE": "from-a-secret"}) is None
    assert driver.passphrase_problem({} if passphrase is None else {"PULUMI_CONFIG_PASSPHRASE": passphrase}) is None


def test_the_driver_stops_in_ci_with_the_dev_passphrase_before_touching_state(
        cli: FakeCli, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "k8s-footprint-dev")
    monkeypatch.setattr("fleet.driver.shutil.which", lambda _: cli.exe)
    assert driver.main(["run", "--artifacts", str(tmp_path / "a")]) == driver.EXIT_USAGE
    assert "CI must use a passphrase of its own" in capsys.readouterr().err
    assert cli.calls() == []


def test_dry_run_prints_the_estimate_and_exits_without_the_cli(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("fleet.driver.shutil.which", lambda _: pytest.fail("--dry-run looked for the CLI"))
    code = driver.main(["run", "--dry-run", "--stack-file", str(ROOT / "Pulumi.ci.yaml"),
                        "--config", 'sshAllowedCidrs=["198.51.100.7/32"]'])
    out = capsys.readouterr().out
    assert code == 0
    # 12 instances (6 t3.micro, 6 t4g.micro), 20 GiB gp3 each, one public IPv4 each.
    assert "cost: 12 instance(s), on-demand, CPU credits unlimited" in out
    assert "of which public IPv4 0.0600" in out
    assert "surplus CPU credits at most 0.9720 USD/h more" in out


# ---- signals, at the process boundary ------------------------------------------------------------

def start_driver(cli: FakeCli, tmp_path: Path, *extra: str, **env: str) -> subprocess.Popen[str]:
    log = (tmp_path / "driver.out").open("w")
    return subprocess.Popen([sys.executable, "-m", "fleet.driver", "run", "--run-id", "t1",
                             "--artifacts", str(tmp_path / "artifacts"), *extra],
                            cwd=ROOT, env={**cli.env, "FAKE_STEP_SECONDS": "1", "FAKE_UP_RESOURCES": "5", **env},
                            stdout=log, stderr=subprocess.STDOUT, text=True)


def destroy_later(cli: FakeCli, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet.driver", "destroy", "--run-id", "t1", "--artifacts",
                           str(tmp_path / "artifacts"), "--wait-minutes", "1"],
                          cwd=ROOT, env={**cli.env, "FAKE_STEP_SECONDS": "0.05"}, capture_output=True, text=True,
                          timeout=120, check=False)


def creating(cli: FakeCli, n: int) -> Callable[[], bool]:
    return lambda: sum(c["event"] == "creating" for c in cli.calls()) >= n


def up_pid(cli: FakeCli) -> int:
    return int(next(c["pid"] for c in cli.calls() if c["event"] == "start" and "up" in c["argv"]))


def reapable(cli: FakeCli) -> None:
    """Every resource in the cloud is in the state, as a resource or a pending create, and tagged."""
    stack = cli.state()["k8sf-t1"]
    known = {r["urn"] for r in stack["resources"]} | {p["resource"]["urn"] for p in stack["pending"]}
    assert {c["urn"] for c in cli.cloud()} <= known
    assert all(c["tags"]["k8s-footprint:run-id"] == "t1" for c in cli.cloud())


@pytest.fixture
def reap_children() -> Iterator[list[int]]:
    """Pids a test leaves behind on purpose; killed at the end whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if driver.process_start(pid) is not None:
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_during_up_is_passed_on_once_and_the_cli_finishes_what_is_in_flight(
        cli: FakeCli, tmp_path: Path, signum: int) -> None:
    name = signal.Signals(signum).name
    proc = start_driver(cli, tmp_path)
    cli.wait_for(creating(cli, 2))
    proc.send_signal(signum)
    assert proc.wait(timeout=60) == driver.EXIT_INFRA
    out = (tmp_path / "driver.out").read_text()
    assert cli.signals_to("up") == [name]
    assert f"{name} passed on to the CLI" in out
    assert ("SIGTERM" if signum == signal.SIGTERM else "^C") + " received; cancelling" in out
    # The create in flight finished; no new one started; then the driver tore everything down.
    assert "cell-1-vm created" in out and "cell-2-vm" not in out
    assert json.loads((tmp_path / "artifacts" / "status.json").read_text())["up"] == "interrupted"
    assert cli.cloud() == [] and cli.state() == {}
    # The CLI ran in a session of its own, so a terminal's ^C reaches only the driver.
    start = next(c for c in cli.calls() if c["event"] == "start" and "up" in c["argv"])
    assert start["sid"] == start["pid"]


def test_a_signal_during_teardown_is_not_passed_on_and_the_teardown_completes(
        cli: FakeCli, tmp_path: Path) -> None:
    proc = start_driver(cli, tmp_path, FAKE_UP_RESOURCES="3")
    cli.wait_for(lambda: "deleting" in (tmp_path / "driver.out").read_text(), timeout=60)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    out = (tmp_path / "driver.out").read_text()
    assert cli.signals_to("destroy") == [] and "not passed on, since stopping it would leave resources" in out
    assert cli.cloud() == [] and cli.state() == {}


def test_a_second_sigterm_is_not_passed_on_and_destroy_waits_for_the_cli(
        cli: FakeCli, tmp_path: Path, reap_children: list[int]) -> None:
    proc = start_driver(cli, tmp_path, "--defer-teardown", FAKE_STEP_SECONDS="4")
    cli.wait_for(creating(cli, 2))
    proc.send_signal(signal.SIGTERM)
    cli.wait_for(lambda: cli.signals_to("up") == ["SIGTERM"])
    proc.send_signal(signal.SIGTERM)  # a GitHub cancel sends SIGINT, then SIGTERM 7.5 s later
    assert proc.wait(timeout=3) == driver.EXIT_INFRA  # at once: no waiting on the CLI
    pid = up_pid(cli)
    reap_children.append(pid)
    assert driver.process_start(pid) is not None  # still finishing its create
    record = json.loads((tmp_path / "artifacts" / "cli.json").read_text())
    assert record["pid"] == pid and record["cancelSent"] is True
    assert json.loads((tmp_path / "artifacts" / "status.json").read_text())["up"] == "abandoned"
    reapable(cli)
    done = destroy_later(cli, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"waiting up to 60 s for pid {pid}" in done.stdout
    assert cli.signals_to("up") == ["SIGTERM"]  # one cancel in all: never a second, which would terminate
    assert cli.cloud() == [] and cli.state() == {}


def test_sigkill_of_the_driver_leaves_a_reapable_stack_that_destroy_cleans_up(
        cli: FakeCli, tmp_path: Path, reap_children: list[int]) -> None:
    proc = start_driver(cli, tmp_path)
    cli.wait_for(creating(cli, 2))
    proc.kill()
    proc.wait(timeout=10)
    pid = up_pid(cli)
    reap_children.append(pid)
    assert driver.process_start(pid) is not None  # the CLI outlives the driver: no SIGPIPE, no kill
    reapable(cli)
    done = destroy_later(cli, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sent it SIGTERM" in done.stdout
    assert cli.signals_to("up") == ["SIGTERM"]
    assert cli.cloud() == [] and cli.state() == {}


def test_a_cli_killed_mid_create_leaves_a_pending_create_that_teardown_keeps(
        cli: FakeCli, tmp_path: Path, reap_children: list[int]) -> None:
    proc = start_driver(cli, tmp_path)
    cli.wait_for(creating(cli, 2))
    pid = up_pid(cli)
    os.kill(pid, signal.SIGKILL)  # what a runner's process-tree kill does
    proc.kill()
    proc.wait(timeout=10)
    reapable(cli)
    done = destroy_later(cli, tmp_path)
    assert done.returncode == driver.EXIT_INFRA
    assert "1 pending operation(s)" in done.stdout and "--run-id t1 --delete" in done.stdout
    stack = cli.state()["k8sf-t1"]
    assert stack["resources"] == [] and len(stack["pending"]) == 1
    assert [c["urn"] for c in cli.cloud()] == [stack["pending"][0]["resource"]["urn"]]  # for the reaper


@pytest.mark.skipif(shutil.which("pulumi") is None,
                    reason="the pulumi CLI is not installed here (no reachable registry has it)")
def test_real_cli_creates_and_removes_a_stack(tmp_path: Path) -> None:
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": "test"}
    lines: list[str] = []
    stack = driver.CliStack("k8sf-cli-test", driver.Cli(str(shutil.which("pulumi")), env, tmp_path / "a",
                                                        driver.SignalLatch(), lines.append))
    stack.prepare({"k8s-footprint:backend": ("hosts", False)}, create=True)
    stack.remove()
    assert not list(tmp_path.rglob("k8sf-cli-test.json"))


# ---- workflow, layout ----------------------------------------------------------------------------

def test_the_old_module_paths_still_run_and_say_where_the_code_went() -> None:
    for old, new in (("benchmarks.fleet", "fleet.driver"), ("benchmarks.reaper", "fleet.reaper")):
        proc = subprocess.run([sys.executable, "-m", old, "--help"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        assert f"python -m {new}" in proc.stdout and f"moved to {new}" in proc.stderr


def test_make_bench_runs_the_self_benchmarks_from_perf() -> None:
    bench = (ROOT / "Makefile").read_text().split("\nbench:", 1)[1].split("\n\n", 1)[0]
    scripts = [word for word in bench.split() if word.endswith(".py")]
    assert scripts == ["perf/bench_program.py", "perf/bench_sampler.py"]
    assert all((ROOT / s).is_file() for s in scripts)


def workflow() -> dict[Any, Any]:
    import yaml

    wf = yaml.safe_load((ROOT / ".github/workflows/fleet.yml").read_text())
    return dict(wf)


def test_ci_runs_the_driver_then_always_tears_down_keeps_the_state_and_reaps_its_run() -> None:
    wf = workflow()
    triggers = wf[True] if True in wf else wf["on"]  # YAML 1.1 reads the key "on" as True
    assert "workflow_dispatch" in triggers and triggers["schedule"][0]["cron"]
    steps = wf["jobs"]["fleet"]["steps"]
    names = [s.get("name", s.get("uses", "")) for s in steps]
    run_step = next(s for s in steps if "fleet.driver run --stack-file" in s.get("run", ""))
    # exec: the driver is the step's process, so the runner's SIGINT/SIGTERM reach it, not a shell.
    assert "exec .venv/bin/python -m fleet.driver run" in run_step["run"] and "--defer-teardown" in run_step["run"]
    teardown = next(s for s in steps if "fleet.driver destroy" in s.get("run", ""))
    assert teardown["if"] == "always()" and '--run-id "${RUN_ID}"' in teardown["run"]
    state = next(s for s in steps if s.get("with", {}).get("path") == ".pulumi-state/")
    assert state["uses"].startswith("actions/upload-artifact@") and state["if"] == "always()"
    assert state["with"]["include-hidden-files"] is True and 1 <= state["with"]["retention-days"] <= 7
    assert names.index(teardown["name"]) < names.index(state["name"])  # the state after the teardown
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") and s.get("if") == "always()"
               and s["with"]["path"] == "artifacts/" for s in steps)
    assert "benchmarks.report artifacts/outputs.json --baseline" in " ".join(s.get("run", "") for s in steps)
    # The passphrase comes from a secret, never the development default.
    assert wf["jobs"]["fleet"]["env"]["PULUMI_CONFIG_PASSPHRASE"] == "${{ secrets.PULUMI_CONFIG_PASSPHRASE }}"
    assert "k8s-footprint-dev" not in (ROOT / ".github/workflows/fleet.yml").read_text()
    reaper_job = wf["jobs"]["reaper"]
    assert reaper_job["if"] == "always()" and reaper_job["needs"] == "fleet"
    reap = " ".join(s.get("run", "") for s in reaper_job["steps"])
    assert 'fleet.reaper --regions "${AWS_REGION}" --run-id "${RUN_ID}" --delete' in reap
    assert wf["env"]["RUN_ID"] == "gh${{ github.run_id }}-${{ github.run_attempt }}"


def test_ci_installs_the_pulumi_cli_of_the_pinned_sdk() -> None:
    wf = workflow()
    pinned = next(line.split("==")[1] for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.startswith("pulumi=="))
    assert wf["env"]["PULUMI_VERSION"] == pinned
    install = " ".join(s.get("run", "") for s in wf["jobs"]["fleet"]["steps"])
    assert 'curl -fsSL https://get.pulumi.com | sh -s -- --version "${PULUMI_VERSION}"' in install


# Read from each action's repository (git rev-parse <tag>^{commit} in a fetched mirror); node24 at each tag.
ACTION_PINS = {
    "actions/checkout": ("3d3c42e5aac5ba805825da76410c181273ba90b1", "v7.0.1"),
    "actions/setup-python": ("5fda3b95a4ea91299a34e894583c3862153e4b97", "v7.0.0"),
    "actions/upload-artifact": ("bbbca2ddaa5d8feaa63e36b76fdaad77386f024f", "v7.0.0"),
    "actions/cache/restore": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "actions/cache/save": ("27d5ce7f107fe9357f9df03efb73ab90386fccae", "v5.0.5"),
    "aws-actions/configure-aws-credentials": ("e6de054238d6b7531b4efff3b6587d9aade6a06c", "v6.2.3"),
}


def test_every_action_is_pinned_to_its_release_commit_with_the_version_beside_it() -> None:
    text = (ROOT / ".github/workflows/fleet.yml").read_text()
    uses = [line.split("uses:", 1)[1].strip() for line in text.splitlines() if "uses:" in line]
    assert len(uses) == 10
    for use in uses:
        ref, _, comment = use.partition(" # ")
        action, _, sha = ref.partition("@")
        assert (sha, comment) == ACTION_PINS[action], use
    wf = workflow()
    assert wf["permissions"] == {}
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False
