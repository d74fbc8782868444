"""The serving Deployment and Services for one InferenceDeployment: pure functions of the spec,
the decision and the pool. Triton serves the model with the decision's batch size."""

from __future__ import annotations

from typing import Any

from ..api.models import HardwarePool, InferenceDeployment
from . import names
from .jobs import model_args, pool_resources, pool_scheduling
from .security import (
    container_security_context,
    pod_isolation,
    pod_security_context,
    scratch_volume,
    shared_memory_volume,
)

# How long a serving replica may take to start: the worker's deadline, then the startup probe's.
SERVE_DEADLINE_SECONDS = 540
STARTUP_PROBE_SECONDS = 600


def owner_reference(infd: InferenceDeployment) -> dict[str, Any]:
    """Makes the InferenceDeployment the controller of a child, so deleting it deletes them."""
    return {
        "apiVersion": infd.api_version,
        "kind": infd.kind,
        "name": infd.metadata.name,
        "uid": infd.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def instance_labels(infd: InferenceDeployment) -> dict[str, str]:
    return {
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_COMPONENT: names.COMPONENT_SERVING,
        names.LABEL_INSTANCE: str(infd.metadata.name),
    }


def _ports(port: int) -> list[dict[str, Any]]:
    return [
        {"name": "http", "containerPort": port, "protocol": "TCP"},
        {"name": "grpc", "containerPort": port + 1, "protocol": "TCP"},
        {"name": "metrics", "containerPort": port + 2, "protocol": "TCP"},
    ]


def build_serving_deployment(
    *,
    infd: InferenceDeployment,
    digest: str,
    pool: HardwarePool,
    replicas: int,
    batch_size: int,
    image: str,
    instances: int = 1,
) -> dict[str, Any]:
    """The Deployment that serves `infd`'s model on `pool` with Triton dynamic batching up to
    `batch_size`, `instances` model instances per replica, and `replicas` replicas."""
    spec = infd.spec
    gpu = pool.spec.accelerator.type == "nvidia-gpu"
    labels = {**instance_labels(infd), names.LABEL_POOL: pool.name}
    selector = {names.LABEL_INSTANCE: labels[names.LABEL_INSTANCE], names.LABEL_POOL: pool.name}
    port = spec.serving.port
    args = [
        "serve",
        *model_args(spec.model, digest),
        "--max-batch-size", str(batch_size),
        "--preferred-batch-size", str(batch_size),
        "--max-queue-delay-ms", f"{spec.serving.max_queue_delay_ms:.6f}".rstrip("0").rstrip("."),
        "--instance-kind", "gpu" if gpu else "cpu",
        "--instances", str(instances),
        "--http-port", str(port),
        "--grpc-port", str(port + 1),
        "--metrics-port", str(port + 2),
        # The worker's own start deadline (download, load, the Triton repository written, up to
        # the exec of tritonserver) ends a minute before the startup probe's: a download or
        # load too slow fails with the worker's Timeout in the termination message, not a kill
        # by the kubelet that says nothing; tritonserver has that minute to load the model.
        "--deadline-seconds", str(SERVE_DEADLINE_SECONDS),
    ]
    volumes, mounts = zip(scratch_volume(), shared_memory_volume(), strict=True)
    health = {"port": "http"}
    container = {
        "name": "triton",
        "image": image,
        "command": ["hybridplace-worker"],
        "args": args,
        # Triton binds its ports at the pod's own IP (from the downward API): every replica has
        # the same ports at its own address, in a cluster as on the local one, where pod IPs
        # are loopback addresses on one machine.
        "env": [{"name": "HP_ADDRESS", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.podIP"}}}],
        "ports": _ports(port),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "resources": pool_resources(pool),
        "securityContext": container_security_context(),
        "volumeMounts": list(mounts),
        # Probed every 2 s while starting (a cheap GET): a new replica takes traffic within 2 s of
        # being ready, which is most of what a scale-up's reaction time is made of; 10 minutes in
        # all, a minute past the worker's deadline (a model download of up to 2 GiB included).
        "startupProbe": {"httpGet": {"path": "/v2/health/ready", **health},
                         "periodSeconds": 2, "failureThreshold": STARTUP_PROBE_SECONDS // 2},
        "readinessProbe": {"httpGet": {"path": "/v2/health/ready", **health}, "periodSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/v2/health/live", **health}, "periodSeconds": 10},
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": names.serving_name(str(infd.metadata.name), pool.name),
            "namespace": infd.metadata.namespace,
            "labels": labels,
            "annotations": {names.ANNOTATION_DIGEST: digest},
            "ownerReferences": [owner_reference(infd)],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": {
                        names.ANNOTATION_DIGEST: digest,
                        "prometheus.io/scrape": "true",
                        "prometheus.io/port": str(port + 2),
                        "prometheus.io/path": "/metrics",
                    },
                },
                "spec": {
                    **pod_isolation(),
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": list(volumes),
                    **pool_scheduling(pool),
                },
            },
        },
    }


def build_service(
    *, infd: InferenceDeployment, pool: str | None = None
) -> dict[str, Any]:
    """A ClusterIP Service for `infd`'s replicas on `pool`, or on every pool when `pool` is None.

    Per-pool Services let a weighted router (for example a Gateway API HTTPRoute) send each pool
    its share of a split (status.decision.placements[].shareRps); the umbrella Service spreads
    connections over all replicas.
    """
    name = str(infd.metadata.name)
    selector = {names.LABEL_INSTANCE: name}
    labels = dict(instance_labels(infd))
    if pool is not None:
        selector[names.LABEL_POOL] = pool
        labels[names.LABEL_POOL] = pool
    port = infd.spec.serving.port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": names.serving_name(name, pool) if pool else name,
            "namespace": infd.metadata.namespace,
            "labels": labels,
            "ownerReferences": [owner_reference(infd)],
        },
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [
                {"name": p["name"], "port": p["containerPort"], "targetPort": p["name"], "protocol": "TCP"}
                for p in _ports(port)
            ],
        },
    }
