"""Fuzz through the real API server and the real operator: hypothesis breaks valid objects of each
kind (InferenceDeployment, HardwarePool, ModelProfile; HP_FUZZ_EXAMPLES, default 210, created
and as many put over existing objects) and sends them as `kubectl apply` does (strict field
validation). Each is either refused with the broken field named in the message, or accepted and
then given a status by the operator (a condition for the InferenceDeployment, the pool's Ready,
the profile's Valid) for its last generation: never stuck. The operator runs in its own process
and must neither exit nor log a traceback, and objects it does not own in the same namespace are
never touched.

Accepted objects can do nothing costly: InferenceDeployments name only pools that do not exist
(never "all pools"), pools select no node, and profiles are for such pools."""

from __future__ import annotations

import collections
import copy
import itertools
import os
import time

import pytest
from cases.api_objects import VALID
from e2e_helpers import start_operator_process
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

EXAMPLES = int(os.environ.get("HP_FUZZ_EXAMPLES", "210"))
NOWHERE = "fuzz-nowhere"
STRICT = [("fieldValidation", "Strict")]  # as kubectl apply validates
PLURAL = {"InferenceDeployment": "inferencedeployments", "HardwarePool": "hardwarepools",
          "ModelProfile": "modelprofiles"}
# Never dropped, set to null (which the API server reads as unset) or to a list (`pools: []`):
# each would widen what an accepted object does (all pools, every node).
KEEP = {"InferenceDeployment": {("spec", "placement"), ("spec", "placement", "pools")},
        "HardwarePool": {("spec", "nodeSelector")}, "ModelProfile": set()}


def base(kind: str, name: str, full: bool) -> dict:
    """A valid object of `kind`: the minimal one, or (`full`) one with every optional field set,
    so that every field can be broken."""
    obj = copy.deepcopy(VALID[kind](name))
    spec = obj["spec"]
    if kind == "InferenceDeployment":
        spec["placement"] = {"pools": [NOWHERE]}
        if full:
            spec["model"] = {"uri": "https://models.example.com/m.pt", "format": "torchscript",
                             "digest": "sha256:" + "ab" * 32,
                             "inputs": [{"name": "x", "shape": [3, 8], "dtype": "float32"}]}
            spec["scaling"] = {"mode": "Operator", "intervalSeconds": 15, "scaleDownDelaySeconds": 300,
                               "minLoadRps": 1}
            spec["placement"].update(objective="cost", allowHybrid=True, mode="Apply", headroom=0.3)
            spec["benchmark"] = {"batchSizes": [1, 4], "concurrency": [1, 2], "durationSeconds": 1,
                                 "budgetSeconds": 60, "engine": "torch", "search": "Adaptive", "budgetPoints": 8,
                                 "budgetSearchSeconds": 30}
            spec["serving"] = {"image": "registry.example/triton:1", "port": 8000, "maxQueueDelayMs": 2}
    elif kind == "HardwarePool":
        spec["nodeSelector"] = {"hybridplace.io/pool": NOWHERE}
        if full:
            spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "present",
                                    "effect": "NoSchedule"}]
            spec["replicaResources"]["limits"] = {"memory": "16Gi", "nvidia.com/gpu": 1}
            spec["power"] = {"perNodeWatts": 150}
            spec["maxReplicas"] = 8
            spec["allowedNamespaces"] = ["team-a"]
    else:
        spec["pool"] = NOWHERE
        if full:
            spec["model"]["format"] = "torchscript"
            spec.update(engine="torch", workerVersion="0.1.0", measuredAt="2026-11-30T00:00:00Z",
                        source="fuzz", search="Adaptive", skippedUnlisted=2,
                        device={"accelerator": "cpu", "name": "Test CPU"},
                        skipped=[{"batchSize": 64, "concurrency": 1, "reason": "BeyondSLO"}])
            spec["points"][0].update(throughputRps=900.0, throughputIps=900.0, spread=0.02, stable=True)
    return obj


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key), value
            yield from _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield (*prefix, i), value
            yield from _paths(value, (*prefix, i))


def _parent(obj, path):
    for part in path[:-1]:
        obj = obj[part]
    return obj


HOSTILE_NUMBERS = [-1, 0, 0.5, -0.0001, 1e308, -1e308, 2**63, 10**30]
HOSTILE_STRINGS = ["", " ", "x" * 100_000, "\u0000", "../../etc/passwd", "é" * 300, "a b", "UPPER", "-a-",
                   "1e3", "true", "${HOME}", "sha256:" + "g" * 64]


@st.composite
def broken(draw, kind: str, name: str, full: bool | None = None) -> tuple[dict, list[str]]:
    """A valid object of `kind` broken in one place; and the names along the broken field's path
    (leaf last), one of which the refusal must name (a rule across fields names its parent)."""
    obj = base(kind, name, full=draw(st.booleans()) if full is None else full)
    paths = [(("spec", *p), v) for p, v in _paths(obj["spec"])]
    how = draw(st.sampled_from(["retype", "number", "string", "list", "unknown-field", "drop", "name"]))
    if how == "name":
        obj["metadata"]["name"] = draw(st.sampled_from(
            [f"Fuzz-{name}", f"{name}.v2", f"{name}-" + "a" * 300, f"-{name}", f"{name}_x", f"{name}-" + "b" * 60]))
        return obj, ["name"]
    if how == "unknown-field":
        parents = [("spec",), *[p for p, v in paths if isinstance(v, dict)]]
        parent = draw(st.sampled_from(parents))
        field = draw(st.from_regex(r"zz[a-z]{1,8}", fullmatch=True))
        _parent(obj, (*parent, field))[field] = draw(st.sampled_from([1, "x", {"a": 1}, [1], None]))
        return obj, [*_named(parent), field]
    if how == "drop":
        choices = [p for p, _ in paths if isinstance(p[-1], str) and p not in KEEP[kind]]
        path = draw(st.sampled_from(choices))
        del _parent(obj, path)[path[-1]]
        return obj, _named(path)
    kinds = {"number": (int, float), "string": (str,), "list": (list,), "retype": (object,)}[how]
    choices = [(p, v) for p, v in paths if isinstance(v, kinds) and not isinstance(v, bool)] or paths
    path, value = draw(st.sampled_from(choices))
    if how == "number":
        new = draw(st.sampled_from(HOSTILE_NUMBERS))
    elif how == "string":
        new = draw(st.sampled_from(HOSTILE_STRINGS))
    elif how == "list":
        new = draw(st.sampled_from([[], [None], ["x"] * 1000, [[1]], [{"a": 1}]]))
    else:  # a value of another type
        new = draw(st.sampled_from(["x", 1, 1.5, True, None, {"zz": 1}, [1]]))
        if type(new) is type(value):
            new = {"zz": 1} if not isinstance(value, dict) else "x"
    if any(path[:len(k)] == k for k in KEEP[kind]) and (new is None or isinstance(new, list)):
        new = "x"  # null is unset and [] allows all pools: keep the object harmless
    _parent(obj, path)[path[-1]] = new
    return obj, _named(path)


def _named(path: tuple) -> list[str]:
    return [p for p in path if isinstance(p, str) and p != "spec"] or ["spec"]


def _path(kind: str, namespace: str) -> str:
    if kind == "HardwarePool":
        return "/apis/hybridplace.io/v1alpha1/hardwarepools"
    return f"/apis/hybridplace.io/v1alpha1/namespaces/{namespace}/{PLURAL[kind]}"


def test_malformed_objects_are_refused_naming_the_field_or_get_a_status(kubeconfig, namespace, crds, kubectl,
                                                                      tmp_path, wait_until):
    from hybridplace.controller.kube import ApiError, Kube, load_client

    kube = Kube(load_client(kubeconfig))
    kubectl("create", "deployment", "bystander", "--image=registry.example/app:1")
    kubectl("create", "service", "clusterip", "bystander", "--tcp=80:8080")
    kubectl("create", "configmap", "bystander", "--from-literal=a=b")
    untouched = {kind: kubectl.json(kind, "bystander")["metadata"]["resourceVersion"]
                 for kind in ("deployment", "service", "configmap")}
    log = tmp_path / "operator.log"
    process = start_operator_process(kubeconfig, log)
    suffix = namespace[-6:]
    counter = itertools.count()
    accepted: list[tuple[str, dict]] = []
    refused: collections.Counter = collections.Counter()  # by (kind, update)
    tried: collections.Counter = collections.Counter()
    pools: list[str] = []
    try:
        def send(kind: str, obj: dict, fields: list[str], update: bool) -> dict | None:
            """POST (or PUT over the current object, as `kubectl apply` to an existing one);
            the object as stored, or None when refused with the broken field named."""
            tried[kind, update] += 1
            if kind != "HardwarePool":
                obj["metadata"]["namespace"] = namespace
            elif not update:
                pools.append(obj["metadata"]["name"])
            for _ in range(5):  # a status write by the operator between GET and PUT: 409, again
                try:
                    if not update:
                        return kube.request("POST", _path(kind, namespace), obj, query=STRICT)
                    meta = obj["metadata"]
                    current = kube.get(kind, meta.get("namespace"), meta["name"])
                    meta["resourceVersion"] = current["metadata"]["resourceVersion"]
                    return kube.request("PUT", f"{_path(kind, namespace)}/{meta['name']}", obj, query=STRICT)
                except ApiError as err:
                    if update and err.status == 409:
                        continue
                    assert err.status in (400, 422), (err, fields)
                    assert any(f in err.message for f in fields), \
                        f"{kind}: broke {'.'.join(fields)}; the API server said {err.message[:300]}"
                    refused[kind, update] += 1
                    return None
            raise AssertionError(f"{kind} {obj['metadata']['name']}: 409 five times in a row")

        def fuzz(kind: str, targets: dict[bool, str] | None):
            """Create broken objects (targets None), or put broken specs over `targets` (the
            minimal and the full object of `kind`, by `full`)."""
            # Random locally, derandomized under CI=true (tests/conftest.py's profile "ci").
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
            @given(data=st.data())
            def one(data):
                if targets is None:
                    obj, fields = data.draw(broken(kind, f"fz{next(counter)}-{suffix}"))
                else:
                    full = data.draw(st.booleans())
                    obj, fields = data.draw(broken(kind, targets[full], full))
                    assume(obj["metadata"]["name"] == targets[full])  # a rename is a create
                stored = send(kind, obj, fields, update=targets is not None)
                if stored is not None:
                    accepted.append((kind, stored))

            return one

        for kind in sorted(PLURAL):
            targets = {}
            for full in (False, True):  # the unbroken objects are accepted: a refusal is the break's
                obj = base(kind, f"fz{next(counter)}-{suffix}", full)
                accepted.append((kind, send(kind, obj, [], update=False)))
                targets[full] = obj["metadata"]["name"]
            fuzz(kind, None)()
            fuzz(kind, targets)()
        assert process.poll() is None, log.read_text()[-3000:]

        latest = {}  # an object updated many times needs a status for its last generation only
        for kind, obj in accepted:
            latest[kind, obj["metadata"].get("namespace"), obj["metadata"]["name"]] = obj
        accepted = [(kind, obj) for (kind, _, _), obj in latest.items()]

        def status_of(kind: str, obj: dict) -> dict | None:
            meta = obj["metadata"]
            found = kube.get(kind, meta.get("namespace"), meta["name"])
            status = (found or {}).get("status") or {}
            conds = status.get("conditions") or []
            if status.get("observedGeneration") != meta["generation"] or not conds:
                return None
            return status

        started = time.monotonic()
        reasons: collections.Counter = collections.Counter()
        for kind, obj in accepted:
            status = wait_until(lambda kind=kind, obj=obj: status_of(kind, obj),
                                timeout=max(5.0, 120 - (time.monotonic() - started)),
                                what=f"a status for {kind} {obj['metadata']['name']}: {obj.get('spec')!r:.500}")
            for cond in status["conditions"]:  # an object the operator cannot use names why
                if cond["reason"] == "InvalidSpec":
                    assert "spec." in cond["message"], cond
            reasons[kind, tuple(sorted({c["reason"] for c in status["conditions"]}))] += 1
        assert process.poll() is None, log.read_text()[-3000:]
    finally:
        for name in pools:
            kube.delete("HardwarePool", None, name)
        process.terminate()
        process.wait(timeout=30)
    print(f"fuzz: refused (kind, update): {dict(refused)}; {len(accepted)} objects accepted, each given a status "
          f"for its last generation: {dict(reasons)}")
    for kind in PLURAL:  # at least EXAMPLES broken objects of each kind, created and put over one
        for update in (False, True):
            assert tried[kind, update] >= EXAMPLES, (kind, update, tried)
            assert refused[kind, update] >= EXAMPLES // 2, (kind, update, refused)  # the breaks mostly break
    after = {kind: kubectl.json(kind, "bystander")["metadata"]["resourceVersion"] for kind in untouched}
    assert after == untouched
    assert kubectl.json("jobs")["items"] == []
    assert [d["metadata"]["name"] for d in kubectl.json("deployments")["items"]] == ["bystander"]
    assert "Traceback" not in log.read_text(), log.read_text()[-3000:]
