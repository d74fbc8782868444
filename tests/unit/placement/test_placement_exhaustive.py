"""Exhaustive search: on small random instances the solver's answer costs exactly what the best
of every (pool, batch size, replicas, split) costs, found by plain enumeration.

The space (the same as split.py's docstring, enumerated here independently):
- every pool either unused or used with one configuration -- a max batch size b and a number
  of instances c it has profile points for -- and R = 1..capacity replicas;
- a replica of pool p in configuration (b, c) may take at most L(p, b, c) requests/s, the
  latency model's ``max_replica_load`` (the only engine function used here: it is the model,
  not the search);
- the load is split in proportion to R * L, so it is carried iff sum R * L >= load;
- minReplicas <= sum R <= maxReplicas; at most one pool used unless hybrid is allowed.
The cost is computed here from the prices: whole nodes, or per replica.
"""

from __future__ import annotations

import itertools
import math
import random

import pytest
from cases.placement_instances import random_pool, random_profile
from hybridplace.placement import (
    Pool,
    PoolCapacity,
    Request,
    ServiceCurve,
    best_configuration,
    cheapest_split,
    max_replica_load,
    solve,
)


def node_cost(pool: Pool, replicas: int) -> float:
    if pool.price_per_node_hour is not None:
        return math.ceil(replicas / pool.replicas_per_node) * pool.price_per_node_hour
    return replicas * pool.price_per_replica_hour


def node_watts(pool: Pool, replicas: int) -> float:
    if pool.watts_per_node is not None:
        return math.ceil(replicas / pool.replicas_per_node) * pool.watts_per_node
    return replicas * pool.watts_per_replica


def brute_force(request: Request, options: dict[str, list[tuple[Pool, int, float]]],
                capacity: dict[str, int]) -> float | None:
    """Least primary objective over the whole space; options[pool] = [(pool, batch, L)], one
    per configuration."""
    value = node_cost if request.objective == "cost" else node_watts
    names = sorted(options)
    choices = []
    for name in names:
        per_pool = [None]  # unused
        for pool, batch, limit in options[name]:
            if limit > 0:
                per_pool += [(pool, batch, limit, r) for r in range(1, capacity[name] + 1)]
        choices.append(per_pool)
    best = None
    for combo in itertools.product(*choices):
        used = [c for c in combo if c is not None]
        if not used or (not request.allow_hybrid and len(used) > 1):
            continue
        replicas = sum(r for _, _, _, r in used)
        if replicas < request.min_replicas:
            continue
        if request.max_replicas is not None and replicas > request.max_replicas:
            continue
        if sum(r * limit for _, _, limit, r in used) < request.target_rps * (1 - 1e-9):
            continue
        total = sum(value(pool, r) for pool, _, _, r in used)
        best = total if best is None else min(best, total)
    return best


def random_case(seed: int):
    rng = random.Random(seed)
    pools, profiles = [], []
    for i in range(rng.choice((2, 3))):
        name = f"pool-{i}"
        pools.append(random_pool(rng, name, rng.randint(1, 4)))
        sizes = tuple(sorted(rng.sample((1, 2, 4, 8, 16, 32), rng.choice((2, 3, 4)))))
        profiles.append(random_profile(rng, name, sizes, rng.uniform(0.5, 10),
                                       rng.uniform(0.05, 3), rng.uniform(1.0, 1.4),
                                       concurrency=(1, 2, 4)))
    single_limit = 1000.0 / (profiles[0].points[0].p50_ms)
    request = Request(
        slo_latency_ms=rng.uniform(5, 60), target_rps=rng.uniform(0.2, 4) * single_limit,
        slo_percentile=rng.choice((50, 90, 95, 99)), min_replicas=rng.randint(1, 3),
        max_replicas=rng.choice((None, 4, 6)), objective=rng.choice(("cost", "energy")),
        allow_hybrid=rng.random() < 0.75, headroom=rng.choice((0.0, 0.2, 0.4)),
        max_queue_delay_ms=rng.choice((0.0, 2.0)), concurrency_levels=(1, 2, 4))
    return request, pools, profiles


@pytest.mark.parametrize("seed", range(60))
def test_solver_cost_equals_brute_force_over_every_pool_batch_replicas_split(seed):
    request, pools, profiles = random_case(seed)
    options: dict[str, list[tuple[Pool, int, float]]] = {}
    for pool, profile in zip(pools, profiles, strict=True):
        options[pool.name] = []
        for c in request.concurrency_levels:
            curve = ServiceCurve.from_points(profile.points, concurrency=c)
            options[pool.name] += [
                (pool, b, max_replica_load(curve, b, request.max_queue_delay_ms,
                                           request.slo_percentile, request.slo_latency_ms,
                                           request.headroom))
                for b in curve.batch_sizes]
    capacity = {p.name: p.capacity_replicas for p in pools}

    expected = brute_force(request, options, capacity)
    decision = solve(request, pools, profiles)

    if expected is None:
        assert not decision.feasible
        return
    assert decision.feasible, decision.message
    got = decision.total_cost_per_hour if request.objective == "cost" else decision.total_watts
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12)


def split_case(seed: int):
    rng = random.Random(1000 + seed)
    capacities = []
    for i in range(rng.choice((3, 4))):
        pool = random_pool(rng, f"p{i}", None)
        capacities.append(PoolCapacity(pool, rng.uniform(1, 20), rng.randint(0, 5)))
    target = rng.uniform(1, 0.8 * sum(c.replica_load_rps * c.max_replicas for c in capacities)
                         + 1)
    return (capacities, target, rng.randint(1, 4), rng.choice((None, 5, 8)),
            rng.choice(("cost", "energy")), rng.random() < 0.8)


@pytest.mark.parametrize("seed", range(60))
def test_split_search_equals_brute_force_on_replica_counts(seed):
    capacities, target, min_r, max_r, objective, hybrid = split_case(seed)
    request = Request(1.0, target, min_replicas=min_r, max_replicas=max_r, objective=objective,
                      allow_hybrid=hybrid)
    options = {c.pool.name: [(c.pool, 1, c.replica_load_rps)] for c in capacities}
    expected = brute_force(request, options, {c.pool.name: c.max_replicas for c in capacities})

    split = cheapest_split(capacities, target, min_r, max_r, objective, hybrid)

    if expected is None:
        assert split is None
        return
    assert split is not None and split.exact
    assert split.primary == pytest.approx(expected, rel=1e-9, abs=1e-12)
    by_name = {c.pool.name: c for c in capacities}
    # The replicas it names carry the load within every limit.
    assert sum(r * by_name[n].replica_load_rps for n, r in split.replicas.items()) >= target * (
        1 - 1e-9)
    assert all(r <= by_name[n].max_replicas for n, r in split.replicas.items())
    assert min_r <= sum(split.replicas.values()) <= (max_r or math.inf)
    assert hybrid or len(split.replicas) == 1


@pytest.mark.parametrize("seed", range(60))
def test_each_pool_runs_the_configuration_whose_replicas_take_the_most_load(seed):
    # The solver skips most configurations (bounds, one check above the best); none it skips
    # may take more load than the one it keeps.
    request, pools, profiles = random_case(seed)
    for pool, profile in zip(pools, profiles, strict=True):
        configs = [(ServiceCurve.from_points(profile.points, concurrency=c), b)
                   for c in request.concurrency_levels
                   for b in ServiceCurve.from_points(profile.points, concurrency=c).batch_sizes]
        limits = [max_replica_load(curve, b, request.max_queue_delay_ms, request.slo_percentile,
                                   request.slo_latency_ms, request.headroom)
                  for curve, b in configs]
        chosen = best_configuration(request, pool, configs)
        if max(limits) == 0:
            assert chosen is None
        else:
            assert chosen is not None
            assert chosen.replica_load_rps == max(limits)


def binding_split_case(seed: int):
    """Five pools and a maxReplicas near the fewest replicas that carry the load (or just
    under it), often with minReplicas above what the load needs: the instances that the
    split search's replica-count bounds prune."""
    rng = random.Random(5000 + seed)
    capacities = []
    for i in range(5):
        pool = random_pool(rng, f"p{i}", None)
        capacities.append(PoolCapacity(pool, rng.uniform(1, 20), rng.randint(0, 5)))
    target = rng.uniform(1, 0.9 * sum(c.replica_load_rps * c.max_replicas for c in capacities)
                         + 1)
    # The fewest replicas that carry the target: the fastest first.
    fewest, carried = 0, 0.0
    for c in sorted(capacities, key=lambda c: -c.replica_load_rps):
        while carried < target and fewest < 99 and c.max_replicas > 0:
            take = min(c.max_replicas, math.ceil((target - carried) / c.replica_load_rps))
            fewest, carried = fewest + take, carried + take * c.replica_load_rps
            break
    max_r = max(1, fewest + rng.choice((-1, 0, 0, 1, 2)))
    min_r = min(max_r, rng.choice((1, 1, fewest + 1, fewest + 3)))
    return capacities, target, max(1, min_r), max_r, rng.choice(("cost", "energy"))


@pytest.mark.parametrize("seed", range(60))
def test_split_search_equals_brute_force_where_max_and_min_replicas_bind(seed):
    capacities, target, min_r, max_r, objective = binding_split_case(seed)
    request = Request(1.0, target, min_replicas=min_r, max_replicas=max_r, objective=objective)
    options = {c.pool.name: [(c.pool, 1, c.replica_load_rps)] for c in capacities}
    expected = brute_force(request, options, {c.pool.name: c.max_replicas for c in capacities})

    split = cheapest_split(capacities, target, min_r, max_r, objective, True)

    if expected is None:
        assert split is None
        return
    assert split is not None and split.exact
    assert split.primary == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert min_r <= sum(split.replicas.values()) <= max_r
