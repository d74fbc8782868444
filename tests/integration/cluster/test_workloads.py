"""Deployments become Available on kwok nodes; garbage collection removes owned objects."""

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

pytestmark = pytest.mark.cluster


def deployment(name, replicas):
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "web", "image": "nginx",
                          "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}]}}}}


def gone(read):
    try:
        read()
    except ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def test_deployment_pods_become_ready_and_are_collected_with_it(api_client, namespace,
                                                               wait_until):
    apps, core = client.AppsV1Api(api_client), client.CoreV1Api(api_client)
    apps.create_namespaced_deployment(namespace, deployment("web", 3))
    wait_until(lambda: apps.read_namespaced_deployment_status("web", namespace)
               .status.available_replicas == 3, timeout=60, what="3 available replicas")
    pods = core.list_namespaced_pod(namespace, label_selector="app=web").items
    assert len(pods) == 3
    for pod in pods:
        assert pod.spec.node_name, pod.metadata.name
        assert pod.status.phase == "Running"
        assert {c.type: c.status for c in pod.status.conditions}["Ready"] == "True"
    replicasets = apps.list_namespaced_replica_set(namespace).items
    assert len(replicasets) == 1
    assert replicasets[0].metadata.owner_references[0].kind == "Deployment"

    apps.delete_namespaced_deployment("web", namespace,
                                      body=client.V1DeleteOptions(propagation_policy="Background"))
    wait_until(lambda: not apps.list_namespaced_replica_set(namespace).items
               and not core.list_namespaced_pod(namespace, label_selector="app=web").items,
               timeout=60, what="the garbage collector to remove the ReplicaSet and pods")


def test_deleting_an_owner_collects_objects_that_name_it(api_client, namespace, wait_until):
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    ref = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "child",
                                                               "ownerReferences": [ref]}})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "child",
                                                           "ownerReferences": [ref]}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "bystander"}})

    core.delete_namespaced_config_map("owner", namespace)
    wait_until(lambda: gone(lambda: core.read_namespaced_config_map("child", namespace))
               and gone(lambda: core.read_namespaced_secret("child", namespace)),
               timeout=60, what="the garbage collector to delete the children")
    assert core.read_namespaced_config_map("bystander", namespace).metadata.name == "bystander"
