"""The mission in one motion: apply an InferenceDeployment, and the operator benchmarks it on both
pools, records ModelProfiles, places it on the cheapest pool that meets the SLO, and keeps it."""

from __future__ import annotations

import json
import time

import pytest
from e2e_helpers import inference_deployment, wait_condition, wait_event

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

BENCH = "hybridplace.io/component=benchmark"


def test_apply_benchmarks_places_and_becomes_ready(operator, kubectl, namespace):
    # The API server's PodSecurity admission enforces "restricted" here: benchmark and serving
    # pods that did not meet it would never be created.
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    kubectl.apply(inference_deployment("sentiment"))
    wait_condition(kubectl, "sentiment", "Ready")
    jobs = kubectl.json("jobs", "-l", BENCH)["items"]
    assert sorted(j["metadata"]["labels"]["hybridplace.io/pool"] for j in jobs) == ["cpu-standard", "gpu-t4"]
    profiles = kubectl.json("mprof")["items"]
    assert [p["spec"]["pool"] for p in profiles] == ["cpu-standard"]  # no GPU here: NoDevice
    infd = kubectl.json("infd", "sentiment")
    status = infd["status"]
    states = {s["pool"]: s for s in status["profiles"]}
    assert states["gpu-t4"] == {**states["gpu-t4"], "state": "Failed", "reason": "NoDevice"}
    assert status["decision"]["feasible"] is True
    (placement,) = status["decision"]["placements"]
    assert placement["pool"] == "cpu-standard"
    # The serving pods were scheduled by the real scheduler onto the chosen pool's nodes.
    pods = kubectl.json("pods", "-l", "hybridplace.io/inferencedeployment=sentiment")["items"]
    assert len(pods) == placement["replicas"]
    nodes = {n["metadata"]["name"]: n["metadata"]["labels"].get("hybridplace.io/pool")
             for n in kubectl.json("nodes")["items"]}
    assert {nodes[p["spec"]["nodeName"]] for p in pods} == {"cpu-standard"}
    # The decision is what `kubectl get infd` shows.
    row = kubectl("get", "infd", "sentiment", "--no-headers").split()
    assert row[1] == f"cpu-standard:{placement['replicas']}" and row[-2] == "True"
    for expected in ("BenchmarkStarted", "Profiled", "BenchmarkFailed", "Applied", "Ready"):
        wait_event(kubectl, "sentiment", expected)


def test_a_second_deployment_of_the_same_model_starts_no_benchmark(operator, kubectl, wait_until):
    kubectl.apply(inference_deployment("first"))
    wait_condition(kubectl, "first", "Profiled")
    jobs_before = {j["metadata"]["uid"] for j in kubectl.json("jobs", "-l", BENCH)["items"]}
    kubectl.apply(inference_deployment("second", load={"targetRps": 5}))
    wait_condition(kubectl, "second", "Placed", timeout=60)
    jobs_after = {j["metadata"]["uid"] for j in kubectl.json("jobs", "-l", BENCH)["items"]}
    assert jobs_after == jobs_before
    assert not any(e["reason"] == "BenchmarkStarted" for e in kubectl.events("second"))


def test_children_are_restored_and_garbage_collected(operator, kubectl, wait_until):
    kubectl.apply(inference_deployment("keeper"))
    wait_condition(kubectl, "keeper", "Ready")
    deployment = kubectl.json("deployments", "-l", "hybridplace.io/inferencedeployment=keeper")["items"][0]
    name, replicas = deployment["metadata"]["name"], deployment["spec"]["replicas"]
    kubectl("scale", "deployment", name, "--replicas", str(replicas + 3))
    wait_until(lambda: kubectl.json("deployment", name)["spec"]["replicas"] == replicas, timeout=30,
               what="hand-edited replicas restored")
    kubectl("delete", "deployment", name)
    wait_until(lambda: kubectl("get", "deployment", name, check=False).strip(), timeout=30,
               what="deleted Deployment recreated")
    # A spec change re-plans: a tighter cap on replicas, honoured.
    kubectl("patch", "infd", "keeper", "--type=merge", "-p", json.dumps({"spec": {"load": {"targetRps": 1}}}))
    wait_until(lambda: kubectl.json("infd", "keeper")["status"].get("observedGeneration") == 2, timeout=30,
               what="new generation observed")
    kubectl("delete", "infd", "keeper")
    wait_until(lambda: not kubectl.json("deployments", "-l", "hybridplace.io/inferencedeployment=keeper")["items"]
               and not [s for s in kubectl.json("services")["items"] if s["metadata"]["name"].startswith("keeper")],
               timeout=60, what="children garbage-collected")


def test_recommend_mode_decides_without_touching_serving(operator, kubectl, wait_until):
    kubectl.apply(inference_deployment("advice", placement={"mode": "Recommend"}))
    wait_condition(kubectl, "advice", "Ready")
    assert kubectl.condition("infd", "advice", "Placed")["reason"] == "Recommended"
    assert kubectl.json("infd", "advice")["status"]["decision"]["placements"]
    assert not kubectl.json("deployments", "-l", "hybridplace.io/inferencedeployment=advice")["items"]
    assert not [s for s in kubectl.json("services")["items"] if s["metadata"]["name"].startswith("advice")]


def test_an_idle_operator_writes_nothing(operator, kubectl, wait_until):
    kubectl.apply(inference_deployment("quiet"))
    wait_condition(kubectl, "quiet", "Ready")
    time.sleep(5)  # Events are posted from their own thread; let the last ones land

    def versions():
        """Everything in this test's namespace. (HardwarePools are cluster-wide: other tests'
        namespaces being deleted legitimately change their free capacity meanwhile.)"""
        found = {}
        for kind in ("infd", "mprof", "deployments", "services", "jobs"):
            for item in kubectl.json(kind)["items"]:
                found[(kind, item["metadata"]["name"])] = item["metadata"]["resourceVersion"]
        return found, len(kubectl.json("events")["items"])

    before = versions()
    time.sleep(25)  # longer than the resync period the fixture sets (20 s)
    assert versions() == before
