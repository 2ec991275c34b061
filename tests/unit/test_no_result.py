"""One failed cell stays that cell's: a kit that dies or times out, or output that is no result,
is the cell's no_result document; the update and every other cell's result go on (issue 14)."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
from pathlib import Path

import pytest

from components import commands
from components.commands import BenchPlan, cell_commands, kit_hash, remote_kit_dir
from components.results import parse_result, read_result, summary_table
from components.schema import validate_result
from tests.conftest import ROOT, FleetMocks, fake_result, resolve, set_stack_config

CELL = "x86_64-k3s-1"


def fake_kit(root: Path, body: str) -> tuple[Path, str]:
    """A kit folder named like the real one, whose k8sf runs BODY; placed in a fake home where
    DistroBootstrap's CopyToRemote would have put it. Returns (home, digest)."""
    kit = root / "src" / "guest"
    kit.mkdir(parents=True)
    (kit / "k8sf").write_text(f"#!/bin/sh\n{body}\n")
    (kit / "VERSION").write_text("9.9.9\n")
    digest = kit_hash(kit)
    home = root / "home"
    landed = home / remote_kit_dir(digest, kit)
    landed.parent.mkdir(parents=True)
    subprocess.run(["cp", "-R", str(kit), str(landed)], check=True)
    return home, digest


def run_benchmark(root: Path, body: str, plan: BenchPlan) -> subprocess.CompletedProcess[str]:
    home, digest = fake_kit(root, body)
    command = cell_commands(plan, digest, root / "src" / "guest").benchmark
    # The string the Command resource hands to the SSH session's shell, run by a real one.
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(["sh", "-c", command], capture_output=True, text=True, env=env, timeout=120)


needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="the kit runs as root (else through sudo -n)")


@needs_root
def test_a_kit_that_dies_still_yields_a_no_result_document_and_exit_0(tmp_path: Path) -> None:
    proc = run_benchmark(tmp_path, 'echo "half a line" ; echo "k8sf: k3s crashed" >&2; exit 7',
                         BenchPlan(cell=CELL, distro="k3s"))
    assert proc.returncode == 0, proc.stderr
    assert "k8sf: k3s crashed" in proc.stderr  # the kit's log stays the command's stderr
    doc = read_result(proc.stdout, CELL)  # strict: it is a real document, not a parse fallback
    validate_result(doc)
    assert doc == {"schema": "k8s-footprint/result/v2", "status": "no_result", "cell": CELL, "distro": "k3s",
                   "kit_version": "9.9.9",
                   "error": "k8sf benchmark exited with status 7; its log is the command's stderr"}


@needs_root
def test_a_kit_that_times_out_yields_a_no_result_saying_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(BenchPlan, "benchmark_timeout_s", lambda self: 1)
    proc = run_benchmark(tmp_path, "sleep 30", BenchPlan(cell=CELL, distro="k3s"))
    assert proc.returncode == 0, proc.stderr
    doc = read_result(proc.stdout, CELL)
    assert (doc["status"], doc["error"]) == ("no_result", "k8sf benchmark timed out after 1 s; its log is the "
                                                          "command's stderr")


@needs_root
def test_a_kit_that_succeeds_passes_its_result_through_untouched(tmp_path: Path) -> None:
    result = fake_result(CELL, "k3s", "oom")
    proc = run_benchmark(tmp_path, f"echo '{json.dumps(result)}'", BenchPlan(cell=CELL, distro="k3s"))
    assert (proc.returncode, proc.stdout) == (0, json.dumps(result) + "\n")
    assert read_result(proc.stdout, CELL) == result


def test_the_guard_wraps_the_kit_line_exits_0_and_holds_no_secret() -> None:
    plan = BenchPlan(cell=CELL, distro="k3s", power_off_after=True)
    line = commands.no_result_guard("true", plan, "0.2.0", power_off=True)
    assert line.startswith("true; rc=$?; if [ $rc -ne 0 ]; then ")
    assert line.endswith("fi; exit 0")
    for word in ("password", "PRIVATE KEY", "PULUMI_CONFIG_PASSPHRASE"):
        assert word not in line


def test_unparseable_output_is_that_cells_no_result_under_the_mocks(mocks: FleetMocks) -> None:
    mocks.bench_stdout["x86_64-k3s-1"] = "Segmentation fault\n"
    set_stack_config({"arches": ["x86_64"], "distros": ["bare", "k3s"]})
    program = runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")
    results = resolve(program["results"])
    assert results["x86_64-bare-1"]["status"] == "ok"
    broken = results["x86_64-k3s-1"]
    assert broken["status"] == "no_result" and "printed no JSON result" in broken["error"]
    assert "'Segmentation fault'" in broken["error"]
    validate_result(broken)
    summary = resolve(program["summary"])
    assert "| x86_64-k3s-1 | no_result: x86_64-k3s-1: the guest kit printed no JSON result" in summary
    assert summary == summary_table(results)
    # The same no_result, with the provenance the program stamps on every v2 document (test_provenance.py).
    assert parse_result("Segmentation fault\n", "x86_64-k3s-1") == {k: v for k, v in broken.items()
                                                                      if k != "provenance"}
    assert broken["provenance"]["machine"] == {"backend": "libvirt", "memory_mib": 1024, "vcpus": 1}
