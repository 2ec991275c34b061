"""Checks shared by the VM tests."""

from __future__ import annotations

from typing import Any

from components.commands import kit_hash
from components.results import stamp
from components.schema import validate_result


def used(result: dict[str, Any], phase: str) -> float:
    return float(result["phases"][phase]["used_mib"]["median"])


def assert_sound(result: dict[str, Any], arch: str, log: str = "") -> None:
    validate_result(result)
    assert result["status"] == "ok", f"{result['errors']}\nkit log tail:\n{log[-3000:]}"
    assert result["arch"] == arch
    assert 900 <= result["mem_total_mib"] <= 1024
    assert 40 <= used(result, "os") <= 400
    assert result["oom_kills"] == 0
    assert result["timings_s"]["bootstrap"] is not None and result["timings_s"]["ready"] is not None
    assert result["timings_s"]["settle"] > 0
    assert result["phases"]["idle"]["samples"] == 5


def harness_stamp(result: dict[str, Any], name: str) -> dict[str, Any]:
    """What the program would stamp (components/results.py:stamp), for the harness's own machine:
    qemu started here with 1 vCPU and 1024 MiB (tests/vm/qemu.py:boot's defaults). A fault run
    says so, so that the report's --exclude-faults needs no file name."""
    doc = stamp(result, kit_hash(), {"backend": "qemu", "memory_mib": 1024, "vcpus": 1})
    if name.startswith("fault-") and "provenance" in doc:
        doc["provenance"]["fault"] = name
    return doc
