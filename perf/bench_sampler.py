"""What sampling costs the guest: the kit's sampler beside prometheus-node-exporter, same machine.

Sampler: 60 runs of `sample.sh --tsv` (what the benchmark runs every interval: one dash, builtins
only) in a shell loop under GNU time, whose wait4 rusage gives the CPU and the largest RSS of any
process in the tree; and 60 of `sample.sh --tsv --top` (once a phase: adds cat and awk). (Forking the samplers
from Python instead would count Python's own pages: a forked child carries them until exec.)
With the API probe (kit 0.2.0 on Kubernetes): 60 runs of `sample.sh --tsv` followed by `probe.sh once`
(curl, GET /readyz over HTTPS with a client certificate), as the kit runs them every interval, against
`openssl s_server -Verify 1` on loopback, which refuses a client without a certificate as an API server
does. The probe runs after the memory read, so its curl is never in the sample it follows; its cost
is reported beside the sampler's, not inside the sampler's targets.
node-exporter: started on a loopback port and scraped 60 times;
CPU from /proc/PID/stat, peak RSS from VmHWM. Targets: sampler peak RSS at most a tenth of
node-exporter's, and at most 10 ms of CPU per sample. Figures go to perf/results/.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLER = ROOT / "benchmarks" / "guest" / "lib" / "sample.sh"
PROBE = ROOT / "benchmarks" / "guest" / "lib" / "probe.sh"
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


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(d: Path) -> None:
    """A CA, a server certificate for 127.0.0.1 and an admin client certificate, as a distro makes."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out",
             str(d / "ca.crt"), "-days", "2", "-subj", "/CN=bench-ca")
    (d / "ext").write_text("subjectAltName=IP:127.0.0.1\n")
    for name, subject in (("server", "/CN=127.0.0.1"), ("client", "/CN=admin/O=system:masters")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / f"{name}.key"), "-out",
                 str(d / f"{name}.csr"), "-subj", subject)
        extra = ["-extfile", str(d / "ext")] if name == "server" else []
        _openssl("x509", "-req", "-in", str(d / f"{name}.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
                 "-CAcreateserial", "-out", str(d / f"{name}.crt"), "-days", "2", *extra)


def kubeconfig(d: Path, port: int) -> Path:
    def b64(name: str) -> str:
        return base64.b64encode((d / name).read_bytes()).decode()

    path = d / "admin.conf"
    path.write_text(f"""apiVersion: v1
clusters:
- cluster:
    certificate-authority-data: {b64("ca.crt")}
    server: https://127.0.0.1:{port}
  name: bench
users:
- name: admin
  user:
    client-certificate-data: {b64("client.crt")}
    client-key-data: {b64("client.key")}
""")
    return path


def sampler_with_probe_cost() -> dict[str, Any]:
    """sample.sh then probe.sh once, N times, against an HTTPS stand-in that requires a client cert."""
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        make_pki(d)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        server = subprocess.Popen(["openssl", "s_server", "-accept", f"127.0.0.1:{port}",
                                   "-cert", str(d / "server.crt"), "-key", str(d / "server.key"),
                                   "-CAfile", str(d / "ca.crt"), "-Verify", "1", "-verify_return_error", "-www",
                                   "-quiet"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while True:
                with socket.socket() as sock:
                    if sock.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if time.monotonic() > deadline:
                    raise SystemExit("openssl s_server did not listen within 30 s")
                time.sleep(0.1)
            subprocess.run(["sh", str(PROBE), "setup", str(kubeconfig(d, port)), str(d / "probe")], check=True,
                           timeout=60)
            lines = d / "probe.tsv"
            loop = (f'export K8SF_PAGE_KIB=$(( $(getconf PAGESIZE) / 1024 )); i=0; '
                    f'while [ $i -lt {N} ]; do sh "{SAMPLER}" --tsv docker.service >/dev/null; '
                    f'sh "{PROBE}" once "{d / "probe"}" >> "{lines}"; i=$((i + 1)); done')
            proc = subprocess.run(["/usr/bin/time", "-f", "%M %U %S %e", "sh", "-c", loop], capture_output=True,
                                  text=True, check=True, timeout=600)
            maxrss_kib, user, system, wall = proc.stderr.strip().splitlines()[-1].split()
            probes = [line.split("\t") for line in lines.read_text().splitlines()]
            ok = sorted(int(p[2]) for p in probes if p[1] == "1")
            # The same stand-in without the client certificate must refuse the probe.
            conf = (d / "probe" / "curl.conf").read_text()
            (d / "nocert").mkdir()
            (d / "nocert" / "curl.conf").write_text("".join(
                line + "\n" for line in conf.splitlines() if not line.startswith(("cert =", "key ="))))
            refused = subprocess.run(["sh", str(PROBE), "once", str(d / "nocert")], capture_output=True, text=True,
                                     check=True, timeout=60).stdout.split("\t")
        finally:
            server.terminate()
            server.wait(timeout=10)
    cpu = float(user) + float(system)
    return {"command": "sample.sh --tsv; probe.sh once", "samples": N, "probes_ok": len(ok),
            "cpu_ms_per_sample": round(1000 * cpu / N, 2), "wall_ms_per_sample": round(1000 * float(wall) / N, 2),
            "peak_rss_mib": round(int(maxrss_kib) / 1024, 2),
            "probe_latency_ms": {"p50": ok[(len(ok) - 1) // 2], "p95": ok[max(0, -(-95 * len(ok) // 100) - 1)],
                                 "max": ok[-1]} if ok else None,
            "refused_without_client_certificate": refused[1] == "0",
            "curl": subprocess.run(["curl", "--version"], capture_output=True, text=True,
                                   check=True).stdout.split()[1]}


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
    with_probe = sampler_with_probe_cost()
    exporter = node_exporter_cost()
    report: dict[str, object] = {
        "benchmark": "sampler cost beside prometheus-node-exporter",
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, kernel {platform.release()}",
        "sampler": sampler,
        "sampler_once_per_phase": once_per_phase,
        "sampler_then_api_probe": with_probe,
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
