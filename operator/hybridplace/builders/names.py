"""Deterministic names and labels of the objects the operator creates.

Names derive from what the object is for (model digest and pool, or InferenceDeployment and
pool), so a restarted operator finds what it made instead of making it twice.
"""

from __future__ import annotations

import hashlib

MANAGED_BY = "hybridplace"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_COMPONENT = "hybridplace.io/component"  # benchmark | serving
LABEL_POOL = "hybridplace.io/pool"
LABEL_DIGEST = "hybridplace.io/digest"  # the first 40 hex of the model digest (label values <= 63)
LABEL_INSTANCE = "hybridplace.io/inferencedeployment"
ANNOTATION_DIGEST = "hybridplace.io/model-digest"
ANNOTATION_FINGERPRINT = "hybridplace.io/fingerprint"  # of the serving Deployment the operator applied
# A hash of what a benchmark measures with (builders.jobs.benchmark_key), on the Job and on the
# ModelProfile it records: a profile whose key no InferenceDeployment of its model asks for any
# more is measured again.
LABEL_BENCHMARK_KEY = "hybridplace.io/benchmark-key"
ANNOTATION_WORKER_IMAGE = "hybridplace.io/worker-image"  # on a recorded ModelProfile: the image that measured
# On a benchmark Job once its result is recorded: the measuredAt of the ModelProfile it wrote.
ANNOTATION_RECORDED = "hybridplace.io/recorded-measured-at"
# Node labels a profile records the value of (spec.device.instanceType, gpuProduct).
NODE_LABEL_INSTANCE_TYPE = "node.kubernetes.io/instance-type"
NODE_LABEL_GPU_PRODUCT = "nvidia.com/gpu.product"

COMPONENT_BENCHMARK = "benchmark"
COMPONENT_SERVING = "serving"


def _fit(name: str, limit: int) -> str:
    """`name` if it fits in `limit` characters, else a prefix plus a stable hash of the whole."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: limit - 9].rstrip('-.')}-{digest}"


def digest_hex(digest: str) -> str:
    """The hex part of `sha256:<hex>`."""
    return digest.split(":", 1)[1]


def digest_label(digest: str) -> str:
    return digest_hex(digest)[:40]


def profile_name(digest: str, pool: str) -> str:
    """ModelProfile name: mp-<12 hex of the digest>-<pool>."""
    return _fit(f"mp-{digest_hex(digest)[:12]}-{pool}", 253)


def benchmark_job_name(digest: str, pool: str) -> str:
    """Benchmark Job name; <= 52 characters so the Job's pods' names fit too."""
    return _fit(f"hp-bench-{digest_hex(digest)[:12]}-{pool}", 52)


def serving_name(deployment: str, pool: str) -> str:
    """Serving Deployment and Service name for one pool; a Service name must be <= 63."""
    return _fit(f"{deployment}-{pool}", 63)
