"""The timeline of a cell (issue 13): each phase's series, bounded and thinned evenly by the kit's
own awk, PSI, anon and file memory, and the events on one clock, from the install's start."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from components.commands import KIT_DIR
from tests.guest.test_distros import kernel_files, scenario
from tests.guest.test_kit import Kit, benchmark, bootstrap, needs_root

STATS = KIT_DIR / "lib" / "stats.awk"
EVENTS = KIT_DIR / "lib" / "events.awk"
COLUMNS = ("t_s", "used_mib", "available_mib", "pcp_free_mib", "psi_some_avg10", "anon_mib", "file_mib")


def phase_tsv(n: int, psi: bool = True, probes: bool = False, clock_ms: int = 1_000_000, up0: float = 100.0) -> str:
    """n samples as sample.sh --tsv writes them (KiB), 5 s apart on the uptime clock, after the
    phase's clock line; sample i uses i MiB; with probes, every third probe fails."""
    lines = [f"clock\t{clock_ms}\t{up0:.2f}\n"]
    for i in range(1, n + 1):
        lines.append("sample\n")
        lines.append(f"mem\t1048576\t{i * 1024}\t{1048576 - i * 1024}\t{i * 512}\t0\t{2048 + i}\t"
                     f"{f'{i / 100:.2f}' if psi else '-'}\t{i * 300}\t{i * 600}\t{up0 + 5 * (i - 1):.2f}\n")
        lines.append(f"cg\tk3s.service\t{i * 10}\t{i * 6}\t{i * 3}\n")
        if probes:
            lines.append(f"probe\t{0 if i % 3 == 0 else 1}\t{i}\t{clock_ms + 5000 * (i - 1)}\t{'' if i % 3 else 'x'}\n")
    return "".join(lines)


def stats(tsv: str, **options: str) -> tuple[dict[str, Any], str]:
    args = ["awk", "-v", "interval=5"]
    for k, v in options.items():
        args += ["-v", f"{k}={v}"]
    out = subprocess.run([*args, "-f", str(STATS)], input=tsv, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return json.loads(out), out


def test_the_kits_awk_thins_a_long_phase_to_240_points_evenly_keeping_first_and_last() -> None:
    n = 721  # more than the 240 kept: 720 samples (the config's most), and one
    phase, out = stats(phase_tsv(n, probes=True), t0_ms="990000", probing="1")
    series = phase["series"]
    assert phase["samples"] == n
    assert {len(v) for v in series.values()} == {240} and set(series) == {*COLUMNS, "api_ms"}
    # Sample i reads i MiB used, so used_mib names the sample each point came from.
    picked = [round(v) for v in series["used_mib"]]
    assert picked[0] == 1 and picked[-1] == n
    steps = [b - a for a, b in itertools.pairwise(picked)]
    assert set(steps) <= {3, 4} and sum(steps) == n - 1  # (n - 1) / 239 = 3.01 samples a step
    # The clock: 10 s after t0 at the clock line, then the uptime's 5 s a sample.
    assert series["t_s"][0] == 10.0 and series["t_s"][-1] == 10.0 + 5 * (n - 1)
    assert series["psi_some_avg10"][0] == 0.0 and series["psi_some_avg10"][-1] == 7.2  # 7.21 to 0.1
    assert [a is None for a in series["api_ms"]] == [p % 3 == 0 for p in picked]
    # The statistics still cover every sample, not just the points kept.
    assert phase["used_mib"]["max"] == float(n) and phase["used_mib"]["min"] == 1.0
    assert phase["psi_some_avg10"] == {"median": 3.61, "max": 7.21}
    # Bounded stdout: the phase object of the longest phase stays small.
    assert len(out) < 20_000, len(out)


def test_a_short_phase_keeps_every_sample_and_a_phase_without_probe_has_no_api_column() -> None:
    phase, _ = stats(phase_tsv(7), t0_ms="1000000")
    assert [round(v) for v in phase["series"]["used_mib"]] == list(range(1, 8))
    assert "api_ms" not in phase["series"]
    assert phase["series"]["t_s"] == [5.0 * i for i in range(7)]
    assert phase["cgroups_anon_mib"] == {"k3s.service": 0.0} and phase["cgroups_mib"] == {"k3s.service": 0.0}


def test_no_psi_on_the_kernel_gives_null_pressure_and_null_points() -> None:
    phase, _ = stats(phase_tsv(6, psi=False), t0_ms="1000000")
    assert phase["psi_some_avg10"] is None
    assert phase["series"]["psi_some_avg10"] == [None] * 6


def test_samples_from_a_kit_before_0_3_0_give_no_series_and_no_pressure() -> None:
    old = "".join(f"sample\nmem\t1048576\t{i * 1024}\t{1048576 - i * 1024}\t{i * 512}\t0\t2048\n"
                  for i in range(1, 6))
    phase, _ = stats(old, t0_ms="1000000")
    assert "series" not in phase and "psi_some_avg10" not in phase and phase["samples"] == 5


def test_an_event_kind_not_in_the_kinds_file_is_a_kit_bug(tmp_path: Path) -> None:
    proc = subprocess.run(["awk", "-v", "t0_ms=0", "-f", str(EVENTS), str(KIT_DIR / "events"), "-"],
                          input="1000\tinstall_start\t\n2000\treboot\tx\n", capture_output=True, text=True,
                          check=False, timeout=30)
    assert proc.returncode == 3 and "'reboot' is not an event kind" in proc.stderr


def sample_with_psi(kit: Kit, tmp_path: Path, text: str | None) -> dict[str, Any]:
    psi = tmp_path / ("pressure-memory" if text is not None else "no-pressure-here")
    if text is not None:
        psi.write_text(text)
    env = {**kit.env, "K8SF_PSI_FILE": str(psi)}
    proc = subprocess.run(["sh", str(KIT_DIR / "lib" / "sample.sh")], capture_output=True, text=True, env=env,
                          check=True, timeout=30)
    return dict(json.loads(proc.stdout))


def test_the_sampler_reads_psi_some_avg10_and_null_without_it(kit: Kit, tmp_path: Path) -> None:
    # /proc/pressure/memory as the kernel prints it (kernel/sched/psi.c, psi_show).
    some = "some avg10=12.34 avg60=3.00 avg300=0.50 total=123456\nfull avg10=1.00 avg60=0.00 avg300=0.00 total=9\n"
    assert sample_with_psi(kit, tmp_path, some)["psi_some_avg10"] == 12.34
    assert sample_with_psi(kit, tmp_path, None)["psi_some_avg10"] is None


def assert_one_clock(result: dict[str, Any]) -> dict[str, float]:
    events = result["events"]
    assert [e["t_s"] for e in events] == sorted(e["t_s"] for e in events)
    at = {e["kind"]: e["t_s"] for e in events}
    assert at["install_start"] == 0.0 and at["install_start"] <= at["install_end"] <= at["ready"]
    phases = result["phases"]
    # The OS baseline comes before the install. Points are rounded to 0.1 s, and the install starts
    # right after the baseline's last sample, so that one can read -0.0: none may read after the start.
    os_t = phases["os"]["series"]["t_s"]
    assert max(os_t) <= at["install_start"] and min(os_t) < at["install_start"]
    assert min(phases["idle"]["series"]["t_s"]) >= at["ready"]
    for phase in (p for p in phases.values() if p):
        assert len({len(v) for v in phase["series"].values()}) == 1
    return at


@needs_root
def test_bare_run_for_real_series_and_events_share_the_installs_clock(kit: Kit) -> None:
    bootstrap(kit, "bare")
    time.sleep(1.2)  # benchmark comes later, in another process: the clock is in the state dir
    result = benchmark(kit, "bare", "--workload", "none")
    at = assert_one_clock(result)
    assert set(at) == {"install_start", "install_end", "ready"}
    idle = result["phases"]["idle"]
    # 1.2 s later, less the 0.1 s that rounding both times can take off.
    assert min(idle["series"]["t_s"]) >= at["ready"] + 1.1 and "api_ms" not in idle["series"]
    assert len(idle["series"]["t_s"]) == idle["samples"] == 5
    assert "install_start_ms=" in (kit.state / "bootstrap.env").read_text()


@needs_root
def test_k3s_api_dying_in_the_workload_gives_the_first_and_last_failure_events(faked: Kit) -> None:
    bootstrap(faked, "k3s")
    scenario(faked, "api_dies_in_workload")  # from the 3rd probe under the workload: API and pod gone
    result = benchmark(faked, "k3s")
    at = assert_one_clock(result)
    workload = result["phases"]["workload"]["series"]
    assert [ms is None for ms in workload["api_ms"]] == [False, False, True, True, True]
    assert result["phases"]["idle"]["series"]["api_ms"] == [float(ms) for ms in
                                                             result["api"]["idle"]["per_sample_ms"]]
    assert at["workload_deployed"] < at["api_first_failure"] < at["api_last_failure"]
    # Each probe follows its sample: the failures fall at the 3rd and 5th points of the workload.
    assert workload["t_s"][2] <= at["api_first_failure"] < workload["t_s"][3]
    assert workload["t_s"][4] <= at["api_last_failure"]
    # The workload answered before the phase's sampling; the API died under it.
    assert at["workload_deployed"] <= at["workload_ready"] < at["api_first_failure"]
    first = next(e for e in result["events"] if e["kind"] == "api_first_failure")
    assert first["detail"].startswith("curl: (28)")


@needs_root
def test_each_oom_kill_in_the_kernel_log_is_an_event_naming_the_process(faked: Kit) -> None:
    kernel_files(faked, "boot-a", 3)
    log = faked.stub_dir / "kernel.log"
    log.write_text("1000000000.000000 vm kernel: Out of memory: Killed process 5 (before-the-run)\n")
    bootstrap(faked, "docker")
    now = time.time()
    # Two kills after the bootstrap, as the kernel logs them; a line that is no kill stays out.
    with log.open("a") as f:
        f.write(f"{now:.6f} vm kernel: oom-kill:constraint=CONSTRAINT_MEMCG,task=mysqld,pid=1202\n"
                f"{now:.6f} vm kernel: Memory cgroup out of memory: Killed process 1202 (mysqld) total-vm:1265304kB\n"
                f"{now + 0.5:.6f} vm kernel: Out of memory: Killed process 901 (tail) total-vm:845312kB\n")
    kernel_files(faked, "boot-a", 5)
    result = benchmark(faked, "docker")
    kills = [e for e in result["events"] if e["kind"] == "oom_kill"]
    assert [k["detail"] for k in kills] == ["1202 (mysqld) in a memory cgroup", "901 (tail)"]
    at = assert_one_clock(result)
    # The first kill is logged right after the bootstrap returns, and times are rounded to 0.1 s, so
    # on a quick run it can share ready's tenth of a second; it may never come before it.
    assert at["ready"] <= kills[0]["t_s"] < kills[1]["t_s"]
    assert kills[1]["t_s"] - kills[0]["t_s"] == pytest.approx(0.5, abs=0.11)
    assert result["oom_kills"] == 2


def test_a_kill_loop_keeps_the_first_kills_and_says_how_many_more() -> None:
    kills = "".join(f"{2000 + i}\toom_kill\t{100 + i} (mysqld)\n" for i in range(250))
    proc = subprocess.run(["awk", "-v", "t0_ms=1000", "-f", str(EVENTS), str(KIT_DIR / "events"), "-"],
                          input="1000\tinstall_start\t\n" + kills + "9000\tapi_last_failure\tgone\n",
                          capture_output=True, text=True, check=True, timeout=30)
    events = json.loads(proc.stdout)
    assert [e["kind"] for e in events] == ["install_start", *["oom_kill"] * 100, "api_last_failure"]
    assert events[1]["detail"] == "100 (mysqld)" and events[1]["t_s"] == 1.0
    assert events[100]["detail"] == "199 (mysqld) (and 150 more kills, not listed)"
