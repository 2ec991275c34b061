"""tools/pulumi/build.sh's cache key: the same wrappers give the same key wherever the checkout is.

The key once hashed `sha256sum "$here/build.sh"`, whose output carries the script's absolute path,
so a worktree in another folder found the tools unbuilt and built them all again. `build.sh --where`
prints the bin folder (with the key) and builds nothing; a fake `go` gives it a Go version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
TOOLS = ROOT / "tools" / "pulumi"


def _where(tools: Path, cache: Path, fake_go: Path) -> str:
    env = {**os.environ, "GO": str(fake_go), "XDG_CACHE_HOME": str(cache)}
    proc = subprocess.run(["bash", str(tools / "build.sh"), "--where"], capture_output=True, text=True, env=env,
                          timeout=60, check=False)
    assert proc.returncode == 4, proc.stderr  # nothing is built in the empty cache
    return proc.stdout.splitlines()[0]


def test_the_key_does_not_depend_on_where_the_checkout_is(tmp_path: Path) -> None:
    fake_go = tmp_path / "go"
    fake_go.write_text("#!/bin/sh\necho go1.26.6\n")
    fake_go.chmod(0o755)
    a, b = tmp_path / "a" / "tools" / "pulumi", tmp_path / "elsewhere" / "b" / "pulumi"
    for dest in (a, b):
        shutil.copytree(TOOLS, dest)
    cache = tmp_path / "cache"
    assert _where(a, cache, fake_go) == _where(b, cache, fake_go)


def test_the_key_changes_with_the_script(tmp_path: Path) -> None:
    fake_go = tmp_path / "go"
    fake_go.write_text("#!/bin/sh\necho go1.26.6\n")
    fake_go.chmod(0o755)
    a, b = tmp_path / "a", tmp_path / "b"
    for dest in (a, b):
        shutil.copytree(TOOLS, dest)
    with (b / "build.sh").open("a") as f:
        f.write("# changed\n")
    cache = tmp_path / "cache"
    assert _where(a, cache, fake_go) != _where(b, cache, fake_go)
