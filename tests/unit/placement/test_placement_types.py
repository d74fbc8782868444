"""The engine's inputs refuse nonsense with a message naming the field; prices and power follow
docs/api.md (whole nodes, or per replica); Decision.to_dict() is exactly status.decision."""

import pytest
from hybridplace.api.models import DecisionStatus
from hybridplace.placement import (
    Alternative,
    Decision,
    Placement,
    Pool,
    Profile,
    ProfilePoint,
    Request,
)
from hybridplace.placement.types import per_million


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Pool("p"), "exactly one of price_per_node_hour and price_per_replica_hour"),
        (lambda: Pool("p", price_per_node_hour=1, price_per_replica_hour=1), "exactly one"),
        (lambda: Pool("p", price_per_node_hour=-1), "price"),
        (lambda: Pool("p", price_per_node_hour=1, replicas_per_node=0), "replicas_per_node"),
        (lambda: Pool("p", price_per_node_hour=1, watts_per_node=1, watts_per_replica=1),
         "watts_per_node and watts_per_replica"),
        (lambda: Pool("p", price_per_node_hour=1, capacity_replicas=-1), "capacity_replicas"),
        (lambda: ProfilePoint(0, 1, 1, 1), "batch_size"),
        (lambda: ProfilePoint(1, 0, 1, 1), "p50_ms"),
        (lambda: ProfilePoint(1, 1, 1, 1, concurrency=0), "concurrency"),
        (lambda: Profile("p", (ProfilePoint(1, 1, 1, 1), ProfilePoint(1, 2, 2, 2))),
         "two points at batch_size=1"),
        (lambda: Request(0, 10), "slo_latency_ms"),
        (lambda: Request(10, 0), "target_rps"),
        (lambda: Request(10, 10, slo_percentile=97), "slo_percentile"),
        (lambda: Request(10, 10, min_replicas=3, max_replicas=2), "max_replicas"),
        (lambda: Request(10, 10, headroom=1.0), "headroom"),
        (lambda: Request(10, 10, objective="speed"), "objective"),
        (lambda: Request(10, 10, max_queue_delay_ms=-1), "max_queue_delay_ms"),
        (lambda: Request(10, 10, concurrency_levels=()), "concurrency_levels"),
    ],
)
def test_bad_input_is_refused_naming_the_field(make, field):
    with pytest.raises(ValueError, match=field):
        make()


@pytest.mark.parametrize(
    ("pool", "replicas", "usd_per_hour", "watts"),
    [
        # A started node is paid whole: 5 replicas at 4 per node take 2 nodes.
        (Pool("n", price_per_node_hour=0.68, replicas_per_node=4, watts_per_node=180), 5,
         2 * 0.68, 2 * 180),
        (Pool("n", price_per_node_hour=0.68, replicas_per_node=4), 4, 0.68, None),
        (Pool("n", price_per_node_hour=0.68, replicas_per_node=4), 0, 0.0, None),
        (Pool("r", price_per_replica_hour=0.35, watts_per_replica=70), 3, 3 * 0.35, 3 * 70),
        # Per-node price with per-replica power: each counted its own way.
        (Pool("m", price_per_node_hour=1.0, replicas_per_node=2, watts_per_replica=50), 3,
         2 * 1.0, 3 * 50),
    ],
)
def test_cost_and_power_follow_docs_api(pool, replicas, usd_per_hour, watts):
    assert pool.cost_per_hour(replicas) == pytest.approx(usd_per_hour)
    assert pool.watts(replicas) == (pytest.approx(watts) if watts is not None else None)


def _decision(feasible: bool) -> Decision:
    placements = (
        [Placement("cpu-standard", 3, 4, 120.0, 41.2, 0.61, 0.57, 180.0),
         Placement("gpu-t4", 1, 16, 80.0, 22.0, 0.4, 0.53, None, concurrency=2)]
        if feasible else [])
    alternatives = [Alternative("gpu-a10", "MoreExpensive", "costs 0.09 USD/h more than the choice",
                                batch_size=16, replicas=1, predicted_latency_ms=22.0,
                                cost_per_hour=1.1, watts=150.0),
                    Alternative("tpu", "NoProfile", "no profile of this model on this pool")]
    return Decision(feasible, "cost", placements, alternatives,
                    best_achievable_latency_ms=None if feasible else 63.1,
                    best_achievable_pool=None if feasible else "gpu-t4",
                    best_achievable_batch_size=None if feasible else 16)


@pytest.mark.parametrize("feasible", [True, False])
def test_to_dict_is_accepted_by_the_api_models_status_decision(feasible):
    as_dict = _decision(feasible).to_dict()
    parsed = DecisionStatus.model_validate(as_dict)
    # Nothing lost on the way: what the engine writes is what the status keeps.
    assert parsed.to_dict() == _without_nulls(as_dict)


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def test_to_dict_has_the_issue_json_keys():
    d = _decision(True).to_dict()
    assert {"feasible", "objective", "placements", "totalCostPerHour", "totalWatts",
            "bestAchievableLatencyMs", "alternatives"} <= set(d)
    assert set(d["placements"][0]) == {"pool", "replicas", "batchSize", "concurrency", "shareRps",
                                       "predictedLatencyMs", "utilisation", "costPerHour",
                                       "watts", "costPerMillion", "wattHoursPerMillion"}
    assert d["totalCostPerHour"] == pytest.approx(0.57 + 0.53)
    # One pool has no power figure: the total is unknown (null), not a wrong sum.
    assert d["totalWatts"] is None
    assert d["placements"][1]["watts"] is None
    # Per million inferences: USD/h over the inferences of one hour at the pool's share.
    assert d["placements"][0]["costPerMillion"] == pytest.approx(0.57e6 / (120 * 3600), abs=1e-4)
    assert d["placements"][0]["wattHoursPerMillion"] == pytest.approx(180e6 / (120 * 3600), abs=1e-4)
    assert d["placements"][1]["wattHoursPerMillion"] is None
    assert d["costPerMillion"] == pytest.approx(1.10e6 / (200 * 3600), abs=1e-4)
    assert d["wattHoursPerMillion"] is None  # unknown for the whole when unknown for a part


def test_per_million_is_unknown_without_load_or_figure():
    assert per_million(0.36, 100.0) == pytest.approx(1.0)  # 0.36 USD/h over 360,000 inferences
    assert per_million(None, 100.0) is None
    assert per_million(0.36, 0.0) is None  # no inferences: no figure rather than infinity
    assert Decision(False, "cost").to_dict()["costPerMillion"] is None


def test_infeasible_to_dict_names_the_best_achievable():
    d = _decision(False).to_dict()
    assert d["feasible"] is False
    assert d["placements"] == []
    assert d["bestAchievableLatencyMs"] == 63.1
    assert d["bestAchievablePool"] == "gpu-t4"
    assert d["bestAchievableBatchSize"] == 16
