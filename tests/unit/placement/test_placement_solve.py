"""solve(): which pools are considered and why others are not, splits when capacity runs out or a
mix is cheaper, the energy objective, minReplicas across a split, and the answer when nothing
fits."""

import pytest
from cases.placement_instances import table_profile
from hybridplace.placement import (
    MORE_ENERGY,
    MORE_EXPENSIVE,
    NO_PROFILE,
    NOT_ALLOWED,
    OVER_CAPACITY,
    PROFILE_FAILED,
    Pool,
    Profile,
    ProfilePoint,
    Request,
    solve,
)

# A small model: 2 ms + 0.5 ms per item. One replica at batch 8 serves 8 / 6 ms = 1333 rps,
# 1067 rps within 20% headroom; its p95 at that load is far below a 100 ms SLO.
FAST = {1: 2.5, 8: 6.0}


def pool(name, usd, per_node=1, capacity=None, watts=None, per_replica=False):
    if per_replica:
        return Pool(name, price_per_replica_hour=usd, watts_per_replica=watts,
                    capacity_replicas=capacity)
    return Pool(name, price_per_node_hour=usd, replicas_per_node=per_node, watts_per_node=watts,
                capacity_replicas=capacity)


def test_every_excluded_pool_is_listed_with_its_reason():
    pools = [pool("a-chosen", 1.0), pool("b-not-allowed", 0.1), pool("c-no-profile", 0.1),
             pool("d-failed", 0.1), pool("e-full", 0.1, capacity=0)]
    profiles = [table_profile("a-chosen", FAST), table_profile("b-not-allowed", FAST),
                Profile("d-failed", failure="NoDevice: no CUDA device on the node"),
                table_profile("e-full", FAST)]
    request = Request(100, 100, pools=("a-chosen", "c-no-profile", "d-failed", "e-full"))
    decision = solve(request, pools, profiles)
    assert [p.pool for p in decision.placements] == ["a-chosen"]
    reasons = {a.pool: (a.reason, a.message) for a in decision.alternatives}
    assert reasons == {
        "b-not-allowed": (NOT_ALLOWED, "not in the deployment's allowed pools"),
        "c-no-profile": (NO_PROFILE, "no profile of this model on this pool"),
        "d-failed": (PROFILE_FAILED, "NoDevice: no CUDA device on the node"),
        "e-full": (OVER_CAPACITY, "no free capacity for another replica"),
    }


def test_a_profile_with_only_unstable_points_is_used_and_the_message_says_so():
    # On a shared 2-core machine every point may be unstable; refusing them placed nothing.
    unstable = Profile("a", (ProfilePoint(1, 2, 2.5, 3, stable=False),
                             ProfilePoint(8, 6, 7, 8, stable=False)))
    stable = Profile("a", (ProfilePoint(1, 2, 2.5, 3), ProfilePoint(8, 6, 7, 8)))
    decision = solve(Request(100, 10), [pool("a", 1.0)], [unstable])
    assert decision.feasible
    assert [(p.pool, p.replicas) for p in decision.placements] == [("a", 1)]
    assert decision.message.endswith("; a measured unstable (2 of 2 points)")
    # The same figures marked stable give the same placement and no note.
    same = solve(Request(100, 10), [pool("a", 1.0)], [stable])
    assert same.placements == decision.placements
    assert "unstable" not in same.message


def test_the_unstable_note_counts_the_points_of_the_chosen_concurrency_per_chosen_pool():
    points = (ProfilePoint(1, 2, 2.5, 3, stable=False), ProfilePoint(8, 6, 7, 8),
              ProfilePoint(1, 3, 3.5, 4, concurrency=2, stable=False))
    decision = solve(Request(100, 10), [pool("a", 1.0), pool("b", 2.0)],
                     [Profile("a", points), Profile("b", points)])
    assert [p.pool for p in decision.placements] == ["a"]
    assert decision.message.endswith("; a measured unstable (1 of 2 points)")
    assert "b measured" not in decision.message


def test_the_cheapest_pool_wins_and_the_others_say_by_how_much():
    decision = solve(Request(100, 100), [pool("cheap", 0.3), pool("dear", 0.5)],
                     [table_profile("cheap", FAST), table_profile("dear", FAST)])
    assert [(p.pool, p.replicas) for p in decision.placements] == [("cheap", 1)]
    (dear,) = decision.alternatives
    assert (dear.reason, dear.message) == (MORE_EXPENSIVE, "costs 0.2 USD/h more than the choice")


def test_when_a_pool_runs_out_of_capacity_the_load_is_split():
    # cheap holds 2 replicas (2 x 1067 rps); 3000 rps needs a third replica elsewhere.
    decision = solve(Request(100, 3000), [pool("cheap", 0.3, capacity=2), pool("dear", 0.5)],
                     [table_profile("cheap", FAST), table_profile("dear", FAST)])
    assert [(p.pool, p.replicas) for p in decision.placements] == [("cheap", 2), ("dear", 1)]
    assert sum(p.share_rps for p in decision.placements) == pytest.approx(3000)
    # Shares follow what each replica may take: same configuration, so 1000 rps each.
    assert [p.share_rps for p in decision.placements] == pytest.approx([2000, 1000])
    alone = {a.pool: a for a in decision.alternatives}
    assert alone["cheap"].reason == OVER_CAPACITY
    assert alone["cheap"].message == ("alone it needs 3 replicas at batch 8; the pool's capacity "
                                      "is 2")
    assert alone["dear"].reason == MORE_EXPENSIVE  # 3 x 0.5 = 1.5 > 2 x 0.3 + 0.5 = 1.1


def test_whole_node_prices_make_a_mix_cheaper_than_either_pool_alone():
    # big: 4 replicas per node at 1.0 USD/h; small: 1 replica per node at 0.3 USD/h.
    # 5 replicas' worth of load: big alone 2 nodes = 2.0; small alone 5 nodes = 1.5;
    # one big node (4) + one small node (1) = 1.3.
    per_replica = 1066.0
    decision = solve(Request(100, 4.9 * per_replica),
                     [pool("big", 1.0, per_node=4), pool("small", 0.3)],
                     [table_profile("big", FAST), table_profile("small", FAST)])
    assert [(p.pool, p.replicas) for p in decision.placements] == [("big", 4), ("small", 1)]
    assert decision.total_cost_per_hour == pytest.approx(1.3)


def test_without_hybrid_the_load_stays_on_one_pool():
    request = Request(100, 3000, allow_hybrid=False)
    pools = [pool("cheap", 0.3, capacity=2), pool("dear", 0.5)]
    profiles = [table_profile("cheap", FAST), table_profile("dear", FAST)]
    decision = solve(request, pools, profiles)
    assert [(p.pool, p.replicas) for p in decision.placements] == [("dear", 3)]


def test_min_replicas_counts_replicas_across_all_pools():
    # The load needs one replica; minReplicas 3 asks for three in total, the cheapest way.
    decision = solve(Request(100, 100, min_replicas=3),
                     [pool("cheap", 0.3, capacity=2), pool("dear", 0.5)],
                     [table_profile("cheap", FAST), table_profile("dear", FAST)])
    assert sum(p.replicas for p in decision.placements) == 3
    assert [(p.pool, p.replicas) for p in decision.placements] == [("cheap", 2), ("dear", 1)]


def test_max_replicas_caps_the_total_and_can_make_it_infeasible():
    decision = solve(Request(100, 3000, max_replicas=2), [pool("a", 0.3)],
                     [table_profile("a", FAST)])
    assert not decision.feasible
    (alone,) = decision.alternatives
    assert alone.reason == OVER_CAPACITY
    assert alone.message == "alone it needs 3 replicas at batch 8; maxReplicas is 2"


def test_energy_objective_picks_the_lowest_watts_and_breaks_ties_by_cost():
    pools = [pool("frugal", 0.9, watts=70), pool("cheap", 0.3, watts=200),
             pool("frugal-dear", 1.2, watts=70), pool("unmetered", 0.1)]
    profiles = [table_profile(p.name, FAST) for p in pools]
    decision = solve(Request(100, 100, objective="energy"), pools, profiles)
    assert [p.pool for p in decision.placements] == ["frugal"]
    assert decision.total_watts == 70
    reasons = {a.pool: (a.reason, a.message) for a in decision.alternatives}
    assert reasons["cheap"] == (MORE_ENERGY, "draws 130 W more than the choice")
    assert reasons["frugal-dear"][0] == MORE_ENERGY  # same watts, loses on cost
    assert reasons["unmetered"] == (NOT_ALLOWED, "has no power figure; objective energy needs one")


def test_more_instances_per_replica_are_used_when_measured_and_allowed():
    # At concurrency 2 each batch takes 1.2x longer but two run side by side: a replica at
    # batch 8 serves 2 x 8 / 7.2 ms = 2222 rps (1778 within headroom) instead of 1333 (1067).
    points = [ProfilePoint(b, ms, ms, ms) for b, ms in FAST.items()] + [
        ProfilePoint(b, 1.2 * ms, 1.2 * ms, 1.2 * ms, concurrency=2) for b, ms in FAST.items()]
    profiles = [Profile("a", tuple(points))]
    one = solve(Request(100, 1700), [pool("a", 1.0)], profiles)
    two = solve(Request(100, 1700, concurrency_levels=(1, 2)), [pool("a", 1.0)], profiles)
    assert [(p.replicas, p.concurrency) for p in one.placements] == [(2, 1)]
    assert [(p.replicas, p.concurrency) for p in two.placements] == [(1, 2)]
    assert two.total_cost_per_hour == pytest.approx(one.total_cost_per_hour / 2)


def test_batch_sizes_can_be_restricted():
    decision = solve(Request(100, 100, batch_sizes=(1,)), [pool("a", 1.0)],
                     [table_profile("a", FAST)])
    assert [p.batch_size for p in decision.placements] == [1]


def test_two_profiles_for_one_pool_are_refused():
    with pytest.raises(ValueError, match="two profiles for pool 'a'"):
        solve(Request(100, 100), [pool("a", 1.0)],
              [table_profile("a", FAST), table_profile("a", FAST)])


def test_a_pool_that_cannot_carry_the_load_at_any_batch_is_over_capacity():
    decision = solve(Request(100, 1e6, max_replicas=2), [pool("a", 1.0)],
                     [table_profile("a", FAST)])
    assert not decision.feasible
    assert decision.best_achievable_latency_ms is None
    assert "can carry the load" in decision.message


def test_a_re_solve_at_a_new_load_gives_what_a_cold_solve_gives():
    # The per-pool limits are cached across calls (keyed by profile, SLO, headroom, ...; not
    # the load): a decision after others must equal one from a cleared cache.
    from hybridplace.placement.solver import clear_limit_cache

    pools = [pool("cpu", 0.4, per_node=2, capacity=6), pool("gpu", 2.0)]
    profiles = [table_profile("cpu", {1: 5.0, 8: 30.0}), table_profile("gpu", FAST)]
    warm = [solve(Request(50, rps, max_replicas=20), pools, profiles)
            for rps in (100, 900, 3000, 100)]
    for rps, decision in zip((100, 900, 3000, 100), warm, strict=True):
        clear_limit_cache()
        assert solve(Request(50, rps, max_replicas=20), pools, profiles) == decision
    assert warm[0] == warm[3]
    assert warm[0].placements != warm[2].placements  # the load did change the answer


def test_a_changed_slo_or_profile_is_not_answered_from_the_cache():
    pools = [pool("a", 1.0)]
    slow = table_profile("a", {1: 40.0, 8: 120.0})
    fast = table_profile("a", {1: 4.0, 8: 12.0})
    assert solve(Request(100, 50), pools, [slow]).feasible
    assert not solve(Request(30, 500), pools, [slow]).feasible  # SLO changed: recomputed
    assert solve(Request(30, 500), pools, [fast]).feasible  # profile changed: recomputed


def test_without_explanation_the_placements_are_the_same_and_no_alternatives_are_listed():
    pools = [pool("a-cheap", 0.5, capacity=2), pool("b-dear", 3.0), pool("c-none", 0.1)]
    profiles = [table_profile("a-cheap", FAST), table_profile("b-dear", FAST)]
    request = Request(100, 5000)
    full = solve(request, pools, profiles)
    short = solve(request, pools, profiles, explain=False)
    assert full.feasible and short.feasible
    assert short.placements == full.placements and short.message == full.message
    assert full.alternatives and short.alternatives == ()
    # An infeasible answer is always explained.
    impossible = Request(0.1, 5000)
    assert solve(impossible, pools, profiles, explain=False) == solve(impossible, pools, profiles)


def test_points_an_adaptive_search_skipped_never_make_a_pool_look_better():
    # Concave service time: the straight line 1 -> 32 under-states 2..16. With the in-between
    # sizes marked skipped, a replica takes no more load than the full grid allows.
    def ms(b):
        return 1.0 + 2.0 * b ** 0.5

    full = table_profile("a", {b: ms(b) for b in (1, 2, 4, 8, 16, 32)})
    sparse_points = tuple(p for p in full.points if p.batch_size in (1, 32))
    plain = Profile("a", sparse_points)
    careful = Profile("a", sparse_points, skipped=((2, 1), (4, 1), (8, 1), (16, 1)))
    pools = [pool("a", 1.0, per_replica=True)]
    for slo in (10, 20, 30):
        for delay in (0.0, 5.0):
            request = Request(slo, 20000, max_queue_delay_ms=delay)
            with_grid = solve(request, pools, [full]).total_replicas
            assert solve(request, pools, [careful]).total_replicas >= with_grid
    # The plain line (what the skipped sizes would read as otherwise) is optimistic: at a 10 ms
    # SLO it promises about twice the load per replica the full grid does.
    request = Request(10, 20000, max_queue_delay_ms=0.0)
    assert (solve(request, pools, [plain]).total_replicas
            < solve(request, pools, [full]).total_replicas
            <= solve(request, pools, [careful]).total_replicas)


def test_the_last_knot_is_its_own_value_however_far_apart_the_knots_are():
    """At the last knot the interpolation cancelled to 0.0 when neighbouring means differed by
    about 16 orders of magnitude, and the throughput then divided by zero."""
    from hybridplace.placement.latency import ServiceCurve

    curve = ServiceCurve.deterministic({1: 6e11, 2: 1e-5})
    assert curve.mean_at(2) == 1e-5
    assert curve.throughput_rps(2) > 0
    assert ServiceCurve.deterministic({1: 1.0, 2: 0.0}).throughput_rps(2) == 0.0  # no capacity, not a crash


def test_an_infeasible_message_says_replicas_are_short_when_the_latency_is_within_reach():
    prof = Profile("cpu", points=(ProfilePoint(1, 10, 12, 14), ProfilePoint(8, 40, 45, 50)))
    d = solve(Request(slo_latency_ms=100, target_rps=5, min_replicas=10, max_replicas=20),
              [Pool("cpu", price_per_replica_hour=1, capacity_replicas=5)], [prof])
    assert not d.feasible
    assert "within the SLO: what is short is replicas (minReplicas 10" in d.message
