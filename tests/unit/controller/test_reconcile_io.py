"""The reconciler's I/O paths against a mock API server (tests/cases/mock_api.py): creating or
adopting a child, and recording a finished benchmark, under 409, 429, 5xx and a server that is
gone. Each failure is either handled or an ApiError the worker loop retries; never another type."""

import json

import pytest
from cases.mock_api import MockApi, Reply, closed_port_url, kube_at, status
from hybridplace.api import builtin_digest
from hybridplace.builders import names
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


def stored_profile(measured_at, version="7"):
    return Reply(200, {"apiVersion": "hybridplace.io/v1alpha1", "kind": "ModelProfile",
                       "metadata": {"name": "mp-x", "namespace": "ns", "resourceVersion": version},
                       "spec": {"model": {"digest": builtin_digest("mlp")}, "pool": "cpu", "provenance": "measured",
                                "measuredAt": measured_at,
                                "points": [{"batchSize": 1, "p50Ms": 1, "p95Ms": 1, "p99Ms": 1}]}})


def test_a_profile_written_by_another_reconcile_first_is_not_an_error():
    with MockApi() as api:
        api.on("GET", JOBS, finished_job())
        api.on("GET", PODS, pod_with(json.dumps(RESULT)))
        api.on("POST", PROFILES, status(409, "AlreadyExists"))
        api.on("GET", PROFILES, stored_profile(RESULT["measuredAt"]))  # the very same measurement
        api.on("PATCH", JOBS, Reply(200, {}))
        reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert len(api.calls("POST", PROFILES)) == 1
        assert not api.calls("PUT", PROFILES)  # not written twice
        (patch,) = api.calls("PATCH", JOBS)  # the Job says its result is recorded
    assert patch["metadata"]["annotations"] == {names.ANNOTATION_RECORDED: RESULT["measuredAt"]}


def test_a_pool_measured_again_replaces_the_older_profile_of_that_name():
    with MockApi() as api:
        api.on("GET", JOBS, finished_job())
        api.on("GET", PODS, pod_with(json.dumps(RESULT)))
        api.on("POST", PROFILES, status(409, "AlreadyExists"))
        api.on("GET", PROFILES, stored_profile("2026-11-01T00:00:00Z", version="41"))
        api.on("PUT", PROFILES, Reply(200, {**stored_profile(RESULT["measuredAt"], "42").body}))
        api.on("PATCH", JOBS, Reply(200, {}))
        rec = reconciler(api)
        rec.record_benchmark("ns", "hp-bench-x")
        (put,) = api.calls("PUT", PROFILES)
        assert api.calls("PATCH", JOBS)
    assert put["metadata"]["resourceVersion"] == "41"  # only over the version read: never a lost update
    assert put["spec"]["measuredAt"] == RESULT["measuredAt"] and put["spec"]["provenance"] == "measured"
    # In the operator's state at once, before the Job's annotation can say it is recorded.
    assert rec.state.profiles_for("ns", builtin_digest("mlp"))["cpu"].spec.measured_at == RESULT["measuredAt"]


@pytest.mark.parametrize("failure", [status(409, "Conflict"), status(500, "InternalError"), Reply(reset=True)])
def test_a_replace_that_fails_is_retried_and_the_job_not_marked_recorded(failure):
    with MockApi() as api:
        api.on("GET", JOBS, finished_job())
        api.on("GET", PODS, pod_with(json.dumps(RESULT)))
        api.on("POST", PROFILES, status(409, "AlreadyExists"))
        api.on("GET", PROFILES, stored_profile("2026-11-01T00:00:00Z"))
        api.on("PUT", PROFILES, failure)
        with pytest.raises(ApiError):
            reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert not api.calls("PATCH", JOBS)


def test_a_profile_deleted_between_create_and_read_marks_the_job_recorded_so_it_is_measured_again():
    with MockApi() as api:
        api.on("GET", JOBS, finished_job())
        api.on("GET", PODS, pod_with(json.dumps(RESULT)))
        api.on("POST", PROFILES, status(409, "AlreadyExists"))
        api.on("GET", PROFILES, status(404, "NotFound"))
        api.on("PATCH", JOBS, Reply(200, {}))
        reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert len(api.calls("PATCH", JOBS)) == 1


def test_a_recorded_job_is_not_recorded_twice():
    job = finished_job().body
    job["metadata"]["annotations"] = {names.ANNOTATION_RECORDED: RESULT["measuredAt"]}
    with MockApi() as api:
        api.on("GET", JOBS, Reply(200, job))
        reconciler(api).record_benchmark("ns", "hp-bench-x")
        assert not api.calls("GET", PODS) and not api.calls("POST", PROFILES)


def test_only_the_jobs_own_pods_are_read_not_those_of_a_deleted_namesake():
    job = finished_job().body
    job["metadata"].update(uid="new-uid", labels={"hybridplace.io/pool": "cpu", names.LABEL_BENCHMARK_KEY: "k1"})
    old_result = {**RESULT, "measuredAt": "2026-11-01T00:00:00Z"}
    pods = pod_with(json.dumps(RESULT)).body["items"] + pod_with(json.dumps(old_result)).body["items"]
    pods[0]["metadata"] = {"ownerReferences": [{"uid": "new-uid"}]}
    # The deleted Job's pod finished later (clocks differ): still not this Job's.
    pods[1]["metadata"] = {"ownerReferences": [{"uid": "old-uid"}]}
    pods[1]["status"]["containerStatuses"][0]["state"]["terminated"]["finishedAt"] = "2026-11-24T00:00:00Z"
    with MockApi() as api:
        api.on("GET", JOBS, Reply(200, job))
        api.on("GET", PODS, Reply(200, {"items": pods}))
        api.on("POST", PROFILES, Reply(201, stored_profile(RESULT["measuredAt"]).body))
        api.on("PATCH", JOBS, Reply(200, {}))
        reconciler(api).record_benchmark("ns", "hp-bench-x")
        (created,) = api.calls("POST", PROFILES)
    assert created["spec"]["measuredAt"] == RESULT["measuredAt"]
    assert created["metadata"]["labels"][names.LABEL_BENCHMARK_KEY] == "k1"


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


# -- a deleted profile measured again: the finished Job is deleted (that very one), a new one made --

def _state_with_deleted_profile():
    """The seed InferenceDeployment in its namespace, its cpu pool's finished Job recorded, and no
    profile for that pool (deleted), the gpu pool's profile there."""
    import copy
    from pathlib import Path

    from hybridplace.api import load_objects

    examples = Path(__file__).resolve().parents[3] / "examples"
    loaded = [x.obj for x in load_objects([examples / "hardwarepools.yaml", examples / "seed"])]
    state = ClusterState()
    for obj in loaded:
        body = copy.deepcopy(obj.to_dict())
        body["metadata"].update(resourceVersion="1")
        if obj.kind == "HardwarePool":
            state.put_pool(body)
        elif obj.kind == "ModelProfile" and obj.spec.pool == "gpu-t4":
            body["metadata"]["namespace"] = "ns"
            state.put_profile(body)
        elif obj.kind == "InferenceDeployment":
            body["metadata"].update(namespace="ns", uid="infd-uid")
            state.put_infd(body)
    digest = next(o for o in loaded if o.kind == "InferenceDeployment").spec.model.digest
    state.put_job({"metadata": {"name": names.benchmark_job_name(digest, "cpu-standard"), "namespace": "ns",
                                "uid": "old-job-uid", "resourceVersion": "1",
                                "labels": {names.LABEL_POOL: "cpu-standard"},
                                "annotations": {names.ANNOTATION_DIGEST: digest,
                                                names.ANNOTATION_RECORDED: "2026-11-20T00:00:00Z"}},
                   "status": {"conditions": [{"type": "Complete", "status": "True"}]}})
    return state, digest


STATUS_WRITTEN = {"kind": "InferenceDeployment",
                  "metadata": {"name": "seed", "namespace": "ns", "resourceVersion": "9"}}


def test_a_deleted_profile_deletes_that_finished_job_by_uid_and_creates_a_new_one():
    state, digest = _state_with_deleted_profile()
    name = names.benchmark_job_name(digest, "cpu-standard")
    with MockApi() as api:
        api.on("DELETE", JOBS, Reply(200, {}))
        api.on("POST", JOBS, Reply(201, {"kind": "Job", "metadata": {
            "name": name, "namespace": "ns", "uid": "new-job-uid", "resourceVersion": "5",
            "labels": {names.LABEL_POOL: "cpu-standard"}, "annotations": {names.ANNOTATION_DIGEST: digest}}}))
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, STATUS_WRITTEN))
        rec = Reconciler(api.kube(), state, Settings(workers=1), WorkQueue())
        rec.reconcile_inference_deployment("ns", "seed")
        (delete,) = api.calls("DELETE", JOBS)
        (created,) = api.calls("POST", JOBS)
    assert delete["preconditions"] == {"uid": "old-job-uid"}  # never a namesake made since
    assert created["metadata"]["name"] == name
    assert state.jobs_for("ns", digest)["cpu-standard"].uid == "new-job-uid"


def test_a_new_job_refused_while_the_deleted_one_lingers_is_tried_again_shortly():
    state, digest = _state_with_deleted_profile()
    queue = WorkQueue()
    with MockApi() as api:
        api.on("DELETE", JOBS, Reply(200, {}))
        api.on("POST", JOBS, status(409, "AlreadyExists"))
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, STATUS_WRITTEN))
        Reconciler(api.kube(), state, Settings(workers=1), queue).reconcile_inference_deployment("ns", "seed")
    assert ("infd", "ns", "seed") in queue._due  # again in about a second


@pytest.mark.parametrize("failure", [status(500, "InternalError"), status(429, "TooManyRequests"), Reply(reset=True)])
def test_a_failed_job_delete_is_an_api_error_and_no_new_job_is_made(failure):
    state, _ = _state_with_deleted_profile()
    with MockApi() as api:
        api.on("DELETE", JOBS, failure)
        with pytest.raises(ApiError):
            Reconciler(api.kube(), state, Settings(workers=1), WorkQueue()).reconcile_inference_deployment("ns", "seed")
        assert not api.calls("POST", JOBS)


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
