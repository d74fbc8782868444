"""The worked example (benchmarks/seed_crossover.py) on the shipped example files: CPU below the
crossover, GPU from it, checked by hand against the seed table and the example prices."""

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("seed_crossover",
                                               REPO / "benchmarks" / "seed_crossover.py")
seed_crossover = importlib.util.module_from_spec(_spec)
sys.modules["seed_crossover"] = seed_crossover  # dataclasses look their module up there
_spec.loader.exec_module(seed_crossover)

EXAMPLE = seed_crossover.load_example()
# By hand: at p95 <= 1000 ms both pools are limited by the 20% headroom at batch 100, not by
# the SLO: a CPU replica takes 0.8 * 100 / 3.5 s = 22.86 requests/s (0.2016 USD/h), a T4 node
# 0.8 * 100 / 0.8 s = 100 (0.752 USD/h). Three CPU replicas (0.6048) carry 68.57 requests/s;
# a fourth (0.8064) costs more than one T4 node.
CPU_REPLICA_RPS = 0.8 * 100 / 3.5
CROSSOVER = 3 * CPU_REPLICA_RPS


def test_the_crossover_is_where_a_fourth_cpu_replica_costs_more_than_a_t4_node():
    cross = seed_crossover.crossover(EXAMPLE, 50, 100)
    assert cross == pytest.approx(CROSSOVER, abs=0.01)
    below, above = EXAMPLE.decide(cross - 0.01), EXAMPLE.decide(cross)
    assert [(p.pool, p.replicas) for p in below.placements] == [("cpu-standard", 3)]
    assert below.total_cost_per_hour == pytest.approx(3 * 0.2016)
    assert [(p.pool, p.replicas) for p in above.placements] == [("gpu-t4", 1)]
    assert above.total_cost_per_hour == pytest.approx(0.752)


def test_each_pool_alone_and_the_hybrid_choice_at_high_load():
    cpu, gpu = (EXAMPLE.decide(1000, only) for only in ("cpu-standard", "gpu-t4"))
    assert cpu.total_replicas == 44  # ceil(1000 / 22.86)
    assert gpu.total_replicas == 10
    # 850 requests/s: 8 T4 nodes carry 800; three CPU replicas cost less than a ninth node.
    chosen = EXAMPLE.decide(850)
    assert {p.pool: p.replicas for p in chosen.placements} == {"cpu-standard": 3, "gpu-t4": 8}
    assert chosen.total_cost_per_hour == pytest.approx(3 * 0.2016 + 8 * 0.752)


def test_the_caps_of_the_example_are_kept_on_request():
    capped = seed_crossover.load_example(keep_capacity=True)
    assert not capped.decide(5000).feasible
    assert EXAMPLE.decide(5000).feasible


def test_the_documented_worked_example_matches_the_script():
    text = (REPO / "docs" / "placement.md").read_text()
    assert f"{CROSSOVER:.2f} requests/s" in text
    assert "make plot" in text and "seed-crossover.png" in text
