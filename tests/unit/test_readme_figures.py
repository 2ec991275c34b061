"""The README's figures trace to committed files (issue 14 point 9): each table is recomputed here from
the file the README names, so a new measurement that leaves the README behind, or a figure that no
file holds, fails."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmarks import report
from components import fit

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
VM = ROOT / "benchmarks" / "results" / "qemu-debian12"
SEED = ROOT / "benchmarks" / "results" / "seed-2022" / "README.md"


def table_after(marker: str) -> list[list[str]]:
    """The rows (cells stripped, header and rule left out) of the first table after the line that holds marker.

    A marker that ends in ':' names a caption line of its own (the VM tables' "x86_64:"), so it must be
    the whole line; other markers are the start of a table's header."""
    lines = README.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if (line.strip() == marker if marker.endswith(":") else marker in line))
    rows: list[list[str]] = []
    for line in lines[start if lines[start].startswith("|") else start + 1:]:
        if not line.startswith("|"):
            if rows:
                break
            continue
        rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows[2:]


def num(cell: str) -> float:
    return float(cell.replace(",", ""))


# ---- the 2022 table -------------------------------------------------------------------------------

README_2022 = {"bare OS": "bare", "Docker": "docker", "k0s": "k0s", "k3s": "k3s", "MicroK8s": "microk8s",
               "MicroK8s, `disable ha-cluster`": "microk8s-noha"}
SEED_NAMES = {"裸机": "bare", "Docker": "docker", "K0s": "k0s", "K3s": "k3s", "MicroK8s": "microk8s",
              "MicroK8s (no HA)": "microk8s-noha"}


def test_the_2022_table_is_the_seeds_and_says_so() -> None:
    rows = {r[0]: int(r[1]) for r in table_after("| environment (2022")}
    seed_text = SEED.read_text()
    seed = {SEED_NAMES[m[0].strip()]: int(m[1])
            for m in re.findall(r"^\| ([^|]+?) +\|[^|0-9]*(\d+)MB", seed_text, re.M)}
    readme = {README_2022[k]: v for k, v in rows.items() if k in README_2022}
    assert readme == seed == report.SEED_2022
    assert rows["Docker + `docker run mysql`"] == report.SEED_2022_WORKLOAD["docker"] == 396
    assert "使用的内存只有396MB" in seed_text
    assert "[`benchmarks/results/seed-2022/README.md`](benchmarks/results/seed-2022/README.md)" in README


# ---- the VM tables --------------------------------------------------------------------------------

def phase(result: dict[str, Any], name: str, legacy: bool, net: bool) -> float:
    p = result["phases"][name]
    value = float(p["used_legacy_mib" if legacy else "used_mib"]["median"])
    return value - float(p["pcp_free_mib"]["median"]) if net else value


@pytest.mark.parametrize(("arch", "marker"), [("x86_64", "x86_64:"), ("aarch64", "aarch64 (emulated):")])
def test_the_vm_tables_are_the_kit_013_result_files(arch: str, marker: str) -> None:
    bare = json.loads((VM / f"2026-11-22-{arch}-bare-kit0.1.3.json").read_text())
    docker = json.loads((VM / f"2026-11-22-{arch}-docker-mariadb-kit0.1.3.json").read_text())
    rows = table_after(marker)
    columns = [(False, False), (False, True), (True, False), (True, True)]  # used, net, 2022's formula, net
    want = {
        "bare OS": [phase(bare, "idle", lg, n) for lg, n in columns],
        "Docker, idle": [phase(docker, "idle", lg, n) for lg, n in columns],
        "Docker + MySQL": [phase(docker, "workload", lg, n) for lg, n in columns],
        "Docker's footprint": [phase(docker, "idle", lg, n) - phase(docker, "os", lg, n) for lg, n in columns],
        "MariaDB's increment": [phase(docker, "workload", lg, n) - phase(docker, "idle", lg, n)
                                for lg, n in columns],
    }
    seen = set()
    for row in rows:
        key = next(k for k in want if row[0].startswith(k))
        seen.add(key)
        assert [num(c) for c in row[2:]] == [round(v) for v in want[key]], (arch, row[0])
    assert seen == set(want)
    memtotal = re.search(r"MemTotal in the guests: x86_64 (\d+) MiB, aarch64 (\d+) MiB", README)
    assert memtotal is not None
    assert int(memtotal[1 if arch == "x86_64" else 2]) == round(bare["mem_total_mib"])


def test_the_durations_table_is_the_durations_and_image_build_files() -> None:
    d = json.loads((VM / "durations-2026-11-22-kit0.1.3.json").read_text())
    build = json.loads((ROOT / "benchmarks" / "results" / "image-build.json").read_text())
    cold = {a: round(sum(build[f"{a}_list"]["timings_s"].values())) for a in ("x86_64", "aarch64")}
    want = {
        "image build, cold": cold,
        "image lookup, warm": {a: d[a]["image_lookup_or_build_s"] for a in d},
        "boot to SSH (bare)": {a: d[a]["bare"]["boot_to_ssh"] for a in d},
        "the boot's end": {a: d[a]["bare"]["cloud_init_after_ssh"] for a in d},
        "bootstrap bare": {a: d[a]["bare"]["bootstrap"] for a in d},
        "benchmark bare": {a: d[a]["bare"]["benchmark"] for a in d},
        "boot to SSH (docker)": {a: d[a]["docker"]["boot_to_ssh"] for a in d},
        "bootstrap docker": {a: d[a]["docker"]["bootstrap"] for a in d},
        "copy the MariaDB tarball": {a: d[a]["copy_workload_tar_s"] for a in d},
        "benchmark docker": {a: d[a]["docker"]["benchmark"] for a in d},
    }
    rows = table_after("| phase, seconds |")
    assert len(rows) == len(want)
    for row in rows:
        key = next(k for k in want if row[0].startswith(k))
        assert [num(row[1]), num(row[2])] == [want[key]["x86_64"], want[key]["aarch64"]], row[0]
    # The totals the README quotes for make test and make test-vm are sums over the same file.
    cell = {(a, c): sum(d[a][c].values()) + (d[a]["copy_workload_tar_s"] if c == "docker" else 0)
            for a in d for c in ("bare", "docker")}
    assert f"add up to {round(sum(cell.values()))} s, {round(sum(cell.values()) / 60)} min" in README
    aarch64_docker = cell[("aarch64", "docker")]
    assert f"add up to {round(aarch64_docker)} s, {round(aarch64_docker / 60)} min" in README
    assert f"{cold['x86_64']} s for the x86_64 image and {cold['aarch64']} s for the arm64 one" in README
    most = build["aarch64_most_debian_default"]
    assert f"from {round(most['timings_s']['kernel+initramfs'])} s" in README
    assert f"to {round(build['aarch64_list']['timings_s']['kernel+initramfs'])} s" in README
    initrd = (most["initrd_bytes"] / 2**20, build["aarch64_list"]["initrd_bytes"] / 2**20)
    assert f"from {round(initrd[0])} MiB to {initrd[1]:.1f} MiB" in README


def test_the_per_cpu_list_table_is_the_probe_output() -> None:
    probes = {arch: [json.loads(line) for line in (VM / f"2026-11-22-{arch}-pcp-probe.jsonl").read_text().splitlines()]
              for arch in ("x86_64", "aarch64")}
    rows = table_after("| MiB | x86_64 used |")
    assert len(rows) == 4
    for i, row in enumerate(rows):
        x, a = probes["x86_64"][i], probes["aarch64"][i]
        assert [num(c) for c in row[1:]] == [x["used_mib"], x["pcp_free_mib"], a["used_mib"], a["pcp_free_mib"]]
    assert (f"up to {probes['x86_64'][0]['pcp_high_mib']:g} MiB on x86_64 and "
            f"{probes['aarch64'][0]['pcp_high_mib']:g} MiB on aarch64") in README


def test_the_bench_tables_are_the_perf_results() -> None:
    mocks = json.loads((ROOT / "perf" / "results" / "program-mocks.json").read_text())
    rows = table_after("| the Pulumi program under mocks |")
    assert [[num(c) for c in r[1:]] for r in rows] == [
        [r["cells"], r["resources"], r["median_seconds"], r["ms_per_cell"], r["peak_rss_mib"]] for r in mocks["rows"]]
    assert f"Worst: {mocks['worst_ms_per_cell']} ms" in README
    assert f"{mocks['per_cell_growth_192_vs_12']}× that at 12" in README
    cost = json.loads((ROOT / "perf" / "results" / "sampler-cost.json").read_text())
    rows = table_after("| sampling cost, 60 runs |")
    assert [[num(c) for c in r[1:]] for r in rows] == [
        [cost["sampler"]["cpu_ms_per_sample"], cost["sampler"]["peak_rss_mib"]],
        [cost["sampler_once_per_phase"]["cpu_ms_per_sample"], cost["sampler_once_per_phase"]["peak_rss_mib"]],
        [cost["sampler_then_api_probe"]["cpu_ms_per_sample"], cost["sampler_then_api_probe"]["peak_rss_mib"]],
        [cost["node_exporter"]["cpu_ms_per_scrape"], cost["node_exporter"]["peak_rss_mib"]]]
    awk = sorted((cost["sampler"]["awk_alone_peak_rss_mib"], cost["sampler_once_per_phase"]["awk_alone_peak_rss_mib"]),
                 reverse=True)
    assert f"{awk[0]} and {awk[1]} MiB in the two runs of the file" in README
    probe_cpu = cost["sampler_then_api_probe"]["cpu_ms_per_sample"] - cost["sampler"]["cpu_ms_per_sample"]
    assert f"{round(probe_cpu)} ms CPU a probe" in README
    assert f"of node-exporter's ({cost['rss_fraction_of_node_exporter']}: met)" in README
    lat = cost["sampler_then_api_probe"]["probe_latency_ms"]
    assert f"p50 {lat['p50']}, p95 {lat['p95']}, max\n{lat['max']} ms" in README or \
        f"p50 {lat['p50']}, p95 {lat['p95']}, max {lat['max']} ms" in README.replace("\n", " ")


@pytest.mark.parametrize("figure", [
    "57 min", "3420 s", "16 passed",  # the make test-vm run's total: no committed file holds it
    "392 MiB",  # the MariaDB tarball's size
    "1 for the MariaDB workload",  # its build time
    "2.17 MiB", "2.2 MiB",  # a superseded awk figure, and one no file ever held
    "5.67 | 1.76", "p50 22, p95 43",  # kit 0.2.0's sampler rows, superseded by kit 0.3.0's file
    "about 35 min",  # the aarch64 Docker cell: the durations file adds up to 32
    "about ten minutes",
])
def test_figures_no_committed_file_holds_are_gone(figure: str) -> None:
    assert figure not in README


# ---- the sweep's fit table (the first screen) ----------------------------------------------------

SWEEP_CELLS = ROOT / "benchmarks" / "results" / "sweep" / "cells"
README_SWEEP_ROWS = {"bare": "bare", "Docker + MariaDB": "docker"}


def test_the_first_screens_fit_table_is_the_sweeps_cell_records() -> None:
    rows = table_after("| arch, distro | 256 MiB |")
    header = next(line for line in README.splitlines() if line.startswith("| arch, distro | 256 MiB |"))
    sizes = [int(c.split()[0]) for c in header.strip("|").split("|")[1:-1]]
    records = [json.loads(p.read_text()) for p in sorted(SWEEP_CELLS.glob("*.json"))]
    kits = {r["kit_hash"] for r in records}
    assert len(kits) == 1, f"the table must come from one kit's sweep, found {kits}"
    want: dict[tuple[str, str, int], str] = {}
    for rec in records:
        want[(rec["arch"], rec["distro"], rec["memory_mib"])] = fit.cell_label(rec["verdict"])
    assert len(rows) == len({(a, d) for a, d, _ in want})
    for row in rows:
        arch, label = row[0].split(", ", 1)
        distro = README_SWEEP_ROWS[label]
        for size, cell in zip(sizes, row[1:-1], strict=True):
            assert cell.replace("**", "") == want.get((arch, distro, size), ""), (arch, distro, size)
        fitting = sorted(m for (a, d, m), text in want.items()
                         if a == arch and d == distro and not text.startswith("no"))
        assert row[-1].replace("**", "") == f"{fitting[0]} MiB", (arch, distro)
