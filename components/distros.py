"""The one list of distros: benchmarks/guest/distros.tsv, shipped with the kit, read here once.

Config, the plan, the report and the kit take their distro names from that file; a unit test
(tests/unit/test_distros_table.py) checks the kit's distros/*.sh files, the result schemas and
Pulumi.yaml against it, as tests/unit/test_statuses.py does for the status table.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DISTRO_TABLE = Path(__file__).resolve().parent.parent / "benchmarks" / "guest" / "distros.tsv"
COLUMNS = ("name", "slot", "default", "install_s", "ready_s")


class DistroTableError(ValueError):
    """The table itself is wrong; the message names the line and the value."""


@dataclass(frozen=True)
class Distro:
    name: str
    slot: int  # the fixed place among a libvirt fleet's guest addresses
    default: bool  # measured by a stack that names no distros
    install_s: int
    ready_s: int


def read_table(path: Path = DISTRO_TABLE) -> tuple[Distro, ...]:
    rows: list[Distro] = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        where = f"{path.name} line {number}"
        cells = line.split("\t")
        if len(cells) != len(COLUMNS):
            raise DistroTableError(f"{where}: {len(cells)} tab-separated columns, expected {len(COLUMNS)}: "
                                   f"{', '.join(COLUMNS)}")
        name, slot, default, install_s, ready_s = cells
        if default not in ("yes", "no"):
            raise DistroTableError(f"{where}: default {default!r} is not yes or no")
        for column, value in (("slot", slot), ("install_s", install_s), ("ready_s", ready_s)):
            if not value.isdigit():
                raise DistroTableError(f"{where}: {column} {value!r} is not a whole number")
        rows.append(Distro(name, int(slot), default == "yes", int(install_s), int(ready_s)))
    names = [r.name for r in rows]
    slots = sorted(r.slot for r in rows)
    if len(set(names)) != len(names):
        raise DistroTableError(f"{path.name}: a name appears twice: {names}")
    if slots != list(range(len(rows))):
        raise DistroTableError(f"{path.name}: the slots must be 0 to {len(rows) - 1}, each once; got {slots}")
    return tuple(rows)


TABLE = read_table()
BY_NAME = {d.name: d for d in TABLE}
ORDER = tuple(d.name for d in TABLE)  # the order reports, the kit and the schemas show them in
BY_SLOT = tuple(d.name for d in sorted(TABLE, key=lambda d: d.slot))  # address-slot order
DEFAULTS = tuple(name for name in BY_SLOT if BY_NAME[name].default)
