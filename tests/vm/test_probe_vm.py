"""The kit's real API probe in a real 1 GiB guest, against a TLS server that demands a client certificate.

Nothing here can run k3s, so an `openssl s_server` stands in for its API server
(tests/vm/apiserver_standin.sh): it is k3s.service's main process, it refuses a client without a
certificate from its client CA, and the admin kubeconfig at k3s's path carries that certificate
inline. The probe is the kit's own (lib/probe.sh with the guest's real curl and OpenSSL), run by the
fleet's own commands (components.commands) for a k3s-minimal cell; `k3s kubectl` is the fake of
tests/guest/fakes.sh. Partway through the workload phase the test freezes the stand-in (SIGSTOP:
it still accepts connections but never answers, the 1 GiB symptom), and the result must say
api_unresponsive, when the API first failed, how many probes failed, the outage, and real latencies.

It runs in a guest of its own, so the Docker cell and its measurements are untouched. x86_64 only:
the probe is the same shell on both arches, and an emulated aarch64 boot alone takes minutes.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from components.commands import BenchPlan, CellCommands, cell_commands, kit_hash
from components.schema import validate_result
from tests.vm import qemu
from tests.vm.conftest import DURATIONS, guest_image, plan, save_result

pytestmark = pytest.mark.vm

HERE = Path(__file__).resolve().parent
STANDIN = HERE / "apiserver_standin.sh"
FAKES = HERE.parent / "guest" / "fakes.sh"
STATE_DIR = "/var/lib/k8s-footprint"  # the kit's (benchmarks/guest/lib/common.sh STATE_DIR)
# The stand-in is frozen once the workload phase has this many probes: answered ones to take
# latencies from, and failed ones after them.
PROBES_BEFORE_STOP = 2
# lib/probe.sh: connect-timeout = 5, max-time = 10. curl counts the TLS handshake as part of the
# connection, so a probe of a server that accepts but never answers ends after the connect timeout
# ("SSL connection timeout", exit 28).
CURL_CONNECT_TIMEOUT_MS = 5_000
CURL_MAX_TIME_MS = 10_000
PKI = "/var/lib/k8sf-standin/pki"  # apiserver_standin.sh


@dataclass
class Probe:
    ok: bool
    ms: int
    start_ms: int
    error: str


def probe_lines(tsv: str) -> list[Probe]:
    """The probe lines of a phase file (lib/probe.sh once: probe, ok, latency ms, start ms, error)."""
    out = []
    for line in tsv.splitlines():
        f = line.split("\t")
        if f[0] == "probe":
            out.append(Probe(f[1] == "1", int(f[2]), int(f[3]), f[4] if len(f) > 4 else ""))
    return out


@dataclass
class ProbeCell:
    guest: qemu.Guest
    commands: CellCommands
    plan: BenchPlan
    bootstrap: dict[str, Any]
    result: dict[str, Any]
    stopped_at_ms: int  # the guest's clock just before the SIGSTOP
    idle: list[Probe]
    workload: list[Probe]
    log: str
    refusals: dict[str, Probe] = field(default_factory=dict)


def _run_probe(guest: qemu.Guest, commands: CellCommands, conf_dir: str) -> Probe:
    """The kit's own probe (lib/probe.sh once), as root, on a probe folder in the guest."""
    out = guest.ssh(f'sudo sh "$HOME"/{commands.kit_dir}/lib/probe.sh once {conf_dir}', timeout=60).stdout
    lines = probe_lines(out)
    assert len(lines) == 1, out
    return lines[0]


def _variant(guest: qemu.Guest, name: str, *sed: str) -> str:
    """A copy of the probe folder the kit set up, its curl.conf pointed at the copy and edited by
    the sed expressions."""
    path = f"/var/tmp/k8sf-probe-{name}"
    edits = " ".join(f"-e {shlex.quote(e)}" for e in (f"s#{STATE_DIR}/probe/#{path}/#", *sed))
    script = f"rm -rf {path} && cp -a {STATE_DIR}/probe {path} && sed -i {edits} {path}/curl.conf"
    guest.ssh(f"sudo sh -c {shlex.quote(script)}", timeout=30)
    return path


@pytest.fixture(scope="module", params=[pytest.param("x86_64", marks=pytest.mark.vm)])
def probe_cell(request: pytest.FixtureRequest) -> Iterator[ProbeCell]:
    arch = str(request.param)
    image = guest_image(arch)
    # The stand-in is installed before the kit, as k3s would be on a user's host, so the kit would
    # refuse it as preinstalled (k8sf --preinstalled refuse, the default); it is measured as it is,
    # as measurePreinstalled: true asks, and the result says the install was not fresh.
    p = plan(arch, "k3s-minimal", preinstalled="measure")
    t_start = time.monotonic()
    with qemu.boot(arch, image, p.cell) as guest:
        timings: dict[str, float] = {"boot_to_ssh": guest.boot_s, "cloud_init_after_ssh": guest.cloud_init_s}
        t0 = time.monotonic()
        guest.copy_file(STANDIN, "/var/tmp/apiserver_standin.sh")
        guest.copy_file(FAKES, "/var/tmp/fakes.sh")
        guest.ssh("sudo sh /var/tmp/apiserver_standin.sh setup /var/tmp/fakes.sh", timeout=300)
        timings["standin_setup"] = round(time.monotonic() - t0, 1)

        commands = cell_commands(p, kit_hash())
        t0 = time.monotonic()
        qemu.install_kit(guest, commands)
        kit_log: list[str] = []
        boot_doc = qemu.run_bootstrap(guest, commands, p, kit_log)
        timings["upload_kit_and_bootstrap"] = round(time.monotonic() - t0, 1)
        assert boot_doc["status"] == "ok", "".join(kit_log)[-3000:]

        # The stop comes from inside the guest, a fraction of a second after the workload phase's
        # Nth probe line lands in the kit's phase file (k8sf sample_phase fills it as .tmp).
        watch = (f"setsid sh /var/tmp/apiserver_standin.sh stop-after {PROBES_BEFORE_STOP} "
                 f"{STATE_DIR}/phase-workload.tsv.tmp {p.benchmark_timeout_s()} "
                 "> /var/tmp/k8sf-stop.out 2>&1 < /dev/null &")
        guest.ssh(f"sudo sh -c {shlex.quote(watch)}", timeout=60)
        t0 = time.monotonic()
        result = qemu.run_benchmark(guest, commands, p, kit_log)
        timings["benchmark"] = round(time.monotonic() - t0, 1)
        stop_out = guest.ssh("sudo cat /var/tmp/k8sf-stop.out", timeout=30).stdout.strip()
        assert stop_out.isdigit(), f"the stand-in was not stopped: {stop_out}"
        stopped_at_ms = int(stop_out)
        save_result(result, arch, "k3s-standin-api-frozen")
        idle = probe_lines(guest.ssh(f"sudo cat {STATE_DIR}/phase-idle.tsv", timeout=30).stdout)
        workload = probe_lines(guest.ssh(f"sudo cat {STATE_DIR}/phase-workload.tsv", timeout=30).stdout)

        # With a fresh stand-in: the very folder the kit's probe used, then the same without the
        # client certificate, then with an admin certificate from another cluster's client CA.
        t0 = time.monotonic()
        guest.ssh("sudo sh /var/tmp/apiserver_standin.sh restart", timeout=120)
        refusals = {"kit's": _run_probe(guest, commands, f"{STATE_DIR}/probe")}
        no_cert = _variant(guest, "no-cert", "/^cert = /d", "/^key = /d")
        refusals["no certificate"] = _run_probe(guest, commands, no_cert)
        other = _variant(guest, "other-ca", f's#^cert = .*#cert = "{PKI}/other.crt"#',
                         f's#^key = .*#key = "{PKI}/other.key"#')
        refusals["another CA's certificate"] = _run_probe(guest, commands, other)
        timings["refusals"] = round(time.monotonic() - t0, 1)
        for name, probe in refusals.items():
            qemu.log(f"{p.cell}: probe with the {name} credentials: ok={probe.ok} {probe.ms} ms {probe.error}")
        timings["total"] = round(time.monotonic() - t_start, 1)
        DURATIONS.add(arch, "k3s-standin-probe", timings)
        qemu.log(f"{p.cell}: status {result['status']}, api {result['api']}, timings {timings}")
        yield ProbeCell(guest, commands, p, boot_doc, result, stopped_at_ms, idle, workload,
                        "".join(kit_log), refusals)


def test_the_stand_in_answers_the_kits_probe_and_refuses_a_client_without_the_certificate(
        probe_cell: ProbeCell) -> None:
    kits, none, other = (probe_cell.refusals[k] for k in ("kit's", "no certificate", "another CA's certificate"))
    assert kits.ok and kits.ms > 0, kits
    # TLS 1.3: the server's alert arrives on the client's first read (curl exit 56).
    assert not none.ok and "certificate required" in none.error, none
    assert not other.ok and "unknown ca" in other.error, other


def test_api_frozen_mid_workload_gives_api_unresponsive_with_the_outage_and_latencies(probe_cell: ProbeCell) -> None:
    result = probe_cell.result
    validate_result(result)
    assert result["distro"] == "k3s-minimal" and result["distro_version"] == "v1.31.4+k3s1"
    assert result["fresh_install"] is False  # the stand-in came before the kit (measured as preinstalled)
    assert result["status"] == "api_unresponsive", f"{result['errors']}\n{probe_cell.log[-3000:]}"
    # The pod failed with the API (fakes.sh kubectl exec), which ranks lower; both are listed, in
    # time order, and k3s.service stayed active, so nothing says not_ready.
    failures = result["failures"]
    assert [(f["status"], f["phase"]) for f in failures] == [("api_unresponsive", "workload"),
                                                             ("workload_failed", "workload")], failures
    assert [f["at"] for f in failures] == sorted(f["at"] for f in failures)
    api = result["api"]
    assert api["idle"]["failed"] == 0 and api["idle"]["probes"] == probe_cell.plan.samples
    assert api["workload"]["probes"] == probe_cell.plan.samples
    for phase in ("idle", "workload"):
        lat = api[phase]["latency_ms"]
        assert isinstance(lat["p50"], int) and 0 < lat["p50"] <= lat["p95"] <= lat["max"], (phase, lat)
    n_failed = api["workload"]["failed"]
    assert n_failed >= 1 and api["failed_probes"] == n_failed
    assert api["first_failure"]["phase"] == "workload" and api["first_failure"]["offset_s"] > 0
    # Each failed probe waited out curl's connect timeout, so the outage lasts at least that long each.
    assert api["longest_outage_s"] >= n_failed * CURL_CONNECT_TIMEOUT_MS / 1000 * 0.95
    assert api["recovered"] is False
    assert "timed out" in api["workload"]["first_error"] or "timeout" in api["workload"]["first_error"]


def test_the_result_follows_the_probes_as_they_happened(probe_cell: ProbeCell) -> None:
    # The phase file's probe lines, read from the guest, against the stop and against the result.
    cell, api = probe_cell, probe_cell.result["api"]
    assert cell.idle and all(p.ok for p in cell.idle)
    oks = [p for p in cell.workload if p.ok]
    fails = [p for p in cell.workload if not p.ok]
    assert [p.ok for p in cell.workload] == [True] * len(oks) + [False] * len(fails)  # answered, then never
    assert len(oks) >= PROBES_BEFORE_STOP and fails
    assert all(p.start_ms <= cell.stopped_at_ms for p in oks)
    assert all(p.start_ms + p.ms >= cell.stopped_at_ms for p in fails)
    assert all(CURL_CONNECT_TIMEOUT_MS * 0.95 <= p.ms <= CURL_MAX_TIME_MS + 2000 for p in fails), fails
    assert api["workload"]["per_sample_ms"] == [p.ms if p.ok else None for p in cell.workload]
    assert api["workload"]["latency_ms"]["max"] == max(p.ms for p in oks)
    assert api["first_failure"]["at"] == fails[0].start_ms // 1000
    outage_ms = fails[-1].start_ms + fails[-1].ms - fails[0].start_ms
    assert api["longest_outage_s"] == pytest.approx(outage_ms / 1000, abs=0.051)
