"""Synthetic results with per-sample series, in the shape the kit is to print (issue 13, "Timeline"):
columnar `phases.<phase>.series` of equal lengths on one clock (seconds since the install started),
`phases.<phase>.psi_some_avg10` {median, max}, and `events` [{t_s, kind, detail}].

No kit prints these yet; the numbers are made up to look like a Kubernetes cell that runs out of
memory under MySQL, and are used only to exercise the drawing.
"""

from __future__ import annotations

import copy
import statistics
from typing import Any

from tests.unit.test_statuses import v2_result

INTERVAL_S = 5


def _phase(start: float, n: int, used: list[float], api: list[float | None] | None, mem_total: float
           ) -> dict[str, Any]:
    t_s = [start + INTERVAL_S * i for i in range(n)]
    psi = [None if i == 0 else round(max(0.0, (u - 600) / 40), 2) for i, u in enumerate(used)]
    series: dict[str, Any] = {
        "t_s": t_s, "used_mib": used, "available_mib": [round(mem_total - u, 1) for u in used],
        "pcp_free_mib": [12.0] * n, "psi_some_avg10": psi,
        "anon_mib": [round(u * 0.55, 1) for u in used], "file_mib": [round(u * 0.3, 1) for u in used],
    }
    if api is not None:
        series["api_ms"] = api

    def stats(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"median": statistics.median(values), "p95": ordered[max(0, -(-95 * n // 100) - 1)],
                "min": ordered[0], "max": ordered[-1]}

    known = [p for p in psi if p is not None]
    return {"samples": n, "interval_s": INTERVAL_S, "used_mib": stats(used),
            "available_mib": stats(series["available_mib"]), "used_legacy_mib": {"median": used[0] * 0.6},
            "pcp_free_mib": {"median": 12.0, "max": 12.0}, "cgroups_mib": {}, "top_processes": [],
            "psi_some_avg10": {"median": statistics.median(known), "max": max(known)}, "series": series}


def k3s_oom(cell: str = "x86_64-k3s-1") -> dict[str, Any]:
    """A k3s cell: installs, settles, deploys MySQL, is OOM-killed; the API fails for 30 s after."""
    r = v2_result(cell, "ok")
    mem_total = r["mem_total_mib"]
    os_used = [180.0 + (i % 3) for i in range(12)]
    idle_used = [560.0 + (i * 7) % 11 for i in range(24)]
    idle_api: list[float | None] = [40.0 + (i * 13) % 30 for i in range(24)]
    work_used = [min(mem_total - 20, 600.0 + 12 * i) for i in range(30)]
    work_api: list[float | None] = [60.0 + 9 * i for i in range(30)]
    for i in range(18, 24):  # the API stops answering around the OOM kill
        work_api[i] = None
    r["phases"] = {"os": _phase(0, 12, os_used, None, mem_total),
                   "idle": _phase(150, 24, idle_used, idle_api, mem_total),
                   "workload": _phase(330, 30, work_used, work_api, mem_total)}
    r["phases"]["os"]["series"]["t_s"] = [-60.0 + INTERVAL_S * i for i in range(12)]  # before the install
    r["events"] = [
        {"t_s": 0, "kind": "install_start", "detail": None},
        {"t_s": 95, "kind": "install_end", "detail": None},
        {"t_s": 128, "kind": "ready", "detail": None},
        {"t_s": 300, "kind": "workload_deployed", "detail": "mysql:8.4"},
        {"t_s": 365, "kind": "workload_ready", "detail": None},
        {"t_s": 418, "kind": "oom_kill", "detail": "mysqld"},
        {"t_s": 420, "kind": "api_first_failure", "detail": "curl: (28) Operation timed out"},
        {"t_s": 445, "kind": "api_last_failure", "detail": "curl: (28) Operation timed out"},
    ]
    r["status"], r["oom_kills"] = "oom", 1
    r["failures"] = [{"status": "oom", "phase": "workload", "at": 418, "error": "mysqld killed"}]
    r["oom_kills_by_phase"] = {"bootstrap": 0, "idle": 0, "workload": 1}
    return r


def docker_fits(cell: str = "x86_64-docker-1") -> dict[str, Any]:
    """A Docker cell that fits: no API to probe, so no api_ms column."""
    r = copy.deepcopy(k3s_oom(cell))
    r["distro"], r["api"], r["status"], r["oom_kills"], r["failures"] = "docker", None, "ok", 0, []
    r["oom_kills_by_phase"] = {"bootstrap": 0, "idle": 0, "workload": 0}
    for name, phase in r["phases"].items():
        phase["series"].pop("api_ms", None)
        base = {"os": 180.0, "idle": 230.0, "workload": 400.0}[name]
        used = [base + (i % 4) for i in range(len(phase["series"]["t_s"]))]
        phase["series"]["used_mib"] = used
        phase["used_mib"] = {"median": statistics.median(used), "p95": max(used), "min": min(used), "max": max(used)}
    r["events"] = [e for e in r["events"] if e["kind"] not in ("oom_kill", "api_first_failure", "api_last_failure")]
    return r
