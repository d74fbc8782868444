"""Bad input ends in a condition with a reason, an Event, and no crash loop; the operator touches
nothing it does not own. And changes are followed: a new digest re-profiles, a new pool is
measured and considered."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from e2e_helpers import inference_deployment, wait_condition, wait_event

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
BENCH = "hybridplace.io/component=benchmark"


def test_a_pool_that_does_not_exist(operator, kubectl):
    kubectl.apply(inference_deployment("lost", placement={"pools": ["no-such-pool"]}))
    found = wait_condition(kubectl, "lost", "Profiled", status="False", reason="NoUsableProfile", timeout=60)
    assert "no-such-pool" in found["message"]
    assert wait_condition(kubectl, "lost", "Ready", status="False", timeout=10)
    wait_event(kubectl, "lost", "PoolNotFound", contains="no-such-pool")
    assert not kubectl.json("jobs", "-l", BENCH)["items"]


def test_a_model_that_cannot_be_fetched(operator, kubectl):
    model = {"uri": "http://127.0.0.1:9/missing.pt", "digest": "sha256:" + "ab" * 32,
             "inputs": [{"name": "x", "shape": [8]}]}
    kubectl.apply(inference_deployment("unfetchable", model=model, placement={"pools": ["cpu-standard"]}))
    found = wait_condition(kubectl, "unfetchable", "Profiled", status="False", reason="NoUsableProfile",
                           timeout=240)
    assert "ModelNotFound" in found["message"]
    states = kubectl.json("infd", "unfetchable")["status"]["profiles"]
    assert states == [{**states[0], "pool": "cpu-standard", "state": "Failed", "reason": "ModelNotFound"}]
    wait_event(kubectl, "unfetchable", "BenchmarkFailed", contains="ModelNotFound")


def test_an_slo_no_pool_can_meet(operator, kubectl, namespace):
    for doc in ("seed/modelprofiles.yaml", "seed/inferencedeployment.yaml"):
        kubectl("apply", "-f", str(REPO / "examples" / doc))
    kubectl("patch", "infd", "seed", "--type=merge", "-p", json.dumps({"spec": {"slo": {"latencyMs": 10}}}))
    found = wait_condition(kubectl, "seed", "SLOMet", status="False", reason="Infeasible", timeout=60)
    decision = kubectl.json("infd", "seed")["status"]["decision"]
    assert decision["feasible"] is False
    assert decision["bestAchievableLatencyMs"] > 10
    assert f"best achievable p95 is {decision['bestAchievableLatencyMs']:.4g} ms on {decision['bestAchievablePool']}" \
        in found["message"]
    wait_event(kubectl, "seed", "Infeasible", "Warning")
    assert not kubectl.json("jobs", "-l", BENCH)["items"]
    assert not kubectl.json("deployments")["items"]


def test_a_pool_whose_selector_matches_no_node(operator, kubectl, namespace, crds, wait_until):
    pool_name = f"nowhere-{namespace[-6:]}"
    pool = {
        "apiVersion": "hybridplace.io/v1alpha1", "kind": "HardwarePool", "metadata": {"name": pool_name},
        "spec": {"accelerator": {"type": "cpu"}, "nodeSelector": {"hybridplace.io/pool": "nowhere"},
                 "replicaResources": {"requests": {"cpu": "1"}}, "price": {"perReplicaHour": 0.01}},
    }
    subprocess.run([*crds, "apply", "-f", "-"], input=json.dumps(pool), text=True, check=True,
                   capture_output=True)
    try:
        ready = wait_until(lambda: next((c for c in (kubectl.json("hwpool", pool_name).get("status") or {})
                                         .get("conditions", []) if c["type"] == "Ready"), None),
                           timeout=60, what="the pool's Ready condition")
        assert (ready["status"], ready["reason"]) == ("False", "NoMatchingNodes")
        pool_events = json.loads(subprocess.run(
            [*crds, "get", "events", "-A", "--field-selector", f"involvedObject.name={pool_name}", "-o", "json"],
            capture_output=True, text=True, check=True).stdout)["items"]
        assert any(e["reason"] == "NoMatchingNodes" for e in pool_events)
        kubectl.apply(inference_deployment("stranded", placement={"pools": [pool_name]}))
        found = wait_condition(kubectl, "stranded", "Profiled", status="False", timeout=60)
        assert "NoMatchingNodes" in found["message"]
        assert not kubectl.json("jobs", "-l", BENCH)["items"]  # nothing would ever schedule it
    finally:
        subprocess.run([*crds, "delete", "hwpool", pool_name], capture_output=True)


def test_a_new_digest_is_profiled_again_and_a_new_pool_is_considered(operator, kubectl, namespace, crds):
    extra = f"cpu-extra-{namespace[-6:]}"
    kubectl.apply(inference_deployment("evolving", placement={"pools": ["cpu-standard", extra]}))
    wait_condition(kubectl, "evolving", "Profiled", timeout=240)
    states = {s["pool"]: s["state"] for s in kubectl.json("infd", "evolving")["status"]["profiles"]}
    assert states == {"cpu-standard": "Measured", extra: "Missing"}
    pool = json.loads(json.dumps(
        [d for d in __import__("yaml").safe_load_all((REPO / "examples" / "hardwarepools.yaml").read_text())
         if d["metadata"]["name"] == "cpu-standard"][0]))
    pool["metadata"]["name"] = extra
    pool["spec"]["price"] = {"perReplicaHour": 0.5}  # the same nodes, dearer: measured, not chosen
    subprocess.run([*crds, "apply", "-f", "-"], input=json.dumps(pool), text=True, check=True, capture_output=True)
    try:
        def measured_both():
            status = kubectl.json("infd", "evolving")["status"]
            return all(s["state"] == "Measured" for s in status["profiles"]) and len(status["profiles"]) == 2

        import time
        deadline = time.monotonic() + 240
        while not measured_both():
            assert time.monotonic() < deadline, kubectl.json("infd", "evolving")["status"]
            time.sleep(2)
        wait_condition(kubectl, "evolving", "Placed", timeout=60)
        decision = kubectl.json("infd", "evolving")["status"]["decision"]
        assert [p["pool"] for p in decision["placements"]] == ["cpu-standard"]
        assert any(a["pool"] == extra and a["reason"] == "MoreExpensive" for a in decision["alternatives"])
        # A new model (a new digest) is measured again, on every allowed pool.
        kubectl("patch", "infd", "evolving", "--type=merge", "-p",
                json.dumps({"spec": {"model": {"builtin": "resnet"}}}))
        wait_condition(kubectl, "evolving", "Profiled", status="False", reason="Benchmarking", timeout=60)
        digests = {j["metadata"]["labels"]["hybridplace.io/digest"] for j in kubectl.json("jobs", "-l", BENCH)["items"]}
        assert len(digests) == 2
    finally:
        subprocess.run([*crds, "delete", "hwpool", extra], capture_output=True)


def test_objects_it_does_not_own_are_never_touched(operator, kubectl, namespace):
    """A Deployment and a Service already use the names the operator would give its children:
    they stay exactly as they are, and the InferenceDeployment says why it is not placed."""
    kubectl("create", "deployment", "taken-cpu-standard", "--image=registry.example/app:1", "--replicas=1")
    kubectl("create", "service", "clusterip", "taken", "--tcp=80:8080")
    before = {kind: kubectl.json(kind, name)["metadata"]["resourceVersion"]
              for kind, name in (("deployment", "taken-cpu-standard"), ("service", "taken"))}
    for doc in ("seed/modelprofiles.yaml", "seed/inferencedeployment.yaml"):
        kubectl("apply", "-f", str(REPO / "examples" / doc))
    body = json.loads(kubectl("get", "infd", "seed", "-o", "json"))
    body["metadata"] = {"name": "taken"}
    body["spec"]["placement"]["mode"] = "Apply"
    body["spec"]["placement"]["pools"] = ["cpu-standard"]
    body.pop("status", None)
    kubectl.apply(body)
    found = wait_condition(kubectl, "taken", "Placed", status="False", reason="NameConflict", timeout=60)
    assert "Deployment/taken-cpu-standard" in found["message"] and "Service/taken" in found["message"]
    after = {kind: kubectl.json(kind, name)["metadata"]["resourceVersion"]
             for kind, name in (("deployment", "taken-cpu-standard"), ("service", "taken"))}
    assert after == before
    wait_event(kubectl, "taken", "NameConflict", "Warning")
