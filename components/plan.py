"""How long a fleet takes: an expected wall time per cell, and lanes balanced by it.

The figures are estimates, not promises. Where this project measured a phase, the constant says
which committed file it comes from; the rest are round figures from the distros' own documentation
and are marked as such. The point is the shape: emulated cells take about 2.4 times as long to
boot and install, the sampling windows take the same wall time everywhere, and lanes should
carry equal loads rather than every emulated cell in one.
"""

from __future__ import annotations

from dataclasses import dataclass

from components import distros as distro_table
from components.config import FleetSpec

# Measured on TCG guests here (benchmarks/results/qemu-debian12/durations-2026-11-22-kit0.1.3.json):
# boot to SSH 81 s on x86_64 and 191 s on emulated aarch64; the Docker bootstrap, its sampling
# (10 s settle + 5 samples x 2 s) taken off, 43 s and 100 s.
BOOT_S = 80
EMULATION_FACTOR = 2.4
# Install and readiness of each distro on a native 1 GiB guest, in seconds. docker: measured as above
# (apt-get install docker.io); the Kubernetes figures are estimates from the projects' documented
# install and first-start times, to be replaced by users' measurements. Both columns live in the
# one distro table (benchmarks/guest/distros.tsv).
INSTALL_S = {d.name: d.install_s for d in distro_table.TABLE}
READY_S = {d.name: d.ready_s for d in distro_table.TABLE}
# Deploying MySQL until it answers SELECT 1 (estimate: image pull and first-start initialisation).
WORKLOAD_S = 180
OS_SETTLE_MAX_S = 60  # the kit settles the OS baseline at most this long (components.commands)


@dataclass(frozen=True)
class CellTime:
    name: str
    seconds: int
    emulated: bool


def emulated(spec: FleetSpec, arch: str) -> bool:
    """Only local VMs run emulated: those of the other arch, and all of them with libvirtAccel tcg.
    AWS and hosts run natively."""
    return spec.backend == "libvirt" and (arch != spec.libvirt_host_arch or spec.libvirt_accel == "tcg")


def cell_seconds(spec: FleetSpec, arch: str, distro: str) -> int:
    """Expected wall time of one cell, from boot to its result."""
    factor = EMULATION_FACTOR if emulated(spec, arch) else 1.0
    window = spec.samples * spec.sample_interval_seconds
    slow = (BOOT_S + INSTALL_S[distro] + READY_S[distro]) * factor
    sampling = min(spec.settle_seconds, OS_SETTLE_MAX_S) + window + spec.settle_seconds + window
    if spec.workload != "none" and distro != "bare":
        slow += WORKLOAD_S * factor
        sampling += spec.settle_seconds + window
    return round(slow + sampling)


def balance(loads: list[int], lanes: int) -> list[int]:
    """Lane of each job: longest first, each to the least-loaded lane (ties: the lowest lane).
    The longest-processing-time rule; its wall time is within 4/3 of the best possible."""
    totals = [0] * lanes
    lane_of = [0] * len(loads)
    for i in sorted(range(len(loads)), key=lambda j: (-loads[j], j)):
        lane = min(range(lanes), key=lambda k: (totals[k], k))
        lane_of[i] = lane
        totals[lane] += loads[i]
    return lane_of


def describe(times: list[CellTime], lanes: list[int | None]) -> list[str]:
    """The plan, as lines for a person: each lane's cells in order, and the expected wall time."""
    by_lane: dict[int | None, list[CellTime]] = {}
    for t, lane in zip(times, lanes, strict=True):
        by_lane.setdefault(lane, []).append(t)
    lines = []
    totals = []
    for lane, cells in sorted(by_lane.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
        total = sum(c.seconds for c in cells) if lane is not None else max(c.seconds for c in cells)
        totals.append(total)
        label = "all at once" if lane is None else f"lane {lane + 1}"
        shown = ", ".join(f"{c.name} {c.seconds / 60:.0f}m{' (emulated)' if c.emulated else ''}" for c in cells)
        lines.append(f"{label}: {total / 60:.0f} min: {shown}")
    lines.append(f"expected wall time: about {max(totals) / 60:.0f} min (an estimate; see components/plan.py)")
    return lines
