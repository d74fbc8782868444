"""A fingerprint of the fields the operator sets on a serving Deployment.

Computed the same way from the desired object and from the live one, so a reconcile can tell
"as desired" from "changed by hand" without writing anything. What decides where and how the
model runs is compared (replicas, scheduling, image, arguments, resources), and everything that
decides what the pod may do (security contexts, host namespaces, service account and token,
volumes and mounts, environment, extra containers); fields the API server defaults or other
controllers own are left out or normalised, so they never cause a write.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api.quantity import is_quantity, parse_quantity
from ..builders import names

# The pod template's labels the operator sets (builders/serving.py).
TEMPLATE_LABELS = (names.LABEL_MANAGED_BY, names.LABEL_COMPONENT, names.LABEL_INSTANCE, names.LABEL_POOL)


def _quantities(resources: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in ("requests", "limits"):
        values = (resources or {}).get(section) or {}
        out[section] = {
            k: str(parse_quantity(v).normalize()) if is_quantity(v) else str(v) for k, v in values.items()
        }
    return out


def _volume(volume: dict[str, Any]) -> dict[str, Any]:
    """A volume with its emptyDir size normalised (the API server stores quantities canonically)."""
    empty = volume.get("emptyDir")
    if isinstance(empty, dict) and empty.get("sizeLimit") is not None and is_quantity(empty["sizeLimit"]):
        return {**volume, "emptyDir": {**empty, "sizeLimit": str(parse_quantity(empty["sizeLimit"]).normalize())}}
    return volume


def template_replacement(desired: dict[str, Any], live: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch that makes `live`'s pod template what `desired` says where server-side
    apply cannot: apply never removes what another field manager added (a hand-added volume,
    container, pod securityContext field or node selector key), while a merge patch replaces lists whole and a null
    removes a key."""
    want = desired["spec"]["template"]["spec"]
    have = ((live.get("spec") or {}).get("template") or {}).get("spec") or {}
    patch: dict[str, Any] = {k: want.get(k) for k in ("containers", "volumes", "hostNetwork", "hostPID",
                                                       "hostIPC", "serviceAccountName",
                                                       "automountServiceAccountToken")}
    patch["initContainers"] = want.get("initContainers")  # None removes hand-added ones
    patch["serviceAccount"] = None  # the deprecated alias of serviceAccountName
    for section in ("securityContext", "nodeSelector"):  # maps: a null removes a hand-added key
        value = dict(want.get(section) or {})
        for key in (have.get(section) or {}):
            value.setdefault(key, None)
        patch[section] = value
    return {"spec": {"template": {"spec": patch}}}


def _env(var: dict[str, Any]) -> dict[str, Any]:
    """An env entry as the API server stores it: a fieldRef's apiVersion defaults to v1 (left
    out, the desired and the live object would never match, and every reconcile would re-apply)."""
    ref = (var.get("valueFrom") or {}).get("fieldRef")
    if ref is not None and "apiVersion" not in ref:
        return {**var, "valueFrom": {**var["valueFrom"], "fieldRef": {"apiVersion": "v1", **ref}}}
    return var


def deployment_fingerprint(deployment: dict[str, Any]) -> str:
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    owned = {
        "replicas": spec.get("replicas", 1),
        "selector": (spec.get("selector") or {}).get("matchLabels"),
        # The labels the operator sets, not others with its prefixes: apply never removes a
        # label another manager added, so such a label would look like drift forever.
        "labels": {k: labels.get(k) for k in TEMPLATE_LABELS},
        "digest": ((deployment.get("metadata") or {}).get("annotations") or {}).get(names.ANNOTATION_DIGEST),
        "nodeSelector": pod.get("nodeSelector") or {},
        "tolerations": pod.get("tolerations") or [],
        "containers": [
            {
                "name": x.get("name"),
                "image": x.get("image"),
                "command": x.get("command"),
                "args": x.get("args"),
                "resources": _quantities(x.get("resources")),
                "securityContext": x.get("securityContext") or {},
                "env": [_env(e) for e in x.get("env") or []],
                "envFrom": x.get("envFrom") or [],
                "volumeMounts": sorted(
                    ({"name": m.get("name"), "mountPath": m.get("mountPath"), "subPath": m.get("subPath") or "",
                      "readOnly": bool(m.get("readOnly"))} for m in x.get("volumeMounts") or []),
                    key=lambda m: (m["name"] or "", m["mountPath"] or "")),
            }
            for x in pod.get("containers") or []
        ],
        "initContainers": [x.get("name") for x in pod.get("initContainers") or []],
        "securityContext": pod.get("securityContext") or {},
        "host": [bool(pod.get(k)) for k in ("hostNetwork", "hostPID", "hostIPC")],
        "serviceAccountName": pod.get("serviceAccountName") or "default",
        "automountServiceAccountToken": pod.get("automountServiceAccountToken"),
        "volumes": sorted((_volume(v) for v in pod.get("volumes") or []), key=lambda v: str(v.get("name"))),
    }
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def service_fingerprint(service: dict[str, Any]) -> str:
    """A fingerprint of what the operator sets on a Service: its type, selector and ports
    (nodePort, clusterIP and the like are the API server's, and left out)."""
    spec = service.get("spec") or {}
    owned = {
        "type": spec.get("type") or "ClusterIP",
        "selector": spec.get("selector") or {},
        "ports": sorted(
            ({"name": p.get("name"), "port": p.get("port"), "targetPort": p.get("targetPort", p.get("port")),
              "protocol": p.get("protocol") or "TCP"} for p in spec.get("ports") or []),
            key=lambda p: str(p["name"])),
        "externalIPs": spec.get("externalIPs") or [],
    }
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
