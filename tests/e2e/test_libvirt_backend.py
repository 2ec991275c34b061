"""The real engine on the libvirt backend, bare, against a real libvirtd (issue 15 point 3): both
arches without the domains (`pulumi up --target`), and each arch in full, its domain included.

libvirtd and virtlogd run inside a network namespace this test creates (tests/libvirt/daemon.py),
and so does every `pulumi` call (`ip netns exec`), with the CLI, the Python host, and the real
pulumi-resource-tls and pulumi-resource-libvirt that `make pulumi-tools` built. The program runs as
users run it, with `images` set to the VM harness's Debian 12 images converted to qcow2 and
`libvirtPool` a dir pool the test makes.

The targeted test, both arches: why not the whole `up` there (README, "What is tested, and where"):
- The program boots each guest from its disk (a cloud image's own bootloader). The test images
  have none (a bare ext4 root, booted with -kernel/-initrd), and no cloud image can be downloaded
  here (cloud.debian.org and cloud-images.ubuntu.com do not answer).
- An x86_64 guest on an x86_64 host is a `kvm` domain, and KVM guests hang at kernel start on these
  machines (FACTS §6); the program offers no TCG domain for the host's own arch.
So the test runs `pulumi up --target` for every resource that does not need a guest: the stack's
SSH key (tls.PrivateKey), the libvirt provider, the NAT network, each arch's base volume (uploaded),
each cell's overlay disk and its cloud-init ISO (which carries the real key's public half). The
Domains and the commands on the guests are left out, with everything that depends on them. Then
`pulumi destroy`, and afterwards libvirt must hold no domain, volume or network of the stack.

The full test, one arch at a time (one guest at a time on a shared host): both reasons removed on
the test's side. The base image is the harness image made bootable the way a cloud image is
(tests/vm/bootable.py: x86_64 an MBR disk with GRUB for BIOS, aarch64 a GPT disk with an EFI system
partition and GRUB for UEFI, each loading the image's own kernel and initrd), and the stack sets
`libvirtAccel: tcg`, so the native x86_64 domain is `type='qemu'` (aarch64 is emulated anyway).
Then a plain `pulumi up`: the domain boots, gets its DHCP lease, cloud-init reads the seed ISO, and
pulumi-command runs the kit over SSH. The outputs must pass the result schema, then `pulumi destroy`
must leave no domain, volume or network of the stack.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.schema import validate_result
from tests.e2e.engine import PROJECT, Engine, tools_bin
from tests.libvirt.daemon import Libvirt, libvirt_in_netns, log, missing_packages, running_daemons
from tests.vm import bootable, images

pytestmark = pytest.mark.e2e
ARCHES = ("x86_64", "aarch64")
STACK = "e2e"
POOL = "k8sf-e2e-pool"
TOOLS = ("cli", "language-python", "command", "tls", "libvirt")
# What a guest is needed for: left out of the targeted `up`.
GUEST_TYPES = ("libvirt:index/domain:Domain", "command:")


def _require() -> Path:
    bin_dir, why = tools_bin(TOOLS)
    if bin_dir is None:
        pytest.skip(why)
    if os.geteuid() != 0:
        pytest.skip("needs root: it starts libvirtd and creates a network namespace")
    if not (PROJECT / ".venv" / "bin" / "python").exists():
        pytest.skip("the program's .venv is missing: run `make venv`")
    missing = missing_packages()
    if missing:
        pytest.skip("the libvirt e2e test needs: apt-get install " + " ".join(missing))
    busy = running_daemons()
    if busy:
        pytest.skip(f"a libvirt daemon already runs here ({', '.join(busy)}); the test starts and stops its own")
    absent = [a for a in ARCHES if images.cached(a) is None]
    if absent:
        pytest.skip(f"no VM harness image for {absent}: run `make test-vm` once (tests/vm/images.py builds them)")
    return bin_dir


def _stack_config(image_paths: dict[str, str]) -> str:
    config: dict[str, Any] = {
        "k8s-footprint:backend": "libvirt",
        "k8s-footprint:arches": list(ARCHES),
        "k8s-footprint:distros": ["bare"],
        "k8s-footprint:images": image_paths,
        "k8s-footprint:libvirtPool": POOL,
        "k8s-footprint:settleSeconds": 10,
        "k8s-footprint:sampleIntervalSeconds": 2,
        "k8s-footprint:samples": 5,
        "k8s-footprint:workload": "none",
    }
    return json.dumps({"config": config}, indent=2) + "\n"


def _targets(steps: list[dict[str, Any]]) -> list[str]:
    """The urns of every planned resource that needs no guest, nor depends on one that does."""
    planned = {str(s["urn"]): s for s in steps if s.get("urn")}

    def kind(urn: str) -> str:
        return str((planned[urn].get("newState") or {}).get("type", urn.split("::")[-2].split("$")[-1]))

    def deps(urn: str) -> set[str]:
        state = planned[urn].get("newState") or {}
        found = set(state.get("dependencies") or [])
        for more in (state.get("propertyDependencies") or {}).values():
            found |= set(more)
        if state.get("parent"):
            found.add(str(state["parent"]))
        return {d for d in found if d in planned}

    chosen = {u for u in planned if not kind(u).startswith(GUEST_TYPES) and kind(u) != "pulumi:pulumi:Stack"}
    while True:  # drop whatever depends on something dropped
        keep = {u for u in chosen if deps(u) <= chosen | {u2 for u2 in planned if kind(u2) == "pulumi:pulumi:Stack"}}
        if keep == chosen:
            return sorted(chosen)
        chosen = keep


def _stack_objects(lv: Libvirt) -> dict[str, list[str]]:
    """What libvirt holds that the stack made: its domains, networks and the pool's volumes."""
    prefix = f"k8sf-{STACK}"
    vols = [line.split()[0] for line in lv.virsh("vol-list", "--pool", POOL).stdout.splitlines() if line.strip()]
    return {
        "domains": sorted(n for n in lv.names("domain") if n.startswith(prefix)),
        "networks": sorted(n for n in lv.names("network") if n.startswith(prefix)),
        "volumes": sorted(vols),
    }


def _clear_after_destroy(engine: Engine, lv: Libvirt) -> dict[str, list[str]]:
    """What the stack left in libvirt after destroy (noted in the log), then removed with the pool,
    so a failed test leaves nothing either; the caller asserts on what was left."""
    left = _stack_objects(lv)
    engine.note(f"libvirt after destroy: {json.dumps(left)}")
    for dom in left["domains"]:
        lv.virsh("destroy", dom, check=False)
        lv.virsh("undefine", dom, "--nvram", check=False)
    for net in left["networks"]:
        lv.virsh("net-destroy", net, check=False)
        lv.virsh("net-undefine", net, check=False)
    for vol in left["volumes"]:
        lv.virsh("vol-delete", "--pool", POOL, vol, check=False)
    lv.virsh("pool-destroy", POOL, check=False)
    lv.virsh("pool-undefine", POOL, check=False)
    return left


@pytest.fixture
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="k8sf-e2e-libvirt-"))
    d.chmod(0o755)
    try:
        yield d
    finally:
        subprocess.run(["rm", "-rf", str(d)], check=False, timeout=120)


def test_libvirt_up_destroy_without_guests(workdir: Path) -> None:
    bin_dir = _require()
    netns = f"k8sf-e2e-{os.getpid()}"
    engine = Engine(bin_dir, workdir / "engine", wrap=["ip", "netns", "exec", netns])
    out = os.environ.get("K8SF_E2E_LOG_DIR")
    log_path = (Path(out) if out else workdir) / f"{time.strftime('%Y-%m-%d')}-libvirt-bare-both-arches-targeted.log"
    engine.note(f"e2e: libvirt backend, bare, {list(ARCHES)}, program in {PROJECT}; tools in {bin_dir}; "
                f"libvirtd and every pulumi call in netns {netns}")
    try:
        paths: dict[str, str] = {}
        for arch in ARCHES:
            image = images.cached(arch)
            assert image is not None
            dst = workdir / f"debian12-{arch}.qcow2"
            subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", "-f", "raw", str(image.root), str(dst)],
                           check=True, timeout=900)
            paths[arch] = str(dst)
            engine.note(f"image {arch}: {dst.name}, {dst.stat().st_size >> 20} MiB qcow2")
        pool_dir = workdir / "pool"
        pool_dir.mkdir()
        with libvirt_in_netns(netns) as lv:
            lv.virsh("pool-define-as", POOL, "dir", "--target", str(pool_dir))
            lv.virsh("pool-start", POOL)
            try:
                _run(engine, lv, paths)
            finally:
                left = _clear_after_destroy(engine, lv)
                # NAT networks leave empty LIBVIRT_* chains and ip_forward=1: all inside the
                # namespace, which goes with them (libvirt_in_netns checks the host is untouched).
            assert left == {"domains": [], "networks": [], "volumes": []}, f"destroy left in libvirt: {left}"
    finally:
        engine.write_transcript(log_path)
        log(f"e2e transcript: {log_path}")


def _run(engine: Engine, lv: Libvirt, paths: dict[str, str]) -> None:
    engine.run(["version"], timeout=60)
    engine.run(["stack", "init", STACK], timeout=120)
    engine.config_file.write_text(_stack_config(paths))
    engine.run(["plugin", "ls", "--project"], timeout=300)
    try:
        preview = engine.run(["preview", "--json", "--stack", STACK, "--config-file", str(engine.config_file)],
                             timeout=900)
        steps = json.loads(preview.stdout).get("steps") or []
        targets = _targets(steps)
        names = sorted(t.rsplit("::", 1)[-1] for t in targets)
        engine.note(f"targets ({len(targets)}): {names}")
        for must in ("ssh-key", "libvirt-provider", "libvirt-net", "libvirt-base-x86_64", "libvirt-base-aarch64"):
            assert must in names, f"{must} is not among the targets: {names}"
        up = engine.run(["up", "--yes", "--skip-preview", "--stack", STACK, "--config-file", str(engine.config_file),
                         *[a for t in targets for a in ("--target", t)]], timeout=2400, check=False)
        engine.note(f"libvirt after up: {json.dumps(_stack_objects(lv))}")
        assert up.returncode == 0, f"pulumi up failed:\n{up.stdout[-4000:]}\n{up.stderr[-2000:]}"
        state = json.loads(engine.run(["stack", "export", "--stack", STACK], timeout=120).stdout)
        resources = state["deployment"]["resources"]
        key = next(r for r in resources if r["type"] == "tls:index/privateKey:PrivateKey")
        public = str(key["outputs"]["publicKeyOpenssh"]).strip()
        assert public.startswith("ssh-ed25519 "), public[:40]
        made = _stack_objects(lv)
        assert made["networks"] == [f"k8sf-{STACK}"], made
        cidata = [r for r in resources if r["type"] == "libvirt:index/cloudInitDisk:CloudInitDisk"]
        volumes = [r for r in resources if r["type"] == "libvirt:index/volume:Volume"]
        in_state = {str(r["inputs"]["name"]) for r in cidata + volumes}
        assert {f"k8sf-{STACK}-base-{a}.qcow2" for a in ARCHES} <= in_state, sorted(in_state)
        assert set(made["volumes"]) == in_state, f"libvirt holds {made['volumes']}, the state {sorted(in_state)}"
        assert cidata, "no cloud-init ISO was created"
        # The ISO's user-data carries the real key's public half (the cidata volume is an ISO 9660
        # image; user-data is stored in it as plain bytes).
        for disk in cidata:
            name = str(disk["inputs"]["name"])
            iso = engine.workdir / name
            lv.virsh("vol-download", "--pool", POOL, name, str(iso), timeout=300)
            assert public.split()[1].encode() in iso.read_bytes(), f"{name} lacks the stack key's public half"
            engine.note(f"{name}: carries {public.split()[0]} {public.split()[1][:16]}...")
    finally:
        down = engine.run(["destroy", "--yes", "--skip-preview", "--stack", STACK,
                           "--config-file", str(engine.config_file)], timeout=1800, check=False)
        left = json.loads(engine.run(["stack", "export", "--stack", STACK], timeout=120).stdout)
        left_res = [r["urn"] for r in left["deployment"].get("resources") or []]
    assert down.returncode == 0, f"pulumi destroy failed:\n{down.stdout[-4000:]}\n{down.stderr[-2000:]}"
    assert left_res == [], f"destroy left resources in the state: {left_res}"
    engine.run(["stack", "rm", "--yes", "--stack", STACK], timeout=120)


# libvirt picks a domain's UEFI firmware from the descriptors in /usr/share/qemu/firmware (then
# /etc/qemu/firmware), the first by file name that fits. Debian's qemu-efi-aarch64 ships
# 40-edk2-aarch64-secure-enrolled.json first: Secure Boot on, Microsoft's keys enrolled. A cloud
# image boots through its Microsoft-signed shim; the test image's GRUB is unsigned, and that
# firmware refuses it (the first aarch64 run sat in the firmware, no DHCP lease after 5 min). So,
# while the test runs, a descriptor of the firmware without Secure Boot (Debian's own
# 60-edk2-aarch64.json, the same files) sorts first.
FIRMWARE_DIR = Path("/etc/qemu/firmware")
PLAIN_AAVMF = Path("/usr/share/qemu/firmware/60-edk2-aarch64.json")


@contextlib.contextmanager
def _firmware_without_secure_boot(arch: str) -> Iterator[str]:
    if arch != "aarch64":
        yield "unchanged"
        return
    if not PLAIN_AAVMF.exists():
        pytest.skip(f"{PLAIN_AAVMF} is missing: the test's unsigned GRUB needs UEFI without Secure Boot")
    ours = FIRMWARE_DIR / "10-k8sf-e2e-aarch64-no-secure-boot.json"
    if ours.exists():
        raise AssertionError(f"{ours} exists: another run of this test is under way, or did not clean up")
    made_dir = not FIRMWARE_DIR.exists()
    FIRMWARE_DIR.mkdir(parents=True, exist_ok=True)
    ours.write_text(PLAIN_AAVMF.read_text())
    try:
        yield f"{ours.name} (a copy of {PLAIN_AAVMF})"
    finally:
        ours.unlink(missing_ok=True)
        if made_dir:
            with contextlib.suppress(OSError):
                FIRMWARE_DIR.rmdir()


def _full_stack_config(arch: str, image_path: str) -> str:
    config: dict[str, Any] = {
        "k8s-footprint:backend": "libvirt",
        "k8s-footprint:arches": [arch],
        "k8s-footprint:distros": ["bare"],
        "k8s-footprint:images": {arch: image_path},
        "k8s-footprint:libvirtPool": POOL,
        # KVM guests hang on these machines (FACTS §6): the native domain runs emulated.
        "k8s-footprint:libvirtAccel": "tcg",
        "k8s-footprint:settleSeconds": 10,
        "k8s-footprint:sampleIntervalSeconds": 2,
        "k8s-footprint:samples": 5,
        "k8s-footprint:workload": "none",
    }
    return json.dumps({"config": config}, indent=2) + "\n"


@pytest.mark.parametrize("arch", ARCHES)
def test_libvirt_full_up_destroy(workdir: Path, arch: str) -> None:
    bin_dir = _require()
    missing = bootable.missing_host_tools(arch)
    if missing:
        pytest.skip("the bootable test image needs: apt-get install " + " ".join(missing))
    netns = f"k8sf-e2e-{os.getpid()}"
    engine = Engine(bin_dir, workdir / "engine", wrap=["ip", "netns", "exec", netns])
    out = os.environ.get("K8SF_E2E_LOG_DIR")
    log_path = (Path(out) if out else workdir) / f"{time.strftime('%Y-%m-%d')}-libvirt-bare-{arch}-full.log"
    engine.note(f"e2e: libvirt backend, bare, {arch}, full up (domain included), libvirtAccel tcg, program in "
                f"{PROJECT}; tools in {bin_dir}; libvirtd and every pulumi call in netns {netns}")
    try:
        t0 = time.monotonic()
        image = bootable.build(arch)
        dst = workdir / f"debian12-{arch}-bootable.qcow2"
        subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", "-f", "raw", str(image.disk), str(dst)],
                       check=True, timeout=900)
        engine.note(f"image {arch}: {dst.name}, {dst.stat().st_size >> 20} MiB qcow2, from {image.disk} "
                    f"(kernel {image.build['kernel']}, args {image.build['kernel_args']!r}); "
                    f"{time.monotonic() - t0:.0f} s")
        pool_dir = workdir / "pool"
        pool_dir.mkdir()
        with _firmware_without_secure_boot(arch) as firmware, libvirt_in_netns(netns) as lv:
            engine.note(f"UEFI firmware descriptor: {firmware}")
            lv.virsh("pool-define-as", POOL, "dir", "--target", str(pool_dir))
            lv.virsh("pool-start", POOL)
            try:
                _run_full(engine, lv, arch, str(dst))
            finally:
                left = _clear_after_destroy(engine, lv)
            assert left == {"domains": [], "networks": [], "volumes": []}, f"destroy left in libvirt: {left}"
    finally:
        engine.write_transcript(log_path)
        log(f"e2e transcript: {log_path}")


def _run_full(engine: Engine, lv: Libvirt, arch: str, image_path: str) -> None:
    cell = f"{arch}-bare-1"
    engine.run(["version"], timeout=60)
    engine.run(["stack", "init", STACK], timeout=120)
    engine.config_file.write_text(_full_stack_config(arch, image_path))
    engine.run(["plugin", "ls", "--project"], timeout=300)
    try:
        up = engine.run(["up", "--yes", "--skip-preview", "--stack", STACK, "--config-file", str(engine.config_file)],
                        timeout=3000, check=False)
        made = _stack_objects(lv)
        engine.note(f"libvirt after up: {json.dumps(made)}")
        for dom in made["domains"]:
            xml = lv.virsh("dumpxml", dom, check=False).stdout
            head = next((line.strip() for line in xml.splitlines() if line.strip().startswith("<domain")), "")
            cpu = next((line.strip() for line in xml.splitlines() if line.strip().startswith("<cpu")), "")
            state = lv.virsh("domstate", dom, check=False).stdout.strip()
            loader = next((line.strip() for line in xml.splitlines() if "<loader" in line), "")
            engine.note(f"domain {dom}: {head} {cpu} {loader} state {state!r}")
        assert up.returncode == 0, f"pulumi up failed:\n{up.stdout[-4000:]}\n{up.stderr[-2000:]}"
        assert made["domains"] == [f"k8sf-{STACK}-{cell}"], made
        state = json.loads(engine.run(["stack", "export", "--stack", STACK], timeout=120).stdout)
        domain = next(r for r in state["deployment"]["resources"] if r["type"] == "libvirt:index/domain:Domain")
        assert domain["inputs"]["type"] == "qemu", domain["inputs"].get("type")
        outputs = json.loads(engine.run(["stack", "output", "--json", "--stack", STACK], timeout=120).stdout)
        engine.note("outputs: " + json.dumps(outputs, indent=1)[:6000])
        results = outputs["results"]
        assert set(results) == {cell}, sorted(results)
        validate_result(results[cell])
        assert results[cell]["cell"] == cell and results[cell]["distro"] == "bare"
        assert outputs["instances"][cell]["backend"] == "libvirt"
        engine.note(f"{cell}: status {results[cell].get('status')!r}; the result passes the schema")
    finally:
        down = engine.run(["destroy", "--yes", "--skip-preview", "--stack", STACK,
                           "--config-file", str(engine.config_file)], timeout=1800, check=False)
        left = json.loads(engine.run(["stack", "export", "--stack", STACK], timeout=120).stdout)
        left_res = [r["urn"] for r in left["deployment"].get("resources") or []]
    assert down.returncode == 0, f"pulumi destroy failed:\n{down.stdout[-4000:]}\n{down.stderr[-2000:]}"
    assert left_res == [], f"destroy left resources in the state: {left_res}"
    engine.run(["stack", "rm", "--yes", "--stack", STACK], timeout=120)
