"""The triton engine's per-request overhead: saturated single-item throughput against the
points' time per item (engine_triton.request_overhead_ms, a pure function)."""

import pytest
from hybridplace_worker.engine_triton import request_overhead_ms
from hybridplace_worker.timing import PointMeasurement


def point(concurrency: int, p50_ms: float, rps: float) -> PointMeasurement:
    return PointMeasurement(concurrency=concurrency, p50_ms=p50_ms, p95_ms=p50_ms, p99_ms=p50_ms,
                            mean_ms=p50_ms, min_ms=p50_ms, max_ms=p50_ms, throughput_rps=rps,
                            spread=0.0, stable=True, samples=100, windows=[])


# One request of 1 item: 1 ms; of 8 items: 2 ms (0.25 ms per item).
CURVE = [(1, point(1, 1.0, 1000.0)), (8, point(1, 2.0, 500.0))]


def test_the_time_per_request_beyond_the_curve_at_the_batch_triton_ran():
    # Batches of 8 single-item requests every 4 ms: 2000 requests/s, 0.5 ms each, 0.25 more
    # than one request of 8 items pays per item.
    assert request_overhead_ms(CURVE, 2000.0, 8.0) == pytest.approx(0.25)


def test_between_measured_sizes_the_curve_is_interpolated():
    # s(4.5) = 1.5 ms, 1/3 ms per item; 0.1 ms more per request.
    rps = 1000.0 / (1.5 / 4.5 + 0.1)
    assert request_overhead_ms(CURVE, rps, 4.5) == pytest.approx(0.1)


def test_outside_the_measured_sizes_the_nearest_time_per_item_is_used():
    assert request_overhead_ms(CURVE, 1000.0 / 0.35, 16.0) == pytest.approx(0.1)
    assert request_overhead_ms(CURVE, 1000.0 / 1.2, 1.0) == pytest.approx(0.2)


def test_never_negative_when_single_item_requests_run_faster_than_the_curve():
    assert request_overhead_ms(CURVE, 10_000.0, 8.0) == 0.0


def test_the_curve_is_read_as_the_operator_reads_it():
    # Concurrency 1 only, and a point's time is max(p50, 1 / throughput): here 2 ms at b = 1.
    points = [(1, point(1, 1.0, 500.0)), (1, point(2, 0.1, 50_000.0))]
    assert request_overhead_ms(points, 1000.0 / 2.5, 1.0) == pytest.approx(0.5)


def test_nothing_to_compare_gives_zero():
    assert request_overhead_ms([], 1000.0, 4.0) == 0.0
    assert request_overhead_ms([(1, point(2, 1.0, 100.0))], 1000.0, 4.0) == 0.0
    assert request_overhead_ms(CURVE, 0.0, 4.0) == 0.0
