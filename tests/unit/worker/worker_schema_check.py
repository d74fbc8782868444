"""A small JSON Schema checker for workers/result.schema.json (the venv has no jsonschema).

It implements exactly the keywords that schema uses and fails loudly on any other, so the schema
cannot quietly grow a keyword this checker ignores. The operator may validate with a full
implementation; test_worker_result.py checks both agree on the samples they share.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "workers" / "result.schema.json"
SUPPORTED = {
    "$schema",
    "$id",
    "title",
    "description",
    "$defs",
    "$ref",
    "oneOf",
    "type",
    "const",
    "enum",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minimum",
    "pattern",
}
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def load_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def errors(instance, schema: dict | None = None, root: dict | None = None, path: str = "$") -> list[str]:
    """Every violation of ``schema`` by ``instance``, as readable strings (empty when valid)."""
    if schema is None:
        schema = root = load_schema()
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise AssertionError(f"schema keyword(s) {unknown} at {path} are not supported by this checker")
    out: list[str] = []
    if "$ref" in schema:
        target = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            target = target[part]
        out += errors(instance, target, root, path)
    if "oneOf" in schema:
        matches = [s for s in schema["oneOf"] if not errors(instance, s, root, path)]
        if len(matches) != 1:
            detail = [errors(instance, s, root, path) for s in schema["oneOf"]]
            out.append(f"{path}: matches {len(matches)} of oneOf, need exactly 1: {detail}")
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](instance) for t in types):
            return out + [f"{path}: {instance!r} is not of type {types}"]
    if "const" in schema and instance != schema["const"]:
        out.append(f"{path}: {instance!r} != const {schema['const']!r}")
    if "enum" in schema and instance not in schema["enum"]:
        out.append(f"{path}: {instance!r} not in {schema['enum']}")
    if "pattern" in schema and isinstance(instance, str) and not re.search(schema["pattern"], instance):
        out.append(f"{path}: {instance!r} does not match {schema['pattern']}")
    if "minimum" in schema and _TYPES["number"](instance) and instance < schema["minimum"]:
        out.append(f"{path}: {instance} < minimum {schema['minimum']}")
    if isinstance(instance, dict):
        for key in schema.get("required", []):
            if key not in instance:
                out.append(f"{path}: missing required {key!r}")
        props = schema.get("properties", {})
        for key, value in instance.items():
            if key in props:
                out += errors(value, props[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                out.append(f"{path}: unexpected property {key!r}")
    if isinstance(instance, list):
        if "minItems" in schema and len(instance) < schema["minItems"]:
            out.append(f"{path}: {len(instance)} items < minItems {schema['minItems']}")
        if "maxItems" in schema and len(instance) > schema["maxItems"]:
            out.append(f"{path}: {len(instance)} items > maxItems {schema['maxItems']}")
        if "items" in schema:
            for i, item in enumerate(instance):
                out += errors(item, schema["items"], root, f"{path}[{i}]")
    return out


def assert_valid(instance) -> None:
    problems = errors(instance)
    assert not problems, "\n".join(problems)
