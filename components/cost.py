"""An estimate of what an AWS fleet costs per hour and, at most, until the reaper's expiry.

Prices are a dated table, not a live quote: on-demand list prices for Linux in us-east-1 as the
project last recorded them, and typical spot prices, which move by the hour and the zone. Update
PRICES_AS_OF with the table. libvirt and hosts fleets cost nothing here.
"""

from __future__ import annotations

from typing import Any

from components.config import FleetSpec

PRICES_AS_OF = "2025-06, us-east-1, Linux; spot is a typical price and varies"
HOURLY_USD = {  # instance type -> (on-demand, spot)
    "t3.micro": (0.0104, 0.0035),
    "t4g.micro": (0.0084, 0.0028),
    "t3a.micro": (0.0094, 0.0032),
    "t2.micro": (0.0116, 0.0035),
}
GP3_USD_PER_GB_MONTH = 0.08
HOURS_PER_MONTH = 730


def estimate(spec: FleetSpec) -> dict[str, Any]:
    if spec.backend != "aws":
        return {"backend": spec.backend, "perHourUsd": 0.0, "upToExpiryUsd": 0.0, "note": "no cloud cost"}
    per_hour = 0.0
    unknown = []
    for arch in spec.arches:
        itype = spec.instance_types[arch]
        prices = HOURLY_USD.get(itype)
        if prices is None:
            unknown.append(itype)
            continue
        instances = len(spec.distros) * spec.repetitions
        per_hour += instances * (prices[1] if spec.spot else prices[0])
        per_hour += instances * spec.disk_gib * GP3_USD_PER_GB_MONTH / HOURS_PER_MONTH
    result: dict[str, Any] = {
        "backend": "aws",
        "market": "spot" if spec.spot else "on-demand",
        "perHourUsd": round(per_hour, 4),
        "upToExpiryUsd": round(per_hour * spec.ttl_hours, 4),
        "pricesAsOf": PRICES_AS_OF,
        "note": "an estimate: instance-hours x the dated price table, plus gp3 storage; the fleet usually ends "
                "well before its expiry",
    }
    if unknown:
        result["unpriced"] = sorted(set(unknown))
    return result
