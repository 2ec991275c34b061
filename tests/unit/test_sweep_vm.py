"""The VM memory sweep's bookkeeping (tests/vm/sweep.py): sizes, cell names and keys, resume, and
that a cell that fails is a recorded result, never the end of the sweep. No VM is booted here."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from components import fit
from components.commands import kit_hash, kit_version
from components.results import NO_RESULT
from tests.vm import sweep
from tests.vm.sweep import Settings, SweepCell, SweepError


def test_sizes_parse_per_arch_sorted() -> None:
    assert sweep.parse_sizes("x86_64=1024,256, 512;aarch64=384,1024") == {"x86_64": (256, 512, 1024),
                                                                         "aarch64": (384, 1024)}


@pytest.mark.parametrize(("text", "named"), [
    ("x86_64=128", ["128", "256"]),  # below libvirt's floor: the value and the floor
    ("x86_64=99999", ["99999", "65536"]),
    ("riscv64=512", ["riscv64", "x86_64", "aarch64"]),  # the arch and those allowed
    ("x86_64=5l2", ["'5l2'", "whole number"]),
    ("x86_64=512,512", ["512", "twice"]),
    ("x86_64=512;x86_64=1024", ["x86_64", "twice"]),
    ("x86_64:512", ["'x86_64:512'", "ARCH=MiB"]),
    ("", ["no arch"]),
])
def test_bad_sizes_are_refused_naming_the_value_and_what_is_allowed(text: str, named: list[str]) -> None:
    with pytest.raises(SweepError) as err:
        sweep.parse_sizes(text)
    for word in named:
        assert word in str(err.value)


def test_distros_other_than_bare_and_docker_are_refused() -> None:
    assert sweep.parse_distros("docker, bare") == ("docker", "bare")
    with pytest.raises(SweepError, match=r"'k3s'.*bare, docker"):
        sweep.parse_distros("k3s")


def test_the_default_matrix_crosses_the_boundary_on_both_arches() -> None:
    # From the libvirt floor (256 MiB) to 1 GiB, where Docker+MariaDB fit on both arches.
    cells = sweep.matrix(sweep.DEFAULT_SIZES, sweep.DISTROS)
    by_arch = {a: sorted({c.memory_mib for c in cells if c.arch == a}) for a in sweep.ARCHES}
    assert by_arch == {"x86_64": [256, 384, 512, 1024], "aarch64": [256, 384]}
    assert len(cells) == 12 and len(set(cells)) == 12
    assert [c.name for c in cells] == [
        "aarch64-docker-384m-1", "aarch64-docker-256m-1", "x86_64-docker-1024m-1",
        "x86_64-docker-512m-1", "x86_64-docker-384m-1", "x86_64-docker-256m-1", "aarch64-bare-256m-1",
        "aarch64-bare-384m-1", "x86_64-bare-256m-1", "x86_64-bare-384m-1",
        "x86_64-bare-512m-1", "x86_64-bare-1024m-1"]


def test_two_guests_run_one_of_each_arch_while_both_have_cells() -> None:
    queue = sweep.matrix(sweep.DEFAULT_SIZES, sweep.DISTROS)
    running: list[SweepCell] = []
    for _ in range(2):
        running.append(queue.pop(sweep.next_cell(queue, running)))
    started = [c.name for c in running]
    assert started == ["aarch64-docker-384m-1", "x86_64-docker-1024m-1"]
    running.remove(running[1])  # the x86_64 guest ends: the next x86_64 cell takes its place
    assert queue[sweep.next_cell(queue, running)].name == "x86_64-docker-512m-1"
    rest = [c for c in queue if c.arch == "aarch64"]
    assert sweep.next_cell(rest, running) == 0  # only the busy arch is left: its first cell


def test_cell_names_are_the_fleets_sweep_names_and_carry_the_size_to_the_fit_matrix() -> None:
    cell = SweepCell("x86_64", "docker", 512)
    assert cell.name == "x86_64-docker-512m-1"
    assert fit.nominal_size({"cell": cell.name, "mem_total_mib": 470.0}) == 512


def test_the_key_changes_with_arch_distro_size_kit_version_and_kit_hash() -> None:
    base = SweepCell("x86_64", "docker", 512)
    keys = {base.key("0.2.0", "aaaa"), base.key("0.3.0", "aaaa"), base.key("0.2.0", "bbbb"),
            SweepCell("aarch64", "docker", 512).key("0.2.0", "aaaa"),
            SweepCell("x86_64", "bare", 512).key("0.2.0", "aaaa"),
            SweepCell("x86_64", "docker", 384).key("0.2.0", "aaaa")}
    assert len(keys) == 6
    assert base.key("0.2.0", "aaaa") == "x86_64-docker-512m-1.kit0.2.0-aaaa"


def _record(cell: SweepCell, status: str = "ok", wall: float = 100.0) -> dict[str, Any]:
    result = {"schema": "k8s-footprint/result/v2", "status": status, "cell": cell.name, "arch": cell.arch,
              "distro": cell.distro, "error": "x"} if status == NO_RESULT else {
        "schema": "k8s-footprint/result/v2", "status": status, "cell": cell.name, "arch": cell.arch,
        "distro": cell.distro, "mem_total_mib": 470.0, "oom_kills": 0, "api": None, "workload": None,
        "phases": {"os": None, "idle": {"used_mib": {"median": 300.0, "p95": 310.0}}, "workload": None}}
    return sweep.cell_record(cell, Settings(), result, {"boot_to_ssh": 80.0}, wall, "2026-11-30T06:00:00Z",
                             kit_version(), kit_hash())


def test_resume_skips_cells_with_a_record_for_this_kit_only(tmp_path: Path) -> None:
    a, b, c = SweepCell("x86_64", "bare", 256), SweepCell("x86_64", "bare", 512), SweepCell("x86_64", "docker", 512)
    version, digest = kit_version(), kit_hash()
    sweep.write_atomic(sweep.record_path(tmp_path, a, version, digest), json.dumps(_record(a)))
    # b: a record from another kit; c: a record cut off half-way (not JSON)
    sweep.write_atomic(sweep.record_path(tmp_path, b, version, "0" * 16), json.dumps(_record(b)))
    sweep.record_path(tmp_path, c, version, digest).write_text('{"cell": "x86_64-docker-512m-1", "res')
    assert sweep.pending([a, b, c], tmp_path, version, digest) == [b, c]


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_temporary(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "cells" / "x.json"
    sweep.write_atomic(path, "old\n")

    def refuse(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        sweep.write_atomic(path, "new\n")
    assert path.read_text() == "old\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["x.json"]


def test_progress_says_cell_n_of_m_elapsed_and_expected() -> None:
    line = sweep.progress_line(3, 12, SweepCell("aarch64", "docker", 384), "start", 754.0, 3725.0)
    assert "cell 3 of 12 aarch64-docker-384m-1: start (elapsed 0:12:34, expected left ~1:02:05)" in line
    two = [SweepCell("x86_64", "docker", 512), SweepCell("x86_64", "bare", 512)]
    assert sweep.expected_left(two, 2) == (sweep.EXPECTED_S[("x86_64", "docker")]
                                           + sweep.EXPECTED_S[("x86_64", "bare")]) / 2


def test_a_cell_without_a_guest_image_is_a_no_result_naming_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.vm import images

    monkeypatch.setattr(images, "cached", lambda arch, initramfs_modules="list": None)
    result, timings, log = sweep.run_cell(SweepCell("x86_64", "bare", 256), Settings())
    assert result["status"] == NO_RESULT and result["arch"] == "x86_64" and result["distro"] == "bare"
    assert result["cell"] == "x86_64-bare-256m-1" and result["kit_version"] == kit_version()
    assert result["error"].startswith("find the guest image: no cached x86_64 guest image")
    assert timings == {} and log == ""
    assert fit.verdict(result, 100).verdict == "no"


def test_a_step_past_the_cells_budget_is_refused() -> None:
    budget = sweep._Budget(0.0)
    with pytest.raises(sweep._OverBudget, match="wall budget of 0 s before or during: bootstrap"):
        budget.left("bootstrap", 60)
    assert sweep._Budget(100.0).left("boot", 30) == 30


def _fake_children(monkeypatch: pytest.MonkeyPatch, script: str) -> None:
    """The sweep's child replaced by a short Python script, given the cell's arguments."""
    real = sweep._child_argv

    def argv(cell: SweepCell, settings: Settings, out: Path) -> list[str]:
        return [sys.executable, "-c", script, *real(cell, settings, out)[3:]]

    monkeypatch.setattr(sweep, "_child_argv", argv)


def test_a_child_that_dies_or_hangs_is_recorded_and_the_sweep_goes_on(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    dies, hangs = SweepCell("x86_64", "bare", 256), SweepCell("x86_64", "bare", 384)
    _fake_children(monkeypatch, "import sys, time\nif '384' in sys.argv: time.sleep(600)\nsys.exit(7)")
    monkeypatch.setattr(sweep, "BUDGET_S", {("x86_64", "bare"): 1})
    monkeypatch.setattr(sweep, "CHILD_GRACE_S", 2)
    lines: list[str] = []
    done = sweep.sweep([dies, hangs], tmp_path, Settings(), jobs=2, log=lines.append)
    errors = {r["cell"]: r["result"]["error"] for r in done}
    assert errors == {"x86_64-bare-256m-1": "the cell's runner exited 7 without a record",
                      "x86_64-bare-384m-1": "the cell's runner was stopped after 3 s"}
    assert all(r["verdict"]["verdict"] == "no" for r in done)
    assert sweep.pending([dies, hangs], tmp_path, kit_version(), kit_hash()) == []
    assert any("cell 2 of 2 x86_64-bare-384m-1: start" in line for line in lines)
    assert "| bare | no (no_result) | no (no_result) | - |" in (tmp_path / "fit-matrix.md").read_text()
    summary = (tmp_path / "summary.md").read_text()
    assert "2 of 2 cells done." in summary and "over 1 session(s)" in summary


def test_a_second_run_skips_finished_cells_and_the_summary_adds_both_sessions(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = SweepCell("x86_64", "bare", 256), SweepCell("x86_64", "bare", 512)
    version, digest = kit_version(), kit_hash()
    # The fake child writes the record the real one would, for the cell it was given.
    script = ("import sys, json\nfrom pathlib import Path\nfrom tests.vm import sweep\n"
              "a = sys.argv[sys.argv.index('--memory') + 1]\n"
              "cell = sweep.SweepCell('x86_64', 'bare', int(a))\n"
              "from tests.unit.test_sweep_vm import _record\n"
              "out = Path(sys.argv[sys.argv.index('--out') + 1])\n"
              "from components.commands import kit_hash, kit_version\n"
              "path = sweep.record_path(out, cell, kit_version(), kit_hash())\n"
              "sweep.write_atomic(path, json.dumps(_record(cell)))\n")
    _fake_children(monkeypatch, script)
    ran1 = sweep.sweep([first], tmp_path, Settings(), jobs=1, log=lambda s: None)
    ran2 = sweep.sweep([first, second], tmp_path, Settings(), jobs=1, log=lambda s: None)
    assert [r["cell"] for r in ran1] == [first.name] and [r["cell"] for r in ran2] == [second.name]
    runs = sweep.sessions(tmp_path, digest)
    assert [s["cells_run"] for s in runs] == [[first.name], [second.name]]
    summary = (tmp_path / "summary.md").read_text()
    assert "over 2 session(s)" in summary and "2 of 2 cells done." in summary
    assert "| x86_64-bare-512m-1 | 512 | ok | fits (ok) | 300 | 470 | 0:01:40 | 80 s |" in summary
    assert version is not None and f"kit {version} ({digest})" in summary


def test_a_multi_line_error_with_console_colours_stays_on_its_row_of_the_summary() -> None:
    # What a boot timeout really said (qemu.boot appends the console's tail).
    cell = SweepCell("x86_64", "bare", 256)
    rec = _record(cell, NO_RESULT)
    rec["result"]["error"] = ("boot to SSH: x86_64-bare-256m-1: no SSH after 420 s; console:\n"
                              "[\x1b[0;32m  OK  \x1b[0m] Started | fstrim.timer\n")
    rec["host_load_1m"] = {"start": 14.6, "end": 15.0}
    md = sweep.summary_markdown([cell], {cell.name: rec}, [], "0.2.0", "aaaa")
    row = next(line for line in md.splitlines() if line.startswith("| x86_64-bare-256m-1"))
    assert row == ("| x86_64-bare-256m-1 | 256 | no_result: boot to SSH: x86_64-bare-256m-1: no SSH after 420 s; "
                   "console: | no (no_result) | - | - | 0:01:40 | 80 s | - | - | 14.6 → 15.0 |")


def test_commit_takes_only_the_sweeps_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    repo = tmp_path / "repo"
    out = repo / "benchmarks" / "results" / "sweep"
    out.mkdir(parents=True)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", str(repo)], check=True)
    (repo / "other.txt").write_text("work in progress\n")
    subprocess.run(["git", "-C", str(repo), "add", "other.txt"], check=True)  # staged, not the sweep's
    (out / "summary.md").write_text("1 of 1 cells done.\n")
    monkeypatch.chdir(repo)
    monkeypatch.setenv("GIT_AUTHOR_NAME", "t")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "t@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "t")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "t@example.invalid")
    lines: list[str] = []
    sweep.commit_cell(Path("benchmarks/results/sweep"), _record(SweepCell("x86_64", "bare", 512)), lines.append)
    shown = subprocess.run(["git", "show", "--name-only", "--format=%s", "HEAD"], capture_output=True, text=True,
                           check=True).stdout.split("\n")
    assert shown[0].startswith("sweep-vm: x86_64-bare-512m-1 (kit ") and "ok, fit fits (ok), wall 0:01:40" in shown[0]
    assert [f for f in shown[1:] if f] == ["benchmarks/results/sweep/summary.md"]
    staged = subprocess.run(["git", "diff", "--cached", "--name-only"], capture_output=True, text=True, check=True)
    assert staged.stdout.split() == ["other.txt"]
    assert lines[-1].startswith("[sweep] committed: sweep-vm: x86_64-bare-512m-1")


def test_the_reports_draw_a_timeline_for_each_cell_with_series(tmp_path: Path) -> None:
    from tests.synthetic_series import docker_fits

    fits, bare = SweepCell("x86_64", "docker", 1024), SweepCell("x86_64", "bare", 256)
    version, digest = kit_version(), kit_hash()
    rec = _record(fits)
    rec["result"] = docker_fits(fits.name)
    sweep.write_atomic(sweep.record_path(tmp_path, fits, version, digest), json.dumps(rec))
    sweep.write_atomic(sweep.record_path(tmp_path, bare, version, digest), json.dumps(_record(bare, NO_RESULT)))
    assert sweep.main(["report", "--out", str(tmp_path), "--sizes", "x86_64=256,1024"]) == 0
    drawn = sorted(p.name for p in tmp_path.glob("*.png"))
    assert drawn == ["sweep-timeline-x86_64-docker-1024m-1.png", "sweep-timelines.png"]
    assert "| docker |  | fits" in (tmp_path / "fit-matrix.md").read_text()


def test_with_commit_each_cell_and_the_sessions_end_are_committed(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for key in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{key}_NAME", "t")
        monkeypatch.setenv(f"GIT_{key}_EMAIL", "t@example.invalid")
    _fake_children(monkeypatch, "import sys\nsys.exit(7)")
    cwd = Path.cwd()
    monkeypatch.chdir(repo)
    # the fake child is `python -c`, which needs the project on its path
    monkeypatch.setenv("PYTHONPATH", str(cwd))
    sweep.sweep([SweepCell("x86_64", "bare", 256)], Path("sweep"), Settings(), jobs=1, log=lambda s: None,
                commit=True)
    subjects = subprocess.run(["git", "log", "--format=%s"], capture_output=True, text=True, check=True).stdout
    first, last = subjects.strip().splitlines()[::-1]
    assert first.startswith("sweep-vm: x86_64-bare-256m-1 (kit ") and "no_result, fit no (no_result)" in first
    assert last.startswith("sweep-vm: a session ended after 0:00:") and last.endswith("1 cell(s) run")
    assert subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True,
                          check=True).stdout == ""  # the summary's session line is committed too


def test_each_step_is_logged_named_while_it_runs_and_timed_only_when_it_finishes() -> None:
    logged: list[str] = []
    steps = sweep._Steps("x86_64-docker-256m-1", logged.append)
    with steps("upload the kit", "upload_kit"):
        assert steps.now == "upload the kit"
    with pytest.raises(RuntimeError), steps("benchmark", "benchmark"):
        raise RuntimeError("ssh: connection lost")
    # A failure is reported as the step it happened in; a step that failed has no time.
    assert steps.now == "benchmark" and set(steps.timings) == {"upload_kit"}
    assert steps.timings["upload_kit"] >= 0
    assert logged == ["x86_64-docker-256m-1: upload the kit", "x86_64-docker-256m-1: benchmark"]
