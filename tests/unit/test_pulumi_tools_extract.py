"""tools/pulumi/extract.sh: a tree of a partial clone, without testdata/, whatever blobs it lacks.

The pulumi-terraform-bridge clone (a partial clone) lacks two blobs at v3.119.0: a golden file under
dynamic/testdata and a test provider's bridge-metadata.json under pkg/pf/tests. build.sh's
`git archive ... ':(exclude,glob)**/testdata/**'` failed on them with git 2.39 ("cannot read
<sha>"), so the tls build could not start. Here a clone made the same way: blobs deleted from
the object store after the commit.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXTRACT = ROOT / "tools" / "pulumi" / "extract.sh"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout.strip()


def make_clone(tmp: Path) -> tuple[Path, str]:
    repo = tmp / "clone"
    files = {"go.mod": "module x\n", "pkg/main.go": "package main\n", "pkg/testdata/golden.json": "{}\n",
             "dynamic/testdata/big.golden": "golden\n", "pkg/tests/meta.json": "{\"meta\": 1}\n"}
    for name, text in files.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo.parent, "init", "-q", str(repo))
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x")
    # What a partial clone lacks: these blobs are not in the object store (they are loose here).
    for name in ("dynamic/testdata/big.golden", "pkg/tests/meta.json"):
        sha = git(repo, "rev-parse", f"HEAD:{name}")
        (repo / ".git" / "objects" / sha[:2] / sha[2:]).unlink()
    return repo, git(repo, "rev-parse", "HEAD")


def extract(clone: Path, tree: str, dest: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(EXTRACT), str(clone), tree, str(dest), "tls: repo"], capture_output=True,
                          text=True, timeout=60, check=False)


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_a_clone_lacking_blobs_is_checked_out_without_them_and_says_which(tmp_path: Path) -> None:
    clone, commit = make_clone(tmp_path)
    # The way build.sh extracted before: git archive fails on the missing blob it was told to exclude.
    archive = subprocess.run(["git", "-C", str(clone), "archive", "--format=tar", commit, "--", ".",
                              ":(exclude,glob)**/testdata/**"], capture_output=True, timeout=60, check=False)
    assert archive.returncode != 0
    dest = tmp_path / "out"
    proc = extract(clone, commit, dest)
    assert proc.returncode == 0, proc.stderr
    assert files_in(dest) == ["go.mod", "pkg/main.go"]
    assert (dest / "pkg" / "main.go").read_text() == "package main\n"
    assert proc.stderr.strip() == "tls: repo: not in the clone, left out: pkg/tests/meta.json"


def test_a_subfolder_is_checked_out_at_the_root_of_dest(tmp_path: Path) -> None:
    clone, commit = make_clone(tmp_path)
    dest = tmp_path / "out"
    proc = extract(clone, f"{commit}:pkg", dest)
    assert proc.returncode == 0, proc.stderr
    assert files_in(dest) == ["main.go"]
    assert proc.stderr.strip() == "tls: repo: not in the clone, left out: tests/meta.json"


def test_an_unknown_tree_fails_with_git_s_reason_and_writes_nothing(tmp_path: Path) -> None:
    clone, _ = make_clone(tmp_path)
    proc = extract(clone, "0" * 40, tmp_path / "out")
    assert proc.returncode != 0
    assert "not a tree object" in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()
