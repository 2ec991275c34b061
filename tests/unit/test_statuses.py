"""The one status table (benchmarks/guest/statuses): the kit, the Python side and the schema agree,
and a v2 result's status follows from its failures."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from components import results
from components.results import FAILURE_RANKING, ResultError, parse_result, read_result, worst_status
from components.schema import result_schema, validate_result
from tests.conftest import fake_result

ORDER = ("install_failed", "not_ready", "api_unresponsive", "oom", "workload_failed")


def test_the_table_ranks_a_dead_api_above_oom_and_a_failed_workload() -> None:
    assert FAILURE_RANKING == ORDER  # the order issue 11 fixed; a change here is a change of meaning


def test_python_and_schema_read_the_same_table() -> None:
    v2 = result_schema("k8s-footprint/result/v2")["$defs"]
    assert v2["result"]["properties"]["status"]["enum"] == ["ok", *FAILURE_RANKING]
    assert v2["failure"]["properties"]["status"]["enum"] == list(FAILURE_RANKING)
    assert ("ok", *FAILURE_RANKING) == results.STATUSES
    assert ("ok", *FAILURE_RANKING, "no_result") == results.STATUSES_V2
    # v1 results name the same statuses, in any order.
    v1 = result_schema("k8s-footprint/result/v1")["properties"]["status"]["enum"]
    assert sorted(v1) == sorted(results.STATUSES)


def test_the_schema_and_the_kit_read_the_one_list_of_event_kinds() -> None:
    v2 = result_schema("k8s-footprint/result/v2")["$defs"]
    assert v2["event"]["properties"]["kind"]["enum"] == list(results.EVENT_KINDS)
    assert results.EVENT_KINDS == ("install_start", "install_end", "ready", "workload_deployed", "workload_ready",
                                   "oom_kill", "api_first_failure", "api_last_failure")
    k8sf = (results.STATUS_TABLE.parent / "k8sf").read_text()
    assert '-f "$KIT_DIR/lib/events.awk" "$KIT_DIR/events"' in k8sf
    assert results.EVENT_KINDS_FILE.parent == results.STATUS_TABLE.parent  # uploaded with the kit


def test_the_kit_reads_the_table_it_ships() -> None:
    kit_sh = (results.STATUS_TABLE.parent / "lib" / "status.sh").read_text()
    assert '"$KIT_DIR/statuses"' in kit_sh
    assert results.STATUS_TABLE.parent.name == "guest"  # uploaded with the kit


@pytest.mark.parametrize(("failures", "status"), [
    ([], "ok"),
    (["workload_failed"], "workload_failed"),
    (["workload_failed", "oom"], "oom"),
    (["workload_failed", "oom", "api_unresponsive"], "api_unresponsive"),
    (["api_unresponsive", "not_ready"], "not_ready"),
    (["oom", "install_failed", "not_ready"], "install_failed"),
])
def test_worst_status_is_the_highest_ranked_failure(failures: list[str], status: str) -> None:
    assert worst_status(failures) == status


def test_worst_status_refuses_what_is_not_a_failure() -> None:
    with pytest.raises(ValueError, match="not a failure status: ok"):
        worst_status(["ok"])


def v2_result(cell: str = "x86_64-k3s-1", status: str = "ok", failures: list[dict[str, Any]] | None = None
              ) -> dict[str, Any]:
    r = fake_result(cell, "k3s", status)
    r["schema"] = "k8s-footprint/result/v2"
    r["failures"] = failures or []
    phase = {"probes": 5, "failed": 0, "latency_ms": {"p50": 12, "p95": 20, "max": 20},
             "per_sample_ms": [12, 12, 11, 20, 13], "first_error": None}
    r["api"] = {"probe": "GET /readyz", "idle": phase, "workload": None, "failed_probes": 0, "first_failure": None,
                "longest_outage_s": None, "recovered": None}
    r["oom_kills_by_phase"] = {"bootstrap": 0, "idle": 0, "workload": None}
    r["clean_slate"] = {"previous_workload": False, "removed": False, "waited_s": 0, "memory_stable": None}
    return r


def failure(status: str, at: int, phase: str = "workload") -> dict[str, Any]:
    return {"status": status, "phase": phase, "at": at, "error": f"{status} happened"}


def test_a_v2_result_whose_status_is_not_its_worst_failure_is_refused() -> None:
    fails = [failure("workload_failed", 10), failure("api_unresponsive", 20)]
    good = v2_result(status="api_unresponsive", failures=fails)
    validate_result(good)
    assert parse_result(json.dumps(good), "x86_64-k3s-1")["status"] == "api_unresponsive"
    bad = copy.deepcopy(good)
    bad["status"] = "workload_failed"  # what the kit before 0.2.0 would have said
    with pytest.raises(ResultError, match="status 'workload_failed' but its failures rank 'api_unresponsive'"):
        read_result(json.dumps(bad), "x86_64-k3s-1")


def test_v1_and_v2_results_both_parse_and_validate() -> None:
    v1 = fake_result("x86_64-k3s-1", "k3s", "oom")
    validate_result(v1)
    assert parse_result(json.dumps(v1), "x86_64-k3s-1")["schema"] == "k8s-footprint/result/v1"
    v2 = v2_result()
    validate_result(v2)
    assert parse_result(json.dumps(v2), "x86_64-k3s-1")["schema"] == "k8s-footprint/result/v2"


def test_no_result_is_a_minimal_v2_shape() -> None:
    doc = {"schema": "k8s-footprint/result/v2", "status": "no_result", "cell": "x86_64-k0s-1",
           "error": "the kit exited 137 without a result"}
    validate_result(doc)
    assert parse_result(json.dumps(doc), "x86_64-k0s-1")["status"] == "no_result"
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        validate_result({**doc, "phases": {}})  # a no_result carries no figures
    with pytest.raises(ResultError, match="status 'no_result' is not one of"):
        read_result(json.dumps({**fake_result("c", "k3s"), "status": "no_result"}), "c")  # not in v1


def test_a_v2_validation_error_names_the_field() -> None:
    import jsonschema

    bad = v2_result()
    bad["api"]["idle"]["failed"] = -1
    with pytest.raises(jsonschema.ValidationError) as info:
        validate_result(bad)
    assert list(info.value.absolute_path) == ["api", "idle", "failed"]
