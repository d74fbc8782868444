"""Drift restored against the real API server: a serving Deployment edited by hand (privileged,
host network, a hostPath volume, another service account) by another field manager is put back
by the reconciler's converge step, with no 422 on the way (the fault report's loop)."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest
from cases.long_status import POOLS, SEED
from hybridplace.api import builtin_digest, parse_object
from hybridplace.builders.serving import build_serving_deployment
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint
from hybridplace.controller.kube import Kube, load_client
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue

pytestmark = pytest.mark.cluster


def test_a_hand_edited_serving_deployment_is_put_back(crds, kubeconfig, namespace):
    body = copy.deepcopy(SEED)
    body["metadata"].update(namespace=namespace, uid="00000000-0000-0000-0000-000000000001")
    want = build_serving_deployment(
        infd=parse_object(body),
        digest=builtin_digest("mlp"),
        pool=POOLS["cpu-standard"],
        replicas=1,
        batch_size=4,
        image="img",
    )
    want["metadata"]["ownerReferences"] = []  # no InferenceDeployment here to own it
    kube = Kube(load_client(kubeconfig))
    kube.apply(want)
    name = want["metadata"]["name"]
    edit = {
        "spec": {
            "template": {
                "spec": {
                    "hostNetwork": True,
                    "serviceAccountName": "default",
                    "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
                    "containers": [
                        {"name": "triton", "securityContext": {"privileged": True, "allowPrivilegeEscalation": True}}
                    ],
                }
            }
        }
    }
    subprocess.run(
        [*crds, "patch", "deployment", name, "-n", namespace, "--type=strategic", "-p", json.dumps(edit)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    edited = kube.get("Deployment", namespace, name)
    assert edited["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] is True
    assert deployment_fingerprint(edited) != deployment_fingerprint(want)

    rec = Reconciler(kube, ClusterState(), Settings(workers=1), WorkQueue())
    restored = rec._converge(want)

    pod = restored["spec"]["template"]["spec"]
    assert pod["containers"][0]["securityContext"]["privileged"] is False
    assert not pod.get("hostNetwork")
    assert [v["name"] for v in pod["volumes"]] == [v["name"] for v in want["spec"]["template"]["spec"]["volumes"]]
    assert deployment_fingerprint(restored) == deployment_fingerprint(want)
    # and it stays put: a second converge finds nothing to change
    assert deployment_fingerprint(kube.apply(want)) == deployment_fingerprint(want)


def test_a_service_changed_to_nodeport_by_hand_is_put_back(crds, kubeconfig, namespace):
    from hybridplace.builders.serving import build_service
    from hybridplace.controller.fingerprint import service_fingerprint

    body = copy.deepcopy(SEED)
    body["metadata"].update(namespace=namespace, uid="00000000-0000-0000-0000-000000000002")
    service = build_service(infd=parse_object(body))
    service["metadata"]["ownerReferences"] = []
    kube = Kube(load_client(kubeconfig))
    kube.apply(service)
    subprocess.run(
        [*crds, "patch", "service", "seed", "-n", namespace, "-p", '{"spec": {"type": "NodePort"}}'],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    edited = kube.get("Service", namespace, "seed")
    assert edited["spec"]["type"] == "NodePort" and service_fingerprint(edited) != service_fingerprint(service)
    restored = kube.apply(service)  # what the reconciler does for plan.services_to_apply
    assert restored["spec"]["type"] == "ClusterIP"
    assert not any("nodePort" in p for p in restored["spec"]["ports"])
    assert service_fingerprint(restored) == service_fingerprint(service)
