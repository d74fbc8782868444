"""A profile's per-request overhead (ModelProfile spec.requestOverheadMs) slows a batch of b by
b times it, in the latency model and so in the solver's limits."""

import pytest
from hybridplace.placement import Pool, Profile, ProfilePoint, Request, ServiceCurve, predict_latency
from hybridplace.placement.solver import replica_limit_rps

POINTS = (ProfilePoint(1, 1.0, 1.2, 1.4), ProfilePoint(8, 2.0, 2.4, 2.8))


def test_a_batch_of_b_is_b_times_the_overhead_slower():
    plain = ServiceCurve.from_points(POINTS)
    slowed = ServiceCurve.from_points(POINTS, request_overhead_ms=0.1)
    assert slowed.mean_ms == pytest.approx((plain.mean_ms[0] + 0.1, plain.mean_ms[1] + 0.8))
    assert slowed.p95_ms == pytest.approx((1.3, 3.2))
    assert slowed.p99_ms == pytest.approx((1.5, 3.6))
    assert slowed.sd_ms == plain.sd_ms
    # Capacity at B = 8 falls from 8 / 2 ms to 8 / 2.8 ms.
    assert slowed.throughput_rps(8) == pytest.approx(8000 / 2.8)
    assert (predict_latency(slowed, 2000, 8, 2.0, 95).latency_ms
            > predict_latency(plain, 2000, 8, 2.0, 95).latency_ms)


def test_the_solver_gives_a_replica_less_load_when_requests_cost_more():
    request = Request(slo_latency_ms=20, target_rps=1000)
    pool = Pool("cpu", price_per_replica_hour=1.0)
    plain = replica_limit_rps(request, pool, Profile("cpu", POINTS))
    slowed = replica_limit_rps(request, pool, Profile("cpu", POINTS, request_overhead_ms=0.1))
    assert plain is not None and slowed is not None
    assert slowed < plain
    assert slowed <= (1 - request.headroom) * 8000 / 2.8 * (1 + 1e-9)


def test_a_negative_or_unbounded_overhead_is_refused():
    for bad in (-0.1, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="request_overhead_ms"):
            Profile("cpu", POINTS, request_overhead_ms=bad)
