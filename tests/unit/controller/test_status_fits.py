"""Statuses that fit: the longest status the operator can produce, for every kind, stays within
every maxLength and maxItems of the CRDs (read here from crds/*.yaml, not from the Python model),
so a status write is never refused with 422 for ever."""

from __future__ import annotations

import copy

from cases.long_status import LONG, NOW, POOLS, crd_status_schema, longest_inference_deployment_status, violations
from hybridplace import conditions as c
from hybridplace.api import parse_object
from hybridplace.api.fit import cut, fit_status
from hybridplace.controller.pools import NodeInfo, plan_pool_status


def test_the_longest_inference_deployment_status_fits_the_crd():
    status = longest_inference_deployment_status()
    assert len(status["decision"]["alternatives"]) > 10  # the failures really are in it
    assert violations(status, crd_status_schema("InferenceDeployment")) == []


def test_the_unfitted_status_would_not_fit():  # the test above can fail: the inputs are too long
    unfitted = copy.deepcopy(longest_inference_deployment_status())
    unfitted["profiles"][-1]["message"] = LONG
    unfitted["decision"]["alternatives"][-1]["message"] = LONG
    assert len(violations(unfitted, crd_status_schema("InferenceDeployment"))) == 2


def test_a_hardware_pool_status_fits_the_crd():
    body = POOLS["cpu-standard"].to_dict()
    body["metadata"]["name"] = "p" * 63
    body["spec"]["nodeSelector"] = {f"{'d' * 250}.io/k{i:02d}": "v" * 63 for i in range(16)}
    status = plan_pool_status(parse_object(body), [NodeInfo.from_body({"metadata": {"name": "n"}})], 0, NOW)
    assert "no node matches nodeSelector" in status["conditions"][0]["message"]
    assert violations(status, crd_status_schema("HardwarePool")) == []


def test_a_model_profile_status_fits_the_crd():
    conds = [c.condition("Valid", c.FALSE, c.INVALID_SPEC, LONG * 5, 1, NOW)]
    status = fit_status("ModelProfile", {"observedGeneration": 1, "pointCount": 3, "conditions": conds})
    assert violations(status, crd_status_schema("ModelProfile")) == []


def test_fitting_is_idempotent_and_leaves_what_fits_alone():
    status = longest_inference_deployment_status()
    assert fit_status("InferenceDeployment", status) == status
    short = {"summary": {"pools": "cpu:1"}, "profiles": [{"pool": "cpu", "state": "Measured"}]}
    assert fit_status("InferenceDeployment", short) == short


def test_cut_marks_a_cut_message_but_not_a_patterned_field():
    assert cut("abcdefgh", 6) == "abc..."
    assert cut("Abcdefgh", 6, plain=False) == "Abcdef"
    assert cut("abc", 6) == "abc"
