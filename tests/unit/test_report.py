"""The report: pooling, the table, the chart and page, bad input, and the baseline comparison."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from tests.conftest import fake_result
from tests.unit.test_statuses import failure, v2_result


def result(distro: str, arch: str = "x86_64", rep: int = 1, os_: float = 200, idle: float = 300,
           workload: float | None = None, status: str = "ok", legacy: float = 150) -> dict[str, Any]:
    r = fake_result(f"{arch}-{distro}-{rep}", distro, status)
    r["arch"] = arch

    def phase(v: float) -> dict[str, Any]:
        stats = {"median": v, "p95": v + 5, "min": v - 2, "max": v + 6}
        return {"samples": 5, "interval_s": 5, "used_mib": stats, "available_mib": stats,
                "used_legacy_mib": {"median": legacy}, "cgroups_mib": {}, "top_processes": []}

    r["phases"] = {"os": phase(os_), "idle": phase(idle), "workload": phase(workload) if workload else None}
    return r


def test_rows_pool_repetitions_and_compute_footprint_and_delta_vs_docker() -> None:
    rows = report.build_rows([
        result("docker", idle=260, os_=200), result("k3s", rep=1, os_=200, idle=700),
        result("k3s", rep=2, os_=210, idle=720), result("k3s", rep=3, os_=190, idle=710, status="oom"),
    ])
    k3s = next(r for r in rows if r.distro == "k3s")
    assert [r.distro for r in rows] == ["docker", "k3s"]
    assert k3s.stat("idle") == report.Stat(710, 720, 3)
    assert k3s.footprint == report.Stat(510, 520, 3)
    assert k3s.statuses == {"ok": 2, "oom": 1}
    table = report.markdown(rows)
    line = next(x for x in table.splitlines() if x.startswith("| k3s |"))
    assert line.startswith("| k3s | x86_64 | 3 | 200 [210] | 710 [720] | - | 510 [520] | +450 |")
    assert "ok 2, oom 1" in line and "| 750 (ours, same formula: 150) |" in line


def test_footprint_net_of_the_per_cpu_lists_when_every_repetition_carries_them() -> None:
    def with_pcp(r: dict[str, Any], os_pcp: float, idle_pcp: float) -> dict[str, Any]:
        r["phases"]["os"]["pcp_free_mib"] = {"median": os_pcp, "max": os_pcp + 1}
        r["phases"]["idle"]["pcp_free_mib"] = {"median": idle_pcp, "max": idle_pcp + 1}
        return r

    # As measured: 46 MiB on the lists during the OS baseline, 13 at idle.
    docker = report.build_rows([with_pcp(result("docker", os_=233, idle=277), 46, 13)])[0]
    assert docker.footprint == report.Stat(44, 44, 1)
    assert docker.footprint_net == report.Stat(77, 77, 1)
    line = next(x for x in report.markdown([docker]).splitlines() if x.startswith("| docker |"))
    assert "| 44 (77 net) |" in line
    # One repetition from an older kit: no net figure rather than a figure from half the runs.
    mixed = report.build_rows([with_pcp(result("docker", os_=233, idle=277), 46, 13),
                               result("docker", rep=2, os_=190, idle=250)])[0]
    assert mixed.footprint_net is None and mixed.footprint_cell() == "52 [60]"


def test_a_difference_just_below_zero_prints_as_0_not_minus_0() -> None:
    assert str(report.Stat(-0.3, -0.3, 1)) == "0"
    assert str(report.Stat(-0.6, 2.4, 2)) == "-1 [2]"


def test_api_column_shows_latency_or_the_error() -> None:
    ok = result("k3s")
    bad = result("k3s", rep=2, status="api_unresponsive")
    bad["api"] = {"idle": {"ok": False, "latency_ms": None, "error": "no answer within 20 s"}, "workload": None}
    row = report.build_rows([ok, bad])[0]
    assert row.api("idle") == "ok 12 ms (1/2); failed 1/2: no answer within 20 s"
    assert row.api("workload") == "-"


def test_reads_stack_outputs_result_files_and_folders(tmp_path: Path) -> None:
    outputs = {"runId": "dev", "results": {"x86_64-bare-1": result("bare")}, "summary": "..."}
    (tmp_path / "stack.json").write_text(json.dumps(outputs))
    folder = tmp_path / "runs"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps(result("docker")))
    (folder / "durations.json").write_text(json.dumps({"x86_64": {}}))  # not a result: skipped in folders
    found = report.load([str(tmp_path / "stack.json"), str(folder)])
    assert sorted(r["distro"] for r in found) == ["bare", "docker"]
    assert report.load(["-"], stdin=io.StringIO(json.dumps(outputs)))[0]["distro"] == "bare"


@pytest.mark.parametrize(("content", "message"), [
    ("{not json", "not JSON"),
    (json.dumps({"schema": "other/v1"}), "not a result (k8s-footprint/result/v1 or k8s-footprint/result/v2)"),
    (json.dumps({**result("bare"), "status": "great"}), "field status: 'great' is not one of"),
    (json.dumps({"results": {"c": {**result("bare"), "oom_kills": -1}}}), "results.c: field oom_kills"),
])
def test_bad_input_names_the_file_and_the_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(report.ReportError) as err:
        report.load([str(path)])
    assert str(path) in str(err.value) and message in str(err.value)


def test_unreadable_file_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert report.main([str(tmp_path / "missing.json")]) == 2
    assert "missing.json: cannot read (No such file or directory)" in capsys.readouterr().err


def test_png_and_html_are_written_and_show_failed_cells(tmp_path: Path) -> None:
    inputs = tmp_path / "r.json"
    results = [result("bare", arch=a) for a in ("x86_64", "aarch64")]
    results += [result("k3s", arch="aarch64", idle=900, status="oom")]
    inputs.write_text(json.dumps({"results": {f"c{i}": r for i, r in enumerate(results)}}))
    html_path, md_path = tmp_path / "report.html", tmp_path / "report.md"
    assert report.main([str(inputs), "--html", str(html_path), "--markdown", str(md_path)]) == 0
    png = html_path.with_suffix(".png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    page = html_path.read_text()
    assert "data:image/png;base64," in page and "<td>k3s</td>" in page and "oom 1" in page
    # Three rows in the main table, and three more in the fit matrix (bare on each arch, k3s on aarch64).
    assert sum(line.startswith(("| bare |", "| k3s |")) for line in md_path.read_text().splitlines()) == 6
    assert "<h2>aarch64:</h2>" in page and "<td>no (oom), 900</td>" in page


def test_mann_whitney_on_known_samples() -> None:
    assert report.mann_whitney_p([1, 2, 3, 4, 5], [6, 7, 8, 9, 10]) < 0.01
    assert report.mann_whitney_p([6, 7, 8, 9, 10], [1, 2, 3, 4, 5]) > 0.99
    assert 0.3 < report.mann_whitney_p([1, 2, 3], [1, 2, 3]) < 0.7


def reps(distro: str, values: list[float]) -> list[dict[str, Any]]:
    return [result(distro, rep=i + 1, idle=v) for i, v in enumerate(values)]


def test_compare_flags_a_heavier_release_past_threshold_and_spread() -> None:
    old = report.build_rows(reps("k3s", [700, 705, 698, 702]))
    new = report.build_rows(reps("k3s", [760, 770, 758, 765]))
    idle = next(c for c in report.compare(old, new) if c.phase == "idle")
    assert idle.verdict == "heavier" and idle.delta == pytest.approx(762.5 - 701)


def test_compare_ignores_a_shift_within_the_spread_or_below_threshold() -> None:
    old = report.build_rows(reps("k3s", [700, 780, 690, 760]))
    noisy = report.build_rows(reps("k3s", [720, 790, 700, 770]))  # +20 but the ranges overlap
    assert [c.verdict for c in report.compare(old, noisy) if c.phase == "idle"] == ["unchanged"]
    small = report.build_rows(reps("k3s", [706, 708, 707, 709]))  # consistent but under 5 %
    assert [c.verdict for c in report.compare(report.build_rows(reps("k3s", [700, 701, 702, 703])), small)
            if c.phase == "idle"] == ["unchanged"]


def test_compare_with_one_repetition_needs_a_clear_gap() -> None:
    old = report.build_rows(reps("docker", [260]))
    assert report.compare(old, report.build_rows(reps("docker", [320])))[0].verdict == "heavier"
    assert report.compare(old, report.build_rows(reps("docker", [265])))[0].verdict == "unchanged"


def test_cli_exits_3_when_something_got_heavier(tmp_path: Path) -> None:
    base, new = tmp_path / "base.json", tmp_path / "new.json"
    base.write_text(json.dumps(reps("k3s", [700, 702, 701])))
    heavier = copy.deepcopy(reps("k3s", [800, 805, 802]))
    new.write_text(json.dumps(heavier))
    assert report.main([str(new), "--baseline", str(base)]) == report.EXIT_WORSE
    assert report.main([str(base), "--baseline", str(base)]) == 0


def v2(distro: str, rep: int, per_sample_ms: list[int | None], status: str = "ok") -> dict[str, Any]:
    """A v2 result with the per-sample probe of the workload phase."""
    r = result(distro, rep=rep, workload=400, status=status)
    v = v2_result(r["cell"], status, [failure(status, 100)] if status != "ok" else [])
    v["phases"], v["arch"], v["distro"] = r["phases"], r["arch"], distro
    answered = [ms for ms in per_sample_ms if ms is not None]
    v["api"]["workload"] = {
        "probes": len(per_sample_ms), "failed": per_sample_ms.count(None),
        "latency_ms": {"p50": sorted(answered)[(len(answered) - 1) // 2], "p95": max(answered), "max": max(answered)},
        "per_sample_ms": per_sample_ms,
        "first_error": "curl: (28) Operation timed out" if None in per_sample_ms else None}
    v["api"]["longest_outage_s"] = 30.0 if None in per_sample_ms else None
    return v


def test_the_report_reads_v1_and_v2_results_alike(tmp_path: Path) -> None:
    old = result("k3s", rep=1, workload=400)  # v1: one probe a phase
    new = v2("k3s", 2, [10, 12, None, None, 30], status="api_unresponsive")
    (tmp_path / "old.json").write_text(json.dumps(old))
    (tmp_path / "new.json").write_text(json.dumps(new))
    rows = report.build_rows(report.load([str(tmp_path)]))
    assert len(rows) == 1 and len(rows[0].results) == 2
    k3s = rows[0]
    assert k3s.stat("workload") == report.Stat(400, 400, 2)
    assert k3s.statuses == {"ok": 1, "api_unresponsive": 1}
    # The v1 probe counts as one sample; the v2 phase as its five.
    assert k3s.api("idle") == "p50 12 / p95 20 / max 20 ms"  # 12 (v1) and 12, 12, 11, 20, 13 (v2)
    assert k3s.api("workload") == "p50 12 / p95 30 / max 30 ms; failed 2/5: curl: (28) Operation timed out"
    assert k3s.longest_outage_s == 30.0


def test_a_cell_without_a_result_is_listed_not_pooled(tmp_path: Path) -> None:
    missing = {"schema": "k8s-footprint/result/v2", "status": "no_result", "cell": "x86_64-k0s-1",
               "error": "the kit exited 137"}
    (tmp_path / "out.json").write_text(json.dumps({"results": {"x86_64-k0s-1": missing,
                                                               "x86_64-bare-1": result("bare")}}))
    md = tmp_path / "r.md"
    assert report.main([str(tmp_path / "out.json"), "--markdown", str(md)]) == 0
    text = md.read_text()
    assert "| bare |" in text and "| k0s |" not in text
    assert "- x86_64-k0s-1: no result (the kit exited 137)" in text
