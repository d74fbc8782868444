"""Events about a cluster-scoped HardwarePool against the real API server: a core/v1 Event
whose involvedObject has no namespace is accepted only in `default` (the server's own rule,
legacyValidateEvent), so the operator posts them there in every mode; in its own namespace
(namespaced mode) each was refused with 422 and dropped."""

from __future__ import annotations

import pytest
from hybridplace.controller.handlers import CLUSTER_EVENTS_NAMESPACE
from hybridplace.controller.kube import Kube, load_client

pytestmark = pytest.mark.cluster

POOL = {"apiVersion": "hybridplace.io/v1alpha1", "kind": "HardwarePool",
        "metadata": {"name": "cpu-events-test", "uid": "u-1"}}


def test_an_event_about_a_pool_is_accepted_where_the_operator_posts_it(kubeconfig):
    kube = Kube(load_client(kubeconfig), events_namespace=CLUSTER_EVENTS_NAMESPACE)
    assert kube.event(POOL, "Warning", "NoReadyNodes", "no ready node matches") is None


def test_the_server_refuses_an_event_about_a_pool_in_another_namespace(kubeconfig, namespace):
    """Why `default`: the rule the test above relies on, seen failing elsewhere."""
    err = Kube(load_client(kubeconfig), events_namespace=namespace).event(POOL, "Warning", "NoReadyNodes", "x")
    assert err is not None and err.status == 422 and "involvedObject.namespace" in str(err)
