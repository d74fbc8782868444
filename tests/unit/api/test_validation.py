"""The Python API model refuses every bad object of the shared table, naming the field, and
accepts the examples the project ships."""

from pathlib import Path

import pytest
from cases.api_objects import BAD_CASES, VALID
from hybridplace.api import InvalidObject, load_objects, parse_object

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("kind", sorted(VALID))
def test_valid_base_objects_parse(kind):
    obj = parse_object(VALID[kind]())
    assert obj.kind == kind


@pytest.mark.parametrize("case", BAD_CASES, ids=lambda c: c.id)
def test_bad_object_is_refused_naming_the_field(case):
    with pytest.raises(InvalidObject) as refused:
        parse_object(case.object("bad"))
    paths = [e.path for e in refused.value.errors]
    assert any(p.startswith(case.field) for p in paths), (case.field, str(refused.value))
    # The message names the object too, so a user with many files knows which one.
    assert f"{case.kind} bad" in str(refused.value)


def test_the_table_is_big_enough_and_covers_each_kind():
    assert len(BAD_CASES) >= 20
    assert {c.kind for c in BAD_CASES} == set(VALID)
    assert len({c.id for c in BAD_CASES}) == len(BAD_CASES)


def test_every_shipped_example_is_valid():
    loaded = load_objects([ROOT / "examples"])
    kinds = {item.obj.kind for item in loaded}
    assert kinds == {"HardwarePool", "InferenceDeployment", "ModelProfile"}


def test_defaults_match_what_the_server_applies():
    infd = parse_object(VALID["InferenceDeployment"]())
    assert infd.spec.placement.objective == "cost"
    assert infd.spec.placement.mode == "Apply"
    assert infd.spec.placement.headroom == 0.1
    assert infd.spec.benchmark.batch_sizes == [1, 2, 4, 8, 16, 32]
    assert infd.spec.serving.port == 8000
    assert infd.spec.model.format == "torchscript"
    assert infd.to_dict()["spec"]["placement"]["allowHybrid"] is True


def test_all_errors_of_one_object_are_reported_together():
    obj = VALID["InferenceDeployment"]()
    obj["spec"]["slo"]["latencyMs"] = -1
    obj["spec"]["placement"] = {"objective": "speed"}
    with pytest.raises(InvalidObject) as refused:
        parse_object(obj)
    paths = {e.path for e in refused.value.errors}
    assert {"spec.slo.latencyMs", "spec.placement.objective"} <= paths


def test_immutable_profile_digest_on_update():
    old = VALID["ModelProfile"]()
    new = VALID["ModelProfile"]()
    new["spec"]["model"]["digest"] = "sha256:" + "cd" * 32
    parse_object(new)  # a create is fine
    with pytest.raises(InvalidObject) as refused:
        parse_object(new, old=old)
    assert refused.value.errors[0].path == "spec.model.digest"
    assert "immutable" in refused.value.errors[0].message


def test_unknown_kind_and_api_version_are_named():
    with pytest.raises(InvalidObject, match="kind: unknown kind 'Pod'"):
        parse_object({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})
    obj = VALID["HardwarePool"]()
    obj["apiVersion"] = "hybridplace.io/v1"
    with pytest.raises(InvalidObject, match="apiVersion: unsupported apiVersion"):
        parse_object(obj)


def test_a_gateway_with_a_wildcard_hostname_and_a_dotted_listener_is_valid():
    body = VALID["InferenceDeployment"]()
    body["spec"]["serving"] = {"gateway": {"name": "edge.prod", "namespace": "gw", "sectionName": "https.v1",
                                           "hostnames": ["*.example.com", "api.example.com"]}}
    gateway = parse_object(body).spec.serving.gateway
    assert (gateway.name, gateway.section_name, gateway.hostnames) == ("edge.prod", "https.v1",
                                                                      ["*.example.com", "api.example.com"])


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")], ids=["inf", "-inf", "nan"])
def test_a_non_finite_number_from_a_yaml_file_is_refused_naming_the_field(value):
    """JSON (what the API server stores) has no infinity or NaN; a YAML file does (.inf, .nan),
    and `recommend` or `profile import` read files: refused there, naming the field."""
    body = VALID["ModelProfile"]("mp")
    body["spec"]["points"][0]["throughputRps"] = value
    with pytest.raises(InvalidObject) as refused:
        parse_object(body)
    assert "spec.points[0].throughputRps" in str(refused.value) and "finite" in str(refused.value)
    pool = VALID["HardwarePool"]("hp")
    pool["spec"]["price"] = {"perReplicaHour": value}
    with pytest.raises(InvalidObject, match="spec.price.perReplicaHour"):
        parse_object(pool)


def test_a_rule_added_after_objects_were_stored_refuses_new_ones_but_not_stored_ones():
    # engine triton with concurrency above 1 worked (if mis-measured) before its rule: the CRD
    # and the CLI refuse it now, but an object the API server stored before is read back, and
    # placed at concurrency 1 only, instead of turning a running deployment invalid.
    from hybridplace.placement.from_api import request_from

    obj = VALID["InferenceDeployment"]("old")
    obj["spec"]["benchmark"] = {"engine": "triton", "concurrency": [1, 2, 4]}
    with pytest.raises(InvalidObject, match="engine triton"):
        parse_object(obj)
    stored = parse_object(obj, stored=True)
    assert request_from(stored).concurrency_levels == (1,)
