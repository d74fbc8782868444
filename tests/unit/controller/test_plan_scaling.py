"""The planner with observations (spec.scaling): the observed load drives replicas in mode
Operator, missing data keeps them, External leaves them to another autoscaler, and status and
Events say what happened. Observations are plain inputs here (no Prometheus)."""

from __future__ import annotations

import pytest
from hybridplace import conditions as c
from hybridplace.controller.observe import Observation
from hybridplace.controller.observer import Observed
from hybridplace.placement.scaling import Sample
from test_plan import LATER, NOW, as_children, cond, infd, plan

# The seed table on the example pools, SLO p95 <= 1000 ms, headroom 0.2: a CPU replica carries
# 22.9 requests/s, a GPU node 100; CPU is cheaper up to 68.6 requests/s (docs/placement.md).
FAST = {"mode": "Operator", "intervalSeconds": 5, "scaleDownDelaySeconds": 30}


def observed(rates, start=0.0, step=5.0, latency=200.0):
    """What the observation loop would hand over after seeing `rates`, one per interval."""
    hist = tuple(Sample(at=start + i * step, rate_rps=r, latency_ms=latency if r is not None else None)
                 for i, r in enumerate(rates))
    last = hist[-1]
    latest = Observation(at=last.at, percentile=95, rate_rps=last.rate_rps, latency_ms=last.latency_ms,
                         error=None if last.rate_rps is not None else "rate query failed: ConnectionError: refused")
    seen = max((s.at for s in hist if s.rate_rps is not None), default=None)
    return Observed(observing=True, history=hist, latest=latest, last_seen=seen, now=last.at)


def run(obj, obs, children=None):
    from hybridplace.config import Settings
    from hybridplace.controller.fingerprint import deployment_fingerprint
    from hybridplace.controller.plan import plan_inference_deployment
    from test_plan import POOLS, PROFILES

    return plan_inference_deployment(
        obj, pools=POOLS, profiles=PROFILES, jobs={}, children=children or {}, service_names=set(),
        settings=Settings(), now=LATER, fingerprint=deployment_fingerprint, observed=obs)


def replicas(p):
    return sum(x.replicas for x in p.decision.placements)


def test_without_prometheus_operator_mode_plans_for_the_declared_load_and_says_so():
    p = plan(infd(load={"targetRps": 20}, scaling=FAST))
    found = cond(p.status, c.OBSERVED)
    assert found["reason"] == c.NO_PROMETHEUS and "behaves as Off" in found["message"]
    assert p.status["scaling"]["action"] == "static" and p.status["scaling"]["loadRps"] == 20
    assert "observed" not in p.status
    assert not [e for e in p.events if e.reason == c.NO_PROMETHEUS]  # a setting, not an incident


def test_a_step_in_observed_load_rescales_at_once_with_an_event_and_status():
    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    assert replicas(first) == 1
    status = first.status
    obj = infd(status=status, load={"targetRps": 20}, scaling=FAST)
    p = run(obj, observed([20.0, 20.0, 60.0]), children=as_children(first))
    assert replicas(p) == 3 and p.status["scaling"] == {
        "mode": "Operator", "loadRps": 60.0, "action": "up", "lastScaleTime": LATER,
        "message": "observed 60 requests/s (was planned for 20)"}
    assert p.deployments and p.deployments[0]["spec"]["replicas"] == 3
    (event,) = [e for e in p.events if e.reason == "Rescaled"]
    assert event.message.startswith("cpu-standard x1 -> cpu-standard x3: observed 60 requests/s")
    assert cond(p.status, c.OBSERVED)["status"] == c.TRUE
    assert p.status["observed"]["requestsPerSecond"] == 60.0 and p.status["observed"]["latencyMs"] == 200.0
    assert cond(p.status, c.SLO_MET)["reason"] == c.SLO_OBSERVED_MET


def test_observed_latency_over_the_slo_sets_slomet_false_from_observation():
    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    obj = infd(status=first.status, load={"targetRps": 20}, scaling=FAST)
    p = run(obj, observed([20.0, 20.0], latency=1500.0), children=as_children(first))
    found = cond(p.status, c.SLO_MET)
    assert found["status"] == c.FALSE and found["reason"] == c.SLO_OBSERVED_OVER and "1500" in found["message"]
    assert [e.reason for e in p.events if e.type == "Warning"] == [c.SLO_OBSERVED_OVER]


def test_prometheus_unreachable_keeps_the_replicas_with_one_warning():
    up = run(infd(status=plan(infd(load={"targetRps": 20}, scaling=FAST)).status, load={"targetRps": 20},
                  scaling=FAST), observed([20.0, 60.0]))
    assert replicas(up) == 3
    obj = infd(status=up.status, load={"targetRps": 20}, scaling=FAST)
    p = run(obj, observed([20.0, 60.0, None]), children=as_children(up))
    assert replicas(p) == 3 and not p.deployments  # nothing changes
    found = cond(p.status, c.OBSERVED)
    assert found["status"] == c.FALSE and found["reason"] == c.UNREACHABLE
    assert "refused" in found["message"] and "last seen" in found["message"]
    assert [e.reason for e in p.events if e.type == "Warning"] == [c.UNREACHABLE]
    again = run(infd(status=p.status, load={"targetRps": 20}, scaling=FAST), observed([20.0, 60.0, None, None]),
                children=as_children(up))
    assert not [e for e in again.events if e.reason == c.UNREACHABLE]  # one Warning, not one per interval
    assert again.status["observed"] == up.status["observed"]  # the last one seen, kept


def hand_scaled(first, replicas):
    """The plan's children as they are after `kubectl scale` (or an HPA) set `replicas`."""
    from hybridplace.controller.fingerprint import deployment_fingerprint

    scaled = {}
    for k, v in as_children(first).items():
        dep = next(d for d in first.deployments if d["metadata"]["name"] == v.name)
        live = {**dep, "spec": {**dep["spec"], "replicas": replicas}}
        scaled[k] = v.__class__(v.name, v.pool, deployment_fingerprint(live), replicas, replicas, v.owned)
    return scaled


def test_external_mode_decides_pool_and_batch_but_keeps_the_autoscalers_replicas():
    spec = {"mode": "External", "intervalSeconds": 5, "scaleDownDelaySeconds": 30}
    first = plan(infd(load={"targetRps": 20}, scaling=spec))
    scaled = hand_scaled(first, 7)
    p = run(infd(status=first.status, load={"targetRps": 20}, scaling=spec), observed([200.0] * 3), children=scaled)
    assert p.status["scaling"]["action"] == "static"  # the decision is for targetRps
    assert not p.deployments  # nothing to put back: the HPA's 7 replicas stand
    assert cond(p.status, c.READY)["status"] == c.TRUE


def test_operator_mode_puts_a_hand_scaled_deployment_back():
    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    p = plan(infd(status=first.status, load={"targetRps": 20}, scaling=FAST), children=hand_scaled(first, 7), now=NOW)
    assert [d["spec"]["replicas"] for d in p.deployments] == [1]
    (event,) = [e for e in p.events if e.reason == "ReplicasRestored"]
    assert "7 -> 1 replicas" in event.message and "mode External" in event.message


def test_a_steady_load_rewrites_nothing_each_interval():
    """Rates that wobble by a few percent leave the status as it was (no write), until the
    figure shown is older than the refresh period."""
    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    status = run(infd(status=first.status, load={"targetRps": 20}, scaling=FAST), observed([20.0, 20.5]),
                 children=as_children(first)).status
    for i, rate in enumerate([19.6, 20.3, 20.9, 19.8]):
        obs = observed([20.0, 20.5] + [rate] * (i + 1))
        again = run(infd(status=status, load={"targetRps": 20}, scaling=FAST), obs, children=as_children(first))
        assert again.status == status, f"interval {i}: the status changed"
        assert not again.events
    late = observed([20.0, 20.5], start=400.0)  # the same figures, 400 s later
    refreshed = run(infd(status=status, load={"targetRps": 20}, scaling=FAST), late, children=as_children(first))
    assert refreshed.status["observed"]["time"] != status["observed"]["time"]


def test_a_pool_switch_makes_the_new_deployment_before_it_breaks_the_old():
    """20 -> 200 requests/s moves the deployment from CPU to the GPU (cheaper above 68.6): the
    CPU Deployment keeps serving, shown Outgoing in status.serving, until the GPU one is
    Available; only then is it deleted, with an Event."""
    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    cpu = as_children(first)
    assert list(cpu) == ["cpu-standard"]
    obj = infd(status=first.status, load={"targetRps": 20}, scaling=FAST)
    switching = run(obj, observed([20.0, 200.0]), children=cpu)
    assert [x.pool for x in switching.decision.placements] == ["gpu-t4"]
    assert [d["metadata"]["labels"]["hybridplace.io/pool"] for d in switching.deployments] == ["gpu-t4"]
    assert switching.stale_deployments == [] and switching.outgoing == ["cpu-standard"]
    assert [(x["pool"], x["state"]) for x in switching.status["serving"]] == [
        ("cpu-standard", "Outgoing"), ("gpu-t4", "Starting")]
    # The GPU Deployment exists but is not Available yet: still both.
    both = {**cpu, **as_children(switching, available=False)}
    waiting = run(infd(status=switching.status, load={"targetRps": 20}, scaling=FAST), observed([20.0, 200.0, 200.0]),
                  children=both)
    assert waiting.stale_deployments == [] and not waiting.deployments
    assert not [e for e in waiting.events if e.reason == "PoolSwitched"]
    # Available: the CPU Deployment goes.
    done = {**cpu, **as_children(switching)}
    switched = run(infd(status=waiting.status, load={"targetRps": 20}, scaling=FAST),
                   observed([20.0, 200.0, 200.0, 200.0]), children=done)
    assert switched.stale_deployments == [cpu["cpu-standard"].name]
    assert [(x["pool"], x["state"]) for x in switched.status["serving"]] == [("gpu-t4", "Ready")]
    (event,) = [e for e in switched.events if e.reason == "PoolSwitched"]
    assert "gpu-t4 x" in event.message and f"Deployment/{cpu['cpu-standard'].name}" in event.message


def test_overload_while_new_replicas_start_holds_instead_of_overshooting():
    """The planner tells the policy what is still starting: with the replicas of the last step
    not Ready, a long queue holds the decision."""
    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    obj = infd(status=first.status, load={"targetRps": 20}, scaling=FAST)

    def obs(queue_ms):
        o = observed([20.0, 60.0])
        hist = o.history[:-1] + (Sample(at=o.history[-1].at, rate_rps=60.0, latency_ms=200.0, queue_ms=queue_ms),)
        return Observed(observing=True, history=hist, latest=o.latest, last_seen=o.last_seen, now=o.now)

    up = run(obj, obs(5000.0), children=as_children(first))
    assert up.status["scaling"]["action"] == "up"
    starting = as_children(up, available=False)
    held = run(infd(status=up.status, load={"targetRps": 20}, scaling=FAST), obs(9000.0), children=starting)
    assert held.status["scaling"]["action"] == "hold" and replicas(held) == replicas(up)
    assert "replicas are starting" in held.status["scaling"]["message"]
    # Ready, but only just: the queue figure (a 20 s average) still holds the waits from before.
    import dataclasses
    import datetime as dt

    (entry,) = up.status["serving"]
    just = {**up.status, "serving": [{**entry, "availableReplicas": entry["replicas"], "state": "Ready",
                                      "readySince": LATER}]}
    ready_at = dt.datetime.strptime(LATER, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    hist = (Sample(at=ready_at + 5, rate_rps=60.0, latency_ms=200.0, queue_ms=9000.0),
            Sample(at=ready_at + 10, rate_rps=60.0, latency_ms=200.0, queue_ms=9000.0))
    latest = Observation(at=ready_at + 10, percentile=95, rate_rps=60.0, latency_ms=200.0, queue_ms=9000.0)
    soon = Observed(observing=True, history=hist, latest=latest, last_seen=ready_at + 10, now=ready_at + 10)
    held = run(infd(status=just, load={"targetRps": 20}, scaling=FAST), soon, children=as_children(up))
    assert held.status["scaling"]["action"] == "hold" and "Ready for only 10 s" in held.status["scaling"]["message"]
    # All available now, where the last status still showed them starting: just Ready, hold.
    now_ready = run(infd(status=up.status, load={"targetRps": 20}, scaling=FAST), obs(9000.0),
                    children=as_children(up))
    assert now_ready.status["scaling"]["action"] == "hold"
    # Ready for longer than the queue figure's window, and still overloaded: half again.
    hist = tuple(dataclasses.replace(x, at=x.at + 30) for x in hist)
    later = Observed(observing=True, history=hist, latest=dataclasses.replace(latest, at=ready_at + 40),
                     last_seen=ready_at + 40, now=ready_at + 40)
    grown = run(infd(status=just, load={"targetRps": 20}, scaling=FAST), later, children=as_children(up))
    assert grown.status["scaling"]["action"] == "up"
    assert grown.status["scaling"]["loadRps"] == 1.5 * up.status["scaling"]["loadRps"]  # 90: the GPU's now


def slow_cpu_pool_at(t, latency):
    """20 requests/s observed at time t, the cpu-standard pool's p95 at `latency`."""
    o = observed([20.0, 20.0], start=t - 5)
    latest = Observation(at=t, percentile=95, rate_rps=20.0, latency_ms=latency,
                         by_pool={"cpu-standard": {"rate": 20.0, "latency": latency}})
    return Observed(observing=True, history=o.history, latest=latest, last_seen=t, now=t)


def test_a_pool_slower_than_its_profile_is_calibrated_and_gets_more_replicas():
    """The CPU pool serves at three times the latency the model predicts for the load observed:
    one window after the warm-up sets calibration to 3, the solver multiplies the pool's
    predictions by it (more replicas for the same load), with an Event and status.calibration."""
    import datetime as dt

    from hybridplace.placement.from_api import profile_from, request_from
    from hybridplace.placement.solver import predicted_latency_at
    from test_plan import PROFILES

    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    ready = run(infd(status=first.status, load={"targetRps": 20}, scaling=FAST), observed([20.0]),
                children=as_children(first))
    (entry,) = ready.status["serving"]
    assert entry["state"] == "Ready" and entry["readySince"] == LATER
    assert "calibration" not in ready.status  # nothing observed per pool yet
    since = dt.datetime.strptime(LATER, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    obj = infd(status=ready.status, load={"targetRps": 20}, scaling=FAST)
    placement = ready.status["decision"]["placements"][0]
    predicted = predicted_latency_at(request_from(obj), profile_from(PROFILES["cpu-standard"]),
                                     placement["batchSize"], placement["concurrency"], 20.0)

    at = slow_cpu_pool_at

    warming = run(obj, at(since + 30, 3 * predicted), children=as_children(first))
    assert "calibration" not in warming.status  # 30 s after Ready: the summary still remembers before
    p = run(obj, at(since + 90, 3 * predicted), children=as_children(first))
    (cal,) = p.status["calibration"]
    assert cal["pool"] == "cpu-standard" and cal["ratio"] == pytest.approx(3.0, rel=1e-3) and cal["samples"] == 1
    assert cal["outsideSince"]  # outside [0.67, 1.5]: the re-profiling clock runs
    assert replicas(p) > replicas(ready)
    assert p.decision.placements[0].predicted_latency_ms <= 1000  # the corrected prediction meets the SLO
    (event,) = [e for e in p.events if e.reason == "Calibrated"]
    assert "3x the model's prediction" in event.message
    # The same observation again (another reconcile): not taken in twice, no new Event.
    again = run(infd(status=p.status, load={"targetRps": 20}, scaling=FAST), at(since + 90, 3 * predicted),
                children=as_children(first))
    assert again.status["calibration"] == p.status["calibration"]
    assert not [e for e in again.events if e.reason == "Calibrated"]
    # The pool measured again after that sample: the new profile starts from the ratio, so the
    # replicas it justified stay (they are lowered only by the new profile's own samples, after
    # the hold any lower ratio needs), and the re-profiling clock restarts, counting once.
    from hybridplace.api import parse_object
    from hybridplace.config import Settings
    from hybridplace.controller.fingerprint import deployment_fingerprint
    from hybridplace.controller.plan import plan_inference_deployment
    from test_plan import POOLS

    body = PROFILES["cpu-standard"].to_dict()
    body["spec"]["measuredAt"] = dt.datetime.fromtimestamp(since + 200, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    remeasured = {**PROFILES, "cpu-standard": parse_object(body)}
    fresh = plan_inference_deployment(
        infd(status=p.status, load={"targetRps": 20}, scaling=FAST), pools=POOLS, profiles=remeasured, jobs={},
        children=as_children(first), service_names=set(), settings=Settings(), now=LATER,
        fingerprint=deployment_fingerprint, observed=at(since + 90, 3 * predicted))
    (carried,) = fresh.status["calibration"]
    assert carried["ratio"] == pytest.approx(3.0, rel=1e-3) and carried["remeasured"] == 1
    assert "outsideSince" not in carried
    assert replicas(fresh) == replicas(p) > replicas(ready)
    # The new profile's samples show it right (ratio 1 at the 10 requests/s each of the two
    # replicas now get): the replicas hold for the scale-down delay (30 s here), then go.
    def later(t, status, latency):
        return plan_inference_deployment(
            infd(status=status, load={"targetRps": 20}, scaling=FAST), pools=POOLS, profiles=remeasured, jobs={},
            children=as_children(fresh), service_names=set(), settings=Settings(), now=LATER,
            fingerprint=deployment_fingerprint, observed=at(t, latency))
    (two,) = fresh.status["decision"]["placements"]
    right = predicted_latency_at(request_from(obj), profile_from(remeasured["cpu-standard"]), two["batchSize"],
                                 two["concurrency"], 20.0 / two["replicas"])
    ready_again = later(since + 100, fresh.status, right)  # Ready from here on
    held = later(since + 300, ready_again.status, right)
    assert replicas(held) == replicas(p) and held.status["calibration"][0]["ratio"] == pytest.approx(3.0, rel=1e-3)
    lowered = later(since + 340, held.status, right)
    assert 1.5 < lowered.status["calibration"][0]["ratio"] < 3.0  # following the samples down
    status = lowered.status
    for t in range(345, 400, 5):
        status = (step := later(since + t, status, right)).status
    (inside,) = status["calibration"]
    assert inside["ratio"] < 1.5 and "remeasured" not in inside  # back inside the band: the count goes
    assert replicas(step) == replicas(ready)


def run_on(pools, obj, obs, children=None):
    from hybridplace.config import Settings
    from hybridplace.controller.fingerprint import deployment_fingerprint
    from hybridplace.controller.plan import plan_inference_deployment
    from test_plan import PROFILES

    return plan_inference_deployment(
        obj, pools=pools, profiles=PROFILES, jobs={}, children=children or {}, service_names=set(),
        settings=Settings(), now=LATER, fingerprint=deployment_fingerprint, observed=obs)


CPU_ONLY = {"load": {"targetRps": 20}, "scaling": FAST, "placement": {"pools": ["cpu-standard"]}}


@pytest.mark.parametrize("price", [{"perNodeHour": 0.8064}, {"perReplicaHour": 0}])
def test_a_rise_scales_up_when_more_replicas_cost_no_more(price):
    """Priced per node (a node holds 4 CPU replicas: 1 to 4 cost the same) or free: 60 requests/s
    needs 3 replicas (22.9 each) though the decision costs what 1 does. Not a hold on one replica."""
    from hybridplace.api import parse_object
    from test_plan import POOLS

    body = POOLS["cpu-standard"].to_dict()
    body["spec"]["price"] = price
    pools = {**POOLS, "cpu-standard": parse_object(body)}
    first = plan(infd(**CPU_ONLY), pools=pools)
    assert replicas(first) == 1
    p = run_on(pools, infd(status=first.status, **CPU_ONLY), observed([20.0, 20.0, 60.0]), children=as_children(first))
    assert p.status["scaling"]["action"] == "up" and p.status["scaling"]["loadRps"] == 60.0
    assert replicas(p) == 3 and p.deployments[0]["spec"]["replicas"] == 3


def test_a_decision_the_pool_no_longer_has_room_for_takes_the_lower_observed_load_at_once():
    """Planned for 60 requests/s (3 CPU replicas); the pool loses nodes, room for 2 is left, and
    30 requests/s is observed: placed for 30 at this interval, not after the scale-down delay."""
    from test_plan import POOLS, with_room

    first = plan(infd(**CPU_ONLY))
    up = run_on(POOLS, infd(status=first.status, **CPU_ONLY), observed([20.0, 60.0]), children=as_children(first))
    assert replicas(up) == 3
    p = run_on(with_room(2), infd(status=up.status, **CPU_ONLY), observed([20.0, 60.0, 30.0]),
               children=as_children(up))
    assert p.status["scaling"]["action"] == "down" and p.status["scaling"]["loadRps"] == 30.0
    assert replicas(p) == 2 and cond(p.status, c.PLACED)["status"] == c.TRUE


def test_each_observation_is_calibrated_once_though_sampled_at_is_stored_to_the_second():
    """Observation times have fractions; status.calibration[].sampledAt keeps whole seconds. A
    falling ratio, past the hold, must move once per observation, not once per reconcile."""
    import datetime as dt

    from hybridplace.placement.from_api import profile_from, request_from
    from hybridplace.placement.solver import predicted_latency_at
    from test_plan import PROFILES

    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    ready = run(infd(status=first.status, load={"targetRps": 20}, scaling=FAST), observed([20.0]),
                children=as_children(first))
    since = dt.datetime.strptime(LATER, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp()
    placement = ready.status["decision"]["placements"][0]
    predicted = predicted_latency_at(request_from(infd(load={"targetRps": 20})), profile_from(PROFILES["cpu-standard"]),
                                     placement["batchSize"], placement["concurrency"], 20.0)

    at = slow_cpu_pool_at

    status, kids = ready.status, as_children(first)  # one replica throughout: the ratio stays <= 1

    def step(t, ratio):
        nonlocal status, kids
        p = run(infd(status=status, load={"targetRps": 20}, scaling=FAST), at(since + t, ratio * predicted),
                children=kids)
        status, kids = p.status, as_children(p) if p.deployments else kids  # its replicas, Ready at once

    for t, ratio in [(90.6, 1.0), (100.6, 0.6), (140.6, 0.6)]:  # first; lower (the hold starts); past the 30 s hold
        step(t, ratio)
    (cal,) = status["calibration"]
    assert cal["samples"] == 3 and cal["ratio"] == pytest.approx(0.6 ** 0.3, rel=1e-3)  # smoothed once
    assert cal["sampledAt"].endswith(":07:20Z")  # to the second; the observation was at :07:20.6
    taken = cal
    for _ in range(3):  # more reconciles, the same observation: nothing moves
        step(140.6, 0.6)
        assert status["calibration"] == [taken]


def test_status_observed_names_the_window_the_figures_were_taken_over():
    import dataclasses

    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    obs = dataclasses.replace(observed([20.0, 20.0]), window="120s")
    p = run(infd(status=first.status, load={"targetRps": 20}, scaling=FAST), obs, children=as_children(first))
    assert p.status["observed"]["window"] == "120s"


def test_mode_off_writes_no_observation_even_one_the_store_still_holds():
    # Switched to Off, the store may still hold the last observation until the loop's next tick:
    # status.observed (and the gauges read from it) must not show it as current.
    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    on = run(infd(status=first.status, load={"targetRps": 20}, scaling=FAST), observed([60.0, 60.0]),
             children=as_children(first))
    assert on.status["observed"]["requestsPerSecond"] == 60.0
    off = run(infd(status=on.status, load={"targetRps": 20}, scaling={**FAST, "mode": "Off"}),
              observed([60.0, 60.0]), children=as_children(on))
    assert "observed" not in off.status


def test_a_rollout_that_keeps_the_replica_count_restarts_the_warm_up():
    """A new batch size, image or instances rolls the pods with the count unchanged; mid-rollout
    old and new pods serve together and surged ones count as available. The pool is Starting
    until the rollout is done (Kubernetes' own test), so calibration waits for the new pods."""
    import dataclasses

    from hybridplace.controller.state import ClusterState

    first = plan(infd(load={"targetRps": 20}, scaling=FAST))
    ready = run(infd(status=first.status, load={"targetRps": 20}, scaling=FAST), observed([20.0]),
                children=as_children(first))
    assert ready.status["serving"][0]["state"] == "Ready"
    rolling = {pool: dataclasses.replace(child, available_replicas=child.replicas + 1, rolled_out=False)
               for pool, child in as_children(first).items()}
    mid = run(infd(status=ready.status, load={"targetRps": 20}, scaling=FAST), observed([20.0, 20.0]),
              children=rolling)
    assert mid.status["serving"][0]["state"] == "Starting" and "readySince" not in mid.status["serving"][0]
    done = run(infd(status=mid.status, load={"targetRps": 20}, scaling=FAST), observed([20.0] * 3),
               children=as_children(first))
    assert done.status["serving"][0]["state"] == "Ready" and done.status["serving"][0]["readySince"] == LATER

    # What the cluster's Deployment status says, read the way the state does.
    dep = first.deployments[0]
    meta = {**dep["metadata"], "generation": 2, "resourceVersion": "5"}
    state = ClusterState()
    for status, rolled in [({"observedGeneration": 1, "updatedReplicas": 1, "replicas": 1}, False),
                           ({"observedGeneration": 2, "updatedReplicas": 0, "replicas": 2}, False),
                           ({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 2}, False),
                           ({"observedGeneration": 2, "updatedReplicas": 1, "replicas": 1}, True)]:
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        state.put_deployment({"metadata": meta, "spec": {**dep["spec"], "replicas": 1},
                              "status": {**status, "availableReplicas": status["replicas"]}})
        (child,) = state.children_of(meta["namespace"], meta["labels"]["hybridplace.io/inferencedeployment"]).values()
        assert child.rolled_out == rolled, status
