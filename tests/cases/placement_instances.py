"""Placement-engine inputs shared by the placement tests: the seed table, realistic prices, and
generators of small random instances (seeded or hypothesis-driven)."""

from __future__ import annotations

import random

from hybridplace.placement import Pool, Profile, ProfilePoint, Request
from hypothesis import strategies as st

# DESIGN.md's seed example: milliseconds per batch at batch 1 / 10 / 100. The table gives one
# figure per batch, so p50 = p95 = p99.
SEED_CPU_MS = {1: 50.0, 10: 400.0, 100: 3500.0}
SEED_GPU_MS = {1: 30.0, 10: 100.0, 100: 800.0}

# Prices: AWS on-demand list prices, us-east-1 (as published on the EC2 pricing page):
#   c7i.xlarge   4 vCPU,  8 GiB             0.1785 USD/h  -> one CPU serving replica per node
#   g4dn.xlarge  4 vCPU, 16 GiB, 1 x T4     0.526  USD/h  -> one GPU serving replica per node
# Power: a busy 4-vCPU server share ~60 W; a T4 at its 70 W cap plus its host share ~110 W.
CPU_NODE_USD_H = 0.1785
GPU_NODE_USD_H = 0.526


def table_profile(pool: str, table: dict[int, float]) -> Profile:
    """A profile with p50 = p95 = p99 = the table's milliseconds, at concurrency 1."""
    return Profile(pool, tuple(ProfilePoint(b, ms, ms, ms) for b, ms in sorted(table.items())))


def seed_pools(cpu_capacity: int | None = None, gpu_capacity: int | None = None) -> list[Pool]:
    return [
        Pool("cpu-c7i", "cpu", price_per_node_hour=CPU_NODE_USD_H, replicas_per_node=1,
             watts_per_node=60, capacity_replicas=cpu_capacity),
        Pool("gpu-t4", "nvidia-gpu", price_per_node_hour=GPU_NODE_USD_H, replicas_per_node=1,
             watts_per_node=110, capacity_replicas=gpu_capacity),
    ]


def seed_profiles() -> list[Profile]:
    return [table_profile("cpu-c7i", SEED_CPU_MS), table_profile("gpu-t4", SEED_GPU_MS)]


def random_profile(rng: random.Random, pool: str, batch_sizes: tuple[int, ...],
                   fixed_ms: float, per_item_ms: float, spread: float,
                   concurrency: tuple[int, ...] = (1,)) -> Profile:
    """Service time fixed + per_item * b with a little noise, p95/p99 spread on top; at
    concurrency c each batch runs 1 + slowdown * (c - 1) times slower (random slowdown)."""
    points = []
    for c in concurrency:
        slow = 1 + rng.uniform(0.2, 1.2) * (c - 1)
        for b in batch_sizes:
            p50 = (fixed_ms + per_item_ms * b) * slow * rng.uniform(0.95, 1.05)
            points.append(ProfilePoint(b, p50, p50 * spread, p50 * spread ** 1.5,
                                       concurrency=c))
    return Profile(pool, tuple(points))


def random_pool(rng: random.Random, name: str, capacity: int | None) -> Pool:
    if rng.random() < 0.5:
        return Pool(name, price_per_node_hour=round(rng.uniform(0.1, 2.0), 3),
                    replicas_per_node=rng.choice((1, 2, 3, 4)),
                    watts_per_node=round(rng.uniform(50, 300)), capacity_replicas=capacity)
    return Pool(name, price_per_replica_hour=round(rng.uniform(0.05, 1.0), 3),
                watts_per_replica=round(rng.uniform(20, 150)), capacity_replicas=capacity)


@st.composite
def small_instances(draw: st.DrawFn) -> tuple[list[Pool], list[Profile]]:
    """Two or three pools, each with two or three batch sizes, capacities 1..6 (or none)."""
    count = draw(st.integers(2, 3))
    pools, profiles = [], []
    for i in range(count):
        name = f"pool-{i}"
        capacity = draw(st.one_of(st.none(), st.integers(1, 6)))
        if draw(st.booleans()):
            pool = Pool(name, price_per_node_hour=draw(st.floats(0.05, 3.0)),
                        replicas_per_node=draw(st.integers(1, 4)),
                        watts_per_node=draw(st.floats(10, 500)), capacity_replicas=capacity)
        else:
            pool = Pool(name, price_per_replica_hour=draw(st.floats(0.01, 2.0)),
                        watts_per_replica=draw(st.floats(5, 200)), capacity_replicas=capacity)
        sizes = sorted(draw(st.sets(st.sampled_from((1, 2, 4, 8, 16, 32)), min_size=2,
                                    max_size=3)))
        fixed = draw(st.floats(0.5, 20.0))
        per_item = draw(st.floats(0.05, 5.0))
        spread = draw(st.floats(1.0, 1.5))
        points = tuple(ProfilePoint(b, fixed + per_item * b, (fixed + per_item * b) * spread,
                                    (fixed + per_item * b) * spread ** 1.5) for b in sizes)
        pools.append(pool)
        profiles.append(Profile(name, points))
    return pools, profiles


def random_requests(allow_hybrid=None, weighted_routing=None):
    """Requests over the SLO, load, replica bounds, objective, headroom and queue delay the
    property tests explore; ``allow_hybrid`` / ``weighted_routing``: strategies for those (None:
    hybrid either way, routing the engine's default)."""
    extra = {} if weighted_routing is None else {"weighted_routing": weighted_routing}
    return st.builds(
        Request,
        slo_latency_ms=st.floats(2.0, 200.0),
        target_rps=st.floats(1.0, 3000.0),
        slo_percentile=st.sampled_from((50, 90, 95, 99)),
        min_replicas=st.integers(1, 3),
        max_replicas=st.one_of(st.none(), st.integers(3, 12)),
        objective=st.sampled_from(("cost", "energy")),
        allow_hybrid=st.booleans() if allow_hybrid is None else allow_hybrid,
        headroom=st.sampled_from((0.0, 0.1, 0.2, 0.5)),
        max_queue_delay_ms=st.sampled_from((0.0, 1.0, 2.0, 10.0)),
        **extra,
    )
