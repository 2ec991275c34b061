"""Find, and with --delete remove, AWS resources a k8s-footprint fleet left behind.

    python -m fleet.reaper --regions us-east-1 [--run-id ID ...] [--live-stacks dev ci] [--delete]

A resource is reaped when it carries k8s-footprint's tags and
  - its `k8s-footprint:run-id` is one of --run-id (a run whose state is gone: a cancelled or
    crashed CI job), whatever its expiry; or
  - its `k8s-footprint:expires-at` has passed (or is missing or unreadable); or
  - the live stacks are known and its `k8s-footprint:stack` is not one of them.
The live stacks come from --live-stacks, or else from `pulumi stack ls` against this project's
own backend (PULUMI_BACKEND_URL if set, else .pulumi-state/ here; never whatever backend the shell
is logged in to, where a live local stack would look orphaned). With neither, only run ids and
expiry count, and the reaper says so. Dry run by default. --delete terminates instances first,
waits for them, then deletes security groups (which fail while an instance still uses them) and
key pairs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MANAGED = "k8s-footprint:managed"
STACK = "k8s-footprint:stack"
RUN_ID = "k8s-footprint:run-id"
EXPIRES = "k8s-footprint:expires-at"
LIVE_STATES = ["pending", "running", "stopping", "stopped"]


@dataclass(frozen=True)
class Doomed:
    region: str
    kind: str  # instance, security-group, key-pair
    id: str
    stack: str
    reason: str
    name: str = ""  # key pairs are deleted by name, which every EC2 API implementation accepts


def _tags(items: Sequence[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def reason_to_reap(tags: dict[str, str], now: datetime, live_stacks: set[str] | None,
                   run_ids: frozenset[str] = frozenset()) -> str | None:
    if tags.get(RUN_ID) in run_ids:
        return f"run id {tags[RUN_ID]}"
    expires = tags.get(EXPIRES)
    try:
        when = datetime.strptime(expires or "", "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except ValueError:
        return f"no readable {EXPIRES} tag ({expires!r})"
    if when <= now:
        return f"expired at {expires}"
    if live_stacks is not None and tags.get(STACK) not in live_stacks:
        return f"stack {tags.get(STACK)!r} no longer exists"
    return None


def find(ec2: Any, region: str, now: datetime, live_stacks: set[str] | None,
         run_ids: frozenset[str] = frozenset()) -> list[Doomed]:
    managed = [{"Name": "tag-key", "Values": [MANAGED]}]
    found: list[Doomed] = []
    for page in ec2.get_paginator("describe_instances").paginate(
            Filters=[*managed, {"Name": "instance-state-name", "Values": LIVE_STATES}]):
        for reservation in page["Reservations"]:
            for inst in reservation["Instances"]:
                tags = _tags(inst.get("Tags"))
                if why := reason_to_reap(tags, now, live_stacks, run_ids):
                    found.append(Doomed(region, "instance", inst["InstanceId"], tags.get(STACK, "?"), why))
    for page in ec2.get_paginator("describe_security_groups").paginate(Filters=managed):
        for group in page["SecurityGroups"]:
            tags = _tags(group.get("Tags"))
            if why := reason_to_reap(tags, now, live_stacks, run_ids):
                found.append(Doomed(region, "security-group", group["GroupId"], tags.get(STACK, "?"), why))
    for key in ec2.describe_key_pairs(Filters=managed)["KeyPairs"]:
        tags = _tags(key.get("Tags"))
        if why := reason_to_reap(tags, now, live_stacks, run_ids):
            found.append(Doomed(region, "key-pair", key["KeyPairId"], tags.get(STACK, "?"), why, key["KeyName"]))
    return found


def delete(ec2: Any, doomed: Sequence[Doomed], wait_seconds: int = 600) -> list[str]:
    """Remove in dependency order; returns the failures (empty when all went)."""
    failures: list[str] = []
    instances = [d.id for d in doomed if d.kind == "instance"]
    if instances:
        ec2.terminate_instances(InstanceIds=instances)
        print(f"terminating {len(instances)} instance(s): {', '.join(instances)}", flush=True)
        delay = max(1, min(10, wait_seconds // 10))
        try:
            ec2.get_waiter("instance_terminated").wait(
                InstanceIds=instances, WaiterConfig={"Delay": delay, "MaxAttempts": max(1, wait_seconds // delay)})
            print(f"terminated {', '.join(instances)}", flush=True)
        except Exception as exc:
            failures.append(f"instances {', '.join(instances)} not terminated within {wait_seconds} s: {exc}")
    for d in doomed:
        try:
            if d.kind == "security-group":
                ec2.delete_security_group(GroupId=d.id)
            elif d.kind == "key-pair":
                ec2.delete_key_pair(KeyName=d.name)
            else:
                continue
            print(f"deleted {d.kind} {d.id} ({d.region}, stack {d.stack})", flush=True)
        except Exception as exc:
            failures.append(f"{d.kind} {d.id} ({d.region}): {exc}")
    return failures


ROOT = Path(__file__).resolve().parent.parent


def project_backend(environ: dict[str, str]) -> str:
    """The backend this project's stacks live in: the rule fleet.driver and the Makefile use."""
    return environ.get("PULUMI_BACKEND_URL") or f"file://{ROOT / '.pulumi-state'}"


def live_stacks_from_pulumi(backend: str) -> set[str] | None:
    if shutil.which("pulumi") is None:
        return None
    if backend.startswith("file://") and not Path(backend[len("file://"):]).is_dir():
        # No state here at all (a fresh CI job): an empty list would make every stack look orphaned.
        print(f"warning: no state at {backend}; the live stacks are unknown", file=sys.stderr)
        return None
    env = {**os.environ, "PULUMI_BACKEND_URL": backend, "PULUMI_SKIP_UPDATE_CHECK": "true"}
    proc = subprocess.run(["pulumi", "stack", "ls", "--all", "--json"], capture_output=True, text=True,
                          timeout=120, check=False, env=env, cwd=ROOT)
    if proc.returncode != 0:
        print(f"warning: pulumi stack ls failed ({proc.stderr.strip()[:200]}); judging by expiry only",
              file=sys.stderr)
        return None
    return {s["name"].split("/")[-1] for s in json.loads(proc.stdout)}


def main(argv: Sequence[str] | None = None, session: Any = None, now: datetime | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fleet.reaper", description=__doc__.splitlines()[0])
    parser.add_argument("--regions", nargs="+", required=True)
    parser.add_argument("--run-id", nargs="+", default=[], dest="run_ids",
                        help="reap these runs' resources whatever their expiry (a run whose state is gone)")
    parser.add_argument("--live-stacks", nargs="*",
                        help="stack names still in use (default: pulumi stack ls on this project's backend)")
    parser.add_argument("--delete", action="store_true", help="remove what was found (default: list only)")
    parser.add_argument("--wait-seconds", type=int, default=600, help="how long to wait for instances to end")
    args = parser.parse_args(argv)
    if args.live_stacks is not None:
        live: set[str] | None = set(args.live_stacks)
    else:
        backend = project_backend(dict(os.environ))
        live = live_stacks_from_pulumi(backend)
        if live is not None:
            print(f"live stacks from {backend}: {', '.join(sorted(live)) or '(none)'}", file=sys.stderr)
    if live is None:
        print("note: live stacks unknown (no --live-stacks, no pulumi CLI or no state); reaping by "
              f"{'run id and ' if args.run_ids else ''}expiry only", file=sys.stderr)
    if session is None:
        import boto3

        session = boto3.session.Session()
    moment = now or datetime.now(UTC)
    failures: list[str] = []
    total = 0
    for region in args.regions:
        ec2 = session.client("ec2", region_name=region)
        doomed = find(ec2, region, moment, live, frozenset(args.run_ids))
        total += len(doomed)
        for d in doomed:
            print(f"{'reap' if args.delete else 'would reap'} {d.region} {d.kind} {d.id} (stack {d.stack}): {d.reason}")
        if args.delete and doomed:
            failures += delete(ec2, doomed, args.wait_seconds)
    if not total:
        print("nothing to reap")
    elif not args.delete:
        print(f"{total} resource(s) would be reaped; run again with --delete to remove them")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
