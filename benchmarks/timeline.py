"""What happened over time in each cell: a timeline per cell and a small-multiples page of all.

A result from a kit that keeps per-sample series carries, in each phase, `series` (columnar, equal
lengths: t_s, used_mib, available_mib, pcp_free_mib, psi_some_avg10, anon_mib, file_mib and, on
Kubernetes distros, api_ms with null for a failed probe), and at the top level `events`
([{t_s, kind, detail}]). t_s counts seconds from the start of the cell's install, one clock for every
phase and event. Results without series (every kit up to 0.1.3) get no timeline, and the page says so.

The drawing marks its artists with a gid (memtotal, used:<phase>, phase:<phase>, event:<kind>,
api-failed, api-ms) so that what is drawn can be checked without looking at pixels.
"""

from __future__ import annotations

import base64
import glob
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Label and colour of each event kind, in the order a healthy cell meets them.
LineStyle = Literal["-", ":", "-."]
EVENT_KINDS: dict[str, tuple[str, str, LineStyle]] = {  # label, colour, line style
    "install_start": ("install start", "#555555", ":"),
    "install_end": ("install end", "#555555", "-."),
    "ready": ("ready", "#2e7d32", ":"),
    "workload_deployed": ("workload deployed", "#1565c0", ":"),
    "workload_ready": ("workload ready", "#1565c0", "-."),
    "oom_kill": ("OOM kill", "#b00020", "-"),
    "api_first_failure": ("API first failure", "#e65100", ":"),
    "api_last_failure": ("API last failure", "#e65100", "-."),
}
# Columns that may hold null: PSI where the kernel has none, the probe when it failed.
NULLABLE = frozenset({"psi_some_avg10", "api_ms"})
PHASE_COLORS = ("#eef3f8", "#fdf1e4", "#eef6ee", "#f4eef8")
USED_COLOR, ANON_COLOR, TOTAL_COLOR, FAILED_COLOR = "#4c78a8", "#9ecae9", "#b00020", "#b00020"


class TimelineError(ValueError):
    """A series or event that cannot be drawn; the message names the cell, the field and the value."""


@dataclass(frozen=True)
class PhaseSeries:
    phase: str
    t_s: tuple[float, ...]
    used_mib: tuple[float, ...]
    anon_mib: tuple[float, ...] | None
    api_ms: tuple[float | None, ...] | None  # None: not probed (bare, docker)


@dataclass(frozen=True)
class Event:
    t_s: float
    kind: str
    detail: str | None

    @property
    def label(self) -> str:
        name = EVENT_KINDS[self.kind][0]
        return f"{name}: {self.detail}" if self.kind == "oom_kill" and self.detail else name


@dataclass(frozen=True)
class Timeline:
    cell: str
    status: str
    mem_total_mib: float
    phases: tuple[PhaseSeries, ...]
    events: tuple[Event, ...]

    @property
    def failed_probes_t(self) -> list[float]:
        return [t for p in self.phases if p.api_ms is not None
                for t, ms in zip(p.t_s, p.api_ms, strict=True) if ms is None]

    @property
    def probes(self) -> int:
        return sum(len(p.api_ms) for p in self.phases if p.api_ms is not None)

    @property
    def t_max(self) -> float:
        return max([t for p in self.phases for t in p.t_s] + [e.t_s for e in self.events] + [1.0])

    @property
    def t_min(self) -> float:
        """0, or earlier when a phase (the OS baseline) was sampled before the install started."""
        return min([t for p in self.phases for t in p.t_s] + [e.t_s for e in self.events] + [0.0])

    @property
    def used_max(self) -> float:
        return max((v for p in self.phases for v in p.used_mib), default=0.0)


# ---- reading -----------------------------------------------------------------------------------

def cell_name(result: dict[str, Any]) -> str:
    return str(result.get("cell") or f"{result.get('arch', '?')}-{result.get('distro', '?')}")


def has_series(result: dict[str, Any]) -> bool:
    return any(isinstance(p, dict) and "series" in p for p in (result.get("phases") or {}).values())


def why_no_timeline(result: dict[str, Any]) -> str:
    return (f"{cell_name(result)} (kit {result.get('kit_version', '?')}, {result.get('status', '?')}): "
            "its result has no per-sample series, only each phase's summary")


def _column(cell: str, phase: str, series: dict[str, Any], key: str, n: int) -> tuple[Any, ...] | None:
    values = series.get(key)
    if values is None:
        return None
    where = f"{cell}: phases.{phase}.series.{key}"
    if not isinstance(values, list) or len(values) != n:
        got = len(values) if isinstance(values, list) else type(values).__name__
        raise TimelineError(f"{where}: {got} values where t_s has {n}; every column has one value per sample")
    for i, v in enumerate(values):
        if v is None and key in NULLABLE:
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            allowed = "a number or null" if key in NULLABLE else "a number"
            raise TimelineError(f"{where}[{i}]: {v!r} is not {allowed}")
    return tuple(values)


def timeline_of(result: dict[str, Any]) -> Timeline | None:
    """The result's series and events as one timeline; None when it carries no series."""
    if not has_series(result):
        return None
    cell = cell_name(result)
    phases = []
    for name, data in result["phases"].items():
        if not isinstance(data, dict) or "series" not in data:
            continue
        series = data["series"]
        if not isinstance(series, dict) or not isinstance(series.get("t_s"), list):
            raise TimelineError(f"{cell}: phases.{name}.series: t_s is missing (columns of equal length expected)")
        n = len(series["t_s"])
        t_s = _column(cell, name, series, "t_s", n)
        used = _column(cell, name, series, "used_mib", n)
        if t_s is None or used is None:
            raise TimelineError(f"{cell}: phases.{name}.series: used_mib is missing")
        for key in series:
            _column(cell, name, series, key, n)  # every column, drawn or not, is one value per sample
        phases.append(PhaseSeries(name, t_s, used, _column(cell, name, series, "anon_mib", n),
                                  _column(cell, name, series, "api_ms", n)))
    events = []
    for i, ev in enumerate(result.get("events") or []):
        kind = ev.get("kind") if isinstance(ev, dict) else None
        if kind not in EVENT_KINDS:
            raise TimelineError(f"{cell}: events[{i}].kind: {kind!r} is not one of {', '.join(EVENT_KINDS)}")
        t = ev.get("t_s")
        if isinstance(t, bool) or not isinstance(t, int | float):
            raise TimelineError(f"{cell}: events[{i}].t_s: {t!r} is not a number")
        detail = ev.get("detail")
        events.append(Event(float(t), kind, None if detail is None else str(detail)))
    phases.sort(key=lambda p: p.t_s[0] if p.t_s else float("inf"))
    return Timeline(cell, str(result.get("status", "?")), float(result["mem_total_mib"]), tuple(phases),
                    tuple(sorted(events, key=lambda e: e.t_s)))


# ---- drawing -----------------------------------------------------------------------------------

def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw(ax: Axes, tl: Timeline, compact: bool = False) -> None:
    """One cell on one axes: phases shaded, used (and anon) memory, MemTotal, events, failed probes."""
    from matplotlib.transforms import blended_transform_factory

    top = blended_transform_factory(ax.transData, ax.transAxes)
    for i, p in enumerate(tl.phases):
        if p.t_s:
            ax.axvspan(min(p.t_s), max(p.t_s), color=PHASE_COLORS[i % len(PHASE_COLORS)], zorder=0,
                       gid=f"phase:{p.phase}")
            if not compact:
                ax.text(min(p.t_s), 0.02, p.phase, transform=top, fontsize=8, color="#666666", va="bottom")
        # One line per phase: the gaps between phases (install, settle) have no samples to join.
        ax.plot(p.t_s, p.used_mib, color=USED_COLOR, linewidth=1.4, gid=f"used:{p.phase}",
                label="used (MemTotal − MemAvailable)" if i == 0 else None)
        if p.anon_mib is not None and not compact:
            ax.plot(p.t_s, p.anon_mib, color=ANON_COLOR, linewidth=1, linestyle="--", gid=f"anon:{p.phase}",
                    label="anon (cgroups; not reclaimable)" if i == 0 else None)
    ax.axhline(tl.mem_total_mib, color=TOTAL_COLOR, linestyle="--", linewidth=1, gid="memtotal",
               label=None if compact else f"MemTotal {tl.mem_total_mib:.0f} MiB")
    if not compact:
        ax.text(0.005, tl.mem_total_mib, f"MemTotal {tl.mem_total_mib:.0f} MiB", transform=ax.get_yaxis_transform(),
                fontsize=8, color=TOTAL_COLOR, va="bottom", gid="memtotal-label")
    span = tl.t_max - tl.t_min
    for i, ev in enumerate(tl.events):
        _, color, style = EVENT_KINDS[ev.kind]
        ax.axvline(ev.t_s, color=color, linestyle=style, linewidth=1.6 if ev.kind == "oom_kill" else 1,
                   gid=f"event:{ev.kind}")
        ax.plot([ev.t_s], [1.0], marker="v", color=color, markersize=5 if compact else 7, transform=top,
                clip_on=False, gid=f"event-marker:{ev.kind}")
        if not compact:
            # Alternate the heights so that events a few seconds apart keep readable labels.
            # An event close after the previous one puts its label on the other side of its line.
            close = i > 0 and ev.t_s - tl.events[i - 1].t_s < 0.03 * span
            ax.text(ev.t_s, 0.97 - 0.22 * (i % 3), " " + ev.label, transform=top, rotation=90, fontsize=7,
                    color=color, va="top", ha="left" if close else "right", gid=f"event-label:{ev.kind}")
    failed = tl.failed_probes_t
    if failed:
        ax.plot(failed, [0.06] * len(failed), linestyle="none", marker="x", color=FAILED_COLOR, transform=top,
                markersize=4 if compact else 6, gid="api-failed",
                label=None if compact else f"API probe failed ({len(failed)} of {tl.probes})")
    ax.set_xlim(tl.t_min - 0.02 * (tl.t_max - tl.t_min), tl.t_max + 0.02 * (tl.t_max - tl.t_min))
    ax.set_ylim(0, max(tl.mem_total_mib, tl.used_max) * 1.1)


def _api_axis(ax: Axes, tl: Timeline) -> None:
    answered = [(t, ms) for p in tl.phases if p.api_ms is not None
                for t, ms in zip(p.t_s, p.api_ms, strict=True) if ms is not None]
    if not answered and not tl.failed_probes_t:
        return
    twin = ax.twinx()
    twin.plot([t for t, _ in answered], [ms for _, ms in answered], linestyle="none", marker=".", markersize=3,
              color="#888888", gid="api-ms", label="API probe ms (right axis)")
    twin.set_ylabel("API probe ms", fontsize=8, color="#666666")
    twin.tick_params(labelsize=7, colors="#666666")
    twin.set_ylim(bottom=0)
    handles, labels = ax.get_legend_handles_labels()
    more_h, more_l = twin.get_legend_handles_labels()
    ax.legend(handles + more_h, labels + more_l, loc="upper left", bbox_to_anchor=(0, -0.14), ncol=3,
              fontsize=7, frameon=False)


def cell_figure(tl: Timeline) -> Figure:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(10, 4.4))
    draw(ax, tl)
    ax.set_title(f"{tl.cell}: {tl.status}", fontsize=10)
    ax.set_xlabel("seconds since the install started", fontsize=8)
    ax.set_ylabel("MiB", fontsize=8)
    ax.tick_params(labelsize=7)
    if tl.probes:
        _api_axis(ax, tl)
    else:
        ax.legend(loc="upper left", bbox_to_anchor=(0, -0.14), ncol=3, fontsize=7, frameon=False)
    fig.tight_layout()
    return cast("Figure", fig)


def fleet_figure(tls: Sequence[Timeline]) -> Figure:
    """Small multiples: every cell on the same axes' scales, so cells compare at a glance."""
    plt = _plt()
    ncols = min(4, len(tls))
    nrows = -(-len(tls) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.1 * ncols + 0.6, 2.3 * nrows + 0.9), squeeze=False,
                             sharex=True, sharey=True)
    for ax, tl in zip(axes.flat, tls, strict=False):
        draw(ax, tl, compact=True)
        ax.set_title(f"{tl.cell}: {tl.status}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(tls):]:
        ax.set_visible(False)
    # Shared scales: the longest cell and the largest of MemTotal and used.
    lo, hi = min(tl.t_min for tl in tls), max(tl.t_max for tl in tls)
    axes[0][0].set_xlim(lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo))
    axes[0][0].set_ylim(0, max(max(tl.mem_total_mib, tl.used_max) for tl in tls) * 1.1)
    for col in range(ncols):  # the lowest shown axes of each column carries the x axis' labels
        lowest = max(row for row in range(nrows) if row * ncols + col < len(tls))
        axes[lowest][col].xaxis.set_tick_params(labelbottom=True)
        axes[lowest][col].set_xlabel("s since install start", fontsize=7)
    for ax in axes[:, 0]:
        ax.set_ylabel("used MiB", fontsize=7)
    plt_lines = _legend_handles(tls)
    fig.legend(*zip(*plt_lines, strict=True), loc="lower center", ncol=5, fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0.16 if nrows == 1 else 0.08, 1, 1))
    return cast("Figure", fig)


def _legend_handles(tls: Sequence[Timeline]) -> list[tuple[Any, str]]:
    from matplotlib.lines import Line2D

    out: list[tuple[Any, str]] = [(Line2D([], [], color=USED_COLOR), "used"),
                                  (Line2D([], [], color=TOTAL_COLOR, linestyle="--"), "MemTotal")]
    kinds = [k for k in EVENT_KINDS if any(e.kind == k for tl in tls for e in tl.events)]
    out += [(Line2D([], [], color=EVENT_KINDS[k][1], linestyle=EVENT_KINDS[k][2]), EVENT_KINDS[k][0]) for k in kinds]
    if any(tl.failed_probes_t for tl in tls):
        out.append((Line2D([], [], color=FAILED_COLOR, marker="x", linestyle="none"), "API probe failed"))
    return out


def _save(fig: Figure, out: Path) -> None:
    fig.savefig(out, dpi=100)
    _plt().close(fig)


# ---- files and the page ------------------------------------------------------------------------

@dataclass(frozen=True)
class Drawn:
    """What write() made: a PNG per cell with series, the small multiples, and the cells without."""

    cells: tuple[tuple[str, Path], ...]
    fleet: Path | None
    without: tuple[str, ...]
    total: int


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def write(results: Iterable[dict[str, Any]], stem: Path) -> Drawn:
    """<stem>-timeline-<cell>.png for each result with series and <stem>-timelines.png for all of
    them, replacing those of an earlier drawing; nothing is drawn for results without series (they
    are listed in `without`)."""
    results = list(results)
    # A redrawn report (make report) must not keep the timelines of cells it no longer has.
    for old in (*stem.parent.glob(f"{glob.escape(stem.name)}-timeline-*.png"),
                stem.with_name(f"{stem.name}-timelines.png")):
        old.unlink(missing_ok=True)
    timelines: list[Timeline] = []
    without: list[str] = []
    for r in results:
        tl = timeline_of(r)
        if tl is None:
            without.append(why_no_timeline(r))
        else:
            timelines.append(tl)
    cells: list[tuple[str, Path]] = []
    used: set[str] = set()
    for tl in timelines:
        name, n = _safe(tl.cell), 2
        while name in used:  # the same cell from two runs
            name, n = f"{_safe(tl.cell)}-{n}", n + 1
        used.add(name)
        path = stem.with_name(f"{stem.name}-timeline-{name}.png")
        _save(cell_figure(tl), path)
        cells.append((tl.cell, path))
    fleet = None
    if timelines:
        fleet = stem.with_name(f"{stem.name}-timelines.png")
        _save(fleet_figure(timelines), fleet)
    return Drawn(tuple(cells), fleet, tuple(without), len(results))


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<img alt='{html.escape(alt)}' src='data:image/png;base64,{data}'>"


def html_section(drawn: Drawn) -> str:
    """The page's timelines, or a plain sentence saying why there are none."""
    parts = ["<h2>Timelines</h2>"]
    if drawn.fleet is None:
        parts.append(f"<p>No timeline: none of these {drawn.total} results carries per-sample series "
                     "(kits up to 0.1.3 record each phase's summary only).</p>")
    else:
        parts.append("<p>Used memory (MemTotal − MemAvailable) over time, in seconds since each cell's install "
                     "started; phases shaded, events marked, failed API probes as red crosses, MemTotal dashed. "
                     "First every cell on shared scales, then each cell.</p>")
        parts.append(_img(drawn.fleet, "used memory over time, every cell on the same scales"))
        for cell, path in drawn.cells:
            parts.append(f"<h3>{html.escape(cell)}</h3>" + _img(path, f"used memory over time, {cell}"))
    if drawn.without and drawn.fleet is not None:
        parts.append("<p>No timeline for:</p><ul>"
                     + "".join(f"<li>{html.escape(w)}</li>" for w in drawn.without) + "</ul>")
    return "".join(parts)
