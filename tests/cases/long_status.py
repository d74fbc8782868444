"""The longest statuses the operator can produce, and a check of a value against the CRDs'
maxLength and maxItems (read from crds/*.yaml): shared by the unit test and the test against
the real API server."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hybridplace.api import load_objects, parse_object
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint
from hybridplace.controller.plan import JobState, plan_inference_deployment

REPO = Path(__file__).resolve().parents[2]
LOADED = [x.obj for x in load_objects([REPO / "examples" / "hardwarepools.yaml", REPO / "examples" / "seed"])]
POOLS = {o.name: o for o in LOADED if o.kind == "HardwarePool"}
PROFILES = {o.spec.pool: o for o in LOADED if o.kind == "ModelProfile"}
SEED = next(o for o in LOADED if o.kind == "InferenceDeployment").to_dict()
NOW = "2026-11-23T18:00:00Z"
LONG = "x" * 10_000


def crd_status_schema(kind: str) -> dict[str, Any]:
    for path in sorted((REPO / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        if crd["spec"]["names"]["kind"] == kind:
            (version,) = crd["spec"]["versions"]
            return version["schema"]["openAPIV3Schema"]["properties"]["status"]
    raise KeyError(kind)


def violations(value: Any, schema: dict[str, Any], path: str = "status") -> list[str]:
    """Where `value` exceeds a maxLength or maxItems of the CRD schema."""
    found = []
    if isinstance(value, str) and len(value) > schema.get("maxLength", len(value)):
        found.append(f"{path}: {len(value)} > maxLength {schema['maxLength']}")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)):
            found.append(f"{path}: {len(value)} items > maxItems {schema['maxItems']}")
        for i, item in enumerate(value):
            found += violations(item, schema.get("items") or {}, f"{path}[{i}]")
    if isinstance(value, dict):
        for key, item in value.items():
            found += violations(item, (schema.get("properties") or {}).get(key) or {}, f"{path}.{key}")
    return found


def renamed_pool(template: str, name: str):
    body = POOLS[template].to_dict()
    body["metadata"]["name"] = name
    return parse_object(body)


def renamed_profile(template: str, pool: str):
    body = PROFILES[template].to_dict()
    body["metadata"]["name"] = f"mp-{pool}"[:253]
    body["spec"]["pool"] = pool
    return parse_object(body)


def longest_inference_deployment_status() -> dict[str, Any]:
    """70 pools with 63-character names (the longest a pool name may be): two measured, the
    rest failed with 10,000-character messages; an SLO no pool meets, so every pool is an
    alternative."""
    names = [f"p{i:03d}" + "p" * 59 for i in range(70)]
    pools = {n: renamed_pool("cpu-standard" if i % 2 else "gpu-t4", n) for i, n in enumerate(names)}
    profiles = {n: renamed_profile("cpu-standard" if i % 2 else "gpu-t4", n) for i, n in enumerate(names[:2])}
    jobs = {n: JobState(name="hp-bench-x", failed=True, reason="R" * 500, message=LONG) for n in names[2:]}
    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="uid-1", generation=1, name="n" * 63)
    body["spec"]["placement"] = {**body["spec"]["placement"], "pools": [], "mode": "Apply"}
    body["spec"]["slo"] = {"percentile": 99, "latencyMs": 0.001}
    plan = plan_inference_deployment(
        parse_object(body),
        pools=pools,
        profiles=profiles,
        jobs=jobs,
        children={},
        service_names=set(),
        settings=Settings(max_alternatives=64),
        now=NOW,
        fingerprint=deployment_fingerprint,
    )
    return plan.status
