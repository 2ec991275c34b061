"""The one distro table (benchmarks/guest/distros.tsv): the kit, config, the plan, the report, the
schemas and Pulumi.yaml all agree with it, so adding a distro is a line there and a distros/X.sh."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from benchmarks import report
from components import config, plan
from components import distros as table
from components.commands import KIT_DIR
from components.schema import result_schema

ROOT = Path(__file__).resolve().parents[2]


def kit_allowed(kit_dir: Path) -> list[str]:
    """The names the kit accepts, from its own bad-usage message (exit 2 before anything runs)."""
    proc = subprocess.run(["sh", str(kit_dir / "k8sf"), "bootstrap", "no-such-distro"], capture_output=True,
                          text=True, timeout=30, check=False)
    assert proc.returncode == 2, proc.stderr
    line = next(ln for ln in proc.stderr.splitlines() if "unknown distro" in ln)
    return line.split("allowed: ", 1)[1].split()


def test_the_table_is_the_2022_rows_plus_k3s_minimal_with_the_slots_they_always_had() -> None:
    assert table.ORDER == ("bare", "docker", "k3s", "k3s-minimal", "k0s", "microk8s", "microk8s-noha")
    # address_slot's order before the table: a change would move every running libvirt guest.
    assert table.BY_SLOT == ("bare", "docker", "k3s", "k0s", "microk8s", "microk8s-noha", "k3s-minimal")
    assert table.DEFAULTS == ("bare", "docker", "k3s", "k0s", "microk8s", "microk8s-noha")


def test_every_distro_has_its_kit_file_and_every_kit_file_a_row() -> None:
    assert sorted(p.stem for p in (KIT_DIR / "distros").glob("*.sh")) == sorted(table.ORDER)


def test_the_kit_accepts_exactly_the_tables_names_read_from_the_table_it_ships(tmp_path: Path) -> None:
    assert kit_allowed(KIT_DIR) == list(table.ORDER)
    copy = tmp_path / "kit"
    shutil.copytree(KIT_DIR, copy)
    with (copy / "distros.tsv").open("a") as f:
        f.write("kind\t7\tno\t60\t60\n")
    assert kit_allowed(copy) == [*table.ORDER, "kind"]


def test_config_plan_and_report_take_the_tables_names() -> None:
    assert config.DISTROS == table.BY_SLOT and config.DEFAULT_DISTROS == table.DEFAULTS
    for row in table.TABLE:
        assert config.address_slot("x86_64", row.name, 1) == row.slot * len(config.ARCHES)
        assert (plan.INSTALL_S[row.name], plan.READY_S[row.name]) == (row.install_s, row.ready_s)
    assert set(plan.INSTALL_S) == set(plan.READY_S) == set(table.ORDER)
    assert report.DISTRO_ORDER == table.ORDER


def test_the_result_schemas_name_the_tables_distros() -> None:
    v2 = result_schema("k8s-footprint/result/v2")["$defs"]["result"]["properties"]["distro"]["enum"]
    assert v2 == list(table.ORDER)
    # v1 is what older kits wrote: frozen, so a new distro is never in it.
    v1 = result_schema("k8s-footprint/result/v1")["properties"]["distro"]["enum"]
    assert set(v1) <= set(table.ORDER)


def test_pulumi_yaml_allows_the_tables_distros_and_defaults_to_its_default_rows() -> None:
    entry = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["template"]["config"]["k8s-footprint:distros"]
    assert json.loads(entry["default"]) == list(table.DEFAULTS)
    allowed = entry["description"].split("Allowed: a list from ", 1)[1].rstrip(".").split(", ")
    assert allowed == list(config.DISTROS)


def test_the_readmes_stack_config_row_lists_the_tables_distros() -> None:
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| `distros` |"))
    listed = row.split("list from ", 1)[1].split(";", 1)[0]
    assert [name.strip(" `") for name in listed.split(",")] == list(config.DISTROS)


@pytest.mark.parametrize(("line", "message"), [
    ("kind\t7\tno\t60\n", "line 2: 4 tab-separated columns, expected 5"),
    ("kind\t7\tmaybe\t60\t60\n", "default 'maybe' is not yes or no"),
    ("kind\tx\tno\t60\t60\n", "slot 'x' is not a whole number"),
    ("kind\t9\tno\t60\t60\n", "the slots must be 0 to 1, each once; got [0, 9]"),
    ("bare\t1\tno\t60\t60\n", "a name appears twice"),
])
def test_a_bad_table_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "distros.tsv"
    path.write_text("bare\t0\tyes\t0\t0\n" + line)
    with pytest.raises(table.DistroTableError, match=message.replace("[", r"\[").replace("]", r"\]")):
        table.read_table(path)
