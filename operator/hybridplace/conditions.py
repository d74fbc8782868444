"""Status conditions: named types and reasons, set in the Kubernetes shape, Ready derived.

Conditions are a list keyed by type. A condition's lastTransitionTime moves only when its
status changes, so a reconcile that finds nothing new writes nothing new.
"""

from __future__ import annotations

from typing import Any

PROFILED = "Profiled"
PLACED = "Placed"
SLO_MET = "SLOMet"
READY = "Ready"
OBSERVED = "Observed"
ROUTED = "Routed"  # how a decision's traffic reaches its replicas (reasons: placement.ROUTINGS)

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

# Reasons, CamelCase.
ALL_MEASURED = "AllPoolsMeasured"
BENCHMARKING = "Benchmarking"
NO_USABLE_PROFILE = "NoUsableProfile"
SOME_POOLS_FAILED = "SomePoolsFailed"
NO_POOLS = "NoPools"
DECIDED = "Decided"
APPLIED = "Applied"
RECOMMENDED = "Recommended"
WAITING_FOR_PROFILES = "WaitingForProfiles"
INVALID_SPEC = "InvalidSpec"
SLO_PREDICTED_MET = "PredictedWithinSLO"
# Placed, and predicted over the SLO at its load though below its limit, with no configuration or
# replica more to mend it (placement/solver.py _within_slo; rare, and said in the decision).
SLO_PREDICTED_OVER = "PredictedOverSLO"
SLO_INFEASIBLE = "Infeasible"
OVER_CAPACITY = "OverCapacity"  # not placed: no room left on the pools that would meet the SLO
REPLICAS_AVAILABLE = "ReplicasAvailable"
REPLICAS_PENDING = "ReplicasPending"
NOT_PLACED = "NotPlaced"
NAME_CONFLICT = "NameConflict"
# Observed (scaling modes Operator and External) and SLOMet from observations.
OBSERVED_OK = "Observed"
OBSERVE_WAITING = "Waiting"
NO_PROMETHEUS = "NoPrometheus"
NO_DATA = "NoData"
UNREACHABLE = "Unreachable"
SLO_OBSERVED_MET = "ObservedWithinSLO"
SLO_OBSERVED_OVER = "ObservedOverSLO"
CHILD_REJECTED = "ChildRejected"
IMAGE_NOT_ALLOWED = "ImageNotAllowed"
# Routed: Weighted, EvenSpread, SinglePool (placement.ROUTINGS), NotPlaced; and a Warning Event
# when a Gateway is named and cannot be used.
SINGLE_POOL = "SinglePool"
GATEWAY_UNAVAILABLE = "GatewayUnavailable"


def condition(
    type_: str, status: str, reason: str, message: str, generation: int | None, now: str
) -> dict[str, Any]:
    found = {"type": type_, "status": status, "reason": reason, "message": message[:32768],
             "lastTransitionTime": now}
    if generation is not None:
        found["observedGeneration"] = generation
    return found


def set_condition(conditions: list[dict[str, Any]], new: dict[str, Any]) -> list[dict[str, Any]]:
    """`conditions` with `new` in place of the one of its type, keeping lastTransitionTime
    when the status did not change."""
    result: list[dict[str, Any]] = []
    replaced = False
    for old in conditions:
        if old.get("type") != new["type"]:
            result.append(old)
            continue
        replaced = True
        if old.get("status") == new["status"]:
            new = {**new, "lastTransitionTime": old.get("lastTransitionTime", new["lastTransitionTime"])}
        result.append(new)
    if not replaced:
        result.append(new)
    return result


def get_condition(conditions: list[dict[str, Any]] | None, type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions or [] if c.get("type") == type_), None)


def is_true(conditions: list[dict[str, Any]] | None, type_: str) -> bool:
    found = get_condition(conditions, type_)
    return found is not None and found.get("status") == TRUE


def derive_ready(
    conditions: list[dict[str, Any]], available: bool | None, recommend_only: bool
) -> tuple[str, str, str]:
    """Ready's (status, reason, message) from the other conditions and the serving replicas.

    `available` is whether every serving Deployment is available (None when unknown).
    """
    for type_ in (PROFILED, PLACED, SLO_MET):
        found = get_condition(conditions, type_)
        if found is None or found["status"] != TRUE:
            status = found["status"] if found else UNKNOWN
            reason = found["reason"] if found else NOT_PLACED
            return status, reason, f"{type_} is {status}: {found['message'] if found else 'not yet'}"
    if recommend_only:
        return TRUE, RECOMMENDED, "decision made; mode Recommend creates no serving Deployments"
    if available:
        return TRUE, REPLICAS_AVAILABLE, "every serving Deployment has its replicas available"
    return FALSE, REPLICAS_PENDING, "waiting for the serving replicas to become available"
