"""Names that fit: every name the API accepts gives children with valid names and labels; a name
it accepted before the rule existed is reported in status, not used; a child the API server
refuses (422) ends in a Placed=False condition naming it, not a reconcile loop."""

from __future__ import annotations

import copy
import re

from cases.api_objects import hardware_pool, inference_deployment
from cases.long_status import POOLS, PROFILES, SEED
from cases.mock_api import MockApi, Reply, status
from hybridplace import conditions as c
from hybridplace.api import parse_object
from hybridplace.api.rules import rule_violations
from hybridplace.builders import names
from hybridplace.builders.serving import build_service, build_serving_deployment
from hybridplace.config import Settings
from hybridplace.controller.fingerprint import deployment_fingerprint
from hybridplace.controller.plan import plan_inference_deployment
from hybridplace.controller.reconcile import Reconciler
from hybridplace.controller.state import ClusterState
from hybridplace.controller.workqueue import WorkQueue
from hypothesis import given, settings
from hypothesis import strategies as st

DNS1035 = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")
LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
NOW = "2026-11-23T18:00:00Z"

# Names the CRDs accept (DNS-1123 subdomains) that the CEL rules on metadata.name allow.
infd_names = st.from_regex(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
pool_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(infd_names, pool_names)
def test_every_accepted_name_gives_valid_child_names_and_labels(infd_name, pool_name):
    assert rule_violations("InferenceDeployment", inference_deployment(infd_name)) == []
    assert rule_violations("HardwarePool", hardware_pool(pool_name)) == []
    infd = parse_object({**inference_deployment(infd_name), "metadata": {"name": infd_name, "namespace": "ns"}})
    pool = parse_object(hardware_pool(pool_name))
    deployment = build_serving_deployment(
        infd=infd, digest="sha256:" + "ab" * 32, pool=pool, replicas=1, batch_size=1, image="img", instances=1
    )
    for service in (build_service(infd=infd), build_service(infd=infd, pool=pool_name)):
        assert DNS1035.fullmatch(service["metadata"]["name"]) and len(service["metadata"]["name"]) <= 63
    assert len(deployment["metadata"]["name"]) <= 63
    for obj in (deployment, deployment["spec"]["template"]):
        for value in obj["metadata"]["labels"].values():
            assert len(value) <= 63 and LABEL_VALUE.fullmatch(value), value


def test_the_rules_refuse_what_children_cannot_use():
    for bad in ("web.v2", "1web", "w" * 64, "web-"):
        assert rule_violations("InferenceDeployment", inference_deployment(bad))[0][0] == "metadata.name", bad
    for bad in ("gpu.large", "p" * 64):
        assert rule_violations("HardwarePool", hardware_pool(bad))[0][0] == "metadata.name", bad
    assert rule_violations("HardwarePool", hardware_pool("1-gpu")) == []


def test_a_pool_stored_before_the_rule_is_reported_where_named_and_skipped_where_not():
    state = ClusterState()
    state.put_pool(hardware_pool("gpu.large"))
    errors = state.pool_errors()
    assert "metadata.name" in errors["gpu.large"]
    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="u", generation=1)
    body["spec"]["placement"] = {**body["spec"]["placement"], "pools": ["cpu-standard", "gpu.large"]}
    plan = plan_inference_deployment(
        parse_object(body),
        pools=POOLS,
        profiles=PROFILES,
        jobs={},
        children={},
        service_names=set(),
        settings=Settings(),
        now=NOW,
        fingerprint=deployment_fingerprint,
        pool_errors=errors,
    )
    (state_,) = [s for s in plan.status["profiles"] if s["pool"] == "gpu.large"]
    assert state_["reason"] == "InvalidPool" and "at most 63 characters with no dots" in state_["message"]
    assert any(e.reason == "InvalidPool" for e in plan.events)


def test_an_invalid_pool_gets_a_ready_false_condition_saying_why():
    with MockApi() as api:
        api.on("PATCH", "/apis/hybridplace.io/v1alpha1/hardwarepools/", Reply(200, {}))
        rec = Reconciler(api.kube(), ClusterState(), Settings(workers=1), WorkQueue())
        rec.state.put_pool(hardware_pool("gpu.large"))
        rec.reconcile_pool("gpu.large")
        (patch,) = api.calls("PATCH", "/apis/hybridplace.io/v1alpha1/hardwarepools/gpu.large/status")
    ready = c.get_condition(patch["status"]["conditions"], c.READY)
    assert (ready["status"], ready["reason"]) == (c.FALSE, c.INVALID_SPEC)
    assert "metadata.name" in ready["message"]


def test_a_child_the_api_server_refuses_ends_in_a_placed_false_condition():
    body = copy.deepcopy(SEED)
    body["metadata"].update(uid="uid-1", generation=1, namespace="ns", resourceVersion="1")
    body["spec"]["placement"] = {**body["spec"]["placement"], "mode": "Apply"}
    with MockApi() as api:
        api.on(
            "POST",
            "/apis/apps/v1/namespaces/ns/deployments",
            status(422, "Invalid", 'Deployment.apps "seed-cpu-standard" is invalid: spec.template: forbidden'),
        )
        api.on(
            "POST",
            "/api/v1/namespaces/ns/services",
            Reply(
                201,
                {
                    "kind": "Service",
                    "metadata": {"name": "seed", "namespace": "ns", "labels": {names.LABEL_INSTANCE: "seed"}},
                },
            ),
        )
        api.on(
            "PATCH", "/apis/hybridplace.io/v1alpha1/namespaces/ns/inferencedeployments/seed/status", Reply(200, body)
        )
        state = ClusterState()
        for pool in POOLS.values():
            state.put_pool(pool.to_dict())
        for profile in PROFILES.values():
            state.put_profile({**profile.to_dict(), "metadata": {**profile.to_dict()["metadata"], "namespace": "ns"}})
        state.put_infd(body)
        rec = Reconciler(api.kube(), state, Settings(workers=1), WorkQueue())
        rec.reconcile_inference_deployment("ns", "seed")  # refused: remembered, not raised
        assert rec.queue.get(timeout=0) == ("infd", "ns", "seed")
        rec.reconcile_inference_deployment("ns", "seed")  # planned again: the status says why
        patches = api.calls("PATCH", "/apis/hybridplace.io/v1alpha1/namespaces/ns/inferencedeployments/seed/status")
        assert len(api.calls("POST", "/apis/apps/v1/namespaces/ns/deployments")) == 1  # not retried in a loop
    placed = c.get_condition(patches[-1]["status"]["conditions"], c.PLACED)
    assert (placed["status"], placed["reason"]) == (c.FALSE, c.CHILD_REJECTED)
    assert "Deployment/seed-" in placed["message"] and "422 Invalid" in placed["message"]
