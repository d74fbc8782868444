"""The InferenceDeployment status is written as a JSON merge patch (RFC 7386), which keeps every
stored key the patch does not name. What the plan drops (a calibration of a replaced profile,
the last observation after scaling turned Off, the summary's replicas after a decision turned
infeasible) must be sent as a null, or it stays stored for good: shown, read back as an input,
and the object written on every reconcile. `apply_merge_patch` below is the API server's side of
RFC 7386, written out for these tests."""

from __future__ import annotations

import copy

from cases.long_status import POOLS, PROFILES, SEED
from cases.mock_api import MockApi, Reply
from hybridplace.api import parse_object
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint
from hybridplace.controller.plan import JobState, plan_inference_deployment, status_changed, status_patch
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue
from test_plan import as_children
from test_plan import infd as scaled_infd
from test_plan import plan as scaled_plan
from test_plan_scaling import FAST, observed, run
from test_reprofile import T0, measured, names, rfc
from test_reprofile import infd as profiled_infd
from test_reprofile import plan as profiled_plan


def apply_merge_patch(target, patch):
    if not isinstance(patch, dict):
        return patch
    out = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = apply_merge_patch(out.get(key), value)
    return out


def write(stored: dict, planned: dict) -> tuple[dict, bool]:
    """What the reconciler does with a plan's status: (the status as stored after, written?)."""
    if not status_changed(planned, stored):
        return stored, False
    return apply_merge_patch(stored, status_patch(planned, stored)), True


def test_the_patch_nulls_what_the_plan_left_out_at_any_depth_and_replaces_lists_whole():
    stored = {"a": 1, "gone": {"x": 1}, "nested": {"keep": 1, "drop": 2, "deeper": {"drop": 3}}, "list": [1, 2]}
    new = {"a": 2, "nested": {"keep": 1, "deeper": {}}, "list": [1], "added": {"y": None}}
    patch = status_patch(new, stored)
    assert patch == {"a": 2, "gone": None, "nested": {"keep": 1, "drop": None, "deeper": {"drop": None}},
                     "list": [1], "added": {"y": None}}
    assert apply_merge_patch(stored, patch) == {"a": 2, "nested": {"keep": 1, "deeper": {}}, "list": [1],
                                                "added": {}}
    assert stored == {"a": 1, "gone": {"x": 1}, "nested": {"keep": 1, "drop": 2, "deeper": {"drop": 3}},
                      "list": [1, 2]}  # the inputs are left as they were


def test_scaling_turned_off_removes_the_last_observation_and_then_writes_nothing():
    first = scaled_plan(scaled_infd(load={"targetRps": 20}, scaling=FAST))
    stored = apply_merge_patch({}, first.status)
    p = run(scaled_infd(status=stored, load={"targetRps": 20}, scaling=FAST), observed([20.0, 20.0]),
            children=as_children(first))
    stored, _ = write(stored, p.status)
    assert "observed" in stored
    off = {**FAST, "mode": "Off"}
    writes = []
    for _ in range(3):
        q = scaled_plan(scaled_infd(status=stored, load={"targetRps": 20}, scaling=off), children=as_children(first))
        stored, written = write(stored, q.status)
        writes.append(written)
    assert "observed" not in stored, stored.get("observed")
    assert writes == [True, False, False]  # once to remove it, then an idle object is not written


def test_a_decision_turned_infeasible_clears_the_summarys_replicas_and_cost():
    def plan(body):
        return plan_inference_deployment(parse_object(body), pools=POOLS, profiles=PROFILES, jobs={}, children={},
                                         service_names=set(), settings=Settings(), now="2026-11-23T18:00:00Z",
                                         fingerprint=deployment_fingerprint)

    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="u", generation=1, namespace="ns")
    body["spec"]["placement"] = {**body["spec"]["placement"], "mode": "Recommend"}
    stored, _ = write({}, plan(body).status)
    assert stored["summary"]["replicas"] >= 1
    body["metadata"]["generation"] = 2
    body["spec"]["slo"]["latencyMs"] = 0.0001
    stored, written = write(stored, plan({**body, "status": stored}).status)
    assert written
    assert stored["summary"] == {"slo": stored["summary"]["slo"], "pools": "none (infeasible)"}
    _, written = write(stored, plan({**body, "status": stored}).status)
    assert not written  # idle: nothing to write


def test_the_calibration_of_a_replaced_profile_does_not_measure_the_new_one_again():
    """A calibration outside [0.67, 1.5] for long enough measures the pool again; the new
    profile starts from that ratio with the re-profiling clock stopped (and the count of
    re-measurements one up). Were that not written, the stored entry would be read back as a
    trigger and the fresh profile measured again and again."""
    profiles = {"gpu-t4": measured("gpu-t4")}
    spec = {"placement": {"pools": ["gpu-t4"]}}
    first = profiled_plan(profiled_infd(**spec), profiles=profiles, now=rfc(T0 + 60))
    stored = {**first.status, "calibration": [{"pool": "gpu-t4", "ratio": 2.0, "outsideSince": rfc(T0 + 100),
                                               "sampledAt": rfc(T0 + 100)}]}
    p = profiled_plan(profiled_infd(status=stored, **spec), profiles=profiles, now=rfc(T0 + 800))
    assert [j["metadata"]["labels"][names.LABEL_POOL] for j in p.jobs_to_create] == ["gpu-t4"]
    job = p.jobs_to_create[0]["metadata"]["name"]
    stored, _ = write(stored, p.status)
    profiles = {"gpu-t4": measured("gpu-t4", at=rfc(T0 + 900))}  # the Job recorded a new profile
    jobs = {"gpu-t4": JobState(job, succeeded=True, uid="u1", recorded=rfc(T0 + 900))}
    q = profiled_plan(profiled_infd(status=stored, **spec), profiles=profiles, jobs=jobs, now=rfc(T0 + 1000))
    stored, _ = write(stored, q.status)
    (carried,) = stored["calibration"]
    assert (carried["ratio"], carried["remeasured"], carried["sampledAt"]) == (2.0, 1, rfc(T0 + 900))
    assert "outsideSince" not in carried
    later = profiled_plan(profiled_infd(status=stored, **spec), profiles=profiles, jobs=jobs, now=rfc(T0 + 1600))
    assert not later.jobs_to_create and not later.jobs_to_delete
    assert not [e for e in later.events if e.reason == "Reprofiling"]


def test_the_reconciler_sends_the_nulls():
    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="u", generation=1, namespace="ns", resourceVersion="3")
    body["spec"]["placement"] = {**body["spec"]["placement"], "mode": "Recommend"}
    body["spec"]["scaling"] = {"mode": "Off"}
    body["status"] = {"observed": {"requestsPerSecond": 5.0, "percentile": 95, "window": "1m",
                                   "time": "2026-11-23T17:00:00Z"}}
    state = ClusterState()
    for pool in POOLS.values():
        state.put_pool({**pool.to_dict(), "metadata": {**pool.to_dict()["metadata"], "resourceVersion": "1"}})
    for profile in PROFILES.values():
        p = profile.to_dict()
        state.put_profile({**p, "metadata": {**p["metadata"], "namespace": "ns", "resourceVersion": "1"}})
    state.put_infd(body)
    with MockApi() as api:
        api.on("PATCH", "/apis/hybridplace.io", Reply(200, {**body, "metadata": {**body["metadata"],
                                                                               "resourceVersion": "4"}}))
        Reconciler(api.kube(), state, Settings(workers=1), WorkQueue()).reconcile_inference_deployment("ns", body[
            "metadata"]["name"])
        (patch,) = api.calls("PATCH", "/apis/hybridplace.io")
    assert patch["status"]["observed"] is None
    assert patch["status"]["summary"]["replicas"] >= 1
