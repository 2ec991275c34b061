"""Check tests/libvirt/provider_model.py against terraform-provider-libvirt's own code (run by hand).

CI can't do this (it needs Go, the Go module proxy and the provider's source), so it is a script,
not a test. It copies provider_run/k8sf_provider_run_test.go into a checkout of the provider at
v0.8.1, builds it, runs the provider's own Create functions for the program's libvirt resources
against a libvirtd in a network namespace, and compares the XML the provider logged with the
model's XML for the same inputs. It exits 1 on any difference.

    python -m tests.libvirt.provider_run /path/to/terraform-provider-libvirt-v0.8.1-checkout
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from tests.libvirt import provider_model as model
from tests.libvirt.daemon import libvirt_in_netns, log
from tests.libvirt.test_real_libvirt import ARCHES, HOST_ARCH, Made, run_program, teardown, volume_facts
from tests.vm import images

HERE = Path(__file__).resolve().parent
GENERATED = re.compile(r"\[DEBUG\] Generated XML for libvirt (domain|network|volume):\n(.*?)\n(?=\d{4}/\d\d/\d\d )",
                       re.S)


def steps_for(program: Any, pool: str, arches: list[str]) -> list[dict[str, Any]]:
    """The program's resources as terraform configs (snake_case), ids as "${step}" references."""
    net = program.one("-net")
    steps: list[dict[str, Any]] = [{"name": "net", "resource": "libvirt_network", "config": {
        "name": net["name"], "mode": net["mode"], "addresses": net["addresses"],
        "dhcp": [{"enabled": net["dhcp"]["enabled"]}], "autostart": net["autostart"]}}]
    for arch in arches:
        base = program.one(f"-base-{arch}")
        steps.append({"name": f"base-{arch}", "resource": "libvirt_volume", "config": {
            "name": base["name"], "pool": pool, "source": base["source"], "format": base["format"]}})
        cell = f"{arch}-bare-1"
        disk, ci, dom = program.one(f"{cell}-disk"), program.one(f"{cell}-cidata"), program.one(f"{cell}-vm")
        steps.append({"name": f"disk-{arch}", "resource": "libvirt_volume", "config": {
            "name": disk["name"], "pool": pool, "base_volume_id": f"${{base-{arch}}}", "size": int(disk["size"]),
            "format": disk["format"]}})
        steps.append({"name": f"cidata-{arch}", "resource": "libvirt_cloudinit_disk", "config": {
            "name": ci["name"], "pool": pool, "user_data": ci["userData"], "meta_data": ci["metaData"]}})
        config: dict[str, Any] = {
            "name": dom["name"], "memory": int(dom["memory"]), "vcpu": int(dom["vcpu"]), "arch": dom["arch"],
            "type": dom["type"], "cpu": [{"mode": dom["cpu"]["mode"]}], "cloudinit": f"${{cidata-{arch}}}",
            "disk": [{"volume_id": f"${{disk-{arch}}}"}],
            # wait_for_lease is not written to the XML (libvirt/domain.go:721-726); off, so nothing waits.
            "network_interface": [{"network_id": "${net}", "hostname": dom["networkInterfaces"][0]["hostname"],
                                   "wait_for_lease": False}],
            "console": [{"type": c["type"], "target_port": c["targetPort"], "target_type": c["targetType"]}
                        for c in dom["consoles"]],
            "running": False,  # the provider starts it, then destroys it (resource_libvirt_domain.go:657-659)
        }
        if dom.get("machine"):
            config["machine"] = dom["machine"]
        if dom.get("xml"):
            # The provider's own XML, without the program's stylesheet, first.
            steps.append({"name": f"vm-{arch}-no-xslt", "resource": "libvirt_domain",
                          "config": {**config, "name": dom["name"] + "-noxslt"}})
            config["xml"] = [{"xslt": dom["xml"]["xslt"]}]
        steps.append({"name": f"vm-{arch}", "resource": "libvirt_domain", "config": config})
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("provider_src", type=Path, help="a checkout of terraform-provider-libvirt at v0.8.1")
    parser.add_argument("--arch", action="append", choices=ARCHES, help="only these arches (default: both)")
    parser.add_argument("--image-from", choices=ARCHES,
                        help="use this arch's test image as every base volume (the XML does not depend on it)")
    args = parser.parse_args()
    arches = args.arch or list(ARCHES)
    src: Path = args.provider_src
    work = Path(tempfile.mkdtemp(prefix="k8sf-provider-run-"))
    work.chmod(0o755)
    shutil.copy(HERE / "provider_run/k8sf_provider_run_test.go", src / "libvirt/k8sf_provider_run_test.go")
    binary = work / "provider-run.test"
    subprocess.run(["go", "test", "-c", "-o", str(binary), "./libvirt/"], cwd=src, check=True, timeout=1200)
    qcow2 = {}
    for arch in ARCHES:
        qcow2[arch] = work / f"debian12-{arch}.qcow2"
        if arch not in arches:
            continue
        image = images.cached(args.image_from or arch)
        if image is None:
            print(f"error: no cached test image for {arch}: python -m tests.vm.images build --arch {arch}")
            return 2
        subprocess.run(["qemu-img", "convert", "-q", "-O", "qcow2", "-f", "raw", str(image.root), str(qcow2[arch])],
                       check=True, timeout=900)
    program = run_program({a: str(p) for a, p in qcow2.items()})
    pool = program.one("-base-x86_64")["pool"]
    made = Made()
    differences: list[str] = []
    with libvirt_in_netns(f"k8sf-provrun-{os.getpid()}") as lv:
        try:
            (work / "pool").mkdir()
            lv.virsh("pool-define-as", pool, "dir", "--target", str(work / "pool"))
            made.pools.append(pool)
            lv.virsh("pool-build", pool)
            lv.virsh("pool-start", pool)
            steps = steps_for(program, pool, arches)
            (work / "run.json").write_text(json.dumps(steps))
            made.networks.append(steps[0]["config"]["name"])
            for s in steps[1:]:
                if s["resource"] in ("libvirt_volume", "libvirt_cloudinit_disk"):
                    made.volumes.append((pool, s["config"]["name"]))
                else:
                    made.domains.append(s["config"]["name"])
            proc = lv.run(["env", f"K8SF_RUN={work / 'run.json'}", f"K8SF_OUT={work / 'out.json'}",
                           "LIBVIRT_DEFAULT_URI=qemu:///system", str(binary), "-test.run", "TestK8sfProviderRun",
                           "-test.v"], timeout=900, check=False)
            print(proc.stdout[-3000:], proc.stderr[-3000:])
            made.domains[:] = lv.names("domain") & set(made.domains)  # only those the provider defined
            results = json.loads((work / "out.json").read_text()) if (work / "out.json").exists() else []
            caps = lv.virsh("capabilities").stdout
            by_step = {r["name"]: r for r in results}
            for s in steps:
                r = by_step[s["name"]]
                found = GENERATED.findall(r["log"] + "\n0000/00/00 ")
                print(f"== {s['name']}: id {r['id']!r} error {r['error']!r}")
                if s["resource"] == "libvirt_domain":
                    provider_xml = next(x for kind, x in found if kind == "domain")
                    mac = str(ET.fromstring(provider_xml).find("devices/interface/mac").get("address"))  # type: ignore[union-attr]
                    arch = s["config"]["arch"]
                    dom = program.one(f"{arch}-bare-1-vm")
                    disk_vol = volume_facts(lv, pool, program.one(f"{arch}-bare-1-disk")["name"])
                    ci_vol = volume_facts(lv, pool, program.one(f"{arch}-bare-1-cidata")["name"])
                    ids = {program.id_of("-net"): by_step["net"]["id"], program.id_of(f"{arch}-bare-1-disk"):
                           disk_vol.key, program.id_of(f"{arch}-bare-1-cidata"): by_step[f"cidata-{arch}"]["id"]}
                    inputs = {k: (ids.get(v, v) if isinstance(v, str) else v) for k, v in dom.items()}
                    inputs["disks"] = [{"volumeId": disk_vol.key}]
                    inputs["networkInterfaces"] = [{**dom["networkInterfaces"][0], "networkId": by_step["net"]["id"]}]
                    inputs["name"] = s["config"]["name"]
                    mine = model.domain_xml(
                        inputs, host_arch=HOST_ARCH, machine=model.canonical_machine(caps, arch, dom.get("machine")),
                        volumes={disk_vol.key: disk_vol, ci_vol.key: ci_vol},
                        networks={by_step["net"]["id"]: steps[0]["config"]["name"]}, macs=[mac])
                    if "xml" in s["config"]:
                        transformed = r["log"].split("Transformed XML with user specified XSLT:\n", 1)
                        assert len(transformed) == 2, "the provider logged no XSLT output"
                        provider_after = transformed[1].split("\n20", 1)[0]
                        mine_after = model.apply_xslt(mine, model.domain_xslt(dom))
                        pairs = [("domain", provider_xml, mine), ("domain after xslt", provider_after, mine_after)]
                    else:
                        pairs = [("domain", provider_xml, mine)]
                elif s["resource"] == "libvirt_network":
                    pairs = [("network", next(x for k, x in found if k == "network"),
                              model.network_xml(program.one("-net")))]
                elif s["resource"] == "libvirt_volume" and s["name"].startswith("disk-"):
                    arch = s["name"].split("-", 1)[1]
                    base = volume_facts(lv, pool, program.one(f"-base-{arch}")["name"])
                    pairs = [("overlay volume", next(x for k, x in found if k == "volume"),
                              model.overlay_volume_xml(program.one(f"{arch}-bare-1-disk"), base=base))]
                elif s["resource"] == "libvirt_volume":
                    src_path = Path(s["config"]["source"])
                    pairs = [("base volume", next(x for k, x in found if k == "volume"), model.source_volume_xml(
                        program.one(s["name"].replace("base", "-base")), source_is_qcow2=True,
                        source_size=src_path.stat().st_size))]
                else:
                    pairs = []
                for what, theirs, ours in pairs:
                    a, b = model.canonical(theirs), model.canonical(ours)
                    if a == b:
                        print(f"   {what}: model == provider ({len(a)} elements)")
                    else:
                        diff = [f"     - {x}" for x in a if x not in b] + [f"     + {x}" for x in b if x not in a]
                        differences.append(f"{s['name']} {what}")
                        print(f"   {what}: DIFFERENT (- provider, + model)\n" + "\n".join(diff) +
                              f"\n   provider's XML:\n{theirs}")
        finally:
            teardown(lv, made)
    shutil.rmtree(work, ignore_errors=True)
    log("differences: " + (", ".join(differences) or "none"))
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
