"""Re-profiling, end to end (issue 12): a profile past maxAge starts a new benchmark Job while the
old profile keeps serving the decision until the new one lands; a changed instance type of the
pool's nodes starts a re-profile; a deleted profile is measured again at once, though its
finished Job is still there. CPU pool only, mode Recommend: the flow is under test, not serving."""

from __future__ import annotations

import json

import pytest
from e2e_helpers import inference_deployment, wait_condition, wait_event

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

BENCH = "hybridplace.io/component=benchmark"
INSTANCE_TYPE = "node.kubernetes.io/instance-type"


def cpu_only(name: str, **benchmark) -> dict:
    body = inference_deployment(name, placement={"pools": ["cpu-standard"], "mode": "Recommend"})
    body["spec"]["benchmark"] = {**body["spec"]["benchmark"], **benchmark}
    return body


def profile(kubectl) -> dict:
    (found,) = kubectl.json("mprof")["items"]
    return found


def job_uids(kubectl) -> set[str]:
    return {j["metadata"]["uid"] for j in kubectl.json("jobs", "-l", BENCH)["items"]}


def pool_state(kubectl, name: str) -> dict:
    status = kubectl.json("infd", name).get("status") or {}
    return next((s for s in status.get("profiles") or [] if s["pool"] == "cpu-standard"), {})


def test_a_profile_past_max_age_is_measured_again_and_the_old_one_serves_until_then(
        operator, kubectl, wait_until):
    kubectl.apply(cpu_only("aging", maxAge=30))
    wait_condition(kubectl, "aging", "Ready", timeout=180)
    old = profile(kubectl)
    first_jobs = job_uids(kubectl)
    assert old["spec"]["provenance"] == "measured"
    assert old["metadata"]["labels"]["hybridplace.io/benchmark-key"]
    # 30 s after it was measured: a new Job (the finished one is replaced), announced once.
    event = wait_event(kubectl, "aging", "Reprofiling", contains="more than 30s ago (spec.benchmark.maxAge)",
                       timeout=90)
    assert "cpu-standard" in event["message"]

    def reprofiling_with_old_decision():
        state = pool_state(kubectl, "aging")
        infd = kubectl.json("infd", "aging")
        decision = infd["status"].get("decision") or {}
        placed = next(c for c in infd["status"]["conditions"] if c["type"] == "Placed")
        if state.get("reason") != "Reprofiling":
            return None
        # Meanwhile the old profile is still the one used: Measured, the decision kept, placed.
        assert state["state"] == "Measured" and state["name"] == old["metadata"]["name"]
        assert decision.get("feasible") is True and placed["status"] == "True"
        return state

    seen = wait_until(reprofiling_with_old_decision, timeout=30, what="Reprofiling, the old profile in use")
    assert "is used until the new one is recorded" in seen["message"]
    assert job_uids(kubectl) - first_jobs, "a new benchmark Job"

    def landed():
        now = profile(kubectl)
        return now if now["spec"]["measuredAt"] > old["spec"]["measuredAt"] else None

    new = wait_until(landed, timeout=120, what="the new profile recorded")
    assert new["metadata"]["uid"] == old["metadata"]["uid"]  # the same ModelProfile, replaced
    wait_until(lambda: "reason" not in pool_state(kubectl, "aging"), timeout=30, what="reprofiling over")
    assert wait_condition(kubectl, "aging", "Profiled")["status"] == "True"
    reprofiling = [e for e in kubectl.events("aging") if e["reason"] == "Reprofiling"]
    assert len(reprofiling) == 1, reprofiling  # once, not per reconcile
    # Stop the next round before the namespace goes.
    kubectl("patch", "infd", "aging", "--type=merge", "-p", json.dumps({"spec": {"benchmark": {"maxAge": 0}}}))


def test_a_deleted_profile_is_measured_again_while_its_finished_job_remains(operator, kubectl, wait_until):
    kubectl.apply(cpu_only("forgot"))
    wait_condition(kubectl, "forgot", "Ready", timeout=180)
    old = profile(kubectl)
    (old_job,) = job_uids(kubectl)
    kubectl("delete", "mprof", old["metadata"]["name"])
    # Well within one resync period (20 s here), not the finished Job's TTL (an hour).
    wait_until(lambda: old_job not in job_uids(kubectl) and job_uids(kubectl), timeout=15,
               what="the finished Job replaced by a new one")
    new = wait_until(lambda: kubectl.json("mprof")["items"], timeout=120, what="measured again")[0]
    assert new["metadata"]["uid"] != old["metadata"]["uid"]


def test_a_changed_instance_type_of_the_pools_nodes_starts_a_reprofile(operator, kubectl, wait_until):
    nodes = [n["metadata"]["name"] for n in kubectl.json("nodes", "-l", "hybridplace.io/pool=cpu-standard")["items"]]
    before = {n: kubectl.json("node", n)["metadata"]["labels"].get(INSTANCE_TYPE) for n in nodes}
    kubectl.apply(cpu_only("moved"))
    wait_condition(kubectl, "moved", "Ready", timeout=180)
    old = profile(kubectl)
    assert old["spec"]["device"]["instanceType"] in set(before.values())  # what it was measured on
    try:
        for n in nodes:
            kubectl("label", "node", n, f"{INSTANCE_TYPE}=cpu-32x128", "--overwrite")
        event = wait_event(kubectl, "moved", "Reprofiling", contains="node type changed", timeout=30)
        assert "cpu-32x128" in event["message"]
        new = wait_until(lambda: (p := profile(kubectl))["spec"]["measuredAt"] > old["spec"]["measuredAt"] and p,
                         timeout=120, what="measured again on the new node type")
        assert new["spec"]["device"]["instanceType"] == "cpu-32x128"
    finally:
        kubectl("patch", "infd", "moved", "--type=merge", "-p",
                json.dumps({"spec": {"placement": {"pools": ["gpu-t4"]}}}))  # no re-profile on the way back
        for n, value in before.items():
            kubectl("label", "node", n, f"{INSTANCE_TYPE}={value}" if value else f"{INSTANCE_TYPE}-", "--overwrite")
