"""Does a distro fit on a machine of a given size? One verdict per cell, from its result alone.

- `fits`: installed, ready, the workload ready, the API answering in every probe, no OOM kill;
- `tight`: fits, but less than the headroom stays available at the workload's p95 (the idle
  phase's without a workload), or memory pressure (PSI `some avg10`) stalled tasks, where the
  result has it;
- `no`: the reason is the cell's status, the highest-ranked failure in the one status table
  (benchmarks/guest/statuses, read by components/results.py).

The stack's `fit` output and the report's fit matrix are both built here, from v1 and v2 results.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from components.config import DEFAULT_FIT_HEADROOM_MIB
from components.results import FAILURE_RANKING, NO_RESULT, worst_status

DEFAULT_HEADROOM_MIB = DEFAULT_FIT_HEADROOM_MIB  # fitHeadroomMiB's default; the report uses it

VERDICTS = ("fits", "tight", "no")  # best first
# PSI memory `some avg10` at or above this (percent of time some task stalled on memory) is tight.
PSI_TIGHT_PCT = 10.0
# The result field the kit records PSI in, per phase: {"max": ..., ...}; absent before it does.
PSI_FIELD = "psi_some_avg10"
SIZE_IN_NAME = re.compile(r"-(\d+)m-\d+$")


@dataclass(frozen=True)
class Verdict:
    verdict: str  # one of VERDICTS
    reason: str  # fits: ok; tight: headroom or pressure; no: the status
    used_mib: float | None  # median used MiB of the last phase measured (workload, else idle)
    available_p95_mib: float | None  # MemTotal minus the p95 of used, in that phase
    psi_max: float | None

    def as_output(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "usedMiB": self.used_mib,
                "availableAtP95MiB": self.available_p95_mib, "psiSomeAvg10Max": self.psi_max}


def _failures_in_data(result: Mapping[str, Any]) -> set[str]:
    """Failures the figures show, whatever the status says (a v1 kit ranked them differently)."""
    found = set()
    if (result.get("oom_kills") or 0) > 0:
        found.add("oom")
    api = result.get("api") or {}
    if api.get("failed_probes"):
        found.add("api_unresponsive")
    for phase in ("idle", "workload"):
        probe = api.get(phase) or {}
        if probe.get("failed") or probe.get("ok") is False:
            found.add("api_unresponsive")
    workload = result.get("workload")
    if isinstance(workload, Mapping) and workload.get("ready") is False:
        found.add("workload_failed")
    return found & set(FAILURE_RANKING)


def verdict(result: Mapping[str, Any], headroom_mib: float) -> Verdict:
    """The fit verdict of one cell's result (v1 or v2)."""
    status = str(result.get("status"))
    if status == NO_RESULT:
        return Verdict("no", NO_RESULT, None, None, None)
    failures = _failures_in_data(result)
    if status != "ok":
        failures.add(status)
    phases = result.get("phases") or {}
    phase = phases.get("workload") or phases.get("idle") or {}
    used = phase.get("used_mib") or {}
    used_median = used.get("median")
    total = result.get("mem_total_mib")
    available = round(total - used["p95"], 1) if total is not None and used.get("p95") is not None else None
    psi = (phase.get(PSI_FIELD) or {}).get("max")
    if failures:
        return Verdict("no", worst_status(failures), used_median, available, psi)
    if not phase:  # ok, yet nothing measured: not a fit anyone can read
        return Verdict("no", "not_ready", None, None, None)
    if available is not None and available < headroom_mib:
        return Verdict("tight", "headroom", used_median, available, psi)
    if psi is not None and psi >= PSI_TIGHT_PCT:
        return Verdict("tight", "pressure", used_median, available, psi)
    return Verdict("fits", "ok", used_median, available, psi)


def nominal_size(result: Mapping[str, Any]) -> int | None:
    """The machine's size in MiB for a result without a known size: a sweep's cell names it;
    otherwise MemTotal (which the kernel trims by a few percent) rounded up to 128 MiB."""
    match = SIZE_IN_NAME.search(str(result.get("cell") or ""))
    if match:
        return int(match.group(1))
    total = result.get("mem_total_mib")
    return int(math.ceil(float(total) / 128) * 128) if total else None


@dataclass(frozen=True)
class FitCell:
    arch: str
    distro: str
    memory_mib: int
    verdict: Verdict


def _combine(verdicts: Sequence[Verdict]) -> dict[str, Any]:
    """Repetitions at one size: the worst verdict stands; used is the median of their medians."""
    worst = max(verdicts, key=lambda v: VERDICTS.index(v.verdict))
    used = [v.used_mib for v in verdicts if v.used_mib is not None]
    return {**worst.as_output(), "usedMiB": round(statistics.median(used), 1) if used else None,
            "repetitions": len(verdicts)}


def fit_table(cells: Iterable[FitCell]) -> dict[str, dict[str, dict[str, Any]]]:
    """arch -> distro -> {smallestFitMiB, sizes: {MiB: verdict}}. Tight counts as fitting; a size
    no cell tried is absent, never guessed."""
    grouped: dict[str, dict[str, dict[int, list[Verdict]]]] = {}
    for c in cells:
        grouped.setdefault(c.arch, {}).setdefault(c.distro, {}).setdefault(c.memory_mib, []).append(c.verdict)
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for arch, distros in sorted(grouped.items()):
        for distro, sizes in distros.items():
            combined = {size: _combine(sizes[size]) for size in sorted(sizes)}
            smallest = next((s for s, v in combined.items() if v["verdict"] != "no"), None)
            out.setdefault(arch, {})[distro] = {"smallestFitMiB": smallest,
                                                "sizes": {str(s): v for s, v in combined.items()}}
    return out


def fit_output(cells: Iterable[tuple[str, str, str, int | None]], results: Mapping[str, Mapping[str, Any]],
               headroom_mib: float) -> dict[str, dict[str, dict[str, Any]]]:
    """The stack's `fit` output from (cell, arch, distro, size) and the results by cell. A size of
    None (the hosts backend) takes the host's real MemTotal from its result."""
    fit_cells = []
    for name, arch, distro, size in cells:
        result = results[name]
        if size is None:
            total = result.get("mem_total_mib")
            if total is None:
                continue  # no result, no MemTotal: nothing to place on the size axis
            size = round(float(total))
        fit_cells.append(FitCell(arch, distro, size, verdict(result, headroom_mib)))
    return fit_table(fit_cells)


def cell_label(v: Mapping[str, Any]) -> str:
    """One verdict (as_output's form) as a fit matrix shows it: `fits, 197`, `no (oom), 106`."""
    label = v["verdict"] if v["verdict"] == "fits" else f"{v['verdict']} ({v['reason']})"
    return label + (f", {v['usedMiB']:.0f}" if v.get("usedMiB") is not None else "")


def fit_markdown(results: Iterable[Mapping[str, Any]], headroom_mib: float,
                 distro_order: Sequence[str] = ()) -> str:
    """The fit matrix, one table per arch: distro rows, size columns, verdict and median used MiB.
    Computed from the results themselves, so older ones get a verdict too. A no_result that names
    its arch, distro and sized cell (a VM sweep's guest that never answered) was tried: `no (no_result)`."""
    cells = []
    for r in results:
        size = nominal_size(r)
        if size is None or not r.get("arch") or not r.get("distro"):
            continue
        cells.append(FitCell(str(r["arch"]), str(r["distro"]), size, verdict(r, headroom_mib)))
    table = fit_table(cells)
    order = {d: i for i, d in enumerate(distro_order)}
    lines = [f"Fit: fits, tight (less than {headroom_mib:g} MiB available at the workload's p95, or memory "
             f"pressure), or no (the cell's status); median used MiB. Blank: not tried."]
    for arch, distros in table.items():
        sizes = sorted({int(s) for d in distros.values() for s in d["sizes"]})
        lines += ["", f"{arch}:", "", "| distro | " + " | ".join(f"{s} MiB" for s in sizes) + " | smallest fit |",
                  "|---|" + "---|" * (len(sizes) + 1)]
        for distro in sorted(distros, key=lambda d: (order.get(d, 99), d)):
            row = distros[distro]
            shown = []
            for s in sizes:
                v = row["sizes"].get(str(s))
                if v is None:
                    shown.append("")
                    continue
                shown.append(cell_label(v))
            smallest = row["smallestFitMiB"]
            lines.append(f"| {distro} | " + " | ".join(shown) + f" | {f'{smallest} MiB' if smallest else '-'} |")
    return "\n".join(lines) + "\n"
