"""Reading the guest kit's output, and the stack's markdown summary of it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

RESULT_SCHEMA = "k8s-footprint/result/v1"
BOOTSTRAP_SCHEMA = "k8s-footprint/bootstrap/v1"
STATUSES = ("ok", "install_failed", "not_ready", "workload_failed", "api_unresponsive", "oom")


class ResultError(ValueError):
    """The kit printed something that is not a result: an infrastructure failure, not a distro's."""


def _parse(stdout: str, schema: str, cell: str) -> dict[str, Any]:
    text = (stdout or "").strip()
    # The document is the last line: anything before it came from a step we don't control.
    last = text.splitlines()[-1] if text else ""
    try:
        doc = json.loads(last)
    except json.JSONDecodeError:
        raise ResultError(
            f"{cell}: the guest kit printed no JSON result; its output ended with: {text[-300:]!r}") from None
    if not isinstance(doc, dict) or doc.get("schema") != schema:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ResultError(f"{cell}: expected a {schema} document, got {got!r}")
    if doc.get("status") not in STATUSES:
        raise ResultError(f"{cell}: status {doc.get('status')!r} is not one of {', '.join(STATUSES)}")
    return doc


def parse_result(stdout: str, cell: str) -> dict[str, Any]:
    doc = _parse(stdout, RESULT_SCHEMA, cell)
    if doc.get("cell") not in (None, cell):
        raise ResultError(f"{cell}: the result is for cell {doc.get('cell')!r}")
    return doc


def parse_bootstrap(stdout: str, cell: str) -> dict[str, Any]:
    return _parse(stdout, BOOTSTRAP_SCHEMA, cell)


def _used(result: Mapping[str, Any], phase: str) -> str:
    data = (result.get("phases") or {}).get(phase)
    if not data or not data.get("used_mib"):
        return "-"
    return f"{data['used_mib']['median']:.0f}"


def _api(result: Mapping[str, Any]) -> str:
    api = result.get("api")
    if not api:
        return "-"
    parts = []
    for phase in ("idle", "workload"):
        probe = api.get(phase)
        if probe is None:
            parts.append("-")
        elif probe.get("ok"):
            parts.append(f"{probe['latency_ms']} ms")
        else:
            parts.append("failed")
    return " / ".join(parts)


def summary_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per cell: status and median used MiB (MemTotal - MemAvailable) per phase."""
    lines = [
        "| cell | status | os MiB | idle MiB | workload MiB | API idle / workload | OOM kills |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for cell in sorted(results):
        r = results[cell]
        lines.append(f"| {cell} | {r['status']} | {_used(r, 'os')} | {_used(r, 'idle')} | {_used(r, 'workload')} "
                     f"| {_api(r)} | {r.get('oom_kills', 0)} |")
    return "\n".join(lines) + "\n"
