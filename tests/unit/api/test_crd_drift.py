"""The Python API model and the CRDs must not drift apart.

The CRDs are the source of truth. These tests walk each CRD's openAPIV3Schema beside the JSON
schema pydantic derives from the Python model and compare, field by field: names, types, enums,
bounds, lengths, patterns, defaults and required sets. The CEL rules are compared with the
Python twins in hybridplace.api.rules by place, fieldPath and message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from hybridplace.api.models import KINDS
from hybridplace.api.rules import RULES

CRD_DIR = Path(__file__).resolve().parents[3] / "crds"
INT32 = (-(2**31), 2**31 - 1)
SIZE_KEYS = ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties")


def crd_schemas() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted(CRD_DIR.glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        (version,) = crd["spec"]["versions"]
        found[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return found


def _unwrap(py: dict[str, Any], defs: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Follow $ref and drop the `| None` branch pydantic adds for optional fields."""
    nullable = False
    while True:
        if "$ref" in py:
            py = {**defs[py["$ref"].split("/")[-1]], **{k: v for k, v in py.items() if k != "$ref"}}
            continue
        branches = py.get("anyOf")
        if branches and any(b.get("type") == "null" for b in branches):
            rest = [b for b in branches if b.get("type") != "null"]
            nullable = True
            outer = {k: v for k, v in py.items() if k != "anyOf"}
            py = {**rest[0], **outer} if len(rest) == 1 else {**outer, "anyOf": rest}
            continue
        return py, nullable


def _bounds(schema: dict[str, Any], integer: bool) -> tuple[Any, Any]:
    low = high = None
    if "minimum" in schema:
        low = (">" if schema.get("exclusiveMinimum") is True else ">=", schema["minimum"])
    if isinstance(schema.get("exclusiveMinimum"), int | float) and not isinstance(
        schema.get("exclusiveMinimum"), bool
    ):
        low = (">", schema["exclusiveMinimum"])
    if "maximum" in schema:
        high = ("<" if schema.get("exclusiveMaximum") is True else "<=", schema["maximum"])
    # Python's int32 guard mirrors `format: int32`; it is not a bound the CRD spells out.
    if integer and low == (">=", INT32[0]):
        low = None
    if integer and high == ("<=", INT32[1]):
        high = None
    return low, high


def compare(crd: dict[str, Any], py: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    py, _ = _unwrap(py, defs)
    if crd.get("x-kubernetes-int-or-string"):
        types = sorted(b.get("type") for b in py.get("anyOf", []))
        if types != ["integer", "string"]:
            problems.append(f"{path}: CRD int-or-string, Python {types or py.get('type')}")
        return problems
    if crd.get("type") != py.get("type"):
        return [f"{path}: type {crd.get('type')} in the CRD, {py.get('type')} in Python"]
    if "enum" in crd or "enum" in py:
        if sorted(map(str, crd.get("enum", []))) != sorted(map(str, py.get("enum", []))):
            problems.append(f"{path}: enum {crd.get('enum')} in the CRD, {py.get('enum')} in Python")
    integer = crd["type"] == "integer"
    if _bounds(crd, integer) != _bounds(py, integer):
        problems.append(f"{path}: bounds {_bounds(crd, integer)} in the CRD, {_bounds(py, integer)} in Python")
    for key in SIZE_KEYS:
        if crd.get(key) != py.get(key):
            problems.append(f"{path}: {key} {crd.get(key)} in the CRD, {py.get(key)} in Python")
    if "pattern" in crd and crd["pattern"] != py.get("pattern"):
        problems.append(f"{path}: pattern differs: CRD {crd['pattern']!r}, Python {py.get('pattern')!r}")
    if crd["type"] == "array":
        problems += compare(crd["items"], py["items"], defs, path + "[*]")
    if crd["type"] == "object":
        problems += _compare_object(crd, py, defs, path)
    return problems


def _compare_object(crd: dict[str, Any], py: dict[str, Any], defs: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    if "additionalProperties" in crd:
        return compare(crd["additionalProperties"], py.get("additionalProperties", {}), defs, path + ".*")
    crd_props, py_props = crd.get("properties", {}), py.get("properties", {})
    if path == "":  # metadata, apiVersion and kind are the server's, not ours
        crd_props = {k: v for k, v in crd_props.items() if k not in ("metadata", "apiVersion", "kind")}
        py_props = {k: v for k, v in py_props.items() if k not in ("metadata", "apiVersion", "kind")}
    for missing in sorted(set(crd_props) - set(py_props)):
        problems.append(f"{path}.{missing}: in the CRD, not in Python")
    for extra in sorted(set(py_props) - set(crd_props)):
        problems.append(f"{path}.{extra}: in Python, not in the CRD")
    crd_required = set(crd.get("required", []))
    py_required = set(py.get("required", [])) & set(crd_props)
    if crd_required != py_required:
        problems.append(f"{path}: required {sorted(crd_required)} in the CRD, {sorted(py_required)} in Python")
    for name in sorted(set(crd_props) & set(py_props)):
        child_path = f"{path}.{name}" if path else name
        crd_child, py_child = crd_props[name], py_props[name]
        problems += _compare_default(crd_child, py_child, name in py_required, child_path)
        problems += compare(crd_child, py_child, defs, child_path)
    return problems


def _compare_default(crd: dict[str, Any], py: dict[str, Any], py_required: bool, path: str) -> list[str]:
    if "default" not in crd:
        if py.get("default", None) is not None:
            return [f"{path}: Python defaults to {py['default']!r}, the CRD has no default"]
        return []
    if crd["default"] == {}:  # an object whose own fields default: Python builds it by factory
        return [] if not py_required else [f"{path}: CRD defaults it to {{}}, Python requires it"]
    if py.get("default") != crd["default"]:
        return [f"{path}: default {crd['default']!r} in the CRD, {py.get('default')!r} in Python"]
    return []


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_python_model_matches_crd_schema(kind):
    crd = crd_schemas()[kind]
    py = KINDS[kind].model_json_schema(by_alias=True, mode="validation")
    problems = compare(crd, py, py.get("$defs", {}), "")
    assert not problems, "\n".join(problems)


def test_drift_check_catches_a_difference():
    """The comparison itself must be able to fail."""
    crd = crd_schemas()["InferenceDeployment"]
    crd["properties"]["spec"]["properties"]["slo"]["properties"]["latencyMs"]["maximum"] = 1
    py = KINDS["InferenceDeployment"].model_json_schema(by_alias=True, mode="validation")
    problems = compare(crd, py, py["$defs"], "")
    assert problems == [
        "spec.slo.latencyMs: bounds ((('>', 0), ('<=', 1))) in the CRD, ((('>', 0), ('<=', 600000))) in Python"
        .replace("(((", "((").replace(")))", "))")
    ]


def _crd_rules(kind: str, schema: dict[str, Any], path: str) -> list[tuple[str, str, str, str, bool]]:
    found = []
    for rule in schema.get("x-kubernetes-validations", []):
        transition = "oldSelf" in rule["rule"]
        found.append((kind, path, rule.get("fieldPath", ""), rule["message"], transition))
    for name, child in schema.get("properties", {}).items():
        found += _crd_rules(kind, child, f"{path}.{name}" if path else name)
    if "items" in schema:
        found += _crd_rules(kind, schema["items"], path + "[*]")
    return found


def test_every_cel_rule_has_one_python_twin():
    crd = sorted(r for kind, schema in crd_schemas().items() for r in _crd_rules(kind, schema, ""))
    python = sorted((r.kind, r.at, r.field_path, r.message, r.transition) for r in RULES)
    assert crd == python
