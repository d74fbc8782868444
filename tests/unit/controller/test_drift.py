"""Drift restored: the fingerprint sees hand edits to what decides what a serving pod may do
(security contexts, host namespaces, service account, volumes, environment), ignores what the
API server defaults, and a restored edit is announced; a new decision is not called an edit."""

from __future__ import annotations

import copy

import pytest
from cases.long_status import POOLS, PROFILES, SEED
from cases.mock_api import MockApi, Reply
from hybridplace.api import builtin_digest, parse_object
from hybridplace.builders import names
from hybridplace.builders.serving import build_serving_deployment
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint, template_replacement
from hybridplace.controller.plan import ChildState, plan_inference_deployment
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue


def desired():
    body = copy.deepcopy(SEED)
    body["metadata"].update(namespace="ns", uid="u")
    return build_serving_deployment(
        infd=parse_object(body),
        digest=builtin_digest("mlp"),
        pool=POOLS["cpu-standard"],
        replicas=2,
        batch_size=4,
        image="img",
    )


def pod(obj):
    return obj["spec"]["template"]["spec"]


def as_stored(obj):
    """`obj` as the API server returns it: defaults filled in, false booleans left out."""
    live = copy.deepcopy(obj)
    spec = pod(live)
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        spec.pop(key)
    spec.update(
        dnsPolicy="ClusterFirst",
        restartPolicy="Always",
        schedulerName="default-scheduler",
        terminationGracePeriodSeconds=30,
        serviceAccount="default",
    )
    for container in spec["containers"]:
        container.update(
            imagePullPolicy="IfNotPresent",
            terminationMessagePath="/dev/termination-log",
            terminationMessagePolicy="File",
        )
    return live


EDITS = {
    "privileged": lambda p: p["containers"][0]["securityContext"].update(privileged=True),
    "capabilities": lambda p: p["containers"][0]["securityContext"].update(capabilities={"add": ["SYS_ADMIN"]}),
    "hostNetwork": lambda p: p.update(hostNetwork=True),
    "hostPID": lambda p: p.update(hostPID=True),
    "serviceAccount": lambda p: p.update(serviceAccountName="admin"),
    "token": lambda p: p.update(automountServiceAccountToken=True),
    "runAsRoot": lambda p: p["securityContext"].update(runAsUser=0, runAsNonRoot=False),
    "hostPath": lambda p: p["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    "mount": lambda p: p["containers"][0]["volumeMounts"].append({"name": "host", "mountPath": "/host"}),
    "env": lambda p: p["containers"][0].setdefault("env", []).append({"name": "X", "value": "1"}),
    "sidecar": lambda p: p["containers"].append({"name": "miner", "image": "evil"}),
    "init": lambda p: p.setdefault("initContainers", []).append({"name": "init", "image": "evil"}),
    # A node selector key added by hand moves the pods: server-side apply keeps what another
    # manager added to a map, so only the merge patch can take it out again.
    "nodeSelector": lambda p: p.setdefault("nodeSelector", {}).update({"topology.kubernetes.io/zone": "a"}),
}


def test_what_the_api_server_defaults_is_not_drift():
    assert deployment_fingerprint(as_stored(desired())) == deployment_fingerprint(desired())


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_a_hand_edit_of_a_security_field_is_drift(edit):
    live = as_stored(desired())
    EDITS[edit](pod(live))
    assert deployment_fingerprint(live) != deployment_fingerprint(desired())


@pytest.mark.parametrize("edit", sorted(EDITS))
def test_the_template_replacement_undoes_the_edit(edit):
    live = as_stored(desired())
    EDITS[edit](pod(live))
    patch = template_replacement(desired(), live)["spec"]["template"]["spec"]
    merged = copy.deepcopy(live)
    for key, value in patch.items():  # JSON merge patch, one level deep and then securityContext
        if key in ("securityContext", "nodeSelector"):
            ctx = pod(merged).setdefault(key, {})
            for k, v in value.items():
                ctx.pop(k, None) if v is None else ctx.__setitem__(k, v)
        elif value is None:
            pod(merged).pop(key, None)
        else:
            pod(merged)[key] = value
    assert deployment_fingerprint(merged) == deployment_fingerprint(desired())


def test_a_label_added_by_hand_to_the_pod_template_is_not_drift_and_one_of_ours_removed_is():
    """Server-side apply never removes a label another manager added: counting one (say
    app.kubernetes.io/part-of) as drift re-applied the Deployment and warned DriftRestored on
    every reconcile, forever. Only the labels the operator sets are compared."""
    live = as_stored(desired())
    live["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/part-of"] = "shop"
    live["spec"]["template"]["metadata"]["labels"]["hybridplace.io/team"] = "a"
    assert deployment_fingerprint(live) == deployment_fingerprint(desired())
    del live["spec"]["template"]["metadata"]["labels"][names.LABEL_POOL]
    assert deployment_fingerprint(live) != deployment_fingerprint(desired())
    from hybridplace.controller.fingerprint import TEMPLATE_LABELS

    assert set(desired()["spec"]["template"]["metadata"]["labels"]) == set(TEMPLATE_LABELS)  # every one it sets


def _plan(children):
    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="u", generation=1, namespace="ns")
    body["spec"]["placement"] = {**body["spec"]["placement"], "mode": "Apply", "pools": ["cpu-standard"]}
    return plan_inference_deployment(
        parse_object(body),
        pools=POOLS,
        profiles=PROFILES,
        jobs={},
        children=children,
        service_names={"seed"},
        settings=Settings(),
        now="2026-11-23T18:00:00Z",
        fingerprint=deployment_fingerprint,
    )


def test_a_restored_edit_is_announced_but_a_new_decision_is_not_called_one():
    first = _plan({})
    (dep,) = first.deployments
    applied = dep["metadata"]["annotations"][names.ANNOTATION_FINGERPRINT]
    assert applied == deployment_fingerprint(dep)
    edited = ChildState(
        dep["metadata"]["name"],
        "cpu-standard",
        "edited",
        dep["spec"]["replicas"],
        0,
        owned=True,
        applied_fingerprint=applied,
    )
    again = _plan({"cpu-standard": edited})
    assert [d["metadata"]["name"] for d in again.deployments] == [dep["metadata"]["name"]]
    assert [e.reason for e in again.events if e.reason == "DriftRestored"] == ["DriftRestored"]
    older = ChildState(
        dep["metadata"]["name"], "cpu-standard", "old", 1, 0, owned=True, applied_fingerprint="of-an-older-decision"
    )
    assert not [e for e in _plan({"cpu-standard": older}).events if e.reason == "DriftRestored"]


def test_converge_replaces_the_template_when_apply_leaves_a_hand_edit():
    want = desired()
    left = as_stored(want)
    pod(left)["containers"][0]["securityContext"]["capabilities"] = {"add": ["SYS_ADMIN"], "drop": ["ALL"]}
    pod(left)["volumes"].append({"name": "host", "hostPath": {"path": "/"}})
    path = "/apis/apps/v1/namespaces/ns/deployments/" + want["metadata"]["name"]
    with MockApi() as api:
        api.on("PATCH", path, Reply(200, left), Reply(200, as_stored(want)))
        rec = Reconciler(api.kube(), ClusterState(), Settings(workers=1), WorkQueue())
        result = rec._converge(want)
        apply, merge = api.calls("PATCH", path)
    assert deployment_fingerprint(result) == deployment_fingerprint(want)
    assert [v["name"] for v in pod(merge)["volumes"]] == [v["name"] for v in pod(want)["volumes"]]
    assert pod(apply)["containers"][0]["securityContext"]["privileged"] is False


def test_a_service_changed_by_hand_is_put_back_and_one_as_built_is_left_alone():
    from hybridplace.builders.serving import build_service
    from hybridplace.controller.fingerprint import service_fingerprint

    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="u", generation=1, namespace="ns")
    service = build_service(infd=parse_object(body))
    nodeport = copy.deepcopy(service)
    nodeport["spec"]["type"] = "NodePort"
    for port in nodeport["spec"]["ports"]:
        port["nodePort"] = 30000 + port["port"] % 1000
    as_stored_service = {**service, "spec": {**service["spec"], "clusterIP": "10.0.0.1", "sessionAffinity": "None"}}
    assert service_fingerprint(as_stored_service) == service_fingerprint(service)
    assert service_fingerprint(nodeport) != service_fingerprint(service)

    def plan_with(live):
        body["spec"]["placement"] = {**body["spec"]["placement"], "mode": "Apply", "pools": ["cpu-standard"]}
        return plan_inference_deployment(
            parse_object(body),
            pools=POOLS,
            profiles=PROFILES,
            jobs={},
            children={},
            service_names={"seed"},
            settings=Settings(),
            now="2026-11-23T18:00:00Z",
            fingerprint=deployment_fingerprint,
            service_fingerprints={"seed": service_fingerprint(live)},
            service_fingerprint=service_fingerprint,
        )

    edited = plan_with(nodeport)
    assert [s["metadata"]["name"] for s in edited.services_to_apply] == ["seed"]
    assert any(e.reason == "DriftRestored" and "Service/seed" in e.message for e in edited.events)
    assert plan_with(as_stored_service).services_to_apply == []


def test_a_field_ref_the_api_server_defaults_is_no_drift():
    """The live object carries fieldRef.apiVersion v1 whether or not the desired one says so."""
    from hybridplace.controller.fingerprint import deployment_fingerprint

    def dep(ref):
        return {"spec": {"template": {"spec": {"containers": [{"name": "c", "env": [
            {"name": "HP_ADDRESS", "valueFrom": {"fieldRef": ref}}]}]}}}}

    assert deployment_fingerprint(dep({"fieldPath": "status.podIP"})) == deployment_fingerprint(
        dep({"apiVersion": "v1", "fieldPath": "status.podIP"}))
    assert deployment_fingerprint(dep({"fieldPath": "status.podIP"})) != deployment_fingerprint(
        dep({"fieldPath": "status.hostIP"}))
