"""Services are children like Deployments: the operator puts back, deletes or adopts only those
its InferenceDeployment controls (same uid). A namesake left by an earlier object of the same
name (deleted with --cascade=orphan, then created again) is a name conflict, left untouched.
Against a mock API server (tests/cases/mock_api.py)."""

from __future__ import annotations

import asyncio
import copy

import kopf
import pytest
from cases.long_status import POOLS, PROFILES, SEED
from cases.mock_api import MockApi, Reply, status
from hybridplace import conditions as c
from hybridplace.builders import names
from hybridplace.config import Settings
from hybridplace.controller import handlers
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue

SERVICES = "/api/v1/namespaces/ns/services"
DEPLOYMENTS = "/apis/apps/v1/namespaces/ns/deployments"


def service(name: str, owner_uid: str, uid: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": name, "namespace": "ns", "uid": uid, "resourceVersion": "2",
                         "labels": {names.LABEL_MANAGED_BY: names.MANAGED_BY, names.LABEL_INSTANCE: "seed"},
                         "ownerReferences": [{"apiVersion": "hybridplace.io/v1alpha1", "kind": "InferenceDeployment",
                                              "name": "seed", "uid": owner_uid, "controller": True}]},
            "spec": {"type": "ClusterIP", "ports": [{"name": "http", "port": 8000}]}}


def seed_state(*services: dict) -> tuple[ClusterState, dict]:
    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="new-uid", generation=1, namespace="ns", resourceVersion="3")
    body["spec"]["placement"] = {**body["spec"]["placement"], "mode": "Apply"}
    state = ClusterState()
    for pool in POOLS.values():
        p = pool.to_dict()
        state.put_pool({**p, "metadata": {**p["metadata"], "resourceVersion": "1"}})
    for profile in PROFILES.values():
        p = profile.to_dict()
        state.put_profile({**p, "metadata": {**p["metadata"], "namespace": "ns", "resourceVersion": "1"}})
    state.put_infd(body)
    for svc in services:
        state.put_service(svc)
    return state, body


def echo_created_deployments(api: MockApi) -> None:
    api.routes.insert(0, lambda m, p, b: Reply(201, {**b, "metadata": {**b["metadata"], "uid": "d1"}})
                      if m == "POST" and p.startswith(DEPLOYMENTS) else None)


def echo_created_services(api: MockApi) -> None:
    api.routes.insert(0, lambda m, p, b: Reply(201, {**b, "metadata": {**b["metadata"], "uid": "s9"}})
                      if m == "POST" and p.startswith(SERVICES) else None)


def reconcile_echoing(state: ClusterState, body: dict) -> MockApi:
    """One reconcile of ns/seed against an API server that creates whatever it is sent."""
    with MockApi() as api:
        echo_created_deployments(api)
        echo_created_services(api)
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
        Reconciler(api.kube(), state, Settings(workers=1), WorkQueue()).reconcile_inference_deployment("ns", "seed")
    return api


def test_only_services_the_deployment_controls_are_its_own():
    stale = names.serving_name("seed", "gpu-t4")
    state, _ = seed_state(service("seed", "new-uid", "s1"), service(stale, "old-uid", "s2"))
    assert state.services_of("ns", "seed") == {"seed"}
    assert state.service_uid("ns", "seed") == "s1"
    state.put_service(service("seed", "new-uid", "s1"), deleted=True)
    assert state.services_of("ns", "seed") == set() and state.service_uid("ns", "seed") is None


def test_an_orphaned_namesake_is_a_conflict_and_an_orphaned_stale_service_is_not_deleted():
    stale = names.serving_name("seed", "gpu-t4")
    orphan = service("seed", "old-uid", "s1")
    state, body = seed_state(orphan, service(stale, "old-uid", "s2"))
    with MockApi() as api:
        echo_created_deployments(api)
        api.on("POST", SERVICES, status(409, "AlreadyExists"))
        api.on("GET", f"{SERVICES}/seed", Reply(200, orphan))
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
        queue = WorkQueue()
        rec = Reconciler(api.kube(), state, Settings(workers=1), queue)
        rec.reconcile_inference_deployment("ns", "seed")
        assert not api.calls("DELETE", SERVICES)  # not the orphaned per-pool Service
        assert not api.calls("PATCH", SERVICES)  # nor put back: it is not ours
        assert [b["metadata"]["name"] for b in api.calls("POST", SERVICES)] == ["seed"]
        # Planned again at once with the conflict noted: reported in status, still untouched.
        assert queue.get(timeout=1) == ("infd", "ns", "seed")
        rec.reconcile_inference_deployment("ns", "seed")
        assert not api.calls("DELETE", SERVICES) and not api.calls("PATCH", SERVICES)
        (written,) = api.calls("PATCH", "/apis/hybridplace.io")
    placed = c.get_condition(written["status"]["conditions"], c.PLACED)
    assert placed["status"] == c.FALSE and "Service/seed" in placed["message"], placed


def test_a_stale_per_pool_service_of_its_own_is_deleted_by_uid():
    stale = names.serving_name("seed", "gpu-t4")
    state, body = seed_state(service("seed", "new-uid", "s1"), service(stale, "new-uid", "s2"))
    with MockApi() as api:
        echo_created_deployments(api)
        api.on("DELETE", SERVICES, Reply(200, {}))
        api.on("PATCH", f"{SERVICES}/seed", Reply(200, service("seed", "new-uid", "s1")))  # put back
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
        Reconciler(api.kube(), state, Settings(workers=1), WorkQueue()).reconcile_inference_deployment("ns", "seed")
        (delete,) = api.calls("DELETE", SERVICES)
    assert delete["preconditions"] == {"uid": "s2"}


@pytest.mark.parametrize("event", ["MODIFIED", "DELETED"])
def test_a_hand_edited_or_deleted_service_is_reconciled_at_once_not_at_the_next_resync(event, monkeypatch):
    monkeypatch.setattr(handlers.OPERATOR, "state", ClusterState(), raising=False)
    monkeypatch.setattr(handlers.OPERATOR, "queue", queue := WorkQueue(), raising=False)
    edited = {**service("seed", "new-uid", "s1"), "spec": {"type": "NodePort", "ports": []}}
    asyncio.run(handlers.serving_service_event(type=event, body=kopf.Body(edited)))
    assert queue.get(timeout=1) == ("infd", "ns", "seed")


def test_a_terminating_deployment_gets_no_children_events_or_status():
    """`kubectl delete --cascade=foreground` (or Argo CD's foreground prune) leaves the object,
    terminating, while the garbage collector deletes its children; each child's deletion queues
    it again. Re-creating them fought the collector and started serving pods for an object on its
    way out."""
    state, body = seed_state()
    body["metadata"].update(deletionTimestamp="2026-11-30T00:00:00Z", finalizers=["foregroundDeletion"],
                            resourceVersion="4")
    state.put_infd(body)
    api = reconcile_echoing(state, body)
    assert api.calls("POST", DEPLOYMENTS) == [] and api.calls("POST", SERVICES) == []
    assert [(m, p) for m, p, _ in api.requests if m != "GET"] == []  # no Job, status patch or Event either
    # The same object without the deletion: children are created (the test can fail).
    state, body = seed_state()
    assert reconcile_echoing(state, body).calls("POST", DEPLOYMENTS)


def test_no_route_sends_traffic_to_a_backend_service_someone_else_holds():
    """The per-pool Service seed-gpu-t4 has the name of the umbrella Service of an
    InferenceDeployment called seed-gpu-t4: found taken on create, it is a conflict, and the
    split's HTTPRoute is not created in that pass either (it would route a weighted share of
    this model's traffic to the other model)."""
    from test_gateways_io import DISCOVERY, SERVED

    routes = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes"
    taken = names.serving_name("seed", "gpu-t4")

    def run(foreign: bool) -> MockApi:
        state, body = seed_state()
        body["spec"]["load"]["targetRps"] = 120  # a split over both pools
        state.put_infd(body)
        with MockApi() as api:
            echo_created_deployments(api)
            api.on("GET", DISCOVERY, SERVED)
            api.on("GET", "/apis/gateway.networking.k8s.io/v1/namespaces/gw/gateways/shared",
                   Reply(200, {"kind": "Gateway", "metadata": {"name": "shared"}}))
            api.routes.append(lambda m, p, b: Reply(201, {**b, "metadata": {**b["metadata"], "uid": "u"}})
                              if m == "POST" and (p.startswith(SERVICES) or p.startswith(routes)) else None)
            if foreign:
                other = service(taken, "other-uid", "s7")
                other["metadata"]["ownerReferences"][0]["name"] = taken  # InferenceDeployment seed-gpu-t4's
                other["metadata"]["labels"][names.LABEL_INSTANCE] = taken
                api.on("GET", f"{SERVICES}/{taken}", Reply(200, other))
                api.routes.insert(0, lambda m, p, b: status(409, "AlreadyExists") if m == "POST"
                                  and p.startswith(SERVICES) and b["metadata"]["name"] == taken else None)
            api.on("GET", routes, status(404, "NotFound"))
            api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
            Reconciler(api.kube(), state, Settings(workers=1, default_gateway="gw/shared"),
                       WorkQueue()).reconcile_inference_deployment("ns", "seed")
        return api

    assert run(foreign=False).calls("POST", routes)  # the split is routed when its Services are ours
    api = run(foreign=True)
    assert [b["metadata"]["name"] for b in api.calls("POST", SERVICES)].count(taken) == 1
    assert not api.calls("POST", routes) and not api.calls("PATCH", routes)


def test_a_child_of_an_earlier_namesake_is_waited_for_not_blocked_for_a_resync_period(monkeypatch):
    """`kubectl delete infd seed` then `apply` (or `replace --force`): the old Service, owned by
    the old uid, is there until the garbage collector deletes it a moment later. It was taken for
    someone else's and left out for a resync period (300 s): no Service for the new object, and
    a false NameConflict. Now it is tried again after GC_WAIT_S, and the message says why."""
    from hybridplace.controller import reconcile as r

    clock = [1000.0]
    monkeypatch.setattr(r.time, "monotonic", lambda: clock[0])
    old = service("seed", "old-uid", "s1")
    state, body = seed_state()
    with MockApi() as api:
        echo_created_deployments(api)
        api.on("POST", SERVICES, status(409, "AlreadyExists"), Reply(201, service("seed", "new-uid", "s2")))
        api.on("GET", f"{SERVICES}/seed", Reply(200, old))
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
        queue = WorkQueue()
        rec = Reconciler(api.kube(), state, Settings(workers=1), queue)
        rec.reconcile_inference_deployment("ns", "seed")
        assert rec._blocked("ns", "seed") == ({"Service/seed"}, {"Service/seed"})
        rec.reconcile_inference_deployment("ns", "seed")  # queued again at once: planned with it left out
        placed = c.get_condition(api.calls("PATCH", "/apis/hybridplace.io")[-1]["status"]["conditions"], c.PLACED)
        assert placed["reason"] == c.NAME_CONFLICT and "garbage collector" in placed["message"]
        assert "rename one of them" not in placed["message"]
        clock[0] += r.GC_WAIT_S + 1  # the collector deleted it meanwhile
        rec.reconcile_inference_deployment("ns", "seed")
        assert len(api.calls("POST", SERVICES)) == 2  # tried again, and created
        assert rec._blocked("ns", "seed") == (set(), set())
    # A namesake nobody owns (deleted with --cascade=orphan, or made by hand) stays blocked a resync period.
    orphan = service("seed", "old-uid", "s1")
    orphan["metadata"]["ownerReferences"] = []
    state, body = seed_state()
    with MockApi() as api:
        echo_created_deployments(api)
        api.on("POST", SERVICES, status(409, "AlreadyExists"))
        api.on("GET", f"{SERVICES}/seed", Reply(200, orphan))
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
        rec = Reconciler(api.kube(), state, Settings(workers=1), WorkQueue())
        rec.reconcile_inference_deployment("ns", "seed")
        clock[0] += r.GC_WAIT_S + 1
        assert rec._blocked("ns", "seed") == ({"Service/seed"}, set())


def test_a_stale_deployment_of_its_own_is_deleted_by_uid(monkeypatch):
    """As Services and Jobs: the DELETE names the Deployment's uid, so a namesake created since
    the cache was read (by hand, or by another owner) is not deleted in its place."""
    from hybridplace.controller import reconcile as r
    from hybridplace.controller.plan import Plan

    stale = names.serving_name("seed", "gpu-t4")
    state, body = seed_state()
    state.put_deployment({"kind": "Deployment", "metadata": {
        "name": stale, "namespace": "ns", "uid": "d-old", "resourceVersion": "5",
        "labels": {names.LABEL_INSTANCE: "seed", names.LABEL_POOL: "gpu-t4"},
        "ownerReferences": [{"kind": "InferenceDeployment", "name": "seed", "uid": "new-uid", "controller": True}]},
        "spec": {"replicas": 1}})
    monkeypatch.setattr(r, "plan_inference_deployment",
                        lambda *a, **k: Plan(digest="d", status=body.get("status") or {}, stale_deployments=[stale]))
    with MockApi() as api:
        api.on("DELETE", DEPLOYMENTS, Reply(200, {}))
        Reconciler(api.kube(), state, Settings(workers=1), WorkQueue()).reconcile_inference_deployment("ns", "seed")
        (delete,) = api.calls("DELETE", DEPLOYMENTS)
    assert delete["preconditions"] == {"uid": "d-old"}


def test_a_deployment_of_an_earlier_namesake_in_the_cache_is_waited_for_too():
    """The usual case after delete-then-apply: the old serving Deployment is already in the
    cache (the operator watched it), controlled by the old uid. Placed says the garbage
    collector is deleting it, not that someone else holds the name; its deletion event then
    brings the reconcile that creates the new one."""
    state, body = seed_state()
    for pool in ("cpu-standard", "gpu-t4"):
        state.put_deployment({"kind": "Deployment", "metadata": {
            "name": names.serving_name("seed", pool), "namespace": "ns", "uid": f"d-{pool}", "resourceVersion": "5",
            "labels": {names.LABEL_INSTANCE: "seed", names.LABEL_POOL: pool},
            "ownerReferences": [{"kind": "InferenceDeployment", "name": "seed", "uid": "old-uid", "controller": True}]},
            "spec": {"replicas": 1}})
    with MockApi() as api:
        echo_created_services(api)
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
        Reconciler(api.kube(), state, Settings(workers=1), WorkQueue()).reconcile_inference_deployment("ns", "seed")
        placed = c.get_condition(api.calls("PATCH", "/apis/hybridplace.io")[-1]["status"]["conditions"], c.PLACED)
        assert not api.calls("POST", DEPLOYMENTS) and not api.calls("PATCH", DEPLOYMENTS)  # left to the collector
    assert placed["reason"] == c.NAME_CONFLICT and "garbage collector" in placed["message"], placed["message"]
    assert "rename one of them" not in placed["message"]
