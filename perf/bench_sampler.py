"""What sampling costs the guest: the kit's sampler beside prometheus-node-exporter, same machine.

Sampler: 60 runs of `sample.sh --tsv` (what the benchmark runs every interval: one dash, builtins
only) in a shell loop under GNU time, whose wait4 rusage gives the CPU and the largest RSS of any
process in the tree; and 60 of `sample.sh --tsv --top` (once a phase: adds cat and awk). (Forking the samplers
from Python instead would count Python's own pages: a forked child carries them until exec.)
node-exporter: started on a loopback port and scraped 60 times;
CPU from /proc/PID/stat, peak RSS from VmHWM. Targets: sampler peak RSS at most a tenth of
node-exporter's, and at most 10 ms of CPU per sample. Figures go to perf/results/.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLER = ROOT / "benchmarks" / "guest" / "lib" / "sample.sh"
N = 60
TICK = os.sysconf("SC_CLK_TCK")


def sampler_cost(*flags: str) -> dict[str, Any]:
    gnu_time = shutil.which("time") if Path("/usr/bin/time").exists() else None
    if gnu_time is None:
        raise SystemExit("the sampler benchmark needs GNU time: apt-get install time")
    args = " ".join(flags)
    # The page size is read once, as the kit does before it samples.
    loop = (f'export K8SF_PAGE_KIB=$(( $(getconf PAGESIZE) / 1024 )); i=0; '
            f'while [ $i -lt {N} ]; do sh "{SAMPLER}" {args} docker.service >/dev/null; i=$((i + 1)); done')
    proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S %e", "sh", "-c", loop], capture_output=True, text=True,
                          check=True)
    maxrss_kib, user, system, wall = proc.stderr.strip().splitlines()[-1].split()
    cpu = float(user) + float(system)
    baseline = subprocess.run(["/usr/bin/time", "-f", "%M", "awk", "BEGIN {}"], capture_output=True, text=True,
                              check=True).stderr.strip().splitlines()[-1]
    return {"command": f"sample.sh {args}", "samples": N, "cpu_ms_per_sample": round(1000 * cpu / N, 2),
            "wall_ms_per_sample": round(1000 * float(wall) / N, 2), "peak_rss_mib": round(int(maxrss_kib) / 1024, 2),
            "awk_alone_peak_rss_mib": round(int(baseline) / 1024, 2)}


def node_exporter_cost() -> dict[str, float] | None:
    binary = shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
    if binary is None:
        return None
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url, timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

        def cpu_s() -> float:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / TICK

        c0 = cpu_s()
        for _ in range(N):
            urllib.request.urlopen(url, timeout=10).read()
        cpu = cpu_s() - c0
        hwm = next(int(line.split()[1]) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
                   if line.startswith("VmHWM:"))
        return {"scrapes": N, "cpu_ms_per_scrape": round(1000 * cpu / N, 2), "peak_rss_mib": round(hwm / 1024, 2)}
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> int:
    sampler = sampler_cost("--tsv")
    once_per_phase = sampler_cost("--tsv", "--top")
    exporter = node_exporter_cost()
    report: dict[str, object] = {
        "benchmark": "sampler cost beside prometheus-node-exporter",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, kernel {platform.release()}",
        "sampler": sampler,
        "sampler_once_per_phase": once_per_phase,
        "node_exporter": exporter if exporter else "not installed: apt-get install prometheus-node-exporter",
        "targets": {"cpu_ms_per_sample_max": 10, "peak_rss_fraction_of_node_exporter_max": 0.1},
    }
    if exporter:
        fraction = sampler["peak_rss_mib"] / exporter["peak_rss_mib"]
        report["rss_fraction_of_node_exporter"] = round(fraction, 3)
        report["meets_targets"] = fraction <= 0.1 and sampler["cpu_ms_per_sample"] <= 10
    out = ROOT / "perf" / "results" / "sampler-cost.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
