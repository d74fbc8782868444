"""Chaos: the API server killed for 45 s (HP_CHAOS_OUTAGE_SECONDS) during a burst of creates,
then deletes and edits right after it answers /readyz again. Nothing is lost and nothing is
duplicated: a serving Deployment deleted then is recreated (the re-list finds what no watch
event reported), a deleted InferenceDeployment's children are collected, an edit is applied,
every other InferenceDeployment is Placed with one Deployment per placement, and Events keep
flowing afterwards. The real operator on the local cluster; SIGKILL, as a crash would.

The model is measured before the outage: the local pod runner (cluster/podrunner.py), which
runs benchmark pods, does not survive an API-server restart today (its watch thread stops), so
benchmarks started during or after the outage would never run. Assertions use Placed, which
needs no pod to run."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import time
from pathlib import Path

import pytest
from e2e_helpers import inference_deployment, wait_condition, wait_event

pytestmark = [pytest.mark.cluster, pytest.mark.slow, pytest.mark.chaos]

REPO = Path(__file__).resolve().parents[2]
OUTAGE = float(os.environ.get("HP_CHAOS_OUTAGE_SECONDS", "45"))


def _localcluster():
    spec = importlib.util.spec_from_file_location("localcluster", REPO / "cluster" / "localcluster.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def restart_apiserver(cluster_name: str, outage: float) -> None:
    """SIGKILL kube-apiserver, wait `outage` seconds, start it again with the same command line
    (recorded in the cluster's state, so `localcluster.py down` still stops it)."""
    lc = _localcluster()
    cluster = lc.Cluster(cluster_name)
    state = cluster.load()
    pid = state["processes"]["kube-apiserver"]["pid"]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    os.kill(pid, signal.SIGKILL)
    time.sleep(outage)
    cluster._spawn(state, "kube-apiserver", [a.decode() for a in argv])
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            if cluster.api_ready(state):
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise AssertionError("the API server did not come back")


def test_api_server_killed_mid_burst(operator, kubectl, wait_until, local_cluster):
    kubectl.apply(inference_deployment("measured", load={"targetRps": 5}))
    wait_condition(kubectl, "measured", "Placed", timeout=300)  # profiles exist from here on
    names = [f"burst-{i}" for i in range(5)]
    for name in names:  # the burst: the API server dies right after it
        kubectl.apply(inference_deployment(name, load={"targetRps": 5}))
    restart_apiserver(local_cluster.name, OUTAGE)

    # Right after it answers: a delete of a child, a delete of a parent, an edit.
    wait_condition(kubectl, "burst-0", "Placed", timeout=120)
    (child,) = kubectl.json("deployments", "-l", "hybridplace.io/inferencedeployment=burst-0")["items"]
    kubectl("delete", "deployment", child["metadata"]["name"], "--wait=false")
    kubectl("delete", "infd", "burst-1", "--wait=false")
    kubectl("patch", "infd", "burst-2", "--type=merge", "-p", json.dumps({"spec": {"load": {"targetRps": 6}}}))

    wait_until(
        lambda: kubectl("get", "deployment", child["metadata"]["name"], check=False).strip(),
        timeout=90,
        what="the deleted serving Deployment recreated",
    )
    wait_until(
        lambda: not kubectl.json("deployments", "-l", "hybridplace.io/inferencedeployment=burst-1")["items"],
        timeout=90,
        what="the deleted InferenceDeployment's children collected",
    )
    wait_until(
        lambda: kubectl.json("infd", "burst-2")["status"].get("observedGeneration") == 2,
        timeout=90,
        what="the edit observed",
    )
    for name in ("burst-0", "burst-2", "burst-3", "burst-4"):
        wait_condition(kubectl, name, "Placed", timeout=120)
        status = kubectl.json("infd", name)["status"]
        deployments = kubectl.json("deployments", "-l", f"hybridplace.io/inferencedeployment={name}")["items"]
        assert len(deployments) == len(status["decision"]["placements"]), name  # nothing duplicated
    jobs = kubectl.json("jobs", "-l", "hybridplace.io/component=benchmark")["items"]
    pools = [j["metadata"]["labels"]["hybridplace.io/pool"] for j in jobs]
    assert len(pools) == len(set(pools))  # one benchmark Job per pool, never two

    # Events keep flowing after the outage.
    kubectl.apply(inference_deployment("after", load={"targetRps": 5}))
    wait_event(kubectl, "after", "Applied", timeout=120)
    # (the operator fixture asserts, once it has stopped, that kopf logged no Traceback)
