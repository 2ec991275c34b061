"""Stack config, parsed once at the boundary into a frozen FleetSpec.

Every value arrives as Pulumi hands it to a program: a string, with lists and maps as JSON.
``parse`` checks all of them and raises one ConfigError naming every bad key, its value and
what is allowed, before a single resource is registered. Components never read pulumi.Config.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import platform
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

NAMESPACE = "k8s-footprint"

BACKENDS = ("libvirt", "aws", "hosts")
ARCHES = ("x86_64", "aarch64")
# The six rows of the 2022 experiment, plus variants users may add.
DEFAULT_DISTROS = ("bare", "docker", "k3s", "k0s", "microk8s", "microk8s-noha")
DISTROS = (*DEFAULT_DISTROS, "k3s-minimal")
WORKLOADS = ("mysql", "none")

# The one arch x size -> AWS instance type table: memoryMiB picks the type. instanceTypes adds to
# it or overrides an entry; there is no other key that names a type or a size.
DEFAULT_INSTANCE_TYPES: dict[str, dict[int, str]] = {
    "x86_64": {512: "t3.nano", 1024: "t3.micro", 2048: "t3.small"},
    "aarch64": {512: "t4g.nano", 1024: "t4g.micro", 2048: "t4g.small"},
}
# Types whose memory and arch are known (AWS's published sizes), so an override can be checked
# against the size and arch it is listed under. Other types are taken on the user's word.
KNOWN_TYPES: dict[str, tuple[str, int]] = {
    **{f"{fam}.{size}": ("x86_64", mib) for fam in ("t3", "t3a", "t2")
       for size, mib in (("nano", 512), ("micro", 1024), ("small", 2048))},
    **{f"t4g.{size}": ("aarch64", mib) for size, mib in (("nano", 512), ("micro", 1024), ("small", 2048))},
}
# memoryMiB's floor per backend: libvirt guests boot in 256 MiB; AWS's smallest type has 512.
MEMORY_FLOOR = {"libvirt": 256, "aws": 512, "hosts": 256}
MEMORY_MAX = 65536
# A list of sizes (a sweep) names its cells with the size; a slot per 128 MiB keeps addresses fixed.
SWEEP_STEP_MIB = 128
# Less than this available at the workload's p95 makes a cell that fits "tight" (MicroK8s evicts
# at memory.available<100Mi; the kernel reclaims hard well before 0).
DEFAULT_FIT_HEADROOM_MIB = 100
# The longest sampling window a stack may ask for (settleSeconds, sampleIntervalSeconds, samples);
# components/results.py bounds a cell's result for it (tests/unit/test_result_bound.py).
SETTLE_SECONDS_MAX = 3600
SAMPLE_INTERVAL_SECONDS_MAX = 300
SAMPLES_MAX = 720
# Graviton and x86 types differ by family; enough to catch an arch mix-up in a custom type.
_ARM_FAMILY = re.compile(r"^[a-z]+\d+g[a-z]*\.")

DEFAULT_IMAGES = {
    "x86_64": "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img",
    "aarch64": "https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-arm64.img",
}

_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$")
# What the kit takes for --version (benchmarks/guest/k8sf): k3s v1.31.4+k3s1, k0s v1.32.7+k0s.0, and a
# MicroK8s channel, 1.32 or 1.32/stable. The kit checks each distro's own form.
_VERSION = re.compile(r"^[A-Za-z0-9.+_/-]{1,64}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")


class ConfigError(ValueError):
    """Invalid stack config; the message lists every problem, one per line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid stack config ({len(problems)} problem(s)); nothing was created:\n{lines}")


@dataclass(frozen=True)
class HostEntry:
    """A machine Pulumi can't create (a Raspberry Pi, a lab box), reached over SSH."""

    name: str
    address: str
    user: str
    arch: str
    port: int = 22


@dataclass(frozen=True)
class FleetSpec:
    project: str
    stack: str
    run_id: str
    expires_at: str  # ISO 8601 UTC; the reaper removes what is past it
    backend: str = "libvirt"
    arches: tuple[str, ...] = ARCHES
    distros: tuple[str, ...] = DEFAULT_DISTROS
    repetitions: int = 1
    versions: Mapping[str, str] = field(default_factory=dict)
    workload: str = "mysql"
    settle_seconds: int = 300
    sample_interval_seconds: int = 5
    samples: int = 12
    max_parallel_cells: int | None = None
    # One size: cells keep their unsized names. Two or more: a sweep, each size a dimension.
    memory_sizes: tuple[int, ...] = (1024,)
    disk_gib: int = 20
    power_off_after: bool = True
    # arch -> memory MiB -> AWS instance type: the defaults with the stack's instanceTypes over them.
    instance_types: Mapping[str, Mapping[int, str]] = field(
        default_factory=lambda: {a: dict(t) for a, t in DEFAULT_INSTANCE_TYPES.items()})
    fit_headroom_mib: int = DEFAULT_FIT_HEADROOM_MIB
    ssh_allowed_cidrs: tuple[str, ...] = ()
    ttl_hours: int = 4
    spot: bool = False
    libvirt_uri: str = "qemu:///system"
    libvirt_pool: str = "default"
    libvirt_network_cidr: str = "10.213.0.0/24"
    libvirt_host_arch: str = "x86_64"
    images: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_IMAGES))
    hosts: tuple[HostEntry, ...] = ()
    # The hosts backend only: may destroy (and a replace) remove the distro from the user's machine?
    allow_uninstall: bool = False

    @property
    def sweep(self) -> bool:
        """Two or more sizes: the size is part of every cell's name."""
        return len(self.memory_sizes) > 1

    def instance_type(self, arch: str, memory_mib: int) -> str:
        """The AWS type of one cell; parse() has refused every size without one."""
        return self.instance_types[arch][memory_mib]


def native_arch() -> str:
    """This machine's arch, in the names the config uses."""
    machine = platform.machine().lower()
    return {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)


def libvirt_uri_is_local(uri: str) -> bool:
    """qemu:///system has no host part; qemu+ssh://lab/system names another machine."""
    return "://" in uri and uri.split("://", 1)[1].startswith("/")


def default_network_cidr(project: str, stack: str) -> str:
    """A /24 per stack, so two stacks on one libvirt host don't share a NAT range. Derived from
    the names, so it is the same on every run; make doctor refuses one that is already in use."""
    third = hashlib.sha256(f"{project}/{stack}".encode()).digest()[0]
    return f"10.213.{third}.0/24"


def address_slot(arch: str, distro: str, repetition: int, sweep_mib: int | None = None) -> int:
    """A cell's fixed place among a libvirt fleet's guest addresses.

    It depends on the cell alone, not on which other cells the stack has, so adding a distro or
    an arch to a stack never moves an existing guest to another address (which would re-run its
    commands: the address is part of their connection).

    `sweep_mib` is the size of a sweep's cell (memoryMiB a list), None for a single-size stack's,
    whose slots are the ones they always had. The two kinds never share a stack (a stack has one
    size or a list, and the names differ), so they may share slot numbers: a sweep's cell takes
    the place of repetition `(repetition - 1) * SIZE_SLOTS + its size's step`, so the first
    repetition of sizes up to about 2.4 GiB still fits a /24.
    """
    row = repetition - 1
    if sweep_mib is not None:
        row = (repetition - 1) * SIZE_SLOTS + sweep_mib // SWEEP_STEP_MIB - MEMORY_FLOOR["libvirt"] // SWEEP_STEP_MIB
    return (row * len(DISTROS) + DISTROS.index(distro)) * len(ARCHES) + ARCHES.index(arch)


SIZE_SLOTS = (MEMORY_MAX - MEMORY_FLOOR["libvirt"]) // SWEEP_STEP_MIB + 1


# The first guest address in a libvirt fleet's network; below it sit the gateway and room to spare.
FIRST_GUEST_OFFSET = 10


def guest_capacity(network_cidr: str) -> int:
    """How many address slots the network has after the reserved low addresses and the broadcast."""
    return max(0, ipaddress.ip_network(network_cidr).num_addresses - FIRST_GUEST_OFFSET - 1)


# key -> what the value may be, for messages and the README.
KEYS: dict[str, str] = {
    "backend": "one of libvirt, aws, hosts",
    "arches": "a list from x86_64, aarch64",
    "distros": f"a list from {', '.join(DISTROS)}",
    "repetitions": "a whole number from 1 to 20",
    "versions": "a map of distro to version",
    "workload": "one of mysql, none",
    "settleSeconds": f"a whole number from 0 to {SETTLE_SECONDS_MAX}",
    "sampleIntervalSeconds": f"a whole number from 1 to {SAMPLE_INTERVAL_SECONDS_MAX}",
    "samples": f"a whole number from 5 to {SAMPLES_MAX}",
    "maxParallelCells": "a whole number from 1 to 500",
    "memoryMiB": ("a whole number of MiB from 256 (libvirt; aws 512) to 65536, or a list of them, each a "
                  "multiple of 128, for a sweep (not on hosts)"),
    "diskGiB": "a whole number from 8 to 1024",
    "powerOffAfter": "true or false (auto: true on libvirt, false elsewhere)",
    "instanceTypes": "a map of arch to a map of memory MiB to AWS instance type",
    "fitHeadroomMiB": "a whole number from 0 to 4096",
    "sshAllowedCidrs": "a list of CIDRs such as 203.0.113.7/32",
    "ttlHours": "a whole number from 1 to 168",
    "spot": "true or false",
    "libvirtUri": "a libvirt URI such as qemu:///system",
    "libvirtPool": "the name of an existing libvirt storage pool",
    "libvirtNetworkCidr": "a private IPv4 /16 to /28 for the fleet's NAT network",
    "libvirtHostArch": "x86_64 or aarch64: the arch of the machine libvirtUri runs guests on",
    "images": "a map of arch to a cloud image URL or path",
    "hosts": "a list of {name, address, user, arch, port}",
    "sshPrivateKey": "the hosts' SSH private key, set with --secret",
    "runId": "letters, digits and -, at most 40",
    "allowUninstall": "true or false (hosts backend only)",
}


class _Reader:
    """Reads raw values and collects problems instead of stopping at the first."""

    def __init__(self, raw: Mapping[str, Any]) -> None:
        self.raw = raw
        self.problems: list[str] = []

    def bad(self, key: str, value: Any, why: str = "") -> None:
        shown = value if isinstance(value, str) else json.dumps(value)
        self.problems.append(f"{NAMESPACE}:{key} = {shown!r}: {why or 'must be ' + KEYS[key]}")

    def has(self, key: str) -> bool:
        return self.raw.get(key) not in (None, "")

    def _structured(self, key: str) -> Any:
        value = self.raw.get(key)
        if isinstance(value, str):
            stripped = value.strip()
            if stripped.startswith(("[", "{")):
                try:
                    return json.loads(stripped)
                except json.JSONDecodeError as exc:
                    self.bad(key, value, f"is not valid JSON ({exc.msg}); it must be {KEYS[key]}")
                    return None
        return value

    def choice(self, key: str, allowed: tuple[str, ...], default: str) -> str:
        if not self.has(key):
            return default
        value = self.raw[key]
        if value not in allowed:
            self.bad(key, value)
            return default
        return str(value)

    def integer(self, key: str, lo: int, hi: int, default: int) -> int:
        if not self.has(key):
            return default
        value = self.raw[key]
        try:
            number = int(str(value).strip())
        except ValueError:
            self.bad(key, value)
            return default
        if not lo <= number <= hi:
            self.bad(key, value)
            return default
        return number

    def boolean(self, key: str, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self.raw[key]
        text = str(value).strip().lower()
        if text in ("true", "false"):
            return text == "true"
        self.bad(key, value)
        return default

    def str_list(self, key: str, default: tuple[str, ...], allowed: tuple[str, ...] | None = None,
                 check: Callable[[str], bool] | None = None) -> tuple[str, ...]:
        if not self.has(key):
            return default
        value = self._structured(key)
        if value is None:
            return default
        if isinstance(value, str):  # "x86_64,aarch64" from `pulumi config set`
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            self.bad(key, self.raw[key], f"must be a non-empty list: {KEYS[key]}")
            return default
        bad = [v for v in value if (allowed is not None and v not in allowed) or (check and not check(v))]
        if bad:
            self.bad(key, self.raw[key], f"{', '.join(bad)} not allowed; {KEYS[key]}")
            return default
        if len(set(value)) != len(value):
            self.bad(key, self.raw[key], "lists a value twice")
            return default
        return tuple(value)

    def str_map(self, key: str, keys: tuple[str, ...], default: Mapping[str, str],
                check: Callable[[str], bool] | None = None) -> dict[str, str]:
        if not self.has(key):
            return dict(default)
        value = self._structured(key)
        if value is None:
            return dict(default)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            self.bad(key, self.raw[key], f"must be {KEYS[key]}")
            return dict(default)
        unknown = [k for k in value if k not in keys]
        if unknown:
            self.bad(key, self.raw[key], f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(keys)}")
            return dict(default)
        bad = [f"{k}={v}" for k, v in value.items() if check and not check(v)]
        if bad:
            self.bad(key, self.raw[key], f"bad value(s) {', '.join(bad)}; must be {KEYS[key]}")
            return dict(default)
        return {**default, **value}


def _parse_memory(r: _Reader, backend: str) -> tuple[int, ...]:
    """memoryMiB: one size, or a list of sizes (a sweep), each within the backend's floor."""
    key, lo = "memoryMiB", MEMORY_FLOOR[backend]
    if not r.has(key):
        return (1024,)
    value = r._structured(key)
    if value is None:
        return (1024,)
    if not isinstance(value, list):
        number = r.integer(key, lo, MEMORY_MAX, 1024)
        return (number,)
    if backend == "hosts":
        r.bad(key, r.raw[key], "takes no list on the hosts backend: a host has the memory it has, and its "
                               "result records its real MemTotal")
        return (1024,)
    bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= MEMORY_MAX
           or v % SWEEP_STEP_MIB]
    if not value or bad:
        r.bad(key, r.raw[key], f"{', '.join(map(str, bad)) or 'an empty list'} not allowed on {backend}; "
                               f"must be {KEYS[key]}")
        return (1024,)
    if len(set(value)) != len(value):
        r.bad(key, r.raw[key], "lists a size twice")
        return (1024,)
    return tuple(sorted(value))


def _parse_instance_types(r: _Reader) -> dict[str, dict[int, str]]:
    """instanceTypes over the defaults: arch -> {memory MiB: type}; a known type must match both."""
    key = "instanceTypes"
    table = {a: dict(t) for a, t in DEFAULT_INSTANCE_TYPES.items()}
    if not r.has(key):
        return table
    value = r._structured(key)
    if value is None:
        return table
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        r.bad(key, r.raw[key], f"must be {KEYS[key]}, such as {{\"x86_64\": {{\"512\": \"t3a.nano\"}}}}; "
                               "one table now maps each arch and memoryMiB to a type (allowOtherSizes is gone)")
        return table
    problems = []
    for arch, sizes in value.items():
        if arch not in ARCHES:
            problems.append(f"unknown arch {arch}; allowed: {', '.join(ARCHES)}")
            continue
        for size, itype in sizes.items():
            where = f"{arch}.{size}={itype}"
            if not str(size).isdigit() or not isinstance(itype, str) \
                    or not re.match(r"^[a-z0-9]+\.[a-z0-9]+$", itype):
                problems.append(f"{where}: needs a size in MiB and a type such as t3.micro")
                continue
            known = KNOWN_TYPES.get(itype)
            type_arch = known[0] if known else ("aarch64" if _ARM_FAMILY.match(itype) else "x86_64")
            if type_arch != arch:
                problems.append(f"{where}: {itype} is not an {arch} type")
            elif known and known[1] != int(size):
                problems.append(f"{where}: {itype} has {known[1]} MiB, not {size}")
            else:
                table[arch][int(size)] = itype
    if problems:
        r.bad(key, r.raw[key], "; ".join(problems))
    return table


def _is_cidr(text: str) -> bool:
    try:
        ipaddress.ip_network(text, strict=True)
    except ValueError:
        return False
    return True


def _parse_hosts(r: _Reader) -> tuple[HostEntry, ...]:
    if not r.has("hosts"):
        return ()
    value = r._structured("hosts")
    if not isinstance(value, list) or not value:
        if value is not None:
            r.bad("hosts", r.raw["hosts"], "must be a non-empty list of {name, address, user, arch, port}")
        return ()
    hosts: list[HostEntry] = []
    for i, item in enumerate(value):
        where = f"hosts[{i}]"
        if not isinstance(item, dict):
            r.problems.append(f"{NAMESPACE}:{where} must be an object {{name, address, user, arch, port}}")
            continue
        unknown = sorted(set(item) - {"name", "address", "user", "arch", "port"})
        missing = [k for k in ("name", "address", "user", "arch") if not item.get(k)]
        if unknown or missing:
            r.problems.append(f"{NAMESPACE}:{where}: " + "; ".join(
                ([f"unknown field(s) {', '.join(unknown)}"] if unknown else [])
                + ([f"missing {', '.join(missing)}"] if missing else [])))
            continue
        name, address, user, arch, port = (item["name"], item["address"], item["user"], item["arch"],
                                           item.get("port", 22))
        errs = []
        if not isinstance(name, str) or not _NAME.match(name):
            errs.append(f"name {name!r} must be lowercase letters, digits and -")
        if not isinstance(address, str) or not _HOSTNAME.match(address):
            errs.append(f"address {address!r} is not a host name or IP address")
        if not isinstance(user, str) or not _USER.match(user):
            errs.append(f"user {user!r} is not a Linux user name")
        if arch not in ARCHES:
            errs.append(f"arch {arch!r} must be one of {', '.join(ARCHES)}")
        if not isinstance(port, int) or not 1 <= port <= 65535:
            errs.append(f"port {port!r} must be a whole number from 1 to 65535")
        if errs:
            r.problems.append(f"{NAMESPACE}:{where}: " + "; ".join(errs))
            continue
        hosts.append(HostEntry(name=name, address=address, user=user, arch=arch, port=port))
    names = [h.name for h in hosts]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        r.problems.append(f"{NAMESPACE}:hosts: name(s) used twice: {', '.join(dupes)}")
    return tuple(hosts)


def parse(raw: Mapping[str, Any], *, project: str, stack: str, now: datetime,
          has_ssh_private_key: bool = False) -> FleetSpec:
    """Validate raw stack config (keys without the namespace) into a FleetSpec.

    Raises ConfigError listing every problem found.
    """
    r = _Reader(raw)
    for key in raw:
        if key == "allowOtherSizes":
            r.problems.append(f"{NAMESPACE}:allowOtherSizes is gone: memoryMiB picks the size, and instanceTypes "
                              "maps each arch and size to its type; remove the key")
        elif key not in KEYS:
            close = difflib.get_close_matches(key, KEYS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(KEYS)}"
            r.problems.append(f"{NAMESPACE}:{key} is not a known key{hint}")

    backend = r.choice("backend", BACKENDS, "libvirt")
    hosts = _parse_hosts(r)
    default_arches = tuple(a for a in ARCHES if any(h.arch == a for h in hosts)) if backend == "hosts" else ARCHES
    arches = r.str_list("arches", default_arches or ARCHES, ARCHES)
    distros = r.str_list("distros", DEFAULT_DISTROS, DISTROS)
    repetitions = r.integer("repetitions", 1, 20, 1)
    versions = r.str_map("versions", DISTROS, {}, check=lambda v: bool(_VERSION.match(v)))
    instance_types = _parse_instance_types(r)
    memory_sizes = _parse_memory(r, backend)
    images = r.str_map("images", ARCHES, DEFAULT_IMAGES, check=lambda v: bool(v.strip()))
    cidrs = r.str_list("sshAllowedCidrs", (), check=_is_cidr)
    network_cidr = raw.get("libvirtNetworkCidr") or default_network_cidr(project, stack)
    if r.has("libvirtNetworkCidr"):
        try:
            net = ipaddress.ip_network(str(network_cidr), strict=True)
            if net.version != 4 or not net.is_private or not 16 <= net.prefixlen <= 28:
                raise ValueError
        except ValueError:
            r.bad("libvirtNetworkCidr", network_cidr)
            network_cidr = default_network_cidr(project, stack)
    libvirt_uri = str(raw.get("libvirtUri") or "qemu:///system")
    if not re.match(r"^[a-z0-9+]+://", libvirt_uri):
        r.bad("libvirtUri", libvirt_uri)
    host_arch = r.choice("libvirtHostArch", ARCHES, native_arch())
    if backend == "libvirt" and r.has("libvirtHostArch") and libvirt_uri_is_local(libvirt_uri) \
            and host_arch != native_arch():
        r.bad("libvirtHostArch", host_arch, f"libvirtUri {libvirt_uri!r} is this machine, which is {native_arch()}; "
              "leave libvirtHostArch unset, or point libvirtUri at the other host")
    elif backend == "libvirt" and not r.has("libvirtHostArch") and not libvirt_uri_is_local(libvirt_uri):
        r.problems.append(f"{NAMESPACE}:libvirtHostArch is required when libvirtUri ({libvirt_uri!r}) is another "
                          "machine: set it to that machine's arch, x86_64 or aarch64, so native guests get KVM "
                          "and the others emulation")
    pool = str(raw.get("libvirtPool") or "default")
    if not re.match(r"^[A-Za-z0-9_.-]+$", pool):
        r.bad("libvirtPool", pool)
    run_id = str(raw.get("runId") or stack)
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9-]{0,39}$", run_id):
        r.bad("runId", run_id)

    spec_kwargs: dict[str, Any] = dict(
        backend=backend, arches=arches, distros=distros, repetitions=repetitions, versions=versions,
        workload=r.choice("workload", WORKLOADS, "mysql"),
        settle_seconds=r.integer("settleSeconds", 0, SETTLE_SECONDS_MAX, 300),
        sample_interval_seconds=r.integer("sampleIntervalSeconds", 1, SAMPLE_INTERVAL_SECONDS_MAX, 5),
        samples=r.integer("samples", 5, SAMPLES_MAX, 12),
        max_parallel_cells=(r.integer("maxParallelCells", 1, 500, 2) if r.has("maxParallelCells")
                            else (2 if backend == "libvirt" else None)),
        memory_sizes=memory_sizes, fit_headroom_mib=r.integer("fitHeadroomMiB", 0, 4096, DEFAULT_FIT_HEADROOM_MIB),
        disk_gib=r.integer("diskGiB", 8, 1024, 20),
        power_off_after=(backend == "libvirt" if raw.get("powerOffAfter") == "auto"
                         else r.boolean("powerOffAfter", backend == "libvirt")),
        instance_types=instance_types, ssh_allowed_cidrs=cidrs,
        ttl_hours=r.integer("ttlHours", 1, 168, 4), spot=r.boolean("spot", False),
        libvirt_uri=libvirt_uri, libvirt_pool=pool, libvirt_network_cidr=str(network_cidr), images=images,
        libvirt_host_arch=host_arch, hosts=hosts, allow_uninstall=r.boolean("allowUninstall", False),
    )

    # Rules that span keys.
    if backend == "libvirt":
        sweep = [m for m in memory_sizes] if len(memory_sizes) > 1 else [None]
        need = 1 + max(address_slot(a, d, repetitions, m) for a in arches for d in distros for m in sweep)
        if need > guest_capacity(str(network_cidr)):
            r.problems.append(
                f"{NAMESPACE}:libvirtNetworkCidr {network_cidr} has {guest_capacity(str(network_cidr))} guest "
                f"addresses, and these cells need address slots up to {need}: use a larger network, such as a "
                f"/{32 - (need + FIRST_GUEST_OFFSET + 1).bit_length()}"
                + (" (a sweep's repetitions past the first sit far apart: each has a slot for every size)"
                   if len(memory_sizes) > 1 and repetitions > 1 else ""))
    if backend == "aws":
        if not cidrs:
            r.problems.append(f"{NAMESPACE}:sshAllowedCidrs is required for the aws backend: the CIDRs that may "
                              "reach SSH, such as your address/32 (there is no default of 0.0.0.0/0)")
        for arch in arches:
            for size in memory_sizes:
                if size not in instance_types[arch]:
                    known = ", ".join(f"{m} MiB: {t}" for m, t in sorted(instance_types[arch].items()))
                    r.problems.append(
                        f"{NAMESPACE}:memoryMiB {size} has no {arch} AWS instance type (known: {known}); "
                        f"add one with instanceTypes, such as {{\"{arch}\": {{\"{size}\": \"TYPE\"}}}}")
    if backend == "hosts":
        if not hosts:
            r.problems.append(f"{NAMESPACE}:hosts is required for the hosts backend: "
                              "a list of {name, address, user, arch, port}")
        if not has_ssh_private_key:
            r.problems.append(f"{NAMESPACE}:sshPrivateKey is required for the hosts backend: "
                              "pulumi config set --secret sshPrivateKey < ~/.ssh/id_ed25519")
        for arch in arches:
            have = sum(1 for h in hosts if h.arch == arch)
            need = len(distros) * repetitions
            if hosts and have < need:
                r.problems.append(
                    f"{NAMESPACE}:hosts has {have} {arch} host(s) for {need} {arch} cell(s): each cell needs a "
                    "fresh host of its own; add hosts or narrow distros, arches or repetitions")
    else:
        if hosts:
            r.problems.append(f"{NAMESPACE}:hosts is only used by the hosts backend, not {backend}")
        if r.has("allowUninstall"):
            r.problems.append(f"{NAMESPACE}:allowUninstall is only used by the hosts backend, not {backend}: "
                              "the other backends delete the whole machine")

    if r.problems:
        raise ConfigError(r.problems)
    expires = (now.astimezone(UTC) + timedelta(hours=spec_kwargs["ttl_hours"])).replace(second=0,
                                                                                                 microsecond=0)
    return FleetSpec(project=project, stack=stack, run_id=run_id,
                     expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ"), **spec_kwargs)


def raw_from_pulumi() -> tuple[dict[str, Any], bool]:
    """This stack's values in our namespace, and whether sshPrivateKey is set (never its value)."""
    from pulumi.runtime import config as rc

    merged: dict[str, Any] = dict(rc.get_config_env() or {})
    merged.update(rc.CONFIG.get())
    prefix = f"{NAMESPACE}:"
    raw = {k[len(prefix):]: v for k, v in merged.items() if k.startswith(prefix)}
    has_key = raw.pop("sshPrivateKey", None) not in (None, "")
    return raw, has_key


def ssh_private_key() -> Any:
    """The hosts backend's SSH key, as a Pulumi secret Output (its value is never read here)."""
    import pulumi

    return pulumi.Config(NAMESPACE).require_secret("sshPrivateKey")


def load(now: datetime | None = None) -> FleetSpec:
    import pulumi

    raw, has_key = raw_from_pulumi()
    return parse(raw, project=pulumi.get_project(), stack=pulumi.get_stack(),
                 now=now or datetime.now(UTC), has_ssh_private_key=has_key)
