"""An estimate of what an AWS fleet costs per hour and, at most, until the reaper's expiry.

Prices are a dated table, not a live quote: on-demand list prices for Linux in us-east-1 as the
project last recorded them, and typical spot prices, which move by the hour and the zone. Update
PRICES_AS_OF with the table. libvirt and hosts fleets cost nothing here.

Per instance and hour: the instance, its gp3 root disk, and its public IPv4 address (AWS charges
every public IPv4 address since February 2024). CPU credits are unlimited (components/aws.py
says why), so an instance that stays above its baseline also pays surplus credits: the estimate
gives that as a ceiling, every vCPU busy for the whole hour, apart from the expected cost.
"""

from __future__ import annotations

from typing import Any

from components.aws import CPU_CREDITS
from components.config import FleetSpec

PRICES_AS_OF = "2025-06, us-east-1, Linux; spot is a typical price and varies"
# Every type of config.KNOWN_TYPES, so every type the default table or a checked override can pick
# has a price (tests/unit/test_cost.py holds that). On-demand: AWS's us-east-1 Linux list prices,
# which have stood unchanged for these types since their launch; the nano and small rows were
# added 2026-11-30 from that list as remembered, not re-read from AWS's price list API (nothing
# here reaches it): confirm them with `aws pricing get-products` before quoting a bill.
# Spot: the micro rows are typical prices seen; the nano and small rows are NOT observed, only
# scaled from the micro row by the on-demand ratio, so treat them as a guess.
HOURLY_USD = {  # instance type -> (on-demand, spot)
    "t3.nano": (0.0052, 0.0018),
    "t3.micro": (0.0104, 0.0035),
    "t3.small": (0.0208, 0.0070),
    "t4g.nano": (0.0042, 0.0014),
    "t4g.micro": (0.0084, 0.0028),
    "t4g.small": (0.0168, 0.0056),
    "t3a.nano": (0.0047, 0.0016),
    "t3a.micro": (0.0094, 0.0032),
    "t3a.small": (0.0188, 0.0064),
    "t2.nano": (0.0058, 0.0017),
    "t2.micro": (0.0116, 0.0035),
    "t2.small": (0.0230, 0.0069),
}
UNCONFIRMED = ("spot prices of the nano and small types (scaled from micro, not observed)",
               "on-demand prices of the nano and small types (AWS's list as remembered, not re-read)")
# instance type -> (vCPUs, baseline share of each vCPU, surplus credit USD per vCPU-hour, Linux).
# Baselines are AWS's burstable table: nano 5 %, micro 10 %, small 20 % per vCPU.
CREDITS = {
    "t3.nano": (2, 0.05, 0.05),
    "t3.micro": (2, 0.10, 0.05),
    "t3.small": (2, 0.20, 0.05),
    "t4g.nano": (2, 0.05, 0.04),
    "t4g.micro": (2, 0.10, 0.04),
    "t4g.small": (2, 0.20, 0.04),
    "t3a.nano": (2, 0.05, 0.05),
    "t3a.micro": (2, 0.10, 0.05),
    "t3a.small": (2, 0.20, 0.05),
    "t2.nano": (1, 0.05, 0.05),
    "t2.micro": (1, 0.10, 0.05),
    "t2.small": (1, 0.20, 0.05),
}
GP3_USD_PER_GB_MONTH = 0.08
PUBLIC_IPV4_USD_PER_HOUR = 0.005  # per address, in use or idle
HOURS_PER_MONTH = 730


def instance_hourly_usd(itype: str, spot: bool, disk_gib: int) -> float | None:
    """One instance's expected cost per hour: instance, root disk, public IPv4. None if unpriced."""
    prices = HOURLY_USD.get(itype)
    if prices is None:
        return None
    return (prices[1] if spot else prices[0]) + disk_gib * GP3_USD_PER_GB_MONTH / HOURS_PER_MONTH \
        + PUBLIC_IPV4_USD_PER_HOUR


def surplus_ceiling_usd(itype: str) -> float:
    """At most this per hour in surplus CPU credits: every vCPU busy above its baseline."""
    if CPU_CREDITS != "unlimited" or itype not in CREDITS:
        return 0.0
    vcpus, baseline, price = CREDITS[itype]
    return vcpus * (1 - baseline) * price


def estimate(spec: FleetSpec) -> dict[str, Any]:
    if spec.backend != "aws":
        return {"backend": spec.backend, "perHourUsd": 0.0, "upToExpiryUsd": 0.0, "note": "no cloud cost"}
    per_hour = ceiling = ipv4 = 0.0
    count = 0
    unknown = []
    for arch, mib in ((a, m) for a in spec.arches for m in spec.memory_sizes):
        itype = spec.instance_type(arch, mib)
        hourly = instance_hourly_usd(itype, spec.spot, spec.disk_gib)
        if hourly is None:
            unknown.append(itype)
            continue
        instances = len(spec.distros) * spec.repetitions
        count += instances
        per_hour += instances * hourly
        ipv4 += instances * PUBLIC_IPV4_USD_PER_HOUR
        ceiling += instances * surplus_ceiling_usd(itype)
    result: dict[str, Any] = {
        "backend": "aws",
        "market": "spot" if spec.spot else "on-demand",
        "instances": count,
        "cpuCredits": CPU_CREDITS,
        "perHourUsd": round(per_hour, 4),
        "publicIpv4PerHourUsd": round(ipv4, 4),
        "cpuCreditCeilingPerHourUsd": round(ceiling, 4),
        "upToExpiryUsd": round(per_hour * spec.ttl_hours, 4),
        "upToExpiryCeilingUsd": round((per_hour + ceiling) * spec.ttl_hours, 4),
        "pricesAsOf": PRICES_AS_OF,
        "pricesUnconfirmed": list(UNCONFIRMED),
        "note": "an estimate: instance-hours x the dated price table, plus gp3 storage and one public IPv4 "
                "address per instance; surplus CPU credits only in the ceiling. The fleet usually ends well "
                "before its expiry",
    }
    if unknown:
        result["unpriced"] = sorted(set(unknown))
    return result


def describe(est: dict[str, Any]) -> list[str]:
    """The estimate as lines for a terminal or a CI log."""
    if est.get("backend") != "aws":
        return [f"cost: {est.get('backend')} backend, {est.get('note', 'no cloud cost')}"]
    lines = [
        f"cost: {est['instances']} instance(s), {est['market']}, CPU credits {est['cpuCredits']} "
        f"(prices {est['pricesAsOf']})",
        f"cost: {est['perHourUsd']:.4f} USD/h expected, of which public IPv4 {est['publicIpv4PerHourUsd']:.4f}; "
        f"surplus CPU credits at most {est['cpuCreditCeilingPerHourUsd']:.4f} USD/h more",
        f"cost: until expiry at most {est['upToExpiryUsd']:.4f} USD, "
        f"{est['upToExpiryCeilingUsd']:.4f} with every vCPU busy throughout",
    ]
    if est.get("unpriced"):
        lines.append(f"cost: no price for {', '.join(est['unpriced'])}; not counted")
    return lines
