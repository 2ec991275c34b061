"""The matrix of cells, and the exact commands each cell runs."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from components import plan
from components.cells import expand, plan_lines
from components.commands import BenchPlan, cell_commands, kit_args, kit_hash, remote_kit_path
from components.config import native_arch, parse
from components.results import ResultError, parse_result, read_result, summary_table
from tests.conftest import fake_result

NOW = datetime(2026, 11, 22, tzinfo=UTC)


def test_cells_are_arch_x_distro_x_repetition_named_arch_distro_n() -> None:
    s = parse({"repetitions": "2", "distros": '["bare", "k3s"]'}, project="p", stack="s", now=NOW)
    cells = expand(s)
    assert [c.name for c in cells] == [
        "x86_64-bare-1", "aarch64-bare-1", "x86_64-k3s-1", "aarch64-k3s-1",
        "x86_64-bare-2", "aarch64-bare-2", "x86_64-k3s-2", "aarch64-k3s-2",
    ]
    assert {(c.arch, c.distro, c.repetition) for c in cells} == {
        (a, d, r) for a in ("x86_64", "aarch64") for d in ("bare", "k3s") for r in (1, 2)}


def test_max_parallel_cells_chains_each_cell_after_the_one_before_it_in_its_lane() -> None:
    s = parse({"distros": '["bare", "docker", "k3s"]', "maxParallelCells": "2", "libvirtHostArch": native_arch()},
              project="p", stack="s", now=NOW)
    cells = expand(s)
    by_lane: dict[int | None, list[str]] = {}
    for c in cells:
        assert c.previous == (by_lane[c.lane][-1] if by_lane.get(c.lane) else None), c.name
        by_lane.setdefault(c.lane, []).append(c.name)
    assert set(by_lane) == {0, 1} and sum(map(len, by_lane.values())) == 6


def test_lanes_are_balanced_by_expected_time_not_by_arch() -> None:
    """The old i % 2 rule put every emulated aarch64 cell in one lane, one after another."""
    s = parse({"maxParallelCells": "2", "libvirtHostArch": "x86_64"}, project="p", stack="s", now=NOW)
    cells = expand(s)
    loads: dict[int | None, int] = {}
    for c in cells:
        loads[c.lane] = loads.get(c.lane, 0) + plan.cell_seconds(s, c.arch, c.distro)
        assert plan.emulated(s, c.arch) == (c.arch == "aarch64")
    by_arch_lane = sum(plan.cell_seconds(s, "aarch64", d) for d in s.distros)  # the old lane 2
    assert max(loads.values()) < by_arch_lane
    assert {c.lane for c in cells if c.arch == "aarch64"} == {0, 1}
    assert max(loads.values()) - min(loads.values()) <= max(plan.cell_seconds(s, c.arch, c.distro) for c in cells)


def test_the_plan_shows_each_lane_and_the_expected_wall_time() -> None:
    s = parse({"maxParallelCells": "2", "libvirtHostArch": "x86_64", "distros": '["bare"]'}, project="p",
              stack="s", now=NOW)
    lines = plan_lines(s)
    emulated = plan.cell_seconds(s, "aarch64", "bare")
    assert emulated > plan.cell_seconds(s, "x86_64", "bare")
    assert lines[-1] == f"expected wall time: about {emulated / 60:.0f} min (an estimate; see components/plan.py)"
    assert any("aarch64-bare-1" in line and "(emulated)" in line for line in lines)


def test_emulation_stretches_boot_and_install_but_not_the_sampling_windows() -> None:
    s = parse({"libvirtHostArch": "x86_64", "settleSeconds": "300", "samples": "12",
               "sampleIntervalSeconds": "5"}, project="p", stack="s", now=NOW)
    sampling = 60 + 60 + 300 + 60 + 300 + 60  # os, idle and workload windows
    native, slow = plan.cell_seconds(s, "x86_64", "k3s"), plan.cell_seconds(s, "aarch64", "k3s")
    assert native - sampling == plan.BOOT_S + plan.INSTALL_S["k3s"] + plan.READY_S["k3s"] + plan.WORKLOAD_S
    assert slow - sampling == round((native - sampling) * plan.EMULATION_FACTOR)


def test_no_limit_means_no_chaining() -> None:
    s = parse({"backend": "aws", "sshAllowedCidrs": '["203.0.113.7/32"]'}, project="p", stack="s", now=NOW)
    assert all(c.previous is None and c.lane is None for c in expand(s))


def test_hosts_backend_gives_each_cell_its_own_host_of_the_right_arch() -> None:
    hosts = [{"name": f"h{i}", "address": f"192.0.2.{i}", "user": "u", "arch": a}
             for i, a in enumerate(["aarch64", "x86_64", "aarch64", "x86_64"])]
    s = parse({"backend": "hosts", "hosts": __import__("json").dumps(hosts), "distros": '["bare", "k3s"]'},
              project="p", stack="s", now=NOW, has_ssh_private_key=True)
    cells = expand(s)
    assert {c.name: c.host.name for c in cells if c.host} == {
        "x86_64-bare-1": "h1", "aarch64-bare-1": "h0", "x86_64-k3s-1": "h3", "aarch64-k3s-1": "h2"}


def test_commands_call_the_uploaded_kit_with_every_option_quoted() -> None:
    plan = BenchPlan(cell="aarch64-k3s-1", distro="k3s", version="v1.31.4+k3s1", settle_s=300, interval_s=5,
                     samples=12)
    cmds = cell_commands(plan, "abc123")
    assert cmds.kit_path == remote_kit_path("abc123") == ".k8s-footprint/kit-abc123"
    boot = shlex.split("timeout " + cmds.bootstrap.split("; timeout ", 1)[1])
    assert boot[:6] == ["timeout", str(plan.bootstrap_timeout_s()), "$S", "sh", "-c", "$K"]
    assert boot[6:] == ["k8sf-kit", "$HOME/.k8s-footprint/kit-abc123/guest", "abc123", "bootstrap", "k3s",
                        "--version", "v1.31.4+k3s1", "--settle", "60", "--interval", "5", "--samples", "12",
                        "--install-timeout", "1800", "--ready-timeout", "900"]
    assert kit_args(cmds.benchmark) == ["benchmark", "k3s", "--settle", "300", "--interval", "5", "--samples", "12",
                                        "--workload", "mysql", "--image", "mysql:8.4", "--workload-timeout", "900",
                                        "--cell", "aarch64-k3s-1"]
    assert "poweroff" not in cmds.benchmark


def test_a_hosts_stack_that_measures_preinstalled_distros_tells_the_kits_bootstrap_and_only_then() -> None:
    hosts = [{"name": "h0", "address": "192.0.2.1", "user": "u", "arch": "x86_64"}]
    base = {"backend": "hosts", "hosts": __import__("json").dumps(hosts), "distros": '["k3s"]', "arches": '["x86_64"]'}
    for extra, want in (({}, None), ({"measurePreinstalled": "true"}, "measure")):
        s = parse({**base, **extra}, project="p", stack="s", now=NOW, has_ssh_private_key=True)
        cmds = cell_commands(BenchPlan.for_cell(s, expand(s)[0]), "abc123")
        args = kit_args(cmds.bootstrap)
        if want is None:  # the kit's default, refuse; left out, so the commands of existing stacks stay the same
            assert "--preinstalled" not in args
        else:
            assert args[args.index("--preinstalled") + 1] == want
        assert "--preinstalled" not in kit_args(cmds.benchmark)


def test_every_remote_step_is_bounded_by_timeout() -> None:
    plan = BenchPlan(cell="x86_64-docker-1", distro="docker", settle_s=300, interval_s=5, samples=12,
                     image_tar="/var/tmp/mysql.tar")
    cmds = cell_commands(plan, "d")
    # a re-run's clean slate (780), idle, the workload with its import (900), the margin
    assert plan.benchmark_timeout_s() == (780 + 300 + 60 + 60) + (900 + 30 + 300 + 60 + 60 + 900) + 300
    for command in (cmds.bootstrap, cmds.benchmark, cmds.uninstall):
        assert " timeout " in command


def test_power_off_after_schedules_shutdown_only_after_a_result() -> None:
    cmds = cell_commands(BenchPlan(cell="c", distro="bare", power_off_after=True), "d")
    # The else of `if [ $rc -ne 0 ]` (components/commands.py:no_result_guard): a real result only.
    assert cmds.benchmark.endswith(
        "; else $S systemd-run --on-active=5 --unit=k8sf-poweroff /bin/systemctl poweroff "
        ">/dev/null 2>&1 || :; fi; exit 0")


def test_kit_hash_changes_with_the_kit(tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "k8sf").write_text("a")
    first = kit_hash(tmp_path)
    (tmp_path / "k8sf").write_text("b")
    assert kit_hash(tmp_path) != first
    assert len(kit_hash()) == 16


def test_parse_result_accepts_a_kit_result_after_noise() -> None:
    doc = fake_result("x86_64-k3s-1", "k3s", "oom")
    parsed = parse_result("some log line\n" + __import__("json").dumps(doc) + "\n", "x86_64-k3s-1")
    assert parsed["status"] == "oom"


def test_read_result_rejects_what_is_not_a_result() -> None:
    import json

    import pytest

    with pytest.raises(ResultError, match="printed no JSON result"):
        read_result("bash: k8sf: not found", "c")
    with pytest.raises(ResultError, match="expected a k8s-footprint/result/v1"):
        read_result(json.dumps({"schema": "other"}), "c")
    with pytest.raises(ResultError, match="status 'meh'"):
        read_result(json.dumps({**fake_result("c", "bare"), "status": "meh"}), "c")
    with pytest.raises(ResultError, match="for cell 'other'"):
        read_result(json.dumps(fake_result("other", "bare")), "c")


def test_parse_result_turns_what_is_not_a_result_into_that_cells_no_result() -> None:
    import json

    from components.schema import validate_result

    for out, why in (("bash: k8sf: not found", "printed no JSON result"),
                     (json.dumps({"schema": "other"}), "expected a k8s-footprint/result/v1"),
                     (json.dumps({**fake_result("c", "bare"), "status": "meh"}), "status 'meh'"),
                     (json.dumps(fake_result("other", "bare")), "for cell 'other'"), ("", "printed no JSON")):
        doc = parse_result(out, "c")
        assert (doc["status"], doc["cell"], doc["schema"]) == ("no_result", "c", "k8s-footprint/result/v2")
        assert why in doc["error"]
        validate_result(doc)


def test_summary_table_has_a_row_per_cell_with_medians() -> None:
    table = summary_table({"x86_64-k3s-1": fake_result("x86_64-k3s-1", "k3s"),
                           "x86_64-bare-1": fake_result("x86_64-bare-1", "bare", "install_failed")})
    lines = table.splitlines()
    assert lines[0].startswith("| cell | status | os MiB | idle MiB | workload MiB |")
    assert lines[2] == "| x86_64-bare-1 | install_failed | 300 | 300 | - | - | 0 |"
    assert lines[3] == "| x86_64-k3s-1 | ok | 300 | 300 | - | 12 ms / - | 0 |"


def test_cost_estimate_for_the_ci_fleet_from_the_dated_price_table() -> None:
    from components.cost import estimate

    base = {"backend": "aws", "sshAllowedCidrs": '["203.0.113.7/32"]', "ttlHours": "3"}
    on_demand = estimate(parse(base, project="p", stack="s", now=NOW))
    storage = 12 * 20 * 0.08 / 730
    ipv4 = 12 * 0.005  # one public IPv4 address per instance
    assert on_demand["perHourUsd"] == round(6 * 0.0104 + 6 * 0.0084 + storage + ipv4, 4)
    assert on_demand["upToExpiryUsd"] == round(3 * (6 * 0.0104 + 6 * 0.0084 + storage + ipv4), 4)
    spot = estimate(parse({**base, "spot": "true"}, project="p", stack="s", now=NOW))
    assert spot["market"] == "spot" and spot["perHourUsd"] < on_demand["perHourUsd"]
    assert estimate(parse({}, project="p", stack="s", now=NOW))["perHourUsd"] == 0.0
