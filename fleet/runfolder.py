"""A run folder after every `make up` and fleet run: results that outlive the stack (issue 14, point 2).

    results/<stack>-<runId>-<UTC time>/
        outputs.json     the stack outputs (whatever the update recorded; none when it failed)
        cells/<cell>.json  every cell's result, recovered from the state (fleet/recover.py)
        report.md, report.html, report.png   benchmarks/report.py over cells/
        manifest.json    stack config (secrets redacted), versions of program, kit, SDK and
                         providers, timestamps

    python -m fleet.runfolder write --stack dev [--events FILE] [--started UNIX]   (make up runs it)
    python -m fleet.runfolder report [RUN_DIR]      redraw a run's report (default: the newest)
    python -m fleet.runfolder results --stack dev   print every cell's result, recovered from the state

`results/` is ignored by git and nothing deletes it: `make destroy` leaves it alone.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from fleet.recover import deployment_of, read_event_log, recover_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "results"
REDACTED = "[secret]"
SECRET_KEYS = ("sshPrivateKey",)  # secret by meaning, even if set in plain text


def redact_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """`pulumi config --json` (key -> {value, secret, objectValue}), or plain key -> value, with
    every secret's value replaced."""
    out: dict[str, Any] = {}
    for key, entry in config.items():
        secret = key.rsplit(":", 1)[-1] in SECRET_KEYS
        if isinstance(entry, Mapping):
            secret = secret or bool(entry.get("secret"))
            out[key] = {"secret": True, "value": REDACTED} if secret else dict(entry)
        else:
            out[key] = REDACTED if secret else entry
    return out


def provider_versions(state: Mapping[str, Any]) -> dict[str, str]:
    """pulumi:providers:<pkg> resources of the state -> their version."""
    versions: dict[str, str] = {}
    for r in deployment_of(state).get("resources") or []:
        typ = str(r.get("type", ""))
        if typ.startswith("pulumi:providers:"):
            v = (r.get("outputs") or {}).get("version") or (r.get("inputs") or {}).get("version")
            if v:
                versions[typ.split(":", 2)[2]] = str(v)
    return versions


def folder_name(stack: str, run_id: str, when: datetime) -> str:
    return f"{stack}-{run_id}-{when.astimezone(UTC).strftime('%Y%m%dT%H%M%SZ')}"


def render_report(run_dir: Path) -> str:
    """(Re)draw report.md/.html/.png from the run folder's cells/; returns the markdown."""
    from benchmarks import report

    cells = run_dir / "cells"
    docs = report.load([str(cells)]) if any(cells.glob("*.json")) else []  # an up that made no cell yet
    rows = report.build_rows(docs)
    if not rows:  # nothing to chart: the table alone
        return report.render(rows, run_dir / "report.md", None, None, "", report.no_results(docs))
    return report.render(rows, run_dir / "report.md", run_dir / "report.png", run_dir / "report.html",
                         f"k8s-footprint run {run_dir.name}", report.no_results(docs))


def write_run_folder(root: Path, stack: str, outputs: Mapping[str, Any], state: Mapping[str, Any],
                     events: Sequence[Mapping[str, Any]], config: Mapping[str, Any], versions: Mapping[str, Any],
                     now: datetime, started: float | None = None) -> Path:
    run_id = str(outputs.get("runId") or stack)  # runId defaults to the stack name; the time keeps runs apart
    results = recover_results(state, events)
    results.update(outputs.get("results") or {})
    run_dir = root / folder_name(stack, run_id, now)
    (run_dir / "cells").mkdir(parents=True)
    (run_dir / "outputs.json").write_text(json.dumps(dict(outputs), indent=2, sort_keys=True) + "\n")
    for cell, result in sorted(results.items()):
        (run_dir / "cells" / f"{cell}.json").write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    stamps = [e["timestamp"] for e in events if isinstance(e.get("timestamp"), int)]
    manifest = {
        "stack": stack, "runId": run_id, "cells": sorted(results),
        "config": redact_config(config),
        "versions": {**versions, "providers": provider_versions(state)},
        "timestamps": {"written": now.astimezone(UTC).isoformat(),
                       "upStarted": started if started is not None else (min(stamps) if stamps else None),
                       "upEnded": max(stamps) if stamps else None},
    }
    (run_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    render_report(run_dir)
    return run_dir


def local_versions() -> dict[str, Any]:
    from components.commands import KIT_DIR, kit_hash

    def git(*args: str) -> str | None:
        proc = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return proc.stdout.strip() or None if proc.returncode == 0 else None

    dirty = git("status", "--porcelain", "--untracked-files=no")
    return {"program": {"commit": git("rev-parse", "HEAD"), "dirty": bool(dirty)},
            "kit": {"version": (KIT_DIR / "VERSION").read_text().strip(), "hash": kit_hash()},
            "pulumiSdk": metadata.version("pulumi")}


def _pulumi_json(args: list[str]) -> Any:
    proc = subprocess.run(["pulumi", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"pulumi {' '.join(args)} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout or "{}")


def newest_run(root: Path, stack: str | None) -> Path:
    runs = sorted((p for p in root.glob(f"{stack or ''}*") if (p / "manifest.json").is_file()),
                  key=lambda p: json.loads((p / "manifest.json").read_text())["timestamps"]["written"])
    if not runs:
        raise SystemExit(f"no run folder{' for ' + stack if stack else ''} in {root}; run make up first")
    return runs[-1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.runfolder", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("write", help="write a run folder from the stack's state and outputs")
    w.add_argument("--stack", required=True)
    w.add_argument("--events", type=Path, help="the `pulumi up --event-log` file")
    w.add_argument("--started", type=float)
    w.add_argument("--root", type=Path, default=RESULTS)
    r = sub.add_parser("report", help="redraw a run folder's report")
    r.add_argument("run_dir", nargs="?", type=Path)
    r.add_argument("--stack")
    r.add_argument("--root", type=Path, default=RESULTS)
    p = sub.add_parser("results", help="print every cell's result, recovered from the state")
    p.add_argument("--stack", required=True)
    p.add_argument("--events", type=Path)
    args = parser.parse_args(argv)
    if args.command == "report":
        run_dir = args.run_dir or newest_run(args.root, args.stack)
        print(render_report(run_dir), end="")
        print(f"report redrawn in {run_dir}", file=sys.stderr)
        return 0
    state = _pulumi_json(["stack", "export", "--stack", args.stack])
    outputs = _pulumi_json(["stack", "output", "--json", "--stack", args.stack])
    events = read_event_log(args.events) if args.events else []
    if args.command == "results":
        results = recover_results(state, events)
        results.update(outputs.get("results") or {})
        print(json.dumps(results, indent=2, sort_keys=True))
        return 0
    config = _pulumi_json(["config", "--json", "--stack", args.stack])
    run_dir = write_run_folder(args.root, args.stack, outputs, state, events, config, local_versions(),
                               datetime.now(UTC), args.started)
    print(f"results: {run_dir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
