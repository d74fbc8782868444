"""The reconciler's I/O paths against a mock API server (tests/cases/mock_api.py): creating or
adopting a child, and recording a finished benchmark, under 409, 429, 5xx and a server that is
gone. Each failure is either handled or an ApiError the worker loop retries; never another type."""

import json

import pytest
from cases.mock_api import MockApi, Reply, closed_port_url, kube_at, status
from hybridplace.api import builtin_digest
from hybridplace.config import Settings
from hybridplace.controller.kube import ApiError
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ANNOTATION_FAILURE_MESSAGE, ANNOTATION_FAILURE_REASON, ClusterState
from hybridplace.controller.workqueue import WorkQueue

DEPLOYMENTS = "/apis/apps/v1/namespaces/ns/deployments"
JOBS = "/apis/batch/v1/namespaces/ns/jobs"
PODS = "/api/v1/namespaces/ns/pods"
PROFILES = "/apis/hybridplace.io/v1alpha1/namespaces/ns/modelprofiles"
OWNER = {"metadata": {"name": "web", "namespace": "ns", "uid": "owner-uid"}}
CHILD = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web-cpu", "namespace": "ns"}}
RESULT = {
    "v": 1,
    "ok": True,
    "engine": "torch",
    "model": {"name": "builtin:mlp", "digest": builtin_digest("mlp"), "format": "torchscript"},
    "device": {
        "accelerator": "cpu",
        "name": "Test CPU",
        "node": None,
        "cores": 2,
        "threads": 2,
        "memoryMiB": 1024,
        "torchVersion": "2.15.0",
        "cudaVersion": None,
        "powerWatts": None,
    },
    "workerVersion": "0.1.0",
    "measuredAt": "2026-11-23T18:00:00Z",
    "cols": ["b", "c", "p50", "p95", "p99", "rps", "spread", "stable"],
    "points": [[1, 1, 0.2, 0.25, 0.3, 4900.0, 0.03, 1]],
}


def reconciler(api):
    return Reconciler(api.kube(), ClusterState(), Settings(workers=1), WorkQueue())


def with_owner(uid):
    return Reply(200, {**CHILD, "metadata": {**CHILD["metadata"], "ownerReferences": [{"uid": uid}]}})


def test_a_child_that_exists_and_is_ours_is_adopted():
    with MockApi() as api:
        api.on("POST", DEPLOYMENTS, status(409, "AlreadyExists"))
        api.on("GET", DEPLOYMENTS, with_owner("owner-uid"))
        found = reconciler(api)._create_or_adopt(OWNER, CHILD)
    assert found is not None and found["metadata"]["name"] == "web-cpu"


def test_a_child_that_exists_and_is_someone_elses_is_left_alone():
    with MockApi() as api:
        api.on("POST", DEPLOYMENTS, status(409, "AlreadyExists"))
        api.on("GET", DEPLOYMENTS, with_owner("another-uid"))
        assert reconciler(api)._create_or_adopt(OWNER, CHILD) is None
        assert not api.calls("PATCH", DEPLOYMENTS) and not api.calls("DELETE", DEPLOYMENTS)


@pytest.mark.parametrize(
    "failure",
    [
        status(500, "InternalError"),
        status(429, "TooManyRequests", headers={"Retry-After": "2"}),
        Reply(reset=True),
    ],
)
def test_a_failed_create_is_an_api_error_for_the_worker_loop_to_retry(failure):
    with MockApi() as api:
        api.on("POST", DEPLOYMENTS, failure)
        with pytest.raises(ApiError) as err:
            reconciler(api)._create_or_adopt(OWNER, CHILD)
    assert err.value.transient


def test_the_server_gone_between_409_and_the_get_is_an_api_error():
    with MockApi() as api:
        api.on("POST", DEPLOYMENTS, status(409, "AlreadyExists"))
        api.on("GET", DEPLOYMENTS, Reply(reset=True))
        with pytest.raises(ApiError):
            reconciler(api)._create_or_adopt(OWNER, CHILD)


def finished_job(condition="Complete"):
    return Reply(
        200,
        {
            "kind": "Job",
            "metadata": {"name": "hp-bench-x", "namespace": "ns", "labels": {"hybridplace.io/pool": "cpu"}},
            "status": {"conditions": [{"type": condition, "status": "True"}]},
        },
    )


def pod_with(message):
    return Reply(
        200,
        {
            "items": [
                {
                    "spec": {"nodeName": "node-0"},
                    "status": {
                        "containerStatuses": [
                            {"state": {"terminated": {"finishedAt": "2026-11-23T18:00:00Z", "message": message}}}
                        ]
                    },
                }
            ]
        },
    )


def test_a_profile_written_by_another_reconcile_first_is_not_an_error():
    with MockApi() as api:
        api.on("GET", JOBS, finished_job())
        api.on("GET", PODS, pod_with(json.dumps(RESULT)))
        api.on("POST", PROFILES, status(409, "AlreadyExists"))
        reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert len(api.calls("POST", PROFILES)) == 1
        assert not api.calls("PATCH", JOBS)


@pytest.mark.parametrize("failure", [status(503, "ServiceUnavailable"), Reply(reset=True)])
def test_a_profile_write_that_fails_is_retried_not_recorded_as_a_benchmark_failure(failure):
    with MockApi() as api:
        api.on("GET", JOBS, finished_job())
        api.on("GET", PODS, pod_with(json.dumps(RESULT)))
        api.on("POST", PROFILES, failure)
        with pytest.raises(ApiError):
            reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert not api.calls("PATCH", JOBS)  # the measurement is not thrown away


def test_a_failed_benchmark_is_annotated_with_a_bounded_message():
    with MockApi() as api:
        api.on("GET", JOBS, finished_job("Failed"))
        api.on("GET", PODS, pod_with(json.dumps({"v": 1, "ok": False, "reason": "NoDevice", "message": "x" * 5000})))
        api.on("PATCH", JOBS, Reply(200, {}))
        reconciler(api).record_benchmark("ns", "hp-bench-x")
        (patch,) = api.calls("PATCH", JOBS)
    annotations = patch["metadata"]["annotations"]
    assert annotations[ANNOTATION_FAILURE_REASON] == "NoDevice"
    assert len(annotations[ANNOTATION_FAILURE_MESSAGE]) <= 2000


def test_the_job_gone_is_nothing_to_do_and_the_server_gone_is_an_api_error():
    with MockApi() as api:
        reconciler(api).record_benchmark("ns", "hp-bench-x")  # 404: nothing to record
        assert api.calls("GET", JOBS) and not api.calls("GET", PODS)
        api.down = True
        with pytest.raises(ApiError):
            reconciler(api).record_benchmark("ns", "hp-bench-x")


# Every way a call can fail, for the two I/O paths: (id, reply or None for a refused
# connection, status and transient as the worker loop sees them, Retry-After).
FAULTS = [
    ("refused", None, 0, True, None),
    ("timeout", Reply(200, {}, hang=1.0), 0, True, None),
    ("reset", Reply(reset=True), 0, True, None),
    ("410", status(410, "Expired"), 410, False, None),
    ("429", status(429, "TooManyRequests", headers={"Retry-After": "3"}), 429, True, 3.0),
    ("500", status(500, "InternalError"), 500, True, None),
]


def faulty(api, reply, route):
    """A reconciler whose `route` (method, path) fails with `reply`; a refused connection when
    reply is None (then nothing answers at all). Read timeout 0.2 s."""
    if reply is None:
        return Reconciler(kube_at(closed_port_url(), (1.0, 0.2)), ClusterState(), Settings(workers=1), WorkQueue())
    api.on(*route, reply)
    return Reconciler(api.kube(timeout=(1.0, 0.2)), ClusterState(), Settings(workers=1), WorkQueue())


@pytest.mark.parametrize(("reply", "code", "transient", "retry_after"), [f[1:] for f in FAULTS],
                         ids=[f[0] for f in FAULTS])
def test_create_or_adopt_under_every_fault_is_an_api_error_the_loop_retries(reply, code, transient, retry_after):
    with MockApi() as api:
        with pytest.raises(ApiError) as err:
            faulty(api, reply, ("POST", DEPLOYMENTS))._create_or_adopt(OWNER, CHILD)
        assert not api.calls("GET", DEPLOYMENTS)  # only a 409 looks for an existing child
    assert (err.value.status, err.value.transient, err.value.retry_after) == (code, transient, retry_after)


@pytest.mark.parametrize(("reply", "code", "transient", "retry_after"), [f[1:] for f in FAULTS],
                         ids=[f[0] for f in FAULTS])
def test_record_benchmark_under_every_fault_keeps_the_measurement(reply, code, transient, retry_after):
    """Whether reading the Job or writing its profile fails, the error goes to the worker loop
    (retried, with the server's Retry-After) and the Job is never marked as read."""
    for route in (("GET", JOBS), ("POST", PROFILES)):
        with MockApi() as api:
            api.on("GET", JOBS, finished_job())
            api.on("GET", PODS, pod_with(json.dumps(RESULT)))
            api.on("PATCH", JOBS, Reply(200, {}))
            with pytest.raises(ApiError) as err:
                faulty(api, reply, route).record_benchmark("ns", "hp-bench-x")
            assert not api.calls("PATCH", JOBS)
        assert (err.value.status, err.value.transient, err.value.retry_after) == (code, transient, retry_after)
