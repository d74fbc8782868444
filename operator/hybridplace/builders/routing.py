"""A split's weighted route: the Gateway API HTTPRoute that sends each pool's Service its share.

Pure functions of the InferenceDeployment, the decision and the Gateway it attaches to. A plain
Service spreads requests evenly over every replica, so a split whose pools' replicas take
different loads needs weights per pool (docs/routing.md); the HTTPRoute carries them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..api.models import InferenceDeployment
from ..placement import Decision, route_weights
from . import names
from .serving import instance_labels, owner_reference

GATEWAY_GROUP = "gateway.networking.k8s.io"
GATEWAY_VERSION = "v1"
HTTP_ROUTE_API_VERSION = f"{GATEWAY_GROUP}/{GATEWAY_VERSION}"


@dataclass(frozen=True)
class GatewayTarget:
    """The Gateway a split's HTTPRoute attaches to, and how (listener, hostnames)."""

    namespace: str
    name: str
    section_name: str | None = None
    hostnames: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"Gateway {self.namespace}/{self.name}" + (f" (listener {self.section_name})"
                                                          if self.section_name else "")


@dataclass(frozen=True)
class Routing:
    """What the cluster offers a split: weighted routing through `gateway`, or (None) only an
    even spread a Service carries, and why (`why_not`). `problem`: a Gateway was named (by the
    spec or the operator's default) and cannot be used, which is worth a Warning."""

    gateway: GatewayTarget | None = None
    why_not: str = "no gateway is set (spec.serving.gateway, or the operator's --default-gateway)"
    problem: bool = False

    @property
    def weighted(self) -> bool:
        return self.gateway is not None


def gateway_target(infd: InferenceDeployment, default_gateway: str = "") -> tuple[GatewayTarget | None, str]:
    """The Gateway named by spec.serving.gateway, else the operator's default (namespace/name,
    or a name in the deployment's namespace); None when neither is set. With where it came from
    (for messages): the field, or the operator flag."""
    namespace = str(infd.metadata.namespace)
    ref = infd.spec.serving.gateway
    if ref is not None:
        return GatewayTarget(ref.namespace or namespace, ref.name, ref.section_name,
                             tuple(ref.hostnames or ())), "spec.serving.gateway"
    if default_gateway:
        ns, _, name = default_gateway.rpartition("/")
        return GatewayTarget(ns or namespace, name), "the operator's --default-gateway"
    return None, ""


def route_name(infd: InferenceDeployment) -> str:
    """The HTTPRoute's name: the InferenceDeployment's (as its umbrella Service's)."""
    return str(infd.metadata.name)


def build_http_route(*, infd: InferenceDeployment, decision: Decision, gateway: GatewayTarget) -> dict[str, Any]:
    """The HTTPRoute while a Gateway is set: for a split, one rule whose backendRefs are the
    per-pool Services, each weighted by its pool's share of the load (placement.route_weights);
    for one pool, the umbrella Service (every pool's pods: a pool switch's outgoing replicas
    too). On Triton's HTTP port. Clients of the Gateway keep their route whichever it is."""
    name = route_name(infd)
    parent: dict[str, Any] = {"group": GATEWAY_GROUP, "kind": "Gateway", "name": gateway.name,
                              "namespace": gateway.namespace}
    if gateway.section_name:
        parent["sectionName"] = gateway.section_name
    weights = route_weights(decision.placements) if len(decision.placements) > 1 else {}
    backends = [{"group": "", "kind": "Service", "name": names.serving_name(name, pool),
                 "port": infd.spec.serving.port, "weight": weight} for pool, weight in sorted(weights.items())]
    if not backends:
        backends = [{"group": "", "kind": "Service", "name": name, "port": infd.spec.serving.port, "weight": 1}]
    spec: dict[str, Any] = {
        "parentRefs": [parent],
        "rules": [{
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "backendRefs": backends,
        }],
    }
    if gateway.hostnames:
        spec["hostnames"] = list(gateway.hostnames)
    return {
        "apiVersion": HTTP_ROUTE_API_VERSION,
        "kind": "HTTPRoute",
        "metadata": {
            "name": name,
            "namespace": infd.metadata.namespace,
            "labels": dict(instance_labels(infd)),
            "ownerReferences": [owner_reference(infd)],
        },
        "spec": spec,
    }


def backend_services(route: dict[str, Any]) -> set[str]:
    """"Service/name" of each backend of an HTTPRoute the operator built."""
    return {f"Service/{b['name']}" for rule in route["spec"]["rules"] for b in rule["backendRefs"]}


def route_backends(route: dict[str, Any] | None) -> dict[str, Any]:
    """What of an HTTPRoute the operator sets and compares with what it wants: parents,
    hostnames and each backend's name, port and weight (the API server adds defaults)."""
    if not route:
        return {}
    spec = route.get("spec") or {}
    parents = [{k: p.get(k) for k in ("name", "namespace", "sectionName")} for p in spec.get("parentRefs") or []]
    backends = [(b.get("name"), b.get("port"), b.get("weight", 1))
                for rule in spec.get("rules") or [] for b in rule.get("backendRefs") or []]
    return {"parents": parents, "hostnames": sorted(spec.get("hostnames") or []), "backends": sorted(backends)}
