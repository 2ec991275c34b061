"""Upload a folder the way pulumi-command's CopyToRemote does, with OpenSSH's sftp in batch mode.

CopyToRemote (pulumi-command v1.2.1, provider/pkg/provider/remote/copyController.go) speaks SFTP:
it makes remotePath with MkdirAll when it is missing (lines 231-235), makes remotePath/<folder
name> (248-253; where that is comes from components.commands.copy_destination, the one copy of the
rule), then walks the folder: Mkdir for each folder (copyDir, 306-317) and a plain SFTP create for
each file (copyFile, 271-289). It sends no mode bits, so the server gives each file 0666 and each
folder 0777, less its umask, and deletes nothing that was already there.

OpenSSH's sftp client does send mode bits: `put` and `mkdir` pass the local file's permissions, or
0777 for a folder. So the files go up from a staged copy whose files are 0666 and folders 0777,
which are exactly the modes the server uses when it is given none (sftp-server.c, process_open
and process_mkdir): the server ends up where it would with the provider. A relative path goes to
the SFTP session's start folder (the home directory), as it does for the provider; the sftp
client spells it out as an absolute path first, which changes nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from components.commands import copy_destination


class UploadError(RuntimeError):
    pass


def _stage(local: Path, into: Path) -> Path:
    """A copy of `local` with the modes the provider's upload ends up with: none of its own."""
    staged = into / local.name
    shutil.copytree(local, staged, symlinks=False)
    for root, dirs, files in os.walk(staged):
        for d in dirs:
            os.chmod(Path(root) / d, 0o777)
        for f in files:
            os.chmod(Path(root) / f, 0o666)
    return staged


def _quote(path: str) -> str:
    if '"' in path or "\n" in path:
        raise UploadError(f"can't put {path!r} in an sftp batch")
    return f'"{path}"'


def provider_batch(local: Path, staged: Path, remote_path: str) -> tuple[list[str], str]:
    """The sftp batch that leaves the server as CopyToRemote(FileArchive(local), remote_path) would,
    and where the files land. A leading '-' lets a mkdir of a folder that exists go on, as MkdirAll
    and copyDir do; anything else that fails stops the batch."""
    dest = copy_destination(remote_path, str(local))
    lines: list[str] = []
    parts = remote_path.strip("/").split("/")
    prefix = "/" if remote_path.startswith("/") else ""
    for i in range(len(parts)):  # MkdirAll(remotePath), then Mkdir(remotePath/<folder name>)
        lines.append(f"-mkdir {_quote(prefix + '/'.join(parts[: i + 1]))}")
    lines.append(f"-mkdir {_quote(dest)}")
    for root, dirs, files in os.walk(staged):  # copyDir: fs.WalkDir, folders before what they hold
        dirs.sort()
        rel = Path(root).relative_to(staged)
        for d in dirs:
            lines.append(f"-mkdir {_quote(str(Path(dest) / rel / d))}")
        for f in sorted(files):
            lines.append(f"put {_quote(str(Path(root) / f))} {_quote(str(Path(dest) / rel / f))}")
    return lines, dest


def sftp_upload(local: Path, remote_path: str, *, port: int, destination: str, ssh_options: list[str],
                timeout: float = 300) -> str:
    """Upload `local` to `remote_path` on `destination` (user@host) by the provider's rule; returns
    where its files landed (relative paths are relative to the SSH user's home)."""
    with tempfile.TemporaryDirectory(prefix="k8sf-upload-") as tmp:
        staged = _stage(local, Path(tmp))
        lines, dest = provider_batch(local, staged, remote_path)
        batch = Path(tmp) / "batch"
        batch.write_text("\n".join(lines) + "\n")
        proc = subprocess.run(["sftp", "-q", "-b", str(batch), "-P", str(port), *ssh_options, destination],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise UploadError(f"sftp upload of {local} to {remote_path} failed ({proc.returncode}): "
                              f"{proc.stderr.strip()[-2000:]}")
    return dest
