"""The fakes against the real tools, where this machine has them: a call the real dpkg-query or
journalctl refuses is refused by the fake with the same exit code and message, and the calls the
kit makes are answered in the same shape. A fake that accepted what the real tool refuses would let
a wrong call in the kit pass its test (tests/guest/fakes.sh)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FAKES = Path(__file__).with_name("fakes.sh")


def run(argv: list[str], fake_dir: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real tool (fake_dir None) or the fake of the same name."""
    if fake_dir is None:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    env = {"PATH": "/usr/bin:/bin", "FAKE_DIR": str(fake_dir), "FAKE_NAME": argv[0]}
    return subprocess.run(["sh", str(FAKES), *argv[1:]], capture_output=True, text=True, timeout=30,
                          check=False, env=env)


def needs(tool: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(shutil.which(tool) is None, reason=f"the real {tool} is not on this machine")


# Calls the real tools refuse, each with its exit code and message (stderr).
REFUSED = [
    pytest.param(["dpkg-query", "--bogus"], id="dpkg-query unknown long option", marks=needs("dpkg-query")),
    pytest.param(["dpkg-query", "-x", "docker.io"], id="dpkg-query unknown short option", marks=needs("dpkg-query")),
    pytest.param(["dpkg-query", "-W", "-f=${Status}", "k8sf-no-such-package"], id="dpkg-query unknown package",
                 marks=needs("dpkg-query")),
    pytest.param(["journalctl", "--bogus"], id="journalctl unknown option", marks=needs("journalctl")),
    pytest.param(["journalctl", "-k", "-o", "nosuch"], id="journalctl unknown output mode", marks=needs("journalctl")),
    pytest.param(["journalctl", "-k", "--since", "@abc"], id="journalctl bad timestamp", marks=needs("journalctl")),
]


@pytest.mark.parametrize("argv", REFUSED)
def test_the_fake_refuses_what_the_real_tool_refuses_with_its_code_and_message(argv: list[str],
                                                                               tmp_path: Path) -> None:
    real, fake = run(argv), run(argv, tmp_path)
    assert real.returncode != 0, real
    assert (fake.returncode, fake.stderr.strip()) == (real.returncode, real.stderr.strip())


@needs("dpkg-query")
def test_dpkg_query_status_and_version_of_an_installed_package_read_as_the_real_ones_do(tmp_path: Path) -> None:
    # dpkg is installed on every Debian machine: the real answer's shape is what the kit greps.
    real_status = run(["dpkg-query", "-W", "-f=${Status}", "dpkg"])
    (tmp_path / "docker.io").touch()
    fake_status = run(["dpkg-query", "-W", "-f=${Status}", "docker.io"], tmp_path)
    assert real_status.returncode == fake_status.returncode == 0
    assert real_status.stdout == fake_status.stdout == "install ok installed"
    for form in (["-f", "${Status}"], ["-f${Status}"], ["--showformat", "${Status}"], ["--showformat=${Status}"]):
        real = run(["dpkg-query", "-W", *form, "dpkg"])
        fake = run(["dpkg-query", "-W", *form, "docker.io"], tmp_path)
        assert (real.returncode, real.stdout) == (fake.returncode, fake.stdout) == (0, "install ok installed"), form
    fake_version = run(["dpkg-query", "-W", "--showformat=${Version}", "docker.io"], tmp_path)
    assert fake_version.returncode == 0 and fake_version.stdout.startswith("20.10.24")
    assert "\n" not in run(["dpkg-query", "-W", "-f=${Version}", "dpkg"]).stdout


def test_the_fake_journalctl_prints_the_kernel_log_from_since_in_the_kits_form(tmp_path: Path) -> None:
    (tmp_path / "kernel.log").write_text("100.000001 vm kernel: early\n200.500000 vm kernel: Out of memory: Killed "
                                         "process 9 (mysqld)\n")
    argv = ["journalctl", "-k", "-q", "--no-pager", "-o", "short-unix", "--since", "@150"]
    out = run(argv, tmp_path)
    assert (out.returncode, out.stdout) == (0, "200.500000 vm kernel: Out of memory: Killed process 9 (mysqld)\n")
    plain = run(["journalctl", "-k", "-q", "--no-pager", "--since", "@0"], tmp_path)
    assert plain.stdout.splitlines()[0] == "Nov 30 05:00:00 vm kernel: early"
