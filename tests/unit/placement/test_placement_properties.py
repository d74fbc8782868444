"""Promises that hold for every input (hypothesis): more load never lowers the cost, a lower
price never raises it, a looser SLO never raises it, and a decision never exceeds capacity,
breaks minReplicas or maxReplicas, or places a replica that misses the SLO."""

from dataclasses import replace

import pytest
from cases.placement_instances import random_requests, small_instances
from hybridplace.placement import solve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Each example solves twice; 60 examples keep each property around a second.
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

requests = random_requests()


def objective_value(decision, objective):
    return decision.total_cost_per_hour if objective == "cost" else decision.total_watts


@SETTINGS
@given(small_instances(), requests, st.floats(1.01, 5.0))
def test_more_load_never_lowers_the_cost(instance, request, factor):
    pools, profiles = instance
    before = solve(request, pools, profiles)
    after = solve(replace(request, target_rps=request.target_rps * factor), pools, profiles)
    if not before.feasible:
        assert not after.feasible
    elif after.feasible:
        assert objective_value(after, request.objective) >= (
            objective_value(before, request.objective) - 1e-9)


@SETTINGS
@given(small_instances(), requests, st.integers(0, 2), st.floats(0.0, 0.99))
def test_a_lower_price_never_raises_the_cost(instance, request, which, factor):
    pools, profiles = instance
    pool = pools[which % len(pools)]
    cheaper = (replace(pool, price_per_node_hour=pool.price_per_node_hour * factor)
               if pool.price_per_node_hour is not None
               else replace(pool, price_per_replica_hour=pool.price_per_replica_hour * factor))
    request = replace(request, objective="cost")
    before = solve(request, pools, profiles)
    after = solve(request, [cheaper if p is pool else p for p in pools], profiles)
    assert after.feasible == before.feasible
    if before.feasible:
        assert after.total_cost_per_hour <= before.total_cost_per_hour + 1e-9


@SETTINGS
@given(small_instances(), requests, st.floats(1.01, 4.0))
def test_a_looser_slo_never_raises_the_cost(instance, request, factor):
    pools, profiles = instance
    before = solve(request, pools, profiles)
    after = solve(replace(request, slo_latency_ms=request.slo_latency_ms * factor), pools,
                  profiles)
    if before.feasible:
        assert after.feasible
        assert objective_value(after, request.objective) <= (
            objective_value(before, request.objective) + 1e-9)


@SETTINGS
@given(small_instances(), requests)
def test_a_decision_keeps_every_limit_and_the_slo(instance, request):
    pools, profiles = instance
    decision = solve(request, pools, profiles)
    by_name = {p.name: p for p in pools}
    if not decision.feasible:
        assert decision.placements == ()
        return
    total = sum(p.replicas for p in decision.placements)
    assert total >= request.min_replicas
    assert request.max_replicas is None or total <= request.max_replicas
    assert request.allow_hybrid or len(decision.placements) == 1
    assert sum(p.share_rps for p in decision.placements) == pytest.approx(request.target_rps)
    for placement in decision.placements:
        pool = by_name[placement.pool]
        assert placement.replicas >= 1
        assert pool.capacity_replicas is None or placement.replicas <= pool.capacity_replicas
        assert placement.predicted_latency_ms <= request.slo_latency_ms * (1 + 1e-6)
        assert placement.utilisation <= 1 - request.headroom + 1e-9
        assert placement.cost_per_hour == pytest.approx(pool.cost_per_hour(placement.replicas))


@SETTINGS
@given(small_instances(), requests)
def test_the_same_inputs_give_the_same_decision(instance, request):
    pools, profiles = instance
    assert solve(request, pools, profiles) == solve(request, list(reversed(pools)),
                                                    list(reversed(profiles)))
