"""From results to answers: a table, a chart and an HTML page; and a comparison against a baseline.

    python -m benchmarks.report RESULTS... [--markdown F] [--png F] [--html F] [--baseline OLD...]
                                [--kit K...] [--backend B...] [--exclude-faults]

RESULTS are `pulumi stack output --json` files (or - for stdin), result JSON files, or folders of
them. Repetitions of a (distro, arch) are pooled only within one setup: the same kit (version and
content hash), backend, machine and acceleration; what a result doesn't record is "unknown", and a
report with several setups says so. With --baseline, a change is flagged only when it passes both
a threshold and the spread, net of the free pages on the per-CPU lists, and the exit code is 3 when
something got heavier.
"""

from __future__ import annotations

import argparse
import base64
import html
import itertools
import json
import math
import statistics
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import timeline
from components import distros as distro_table
from components import fit
from components.results import NO_RESULT, RESULT_SCHEMAS

# The 2022 figures (seed 004, quoted in benchmarks/results/seed-2022/README.md: Ubuntu Minimal, 1 GB,
# `free -m` used, procps 3.3's formula).
SEED_2022 = {"bare": 167, "docker": 216, "k0s": 658, "k3s": 750, "microk8s": 685, "microk8s-noha": 526}
SEED_2022_WORKLOAD = {"docker": 396}
DISTRO_ORDER = distro_table.ORDER  # benchmarks/guest/distros.tsv
EXIT_WORSE = 3
ALPHA = 0.05  # the one-sided Mann-Whitney test's level in compare()


class ReportError(ValueError):
    """Unreadable or wrong input; the message names the file and the field."""


# ---- reading -----------------------------------------------------------------------------------

def _validate(doc: Any, where: str) -> dict[str, Any]:
    import jsonschema

    from components.schema import schema_for

    try:
        jsonschema.validate(doc, schema_for(doc), cls=jsonschema.Draft202012Validator)
    except jsonschema.ValidationError as exc:
        field_path = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise ReportError(f"{where}: field {field_path}: {exc.message}") from None
    return dict(doc)


def results_in(doc: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(doc, dict) and doc.get("schema") in RESULT_SCHEMAS:
        return [_validate(doc, where)]
    if isinstance(doc, dict) and isinstance(doc.get("results"), dict):  # pulumi stack output --json
        return [_validate(r, f"{where}: results.{cell}") for cell, r in doc["results"].items()]
    if isinstance(doc, list):
        return [r for i, item in enumerate(doc) for r in results_in(item, f"{where}[{i}]")]
    got = doc.get("schema", "no schema field") if isinstance(doc, dict) else type(doc).__name__
    raise ReportError(f"{where}: not a result ({' or '.join(RESULT_SCHEMAS)}) nor stack outputs with 'results' "
                      f"(got {got})")


def _load_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ReportError(f"{where}: not JSON ({exc.msg} at line {exc.lineno})") from None


def load_sourced(paths: Sequence[str], stdin: Any = None) -> list[tuple[dict[str, Any], str]]:
    """Every result in the given files and folders, with the file it came from. Folders contribute
    only files that are results."""
    results: list[tuple[dict[str, Any], str]] = []
    for name in paths:
        if name == "-":
            results += [(r, "<stdin>") for r in results_in(_load_json((stdin or sys.stdin).read(), "<stdin>"),
                                                           "<stdin>")]
            continue
        path = Path(name)
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                doc = _load_json(file.read_text(), str(file))
                if isinstance(doc, dict) and (doc.get("schema") in RESULT_SCHEMAS or "results" in doc):
                    results += [(r, str(file)) for r in results_in(doc, str(file))]
            continue
        try:
            text = path.read_text()
        except OSError as exc:
            raise ReportError(f"{name}: cannot read ({exc.strerror})") from None
        results += [(r, name) for r in results_in(_load_json(text, name), name)]
    if not results:
        raise ReportError(f"no results found in {', '.join(paths)}")
    return results


def load(paths: Sequence[str], stdin: Any = None) -> list[dict[str, Any]]:
    """Every result in the given files and folders. Folders contribute only files that are results."""
    return [r for r, _ in load_sourced(paths, stdin)]


# ---- what makes results comparable -------------------------------------------------------------

UNKNOWN = "unknown"
BACKENDS = ("aws", "libvirt", "hosts", "qemu", UNKNOWN)
# The VM test harness names a fault run's file <date>-<arch>-fault-<name>-kit<version>.json
# (tests/vm/conftest.py:save_result, called with "fault-oom" and "fault-docker-stopped"); results
# from kit 0.3.1 on say so themselves, in provenance.fault.
FAULT_FILE_MARK = "-fault-"


def _provenance(result: dict[str, Any]) -> dict[str, Any]:
    return dict(result.get("provenance") or {})


@dataclass(frozen=True, order=True)
class Setup:
    """What two results must share to be compared: the kit (its version and content hash), the
    backend, the machine asked for, and the acceleration the guest saw. What a result does not
    record is "unknown", never a guess: a v1 result knows only its kit_version."""

    kit: str
    backend: str
    machine: str
    accel: str

    @classmethod
    def of(cls, result: dict[str, Any]) -> Setup:
        prov = _provenance(result)
        version = str(result.get("kit_version") or UNKNOWN)
        digest = prov.get("kit_hash")
        machine = dict(prov.get("machine") or {})
        backend = str(machine.get("backend") or UNKNOWN)
        guest = dict(prov.get("guest") or {})
        if backend == "aws" and machine.get("instance_type"):
            what = str(machine["instance_type"])
        elif backend in ("libvirt", "qemu") and machine.get("memory_mib"):
            what = f"{machine['memory_mib']} MiB, {machine.get('vcpus') or '?'} vCPU"
        elif backend == "hosts" and machine.get("host"):
            what = f"host {machine['host']}, {guest.get('vcpus') or '?'} vCPU"
        else:
            what = UNKNOWN
        accel = str(guest.get("accel") or UNKNOWN)
        if accel == "hypervisor":
            accel = f"hypervisor ({guest.get('virt') or UNKNOWN})"
        return cls(f"{version} ({digest})" if digest else f"{version} (hash {UNKNOWN})", backend, what, accel)

    @property
    def backend_machine_accel(self) -> tuple[str, str, str]:
        """The part that must match for a comparison with a baseline; the kit may differ."""
        return self.backend, self.machine, self.accel

    def __str__(self) -> str:
        return f"kit {self.kit}; backend {self.backend}; machine {self.machine}; accel {self.accel}"


def is_fault(result: dict[str, Any], source: str = "") -> bool:
    """A run with an injected fault: it says so (provenance.fault), or the harness named its file so."""
    return bool(_provenance(result).get("fault")) or FAULT_FILE_MARK in Path(source).name


def select(sourced: Iterable[tuple[dict[str, Any], str]], kits: Sequence[str] = (), backends: Sequence[str] = (),
           exclude_faults: bool = False) -> list[dict[str, Any]]:
    """The results that pass the filters. --kit matches a kit_version exactly or a kit_hash by its
    start; --backend matches provenance.machine.backend ("unknown" where none is recorded). A filter
    that leaves nothing is an error that names what there was."""
    pairs = list(sourced)
    kept = []
    for result, source in pairs:
        if exclude_faults and is_fault(result, source):
            continue
        if backends and Setup.of(result).backend not in backends:
            continue
        if kits and not any(_kit_matches(result, k) for k in kits):
            continue
        kept.append(result)
    if pairs and not kept:
        present = sorted({f"kit {Setup.of(r).kit}, backend {Setup.of(r).backend}" for r, _ in pairs})
        asked = [f"--kit {' '.join(kits)}" if kits else "", f"--backend {' '.join(backends)}" if backends else "",
                 "--exclude-faults" if exclude_faults else ""]
        raise ReportError(f"no results left after {' '.join(a for a in asked if a)}; the inputs have: "
                          + "; ".join(present))
    return kept


def _kit_matches(result: dict[str, Any], wanted: str) -> bool:
    digest = str(_provenance(result).get("kit_hash") or "")
    return result.get("kit_version") == wanted or (len(wanted) >= 4 and digest.startswith(wanted))


# ---- the model ---------------------------------------------------------------------------------

def _median_used(result: dict[str, Any], phase: str, key: str = "used_mib") -> float | None:
    data = result["phases"].get(phase)
    if not data or not data.get(key):
        return None
    return float(data[key]["median"])


def _footprint(result: dict[str, Any], net: bool) -> float | None:
    """idle minus os on one instance; with net, each phase less its free pages on the per-CPU lists."""
    def used(phase: str) -> float | None:
        value = _median_used(result, phase)
        if not net or value is None:
            return value
        pcp = _median_used(result, phase, "pcp_free_mib")
        return None if pcp is None else value - pcp

    idle, os_ = used("idle"), used("os")
    return None if idle is None or os_ is None else idle - os_


def _mib(value: float) -> str:
    """Whole MiB; a small negative difference prints as 0, not -0."""
    text = f"{value:.0f}"
    return "0" if text == "-0" else text


def _p95(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


@dataclass(frozen=True)
class Stat:
    """Median and p95 over repetitions (of each repetition's median)."""

    median: float
    p95: float
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat | None:
        known = [v for v in values if v is not None]
        return cls(statistics.median(known), _p95(known), len(known)) if known else None

    def __str__(self) -> str:
        return f"{_mib(self.median)} [{_mib(self.p95)}]" if self.n > 1 else _mib(self.median)


@dataclass
class Row:
    distro: str
    arch: str
    results: list[dict[str, Any]] = field(default_factory=list)
    setup: Setup = Setup(UNKNOWN, UNKNOWN, UNKNOWN, UNKNOWN)

    def values(self, phase: str, key: str = "used_mib") -> list[float]:
        return [v for r in self.results if (v := _median_used(r, phase, key)) is not None]

    def net_values(self, phase: str) -> list[float] | None:
        """Each repetition's median used MiB less its median free pages on the per-CPU lists
        (MemAvailable leaves those out, so used_mib counts them); None unless every repetition
        recorded the lists (kit 0.1.3 on)."""
        nets = []
        for r in self.results:
            used, pcp = _median_used(r, phase), _median_used(r, phase, "pcp_free_mib")
            if used is None:
                continue
            if pcp is None:
                return None
            nets.append(used - pcp)
        return nets

    def stat(self, phase: str, key: str = "used_mib") -> Stat | None:
        return Stat.of(self.values(phase, key))

    @property
    def footprint(self) -> Stat | None:
        """idle minus os, on the same instance."""
        return Stat.of(_footprint(r, net=False) for r in self.results)

    @property
    def footprint_net(self) -> Stat | None:
        """The footprint less the change in free pages on the per-CPU lists (kit 0.1.3 on), which
        MemAvailable leaves out and so counts as used; None unless every repetition carries them."""
        nets = [_footprint(r, net=True) for r in self.results]
        return None if None in nets else Stat.of(nets)

    def footprint_cell(self) -> str:
        gross, net = self.footprint, self.footprint_net
        if gross is None:
            return "-"
        return f"{gross} ({net} net)" if net is not None else str(gross)

    @property
    def statuses(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        return counts

    @property
    def oom_kills(self) -> int:
        return sum(int(r["oom_kills"]) for r in self.results)

    @property
    def mem_total_mib(self) -> float:
        return statistics.median(float(r["mem_total_mib"]) for r in self.results)

    def api(self, phase: str) -> str:
        """v1 results probed once a phase; v2 results with every sample (per_sample_ms, null = failed)."""
        probes = [r["api"][phase] for r in self.results if r.get("api") and r["api"].get(phase)]
        if not probes:
            return "-"
        if all("probes" not in p for p in probes):  # v1 only
            ok = [p["latency_ms"] for p in probes if p["ok"]]
            failed = [p["error"] for p in probes if not p["ok"]]
            parts = []
            if ok:
                parts.append(f"ok {statistics.median(ok):.0f} ms" + (f" ({len(ok)}/{len(probes)})" if failed else ""))
            if failed:
                parts.append(f"failed {len(failed)}/{len(probes)}: {failed[0]}")
            return "; ".join(parts)
        latencies: list[float] = []
        errors: list[str] = []
        total = failed_n = 0
        for p in probes:
            if "probes" in p:
                latencies += [float(ms) for ms in p["per_sample_ms"] if ms is not None]
                total, failed_n = total + p["probes"], failed_n + p["failed"]
                if p["first_error"]:
                    errors.append(p["first_error"])
            else:
                total += 1
                if p["ok"]:
                    latencies.append(float(p["latency_ms"]))
                else:
                    failed_n += 1
                    errors.append(p["error"])
        text = (f"p50 {statistics.median(latencies):.0f} / p95 {_p95(latencies):.0f} / max {max(latencies):.0f} ms"
                if latencies else "no answer")
        if failed_n:
            text += f"; failed {failed_n}/{total}" + (f": {errors[0]}" if errors else "")
        return text

    @property
    def longest_outage_s(self) -> float | None:
        outages = [float(r["api"]["longest_outage_s"]) for r in self.results
                   if r.get("api") and r["api"].get("longest_outage_s") is not None]
        return max(outages) if outages else None


def build_rows(results: Iterable[dict[str, Any]]) -> list[Row]:
    """One row per (distro, arch, setup): results of different setups are never pooled. Cells that
    produced no result have no figures to pool (see no_results)."""
    rows: dict[tuple[str, str, Setup], Row] = {}
    for r in results:
        if r["status"] == NO_RESULT:
            continue
        setup = Setup.of(r)
        rows.setdefault((r["distro"], r["arch"], setup), Row(r["distro"], r["arch"], setup=setup)).results.append(r)
    order = {d: i for i, d in enumerate(DISTRO_ORDER)}
    return sorted(rows.values(), key=lambda row: (row.arch, order.get(row.distro, 99), row.distro, row.setup))


def setups(rows: Sequence[Row]) -> dict[Setup, str]:
    """Each setup in the rows and its short label (S1, S2, ...), in the setups' order (kit first)."""
    return {setup: f"S{i}" for i, setup in enumerate(sorted({row.setup for row in rows}), start=1)}


def setup_notes(rows: Sequence[Row]) -> list[str]:
    """The setups legend, and a warning when the rows mix setups."""
    labels = setups(rows)
    lines = ["Setups:", *(f"- {label}: {setup}" for setup, label in labels.items())]
    if len(labels) > 1:
        differ = [name for name, values in (("kit", {s.kit for s in labels}), ("backend", {s.backend for s in labels}),
                                            ("machine", {s.machine for s in labels}),
                                            ("accel", {s.accel for s in labels})) if len(values) > 1]
        lines[:0] = [f"**Mixed setups: {len(labels)} setups, differing in {', '.join(differ)}. Rows of "
                        "different setups are not comparable, and none is pooled with another. Narrow the "
                        "inputs with --kit, --backend or --exclude-faults.**", ""]
    return lines


def no_results(results: Iterable[dict[str, Any]]) -> list[str]:
    """A line per cell whose kit produced no result: the runner's no_result documents (schema v2)."""
    return [f"- {r['cell']}: no result ({r['error']})" for r in results if r["status"] == NO_RESULT]


def _docker_idle(rows: Sequence[Row], arch: str, setup: Setup | None = None) -> Stat | None:
    return next((row.stat("idle") for row in rows
                 if row.distro == "docker" and row.arch == arch and (setup is None or row.setup == setup)), None)


def seed_note(row: Row) -> str:
    seed = SEED_2022.get(row.distro)
    if seed is None:
        return "-"
    legacy = row.stat("idle", "used_legacy_mib")
    note = f"{seed}" + (f" (ours, same formula: {legacy.median:.0f})" if legacy else "")
    if row.distro in SEED_2022_WORKLOAD:
        note += f"; +mysql {SEED_2022_WORKLOAD[row.distro]}"
    return note


HEADER = ("| distro | arch | n | os MiB | idle MiB | workload MiB | footprint MiB | vs docker | API idle | "
          "API workload | status | OOM kills | 2022 MB | setup |")


def markdown(rows: Sequence[Row], missing: Sequence[str] = ()) -> str:
    lines = [
        "Used memory (MemTotal − MemAvailable) in MiB: median [p95] over repetitions. Footprint: idle minus "
        "the same instance's os phase; net: less the change in free pages on the kernel's per-CPU lists, "
        "which MemAvailable counts as used (results from kit 0.1.3 on). 2022 MB: the seed's `free -m` used, "
        "procps 3.3's formula (MemTotal − MemFree − Buffers − Cached − SReclaimable), shown beside ours by that "
        "formula. Setup: the rows pool only results of one setup (listed below the table); vs docker compares "
        "within one.",
        "",
        HEADER,
        "|" + "---|" * (HEADER.count("|") - 1),
    ]
    labels = setups(rows)
    for row in rows:
        docker = _docker_idle(rows, row.arch, row.setup)
        idle = row.stat("idle")
        delta = f"{idle.median - docker.median:+.0f}" if idle and docker and row.distro != "docker" else "-"
        cells = [row.distro, row.arch, str(len(row.results))]
        cells += [str(s) if (s := row.stat(p)) else "-" for p in ("os", "idle", "workload")]
        cells += [row.footprint_cell(), delta, row.api("idle"), row.api("workload")]
        cells += [", ".join(f"{k} {v}" for k, v in sorted(row.statuses.items())), str(row.oom_kills), seed_note(row)]
        cells.append(labels[row.setup])
        lines.append("| " + " | ".join(cells) + " |")
    if rows:
        lines += ["", *setup_notes(rows)]
    lines += ["", fit.fit_markdown([r for row in rows for r in row.results], fit.DEFAULT_HEADROOM_MIB,
                                   DISTRO_ORDER).rstrip()]
    if missing:
        lines += ["", "Cells without a result:", *missing]
    return "\n".join(lines) + "\n"


# The chart puts like beside like: each phase by both formulas, and the 2022 figures (procps 3.3's
# `free -m`) on the bars of procps 3.3's formula, never on those of MemAvailable's.
FORMULA_AVAILABLE = "MemTotal − MemAvailable (procps-ng 4 free)"
FORMULA_LEGACY = "MemTotal − MemFree − Buffers − Cached − SReclaimable (procps 3.3 free)"


@dataclass(frozen=True)
class Bars:
    """One series of bars on an arch's panel: a phase by one formula."""

    phase: str
    formula: str
    key: str  # the phase field it reads
    offset: float
    color: str
    hatch: str = ""


BARS = (
    Bars("idle", FORMULA_AVAILABLE, "used_mib", -0.3, "#4c78a8"),
    Bars("workload", FORMULA_AVAILABLE, "used_mib", -0.1, "#f58518"),
    Bars("idle", FORMULA_LEGACY, "used_legacy_mib", 0.1, "#9ecae9", "//"),
    Bars("workload", FORMULA_LEGACY, "used_legacy_mib", 0.3, "#ffbf79", "//"),
)
BAR_WIDTH = 0.2


@dataclass(frozen=True)
class SeedMark:
    """A 2022 figure, drawn on the bar of the same phase and formula."""

    x: float
    value: float
    phase: str
    formula: str


def seed_marks(rows: Sequence[Row]) -> list[SeedMark]:
    """Where the 2022 figures go on a panel of these rows (x: the row's index plus its bar's offset)."""
    marks = []
    for x, row in enumerate(rows):
        for seeds, phase in ((SEED_2022, "idle"), (SEED_2022_WORKLOAD, "workload")):
            if row.distro in seeds:
                bar = next(b for b in BARS if b.phase == phase and b.formula == FORMULA_LEGACY)
                marks.append(SeedMark(x + bar.offset, float(seeds[row.distro]), phase, bar.formula))
    return marks


def _figure(rows: Sequence[Row]) -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arches = sorted({r.arch for r in rows})
    labels = setups(rows)
    fig, axes = plt.subplots(1, len(arches), figsize=(7.5 * len(arches), 5.4), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], arches, strict=True):
        arch_rows = [r for r in rows if r.arch == arch]
        xs = range(len(arch_rows))
        for bars in BARS:
            stats = [r.stat(bars.phase, bars.key) for r in arch_rows]
            heights = [s.median if s else 0 for s in stats]
            errors = [(s.p95 - s.median) if s else 0 for s in stats]
            ax.bar([x + bars.offset for x in xs], heights, BAR_WIDTH, yerr=[[0] * len(errors), errors],
                   label=f"{bars.phase}: {bars.formula}", color=bars.color, hatch=bars.hatch,
                   edgecolor="#555555" if bars.hatch else None, capsize=2)
        for x, row in zip(xs, arch_rows, strict=True):
            bad = {k: v for k, v in row.statuses.items() if k != "ok"}
            if bad:
                top = max((s.median for p in ("idle", "workload") if (s := row.stat(p))), default=0)
                ax.annotate("\n".join(f"{k} ×{v}" for k, v in bad.items()), (x, top), ha="center", va="bottom",
                            fontsize=7, color="#b00020", xytext=(0, 4), textcoords="offset points")
        for mark in seed_marks(arch_rows):
            ax.plot([mark.x], [mark.value], marker="x" if mark.phase == "idle" else "+", color="black",
                    markersize=9, linestyle="none")
        total = statistics.median(r.mem_total_mib for r in arch_rows)
        ax.axhline(total, color="#b00020", linestyle="--", linewidth=1)
        ax.text(-0.45, total, f"MemTotal {total:.0f} MiB", va="bottom", ha="left", fontsize=8, color="#b00020")
        names = [r.distro + (f"\n{labels[r.setup]}" if len(labels) > 1 else "") for r in arch_rows]
        ax.set_xticks(list(xs), names, rotation=20)
        ax.set_title(arch)
        ax.set_ylabel("used MiB (median, p95 whisker)")
    axes[0][0].plot([], [], "kx", label=f"2022 idle, `free -m`: {FORMULA_LEGACY}")
    axes[0][0].plot([], [], "k+", label=f"2022 with mysql, `free -m`: {FORMULA_LEGACY}")
    handles, names = axes[0][0].get_legend_handles_labels()
    order = sorted(range(len(names)), key=lambda i: names[i].startswith("2022"))  # the bars first
    fig.legend([handles[i] for i in order], [names[i] for i in order], loc="lower center", ncol=2, fontsize=7)
    fig.tight_layout(rect=(0, 0.16, 1, 1))
    return fig


def chart(rows: Sequence[Row], out: Path) -> None:
    import matplotlib.pyplot as plt

    fig = _figure(rows)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _fit_html(lines: Sequence[str]) -> str:
    """The fit matrix's markdown (after the main table) as a heading and a table per arch."""
    out = []
    for line in lines:
        if line.startswith("Fit:") or line.endswith(":"):
            out.append(f"<h2>{html.escape(line)}</h2>" if line.endswith(":") else f"<p>{html.escape(line)}</p>")
        elif line.startswith("|") and not line.startswith("|---"):
            tag = "th" if line.startswith("| distro |") else "td"
            out.append("<tr>" + "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>"
                                        for c in line.strip("|").split("|")) + "</tr>")
        elif line.startswith("**"):  # the mixed-setups warning
            out.append(f"<p><strong>{html.escape(line.strip('*'))}</strong></p>")
        elif line.startswith("- "):  # the setups legend, cells without a result
            out.append(f"<p>{html.escape(line)}</p>")
    return "".join(f"<div class='wide'><table>{x}</table></div>" if x.startswith("<tr>") else x
                   for x in _group_rows(out))


def _group_rows(parts: list[str]) -> list[str]:
    grouped: list[str] = []
    for part in parts:
        if part.startswith("<tr>") and grouped and grouped[-1].startswith("<tr>"):
            grouped[-1] += part
        else:
            grouped.append(part)
    return grouped


# The page fits the window (tests/unit/test_page_in_browser.py): images scale down, table cells wrap
# between words and tighten in a narrow window, and a table that still cannot fit scrolls inside its
# own box instead of widening the page.
PAGE_CSS = ("body{font-family:sans-serif;margin:2em}img{max-width:100%;height:auto;display:block}"
            ".wide{max-width:100%;overflow-x:auto}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;overflow-wrap:break-word}"
            "th{background:#f4f4f4}"
            "@media (max-width:1000px){body{margin:1em}td,th{padding:3px 4px;font-size:12px}}")


def html_page(rows: Sequence[Row], png: Path, title: str, timelines: str = "") -> str:
    image = base64.b64encode(png.read_bytes()).decode()
    md = markdown(rows).splitlines()
    # The first table only; the fit matrix's tables follow it in the markdown.
    intro, table = md[0], list(itertools.takewhile(lambda line: line.startswith("|"), md[2:]))
    head = [c.strip() for c in table[0].strip("|").split("|")]
    body = [[c.strip() for c in line.strip("|").split("|")] for line in table[2:]]
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in body)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{PAGE_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
        f"<img alt='used memory per distro and arch' src='data:image/png;base64,{image}'>"
        "<div class='wide'><table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>\n"
        + cells + "</table></div>" + _fit_html(md[2 + len(table):]) + timelines + "</body></html>\n"
    )


def render(rows: Sequence[Row], md: Path | None, png: Path | None, page: Path | None, title: str,
           missing: Sequence[str] = ()) -> str:
    """Write whichever of table, chart and page are asked for (a page brings its chart); return the table."""
    table = markdown(rows, missing)
    if md:
        md.write_text(table)
    if page and png is None:
        png = page.with_suffix(".png")
    drawn = None
    if png:
        chart(rows, png)
        try:  # one timeline per cell with series, next to the chart: <stem>-timeline-<cell>.png
            drawn = timeline.write([r for row in rows for r in row.results], png.with_suffix(""))
        except timeline.TimelineError as exc:
            raise ReportError(str(exc)) from None
    if page:
        assert png is not None and drawn is not None
        page.write_text(html_page(rows, png, title, timeline.html_section(drawn)))
    return table


# ---- comparing against a baseline --------------------------------------------------------------

def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """One-sided p that b is larger than a (normal approximation with tie correction)."""
    pooled = sorted((v, i) for i, v in enumerate([*a, *b]))
    ranks = [0.0] * len(pooled)
    i = 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[pooled[k][1]] = (i + j) / 2 + 1
        i = j + 1
    n1, n2 = len(a), len(b)
    u = sum(ranks[n1:]) - n2 * (n2 + 1) / 2
    mean = n1 * n2 / 2
    sd = math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    if sd == 0:
        return 1.0
    z = (u - mean - 0.5) / sd
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class Change:
    distro: str
    arch: str
    phase: str
    before: float
    after: float
    verdict: str  # heavier, lighter, unchanged, not compared
    why: str

    @property
    def delta(self) -> float:
        return self.after - self.before


def threshold_rule(threshold_mib: float, threshold_pct: float, alpha: float) -> str:
    """The rule compare() applies, in words: README and the compare output quote it."""
    return (f"A phase is heavier (lighter) when its median used MiB, net of the free pages on the per-CPU "
            f"lists (used_mib − pcp_free_mib, per repetition; gross where a side did not record the lists), "
            f"rose (fell) by more than max({threshold_mib:g} MiB, {threshold_pct:g} % of the baseline's median), "
            f"and the spread agrees: with 3 or more repetitions a side, a one-sided Mann-Whitney test at "
            f"p < {alpha:g}; with fewer, every value of the one side is beyond every value of the other by more "
            f"than that threshold. Otherwise it is unchanged. Rows are compared only with a baseline of the "
            f"same distro, arch, backend, machine and accel; the kit may differ, and the why says so.")


def _pool(rows: Sequence[Row]) -> Row:
    pooled = Row(rows[0].distro, rows[0].arch, setup=rows[0].setup)
    for row in rows:
        pooled.results.extend(row.results)
    return pooled


def compare(old: Sequence[Row], new: Sequence[Row], threshold_mib: float = 10.0, threshold_pct: float = 5.0,
            alpha: float = ALPHA) -> list[Change]:
    """See threshold_rule(). Net of the per-CPU lists: on 1 GiB guests they held from 1 to 55 MiB
    of free pages that used_mib counts as used (README, "The per-CPU lists"), so a gross difference
    of that size can be nothing but their filling."""
    before: dict[tuple[str, str, tuple[str, str, str]], list[Row]] = {}
    for r in old:
        before.setdefault((r.distro, r.arch, r.setup.backend_machine_accel), []).append(r)
    changes = []
    for row in new:
        matches = before.get((row.distro, row.arch, row.setup.backend_machine_accel))
        if not matches:
            others = [r.setup for r in old if (r.distro, r.arch) == (row.distro, row.arch)]
            if others:
                changes.append(Change(row.distro, row.arch, "-", math.nan, math.nan, "not compared",
                                      f"no baseline with backend {row.setup.backend}, machine {row.setup.machine}, "
                                      f"accel {row.setup.accel}; the baseline has: "
                                      + "; ".join(sorted({str(s) for s in others}))))
            continue
        base = _pool(matches)
        kits = sorted({r.setup.kit for r in matches})
        kit_note = "" if kits == [row.setup.kit] else f"; kit {', '.join(kits)} → {row.setup.kit}"
        for phase in ("idle", "workload"):
            net_a, net_b = base.net_values(phase), row.net_values(phase)
            if net_a is not None and net_b is not None:
                a, b, basis = net_a, net_b, "net of the per-CPU lists"
            else:
                a, b, basis = base.values(phase), row.values(phase), "gross: a side did not record the per-CPU lists"
            if not a or not b:
                continue
            ma, mb = statistics.median(a), statistics.median(b)
            limit = max(threshold_mib, ma * threshold_pct / 100)
            if len(a) >= 3 and len(b) >= 3:
                p_up, p_down = mann_whitney_p(a, b), mann_whitney_p(b, a)
                spread_up, spread_down = p_up < alpha, p_down < alpha
                test = f"Mann-Whitney p={min(p_up, p_down):.3f}, n={len(a)}/{len(b)}"
            else:
                spread_up, spread_down = min(b) - max(a) > limit, min(a) - max(b) > limit
                test = f"ranges {min(a):.0f}-{max(a):.0f} vs {min(b):.0f}-{max(b):.0f}, n={len(a)}/{len(b)}"
            if mb - ma > limit and spread_up:
                verdict = "heavier"
            elif ma - mb > limit and spread_down:
                verdict = "lighter"
            else:
                verdict = "unchanged"
            changes.append(Change(row.distro, row.arch, phase, ma, mb, verdict,
                                  f"{mb - ma:+.0f} MiB {basis} (threshold {limit:.0f}); {test}{kit_note}"))
    return changes


def compare_markdown(changes: Sequence[Change], rule: str = "") -> str:
    lines = [rule, ""] if rule else []
    lines += ["| distro | arch | phase | before MiB | after MiB | verdict | why |", "|---|---|---|---:|---:|---|---|"]
    for c in changes:
        before, after = ("-", "-") if math.isnan(c.before) else (f"{c.before:.0f}", f"{c.after:.0f}")
        lines.append(f"| {c.distro} | {c.arch} | {c.phase} | {before} | {after} | {c.verdict} | {c.why} |")
    return "\n".join(lines) + "\n"


# ---- command line ------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", help="stack outputs JSON, result JSON files or folders; - for stdin")
    parser.add_argument("--markdown", type=Path, help="write the table here (default: stdout)")
    parser.add_argument("--png", type=Path, help="write the chart here, and beside it a timeline per cell with series "
                        "(<name>-timeline-<cell>.png) and all of them on shared scales (<name>-timelines.png)")
    parser.add_argument("--html", type=Path, help="write a self-contained page with table and chart here")
    parser.add_argument("--title", default="k8s-footprint: memory on 1 GiB instances")
    parser.add_argument("--baseline", nargs="+", help="compare against these earlier results")
    parser.add_argument("--threshold-mib", type=float, default=10.0)
    parser.add_argument("--threshold-pct", type=float, default=5.0)
    parser.add_argument("--kit", nargs="+", default=[], metavar="K",
                        help="only results of these kits: a kit_version (0.3.1) or the start of a kit hash")
    parser.add_argument("--backend", nargs="+", default=[], choices=BACKENDS,
                        help="only results from these backends (unknown: results that record none); "
                             "the baseline too")
    parser.add_argument("--exclude-faults", action="store_true",
                        help="leave out runs with an injected fault (provenance.fault, or a file the VM tests "
                             "named *-fault-*); the baseline too")
    args = parser.parse_args(argv)
    try:
        results = select(load_sourced(args.inputs), args.kit, args.backend, args.exclude_faults)
        rows = build_rows(results)
        table = render(rows, args.markdown, args.png, args.html, args.title, no_results(results))
        if not args.markdown:
            print(table)
        if args.baseline:
            baseline = select(load_sourced(args.baseline), (), args.backend, args.exclude_faults)
            changes = compare(build_rows(baseline), rows, args.threshold_mib, args.threshold_pct)
            print(compare_markdown(changes, threshold_rule(args.threshold_mib, args.threshold_pct, ALPHA)))
            heavier = [c for c in changes if c.verdict == "heavier"]
            if heavier:
                print(f"{len(heavier)} got heavier: " + ", ".join(f"{c.distro}/{c.arch}/{c.phase}" for c in heavier),
                      file=sys.stderr)
                return EXIT_WORSE
    except ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
