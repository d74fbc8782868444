"""Statuses that fit their schema: every string cut to its field's maxLength and every list to
its maxItems, so a status write is never refused (422) for a message that grew too long.

The limits come from the Python API model, which tests/unit/api/test_crd_drift.py keeps equal
to the CRDs field by field; a status the operator writes goes through `fit_status` first.
"""

from __future__ import annotations

import functools
from typing import Any

from .models import HardwarePoolStatus, InferenceDeploymentStatus, Model, ModelProfileStatus

ELLIPSIS = "..."

STATUS_MODELS: dict[str, type[Model]] = {
    "HardwarePool": HardwarePoolStatus,
    "InferenceDeployment": InferenceDeploymentStatus,
    "ModelProfile": ModelProfileStatus,
}


@functools.cache
def _schema(model: type[Model]) -> dict[str, Any]:
    return model.model_json_schema(by_alias=True)


def fit_status(kind: str, status: dict[str, Any]) -> dict[str, Any]:
    """`status` of a `kind` object with every string and list within its field's limits."""
    schema = _schema(STATUS_MODELS[kind])
    return fit(status, schema, schema.get("$defs", {}))


def fit(value: Any, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    """`value` cut to the limits of JSON schema `schema` (with `$defs`); anything the schema
    does not describe is returned as it is."""
    schema = _resolve(schema, defs, value)
    if isinstance(value, str):
        return cut(value, schema.get("maxLength"), plain="pattern" not in schema)
    if isinstance(value, list):
        limit = schema.get("maxItems")
        items = value if limit is None else value[:limit]
        return [fit(item, schema.get("items") or {}, defs) for item in items]
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        return {
            k: fit(v, properties.get(k) or (extra if isinstance(extra, dict) else {}), defs) for k, v in value.items()
        }
    return value


def cut(text: str, limit: int | None, plain: bool = True) -> str:
    """`text` within `limit` characters; a cut message ends with "..." so a reader sees it was
    cut (not a patterned field such as a reason, which is cut bare)."""
    if limit is None or len(text) <= limit:
        return text
    if plain and limit > len(ELLIPSIS):
        return text[: limit - len(ELLIPSIS)] + ELLIPSIS
    return text[:limit]


def _resolve(schema: dict[str, Any], defs: dict[str, Any], value: Any) -> dict[str, Any]:
    """Follow $ref, and pick the branch of an anyOf (pydantic's `X | None`) that fits `value`."""
    for _ in range(32):
        if "$ref" in schema:
            schema = {**defs[schema["$ref"].split("/")[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
            continue
        branches = schema.get("anyOf")
        if branches:
            kind = {str: "string", list: "array", dict: "object"}.get(type(value))
            chosen = next((b for b in branches if b.get("type") == kind or "$ref" in b and kind == "object"), None)
            if chosen is None:
                return {}
            schema = {**chosen, **{k: v for k, v in schema.items() if k != "anyOf"}}
            continue
        return schema
    return schema
