"""A split that traffic can follow, end to end at the object level: the real operator, the local
cluster with the standard Gateway API CRDs (installed by cluster-up), imported profiles (the seed
table) that make 1 CPU + 1 GPU replica the cheapest way to carry 120 requests/s. The operator
owns an HTTPRoute whose weights are the pools' shares, re-weights it when the decision changes,
and deletes it when one pool carries the load; a Gateway named but missing narrows splits and
says so. No Gateway implementation runs here (docs/routing.md): nothing routes real requests."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from e2e_helpers import inference_deployment, running_operator, wait_condition, wait_event

pytestmark = [pytest.mark.cluster]

SEED = Path(__file__).resolve().parents[2] / "examples" / "seed" / "modelprofiles.yaml"
ROUTE_GROUP = "httproutes.gateway.networking.k8s.io"


@pytest.fixture(scope="module")
def routing_operator(pools, kubeconfig):
    """The operator, with what it learns of Gateways remembered for 1 s (30 s by default)."""
    with running_operator(kubeconfig, HP_GATEWAY_CACHE_SECONDS="1") as runner:
        yield runner


def seed_profiles(namespace: str) -> list[dict]:
    """examples/seed's two tables (CPU 50/400/3500 ms, GPU 30/100/800 ms at batch 1/10/100) as
    imported ModelProfiles of builtin:delay: no benchmark runs."""
    from hybridplace.api import builtin_digest
    from hybridplace.builders import names

    digest = builtin_digest("delay")
    out = []
    for doc in (d for d in yaml.safe_load_all(SEED.read_text()) if d):
        profile = copy.deepcopy(doc)
        pool = profile["spec"]["pool"]
        profile["metadata"] = {"name": names.profile_name(digest, pool), "namespace": namespace,
                               "labels": {names.LABEL_POOL: pool, names.LABEL_DIGEST: names.digest_label(digest)}}
        profile["spec"]["model"] = {"digest": digest, "name": "builtin:delay", "format": "torchscript"}
        out.append(profile)
    return out


def gateway(namespace: str) -> list[dict]:
    """A GatewayClass and a Gateway no controller serves: enough for an HTTPRoute's parentRef."""
    return [
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": {"name": f"hp-{namespace}"[:63]},
         "spec": {"controllerName": "example.com/no-controller"}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway",
         "metadata": {"name": "edge", "namespace": namespace},
         "spec": {"gatewayClassName": f"hp-{namespace}"[:63],
                  "listeners": [{"name": "http", "protocol": "HTTP", "port": 80}]}},
    ]


def split_deployment(name: str, rps: float, **serving) -> dict:
    # The seed example's SLO; headroom 0.2: a CPU replica takes 22.86 requests/s, a GPU one 100.
    return inference_deployment(
        name, model={"builtin": "delay"}, slo={"percentile": 95, "latencyMs": 1000},
        load={"targetRps": rps, "minReplicas": 1, "maxReplicas": 8},
        placement={"pools": ["cpu-standard", "gpu-t4"], "headroom": 0.2, "mode": serving.pop("mode", "Apply")},
        benchmark={"batchSizes": [1, 10, 100]}, scaling={"mode": "Off"}, serving=serving)


def route(kubectl, name):
    found = kubectl("get", ROUTE_GROUP, name, "-o", "json", check=False)
    return json.loads(found) if found else None


def weights_match_shares(kubectl, name):
    """The HTTPRoute's weights against status.decision's shares: the route (or None) when every
    pool's weight fraction is within 1% of its share of the load, and of the decision's pools."""
    found = route(kubectl, name)
    status = kubectl.json("infd", name).get("status") or {}
    decision = status.get("decision") or {}
    if found is None or decision.get("routing") != "Weighted":
        return None
    backends = {b["name"]: b["weight"] for b in found["spec"]["rules"][0]["backendRefs"]}
    total_w = sum(backends.values())
    total_rps = sum(p["shareRps"] for p in decision["placements"])
    wanted = {f"{name}-{p['pool']}": p["shareRps"] / total_rps for p in decision["placements"]}
    if set(backends) != set(wanted):
        return None
    if any(abs(backends[b] / total_w - share) > 0.01 for b, share in wanted.items()):
        return None
    return found


def test_a_split_gets_an_httproute_that_follows_every_re_decision_and_stays_when_the_split_ends(
        routing_operator, kubectl, namespace, wait_until):
    for obj in [*seed_profiles(namespace), *gateway(namespace)]:
        kubectl.apply(obj)
    name = "splitter"
    kubectl.apply(split_deployment(name, 120, gateway={"name": "edge", "sectionName": "http"}))

    # 120 requests/s: 1 CPU + 1 GPU replica, weighted by what each may take (22.32 + 97.68).
    found = wait_until(lambda: weights_match_shares(kubectl, name), timeout=60, what="an HTTPRoute with the shares",
                       detail=lambda: (route(kubectl, name), kubectl.condition("infd", name, "Routed")))
    status = kubectl.json("infd", name)["status"]
    assert status["summary"]["pools"] == "cpu-standard:1+gpu-t4:1"
    assert found["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "edge", "namespace": namespace, "sectionName": "http"}]
    assert {b["name"] for b in found["spec"]["rules"][0]["backendRefs"]} == {f"{name}-cpu-standard",
                                                                           f"{name}-gpu-t4"}
    assert found["metadata"]["ownerReferences"][0]["uid"] == kubectl.json("infd", name)["metadata"]["uid"]
    services = {s["metadata"]["name"] for s in kubectl.json("services")["items"]}
    assert {f"{name}-cpu-standard", f"{name}-gpu-t4", name} <= services
    routed = wait_condition(kubectl, name, "Routed", reason="Weighted", timeout=30)
    assert f"HTTPRoute {name} on Gateway {namespace}/edge" in routed["message"]
    wait_event(kubectl, name, "Routed", type_="Normal")
    first = {b["name"]: b["weight"] for b in found["spec"]["rules"][0]["backendRefs"]}

    # 140 requests/s: a re-decision (2 CPU + 1 GPU) re-weights the same route.
    kubectl.apply(split_deployment(name, 140, gateway={"name": "edge", "sectionName": "http"}))
    again = wait_until(lambda: (found := weights_match_shares(kubectl, name)) and {
        b["name"]: b["weight"] for b in found["spec"]["rules"][0]["backendRefs"]} != first and found,
        timeout=60, what="the HTTPRoute re-weighted for 140 requests/s", detail=lambda: route(kubectl, name))
    assert kubectl.json("infd", name)["status"]["summary"]["pools"] == "cpu-standard:2+gpu-t4:1"
    assert again["metadata"]["uid"] == found["metadata"]["uid"]  # the same object, patched

    # 20 requests/s: one CPU replica carries it; the split ends and the route stays, sending
    # every request to the umbrella Service: the Gateway's clients keep their route.
    kubectl.apply(split_deployment(name, 20, gateway={"name": "edge", "sectionName": "http"}))

    def to_the_service():
        found = route(kubectl, name)
        backends = found and [(b["name"], b["weight"]) for b in found["spec"]["rules"][0]["backendRefs"]]
        return found if backends == [(name, 1)] else None

    single = wait_until(to_the_service, timeout=60, what="the HTTPRoute sending all to Service " + name,
                        detail=lambda: route(kubectl, name))
    assert single["metadata"]["uid"] == found["metadata"]["uid"]  # the same object, patched
    routed = wait_condition(kubectl, name, "Routed", reason="SinglePool", timeout=30)
    assert routed["message"].startswith(f"HTTPRoute {name} on Gateway {namespace}/edge")
    assert kubectl.json("infd", name)["status"]["decision"]["routing"] == "SinglePool"
    # The Gateway unset: the route goes.
    kubectl.apply(split_deployment(name, 20))
    wait_until(lambda: route(kubectl, name) is None, timeout=60, what="the HTTPRoute deleted")


def test_a_gateway_named_but_missing_narrows_the_split_and_says_so(routing_operator, kubectl, namespace):
    for obj in seed_profiles(namespace):
        kubectl.apply(obj)
    name = "nogateway"
    # Recommend: the decision and conditions only (no serving pods on this 2-core machine).
    kubectl.apply(split_deployment(name, 120, gateway={"name": "absent"}, mode="Recommend"))
    routed = wait_condition(kubectl, name, "Routed", reason="SinglePool", timeout=60)
    assert f"spec.serving.gateway names Gateway {namespace}/absent, which does not exist" in routed["message"]
    event = wait_event(kubectl, name, "GatewayUnavailable", type_="Warning")
    assert "splits are limited to an even spread" in event["message"]
    status = kubectl.json("infd", name)["status"]
    # Without weights a Service gives every replica the same share: 6 CPU replicas (20 each), not 1 + 1.
    assert status["summary"]["pools"] == "cpu-standard:6"
    assert route(kubectl, name) is None
