"""The fleet's matrix: one cell per arch x distro x repetition, each on a fresh instance."""

from __future__ import annotations

from dataclasses import dataclass

from components.config import FleetSpec, HostEntry, address_slot


@dataclass(frozen=True)
class Cell:
    name: str  # <arch>-<distro>-<n>; it also names the cell's components, so URNs stay stable
    arch: str
    distro: str
    repetition: int
    host: HostEntry | None = None  # the hosts backend's machine for this cell
    # Cells in the same lane run one after another (maxParallelCells); None means no limit.
    lane: int | None = None
    previous: str | None = None  # the cell this one waits for, in its lane

    @property
    def slot(self) -> int:
        return address_slot(self.arch, self.distro, self.repetition)


def cell_name(arch: str, distro: str, repetition: int) -> str:
    return f"{arch}-{distro}-{repetition}"


def expand(spec: FleetSpec) -> list[Cell]:
    """All cells, repetition-major, so the first wave covers every distro once."""
    combos = [(rep, distro, arch) for rep in range(1, spec.repetitions + 1) for distro in spec.distros
              for arch in spec.arches]
    free_hosts = {arch: [h for h in spec.hosts if h.arch == arch] for arch in spec.arches}
    cells: list[Cell] = []
    for i, (rep, distro, arch) in enumerate(combos):
        host = free_hosts[arch].pop(0) if spec.backend == "hosts" else None
        lane = previous = None
        if spec.max_parallel_cells is not None:
            lane = i % spec.max_parallel_cells
            if i >= spec.max_parallel_cells:
                previous = cells[i - spec.max_parallel_cells].name
        cells.append(Cell(cell_name(arch, distro, rep), arch, distro, rep, host, lane, previous))
    return cells
