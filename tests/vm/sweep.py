"""The memory sweep in real VMs (`make sweep-vm`): bare and Docker+MariaDB at several sizes per arch.

Each cell boots a fresh qemu guest of the VM harness (tests/vm/qemu.py) with `-m <size>` and runs
the fleet's own command sequence (components/commands.py: cell_commands) on it: upload the kit,
bootstrap, benchmark. The verdict and the fit matrix come from components/fit.py, as for the
fleet's `fit` output and the report. MariaDB from Debian's packages stands in for `mysql:8.4`,
which Docker Hub would serve and these machines cannot reach (tests/vm/workload_image.py).

Every cell is a result: a guest that does not boot, an SSH session that drops, or a step that
runs past the cell's wall budget becomes that cell's `no_result` document, saying which step and
why. Each cell's record is written atomically under OUT/cells/, named by arch, distro, size and
the kit's version and content hash; the next run skips every cell that has a record for the
current kit, so an interrupted sweep resumes cell by cell and a new kit measures again.

Each cell runs in a child process of its own (`python -m tests.vm.sweep cell ...`), so a cell
that crashes, hangs or is killed leaves the sweep running; the child stops its qemu on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from components import fit
from components.cells import cell_name
from components.commands import BenchPlan, cell_commands, kit_hash, kit_version
from components.config import MEMORY_FLOOR, MEMORY_MAX
from components.results import NO_RESULT, no_result, read_result

ARCHES = ("x86_64", "aarch64")
DISTROS = ("bare", "docker")
# Sizes that cross the boundary: Docker+MariaDB used 438 of 959 MiB on x86_64 and 347 of 977 on
# aarch64 at 1024 MiB (benchmarks/results/qemu-debian12/2026-11-22-*-docker-mariadb-kit0.1.3.json),
# and 256 is the libvirt floor (components/config.py). Used memory shrinks with the machine, though:
# at 512 MiB x86_64 Docker + MariaDB used 198 MiB and fit (the sweep's x86_64-docker-512m-1), so
# aarch64 goes down to 256 as well. aarch64 stops at 384, where Docker + MariaDB fit (177 MiB used):
# an emulated Docker cell takes 1 to 1.5 h here, and its 1024 MiB figure is already measured (above).
DEFAULT_SIZES = {"x86_64": (256, 384, 512, 1024), "aarch64": (256, 384)}
WORKLOAD_LABEL = "MariaDB 10.11 (Debian 12 packages, image k8sf/mariadb:bookworm) as the stand-in for mysql:8.4"
TAR_REMOTE = "/var/tmp/k8sf-workload.tar"
# Expected wall time of a cell, for the progress line: boot, kit upload, bootstrap, tar copy and
# benchmark as measured at 1024 MiB (benchmarks/results/qemu-debian12/durations-2026-11-22-kit0.1.3.json),
# rounded up for the sweep's longer sampling window.
EXPECTED_S = {("x86_64", "bare"): 180, ("x86_64", "docker"): 620,
              ("aarch64", "bare"): 330, ("aarch64", "docker"): 1900}
# The most one cell may take, every step included; past it the cell is a no_result. An undersized
# guest can thrash for a long time before the OOM killer acts; the emulated docker load alone took
# over 900 s at 1 GiB.
# The machine is shared: with the load average at 15 on 2 cores, a 256 MiB x86_64 guest was still
# in udev 236 s after start (the harness's 80 s at 1 GiB on a quiet machine), so the bounds are wide.
# At 512 MiB the next guest answered SSH after 371 s. Everything runs 4 to 5 times slower then, so a
# cell may take 4 times its quiet-machine time before it counts as stuck.
BUDGET_S = {("x86_64", "bare"): 2400, ("x86_64", "docker"): 7200,
            ("aarch64", "bare"): 3600, ("aarch64", "docker"): 14400}
# Boot to SSH; K8SF_VM_SSH_TIMEOUT overrides it, as for the VM tests.
BOOT_S = {False: 1200, True: 2400}  # by emulated
# ssh's ConnectTimeout, and each `ssh true` while waiting for the boot. With the VM tests' 10 s and
# 30 s, an emulated 1 GiB guest (the host's load average at 7 to 9) never let the harness in within
# 29 min: every attempt gave up first, and each one started a login the guest then tore down. One
# login by hand with ConnectTimeout=120 took 1 min 54 s.
CONNECT_S = {False: 60, True: 240}
PROBE_S = {False: 120, True: 300}
# How long the child may outlive its budget (qemu stop, writing the record) before it is killed.
CHILD_GRACE_S = 300


class SweepError(ValueError):
    """Bad input to the sweep: names the bad value and what is allowed."""


@dataclass(frozen=True)
class Settings:
    """The sampling windows of every cell (the fleet's are 300 s, 5 s and 12)."""

    settle_s: int = 10
    interval_s: int = 2
    samples: int = 10


@dataclass(frozen=True)
class SweepCell:
    arch: str
    distro: str
    memory_mib: int

    @property
    def name(self) -> str:
        """The fleet's sweep name (components/cells.py), e.g. x86_64-docker-512m-1; fit.py reads the size from it."""
        return cell_name(self.arch, self.distro, 1, self.memory_mib)

    @property
    def emulated(self) -> bool:
        return self.arch != os.uname().machine

    def key(self, version: str | None, digest: str) -> str:
        """The record's file stem: arch, distro, size, kit version and kit content hash."""
        return f"{self.name}.kit{version or 'unknown'}-{digest}"


def parse_sizes(text: str) -> dict[str, tuple[int, ...]]:
    """`x86_64=256,384,512,1024;aarch64=384,1024` -> {arch: sizes}; every arch given must be known,
    every size a whole number of MiB from the libvirt floor to the maximum, none twice."""
    lo = MEMORY_FLOOR["libvirt"]
    out: dict[str, tuple[int, ...]] = {}
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        arch, sep, values = part.partition("=")
        arch = arch.strip()
        if not sep:
            raise SweepError(f"sizes {part!r}: write ARCH=MiB,MiB,... (for example x86_64=256,512,1024)")
        if arch not in ARCHES:
            raise SweepError(f"sizes: arch {arch!r} is not one of {', '.join(ARCHES)}")
        if arch in out:
            raise SweepError(f"sizes: arch {arch} is given twice")
        sizes: list[int] = []
        for raw in (v.strip() for v in values.split(",")):
            try:
                mib = int(raw)
            except ValueError:
                raise SweepError(f"sizes: {arch} size {raw!r} is not a whole number of MiB "
                                 f"(allowed: {lo} to {MEMORY_MAX})") from None
            if not lo <= mib <= MEMORY_MAX:
                raise SweepError(f"sizes: {arch} size {mib} MiB is outside {lo} (libvirt's floor) to {MEMORY_MAX}")
            if mib in sizes:
                raise SweepError(f"sizes: {arch} size {mib} MiB is given twice")
            sizes.append(mib)
        out[arch] = tuple(sorted(sizes))
    if not out:
        raise SweepError(f"sizes {text!r}: no arch given; allowed: {', '.join(ARCHES)}")
    return out


def parse_distros(text: str) -> tuple[str, ...]:
    names = tuple(d.strip() for d in text.split(",") if d.strip())
    bad = [d for d in names if d not in DISTROS]
    if bad or not names:
        raise SweepError(f"distros {text!r}: allowed here are {', '.join(DISTROS)} (the others cannot be "
                         "downloaded on this machine)")
    return names


def matrix(sizes: Mapping[str, Sequence[int]], distros: Sequence[str]) -> list[SweepCell]:
    """Every cell in the order it starts: per arch, the longest first (emulated docker), bare by
    size up, docker by size down (the size expected to fit first, so a broken pipeline shows early)."""
    def order(c: SweepCell) -> tuple[int, int, int]:
        return (-EXPECTED_S[(c.arch, c.distro)], ARCHES.index(c.arch),
                -c.memory_mib if c.distro == "docker" else c.memory_mib)

    return sorted((SweepCell(arch, d, mib) for arch in sizes for d in distros for mib in sizes[arch]), key=order)


def next_cell(queue: Sequence[SweepCell], running: Sequence[SweepCell]) -> int:
    """Which queued cell starts next: the first of an arch that has no guest running, else the
    first. With two guests, the emulated arch keeps one lane and the native one the other, so
    both arches have results early and the long emulated cells don't queue behind each other."""
    busy = {c.arch for c in running}
    return next((i for i, c in enumerate(queue) if c.arch not in busy), 0)


def cells_dir(out: Path) -> Path:
    return out / "cells"


def record_path(out: Path, cell: SweepCell, version: str | None, digest: str) -> Path:
    return cells_dir(out) / f"{cell.key(version, digest)}.json"


def write_atomic(path: Path, text: str) -> None:
    """Whole or not at all: a temporary file in the same folder, flushed, then renamed over."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load_record(path: Path) -> dict[str, Any] | None:
    """A finished cell's record, or None when there is none or it is not one (then the cell runs again)."""
    try:
        doc = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if not isinstance(doc, dict) or not isinstance(doc.get("result"), dict) or "wall_s" not in doc:
        return None
    return doc


def pending(cells: Sequence[SweepCell], out: Path, version: str | None, digest: str) -> list[SweepCell]:
    return [c for c in cells if load_record(record_path(out, c, version, digest)) is None]


def _hms(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def progress_line(n: int, m: int, cell: SweepCell, what: str, elapsed_s: float, left_s: float) -> str:
    return (f"[sweep {time.strftime('%H:%M:%S')}] cell {n} of {m} {cell.name}: {what} "
            f"(elapsed {_hms(elapsed_s)}, expected left ~{_hms(left_s)})")


def expected_left(cells: Sequence[SweepCell], jobs: int) -> float:
    return sum(EXPECTED_S[(c.arch, c.distro)] for c in cells) / max(1, jobs)


# ---- one cell (the child process) -------------------------------------------------------------

class _Budget:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds

    def left(self, step: str, wanted: float) -> float:
        """The time a step may take: what it asks, within what is left of the cell's budget."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _OverBudget(step, self.seconds)
        return min(wanted, left)


class _Steps:
    """The step under way, which a failure names, and each timed step's wall time."""

    def __init__(self, cell: str, log: Callable[[str], None]) -> None:
        self.cell, self.log = cell, log
        self.now = "find the guest image"
        self.timings: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, name: str, key: str) -> Iterator[None]:
        """Log the step, make it the one a failure names, and time it under `key` if it finishes."""
        self.now = name
        self.log(f"{self.cell}: {name}")
        t0 = time.monotonic()
        yield
        self.timings[key] = round(time.monotonic() - t0, 1)


class _OverBudget(Exception):
    def __init__(self, step: str, seconds: float) -> None:
        super().__init__(f"the cell ran past its wall budget of {seconds:.0f} s before or during: {step}")


def bench_plan(cell: SweepCell, settings: Settings) -> BenchPlan:
    docker = cell.distro == "docker"
    return BenchPlan(cell=cell.name, distro=cell.distro, settle_s=settings.settle_s, interval_s=settings.interval_s,
                     samples=settings.samples, workload="mysql" if docker else "none",
                     image=_workload_image_name() if docker else "mysql:8.4",
                     image_tar=TAR_REMOTE if docker else None,
                     # the emulated docker load of the ~390 MiB image took over 900 s at 1 GiB on a
                     # quiet machine; the import and the start until SELECT 1 each have this bound
                     workload_timeout_s=(5400 if cell.emulated else 1800))


def _workload_image_name() -> str:
    from tests.vm import workload_image
    return workload_image.IMAGE_NAME


def run_cell(cell: SweepCell, settings: Settings) -> tuple[dict[str, Any], dict[str, float], str]:
    """Boot, upload, bootstrap, (copy the workload), benchmark; the result, step timings and the kit log.
    Every failure on the way is the cell's no_result, never an exception."""
    from tests.vm import images, qemu, workload_image

    plan = bench_plan(cell, settings)
    digest, version = kit_hash(), kit_version()
    commands = cell_commands(plan, digest)
    budget = _Budget(BUDGET_S[(cell.arch, cell.distro)])
    steps = _Steps(cell.name, qemu.log)
    kit_log: list[str] = []

    try:
        image = images.cached(cell.arch)
        if image is None:
            raise qemu.GuestError(f"no cached {cell.arch} guest image; the sweep builds it first")
        tar = workload_image.cached(cell.arch) if cell.distro == "docker" else None
        if cell.distro == "docker" and tar is None:
            raise qemu.GuestError(f"no cached {cell.arch} workload image; the sweep builds it first")
        steps.now = "boot to SSH"
        ssh_limit = budget.left(steps.now, float(os.environ.get("K8SF_VM_SSH_TIMEOUT") or BOOT_S[cell.emulated]))
        with qemu.boot(cell.arch, image, cell.name, memory_mib=cell.memory_mib, ssh_timeout=ssh_limit,
                       probe_timeout=PROBE_S[cell.emulated], connect_timeout=CONNECT_S[cell.emulated]) as guest:
            steps.timings["boot_to_ssh"], steps.timings["cloud_init_after_ssh"] = guest.boot_s, guest.cloud_init_s
            with steps("upload the kit", "upload_kit"):
                budget.left(steps.now, 0)
                qemu.install_kit(guest, commands)
            with steps("bootstrap", "bootstrap"):
                out = guest.ssh(commands.bootstrap, timeout=budget.left(steps.now, plan.bootstrap_timeout_s() + 60))
                kit_log.append(out.stderr)
            if tar is not None:
                with steps("copy the workload image", "copy_workload_tar"):
                    guest.copy_file(tar, TAR_REMOTE, timeout=budget.left(steps.now, 1800))
            with steps("benchmark", "benchmark"):
                out = guest.ssh(commands.benchmark, timeout=budget.left(steps.now, plan.benchmark_timeout_s() + 60))
                kit_log.append(out.stderr)
            result = read_result(out.stdout, plan.cell)
    except subprocess.TimeoutExpired as exc:
        why = _OverBudget(steps.now, budget.seconds) if budget.deadline <= time.monotonic() else exc
        result = no_result(plan.cell, f"{steps.now}: {why}", kit_version=version, distro=cell.distro, arch=cell.arch)
    except Exception as exc:  # a failed cell is a result, whatever failed (_OverBudget included)
        result = no_result(plan.cell, f"{steps.now}: {str(exc)[:1500]}", kit_version=version, distro=cell.distro,
                           arch=cell.arch)
    if result.get("status") == NO_RESULT:
        # The kit's own no_result line (components/commands.py no_result_guard) has no arch.
        result.setdefault("arch", cell.arch)
    return result, steps.timings, "".join(kit_log)


def host_load() -> float:
    return round(os.getloadavg()[0], 1)


def cell_record(cell: SweepCell, settings: Settings, result: Mapping[str, Any], timings: Mapping[str, float],
                wall_s: float, started: str, version: str | None, digest: str,
                load: Mapping[str, float] | None = None) -> dict[str, Any]:
    v = fit.verdict(result, fit.DEFAULT_HEADROOM_MIB)
    return {
        "cell": cell.name, "arch": cell.arch, "distro": cell.distro, "memory_mib": cell.memory_mib,
        "kit_version": version, "kit_hash": digest, "emulated": cell.emulated,
        "workload": WORKLOAD_LABEL if cell.distro == "docker" else None,
        "settings": asdict(settings), "started": started, "wall_s": round(wall_s, 1), "timings_s": dict(timings),
        "host_load_1m": dict(load or {}),
        "verdict": v.as_output(), "result": dict(result),
    }


def cell_main(cell: SweepCell, settings: Settings, out: Path) -> int:
    def _terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")  # so qemu.boot's finally stops qemu

    signal.signal(signal.SIGTERM, _terminate)
    digest, version = kit_hash(), kit_version()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t0, load_start = time.monotonic(), host_load()
    result, timings, kit_log = run_cell(cell, settings)
    wall = time.monotonic() - t0
    load = {"start": load_start, "end": host_load()}
    path = record_path(out, cell, version, digest)
    write_atomic(path.with_suffix(".log"), kit_log)
    record = cell_record(cell, settings, result, timings, wall, started, version, digest, load)
    write_atomic(path, json.dumps(record, indent=2) + "\n")
    return 0


# ---- the sweep (the parent) -------------------------------------------------------------------

@dataclass
class _Running:
    cell: SweepCell
    n: int
    proc: subprocess.Popen[bytes]
    started: float
    limit: float
    terminated_at: float | None = None


def _child_argv(cell: SweepCell, settings: Settings, out: Path) -> list[str]:
    return [sys.executable, "-m", "tests.vm.sweep", "cell", "--arch", cell.arch, "--distro", cell.distro,
            "--memory", str(cell.memory_mib), "--out", str(out), "--settle", str(settings.settle_s),
            "--interval", str(settings.interval_s), "--samples", str(settings.samples)]


def _finish(run: _Running, out: Path, settings: Settings, version: str | None, digest: str) -> dict[str, Any]:
    """The child's record, or, when it left none, a no_result record saying how the child ended."""
    path = record_path(out, run.cell, version, digest)
    record = load_record(path)
    if record is None:
        how = (f"the cell's runner was stopped after {run.limit:.0f} s" if run.terminated_at is not None
               else f"the cell's runner exited {run.proc.returncode} without a record")
        result = no_result(run.cell.name, how, kit_version=version, distro=run.cell.distro, arch=run.cell.arch)
        record = cell_record(run.cell, settings, result, {}, time.monotonic() - run.started,
                             time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), version, digest)
        write_atomic(path, json.dumps(record, indent=2) + "\n")
    return record


def ensure_images(cells: Sequence[SweepCell]) -> None:
    """The guest image per arch and the workload image per arch with a docker cell, built (cached) first."""
    from tests.vm import images, workload_image

    for arch in sorted({c.arch for c in cells}):
        images.build(arch)
        if any(c.arch == arch and c.distro == "docker" for c in cells):
            workload_image.build(arch)


def commit_cell(out: Path, record: Mapping[str, Any], log: Any) -> None:
    """Commit what the sweep wrote under `out`, and only that, after a cell: a long sweep keeps
    each cell even if the machine goes away. A failed commit is logged; the sweep goes on."""
    v = record["verdict"]
    commit_out(out, f"sweep-vm: {record['cell']} (kit {record['kit_version']}): {record['result']['status']}, "
               f"fit {v['verdict']} ({v['reason']}), wall {_hms(record['wall_s'])}", log)


def commit_out(out: Path, msg: str, log: Any) -> None:
    for argv in (["git", "add", "--", str(out)], ["git", "commit", "-q", "-m", msg, "--", str(out)]):
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        except subprocess.TimeoutExpired:
            log(f"[sweep] {' '.join(argv[:2])} timed out after 120 s; the files stay uncommitted")
            return
        if proc.returncode != 0:
            log(f"[sweep] {' '.join(argv[:2])} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
            return
    log(f"[sweep] committed: {msg}")


def sweep(cells: Sequence[SweepCell], out: Path, settings: Settings, jobs: int,
          log: Any = print, commit: bool = False) -> list[dict[str, Any]]:
    """Run every cell without a record for this kit, `jobs` guests at a time; write the summary
    and the fit matrix after each cell. Returns the records of the cells run now."""
    digest, version = kit_hash(), kit_version()
    todo = pending(cells, out, version, digest)
    m, done_before = len(cells), len(cells) - len(todo)
    log(f"[sweep] kit {version} ({digest}): {m} cells, {done_before} already done, {len(todo)} to run, "
        f"{jobs} at a time; expected ~{_hms(expected_left(todo, jobs))}")
    session_started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    t_start = time.monotonic()
    queue = list(todo)
    running: list[_Running] = []
    finished: list[dict[str, Any]] = []
    n = done_before

    def stop_all(signum: int, frame: object) -> None:
        for r in running:
            with contextlib.suppress(ProcessLookupError):
                r.proc.terminate()
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, stop_all)
    try:
        while queue or running:
            while queue and len(running) < jobs:
                cell = queue.pop(next_cell(queue, [r.cell for r in running]))
                n += 1
                limit = BUDGET_S[(cell.arch, cell.distro)] + CHILD_GRACE_S
                proc = subprocess.Popen(_child_argv(cell, settings, out), stdin=subprocess.DEVNULL,
                                        start_new_session=True)
                running.append(_Running(cell, n, proc, time.monotonic(), limit))
                left = expected_left([r.cell for r in running] + queue, jobs)
                log(progress_line(n, m, cell, f"start ({cell.memory_mib} MiB)", time.monotonic() - t_start, left))
            time.sleep(2)
            for r in list(running):
                age = time.monotonic() - r.started
                if r.proc.poll() is None:
                    if r.terminated_at is None and age > r.limit:
                        log(f"[sweep] {r.cell.name}: past {r.limit:.0f} s; stopping its runner (pid {r.proc.pid})")
                        r.proc.terminate()
                        r.terminated_at = time.monotonic()
                    elif r.terminated_at is not None and time.monotonic() - r.terminated_at > 60:
                        os.killpg(r.proc.pid, signal.SIGKILL)  # its own session: the child and its qemu
                        r.proc.wait(timeout=30)
                    continue
                running.remove(r)
                record = _finish(r, out, settings, version, digest)
                finished.append(record)
                v = record["verdict"]
                left = expected_left([x.cell for x in running] + queue, jobs)
                log(progress_line(r.n, m, r.cell, f"{record['result']['status']}, fit {v['verdict']} ({v['reason']}), "
                                  f"wall {_hms(record['wall_s'])}", time.monotonic() - t_start, left))
                write_reports(cells, out, version, digest)
                if commit:
                    commit_cell(out, record, log)
    finally:
        signal.signal(signal.SIGTERM, old)
        for r in running:
            with contextlib.suppress(ProcessLookupError):
                r.proc.terminate()
        for r in running:
            try:
                r.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(r.proc.pid, signal.SIGKILL)
        session_wall = round(time.monotonic() - t_start, 1)
        session = {"started": session_started, "wall_s": session_wall, "jobs": jobs,
                   "kit_version": version, "kit_hash": digest, "cells_run": [r["cell"] for r in finished],
                   "interrupted": bool(running)}
        if finished or running:
            with (out / "sessions.jsonl").open("a") as fh:
                fh.write(json.dumps(session) + "\n")
        write_reports(cells, out, version, digest)
        if commit and (finished or running):
            commit_out(out, f"sweep-vm: a session ended after {_hms(session_wall)}, "
                       f"{len(finished)} cell(s) run{', interrupted' if running else ''}", log)
    return finished


def sessions(out: Path, digest: str) -> list[dict[str, Any]]:
    path = out / "sessions.jsonl"
    if not path.exists():
        return []
    docs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [d for d in docs if d.get("kit_hash") == digest]


def summary_markdown(cells: Sequence[SweepCell], records: Mapping[str, Mapping[str, Any]],
                     runs: Sequence[Mapping[str, Any]], version: str | None, digest: str) -> str:
    """Each cell's status, verdict and wall time; the sweep's total wall time over its sessions."""
    order = sorted(cells, key=lambda c: (ARCHES.index(c.arch), DISTROS.index(c.distro), c.memory_mib))
    done = [c for c in order if c.name in records]
    lines = [f"# Memory sweep in real VMs: kit {version} ({digest})", "",
             "Made by `make sweep-vm` (tests/vm/sweep.py). Debian 12 qemu guests, 1 vCPU, no swap, TCG; "
             "aarch64 emulated on x86_64.", f"Docker's workload: {WORKLOAD_LABEL}.", "",
             f"{len(done)} of {len(cells)} cells done" + ("" if len(done) == len(cells) else " (in progress)") + ".",
             "", "| cell | MiB | status | fit | used MiB (median) | MemTotal MiB | wall | boot | bootstrap "
             "| benchmark | host load |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for c in order:
        rec = records.get(c.name)
        if rec is None:
            lines.append(f"| {c.name} | {c.memory_mib} | not run yet | | | | | | | | |")
            continue
        r, v, t = rec["result"], rec["verdict"], rec.get("timings_s") or {}
        status = r["status"] if r["status"] != NO_RESULT else f"no_result: {_one_line(str(r.get('error', '')))}"
        used = f"{v['usedMiB']:.0f}" if v.get("usedMiB") is not None else "-"
        total = f"{r['mem_total_mib']:.0f}" if r.get("mem_total_mib") is not None else "-"
        lines.append(f"| {c.name} | {c.memory_mib} | {status.replace('|', '/')} | {v['verdict']} ({v['reason']}) "
                     f"| {used} | {total} | {_hms(rec['wall_s'])} | {_fmt_s(t.get('boot_to_ssh'))} "
                     f"| {_fmt_s(t.get('bootstrap'))} | {_fmt_s(t.get('benchmark'))} | {_load(rec)} |")
    total_wall = sum(float(s["wall_s"]) for s in runs)
    cell_wall = sum(float(records[c.name]["wall_s"]) for c in done)
    lines += ["", f"Sweep wall time: {_hms(total_wall)} over {len(runs)} session(s) of `make sweep-vm` "
              f"(sessions.jsonl); the cells' own wall times add up to {_hms(cell_wall)} (with two guests at a "
              "time, the sum exceeds the wall time). Host load: the 1-minute load average of the shared 2-core "
              "machine at each cell's start and end; a slow boot there says more about the host than the guest."]
    return "\n".join(lines) + "\n"


def _load(rec: Mapping[str, Any]) -> str:
    load = rec.get("host_load_1m") or {}
    return "-" if not load else f"{load.get('start', '-')} → {load.get('end', '-')}"


def _one_line(text: str, limit: int = 100) -> str:
    """An error's first line, without terminal colours or table bars, for a table cell."""
    first = re.sub(r"\x1b\[[0-9;]*m", "", text).split("\n", 1)[0].replace("|", "/").strip()
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _fmt_s(value: Any) -> str:
    return "-" if value is None else f"{float(value):.0f} s"


def current_records(cells: Sequence[SweepCell], out: Path, version: str | None, digest: str
                    ) -> dict[str, dict[str, Any]]:
    found = {}
    for c in cells:
        rec = load_record(record_path(out, c, version, digest))
        if rec is not None:
            found[c.name] = rec
    return found


def write_reports(cells: Sequence[SweepCell], out: Path, version: str | None, digest: str) -> None:
    records = current_records(cells, out, version, digest)
    results = [r["result"] for r in records.values()]
    matrix_md = (f"# Fit matrix: memory sweep in real VMs, kit {version} ({digest})\n\n"
                 f"Docker's workload: {WORKLOAD_LABEL}.\n\n"
                 + fit.fit_markdown(results, fit.DEFAULT_HEADROOM_MIB, DISTROS))
    write_atomic(out / "fit-matrix.md", matrix_md)
    write_atomic(out / "summary.md", summary_markdown(cells, records, sessions(out, digest), version, digest))
    # A timeline per cell with the kit's series (kit 0.3.0 on), and all of them on one page.
    from benchmarks import timeline

    timeline.write(results, out / "sweep")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vm.sweep", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    default_sizes = ";".join(f"{a}={','.join(map(str, s))}" for a, s in DEFAULT_SIZES.items())
    for name in ("run", "plan", "cell", "report"):
        p = sub.add_parser(name)
        p.add_argument("--out", type=Path, default=Path("benchmarks/results/sweep"))
        p.add_argument("--settle", type=int, default=Settings.settle_s)
        p.add_argument("--interval", type=int, default=Settings.interval_s)
        p.add_argument("--samples", type=int, default=Settings.samples)
        if name == "cell":
            p.add_argument("--arch", choices=ARCHES, required=True)
            p.add_argument("--distro", choices=DISTROS, required=True)
            p.add_argument("--memory", type=int, required=True)
        else:
            p.add_argument("--sizes", default=default_sizes, help=f"ARCH=MiB,...;ARCH=... (default {default_sizes})")
            p.add_argument("--distros", default=",".join(DISTROS))
            p.add_argument("--jobs", type=int, default=2, choices=(1, 2), help="guests at a time (2 cores here)")
            p.add_argument("--commit", action="store_true",
                           help="git commit OUT (only OUT) after each cell, on the current branch")
    args = parser.parse_args(argv)
    settings = Settings(args.settle, args.interval, args.samples)
    if args.cmd == "cell":
        return cell_main(SweepCell(args.arch, args.distro, args.memory), settings, args.out)
    try:
        cells = matrix(parse_sizes(args.sizes), parse_distros(args.distros))
    except SweepError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    digest, version = kit_hash(), kit_version()
    todo = pending(cells, args.out, version, digest)
    if args.cmd == "report":  # redraw from the records alone; safe while a sweep runs
        write_reports(cells, args.out, version, digest)
        print(f"{len(current_records(cells, args.out, version, digest))} of {len(cells)} cells drawn in {args.out}")
        return 0
    if args.cmd == "plan":
        for c in cells:
            print(f"{c.name:28} {'to run' if c in todo else 'done'}  ~{_hms(EXPECTED_S[(c.arch, c.distro)])}")
        print(f"{len(todo)} of {len(cells)} to run; expected ~{_hms(expected_left(todo, args.jobs))} "
              f"at {args.jobs} at a time")
        return 0
    if os.geteuid() != 0:
        print("error: the sweep needs root: debootstrap, chroot and binfmt_misc build the guest images",
              file=sys.stderr)
        return 2
    ensure_images(todo)
    try:
        sweep(cells, args.out, settings, args.jobs, log=lambda s: print(s, flush=True), commit=args.commit)
    except KeyboardInterrupt as exc:
        print(f"[sweep] interrupted ({exc}); finished cells are kept: run the same command to resume",
              flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
