"""A MySQL-compatible workload image, built from Debian's packages, as a `docker load` archive.

The guests can't reach Docker Hub here, so the Docker cell's workload comes through the kit's
--image-tar. The image is a debootstrapped root with mariadb-server and an entrypoint that honours
MYSQL_ROOT_PASSWORD the way the official mysql image does. The archive is the docker-archive
format (manifest.json, an image config, one layer), written here directly: no daemon needed.

Run as root: ``python -m tests.vm.workload_image build --arch x86_64``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from tests.vm.images import (
    DEBIAN_ARCH,
    MIRROR,
    SUITE,
    BuildError,
    _chroot,
    _mounted,
    _remove_tree,
    _run,
    cache_dir,
    ensure_binfmt,
    missing_host_tools,
)

IMAGE_NAME = "k8sf/mariadb:bookworm"
RECIPE_VERSION = 1
PACKAGES = "mariadb-server mariadb-client"

ENTRYPOINT = r"""#!/bin/sh
# First start: create the data directory and set the root password from MYSQL_ROOT_PASSWORD,
# through a server that listens only on a private socket (as the official image does).
set -eu
: "${MYSQL_ROOT_PASSWORD:?MYSQL_ROOT_PASSWORD is required}"
mkdir -p /run/mysqld
chown mysql:mysql /run/mysqld /var/lib/mysql
if [ ! -d /var/lib/mysql/mysql ]; then
  mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db >/dev/null
  mariadbd --user=mysql --skip-networking --socket=/run/mysqld/init.sock &
  pid=$!
  i=0
  until mariadb -S /run/mysqld/init.sock -e 'SELECT 1' >/dev/null 2>&1; do
    i=$((i + 1)); [ "$i" -lt 120 ] || { echo "init server did not start" >&2; exit 1; }
    sleep 1
  done
  pw=$(printf '%s' "$MYSQL_ROOT_PASSWORD" | sed "s/'/''/g")
  mariadb -S /run/mysqld/init.sock <<SQL
ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$pw');
CREATE USER 'root'@'%' IDENTIFIED BY '$pw';
GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;
FLUSH PRIVILEGES;
SQL
  kill "$pid"
  wait "$pid" || :
fi
exec mariadbd --user=mysql --bind-address=0.0.0.0 "$@"
"""


def image_key(arch: str) -> str:
    recipe = {"version": RECIPE_VERSION, "arch": DEBIAN_ARCH[arch], "suite": SUITE, "packages": PACKAGES,
              "entrypoint": ENTRYPOINT, "name": IMAGE_NAME}
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def archive_path(arch: str) -> Path:
    return cache_dir() / f"mariadb-{arch}-{image_key(arch)}.tar"


def cached(arch: str) -> Path | None:
    path = archive_path(arch)
    return path if path.exists() else None


def write_docker_archive(root: Path, arch: str, out: Path) -> None:
    """docker-archive: manifest.json + config + one layer holding the root filesystem."""
    def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        # The runtime provides /dev, /proc and /sys; keep the mount points, not their contents.
        top, _, rest = info.name.partition("/")
        return None if top in ("dev", "proc", "sys") and rest else info

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for child in sorted(root.iterdir()):
            tar.add(child, arcname=child.name, filter=keep)
    layer_bytes = layer.getvalue()
    diff_id = "sha256:" + hashlib.sha256(layer_bytes).hexdigest()
    config = {
        "architecture": DEBIAN_ARCH[arch],
        "os": "linux",
        "config": {
            "Entrypoint": ["/usr/local/bin/k8sf-entrypoint"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "ExposedPorts": {"3306/tcp": {}},
            "Volumes": {"/var/lib/mysql": {}},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "k8s-footprint tests/vm/workload_image.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_name = diff_id.split(":", 1)[1] + "/layer.tar"
    manifest = [{"Config": config_name, "RepoTags": [IMAGE_NAME], "Layers": [layer_name]}]
    with tarfile.open(out, mode="w") as tar:
        for name, data in ((layer_name, layer_bytes), (config_name, config_bytes),
                           ("manifest.json", json.dumps(manifest).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))


def build(arch: str, progress: bool = True) -> Path:
    hit = cached(arch)
    if hit is not None:
        return hit
    missing = missing_host_tools(arch)
    if missing:
        raise BuildError("building the workload image needs: apt-get install " + " ".join(missing))
    ensure_binfmt(arch)
    out = archive_path(arch)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".mariadb-{arch}-", dir=out.parent))
    log, root = work / "build.log", work / "rootfs"
    t0 = time.monotonic()
    try:
        if progress:
            print(f"[workload {arch}] debootstrap + {PACKAGES} ...", file=sys.stderr, flush=True)
        _run(["debootstrap", "--variant=minbase", f"--arch={DEBIAN_ARCH[arch]}", SUITE, str(root), MIRROR], log, 3600)
        with _mounted(root):
            _chroot(root, f"apt-get update -q; apt-get install -y -q --no-install-recommends {PACKAGES}; "
                          "apt-get clean; rm -rf /var/lib/apt/lists/* /var/lib/mysql/*", log, 3600)
        if not (root / "usr/bin/mysql").exists():
            (root / "usr/bin/mysql").symlink_to("mariadb")
        entry = root / "usr/local/bin/k8sf-entrypoint"
        entry.write_text(ENTRYPOINT)
        entry.chmod(0o755)
        tmp = work / "image.tar"
        write_docker_archive(root, arch, tmp)
        tmp.rename(out)
    finally:
        _remove_tree(root)
    shutil.rmtree(work, ignore_errors=True)
    if progress:
        print(f"[workload {arch}] {out} ({out.stat().st_size >> 20} MiB) in {time.monotonic() - t0:.0f} s",
              file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.vm.workload_image")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (or find in the cache) the MariaDB image archive for an arch")
    b.add_argument("--arch", choices=sorted(DEBIAN_ARCH), required=True)
    args = parser.parse_args(argv)
    try:
        print(build(args.arch))
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
