"""The CRDs' CEL rules (x-kubernetes-validations), mirrored in Python with the same messages.

Each `Rule` sits where the CRD puts it (`at`, a path in which `[*]` stands for every item of a
list) and reports at the same place (`at` + the CRD rule's `fieldPath`). The checks run on the
object as the API server sees it after defaulting: camelCase dicts. Transition rules (those
that read `oldSelf`) only run when an old object is given, as on the server's update path.

tests/unit/api/test_crd_drift.py checks that every CRD rule has exactly one twin here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .duration import age_is_valid
from .quantity import parse_quantity

Json = dict[str, Any]


@dataclass(frozen=True)
class Rule:
    kind: str
    at: str
    message: str
    check: Callable[..., bool]
    field_path: str = ""
    transition: bool = False  # reads the old object (CEL oldSelf)
    # Added after objects that break it could be stored, and those still work: the API server
    # refuses it on create and update (CRD validation ratcheting keeps an unchanged stored
    # value), the CLI refuses it in files, and the operator reads a stored object without it
    # (the planner copes), so an upgrade does not turn running deployments invalid.
    admission_only: bool = False


def _gpu_requested(spec: Json) -> bool:
    acc = spec["accelerator"]
    if acc["type"] != "nvidia-gpu":
        return True
    return acc.get("resourceName", "nvidia.com/gpu") in spec["replicaResources"]["requests"]


def _fit_one_node(spec: Json, quantities: Json) -> bool:
    """Each of `quantities` that nodeAllocatable lists is no more than it (true without one)."""
    alloc = spec.get("nodeAllocatable")
    return alloc is None or all(name not in alloc or parse_quantity(value) <= parse_quantity(alloc[name])
                                for name, value in quantities.items())


def _requests_fit_one_node(spec: Json) -> bool:
    return _fit_one_node(spec, spec["replicaResources"]["requests"])


def _limits_alone_fit_one_node(spec: Json) -> bool:
    resources = spec["replicaResources"]
    return _fit_one_node(spec, {name: value for name, value in (resources.get("limits") or {}).items()
                                if name not in resources["requests"]})


def _extended(resource: str) -> bool:
    """Whether ``resource`` is an extended resource (a domain other than kubernetes.io, such as
    nvidia.com/gpu), which Kubernetes counts in whole units."""
    return "/" in resource and "kubernetes.io/" not in resource and not resource.startswith("requests.")


def _hugepages(resource: str) -> bool:
    return resource.startswith("hugepages-")


def overcommit_allowed(resource: str) -> bool:
    """Whether Kubernetes lets a pod's limit of ``resource`` exceed its request: not for
    extended resources nor hugepages."""
    return not _extended(resource) and not _hugepages(resource)


def _not_negative(quantities: Json) -> bool:
    return all(parse_quantity(v) >= 0 for v in quantities.values())


def _extended_whole(quantities: Json) -> bool:
    return all(not _extended(r) or parse_quantity(v) == parse_quantity(v).to_integral_value()
               for r, v in quantities.items())


def _container_resource_names(quantities: Json) -> bool:
    return all(_extended(r) or _hugepages(r) or r in ("cpu", "memory", "ephemeral-storage") for r in quantities)


NOT_NEGATIVE = "quantities may not be negative"
RESOURCE_NAME = ("a container resource is cpu, memory, ephemeral-storage, hugepages-<size> or a "
                 "qualified name outside kubernetes.io such as nvidia.com/gpu")
# The worker's own limit (hybridplace_worker.spec.MAX_ELEMENTS): torch's sizes overflow past it.
MAX_INPUT_ELEMENTS = 2**40
INPUT_ELEMENTS = ("an input's shape must have at most 1099511627776 (2^40) elements per sample (the product "
                  "of its dimensions): the worker cannot build a larger one")
EXTENDED_WHOLE = ("extended resources (such as nvidia.com/gpu) come in whole units: Kubernetes "
                  "refuses a fraction such as 0.5")


def _limits_at_least_requests(resources: Json) -> bool:
    requests = resources["requests"]
    return all(name not in requests or parse_quantity(requests[name]) <= parse_quantity(limit)
               for name, limit in (resources.get("limits") or {}).items())


def _extended_limits_equal_requests(resources: Json) -> bool:
    requests = resources["requests"]
    return all(name not in requests or overcommit_allowed(name)
               or parse_quantity(requests[name]) == parse_quantity(limit)
               for name, limit in (resources.get("limits") or {}).items())


_DNS1035_LABEL = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def _serving_name_fits(obj: Json) -> bool:
    name = str((obj.get("metadata") or {}).get("name") or "")
    return len(name) <= 63 and _DNS1035_LABEL.fullmatch(name) is not None


def _pool_name_fits(obj: Json) -> bool:
    name = str((obj.get("metadata") or {}).get("name") or "")
    return len(name) <= 63 and "." not in name


RULES: tuple[Rule, ...] = (
    # Names from which child names and label values derive (builders/names.py).
    Rule(
        "InferenceDeployment",
        "",
        "metadata.name must be at most 63 characters of lowercase letters, digits and '-', starting "
        "with a letter (no dots): it names the serving Service and labels the serving pods",
        _serving_name_fits,
        ".metadata.name",
    ),
    Rule(
        "HardwarePool",
        "",
        "metadata.name of a HardwarePool must be at most 63 characters with no dots: it is a label "
        "value on the pods placed there and part of their Service names",
        _pool_name_fits,
        ".metadata.name",
    ),
    # HardwarePool
    Rule(
        "HardwarePool",
        "spec",
        "a pool with accelerator.type nvidia-gpu must request its GPU resource "
        "(accelerator.resourceName, default nvidia.com/gpu) in replicaResources.requests",
        _gpu_requested,
        ".replicaResources.requests",
    ),
    Rule(
        "HardwarePool",
        "spec",
        "nodeAllocatable is required with price.perNodeHour: replicas are packed onto nodes by it",
        lambda s: "perNodeHour" not in s["price"] or "nodeAllocatable" in s,
        ".nodeAllocatable",
    ),
    Rule(
        "HardwarePool",
        "spec",
        "nodeAllocatable is required with power.perNodeWatts: replicas are packed onto nodes by it",
        lambda s: "perNodeWatts" not in s.get("power", {}) or "nodeAllocatable" in s,
        ".nodeAllocatable",
    ),
    Rule(
        "HardwarePool",
        "spec",
        "nodeAllocatable must list every resource that replicaResources.requests asks for",
        lambda s: "nodeAllocatable" not in s
        or all(r in s["nodeAllocatable"] for r in s["replicaResources"]["requests"]),
        ".nodeAllocatable",
    ),
    Rule(
        "HardwarePool",
        "spec",
        "one replica's requests must fit on one node: no request may exceed nodeAllocatable",
        _requests_fit_one_node,
        ".replicaResources.requests",
    ),
    Rule(
        "HardwarePool",
        "spec",
        "a limit given without its request is the request Kubernetes makes: it must fit on one node too "
        "(no more than nodeAllocatable)",
        _limits_alone_fit_one_node,
        ".replicaResources.limits",
    ),
    Rule("HardwarePool", "spec.replicaResources.requests", NOT_NEGATIVE, _not_negative),
    Rule("HardwarePool", "spec.replicaResources.requests", RESOURCE_NAME, _container_resource_names),
    Rule("HardwarePool", "spec.replicaResources.requests", EXTENDED_WHOLE, _extended_whole),
    Rule("HardwarePool", "spec.replicaResources.limits", NOT_NEGATIVE, _not_negative),
    Rule("HardwarePool", "spec.replicaResources.limits", RESOURCE_NAME, _container_resource_names),
    Rule("HardwarePool", "spec.replicaResources.limits", EXTENDED_WHOLE, _extended_whole),
    Rule("HardwarePool", "spec.nodeAllocatable", NOT_NEGATIVE, _not_negative),
    Rule(
        "HardwarePool",
        "spec.replicaResources",
        "a limit may not be below its request: each replicaResources.limits entry must be at least "
        "the same resource's replicaResources.requests",
        _limits_at_least_requests,
        ".limits",
    ),
    Rule(
        "HardwarePool",
        "spec.replicaResources",
        "extended resources (such as nvidia.com/gpu) and hugepages cannot be overcommitted: their "
        "replicaResources.limits must equal their requests (or be left out: the operator sets them)",
        _extended_limits_equal_requests,
        ".limits",
    ),
    Rule(
        "HardwarePool",
        "spec.accelerator",
        "accelerator.product is required when accelerator.type is nvidia-gpu (for example NVIDIA-T4)",
        lambda a: a["type"] != "nvidia-gpu" or "product" in a,
        ".product",
    ),
    Rule(
        "HardwarePool",
        "spec.price",
        "set exactly one of price.perNodeHour or price.perReplicaHour",
        lambda p: ("perNodeHour" in p) != ("perReplicaHour" in p),
    ),
    Rule(
        "HardwarePool",
        "spec.profileMaxAge",
        "profileMaxAge must be 0 (never), a number of seconds of at least 10, or one number and a unit "
        "such as 90s, 30m, 12h or 7d (at least 10s)",
        age_is_valid,
    ),
    Rule(
        "HardwarePool",
        "spec.tolerations[*]",
        "a toleration with operator Exists matches any value: value must be empty",
        lambda t: t.get("operator") != "Exists" or not t.get("value"),
        ".value",
    ),
    Rule(
        "HardwarePool",
        "spec.tolerations[*]",
        "a toleration without a key must have operator Exists (it then matches every taint)",
        lambda t: bool(t.get("key")) or t.get("operator") == "Exists",
        ".key",
    ),
    Rule(
        "HardwarePool",
        "spec.tolerations[*]",
        "tolerationSeconds is only for effect NoExecute",
        lambda t: "tolerationSeconds" not in t or t.get("effect") == "NoExecute",
        ".tolerationSeconds",
    ),
    Rule(
        "HardwarePool",
        "spec.power",
        "set at most one of power.perNodeWatts or power.perReplicaWatts",
        lambda p: not ("perNodeWatts" in p and "perReplicaWatts" in p),
    ),
    # ModelProfile
    Rule(
        "ModelProfile",
        "spec.model.digest",
        "model.digest is immutable: a model with a new digest needs a new ModelProfile",
        lambda new, old: new == old,
        transition=True,
    ),
    Rule(
        "ModelProfile",
        "spec.pool",
        "pool is immutable: a profile of another pool is another ModelProfile",
        lambda new, old: new == old,
        transition=True,
    ),
    Rule(
        "ModelProfile",
        "spec.points[*]",
        "latency percentiles must be ordered: p50Ms <= p95Ms <= p99Ms",
        lambda p: p["p50Ms"] <= p["p95Ms"] <= p["p99Ms"],
    ),
    # InferenceDeployment
    Rule(
        "InferenceDeployment",
        "spec.model",
        "set exactly one of model.builtin or model.uri",
        lambda m: ("builtin" in m) != ("uri" in m),
    ),
    Rule(
        "InferenceDeployment",
        "spec.model",
        "model.digest (sha256:<64 hex>) is required with model.uri",
        lambda m: "uri" not in m or "digest" in m,
        ".digest",
    ),
    Rule(
        "InferenceDeployment",
        "spec.model",
        "model.inputs is required with model.uri",
        lambda m: "uri" not in m or len(m.get("inputs", [])) > 0,
        ".inputs",
    ),
    Rule(
        "InferenceDeployment",
        "spec.model",
        "model.digest and model.inputs are only for model.uri: a built-in model knows its own",
        lambda m: "builtin" not in m or ("digest" not in m and "inputs" not in m),
    ),
    Rule(
        "InferenceDeployment",
        "spec.model.inputs[*]",
        INPUT_ELEMENTS,
        lambda i: math.prod(i["shape"]) <= MAX_INPUT_ELEMENTS,
        ".shape",
    ),
    Rule(
        "InferenceDeployment",
        "spec.load",
        "load.minReplicas must be less than or equal to load.maxReplicas",
        lambda load: load["minReplicas"] <= load["maxReplicas"],
        ".minReplicas",
    ),
    Rule(
        "InferenceDeployment",
        "spec.benchmark",
        "engine triton measures concurrency as clients of one model instance (perf_analyzer's sense), not as "
        "instances per replica, which is what a placement's concurrency sets: measure concurrency above 1 "
        "with engine torch",
        lambda b: b.get("engine", "torch") != "triton" or all(c == 1 for c in b.get("concurrency", [1])),
        ".concurrency",
        admission_only=True,  # a stored one is placed at concurrency 1 only (placement/from_api.py)
    ),
    Rule(
        "InferenceDeployment",
        "spec.benchmark.maxAge",
        "benchmark.maxAge must be 0 (never), a number of seconds of at least 10, or one number and a unit "
        "such as 90s, 30m, 12h or 7d (at least 10s)",
        age_is_valid,
    ),
    Rule(
        "InferenceDeployment",
        "spec.scaling",
        "scaling.scaleDownDelaySeconds must be at least scaling.intervalSeconds",
        lambda sc: "scaleDownDelaySeconds" not in sc or "intervalSeconds" not in sc
        or sc["scaleDownDelaySeconds"] >= sc["intervalSeconds"],
        ".scaleDownDelaySeconds",
    ),
)


def _nodes(obj: Any, parts: list[str], path: str) -> Iterator[tuple[str, Any]]:
    """Every (path, value) that `parts` reaches in `obj`; absent fields reach nothing."""
    if not parts:
        yield path, obj
        return
    head, rest = parts[0], parts[1:]
    if head.endswith("[*]"):
        items = obj.get(head[:-3]) if isinstance(obj, dict) else None
        for i, item in enumerate(items or []):
            yield from _nodes(item, rest, f"{path}.{head[:-3]}[{i}]")
    elif isinstance(obj, dict) and head in obj:
        yield from _nodes(obj[head], rest, f"{path}.{head}")


def rule_violations(kind: str, obj: Json, old: Json | None = None, stored: bool = False) -> list[tuple[str, str]]:
    """(field path, message) for every rule of `kind` that `obj` breaks.

    `obj` is the defaulted camelCase object; `old` the stored object on an update, if any;
    `stored`: the object is read back from the API server (admission-only rules are left out).
    """
    found: list[tuple[str, str]] = []
    for rule in RULES:
        if rule.kind != kind or (rule.transition and old is None) or (stored and rule.admission_only):
            continue
        parts = rule.at.split(".") if rule.at else []
        for path, node in _nodes(obj, parts, ""):
            if rule.transition:
                olds = dict(_nodes(old, parts, ""))
                if path not in olds or rule.check(node, olds[path]):
                    continue
            elif rule.check(node):
                continue
            found.append(((path + rule.field_path).lstrip("."), rule.message))
    return found
