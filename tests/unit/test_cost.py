"""The cost estimate: every per-instance charge, and the CPU credit mode the instances really get."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from components import cost
from components.aws import CPU_CREDITS
from components.config import FleetSpec, parse
from tests.conftest import FleetMocks
from tests.unit.test_program import CI_CONFIG, run_program

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def spec(**raw: str) -> FleetSpec:
    return parse({"backend": "aws", "sshAllowedCidrs": '["198.51.100.7/32"]', "distros": '["bare"]', **raw},
                 project="k8s-footprint", stack="s", now=NOW)


def test_each_instance_pays_its_type_disk_and_one_public_ipv4_address() -> None:
    est = cost.estimate(spec(arches='["x86_64"]'))
    disk = 20 * 0.08 / 730
    assert est["instances"] == 1
    assert est["perHourUsd"] == round(0.0104 + disk + 0.005, 4)
    assert est["publicIpv4PerHourUsd"] == 0.005
    assert est["upToExpiryUsd"] == round((0.0104 + disk + 0.005) * 4, 4)


def test_unlimited_credits_are_priced_as_a_ceiling_per_vcpu_above_the_baseline() -> None:
    est = cost.estimate(spec(repetitions="2"))
    # 2 x t3.micro and 2 x t4g.micro, 2 vCPUs each, 90 % above a 10 % baseline, 0.05 and 0.04 USD per vCPU-hour.
    ceiling = 2 * (2 * 0.9 * 0.05) + 2 * (2 * 0.9 * 0.04)
    assert est["cpuCredits"] == "unlimited"
    assert est["cpuCreditCeilingPerHourUsd"] == pytest.approx(ceiling, abs=1e-4)
    assert est["upToExpiryCeilingUsd"] == pytest.approx((est["perHourUsd"] + ceiling) * 4, abs=1e-3)
    lines = cost.describe(est)
    assert any("public IPv4 0.0200" in line for line in lines)
    assert any(f"surplus CPU credits at most {ceiling:.4f} USD/h" in line for line in lines)


def test_spot_changes_the_instance_price_not_the_address_or_disk() -> None:
    on_demand = cost.estimate(spec(arches='["aarch64"]'))
    spot = cost.estimate(spec(arches='["aarch64"]', spot="true"))
    assert round(on_demand["perHourUsd"] - spot["perHourUsd"], 4) == round(0.0084 - 0.0028, 4)
    assert spot["publicIpv4PerHourUsd"] == on_demand["publicIpv4PerHourUsd"] == 0.005


def test_the_instances_get_the_credit_mode_the_estimate_prices(mocks: FleetMocks) -> None:
    run_program({**CI_CONFIG, "distros": ["bare"]})
    inputs = [i.inputs for i in mocks.of_type("aws:ec2/instance:Instance")]
    assert len(inputs) == 2
    assert all(i["creditSpecification"] == {"cpuCredits": CPU_CREDITS} for i in inputs)
    assert CPU_CREDITS == "unlimited"


def test_every_type_the_size_table_can_pick_has_a_price_and_a_credit_row() -> None:
    from components.config import DEFAULT_INSTANCE_TYPES, KNOWN_TYPES
    types = {t for row in DEFAULT_INSTANCE_TYPES.values() for t in row.values()} | set(KNOWN_TYPES)
    assert types <= set(cost.HOURLY_USD) and types <= set(cost.CREDITS)


def test_a_sweep_pays_each_size_at_its_own_type() -> None:
    est = cost.estimate(spec(arches='["x86_64"]', memoryMiB="[512, 2048]"))
    disk_and_ip = 20 * 0.08 / 730 + 0.005
    assert est["instances"] == 2
    assert est["perHourUsd"] == round(0.0052 + 0.0208 + 2 * disk_and_ip, 4)
    assert est["pricesUnconfirmed"]
