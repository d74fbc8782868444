"""What one InferenceDeployment needs, computed from what is known: a pure function.

`plan_inference_deployment` reads the spec, the pools, the profiles, the benchmark Jobs and the
serving children (all already in memory) and returns a `Plan`: Jobs to create, the decision,
the children to apply or delete, the new status and the Events that tell a user what changed.
The reconciler then carries it out. No Kubernetes I/O here, so every branch is unit-tested.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from .. import conditions as c
from ..api.builtins import builtin_digest
from ..api.fit import fit_status
from ..api.models import HardwarePool, InferenceDeployment, ModelProfile
from ..builders import names
from ..builders.jobs import build_benchmark_job
from ..builders.serving import build_service, build_serving_deployment
from ..config import Settings
from ..placement import NO_PROFILE, Alternative, Decision, Pool, Profile, Request, solve
from ..placement.from_api import failed_profile, pool_from, profile_from, request_from

MEASURED, PENDING, FAILED, MISSING = "Measured", "Pending", "Failed", "Missing"


@dataclass(frozen=True)
class JobState:
    """A benchmark Job as the operator sees it."""

    name: str
    active: bool = False
    succeeded: bool = False
    failed: bool = False
    reason: str | None = None  # the worker's reason code once the operator has read it
    message: str | None = None


@dataclass(frozen=True)
class ChildState:
    """A serving Deployment of this InferenceDeployment that exists."""

    name: str
    pool: str
    fingerprint: str  # of the fields the operator sets (see fingerprint.py)
    replicas: int
    available_replicas: int
    owned: bool  # controlled by this InferenceDeployment (same uid)
    applied_fingerprint: str | None = None  # what the operator last applied (its annotation)


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
    job: str | None = None  # BenchmarkStarted: the Job it announces, posted only once that Job is created


@dataclass
class Plan:
    digest: str | None
    status: dict[str, Any]
    jobs_to_create: list[dict[str, Any]] = field(default_factory=list)
    deployments: list[dict[str, Any]] = field(default_factory=list)
    services: list[dict[str, Any]] = field(default_factory=list)
    stale_deployments: list[str] = field(default_factory=list)  # names to delete
    stale_services: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    decision: Decision | None = None
    conflicts: list[str] = field(default_factory=list)  # "Kind/name" that exist and are not ours
    rejected: dict[str, str] = field(default_factory=dict)  # "Kind/name": why the API server refused it
    drift: list[Event] = field(default_factory=list)  # children changed by hand, being put back
    services_to_apply: list[dict[str, Any]] = field(default_factory=list)  # ours, changed by hand


def model_digest(infd: InferenceDeployment) -> str:
    model = infd.spec.model
    return builtin_digest(model.builtin) if model.builtin else str(model.digest)


def model_label(infd: InferenceDeployment) -> str:
    model = infd.spec.model
    return f"builtin:{model.builtin}" if model.builtin else str(model.uri)


def _pool_states(
    infd: InferenceDeployment,
    digest: str,
    pools: dict[str, HardwarePool],
    profiles: dict[str, ModelProfile],
    jobs: dict[str, JobState],
    settings: Settings,
    pool_errors: dict[str, str],
    duplicates: dict[str, list[str]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Each allowed pool's profile state, and the benchmark Jobs that must be started. A pool
    that does not parse is left out where all pools are allowed, and reported where it is named."""
    namespace = str(infd.metadata.namespace)
    # Every pool that admits the namespace when none is named; a named pool that does not
    # admit it is reported.
    allowed = infd.spec.placement.pools or sorted(n for n, p in pools.items() if p.spec.allows(namespace))
    states: list[dict[str, Any]] = []
    to_create: list[dict[str, Any]] = []
    for name in sorted(set(allowed)):
        pool = pools.get(name)
        job = jobs.get(name)
        if pool is None and name in pool_errors:
            states.append({"pool": name, "state": MISSING, "reason": "InvalidPool",
                           "message": f"HardwarePool {name} cannot be used: {pool_errors[name]}"})
        elif pool is not None and not pool.spec.allows(namespace):
            states.append({"pool": name, "state": MISSING, "reason": "NamespaceNotAllowed",
                           "message": f"HardwarePool {name} does not admit namespace {namespace} "
                                      "(spec.allowedNamespaces)"})
        elif pool is None:
            states.append({"pool": name, "state": MISSING, "reason": "PoolNotFound",
                           "message": f"HardwarePool {name} does not exist"})
        elif name in profiles and name in duplicates:
            used, *others = duplicates[name]
            states.append({"pool": name, "state": MEASURED, "name": profiles[name].metadata.name,
                           "reason": "DuplicateProfiles",
                           "message": f"{len(others) + 1} ModelProfiles for this model digest and pool: "
                                      f"using {used} (newest measuredAt), not {', '.join(others)}; "
                                      "delete the ones not wanted"})
        elif name in profiles:
            states.append({"pool": name, "state": MEASURED, "name": profiles[name].metadata.name})
        elif (no_nodes := _no_nodes(pool)) is not None:
            states.append({"pool": name, "state": FAILED, **no_nodes})
        elif job is not None and job.failed:
            states.append({"pool": name, "state": FAILED, "reason": job.reason or "BenchmarkFailed",
                           "message": job.message or f"benchmark Job {job.name} failed"})
        elif job is not None:
            waiting = "running" if job.active else "finished; its result is being recorded"
            states.append({"pool": name, "state": PENDING, "reason": "Benchmarking",
                           "message": f"benchmark Job {job.name} {waiting}"})
        else:
            job_obj = build_benchmark_job(
                namespace=str(infd.metadata.namespace), digest=digest, model=infd.spec.model,
                benchmark=infd.spec.benchmark, pool=pool,
                image=settings.image_for(pool.spec.accelerator.type),
                ttl_seconds=settings.job_ttl_seconds, backoff_limit=settings.benchmark_backoff_limit,
            )
            to_create.append(job_obj)
            states.append({"pool": name, "state": PENDING, "reason": "Benchmarking",
                           "message": f"benchmark Job {job_obj['metadata']['name']} created"})
    return states, to_create


def _no_nodes(pool: HardwarePool) -> dict[str, str] | None:
    """Why `pool` cannot run a benchmark now, if its observed status says it has no ready node."""
    if pool.status is None or pool.status.ready_nodes is None or pool.status.ready_nodes > 0:
        return None
    ready = next((x for x in pool.status.conditions or [] if x.type == c.READY), None)
    reason = ready.reason if ready is not None else "NoReadyNodes"
    message = ready.message if ready is not None else "the pool has no ready node"
    return {"reason": reason, "message": f"HardwarePool {pool.name}: {message}"}


def _profiled_condition(states: list[dict[str, Any]]) -> tuple[str, str, str]:
    counts = {s: sum(1 for x in states if x["state"] == s) for s in (MEASURED, PENDING, FAILED, MISSING)}
    if not states:
        return c.FALSE, c.NO_POOLS, "no HardwarePool is allowed or exists"
    if counts[PENDING]:
        done = counts[MEASURED] + counts[FAILED] + counts[MISSING]
        return c.FALSE, c.BENCHMARKING, f"{done} of {len(states)} pools measured or excluded; benchmarking the rest"
    if not counts[MEASURED]:
        why = "; ".join(f"{s['pool']}: {s.get('reason')}: {s.get('message', '')}" for s in states)
        return c.FALSE, c.NO_USABLE_PROFILE, f"no allowed pool could be measured: {why}"
    if counts[FAILED] or counts[MISSING]:
        left_out = ", ".join(f"{s['pool']} ({s.get('reason')})" for s in states if s["state"] in (FAILED, MISSING))
        return c.TRUE, c.SOME_POOLS_FAILED, f"{counts[MEASURED]} pools measured; left out: {left_out}"
    return c.TRUE, c.ALL_MEASURED, f"all {counts[MEASURED]} pools measured"


def _decide(
    infd: InferenceDeployment,
    pools: dict[str, HardwarePool],
    profiles: dict[str, ModelProfile],
    states: list[dict[str, Any]],
) -> Decision:
    measured = [s["pool"] for s in states if s["state"] == MEASURED]
    failed = [s for s in states if s["state"] == FAILED]
    engine_pools = [pool_from(pools[n]) for n in measured] + [pool_from(pools[s["pool"]]) for s in failed]
    engine_profiles = [profile_from(profiles[n]) for n in measured] + [
        failed_profile(s["pool"], s.get("reason", ""), s.get("message", "")) for s in failed
    ]
    decision = _solve_cached(request_from(infd), tuple(engine_pools), tuple(engine_profiles))
    missing = [
        Alternative(pool=s["pool"], reason=NO_PROFILE, message=s["message"])
        for s in states if s["state"] == MISSING
    ]
    if missing:
        decision = dataclasses.replace(decision, alternatives=tuple(decision.alternatives) + tuple(missing))
    return decision


@functools.lru_cache(maxsize=4096)
def _solve_cached(request: Request, pools: tuple[Pool, ...], profiles: tuple[Profile, ...]) -> Decision:
    """solve() is pure and its inputs are frozen, so the same question gets the remembered
    answer: reconciles triggered by status or child events cost almost nothing."""
    return solve(request, pools, profiles)


def _summary(infd: InferenceDeployment, decision: Decision | None) -> dict[str, Any]:
    summary: dict[str, Any] = {"slo": infd.spec.slo.describe()}
    if decision is not None and decision.feasible:
        summary["pools"] = "+".join(f"{p.pool}:{p.replicas}" for p in decision.placements)
        summary["replicas"] = sum(p.replicas for p in decision.placements)
        summary["predictedLatencyMs"] = round(max(p.predicted_latency_ms for p in decision.placements), 4)
        summary["costPerHour"] = round(decision.total_cost_per_hour, 4)
    elif decision is not None:
        summary["pools"] = "none (infeasible)"
    return summary


def plan_inference_deployment(
    infd: InferenceDeployment,
    *,
    pools: dict[str, HardwarePool],
    profiles: dict[str, ModelProfile],
    jobs: dict[str, JobState],
    children: dict[str, ChildState],
    service_names: set[str],
    settings: Settings,
    now: str,
    fingerprint: Any,
    blocked: frozenset[str] = frozenset(),
    pool_errors: dict[str, str] | None = None,
    rejected: dict[str, str] | None = None,
    duplicate_profiles: dict[str, list[str]] | None = None,
    service_fingerprints: dict[str, str] | None = None,
    service_fingerprint: Any = None,
) -> Plan:
    """The plan for `infd`; `profiles`, `jobs` and `children` are keyed by pool name and are
    those of this InferenceDeployment's model digest and namespace. `fingerprint(obj)` gives the
    fingerprint of a desired child, comparable with `ChildState.fingerprint`."""
    old_status = (infd.status.to_dict() if infd.status else {})
    generation = infd.metadata.generation
    conds: list[dict[str, Any]] = list(old_status.get("conditions", []))
    digest = model_digest(infd)
    plan = Plan(digest=digest, status={})

    states, plan.jobs_to_create = _pool_states(infd, digest, pools, profiles, jobs, settings, pool_errors or {},
                                                duplicate_profiles or {})
    profiled = _profiled_condition(states)
    conds = c.set_condition(conds, c.condition(c.PROFILED, *profiled, generation, now))

    decision: Decision | None = None
    apply = infd.spec.placement.mode == "Apply"
    available: bool | None = None
    if profiled[0] == c.TRUE:
        decision = _decide(infd, pools, profiles, states)
        plan.decision = decision
    if decision is None:
        waiting = c.WAITING_FOR_PROFILES if profiled[1] == c.BENCHMARKING else profiled[1]
        conds = c.set_condition(
            conds, c.condition(c.PLACED, c.FALSE, waiting, "no decision yet: " + profiled[2], generation, now))
        conds = c.set_condition(conds, c.condition(c.SLO_MET, c.UNKNOWN, waiting, "no decision yet", generation, now))
    elif not decision.feasible:
        best = ""
        if decision.best_achievable_latency_ms is not None:
            best = (f"; best achievable p{infd.spec.slo.percentile} is {decision.best_achievable_latency_ms:.4g} ms "
                    f"on {decision.best_achievable_pool} at batch {decision.best_achievable_batch_size}")
        message = (f"no placement meets {infd.spec.slo.describe()} at {infd.spec.load.target_rps:g} requests/s"
                   f"{best}; serving Deployments are left as they are")
        conds = c.set_condition(conds, c.condition(c.PLACED, c.FALSE, c.SLO_INFEASIBLE, message, generation, now))
        conds = c.set_condition(conds, c.condition(c.SLO_MET, c.FALSE, c.SLO_INFEASIBLE, message, generation, now))
    else:
        image_problem = image_not_allowed(infd.spec.serving.image, settings.allowed_image_registries)
        if apply and image_problem:
            available = False
            reason, verb = c.IMAGE_NOT_ALLOWED, f"not placed: {image_problem}. Decision"
        elif apply:
            available = _plan_children(
                plan, infd, digest, decision, pools, children, service_names, settings, fingerprint, blocked,
                rejected or {}, _ServiceDrift(service_fingerprints or {}, service_fingerprint))
            reason, verb = c.APPLIED, "placed"
        else:
            reason, verb = c.RECOMMENDED, "recommended (mode Recommend: nothing applied)"
        if plan.conflicts:
            reason, verb = c.NAME_CONFLICT, (
                f"not placed: {', '.join(sorted(set(plan.conflicts)))} exists and is not owned by this "
                "InferenceDeployment (left untouched; rename one of them). Decision")
        if plan.rejected:
            why = "; ".join(f"{ref}: {message}" for ref, message in sorted(plan.rejected.items()))
            reason, verb = c.CHILD_REJECTED, (
                f"not placed: the API server refused {why} (tried again after the resync period). Decision")
        status_placed = c.FALSE if plan.conflicts or plan.rejected or (apply and image_problem) else c.TRUE
        conds = c.set_condition(
            conds, c.condition(c.PLACED, status_placed, reason, f"{verb}: {decision.message}", generation, now))
        worst = max(p.predicted_latency_ms for p in decision.placements)
        conds = c.set_condition(conds, c.condition(
            c.SLO_MET, c.TRUE, c.SLO_PREDICTED_MET,
            f"predicted p{infd.spec.slo.percentile} {worst:.4g} ms within {infd.spec.slo.describe()}", generation, now))
    ready = c.derive_ready(conds, available, recommend_only=not apply)
    conds = c.set_condition(conds, c.condition(c.READY, *ready, generation, now))

    status: dict[str, Any] = {
        "observedGeneration": generation,
        "modelDigest": digest,
        "conditions": conds,
        "profiles": states,
        "summary": _summary(infd, decision),
    }
    if decision is not None:
        new = decision.to_dict()
        new["alternatives"] = new["alternatives"][: settings.max_alternatives]
        new = fit_status("InferenceDeployment", {"decision": new})["decision"]  # as it will be stored
        old = dict(old_status.get("decision") or {})
        decided_at = old.pop("decidedAt", None)
        status["decision"] = {**new, "decidedAt": decided_at if _same(old, new) and decided_at else now}
    elif "decision" in old_status:
        status["decision"] = old_status["decision"]  # keep the last decision while re-measuring
    plan.status = fit_status("InferenceDeployment", status)
    plan.events = _events(infd, old_status, status, plan) + plan.drift
    return plan


def image_not_allowed(image: str | None, registries: tuple[str, ...]) -> str | None:
    """Why `spec.serving.image` may not run here, or None: with an allow-list set, an image must
    come from one of its registries (or repository prefixes). An image without a registry is
    Docker Hub's (docker.io/library/...), as the container runtime reads it."""
    if not image or not registries:
        return None
    first = image.split("/", 1)[0]
    full = image if "/" in image and ("." in first or ":" in first or first == "localhost") else (
        f"docker.io/{image}" if "/" in image else f"docker.io/library/{image}")
    if any(full.startswith(r.rstrip("/") + "/") for r in registries):
        return None
    return (f"spec.serving.image {image[:200]!r} is not from an allowed registry (allowed: "
            f"{', '.join(registries)}; set by the operator's --allowed-image-registries)")


def status_changed(new: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether writing `new` (a merge patch) would change `stored`: a null in `new` only
    clears a field, so a null where `stored` has nothing changes nothing."""
    return _without_nulls(new) != stored


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _same(old: dict[str, Any], new: dict[str, Any]) -> bool:
    strip = {k: v for k, v in new.items() if v is not None}
    return {k: v for k, v in old.items() if v is not None} == strip


def _plan_children(
    plan: Plan,
    infd: InferenceDeployment,
    digest: str,
    decision: Decision,
    pools: dict[str, HardwarePool],
    children: dict[str, ChildState],
    service_names: set[str],
    settings: Settings,
    fingerprint: Any,
    blocked: frozenset[str],
    rejected: dict[str, str],
    drift: _ServiceDrift,
) -> bool:
    """Fill the plan's children to apply and delete; returns whether all are available.
    Names in `blocked` belong to someone else: they are reported as conflicts, never touched."""
    chosen = {p.pool: p for p in decision.placements}
    all_available = True
    for pool_name, placement in sorted(chosen.items()):
        pool = pools[pool_name]
        image = infd.spec.serving.image or settings.image_for(pool.spec.accelerator.type)
        desired = build_serving_deployment(
            infd=infd, digest=digest, pool=pool, replicas=placement.replicas,
            batch_size=placement.batch_size, image=image, instances=placement.concurrency,
        )
        child = children.get(pool_name)
        ref = f"Deployment/{desired['metadata']['name']}"
        if ref in rejected:
            plan.rejected[ref] = rejected[ref]
            all_available = False
        elif ref in blocked or (child is not None and not child.owned):
            plan.conflicts.append(ref)  # someone else's: never touched
            all_available = False
        elif child is None or child.fingerprint != fingerprint(desired):
            want = fingerprint(desired)
            desired["metadata"]["annotations"][names.ANNOTATION_FINGERPRINT] = want
            plan.deployments.append(desired)
            all_available = False
            if child is not None and child.applied_fingerprint == want:  # not a new decision: an edit
                plan.drift.append(Event("Warning", "DriftRestored", (
                    f"Deployment/{child.name} differs from what the operator set (edited by hand?); "
                    "putting it back")))
        elif child.available_replicas < placement.replicas:
            all_available = False
        if len(chosen) > 1:  # a split: one Service per pool, for weighted routing
            _plan_service(plan, build_service(infd=infd, pool=pool_name), service_names, blocked, rejected, drift)
    _plan_service(plan, build_service(infd=infd), service_names, blocked, rejected, drift)
    for pool_name, child in sorted(children.items()):
        if pool_name not in chosen and child.owned:
            plan.stale_deployments.append(child.name)
    # Per-pool Services of pools no longer in a split (or of a split that became one pool).
    keep = {names.serving_name(str(infd.metadata.name), p) for p in chosen} if len(chosen) > 1 else set()
    for pool_name in sorted(pools.keys() | children.keys()):
        stale = names.serving_name(str(infd.metadata.name), pool_name)
        if stale in service_names and stale not in keep:
            plan.stale_services.append(stale)
    return all_available


@dataclass(frozen=True)
class _ServiceDrift:
    """The live Services' fingerprints by name, and how to fingerprint a desired one."""

    live: dict[str, str]
    fingerprint: Any


def _plan_service(
    plan: Plan, service: dict[str, Any], existing: set[str], blocked: frozenset[str], rejected: dict[str, str],
    drift: _ServiceDrift | None = None,
) -> None:
    name = service["metadata"]["name"]
    ref = f"Service/{name}"
    if ref in rejected:
        plan.rejected[ref] = rejected[ref]
    elif ref in blocked:
        plan.conflicts.append(ref)
    elif name not in existing:
        plan.services.append(service)
    elif drift is not None and drift.fingerprint is not None and name in drift.live \
            and drift.live[name] != drift.fingerprint(service):
        plan.services_to_apply.append(service)  # changed by hand (a NodePort, other ports): put back
        plan.drift.append(Event("Warning", "DriftRestored",
                                f"{ref} differs from what the operator set (edited by hand?); putting it back"))


def _events(
    infd: InferenceDeployment, old: dict[str, Any], new: dict[str, Any], plan: Plan
) -> list[Event]:
    """Events for what changed between the old and the new status (nothing, when nothing did)."""
    events: list[Event] = []
    model = model_label(infd)
    for job in plan.jobs_to_create:
        pool = job["metadata"]["labels"][names.LABEL_POOL]
        events.append(Event("Normal", "BenchmarkStarted",
                            f"measuring {model} on pool {pool} with Job {job['metadata']['name']}",
                            job=job["metadata"]["name"]))
    old_states = {s["pool"]: s for s in old.get("profiles", [])}
    measured = []
    for state in new["profiles"]:
        before = old_states.get(state["pool"], {})
        if before.get("state") == state["state"] and before.get("reason") == state.get("reason"):
            continue
        if state["state"] == MEASURED and state.get("reason") == "DuplicateProfiles":
            events.append(Event("Warning", "DuplicateProfiles", f"pool {state['pool']}: {state['message']}"))
        elif state["state"] == MEASURED:
            measured.append(f"{state['pool']} (ModelProfile {state['name']})")
        elif state["state"] == FAILED:
            events.append(Event("Warning", "BenchmarkFailed",
                                f"pool {state['pool']} left out: {state['reason']}: {state['message']}"))
        elif state["state"] == MISSING:
            events.append(Event("Warning", state["reason"], f"{state['message']}; it is left out"))
    old_conds = {x["type"]: x for x in old.get("conditions", [])}
    if measured:
        events.append(Event("Normal", "Profiled", f"measured on {', '.join(measured)}"))
    for cond in new["conditions"]:
        before = old_conds.get(cond["type"], {})
        if (before.get("status"), before.get("reason")) == (cond["status"], cond["reason"]) and \
                not (cond["type"] == c.PLACED and _placement_changed(old, new)):
            continue
        if cond["type"] == c.PLACED and cond["status"] == c.TRUE:
            events.append(Event("Normal", cond["reason"], cond["message"]))
        elif cond["type"] == c.PLACED and cond["reason"] in (c.NAME_CONFLICT, c.CHILD_REJECTED, c.IMAGE_NOT_ALLOWED):
            events.append(Event("Warning", cond["reason"], cond["message"]))
        elif cond["type"] == c.SLO_MET and cond["status"] == c.FALSE:
            events.append(Event("Warning", cond["reason"], cond["message"]))
        elif cond["type"] == c.READY and cond["status"] == c.TRUE:
            events.append(Event("Normal", "Ready", cond["message"]))
    return events


def _placement_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return (old.get("summary") or {}).get("pools") != (new.get("summary") or {}).get("pools")
