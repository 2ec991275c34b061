"""Reading the guest kit's output, and the stack's markdown summary of it."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

RESULT_SCHEMA_V1 = "k8s-footprint/result/v1"
RESULT_SCHEMA_V2 = "k8s-footprint/result/v2"
RESULT_SCHEMA = RESULT_SCHEMA_V2  # what the kit prints today
RESULT_SCHEMAS = (RESULT_SCHEMA_V1, RESULT_SCHEMA_V2)
BOOTSTRAP_SCHEMA = "k8s-footprint/bootstrap/v1"

# The one status table lives in the kit, which reads it on the guest; this side reads the same file.
STATUS_TABLE = Path(__file__).resolve().parent.parent / "benchmarks" / "guest" / "statuses"
# The one list of event kinds, also read by the kit (lib/events.awk) and checked against the schema.
EVENT_KINDS_FILE = STATUS_TABLE.with_name("events")
NO_RESULT = "no_result"
# A cell's result in the stack output stays within this many bytes (issue 13); its series are
# thinned further, evenly, until it does. The kit already keeps at most SERIES_MAX_POINTS a phase.
CELL_OUTPUT_MAX_BYTES = 64 * 1024
SERIES_MAX_POINTS = 240


def _read_status_table(path: Path = STATUS_TABLE) -> tuple[str, ...]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return tuple(line for line in lines if line and not line.startswith("#"))


FAILURE_RANKING = _read_status_table()  # highest first
EVENT_KINDS = _read_status_table(EVENT_KINDS_FILE)
STATUSES = ("ok", *FAILURE_RANKING)  # what a kit can report, v1 and v2 alike
STATUSES_V2 = (*STATUSES, NO_RESULT)


class ResultError(ValueError):
    """The kit printed something that is not a result: an infrastructure failure, not a distro's."""


def worst_status(failures: Iterable[str]) -> str:
    """The highest-ranked of the failures, or ok: how a v2 result's status follows from its failures."""
    seen = set(failures)
    unknown = seen - set(FAILURE_RANKING)
    if unknown:
        raise ValueError(f"not a failure status: {', '.join(sorted(unknown))}")
    return next((s for s in FAILURE_RANKING if s in seen), "ok")


def _parse(stdout: str, schemas: tuple[str, ...], cell: str) -> dict[str, Any]:
    text = (stdout or "").strip()
    # The document is the last line: anything before it came from a step we don't control.
    last = text.splitlines()[-1] if text else ""
    try:
        doc = json.loads(last)
    except json.JSONDecodeError:
        raise ResultError(
            f"{cell}: the guest kit printed no JSON result; its output ended with: {text[-300:]!r}") from None
    if not isinstance(doc, dict) or doc.get("schema") not in schemas:
        got = doc.get("schema") if isinstance(doc, dict) else type(doc).__name__
        raise ResultError(f"{cell}: expected a {' or '.join(schemas)} document, got {got!r}")
    allowed = STATUSES_V2 if doc["schema"] == RESULT_SCHEMA_V2 else STATUSES
    if doc.get("status") not in allowed:
        raise ResultError(f"{cell}: status {doc.get('status')!r} is not one of {', '.join(allowed)}")
    return doc


def no_result(cell: str, error: str, **known: Any) -> dict[str, Any]:
    """The minimal v2 document for a cell that produced no result (result-v2.json, $defs/noResult)."""
    extra = {k: v for k, v in known.items() if k in ("kit_version", "distro", "arch")}
    return {"schema": RESULT_SCHEMA_V2, "status": NO_RESULT, "cell": cell, "error": error, **extra}


def parse_result(stdout: str, cell: str) -> dict[str, Any]:
    """The cell's result as the program keeps it: output that is no result becomes that cell's
    no_result, with the reason. It runs inside an apply, where an exception would fail the whole
    update and so lose every other cell's result (see components/commands.py:no_result_guard)."""
    try:
        return bound_result(read_result(stdout, cell))
    except ResultError as exc:
        return no_result(cell, str(exc))


def output_size(doc: Mapping[str, Any]) -> int:
    """A result's size in the stack output: its JSON in UTF-8, with json.dumps's spaces (a little
    more than a compact form, so the bound holds for either)."""
    return len(json.dumps(doc).encode())


def evenly(n: int, m: int) -> list[int]:
    """m indices out of range(n), evenly spaced, the first and the last kept: the choice the kit's
    stats.awk (pick) makes, so thinning twice thins as once would."""
    if m >= n:
        return list(range(n))
    if m < 2:
        return [n - 1]
    return [int(k * (n - 1) / (m - 1) + 0.5) for k in range(m)]


def _thinned(doc: Mapping[str, Any], points: int) -> dict[str, Any]:
    out = dict(doc)
    phases = dict(doc.get("phases") or {})
    for name, phase in phases.items():
        if not isinstance(phase, Mapping) or not isinstance(phase.get("series"), Mapping):
            continue
        phase = dict(phase)
        if points == 0:
            del phase["series"]
        else:
            series = phase["series"]
            n = max((len(v) for v in series.values()), default=0)
            keep = evenly(n, points)
            phase["series"] = {k: [v[i] for i in keep] for k, v in series.items()}
        phases[name] = phase
    out["phases"] = phases
    out["series_thinned_to"] = points
    return out


def bound_result(doc: dict[str, Any], limit: int = CELL_OUTPUT_MAX_BYTES) -> dict[str, Any]:
    """The result within `limit` bytes: unchanged when it fits; else every phase's series thinned
    evenly to the most points that fit (series_thinned_to says how many), or dropped (0) when even
    two points a phase do not fit."""
    if output_size(doc) <= limit:
        return doc
    phases = doc.get("phases") or {}
    longest = max((len(v) for p in phases.values() if isinstance(p, Mapping) and isinstance(p.get("series"), Mapping)
                   for v in p["series"].values()), default=0)
    if longest < 2:
        return doc  # nothing to thin: the series are not what makes it big
    lo, hi = 2, longest - 1  # the most points that fit lies in [lo, hi], if any does
    if output_size(_thinned(doc, lo)) > limit:
        return _thinned(doc, 0)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if output_size(_thinned(doc, mid)) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return _thinned(doc, lo)


def read_result(stdout: str, cell: str) -> dict[str, Any]:
    """A v1 or v2 result, strictly: ResultError when it isn't one. A v2 status must be the
    highest-ranked of its failures."""
    doc = _parse(stdout, RESULT_SCHEMAS, cell)
    if doc.get("cell") not in (None, cell):
        raise ResultError(f"{cell}: the result is for cell {doc.get('cell')!r}")
    if doc["schema"] == RESULT_SCHEMA_V2 and doc["status"] != NO_RESULT:
        failures = doc.get("failures")
        if not isinstance(failures, list) or not all(isinstance(f, dict) for f in failures):
            raise ResultError(f"{cell}: a v2 result needs a 'failures' list")
        try:
            expected = worst_status(str(f.get("status")) for f in failures)
        except ValueError as exc:
            raise ResultError(f"{cell}: {exc}") from None
        if doc["status"] != expected:
            raise ResultError(f"{cell}: status {doc['status']!r} but its failures rank {expected!r} highest")
    return doc


def parse_bootstrap(stdout: str, cell: str) -> dict[str, Any]:
    return _parse(stdout, (BOOTSTRAP_SCHEMA,), cell)


def _used(result: Mapping[str, Any], phase: str) -> str:
    data = (result.get("phases") or {}).get(phase)
    if not data or not data.get("used_mib"):
        return "-"
    return f"{data['used_mib']['median']:.0f}"


def api_phase_text(result: Mapping[str, Any], phase: str) -> str:
    """One phase of the API probe as text, for a v1 result (one probe) or a v2 one (a probe per sample)."""
    api = result.get("api")
    probe = api.get(phase) if api else None
    if probe is None:
        return "-"
    if "probes" not in probe:  # v1: one probe at the end of the phase
        return f"{probe['latency_ms']} ms" if probe.get("ok") else "failed"
    lat = probe["latency_ms"]
    text = f"p50 {lat['p50']} / p95 {lat['p95']} / max {lat['max']} ms" if lat else "no answer"
    if probe["failed"]:
        text += f", {probe['failed']}/{probe['probes']} failed"
    return text


def _api(result: Mapping[str, Any]) -> str:
    if not result.get("api"):
        return "-"
    return " / ".join(api_phase_text(result, phase) for phase in ("idle", "workload"))


def summary_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per cell: status and median used MiB (MemTotal - MemAvailable) per phase."""
    lines = [
        "| cell | status | os MiB | idle MiB | workload MiB | API idle / workload | OOM kills |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for cell in sorted(results):
        r = results[cell]
        if r["status"] == NO_RESULT:
            lines.append(f"| {cell} | no_result: {r.get('error', '')} | - | - | - | - | - |")
            continue
        lines.append(f"| {cell} | {r['status']} | {_used(r, 'os')} | {_used(r, 'idle')} | {_used(r, 'workload')} "
                     f"| {_api(r)} | {r.get('oom_kills', 0)} |")
    return "\n".join(lines) + "\n"
