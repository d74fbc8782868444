"""The reconciler on its own, against the real API server, with no watches feeding it: what it
does when its view is behind the server's (as it is for a moment after every write)."""

from __future__ import annotations

import json

import pytest
from e2e_helpers import inference_deployment
from hybridplace.config import Settings
from hybridplace.controller.kube import Kube, load_client
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


def test_a_benchmark_is_started_and_announced_once_when_reconciled_twice_before_the_watch(
        pools, kubeconfig, kubectl, namespace):
    kubectl.apply(inference_deployment("twice"))
    state = ClusterState()
    reconciler = Reconciler(Kube(load_client(kubeconfig)), state, Settings(), WorkQueue())
    reconciler.prime({})
    reconciler.events.start()
    try:
        state.put_infd(kubectl.json("infd", "twice"))
        reconciler.reconcile(("infd", namespace, "twice"))
        # No watch: the state knows the Jobs only from the reconciler's own writes.
        state.put_infd(kubectl.json("infd", "twice"))
        reconciler.reconcile(("infd", namespace, "twice"))
    finally:
        reconciler.events.stop()
    jobs = kubectl.json("jobs", "-l", "hybridplace.io/component=benchmark")["items"]
    assert sorted(j["metadata"]["labels"]["hybridplace.io/pool"] for j in jobs) == ["cpu-standard", "gpu-t4"]
    started = [e for e in kubectl.events("twice") if e["reason"] == "BenchmarkStarted"]
    assert len(started) == 2, json.dumps(started, indent=1)
