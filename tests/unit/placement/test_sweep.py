"""Decisions across loads and the crossovers between them (placement/sweep.py)."""

import dataclasses

import pytest
from hybridplace.placement import Pool, Profile, ProfilePoint, Request
from hybridplace.placement.sweep import chosen_pools, crossovers, decide_at, log_grid, sweep

# The seed table (DESIGN.md) with the example's prices: CPU 0.2016 USD per replica-hour, a T4 node
# 0.752 USD/h; p95 <= 1000 ms, headroom 0.2.
CPU = Pool("cpu", price_per_replica_hour=0.2016)
GPU = Pool("gpu", accelerator="nvidia-gpu", price_per_node_hour=0.752)
PROFILES = (
    Profile("cpu", tuple(ProfilePoint(b, ms, ms, ms) for b, ms in ((1, 50), (10, 400), (100, 3500)))),
    Profile("gpu", tuple(ProfilePoint(b, ms, ms, ms) for b, ms in ((1, 30), (10, 100), (100, 800)))),
)
REQUEST = Request(slo_latency_ms=1000, target_rps=50, headroom=0.2, max_queue_delay_ms=2.0)


def test_the_seed_crossover_is_bisected_to_68_6_requests_per_second():
    points = sweep(REQUEST, (CPU, GPU), PROFILES, log_grid(1, 200, 60), alone=("cpu", "gpu"))
    found = crossovers(REQUEST, (CPU, GPU), PROFILES, points)
    assert found[0].load_rps == pytest.approx(68.6, abs=0.05)
    assert (found[0].before, found[0].after) == (("cpu",), ("gpu",))
    assert found[0].cost_before == pytest.approx(0.6048) and found[0].cost_after == pytest.approx(0.752)
    # Just below and at the crossover the choice is what it says.
    assert chosen_pools(decide_at(REQUEST, (CPU, GPU), PROFILES, found[0].load_rps - 0.01)) == ("cpu",)
    assert chosen_pools(decide_at(REQUEST, (CPU, GPU), PROFILES, found[0].load_rps)) == ("gpu",)


def test_each_pool_alone_and_cost_per_million():
    (point,) = sweep(REQUEST, (CPU, GPU), PROFILES, [50.0], alone=("cpu", "gpu"))
    assert point.cost_per_hour() == pytest.approx(0.6048)  # three CPU replicas
    assert point.cost_per_hour("gpu") == pytest.approx(0.752)  # one T4 node
    assert point.cost_per_million() == pytest.approx(0.6048e6 / (50 * 3600))
    assert point.cost_per_million("absent") is None


def test_no_crossover_when_the_choice_never_changes():
    only_cpu = dataclasses.replace(REQUEST, pools=("cpu",))
    points = sweep(only_cpu, (CPU, GPU), PROFILES, log_grid(1, 60, 10))
    assert crossovers(only_cpu, (CPU, GPU), PROFILES, points) == []


def test_infeasible_is_the_empty_choice_and_a_crossover_to_it_is_reported():
    tight = dataclasses.replace(REQUEST, slo_latency_ms=60, max_replicas=2)
    points = sweep(tight, (CPU, GPU), PROFILES, log_grid(1, 1000, 40))
    found = crossovers(tight, (CPU, GPU), PROFILES, points)
    assert found and found[-1].after == () and found[-1].cost_after is None
    assert points[-1].cost_per_hour() is None


@pytest.mark.parametrize(("start", "stop", "points"), [(0, 10, 5), (10, 1, 5), (1, 10, 1)])
def test_log_grid_refuses_what_it_cannot_space(start, stop, points):
    with pytest.raises(ValueError):
        log_grid(start, stop, points)
