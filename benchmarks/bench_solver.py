"""How long one placement decision takes: 10 pools x 10 batch sizes x 5 concurrency levels,
the re-solve at a new load, and a case at the CRD schema's limits.

Targets (issue 15): the worst cold decision <= 20 ms of CPU, a re-solve at a new load with
everything else unchanged <= 1 ms (the scaling loop re-solves every interval), and any input the
CRDs allow <= 1 s. Profiles are synthetic but shaped like real ones: service time a + c*b ms per
batch of b (a fixed per-batch cost, a per-item cost), a 10-30% p95/p99 spread, and c concurrent
instances each running 1 + 0.5*(c-1) times slower (parallel efficiency falling with c). Pools
differ in speed, price (per node or per replica), packing and capacity, so splits happen.
Several SLOs and loads, since pruning depends on them.

Each cold decision (the cache of per-pool limits cleared first) is timed once per round, in
``--runs`` rounds over every decision, and its least CPU time kept (the worst median over
rounds is printed too): the work is deterministic, and the least of repeated timings is the
estimator ``timeit`` recommends (higher ones measure interference). Re-solves (well under a
millisecond) are timed ``--runs`` times back to back and their least kept. The verdict is on CPU
time; the load average is printed to read wall times by. Two things move the figures on this
shared VM: the whole host slows by up to 1.5x for ten seconds and more at a time (a run inside
such a spell reads that much higher; rerun it), and idle time between decisions costs caches:
``--spread 60`` (rounds spread over a minute, idle between) reads the median round about 1.5x
the back-to-back one, the least about the same.

Run: make bench-solver   (or: python benchmarks/bench_solver.py [--repeat N] [--runs N] [--spread S])
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import random
import statistics
import time

from hybridplace.placement import Decision, Pool, Profile, ProfilePoint, Request, solve
from hybridplace.placement.solver import clear_limit_cache
from hybridplace.placement.split import PoolCapacity, cheapest_split

BATCH_SIZES = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
CONCURRENCY = (1, 2, 4, 8, 16)
# The schema's limits: 32 allowed pools (spec.placement.pools), 512 points per ModelProfile
# (here 64 batch sizes x 8 concurrency levels), 16 batch sizes and 8 concurrency levels asked.
LIMIT_POOLS, LIMIT_BATCHES, LIMIT_CONCURRENCY = 32, 64, 8


def make_instance(seed: int, pools_n: int = 10, batch_sizes: tuple[int, ...] = BATCH_SIZES,
                  concurrency: tuple[int, ...] = CONCURRENCY) -> tuple[list[Pool], list[Profile]]:
    rng = random.Random(seed)
    pools, profiles = [], []
    for i in range(pools_n):
        gpu = i % 3 == 0
        name = f"{'gpu' if gpu else 'cpu'}-{i}"
        # A mid-sized model: on CPU ~1-3 ms fixed and ~1-4 ms per item; on GPU a larger fixed
        # cost (launch, copies) and a small per-item cost.
        fixed = rng.uniform(2, 8) if gpu else rng.uniform(1, 3)
        per_item = rng.uniform(0.05, 0.3) if gpu else rng.uniform(1.0, 4.0)
        if rng.random() < 0.5:
            pool = Pool(name, "nvidia-gpu" if gpu else "cpu",
                        price_per_node_hour=rng.uniform(0.5, 3.0) if gpu else rng.uniform(0.3, 1.6),
                        replicas_per_node=1 if gpu else rng.choice((2, 4, 8)),
                        watts_per_node=rng.uniform(150, 400),
                        capacity_replicas=rng.choice((4, 8, 16, 32, None)))
        else:
            pool = Pool(name, "nvidia-gpu" if gpu else "cpu",
                        price_per_replica_hour=(rng.uniform(0.4, 2.5) if gpu
                                                else rng.uniform(0.05, 0.3)),
                        watts_per_replica=rng.uniform(40, 250),
                        capacity_replicas=rng.choice((4, 8, 16, 32, None)))
        points = []
        for c in concurrency:
            slow = 1 + 0.5 * (c - 1)
            for b in batch_sizes:
                p50 = (fixed + per_item * b) * slow
                spread = rng.uniform(1.1, 1.3)
                points.append(ProfilePoint(b, p50, p50 * spread, p50 * spread ** 1.6,
                                           concurrency=c))
        pools.append(pool)
        profiles.append(Profile(name, tuple(points)))
    return pools, profiles


def _hard_split(seed: int) -> list[PoolCapacity]:
    """32 pools priced per replica at 0.3-2 USD/h, 50-150 requests/s per replica, capacities 4
    to unbounded. The hardest instance of a scan of such (seed 1; the random draws also make a
    per-node-priced set first, unused): with 1000 replicas in all for 100,000 requests/s the
    cap just binds, and the search stops at its work limit."""
    rng = random.Random(seed)
    capacities: list[PoolCapacity] = []
    for per_node in (True, False):
        capacities = []
        for i in range(LIMIT_POOLS):
            cap = rng.choice((4, 16, 64, 10000))
            if per_node:
                pool = Pool(f"p{i}", "cpu", price_per_node_hour=rng.uniform(0.3, 2),
                            replicas_per_node=rng.choice((1, 2, 4, 8)), capacity_replicas=cap)
            else:
                pool = Pool(f"p{i}", "cpu", price_per_replica_hour=rng.uniform(0.3, 2),
                            capacity_replicas=cap)
            capacities.append(PoolCapacity(pool, rng.uniform(50, 150), cap))
    return capacities


def _timed(request: Request, pools: list[Pool], profiles: list[Profile], runs: int,
           cold: bool, explain: bool = True) -> tuple[float, float, Decision]:
    """The least (CPU ms, wall ms) of ``runs`` decisions, and the last one."""
    cpu: list[float] = []
    wall: list[float] = []
    result = None
    for _ in range(runs):
        if cold:
            clear_limit_cache()
        start, start_cpu = time.perf_counter(), time.process_time()
        result = solve(request, pools, profiles, explain=explain)
        cpu.append(1000 * (time.process_time() - start_cpu))
        wall.append(1000 * (time.perf_counter() - start))
    assert result is not None
    return min(cpu), min(wall), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5,
                        help="decisions per scenario (each on another random instance)")
    parser.add_argument("--spread", type=float, default=0.0,
                        help="seconds to spread the rounds of cold decisions over (idle "
                             "between them); 0: back to back")
    parser.add_argument("--runs", type=int, default=7,
                        help="rounds over every cold decision (its least CPU time is kept), "
                             "and times each re-solve is timed (its least is kept)")
    args = parser.parse_args()
    if args.repeat < 1 or args.runs < 1:
        parser.error("--repeat and --runs must be at least 1")
    if args.spread < 0:
        parser.error("--spread must be at least 0 seconds")

    scenarios = [
        ("p95<=50ms, 2000 rps, hybrid", Request(50, 2000, 95, max_replicas=200)),
        ("p95<=20ms, 5000 rps, hybrid", Request(20, 5000, 95, max_replicas=400)),
        ("p99<=200ms, 500 rps, energy", Request(200, 500, 99, objective="energy")),
        ("p95<=5ms, 100 rps, single pool", Request(5, 100, 95, allow_hybrid=False)),
        ("p50<=1000ms, 20000 rps, hybrid", Request(1000, 20000, 50, max_replicas=1000)),
    ]
    print(f"# bench_solver: 10 pools x {len(BATCH_SIZES)} batch sizes x {len(CONCURRENCY)} "
          f"concurrency levels; Python {platform.python_version()} on {platform.machine()}; "
          f"least of {args.runs} rounds over {args.spread:g} s per cold decision")
    # cpu ms: a cold decision (no cached limits), its least over the rounds; median over
    # instances, and the worst; "max med": the worst instance's median over the rounds;
    # re-solve: the same at a new load with explain=False (the scaling loop's call), and
    # explained: the same with the alternatives worked out.
    print(f"{'scenario':32s} {'cpu ms':>7s} {'max':>6s} {'max med':>7s} {'wall ms':>8s} "
          f"{'re-solve':>9s} {'max':>6s} {'explained':>9s}  decision")
    requests = [(label, dataclasses.replace(request, concurrency_levels=CONCURRENCY))
                for label, request in scenarios]
    instances = [make_instance(seed) for seed in range(args.repeat)]
    # Cold decisions in rounds: every (scenario, instance) once per round.
    cold: dict[tuple[int, int], list[tuple[float, float]]] = {}
    decisions: dict[tuple[int, int], Decision] = {}
    began = time.monotonic()
    for round_ in range(args.runs):
        if round_:
            # Spread the rounds over --spread seconds: a slow spell of the host then covers
            # some rounds of a decision, not all of them.
            time.sleep(max(0.0, began + args.spread * round_ / (args.runs - 1) - time.monotonic()))
        for i, (_, request) in enumerate(requests):
            for seed, (pools, profiles) in enumerate(instances):
                cpu, wall, decisions[i, seed] = _timed(request, pools, profiles, 1, cold=True)
                cold.setdefault((i, seed), []).append((cpu, wall))
    worst = worst_median = worst_wall = worst_resolve = worst_explained = 0.0
    for i, (label, request) in enumerate(requests):
        cpu_times, median_times, wall_times, resolve_times, explained_times = [], [], [], [], []
        decision = None
        for seed, (pools, profiles) in enumerate(instances):
            timings = cold[i, seed]
            cpu_times.append(min(cpu for cpu, _ in timings))
            median_times.append(statistics.median(cpu for cpu, _ in timings))
            wall_times.append(min(wall for _, wall in timings))
            decision = decisions[i, seed]
            solve(request, pools, profiles)  # the limits cached again for the re-solves
            # The scaling loop's call: the same everything at a new load (limits cached).
            for factor in (1.1, 0.7, 1.5):
                moved = dataclasses.replace(request, target_rps=request.target_rps * factor)
                resolve_times.append(_timed(moved, pools, profiles, args.runs, cold=False,
                                            explain=False)[0])
                explained_times.append(_timed(moved, pools, profiles, args.runs,
                                              cold=False)[0])
        worst, worst_wall = max(worst, max(cpu_times)), max(worst_wall, max(wall_times))
        worst_median = max(worst_median, max(median_times))
        worst_resolve = max(worst_resolve, max(resolve_times))
        worst_explained = max(worst_explained, max(explained_times))
        summary = decision.message if decision else ""
        print(f"{label:32s} {statistics.median(cpu_times):7.1f} {max(cpu_times):6.1f} "
              f"{max(median_times):7.1f} {statistics.median(wall_times):8.1f} "
              f"{statistics.median(resolve_times):9.2f} {max(resolve_times):6.2f} "
              f"{statistics.median(explained_times):9.2f}  {summary[:60]}")

    # At the schema's limits, infeasible three ways: no pool meets the SLO, maxReplicas cannot
    # carry the load (the split search's worst case before it was bounded), and the load beyond
    # every pool.
    limit_batches = tuple(sorted(random.Random(7).sample(range(1, 4097), LIMIT_BATCHES)))
    limit_concurrency = (1, 2, 4, 8, 16, 32, 64, 128)
    pools, profiles = make_instance(11, LIMIT_POOLS, limit_batches, limit_concurrency)
    asked = dict(batch_sizes=limit_batches[:16], concurrency_levels=limit_concurrency)
    limits = [
        ("SLO below every pool", Request(0.5, 1000, 99, max_replicas=10000, **asked)),
        ("maxReplicas too few", Request(200, 200000, 95, max_replicas=10, **asked)),
        ("load beyond capacity", Request(200, 1e9, 95, max_replicas=10000, **asked)),
        ("every batch size allowed", Request(0.5, 1000, 99, max_replicas=10000,
                                             concurrency_levels=limit_concurrency)),
    ]
    print(f"# at the schema's limits: {LIMIT_POOLS} pools x {LIMIT_BATCHES * LIMIT_CONCURRENCY}"
          f" points ({LIMIT_BATCHES} batch sizes x {LIMIT_CONCURRENCY} concurrency levels)")
    worst_limit = 0.0
    for label, request in limits:
        cpu, wall, decision = _timed(request, pools, profiles, 1, cold=True)
        worst_limit = max(worst_limit, cpu)
        print(f"{label:32s} {cpu:7.1f} {'':6s} {'':7s} {wall:8.1f} {'':9s} {'':6s} {'':9s}  "
              f"feasible={decision.feasible}: {decision.message[:60]}")

    # The split search alone at its worst seen: 32 pools of similar price per request/s and a
    # maxReplicas that just binds; bounded by the search's work limit.
    capacities = _hard_split(1)
    start = time.process_time()
    split = cheapest_split(capacities, 100_000, 50, 1000, "cost", True)
    cpu = 1000 * (time.process_time() - start)
    worst_limit = max(worst_limit, cpu)
    print(f"{'split search, maxReplicas binds':32s} {cpu:7.1f} {'':6s} {'':7s} {'':8s} {'':9s} {'':6s} "
          f"{'':9s}  {'exact' if split and split.exact else 'stopped at its work limit'}")
    # The same with only even-spread splits (no gateway: a Service's routing): one search per
    # distinct per-replica limit, sharing the one work limit.
    start = time.process_time()
    split = cheapest_split(capacities, 100_000, 50, 1000, "cost", True, even_spread=True)
    cpu = 1000 * (time.process_time() - start)
    worst_limit = max(worst_limit, cpu)
    print(f"{'split search, even spread':32s} {cpu:7.1f} {'':6s} {'':7s} {'':8s} {'':9s} {'':6s} "
          f"{'':9s}  {'exact' if split and split.exact else 'stopped at its work limit'}")

    load = os.getloadavg()[0]
    print(f"worst decision: {worst:.1f} ms CPU ({worst_wall:.1f} ms wall; the worst median "
          f"over rounds {worst_median:.1f} ms), target <= 20 ms: "
          f"{'OK' if worst <= 20 else 'OVER'}; worst re-solve at a new load: {worst_resolve:.2f}"
          f" ms CPU ({worst_explained:.2f} explained), goal <= 1 ms: "
          f"{'OK' if worst_resolve <= 1 else 'OVER'}; schema limits: "
          f"{worst_limit:.0f} ms CPU, target <= 1000 ms: "
          f"{'OK' if worst_limit <= 1000 else 'OVER'} (load average {load:.1f} on "
          f"{os.cpu_count()} cores)")


if __name__ == "__main__":
    main()
