"""The benchmark's point search (hybridplace_worker.search) on synthetic latency curves.

The promise of spec.benchmark.search: Adaptive (issue 15): over many random curves the
placement decided from the adaptive search's points costs within 2% of the one decided from the
full grid in at least 95% of cases, using at most 25% of the grid's points on average (goal
10%). Decisions come from the real solver (hybridplace.placement.solve) on ModelProfile points
built from what each search measured; the curves are synthetic so the test can be run often.
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

import pytest
from hybridplace.placement import Pool, Profile, ProfilePoint, Request, solve
from hybridplace_worker.search import (
    ADAPTIVE,
    BEYOND_SLO,
    BUDGET,
    NO_CONCURRENCY_GAIN,
    SEARCHES,
    SKIP_REASONS,
    Budget,
    adaptive_search,
    grid_search,
)
from hypothesis import given, settings
from hypothesis import strategies as st

BATCH_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]
CONCURRENCY = [1, 2, 4]


@dataclass(frozen=True)
class Point:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_rps: float


@dataclass(frozen=True)
class Curve:
    """Service time of a batch of b at c concurrent streams: (a + k * b**alpha) ms, each stream
    (1 + eta * (c - 1)) times slower; p95/p99 spread; a fixed few-percent noise per point."""

    fixed_ms: float
    per_item_ms: float
    alpha: float
    eta: float
    spread: float
    noise_seed: int

    def __call__(self, b: int, c: int) -> Point:
        noise = 1 + 0.03 * (random.Random(self.noise_seed * 7919 + b * 31 + c).random() - 0.5)
        p50 = (self.fixed_ms + self.per_item_ms * b**self.alpha) * (1 + self.eta * (c - 1)) * noise
        return Point(p50, p50 * self.spread, p50 * self.spread**1.6, c * 1000.0 / p50)


def random_curve(rng: random.Random) -> Curve:
    return Curve(
        fixed_ms=rng.uniform(0.3, 10),
        per_item_ms=rng.uniform(0.005, 3),
        alpha=rng.uniform(0.7, 1.1),
        eta=rng.uniform(0.05, 1.2),
        spread=rng.uniform(1.05, 1.4),
        noise_seed=rng.randrange(10**6),
    )


def profile(pool: str, curve: Curve, points: list[tuple[int, int]], skipped: list[tuple[int, int]] = ()) -> Profile:
    out = []
    for b, c in points:
        m = curve(b, c)
        out.append(ProfilePoint(b, m.p50_ms, m.p95_ms, m.p99_ms, concurrency=c, throughput_rps=m.throughput_rps))
    return Profile(pool, tuple(out), skipped=tuple(skipped))


class Counting:
    def __init__(self, curve: Curve) -> None:
        self.curve = curve
        self.calls: list[tuple[int, int]] = []

    def __call__(self, b: int, c: int) -> Point:
        self.calls.append((b, c))
        return self.curve(b, c)


def decide(
    request: Request, pools: list[Pool], curves: dict[str, Curve], points: dict[str, list[tuple[int, int]]]
) -> float | None:
    decision = solve(
        request,
        pools,
        [
            profile(
                name,
                curves[name],
                points[name],
                [(b, c) for b in BATCH_SIZES for c in CONCURRENCY if (b, c) not in points[name]],
            )
            for name in curves
        ],
        explain=False,
    )
    return decision.total_cost_per_hour if decision.feasible else None


def one_case(seed: int) -> tuple[bool, float]:
    """(adaptive decision within 2% of the grid's, fraction of the grid's points measured)."""
    rng = random.Random(seed)
    pools = [Pool(f"pool-{i}", price_per_replica_hour=rng.uniform(0.05, 3.0)) for i in range(2)]
    curves = {p.name: random_curve(rng) for p in pools}
    slo = math.exp(rng.uniform(math.log(5), math.log(300)))
    percentile = rng.choice((50, 95, 99))
    request = Request(
        slo,
        rng.uniform(50, 20000),
        percentile,
        concurrency_levels=tuple(CONCURRENCY),
        max_queue_delay_ms=rng.choice((0.0, 2.0, 5.0)),
    )
    grid = {name: [(b, c) for b in BATCH_SIZES for c in CONCURRENCY] for name in curves}
    adaptive, used = {}, 0
    for name, curve in curves.items():
        counting = Counting(curve)
        outcome = adaptive_search(BATCH_SIZES, CONCURRENCY, counting, slo_ms=slo, percentile=percentile)
        assert outcome.measured == counting.calls  # it reports what it measured, in order
        adaptive[name] = outcome.measured
        used += len(outcome.measured)
    full = decide(request, pools, curves, grid)
    found = decide(request, pools, curves, adaptive)
    if full is None:
        close = found is None
    else:
        close = found is not None and abs(found / full - 1) <= 0.02
    return close, used / (2 * len(BATCH_SIZES) * len(CONCURRENCY))


def test_adaptive_decisions_cost_within_2_percent_of_the_grid_s_with_a_quarter_of_the_points():
    cases = [one_case(seed) for seed in range(240)]
    close = sum(1 for ok, _ in cases if ok) / len(cases)
    fraction = statistics.mean(f for _, f in cases)
    print(f"adaptive: {close:.1%} of decisions within 2% of the grid's, {fraction:.1%} of the grid's points")
    assert close >= 0.95
    assert fraction <= 0.25


curves = st.builds(
    Curve,
    fixed_ms=st.floats(0.1, 50),
    per_item_ms=st.floats(0.001, 10),
    alpha=st.floats(0.5, 1.3),
    eta=st.floats(0.0, 2.0),
    spread=st.floats(1.0, 2.0),
    noise_seed=st.integers(0, 10**6),
)
grids = st.tuples(
    st.lists(st.integers(1, 4096), min_size=1, max_size=16, unique=True),
    st.lists(st.integers(1, 256), min_size=1, max_size=8, unique=True),
)


@settings(max_examples=200, deadline=None)
@given(
    curve=curves,
    grid=grids,
    slo=st.one_of(st.none(), st.floats(0.5, 1000)),
    percentile=st.sampled_from((50, 90, 95, 99)),
    budget=st.one_of(st.none(), st.integers(1, 40)),
)
def test_every_grid_point_is_measured_once_or_skipped_once_with_a_reason(curve, grid, slo, percentile, budget):
    batch_sizes, concurrency = grid
    counting = Counting(curve)
    outcome = adaptive_search(
        batch_sizes, concurrency, counting, slo_ms=slo, percentile=percentile, budget=Budget(points=budget)
    )
    everything = {(b, c) for b in batch_sizes for c in concurrency}
    assert len(counting.calls) == len(set(counting.calls))  # nothing measured twice
    assert set(outcome.measured) | set(outcome.skipped) == everything
    assert not set(outcome.measured) & set(outcome.skipped)
    assert set(outcome.skipped.values()) <= set(SKIP_REASONS)
    if budget is not None:
        assert len(outcome.measured) <= budget
    if BUDGET not in outcome.skipped.values():
        # The smallest batch at the lowest concurrency is always measured: the floor.
        assert (min(batch_sizes), min(concurrency)) in outcome.measured
    # Nothing is skipped as beyond the SLO unless a measured point at or below it is.
    for (b, c), reason in outcome.skipped.items():
        if reason == BEYOND_SLO and slo is not None:
            assert any(
                b2 <= b and c2 <= c and curve_percentile(curve(b2, c2), percentile) > slo for b2, c2 in outcome.measured
            )


def curve_percentile(point: Point, percentile: int) -> float:
    return point.p50_ms if percentile <= 50 else point.p95_ms if percentile <= 95 else point.p99_ms


def test_concurrency_that_adds_no_throughput_is_probed_once_and_the_rest_skipped():
    # Each stream runs c times slower: c streams give no more items/s than one.
    curve = Curve(2.0, 0.5, 1.0, eta=1.0, spread=1.1, noise_seed=1)
    outcome = adaptive_search(BATCH_SIZES, CONCURRENCY, curve, slo_ms=100, percentile=95)
    assert sum(1 for _, c in outcome.measured if c > 1) == 1
    assert {r for (_, c), r in outcome.skipped.items() if c > 1} == {NO_CONCURRENCY_GAIN}


def test_the_grid_search_measures_everything_batch_major_until_the_budget():
    calls = []
    outcome = grid_search([4, 1, 2], [2, 1], lambda b, c: calls.append((b, c)))
    assert calls == [(1, 1), (1, 2), (2, 1), (2, 2), (4, 1), (4, 2)] == outcome.measured
    ticks = iter(range(100))
    limited = grid_search([1, 2, 4], [1], lambda b, c: None, Budget(seconds=2.5), clock=lambda: next(ticks))
    assert limited.measured == [(1, 1), (2, 1)] and limited.skipped == {(4, 1): BUDGET}
    assert SEARCHES == ("Grid", ADAPTIVE)


@pytest.mark.parametrize("slo", [3.0, 30.0, 300.0])
def test_the_edge_is_the_largest_batch_within_the_slo(slo):
    curve = Curve(1.0, 0.2, 1.0, eta=1.0, spread=1.0, noise_seed=3)
    outcome = adaptive_search(BATCH_SIZES, [1], curve, slo_ms=slo, percentile=50, knee=0.0)
    within = [b for b in BATCH_SIZES if curve(b, 1).p50_ms <= slo]
    assert max(within) in [b for b, _ in outcome.measured]
    beyond = [b for b in BATCH_SIZES if b > max(within)]
    assert all(outcome.skipped.get((b, 1)) == BEYOND_SLO or (b, 1) in outcome.measured for b in beyond)
