"""A split that traffic can follow: with weighted routing (an HTTPRoute) the load is shared in
proportion to each pool's per-replica limit; without it (a plain Service spreads requests
evenly over all replicas) only splits where every replica may take the same share, or one pool.
Under the routing a decision names, no replica's share exceeds its limit."""

import itertools
from dataclasses import replace

import pytest
from cases.placement_instances import random_requests, seed_pools, seed_profiles, small_instances
from hybridplace.placement import (
    EVEN_SPREAD,
    SINGLE_POOL,
    WEIGHT_TOTAL,
    WEIGHTED,
    PoolCapacity,
    Request,
    cheapest_split,
    objective_values,
    route_weights,
    solve,
)
from hybridplace.placement.solver import replica_limit_rps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# The planner test's split: room for 1 CPU replica (22.86 requests/s each at p95 <= 1000 ms,
# headroom 0.2) and GPU nodes (100 each).
SEED_REQUEST = Request(slo_latency_ms=1000, target_rps=120)


def test_a_weighted_split_shares_the_load_by_each_pools_limit():
    decision = solve(SEED_REQUEST, seed_pools(cpu_capacity=1, gpu_capacity=1), seed_profiles())
    assert decision.routing == WEIGHTED
    shares = {p.pool: p.share_rps for p in decision.placements}
    assert shares["cpu-c7i"] < 22.9  # not the 60 a Service would give it
    weights = route_weights(decision.placements)
    assert sum(weights.values()) == pytest.approx(WEIGHT_TOTAL, abs=2)
    for pool, share in shares.items():
        assert weights[pool] / WEIGHT_TOTAL == pytest.approx(share / 120, abs=1e-6)
    routed = decision.to_dict()
    assert routed["routing"] == WEIGHTED
    assert {p["pool"]: p["weight"] for p in routed["placements"]} == weights


def test_without_weighted_routing_the_split_spreads_evenly_or_stays_on_one_pool():
    pools, profiles = seed_pools(cpu_capacity=1, gpu_capacity=1), seed_profiles()
    even = solve(replace(SEED_REQUEST, weighted_routing=False), pools, profiles)
    # 1 CPU + 1 GPU would give the CPU replica 60 requests/s: no such split. The GPU pool alone
    # (capacity 1) cannot carry 120; so nothing is feasible within these capacities.
    assert not even.feasible
    more_gpu = seed_pools(cpu_capacity=1, gpu_capacity=3)
    even = solve(replace(SEED_REQUEST, weighted_routing=False), more_gpu, profiles)
    assert even.routing == SINGLE_POOL
    assert [p.pool for p in even.placements] == ["gpu-t4"]
    assert "weight" not in even.to_dict()["placements"][0]


def test_an_even_spread_split_gives_every_replica_the_same_share():
    # Two CPU-like pools with about the same limit and capacity 2 each: 4 replicas, even spread.
    pools = [replace(p, name=n, capacity_replicas=2) for p, n in
             zip(seed_pools()[:1] * 2, ("cpu-a", "cpu-b"), strict=True)]
    profiles = [replace(seed_profiles()[0], pool=n) for n in ("cpu-a", "cpu-b")]
    decision = solve(Request(slo_latency_ms=1000, target_rps=80, weighted_routing=False), pools, profiles)
    assert decision.routing == EVEN_SPREAD
    per_replica = {p.share_rps / p.replicas for p in decision.placements}
    assert max(per_replica) == pytest.approx(min(per_replica))
    assert "weight" not in decision.to_dict()["placements"][0]


routed_requests = random_requests(allow_hybrid=st.just(True), weighted_routing=st.booleans())


@SETTINGS
@given(small_instances(), routed_requests)
def test_under_the_routing_a_decision_names_no_replica_exceeds_its_limit(instance, request):
    pools, profiles = instance
    decision = solve(request, pools, profiles)
    if not decision.feasible:
        return
    by_pool = {p.name: p for p in pools}
    by_profile = {p.pool: p for p in profiles}
    total = decision.total_replicas
    weights = route_weights(decision.placements)
    weight_sum = sum(weights.values())
    assert decision.routing in (WEIGHTED, EVEN_SPREAD, SINGLE_POOL)
    assert (decision.routing == SINGLE_POOL) == (len(decision.placements) == 1)
    if not request.weighted_routing:
        assert decision.routing != WEIGHTED
    for placement in decision.placements:
        limit = replica_limit_rps(request, by_pool[placement.pool], by_profile[placement.pool])
        assert limit is not None
        if decision.routing == EVEN_SPREAD:
            routed = request.target_rps / total  # a Service: the same to every replica
        elif decision.routing == WEIGHTED:
            routed = request.target_rps * weights[placement.pool] / weight_sum / placement.replicas
        else:
            routed = request.target_rps / placement.replicas
        assert routed <= limit * (1 + 2e-6)


def brute_force_even_split(caps, target, min_replicas, max_replicas, objective):
    """Every replica count per pool up to its limit; an even spread's replicas each take
    target / total, which must be within every used pool's limit."""
    best = None
    ranges = [range(0, min(c.max_replicas, 8) + 1) for c in caps]
    for counts in itertools.product(*ranges):
        total = sum(counts)
        if total < max(min_replicas, 1) or (max_replicas is not None and total > max_replicas):
            continue
        used = [c for c, r in zip(caps, counts, strict=True) if r]
        if target / total > min(c.replica_load_rps for c in used) * (1 + 1e-9):
            continue
        primary = secondary = 0.0
        for c, r in zip(caps, counts, strict=True):
            if r:
                a, b = objective_values(c.pool, r, objective)
                primary, secondary = primary + a, secondary + b
        key = (round(primary, 9), round(secondary, 9), total)
        if best is None or key < best:
            best = key
    return best


@settings(max_examples=150, deadline=None)
@given(small_instances(), st.lists(st.floats(1.0, 60.0), min_size=3, max_size=3), st.floats(1.0, 150.0),
       st.integers(1, 3), st.one_of(st.none(), st.integers(3, 10)))
def test_the_even_spread_search_finds_the_best_even_split(instance, loads, target, min_replicas, max_replicas):
    pools, _ = instance
    caps = [PoolCapacity(p, load, min(p.capacity_replicas if p.capacity_replicas is not None else 8, 8))
            for p, load in zip(pools, loads, strict=False)]
    found = cheapest_split(caps, target, min_replicas, max_replicas, "cost", True, even_spread=True)
    expected = brute_force_even_split(caps, target, min_replicas, max_replicas, "cost")
    if expected is None:
        assert found is None
        return
    assert found is not None
    total = sum(found.replicas.values())
    assert (round(found.primary, 9), round(found.secondary, 9), total) == expected
    limits = {c.pool.name: c.replica_load_rps for c in caps}
    assert all(target / total <= limits[name] * (1 + 1e-9) for name in found.replicas)
