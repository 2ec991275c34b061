"""The fit verdict: one function, every reason, from v1 and v2 results alike."""

from __future__ import annotations

import copy
import json
import subprocess
from typing import Any

import pytest

from components import fit
from components.commands import KIT_DIR
from components.results import FAILURE_RANKING, NO_RESULT
from tests.conftest import fake_result


def ok(distro: str = "docker", used_p95: float = 310.0, total: float = 957.0) -> dict[str, Any]:
    r = fake_result(f"x86_64-{distro}-1", distro)
    r["mem_total_mib"] = total
    used = {"median": used_p95 - 10, "p95": used_p95, "min": used_p95 - 20, "max": used_p95 + 5}
    r["phases"]["workload"] = {**r["phases"]["idle"], "used_mib": used}
    r["workload"] = {"name": "mysql", "ready": True, "error": None}
    return r


def test_a_healthy_cell_fits_and_reports_the_workload_phase() -> None:
    v = fit.verdict(ok(used_p95=310.0), headroom_mib=100)
    assert (v.verdict, v.reason, v.used_mib, v.available_p95_mib) == ("fits", "ok", 300.0, 647.0)


@pytest.mark.parametrize("status", FAILURE_RANKING)
def test_every_failure_status_is_no_with_the_status_as_reason(status: str) -> None:
    r = ok()
    r["status"] = status
    assert (fit.verdict(r, 100).verdict, fit.verdict(r, 100).reason) == ("no", status)


def test_no_result_is_no() -> None:
    v = fit.verdict({"schema": "k8s-footprint/result/v2", "status": NO_RESULT, "cell": "c", "error": "x"}, 100)
    assert (v.verdict, v.reason) == ("no", NO_RESULT)


def test_the_figures_count_even_where_an_older_kit_said_ok() -> None:
    oom = ok()
    oom["oom_kills"] = 1
    assert (fit.verdict(oom, 100).verdict, fit.verdict(oom, 100).reason) == ("no", "oom")
    api = ok("k3s")
    api["api"] = {"idle": {"ok": True, "latency_ms": 12}, "workload": {"ok": False, "latency_ms": None}}
    assert fit.verdict(api, 100).reason == "api_unresponsive"
    failed = ok()
    failed["workload"]["ready"] = False
    assert fit.verdict(failed, 100).reason == "workload_failed"
    # Both: the reason is the higher of the two in the one status table.
    both = copy.deepcopy(api)
    both["oom_kills"] = 2
    assert fit.verdict(both, 100).reason == min(("oom", "api_unresponsive"), key=FAILURE_RANKING.index)


def test_a_v2_probe_failure_is_api_unresponsive() -> None:
    r = ok("k3s")
    r["api"] = {"failed_probes": 1, "idle": {"probes": 5, "failed": 0}, "workload": {"probes": 5, "failed": 1}}
    assert fit.verdict(r, 100).reason == "api_unresponsive"


def test_little_headroom_at_the_workload_p95_is_tight() -> None:
    v = fit.verdict(ok(used_p95=900.0, total=957.0), headroom_mib=100)
    assert (v.verdict, v.reason, v.available_p95_mib) == ("tight", "headroom", 57.0)
    assert fit.verdict(ok(used_p95=900.0, total=957.0), headroom_mib=50).verdict == "fits"


def test_memory_pressure_is_tight_where_the_result_has_psi() -> None:
    r = ok()
    r["phases"]["workload"][fit.PSI_FIELD] = {"max": 25.0}
    v = fit.verdict(r, 100)
    assert (v.verdict, v.reason, v.psi_max) == ("tight", "pressure", 25.0)
    r["phases"]["workload"][fit.PSI_FIELD] = {"max": 0.5}
    assert fit.verdict(r, 100).verdict == "fits"


def test_without_a_workload_the_idle_phase_decides() -> None:
    r = fake_result("x86_64-bare-1", "bare")
    assert fit.verdict(r, 100).verdict == "fits"
    assert fit.verdict(r, 700).reason == "headroom"


def test_the_table_gives_the_smallest_size_that_fits_and_every_size_tried() -> None:
    no = fit.Verdict("no", "oom", 480.0, 5.0, None)
    yes = fit.Verdict("fits", "ok", 350.0, 600.0, None)
    tight = fit.Verdict("tight", "headroom", 700.0, 60.0, None)
    table = fit.fit_table([fit.FitCell("x86_64", "docker", 512, no), fit.FitCell("x86_64", "docker", 768, tight),
                           fit.FitCell("x86_64", "docker", 1024, yes), fit.FitCell("x86_64", "docker", 1024, no),
                           fit.FitCell("x86_64", "k3s", 512, no)])
    docker = table["x86_64"]["docker"]
    assert docker["smallestFitMiB"] == 768  # tight still fits
    assert docker["sizes"]["1024"]["verdict"] == "no"  # one repetition failing fails the size
    assert docker["sizes"]["1024"]["repetitions"] == 2 and docker["sizes"]["1024"]["usedMiB"] == 415.0
    assert table["x86_64"]["k3s"] == {"smallestFitMiB": None, "sizes": {"512": {**no.as_output(), "repetitions": 1}}}


def test_the_matrix_leaves_untried_sizes_blank_and_reads_sizes_of_older_results() -> None:
    old = ok()  # an unsized cell: its size is MemTotal rounded up to 128 MiB
    small = ok()
    small["cell"], small["mem_total_mib"], small["status"] = "x86_64-docker-512m-1", 470.0, "oom"
    bare = fake_result("x86_64-bare-768m-1", "bare")
    assert fit.nominal_size(old) == 1024 and fit.nominal_size(small) == 512 and fit.nominal_size(bare) == 768
    md = fit.fit_markdown([old, small, bare], 100, ("bare", "docker"))
    assert "| distro | 512 MiB | 768 MiB | 1024 MiB | smallest fit |" in md
    assert "| bare |  | fits, 300 |  | 768 MiB |" in md
    assert "| docker | no (oom), 300 |  | fits, 300 | 1024 MiB |" in md


def test_the_matrix_shows_a_sized_no_result_as_tried_and_failed() -> None:
    # A VM sweep's guest that never answered at 256 MiB was tried there: not a blank.
    booted = fake_result("x86_64-bare-1024m-1", "bare")
    never = {"schema": "k8s-footprint/result/v2", "status": NO_RESULT, "cell": "x86_64-bare-256m-1",
             "arch": "x86_64", "distro": "bare", "error": "boot to SSH: no SSH after 420 s"}
    unnamed = {"schema": "k8s-footprint/result/v2", "status": NO_RESULT, "cell": "x86_64-bare-1", "error": "x"}
    md = fit.fit_markdown([booted, never, unnamed], 100, ("bare",))
    assert "| bare | no (no_result) | fits, 300 | 1024 MiB |" in md


def kit_phase(psi: list[str]) -> dict[str, Any]:
    """A workload phase as the kit's stats.awk writes it (kit 0.3.0), with these PSI readings."""
    tsv = "clock\t0\t0\n" + "".join(f"sample\nmem\t979968\t{300 * 1024}\t{657 * 1024}\t1\t1\t1\t{p}\t1\t1\t{i}\n"
                                    for i, p in enumerate(psi))
    out = subprocess.run(["awk", "-v", "interval=5", "-v", "t0_ms=0", "-f", str(KIT_DIR / "lib" / "stats.awk")],
                         input=tsv, capture_output=True, text=True, check=True, timeout=30).stdout
    return dict(json.loads(out))


def test_the_verdict_reads_the_pressure_the_kit_writes() -> None:
    r = ok()
    r["phases"]["workload"] = kit_phase(["0.00", "31.50", "2.00", "0.10", "0.00"])
    v = fit.verdict(r, 100)
    assert (v.verdict, v.reason, v.psi_max) == ("tight", "pressure", 31.5)
    r["phases"]["workload"] = kit_phase(["-"] * 5)  # a kernel without /proc/pressure/memory
    assert r["phases"]["workload"][fit.PSI_FIELD] is None
    assert (fit.verdict(r, 100).verdict, fit.verdict(r, 100).psi_max) == ("fits", None)
