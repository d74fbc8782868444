"""A HardwarePool's status from the nodes it selects: a pure function."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .. import conditions as c
from ..api.fit import fit_status
from ..api.models import HardwarePool
from ..api.quantity import is_quantity, parse_quantity
from ..placement.from_api import replicas_per_node


@dataclass(frozen=True)
class NodeInfo:
    name: str
    labels: dict[str, str] = field(default_factory=dict)
    ready: bool = False
    unschedulable: bool = False
    allocatable: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> NodeInfo:
        meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status", {})
        ready = any(
            x.get("type") == "Ready" and x.get("status") == "True" for x in status.get("conditions") or []
        )
        return cls(
            name=meta.get("name", ""),
            labels=dict(meta.get("labels") or {}),
            ready=ready,
            unschedulable=bool(spec.get("unschedulable")),
            allocatable=dict(status.get("allocatable") or {}),
        )


def selects(pool: HardwarePool, node: NodeInfo) -> bool:
    return all(node.labels.get(k) == v for k, v in pool.spec.node_selector.items())


def node_types(pool: HardwarePool, nodes: list[NodeInfo]) -> tuple[frozenset[str], frozenset[str]]:
    """The instance types and GPU products (node labels) of `pool`'s ready, schedulable nodes."""
    ready = [n for n in nodes if n.ready and not n.unschedulable and selects(pool, n)]
    return (frozenset(v for n in ready if (v := n.labels.get("node.kubernetes.io/instance-type"))),
            frozenset(v for n in ready if (v := n.labels.get("nvidia.com/gpu.product"))))


def fits_on(pool: HardwarePool, node: NodeInfo) -> int:
    """Replicas of `pool` that the node's own allocatable holds."""
    fits = []
    for name, value in pool.spec.replica_resources.effective_requests.items():
        asked = parse_quantity(value)
        if asked <= 0:
            continue
        have = node.allocatable.get(name)
        if have is None or not is_quantity(have):
            return 0
        fits.append(math.floor(parse_quantity(have) / asked))
    return min(fits) if fits else 0


def plan_pool_status(
    pool: HardwarePool, nodes: list[NodeInfo], placed_replicas: int, now: str
) -> dict[str, Any]:
    """status for `pool`: its nodes, ready nodes, capacity in replicas and what is left of it
    after the `placed_replicas` hybridplace's serving Deployments hold there."""
    mine = [n for n in nodes if selects(pool, n)]
    ready = [n for n in mine if n.ready and not n.unschedulable]
    capacity = sum(fits_on(pool, n) for n in ready)
    if pool.spec.node_allocatable:
        per_node = replicas_per_node(pool)
    else:
        per_node = min((fits_on(pool, n) for n in ready), default=0)
    if ready:
        cond = (c.TRUE, "NodesReady",
                f"{len(ready)} of {len(mine)} selected nodes are ready; room for {capacity} replicas")
    elif mine:
        cond = (c.FALSE, "NoReadyNodes", f"none of the {len(mine)} selected nodes is ready and schedulable")
    else:
        selector = ",".join(f"{k}={v}" for k, v in sorted(pool.spec.node_selector.items()))
        cond = (c.FALSE, "NoMatchingNodes", f"no node matches nodeSelector {selector}")
    old = pool.status.to_dict().get("conditions", []) if pool.status else []
    conditions = c.set_condition(list(old), c.condition(c.READY, *cond, pool.metadata.generation, now))
    return fit_status("HardwarePool", {
        "observedGeneration": pool.metadata.generation,
        "nodes": len(mine),
        "readyNodes": len(ready),
        "replicasPerNode": per_node,
        "capacityReplicas": capacity,
        "freeReplicas": max(capacity - placed_replicas, 0),
        "conditions": conditions,
    })
