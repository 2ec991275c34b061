"""The run folder that `make up` writes after `pulumi up`, and `make report` redraws (issue 14, point 2)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from fleet import runfolder
from tests.conftest import ROOT, fake_result
from tests.unit.test_recover import EVENTS, FAILED, export

NOW = datetime(2026, 11, 30, 4, 5, 6, tzinfo=UTC)
CONFIG = {"k8s-footprint:backend": {"value": "libvirt", "secret": False},
          "k8s-footprint:sshPrivateKey": {"secret": True},  # `pulumi config --json` leaves a secret's value out
          "k8s-footprint:apiToken": {"value": "hunter2", "secret": True}}  # ... or, with --show-secrets, not
VERSIONS = {"program": {"commit": "abc", "dirty": False}, "kit": {"version": "0.2.0", "hash": "f" * 16}}


def outputs_of_a_full_update() -> dict[str, object]:
    return {"runId": "dev", "results": {"x86_64-bare-1": fake_result("x86_64-bare-1", "bare")}, "summary": "|..."}


def test_make_ups_step_writes_a_run_folder_and_make_report_redraws_it(tmp_path: Path) -> None:
    run_dir = runfolder.write_run_folder(tmp_path, "dev", outputs_of_a_full_update(), export(FAILED, pending=True),
                                         EVENTS, CONFIG, VERSIONS, NOW)
    assert run_dir == tmp_path / "dev-dev-20261130T040506Z"
    assert sorted(p.name for p in (run_dir / "cells").iterdir()) == [
        "x86_64-bare-1.json", "x86_64-docker-1.json", f"{FAILED}.json"]
    assert json.loads((run_dir / "cells" / f"{FAILED}.json").read_text())["status"] == "no_result"
    assert json.loads((run_dir / "outputs.json").read_text())["runId"] == "dev"
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["config"]["k8s-footprint:sshPrivateKey"] == {"secret": True, "value": "[secret]"}
    assert manifest["config"]["k8s-footprint:backend"] == {"value": "libvirt", "secret": False}
    assert "hunter2" not in (run_dir / "manifest.json").read_text()
    assert manifest["versions"]["providers"] == {"command": "1.2.1"}
    assert manifest["versions"]["kit"] == VERSIONS["kit"]
    assert manifest["timestamps"] == {"written": "2026-11-30T04:05:06+00:00", "upStarted": 1, "upEnded": 3}
    drawn = (run_dir / "report.md").read_text()
    assert "| bare | x86_64 | 1 |" in drawn and f"- {FAILED}: no result (" in drawn
    assert (run_dir / "report.html").is_file() and (run_dir / "report.png").is_file()

    (run_dir / "report.md").unlink()
    (run_dir / "report.html").unlink()
    assert runfolder.main(["report", "--root", str(tmp_path), "--stack", "dev"]) == 0  # make report
    assert (run_dir / "report.md").read_text() == drawn and (run_dir / "report.html").is_file()


def test_a_second_run_of_the_same_stack_gets_its_own_folder(tmp_path: Path) -> None:
    first = runfolder.write_run_folder(tmp_path, "dev", {}, export(FAILED, pending=False), [], {}, {}, NOW)
    later = NOW.replace(minute=6)
    second = runfolder.write_run_folder(tmp_path, "dev", {}, export(FAILED, pending=False), [], {}, {}, later)
    assert first != second and first.is_dir()
    assert runfolder.newest_run(tmp_path, "dev") == second


def test_results_is_ignored_by_git_and_destroy_never_touches_it() -> None:
    assert "/results/" in (ROOT / ".gitignore").read_text().splitlines()
    makefile = (ROOT / "Makefile").read_text()
    destroy = makefile.split("\ndestroy:", 1)[1].split("\n\n", 1)[0]
    assert "results" not in destroy.replace("$(ARGS)", "")
    up = makefile.split("\nup:", 1)[1].split("\n\n", 1)[0]
    assert "fleet.runfolder write" in up and "--event-log" in up


def test_an_up_that_made_no_cell_still_gets_a_run_folder(tmp_path: Path) -> None:
    run_dir = runfolder.write_run_folder(tmp_path, "dev", {}, {"version": 3, "deployment": {}}, [], {}, {}, NOW)
    assert (run_dir / "manifest.json").is_file() and list((run_dir / "cells").iterdir()) == []
    assert "Cells without a result" not in (run_dir / "report.md").read_text()
