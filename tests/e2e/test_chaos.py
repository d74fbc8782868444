"""Chaos, the cases that need no API-server restart (issue 11): a serving Deployment hand-edited
to privileged is restored with an Event, and deleting a duplicate ModelProfile keeps the other
in use (nothing re-benchmarked, nothing lost). The real operator on the local cluster."""

from __future__ import annotations

import json

import pytest
from e2e_helpers import inference_deployment, wait_condition, wait_event

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

BENCH = "hybridplace.io/component=benchmark"


def test_a_serving_deployment_hand_edited_to_privileged_is_restored(operator, kubectl, wait_until):
    kubectl.apply(inference_deployment("guarded"))
    wait_condition(kubectl, "guarded", "Ready")
    (deployment,) = kubectl.json("deployments", "-l", "hybridplace.io/inferencedeployment=guarded")["items"]
    name = deployment["metadata"]["name"]
    edit = {
        "spec": {
            "template": {
                "spec": {
                    "hostNetwork": True,
                    "volumes": [{"name": "host", "hostPath": {"path": "/"}}],
                    "containers": [
                        {"name": "triton", "securityContext": {"privileged": True, "allowPrivilegeEscalation": True}}
                    ],
                }
            }
        }
    }
    kubectl("patch", "deployment", name, "-p", json.dumps(edit))

    def restored():
        pod = kubectl.json("deployment", name)["spec"]["template"]["spec"]
        return (
            pod["containers"][0]["securityContext"].get("privileged") is False
            and not pod.get("hostNetwork")
            and "host" not in {v["name"] for v in pod.get("volumes") or []}
        )

    wait_until(restored, timeout=60, what="privileged, hostNetwork and the hostPath volume put back")
    wait_event(kubectl, "guarded", "DriftRestored", type_="Warning", contains=name)
    wait_condition(kubectl, "guarded", "Placed")  # and no 422 loop: still placed


def test_deleting_a_duplicate_profile_keeps_the_other_in_use(operator, kubectl, wait_until):
    kubectl.apply(inference_deployment("twin"))
    wait_condition(kubectl, "twin", "Ready")
    jobs_before = {j["metadata"]["uid"] for j in kubectl.json("jobs", "-l", BENCH)["items"]}
    status = kubectl.json("infd", "twin")["status"]
    used = next(s["name"] for s in status["profiles"] if s["state"] == "Measured")
    original = kubectl.json("mprof", used)
    duplicate = {
        "apiVersion": original["apiVersion"],
        "kind": "ModelProfile",
        "metadata": {"name": f"{used}-copy"},
        "spec": {**original["spec"], "provenance": "imported", "measuredAt": "2099-01-01T00:00:00Z"},
    }
    kubectl.apply(duplicate)
    wait_event(kubectl, "twin", "DuplicateProfiles", type_="Warning", contains=f"{used}-copy")
    kubectl("delete", "mprof", f"{used}-copy")
    wait_until(
        lambda: all(s.get("reason") != "DuplicateProfiles" for s in kubectl.json("infd", "twin")["status"]["profiles"]),
        timeout=60,
        what="the duplicate forgotten",
    )
    status = kubectl.json("infd", "twin")["status"]
    assert any(s.get("name") == used and s["state"] == "Measured" for s in status["profiles"])
    assert kubectl.condition("infd", "twin", "Placed")["status"] == "True"
    jobs_after = {j["metadata"]["uid"] for j in kubectl.json("jobs", "-l", BENCH)["items"]}
    assert jobs_after == jobs_before  # the remaining profile was not forgotten: nothing re-measured
