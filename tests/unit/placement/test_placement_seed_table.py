"""The seed example (DESIGN.md), checked by hand: CPU 50 / 400 / 3500 ms and GPU 30 / 100 / 800 ms
per batch at batch 1 / 10 / 100 (p50 = p95 = p99), a c7i.xlarge CPU node at 0.1785 USD/h and a
g4dn.xlarge T4 node at 0.526 USD/h (AWS on-demand, us-east-1), one replica per node, SLO
p95 <= 1000 ms, default headroom 0.2 and queue delay 2 ms.

The arithmetic every case below rests on. Headroom 0.2 caps a replica at 80% of its full-batch
throughput, batch / service time:
    CPU batch 1:     1 / 0.050 s = 20.0 rps -> 16.0    GPU batch 1:     1 / 0.030 s =  33.3 -> 26.7
        batch 10:   10 / 0.400 s = 25.0 rps -> 20.0        batch 10:   10 / 0.100 s = 100.0 -> 80.0
        batch 100: 100 / 3.5 s   = 28.6 rps -> 22.86       batch 100: 100 / 0.8 s   = 125.0 -> 100
With max batch 100 a replica still runs small batches at these loads (the batch that gathers
during one service: about 3-4 items on CPU, 10 on GPU, so ~150 ms and ~100 ms services), and its
p95 stays under 1000 ms up to the cap (model: CPU 737 ms, GPU 291 ms; the batcher simulation: 937
and 322 ms). So batch 100 is each pool's best: CPU 22.86 rps, GPU 100 rps per replica.
Per request/s that is 0.1785 / 22.86 = 0.0078 USD/h on CPU and 0.526 / 100 = 0.00526 on GPU:
GPU is cheaper per unit of load, CPU is the cheaper first node.
"""

import pytest
from cases.placement_instances import (
    CPU_NODE_USD_H,
    GPU_NODE_USD_H,
    SEED_CPU_MS,
    SEED_GPU_MS,
    seed_pools,
    seed_profiles,
)
from hybridplace.placement import MORE_EXPENSIVE, OVER_SLO, Request, ServiceCurve, solve
from hybridplace.placement.latency import max_replica_load

SLO_MS = 1000.0


def test_the_per_replica_limits_are_the_hand_computed_ones():
    cpu = ServiceCurve.deterministic(SEED_CPU_MS)
    gpu = ServiceCurve.deterministic(SEED_GPU_MS)
    assert [max_replica_load(cpu, b, 2.0, 95, SLO_MS, 0.2) for b in (1, 10, 100)] == (
        pytest.approx([16.0, 20.0, 22.857142857], rel=1e-6))
    assert [max_replica_load(gpu, b, 2.0, 95, SLO_MS, 0.2) for b in (1, 10, 100)] == (
        pytest.approx([26.6666667, 80.0, 100.0], rel=1e-6))


@pytest.mark.parametrize(
    ("load_rps", "pool", "replicas", "usd_per_hour", "why"),
    [
        # One replica either way (minReplicas 1); a CPU node is the cheaper node.
        (1, "cpu-c7i", 1, CPU_NODE_USD_H, "0.1785 < 0.526"),
        # 30 rps: CPU needs ceil(30 / 22.86) = 2 nodes = 0.357 < one GPU node 0.526.
        (30, "cpu-c7i", 2, 2 * CPU_NODE_USD_H, "0.357 < 0.526"),
        # 50 rps: CPU needs ceil(50 / 22.86) = 3 nodes = 0.5355 > one GPU node 0.526: crossover.
        (50, "gpu-t4", 1, GPU_NODE_USD_H, "0.5355 > 0.526"),
        # 1000 rps: GPU 1000 / 100 = 10 nodes = 5.26; CPU ceil(1000 / 22.86) = 44 nodes = 7.854.
        # No mix helps: a CPU node's load costs more per rps and 10 GPUs fill 1000 exactly.
        (1000, "gpu-t4", 10, 10 * GPU_NODE_USD_H, "5.26 < 7.854"),
    ],
)
def test_low_load_picks_cpu_and_high_load_picks_gpu_at_a_large_batch(
        load_rps, pool, replicas, usd_per_hour, why):
    decision = solve(Request(SLO_MS, load_rps), seed_pools(), seed_profiles())
    assert decision.feasible, decision.message
    assert [(p.pool, p.replicas, p.batch_size) for p in decision.placements] == [
        (pool, replicas, 100)], why
    assert decision.total_cost_per_hour == pytest.approx(usd_per_hour)
    assert decision.placements[0].predicted_latency_ms <= SLO_MS
    # It is latency under load, not an isolated batch: never below the batch-1 service time.
    assert decision.placements[0].predicted_latency_ms >= (30.0 if pool == "gpu-t4" else 50.0)


def test_the_losing_pool_says_by_how_much():
    decision = solve(Request(SLO_MS, 1000), seed_pools(), seed_profiles())
    (cpu,) = decision.alternatives
    assert (cpu.pool, cpu.reason, cpu.replicas) == ("cpu-c7i", MORE_EXPENSIVE, 44)
    # 44 * 0.1785 - 10 * 0.526 = 7.854 - 5.26 = 2.594
    assert cpu.message == "costs 2.594 USD/h more than the choice"


def test_an_slo_below_every_batch_1_latency_is_infeasible_and_names_the_best_achievable():
    # 20 ms is below GPU batch 1 (30 ms) and CPU batch 1 (50 ms): nothing can meet it. The best
    # any pool does is a lone request on a GPU at batch 1: 30 ms.
    decision = solve(Request(20.0, 10), seed_pools(gpu_capacity=8), seed_profiles())
    assert not decision.feasible
    assert decision.placements == ()
    assert decision.best_achievable_pool == "gpu-t4"
    assert decision.best_achievable_batch_size == 1
    assert decision.best_achievable_latency_ms == pytest.approx(30.0, rel=1e-3)
    assert {(a.pool, a.reason) for a in decision.alternatives} == {
        ("cpu-c7i", OVER_SLO), ("gpu-t4", OVER_SLO)}
    assert "best achievable p95 is 30 ms on gpu-t4 at batch 1" in decision.message
    as_dict = decision.to_dict()
    assert as_dict["feasible"] is False and as_dict["bestAchievableLatencyMs"] == 30.0
