"""From results to answers: a table, a chart and an HTML page; and a comparison against a baseline.

    python -m benchmarks.report RESULTS... [--markdown F] [--png F] [--html F] [--baseline OLD...]

RESULTS are `pulumi stack output --json` files (or - for stdin), result JSON files, or folders of
them. Repetitions of a (distro, arch) are pooled. With --baseline, a change is flagged only when it
passes both a threshold and the spread, and the exit code is 3 when something got heavier.
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
from components import fit
from components.results import NO_RESULT, RESULT_SCHEMAS

# The 2022 figures (seeds/004: Ubuntu Minimal, 1 GB, `free -m` used, procps 3.3's formula).
SEED_2022 = {"bare": 167, "docker": 216, "k0s": 658, "k3s": 750, "microk8s": 685, "microk8s-noha": 526}
SEED_2022_WORKLOAD = {"docker": 396}
DISTRO_ORDER = ("bare", "docker", "k3s", "k3s-minimal", "k0s", "microk8s", "microk8s-noha")
EXIT_WORSE = 3


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


def load(paths: Sequence[str], stdin: Any = None) -> list[dict[str, Any]]:
    """Every result in the given files and folders. Folders contribute only files that are results."""
    results: list[dict[str, Any]] = []
    for name in paths:
        if name == "-":
            results += results_in(_load_json((stdin or sys.stdin).read(), "<stdin>"), "<stdin>")
            continue
        path = Path(name)
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                doc = _load_json(file.read_text(), str(file))
                if isinstance(doc, dict) and (doc.get("schema") in RESULT_SCHEMAS or "results" in doc):
                    results += results_in(doc, str(file))
            continue
        try:
            text = path.read_text()
        except OSError as exc:
            raise ReportError(f"{name}: cannot read ({exc.strerror})") from None
        results += results_in(_load_json(text, name), name)
    if not results:
        raise ReportError(f"no results found in {', '.join(paths)}")
    return results


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

    def values(self, phase: str, key: str = "used_mib") -> list[float]:
        return [v for r in self.results if (v := _median_used(r, phase, key)) is not None]

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
    """One row per (distro, arch); cells that produced no result have no figures to pool (see no_results)."""
    rows: dict[tuple[str, str], Row] = {}
    for r in results:
        if r["status"] == NO_RESULT:
            continue
        rows.setdefault((r["distro"], r["arch"]), Row(r["distro"], r["arch"])).results.append(r)
    order = {d: i for i, d in enumerate(DISTRO_ORDER)}
    return sorted(rows.values(), key=lambda row: (row.arch, order.get(row.distro, 99), row.distro))


def no_results(results: Iterable[dict[str, Any]]) -> list[str]:
    """A line per cell whose kit produced no result: the runner's no_result documents (schema v2)."""
    return [f"- {r['cell']}: no result ({r['error']})" for r in results if r["status"] == NO_RESULT]


def _docker_idle(rows: Sequence[Row], arch: str) -> Stat | None:
    return next((row.stat("idle") for row in rows if row.distro == "docker" and row.arch == arch), None)


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
          "API workload | status | OOM kills | 2022 MB |")


def markdown(rows: Sequence[Row], missing: Sequence[str] = ()) -> str:
    lines = [
        "Used memory (MemTotal − MemAvailable) in MiB: median [p95] over repetitions. Footprint: idle minus "
        "the same instance's os phase; net: less the change in free pages on the kernel's per-CPU lists, "
        "which MemAvailable counts as used (results from kit 0.1.3 on). 2022 MB: the seed's `free -m` used, "
        "procps 3.3's formula (MemTotal − MemFree − Buffers − Cached − SReclaimable), shown beside ours by that "
        "formula.",
        "",
        HEADER,
        "|" + "---|" * (HEADER.count("|") - 1),
    ]
    for row in rows:
        docker = _docker_idle(rows, row.arch)
        idle = row.stat("idle")
        delta = f"{idle.median - docker.median:+.0f}" if idle and docker and row.distro != "docker" else "-"
        cells = [row.distro, row.arch, str(len(row.results))]
        cells += [str(s) if (s := row.stat(p)) else "-" for p in ("os", "idle", "workload")]
        cells += [row.footprint_cell(), delta, row.api("idle"), row.api("workload")]
        cells += [", ".join(f"{k} {v}" for k, v in sorted(row.statuses.items())), str(row.oom_kills), seed_note(row)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", fit.fit_markdown([r for row in rows for r in row.results], fit.DEFAULT_HEADROOM_MIB,
                                   DISTRO_ORDER).rstrip()]
    if missing:
        lines += ["", "Cells without a result:", *missing]
    return "\n".join(lines) + "\n"


def chart(rows: Sequence[Row], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arches = sorted({r.arch for r in rows})
    fig, axes = plt.subplots(1, len(arches), figsize=(6.5 * len(arches), 4.8), squeeze=False, sharey=True)
    for ax, arch in zip(axes[0], arches, strict=True):
        arch_rows = [r for r in rows if r.arch == arch]
        xs = range(len(arch_rows))
        width = 0.38
        for offset, phase, color in ((-width / 2, "idle", "#4c78a8"), (width / 2, "workload", "#f58518")):
            stats = [r.stat(phase) for r in arch_rows]
            heights = [s.median if s else 0 for s in stats]
            errors = [(s.p95 - s.median) if s else 0 for s in stats]
            ax.bar([x + offset for x in xs], heights, width, yerr=[[0] * len(errors), errors], label=phase,
                   color=color, capsize=3)
        for x, row in zip(xs, arch_rows, strict=True):
            bad = {k: v for k, v in row.statuses.items() if k != "ok"}
            if bad:
                top = max((s.median for p in ("idle", "workload") if (s := row.stat(p))), default=0)
                ax.annotate("\n".join(f"{k} ×{v}" for k, v in bad.items()), (x, top), ha="center", va="bottom",
                            fontsize=7, color="#b00020", xytext=(0, 4), textcoords="offset points")
            for seeds, marker in ((SEED_2022, "x"), (SEED_2022_WORKLOAD, "+")):
                if row.distro in seeds:
                    ax.plot([x], [seeds[row.distro]], marker=marker, color="black", markersize=9,
                            linestyle="none")
        total = statistics.median(r.mem_total_mib for r in arch_rows)
        ax.axhline(total, color="#b00020", linestyle="--", linewidth=1)
        ax.text(-0.45, total, f"MemTotal {total:.0f} MiB", va="bottom", ha="left", fontsize=8, color="#b00020")
        ax.set_xticks(list(xs), [r.distro for r in arch_rows], rotation=20)
        ax.set_title(arch)
        ax.set_ylabel("used MiB (median, p95 whisker)")
    axes[0][0].plot([], [], "kx", label="2022 idle (procps 3.3)")
    axes[0][0].plot([], [], "k+", label="2022 with mysql")
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
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
        elif line.startswith("Cells without"):
            break
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
    verdict: str  # heavier, lighter, unchanged
    why: str

    @property
    def delta(self) -> float:
        return self.after - self.before


def compare(old: Sequence[Row], new: Sequence[Row], threshold_mib: float = 10.0, threshold_pct: float = 5.0,
            alpha: float = 0.05) -> list[Change]:
    """A change counts only past both a threshold (max of MiB and %) and the spread: with at least
    3 repetitions a side, a one-sided Mann-Whitney test at alpha; with fewer, the gap between the
    sides' ranges (every new value above every old one, by more than the threshold)."""
    before = {(r.distro, r.arch): r for r in old}
    changes = []
    for row in new:
        base = before.get((row.distro, row.arch))
        if base is None:
            continue
        for phase in ("idle", "workload"):
            a, b = base.values(phase), row.values(phase)
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
                                  f"{mb - ma:+.0f} MiB (threshold {limit:.0f}); {test}"))
    return changes


def compare_markdown(changes: Sequence[Change]) -> str:
    lines = ["| distro | arch | phase | before MiB | after MiB | verdict | why |", "|---|---|---|---:|---:|---|---|"]
    for c in changes:
        lines.append(f"| {c.distro} | {c.arch} | {c.phase} | {c.before:.0f} | {c.after:.0f} | {c.verdict} | {c.why} |")
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
    args = parser.parse_args(argv)
    try:
        results = load(args.inputs)
        rows = build_rows(results)
        table = render(rows, args.markdown, args.png, args.html, args.title, no_results(results))
        if not args.markdown:
            print(table)
        if args.baseline:
            changes = compare(build_rows(load(args.baseline)), rows, args.threshold_mib, args.threshold_pct)
            print(compare_markdown(changes))
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
