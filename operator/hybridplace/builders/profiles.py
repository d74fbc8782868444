"""From a benchmark pod's termination message to a ModelProfile (or a failure reason).

The worker writes one JSON document of at most 4096 bytes (workers/result.schema.json): either
a compact result whose rows map onto ModelProfile points, or {"ok": false, "reason", "message"}.
Nothing here trusts it: the profile is validated like any user object before it is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..api.models import API_VERSION
from ..api.validate import InvalidObject, parse_object
from . import names

_COLUMNS = {
    "b": "batchSize",
    "c": "concurrency",
    "p50": "p50Ms",
    "p95": "p95Ms",
    "p99": "p99Ms",
    "rps": "throughputRps",
    "ips": "throughputIps",
    "spread": "spread",
    "stable": "stable",
}


@dataclass(frozen=True)
class BenchmarkFailure:
    """Why a benchmark produced no profile: the worker's reason code, or one of ours."""

    reason: str
    message: str


def parse_termination_message(text: str | None) -> dict[str, Any] | BenchmarkFailure:
    """The worker's JSON document, or a failure naming what is wrong with the message."""
    if not text or not text.strip():
        return BenchmarkFailure("NoResult", "the benchmark pod left no termination message")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        tail = text.strip().splitlines()[-1][:300] if text.strip() else ""
        return BenchmarkFailure("InvalidResult", f"the termination message is not JSON: {tail}")
    if not isinstance(doc, dict) or doc.get("v") != 1:
        return BenchmarkFailure("InvalidResult", "the termination message is not a version 1 worker result")
    if doc.get("ok") is not True:
        reason = str(doc.get("reason") or "Unknown")
        return BenchmarkFailure(reason if reason.isalnum() else "Unknown", str(doc.get("message", ""))[:4000])
    return doc


def _point(cols: list[str], row: list[Any]) -> dict[str, Any]:
    point: dict[str, Any] = {}
    for col, value in zip(cols, row, strict=True):
        key = _COLUMNS.get(col)
        if key is None or value is None:
            continue
        point[key] = bool(value) if key == "stable" else value
    if "throughputIps" not in point and "throughputRps" in point and "batchSize" in point:
        point["throughputIps"] = point["throughputRps"] * point["batchSize"]
    return point


def _skipped(by_reason: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """The result's {reason: [[b, c], ...]} as ModelProfile spec.skipped entries, and how many
    came only as a count (the list did not fit the termination message): spec.skippedUnlisted."""
    listed: list[dict[str, Any]] = []
    unlisted = 0
    for reason, points in sorted(by_reason.items()):
        if isinstance(points, int):
            unlisted += points
            continue
        for b, c in points:
            listed.append({"batchSize": int(b), "concurrency": int(c), "reason": reason})
    return listed, unlisted


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{field}: not an object ({type(value).__name__})")
    return value


def build_model_profile(
    result: dict[str, Any], *, namespace: str, pool: str, node: str | None, source: str,
    benchmark_key: str | None = None, worker_image: str | None = None,
    node_labels: dict[str, str] | None = None,
) -> dict[str, Any] | BenchmarkFailure:
    """The ModelProfile for a worker result measured on `pool`, validated, or why not.
    `benchmark_key` (the Job's label) and `worker_image` say what it was measured with, and
    `node_labels` (the node's) what on: the instance type and GPU product are recorded, so that
    a change of any of them is seen (controller/reprofile.py)."""
    try:
        model = _object(result["model"], "model")
        device = {k: v for k, v in _object(result["device"], "device").items() if v is not None}
        cols = list(result["cols"])
        points = [_point(cols, row) for row in result["points"]]
        skipped, unlisted = _skipped(_object(result.get("skipped") or {}, "skipped"))
        if not isinstance(model.get("digest", ""), str):
            raise TypeError("model.digest: not a string")
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        # The worker runs the user's model code: its result is input, whatever its shape.
        return BenchmarkFailure("InvalidResult", f"the worker result lacks or garbles {err}")
    if node:
        device["node"] = node
    for label, key in ((names.NODE_LABEL_INSTANCE_TYPE, "instanceType"), (names.NODE_LABEL_GPU_PRODUCT, "gpuProduct")):
        value = (node_labels or {}).get(label)
        if value:
            device[key] = value[:63]
    digest = model.get("digest", "")
    profile = {
        "apiVersion": API_VERSION,
        "kind": "ModelProfile",
        "metadata": {
            "name": names.profile_name(digest, pool) if digest.startswith("sha256:") else "invalid",
            "namespace": namespace,
            "labels": {
                names.LABEL_MANAGED_BY: names.MANAGED_BY,
                names.LABEL_POOL: pool,
                names.LABEL_DIGEST: names.digest_label(digest) if ":" in digest else "",
                **({names.LABEL_BENCHMARK_KEY: benchmark_key} if benchmark_key else {}),
            },
            **({"annotations": {names.ANNOTATION_WORKER_IMAGE: worker_image[:512]}} if worker_image else {}),
        },
        "spec": {
            "model": {k: model[k] for k in ("digest", "name", "format") if k in model},
            "pool": pool,
            "engine": result.get("engine", "torch"),
            "device": device,
            "workerVersion": result.get("workerVersion"),
            "measuredAt": result.get("measuredAt"),
            "provenance": "measured",
            "source": source[:1024],
            "points": points,
            "search": result.get("search"),
            "skipped": skipped or None,
            "skippedUnlisted": unlisted or None,
            "requestOverheadMs": result.get("requestOverheadMs"),
        },
    }
    profile["spec"] = {k: v for k, v in profile["spec"].items() if v is not None}
    try:
        parse_object(profile)
    except InvalidObject as err:
        return BenchmarkFailure("InvalidResult", f"the worker result is not a valid profile: {err}")
    return profile
