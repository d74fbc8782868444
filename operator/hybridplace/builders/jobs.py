"""The benchmark Job for one model on one pool: a pure function of the spec and the pool."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api.models import SLO, Benchmark, HardwarePool, ModelSource
from ..api.rules import overcommit_allowed
from . import names
from .security import container_security_context, pod_security_context, scratch_volume, shared_memory_volume

# The worker's exit codes for failures a retry cannot fix (hybridplace_worker.errors):
# InvalidArgument 2, DigestMismatch 11, InputMismatch 12, OutOfMemory 13, NoDevice 14.
# A pod failing with one of them fails the Job at once instead of using up its backoff.
NON_RETRIABLE_EXIT_CODES = [2, 11, 12, 13, 14]

# The worker stops itself this long before the Job's deadline, so it can still report Timeout.
DEADLINE_MARGIN_SECONDS = 15


def benchmark_key(benchmark: Benchmark, serving_image: str | None) -> str:
    """16 hex characters of a hash of what changes a measurement: batch sizes, concurrency,
    duration per point, engine, search and its budgets, and the serving image. Not the Job's
    deadline (budgetSeconds) or maxAge: they change when, not what, is measured. The worker
    image is compared on its own (it is the operator's, the same for every deployment)."""
    found = {
        "batchSizes": sorted(benchmark.batch_sizes),
        "concurrency": sorted(benchmark.concurrency),
        "durationSeconds": f"{benchmark.duration_seconds:g}",
        "engine": benchmark.engine,
        "search": benchmark.search,
        "budgetPoints": benchmark.budget_points,
        "budgetSearchSeconds": None if benchmark.budget_search_seconds is None
        else f"{benchmark.budget_search_seconds:g}",
        "servingImage": serving_image or "",
    }
    return hashlib.sha256(json.dumps(found, sort_keys=True).encode()).hexdigest()[:16]


def search_env(benchmark: Benchmark, slo: SLO | None) -> list[dict[str, str]]:
    """The worker's search settings as environment variables (hybridplace_worker.cli)."""
    env = {"HP_SEARCH": benchmark.search}
    if benchmark.search == "Adaptive" and slo is not None:
        env["HP_SLO_MS"] = f"{slo.latency_ms:g}"
        env["HP_SLO_PERCENTILE"] = str(slo.percentile)
    if benchmark.budget_points is not None:
        env["HP_BUDGET_POINTS"] = str(benchmark.budget_points)
    if benchmark.budget_search_seconds is not None:
        env["HP_BUDGET_SECONDS"] = f"{benchmark.budget_search_seconds:g}"
    return [{"name": name, "value": value} for name, value in env.items()]


def model_args(model: ModelSource, digest: str) -> list[str]:
    """The worker's model options, shared by `bench` and `serve`."""
    if model.builtin is not None:
        return ["--model", f"builtin:{model.builtin}", "--digest", digest]
    args = ["--model", str(model.uri), "--digest", digest, "--format", model.format]
    for spec in model.inputs or []:
        shape = "x".join(str(d) for d in spec.shape)
        args += ["--input", f"{spec.name}:{shape}:{spec.dtype}"]
    return args


def pool_scheduling(pool: HardwarePool) -> dict[str, Any]:
    """nodeSelector and tolerations that put a pod on `pool`'s nodes."""
    found: dict[str, Any] = {"nodeSelector": dict(pool.spec.node_selector)}
    if pool.spec.tolerations:
        found["tolerations"] = [t.to_dict() for t in pool.spec.tolerations]
    return found


def pool_resources(pool: HardwarePool) -> dict[str, Any]:
    resources = pool.spec.replica_resources
    found: dict[str, Any] = {"requests": {k: str(v) for k, v in resources.requests.items()}}
    limits = {k: str(v) for k, v in (resources.limits or {}).items()}
    for name, request in found["requests"].items():
        # Kubernetes refuses a pod that requests an extended resource (a GPU) or hugepages
        # without a limit equal to the request: the pool's CRD rules keep given ones equal.
        if not overcommit_allowed(name):
            limits.setdefault(name, request)
    if limits:
        found["limits"] = limits
    return found


def build_benchmark_job(
    *,
    namespace: str,
    digest: str,
    model: ModelSource,
    benchmark: Benchmark,
    pool: HardwarePool,
    image: str,
    ttl_seconds: int,
    backoff_limit: int,
    slo: SLO | None = None,
    serving_image: str | None = None,
) -> dict[str, Any]:
    """A Job that measures `model` on `pool` and writes the compact result to its termination
    message. Its name depends only on the digest and the pool: one Job per pair at a time (a
    finished one is deleted when the pool must be measured again). Its label
    hybridplace.io/benchmark-key says what it measures with (`benchmark_key`).

    The search (spec.benchmark.search, budgetPoints, budgetSearchSeconds) and, for Adaptive,
    the deployment's SLO reach the worker as HP_ environment variables (docs/worker.md). The
    profile is shared by every deployment of the digest on the pool; one with another SLO
    reads the points the search skipped conservatively (it never chooses them)."""
    gpu = pool.spec.accelerator.type == "nvidia-gpu"
    labels = {
        names.LABEL_MANAGED_BY: names.MANAGED_BY,
        names.LABEL_COMPONENT: names.COMPONENT_BENCHMARK,
        names.LABEL_POOL: pool.name,
        names.LABEL_DIGEST: names.digest_label(digest),
    }
    job_labels = {**labels, names.LABEL_BENCHMARK_KEY: benchmark_key(benchmark, serving_image)}
    args = [
        "bench",
        *model_args(model, digest),
        "--device", "cuda" if gpu else "cpu",
        "--engine", benchmark.engine,
        "--batch-sizes", ",".join(str(b) for b in sorted(benchmark.batch_sizes)),
        "--concurrency", ",".join(str(c) for c in sorted(benchmark.concurrency)),
        "--duration-seconds", f"{benchmark.duration_seconds:g}",
        "--deadline-seconds", str(max(benchmark.budget_seconds - DEADLINE_MARGIN_SECONDS, 10)),
        "--output", "-",
    ]
    volumes, mounts = zip(scratch_volume(), shared_memory_volume(), strict=True)
    container = {
        "name": "worker",
        "image": image,
        "command": ["hybridplace-worker"],
        "args": args,
        # The node the result was measured on goes into the profile.
        "env": [{"name": "HP_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                *search_env(benchmark, slo)],
        "resources": pool_resources(pool),
        "securityContext": container_security_context(),
        "volumeMounts": list(mounts),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": names.benchmark_job_name(digest, pool.name),
            "namespace": namespace,
            "labels": job_labels,
            "annotations": {names.ANNOTATION_DIGEST: digest},
        },
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": benchmark.budget_seconds,
            "ttlSecondsAfterFinished": ttl_seconds,
            "podFailurePolicy": {
                "rules": [
                    {
                        "action": "FailJob",
                        "onExitCodes": {
                            "containerName": "worker",
                            "operator": "In",
                            "values": NON_RETRIABLE_EXIT_CODES,
                        },
                    }
                ]
            },
            "template": {
                "metadata": {"labels": labels, "annotations": {names.ANNOTATION_DIGEST: digest}},
                "spec": {
                    "restartPolicy": "Never",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security_context(),
                    "containers": [container],
                    "volumes": list(volumes),
                    **pool_scheduling(pool),
                },
            },
        },
    }
