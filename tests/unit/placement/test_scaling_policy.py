"""The scaling policy as a pure function: history in, load out, with a fake clock."""

import math

import pytest
from hybridplace.placement.scaling import IDLE_RPS, Sample, ScalingPolicy, Size, plan_load

POLICY = ScalingPolicy(mode="Operator", interval_s=15, scale_down_delay_s=300)
PER_REPLICA_RPS = 30.0  # what one replica carries within its limit, in this fake engine
USD_PER_REPLICA = 0.2


def replicas(load: float, min_replicas: int = 1) -> int:
    return max(min_replicas, math.ceil(load / PER_REPLICA_RPS))


def cost(load: float) -> float:
    return replicas(load) * USD_PER_REPLICA


def history(rates, start=0.0, step=15.0):
    """Samples every `step` seconds from `start`; None is a missing observation."""
    return [Sample(at=start + i * step, rate_rps=r) for i, r in enumerate(rates)]


def decide(hist, current, now=None, policy=POLICY, cost_at=cost, target=20.0):
    now = hist[-1].at if now is None and hist else (now or 0.0)
    return plan_load(policy, hist, target_rps=target, current_rps=current, cost_at=cost_at, now=now)


def test_off_and_external_plan_for_the_declared_load_whatever_is_observed():
    hist = history([500.0] * 5)
    for mode in ("Off", "External"):
        d = decide(hist, 20.0, policy=ScalingPolicy(mode=mode))
        assert (d.load_rps, d.action) == (20.0, "static")
    d = plan_load(POLICY, hist, target_rps=20.0, current_rps=20.0, cost_at=cost, now=60.0, observing=False)
    assert d.action == "static" and "no Prometheus" in d.message


def test_a_step_up_is_followed_at_the_first_interval_that_shows_it():
    hist = history([20.0, 20.0, 120.0])
    d = decide(hist, current=20.0)
    assert d.action == "up" and d.load_rps == 120.0
    assert replicas(d.load_rps) == 4


def test_a_step_down_waits_for_the_whole_delay_then_plans_for_the_windows_peak():
    # 120 requests/s until t=135, then about 20 from t=150: at t=435 the window [135, 435] still
    # holds a 120 -> hold; at t=450 the window [150, 450] is all lower -> down, to its peak.
    rates = [120.0] * 10 + [20.0, 25.0, 22.0] + [20.0] * 20
    hist = history(rates)
    at = {s.at: i for i, s in enumerate(hist)}
    d = decide(hist[: at[435.0] + 1], current=120.0)
    assert d.action == "hold" and d.load_rps == 120.0
    # An operator restarted at t=165 has seen less than the delay: it holds, and says why.
    d = decide(hist[at[165.0]: at[435.0] + 1], current=120.0)
    assert d.action == "hold" and "once it stays lower for 300 s" in d.message
    d = decide(hist[: at[450.0] + 1], current=120.0)
    assert d.action == "down" and d.load_rps == pytest.approx(27.5)  # the peak of the last 300 s, +10%
    assert replicas(d.load_rps) == 1


def test_the_remaining_replicas_carry_the_windows_peak_at_their_share():
    """N/(N-1): scaling 4 -> 3 needs the whole window's load to fit 3 replicas' limit, not the
    latest sample's: one burst to 80 inside the window keeps 3, not 2 (80 + 10% fits 3)."""
    rates = [110.0] * 2 + [50.0] * 10 + [80.0] + [50.0] * 10
    hist = history(rates)
    d = decide(hist, current=110.0)
    assert d.action == "down" and d.load_rps == pytest.approx(88.0) and replicas(d.load_rps) == 3
    # ...and once the burst has left the window, down to what 50 needs.
    later = history(rates + [50.0] * 11)
    d = decide(later, current=85.0)
    assert d.action == "down" and replicas(d.load_rps) == 2


def test_a_load_oscillating_around_a_boundary_does_not_flap():
    """Alternating 55/65 requests/s (2 and 3 replicas): up at the first 65, then never down."""
    current, changes = 20.0, []
    rates = [55.0, 65.0] * 40  # 20 minutes
    for i in range(1, len(rates) + 1):
        d = decide(history(rates[:i]), current=current)
        if d.load_rps != current:
            changes.append((i, d.action, replicas(d.load_rps)))
            current = d.load_rps
    assert changes == [(1, "up", 2), (2, "up", 3)]


def test_idle_goes_to_min_replicas_never_to_zero():
    hist = history([40.0] * 2 + [0.0] * 25)
    d = decide(hist, current=40.0)
    assert d.action == "down" and d.load_rps == IDLE_RPS
    assert replicas(d.load_rps) == 1 and replicas(d.load_rps, min_replicas=2) == 2


def test_a_floor_bounds_the_planned_load():
    policy = ScalingPolicy(mode="Operator", interval_s=15, scale_down_delay_s=300, floor_rps=50.0)
    d = decide(history([0.0] * 30), current=120.0, policy=policy)
    assert d.action == "down" and d.load_rps == 50.0


@pytest.mark.parametrize("missing", ["none_yet", "stale", "gap_in_window"])
def test_missing_data_is_not_zero_load(missing):
    if missing == "none_yet":
        d = decide([], current=None, now=100.0)
        assert d.action == "initial" and d.load_rps == 20.0  # the declared load until data comes
    elif missing == "stale":
        hist = history([120.0] * 4)
        d = decide(hist, current=120.0, now=hist[-1].at + 60.0)  # Prometheus went away a minute ago
        assert d.action == "nodata" and d.load_rps == 120.0
    else:
        rates = [120.0] * 2 + [20.0] * 10 + [None] + [20.0] * 10  # one unknown interval in the window
        d = decide(history(rates), current=120.0)
        assert d.action == "hold" and d.load_rps == 120.0


def test_an_unknown_latest_sample_is_skipped_for_the_last_known_one():
    hist = history([20.0, 120.0]) + [Sample(at=30.0, rate_rps=None)]
    d = decide(hist, current=20.0)
    assert d.action == "up" and d.load_rps == 120.0


def test_a_pool_switch_counts_like_a_change_of_replicas():
    """A fake engine where CPU (0.2 USD per 30 requests/s) loses to one GPU node (0.75 USD/h,
    300 requests/s) above 90 requests/s: the switch up is immediate, the switch back waits."""
    def switching(load):
        return min(cost(load), math.ceil(load / 300.0) * 0.75)

    d = decide(history([60.0, 200.0]), current=60.0, cost_at=switching)
    assert d.action == "up" and switching(d.load_rps) == 0.75  # the GPU
    d = decide(history([200.0] + [60.0] * 10), current=200.0, cost_at=switching)
    assert d.action == "hold"
    d = decide(history([200.0] + [50.0] * 22), current=200.0, cost_at=switching)
    assert d.action == "down" and switching(d.load_rps) == pytest.approx(0.4)  # back to 2 CPU replicas


def test_a_load_beyond_the_limit_is_capped_at_once_and_left_only_after_the_delay():
    def capped(load):
        return math.inf if load > 300 else cost(load)

    d = decide(history([100.0, 400.0]), current=100.0, cost_at=capped)
    assert d.action == "up" and 299.0 < d.load_rps <= 300.0  # the most a feasible decision carries
    d = decide(history([300.0] + [100.0] * 3), current=300.0, cost_at=capped)
    assert d.action == "hold"


def test_overload_grows_the_plan_even_when_the_served_rate_does_not_show_it():
    """A saturated replica serves ~47 requests/s whatever arrives; long queue waits say there is
    more: the plan grows by half per interval, and never shrinks while the queue is long."""
    policy = ScalingPolicy(mode="Operator", interval_s=15, scale_down_delay_s=30, slo_ms=300)
    hist = [Sample(at=0.0, rate_rps=20.0, queue_ms=1.0), Sample(at=15.0, rate_rps=47.0, queue_ms=2500.0)]
    d = plan_load(policy, hist, target_rps=20.0, current_rps=60.0, cost_at=cost, now=15.0)
    assert d.action == "up" and d.load_rps == 90.0 and "overloaded" in d.message
    # The served rate even falls (clients gave up): still up, never down, while queues are long.
    hist += [Sample(at=30.0, rate_rps=30.0, queue_ms=4000.0), Sample(at=45.0, rate_rps=30.0, queue_ms=4000.0),
             Sample(at=60.0, rate_rps=30.0, queue_ms=4000.0)]
    d = plan_load(policy, hist, target_rps=20.0, current_rps=90.0, cost_at=cost, now=60.0)
    assert d.action == "up" and d.load_rps == 135.0
    # Short queues again: back to the ordinary rules (here: hold, the delay has not passed).
    hist.append(Sample(at=75.0, rate_rps=100.0, queue_ms=3.0))
    d = plan_load(policy, hist, target_rps=20.0, current_rps=135.0, cost_at=cost, now=75.0)
    assert d.action == "hold" and d.load_rps == 135.0


def test_a_load_past_max_replicas_scales_to_the_limit_not_to_an_infeasible_decision():
    def capped(load):  # at most 4 replicas
        return math.inf if replicas(load) > 4 else cost(load)

    d = decide(history([20.0, 400.0]), current=20.0, cost_at=capped)
    assert d.action == "up" and replicas(d.load_rps) == 4 and "capped" in d.message
    policy = ScalingPolicy(mode="Operator", interval_s=15, scale_down_delay_s=30, slo_ms=300)
    hist = [Sample(at=0.0, rate_rps=100.0, queue_ms=5000.0)]
    d = plan_load(policy, hist, target_rps=20.0, current_rps=100.0, cost_at=capped, now=0.0)
    assert d.action == "up" and 100.0 < d.load_rps <= 120.0 and replicas(d.load_rps) == 4


def test_overload_waits_for_the_replicas_it_started_instead_of_overshooting():
    """A step to 4x what one replica serves: the first interval scales up; while those replicas
    start, the queue stays long, but that is no news: hold, do not add half again each interval.
    Once they are Ready, overload (if it is still there) grows the plan again."""
    policy = ScalingPolicy(mode="Operator", interval_s=15, scale_down_delay_s=30, slo_ms=300)
    hist = [Sample(at=0.0, rate_rps=20.0, queue_ms=1.0), Sample(at=15.0, rate_rps=66.0, queue_ms=5000.0)]
    d = plan_load(policy, hist, target_rps=20.0, current_rps=20.0, cost_at=cost, now=15.0)
    assert d.action == "up" and replicas(d.load_rps) == 3
    hist.append(Sample(at=30.0, rate_rps=66.0, queue_ms=9000.0))
    d = plan_load(policy, hist, target_rps=20.0, current_rps=66.0, cost_at=cost, now=30.0,
                  settling="2 of 3 replicas are starting")
    assert d.action == "hold" and d.load_rps == 66.0 and "2 of 3 replicas are starting" in d.message
    # A real rise in the observed rate is news even while replicas start: it scales up.
    hist.append(Sample(at=45.0, rate_rps=110.0, queue_ms=9000.0))
    d = plan_load(policy, hist, target_rps=20.0, current_rps=66.0, cost_at=cost, now=45.0,
                  settling="2 of 3 replicas are starting")
    assert d.action == "up" and replicas(d.load_rps) == 4
    # Settled and still overloaded: half again.
    d = plan_load(policy, hist, target_rps=20.0, current_rps=110.0, cost_at=cost, now=45.0)
    assert d.action == "up" and d.load_rps == 165.0


def test_a_load_on_the_boundary_of_two_replica_counts_does_not_go_back_and_forth():
    """120 requests/s is exactly what 4 replicas carry (30 each): noise of a few percent takes
    it to 5 at the first sample over; back down only if the window's peak plus 10% fits 4."""
    current, changes = 20.0, []
    rates = [118.0, 123.0, 119.0, 121.0, 116.0, 124.0, 120.0, 117.0] * 10  # 20 minutes of +-3%
    for i in range(1, len(rates) + 1):
        d = decide(history(rates[:i]), current=current, policy=ScalingPolicy(
            mode="Operator", interval_s=15, scale_down_delay_s=30))
        if d.load_rps != current:
            changes.append((i, d.action, replicas(d.load_rps)))
            current = d.load_rps
    assert changes == [(1, "up", 4), (2, "up", 5)]


# -- decisions that cost the same, and current decisions with no feasible placement --------------

NODE_USD = 0.8  # one node's price, whatever of its 4 replicas are used


def node_priced(load: float) -> Size:
    """Node pricing: 1-4 replicas cost one node, 5-8 two; the shape is the replica count."""
    n = replicas(load)
    return Size(math.ceil(n / 4) * NODE_USD, n, (("cpu", n),))


def free(load: float) -> Size:
    """A price of 0 (on-premises): every decision costs the same."""
    return Size(0.0, replicas(load), (("onprem", replicas(load)),))


@pytest.mark.parametrize("sized", [node_priced, free])
def test_a_rise_whose_decision_costs_the_same_still_scales_up_at_once(sized):
    """Node pricing or a price of 0: 1 and 3 replicas cost the same, yet 80 requests/s on the one
    replica sized for 25 would be far over its limit. More replicas is a scale-up, not a hold."""
    d = decide(history([25.0, 25.0, 80.0]), current=25.0, cost_at=sized)
    assert d.action == "up" and d.load_rps == 80.0 and replicas(d.load_rps) == 3
    # ...and fewer replicas at the same cost is a scale-down, after the delay only.
    d = decide(history([80.0] + [25.0] * 10), current=80.0, cost_at=sized)
    assert d.action == "hold" and d.load_rps == 80.0
    d = decide(history([80.0] + [25.0] * 22), current=80.0, cost_at=sized)
    assert d.action == "down" and replicas(d.load_rps) == 1


def test_a_higher_load_whose_placement_differs_at_the_same_cost_and_replicas_scales_up():
    """Same cost, same replicas, another batch size: the current placement may not carry it."""
    def batched(load: float) -> Size:
        return Size(0.8, 1, (("cpu", 1, 1 if load < 40 else 8),))

    d = decide(history([20.0, 60.0]), current=20.0, cost_at=batched)
    assert d.action == "up" and d.load_rps == 60.0
    d = decide(history([60.0, 20.0]), current=60.0, cost_at=batched)  # lower: a tie is a hold
    assert d.action == "hold" and d.load_rps == 60.0
    d = decide(history([20.0, 50.0]), current=60.0, cost_at=batched)  # ...and so is a new shape below
    assert d.action == "hold"


def test_node_pricing_does_not_flap_on_a_boundary_either():
    """Alternating 55/65 requests/s (2 and 3 replicas, one node): up at the first 65, then never down."""
    current, changes = 20.0, []
    rates = [55.0, 65.0] * 40
    for i in range(1, len(rates) + 1):
        d = decide(history(rates[:i]), current=current, cost_at=node_priced)
        if d.load_rps != current:
            changes.append((i, d.action, replicas(d.load_rps)))
            current = d.load_rps
    assert changes == [(1, "up", 2), (2, "up", 3)]


def test_a_current_decision_with_no_feasible_placement_takes_the_observed_load_at_once():
    """A pool lost nodes (or targetRps never fitted): 100 requests/s is all the room carries.
    Planned for 150, observed 80: 80 is adopted at this interval, not after the delay."""
    def room(load):
        return math.inf if load > 100 else cost(load)

    d = decide(history([80.0, 80.0, 80.0]), current=150.0, cost_at=room)
    assert d.action == "down" and d.load_rps == 80.0 and "no feasible placement" in d.message
    # Observed 130, over the room too: the most a feasible decision carries, at once.
    d = decide(history([130.0]), current=150.0, cost_at=room)
    assert d.action == "down" and 99.0 < d.load_rps <= 100.0 and "capped" in d.message
    # Before the first observation the declared load stands (missing data is not zero load).
    d = decide([], current=None, now=10.0, cost_at=room, target=150.0)
    assert d.action == "initial" and d.load_rps == 150.0
    # Nothing feasible at any load: hold.
    d = decide(history([80.0]), current=150.0, cost_at=lambda load: math.inf)
    assert d.action == "hold" and d.load_rps == 150.0
    # Overloaded under an infeasible decision: grow, but only as far as a feasible placement carries.
    policy = ScalingPolicy(mode="Operator", interval_s=15, scale_down_delay_s=30, slo_ms=300)
    d = plan_load(policy, [Sample(at=0.0, rate_rps=90.0, queue_ms=5000.0)], target_rps=20.0, current_rps=150.0,
                  cost_at=room, now=0.0, settling="1 of 4 replicas is starting")
    assert d.action == "down" and 99.0 < d.load_rps <= 100.0 and "overloaded" in d.message


def test_a_gap_in_the_history_is_not_a_lower_load_seen_for_the_delay():
    # 100 requests/s until t=195, 10 from t=210 to 300, then nothing recorded until t=560 (the
    # loop backing off, a spell in mode Off): one fresh sample after the gap does not scale down,
    # although every known sample of the window [260, 560] is low.
    hist = history([100.0] * 14 + [10.0] * 7) + [Sample(at=560.0, rate_rps=10.0)]
    d = decide(hist, current=100.0)
    assert d.action == "hold" and d.load_rps == 100.0
    # Seen throughout, the same low samples do scale down.
    d = decide(hist[:-1] + history([10.0] * 18, start=315.0), current=100.0)
    assert d.action == "down" and d.load_rps == pytest.approx(11.0)
