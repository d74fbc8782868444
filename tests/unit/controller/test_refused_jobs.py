"""A HardwarePool the CRD accepts but pod validation refuses (here hugepages that are not a
whole number of pages; whatever the CRD cannot know of a Pod's rules): the API server answers
its benchmark Job with a 422.
That pool says why (Failed, BenchmarkRejected), the other pools are placed without it, and the
Job is not sent again until a resync period has passed. Against a mock API server."""

from __future__ import annotations

import copy

from cases.long_status import POOLS
from cases.mock_api import MockApi, Reply, status
from hybridplace.config import Settings
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.workqueue import WorkQueue
from test_service_ownership import DEPLOYMENTS, SERVICES, echo_created_deployments, seed_state

JOBS = "/apis/batch/v1/namespaces/ns/jobs"
REFUSAL = ('Job.batch "hp-bench" is invalid: spec.template.spec.containers[0].resources.requests[hugepages-2Mi]: '
           'Invalid value: "3Mi": must be a multiple of 2Mi')


def test_a_job_the_api_server_refuses_fails_its_pool_not_the_reconcile():
    state, body = seed_state()
    bad = copy.deepcopy(POOLS["cpu-standard"].to_dict())
    bad["metadata"] = {"name": "cpu-new", "resourceVersion": "1"}
    bad["spec"]["replicaResources"]["requests"]["hugepages-2Mi"] = "3Mi"  # not a whole number of 2Mi pages
    bad["spec"]["nodeAllocatable"]["hugepages-2Mi"] = "1Gi"
    state.put_pool(bad)
    body["spec"]["placement"]["pools"] = []  # every pool that admits the namespace, cpu-new too
    state.put_infd(body)
    queue = WorkQueue()
    with MockApi() as api:
        api.on("POST", JOBS, status(422, "Invalid", REFUSAL))
        echo_created_deployments(api)
        api.routes.insert(0, lambda m, p, b: Reply(201, b) if m == "POST" and p.startswith(SERVICES) else None)
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, body))
        rec = Reconciler(api.kube(), state, Settings(workers=1), queue)
        rec.reconcile_inference_deployment("ns", "seed")  # no exception: the refusal is recorded
        assert len(api.calls("POST", JOBS)) == 1
        assert queue.get(timeout=1) == ("infd", "ns", "seed")  # planned again at once, with the refusal
        rec.reconcile_inference_deployment("ns", "seed")
        assert len(api.calls("POST", JOBS)) == 1  # not sent again before a resync period
        assert api.calls("POST", DEPLOYMENTS)  # the other pools are placed all the same
        (written,) = api.calls("PATCH", "/apis/hybridplace.io")
    (refused,) = [x for x in written["status"]["profiles"] if x["pool"] == "cpu-new"]
    assert (refused["state"], refused["reason"]) == ("Failed", "BenchmarkRejected")
    assert "422 Invalid" in refused["message"] and "multiple of 2Mi" in refused["message"]
    assert "HardwarePool cpu-new" in refused["message"]
    assert {x["pool"]: x["state"] for x in written["status"]["profiles"]} == {
        "cpu-new": "Failed", "cpu-standard": "Measured", "gpu-t4": "Measured"}
