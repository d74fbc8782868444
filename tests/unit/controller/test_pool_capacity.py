"""A pool's replicas per node and capacity count what a pod really requests: Kubernetes takes a
resource's limit as its request when only the limit is given, so a memory limit without a
memory request still packs replicas by memory."""

from __future__ import annotations

from cases.api_objects import hardware_pool
from hybridplace.api import parse_object
from hybridplace.controller.pools import NodeInfo, fits_on, plan_pool_status
from hybridplace.placement.from_api import replicas_per_node

NOW = "2026-12-01T00:00:00Z"


def _pool(requests, limits=None, allocatable=None):
    obj = hardware_pool("cpu-mem")
    obj["spec"]["accelerator"] = {"type": "cpu"}
    obj["spec"]["nodeSelector"] = {"pool": "cpu-mem"}
    obj["spec"]["replicaResources"] = {"requests": requests, **({"limits": limits} if limits else {})}
    obj["spec"]["nodeAllocatable"] = allocatable or {"cpu": "16", "memory": "32Gi"}
    return parse_object(obj)


def _node(name, allocatable):
    return NodeInfo.from_body({
        "metadata": {"name": name, "labels": {"pool": "cpu-mem"}},
        "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": "True"}]}})


def test_a_limit_without_a_request_packs_as_a_request():
    pool = _pool({"cpu": "2"}, limits={"memory": "16Gi"})
    assert replicas_per_node(pool) == 2  # memory binds (32Gi / 16Gi), not cpu (16 / 2)
    assert fits_on(pool, _node("n1", {"cpu": "16", "memory": "32Gi"})) == 2
    status = plan_pool_status(pool, [_node("n1", {"cpu": "16", "memory": "32Gi"}),
                                     _node("n2", {"cpu": "16", "memory": "48Gi"})], 0, NOW)
    assert (status["replicasPerNode"], status["capacityReplicas"]) == (2, 5)


def test_a_request_wins_over_its_own_limit():
    pool = _pool({"cpu": "2", "memory": "8Gi"}, limits={"memory": "16Gi"})
    assert replicas_per_node(pool) == 4  # requests pack: 32Gi / 8Gi
    assert fits_on(pool, _node("n1", {"cpu": "16", "memory": "32Gi"})) == 4


def test_a_node_without_a_limited_resource_holds_none():
    pool = _pool({"cpu": "2"}, limits={"example.com/fpga": 1},
                 allocatable={"cpu": "16", "memory": "32Gi", "example.com/fpga": 2})
    assert fits_on(pool, _node("n1", {"cpu": "16", "memory": "32Gi"})) == 0
    assert fits_on(pool, _node("n2", {"cpu": "16", "example.com/fpga": "2"})) == 2
