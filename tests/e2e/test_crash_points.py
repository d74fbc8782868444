"""The operator SIGKILLed at two exact points, then started again: it converges with nothing lost,
nothing duplicated and no orphan. The operator stops itself there (HP_CRASH_AT, a fault-injection
hook that is off by default: controller/faults.py), so the test knows where it stopped instead of
guessing with sleeps. The third point, a kill while a Job runs, is test_operator_restart.py.

- job-done-profile-not-written: a benchmark Job is Complete and its result read, the ModelProfile
  not created. After the restart the result is read from the same Job (not measured again).
- children-half-created: of a split across two pools, one pool's Deployment is created, the other
  not, nor any Service, nor the status. After the restart the one is kept (same uid), the rest
  is created once.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from e2e_helpers import inference_deployment, seed_profile, start_operator_process, wait_condition

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

BENCH = "hybridplace.io/component=benchmark"
INFD = "hybridplace.io/inferencedeployment"


def crashed_at(point: str, kubeconfig: str, log: Path) -> None:
    """Run the operator with the crash point armed until it kills itself there."""
    first = start_operator_process(kubeconfig, log, HP_CRASH_AT=point)
    try:
        code = first.wait(timeout=240)
    except subprocess.TimeoutExpired:
        first.kill()
        first.wait(timeout=30)
        pytest.fail(f"the operator never reached crash point {point}: {log.read_text()[-3000:]}")
    assert code == -9, (code, log.read_text()[-3000:])
    assert f"crash point {point} reached" in log.read_text()


def owned_only_by(kubectl, kind: str, uid: str) -> list[dict]:
    """Every object of `kind` in the namespace, each checked to be controlled by `uid`: anything
    else would be an orphan or a stranger made by the operator."""
    items = kubectl.json(kind)["items"]
    for item in items:
        refs = item["metadata"].get("ownerReferences") or []
        assert [(r["uid"], r.get("controller")) for r in refs] == [(uid, True)], (kind, item["metadata"])
    return items


def test_killed_when_the_job_is_done_and_the_profile_not_written(pools, kubectl, kubeconfig, tmp_path):
    log = tmp_path / "operator.log"
    kubectl.apply(inference_deployment("recorded"))
    crashed_at("job-done-profile-not-written", kubeconfig, log)

    jobs = {j["metadata"]["labels"]["hybridplace.io/pool"]: j for j in kubectl.json("jobs", "-l", BENCH)["items"]}
    cpu_done = [x["type"] for x in jobs["cpu-standard"]["status"].get("conditions") or [] if x["status"] == "True"]
    assert "Complete" in cpu_done, jobs["cpu-standard"]["status"]
    assert kubectl.json("mprof")["items"] == []  # the point: measured, not recorded

    second = start_operator_process(kubeconfig, log)
    try:
        wait_condition(kubectl, "recorded", "Placed", timeout=180)
    finally:
        second.terminate()
        second.wait(timeout=30)

    uid = kubectl.json("infd", "recorded")["metadata"]["uid"]
    after = kubectl.json("jobs", "-l", BENCH)["items"]  # Jobs are per digest and pool, owned by no one deployment
    assert sorted(j["metadata"]["uid"] for j in after) == sorted(j["metadata"]["uid"] for j in jobs.values())
    profiles = kubectl.json("mprof")["items"]
    assert [p["spec"]["pool"] for p in profiles] == ["cpu-standard"]
    cpu_job = jobs["cpu-standard"]["metadata"]["name"]
    assert profiles[0]["spec"]["source"].startswith(f"benchmark Job {kubectl.namespace}/{cpu_job} ")
    status = kubectl.json("infd", "recorded")["status"]
    assert [p["pool"] for p in status["decision"]["placements"]] == ["cpu-standard"]
    assert len(owned_only_by(kubectl, "deployments", uid)) == 1
    assert len(owned_only_by(kubectl, "services", uid)) == 1
    started = [e for e in kubectl.events("recorded") if e["reason"] == "BenchmarkStarted"]
    assert len(started) == 2, started  # announced once each, not again after the restart
    assert "Traceback" not in log.read_text()


def split_across_two_pools(suffix: str) -> tuple[list[dict], list[dict], dict]:
    """Two CPU pools (on the local CPU nodes) where the cheaper one holds one replica only, the
    seed table's profiles for builtin:delay on both, and an InferenceDeployment for 40 requests/s:
    the decision is one replica on each pool (`hybridplace recommend` says so), so the children
    are two Deployments and three Services. No benchmark runs."""
    pools = [{
        "apiVersion": "hybridplace.io/v1alpha1", "kind": "HardwarePool", "metadata": {"name": pool},
        "spec": {"accelerator": {"type": "cpu"}, "nodeSelector": {"hybridplace.io/pool": "cpu-standard"},
                 "replicaResources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                 "price": {"perReplicaHour": price}, "maxReplicas": most}}
        for pool, price, most in ((f"half-a-{suffix}", 0.1, 1), (f"half-b-{suffix}", 0.3, 4))]
    profiles = [seed_profile(p["metadata"]["name"]) for p in pools]
    infd = inference_deployment("halves", model={"builtin": "delay"}, slo={"latencyMs": 1000},
                                load={"targetRps": 40, "maxReplicas": 8},
                                placement={"pools": [p["metadata"]["name"] for p in pools], "mode": "Apply",
                                           "headroom": 0.2},
                                benchmark={"batchSizes": [1, 10, 100]})
    return pools, profiles, infd


def test_killed_with_the_children_half_created(pools, crds, kubectl, kubeconfig, namespace, tmp_path):
    log = tmp_path / "operator.log"
    split_pools, profiles, infd = split_across_two_pools(namespace[-6:])
    a, b = (p["metadata"]["name"] for p in split_pools)
    subprocess.run([*crds, "apply", "-f", "-"], input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                  "items": split_pools}),
                   text=True, check=True, capture_output=True, timeout=60)
    try:
        for profile in profiles:
            kubectl.apply(profile)
        kubectl.apply(infd)
        crashed_at("children-half-created", kubeconfig, log)

        (half,) = kubectl.json("deployments", "-l", f"{INFD}=halves")["items"]
        assert half["metadata"]["name"] == f"halves-{a}"  # pools in name order: a first, b not yet
        assert kubectl.json("services")["items"] == []
        placed = kubectl.condition("infd", "halves", "Placed")
        assert placed is None or placed["status"] != "True"

        second = start_operator_process(kubeconfig, log)
        try:
            wait_condition(kubectl, "halves", "Placed", timeout=120)
        finally:
            second.terminate()
            second.wait(timeout=30)
    finally:
        subprocess.run([*crds, "delete", "hwpool", a, b, "--wait=false"], capture_output=True, timeout=60)

    obj = kubectl.json("infd", "halves")
    placements = {p["pool"]: p["replicas"] for p in obj["status"]["decision"]["placements"]}
    assert placements == {a: 1, b: 1}
    uid = obj["metadata"]["uid"]
    deployments = {d["metadata"]["name"]: d for d in owned_only_by(kubectl, "deployments", uid)}
    assert sorted(deployments) == [f"halves-{a}", f"halves-{b}"]
    assert deployments[f"halves-{a}"]["metadata"]["uid"] == half["metadata"]["uid"]  # kept, not made again
    services = sorted(s["metadata"]["name"] for s in owned_only_by(kubectl, "services", uid))
    assert services == sorted(["halves", f"halves-{a}", f"halves-{b}"])
    assert "Traceback" not in log.read_text()
