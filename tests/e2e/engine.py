"""Run the real Pulumi CLI built by `make pulumi-tools`, and keep a transcript of every call.

Nothing here stands in for the engine: each call is the `pulumi` binary, with its language host
and providers found on PATH. State lives in a local file backend in a temporary folder, with a
passphrase of the test's own, and PULUMI_HOME is temporary too, so the user's ~/.pulumi is never read.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# The program run: this checkout, unless K8SF_E2E_PROJECT names another (say, a copy with a fix
# being tried); the tools always come from this checkout's build.
PROJECT = Path(os.environ.get("K8SF_E2E_PROJECT") or ROOT)
BUILD_SCRIPT = ROOT / "tools" / "pulumi" / "build.sh"
PASSPHRASE = "k8sf-e2e-not-a-secret"
# What the hosts backend runs on: the CLI, the Python host and pulumi-command (build.sh's names).
TOOLS = ("cli", "language-python", "command")


def tools_bin(tools: tuple[str, ...] = TOOLS) -> tuple[Path | None, str]:
    """The folder of built tools, or None and why not (asks build.sh, which builds nothing here)."""
    proc = subprocess.run(["bash", str(BUILD_SCRIPT), "--where", *tools], capture_output=True, text=True, timeout=120,
                          check=False)
    where = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not where:
        return None, f"the Pulumi tools are not built: run `make pulumi-tools` ({proc.stderr.strip()[-300:]})"
    return Path(where[0]), ""


class EngineError(AssertionError):
    pass


@dataclass
class Engine:
    bin_dir: Path
    workdir: Path
    transcript: list[str] = field(default_factory=list)
    # Run each call through this prefix (say, ["ip", "netns", "exec", NAME]: the engine and its
    # providers then live in that network namespace, as libvirtd does).
    wrap: list[str] = field(default_factory=list)
    # The program's folder (--cwd of every call); a test may point it at a changed copy between calls.
    project: Path = PROJECT

    def __post_init__(self) -> None:
        (self.workdir / "state").mkdir(parents=True, exist_ok=True)
        (self.workdir / "home").mkdir(parents=True, exist_ok=True)

    @property
    def config_file(self) -> Path:
        return self.workdir / "Pulumi.e2e.yaml"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "PATH": f"{self.bin_dir}{os.pathsep}{env.get('PATH', '')}",
            "PULUMI_HOME": str(self.workdir / "home"),
            "PULUMI_BACKEND_URL": f"file://{self.workdir / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Nothing may be downloaded: every plugin this program needs is on PATH.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            "NO_COLOR": "1",
        })
        env.pop("PULUMI_ACCESS_TOKEN", None)
        return env

    def note(self, text: str) -> None:
        self.transcript.append(f"# [{time.strftime('%H:%M:%S')}] {text}")

    def run(self, args: list[str], timeout: float, stdin: str | None = None, check: bool = True,
            secret_stdin: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [*self.wrap, str(self.bin_dir / "pulumi"), *args, "--non-interactive", "--cwd", str(self.project)]
        t0 = time.monotonic()
        self.transcript.append(f"$ pulumi {shlex.join(args)}" + ("  < (secret on stdin)" if secret_stdin else ""))
        try:
            proc = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout,
                                  env=self.env(), check=False)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            self.transcript.append(out)
            self.transcript.append(f"# timed out after {timeout:.0f} s")
            raise EngineError(f"pulumi {args[0]} timed out after {timeout:.0f} s") from e
        self.transcript.append(proc.stdout.rstrip("\n"))
        if proc.stderr.strip():
            self.transcript.append("[stderr]\n" + proc.stderr.rstrip("\n"))
        self.transcript.append(f"# exit {proc.returncode} after {time.monotonic() - t0:.1f} s")
        if check and proc.returncode != 0:
            raise EngineError(f"pulumi {shlex.join(args)} exited {proc.returncode}:\n"
                              f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc

    def write_transcript(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(self.transcript) + "\n")
