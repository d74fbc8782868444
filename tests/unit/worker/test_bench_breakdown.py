"""Where each tool's mean latency goes, as benchmarks/worker_vs_perf_analyzer.py prints it: the
server's queue and compute (Triton's statistics) and the rest (HTTP, network, the client)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[3] / "benchmarks" / "worker_vs_perf_analyzer.py"
_spec = importlib.util.spec_from_file_location("worker_vs_perf_analyzer_breakdown", _PATH)
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def _stats(success: int, queue: int, cin: int, infer: int, cout: int) -> dict:
    """A model_stats entry as Triton's /v2/models/<m>/stats gives it (counts, cumulative ns)."""

    def stage(ns):
        return {"count": success, "ns": ns}

    return {
        "inference_stats": {
            "success": stage(10 * (queue + cin + infer + cout)),
            "queue": stage(queue),
            "compute_input": stage(cin),
            "compute_infer": stage(infer),
            "compute_output": stage(cout),
        }
    }


def test_the_server_share_is_the_stages_per_request_between_two_snapshots():
    before = _stats(100, 1_000_000, 2_000_000, 50_000_000, 3_000_000)
    # 400 more requests, 20 us queue + 1 ms infer + 10 us input + 5 us output each.
    after = _stats(500, 1_000_000 + 8_000_000, 2_000_000 + 4_000_000, 50_000_000 + 400_000_000, 3_000_000 + 2_000_000)
    assert bench.server_ms_per_request(before, after) == pytest.approx(1.035)


def test_no_request_in_between_is_an_error_not_a_division_by_zero():
    same = _stats(100, 1, 2, 3, 4)
    with pytest.raises(ValueError, match="no request succeeded"):
        bench.server_ms_per_request(same, same)


def test_perf_analyzers_mean_is_the_sum_of_its_csv_stages():
    # The columns of a real perf_analyzer 2.41 CSV row (microseconds), b=1 c=1 on resnet.
    row = {
        "Client Send": "66",
        "Network+Server Send/Recv": "250",
        "Server Queue": "11",
        "Server Compute Input": "15",
        "Server Compute Infer": "1673",
        "Server Compute Output": "48",
        "Client Recv": "0",
        "p50 latency": "1995",
    }
    out = bench.perf_analyzer_breakdown(row)
    assert out["meanMs"] == pytest.approx(2.063)
    assert out["serverMs"] == pytest.approx(1.747)
    assert out["restMs"] == pytest.approx(0.316)


def test_the_line_says_which_client_costs_more_and_by_how_much():
    row = {
        "oursMeanMs": 1.191,
        "oursServerMs": 0.985,
        "oursRestMs": 0.206,
        "paMeanMs": 1.240,
        "paServerMs": 0.976,
        "paRestMs": 0.257,
    }
    line = bench.breakdown_line(row)
    assert "rest, perf_analyzer - ours: +51 us" in line
    assert "server: -9 us" in line
