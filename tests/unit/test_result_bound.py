"""A cell's result stays bounded (issue 13): at most 240 points a phase (the kit's stats.awk) and at
most 64 KiB in the stack output (components/results.py thins the series further), for the longest
sampling window the config allows."""

from __future__ import annotations

import copy
import json
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

from components.commands import KIT_DIR
from components.config import SAMPLE_INTERVAL_SECONDS_MAX, SAMPLES_MAX, SETTLE_SECONDS_MAX
from components.results import (
    CELL_OUTPUT_MAX_BYTES,
    SERIES_MAX_POINTS,
    bound_result,
    evenly,
    output_size,
    parse_result,
)
from components.schema import validate_result
from tests.unit.test_statuses import v2_result

LIB = KIT_DIR / "lib"
T0_MS = 1_800_000_000_000  # the install's start
LONG = "x" * 300  # the kit cuts errors and details to 300 characters
# Long cgroup names and ten processes with the longest names a comm holds (15 characters).
CGROUPS = ("kubepods", "k3s.service", "containerd.service", "snap.microk8s.daemon-kubelite.service",
           "docker-containers")


def awk(script: str, stdin: str, *variables: str, files: tuple[str, ...] = ()) -> str:
    """The kit's awk script on stdin (or on files), as the kit runs it."""
    args = [a for v in variables for a in ("-v", v)]
    return subprocess.run(["awk", *args, "-f", str(LIB / script), *files], input=stdin, capture_output=True,
                          text=True, check=True, timeout=120).stdout


def worst_phase_tsv(start_ms: int, probes: bool) -> str:
    """SAMPLES_MAX samples SAMPLE_INTERVAL_SECONDS_MAX apart, on a 64 GiB machine, every figure as
    wide as it gets (six digits of KiB and more, PSI near 100 %, probes near their 10 s limit, every
    other one failed with a long error)."""
    up0 = 1_000_000.0
    lines = [f"clock\t{start_ms}\t{up0:.2f}\n"]
    for i in range(SAMPLES_MAX):
        kib = 67_000_000 - i * 37
        lines.append("sample\n")
        lines.append(f"mem\t67108864\t{kib}\t{67108864 - kib}\t{kib - 1111}\t123457\t99999\t99.{i % 100:02d}\t"
                     f"{kib - 3333}\t{kib - 7777}\t{up0 + i * SAMPLE_INTERVAL_SECONDS_MAX + 0.37:.2f}\n")
        lines += [f"cg\t{g}\t{kib - 11 * j}\t{kib - 13 * j}\t{kib - 17 * j}\n" for j, g in enumerate(CGROUPS)]
        if i == SAMPLES_MAX - 1:
            lines += [f"proc\tprocess-name-{j:02d}\t{9_999_999 - j}\n" for j in range(10)]
        if probes:
            at = start_ms + i * SAMPLE_INTERVAL_SECONDS_MAX * 1000
            lines.append(f"probe\t1\t9999\t{at}\t\n" if i % 2 else
                         f"probe\t0\t10000\t{at}\tcurl: (28) Operation timed out after 10000 ms {LONG}\n")
    return "".join(lines)


def longest_window_result() -> dict[str, Any]:
    """A v2 result as the kit prints it for a k3s cell with the longest window, made by the kit's
    own awk (stats.awk, api.awk, events.awk) from synthetic samples."""
    window_ms = (SETTLE_SECONDS_MAX + SAMPLES_MAX * SAMPLE_INTERVAL_SECONDS_MAX) * 1000
    starts = {"os": T0_MS - window_ms, "idle": T0_MS + 1000 * 1000 + SETTLE_SECONDS_MAX * 1000}
    starts["workload"] = starts["idle"] + window_ms
    tsv = {p: worst_phase_tsv(s, probes=p != "os") for p, s in starts.items()}
    phases = {p: json.loads(awk("stats.awk", tsv[p], f"interval={SAMPLE_INTERVAL_SECONDS_MAX}", f"t0_ms={T0_MS}",
                                f"probing={'' if p == 'os' else 1}"))
              for p in starts}
    with tempfile.TemporaryDirectory() as d:
        for p in ("idle", "workload"):
            (Path(d) / p).write_text(tsv[p])
        api = json.loads(awk("api.awk", "", "probe=GET /readyz over HTTPS with the admin kubeconfig's credentials",
                             files=("phase=idle", f"{d}/idle", "phase=workload", f"{d}/workload")))
    events = "".join([f"{T0_MS}\tinstall_start\t\n", f"{T0_MS + 600_000}\tinstall_end\t\n",
                      f"{T0_MS + 900_000}\tready\t\n",
                      f"{starts['idle'] + window_ms - 1000}\tworkload_deployed\tmysql:8.4\n",
                      *(f"{starts['workload'] + 1000 * i}\toom_kill\t{400000 + i} (process-name-{i % 10:02d}) "
                        f"in a memory cgroup\n" for i in range(300)),
                      f"{starts['idle']}\tapi_first_failure\tcurl: (28) {'x' * 300}\n",
                      f"{starts['workload'] + window_ms}\tapi_last_failure\tcurl: (28) {'x' * 300}\n"])
    events_sorted = "".join(sorted(events.splitlines(keepends=True), key=lambda line: int(line.split("\t")[0])))
    doc = v2_result(cell="aarch64-microk8s-noha-65536m-20", status="api_unresponsive",
                    failures=[{"status": "api_unresponsive", "phase": "idle", "at": starts["idle"] // 1000,
                               "error": "API: 360 of 720 probes of /readyz failed in the idle phase"}])
    doc.update(phases=phases, api=api, mem_total_mib=65536.0, kit_version="0.3.0",
               events=json.loads(awk("events.awk", events_sorted, f"t0_ms={T0_MS}", files=(str(KIT_DIR / "events"),
                                                                                             "-"))),
               errors=[f["error"] for f in doc["failures"]])
    return doc



def series_lengths(doc: dict[str, Any]) -> dict[str, set[int]]:
    return {p: {len(v) for v in phase["series"].values()} for p, phase in doc["phases"].items() if phase}


def test_the_longest_window_the_config_allows_stays_within_both_bounds() -> None:
    doc = longest_window_result()
    assert {p: phase["samples"] for p, phase in doc["phases"].items()} == {p: SAMPLES_MAX for p in doc["phases"]}
    # The kit's bound: 240 points a phase, whatever the window, so its stdout is bounded too.
    assert series_lengths(doc) == {p: {SERIES_MAX_POINTS} for p in doc["phases"]}
    assert len([e for e in doc["events"] if e["kind"] == "oom_kill"]) == 100  # of 300 kills
    validate_result(doc)
    kit_size = output_size(doc)
    # The stack output's bound: whatever the kit printed, the cell's result fits 64 KiB.
    kept = parse_result(json.dumps(doc, separators=(",", ":")), doc["cell"])
    validate_result(kept)
    assert output_size(kept) <= CELL_OUTPUT_MAX_BYTES
    lengths = series_lengths(kept)
    assert all(len(n) == 1 and n.pop() <= SERIES_MAX_POINTS for n in lengths.values())
    # At its widest the kit's 240 points a phase make about 69 KB: the program thinned them, and says so.
    assert kit_size > CELL_OUTPUT_MAX_BYTES
    assert kept["series_thinned_to"] == len(kept["phases"]["os"]["series"]["t_s"]) < SERIES_MAX_POINTS


def test_a_result_over_64_kib_is_thinned_evenly_keeping_first_and_last_and_says_so() -> None:
    doc = longest_window_result()
    doc["errors"] = [f"error {i}: {'y' * 200}" for i in range(120)]  # about 25 KiB more
    assert output_size(doc) > CELL_OUTPUT_MAX_BYTES
    kept = bound_result(copy.deepcopy(doc))
    n = kept["series_thinned_to"]
    assert 2 < n < SERIES_MAX_POINTS and output_size(kept) <= CELL_OUTPUT_MAX_BYTES
    # The most points that fit: one more would not.
    bigger = bound_result(copy.deepcopy(doc), limit=output_size(kept) - 1)
    assert bigger["series_thinned_to"] < n
    for name, phase in kept["phases"].items():
        before, after = doc["phases"][name]["series"], phase["series"]
        assert set(after) == set(before) and {len(v) for v in after.values()} == {n}
        assert after["t_s"][0] == before["t_s"][0] and after["t_s"][-1] == before["t_s"][-1]
        assert after["t_s"] == [before["t_s"][i] for i in evenly(SERIES_MAX_POINTS, n)]
        assert {k: v for k, v in phase.items() if k != "series"} == {
            k: v for k, v in doc["phases"][name].items() if k != "series"}
    validate_result(kept)


def test_a_result_that_two_points_cannot_bring_under_64_kib_loses_its_series_and_says_so() -> None:
    doc = longest_window_result()
    doc["errors"] = [f"error {i}: {'z' * 1000}" for i in range(70)]
    kept = bound_result(doc)
    assert kept["series_thinned_to"] == 0 and all("series" not in p for p in kept["phases"].values())
    validate_result(kept)


def test_a_result_within_the_bound_is_left_as_it_is() -> None:
    doc = v2_result()
    assert bound_result(doc) is doc and "series_thinned_to" not in doc


@pytest.mark.parametrize(("n", "m"), [(721, 240), (241, 240), (240, 240), (17, 5), (720, 2), (9, 100)])
def test_the_programs_choice_of_points_is_the_kits(n: int, m: int) -> None:
    # Sample i reads i KiB used (rounded to 0.1 MiB, so i * 1024): the points name the samples picked.
    tsv = "clock\t0\t0\n" + "".join(f"sample\nmem\t9999999\t{i * 1024}\t1\t1\t1\t1\t-\t1\t1\t{i}\n"
                                      for i in range(n))
    phase = json.loads(awk("stats.awk", tsv, "interval=5", "t0_ms=0", f"maxpoints={m}"))
    assert [round(v) for v in phase["series"]["used_mib"]] == evenly(n, m)
