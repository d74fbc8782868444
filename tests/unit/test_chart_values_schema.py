"""The chart's values.schema.json: helm refuses a values file that breaks it before anything is
installed (tests/integration/chart/test_chart.py runs the real helm on it). Here: it describes
every value values.yaml has, refuses unknown keys, and its settings' types and bounds are the
operator's own (hybridplace.config), so a value helm accepts is one the operator starts with."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import yaml
from hybridplace.config import LIMITS, Settings

CHART = Path(__file__).resolve().parents[2] / "charts" / "hybridplace"
SCHEMA = json.loads((CHART / "values.schema.json").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
# Settings the chart sets from elsewhere (the release's namespace and name, livenessPort, metrics.port,
# the mounted settings.prometheusCaConfigMap).
NOT_IN_SETTINGS = {"liveness", "leader_election_namespace", "leader_election_name", "metrics_port",
                   "prometheus_ca_file"}
# Chart values under `settings` that are no setting themselves: the ConfigMap mounted as prometheus_ca_file.
CHART_ONLY = {"prometheusCaConfigMap"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _walk(values: dict[str, Any], schema: dict[str, Any], path: str) -> list[str]:
    """Paths in ``values`` the schema does not describe (free-form maps are not entered)."""
    missing = []
    for key, value in values.items():
        here = f"{path}.{key}" if path else key
        sub = (schema.get("properties") or {}).get(key)
        if sub is None:
            if schema.get("additionalProperties") is False or not isinstance(schema.get("additionalProperties"), dict):
                missing.append(here)
            continue
        if isinstance(value, dict) and "properties" in sub:
            missing += _walk(value, sub, here)
    return missing


def test_every_value_is_described():
    assert _walk(VALUES, SCHEMA, "") == []


def test_unknown_keys_are_refused_at_every_described_level():
    def closed(schema: dict[str, Any], path: str) -> list[str]:
        found = []
        if "properties" in schema and schema.get("additionalProperties") is not False:
            found.append(path or "(top)")
        for key, sub in (schema.get("properties") or {}).items():
            found += closed(sub, f"{path}.{key}" if path else key)
        if isinstance(schema.get("items"), dict) and "properties" in schema["items"]:
            found += closed(schema["items"], path + "[]")
        return found

    # imagePullSecrets' items are LocalObjectReferences: left open, as Kubernetes' own are.
    assert closed(SCHEMA, "") == ["imagePullSecrets[]"]


def test_settings_have_the_operators_types_and_bounds():
    settings = SCHEMA["properties"]["settings"]["properties"]
    expected = {_camel(f.name): f for f in dataclasses.fields(Settings) if f.name not in NOT_IN_SETTINGS}
    assert settings.keys() - CHART_ONLY == expected.keys()
    assert VALUES["settings"].keys() - CHART_ONLY == expected.keys()
    assert CHART_ONLY <= settings.keys() and CHART_ONLY <= VALUES["settings"].keys()
    for key, f in expected.items():
        kind = {"int": "integer", "float": "number"}.get(str(f.type), "string")
        assert settings[key]["type"] == kind, key
        if f.name in LIMITS:
            low, high = LIMITS[f.name]
            assert (settings[key]["minimum"], settings[key].get("maximum")) == (low, high), key
        else:
            assert "minimum" not in settings[key], key
    metrics_port = SCHEMA["properties"]["metrics"]["properties"]["port"]
    assert (metrics_port["minimum"], metrics_port["maximum"]) == LIMITS["metrics_port"]


def test_the_defaults_meet_the_schemas_bounds_and_patterns():
    def check(value: Any, schema: dict[str, Any], path: str) -> list[str]:
        bad = []
        kind = schema.get("type")
        if kind == "integer" and not (isinstance(value, int) and not isinstance(value, bool)):
            bad.append(f"{path}: not an integer")
        if kind == "number" and not isinstance(value, int | float):
            bad.append(f"{path}: not a number")
        if "minimum" in schema and value < schema["minimum"] or "maximum" in schema and value > schema["maximum"]:
            bad.append(f"{path}: out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            bad.append(f"{path}: does not match")
        if "enum" in schema and value not in schema["enum"]:
            bad.append(f"{path}: not one of {schema['enum']}")
        if isinstance(value, dict):
            for key, sub in value.items():
                bad += check(sub, (schema.get("properties") or {}).get(key) or {}, f"{path}.{key}")
        return bad

    assert check(VALUES, SCHEMA, "") == []


def test_the_gateway_pattern_is_the_operators():
    from hybridplace.config import _GATEWAY

    assert SCHEMA["properties"]["settings"]["properties"]["defaultGateway"]["pattern"] == "^$|" + _GATEWAY.pattern
