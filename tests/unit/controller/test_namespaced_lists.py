"""Namespaced mode (settings.namespaces set; the chart then grants namespaced kinds only through
Roles in those namespaces): every list of a namespaced kind is one list per watched namespace,
never a cluster-wide one that a Role refuses, and a refusal is an error, not an empty cache.
Against a mock API server on loopback (tests/cases/mock_api.py)."""

import pytest
from cases.mock_api import MockApi, Reply, status
from hybridplace.config import Settings
from hybridplace.controller.kube import ApiError
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue


def listing(version: str, *names: str, namespace: str = "a") -> Reply:
    items = [{"metadata": {"name": n, "namespace": namespace, "resourceVersion": version}} for n in names]
    return Reply(200, {"metadata": {"resourceVersion": version}, "items": items})


def test_lists_go_to_each_namespace_and_keep_the_smallest_version():
    with MockApi() as api:
        api.on("GET", "/apis/apps/v1/namespaces/a/deployments", listing("30", "x"))
        api.on("GET", "/apis/apps/v1/namespaces/b/deployments", listing("20", "y", namespace="b"))
        items, version = api.kube().list_all_versioned("Deployment", "l=v", ("a", "b"))
        assert [(i["kind"], i["metadata"]["name"]) for i in items] == [("Deployment", "x"), ("Deployment", "y")]
        assert version == 20  # a key missing from both lists is stale only if seen before both
        assert not api.calls("GET", "/apis/apps/v1/deployments")
        assert all("labelSelector=l%3Dv" in p for m, p, _ in api.requests)


def test_cluster_scoped_kinds_are_listed_once_whatever_the_namespaces():
    with MockApi() as api:
        api.on("GET", "/apis/hybridplace.io/v1alpha1/hardwarepools", listing("5", "cpu", namespace=None))
        assert [i["metadata"]["name"] for i in api.kube().list_all("HardwarePool", namespaces=("a",))] == ["cpu"]
        assert len(api.requests) == 1


def test_a_namespace_the_operator_may_not_list_is_an_error():
    with MockApi() as api:
        api.on("GET", "/apis/apps/v1/namespaces/a/deployments", listing("3", "x"))
        api.on("GET", "/apis/apps/v1/namespaces/b/deployments",
               status(403, "Forbidden", 'deployments.apps is forbidden: User "sa" cannot list'))
        with pytest.raises(ApiError) as err:
            api.kube().list_all("Deployment", namespaces=("a", "b"))
        assert err.value.status == 403 and not err.value.transient


def test_prime_never_lists_namespaced_kinds_across_the_cluster():
    with MockApi() as api:
        for path in ("/api/v1/nodes", "/apis/hybridplace.io/v1alpha1/hardwarepools"):
            api.on("GET", path, listing("1"))
        for ns in ("a", "b"):
            api.on("GET", f"/apis/hybridplace.io/v1alpha1/namespaces/{ns}/", listing("1"))
            api.on("GET", f"/apis/batch/v1/namespaces/{ns}/jobs", listing("1"))
            api.on("GET", f"/apis/apps/v1/namespaces/{ns}/deployments", listing("1", f"d-{ns}", namespace=ns))
            api.on("GET", f"/api/v1/namespaces/{ns}/services", listing("1"))
        state = ClusterState()
        reconciler = Reconciler(api.kube(), state, Settings(namespaces=("a", "b")), WorkQueue())
        reconciler.prime({})
        reconciler.relist()
        paths = {p.split("?")[0] for m, p, _ in api.requests}
        assert paths == {
            "/api/v1/nodes", "/apis/hybridplace.io/v1alpha1/hardwarepools",
            *(f"/apis/hybridplace.io/v1alpha1/namespaces/{ns}/{plural}" for ns in ("a", "b")
              for plural in ("modelprofiles", "inferencedeployments")),
            *(f"/apis/batch/v1/namespaces/{ns}/jobs" for ns in ("a", "b")),
            *(f"/apis/apps/v1/namespaces/{ns}/deployments" for ns in ("a", "b")),
            *(f"/api/v1/namespaces/{ns}/services" for ns in ("a", "b")),
        }


def test_events_about_cluster_scoped_objects_go_to_the_namespace_given():
    with MockApi() as api:
        api.on("POST", "/api/v1/namespaces/hp-system/events", Reply(201, {}))
        kube = api.kube()
        kube.events_namespace = "hp-system"
        pool = {"apiVersion": "hybridplace.io/v1alpha1", "kind": "HardwarePool", "metadata": {"name": "cpu"}}
        assert kube.event(pool, "Warning", "NotReady", "no nodes") is None
        (event,) = api.calls("POST", "/api/v1/namespaces/hp-system/events")
        assert event["involvedObject"]["name"] == "cpu" and event["involvedObject"]["namespace"] is None
