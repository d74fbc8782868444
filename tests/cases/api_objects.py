"""Valid API objects and a table of bad ones, shared by the Python-model unit tests and the
real-API-server integration tests: both must refuse every bad object and name the same field."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DIGEST = "sha256:" + "ab" * 32


def inference_deployment(name: str = "infd-ok") -> dict[str, Any]:
    return {
        "apiVersion": "hybridplace.io/v1alpha1",
        "kind": "InferenceDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"builtin": "mlp"},
            "slo": {"percentile": 95, "latencyMs": 50},
            "load": {"targetRps": 100, "minReplicas": 1, "maxReplicas": 10},
        },
    }


def hardware_pool(name: str = "pool-ok") -> dict[str, Any]:
    return {
        "apiVersion": "hybridplace.io/v1alpha1",
        "kind": "HardwarePool",
        "metadata": {"name": name},
        "spec": {
            "accelerator": {"type": "nvidia-gpu", "product": "NVIDIA-T4"},
            "nodeSelector": {"hybridplace.io/pool": "gpu-t4"},
            "replicaResources": {"requests": {"cpu": "4", "memory": "16Gi", "nvidia.com/gpu": 1}},
            "nodeAllocatable": {"cpu": "8", "memory": "32Gi", "nvidia.com/gpu": 1},
            "price": {"perNodeHour": 0.752},
        },
    }


def model_profile(name: str = "mprof-ok") -> dict[str, Any]:
    return {
        "apiVersion": "hybridplace.io/v1alpha1",
        "kind": "ModelProfile",
        "metadata": {"name": name},
        "spec": {
            "model": {"digest": DIGEST, "name": "builtin:mlp"},
            "pool": "cpu-standard",
            "provenance": "imported",
            "points": [
                {"batchSize": 1, "concurrency": 1, "p50Ms": 1.0, "p95Ms": 1.2, "p99Ms": 1.5},
                {"batchSize": 8, "concurrency": 1, "p50Ms": 3.0, "p95Ms": 3.5, "p99Ms": 4.0},
            ],
        },
    }


VALID = {
    "InferenceDeployment": inference_deployment,
    "HardwarePool": hardware_pool,
    "ModelProfile": model_profile,
}


@dataclass(frozen=True)
class BadCase:
    id: str
    kind: str
    change: Callable[[dict[str, Any]], None]  # turns a valid object of `kind` into a bad one
    field: str  # the field path both the server's and the Python model's message must name

    def object(self, name: str) -> dict[str, Any]:
        obj = copy.deepcopy(VALID[self.kind](name))
        self.change(obj)
        return obj


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = obj
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value

    return change


def _delete(path: str) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = obj
        for part in parents:
            node = node[part]
        del node[last]

    return change


def _rename(new: Callable[[str], str]) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        obj["metadata"]["name"] = new(obj["metadata"]["name"])

    return change


def _both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(obj: dict[str, Any]) -> None:
        for c in changes:
            c(obj)

    return change


URI_MODEL = {"uri": "https://models.example.com/m.pt", "digest": DIGEST,
             "inputs": [{"name": "x", "shape": [4]}]}

BAD_CASES: list[BadCase] = [
    # InferenceDeployment
    BadCase("slo-latency-zero", "InferenceDeployment", _set("spec.slo.latencyMs", 0), "spec.slo.latencyMs"),
    BadCase("slo-latency-negative", "InferenceDeployment", _set("spec.slo.latencyMs", -5), "spec.slo.latencyMs"),
    BadCase("slo-latency-string", "InferenceDeployment", _set("spec.slo.latencyMs", "50ms"), "spec.slo.latencyMs"),
    BadCase("slo-percentile-97", "InferenceDeployment", _set("spec.slo.percentile", 97), "spec.slo.percentile"),
    BadCase("slo-missing", "InferenceDeployment", _delete("spec.slo"), "spec.slo"),
    BadCase("slo-typo-field", "InferenceDeployment",
            _both(_delete("spec.slo.latencyMs"), _set("spec.slo.latency", 50)), "spec.slo.latency"),
    BadCase("load-min-over-max", "InferenceDeployment",
            _both(_set("spec.load.minReplicas", 5), _set("spec.load.maxReplicas", 2)), "spec.load.minReplicas"),
    BadCase("load-target-zero", "InferenceDeployment", _set("spec.load.targetRps", 0), "spec.load.targetRps"),
    BadCase("load-target-missing", "InferenceDeployment", _delete("spec.load.targetRps"), "spec.load.targetRps"),
    BadCase("model-builtin-and-uri", "InferenceDeployment",
            _set("spec.model", {"builtin": "mlp", "uri": "https://models.example.com/m.pt"}), "spec.model"),
    BadCase("model-neither", "InferenceDeployment", _set("spec.model", {"format": "torchscript"}), "spec.model"),
    BadCase("model-unknown-builtin", "InferenceDeployment", _set("spec.model.builtin", "bert"), "spec.model.builtin"),
    BadCase("model-uri-without-digest", "InferenceDeployment",
            _set("spec.model", {k: v for k, v in URI_MODEL.items() if k != "digest"}), "spec.model.digest"),
    BadCase("model-digest-malformed", "InferenceDeployment",
            _set("spec.model", {**URI_MODEL, "digest": "sha256:xyz"}), "spec.model.digest"),
    BadCase("model-uri-without-inputs", "InferenceDeployment",
            _set("spec.model", {k: v for k, v in URI_MODEL.items() if k != "inputs"}), "spec.model.inputs"),
    BadCase("model-uri-scheme", "InferenceDeployment",
            _set("spec.model", {**URI_MODEL, "uri": "ftp://models.example.com/m.pt"}), "spec.model.uri"),
    BadCase("model-builtin-with-digest", "InferenceDeployment",
            _set("spec.model", {"builtin": "mlp", "digest": DIGEST}), "spec.model"),
    BadCase("placement-objective", "InferenceDeployment", _set("spec.placement.objective", "speed"),
            "spec.placement.objective"),
    BadCase("placement-mode-case", "InferenceDeployment", _set("spec.placement.mode", "apply"), "spec.placement.mode"),
    BadCase("placement-headroom", "InferenceDeployment", _set("spec.placement.headroom", 1.5),
            "spec.placement.headroom"),
    BadCase("placement-pools-duplicate", "InferenceDeployment", _set("spec.placement.pools", ["a", "a"]),
            "spec.placement.pools"),
    BadCase("benchmark-batch-zero", "InferenceDeployment", _set("spec.benchmark.batchSizes", [0, 4]),
            "spec.benchmark.batchSizes[0]"),
    BadCase("serving-port-low", "InferenceDeployment", _set("spec.serving.port", 80), "spec.serving.port"),
    # The Gateway a route names: the Gateway API's patterns, so a name is never a path ("../..")
    # and a route is never one the API server must refuse.
    BadCase("gateway-name-a-path", "InferenceDeployment",
            _set("spec.serving.gateway", {"name": "../../../api/v1/namespaces/kube-system/services/kube-dns"}),
            "spec.serving.gateway.name"),
    BadCase("gateway-namespace-dotted", "InferenceDeployment",
            _set("spec.serving.gateway", {"name": "edge", "namespace": "gw.prod"}), "spec.serving.gateway.namespace"),
    BadCase("gateway-section-upper-case", "InferenceDeployment",
            _set("spec.serving.gateway", {"name": "edge", "sectionName": "HTTP"}), "spec.serving.gateway.sectionName"),
    BadCase("gateway-hostname-with-space", "InferenceDeployment",
            _set("spec.serving.gateway", {"name": "edge", "hostnames": ["api example.com"]}),
            "spec.serving.gateway.hostnames[0]"),
    BadCase("name-with-dots", "InferenceDeployment", _rename(lambda n: f"{n}.v2"), "metadata.name"),
    BadCase("name-over-63", "InferenceDeployment", _rename(lambda n: f"{n}-{'x' * 63}"), "metadata.name"),
    # HardwarePool
    # Tolerations held to a Pod's rules: else the benchmark Job is refused at run time.
    BadCase("toleration-exists-with-value", "HardwarePool",
            _set("spec.tolerations", [{"key": "gpu", "operator": "Exists", "value": "x"}]),
            "spec.tolerations[0].value"),
    BadCase("toleration-no-key-not-exists", "HardwarePool",
            _set("spec.tolerations", [{"operator": "Equal", "value": "x"}]), "spec.tolerations[0].key"),
    BadCase("toleration-seconds-not-noexecute", "HardwarePool",
            _set("spec.tolerations", [{"key": "a", "operator": "Exists", "effect": "NoSchedule",
                                       "tolerationSeconds": 5}]), "spec.tolerations[0].tolerationSeconds"),
    BadCase("toleration-key-with-space", "HardwarePool",
            _set("spec.tolerations", [{"key": "bad key", "operator": "Exists"}]), "spec.tolerations[0].key"),
    BadCase("max-age-under-10-seconds", "InferenceDeployment", _set("spec.benchmark.maxAge", 5),
            "spec.benchmark.maxAge"),
    BadCase("max-age-two-units", "InferenceDeployment", _set("spec.benchmark.maxAge", "1h30m"),
            "spec.benchmark.maxAge"),
    BadCase("max-age-9s", "InferenceDeployment", _set("spec.benchmark.maxAge", "9s"), "spec.benchmark.maxAge"),
    BadCase("max-age-weeks", "InferenceDeployment", _set("spec.benchmark.maxAge", "2w"), "spec.benchmark.maxAge"),
    BadCase("max-age-negative", "InferenceDeployment", _set("spec.benchmark.maxAge", -60), "spec.benchmark.maxAge"),
    BadCase("pool-profile-max-age-bad", "HardwarePool", _set("spec.profileMaxAge", "forever"),
            "spec.profileMaxAge"),
    BadCase("profile-instance-type-over-63", "ModelProfile", _set("spec.device.instanceType", "x" * 64),
            "spec.device.instanceType"),
    BadCase("pool-name-with-dots", "HardwarePool", _rename(lambda n: f"{n}.large"), "metadata.name"),
    BadCase("pool-name-over-63", "HardwarePool", _rename(lambda n: f"{n}-{'x' * 63}"), "metadata.name"),
    BadCase("pool-accelerator-tpu", "HardwarePool", _set("spec.accelerator.type", "tpu"), "spec.accelerator.type"),
    BadCase("pool-gpu-without-product", "HardwarePool", _delete("spec.accelerator.product"),
            "spec.accelerator.product"),
    BadCase("pool-gpu-not-requested", "HardwarePool",
            _set("spec.replicaResources.requests", {"cpu": "4"}), "spec.replicaResources.requests"),
    BadCase("pool-price-both", "HardwarePool", _set("spec.price", {"perNodeHour": 1, "perReplicaHour": 1}),
            "spec.price"),
    BadCase("pool-price-none", "HardwarePool", _set("spec.price", {}), "spec.price"),
    BadCase("pool-price-negative", "HardwarePool", _set("spec.price.perNodeHour", -1), "spec.price.perNodeHour"),
    BadCase("pool-node-price-without-allocatable", "HardwarePool", _delete("spec.nodeAllocatable"),
            "spec.nodeAllocatable"),
    BadCase("pool-request-exceeds-node", "HardwarePool",
            _set("spec.replicaResources.requests.memory", "64Gi"), "spec.replicaResources.requests"),
    BadCase("pool-allocatable-missing-resource", "HardwarePool",
            _set("spec.nodeAllocatable", {"cpu": "8", "nvidia.com/gpu": 1}), "spec.nodeAllocatable"),
    BadCase("pool-limit-below-request", "HardwarePool",
            _set("spec.replicaResources.limits", {"cpu": "3500m"}), "spec.replicaResources.limits"),
    BadCase("pool-memory-limit-below-request", "HardwarePool",
            _set("spec.replicaResources.limits", {"memory": "8Gi", "cpu": "8"}), "spec.replicaResources.limits"),
    BadCase("pool-gpu-limit-over-request", "HardwarePool",
            _set("spec.replicaResources.limits", {"nvidia.com/gpu": 2}), "spec.replicaResources.limits"),
    BadCase("pool-negative-request", "HardwarePool", _set("spec.replicaResources.requests.cpu", "-4"),
            "spec.replicaResources.requests"),
    BadCase("pool-negative-int-limit", "HardwarePool", _set("spec.replicaResources.limits", {"memory": -1}),
            "spec.replicaResources.limits"),
    BadCase("pool-negative-allocatable", "HardwarePool", _set("spec.nodeAllocatable.memory", "-32Gi"),
            "spec.nodeAllocatable"),
    BadCase("pool-fractional-gpu", "HardwarePool",
            lambda o: o["spec"]["replicaResources"]["requests"].update({"nvidia.com/gpu": "500m"}),
            "spec.replicaResources.requests"),
    BadCase("model-input-names-repeat", "InferenceDeployment",
            _set("spec.model", {**URI_MODEL, "inputs": [{"name": "x", "shape": [4]}, {"name": "x", "shape": [2]}]}),
            "spec.model.inputs"),
    BadCase("benchmark-triton-concurrency", "InferenceDeployment",
            _set("spec.benchmark", {"engine": "triton", "concurrency": [1, 4]}), "spec.benchmark.concurrency"),
    BadCase("model-input-too-many-elements", "InferenceDeployment",
            _set("spec.model", {**URI_MODEL, "inputs": [{"name": "x", "shape": [3, 2**20, 2**20]}]}),
            "spec.model.inputs[0].shape"),
    BadCase("model-input-dims-overflow", "InferenceDeployment",
            _set("spec.model", {**URI_MODEL, "inputs": [{"name": "x", "shape": [2**40, 2**40, 2**40, 1, 1, 1, 1, 1]}]}),
            "spec.model.inputs[0].shape"),
    BadCase("model-input-bfloat16", "InferenceDeployment",
            _set("spec.model", {**URI_MODEL, "inputs": [{"name": "x", "shape": [4], "dtype": "bfloat16"}]}),
            "spec.model.inputs[0].dtype"),
    BadCase("pool-resource-name-typo", "HardwarePool",
            lambda o: o["spec"]["replicaResources"]["requests"].update({"gpus": 1}), "spec.replicaResources.requests"),
    BadCase("pool-kubernetes-io-resource", "HardwarePool",
            lambda o: o["spec"]["replicaResources"]["requests"].update({"kubernetes.io/foo": 1}),
            "spec.replicaResources.requests"),
    BadCase("pool-limit-alone-exceeds-node", "HardwarePool",
            _set("spec.replicaResources", {"requests": {"cpu": "4", "nvidia.com/gpu": 1},
                                           "limits": {"memory": "64Gi"}}),
            "spec.replicaResources.limits"),
    BadCase("pool-bad-quantity", "HardwarePool", _set("spec.replicaResources.requests.cpu", "4 cores"),
            "spec.replicaResources.requests.cpu"),
    BadCase("pool-empty-selector", "HardwarePool", _set("spec.nodeSelector", {}), "spec.nodeSelector"),
    BadCase("pool-power-both", "HardwarePool",
            _set("spec.power", {"perNodeWatts": 100, "perReplicaWatts": 50}), "spec.power"),
    # ModelProfile
    BadCase("profile-digest-malformed", "ModelProfile", _set("spec.model.digest", "md5:abc"), "spec.model.digest"),
    BadCase("profile-percentiles-unordered", "ModelProfile",
            _set("spec.points", [{"batchSize": 1, "p50Ms": 5, "p95Ms": 2, "p99Ms": 6}]), "spec.points[0]"),
    BadCase("profile-no-points", "ModelProfile", _set("spec.points", []), "spec.points"),
    # Bounded above, so the latency model's arithmetic stays finite (1e300 ms overflowed it).
    BadCase("profile-p99-beyond-bound", "ModelProfile",
            _set("spec.points", [{"batchSize": 1, "p50Ms": 1, "p95Ms": 2, "p99Ms": 1e300}]), "spec.points[0].p99Ms"),
    BadCase("profile-throughput-beyond-bound", "ModelProfile",
            _set("spec.points", [{"batchSize": 1, "p50Ms": 1, "p95Ms": 2, "p99Ms": 3, "throughputRps": 1e12}]),
            "spec.points[0].throughputRps"),
    BadCase("profile-duplicate-point", "ModelProfile",
            _set("spec.points", [{"batchSize": 1, "p50Ms": 1, "p95Ms": 2, "p99Ms": 3},
                                 {"batchSize": 1, "concurrency": 1, "p50Ms": 1, "p95Ms": 2, "p99Ms": 3}]),
            "spec.points"),
    BadCase("profile-provenance", "ModelProfile", _set("spec.provenance", "guessed"), "spec.provenance"),
    BadCase("profile-pool-name", "ModelProfile", _set("spec.pool", "GPU_T4"), "spec.pool"),
]
