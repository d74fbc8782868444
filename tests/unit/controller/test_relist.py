"""The cache keeps the informer contract: a re-list replaces the cached set, so a deletion no
watch event reported (around an API-server restart) is found, and what depended on it is
reconciled; an object seen after the list began is kept. Against a mock API server."""

from __future__ import annotations

import time

from cases.api_objects import hardware_pool, inference_deployment
from cases.mock_api import MockApi, Reply
from hybridplace.builders import names
from hybridplace.config import Settings
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue

LISTS = {
    "Node": "/api/v1/nodes",
    "HardwarePool": "/apis/hybridplace.io/v1alpha1/hardwarepools",
    "ModelProfile": "/apis/hybridplace.io/v1alpha1/modelprofiles",
    "Job": "/apis/batch/v1/jobs",
    "Deployment": "/apis/apps/v1/deployments",
    "Service": "/api/v1/services",
    "InferenceDeployment": "/apis/hybridplace.io/v1alpha1/inferencedeployments",
}


def versioned(body, rv, namespace="ns"):
    body["metadata"].update(resourceVersion=str(rv))
    if namespace:
        body["metadata"]["namespace"] = namespace
    return body


def serving(name, instance, rv):
    labels = {names.LABEL_INSTANCE: instance, names.LABEL_POOL: "cpu-standard"}
    return versioned(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels, "ownerReferences": []},
            "spec": {"replicas": 1, "template": {"spec": {"containers": []}}},
        },
        rv,
    )


def answer_lists(api, version, **items):
    for kind, path in LISTS.items():
        api.on("GET", path, Reply(200, {"metadata": {"resourceVersion": str(version)}, "items": items.get(kind, [])}))


def test_a_relist_drops_what_was_deleted_unseen_and_reconciles_what_depended_on_it():
    state = ClusterState()
    state.put_infd(versioned(inference_deployment("kept"), 10))
    state.put_infd(versioned(inference_deployment("deleted"), 11))
    state.put_deployment(serving("kept-cpu-standard", "kept", 12))
    state.put_pool(versioned(hardware_pool("gone-pool"), 13, namespace=None))
    state.put_infd(versioned(inference_deployment("created-after-the-list"), 200))
    with MockApi() as api:
        # The list (at version 100) no longer has "deleted", the Deployment of "kept", or the pool.
        answer_lists(api, 100, InferenceDeployment=[versioned(inference_deployment("kept"), 10)])
        rec = Reconciler(api.kube(), state, Settings(workers=1), WorkQueue())
        dropped = rec.relist()
    assert dropped == 3
    assert set(state.all_infds()) == {("ns", "kept"), ("ns", "created-after-the-list")}
    assert state.children_of("ns", "kept") == {}  # so the next reconcile recreates it
    assert "gone-pool" not in state.pool_names()
    due = set()
    while (key := rec.queue.get(timeout=0)) is not None:
        due.add(key)
    assert ("infd", "ns", "kept") in due


def test_a_deleted_inference_deployment_is_not_retried_for_ever():
    state = ClusterState()
    state.put_infd(versioned(inference_deployment("deleted"), 5))
    with MockApi() as api:
        answer_lists(api, 100)
        rec = Reconciler(api.kube(), state, Settings(workers=1), WorkQueue())
        rec.relist()
        before = len(api.requests)
        rec.reconcile(("infd", "ns", "deleted"))
        assert len(api.requests) == before  # nothing to do: no GET, no 404, no retry


def test_a_relist_adds_what_the_watch_missed_and_keeps_newer_versions():
    state = ClusterState()
    state.put_infd(versioned(inference_deployment("fresh"), 300))
    with MockApi() as api:
        answer_lists(
            api,
            100,
            InferenceDeployment=[
                versioned(inference_deployment("fresh"), 90),
                versioned(inference_deployment("missed"), 95),
            ],
        )
        rec = Reconciler(api.kube(), state, Settings(workers=1), WorkQueue())
        assert rec.relist() == 0
    assert state.seen_version("InferenceDeployment", ("ns", "fresh")) == 300
    assert ("ns", "missed") in state.all_infds()


def test_a_failing_relist_does_not_stop_the_resync():
    with MockApi() as api:
        api.down = True
        rec = Reconciler(api.kube(), ClusterState(), Settings(workers=1, resync_seconds=1), WorkQueue())
        rec.state.put_infd(versioned(inference_deployment("a"), 1))
        rec.start()
        try:
            deadline = time.monotonic() + 10
            while rec.errors < 2 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert rec.errors >= 2 and rec.health(stall_seconds=60) == []
        finally:
            rec.stop()
