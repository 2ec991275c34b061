"""make doctor: each check on a machine where it passes and on one where it fails.

The Pulumi CLI can't be installed on every test machine, so its check runs against a stand-in
that only prints a version, as `pulumi version` does (a line like "v3.272.0"): that tests the
doctor's own parsing and version rule, not the CLI. AWS checks run against moto. The SSH checks run
against real sockets on loopback. libvirt's checks on a real libvirtd live in tests/libvirt.
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from components import config
from components.config import FleetSpec, HostEntry
from tests.unit.test_kit_place import Sshd
from tools import doctor
from tools.doctor import Machine

NOW_SPEC = dict(project="k8s-footprint", stack="dev", run_id="dev", expires_at="2026-11-30T12:00:00Z")


def spec(**kw: object) -> FleetSpec:
    return FleetSpec(**NOW_SPEC, **kw)  # type: ignore[arg-type]


def stand_in(folder: Path, name: str, script: str) -> None:
    path = folder / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only the stand-ins a test puts there."""
    folder = tmp_path / "bin"
    folder.mkdir()
    monkeypatch.setenv("PATH", str(folder))  # the stand-ins' #!/bin/sh needs no PATH
    return folder


def test_python_3_11_passes_and_3_10_fails() -> None:
    assert doctor.check_python(Machine(python=(3, 11))).ok
    old = doctor.check_python(Machine(python=(3, 10)))
    assert not old.ok and "3.11" in old.fix


def test_pulumi_cli_missing_old_and_new(bin_dir: Path) -> None:
    missing = doctor.check_pulumi_cli(Machine(which=lambda name: None))
    assert not missing.ok and "get.pulumi.com" in missing.fix and "--version 3.272.0" in missing.fix
    stand_in(bin_dir, "pulumi", 'echo "v3.200.0"\n')
    old = doctor.check_pulumi_cli(Machine())
    assert not old.ok and "3.200.0 is older than 3.226.0" in old.detail
    stand_in(bin_dir, "pulumi", 'echo "v3.272.0"\n')
    pinned = doctor.check_pulumi_cli(Machine())
    assert pinned.ok and pinned.detail == "3.272.0"
    stand_in(bin_dir, "pulumi", 'echo "v3.274.1"\n')
    newer = doctor.check_pulumi_cli(Machine())
    assert newer.ok and "pinned to 3.272.0" in newer.detail


def test_plugins_are_listed_per_backend_and_only_noted_when_missing(bin_dir: Path) -> None:
    # `pulumi plugin ls --json` prints a list of {name, kind, version, ...} (stand-in).
    stand_in(bin_dir, "pulumi", """echo '[{"name":"command","kind":"resource","version":"1.2.1"},'\\
'{"name":"tls","kind":"resource","version":"5.6.2"}]'\n""")
    findings = {f.check: f for f in doctor.check_plugins(Machine(), spec(backend="libvirt"))}
    assert findings["plugin command 1.2.1"].ok and findings["plugin tls 5.6.2"].ok
    libvirt = findings["plugin libvirt 0.5.4"]
    assert not libvirt.ok and not libvirt.blocking and libvirt.fix == "pulumi plugin install resource libvirt 0.5.4"
    hosts = {f.check for f in doctor.check_plugins(Machine(), spec(backend="hosts"))}
    assert hosts == {"plugin command 1.2.1"}


def test_mkisofs_is_found_by_that_name(bin_dir: Path) -> None:
    missing = doctor.check_mkisofs(Machine())
    assert not missing.ok and "genisoimage" in missing.fix
    stand_in(bin_dir, "mkisofs", "exit 0\n")
    assert doctor.check_mkisofs(Machine()).ok


def test_chromium_missing_is_a_note_with_the_package_and_found_by_either_name(bin_dir: Path) -> None:
    missing = doctor.check_chromium(Machine())
    assert not missing.ok and not missing.blocking
    assert missing.fix == "sudo apt-get install -y --no-install-recommends chromium"
    stand_in(bin_dir, "chromium-browser", "exit 0\n")
    found = doctor.check_chromium(Machine())
    assert found.ok and found.detail == "chromium-browser on PATH"
    assert "chromium" in {f.check for f in doctor.diagnose("none", Machine(which=lambda name: None))}


def test_xsltproc_is_needed_only_where_a_domain_carries_the_stylesheet(bin_dir: Path) -> None:
    assert doctor.check_xsltproc(Machine(), spec(arches=("x86_64",), libvirt_host_arch="x86_64")) is None
    arm = spec(arches=("x86_64", "aarch64"), libvirt_host_arch="x86_64")
    missing = doctor.check_xsltproc(Machine(), arm)
    assert missing is not None and not missing.ok and missing.fix == "sudo apt-get install xsltproc"
    stand_in(bin_dir, "xsltproc", "exit 0\n")
    found = doctor.check_xsltproc(Machine(), arm)
    assert found is not None and found.ok


def test_kvm_must_answer_not_just_exist(tmp_path: Path) -> None:
    ok, detail = doctor.kvm_works(Machine(kvm_path=str(tmp_path / "kvm")))
    assert not ok and "No such file" in detail
    ok, detail = doctor.kvm_works(Machine(kvm_path="/dev/null"))  # exists, opens, but is no KVM
    assert not ok and "KVM_GET_API_VERSION failed" in detail


def test_kvm_passes_where_it_works() -> None:
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("/dev/kvm is not usable by this user here")
    ok, detail = doctor.kvm_works(Machine())
    assert ok and detail == "KVM API version 12"


# virsh's own output formats (libvirt 9.0: tools/virsh-pool.c cmdPoolInfo prints "%-15s %2.2lf %s"
# rows; net-dumpxml prints the network's XML).
POOL_INFO = """Name:           default
UUID:           0c6a2b3e-1e7e-4a43-9c1d-3f0a0f4f0c11
State:          running
Persistent:     yes
Autostart:      yes
Capacity:       251.00 GiB
Allocation:     171.00 GiB
Available:      {free} GiB
"""
NET_XML = """<network>
  <name>{name}</name>
  <forward mode='nat'/>
  <ip address='{address}' prefix='24'>
    <dhcp><range start='{address}0' end='{address}9'/></dhcp>
  </ip>
</network>"""


def fake_virsh(answers: dict[str, tuple[int, str]]) -> Machine:
    """A machine whose virsh answers by subcommand, as recorded above; anything else fails."""
    calls: list[Sequence[str]] = []

    def run(argv: Sequence[str], timeout: float) -> subprocess.CompletedProcess[str]:
        calls.append(argv)
        if argv[0] == "ip":
            return subprocess.CompletedProcess(argv, 0, "[]", "")
        rc, out = answers.get(argv[3], (1, ""))
        if argv[3] == "net-dumpxml":
            rc, out = answers.get(f"net-dumpxml {argv[4]}", (1, ""))
        return subprocess.CompletedProcess(argv, rc, out if rc == 0 else "", "" if rc == 0 else f"error: {argv[3]}")

    m = Machine(run=run, which=lambda name: f"/usr/bin/{name}")
    m.calls = calls  # type: ignore[attr-defined]
    return m


def test_pool_space_is_read_from_pool_info() -> None:
    fleet = spec(arches=("x86_64", "aarch64"), distros=("bare", "docker"))
    assert doctor.needed_pool_bytes(fleet) == (2 * 1 + 4 * 3) * 1024**3
    assert doctor.check_pool_space(fleet, POOL_INFO.format(free="80.00")).ok
    low = doctor.check_pool_space(fleet, POOL_INFO.format(free="3.50"))
    assert not low.ok and "3.5 GiB free, 14 GiB wanted" in low.detail


def test_the_stacks_own_uri_pool_and_network_are_checked() -> None:
    fleet = spec(libvirt_uri="qemu+ssh://lab/system", libvirt_pool="fast", libvirt_network_cidr="10.50.1.0/24",
                 libvirt_host_arch="x86_64", arches=("x86_64",), distros=("bare",))
    m = fake_virsh({"version": (0, "Using library: libvirt 9.0.0"), "pool-info": (1, ""),
                    "domcapabilities": (0, "<domainCapabilities/>"), "net-list": (0, "other\n"),
                    "net-dumpxml other": (0, NET_XML.format(name="other", address="10.50.1.1"))})
    findings = {f.check: f for f in doctor.check_libvirt(m, fleet)}
    assert all(argv[:3] == ["virsh", "-c", "qemu+ssh://lab/system"] for argv in m.calls  # type: ignore[attr-defined]
               if argv[0] == "virsh")
    assert not findings["pool fast"].ok and "pool-define-as fast" in findings["pool fast"].fix
    net = findings["network"]
    assert not net.ok and "libvirt network other (10.50.1.0/24)" in net.detail
    assert "libvirtNetworkCidr" in net.fix
    assert "/dev/kvm" not in findings  # a remote host's /dev/kvm is not ours to open


def test_a_free_network_and_a_present_pool_pass() -> None:
    fleet = spec(libvirt_network_cidr="10.50.2.0/24", arches=("aarch64",), distros=("bare",),
                 libvirt_host_arch="x86_64")
    caps = "<domainCapabilities><os><loader><value>/usr/share/AAVMF/AAVMF_CODE.fd</value></loader></os>"
    m = fake_virsh({"version": (0, ""), "pool-info": (0, POOL_INFO.format(free="50.00")),
                    "domcapabilities": (0, caps), "net-list": (0, "other\nk8sf-dev\n"),
                    "net-dumpxml other": (0, NET_XML.format(name="other", address="10.50.1.1")),
                    "net-dumpxml k8sf-dev": (0, NET_XML.format(name="k8sf-dev", address="10.50.2.1"))})
    findings = {f.check: f for f in doctor.check_libvirt(m, fleet)}
    assert all(f.ok for f in findings.values()), findings
    assert findings["aarch64 UEFI firmware"].detail == "/usr/share/AAVMF/AAVMF_CODE.fd"


def test_an_emulated_arch_libvirt_cannot_run_names_the_package() -> None:
    fleet = spec(arches=("aarch64",), distros=("bare",), libvirt_host_arch="x86_64")
    m = fake_virsh({"version": (0, ""), "pool-info": (0, POOL_INFO.format(free="50.00")), "net-list": (0, "")})
    m.files = lambda path: False  # no firmware files here either
    findings = {f.check: f for f in doctor.check_libvirt(m, fleet)}
    assert not findings["aarch64 guests (qemu)"].ok and findings["aarch64 guests (qemu)"].fix == (
        "sudo apt-get install qemu-system-arm")
    assert not findings["aarch64 UEFI firmware"].ok


def test_libvirt_not_answering_is_one_problem_with_its_fix() -> None:
    m = fake_virsh({})
    findings = doctor.check_libvirt(m, spec())
    assert len(findings) == 1 and not findings[0].ok and "libvirtd" in findings[0].fix


# ---- aws, against moto --------------------------------------------------------------------------


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto import mock_aws

    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield


def test_aws_credentials_region_and_default_vpc(aws_env: None) -> None:
    import boto3

    fleet = spec(backend="aws")
    findings = {f.check: f for f in doctor.check_aws(Machine(), fleet, "us-east-1")}
    assert findings["aws credentials"].ok and findings["aws default VPC"].ok
    ec2 = boto3.client("ec2", region_name="us-east-1")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    for subnet in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    ec2.delete_vpc(VpcId=vpc)
    findings = {f.check: f for f in doctor.check_aws(Machine(), fleet, "us-east-1")}
    assert not findings["aws default VPC"].ok
    assert findings["aws default VPC"].fix == "aws ec2 create-default-vpc --region us-east-1"
    no_region = doctor.check_aws(Machine(), fleet, None)
    assert not no_region[0].ok and "aws:region" in no_region[0].fix


def test_aws_without_credentials_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    # boto3's own credential chain, with nothing to find: it raises NoCredentialsError.
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    finding = doctor.check_aws(Machine(), spec(backend="aws"), "us-east-1")[0]
    assert not finding.ok and finding.check == "aws credentials" and "NoCredentialsError" in finding.detail
    assert "aws configure" in finding.fix


# ---- hosts, on loopback -------------------------------------------------------------------------


def serve_once(greeting: bytes) -> tuple[int, threading.Thread]:
    """A loopback server that greets one client, as sshd does with its version line (RFC 4253 4.2)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.sendall(greeting)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return port, thread


def test_hosts_ssh_reachable_not_ssh_and_closed() -> None:
    ssh_port, t1 = serve_once(b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n")
    web_port, t2 = serve_once(b"HTTP/1.0 400 Bad Request\r\n\r\n")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    hosts = tuple(HostEntry(name=n, address="127.0.0.1", user="pi", arch="x86_64", port=p)
                  for n, p in (("good", ssh_port), ("web", web_port), ("gone", closed_port)))
    findings = doctor.check_hosts(Machine(), spec(backend="hosts", hosts=hosts), None)
    by_host = {f.check.split()[1]: f for f in findings}
    assert by_host["good"].ok and "not checked" in by_host["good"].detail
    assert not by_host["web"].ok and "not SSH" in by_host["web"].detail
    assert not by_host["gone"].ok and "no SSH" in by_host["gone"].detail
    t1.join(5)
    t2.join(5)


def test_diagnose_reads_the_selected_stack_file(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.lab.yaml").write_text("config:\n  k8s-footprint:backend: libvirt\n"
                                               "  k8s-footprint:repetitions: 0\n")
    findings = doctor.diagnose("lab", Machine(which=lambda name: None), root=tmp_path)
    stack = findings[-1]
    assert stack.check == "Pulumi.lab.yaml" and not stack.ok and "repetitions = '0'" in stack.detail
    (tmp_path / "Pulumi.lab.yaml").write_text("config:\n  k8s-footprint:backend: libvirt\n"
                                               "  k8s-footprint:libvirtPool: fast\n")
    loaded, _ = doctor.load_stack("lab", tmp_path)
    assert loaded.libvirt_pool == "fast" and loaded.libvirt_network_cidr == config.default_network_cidr(
        "k8s-footprint", "lab")


def test_report_lists_every_problem_and_exits_1_only_for_blocking_ones() -> None:
    import io

    out = io.StringIO()
    rc = doctor.report([doctor.Finding("a", False, "bad", "fix a"), doctor.Finding("b", False, "later", "fix b",
                                                                                     blocking=False),
                        doctor.Finding("c", True, "fine")], out)
    text = out.getvalue()
    assert rc == 1 and "FAIL  a: bad\n      fix: fix a" in text and "note  b: later" in text
    assert "doctor: 1 problem(s)" in text
    assert doctor.report([doctor.Finding("b", False, "later", "fix b", blocking=False)], io.StringIO()) == 0


def test_the_plan_is_the_selected_stacks_own(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.lab.yaml").write_text("config:\n  k8s-footprint:backend: libvirt\n"
                                               "  k8s-footprint:arches: [x86_64]\n  k8s-footprint:distros: [bare]\n")
    lines = doctor.plan("lab", tmp_path)
    assert lines[0].startswith("lane 1: ") and "x86_64-bare-1" in lines[0] and lines[-1].startswith(
        "expected wall time: about ")
    (tmp_path / "Pulumi.lab.yaml").write_text("config:\n  k8s-footprint:repetitions: 0\n")
    assert doctor.plan("lab", tmp_path) == []


def test_hosts_login_sudo_and_packages_on_a_real_sshd(sshd: Sshd) -> None:
    """The real OpenSSH sshd of tests/unit/test_kit_place.py on loopback, logged in to with its key: as
    root, no sudo is needed (the kit's commands run directly), and this Debian has apt-get."""
    host = HostEntry(name="lab", address="127.0.0.1", user="root", arch="x86_64", port=sshd.port)
    findings = {f.check: f for f in doctor.check_hosts(Machine(), spec(backend="hosts", hosts=(host,)),
                                                       str(sshd.key))}
    name = f"host lab (root@127.0.0.1:{sshd.port})"
    assert findings[name].ok and findings[name].detail == "sudo -n works"
    assert findings[f"{name} packages"].ok
    wrong_key = sshd.key.with_name("host")  # the server's own key is no client key it accepts
    refused = doctor.check_hosts(Machine(), spec(backend="hosts", hosts=(host,)), str(wrong_key))
    assert not refused[0].ok and "SSH login failed" in refused[0].detail
