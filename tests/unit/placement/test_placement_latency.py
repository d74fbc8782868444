"""predict_latency and max_replica_load: the latency one replica gives under load, including
the wait for a batch to form and the queue, and the most load a replica may take."""

import math
import random

import pytest
from hybridplace.placement import (
    ProfilePoint,
    ServiceCurve,
    latency,
    max_replica_load,
    meets_slo,
    predict_latency,
    simulate_latency,
)
from hybridplace.placement.latency import replica_load_bound

GPU = ServiceCurve.deterministic({1: 30.0, 10: 100.0, 100: 800.0})
SMALL = ServiceCurve.from_points([ProfilePoint(1, 1.0, 1.2, 1.5), ProfilePoint(8, 1.6, 1.9, 2.4),
                                  ProfilePoint(32, 3.5, 4.2, 5.3)])


def test_a_lone_request_at_batch_1_takes_the_service_time():
    prediction = predict_latency(GPU, 0.001, max_batch_size=1, max_queue_delay_ms=2.0,
                                 percentile=95)
    assert prediction.latency_ms == pytest.approx(30.0, rel=1e-3)
    assert prediction.stable


def test_a_lone_request_waits_the_queue_delay_when_batching_is_on():
    # Nobody else comes: the batcher holds it for the full delay, then serves a batch of one.
    prediction = predict_latency(GPU, 0.001, max_batch_size=10, max_queue_delay_ms=5.0,
                                 percentile=95)
    assert prediction.latency_ms == pytest.approx(30.0 + 5.0, rel=1e-2)
    assert prediction.mean_batch_size == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("curve", [GPU, SMALL], ids=["seed-gpu", "small-model"])
@pytest.mark.parametrize("batch", [1, 10])
def test_latency_grows_with_load_and_never_beats_an_isolated_batch(curve, batch):
    batch = min(batch, curve.batch_sizes[-1])
    throughput = curve.throughput_rps(batch)
    latencies = [predict_latency(curve, rho * throughput, batch, 0.0, 95).latency_ms
                 for rho in (0.05, 0.2, 0.4, 0.6, 0.8, 0.9)]
    assert latencies == sorted(latencies)
    assert latencies[-1] > 1.5 * latencies[0]  # queueing shows, it is not the isolated time
    assert min(latencies) >= curve.mean_at(1) * (1 - 1e-9)


def test_load_at_or_above_throughput_is_unstable():
    throughput = GPU.throughput_rps(10)  # 10 items per 100 ms = 100 requests/s
    assert throughput == pytest.approx(100.0)
    at_capacity = predict_latency(GPU, throughput, 10, 2.0, 95)
    assert not at_capacity.stable
    assert math.isinf(at_capacity.latency_ms)
    assert at_capacity.utilisation == pytest.approx(1.0)
    assert predict_latency(GPU, 0.5 * throughput, 10, 2.0, 95).utilisation == pytest.approx(0.5)


def test_higher_percentiles_are_never_lower():
    for rho in (0.3, 0.7):
        load = rho * SMALL.throughput_rps(8)
        values = [predict_latency(SMALL, load, 8, 2.0, p).latency_ms for p in (50, 90, 95, 99)]
        assert values == sorted(values)


def test_a_replica_with_two_instances_is_two_batchers_at_half_the_load():
    points = [ProfilePoint(b, ms, ms * 1.1, ms * 1.2, concurrency=2)
              for b, ms in ((1, 2.0), (8, 5.0))]
    two = ServiceCurve.from_points(points, concurrency=2)
    one = ServiceCurve(two.batch_sizes, two.mean_ms, two.sd_ms, two.p50_ms, two.p95_ms,
                       two.p99_ms, concurrency=1)
    assert two.throughput_rps(8) == pytest.approx(2 * one.throughput_rps(8))
    both = predict_latency(two, 1000.0, 8, 2.0, 95)
    half = predict_latency(one, 500.0, 8, 2.0, 95)
    assert both.latency_ms == pytest.approx(half.latency_ms)


def test_the_curve_takes_the_longer_of_p50_and_measured_throughput_and_keeps_unstable_points():
    curve = ServiceCurve.from_points([
        ProfilePoint(1, 1.0, 1.1, 1.2, throughput_ips=800.0),  # 1.25 ms per batch on average
        ProfilePoint(4, 2.0, 2.2, 2.4, throughput_rps=1000.0),  # faster than p50 says: p50 wins
        ProfilePoint(8, 9.0, 9.0, 9.0, stable=False),  # noisy, used as measured
    ])
    assert curve.batch_sizes == (1, 4, 8)
    assert curve.mean_ms == pytest.approx((1.25, 2.0, 9.0))
    with pytest.raises(ValueError, match="no profile point at concurrency 2"):
        ServiceCurve.from_points([ProfilePoint(1, 1, 1, 1)], concurrency=2)


def test_max_replica_load_meets_the_slo_there_and_not_much_above():
    slo = 5.0
    load = max_replica_load(SMALL, 32, 2.0, 95, slo, headroom=0.2)
    cap = 0.8 * SMALL.throughput_rps(32)
    assert 0 < load < cap
    assert meets_slo(SMALL, load, 32, 2.0, 95, slo)
    assert predict_latency(SMALL, load, 32, 2.0, 95).latency_ms <= slo * (1 + 1e-9)
    assert not meets_slo(SMALL, load * 1.01, 32, 2.0, 95, slo)
    # ... and at every lower load.
    assert all(meets_slo(SMALL, load * f, 32, 2.0, 95, slo) for f in (1e-4, 0.1, 0.5, 0.9))


def test_a_loose_slo_leaves_only_the_headroom_as_the_limit():
    for headroom in (0.2, 0.5):
        load = max_replica_load(GPU, 100, 2.0, 95, 10_000.0, headroom)
        assert load == pytest.approx((1 - headroom) * GPU.throughput_rps(100))
    # No headroom: anything short of full throughput, where the queue would never drain.
    load = max_replica_load(GPU, 100, 2.0, 95, 10_000.0, 0.0)
    assert 0.99 * GPU.throughput_rps(100) < load < GPU.throughput_rps(100)


def test_an_slo_below_the_batch_1_service_time_admits_no_load():
    assert max_replica_load(GPU, 10, 2.0, 95, 29.0, 0.2) == 0.0


def test_a_queue_delay_that_makes_light_load_miss_the_slo_admits_no_load():
    # Alone, a request waits the 20 ms delay then 30 ms of service: 50 ms > 45 ms. At high load
    # batches fill faster than the delay, but light load happens too, so no load qualifies.
    assert not meets_slo(GPU, 0.01, 10, 20.0, 95, 45.0)
    assert max_replica_load(GPU, 10, 20.0, 95, 45.0, 0.2) == 0.0


def test_a_looser_slo_never_lowers_the_limit_and_the_bound_holds():
    rng = random.Random(7)
    for _ in range(30):
        fixed, per_item = rng.uniform(0.5, 10), rng.uniform(0.05, 3)
        spread = rng.uniform(1.0, 1.4)
        curve = ServiceCurve.from_points([
            ProfilePoint(b, fixed + per_item * b, (fixed + per_item * b) * spread,
                         (fixed + per_item * b) * spread ** 1.5) for b in (1, 4, 16)])
        batch = rng.choice((1, 4, 16))
        delay = rng.choice((0.0, 2.0, 5.0))
        slos = sorted(rng.uniform(fixed, 6 * (fixed + per_item * batch)) for _ in range(3))
        limits = [max_replica_load(curve, batch, delay, 95, slo, 0.2) for slo in slos]
        assert limits == sorted(limits)
        for slo, limit in zip(slos, limits, strict=True):
            assert limit <= replica_load_bound(curve, batch, slo, 0.2) * (1 + 1e-12)


def test_a_segment_with_a_skipped_batch_size_never_reads_faster_than_the_full_grid():
    # Concave service time (batching pays): the straight line from 1 to 16 under-states it.
    from hybridplace.placement import ProfilePoint
    from hybridplace.placement.latency import ServiceCurve, unmeasured_envelope

    def ms(b):
        return 2.0 + 3.0 * b ** 0.6

    grid = [ProfilePoint(b, ms(b), ms(b) * 1.2, ms(b) * 1.4) for b in (1, 2, 4, 8, 16)]
    sparse = [p for p in grid if p.batch_size in (1, 16)]
    full = ServiceCurve.from_points(grid)
    line = ServiceCurve.from_points(sparse)
    careful = ServiceCurve.from_points(sparse, unmeasured=(2, 4, 8))
    for k in (1.5, 2, 3, 4, 6, 8, 12):
        assert line.mean_at(k) < full.mean_at(k)  # the plain line would be optimistic
        assert careful.mean_at(k) >= full.mean_at(k) - 1e-12
        # Never above what the two assumptions allow: s(k) <= s(16) and s(k)/k <= s(1)/1.
        assert careful.mean_at(k) <= min(ms(16), ms(1) * k) + 1e-12
    assert careful.batch_sizes == (1, 16)  # a skipped size is never a configuration
    # Nothing skipped: the measured points and straight lines, as before.
    assert unmeasured_envelope((1, 16), (5.0, 20.0), (1.0, 2.0), ()) == ((1.0, 16.0), (5.0, 20.0), (1.0, 2.0))
    # Skipped sizes outside every segment change nothing.
    assert ServiceCurve.from_points(sparse, unmeasured=(32,)).knots == line.knots
    # A predicted latency with the skipped sizes is at least the full grid's.
    from hybridplace.placement import predict_latency
    for load in (50.0, 200.0, 400.0):
        assert (predict_latency(careful, load, 16, 2.0).latency_ms
                >= predict_latency(full, load, 16, 2.0).latency_ms * (1 - 1e-9))


# --- the batch-window iteration reaches its fixed point --------------------------------------

_WINDOW_CURVES = {
    "cpu-seed": ServiceCurve.deterministic({1: 50.0, 10: 400.0, 100: 3500.0}),
    "gpu-seed": ServiceCurve.deterministic({1: 30.0, 10: 100.0, 100: 800.0}),
    "spread": ServiceCurve.from_points([ProfilePoint(1, 1.0, 1.2, 1.5), ProfilePoint(8, 1.6, 1.9, 2.4),
                                        ProfilePoint(32, 3.5, 4.2, 5.3), ProfilePoint(128, 11.0, 13.0, 16.0)]),
}


def _one_more_step(curve, lam, big_b, gate, m_w, v_w):
    """One plain step of the window recursion from (m_w, v_w), as _solve_window takes it."""
    items = 1.0 + lam * m_w
    k = min(float(big_b), items)
    s_mean, s_sd, slope = curve.at(k)
    s_var = slope * slope * (lam * m_w + lam * lam * v_w) + s_sd * s_sd
    _, e1, e2 = latency._busy_window_moments(s_mean, s_var, lam, gate)
    new_m = gate + e1
    return new_m, max(0.0, gate * gate + 2 * gate * e1 + e2 - new_m * new_m)


@pytest.mark.parametrize("name", sorted(_WINDOW_CURVES))
@pytest.mark.parametrize("big_b", [1, 8, 100])
@pytest.mark.parametrize("delay_ms", [0.0, 2.0, 10.0])
def test_the_window_iteration_ends_at_its_fixed_point_at_every_load(name, big_b, delay_ms):
    # Aitken's extrapolation, unguarded, pointed backwards while the steps still grew (near
    # saturation) and the iteration cycled until its limit: the seed CPU curve at utilisation 0.9
    # came out at a quarter of its latency. What it returns must be a fixed point.
    curve = _WINDOW_CURVES[name]
    big_b = min(big_b, curve.batch_sizes[-1])
    full = curve.throughput_rps(big_b)
    for step in range(5, 98):
        lam = step / 100 * full / 1000.0
        gate, _ = latency._mean_gate_ms(lam, delay_ms, big_b - 1)
        m_w, v_w, *_ = latency._solve_window(curve, lam, big_b, gate)
        new_m, new_v = _one_more_step(curve, lam, big_b, gate, m_w, v_w)
        assert new_m == pytest.approx(m_w, rel=1e-3, abs=1e-3), (step, m_w, new_m)
        assert new_v == pytest.approx(v_w, rel=1e-2, abs=1e-2), (step, v_w, new_v)


@pytest.mark.parametrize("name", ["cpu-seed", "gpu-seed"])
def test_the_seed_curves_p95_stays_near_the_simulation_s_up_to_saturation(name):
    # Up to utilisation 0.95, where the solver may now place (default headroom 0.1). Before the
    # Aitken guard the CPU curve's p95 at 0.9 was 74% under the simulation's.
    curve = _WINDOW_CURVES[name]
    full = curve.throughput_rps(100)
    for u in (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95):
        simulated = simulate_latency(curve, u * full, 100, 2.0, requests=20000, seed=1).percentiles_ms[95]
        predicted = predict_latency(curve, u * full, 100, 2.0, 95).latency_ms
        assert predicted == pytest.approx(simulated, rel=0.25), (u, predicted, simulated)


def _margins(kind: str, root: float, width: int):
    """A margin that falls through zero once, at ``root`` in (0, width): the shapes the solver
    meets (straight, bending down near the cap, flat then a cliff, a plateau with steps)."""
    def margin(j: int) -> float:
        x = (root - j) / width
        if kind == "linear":
            return x
        if kind == "bends":
            return 1.0 - math.exp(-8.0 * x) if x < 0 else x ** 0.5 * 3.0
        if kind == "cliff":
            return 0.01 if x >= 0 else -5.0
        return math.floor(x * 10) / 10.0 + (0.05 if x >= 0 else -0.05)  # steps
    return margin


@pytest.mark.parametrize("kind", ["linear", "bends", "cliff", "steps"])
def test_the_crossing_search_finds_the_last_passing_index_in_few_checks(kind):
    rng = random.Random(kind)
    for _ in range(200):
        width = rng.choice((2, 3, 7, 64, 693, 13130))
        root = rng.uniform(0.0, width - 1e-6)
        margin = _margins(kind, root, width)
        if margin(0) < 0 or margin(width) >= 0:
            continue
        checked = []

        def counted(j: int, margin=margin, checked=checked) -> float:
            checked.append(j)
            return margin(j)

        expected = max(j for j in range(width) if margin(j) >= 0)
        assert latency._last_passing(counted, 0, width) == expected
        # Never worse than two steps per halving of the bracket (plus the two ends).
        assert len(checked) <= 2 + 2 * math.ceil(math.log2(width)), (kind, width, root)


def test_the_crossing_search_takes_a_zero_margin_at_the_low_end_as_passing_without_a_guide():
    # max_replica_load marks a point known to pass with margin 0 (not a measured margin).
    margin = _margins("linear", 500.3, 693)
    assert latency._last_passing(lambda j: 0.0 if j == 0 else margin(j), 0, 693) == 500
