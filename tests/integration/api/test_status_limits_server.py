"""Statuses that fit, against the real API server's schema: the longest status the operator
produces is stored whole; the same status before fitting is refused (so the test can fail)."""

from __future__ import annotations

import copy
import json
import subprocess

import pytest
from cases.api_objects import VALID
from cases.long_status import LONG, longest_inference_deployment_status

pytestmark = pytest.mark.cluster


def patch_status(kubectl, namespace, name, status, tmp_path):
    patch = tmp_path / "status.json"  # too long for one command-line argument
    patch.write_text(json.dumps({"status": status}))
    return subprocess.run(
        [
            *kubectl,
            "patch",
            "infd",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "--patch-file",
            str(patch),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_longest_status_is_accepted_and_an_unfitted_one_is_refused(crds, namespace, tmp_path):
    obj = VALID["InferenceDeployment"]("longest")
    subprocess.run(
        [*crds, "apply", "-n", namespace, "-f", "-"],
        input=json.dumps(obj),
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    status = longest_inference_deployment_status()
    unfitted = copy.deepcopy(status)
    unfitted["decision"]["alternatives"][-1]["message"] = LONG
    refused = patch_status(crds, namespace, "longest", unfitted, tmp_path)
    assert refused.returncode != 0 and "status.decision.alternatives[" in refused.stderr, refused.stderr
    accepted = patch_status(crds, namespace, "longest", status, tmp_path)
    assert accepted.returncode == 0, accepted.stderr[:2000]
    stored = json.loads(
        subprocess.run(
            [*crds, "get", "infd", "longest", "-n", namespace, "-o", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
    )["status"]
    # A merge patch's null removes the field: compare with the nulls left out.
    assert _first_difference(stored, _without_nulls(status)) is None


def _without_nulls(value):
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _first_difference(a, b, path="status"):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(a.keys() | b.keys()):
            if k not in a or k not in b:
                return f"{path}.{k}: only in {'stored' if k in a else 'sent'}"
            if (found := _first_difference(a[k], b[k], f"{path}.{k}")) is not None:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items stored, {len(b)} sent"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if (found := _first_difference(x, y, f"{path}[{i}]")) is not None:
                return found
        return None
    return None if a == b else f"{path}: stored {a!r:.80}, sent {b!r:.80}"
