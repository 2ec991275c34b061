"""The exact commands a cell runs on its instance, from one function.

DistroBootstrap and WorkloadBenchmark run these strings over SSH, and the qemu test harness
runs the very same strings, so what the tests prove is what the fleet does. No secret is ever
part of a command: the guest kit makes the workload's password on the guest itself.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from components.cells import Cell
from components.config import FleetSpec

KIT_DIR = Path(__file__).resolve().parent.parent / "benchmarks" / "guest"
DEFAULT_IMAGE = "mysql:8.4"
OS_SETTLE_MAX_S = 60  # the OS baseline needs less settling than a distro does
MARGIN_S = 300
# A re-run's clean slate before idle: removing the previous workload (300 s), waiting for its
# containers to go (300 s) and for MemAvailable to hold still (180 s) (benchmarks/guest/k8sf clean_slate).
CLEAN_SLATE_S = 300 + 300 + 180


def kit_files(kit_dir: Path | None = None) -> list[Path]:
    kit_dir = kit_dir or KIT_DIR
    # Sorted by the bytes of the relative path, which is what `LC_ALL=C sort` does on the guest
    # (see _VERIFY_AND_RUN): Path objects would sort part by part, which differs once a name
    # holds a character below '/', such as '-' or '.'.
    files = (p for p in kit_dir.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return sorted(files, key=lambda p: p.relative_to(kit_dir).as_posix().encode())


def kit_hash(kit_dir: Path | None = None) -> str:
    """Content hash of the guest kit: a new kit is uploaded to a new path and re-runs its cells.

    The root side of every cell command recomputes it on the guest before it runs a line of the
    kit (_VERIFY_AND_RUN); tests/unit/test_kit_place.py runs both on the same folders.
    """
    kit_dir = kit_dir or KIT_DIR
    h = hashlib.sha256()
    for path in kit_files(kit_dir):
        h.update(path.relative_to(kit_dir).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


# The kit's folder on an instance, relative to the SSH user's home directory. Only that user (and
# root) can write there: sshd's StrictModes, on by default, refuses key logins when the home
# directory is writable by anyone else. Under world-writable /var/tmp another local user could
# create the predictable path first, and CopyToRemote copies into a folder that already exists.
KIT_HOME_DIR = ".k8s-footprint"


def remote_kit_path(digest: str) -> str:
    """The remotePath given to CopyToRemote. Relative on purpose: pulumi-command passes remotePath
    to SFTP unchanged (copyController.go:188 -> sftpCopy), the SFTP server opens relative paths
    from the session's working directory, and sshd starts every session in the user's home. The
    provider does not expand `~` (it would make a folder named `~`), and the home directory is not
    known before the instance exists. The hash makes the path new for every kit."""
    return f"{KIT_HOME_DIR}/kit-{digest}"


class CopyRuleError(ValueError):
    pass


def copy_destination(remote_path: str, source: str, *, source_is_dir: bool = True,
                     remote_is: Literal["dir", "file"] | None = None) -> str:
    """Where `remote.CopyToRemote(source=FileArchive|FileAsset(source), remote_path=remote_path)`
    puts the source, by pulumi-command v1.2.1's sftpCopy
    (provider/pkg/provider/remote/copyController.go:203-269):

    - a folder whose path has no trailing slash lands *inside* remotePath, as
      remotePath/<folder name> (lines 238-239), whether remotePath existed (as a folder) or not (then
      it is made with MkdirAll, lines 231-235); an existing remotePath/<folder name> folder is copied
      into, and nothing already in it is removed (lines 244-253, copyDir 293-319);
    - a folder whose path ends in '/' has its files land in remotePath itself (line 238);
    - either kind of folder fails when remotePath, or remotePath/<folder name>, is a file (the
      table at lines 224-228; the checks at 240-246 and 315-316);
    - a file lands at remotePath, or at remotePath/<file name> when remotePath is an existing
      folder (lines 257-259).

    Files are made with SFTP's plain create (copyFile, lines 271-289): pkg/sftp v1.13.6's
    Client.Create (client.go:258-260) sends an open request whose attribute flags are 0
    (packet.go:680-702), so OpenSSH's sftp-server creates the file with its default 0666 less its
    umask (sftp-server.c, process_open). The source's mode bits never travel: nothing arrives
    executable. Folders likewise: Client.Mkdir sends no mode (packet.go:884-904), so 0777 less the
    umask (process_mkdir).

    `remote_is` says what remotePath is on the host before the copy: None (nothing), "dir" or "file".
    The result is in the provider's own spelling (Go's filepath.Join cleans the path).
    """
    if remote_is not in (None, "dir", "file"):
        raise CopyRuleError(f"remote_is must be None, 'dir' or 'file', not {remote_is!r}")
    if remote_path.startswith("~"):
        # Nothing on the way expands it: the files would land in a folder named '~' in the home directory.
        raise CopyRuleError(f"remotePath {remote_path!r}: the provider does not expand '~'; "
                            "give a path relative to the home directory instead")
    if source_is_dir:
        if remote_is == "file":
            raise CopyRuleError(f"remotePath {remote_path!r} exists as a file; a folder can't be copied onto it")
        if source.endswith("/"):
            return posixpath.normpath(remote_path)
        return posixpath.normpath(posixpath.join(remote_path, posixpath.basename(source)))
    if remote_is == "dir":
        return posixpath.normpath(posixpath.join(remote_path, posixpath.basename(source)))
    return posixpath.normpath(remote_path)


def remote_kit_dir(digest: str, kit_dir: Path | None = None) -> str:
    """Where the kit's files are once DistroBootstrap's CopyToRemote is done, relative to home."""
    return copy_destination(remote_kit_path(digest), str(kit_dir or KIT_DIR))


@dataclass(frozen=True)
class BenchPlan:
    """Everything that shapes one cell's commands."""

    cell: str
    distro: str
    version: str | None = None
    workload: str = "mysql"
    settle_s: int = 300
    interval_s: int = 5
    samples: int = 12
    image: str = DEFAULT_IMAGE
    image_tar: str | None = None  # a path on the instance
    power_off_after: bool = False
    install_timeout_s: int = 1800
    ready_timeout_s: int = 900
    workload_timeout_s: int = 900
    # What bootstrap does with a distro that was on the machine before the kit (k8sf --preinstalled).
    preinstalled: Literal["refuse", "measure"] = "refuse"

    @classmethod
    def for_cell(cls, spec: FleetSpec, cell: Cell) -> BenchPlan:
        return cls(
            cell=cell.name, distro=cell.distro, version=spec.versions.get(cell.distro),
            workload=spec.workload, settle_s=spec.settle_seconds, interval_s=spec.sample_interval_seconds,
            samples=spec.samples, power_off_after=spec.power_off_after,
            preinstalled="measure" if spec.measure_preinstalled else "refuse",
        )

    @property
    def os_settle_s(self) -> int:
        return min(self.settle_s, OS_SETTLE_MAX_S)

    @property
    def window_s(self) -> int:
        return self.samples * self.interval_s

    def bootstrap_timeout_s(self) -> int:
        return self.os_settle_s + self.window_s + self.install_timeout_s + self.ready_timeout_s + 60 + MARGIN_S

    def benchmark_timeout_s(self) -> int:
        idle = CLEAN_SLATE_S + self.settle_s + self.window_s + 60
        workload = 0
        if self.workload != "none":
            workload = self.workload_timeout_s + 30 + self.settle_s + self.window_s + 60
            if self.image_tar:
                workload += self.workload_timeout_s  # the import has the same bound
        return idle + workload + MARGIN_S


@dataclass(frozen=True)
class CellCommands:
    kit_path: str  # the remotePath for CopyToRemote, relative to the SSH user's home
    bootstrap: str
    benchmark: str
    uninstall: str
    kit_dir: str = ""  # where the kit's files land (copy_destination), relative to the home directory
    remove_kit: str = ""  # removes the uploaded kit, as the SSH user: for a delete on machines that stay
    # The hosts backend without allowUninstall: what destroy runs, and what a changed command set
    # runs instead of a second install (it refuses).
    leave_installed: str = ""
    refuse_reinstall: str = ""

    def fingerprint(self) -> str:
        """Changes with any command a cell runs (and so with the kit, whose hash is in them):
        the instance's replacement trigger, so changed commands never re-run on a used machine."""
        text = "\0".join((self.kit_path, self.bootstrap, self.benchmark))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


# Root runs the kit directly; anyone else through non-interactive sudo, which fails instead of
# waiting for a password nobody will type.
_AS_ROOT = 'S=; [ "$(id -u)" = 0 ] || S="sudo -n"'

# What root runs, as `sh -c "$K" k8sf-kit KIT_DIR HASH ARGS...`: copy the uploaded kit into a
# fresh folder only root can enter (mktemp -d: a new random name, mode 0700; /var/tmp's sticky bit
# keeps anyone else from renaming it), check that the copy is exactly the kit this program
# hashed, then run that copy. Root never reads a kit file that another user could still change
# after the check. Exit 3 and a message, with nothing of the kit run, when the check fails.
# The hash is kit_hash() in shell: every regular file (but __pycache__), sorted by its path's
# bytes, as "path\0content\0", SHA-256, the first 16 hex digits. The copy holds nothing but
# folders and regular files with plain names, so those lines are unambiguous.
# No single quotes here: the script travels inside them (see kit_command).
_VERIFY_AND_RUN = "; ".join([
    "set -eu",
    "src=$1 want=$2",
    "shift 2",
    'fail() { printf "k8sf-kit: refusing to run the kit in %s: %s\\n" "$src" "$1" >&2; exit 3; }',
    '[ -d "$src" ] || fail "there is no such folder (was the kit uploaded?)"',
    "umask 077",
    "run=$(mktemp -d /var/tmp/k8sf-root.XXXXXXXXXX)",
    'cleanup() { rm -rf -- "$run"; }',
    "trap cleanup EXIT",
    'trap "exit 129" HUP',
    'trap "exit 130" INT',
    'trap "exit 143" TERM',
    'cp -RP -- "$src/." "$run/kit" || fail "could not copy it"',
    'cd "$run/kit"',
    "find . -name __pycache__ -prune -exec rm -rf -- {} +",
    '[ -z "$(find . ! -type f ! -type d)" ] || fail "it holds something that is neither a file nor a folder"',
    '[ -z "$(find . -name "*[!A-Za-z0-9._-]*")" ] || fail "a name in it has a character outside A-Za-z0-9._-"',
    'got=$(find . -type f | LC_ALL=C sort | while IFS= read -r f; do printf "%s\\000" "${f#./}"; cat -- "$f"; '
    'printf "\\000"; done | sha256sum | cut -c1-16)',
    '[ "$got" = "$want" ] || fail "its content hash is $got, not $want: a file in it was added, removed or changed '
    'after the upload"',
    'sh "$run/kit/k8sf" "$@"',
])


def kit_command(digest: str, args: list[str], timeout_s: int, kit_dir: Path | None = None) -> str:
    """`k8sf ARGS...` as root, bounded by `timeout`, on the verified copy of the uploaded kit."""
    q = shlex.quote
    where = f'"$HOME"/{q(remote_kit_dir(digest, kit_dir))}'
    return (f"{_AS_ROOT}; K={q(_VERIFY_AND_RUN)}; timeout {timeout_s} {_KIT_CALL}{where} {q(digest)} "
            f"{' '.join(q(a) for a in args)}")


_KIT_CALL = '$S sh -c "$K" k8sf-kit '


def kit_args(command: str) -> list[str]:
    """The k8sf arguments of a command kit_command made (a verb, a distro, options): what the kit runs."""
    if _KIT_CALL not in command:
        raise ValueError(f"not a kit command: {command[:200]}")
    words = shlex.split(command.split(_KIT_CALL, 1)[1].split(";")[0].split("&&")[0])
    return words[2:]  # after KIT_DIR and HASH


def kit_version(kit_dir: Path | None = None) -> str | None:
    path = (kit_dir or KIT_DIR) / "VERSION"
    return path.read_text().strip() if path.is_file() else None


def no_result_guard(command: str, plan: BenchPlan, version: str | None, *, power_off: bool = False) -> str:
    """The benchmark command line, so that a kit that dies or times out is that cell's no_result.

    A failed Command fails the whole update's outputs: the Python SDK's Stack registers its outputs
    once, after awaiting every exported Output (sdk/python/lib/pulumi/runtime/stack.py:335-344 ->
    runtime/resource.py:1278-1286, serialize_properties), and a failed resource's outputs resolve
    to its exception (runtime/resource.py:1241-1242, 1259-1265), so `results`, an Output.all over
    every cell, is never registered; the engine finalizes stack outputs only from a registration it
    got (pkg/resource/deploy/deployment_executor.go:354-361) and, on an errored update, lays what
    came over the old ones (step_executor.go:263-268). Lines as of pulumi v3.259.0. Hence the
    kit's failure must not be the Command's: every finished cell's result is still in the state
    (fleet/recover.py).

    After the kit exits non-zero, this prints one more line, a `no_result` document (the shape in
    benchmarks/schema/result-v2.json) saying how it ended, and exits 0. That document is the last
    line, which is what components/results.py reads. Whatever the kit printed before stays above it,
    and its log is the Command's stderr. Only sh itself not running (no SSH, no login) still fails
    the resource. The error text is built from fixed words and the exit status alone, so nothing
    in the line needs escaping, and no secret is in it.
    """
    head = {"schema": "k8s-footprint/result/v2", "status": "no_result", "cell": plan.cell,
            "distro": plan.distro, "kit_version": version, "error": ""}
    prefix = json.dumps(head)[:-2]  # up to the error's opening quote
    why = (f'case $rc in 124) w="timed out after {plan.benchmark_timeout_s()} s";; '
           '3) w="refused to run: the uploaded kit failed its content check";; '
           '*) w="exited with status $rc";; esac')
    line = (f"{command}; rc=$?; if [ $rc -ne 0 ]; then {why}; "
            "printf '\\n%s%s\"}\\n' " + shlex.quote(prefix)
            + " \"k8sf benchmark $w; its log is the command's stderr\"; ")
    if power_off:
        # Once the result is out, free the host's memory for the next cell; only after a real
        # result, so a failed cell stays up to be looked at.
        line += ("else $S systemd-run --on-active=5 --unit=k8sf-poweroff /bin/systemctl poweroff "
                 ">/dev/null 2>&1 || :; ")
    return line + "fi; exit 0"


def cell_commands(plan: BenchPlan, digest: str, kit_dir: Path | None = None) -> CellCommands:
    boot = ["bootstrap", plan.distro]
    if plan.version:
        boot += ["--version", plan.version]
    boot += ["--settle", str(plan.os_settle_s), "--interval", str(plan.interval_s), "--samples", str(plan.samples),
             "--install-timeout", str(plan.install_timeout_s), "--ready-timeout", str(plan.ready_timeout_s)]
    if plan.preinstalled != "refuse":  # the kit's default; left out, so existing stacks' commands stay the same
        boot += ["--preinstalled", plan.preinstalled]

    bench = ["benchmark", plan.distro, "--settle", str(plan.settle_s), "--interval", str(plan.interval_s),
             "--samples", str(plan.samples), "--workload", plan.workload, "--image", plan.image,
             "--workload-timeout", str(plan.workload_timeout_s), "--cell", plan.cell]
    if plan.image_tar:
        bench += ["--image-tar", plan.image_tar]

    benchmark = no_result_guard(kit_command(digest, bench, plan.benchmark_timeout_s(), kit_dir), plan,
                                kit_version(kit_dir), power_off=plan.power_off_after)
    landed = f'"$HOME"/{shlex.quote(remote_kit_dir(digest, kit_dir))}'
    # A kit that is gone has nothing to uninstall with; one that fails its check is refused (exit 3).
    uninstall = kit_command(digest, ["uninstall", plan.distro], 1200, kit_dir)
    uninstall = uninstall.replace("; timeout ", f"; [ ! -d {landed} ] || timeout ", 1)
    remove_kit = f'rm -rf -- "$HOME"/{shlex.quote(remote_kit_path(digest))}'
    # The kit folder goes too: nothing of the cell is left on a machine Pulumi doesn't own.
    uninstall = f"{uninstall} && {remove_kit}"
    leave = (f"echo 'k8s-footprint: {plan.cell}: leaving {plan.distro} installed on this host "
             f"(allowUninstall is false); removing only the kit' >&2; {remove_kit}")
    refuse = (f"echo 'k8s-footprint: {plan.cell}: the commands changed, but this host already holds {plan.distro} "
              "from the earlier run, and a clean install cannot be measured on it. Set allowUninstall: true to "
              "let pulumi uninstall it and install again, or remove it by hand and run "
              "pulumi up --replace on this cell.' >&2; exit 1")
    return CellCommands(kit_path=remote_kit_path(digest),
                        bootstrap=kit_command(digest, boot, plan.bootstrap_timeout_s(), kit_dir),
                        benchmark=benchmark, uninstall=uninstall, kit_dir=remote_kit_dir(digest, kit_dir),
                        remove_kit=remove_kit, leave_installed=leave, refuse_reinstall=refuse)
