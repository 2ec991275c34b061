"""The report compares like with like (issue 14, points 3 and 4): it pools only results of one
setup (kit and its hash, backend, machine, acceleration) and flags a mix; it filters by kit,
backend and fault runs; the chart puts the 2022 figures beside bars of their own formula; and
compare mode works net of the free pages on the per-CPU lists."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from tests.unit.test_report import result
from tests.unit.test_statuses import failure, v2_result

ROOT = Path(__file__).resolve().parents[2]
QEMU = ROOT / "benchmarks" / "results" / "qemu-debian12"
# The 2026-11-22 runs (kits 0.1.0 to 0.1.3, measurements and fault runs): a fixed set, so that a
# result committed later beside them does not change what these tests expect.
NOV22 = [str(f) for f in sorted(QEMU.glob("2026-11-22-*-kit*.json"))]
LIBVIRT = {"backend": "libvirt", "memory_mib": 1024, "vcpus": 1}
TCG = {"virt": "qemu", "accel": "tcg", "vcpus": 1}


def made(r: dict[str, Any], kit: str = "0.2.1", digest: str | None = "0123456789abcdef",
         machine: dict[str, Any] | None = None, guest: dict[str, Any] | None = None,
         fault: str | None = None) -> dict[str, Any]:
    """A v2 result with the provenance kit 0.2.1 and the program give it."""
    v2 = v2_result(r["cell"], r["status"], [failure(r["status"], 100)] if r["status"] != "ok" else [])
    r = {**v2, **{k: r[k] for k in ("distro", "arch", "phases")}, "kit_version": kit}
    if r["distro"] in ("bare", "docker"):
        r["api"] = None
    prov: dict[str, Any] = {"guest": guest or TCG, "machine": machine or LIBVIRT}
    if digest:
        prov["kit_hash"] = digest
    if fault:
        prov["fault"] = fault
    r["provenance"] = prov
    return r


def test_results_of_different_setups_are_never_pooled_and_the_mix_is_flagged() -> None:
    same = [made(result("k3s", rep=i, idle=700)) for i in (1, 2)]
    other_kit = made(result("k3s", rep=3, idle=760), digest="fedcba9876543210")  # same version, changed kit
    kvm = made(result("k3s", rep=4, idle=690), guest={"virt": "kvm", "accel": "kvm", "vcpus": 1})
    rows = report.build_rows([*same, other_kit, kvm])
    assert sorted(len(r.results) for r in rows) == [1, 1, 2]
    assert {str(r.setup) for r in rows} == {
        "kit 0.2.1 (0123456789abcdef); backend libvirt; machine 1024 MiB, 1 vCPU; accel tcg",
        "kit 0.2.1 (fedcba9876543210); backend libvirt; machine 1024 MiB, 1 vCPU; accel tcg",
        "kit 0.2.1 (0123456789abcdef); backend libvirt; machine 1024 MiB, 1 vCPU; accel kvm",
    }
    table = report.markdown(rows)
    assert "**Mixed setups: 3 setups, differing in kit, accel." in table
    main_rows = [line for line in table.splitlines() if line.startswith("| k3s | x86_64 |")]
    assert sorted(line.rsplit(" | ", 1)[1] for line in main_rows) == ["S1 |", "S2 |", "S3 |"]


def test_one_setup_is_named_and_not_flagged() -> None:
    aws = {"backend": "aws", "instance_type": "t3.micro", "memory_mib": 1024}
    nitro = {"virt": "amazon", "accel": "hypervisor", "vcpus": 2}
    rows = report.build_rows([made(result("bare"), machine=aws, guest=nitro),
                              made(result("docker", idle=260), machine=aws, guest=nitro)])
    table = report.markdown(rows)
    assert "Mixed setups" not in table
    assert ("- S1: kit 0.2.1 (0123456789abcdef); backend aws; machine t3.micro; accel hypervisor (amazon)"
            in table)
    bare = next(line for line in table.splitlines() if line.startswith("| bare |"))
    assert "| +40 |" in bare  # vs docker (300 - 260): within the one setup


def test_vs_docker_compares_only_within_one_setup() -> None:
    rows = report.build_rows([made(result("bare", idle=200)), made(result("docker", idle=260), kit="0.2.2")])
    bare = next(line for line in report.markdown(rows).splitlines() if line.startswith("| bare |"))
    assert bare.split(" | ")[7] == "-"  # no docker row of the bare row's setup


def test_older_results_group_by_the_kit_version_they_record_and_say_unknown() -> None:
    rows = report.build_rows(report.load(NOV22))
    labels = report.setups(rows)
    assert [str(s) for s in labels] == [
        f"kit {v} (hash unknown); backend unknown; machine unknown; accel unknown"
        for v in ("0.1.0", "0.1.1", "0.1.2", "0.1.3")]
    # The file named kit 0.1.0 records 0.1.1 (the kit changed without a bump): it goes by what it records.
    named_010 = json.loads((QEMU / "2026-11-22-aarch64-docker-mariadb-kit0.1.0.json").read_text())
    assert report.Setup.of(named_010).kit == "0.1.1 (hash unknown)"
    assert "**Mixed setups: 4 setups, differing in kit." in report.markdown(rows)


def test_the_committed_folder_filtered_to_one_kit_without_faults_gives_one_measurement_per_cell(
        tmp_path: Path) -> None:
    md = tmp_path / "r.md"
    assert report.main([*NOV22, "--kit", "0.1.3", "--exclude-faults", "--markdown", str(md)]) == 0
    table = md.read_text()
    rows = [line for line in table.splitlines() if line.startswith(("| bare |", "| docker |"))][:4]
    assert [line.split(" | ")[:3] for line in rows] == [
        ["| bare", "aarch64", "1"], ["| docker", "aarch64", "1"],
        ["| bare", "x86_64", "1"], ["| docker", "x86_64", "1"]]
    assert all(" | ok 1 | " in line for line in rows)
    assert "Mixed setups" not in table
    # Without --exclude-faults the same kit's fault runs pool in: oom and not_ready rows.
    assert report.main([*NOV22, "--kit", "0.1.3", "--markdown", str(md)]) == 0
    assert "ok 1, oom 1" in md.read_text() and "not_ready 1, ok 1" in md.read_text()
    # All kits: the page carries the warning and the legend too.
    page = tmp_path / "r.html"
    assert report.main([*NOV22, "--html", str(page), "--markdown", str(md)]) == 0
    assert "<p><strong>Mixed setups: 4 setups, differing in kit." in page.read_text()
    assert "<p>- S4: kit 0.1.3 (hash unknown); backend unknown; machine unknown; accel unknown</p>" in page.read_text()


def test_a_result_that_says_it_is_a_fault_run_is_excluded(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(json.dumps(made(result("bare", rep=1))))
    (tmp_path / "b.json").write_text(json.dumps(made(result("bare", rep=2, status="oom"), fault="fault-oom")))
    sourced = report.load_sourced([str(tmp_path)])
    assert [r["status"] for r in report.select(sourced, exclude_faults=True)] == ["ok"]
    assert len(report.select(sourced)) == 2


def test_backend_and_kit_filters_and_a_filter_that_leaves_nothing(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    aws = {"backend": "aws", "instance_type": "t3.micro", "memory_mib": 1024}
    results = [made(result("bare", rep=1)), made(result("bare", rep=2), machine=aws, digest="abcdef0123456789"),
               result("docker")]  # a v1 result: backend unknown
    sourced = [(r, "x.json") for r in results]
    assert [report.Setup.of(r).backend for r in report.select(sourced, backends=["aws"])] == ["aws"]
    assert [r["distro"] for r in report.select(sourced, backends=["unknown"])] == ["docker"]
    assert len(report.select(sourced, kits=["0.2.1"])) == 2
    assert [report.Setup.of(r).backend for r in report.select(sourced, kits=["abcdef"])] == ["aws"]
    with pytest.raises(report.ReportError, match=r"no results left after --kit 9.9; the inputs have: "
                                                 r"kit 0.1.0 \(hash unknown\), backend unknown;"):
        report.select(sourced, kits=["9.9"])
    path = tmp_path / "in.json"
    path.write_text(json.dumps(results))
    with pytest.raises(SystemExit):
        report.main([str(path), "--backend", "gcp"])
    assert "invalid choice: 'gcp'" in capsys.readouterr().err


# ---- the chart: like with like -------------------------------------------------------------

def test_the_2022_figures_sit_on_bars_of_their_own_formula_and_the_legend_names_both() -> None:
    rows = report.build_rows([result("bare"), result("docker", workload=420)])
    marks = report.seed_marks(rows)
    assert {(m.phase, m.value) for m in marks} == {("idle", 167), ("idle", 216), ("workload", 396)}
    legacy = {(b.phase, b.offset) for b in report.BARS if b.formula == report.FORMULA_LEGACY}
    for m in marks:
        assert m.formula == report.FORMULA_LEGACY
        assert any(m.phase == phase and round(m.x - offset, 9) in (0, 1) for phase, offset in legacy)
    fig = report._figure(rows)
    try:
        texts = [t.get_text() for t in fig.legends[0].get_texts()]
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)
    assert "idle: MemTotal − MemAvailable (procps-ng 4 free)" in texts
    assert "idle: MemTotal − MemFree − Buffers − Cached − SReclaimable (procps 3.3 free)" in texts
    assert "2022 idle, `free -m`: MemTotal − MemFree − Buffers − Cached − SReclaimable (procps 3.3 free)" in texts


# ---- compare mode: net of the per-CPU lists ----------------------------------------------

def with_pcp(r: dict[str, Any], pcp: float) -> dict[str, Any]:
    for phase in ("os", "idle"):
        r["phases"][phase]["pcp_free_mib"] = {"median": pcp, "max": pcp + 1}
    return r


def test_a_pair_that_differs_only_in_free_pages_on_the_per_cpu_lists_is_unchanged() -> None:
    # The same machine, the same processes; the lists held 2 MiB in one run and 46 in the other
    # (README, "The per-CPU lists": 46 MiB in the x86_64 Docker cell's OS baseline), so used_mib,
    # which counts them, reads 44 MiB more.
    old = report.build_rows([with_pcp(made(result("docker", idle=233)), 2)])
    new = report.build_rows([with_pcp(made(result("docker", idle=277)), 46)])
    idle = next(c for c in report.compare(old, new) if c.phase == "idle")
    assert idle.verdict == "unchanged" and idle.delta == 0
    assert "net of the per-CPU lists" in idle.why
    # A real change of the same size, with the lists alike, is still caught.
    heavier = report.build_rows([with_pcp(made(result("docker", idle=277)), 2)])
    assert next(c for c in report.compare(old, heavier) if c.phase == "idle").verdict == "heavier"


def test_compare_falls_back_to_gross_when_a_side_did_not_record_the_lists() -> None:
    old = report.build_rows([made(result("docker", idle=233))])
    new = report.build_rows([with_pcp(made(result("docker", idle=277)), 46)])
    idle = next(c for c in report.compare(old, new) if c.phase == "idle")
    assert idle.verdict == "heavier" and "gross: a side did not record the per-CPU lists" in idle.why


def test_compare_pairs_only_the_same_backend_machine_and_accel_and_notes_a_kit_change() -> None:
    old = report.build_rows([made(result("docker", idle=260), kit="0.2.0", digest=None)])
    kvm = report.build_rows([made(result("docker", idle=260), guest={"virt": "kvm", "accel": "kvm", "vcpus": 1})])
    [change] = report.compare(old, kvm)
    assert change.verdict == "not compared" and "accel kvm" in change.why and "accel tcg" in change.why
    same = report.build_rows([made(result("docker", idle=262))])
    idle = next(c for c in report.compare(old, same) if c.phase == "idle")
    assert idle.verdict == "unchanged" and "kit 0.2.0 (hash unknown) → 0.2.1 (0123456789abcdef)" in idle.why


def test_the_threshold_rule_is_stated_in_the_compare_output_and_in_the_readme(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(made(result("docker", idle=260))))
    new.write_text(json.dumps(made(result("docker", idle=262))))
    assert report.main([str(new), "--baseline", str(base), "--markdown", str(tmp_path / "r.md")]) == 0
    rule = report.threshold_rule(10.0, 5.0, report.ALPHA)
    assert rule in capsys.readouterr().out
    # The README quotes it as a block: "> " at the start of each line.
    readme = " ".join(line.removeprefix(">").strip() for line in (ROOT / "README.md").read_text().splitlines())
    assert rule in readme
