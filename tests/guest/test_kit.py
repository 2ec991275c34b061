"""The guest kit on this machine: the sampler and the bare path for real, the statistics on known
inputs, and the k3s, k0s, MicroK8s and Docker control flow against stub commands on PATH."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.commands import KIT_DIR
from components.results import parse_bootstrap, read_result
from components.schema import validate_result

# K8SF_UNDER_TEST runs the suite against another copy of the kit (an older one, to see a test fail).
K8SF = Path(os.environ.get("K8SF_UNDER_TEST", str(KIT_DIR / "k8sf")))
FAKES = Path(__file__).with_name("fakes.sh")

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="bootstrap and benchmark change the system: run as root")


def meminfo_kib() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, value = line.split(":", 1)
        out[key] = int(value.split()[0])
    return out


def test_shellcheck_is_clean_over_the_whole_kit() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed: apt-get install shellcheck")
    scripts = [K8SF, *sorted(KIT_DIR.glob("lib/*.sh")), *sorted(KIT_DIR.glob("distros/*.sh")), FAKES]
    proc = subprocess.run(["shellcheck", "-x", *map(str, scripts)], capture_output=True, text=True, cwd=KIT_DIR,
                          check=False)
    assert proc.returncode == 0, proc.stdout


def pcp_free_kib() -> int:
    """Free pages on the per-CPU lists: the sum of every pageset's count in /proc/zoneinfo."""
    pages = sum(int(line.split()[1]) for line in Path("/proc/zoneinfo").read_text().splitlines()
                if line.split()[:1] == ["count:"])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def test_sample_matches_proc_meminfo_read_independently() -> None:
    before, pcp_before = meminfo_kib(), pcp_free_kib()
    proc = subprocess.run([str(K8SF), "sample"], capture_output=True, text=True, check=True)
    after, pcp_after = meminfo_kib(), pcp_free_kib()
    sample = json.loads(proc.stdout)
    assert sample["schema"] == "k8s-footprint/sample/v1"
    assert sample["mem_total_mib"] == round(before["MemTotal"] / 1024, 1)
    used = [(m["MemTotal"] - m["MemAvailable"]) / 1024 for m in (before, after)]
    # Memory moves between reads; the sample must fall within what the two reads saw, give or take.
    assert min(used) - 64 <= sample["used_mib"] <= max(used) + 64
    legacy = [(m["MemTotal"] - m["MemFree"] - m["Buffers"] - m["Cached"] - m["SReclaimable"]) / 1024
              for m in (before, after)]
    assert min(legacy) - 64 <= sample["used_legacy_mib"] <= max(legacy) + 64
    assert abs(sample["used_mib"] + sample["available_mib"] - sample["mem_total_mib"]) <= 0.2
    pcp = sorted((pcp_before / 1024, pcp_after / 1024))
    assert pcp[0] - 64 <= sample["pcp_free_mib"] <= pcp[1] + 64
    assert 1 <= len(sample["top_processes"]) <= 10
    rss = [p["rss_mib"] for p in sample["top_processes"]]
    assert rss == sorted(rss, reverse=True)


def stats(values_mib: list[float], interval: int = 5, pcp_mib: list[float] | None = None) -> dict[str, Any]:
    """The phase stats.awk makes of samples whose used memory is values_mib (and legacy half of it);
    with pcp_mib, the samples carry the per-CPU free pages as kit 0.1.3 writes them."""
    tail = [f"\t{int(v * 1024)}" for v in pcp_mib] if pcp_mib else [""] * len(values_mib)
    tsv = "".join(f"sample\nmem\t1000000\t{int(v * 1024)}\t{int((1000 - v) * 1024)}\t{int(v * 512)}\t0{t}\n"
                  for v, t in zip(values_mib, tail, strict=True))
    proc = subprocess.run(["awk", "-v", f"interval={interval}", "-f", str(KIT_DIR / "lib/stats.awk")],
                          input=tsv, capture_output=True, text=True, check=True)
    return dict(json.loads(proc.stdout))


def test_statistics_on_known_inputs() -> None:
    odd = stats([5, 1, 4, 2, 3])
    assert odd["samples"] == 5 and odd["interval_s"] == 5
    assert odd["used_mib"] == {"median": 3.0, "p95": 5.0, "min": 1.0, "max": 5.0}
    assert odd["used_legacy_mib"] == {"median": 1.5}
    even = stats([float(v) for v in range(1, 21)])  # 1..20
    assert even["used_mib"]["median"] == 10.5
    assert even["used_mib"]["p95"] == 19.0  # nearest rank: ceil(0.95 * 20) = 19th value
    assert even["available_mib"]["median"] == 989.5
    hundred = stats([float(v) for v in range(100, 0, -1)])
    assert hundred["used_mib"]["p95"] == 95.0 and hundred["used_mib"]["median"] == 50.5


def test_statistics_of_per_cpu_free_pages_when_the_samples_carry_them() -> None:
    phase = stats([100, 100, 100, 100, 100], pcp_mib=[40, 2, 30, 1, 3])
    assert phase["pcp_free_mib"] == {"median": 3.0, "max": 40.0}
    # Samples from a kit before 0.1.3 (a re-run on the same instance) have no such column.
    assert "pcp_free_mib" not in stats([100, 100, 100, 100, 100])


def test_statistics_of_no_samples_is_an_empty_phase_not_a_crash() -> None:
    proc = subprocess.run(["awk", "-v", "interval=5", "-f", str(KIT_DIR / "lib/stats.awk")], input="",
                          capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout)["samples"] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["bootstrap", "kind"], "unknown distro 'kind'; allowed: bare docker k3s k3s-minimal k0s microk8s microk8s-noha"),
    (["benchmark", "bare", "--settle", "x"], "--settle must be a whole number, got 'x'"),
    (["benchmark", "bare", "--samples", "3"], "--samples must be at least 5, got '3'"),
    (["benchmark", "bare", "--workload", "redis"], "--workload 'redis' is not one of: mysql none"),
    (["benchmark", "bare", "--image-tar", "/nonexistent.tar"], "--image-tar '/nonexistent.tar' is not a readable file"),
    (["benchmark", "bare", "--cell", "a b"], "--cell 'a b' may hold only letters"),
    (["bootstrap", "k3s", "--version", "$(reboot)"], "--version '$(reboot)' may hold only letters"),
    # The forms each project publishes: k3s and k0s tags start with v; MicroK8s takes a channel.
    (["bootstrap", "k3s", "--version", "1.31.4+k3s1"],
     "--version '1.31.4+k3s1' is not a k3s release such as v1.31.4+k3s1"),
    (["bootstrap", "k3s-minimal", "--version", "v1.31"], "is not a k3s release"),
    (["bootstrap", "k0s", "--version", "1.31.3+k0s.0"],
     "--version '1.31.3+k0s.0' is not a k0s release such as v1.32.7+k0s.0"),
    (["bootstrap", "microk8s", "--version", "v1.32"], "--version 'v1.32' is not a MicroK8s channel such as 1.32"),
    (["bootstrap", "microk8s-noha", "--version", "1.32/nightly"], "is not a MicroK8s channel"),
    (["frobnicate"], "unknown command 'frobnicate'"),
    ([], "missing command"),
])
def test_bad_arguments_exit_2_and_say_what_is_allowed(args: list[str], message: str) -> None:
    proc = subprocess.run([str(K8SF), *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert proc.stdout == ""


@dataclass
class Kit:
    """The kit with a private state dir and, optionally, stub commands first on PATH."""

    state: Path
    stub_dir: Path
    env: dict[str, str]

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(K8SF), *args], capture_output=True, text=True, env=self.env, timeout=timeout,
                              check=False)

    def calls(self) -> list[str]:
        log = self.stub_dir / "calls.log"
        return log.read_text().splitlines() if log.exists() else []


@pytest.fixture
def kit(tmp_path: Path) -> Iterator[Kit]:
    state, stubs = tmp_path / "state", tmp_path / "stubs"
    stubs.mkdir()
    env = {**os.environ, "K8SF_STATE_DIR": str(state), "STUB_DIR": str(stubs)}
    yield Kit(state, stubs, env)


QUICK = ["--settle", "0", "--interval", "1", "--samples", "5"]


@needs_root
def test_bare_bootstrap_and_benchmark_for_real_give_a_valid_result(kit: Kit) -> None:
    boot = kit.run("bootstrap", "bare", *QUICK)
    assert boot.returncode == 0, boot.stderr
    assert parse_bootstrap(boot.stdout, "c")["status"] == "ok"
    bench = kit.run("benchmark", "bare", *QUICK, "--workload", "none", "--cell", "x86_64-bare-1")
    assert bench.returncode == 0, bench.stderr
    result = read_result(bench.stdout, "x86_64-bare-1")
    validate_result(result)
    assert result["status"] == "ok"
    assert result["phases"]["os"]["samples"] == 5 and result["phases"]["idle"]["samples"] == 5
    assert result["phases"]["workload"] is None and result["api"] is None
    for phase in ("os", "idle"):
        pcp = result["phases"][phase]["pcp_free_mib"]
        assert 0 <= pcp["median"] <= pcp["max"]
    # What this machine says about itself (systemd-detect-virt --vm prints "kvm" here, a KVM guest).
    guest = result["provenance"]["guest"]
    assert guest["vcpus"] == len(os.sched_getaffinity(0))
    detected = shutil.which("systemd-detect-virt")
    if detected:
        virt = subprocess.run([detected, "--vm"], capture_output=True, text=True, check=False).stdout.strip()
        assert guest["virt"] == virt
    assert json.loads((kit.state / "result.json").read_text()) == result  # kept on the guest too
    assert kit.run("result").stdout == bench.stdout


@needs_root
def test_one_instance_runs_one_distro(kit: Kit) -> None:
    assert kit.run("bootstrap", "bare", *QUICK).returncode == 0
    other = kit.run("bootstrap", "k3s", *QUICK)
    assert other.returncode == 2
    assert "bootstrapped with bare, not k3s; use a fresh instance per distro" in other.stderr


def bootstrap(kit: Kit, distro: str, *extra: str) -> dict[str, Any]:
    proc = kit.run("bootstrap", distro, *QUICK, *extra)
    assert proc.returncode == 0, proc.stderr
    return parse_bootstrap(proc.stdout, distro)


def benchmark(kit: Kit, distro: str, *extra: str, timeout: float = 120) -> dict[str, Any]:
    proc = kit.run("benchmark", distro, *QUICK, "--cell", f"x86_64-{distro}-1", *extra, timeout=timeout)
    assert proc.returncode == 0, proc.stderr
    result = read_result(proc.stdout, f"x86_64-{distro}-1")
    validate_result(result)
    return result


@needs_root
def test_a_bootstrap_cut_off_during_the_os_baseline_measures_it_again(kit: Kit) -> None:
    # The first run dies in the middle of the OS phase, as when SSH drops.
    proc = subprocess.Popen([str(K8SF), "bootstrap", "bare", "--settle", "0", "--interval", "2", "--samples", "5"],
                            env=kit.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        if (kit.state / "phase-os.tsv.tmp").exists():
            break
        time.sleep(0.1)
    proc.kill()
    proc.wait()
    assert not (kit.state / "phase-os.tsv").exists()
    assert bootstrap(kit, "bare")["status"] == "ok"
    result = benchmark(kit, "bare", "--workload", "none")
    assert result["phases"]["os"]["samples"] == 5


def test_oom_log_count_counts_system_and_cgroup_kills_and_nothing_else(tmp_path: Path) -> None:
    # A journalctl stand-in that prints a kernel log as 6.1 writes it; the lines are the input under test.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kernel_log = tmp_path / "kernel.log"
    kernel_log.write_text(
        "tail invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0\n"
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,task=tail,pid=901\n"
        "Out of memory: Killed process 901 (tail) total-vm:845312kB, anon-rss:801224kB, file-rss:4kB\n"
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,task=mysqld,pid=1202\n"
        "Memory cgroup out of memory: Killed process 1202 (mysqld) total-vm:1265304kB, anon-rss:402112kB\n"
        "Out of memory: Kill process 77 (java) score 901 or sacrifice child\n"
        "EXT4-fs (vda): mounted filesystem with ordered data mode\n")
    journalctl = bin_dir / "journalctl"
    journalctl.write_text(f"#!/bin/sh\ncat '{kernel_log}'\n")
    journalctl.chmod(0o755)
    script = f". '{KIT_DIR / 'lib' / 'common.sh'}'; oom_log_count 0"
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, timeout=30,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.stdout.strip() == "3"


@pytest.mark.parametrize(("prints", "exit_code", "virt", "accel"), [
    # What systemd-detect-virt --vm prints (systemd src/basic/virt.c): "kvm" for qemu with KVM,
    # "qemu" for qemu without it (TCG: the CPUID signature "TCGTCGTCGTCG", or DMI "QEMU Virtual
    # Machine"), "amazon" on AWS Nitro, "none" with exit 1 on bare metal.
    ("kvm", 0, "kvm", "kvm"),
    ("qemu", 0, "qemu", "tcg"),
    ("amazon", 0, "amazon", "hypervisor"),
    ("none", 1, "none", "none"),
    ("", 127, None, "unknown"),  # not installed: the shell prints nothing on stdout
])
def test_guest_json_names_the_acceleration_from_systemd_detect_virt(tmp_path: Path, prints: str, exit_code: int,
                                                                    virt: str | None, accel: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "systemd-detect-virt"
    body = f"echo {prints}" if prints else ":"
    stub.write_text(f"#!/bin/sh\n[ \"$1\" = --vm ] || exit 9\n{body}\nexit {exit_code}\n")
    stub.chmod(0o755)
    script = f". '{KIT_DIR / 'lib' / 'common.sh'}'; guest_json"
    proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, timeout=30,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert json.loads(proc.stdout) == {"virt": virt, "accel": accel, "vcpus": len(os.sched_getaffinity(0))}
