"""The CRDs against the real API server: examples apply, bad objects are refused naming the
field (the same table the Python model refuses), status survives, printer columns show it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from cases.api_objects import BAD_CASES, URI_MODEL, VALID

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[3]


def run(kubectl, *args, stdin=None, check=True):
    return subprocess.run([*kubectl, *args], input=stdin, capture_output=True, text=True, timeout=60,
                          check=check)


def apply(kubectl, namespace, obj, check=True):
    """kubectl apply as a user would: strict field validation, server-side dry run off."""
    return run(kubectl, "apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj), check=check)


def test_every_example_applies_cleanly(crds, namespace):
    for path in sorted((REPO / "examples").rglob("*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        for doc in docs:
            if doc["kind"] != "HardwarePool":
                doc["metadata"]["namespace"] = namespace
            result = apply(crds, namespace, doc, check=False)
            assert result.returncode == 0, f"{path}: {result.stderr}"


def test_kubectl_explain_teaches_the_slo(crds):
    out = run(crds, "explain", "infd.spec.slo").stdout
    assert "latencyMs" in out and "percentile" in out
    assert "The latency objective" in out
    assert "milliseconds" in run(crds, "explain", "infd.spec.slo.latencyMs").stdout


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_bad_object_is_refused_naming_the_field(crds, namespace, case):
    obj = case.object(f"bad-{case.id}"[:50])
    result = apply(crds, namespace, obj, check=False)
    assert result.returncode != 0, f"the API server accepted {case.id}"
    assert case.field in result.stderr, result.stderr


def test_an_input_of_exactly_the_workers_limit_is_accepted(crds, namespace):
    """The elements rule refuses more than 2^40 elements per sample, not 2^40 itself, over all 8
    dimensions the schema allows (the rule multiplies them as doubles: no int64 overflow)."""
    from hybridplace.api.validate import parse_object

    obj = VALID["InferenceDeployment"]("input-at-limit")
    obj["spec"]["model"] = {**URI_MODEL, "inputs": [{"name": "x", "shape": [2**10, 2**10, 2**10, 2**10, 1, 1, 1, 1]}]}
    parse_object(obj)  # the Python model agrees
    result = apply(crds, namespace, obj, check=False)
    assert result.returncode == 0, result.stderr


def test_profile_digest_and_pool_are_immutable(crds, namespace):
    profile = VALID["ModelProfile"]("immutable")
    apply(crds, namespace, profile)
    profile["spec"]["model"]["digest"] = "sha256:" + "cd" * 32
    result = apply(crds, namespace, profile, check=False)
    assert result.returncode != 0
    assert "spec.model.digest" in result.stderr and "immutable" in result.stderr


def table(output: str) -> list[dict[str, str]]:
    """Rows of a kubectl table, cut at the header's column starts (empty cells stay empty)."""
    header, *lines = output.rstrip("\n").splitlines()
    names = header.split()
    starts = [header.index(n) for n in names]
    ends = starts[1:] + [None]
    return [{n: line[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)} for line in lines]


def _patch_status(kubectl, namespace, kind, name, status):
    scope = [] if kind == "hwpool" else ["-n", namespace]
    run(kubectl, "patch", kind, name, *scope, "--subresource=status", "--type=merge",
        "-p", json.dumps({"status": status}))
    return json.loads(run(kubectl, "get", kind, name, *scope, "-o", "json").stdout)["status"]


STATUS = {
    "infd": {
        "observedGeneration": 1,
        "modelDigest": "sha256:" + "ab" * 32,
        "conditions": [{"type": "Ready", "status": "True", "reason": "ReplicasAvailable",
                        "message": "ok", "observedGeneration": 1,
                        "lastTransitionTime": "2026-11-23T18:00:00Z"}],
        "profiles": [{"pool": "gpu-t4", "state": "Measured", "name": "mp-x"}],
        "decision": {"feasible": True, "objective": "cost",
                     "placements": [{"pool": "gpu-t4", "replicas": 2, "batchSize": 16, "shareRps": 300.0,
                                     "predictedLatencyMs": 21.5, "utilisation": 0.61,
                                     "costPerHour": 1.504, "watts": 300.0}],
                     "totalCostPerHour": 1.504, "totalWatts": 300.0,
                     "alternatives": [{"pool": "cpu-standard", "batchSize": 4, "replicas": 9,
                                       "predictedLatencyMs": 40.1, "costPerHour": 1.81,
                                       "reason": "MoreExpensive", "message": "costs 0.31 USD/h more"}],
                     "decidedAt": "2026-11-23T18:00:00Z"},
        "summary": {"pools": "gpu-t4:2", "replicas": 2, "predictedLatencyMs": 21.5, "slo": "p95<=50ms",
                    "costPerHour": 1.504},
        "observed": {"requestsPerSecond": 118, "latencyMs": 31.5, "queueMs": 2.5, "percentile": 95,
                     "window": "30s", "time": "2026-11-30T01:00:00Z"},
        "scaling": {"mode": "Operator", "loadRps": 118, "action": "up",
                    "message": "observed 118 requests/s (was planned for 60)", "lastScaleTime": "2026-11-30T01:00:00Z"},
    },
    "hwpool": {"observedGeneration": 1, "nodes": 2, "readyNodes": 2, "replicasPerNode": 1,
               "capacityReplicas": 2, "freeReplicas": 1},
    "mprof": {"observedGeneration": 1, "pointCount": 2},
}


def test_status_survives_and_printer_columns_show_it(crds, namespace):
    objects = {"infd": VALID["InferenceDeployment"]("shown"), "hwpool": VALID["HardwarePool"](f"pool-{namespace}"),
               "mprof": VALID["ModelProfile"]("shown")}
    for kind, obj in objects.items():
        apply(crds, namespace, obj)
        stored = _patch_status(crds, namespace, kind, obj["metadata"]["name"], STATUS[kind])
        assert stored == STATUS[kind], f"{kind}: the API server pruned or changed the status"
    try:
        (infd,) = table(run(crds, "get", "infd", "shown", "-n", namespace).stdout)
        assert infd == {"NAME": "shown", "POOLS": "gpu-t4:2", "REPLICAS": "2", "PREDICTED-MS": "21.5",
                        "SLO": "p95<=50ms", "COST/H": "1.504", "OBSERVED-RPS": "118", "OBSERVED-MS": "31.5",
                        "READY": "True", "AGE": infd["AGE"]}
        (pool,) = [r for r in table(run(crds, "get", "hwpool").stdout) if r["NAME"] == f"pool-{namespace}"]
        assert pool == {"NAME": f"pool-{namespace}", "ACCELERATOR": "nvidia-gpu", "PRODUCT": "NVIDIA-T4",
                        "NODE-PRICE": "0.752", "REPLICA-PRICE": "", "READY-NODES": "2", "CAPACITY": "2",
                        "FREE": "1", "AGE": pool["AGE"]}
        (profile,) = table(run(crds, "get", "mprof", "shown", "-n", namespace).stdout)
        assert profile == {"NAME": "shown", "MODEL": "builtin:mlp", "POOL": "cpu-standard", "POINTS": "2",
                           "PROVENANCE": "imported", "MEASURED-AT": "", "AGE": profile["AGE"]}
        together = run(crds, "get", "infd,hwpool,mprof", "-n", namespace).stdout
        assert "inferencedeployment.hybridplace.io/shown" in together
        assert "modelprofile.hybridplace.io/shown" in together
    finally:
        run(crds, "delete", "hwpool", f"pool-{namespace}", check=False)
