"""A fingerprint of the fields the operator sets on a serving Deployment.

Computed the same way from the desired object and from the live one, so a reconcile can tell
"as desired" from "changed by hand" without writing anything. Only what decides where and how
the model runs is compared (replicas, scheduling, image, arguments, resources); fields the API
server defaults or other controllers own are left out, so they never cause a write.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..api.quantity import is_quantity, parse_quantity
from ..builders import names


def _quantities(resources: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for section in ("requests", "limits"):
        values = (resources or {}).get(section) or {}
        out[section] = {
            k: str(parse_quantity(v).normalize()) if is_quantity(v) else str(v) for k, v in values.items()
        }
    return out


def deployment_fingerprint(deployment: dict[str, Any]) -> str:
    spec = deployment.get("spec") or {}
    template = spec.get("template") or {}
    pod = template.get("spec") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    owned = {
        "replicas": spec.get("replicas", 1),
        "selector": (spec.get("selector") or {}).get("matchLabels"),
        "labels": {k: v for k, v in labels.items() if k.startswith(("hybridplace.io/", "app.kubernetes.io/"))},
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
            }
            for x in pod.get("containers") or []
        ],
    }
    text = json.dumps(owned, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
