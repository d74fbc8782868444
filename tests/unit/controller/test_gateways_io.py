"""The Gateway API I/O against a mock API server (tests/cases/mock_api.py): whether the Gateway
API is served and the named Gateway exists (404: absent, 403: reported, transient: raised for
the worker loop to retry), and the split's HTTPRoute created, corrected, adopted, left alone
when someone else's, and deleted only when ours."""

import pytest
from cases.mock_api import MockApi, Reply, status
from hybridplace.builders.routing import GatewayTarget
from hybridplace.config import Settings
from hybridplace.controller.gateways import GatewayLookup
from hybridplace.controller.kube import ApiError
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue

DISCOVERY = "/apis/gateway.networking.k8s.io/v1"
GATEWAYS = "/apis/gateway.networking.k8s.io/v1/namespaces/gw/gateways"
ROUTES = "/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes"
SERVED = Reply(200, {"kind": "APIResourceList", "groupVersion": "gateway.networking.k8s.io/v1",
                     "resources": [{"name": "gateways"}, {"name": "httproutes"}, {"name": "httproutes/status"}]})
TARGET = GatewayTarget("gw", "shared")
OWNER = {"metadata": {"name": "web", "namespace": "ns", "uid": "owner-uid"}}


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def route(weights=(("web-cpu", 200000), ("web-gpu", 800000)), owner="owner-uid"):
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
            "metadata": {"name": "web", "namespace": "ns", "uid": "route-uid",
                         "ownerReferences": [{"uid": owner}]},
            "spec": {"parentRefs": [{"name": "shared", "namespace": "gw"}],
                     "rules": [{"backendRefs": [{"name": n, "port": 8000, "weight": w} for n, w in weights]}]}}


def test_a_served_gateway_api_and_an_existing_gateway_give_weighted_routing_asked_once_per_ttl():
    clock = FakeClock()
    with MockApi() as api:
        api.on("GET", DISCOVERY, SERVED)
        api.on("GET", GATEWAYS, Reply(200, {"kind": "Gateway", "metadata": {"name": "shared"}}))
        lookup = GatewayLookup(api.kube(), ttl_s=30, clock=clock)
        assert lookup.routing(TARGET).gateway == TARGET
        assert lookup.routing(TARGET).weighted
        assert len(api.calls("GET", GATEWAYS)) == 1  # remembered
        clock.now = 31
        assert lookup.routing(TARGET).weighted
        assert len(api.calls("GET", GATEWAYS)) == 2


def test_no_gateway_named_asks_nothing():
    with MockApi() as api:
        found = GatewayLookup(api.kube()).routing(None)
        assert not found.weighted and not found.problem and not api.requests


def test_without_the_gateway_api_crds_the_split_is_narrowed_and_the_message_says_why():
    with MockApi() as api:  # the mock answers 404 to anything not scripted, as without the CRDs
        found = GatewayLookup(api.kube()).routing(TARGET, "spec.serving.gateway")
    assert not found.weighted and found.problem
    assert "spec.serving.gateway names Gateway gw/shared" in found.why_not
    assert "does not serve the Gateway API" in found.why_not


def test_a_gateway_api_without_httproutes_is_not_used():
    with MockApi() as api:
        api.on("GET", DISCOVERY, Reply(200, {"resources": [{"name": "gateways"}]}))
        found = GatewayLookup(api.kube()).routing(TARGET)
    assert not found.weighted and "has no HTTPRoute" in found.why_not


def test_a_gateway_named_but_missing_names_the_field_and_the_object():
    with MockApi() as api:
        api.on("GET", DISCOVERY, SERVED)
        api.on("GET", GATEWAYS, status(404, "NotFound"))
        found = GatewayLookup(api.kube()).routing(TARGET, "the operator's --default-gateway")
    assert not found.weighted and found.problem
    assert found.why_not == "the operator's --default-gateway names Gateway gw/shared, which does not exist"


@pytest.mark.parametrize("path", [DISCOVERY, GATEWAYS])
def test_forbidden_is_reported_not_raised(path):
    with MockApi() as api:
        api.on("GET", DISCOVERY, SERVED)
        api.on("GET", path, status(403, "Forbidden", "cannot get"))
        found = GatewayLookup(api.kube()).routing(TARGET)
    assert not found.weighted and found.problem and "403" in found.why_not


@pytest.mark.parametrize("path", [DISCOVERY, GATEWAYS])
@pytest.mark.parametrize("failure", [status(500, "InternalError"), status(503, "ServiceUnavailable"),
                                     Reply(reset=True), Reply(hang=1.0)])
def test_a_transient_failure_raises_for_the_worker_loop_to_retry(path, failure):
    # reset: the connection dropped (as a refused or dying API server); hang: a read timeout.
    with MockApi() as api:
        api.on("GET", DISCOVERY, SERVED)
        api.on("GET", path, failure)
        with pytest.raises(ApiError) as err:
            GatewayLookup(api.kube(timeout=(1.0, 0.2))).routing(TARGET)
    assert err.value.transient


def reconciler(api):
    return Reconciler(api.kube(), ClusterState(), Settings(workers=1), WorkQueue())


def test_a_missing_route_is_created():
    with MockApi() as api:
        api.on("POST", ROUTES, Reply(201, route()))
        assert reconciler(api)._converge_route(OWNER, route())
        assert len(api.calls("POST", ROUTES)) == 1


def test_a_route_created_meanwhile_by_us_is_adopted_and_one_of_someone_else_is_left_alone():
    with MockApi() as api:
        api.on("GET", ROUTES, status(404, "NotFound"), Reply(200, route()))
        api.on("POST", ROUTES, status(409, "AlreadyExists"))
        assert reconciler(api)._converge_route(OWNER, route())
    with MockApi() as api:
        api.on("GET", ROUTES, Reply(200, route(owner="someone-else")))
        assert not reconciler(api)._converge_route(OWNER, route())
        assert not api.calls("PATCH", ROUTES) and not api.calls("POST", ROUTES)


def test_weights_that_differ_are_applied_and_equal_ones_are_not():
    with MockApi() as api:
        api.on("GET", ROUTES, Reply(200, route()))
        api.on("PATCH", ROUTES, Reply(200, route()))
        r = reconciler(api)
        assert r._converge_route(OWNER, route())
        assert not api.calls("PATCH", ROUTES)
        assert r._converge_route(OWNER, route(weights=(("web-cpu", 300000), ("web-gpu", 700000))))
        patched = api.calls("PATCH", ROUTES)
        assert len(patched) == 1 and patched[0]["spec"]["rules"][0]["backendRefs"][0]["weight"] == 300000


def test_a_404_on_create_means_the_crds_went_away_the_lookup_asks_again_and_the_reconcile_retries():
    with MockApi() as api:
        api.on("GET", DISCOVERY, SERVED)
        api.on("GET", GATEWAYS, Reply(200, {"kind": "Gateway"}))
        api.on("GET", ROUTES, status(404, "NotFound"))
        r = reconciler(api)
        assert r.gateways.routing(TARGET).weighted
        with pytest.raises(ApiError) as err:
            r._converge_route(OWNER, route())  # POST answered 404 by the mock
        assert err.value.status == 404
        api.on("GET", DISCOVERY, status(404, "NotFound"))
        assert not r.gateways.routing(TARGET).weighted  # asked again, not from the cache


@pytest.mark.parametrize("failure", [status(500, "InternalError"), status(429, "TooManyRequests")])
def test_a_transient_failure_of_the_route_raises(failure):
    with MockApi() as api:
        api.on("GET", ROUTES, failure)
        with pytest.raises(ApiError):
            reconciler(api)._converge_route(OWNER, route())


def test_only_our_route_is_deleted_by_uid():
    with MockApi() as api:
        api.on("GET", ROUTES, Reply(200, route()))
        api.on("DELETE", ROUTES, Reply(200, {}))
        reconciler(api)._delete_route(OWNER, "ns", "web")
        deleted = api.calls("DELETE", ROUTES)
        assert len(deleted) == 1 and deleted[0]["preconditions"] == {"uid": "route-uid"}
    with MockApi() as api:
        api.on("GET", ROUTES, Reply(200, route(owner="someone-else")))
        reconciler(api)._delete_route(OWNER, "ns", "web")
        assert not api.calls("DELETE", ROUTES)
    with MockApi() as api:  # gone already, or no Gateway API: nothing to do
        reconciler(api)._delete_route(OWNER, "ns", "web")
        assert not api.calls("DELETE", ROUTES)
