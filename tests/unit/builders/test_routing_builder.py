"""The split's HTTPRoute: owned, attached to the Gateway named (or the operator's default),
one backend per pool's Service weighted by the pool's share, on Triton's HTTP port."""

import pytest
from cases.api_objects import inference_deployment
from hybridplace.api import parse_object
from hybridplace.builders.routing import GatewayTarget, build_http_route, gateway_target, route_backends
from hybridplace.builders.serving import build_service
from hybridplace.placement import WEIGHTED, Decision, Placement


def infd(gateway=None):
    obj = inference_deployment("sentiment")
    obj["metadata"].update(namespace="team-a", uid="1234-uid")
    if gateway is not None:
        obj["spec"].setdefault("serving", {})["gateway"] = gateway
    return parse_object(obj)


def placement(pool, replicas, share):
    return Placement(pool=pool, replicas=replicas, batch_size=8, share_rps=share, predicted_latency_ms=10,
                     utilisation=0.5, cost_per_hour=1.0, watts=None)


SPLIT = Decision(True, "cost", (placement("cpu", 1, 22.86), placement("gpu", 1, 97.14)), routing=WEIGHTED)


def test_one_weighted_backend_per_pool_service_on_the_http_port():
    route = build_http_route(infd=infd(), decision=SPLIT, gateway=GatewayTarget("gw", "shared", "http"))
    assert route["apiVersion"] == "gateway.networking.k8s.io/v1" and route["kind"] == "HTTPRoute"
    assert route["metadata"]["name"] == "sentiment" and route["metadata"]["namespace"] == "team-a"
    assert route["metadata"]["ownerReferences"][0]["uid"] == "1234-uid"
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "shared", "namespace": "gw", "sectionName": "http"}]
    backends = route["spec"]["rules"][0]["backendRefs"]
    services = {build_service(infd=infd(), pool=p)["metadata"]["name"] for p in ("cpu", "gpu")}
    assert {b["name"] for b in backends} == services
    assert {b["port"] for b in backends} == {8000}
    total = sum(b["weight"] for b in backends)
    assert backends[0]["weight"] / total == pytest.approx(22.86 / 120, abs=1e-6)
    assert all(0 < b["weight"] <= 1_000_000 for b in backends)  # the Gateway API's bounds
    assert "hostnames" not in route["spec"]


def test_the_spec_gateway_wins_over_the_default_and_defaults_to_the_deployments_namespace():
    target, source = gateway_target(infd({"name": "edge", "hostnames": ["sentiment.example.com"]}), "gw/shared")
    assert target == GatewayTarget("team-a", "edge", None, ("sentiment.example.com",))
    assert source == "spec.serving.gateway"
    route = build_http_route(infd=infd(), decision=SPLIT, gateway=target)
    assert route["spec"]["hostnames"] == ["sentiment.example.com"]
    assert gateway_target(infd(), "gw/shared") == (GatewayTarget("gw", "shared"), "the operator's --default-gateway")
    assert gateway_target(infd(), "shared")[0] == GatewayTarget("team-a", "shared")
    assert gateway_target(infd(), "") == (None, "")


def test_what_is_compared_ignores_server_defaults_and_order():
    ours = build_http_route(infd=infd(), decision=SPLIT, gateway=GatewayTarget("gw", "shared"))
    stored = {**ours, "spec": {**ours["spec"], "rules": [{
        **ours["spec"]["rules"][0], "backendRefs": list(reversed(ours["spec"]["rules"][0]["backendRefs"])),
        "matches": [{"path": {"type": "PathPrefix", "value": "/"}}]}]}}
    assert route_backends(stored) == route_backends(ours)
    other = Decision(True, "cost", (placement("cpu", 2, 45.7), placement("gpu", 1, 94.3)), routing=WEIGHTED)
    assert route_backends(build_http_route(infd=infd(), decision=other, gateway=GatewayTarget("gw", "shared"))) \
        != route_backends(ours)


def test_a_gateway_field_the_schema_refuses_names_the_field():
    from hybridplace.api.validate import InvalidObject

    with pytest.raises(InvalidObject, match="spec.serving.gateway.name"):
        infd({"name": ""})
