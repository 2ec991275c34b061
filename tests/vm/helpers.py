"""Checks shared by the VM tests."""

from __future__ import annotations

from typing import Any

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
