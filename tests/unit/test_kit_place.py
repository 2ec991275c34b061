"""Where CopyToRemote puts the guest kit, and what root checks before it runs a line of it.

pulumi-command's CopyToRemote puts a folder *inside* remotePath, over SFTP, without mode bits
(components.commands.copy_destination cites the provider's code). The commands must run the kit
from there, and root must run only the kit this program hashed, never files another local user
could have planted or changed. The harness's upload (tests/vm/upload.py) is checked here against a
real OpenSSH sshd and sftp-server on loopback, so the VM tests' upload is the provider's upload.
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.commands import (
    _VERIFY_AND_RUN,
    KIT_DIR,
    BenchPlan,
    CellCommands,
    CopyRuleError,
    cell_commands,
    copy_destination,
    kit_args,
    kit_command,
    kit_hash,
    remote_kit_dir,
    remote_kit_path,
)
from components.results import parse_bootstrap
from tests.conftest import FleetMocks
from tests.unit.test_program import cell_of, run_program
from tests.vm.upload import sftp_upload

SSHD = "/usr/sbin/sshd"
DIGEST = kit_hash()
KIT_VERSION = (KIT_DIR / "VERSION").read_text().strip()
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="runs the cell commands as root, as on an instance")


# ---- the provider's rule ------------------------------------------------------------------------

@pytest.mark.parametrize(("remote_path", "source", "remote_is", "lands"), [
    # copyController.go:224-228, the table, as the code under it does it
    ("/var/tmp/k8sf-kit-ab", "/src/benchmarks/guest", None, "/var/tmp/k8sf-kit-ab/guest"),
    ("/var/tmp/k8sf-kit-ab", "/src/benchmarks/guest", "dir", "/var/tmp/k8sf-kit-ab/guest"),
    ("/var/tmp/k8sf-kit-ab", "/src/benchmarks/guest/", None, "/var/tmp/k8sf-kit-ab"),
    ("/var/tmp/k8sf-kit-ab", "/src/benchmarks/guest/", "dir", "/var/tmp/k8sf-kit-ab"),
    ("kits/a/", "guest", None, "kits/a/guest"),
])
def test_copy_destination_puts_a_folder_inside_remote_path_unless_it_ends_in_a_slash(
        remote_path: str, source: str, remote_is: Any, lands: str) -> None:
    assert copy_destination(remote_path, source, remote_is=remote_is) == lands


def test_copy_destination_for_files_and_the_failures() -> None:
    assert copy_destination("/etc/x.conf", "/src/a.conf", source_is_dir=False) == "/etc/x.conf"
    assert copy_destination("/etc", "/src/a.conf", source_is_dir=False, remote_is="dir") == "/etc/a.conf"
    with pytest.raises(CopyRuleError, match="exists as a file"):
        copy_destination("/var/tmp/f", "/src/guest", remote_is="file")
    with pytest.raises(CopyRuleError, match="does not expand '~'"):
        copy_destination("~/.k8s-footprint/kit-ab", "/src/guest")


def test_commands_run_the_kit_where_copy_to_remote_puts_it() -> None:
    # Before this fix the commands ran /var/tmp/k8sf-kit-<hash>/k8sf; the file was at .../guest/k8sf.
    cmds = cell_commands(BenchPlan(cell="x86_64-k3s-1", distro="k3s"), "abc123")
    lands = copy_destination(cmds.kit_path, str(KIT_DIR))
    assert lands == cmds.kit_dir == remote_kit_dir("abc123") == ".k8s-footprint/kit-abc123/guest"
    assert cmds.kit_path == remote_kit_path("abc123") == ".k8s-footprint/kit-abc123"
    for command in (cmds.bootstrap, cmds.benchmark, cmds.uninstall):
        assert f'k8sf-kit "$HOME"/{lands} abc123 ' in command
    assert kit_args(cmds.bootstrap)[:2] == ["bootstrap", "k3s"]
    assert kit_args(cmds.uninstall) == ["uninstall", "k3s"]


def kit_dir_in(command: str) -> str:
    """The folder a kit command runs the kit from, as the remote shell spells it."""
    return shlex.split(command.split('$S sh -c "$K" k8sf-kit ', 1)[1].split(";")[0])[0]


def test_each_cells_commands_run_the_kit_where_its_own_copy_puts_it(mocks: FleetMocks) -> None:
    # The program as the engine runs it: DistroBootstrap's CopyToRemote inputs, through the rule.
    run_program({"distros": ["bare", "k3s"], "arches": ["x86_64", "aarch64"]})
    copies = {cell_of(r.name): r for r in mocks.of_type("command:remote:CopyToRemote")}
    commands = mocks.of_type("command:remote:Command")
    assert len(copies) == 4 and len(commands) == 8
    for c in commands:
        copy = copies[cell_of(c.name)]
        source = copy.inputs["source"]
        assert isinstance(source, pulumi.FileArchive)
        lands = copy_destination(copy.inputs["remotePath"], source.path)
        assert kit_dir_in(c.inputs["create"]) == f"$HOME/{lands}", c.name
        assert Path(source.path) == KIT_DIR and not source.path.endswith("/")


def test_the_kit_is_not_under_a_world_writable_folder() -> None:
    cmds = cell_commands(BenchPlan(cell="c", distro="bare"), "abc123")
    assert not cmds.kit_path.startswith(("/", "~")), "relative: SFTP and the commands both start in the home"
    assert "/var/tmp/k8sf-kit" not in cmds.bootstrap + cmds.benchmark + cmds.uninstall


def test_every_kit_file_name_passes_the_guest_side_name_check() -> None:
    # The root side refuses names outside A-Za-z0-9._- (they could make its file list ambiguous).
    for path in KIT_DIR.rglob("*"):
        if "__pycache__" not in path.parts:
            name = path.name
            assert name and all(c.isascii() and (c.isalnum() or c in "._-") for c in name), path


def test_command_strings_are_shellcheck_clean() -> None:
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed: apt-get install shellcheck")
    cmds = cell_commands(BenchPlan(cell="c", distro="docker", power_off_after=True, image_tar="/var/tmp/w.tar"),
                         DIGEST)
    # SC2016: K is single-quoted on purpose, for the root shell to expand. SC2086: $S is "sudo -n"
    # or nothing, split on purpose.
    for command in (cmds.bootstrap, cmds.benchmark, cmds.uninstall, cmds.remove_kit, "#!/bin/sh\n" + _VERIFY_AND_RUN):
        proc = subprocess.run(["shellcheck", "-s", "sh", "-e", "SC2016,SC2086", "-"], input=command, text=True,
                              capture_output=True, check=False)
        assert proc.returncode == 0, proc.stdout


# ---- the harness's upload against a real sshd ---------------------------------------------------

@dataclass
class Sshd:
    port: int
    home: Path  # the SFTP session's start folder: where relative paths go, as in a home directory
    key: Path
    umask: int = 0o022

    def options(self) -> list[str]:
        return ["-i", str(self.key), "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]

    def upload(self, local: Path, remote_path: str) -> Path:
        user = pwd.getpwuid(os.geteuid()).pw_name
        landed = sftp_upload(local, remote_path, port=self.port, destination=f"{user}@127.0.0.1",
                             ssh_options=self.options(), timeout=60)
        return self.home / landed


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sshd]:
    """A real OpenSSH sshd on 127.0.0.1 with its own host key and authorized key, for this test only.
    Its SFTP sessions start in a temporary folder (sftp-server's -d), standing in for the home
    directory that sshd starts every session in, so nothing is written to this machine's real home."""
    for tool in (SSHD, "sftp", "ssh-keygen"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is missing: apt-get install openssh-server openssh-client")
    if os.geteuid() != 0:
        pytest.skip("sshd checks its privilege separation folder and host key as root")
    d = tmp_path_factory.mktemp("sshd")
    home = d / "home"
    home.mkdir()
    for name in ("host", "client"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name)], check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\nAuthorizedKeysFile {d / 'authorized_keys'}\n"
        "PidFile none\nUsePAM no\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\n"
        # The same sftp-server code as Debian's default Subsystem (sftp-server.c), with the umask
        # that Debian's sshd sessions have, stated rather than inherited.
        f"Subsystem sftp internal-sftp -d {home} -u 022\n")
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # what the openssh-server package makes at start
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=open(d / "sshd.log", "wb"))  # noqa: SIM115 - closed with the process
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()[-2000:]}")
                time.sleep(0.1)
        yield Sshd(port, home, d / "client")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_harness_upload_lands_where_the_rule_says_with_no_mode_bits(sshd: Sshd) -> None:
    landed = sshd.upload(KIT_DIR, remote_kit_path(DIGEST))
    assert landed == sshd.home / remote_kit_dir(DIGEST)
    assert (landed / "k8sf").read_bytes() == (KIT_DIR / "k8sf").read_bytes()
    assert not (sshd.home / remote_kit_path(DIGEST) / "k8sf").exists()  # not one folder up
    assert sorted(p.relative_to(landed) for p in landed.rglob("*")) == sorted(
        p.relative_to(KIT_DIR) for p in KIT_DIR.rglob("*") if "__pycache__" not in p.parts)
    assert os.access(KIT_DIR / "k8sf", os.X_OK)  # executable here, and yet:
    for path in [landed.parent.parent, landed.parent, *landed.rglob("*"), landed]:
        mode = stat.S_IMODE(path.stat().st_mode)
        want = (0o777 if path.is_dir() else 0o666) & ~sshd.umask  # the server's defaults, less its umask
        assert mode == want, f"{path}: {oct(mode)}"


def test_harness_upload_into_an_existing_folder_keeps_what_was_there(sshd: Sshd) -> None:
    # copyController.go:244-253 and copyDir: an existing folder is copied into; nothing is removed.
    target = sshd.home / "existing" / "guest"
    target.mkdir(parents=True)
    (target / "planted.sh").write_text("echo planted\n")
    (target / "k8sf").write_text("old\n")
    landed = sshd.upload(KIT_DIR, "existing")
    assert landed == target
    assert (target / "planted.sh").read_text() == "echo planted\n"
    assert (target / "k8sf").read_bytes() == (KIT_DIR / "k8sf").read_bytes()


# ---- running the commands as the instance does --------------------------------------------------

def run(command: str, home: Path, tmp: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """A command string as remote.Command runs it: the login shell with HOME set, here /bin/sh."""
    env = {**os.environ, "HOME": str(home), "K8SF_STATE_DIR": str(tmp / "state")}
    return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=timeout,
                          check=False)


def fresh_home(sshd: Sshd, name: str) -> Path:
    """A home of its own for one test: the sshd's start folder is shared, so upload, then move."""
    landed = sshd.upload(KIT_DIR, remote_kit_path(DIGEST))
    home = sshd.home.parent / name
    (home / remote_kit_path(DIGEST)).parent.mkdir(parents=True)
    landed.parent.rename(home / remote_kit_path(DIGEST))
    return home


def root_runs() -> set[Path]:
    return set(Path("/var/tmp").glob("k8sf-root.*"))


@needs_root
def test_bootstrap_runs_the_kit_the_provider_uploaded(sshd: Sshd, tmp_path: Path) -> None:
    home = fresh_home(sshd, "bootstrap")
    plan = BenchPlan(cell="c", distro="bare", settle_s=0, interval_s=1, samples=5)
    cmds = cell_commands(plan, DIGEST)
    before = root_runs()
    proc = run(cmds.bootstrap, home, tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert parse_bootstrap(proc.stdout, "c")["status"] == "ok"
    assert root_runs() == before  # root's verified copy is gone again


def version_command() -> str:
    return kit_command(DIGEST, ["version"], 60)


@needs_root
def test_the_untouched_kit_passes_the_check_and_runs(sshd: Sshd, tmp_path: Path) -> None:
    proc = run(version_command(), fresh_home(sshd, "untouched"), tmp_path)
    assert (proc.returncode, proc.stdout.strip()) == (0, KIT_VERSION), proc.stderr


def plant_extra(kit: Path, marker: Path) -> None:
    (kit / "lib" / "evil.sh").write_text(f"touch {marker}\n")


def alter(kit: Path, marker: Path) -> None:
    common = kit / "lib" / "common.sh"
    common.write_text(f"touch {marker}\n" + common.read_text())


def swap_for_symlink(kit: Path, marker: Path) -> None:
    evil = kit.parent / "evil.sh"
    evil.write_text(f"touch {marker}\n")
    (kit / "lib" / "common.sh").unlink()
    (kit / "lib" / "common.sh").symlink_to(evil)


def remove_one(kit: Path, marker: Path) -> None:
    (kit / "distros" / "k3s.sh").unlink()


def odd_name(kit: Path, marker: Path) -> None:
    (kit / "lib" / "a\nb").write_text(f"touch {marker}\n")


@needs_root
@pytest.mark.parametrize("tamper", [plant_extra, alter, swap_for_symlink, remove_one, odd_name])
def test_root_refuses_a_kit_that_changed_after_the_upload(sshd: Sshd, tmp_path: Path, tamper: Any) -> None:
    home = fresh_home(sshd, f"tampered-{tamper.__name__}")
    marker = tmp_path / "ran"
    tamper(home / remote_kit_dir(DIGEST), marker)
    before = root_runs()
    cmds = cell_commands(BenchPlan(cell="c", distro="bare"), DIGEST)
    for command in (version_command(), cmds.bootstrap, cmds.uninstall):
        proc = run(command, home, tmp_path)
        assert proc.returncode == 3, (proc.returncode, proc.stderr)
        assert f"k8sf-kit: refusing to run the kit in {home / remote_kit_dir(DIGEST)}" in proc.stderr
        assert proc.stdout == ""
    assert not marker.exists(), "a line of the planted kit ran"
    assert not (tmp_path / "state").exists(), "the kit ran"
    assert root_runs() == before


@needs_root
def test_uninstall_without_a_kit_does_nothing_and_succeeds(tmp_path: Path) -> None:
    cmds = cell_commands(BenchPlan(cell="c", distro="bare"), DIGEST)
    proc = run(cmds.uninstall, tmp_path / "empty-home", tmp_path)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "", "")


def test_remove_kit_removes_the_uploaded_folder(tmp_path: Path) -> None:
    cmds: CellCommands = cell_commands(BenchPlan(cell="c", distro="bare"), DIGEST)
    (tmp_path / cmds.kit_dir).mkdir(parents=True)
    (tmp_path / cmds.kit_dir / "k8sf").write_text("x")
    assert run(cmds.remove_kit, tmp_path, tmp_path).returncode == 0
    assert not (tmp_path / cmds.kit_path).exists() and (tmp_path / cmds.kit_path).parent.is_dir()


# ---- the shell's hash is kit_hash() -------------------------------------------------------------

def shell_check(kit: Path, digest: str, shell: str) -> subprocess.CompletedProcess[str]:
    """The root side's script alone, on `kit`, then `k8sf version`."""
    return subprocess.run([shell, "-c", _VERIFY_AND_RUN, "k8sf-kit", str(kit), digest, "version"],
                          capture_output=True, text=True, timeout=60, check=False)


def shells() -> list[str]:
    return [s for s in ("dash", "bash") if shutil.which(s)]


@pytest.mark.parametrize("shell", shells())
def test_shell_hash_agrees_with_kit_hash_on_the_real_kit_and_a_changed_one(tmp_path: Path, shell: str) -> None:
    assert shell_check(KIT_DIR, DIGEST, shell).stdout.strip() == KIT_VERSION
    changed = tmp_path / "guest"
    shutil.copytree(KIT_DIR, changed)
    (changed / "distros" / "bare.sh").write_text((changed / "distros" / "bare.sh").read_text() + "# changed\n")
    # Names that sort differently part by part than byte by byte ('-' and '.' sort before '/').
    for rel in ("lib-x/a", "lib.d", "lib/zz-a.sh", "distros-old/b"):
        (changed / rel).parent.mkdir(parents=True, exist_ok=True)
        (changed / rel).write_text(rel)
    (changed / "__pycache__").mkdir()
    (changed / "__pycache__" / "x.pyc").write_text("left out by both")
    new = kit_hash(changed)
    assert new != DIGEST
    assert shell_check(changed, new, shell).stdout.strip() == KIT_VERSION
    refused = shell_check(changed, DIGEST, shell)
    assert refused.returncode == 3
    assert f"its content hash is {new}, not {DIGEST}" in refused.stderr
