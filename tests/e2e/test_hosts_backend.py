"""The real engine end to end: `pulumi up` and `pulumi destroy` on the hosts backend.

A qemu guest from the VM harness answers SSH on 127.0.0.1:<port>, so it is an "existing host". The
program runs as users run it (this project folder, its Pulumi.yaml and .venv), with the CLI, the
Python language host and pulumi-command's provider that `make pulumi-tools` built. The real
provider uploads the kit (CopyToRemote), runs the commands, and their stdout becomes the stack's
outputs, which must pass the published result schema. Then `pulumi destroy` must run the uninstall
and leave no resource in the state, and nothing of the cell on the host: the stack sets
`allowUninstall: true`, without which the hosts backend leaves the distro installed by design.

The bare cell also runs issue 15's second `up`: `pulumi preview --json` after no change, then after a
new `settleSeconds` (a new command set), and that `up`; what the engine reports per resource is
compared with tests/unit/test_second_up.py's prediction for the hosts backend with allowUninstall.
Then one more: the program run from a copy of this project whose kit differs by one comment line (a
new kit hash, so a new kit folder), preview and `up`; the guest must then hold that kit alone, and
the result must name its hash.

The transcript of every pulumi call (the engine's own summary lines and the outputs included) is
written to K8SF_E2E_LOG_DIR when it is set (make test-e2e), else to the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.cloudinit import GUEST_USER
from components.commands import kit_hash, remote_kit_path
from components.schema import validate_result
from tests.e2e.engine import PROJECT, Engine, tools_bin
from tests.vm import images, qemu
from tests.vm.qemu import Guest

pytestmark = pytest.mark.e2e
ARCH = "x86_64"
STACK = "e2e"
# Bare and Docker as a user would set them, with the VM tests' short sampling windows.
SETTLE_S, INTERVAL_S, SAMPLES = 10, 2, 5
# Where CopyToRemote puts the kit: ~/.k8s-footprint/kit-<hash>/guest (components.commands.remote_kit_dir).
KIT_LS = "~/.k8s-footprint ~/.k8s-footprint/kit-*"


def _require() -> Path:
    bin_dir, why = tools_bin()
    if bin_dir is None:
        pytest.skip(why)
    if not (PROJECT / ".venv" / "bin" / "python").exists():
        pytest.skip("the program's .venv is missing: run `make venv` (Pulumi.yaml runs the program from .venv)")
    missing = sorted(set(images.missing_host_tools(ARCH)) | set(qemu.missing_tools(ARCH)))
    if missing:
        pytest.skip(f"the e2e tests boot a qemu guest and need: apt-get install {' '.join(missing)}")
    if os.geteuid() != 0:
        pytest.skip("the e2e tests need root to build the guest image (debootstrap, chroot)")
    return bin_dir


def _log_path(tmp: Path, name: str) -> Path:
    out = os.environ.get("K8SF_E2E_LOG_DIR")
    base = Path(out) if out else tmp
    return base / f"{time.strftime('%Y-%m-%d')}-hosts-{ARCH}-{name}.log"


def _stack_config(port: int, distro: str) -> str:
    host = {"name": "qemu-guest", "address": "127.0.0.1", "user": GUEST_USER, "arch": ARCH, "port": port}
    config: dict[str, Any] = {
        "k8s-footprint:backend": "hosts",
        "k8s-footprint:arches": [ARCH],
        "k8s-footprint:distros": [distro],
        "k8s-footprint:hosts": [host],
        "k8s-footprint:settleSeconds": SETTLE_S,
        "k8s-footprint:sampleIntervalSeconds": INTERVAL_S,
        "k8s-footprint:samples": SAMPLES,
        "k8s-footprint:workload": "none" if distro == "bare" else "mysql",
        # The host is the harness's throwaway guest: destroy may uninstall the distro (without
        # this the hosts backend leaves it installed and says so, components/bootstrap.py).
        "k8s-footprint:allowUninstall": True,
    }
    # JSON is YAML: the stack file pulumi reads with --config-file.
    return json.dumps({"config": config}, indent=2) + "\n"


def _resources(engine: Engine) -> list[dict[str, Any]]:
    doc = json.loads(engine.run(["stack", "export", "--stack", STACK], timeout=120).stdout)
    return list(doc.get("deployment", {}).get("resources") or [])


def _preview(engine: Engine, config_file: Path) -> tuple[dict[str, list[str]], dict[str, int]]:
    """`pulumi preview --json`: resource name -> the engine's ops for it, and its changeSummary.
    The JSON lists a step for every resource that changes; unchanged ones only count in the summary."""
    proc = engine.run(["preview", "--json", "--stack", STACK, "--config-file", str(config_file)], timeout=900)
    doc = json.loads(proc.stdout)
    steps: dict[str, list[str]] = {}
    for step in doc.get("steps") or []:
        steps.setdefault(str(step["urn"]).rsplit("::", 1)[-1], []).append(str(step["op"]))
    return steps, {str(k): int(v) for k, v in (doc.get("changeSummary") or {}).items()}


# tests/unit/test_second_up.py's prediction for a host with allowUninstall and a new command set.
PREDICTED_REPLACED = ("bootstrap", "kit", "benchmark")


def _second_up(engine: Engine, cell: str) -> None:
    """Issue 15 point 2 on the real engine: no change, then a new settle window."""
    same, same_summary = _preview(engine, engine.config_file)
    engine.note(f"second up, no change: engine ops {json.dumps(same, sort_keys=True)}, "
                f"changeSummary {json.dumps(same_summary, sort_keys=True)}")
    # The same stack file (its encrypted key included), with one setting changed the ordinary way.
    changed_file = engine.workdir / "Pulumi.e2e-settle.yaml"
    changed_file.write_text(engine.config_file.read_text())
    engine.run(["config", "set", "--config-file", str(changed_file), "--stack", STACK,
                "k8s-footprint:settleSeconds", str(SETTLE_S + 1)], timeout=120)
    changed, changed_summary = _preview(engine, changed_file)
    engine.note(f"second up, settleSeconds {SETTLE_S} -> {SETTLE_S + 1}: engine ops "
                f"{json.dumps(changed, sort_keys=True)}, changeSummary {json.dumps(changed_summary, sort_keys=True)}")
    up = engine.run(["up", "--yes", "--skip-preview", "--stack", STACK, "--config-file", str(changed_file)],
                    timeout=3600, check=False)
    assert up.returncode == 0, f"the second pulumi up failed:\n{up.stdout[-4000:]}\n{up.stderr[-2000:]}"
    engine.config_file.write_text(changed_file.read_text())  # what destroy reads from now on
    assert set(same_summary) == {"same"}, f"an unchanged program changed: {same_summary} {same}"
    for part in PREDICTED_REPLACED:
        ops = changed.get(f"{cell}-{part}", [])
        assert "replace" in ops or "create-replacement" in ops, f"{cell}-{part}: predicted replace, engine: {ops}"


def _changed_kit_copy(dest: Path) -> Path:
    """This project copied as a developer's checkout would be, with one harmless byte more in the kit."""
    shutil.copytree(PROJECT, dest, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"))
    (dest / ".venv").symlink_to((PROJECT / ".venv").resolve())  # Pulumi.yaml runs the program from .venv
    with (dest / "benchmarks" / "guest" / "lib" / "common.sh").open("a") as f:
        f.write("# e2e: a kit change that changes nothing but the kit's hash\n")
    return dest


def _kit_change_up(engine: Engine, cell: str, guest: Guest) -> None:
    """Issue 15 point 2, the kit change: preview and `up` from a copy whose kit differs."""
    old_hash = kit_hash(PROJECT / "benchmarks" / "guest")
    engine.project = _changed_kit_copy(engine.workdir / "project-kit-changed")
    new_hash = kit_hash(engine.project / "benchmarks" / "guest")
    assert new_hash != old_hash
    engine.note(f"kit change: program in {engine.project}, kit {old_hash} -> {new_hash}")
    changed, summary = _preview(engine, engine.config_file)
    engine.note(f"second up, kit changed: engine ops {json.dumps(changed, sort_keys=True)}, "
                f"changeSummary {json.dumps(summary, sort_keys=True)}")
    up = engine.run(["up", "--yes", "--skip-preview", "--stack", STACK, "--config-file", str(engine.config_file)],
                    timeout=3600, check=False)
    kits = guest.ssh("cd ~/.k8s-footprint && ls -d kit-* 2>/dev/null || true", 60, check=False).stdout.split()
    engine.note(f"guest after the kit-change up: kit folders {kits}")
    assert up.returncode == 0, f"the kit-change pulumi up failed:\n{up.stdout[-4000:]}\n{up.stderr[-2000:]}"
    for part in PREDICTED_REPLACED:
        ops = changed.get(f"{cell}-{part}", [])
        assert "replace" in ops or "create-replacement" in ops, f"{cell}-{part}: predicted replace, engine: {ops}"
    # The old install's delete took its kit folder; the new kit is the only one on the guest.
    assert kits == [remote_kit_path(new_hash).rsplit("/", 1)[-1]], kits
    outputs = json.loads(engine.run(["stack", "output", "--json", "--stack", STACK], timeout=120).stdout)
    result = outputs["results"][cell]
    validate_result(result)
    assert result["provenance"]["kit_hash"] == new_hash, result.get("provenance")


@pytest.fixture(params=["bare", pytest.param("docker", marks=pytest.mark.vm_docker)])
def distro(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield Engine(_require(), tmp_path)


def test_up_outputs_destroy(engine: Engine, distro: str, tmp_path: Path) -> None:
    image = images.build(ARCH)
    cell = f"{ARCH}-{distro}-1"
    log = _log_path(tmp_path, distro)
    engine.note(f"e2e: hosts backend, {cell}, program in {PROJECT}; tools in {engine.bin_dir}")
    try:
        # A loaded machine boots a TCG guest slower than the harness's default wait; boot time is not
        # what this test measures. K8SF_VM_SSH_TIMEOUT, when set, wins (as in tests/vm/qemu.py).
        with qemu.boot(ARCH, image, cell, ssh_timeout=float(os.environ.get("K8SF_VM_SSH_TIMEOUT") or 900)) as guest:
            engine.note(f"guest up: 127.0.0.1:{guest.port} after {guest.boot_s} s")
            engine.run(["version"], timeout=60)
            engine.run(["plugin", "ls"], timeout=60)
            engine.run(["stack", "init", STACK], timeout=120)
            engine.config_file.write_text(_stack_config(guest.port, distro))
            engine.run(["config", "set", "--secret", "--config-file", str(engine.config_file), "--stack", STACK,
                        "k8s-footprint:sshPrivateKey"], timeout=120, stdin=guest.key.read_text(), secret_stdin=True)
            engine.run(["plugin", "ls", "--project"], timeout=300)
            try:
                up = engine.run(["up", "--yes", "--skip-preview", "--stack", STACK,
                                 "--config-file", str(engine.config_file)], timeout=3600, check=False)
                engine.note("guest after up: " + guest.ssh(
                    f"ls -la {KIT_LS}; ls -la /var/tmp/", 60, check=False).stdout)
                assert up.returncode == 0, f"pulumi up failed:\n{up.stdout[-4000:]}\n{up.stderr[-2000:]}"
                out = engine.run(["stack", "output", "--json", "--stack", STACK], timeout=120)
                outputs = json.loads(out.stdout)
                results = outputs["results"]
                assert set(results) == {cell}
                validate_result(results[cell])
                assert results[cell]["cell"] == cell and results[cell]["distro"] == distro
                assert outputs["instances"][cell]["backend"] == "hosts"
                assert cell in outputs["summary"]
                if distro == "bare":
                    _second_up(engine, cell)
                    _kit_change_up(engine, cell, guest)
            finally:
                down = engine.run(["destroy", "--yes", "--skip-preview", "--stack", STACK,
                                   "--config-file", str(engine.config_file)], timeout=1800, check=False)
                left = _resources(engine)
                engine.note("guest after destroy: " + guest.ssh(
                    f"ls -la {KIT_LS} 2>&1; ls -la /var/tmp/; command -v docker || echo 'no docker'", 60,
                    check=False).stdout)
                # Every kit folder, and the root-side run copies (k8sf-root.*), must be gone.
                kits = guest.ssh("ls -d ~/.k8s-footprint/kit-* /var/tmp/k8sf-kit-* /var/tmp/k8sf-root.* 2>/dev/null "
                                 "|| true", 60, check=False).stdout.split()
                docker = guest.ssh("command -v docker dockerd containerd || true", 60, check=False).stdout.split()
            assert down.returncode == 0, f"pulumi destroy failed:\n{down.stdout[-4000:]}\n{down.stderr[-2000:]}"
            assert left == [], f"destroy left resources in the state: {[r.get('urn') for r in left]}"
            # The host outlives the stack: destroy must take the kit away too, not just the distro.
            assert kits == [], f"destroy left the kit on the host: {kits}"
            # allowUninstall: true, so the distro went too.
            assert docker == [], f"destroy left docker installed: {docker}"
            engine.run(["stack", "rm", "--yes", "--stack", STACK], timeout=120)
    finally:
        engine.write_transcript(log)
        qemu.log(f"e2e transcript: {log}")
