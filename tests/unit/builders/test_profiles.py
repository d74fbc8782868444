"""Worker termination messages become validated ModelProfiles, or a named failure."""

import json

import pytest
from hybridplace.api import builtin_digest
from hybridplace.builders.profiles import BenchmarkFailure, build_model_profile, parse_termination_message

RESULT = {
    "v": 1, "ok": True, "engine": "torch",
    "model": {"name": "builtin:mlp", "digest": builtin_digest("mlp"), "format": "torchscript"},
    "device": {"accelerator": "cpu", "name": "Test CPU", "node": None, "cores": 2, "threads": 2,
               "memoryMiB": 1024, "torchVersion": "2.15.0", "cudaVersion": None, "powerWatts": None},
    "workerVersion": "0.1.0", "measuredAt": "2026-11-23T18:00:00Z",
    "cols": ["b", "c", "p50", "p95", "p99", "rps", "spread", "stable"],
    "points": [[1, 1, 0.2, 0.25, 0.3, 4900.0, 0.03, 1], [8, 1, 0.5, 0.6, 0.7, 1900.0, 0.2, 0]],
}


def build(result=RESULT):
    return build_model_profile(result, namespace="ns", pool="cpu-standard", node="kwok-cpu-0", source="test")


def test_result_becomes_a_measured_profile_named_by_digest_and_pool():
    profile = build()
    assert profile["metadata"]["name"] == f"mp-{builtin_digest('mlp')[7:19]}-cpu-standard"
    spec = profile["spec"]
    assert spec["provenance"] == "measured"
    assert spec["device"]["node"] == "kwok-cpu-0"
    assert spec["points"][1] == {"batchSize": 8, "concurrency": 1, "p50Ms": 0.5, "p95Ms": 0.6,
                                 "p99Ms": 0.7, "throughputRps": 1900.0, "throughputIps": 15200.0,
                                 "spread": 0.2, "stable": False}


def test_worker_error_keeps_its_reason():
    failure = parse_termination_message(json.dumps({"v": 1, "ok": False, "reason": "NoDevice",
                                                     "message": "no CUDA device"}))
    assert failure == BenchmarkFailure("NoDevice", "no CUDA device")


def test_garbage_messages_are_failures_not_crashes():
    assert parse_termination_message("").reason == "NoResult"
    assert parse_termination_message("Traceback ...\nKilled").reason == "InvalidResult"
    assert parse_termination_message("[1, 2]").reason == "InvalidResult"


def test_a_result_that_is_not_a_valid_profile_is_refused():
    bad = {**RESULT, "points": [[1, 1, 5.0, 1.0, 9.0, 10.0, 0.0, 1]]}  # p50 > p95
    failure = build(bad)
    assert isinstance(failure, BenchmarkFailure) and failure.reason == "InvalidResult"
    assert "p50Ms <= p95Ms" in failure.message
    assert build({**RESULT, "cols": ["b"]}).reason == "InvalidResult"


@pytest.mark.parametrize("garbled", [
    {"device": []}, {"model": []}, {"model": {"digest": 5}}, {"skipped": [1]}, {"skipped": {"BeyondSLO": [1]}},
    {"cols": [["b"]]}, {"points": [None]},
], ids=str)
def test_a_result_of_the_wrong_json_types_is_an_invalid_result_not_an_exception(garbled):
    failure = build({**RESULT, **garbled})  # the worker runs the user's model: its result is input
    assert isinstance(failure, BenchmarkFailure) and failure.reason == "InvalidResult", failure
    assert "garbles" in failure.message or "not a valid profile" in failure.message


def test_an_adaptive_result_records_the_search_and_each_skipped_point_with_its_reason():
    result = dict(RESULT, search="Adaptive", skipped={"BeyondSLO": [[16, 1]], "BelowEdge": [[2, 1]]})
    spec = build(result)["spec"]
    assert spec["search"] == "Adaptive"
    assert spec["skipped"] == [{"batchSize": 2, "concurrency": 1, "reason": "BelowEdge"},
                               {"batchSize": 16, "concurrency": 1, "reason": "BeyondSLO"}]
    counted = build(dict(RESULT, search="Adaptive", skipped={"BelowEdge": 7}))["spec"]
    assert counted["skippedUnlisted"] == 7 and "skipped" not in counted
    assert "search" not in build()["spec"] and "skipped" not in build()["spec"]
    bad = build(dict(RESULT, skipped={"Whim": [[2, 1]]}))
    assert isinstance(bad, BenchmarkFailure) and bad.reason == "InvalidResult"


def test_the_request_overhead_of_a_triton_result_is_recorded_and_feeds_the_model():
    from hybridplace.api import parse_object
    from hybridplace.placement.from_api import profile_from

    result = dict(RESULT, engine="triton", requestOverheadMs=0.125)
    profile = build(result)
    assert profile["spec"]["requestOverheadMs"] == 0.125
    assert profile_from(parse_object(profile)).request_overhead_ms == 0.125
    # Absent (the torch engine, an older worker): no field, and the model adds nothing.
    assert "requestOverheadMs" not in build()["spec"]
    assert profile_from(parse_object(build())).request_overhead_ms == 0.0
    bad = build(dict(result, requestOverheadMs=-1.0))
    assert isinstance(bad, BenchmarkFailure) and bad.reason == "InvalidResult"
    assert "requestOverheadMs" in bad.message
