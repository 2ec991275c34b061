"""Ephemeral fleets: a unique stack, `pulumi up`, artifacts, and a teardown that does not leak.

    python -m fleet.driver run [--stack-file Pulumi.ci.yaml] [--config key=value ...] [--prefix k8sf]
                               [--run-id ID] [--artifacts DIR] [--keep | --defer-teardown] [--strict]
                               [--dry-run]
    python -m fleet.driver destroy --run-id ID [--prefix k8sf] [--artifacts DIR] [--wait-minutes N]

The stack is named <prefix>-<run id>. State goes to the local file backend (.pulumi-state/) unless
PULUMI_BACKEND_URL says otherwise. `--dry-run` prints the cost estimate and exits.

The driver runs the `pulumi` CLI itself, one command at a time, as a child process it owns. The
Automation API starts the CLI without exposing its process, so a signal could not be passed on.
The child gets its own session (a terminal's ^C reaches only the driver), writes its output to a
file under <artifacts>/cli/ (so the driver's death can't kill it with SIGPIPE), and is recorded in
<artifacts>/cli.json for a later `destroy`.

Cancellation, matching the CLI's own protocol (pkg/backend/cancellation_scope.go: a first SIGINT
or SIGTERM cancels, which lets in-flight operations finish and records them; a second one
terminates at once and may orphan what was being created). Pulumi's Go Automation API cancels
the same way, with one SIGINT to the CLI (sdk/go/auto/cmd.go:296-303 at v3.272.0); the Python one
keeps its Popen to itself (pulumi/automation/_cmd.py, PulumiCommand.run).
  - the first SIGINT or SIGTERM during `up` is forwarded to the CLI, once. The CLI finishes what
    it is creating and stops; the driver then tears down, unless told to defer that.
  - the first signal during a teardown is not forwarded: cancelling a destroy leaves resources.
  - a second signal is never forwarded. The driver writes its artifacts and exits at once, leaving
    the CLI to finish; `destroy` waits for it (a GitHub cancel kills the step 10 s after its first
    signal, which is why CI tears down in a separate `if: always()` step).
  - if the driver dies without forwarding (SIGKILL), `destroy` sends the CLI its one cancel.
Pending creates are never cleared: a stack that still records any is kept, and its resources are
left for the reaper, which finds them by their run-id tag.

Exit codes: 0 all went well; 1 an infrastructure failure or an interruption; 2 bad usage, no
pulumi CLI, or the development passphrase in CI; 4 with --strict, some cell's status is not ok.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any, Protocol, TextIO

import yaml

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "k8s-footprint"
EXIT_INFRA, EXIT_USAGE, EXIT_STRICT = 1, 2, 4
DEV_PASSPHRASE = "k8s-footprint-dev"  # the Makefile's default; fine on a laptop, never in CI
INSTALL_PULUMI = "install the pulumi CLI: curl -fsSL https://get.pulumi.com | sh -s -- --version {v}"
Say = Callable[[str], None]


class Abandoned(Exception):
    """A second signal: the driver stopped waiting and left the CLI child to finish on its own."""


class UsageError(Exception):
    """Bad arguments (a --config that is no key=value, a stack file that can't be read): exit 2."""


class CliError(Exception):
    """A pulumi command exited non-zero."""


# ---- the CLI child -------------------------------------------------------------------------------

class SignalLatch:
    """Records SIGINT and SIGTERM; never raises.

    An exception raised by a handler lands wherever the main thread happens to be, including the
    loop that waits on the CLI child: the wait would end with the child unsignalled and still
    running. So the handler only counts, and the wait loop decides what a signal means.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, _frame: FrameType | None) -> None:
        self.received.append(signum)

    def __enter__(self) -> SignalLatch:
        self._previous = {s: signal.signal(s, self._handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *_exc: object) -> None:
        for s, h in self._previous.items():
            signal.signal(s, h)

    @property
    def count(self) -> int:
        return len(self.received)


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot, or None when it is gone (or no /proc).

    Together with the pid it names one process: a pid alone may have been reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else fields[19]


@dataclass
class CliResult:
    code: int
    stdout: str


class Cli:
    """Runs one pulumi command at a time as a child process the driver owns."""

    def __init__(self, exe: str, env: dict[str, str], artifacts: Path, latch: SignalLatch, say: Say,
                 cwd: Path = ROOT) -> None:
        self.exe, self.env, self.artifacts, self.latch, self.say, self.cwd = exe, env, artifacts, latch, say, cwd
        self.record = artifacts / "cli.json"
        self._seen = 0  # signals already acted on
        self._n = 0

    def run(self, args: Sequence[str], *, forward: bool = False, stdin: str | None = None,
            stream_stdout: bool = True, extra_env: dict[str, str] | None = None) -> CliResult:
        """Run `pulumi ARGS`, streaming its output through say().

        forward: pass the first signal of the run to this child (only `up` should be cancelled).
        extra_env: set for this command alone, over the driver's environment.
        A second signal raises Abandoned after the wait, with the child left running."""
        self._n += 1
        logs = self.artifacts / "cli"
        logs.mkdir(parents=True, exist_ok=True)
        stem = logs / f"{self._n:02d}-{'-'.join(a for a in args[:2] if not a.startswith('-'))}"
        out_path, err_path = stem.with_suffix(".out"), stem.with_suffix(".err")
        argv = [self.exe, *args, "--non-interactive"]
        with out_path.open("w") as out, err_path.open("w") as err:
            proc = subprocess.Popen(argv, cwd=self.cwd, env={**self.env, **(extra_env or {})}, stdout=out, stderr=err,
                                    stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                                    start_new_session=True, text=True)
        self._write_record(proc.pid, argv, cancel_sent=False)
        if stdin is not None and proc.stdin is not None:
            proc.stdin.write(stdin)
            proc.stdin.close()
        tails = [_Tail(err_path)] + ([_Tail(out_path)] if stream_stdout else [])
        while True:
            code = proc.poll()
            for tail in tails:
                for line in tail.lines(final=code is not None):
                    self.say(line)
            if code is not None:
                break
            if self.latch.count > self._seen:
                self._seen = self.latch.count
                name = signal.Signals(self.latch.received[-1]).name
                if self.latch.count >= 2:
                    self.say(f"fleet: a second signal ({name}); not passed on, because a second signal makes the "
                             f"CLI stop at once and orphan what it is creating. The CLI (pid {proc.pid}) is left "
                             f"to finish; python -m fleet.driver destroy waits for it")
                    raise Abandoned(f"second signal {name} while `pulumi {args[0]}` ran (pid {proc.pid})")
                if forward:
                    os.kill(proc.pid, self.latch.received[-1])
                    self._write_record(proc.pid, argv, cancel_sent=True)
                    self.say(f"fleet: {name} passed on to the CLI (pid {proc.pid}): it finishes the operations in "
                             f"flight, records them, and stops. A second signal leaves it running and exits")
                else:
                    self.say(f"fleet: {name} received during `pulumi {args[0]}`; not passed on, since stopping it "
                             f"would leave resources. A second signal leaves it running and exits")
            time.sleep(0.1)
        self.record.unlink(missing_ok=True)
        return CliResult(code, out_path.read_text())

    def _write_record(self, pid: int, argv: list[str], cancel_sent: bool) -> None:
        self.record.write_text(json.dumps({"pid": pid, "start": process_start(pid), "argv": argv,
                                           "cancelSent": cancel_sent}, indent=2) + "\n")


class _Tail:
    """Reads the lines a child has appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.partial = path, 0, ""

    def lines(self, final: bool = False) -> list[str]:
        with self.path.open() as f:
            f.seek(self.offset)
            data = f.read()
            self.offset = f.tell()
        text = self.partial + data
        *done, self.partial = text.split("\n")
        if final and self.partial:
            done, self.partial = [*done, self.partial], ""
        return done


def wait_for_leftover_cli(artifacts: Path, say: Say, wait_s: float) -> bool:
    """A CLI child a previous driver left running: cancel it once, if nobody has, and wait for it.

    True when no such process is running (any more)."""
    record_path = artifacts / "cli.json"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, ValueError):
        return True
    pid = int(record["pid"])
    if record.get("start") is None or process_start(pid) != record["start"]:
        record_path.unlink(missing_ok=True)
        return True
    if not record.get("cancelSent"):
        os.kill(pid, signal.SIGTERM)
        record["cancelSent"] = True
        record_path.write_text(json.dumps(record, indent=2) + "\n")
        say(f"teardown: the CLI of the run (pid {pid}, {' '.join(record['argv'][1:3])}) is still running; "
            f"sent it SIGTERM, its one request to finish what is in flight and stop")
    say(f"teardown: waiting up to {wait_s:.0f} s for pid {pid} to finish")
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if process_start(pid) != record["start"]:
            record_path.unlink(missing_ok=True)
            say(f"teardown: pid {pid} has finished")
            return True
        time.sleep(0.5)
    say(f"teardown: pid {pid} still runs after {wait_s:.0f} s; not destroying under it")
    return False


# ---- the stack -------------------------------------------------------------------------------------

class StackOps(Protocol):
    """What the driver does to a stack."""

    name: str

    def prepare(self, config: dict[str, tuple[str, bool]], create: bool) -> bool: ...
    def up(self) -> None: ...
    def outputs(self) -> dict[str, Any]: ...
    def refresh(self) -> None: ...
    def destroy(self) -> None: ...
    def export(self) -> dict[str, Any]: ...
    def remove(self) -> None: ...


def event_log(artifacts: Path) -> Path:
    return artifacts / "cli" / "up-events.jsonl"


class CliStack:
    """StackOps through the pulumi CLI, each command a child of this driver."""

    def __init__(self, name: str, cli: Cli) -> None:
        self.name, self.cli = name, cli

    def _ok(self, args: list[str], **kw: Any) -> CliResult:
        result = self.cli.run([*args, "--stack", self.name], **kw)
        if result.code != 0:
            words = args[:2] if args[0] in ("stack", "config") else args[:1]
            raise CliError(f"pulumi {' '.join(words)} exited {result.code}")
        return result

    def prepare(self, config: dict[str, tuple[str, bool]], create: bool) -> bool:
        if not create:
            probe = self.cli.run(["stack", "select", "--stack", self.name])
            return probe.code == 0
        self._ok(["stack", "select", "--create"])
        plain = [f"{k}={v}" for k, (v, s) in sorted(config.items()) if not s]
        if plain:
            self._ok(["config", "set-all", *[a for p in plain for a in ("--plaintext", p)]])
        for key, (value, secret) in sorted(config.items()):
            if secret:  # on stdin, so the value is in no process list
                self._ok(["config", "set", "--secret", key], stdin=value)
        return True

    def up(self) -> None:
        # The engine's events, as JSON lines: a failed cell's error, by its urn (fleet/recover.py).
        events = str(event_log(self.cli.artifacts))
        # The CLI has --event-log only while PULUMI_DEBUG_COMMANDS is true, and refuses it otherwise
        # (pkg/v3@v3.274.0 cmd/pulumi/operations/up.go:1023-1028); the Automation API sets it too
        # (pulumi/automation/_stack.py:1476 in the pinned SDK 3.272.0).
        self._ok(["up", "--yes", "--skip-preview", "--color", "never", "--event-log", events], forward=True,
                 extra_env={"PULUMI_DEBUG_COMMANDS": "true"})

    def outputs(self) -> dict[str, Any]:
        # Without --show-secrets: a secret output stays "[secret]" in the artifacts.
        result = self._ok(["stack", "output", "--json"], stream_stdout=False)
        value = json.loads(result.stdout or "{}")
        return value if isinstance(value, dict) else {}

    def refresh(self) -> None:
        # No --clear-pending-creates: that drops the record of resources that may well exist.
        self._ok(["refresh", "--yes", "--skip-preview", "--color", "never"])

    def destroy(self) -> None:
        self._ok(["destroy", "--yes", "--skip-preview", "--color", "never"])

    def export(self) -> dict[str, Any]:
        result = self._ok(["stack", "export"], stream_stdout=False)
        value = json.loads(result.stdout or "{}")
        return value if isinstance(value, dict) else {}

    def remove(self) -> None:
        self._ok(["stack", "rm", "--yes"])  # without --force: refuses while resources remain


def leftovers(state: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(resources still in the state, pending operations) from `pulumi stack export`."""
    deployment = state.get("deployment") or {}
    resources = [r.get("urn", "?") for r in deployment.get("resources") or []
                 if r.get("type") != "pulumi:pulumi:Stack" and not str(r.get("type")).startswith("pulumi:providers:")]
    pending = [f"{op.get('type', '?')} {(op.get('resource') or {}).get('urn', '?')}"
               for op in deployment.get("pending_operations") or []]
    return resources, pending


# ---- one run ---------------------------------------------------------------------------------------

@dataclass
class Run:
    stack_name: str
    run_id: str
    artifacts: Path
    config: dict[str, tuple[str, bool]]
    keep: bool = False
    defer_teardown: bool = False
    strict: bool = False
    destroy_attempts: int = 3
    retry_wait_s: float = 20.0
    log_lines: list[str] = field(default_factory=list)
    results_root: Path | None = None  # where `run` writes its run folder (fleet/runfolder.py); None: none


def parse_config(stack_file: Path | None, pairs: Sequence[str], run_id: str) -> dict[str, tuple[str, bool]]:
    """Stack config from a stack file, then --config key=value flags; values as the CLI stores them."""
    values: dict[str, tuple[str, bool]] = {}
    if stack_file is not None:
        try:
            doc = yaml.safe_load(stack_file.read_text()) or {}
        except OSError as exc:
            raise UsageError(f"--stack-file {stack_file}: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"--stack-file {stack_file}: not YAML ({exc})") from None
        if not isinstance(doc, dict) or not isinstance(doc.get("config") or {}, dict):
            raise UsageError(f"--stack-file {stack_file}: expected a stack file with a 'config' mapping")
        for key, value in (doc.get("config") or {}).items():
            if isinstance(value, dict) and "secure" in value:
                raise UsageError(f"{stack_file}: {key} is encrypted for another stack; pass it with --config")
            values[key] = (value if isinstance(value, str) else json.dumps(value), False)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--config {pair!r}: expected key=value")
        full = key if ":" in key else f"{NAMESPACE}:{key}"
        values[full] = (value, full == f"{NAMESPACE}:sshPrivateKey")
    values[f"{NAMESPACE}:runId"] = (run_id, False)
    return values


def cost_estimate(config: dict[str, tuple[str, bool]], stack_name: str) -> dict[str, Any]:
    """The program's own estimate (components/cost.py), from the config the stack will get."""
    from components import config as fleet_config
    from components import cost

    prefix = f"{NAMESPACE}:"
    raw = {k[len(prefix):]: v for k, (v, _) in config.items() if k.startswith(prefix)}
    has_key = raw.pop("sshPrivateKey", None) not in (None, "")
    spec = fleet_config.parse(raw, project=NAMESPACE, stack=stack_name, now=datetime.now(UTC),
                              has_ssh_private_key=has_key)
    return cost.estimate(spec)


def instance_hours(outputs: dict[str, Any], started: float, ended: float) -> list[str]:
    """Actual instance-hours, bounded from above by the time from the start of `up` to the end of teardown."""
    from components import cost

    per_type: dict[str, int] = {}
    for inst in (outputs.get("instances") or {}).values():
        if isinstance(inst, dict) and inst.get("backend") == "aws":
            per_type[str(inst.get("instanceType"))] = per_type.get(str(inst.get("instanceType")), 0) + 1
    if not per_type:
        return []
    hours = max(0.0, ended - started) / 3600
    total = sum(per_type.values()) * hours
    usd = sum(n * hours * (cost.instance_hourly_usd(t, False, 20) or 0.0) for t, n in per_type.items())
    kinds = ", ".join(f"{n} x {t}" for t, n in sorted(per_type.items()))
    return [f"cost: actual instance-hours at most {total:.2f} ({kinds}, {hours:.2f} h each from the start of up to "
            f"the end of teardown); about {usd:.4f} USD on demand with disk and IPv4, before any surplus CPU credits"]


def logger(run: Run, out: TextIO) -> Say:
    """Print a line and keep it for <artifacts>/fleet.log."""
    def say(line: str) -> None:
        line = line.rstrip("\n")
        run.log_lines.append(line)
        print(line, file=out, flush=True)
    return say


class Driver:
    """Up, artifacts, teardown: the control flow over any StackOps."""

    def __init__(self, run: Run, stack: StackOps, say: Say) -> None:
        self.run, self.stack, self.say = run, stack, say

    def _save_log(self) -> None:
        self.run.artifacts.mkdir(parents=True, exist_ok=True)
        (self.run.artifacts / "fleet.log").write_text("\n".join(self.run.log_lines) + "\n")

    def recover(self, outputs: dict[str, Any] | None) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Every cell's result, from the state (read before any destroy) and then the outputs:
        a failed update records no new outputs, but each finished Command's stdout is in the state."""
        from fleet.recover import read_event_log, recover_results

        try:
            state: dict[str, Any] | None = self.stack.export()
        except (CliError, ValueError) as exc:
            self.say(f"fleet: could not read the state to recover results: {exc}")
            state = None
        results = recover_results(state or {}, read_event_log(event_log(self.run.artifacts)))
        results.update((outputs or {}).get("results") or {})  # a full update's outputs say the same, or more
        return results, state

    def write_run_folder(self, outputs: dict[str, Any] | None, state: dict[str, Any] | None,
                         status: dict[str, Any]) -> None:
        """results/<stack>-<runId>-<UTC time>/, which outlives the teardown (fleet/runfolder.py)."""
        run = self.run
        if run.results_root is None:
            return
        from fleet.recover import read_event_log
        from fleet.runfolder import local_versions, write_run_folder

        config = {f"{NAMESPACE}:{k}" if ":" not in k else k: {"value": v, "secret": secret}
                  for k, (v, secret) in run.config.items()}
        try:
            where = write_run_folder(run.results_root, run.stack_name, outputs or {"runId": run.run_id}, state or {},
                                     read_event_log(event_log(run.artifacts)), config, local_versions(),
                                     datetime.now(UTC), status.get("upStartedAt"))
            self.say(f"fleet: run folder {where}")
        except (OSError, ValueError) as exc:  # a report that can't be drawn must not fail the run
            self.say(f"fleet: could not write the run folder: {exc}")

    def write_artifacts(self, outputs: dict[str, Any] | None, status: dict[str, Any],
                        results: dict[str, Any] | None = None) -> None:
        run = self.run
        run.artifacts.mkdir(parents=True, exist_ok=True)
        self._save_log()
        (run.artifacts / "outputs.json").write_text(json.dumps(outputs or {}, indent=2, sort_keys=True) + "\n")
        (run.artifacts / "status.json").write_text(json.dumps(status, indent=2) + "\n")
        if results is None:
            results = (outputs or {}).get("results") or {}
        (run.artifacts / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        if results:
            from benchmarks import report

            docs = report.results_in({"results": results}, "recovered results")
            rows = report.build_rows(docs)
            png, page = (run.artifacts / "report.png", run.artifacts / "report.html") if rows else (None, None)
            report.render(rows, run.artifacts / "report.md", png, page, f"k8s-footprint run {run.stack_name}",
                          report.no_results(docs))

    def teardown(self) -> bool:
        """Destroy, retrying; remove the stack only when its state records nothing left. True when so."""
        run, say = self.run, self.say
        for attempt in range(1, run.destroy_attempts + 1):
            try:
                say(f"teardown: destroying {run.stack_name} (attempt {attempt} of {run.destroy_attempts})")
                if attempt > 1:
                    self.stack.refresh()
                self.stack.destroy()
                break
            except CliError as exc:
                say(f"teardown: attempt {attempt} failed: {exc}")
                if attempt < run.destroy_attempts:
                    time.sleep(run.retry_wait_s * attempt)
        try:
            resources, pending = leftovers(self.stack.export())
        except (CliError, ValueError) as exc:
            resources, pending = [f"(could not read the state: {exc})"], []
        if not resources and not pending:
            try:
                self.stack.remove()
                say(f"teardown: {run.stack_name} destroyed and removed")
                return True
            except CliError as exc:
                resources = [f"(stack rm failed: {exc})"]
        banner = "!" * 78
        say(banner)
        say(f"TEARDOWN INCOMPLETE: stack {run.stack_name} still records {len(resources)} resource(s) and "
            f"{len(pending)} pending operation(s); the stack and its state are kept.")
        for urn in resources:
            say(f"  left: {urn}")
        for op in pending:
            say(f"  pending: {op}  (interrupted mid-operation: it may exist in the cloud without being in the state)")
        say(f"  AWS: python -m fleet.reaper --regions <region> --run-id {run.run_id} --delete  (finds them by tag)")
        say(f"  then: pulumi destroy --stack {run.stack_name}; pulumi stack rm --force --stack {run.stack_name}")
        say(banner)
        return False

    def report_hours(self, outputs: dict[str, Any] | None, started: float | None) -> None:
        if outputs and started is not None:
            for line in instance_hours(outputs, started, time.time()):
                self.say(line)

    def execute(self, latch: SignalLatch) -> int:
        run, say = self.run, self.say
        outputs: dict[str, Any] | None = None
        status: dict[str, Any] = {"stack": run.stack_name, "runId": run.run_id, "up": "not started", "error": None}
        code = 0
        try:
            say(f"fleet: stack {run.stack_name}, artifacts in {run.artifacts}")
            try:
                self.stack.prepare(run.config, create=True)
            except CliError as exc:
                status.update(up="not started", error=f"stack setup failed: {exc}")
                code = EXIT_INFRA
            if not code and latch.count:
                status.update(up="not started", error="interrupted before up; nothing was created")
                code = EXIT_INFRA
            if not code:
                status["upStartedAt"] = time.time()
                try:
                    self.stack.up()
                    status["up"] = "ok"
                except CliError as exc:
                    status.update(up="failed", error=str(exc))
                    code = EXIT_INFRA
                if latch.count:
                    status.update(up="interrupted", error=f"interrupted by {signal.Signals(latch.received[0]).name}")
                    code = EXIT_INFRA
                say(f"fleet: up {status['up']}" + (f": {status['error']}" if status["error"] else ""))
            try:
                outputs = self.stack.outputs()  # what a partial update did produce, too
            except (CliError, ValueError):
                outputs = None
            results, state = self.recover(outputs)
        except Abandoned as exc:
            status.update(up="abandoned", error=str(exc))
            self.write_artifacts(outputs, status)
            say(f"fleet: stopped waiting; finish the teardown with: python -m fleet.driver destroy "
                f"--run-id {run.run_id} --artifacts {run.artifacts}")
            self._save_log()
            return EXIT_INFRA
        self.write_artifacts(outputs, status, results)
        if run.keep:
            say(f"fleet: --keep: {run.stack_name} left up on purpose; remove it with "
                f"python -m fleet.driver destroy --run-id {run.run_id}")
        elif run.defer_teardown:
            say(f"fleet: teardown deferred to: python -m fleet.driver destroy --run-id {run.run_id}")
        else:
            try:
                if not self.teardown():
                    code = EXIT_INFRA
                self.report_hours(outputs, status.get("upStartedAt"))
            except Abandoned as exc:
                say(f"fleet: teardown abandoned ({exc}); finish it with: python -m fleet.driver destroy "
                    f"--run-id {run.run_id} --artifacts {run.artifacts}")
                code = EXIT_INFRA
        # After the teardown, which it must not delay; from the state read before it.
        self.write_run_folder(outputs, state, status)
        self._save_log()
        if code == 0 and run.strict and results:
            bad = {cell: r.get("status") for cell, r in results.items() if r.get("status") != "ok"}
            if bad:
                say(f"fleet: --strict: {len(bad)} cell(s) not ok: {bad}")
                code = EXIT_STRICT
        return code

    def destroy_later(self, latch: SignalLatch, wait_s: float) -> int:
        """The teardown of a run whose driver has gone (`destroy`): wait for its CLI, then tear down."""
        say = self.say
        if not wait_for_leftover_cli(self.run.artifacts, say, wait_s):
            self._save_log()
            return EXIT_INFRA
        try:
            if not self.stack.prepare({}, create=False):
                say(f"teardown: no stack {self.run.stack_name} in this backend; nothing to destroy")
                return 0
            ok = self.teardown()
        except Abandoned as exc:
            say(f"teardown: abandoned ({exc})")
            ok = False
        try:
            status = json.loads((self.run.artifacts / "status.json").read_text())
            outputs = json.loads((self.run.artifacts / "outputs.json").read_text())
            self.report_hours(outputs, status.get("upStartedAt"))
        except (OSError, ValueError):
            pass
        self._save_log()
        return 0 if ok else EXIT_INFRA


# ---- the command line ------------------------------------------------------------------------------

def pinned_sdk_version() -> str:
    return metadata.version("pulumi")


def check_cli_version(exe: str, say: Say) -> bool:
    """Warn when the CLI is not the version of the pinned SDK (requirements.txt); refuse (False) one
    older than the oldest that honours replacement_trigger and replace_with (tools/doctor.py MIN_CLI):
    such a CLI ignores them silently, and changed commands would re-run on used machines."""
    from tools.doctor import MIN_CLI, version_tuple

    want = pinned_sdk_version()
    try:
        got = subprocess.run([exe, "version"], capture_output=True, text=True, timeout=60, check=False,
                             env={**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        got = f"unknown ({exc})"
    have = version_tuple(got)
    if have and have < version_tuple(MIN_CLI):
        say(f"error: pulumi CLI {got} is older than {MIN_CLI}, which the program needs for replacement_trigger "
            f"and replace_with. {INSTALL_PULUMI.format(v=want)}")
        return False
    if got.removeprefix("v") != want:
        say(f"warning: pulumi CLI {got or '(no version printed)'} does not match the pinned SDK pulumi=={want}; "
            f"results and state may differ. {INSTALL_PULUMI.format(v=want)}")
    return True


def in_ci(environ: Mapping[str, str]) -> bool:
    return environ.get("CI", "").lower() not in ("", "0", "false")


def uses_dev_passphrase(environ: Mapping[str, str]) -> bool:
    """Is the state's passphrase unset, empty or the development default? Unset, the Makefile, env.sh
    and cli_env() all give the CLI the development default."""
    value = environ.get("PULUMI_CONFIG_PASSPHRASE")
    if value is None and environ.get("PULUMI_CONFIG_PASSPHRASE_FILE"):
        try:
            value = Path(environ["PULUMI_CONFIG_PASSPHRASE_FILE"]).read_text().rstrip("\n")
        except OSError:
            value = None
    return value in (None, "", DEV_PASSPHRASE)


def passphrase_problem(environ: dict[str, str]) -> str | None:
    """In CI, the state (which holds the stack's SSH key) must not be protected by the known passphrase."""
    if not in_ci(environ):
        return None
    if uses_dev_passphrase(environ):
        return ("CI is set and PULUMI_CONFIG_PASSPHRASE is unset, empty or the development default; the state "
                "holds the stack's SSH key, so CI must use a passphrase of its own from a secret")
    return None


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PULUMI_BACKEND_URL"] = os.environ.get("PULUMI_BACKEND_URL", f"file://{ROOT / '.pulumi-state'}")
    env.setdefault("PULUMI_CONFIG_PASSPHRASE", DEV_PASSPHRASE)
    env["PULUMI_SKIP_UPDATE_CHECK"] = "true"
    if env["PULUMI_BACKEND_URL"].startswith("file://"):
        Path(env["PULUMI_BACKEND_URL"][len("file://"):]).mkdir(parents=True, exist_ok=True)
    return env


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.driver", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="bring a fleet up, collect its results, tear it down")
    r.add_argument("--stack-file", type=Path, help="a Pulumi.<stack>.yaml to take config from")
    r.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", help="config, may repeat")
    r.add_argument("--run-id", help="default: UTC time and a random suffix")
    r.add_argument("--strict", action="store_true", help="exit 4 when any cell's status is not ok")
    r.add_argument("--dry-run", action="store_true", help="print the cost estimate and exit")
    r.add_argument("--results", type=Path, default=Path(os.environ.get("K8SF_RESULTS_DIR") or ROOT / "results"),
                   help="where the run folder goes (default: results/, or $K8SF_RESULTS_DIR)")
    after = r.add_mutually_exclusive_group()
    after.add_argument("--keep", action="store_true", help="skip teardown, on purpose")
    after.add_argument("--defer-teardown", action="store_true",
                       help="leave the teardown to a following `destroy` (CI: an if: always() step)")
    d = sub.add_parser("destroy", help="tear down a run's stack: wait for its CLI, destroy, remove")
    d.add_argument("--run-id", required=True)
    d.add_argument("--wait-minutes", type=float, default=30.0, help="how long to wait for a leftover CLI")
    for p in (r, d):
        p.add_argument("--prefix", default="k8sf")
        p.add_argument("--artifacts", type=Path, default=Path("artifacts"))
    args = parser.parse_args(argv)
    run_id = args.run_id or time.strftime("%Y%m%d%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
    stack_name = f"{args.prefix}-{run_id}"
    try:
        config = parse_config(args.stack_file, args.config, run_id) if args.command == "run" else {}
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "run":
        from components import cost
        from components.config import ConfigError

        # The program's own parser, before any stack exists: a bad value is a usage error (2),
        # not a failed `pulumi up` (1) after a stack was made for it.
        try:
            lines = cost.describe(cost_estimate(config, stack_name))
        except ConfigError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if args.dry_run:
            print("\n".join(lines))
            return 0
    exe = shutil.which("pulumi")
    if exe is None:
        print(f"error: the fleet driver needs the pulumi CLI; {INSTALL_PULUMI.format(v=pinned_sdk_version())}",
              file=sys.stderr)
        return EXIT_USAGE
    if problem := passphrase_problem(dict(os.environ)):
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    run = Run(stack_name=stack_name, run_id=run_id, artifacts=args.artifacts, config=config,
              keep=getattr(args, "keep", False), defer_teardown=getattr(args, "defer_teardown", False),
              strict=getattr(args, "strict", False), results_root=getattr(args, "results", None))
    run.artifacts.mkdir(parents=True, exist_ok=True)
    say = logger(run, sys.stdout)
    with SignalLatch() as latch:
        driver = Driver(run, CliStack(stack_name, Cli(exe, cli_env(), run.artifacts, latch, say)), say)
        if not check_cli_version(exe, say):
            return EXIT_USAGE
        if args.command == "run":
            for line in _estimate_lines(config, stack_name):
                say(line)
            return driver.execute(latch)
        return driver.destroy_later(latch, args.wait_minutes * 60)


def _estimate_lines(config: dict[str, tuple[str, bool]], stack_name: str) -> list[str]:
    from components import cost
    from components.config import ConfigError

    try:
        return cost.describe(cost_estimate(config, stack_name))
    except ConfigError as exc:
        return [f"cost: no estimate, the config is invalid ({exc})".replace("\n", " ")]


if __name__ == "__main__":
    sys.exit(main())
