"""A pool's room is shared between InferenceDeployments, end to end: two deployments applied at
the same moment compete for a pool with room for one replica, and are never placed over it.
The one that finds no room says OverCapacity, and is placed as soon as the room frees up."""

from __future__ import annotations

import json
import threading
import time

import pytest
from e2e_helpers import Kubectl, inference_deployment, wait_condition

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

POOL = "one-room"


@pytest.fixture
def small_pool(crds):
    """A pool on one CPU node whose replicas each take most of its disk: room for one replica.
    (Disk, not CPU: other tests' pods on that node ask for CPU, none for disk, so the room is
    this test's alone.) Removed afterwards, so that other tests (which may use every pool)
    never see it."""
    cluster = Kubectl(crds)
    pool = {"apiVersion": "hybridplace.io/v1alpha1", "kind": "HardwarePool", "metadata": {"name": POOL},
            "spec": {"accelerator": {"type": "cpu"}, "nodeSelector": {"kubernetes.io/hostname": "kwok-cpu-3"},
                     "replicaResources": {"requests": {"ephemeral-storage": "150Gi"}},
                     "price": {"perReplicaHour": 0.8064}}}
    cluster.apply(pool)
    yield POOL
    cluster("delete", "hardwarepool", POOL, "--ignore-not-found", "--wait=false")


def on_pool(kubectl, pool):
    """Serving replicas (spec.replicas) of every Deployment in the namespace placed on `pool`."""
    items = kubectl.json("deployments", "-l", f"hybridplace.io/pool={pool}")["items"]
    return sum(d["spec"].get("replicas", 1) for d in items)


def test_two_deployments_competing_for_one_room_are_never_placed_over_it(operator, kubectl, small_pool, wait_until):
    cluster_pool = Kubectl(kubectl.base)
    wait_until(lambda: (cluster_pool.json("hardwarepool", small_pool).get("status") or {}).get("capacityReplicas") == 1,
               timeout=60, what=f"HardwarePool {small_pool} reports room for one replica")
    bodies = [inference_deployment(name, load={"targetRps": 5, "minReplicas": 1, "maxReplicas": 2},
                                   placement={"pools": [small_pool]}) for name in ("first", "second")]
    # Both at once: one kubectl apply of a List.
    kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": bodies}))
    most = {"replicas": 0}
    stop = threading.Event()

    def watch_room():
        while not stop.is_set():
            most["replicas"] = max(most["replicas"], on_pool(kubectl, small_pool))
            time.sleep(0.5)

    watcher = threading.Thread(target=watch_room, daemon=True)
    watcher.start()
    try:
        last = {}

        def placed():
            last.update({n: kubectl.condition("infd", n, "Placed") for n in ("first", "second")})
            return all(f and f["reason"] in ("Applied", "OverCapacity") for f in last.values())

        wait_until(placed, timeout=240, what="both deployments decided", detail=lambda: last)
        found = dict(last)
        winner = next(n for n, f in found.items() if f["status"] == "True")
        loser = next(n for n in found if n != winner)
        assert found[loser]["status"] == "False" and found[loser]["reason"] == "OverCapacity", found
        assert f"{small_pool}: no free capacity" in found[loser]["message"]
        assert "belong to other InferenceDeployments" in found[loser]["message"]
        assert any(e["reason"] == "OverCapacity" and e["type"] == "Warning" for e in kubectl.events(loser))
        # Across two resyncs (20 s each here), nothing moves: the loser never squeezes in.
        time.sleep(45)
        assert on_pool(kubectl, small_pool) == 1
        assert kubectl.condition("infd", loser, "Placed")["reason"] == "OverCapacity"
        # The room frees up: the loser takes it (at its next reconcile), still never both.
        kubectl("delete", "infd", winner, "--wait=true", "--timeout=60s")
        wait_condition(kubectl, loser, "Placed", timeout=120)
        wait_until(lambda: on_pool(kubectl, small_pool) == 1, timeout=60, what="the loser's replica")
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert most["replicas"] <= 1, f"{most['replicas']} replicas on a pool with room for one"
