"""The fleet's matrix: one cell per arch x distro x memory size x repetition, each on a fresh instance."""

from __future__ import annotations

from dataclasses import dataclass

from components import plan
from components.config import FleetSpec, HostEntry, address_slot


@dataclass(frozen=True)
class Cell:
    name: str  # <arch>-<distro>[-<size>m]-<n>; it also names the cell's components, so URNs stay stable
    arch: str
    distro: str
    repetition: int
    memory_mib: int  # the machine's size (hosts: what the config says; the result has the real MemTotal)
    sweep: bool  # memoryMiB is a list: the size is in the name and the address slot
    host: HostEntry | None = None  # the hosts backend's machine for this cell
    # Cells in the same lane run one after another (maxParallelCells); None means no limit.
    lane: int | None = None
    previous: str | None = None  # the cell this one waits for, in its lane

    @property
    def slot(self) -> int:
        return address_slot(self.arch, self.distro, self.repetition, self.memory_mib if self.sweep else None)


def cell_name(arch: str, distro: str, repetition: int, sweep_mib: int | None = None) -> str:
    """`x86_64-k3s-1`, or in a sweep `x86_64-k3s-768m-1`. A single-size stack keeps the unsized
    name: every resource is named after its cell, so a new name would replace every machine."""
    size = f"-{sweep_mib}m" if sweep_mib is not None else ""
    return f"{arch}-{distro}{size}-{repetition}"


def expand(spec: FleetSpec) -> list[Cell]:
    """All cells, repetition-major, so the first wave covers every distro once.

    With maxParallelCells, cells go to lanes balanced by their expected wall time (emulated cells
    take longer), and each waits for the one before it in its lane.
    """
    combos = [(rep, distro, arch, mib) for rep in range(1, spec.repetitions + 1) for distro in spec.distros
              for mib in spec.memory_sizes for arch in spec.arches]
    free_hosts = {arch: [h for h in spec.hosts if h.arch == arch] for arch in spec.arches}
    lanes: list[int | None] = [None] * len(combos)
    if spec.max_parallel_cells is not None:
        loads = [plan.cell_seconds(spec, arch, distro) for _, distro, arch, _ in combos]
        lanes = list(plan.balance(loads, spec.max_parallel_cells))
    cells: list[Cell] = []
    last_in_lane: dict[int, str] = {}
    for (rep, distro, arch, mib), lane in zip(combos, lanes, strict=True):
        host = free_hosts[arch].pop(0) if spec.backend == "hosts" else None
        name = cell_name(arch, distro, rep, mib if spec.sweep else None)
        previous = last_in_lane.get(lane) if lane is not None else None
        if lane is not None:
            last_in_lane[lane] = name
        cells.append(Cell(name, arch, distro, rep, mib, spec.sweep, host, lane, previous))
    return cells


def plan_lines(spec: FleetSpec) -> list[str]:
    """The cell plan, lanes and expected wall time, for a person to read before `up`."""
    cells = expand(spec)
    times = [plan.CellTime(c.name, plan.cell_seconds(spec, c.arch, c.distro), plan.emulated(spec, c.arch))
             for c in cells]
    return plan.describe(times, [c.lane for c in cells])
