"""The planner's routing promises: a weighted split gets an HTTPRoute whose weights are the
pools' shares, updated on every re-decision; when the split ends the route stays, sending every
request to the one pool (the Gateway's clients keep their route), and it goes only with the
Gateway or in mode Recommend; without a gateway a split is even-spread or one pool, and the
Routed condition says which."""

from __future__ import annotations

import pytest
from hybridplace import conditions as c
from hybridplace.builders.routing import GatewayTarget, Routing
from hybridplace.placement import EVEN_SPREAD, SINGLE_POOL, WEIGHTED
from test_plan import as_children, capped, cond, infd, plan

GATEWAY = Routing(GatewayTarget("gateways", "shared", "http"), why_not="")


def backends(route):
    return {b["name"]: b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]}


def test_a_weighted_split_gets_an_httproute_whose_weights_are_the_shares():
    split = plan(infd(load={"targetRps": 120}), pools=capped(cpu=2, gpu=1), routing=GATEWAY)
    assert split.decision.routing == WEIGHTED
    route = split.route
    assert route["kind"] == "HTTPRoute" and route["apiVersion"] == "gateway.networking.k8s.io/v1"
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "shared", "namespace": "gateways", "sectionName": "http"}]
    assert route["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    weights = backends(route)
    total = sum(weights.values())
    for placement in split.decision.placements:
        assert weights[f"seed-{placement.pool}"] / total == pytest.approx(placement.share_rps / 120, abs=0.01)
    # The CPU replica gets what it may take (22.86), not the 60 a Service would give it.
    cpu = next(p for p in split.decision.placements if p.pool == "cpu-standard")
    assert cpu.share_rps / cpu.replicas <= 22.9
    routed = cond(split.status, c.ROUTED)
    assert (routed["status"], routed["reason"]) == (c.TRUE, WEIGHTED)
    assert "HTTPRoute seed on Gateway gateways/shared" in routed["message"]
    assert split.status["decision"]["routing"] == WEIGHTED
    assert {p["pool"]: p["weight"] for p in split.status["decision"]["placements"]} == {
        k.removeprefix("seed-"): v for k, v in weights.items()}
    assert "Routed" in [e.reason for e in split.events]


def test_a_re_decision_updates_the_weights_and_a_single_pool_keeps_a_route_to_its_service():
    pools = capped(cpu=2, gpu=1)
    named = {"gateway": {"name": "shared", "namespace": "gateways", "sectionName": "http"}}  # spec.serving.gateway
    first = plan(infd(load={"targetRps": 120}, serving=named), pools=pools, routing=GATEWAY)
    services = {s["metadata"]["name"] for s in first.services}
    # 140 requests/s: 2 CPU replicas + 1 GPU (a new mix, so new weights).
    second = plan(infd(load={"targetRps": 140}, serving=named, status=first.status), pools=pools,
                  children=as_children(first), services=services, routing=GATEWAY)
    assert second.status["summary"]["pools"] == "cpu-standard:2+gpu-t4:1"
    assert second.route is not None and backends(second.route) != backends(first.route)
    weights = backends(second.route)
    cpu_share = next(p.share_rps for p in second.decision.placements if p.pool == "cpu-standard")
    assert weights["seed-cpu-standard"] / sum(weights.values()) == pytest.approx(cpu_share / 140, abs=0.01)
    assert second.stale_route is None
    single = plan(infd(load={"targetRps": 5}, serving=named, status=second.status), pools=pools,
                  children=as_children(second), services=services, routing=GATEWAY)
    assert single.decision.routing == SINGLE_POOL
    # The Gateway's clients keep their route: all of it to the umbrella Service, which selects
    # every pool's pods (a pool switch's outgoing replicas too).
    assert single.stale_route is None and backends(single.route) == {"seed": 1}
    assert single.route["spec"]["parentRefs"] == first.route["spec"]["parentRefs"]
    routed = cond(single.status, c.ROUTED)
    assert routed["reason"] == SINGLE_POOL
    assert routed["message"].startswith("HTTPRoute seed on Gateway gateways/shared (listener http) routes every "
                                        "request to Service seed: one pool")
    # The Gateway gone (unset here): the route goes, once.
    gone = plan(infd(load={"targetRps": 5}, status=single.status), pools=pools, children=as_children(single),
                services=services)
    assert gone.route is None and gone.stale_route == "seed"
    again = plan(infd(load={"targetRps": 5}, status=gone.status), pools=pools, children=as_children(single),
                 services=services)
    assert again.stale_route is None
    # Mode Recommend: nothing applied, the route goes.
    recommend = plan(infd(load={"targetRps": 5}, serving=named, placement={"mode": "Recommend"},
                          status=single.status),
                     pools=pools, children=as_children(single), services=services, routing=GATEWAY)
    assert recommend.route is None and recommend.stale_route == "seed"


def test_through_the_default_gateway_only_a_split_has_a_route():
    """The operator's --default-gateway names no hostnames: a route of every deployment on one
    Gateway would match every request, so one pool's deployment has none (the split's goes)."""
    pools = capped(cpu=2, gpu=1)
    split = plan(infd(load={"targetRps": 120}), pools=pools, routing=GATEWAY)
    assert split.route is not None
    single = plan(infd(load={"targetRps": 5}, status=split.status), pools=pools, children=as_children(split),
                  services={s["metadata"]["name"] for s in split.services}, routing=GATEWAY)
    assert single.route is None and single.stale_route == "seed"
    assert cond(single.status, c.ROUTED)["message"].startswith("one pool (")


def test_without_a_gateway_a_split_is_even_spread_or_one_pool_and_routed_says_why():
    # 120 requests/s over 1 CPU + 1 GPU would give the CPU replica 60 with a Service: refused.
    none = plan(infd(load={"targetRps": 120}), pools=capped(cpu=2, gpu=1))
    assert not none.decision.feasible and none.route is None
    assert cond(none.status, c.ROUTED)["status"] == c.UNKNOWN
    gpu_only = plan(infd(load={"targetRps": 120}), pools=capped(cpu=2, gpu=3))
    assert gpu_only.decision.routing == SINGLE_POOL and gpu_only.route is None
    routed = cond(gpu_only.status, c.ROUTED)
    assert routed["reason"] == SINGLE_POOL
    assert "splits are limited to an even spread: no gateway is set (spec.serving.gateway" in routed["message"]


def test_an_even_spread_split_is_routed_by_the_service():
    # 110 requests/s, one GPU node (100) at most: without weights every replica gets the same
    # share, so 5 replicas (22 each, within the CPU's 22.86): 4 CPU + 1 GPU. With a gateway,
    # 1 CPU + 1 GPU, weighted, is enough.
    even = plan(infd(load={"targetRps": 110}), pools=capped(cpu=4, gpu=1))
    assert even.decision.routing == EVEN_SPREAD
    assert even.status["summary"]["pools"] == "cpu-standard:4+gpu-t4:1"
    assert [p.share_rps / p.replicas for p in even.decision.placements] == pytest.approx([22.0, 22.0])
    routed = cond(even.status, c.ROUTED)
    assert routed["reason"] == EVEN_SPREAD and "22 requests/s to each of 5 replicas" in routed["message"]
    assert even.route is None
    assert "weight" not in even.status["decision"]["placements"][0]
    weighted = plan(infd(load={"targetRps": 110}), pools=capped(cpu=4, gpu=1), routing=GATEWAY)
    assert weighted.status["summary"]["pools"] == "cpu-standard:1+gpu-t4:1"
    assert weighted.decision.total_cost_per_hour < even.decision.total_cost_per_hour


def test_a_gateway_that_cannot_be_used_is_a_warning_once_and_splits_are_narrowed():
    missing = Routing(why_not="spec.serving.gateway names Gateway ns/absent, which does not exist", problem=True)
    first = plan(infd(load={"targetRps": 120}), pools=capped(cpu=2, gpu=3), routing=missing)
    warnings = [e for e in first.events if e.reason == c.GATEWAY_UNAVAILABLE]
    assert len(warnings) == 1 and warnings[0].type == "Warning"
    assert "Gateway ns/absent, which does not exist" in warnings[0].message
    assert "Gateway ns/absent" in cond(first.status, c.ROUTED)["message"]
    again = plan(infd(load={"targetRps": 120}, status=first.status), pools=capped(cpu=2, gpu=3), routing=missing)
    assert not [e for e in again.events if e.reason == c.GATEWAY_UNAVAILABLE]


def test_recommend_mode_makes_no_route_and_removes_one_left_from_apply():
    applied = plan(infd(load={"targetRps": 120}), pools=capped(cpu=2, gpu=1), routing=GATEWAY)
    recommended = plan(infd(load={"targetRps": 120}, placement={"mode": "Recommend"}, status=applied.status),
                       pools=capped(cpu=2, gpu=1), routing=GATEWAY)
    assert recommended.decision.routing == WEIGHTED
    assert recommended.route is None and recommended.stale_route == "seed"
    assert "would route" in cond(recommended.status, c.ROUTED)["message"]


def test_an_httproute_the_api_server_refuses_or_someone_else_owns_is_reported():
    from hybridplace.controller.plan import plan_inference_deployment
    from test_plan import PROFILES, Settings, deployment_fingerprint

    def plan_with(**kw):
        return plan_inference_deployment(
            infd(load={"targetRps": 120}), pools=capped(cpu=2, gpu=1), profiles=PROFILES, jobs={}, children={},
            service_names=set(), settings=Settings(), now="2026-11-23T18:00:00Z",
            fingerprint=deployment_fingerprint, routing=GATEWAY, **kw)

    refused = plan_with(rejected={"HTTPRoute/seed": "422 Invalid: spec.rules[0].backendRefs: too many"})
    assert refused.route is None
    assert cond(refused.status, c.PLACED)["reason"] == c.CHILD_REJECTED
    assert "HTTPRoute/seed" in cond(refused.status, c.PLACED)["message"]
    taken = plan_with(blocked=frozenset({"HTTPRoute/seed"}))
    assert taken.route is None
    assert cond(taken.status, c.PLACED)["reason"] == c.NAME_CONFLICT
    # A backend Service someone else owns (the umbrella Service of an InferenceDeployment named
    # seed-gpu-t4 has this pool Service's name): no route, or a weighted share of this model's
    # traffic would reach the other model.
    assert plan_with().route is not None
    for blocked in ({"Service/seed-gpu-t4"}, {"Service/seed-cpu-standard"}):
        backend_taken = plan_with(blocked=frozenset(blocked))
        assert backend_taken.route is None, blocked
        assert cond(backend_taken.status, c.PLACED)["reason"] == c.NAME_CONFLICT
        routed = cond(backend_taken.status, c.ROUTED)  # it does not claim a route it did not apply
        assert routed["status"] == c.FALSE and routed["message"].startswith("not routed: HTTPRoute seed is not applied")
    assert cond(taken.status, c.ROUTED)["status"] == c.FALSE
    backend_refused = plan_with(rejected={"Service/seed-gpu-t4": "422 Invalid"})
    assert backend_refused.route is None


def test_in_mode_recommend_no_route_is_looked_for_again_and_again():
    """Recommend applies nothing: after the one delete of a route applied before, the status
    says "would route", and no reconcile asks the API server for a route to delete."""
    pools = capped(cpu=2, gpu=1)
    applied = plan(infd(load={"targetRps": 120}), pools=pools, routing=GATEWAY)
    recommend = {"mode": "Recommend"}
    first = plan(infd(load={"targetRps": 120}, placement=recommend, status=applied.status), pools=pools,
                 routing=GATEWAY)
    assert first.stale_route == "seed"  # the route applied before goes, once
    assert " would route " in cond(first.status, c.ROUTED)["message"]
    second = plan(infd(load={"targetRps": 120}, placement=recommend, status=first.status), pools=pools,
                  routing=GATEWAY)
    assert second.stale_route is None


def test_a_route_applied_before_a_spell_without_a_feasible_decision_is_still_deleted_after_it():
    """The route's existence is read from the last Routed message: a spell with no feasible
    decision (an overload, a re-measurement) overwrote it, so the route was never deleted when
    the Gateway was then unset, and kept sending traffic to per-pool Services deleted as stale."""
    named = {"gateway": {"name": "shared", "namespace": "gateways"}}
    pools = capped(cpu=2, gpu=1)
    first = plan(infd(load={"targetRps": 120}, serving=named), pools=pools, routing=GATEWAY)
    assert first.route is not None
    services = {s["metadata"]["name"] for s in first.services}
    overload = plan(infd(load={"targetRps": 100000}, serving=named, status=first.status), pools=pools,
                    children=as_children(first), services=services, routing=GATEWAY)
    assert not overload.decision.feasible and overload.route is None and overload.stale_route is None
    assert cond(overload.status, c.ROUTED)["message"].startswith("HTTPRoute seed on ")  # kept, and says so
    again = plan(infd(load={"targetRps": 100000}, serving=named, status=overload.status), pools=pools,
                 children=as_children(first), services=services, routing=GATEWAY)
    unset = plan(infd(load={"targetRps": 5}, status=again.status), pools=pools,
                 children=as_children(first), services=services, routing=Routing())
    assert unset.decision.feasible and unset.route is None
    assert unset.stale_route == "seed"
    # Never routed: nothing to delete, and no GET for it.
    plain = plan(infd(load={"targetRps": 100000}), pools=pools, routing=Routing())
    after = plan(infd(load={"targetRps": 5}, status=plain.status), pools=pools, routing=Routing())
    assert after.stale_route is None
