"""A stand-in for the `pulumi` CLI at the process boundary, for the fleet driver's tests.

It is a real child process: argv, environment, stdin, exit code, output, and signals, with the
commands the driver uses. `up` and `destroy` mimic the engine's cancellation protocol at the
pinned version (pkg/backend/cancellation_scope.go, lines 64-118 in pkg/v3 v3.260.0 and v3.274.0):
  - the first SIGINT or SIGTERM prints "... received; cancelling", lets the operation in flight
    finish and be recorded, starts no new one, and exits non-zero;
  - a second one prints "... received; terminating" and exits at once, leaving the operation in
    flight as a pending operation in the state.
Like the engine, it records a pending create in the state *before* asking the cloud for the
resource. The "cloud" is a JSON file of resources with their run-id tag, which the tests compare
with the state. Knobs (environment): FAKE_PULUMI_DIR (state, cloud, calls), FAKE_PULUMI_VERSION,
FAKE_UP_RESOURCES, FAKE_STEP_SECONDS, FAKE_UP_FAIL, FAKE_DESTROY_FAILURES.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

DIR = Path(os.environ.get("FAKE_PULUMI_DIR", "."))
STATE, CLOUD, CALLS = DIR / "state.json", DIR / "cloud.json", DIR / "calls.jsonl"
signals: list[int] = []


def load(path: Path, default: Any) -> Any:
    return json.loads(path.read_text()) if path.exists() else default


def save(path: Path, value: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1))
    tmp.replace(path)


def log(event: str, **kw: Any) -> None:
    with CALLS.open("a") as f:
        f.write(json.dumps({"pid": os.getpid(), "event": event, **kw}) + "\n")


def on_signal(signum: int, _frame: FrameType | None) -> None:
    signals.append(signum)
    name = "SIGTERM" if signum == signal.SIGTERM else "^C"
    log("signal", signal=signal.Signals(signum).name, nth=len(signals))
    if len(signals) == 1:
        print(f"{name} received; cancelling. If you would like to terminate immediately, press ^C again.", flush=True)
    else:
        print(f"{name} received; terminating", flush=True)
        os._exit(255)  # like the engine's Terminate: no cleanup, pending operations stay


def arg(args: list[str], flag: str) -> str | None:
    return args[args.index(flag) + 1] if flag in args else None


def stack_of(args: list[str], state: dict[str, Any]) -> dict[str, Any]:
    name = arg(args, "--stack")
    if name not in state:
        print(f"error: no stack named '{name}' found", file=sys.stderr)
        sys.exit(255)
    return dict(state[name])


def step(seconds: float) -> None:
    """An operation in flight: it runs to its end even when a first signal arrives."""
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(left, 0.05))


def up(args: list[str], name: str, state: dict[str, Any]) -> int:
    stack = stack_of(args, state)
    run_id = stack["config"].get("k8s-footprint:runId", "?")
    count = int(os.environ.get("FAKE_UP_RESOURCES", "3"))
    pause = float(os.environ.get("FAKE_STEP_SECONDS", "0.05"))
    for i in range(count):
        if signals:
            print("error: update canceled", file=sys.stderr)
            return 255
        urn = f"urn:pulumi:{name}::k8s-footprint::aws:ec2/instance:Instance::cell-{i}-vm"
        stack["pending"].append({"type": "creating", "resource": {"urn": urn, "type": "aws:ec2/instance:Instance"}})
        state[name] = stack
        save(STATE, state)
        cloud = load(CLOUD, [])
        cloud.append({"id": f"i-{name}-{i}", "urn": urn, "tags": {"k8s-footprint:run-id": run_id}})
        save(CLOUD, cloud)
        log("creating", urn=urn)
        print(f" +  aws:ec2:Instance cell-{i}-vm creating", flush=True)
        step(pause)
        stack["pending"] = [p for p in stack["pending"] if p["resource"]["urn"] != urn]
        stack["resources"].append({"urn": urn, "type": "aws:ec2/instance:Instance", "id": f"i-{name}-{i}"})
        state[name] = stack
        save(STATE, state)
        print(f" +  aws:ec2:Instance cell-{i}-vm created", flush=True)
    if os.environ.get("FAKE_UP_FAIL"):
        print(f"error: {os.environ['FAKE_UP_FAIL']}", file=sys.stderr)
        return 255
    if signals:
        print("error: update canceled", file=sys.stderr)
        return 255
    stack["outputs"] = json.loads(os.environ.get("FAKE_UP_OUTPUTS") or json.dumps({"runId": run_id}))
    state[name] = stack
    save(STATE, state)
    return 0


def destroy(args: list[str], name: str, state: dict[str, Any]) -> int:
    stack = stack_of(args, state)
    failures = DIR / "destroy-failures"
    left = int(failures.read_text()) if failures.exists() else int(os.environ.get("FAKE_DESTROY_FAILURES", "0"))
    if left > 0:
        failures.write_text(str(left - 1))
        print("error: resource is still in use", file=sys.stderr)
        return 255
    failures.write_text("0")
    pause = float(os.environ.get("FAKE_STEP_SECONDS", "0.05"))
    for res in list(stack["resources"]):
        if signals:
            print("error: destroy canceled", file=sys.stderr)
            return 255
        print(f" -  {res['urn']} deleting", flush=True)
        step(pause)
        save(CLOUD, [c for c in load(CLOUD, []) if c["urn"] != res["urn"]])
        stack["resources"].remove(res)
        state[name] = stack
        save(STATE, state)
    stack["outputs"] = {}
    state[name] = stack
    save(STATE, state)
    return 0


def debug_commands() -> bool:
    """PULUMI_DEBUG_COMMANDS as the CLI reads it: env.DebugCommands is env.Bool("DEBUG_COMMANDS")
    with the PULUMI_ prefix (sdk/v3@v3.274.0 go/common/env/env.go:55, util/env/env.go:127,172),
    true for "1" or any case of "true" (util/env/env.go:338-347)."""
    value = os.environ.get("PULUMI_DEBUG_COMMANDS", "")
    return value == "1" or value.lower() == "true"


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    args = [a for a in argv if a != "--non-interactive"]
    log("start", argv=argv, stdin_is_tty=sys.stdin.isatty(), sid=os.getsid(0), pgid=os.getpgid(0))
    # up, preview, refresh, destroy and import register --event-log only when PULUMI_DEBUG_COMMANDS
    # is set (pkg/v3@v3.274.0 cmd/pulumi/operations/up.go:1023-1028, the same in v3.259.0's
    # up.go:996-1001); without it cobra refuses the flag, and the CLI exits 1 (seen with the real
    # CLI v3.274.0: benchmarks/results/e2e/2026-11-30-fleet-hosts-x86_64-bare-1-event-log-refused.log).
    if "--event-log" in args and not debug_commands():
        print("error: unknown flag: --event-log", file=sys.stderr)
        return 1
    if args[:1] == ["version"]:
        print(os.environ.get("FAKE_PULUMI_VERSION", "v3.272.0"))
        return 0
    state = load(STATE, {})
    name = arg(args, "--stack") or ""
    verb = args[:2] if args[:1] in (["stack"], ["config"]) else args[:1]
    if verb == ["stack", "select"]:
        if name not in state:
            if "--create" not in args:
                print(f"error: no stack named '{name}' found", file=sys.stderr)
                return 255
            state[name] = {"config": {}, "secrets": [], "resources": [], "pending": [], "outputs": {}}
            save(STATE, state)
        return 0
    if verb == ["config", "set-all"]:
        stack = stack_of(args, state)
        for i, a in enumerate(args):
            if a == "--plaintext":
                key, _, value = args[i + 1].partition("=")
                stack["config"][key] = value
        state[name] = stack
        save(STATE, state)
        return 0
    if verb[:2] == ["config", "set"]:
        stack = stack_of(args, state)
        key = args[args.index("--secret") + 1]
        stack["config"][key] = sys.stdin.read()
        stack["secrets"].append(key)
        state[name] = stack
        save(STATE, state)
        return 0
    if verb == ["up"]:
        return up(args, name, state)
    if verb == ["destroy"]:
        return destroy(args, name, state)
    if verb == ["refresh"]:
        stack_of(args, state)
        log("refresh", clear_pending_creates="--clear-pending-creates" in args)
        return 0
    if verb == ["stack", "output"]:
        print(json.dumps(stack_of(args, state)["outputs"]))
        return 0
    if verb == ["stack", "export"]:
        stack = stack_of(args, state)
        root = [{"urn": f"urn:pulumi:{name}::k8s-footprint::pulumi:pulumi:Stack::k8s-footprint-{name}",
                 "type": "pulumi:pulumi:Stack"}] if stack["resources"] else []
        print(json.dumps({"version": 3, "deployment": {"resources": root + stack["resources"],
                                                       "pending_operations": stack["pending"]}}))
        return 0
    if verb == ["stack", "rm"]:
        stack = stack_of(args, state)
        if stack["resources"] and "--force" not in args:
            print(f"error: '{name}' still has resources; removal rejected", file=sys.stderr)
            return 255
        del state[name]
        save(STATE, state)
        return 0
    print(f"fake pulumi: unknown command {args}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
