"""Result documents: the compact form is always <= 4096 bytes of valid JSON and maps onto
ModelProfile."""

import json

from hybridplace_worker.errors import Reason
from hybridplace_worker.result import (
    COLS,
    TERMINATION_LOG_LIMIT,
    ResultSink,
    compact_result,
    dumps,
    error_document,
    expand_compact,
    write_termination_log,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from worker_schema_check import assert_valid, errors

DIGEST = "sha256:" + "ab" * 32


def full_result(points, device_name="AMD EPYC 7B13 64-Core Processor", model_name="builtin:mlp"):
    return {
        "v": 1,
        "ok": True,
        "engine": "torch",
        "model": {"name": model_name, "digest": DIGEST, "format": "torchscript", "inputs": []},
        "device": {
            "accelerator": "cpu",
            "name": device_name,
            "node": "kwok-cpu-0",
            "cores": 2,
            "threads": 2,
            "memoryMiB": 24000,
            "torchVersion": "2.15.0",
            "cudaVersion": None,
            "powerWatts": None,
            "interopThreads": 2,
        },
        "workerVersion": "0.1.0",
        "measuredAt": "2026-11-23T18:00:00Z",
        "points": points,
    }


def point(b, c, p50=0.2134567, rps=4712.123456, stable=True):
    return {
        "batchSize": b,
        "concurrency": c,
        "p50Ms": p50,
        "p95Ms": p50 * 1.2,
        "p99Ms": p50 * 1.5,
        "throughputRps": rps,
        "throughputIps": rps * b,
        "spread": 0.0312345,
        "stable": stable,
        "meanMs": p50,
        "samples": 100,
        "windows": [],
    }


def test_small_result_keeps_every_column_at_four_digits():
    doc = compact_result(full_result([point(1, 1), point(8, 2, stable=False)]))
    assert doc["cols"] == COLS
    assert doc["points"] == [
        [1, 1, 0.2135, 0.2561, 0.3202, 4712, 4712, 0.03123, 1],
        [8, 2, 0.2135, 0.2561, 0.3202, 4712, 37700, 0.03123, 0],
    ]
    assert "dropped" not in doc
    assert_valid(doc)


def test_compact_points_expand_to_modelprofile_points():
    doc = compact_result(full_result([point(4, 2, p50=12.5, rps=80)]))
    assert expand_compact(doc) == [
        {
            "batchSize": 4,
            "concurrency": 2,
            "p50Ms": 12.5,
            "p95Ms": 15,
            "p99Ms": 18.75,
            "throughputRps": 80,
            "throughputIps": 320,
            "spread": 0.03123,
            "stable": True,
        }
    ]


def test_many_points_degrade_by_precision_and_columns_before_dropping_points():
    pts = [point(b, c) for b in (1, 2, 4, 8, 16, 32, 64, 128) for c in (1, 2, 4, 8, 16)]  # 40 points
    doc = compact_result(full_result(pts))
    assert len(dumps(doc)) <= TERMINATION_LOG_LIMIT
    assert len(doc["points"]) == 40 and "dropped" not in doc
    assert_valid(doc)


def test_too_many_points_drop_highest_concurrency_first_and_say_so():
    pts = [point(b, c) for b in range(1, 41) for c in (1, 2, 4, 8)]  # 160 points
    doc = compact_result(full_result(pts))
    assert len(dumps(doc)) <= TERMINATION_LOG_LIMIT
    assert doc["dropped"] == 160 - len(doc["points"]) > 0
    kept = expand_compact(doc)
    assert {p["batchSize"] for p in kept if p["concurrency"] == 1} == set(range(1, 41))  # c=1 all kept
    assert max(p["concurrency"] for p in kept) < 8
    assert "ips" not in doc["cols"]
    assert all(p["throughputIps"] == p["throughputRps"] * p["batchSize"] for p in kept)
    assert_valid(doc)


finite = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 100000), st.integers(1, 4096), finite, finite, finite, st.booleans()),
        min_size=1,
        max_size=400,
    ),
    st.text(max_size=3000),
    st.text(max_size=600),
)
def test_compact_is_always_valid_json_within_4096_bytes(rows, device_name, model_name):
    pts = []
    for b, c, p50, rps, spread, stable in rows:
        p = point(b, c, p50=p50, rps=rps, stable=stable)
        p["spread"] = spread
        pts.append(p)
    doc = compact_result(full_result(pts, device_name=device_name, model_name=model_name))
    data = dumps(doc)
    assert len(data) <= TERMINATION_LOG_LIMIT
    assert json.loads(data) == doc
    assert_valid(doc)
    if doc["ok"]:
        assert len(doc["points"]) + doc.get("dropped", 0) == len(pts)


@given(st.sampled_from(list(Reason)), st.text(max_size=20000))
def test_error_documents_always_fit(reason, message):
    doc = error_document(reason, message)
    assert len(dumps(doc)) <= TERMINATION_LOG_LIMIT
    assert set(doc) == {"v", "ok", "reason", "message"}
    assert_valid(doc)


def test_schema_rejects_what_it_should():
    good = compact_result(full_result([point(1, 1)]))
    assert errors(good) == []
    assert errors({**good, "extra": 1})
    assert errors({**good, "model": {**good["model"], "digest": "md5:abc"}})
    assert errors({"v": 1, "ok": False, "reason": "Exploded", "message": "x"})
    assert errors({"v": 1, "ok": True, "reason": "Timeout", "message": "x"})


def test_sink_writes_exactly_one_document(tmp_path):
    log = tmp_path / "termination-log"
    out = []
    sink = ResultSink(str(log), "-", stdout=out.append)
    assert sink.finish(error_document(Reason.TIMEOUT, "too slow"))
    assert not sink.finish(full_result([point(1, 1)]))  # the deadline won; the late result is dropped
    assert json.loads(log.read_bytes())["reason"] == "Timeout"
    assert len(out) == 1 and json.loads(out[0])["reason"] == "Timeout"


def test_full_result_goes_to_a_file_and_compact_to_the_log(tmp_path):
    sink = ResultSink(str(tmp_path / "tl"), str(tmp_path / "full.json"))
    sink.finish(full_result([point(1, 1)]))
    assert json.loads((tmp_path / "full.json").read_text())["points"][0]["samples"] == 100
    compact = json.loads((tmp_path / "tl").read_bytes())
    assert compact["cols"] == COLS and "samples" not in json.dumps(compact)


def test_default_termination_log_outside_a_container_is_not_created(monkeypatch, tmp_path):
    import hybridplace_worker.result as result

    fake_default = tmp_path / "dev" / "termination-log"
    monkeypatch.setattr(result, "DEFAULT_TERMINATION_LOG", str(fake_default))
    write_termination_log(str(fake_default), error_document(Reason.TIMEOUT, "x"))
    assert not fake_default.exists()
    other = tmp_path / "explicit"
    write_termination_log(str(other), error_document(Reason.TIMEOUT, "x"))
    assert json.loads(other.read_bytes())["ok"] is False


def test_an_adaptive_result_lists_its_skipped_points_and_counts_them_when_they_do_not_fit():
    small = full_result([point(1, 1), point(8, 1)])
    small["search"] = "Adaptive"
    small["skipped"] = {"BeyondSLO": [[16, 1], [32, 1]], "BelowEdge": [[2, 1], [4, 1]]}
    doc = compact_result(small)
    assert doc["search"] == "Adaptive" and doc["skipped"] == small["skipped"]
    assert_valid(doc)
    # Forty measured points and 600 skipped ones: the list cannot fit, its count does.
    big = full_result([point(b, c) for b in (1, 2, 4, 8, 16, 32, 64, 128) for c in (1, 2, 4, 8, 16)])
    big["search"] = "Adaptive"
    big["skipped"] = {"BelowEdge": [[b, c] for b in range(100, 400) for c in (1, 2)]}
    doc = compact_result(big)
    assert len(dumps(doc)) <= TERMINATION_LOG_LIMIT
    assert doc["skipped"] == {"BelowEdge": 600}  # only the count fits
    assert "dropped" not in doc  # counted before any measured point is dropped
    assert_valid(doc)


def test_an_output_that_cannot_be_written_still_leaves_one_error_in_the_termination_log(tmp_path):
    # Before: the run was marked finished first, the write raised, and the Internal error that
    # followed was dropped: an empty termination log (the operator read it as NoResult).
    log = tmp_path / "tl"
    sink = ResultSink(str(log), str(tmp_path / "no-such-dir" / "full.json"))
    assert sink.finish(full_result([point(1, 1)]))
    doc = json.loads(log.read_bytes())
    assert doc["ok"] is False and doc["reason"] == "Internal"
    assert "--output" in doc["message"] and "no-such-dir" in doc["message"]
    assert sink.finished == doc
    assert not sink.finish(error_document(Reason.INTERNAL, "later"))  # still only one document
    assert json.loads(log.read_bytes()) == doc
    assert not list((tmp_path).glob("**/*.tmp"))


def test_a_result_with_a_non_finite_number_is_an_internal_error_not_an_empty_log(tmp_path):
    log, out = tmp_path / "tl", []
    full = full_result([point(1, 1)])
    full["requestOverheadMs"] = float("nan")
    sink = ResultSink(str(log), "-", stdout=out.append)
    assert sink.finish(full)
    doc = json.loads(log.read_bytes())
    assert doc["reason"] == "Internal" and "JSON" in doc["message"]
    assert len(out) == 1 and json.loads(out[0]) == doc  # the output gets the same error


def test_an_error_whose_output_fails_keeps_its_reason(tmp_path):
    log = tmp_path / "tl"
    sink = ResultSink(str(log), str(tmp_path / "missing" / "out.json"))
    sink.finish(error_document(Reason.DIGEST_MISMATCH, "bad digest"))
    doc = json.loads(log.read_bytes())
    assert doc["reason"] == "DigestMismatch" and "bad digest" in doc["message"] and "--output" in doc["message"]
