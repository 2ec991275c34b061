"""Ephemeral fleets: a unique stack, `pulumi up`, artifacts, and a teardown that always happens.

    python -m fleet.driver run [--stack-file Pulumi.ci.yaml] [--config key=value ...]
                                   [--prefix k8sf] [--run-id ID] [--artifacts DIR] [--keep] [--strict]

Built on Pulumi's Automation API, which drives the `pulumi` CLI. The stack is named
<prefix>-<run id>. State goes to the local file backend (.pulumi-state/) unless
PULUMI_BACKEND_URL says otherwise. Progress streams to stdout and into <artifacts>/fleet.log; the
outputs and the report land in <artifacts> even when `up` fails. The stack is destroyed and
removed in every case (success, failure, SIGINT or SIGTERM during `up`) unless --keep. A failed
destroy is retried, then reported loudly with what is left.

Exit codes: 0 all went well; 1 an infrastructure failure (up or teardown); 2 bad usage or no
pulumi CLI; 4 with --strict, some cell's status is not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "k8s-footprint"
EXIT_INFRA, EXIT_USAGE, EXIT_STRICT = 1, 2, 4
INSTALL_PULUMI = "install the pulumi CLI: curl -fsSL https://get.pulumi.com | sh  (https://www.pulumi.com/docs/install/)"


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived while the fleet was up."""


class StackOps(Protocol):
    """What the driver needs from a stack: the boundary the unit tests replace with a double."""

    name: str

    def set_config(self, values: dict[str, tuple[str, bool]]) -> None: ...
    def up(self, on_output: Callable[[str], None]) -> dict[str, Any]: ...
    def outputs(self) -> dict[str, Any]: ...
    def refresh_clearing_pending(self, on_output: Callable[[str], None]) -> None: ...
    def destroy_and_remove(self, on_output: Callable[[str], None]) -> None: ...
    def leftovers(self) -> list[str]: ...


class AutomationStack:
    """StackOps over pulumi.automation, in this project's folder."""

    def __init__(self, name: str, env: dict[str, str]) -> None:
        from pulumi import automation as auto

        self.name = name
        self._auto = auto
        self._stack = auto.create_or_select_stack(
            stack_name=name, work_dir=str(ROOT), opts=auto.LocalWorkspaceOptions(env_vars=env))

    def set_config(self, values: dict[str, tuple[str, bool]]) -> None:
        self._stack.set_all_config({k: self._auto.ConfigValue(value=v, secret=s) for k, (v, s) in values.items()})

    def up(self, on_output: Callable[[str], None]) -> dict[str, Any]:
        result = self._stack.up(on_output=on_output)
        return {k: v.value for k, v in result.outputs.items()}

    def outputs(self) -> dict[str, Any]:
        return {k: v.value for k, v in self._stack.outputs().items()}

    def refresh_clearing_pending(self, on_output: Callable[[str], None]) -> None:
        self._stack.refresh(clear_pending_creates=True, on_output=on_output)

    def destroy_and_remove(self, on_output: Callable[[str], None]) -> None:
        self._stack.destroy(on_output=on_output)
        self._stack.workspace.remove_stack(self.name)

    def leftovers(self) -> list[str]:
        deployment = self._stack.export_stack().deployment or {}
        return [r.get("urn", "?") for r in deployment.get("resources", []) if r.get("type") != "pulumi:pulumi:Stack"]


@dataclass
class Run:
    stack_name: str
    artifacts: Path
    config: dict[str, tuple[str, bool]]
    keep: bool = False
    strict: bool = False
    destroy_attempts: int = 3
    retry_wait_s: float = 20.0
    log_lines: list[str] = field(default_factory=list)


def parse_config(stack_file: Path | None, pairs: Sequence[str], run_id: str) -> dict[str, tuple[str, bool]]:
    """Stack config from a stack file, then --config key=value flags; values as the CLI stores them."""
    values: dict[str, tuple[str, bool]] = {}
    if stack_file is not None:
        doc = yaml.safe_load(stack_file.read_text()) or {}
        for key, value in (doc.get("config") or {}).items():
            if isinstance(value, dict) and "secure" in value:
                raise SystemExit(f"{stack_file}: {key} is encrypted for another stack; pass it with --config")
            values[key] = (value if isinstance(value, str) else json.dumps(value), False)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--config {pair!r}: expected key=value")
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        values[full] = (value, full == f"{NAMESPACE}:sshPrivateKey")
    values[f"{NAMESPACE}:runId"] = (run_id, False)
    return values


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into Interrupted, so the teardown in `finally` still runs."""
    def handler(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(signal.Signals(signum).name)

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def write_artifacts(run: Run, outputs: dict[str, Any] | None, error: str | None) -> None:
    run.artifacts.mkdir(parents=True, exist_ok=True)
    (run.artifacts / "fleet.log").write_text("\n".join(run.log_lines) + "\n")
    (run.artifacts / "outputs.json").write_text(json.dumps(outputs or {}, indent=2, sort_keys=True) + "\n")
    (run.artifacts / "status.json").write_text(json.dumps(
        {"stack": run.stack_name, "up": "failed" if error else "ok", "error": error}, indent=2) + "\n")
    if outputs and outputs.get("results"):
        from benchmarks import report

        rows = report.build_rows(report.results_in(outputs, "stack outputs"))
        report.render(rows, run.artifacts / "report.md", run.artifacts / "report.png", run.artifacts / "report.html",
                      f"k8s-footprint run {run.stack_name}")


def teardown(stack: StackOps, run: Run, say: Callable[[str], None]) -> bool:
    """Destroy and remove the stack, retrying; True when nothing is left."""
    for attempt in range(1, run.destroy_attempts + 1):
        try:
            say(f"teardown: destroying {run.stack_name} (attempt {attempt} of {run.destroy_attempts})")
            if attempt > 1:
                # An interrupted update leaves pending operations that block destroy.
                stack.refresh_clearing_pending(say)
            stack.destroy_and_remove(say)
            say(f"teardown: {run.stack_name} destroyed and removed")
            return True
        except Exception as exc:
            say(f"teardown: attempt {attempt} failed: {exc}")
            if attempt < run.destroy_attempts:
                time.sleep(run.retry_wait_s * attempt)
    try:
        left = stack.leftovers()
    except Exception as exc:
        left = [f"(could not list them: {exc})"]
    banner = "!" * 78
    say(banner)
    say(f"TEARDOWN FAILED: stack {run.stack_name} still holds {len(left)} resource(s). Remove them with")
    say(f"  pulumi destroy --stack {run.stack_name}   and, for AWS, python -m fleet.reaper --delete")
    for urn in left:
        say(f"  left: {urn}")
    say(banner)
    return False


def execute(run: Run, stack: StackOps, out: TextIO = sys.stdout) -> int:
    """Up, artifacts, teardown: the control flow, independent of how the stack is driven."""
    def say(line: str) -> None:
        line = line.rstrip("\n")
        run.log_lines.append(line)
        print(line, file=out, flush=True)

    outputs: dict[str, Any] | None = None
    error: str | None = None
    code = 0
    try:
        with interrupts_raise():
            try:
                say(f"fleet: stack {run.stack_name}, artifacts in {run.artifacts}")
                stack.set_config(run.config)
                outputs = stack.up(say)
            except Interrupted as exc:
                error, code = f"interrupted by {exc}", EXIT_INFRA
                say(f"fleet: {error}; tearing down")
            except Exception as exc:
                error, code = f"up failed: {exc}", EXIT_INFRA
                say(f"fleet: {error}")
            if outputs is None:
                try:
                    outputs = stack.outputs()  # what a partial update did produce
                except Exception:
                    outputs = None
    finally:
        write_artifacts(run, outputs, error)
        if run.keep:
            say(f"fleet: --keep: {run.stack_name} left up on purpose; remove it with pulumi destroy")
        else:
            with interrupts_raise():
                try:
                    if not teardown(stack, run, say):
                        code = EXIT_INFRA
                except Interrupted:
                    say("fleet: interrupted again during teardown; stopping. The stack may still hold resources.")
                    code = EXIT_INFRA
        (run.artifacts / "fleet.log").write_text("\n".join(run.log_lines) + "\n")
    if code == 0 and run.strict and outputs:
        bad = {cell: r.get("status") for cell, r in (outputs.get("results") or {}).items() if r.get("status") != "ok"}
        if bad:
            say(f"fleet: --strict: {len(bad)} cell(s) not ok: {bad}")
            code = EXIT_STRICT
    return code


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.driver", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="bring a fleet up, collect its results, tear it down")
    r.add_argument("--stack-file", type=Path, help="a Pulumi.<stack>.yaml to take config from")
    r.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="config, may repeat")
    r.add_argument("--prefix", default="k8sf")
    r.add_argument("--run-id", help="default: UTC time and a random suffix")
    r.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    r.add_argument("--keep", action="store_true", help="skip teardown, on purpose")
    r.add_argument("--strict", action="store_true", help="exit 4 when any cell's status is not ok")
    args = parser.parse_args(argv)
    if shutil.which("pulumi") is None:
        print(f"error: the fleet driver needs the pulumi CLI; {INSTALL_PULUMI}", file=sys.stderr)
        return EXIT_USAGE
    run_id = args.run_id or time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
    env = {"PULUMI_BACKEND_URL": os.environ.get("PULUMI_BACKEND_URL", f"file://{ROOT / '.pulumi-state'}"),
           "PULUMI_CONFIG_PASSPHRASE": os.environ.get("PULUMI_CONFIG_PASSPHRASE", "k8s-footprint-dev")}
    if env["PULUMI_BACKEND_URL"].startswith("file://"):
        Path(env["PULUMI_BACKEND_URL"][len("file://"):]).mkdir(parents=True, exist_ok=True)
    run = Run(stack_name=f"{args.prefix}-{run_id}", artifacts=args.artifacts,
              config=parse_config(args.stack_file, args.config, run_id), keep=args.keep, strict=args.strict)
    return execute(run, AutomationStack(run.stack_name, env))


if __name__ == "__main__":
    sys.exit(main())
