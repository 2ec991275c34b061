"""A host on which the distro is already installed (issue 14 point 5): the kit refuses it before it
measures or installs anything, unless the stack opts in (measurePreinstalled, k8sf --preinstalled
measure); then the result says fresh_install false. What the kit installed itself on an earlier run
is never "preinstalled". Against the fakes of tests/guest/fakes.sh, set up as upstream leaves a
machine (the paths each distro file's d_found cites)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from components.results import parse_bootstrap
from tests.guest.test_distros import FAKES, faked  # noqa: F401  (a fixture)
from tests.guest.test_kit import QUICK, Kit, benchmark, bootstrap, needs_root


def link(kit: Kit, *names: str) -> None:
    """Commands on PATH, as an installer leaves them (the fakes answer under each name)."""
    for name in names:
        (kit.stub_dir / "bin" / name).symlink_to(FAKES)


def upstream_file(kit: Kit, path: str) -> None:
    target = kit.stub_dir / "root" / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("#!/bin/sh\n")
    target.chmod(0o755)


def unit(kit: Kit, name: str) -> None:
    (kit.stub_dir / "units").mkdir(exist_ok=True)
    for suffix in ("", ".enabled", ".active"):
        (kit.stub_dir / "units" / f"{name}{suffix}").touch()


def docker_io(kit: Kit) -> None:  # Debian's package: /usr/bin/docker
    link(kit, "docker")
    (kit.stub_dir / "docker.io").touch()
    unit(kit, "docker.service")


def docker_ce(kit: Kit) -> None:  # Docker's own package, from download.docker.com
    link(kit, "docker")
    (kit.stub_dir / "docker-ce").touch()
    unit(kit, "docker.service")


def k3s_binary(kit: Kit) -> None:  # install.sh: BIN_DIR=/usr/local/bin
    upstream_file(kit, "/usr/local/bin/k3s")


def k3s_unit_only(kit: Kit) -> None:  # install.sh: /etc/systemd/system/k3s.service
    unit(kit, "k3s.service")


def k0s_binary(kit: Kit) -> None:  # get.k0s.sh: k0sInstallPath=/usr/local/bin
    upstream_file(kit, "/usr/local/bin/k0s")


def k0s_unit_only(kit: Kit) -> None:  # k0s install controller: /etc/systemd/system/k0scontroller.service
    unit(kit, "k0scontroller.service")


def microk8s_snap(kit: Kit) -> None:  # snap list microk8s answers
    link(kit, "microk8s")
    (kit.stub_dir / "microk8s-version").write_text("v1.32.3\n")


CASES: list[tuple[str, Callable[[Kit], None], str]] = [
    ("docker", docker_io, "the docker.io package"),
    ("docker", docker_ce, "the docker-ce package"),
    ("k3s", k3s_binary, "/usr/local/bin/k3s"),
    ("k3s", k3s_unit_only, "the unit k3s.service"),
    ("k3s-minimal", k3s_binary, "/usr/local/bin/k3s"),
    ("k0s", k0s_binary, "/usr/local/bin/k0s"),
    ("k0s", k0s_unit_only, "the unit k0scontroller.service"),
    ("microk8s", microk8s_snap, "the microk8s snap v1.32.3 (1.32/stable)"),
    ("microk8s-noha", microk8s_snap, "the microk8s snap v1.32.3 (1.32/stable)"),
]


def install_calls(kit: Kit) -> list[str]:
    return [c for c in kit.calls() if c.startswith(("installer ", "k0s-install.sh", "k0s install", "snap install"))
            or (c.startswith("apt-get ") and " install " in c)]


@needs_root
@pytest.mark.parametrize(("distro", "setup", "found"), CASES, ids=[f"{d}-{s.__name__}" for d, s, _ in CASES])
def test_a_host_with_the_distro_already_installed_is_refused_before_anything_runs(
        faked: Kit, distro: str, setup: Callable[[Kit], None], found: str) -> None:  # noqa: F811
    setup(faked)
    proc = faked.run("bootstrap", distro, *QUICK)
    assert proc.returncode == 0, proc.stderr
    doc = parse_bootstrap(proc.stdout, distro)
    assert doc["status"] == "install_failed"
    assert doc["errors"] == [
        f"{distro} is already installed on this machine ({found}), not by k8s-footprint: nothing was measured or "
        f"installed. A fresh install can't be measured here; remove {distro} first, or set measurePreinstalled: "
        f"true (k8sf --preinstalled measure) to measure it as it is"]
    assert install_calls(faked) == []
    assert not (faked.state / "phase-os.tsv").exists()  # not even the OS baseline
    result = benchmark(faked, distro)
    assert result["status"] == "install_failed" and result["fresh_install"] is None
    assert (result["failures"][0]["status"], result["failures"][0]["phase"]) == ("install_failed", "bootstrap")
    assert install_calls(faked) == []
    # Still refused on a second try: the refusal is not the kit's own install.
    again = parse_bootstrap(faked.run("bootstrap", distro, *QUICK).stdout, distro)
    assert again["status"] == "install_failed" and found in again["errors"][0]


def preinstall_k3s(kit: Kit) -> None:
    """k3s as a user's own `curl -sfL https://get.k3s.io | sh -` leaves it: the fake installer, run
    before the kit, without the kit's state."""
    subprocess.run(["sh", str(kit.stub_dir / "k3s-install.sh")], env=kit.env, check=True, timeout=60,
                   capture_output=True)
    (kit.stub_dir / "calls.log").write_text("")


@needs_root
def test_with_measure_a_preinstalled_k3s_is_measured_as_it_is_and_the_result_says_so(faked: Kit) -> None:  # noqa: F811
    preinstall_k3s(faked)
    assert bootstrap(faked, "k3s", "--preinstalled", "measure")["status"] == "ok"
    assert install_calls(faked) == []
    result = benchmark(faked, "k3s")
    assert result["status"] == "ok" and result["fresh_install"] is False
    # A re-run of that bootstrap neither refuses nor calls it fresh.
    assert bootstrap(faked, "k3s")["status"] == "ok"
    assert benchmark(faked, "k3s")["fresh_install"] is False


@needs_root
@pytest.mark.parametrize("distro", ["k3s", "docker", "microk8s"])
def test_what_the_kit_installed_itself_is_not_preinstalled_on_a_rerun(faked: Kit, distro: str) -> None:  # noqa: F811
    assert bootstrap(faked, distro)["status"] == "ok"
    assert install_calls(faked) != []
    assert benchmark(faked, distro, "--workload", "none")["fresh_install"] is True
    (faked.stub_dir / "calls.log").write_text("")
    assert bootstrap(faked, distro)["status"] == "ok"  # no --preinstalled measure: not refused
    assert install_calls(faked) == []
    assert benchmark(faked, distro, "--workload", "none")["fresh_install"] is True


@needs_root
def test_state_from_a_kit_before_the_check_counts_as_the_kits_own_install(faked: Kit) -> None:  # noqa: F811
    assert bootstrap(faked, "k3s")["status"] == "ok"
    env = faked.state / "bootstrap.env"
    env.write_text("".join(ln for ln in env.read_text().splitlines(keepends=True)
                           if not ln.startswith("install_check=")))
    assert bootstrap(faked, "k3s")["status"] == "ok"
    assert benchmark(faked, "k3s", "--workload", "none")["fresh_install"] is None


@needs_root
def test_a_fresh_host_records_fresh_install_true(faked: Kit) -> None:  # noqa: F811
    assert bootstrap(faked, "bare")["status"] == "ok"
    assert benchmark(faked, "bare", "--workload", "none")["fresh_install"] is True


def test_preinstalled_takes_refuse_or_measure_only() -> None:
    from tests.guest.test_kit import K8SF

    proc = subprocess.run([str(K8SF), "bootstrap", "k3s", "--preinstalled", "keep"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 2 and "--preinstalled 'keep' is not one of: refuse measure" in proc.stderr


def test_every_distro_file_says_how_to_find_it(tmp_path: Path) -> None:
    from components import distros
    from components.commands import KIT_DIR

    for name in distros.ORDER:
        text = (KIT_DIR / "distros" / f"{name}.sh").read_text()
        sourced = [ln.split("/distros/")[1].rstrip('"') for ln in text.splitlines() if "/distros/" in ln
                   and ln.startswith(". ")]
        assert "d_found()" in text or any("d_found()" in (KIT_DIR / "distros" / s).read_text() for s in sourced), name
