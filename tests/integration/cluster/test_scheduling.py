"""Scheduling onto the two kwok node pools (issue 2): GPU pods land only on the GPU pool, pods
without the GPU toleration never do, CPU pods land on the CPU pool."""

import pytest
from kubernetes import client

pytestmark = pytest.mark.cluster

GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                  "effect": "NoSchedule"}


def job(name, *, requests, tolerations=(), parallelism=1, node_selector=None):
    pod_spec = {
        "restartPolicy": "Never",
        "containers": [{"name": "main", "image": "busybox",
                        "resources": {"requests": requests, "limits": requests}}],
        "tolerations": list(tolerations),
    }
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"parallelism": parallelism, "completions": parallelism, "backoffLimit": 0,
                     "template": {"metadata": {"labels": {"job": name}}, "spec": pod_spec}}}


def pool_of_nodes(api_client):
    nodes = client.CoreV1Api(api_client).list_node().items
    return {n.metadata.name: n.metadata.labels.get("hybridplace.io/pool") for n in nodes}


def job_pods(api_client, namespace, name):
    return client.CoreV1Api(api_client).list_namespaced_pod(
        namespace, label_selector=f"job={name}").items


def test_gpu_job_with_toleration_runs_only_on_gpu_pool(api_client, namespace, wait_until):
    batch = client.BatchV1Api(api_client)
    # Two pods, one GPU each: the pool has exactly two single-GPU nodes.
    batch.create_namespaced_job(namespace, job(
        "gpu", requests={"cpu": "1", "nvidia.com/gpu": "1"}, tolerations=[GPU_TOLERATION],
        parallelism=2))
    done = wait_until(lambda: (s := batch.read_namespaced_job_status("gpu", namespace).status)
                      .succeeded == 2 and s, timeout=60, what="GPU job to succeed")
    assert done.failed in (None, 0)
    pools = pool_of_nodes(api_client)
    nodes = [p.spec.node_name for p in job_pods(api_client, namespace, "gpu")]
    assert len(nodes) == 2
    assert {pools[n] for n in nodes} == {"gpu-t4"}, nodes


def test_gpu_job_without_toleration_never_lands_on_gpu_pool(api_client, namespace, wait_until):
    batch = client.BatchV1Api(api_client)
    batch.create_namespaced_job(namespace, job(
        "no-toleration", requests={"cpu": "1", "nvidia.com/gpu": "1"}))

    def unschedulable():
        pods = job_pods(api_client, namespace, "no-toleration")
        for pod in pods:
            for cond in pod.status.conditions or []:
                if cond.type == "PodScheduled" and cond.status == "False" \
                        and cond.reason == "Unschedulable":
                    return pod
        return None

    pod = wait_until(unschedulable, timeout=60, what="the scheduler to reject the pod")
    assert pod.spec.node_name is None
    message = next(c.message for c in pod.status.conditions if c.type == "PodScheduled")
    # The scheduler says why: the GPU nodes are tainted, the CPU nodes have no GPU.
    assert "nvidia.com/gpu" in message, message


def test_pods_without_toleration_fill_only_the_cpu_pool(api_client, namespace, wait_until):
    batch = client.BatchV1Api(api_client)
    # Eight CPU pods: with six nodes, spreading alone would put some on GPU nodes were they
    # not tainted.
    batch.create_namespaced_job(namespace, job("cpu", requests={"cpu": "2"}, parallelism=8))
    wait_until(lambda: batch.read_namespaced_job_status("cpu", namespace).status.succeeded == 8,
               timeout=90, what="CPU job to succeed")
    pools = pool_of_nodes(api_client)
    nodes = [p.spec.node_name for p in job_pods(api_client, namespace, "cpu")]
    assert len(nodes) == 8
    assert {pools[n] for n in nodes} == {"cpu-standard"}, nodes
    assert len(set(nodes)) > 1  # really spread over the pool, not one lucky node
