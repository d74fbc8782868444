"""RBAC that is exactly what is used: the chart's roles grant the verbs the code's API
calls need, no more and no fewer. The calls are read from the source (kopf's watches in
handlers.py, every `kube.<method>("Kind"` in the controller), plus the few whose kind is a
variable, each pinned to the line that makes it, so a new call without a rule fails here."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from hybridplace.controller.kube import LIST_ALL, PATHS

REPO = Path(__file__).resolve().parents[2]
CONTROLLER = REPO / "operator" / "hybridplace" / "controller"
VERB = {
    "get": "get",
    "list": "list",
    "list_all": "list",
    "list_all_versioned": "list",
    "create": "create",
    "apply": "patch",
    "merge_patch": "patch",
    "patch_annotations": "patch",
    "patch_status": "patch",
    "delete": "delete",
    "replace": "update",
}

# Calls whose kind is a variable: (source pattern, kinds it takes, Kube method).
DYNAMIC = [
    (r"self\.kube\.create\(job\)", ["Job"], "create"),
    (r"self\.kube\.create\(profile\)", ["ModelProfile"], "create"),
    (r"self\.kube\.replace\(\{\*\*profile", ["ModelProfile"], "replace"),
    (r"self\.kube\.create\(obj\)", ["Deployment", "Service", "HTTPRoute"], "create"),  # _create_or_adopt
    (r"self\.kube\.get\(obj\[\"kind\"\]", ["Deployment", "Service", "HTTPRoute"], "get"),
    (r"self\.kube\.apply\(route\)", ["HTTPRoute"], "apply"),
    (r"self\.kube\.apply\(deployment\)", ["Deployment"], "apply"),
    (r"self\.kube\.apply\(service\)", ["Service"], "apply"),
    (r"self\.kube\.list_all_versioned\(kind", list(LIST_ALL), "list"),  # relist: every cached kind
    (r"self\.kube\.event\(", ["Event"], "create"),  # via Kube.event: POST core/v1 events
    (r"self\.kube\.create\(body\)", ["Lease"], "create"),  # leader election
    (r"self\.kube\.replace\(", ["Lease"], "replace"),
]
# Not a call: a child's ownerReference with blockOwnerDeletion (builders/serving.py) needs update
# on the owner's finalizers where the OwnerReferencesPermissionEnforcement plugin is on.
OWNER_REFERENCES = (REPO / "operator" / "hybridplace" / "builders" / "serving.py", '"blockOwnerDeletion": True',
                    ("hybridplace.io", "inferencedeployments/finalizers", "update"))
# kopf itself: discovery of CRDs, and namespaces for cluster-wide watching.
KOPF = {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("get", "list", "watch")} | {
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
}


def _group_resource(kind: str) -> tuple[str, str]:
    path = (PATHS | LIST_ALL)[kind] if kind in PATHS or kind in LIST_ALL else "/api/v1/events"
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    return group, parts[-1]


def calls_in_code() -> set[tuple[str, str, str]]:
    source = "\n".join(p.read_text() for p in sorted(CONTROLLER.glob("*.py")))
    found: set[tuple[str, str, str]] = set(KOPF)
    for group, plural in re.findall(r'@kopf\.on\.event\((GROUP|"[^"]*"), "v[^"]+", "([a-z]+)"', source):
        group = "hybridplace.io" if group == "GROUP" else group.strip('"')
        found |= {(group, plural, "list"), (group, plural, "watch")}
    for method, kind in re.findall(r'kube\.(\w+)\("(\w+)"', source):
        group, resource = _group_resource(kind)
        found.add((group, f"{resource}/status" if method == "patch_status" else resource, VERB[method]))
    path, marker, needed = OWNER_REFERENCES
    if marker in path.read_text():
        found.add(needed)
    for pattern, kinds, method in DYNAMIC:
        assert re.search(pattern, source), f"no longer in the code: {pattern}; update this table"
        for kind in kinds:
            group, resource = _group_resource(kind)
            found.add((group, resource, VERB[method]))
    return found


def rule_sets() -> dict[str, list[dict]]:
    """The chart's rule sets (the `hybridplace.rules.*` defines in rbac.yaml), by name."""
    text = (REPO / "charts" / "hybridplace" / "templates" / "rbac.yaml").read_text()
    found = re.findall(r'\{\{- define "hybridplace\.rules\.(\w+)" -\}\}\n(.*?)\{\{- end \}\}', text, re.S)
    return {name: yaml.safe_load(body) for name, body in found}


def _triples(rules: list[dict]) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def granted() -> set[tuple[str, str, str]]:
    return set().union(*(_triples(rules) for rules in rule_sets().values()))


def test_the_charts_roles_grant_exactly_what_the_code_calls():
    code, role = calls_in_code(), granted()
    assert sorted(code - role) == [], "calls the chart's roles do not allow"
    assert sorted(role - code) == [], "verbs the code never uses"


def test_each_rule_set_holds_only_its_scope():
    """Namespaced mode gives namespaced kinds only through Roles, so the cluster set must hold
    no namespaced kind, and the namespaced set no cluster-scoped one; the operator's own
    namespace holds only its Lease. One exception, read only: Gateways, named from any namespace."""
    sets = rule_sets()
    assert sets.keys() == {"cluster", "namespaced", "own"}
    cluster_scoped = {"hardwarepools", "hardwarepools/status", "nodes", "namespaces", "customresourcedefinitions"}
    # The one namespaced kind read cluster-wide: the Gateway a route names, in any namespace.
    anywhere = {("gateway.networking.k8s.io", "gateways", "get")}
    assert {r for _, r, _ in _triples(sets["cluster"]) - anywhere} <= cluster_scoped
    assert not {r for _, r, _ in _triples(sets["namespaced"])} & cluster_scoped
    assert {r for _, r, _ in _triples(sets["own"])} == {"leases"}
