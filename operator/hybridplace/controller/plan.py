"""What one InferenceDeployment needs, computed from what is known: a pure function.

`plan_inference_deployment` reads the spec, the pools, the profiles, the benchmark Jobs and the
serving children (all already in memory) and returns a `Plan`: Jobs to create, the decision,
the children to apply or delete, the new status and the Events that tell a user what changed.
The reconciler then carries it out. No Kubernetes I/O here, so every branch is unit-tested.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from dataclasses import dataclass, field
from typing import Any

from .. import conditions as c
from ..api.builtins import builtin_digest
from ..api.fit import fit_status
from ..api.models import HardwarePool, InferenceDeployment, ModelProfile
from ..builders import names
from ..builders.jobs import DEADLINE_MARGIN_SECONDS, benchmark_key, build_benchmark_job
from ..builders.routing import Routing, backend_services, build_http_route, route_name
from ..builders.serving import build_service, build_serving_deployment
from ..config import Settings
from ..placement import (
    EVEN_SPREAD,
    NO_PROFILE,
    NOT_ALLOWED,
    OVER_CAPACITY,
    WEIGHTED,
    Alternative,
    Decision,
    Pool,
    Profile,
    Request,
    route_weights,
    solve,
)
from ..placement.calibration import (
    Calibration,
    CalibrationPolicy,
    CalibrationSample,
    calibrate,
    carried_over,
    worth_writing,
)
from ..placement.from_api import failed_profile, pool_from, profile_from, request_from
from ..placement.latency import within_slo
from ..placement.scaling import LoadDecision, ScalingPolicy, Size, plan_load
from ..placement.solver import predicted_latency_at
from .observe import window_seconds
from .observer import Observed
from .reprofile import CalibrationReading, ReprofileInputs, age_due_in, epoch, max_age, reprofile_reason

MEASURED, PENDING, FAILED, MISSING = "Measured", "Pending", "Failed", "Missing"
# Reasons of a Measured pool whose profile is being measured again (the old one still used).
REPROFILING, REPROFILE_FAILED = "Reprofiling", "ReprofileFailed"
BENCHMARK_REJECTED = "BenchmarkRejected"


@dataclass(frozen=True)
class JobState:
    """A benchmark Job as the operator sees it."""

    name: str
    active: bool = False
    succeeded: bool = False
    failed: bool = False
    reason: str | None = None  # the worker's reason code once the operator has read it
    message: str | None = None
    uid: str | None = None
    recorded: str | None = None  # the measuredAt of the ModelProfile its result became, once written


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
    # Its last change is rolled out: every pod runs the current template and none of the old
    # ones is left (Kubernetes' own test: observedGeneration, updatedReplicas, replicas).
    rolled_out: bool = True
    uid: str | None = None  # the Deployment's own: a delete names it, never a namesake made since
    # Not owned, but controlled by an earlier InferenceDeployment of this name (deleted, then
    # created again): the garbage collector is about to delete it.
    earlier: bool = False


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
    collected: list[str] = field(default_factory=list)  # of those, an earlier namesake's, being collected
    route_withheld: str | None = None  # why the HTTPRoute the decision wants is not applied
    rejected: dict[str, str] = field(default_factory=dict)  # "Kind/name": why the API server refused it
    drift: list[Event] = field(default_factory=list)  # children changed by hand, being put back
    services_to_apply: list[dict[str, Any]] = field(default_factory=list)  # ours, changed by hand
    outgoing: list[str] = field(default_factory=list)  # pools left, serving until the chosen ones are Available
    # Finished benchmark Jobs to delete before their pool is measured again: (name, uid).
    jobs_to_delete: list[tuple[str, str | None]] = field(default_factory=list)
    reprofiling: dict[str, str] = field(default_factory=dict)  # Job name: why its pool is measured again
    recheck_after: float | None = None  # seconds until a profile gets too old: reconcile again then
    route: dict[str, Any] | None = None  # a weighted split's HTTPRoute, to apply when it differs
    stale_route: str | None = None  # an HTTPRoute of ours no longer wanted (the split ended): delete


def model_digest(infd: InferenceDeployment) -> str:
    model = infd.spec.model
    return builtin_digest(model.builtin) if model.builtin else str(model.digest)


def model_label(infd: InferenceDeployment) -> str:
    model = infd.spec.model
    return f"builtin:{model.builtin}" if model.builtin else str(model.uri)


def _pool_states(
    plan: Plan,
    infd: InferenceDeployment,
    digest: str,
    pools: dict[str, HardwarePool],
    profiles: dict[str, ModelProfile],
    jobs: dict[str, JobState],
    settings: Settings,
    pool_errors: dict[str, str],
    duplicates: dict[str, list[str]],
    now: float,
    reprofile: ReprofileInputs,
    rejected: dict[str, str],
) -> list[dict[str, Any]]:
    """Each allowed pool's profile state; the benchmark Jobs to start (and finished ones to
    delete first) go into `plan`. A pool that does not parse is left out where all pools are
    allowed, and reported where it is named. A Job the API server refused (`rejected`, "Job/name")
    is not sent again before a resync period: its pool says why (_refused)."""
    namespace = str(infd.metadata.namespace)
    # Every pool that admits the namespace when none is named; a named pool that does not
    # admit it is reported.
    allowed = infd.spec.placement.pools or sorted(n for n, p in pools.items() if p.spec.allows(namespace))
    states: list[dict[str, Any]] = []
    key = benchmark_key(infd.spec.benchmark, infd.spec.serving.image)
    refused: dict[str, tuple[str, str]] = {}  # pool: (Job name, the API server's answer)

    def new_job(pool: HardwarePool) -> dict[str, Any]:
        job_obj = build_benchmark_job(
            namespace=namespace, digest=digest, model=infd.spec.model,
            benchmark=infd.spec.benchmark, pool=pool,
            image=settings.image_for(pool.spec.accelerator.type),
            ttl_seconds=settings.job_ttl_seconds, backoff_limit=settings.benchmark_backoff_limit,
            slo=infd.spec.slo, serving_image=infd.spec.serving.image,
        )
        if (why := rejected.get(f"Job/{job_obj['metadata']['name']}")) is not None:
            refused[pool.metadata.name] = (job_obj["metadata"]["name"], why)
        else:
            plan.jobs_to_create.append(job_obj)
        return job_obj

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
        elif name in profiles:
            profile = profiles[name]
            state: dict[str, Any] = {"pool": name, "state": MEASURED, "name": profile.metadata.name}
            if name in duplicates:
                used, *others = duplicates[name]
                state.update(reason="DuplicateProfiles", message=(
                    f"{len(others) + 1} ModelProfiles for this model digest and pool: using {used} (newest "
                    f"measuredAt), not {', '.join(others)}; delete the ones not wanted"))
            age = max_age(infd, pool, settings.profile_max_age_seconds)
            due = age_due_in(profile, now, age)
            if due is not None and due > 0:
                plan.recheck_after = min(due, plan.recheck_after or due)
            why = reprofile_reason(profile, now=now, age=age, key=key,
                                   worker_image=settings.image_for(pool.spec.accelerator.type), inputs=reprofile)
            if why is not None:
                _plan_reprofile(plan, state, why, pool, profile, job, new_job)
            states.append(state)
        elif (no_nodes := _no_nodes(pool)) is not None:
            states.append({"pool": name, "state": FAILED, **no_nodes})
        elif job is not None and job.failed:
            states.append({"pool": name, "state": FAILED, "reason": job.reason or "BenchmarkFailed",
                           "message": _in_spec_terms(job.message or f"benchmark Job {job.name} failed")})
        elif job is not None and job.succeeded and job.recorded:
            # Its result was recorded and the ModelProfile is gone (deleted): measure again now,
            # not when the finished Job's TTL runs out.
            plan.jobs_to_delete.append((job.name, job.uid))
            job_obj = new_job(pool)
            states.append({"pool": name, "state": PENDING, "reason": "Benchmarking",
                           "message": f"benchmark Job {job_obj['metadata']['name']} created (the ModelProfile "
                                      "its last run recorded was deleted)"})
        elif job is not None:
            waiting = "running" if job.active else "finished; its result is being recorded"
            states.append({"pool": name, "state": PENDING, "reason": "Benchmarking",
                           "message": f"benchmark Job {job.name} {waiting}"})
        else:
            job_obj = new_job(pool)
            states.append({"pool": name, "state": PENDING, "reason": "Benchmarking",
                           "message": f"benchmark Job {job_obj['metadata']['name']} created"})
    _refused(states, refused, settings)
    return states


def _refused(states: list[dict[str, Any]], refused: dict[str, tuple[str, str]], settings: Settings) -> None:
    """The pools whose benchmark Job the API server refused (a 4xx: a pool whose nodeSelector,
    tolerations or replicaResources no pod may have) say why, instead of the whole reconcile failing in
    a loop: Failed, or a Measured pool's re-measurement failed."""
    for state in states:
        if state["pool"] not in refused:
            continue
        job_name, why = refused[state["pool"]]
        message = (f"the API server refused benchmark Job {job_name}: {why}; check HardwarePool {state['pool']} "
                   f"(spec.nodeSelector, spec.tolerations, spec.replicaResources); tried again in "
                   f"{settings.resync_seconds:g}s (--resync-seconds)")
        if state["state"] == MEASURED:
            state.update(reason=REPROFILE_FAILED, message=f"{message}; ModelProfile {state.get('name')} is used "
                                                          "until a new one is recorded")
        else:
            state.update(state=FAILED, reason=BENCHMARK_REJECTED, message=message)


def _plan_reprofile(plan: Plan, state: dict[str, Any], why: str, pool: HardwarePool, profile: ModelProfile,
                    job: JobState | None, new_job: Any) -> None:
    """A pool whose profile must be measured again: start (or wait for) a benchmark Job. The
    state stays Measured with the old profile, used until the new one is recorded."""
    name = profile.metadata.name
    keep = f"ModelProfile {name} is used until the new one is recorded"
    recorded = epoch(job.recorded) if job is not None and job.recorded else None
    if job is not None and job.active:
        state.update(reason=REPROFILING, message=f"{why}; benchmark Job {job.name} is measuring; {keep}")
    elif job is not None and job.failed:
        state.update(reason=REPROFILE_FAILED, message=(
            f"{why}; measuring again failed ({job.reason}: {job.message or 'see Job ' + job.name}); {keep}; "
            f"tried again once benchmark Job {job.name} is gone (--job-ttl-seconds)"))
    elif job is not None and job.succeeded and (recorded is None
                                                 or recorded > (epoch(profile.spec.measured_at) or 0.0)):
        # Its result is being recorded, or the profile it wrote has not reached us yet.
        state.update(reason=REPROFILING, message=f"{why}; benchmark Job {job.name} finished; its result is "
                                                 f"being recorded; {keep}")
    elif (no_nodes := _no_nodes(pool)) is not None:
        state.update(reason=REPROFILING, message=f"{why}; waiting for a ready node: {no_nodes['message']}; {keep}")
    else:
        if job is not None:  # finished, and what it recorded is the profile now due: replaced
            plan.jobs_to_delete.append((job.name, job.uid))
        job_obj = new_job(pool)
        plan.reprofiling[job_obj["metadata"]["name"]] = why
        state.update(reason=REPROFILING, message=f"{why}; benchmark Job {job_obj['metadata']['name']} created; "
                                                 f"{keep}")


def _in_spec_terms(message: str) -> str:
    """The worker's message, with what its flags are in the InferenceDeployment's spec where it
    names them: a plan that cannot fit its deadline is mended in spec.benchmark, not on a
    command line the user never wrote."""
    if "--deadline-seconds" not in message:
        return message
    return (f"{message} (in spec.benchmark: the deadline is budgetSeconds less {DEADLINE_MARGIN_SECONDS} s; "
            "durationSeconds, batchSizes, concurrency and budgetPoints make the plan)")


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


def _engine_inputs(
    pools: dict[str, HardwarePool], profiles: dict[str, ModelProfile], states: list[dict[str, Any]],
    taken: dict[str, int] | None = None, factors: dict[str, float] | None = None,
) -> tuple[tuple[Pool, ...], tuple[Profile, ...]]:
    """The solver's pools and profiles; `taken`: replicas other InferenceDeployments hold on each
    pool, so that the solver sees the free room plus this deployment's own; `factors`: each
    pool's calibration (observed over predicted latency)."""
    taken, factors = taken or {}, factors or {}
    measured = [s["pool"] for s in states if s["state"] == MEASURED]
    failed = [s for s in states if s["state"] == FAILED]
    engine_pools = [pool_from(pools[n], taken.get(n, 0), factors.get(n, 1.0)) for n in measured] + [
        pool_from(pools[s["pool"]], taken.get(s["pool"], 0)) for s in failed]
    engine_profiles = [profile_from(profiles[n]) for n in measured] + [
        failed_profile(s["pool"], s.get("reason", ""), s.get("message", "")) for s in failed
    ]
    return tuple(engine_pools), tuple(engine_profiles)


def _request(infd: InferenceDeployment, routing: Routing) -> Request:
    """The solver's request: a split may be weighted only where a gateway can route it."""
    request = request_from(infd)
    return request if routing.weighted else dataclasses.replace(request, weighted_routing=False)


def _round_load(load: float) -> float:
    """Loads to 3 significant digits: the same decision for nearby rates, and a cache that hits."""
    return float(f"{load:.3g}")


def _objective(decision: Decision) -> float:
    if not decision.feasible:
        return math.inf
    return decision.total_watts if decision.objective == "energy" and decision.total_watts is not None \
        else decision.total_cost_per_hour


def _planned_load(
    infd: InferenceDeployment, engine: tuple[tuple[Pool, ...], tuple[Profile, ...]],
    observed: Observed, old_status: dict[str, Any], children: dict[str, ChildState], routing: Routing,
) -> LoadDecision:
    sc = infd.spec.scaling
    policy = ScalingPolicy(mode=sc.mode, interval_s=sc.interval_seconds,
                           scale_down_delay_s=sc.scale_down_delay_seconds, floor_rps=sc.min_load_rps,
                           slo_ms=infd.spec.slo.latency_ms)
    base = _request(infd, routing)
    old = old_status.get("scaling") or {}
    current = old.get("loadRps") if old.get("mode") == "Operator" else None

    def cost_at(load: float) -> Size:
        # The objective, then the replicas (a node's price covers several; a price may be 0) and the
        # placement's shape, so a rise whose decision costs the same still scales up (scaling.py).
        decision = _solve_unexplained(dataclasses.replace(base, target_rps=_round_load(load)), *engine)
        shape = tuple((p.pool, p.replicas, p.batch_size, p.concurrency) for p in decision.placements)
        return Size(_objective(decision), sum(p.replicas for p in decision.placements), (decision.routing, *shape))

    found = plan_load(policy, observed.history, target_rps=infd.spec.load.target_rps, current_rps=current,
                      cost_at=cost_at, now=observed.now, observing=observed.observing,
                      settling=_settling(children, old_status.get("serving") or [], observed.now,
                                         window_seconds(observed.window)))
    return dataclasses.replace(found, load_rps=_round_load(found.load_rps)) if found.action in ("up", "down") \
        else found


def _infeasible_reason(decision: Decision, taken: dict[str, int]) -> tuple[str, str]:
    """OverCapacity, and which pools are full and who holds them, when room is all that is
    missing (every pool considered is over capacity); Infeasible otherwise."""
    considered = [a for a in decision.alternatives if a.reason != NOT_ALLOWED]
    if not considered or any(a.reason != OVER_CAPACITY for a in considered):
        return c.SLO_INFEASIBLE, ""
    full = "; ".join(f"{a.pool}: {a.message}" + (f" ({taken[a.pool]} replicas there belong to other "
                                                 "InferenceDeployments)" if taken.get(a.pool) else "")
                     for a in considered)
    return c.OVER_CAPACITY, f"; no room: {full}"


@dataclass
class _Calibrated:
    factors: dict[str, float] = field(default_factory=dict)  # pool -> ratio the solver uses
    status: list[dict[str, Any]] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


#: A pool whose calibration moves by more than this fraction gets a `Calibrated` Event.
CALIBRATION_EVENT_CHANGE = 0.2
CALIBRATION = CalibrationPolicy()


def _calibration(
    infd: InferenceDeployment, observed: Observed, children: dict[str, ChildState], old_status: dict[str, Any],
    profiles: dict[str, ModelProfile], states: list[dict[str, Any]], policy: CalibrationPolicy,
) -> _Calibrated:
    """Each serving pool's calibration after the latest observation (calibration.py): the
    observed latency against the model's prediction at the observed requests/s per ready
    replica, for the batch size and instances the pool runs now. A pool measured again
    after its last sample starts over: the ratio was of the old profile."""
    out = _Calibrated()
    measured = {s["pool"] for s in states if s["state"] == MEASURED}
    old = {}
    for x in old_status.get("calibration") or []:
        if not x.get("pool"):
            continue
        entry = _calibration_from(x)
        profile = profiles.get(entry.pool)
        measured_at = epoch(profile.spec.measured_at) if profile is not None else None
        if measured_at is None or math.floor(measured_at) <= entry.sampled_at:  # sampledAt: whole seconds
            old[entry.pool] = entry
        else:  # measured again since: the new profile starts from this ratio (calibration.carried_over)
            old[entry.pool] = carried_over(entry, math.floor(measured_at))
    obs = observed.latest
    placements = {p.get("pool"): p for p in (old_status.get("decision") or {}).get("placements") or []}
    ready_since = {x.get("pool"): _epoch(x.get("readySince")) if x.get("readySince") else None
                   for x in old_status.get("serving") or []}
    request = request_from(infd)
    window = window_seconds(observed.window)
    for pool in sorted(set(old) | set(placements)):
        before = old.get(pool)
        new = before
        placement, child = placements.get(pool), children.get(pool)
        profile = profiles.get(pool)
        newer = epoch(profile.spec.measured_at) if profile is not None else None
        if (infd.spec.scaling.mode != "Off" and obs is not None and obs.known and pool in measured
                and placement is not None and child is not None and child.owned and child.available_replicas > 0
                and (newer is None or obs.at > newer)):  # a window from before the profile is not of it
            figures = obs.by_pool.get(pool) or {}
            rate = figures.get("rate")
            per_replica = rate / child.available_replicas if rate else None
            predicted = predicted_latency_at(
                request, profile_from(profiles[pool]), int(placement.get("batchSize") or 1),
                int(placement.get("concurrency") or 1), per_replica) if per_replica else None
            sample = CalibrationSample(at=obs.at, observed_ms=figures.get("latency"), predicted_ms=predicted,
                                       rate_rps=rate, per_replica_rps=per_replica, window_s=window)
            new = calibrate(policy, before, pool, sample, ready_since.get(pool),
                            hold_s=infd.spec.scaling.scale_down_delay_seconds)
        kept = new if worth_writing(before, new) else before
        if kept is None:
            continue
        out.factors[pool] = kept.ratio
        out.status.append(_calibration_status(kept))
        if kept is not before and (before is None or abs(math.log(kept.ratio / before.ratio)) >
                                   math.log1p(CALIBRATION_EVENT_CHANGE)) and \
                (before is not None or abs(math.log(kept.ratio)) > math.log1p(CALIBRATION_EVENT_CHANGE)):
            was = f" (was {before.ratio:.3g})" if before is not None else ""
            out.events.append(Event("Normal", "Calibrated", (
                f"pool {pool}: observed p{infd.spec.slo.percentile} is {kept.ratio:.3g}x the model's prediction{was}: "
                f"{kept.observed_ms:.4g} ms observed, {kept.predicted_ms:.4g} ms predicted at "
                f"{kept.per_replica_rps:.4g} requests/s per replica; decisions now use the corrected prediction")))
    return out


def _calibration_from(x: dict[str, Any]) -> Calibration:
    return Calibration(pool=x["pool"], ratio=float(x["ratio"]), observed_ms=float(x.get("observedMs") or 0),
                       predicted_ms=float(x.get("predictedMs") or 0),
                       per_replica_rps=float(x.get("perReplicaRps") or 0),
                       samples=int(x.get("samples") or 0), sampled_at=_epoch(x.get("sampledAt")),
                       outside_since=_epoch(x["outsideSince"]) if x.get("outsideSince") else None,
                       lower_since=_epoch(x["lowerSince"]) if x.get("lowerSince") else None,
                       remeasured=int(x.get("remeasured") or 0))


def _calibration_status(x: Calibration) -> dict[str, Any]:
    out = {"pool": x.pool, "ratio": _sig(x.ratio, 4), "observedMs": _sig(x.observed_ms, 4),
           "predictedMs": _sig(x.predicted_ms, 4), "perReplicaRps": _sig(x.per_replica_rps, 4),
           "samples": x.samples, "sampledAt": _rfc3339(x.sampled_at)}
    if x.outside_since is not None:
        out["outsideSince"] = _rfc3339(x.outside_since)
    if x.lower_since is not None:
        out["lowerSince"] = _rfc3339(x.lower_since)
    if x.remeasured:
        out["remeasured"] = x.remeasured
    return out


#: After a scale-up's replicas are Ready, the queue figure (an average over the rate window)
#: still holds the waits from before them for a window and a scrape (5 s).
SCRAPE_S = 5.0


def _settling(children: dict[str, ChildState], serving: list[dict[str, Any]], now: float,
              window_s: float) -> str | None:
    """What of the serving Deployments is not Ready yet, or has been Ready for less than the
    queue figure's window; None when all of it is settled."""
    mine = [x for x in children.values() if x.owned]
    starting = sum(max(x.replicas - x.available_replicas, 0) for x in mine)
    if starting:
        return f"{starting} of {sum(x.replicas for x in mine)} replicas are starting"
    # A pool the last status did not show Ready (with these replicas) has just become Ready.
    shown = {x.get("pool"): x for x in serving}
    since = [_epoch(shown[x.pool]["readySince"]) if shown.get(x.pool, {}).get("readySince")
             and shown[x.pool].get("replicas") == x.replicas else now for x in mine]
    if since and now - max(since) < window_s + SCRAPE_S:
        return f"the replicas have been Ready for only {max(now - max(since), 0):.0f} s"
    return None


def _decide(
    infd: InferenceDeployment,
    pools: dict[str, HardwarePool],
    profiles: dict[str, ModelProfile],
    states: list[dict[str, Any]],
    load_rps: float | None = None,
    taken: dict[str, int] | None = None,
    factors: dict[str, float] | None = None,
    routing: Routing | None = None,
) -> Decision:
    engine_pools, engine_profiles = _engine_inputs(pools, profiles, states, taken, factors)
    request = _request(infd, routing or Routing())
    if load_rps is not None and load_rps != request.target_rps:
        request = dataclasses.replace(request, target_rps=load_rps)
    decision = _solve_cached(request, engine_pools, engine_profiles)
    missing = [
        Alternative(pool=s["pool"], reason=NO_PROFILE, message=s["message"])
        for s in states if s["state"] == MISSING
    ]
    if missing:
        decision = dataclasses.replace(decision, alternatives=tuple(decision.alternatives) + tuple(missing))
    return decision


@functools.lru_cache(maxsize=4096)
def _solve_unexplained(request: Request, pools: tuple[Pool, ...], profiles: tuple[Profile, ...]) -> Decision:
    """The scaling policy's question "what would this load cost?": placements only, no
    alternatives (solve's explain=False), remembered like _solve_cached."""
    return solve(request, pools, profiles, explain=False)


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
        if decision.cost_per_million is not None:
            summary["costPerMillion"] = round(decision.cost_per_million, 4)
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
    collected: frozenset[str] = frozenset(),
    observed: Observed | None = None,
    pool_errors: dict[str, str] | None = None,
    rejected: dict[str, str] | None = None,
    duplicate_profiles: dict[str, list[str]] | None = None,
    service_fingerprints: dict[str, str] | None = None,
    service_fingerprint: Any = None,
    taken: dict[str, int] | None = None,
    reprofile: ReprofileInputs | None = None,
    routing: Routing | None = None,
) -> Plan:
    """The plan for `infd`; `profiles`, `jobs` and `children` are keyed by pool name and are
    those of this InferenceDeployment's model digest and namespace. `fingerprint(obj)` gives the
    fingerprint of a desired child, comparable with `ChildState.fingerprint`. `observed`: what
    Prometheus showed of it (None: nothing observes, as without a Prometheus). `taken`: serving
    replicas other InferenceDeployments hold on each pool (a pool's room is shared). `reprofile`:
    what the re-profiling triggers read besides the profiles (reprofile.py). `routing`: whether
    a split can be weighted (a Gateway API Gateway found) or only spread evenly (None: no gateway).
    `blocked`: "Kind/name" of children whose names others hold; `collected`: those of them an
    earlier InferenceDeployment of this name left, which the garbage collector is deleting."""
    observed = observed or Observed(observing=False)
    routing = routing or Routing()
    old_status = (infd.status.to_dict() if infd.status else {})
    generation = infd.metadata.generation
    conds: list[dict[str, Any]] = list(old_status.get("conditions", []))
    digest = model_digest(infd)
    plan = Plan(digest=digest, status={})

    reprofile = reprofile or ReprofileInputs()
    if not reprofile.calibration and old_status.get("calibration"):
        # A pool whose calibration stays off the model is measured again (reprofile.py).
        readings = {x["pool"]: _calibration_from(x) for x in old_status["calibration"] if x.get("pool")}
        reprofile = dataclasses.replace(reprofile, calibration={
            pool: CalibrationReading(x.ratio, x.outside_since, x.remeasured) for pool, x in readings.items()},
            calibration_window_s=settings.calibration_reprofile_seconds)
    states = _pool_states(plan, infd, digest, pools, profiles, jobs, settings, pool_errors or {},
                          duplicate_profiles or {}, epoch(now) or 0.0, reprofile, rejected or {})
    profiled = _profiled_condition(states)
    conds = c.set_condition(conds, c.condition(c.PROFILED, *profiled, generation, now))

    decision: Decision | None = None
    apply = infd.spec.placement.mode == "Apply"
    available: bool | None = None
    load: LoadDecision | None = None
    calibration = _calibration(infd, observed, children, old_status, profiles, states,
                               dataclasses.replace(CALIBRATION, warmup_s=settings.calibration_warmup_seconds))
    plan.events += calibration.events
    if profiled[0] == c.TRUE:
        factors = calibration.factors
        load = _planned_load(infd, _engine_inputs(pools, profiles, states, taken, factors), observed, old_status,
                             children, routing)
        decision = _decide(infd, pools, profiles, states, load.load_rps, taken, factors, routing)
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
        at_load = load.load_rps if load is not None else infd.spec.load.target_rps
        reason, full = _infeasible_reason(decision, taken or {})
        message = (f"no placement meets {infd.spec.slo.describe()} at {at_load:g} requests/s"
                   f"{best}{full}; serving Deployments are left as they are")
        conds = c.set_condition(conds, c.condition(c.PLACED, c.FALSE, reason, message, generation, now))
        conds = c.set_condition(conds, c.condition(c.SLO_MET, c.FALSE, reason, message, generation, now))
    else:
        image_problem = image_not_allowed(infd.spec.serving.image, settings.allowed_image_registries)
        if apply and image_problem:
            available = False
            reason, verb = c.IMAGE_NOT_ALLOWED, f"not placed: {image_problem}. Decision"
        elif apply:
            available = _plan_children(
                plan, infd, digest, decision, pools, children, service_names, settings, fingerprint, blocked,
                rejected or {}, _ServiceDrift(service_fingerprints or {}, service_fingerprint),
                external=infd.spec.scaling.mode == "External", routing=routing)
            reason, verb = c.APPLIED, "placed"
        else:
            reason, verb = c.RECOMMENDED, "recommended (mode Recommend: nothing applied)"
        taken = sorted(set(plan.conflicts) - collected - set(plan.collected))
        if taken:
            reason, verb = c.NAME_CONFLICT, (
                f"not placed: {', '.join(taken)} exists and is not owned by this "
                "InferenceDeployment (left untouched; rename one of them). Decision")
        elif plan.conflicts:
            reason, verb = c.NAME_CONFLICT, (
                f"not placed yet: {', '.join(sorted(set(plan.conflicts)))} of an earlier InferenceDeployment of "
                "this name is being deleted by the garbage collector (tried again in a few seconds). Decision")
        if plan.rejected:
            why = "; ".join(f"{ref}: {message}" for ref, message in sorted(plan.rejected.items()))
            reason, verb = c.CHILD_REJECTED, (
                f"not placed: the API server refused {why} (tried again after the resync period). Decision")
        status_placed = c.FALSE if plan.conflicts or plan.rejected or (apply and image_problem) else c.TRUE
        conds = c.set_condition(
            conds, c.condition(c.PLACED, status_placed, reason, f"{verb}: {decision.message}", generation, now))
        worst = max(p.predicted_latency_ms for p in decision.placements)
        within = within_slo(worst, infd.spec.slo.latency_ms)
        conds = c.set_condition(conds, c.condition(
            c.SLO_MET, c.TRUE if within else c.FALSE, c.SLO_PREDICTED_MET if within else c.SLO_PREDICTED_OVER,
            f"predicted p{infd.spec.slo.percentile} {worst:.4g} ms {'within' if within else 'over'} "
            f"{infd.spec.slo.describe()}", generation, now))
    old_routed = c.get_condition(conds, c.ROUTED)
    routed = _routed(infd, decision, routing, apply, old_routed)
    if plan.route_withheld is not None:  # wanted, not applied: nothing routes by it (_had_route reads this)
        routed = (c.FALSE, routed[1], f"not routed: HTTPRoute {route_name(infd)} is not applied: {plan.route_withheld}"
                  f" (Placed says more); the Service {infd.metadata.name} spreads evenly meanwhile")
    conds = c.set_condition(conds, c.condition(c.ROUTED, *routed, generation, now))
    if routing.problem and (old_routed is None or routing.why_not not in str(old_routed.get("message"))):
        plan.events.append(Event("Warning", c.GATEWAY_UNAVAILABLE,
                                 f"{routing.why_not}; splits are limited to an even spread a Service carries"))
    if decision is not None and decision.feasible and not _route_wanted(infd, decision, routing, apply) \
            and _had_route(infd, old_routed):
        plan.stale_route = route_name(infd)  # the Gateway went, the split ended (default gateway), or Recommend
    ready = c.derive_ready(conds, available, recommend_only=not apply)
    conds = c.set_condition(conds, c.condition(c.READY, *ready, generation, now))
    # Observations: their own condition, and SLOMet from what was observed when there is some
    # (Ready stays as derived above: it says the placement is serving, not how fast).
    conds = _observed_conditions(conds, infd, observed, decision, apply, generation, now)

    status: dict[str, Any] = {
        "observedGeneration": generation,
        "modelDigest": digest,
        "conditions": conds,
        "profiles": states,
        "summary": _summary(infd, decision),
    }
    serving = _serving_status(infd, decision if apply else None, children, plan, old_status.get("serving") or [], now)
    if serving:
        status["serving"] = serving
    if calibration.status:
        status["calibration"] = calibration.status
    scaling = _scaling_status(infd, load, old_status, now)
    if scaling is not None:
        status["scaling"] = scaling
    # Off observes nothing: what the store last held is not written as if it were current.
    if infd.spec.scaling.mode != "Off":
        observed_status = _observed_status(observed, old_status.get("observed"))
        if observed_status is not None:
            status["observed"] = observed_status
        elif "observed" in old_status:
            status["observed"] = old_status["observed"]  # the last one seen, with its time
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
    plan.events = _events(infd, old_status, status, plan) + plan.events + plan.drift
    return plan


def _route_wanted(infd: InferenceDeployment, decision: Decision, routing: Routing, apply: bool) -> bool:
    """An HTTPRoute of ours is wanted: a weighted split's; and, through a Gateway the deployment
    names itself (spec.serving.gateway), one pool's too, so that its clients keep their route.
    Through the operator's --default-gateway only a split gets one: routes without hostnames of
    every deployment on one Gateway would all match every request."""
    if not apply or not decision.feasible or routing.gateway is None:
        return False
    return decision.routing == WEIGHTED or infd.spec.serving.gateway is not None


def _had_route(infd: InferenceDeployment, old_routed: dict[str, Any] | None) -> bool:
    """Whether the last status says an HTTPRoute of ours was applied (a split's, or one pool's
    through a Gateway it names): its Routed message names it first, and says it routes (not
    "would route", mode Recommend: then there is none to delete, and no GET each reconcile)."""
    message = str((old_routed or {}).get("message", ""))
    return message.startswith(f"HTTPRoute {route_name(infd)} on ") and " would route " not in message


def _routed(infd: InferenceDeployment, decision: Decision | None, routing: Routing,
            apply: bool, old_routed: dict[str, Any] | None = None) -> tuple[str, str, str]:
    """The Routed condition: how the decision's traffic reaches its replicas (status, reason,
    message): Weighted (an HTTPRoute), EvenSpread (the Service) or SinglePool."""
    service = str(infd.metadata.name)
    limited = f"; splits are limited to an even spread: {routing.why_not}" if not routing.weighted else ""
    if decision is None or not decision.feasible:
        if _had_route(infd, old_routed):  # still there: the message keeps saying so (_had_route reads it)
            return c.UNKNOWN, c.NOT_PLACED, (f"HTTPRoute {route_name(infd)} on its Gateway is kept as it was "
                                             "until there is a feasible decision: no feasible decision yet" + limited)
        return c.UNKNOWN, c.NOT_PLACED, "no feasible decision yet" + limited
    verb = "routes" if apply else "would route (mode Recommend: nothing applied)"
    if decision.routing == WEIGHTED and routing.gateway is not None:
        weights = route_weights(decision.placements)
        total = sum(weights.values())
        shares = ", ".join(f"{pool} {100 * w / total:.1f}% (weight {w})" for pool, w in weights.items())
        return c.TRUE, WEIGHTED, (f"HTTPRoute {route_name(infd)} on {routing.gateway.describe()} {verb} each "
                                  f"pool's Service its share: {shares}")
    if decision.routing == EVEN_SPREAD:
        per = decision.total_share_rps / max(decision.total_replicas, 1)
        return c.TRUE, EVEN_SPREAD, (f"Service {service} {verb} requests evenly: {per:.4g} requests/s to each of "
                                     f"{decision.total_replicas} replicas, within every pool's per-replica limit"
                                     f"{limited}")
    pool = decision.placements[0].pool
    if routing.gateway is not None and infd.spec.serving.gateway is not None:  # its clients keep their route
        return c.TRUE, c.SINGLE_POOL, (f"HTTPRoute {route_name(infd)} on {routing.gateway.describe()} {verb} every "
                                       f"request to Service {service}: one pool ({pool})")
    return c.TRUE, c.SINGLE_POOL, f"one pool ({pool}): Service {service} {verb} its replicas{limited}"


def _serving_status(infd: InferenceDeployment, decision: Decision | None, children: dict[str, ChildState],
                    plan: Plan, old: list[dict[str, Any]], now: str) -> list[dict[str, Any]]:
    """The serving Deployments per pool: the decision's (Ready or Starting) and, during a pool
    switch, the ones left that serve until those are Ready (Outgoing). `readySince`: since when
    a pool has been Ready with these replicas (calibration leaves out what came before)."""
    before = {x.get("pool"): x for x in old}
    out = []
    chosen = {p.pool: p.replicas for p in decision.placements} if decision is not None and decision.feasible else {}
    external = infd.spec.scaling.mode == "External"
    for pool in sorted(chosen.keys() | {p for p, x in children.items() if x.owned}):
        child = children.get(pool)
        if child is not None and not child.owned:
            continue
        if pool in chosen:
            replicas = child.replicas if external and child is not None else chosen[pool]
        elif pool in plan.outgoing or not chosen:
            replicas = child.replicas if child is not None else 0
        else:
            continue  # being deleted
        available = child.available_replicas if child is not None else 0
        # Mid-rollout (a new batch size, image or instances) the pods are old and new at once and
        # surged ones count as available: not Ready, so calibration waits for the new pods.
        settled = available >= replicas and (child is None or child.rolled_out)
        state = "Outgoing" if chosen and pool not in chosen else ("Ready" if settled else "Starting")
        entry = {"pool": pool, "deployment": child.name if child is not None
                 else names.serving_name(str(infd.metadata.name), pool),
                 "replicas": replicas, "availableReplicas": available, "state": state}
        if state == "Ready":
            was = before.get(pool) or {}
            same = was.get("state") == "Ready" and was.get("replicas") == replicas and was.get("readySince")
            entry["readySince"] = was["readySince"] if same else now
        out.append(entry)
    return out


def _scaling_status(infd: InferenceDeployment, load: LoadDecision | None, old_status: dict[str, Any],
                    now: str) -> dict[str, Any] | None:
    if load is None:
        return old_status.get("scaling")
    old = old_status.get("scaling") or {}
    changed = old.get("loadRps") != load.load_rps
    out = {"mode": infd.spec.scaling.mode, "loadRps": load.load_rps, "action": load.action,
           "message": load.message[:1024]}
    last = now if changed and old else old.get("lastScaleTime")
    if last:
        out["lastScaleTime"] = last
    return out


def _sig(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else float(f"{x:.{digits}g}")


#: status.observed is rewritten when a figure moves by more than this fraction (10%: more than
#: the sampling noise of a 20 s rate at tens of requests/s), or when the one
#: shown is older than OBSERVED_REFRESH_S: a steady load costs one status write per deployment
#: every few minutes, not one per interval (1,000 deployments at a 15 s interval would be 67 writes/s).
OBSERVED_CHANGE = 0.10
OBSERVED_REFRESH_S = 300.0


def _observed_status(observed: Observed, old: dict[str, Any] | None = None) -> dict[str, Any] | None:
    obs = observed.latest
    if obs is None or not obs.known:
        return None
    out: dict[str, Any] = {"requestsPerSecond": _sig(obs.rate_rps), "percentile": obs.percentile,
                           "window": observed.window, "time": _rfc3339(obs.at)}
    if obs.latency_ms is not None:
        out["latencyMs"] = _sig(obs.latency_ms)
    if obs.queue_ms is not None:
        out["queueMs"] = _sig(obs.queue_ms)
    if old and _close(old, out) and obs.at - _epoch(old.get("time")) < OBSERVED_REFRESH_S:
        return old
    return out


def _close(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Every figure within OBSERVED_CHANGE of the one shown (a small absolute slack near zero)."""
    for key in ("requestsPerSecond", "latencyMs", "queueMs", "percentile"):
        a, b = old.get(key), new.get(key)
        if (a is None) != (b is None):
            return False
        if a is not None and abs(a - b) > OBSERVED_CHANGE * max(abs(a), abs(b)) + 0.5:
            return False
    return True


def _epoch(text: str | None) -> float:
    """An RFC 3339 time in status as epoch seconds; -inf when absent or unreadable."""
    found = epoch(text)
    return float("-inf") if found is None else found


def _rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _observed_conditions(
    conds: list[dict[str, Any]], infd: InferenceDeployment, observed: Observed, decision: Decision | None,
    apply: bool, generation: int | None, now: str,
) -> list[dict[str, Any]]:
    mode = infd.spec.scaling.mode
    if mode == "Off":
        return [x for x in conds if x.get("type") != c.OBSERVED]
    obs = observed.latest
    if not observed.observing:
        found = (c.FALSE, c.NO_PROMETHEUS, "no Prometheus is configured (--prometheus-url, HP_PROMETHEUS_URL): "
                 + ("scaling mode Operator behaves as Off" if mode == "Operator" else "nothing is observed"))
    elif obs is None:
        found = (c.UNKNOWN, c.OBSERVE_WAITING, "no observation yet")
    elif not obs.known:
        seen = f"; data last seen {_rfc3339(observed.last_seen)}" if observed.last_seen else "; no data seen yet"
        reason = c.NO_DATA if "no samples" in (obs.error or "") else c.UNREACHABLE
        keep = "; replicas are kept as they are" if mode == "Operator" else ""
        found = (c.FALSE, reason, f"{obs.error}{seen}{keep}")
    else:
        found = (c.TRUE, c.OBSERVED_OK, "Prometheus answers: see status.observed")
    conds = c.set_condition(conds, c.condition(c.OBSERVED, *found, generation, now))
    if apply and decision is not None and decision.feasible and obs is not None and obs.known \
            and obs.latency_ms is not None and obs.rate_rps and obs.rate_rps > 0:
        slo = infd.spec.slo
        within = obs.latency_ms <= slo.latency_ms
        shown = _observed_status(observed, (infd.status.observed.to_dict() if infd.status and infd.status.observed
                                            else None)) or {}
        conds = c.set_condition(conds, c.condition(
            c.SLO_MET, c.TRUE if within else c.FALSE, c.SLO_OBSERVED_MET if within else c.SLO_OBSERVED_OVER,
            f"observed p{slo.percentile} {shown.get('latencyMs', obs.latency_ms):.4g} ms "
            f"{'within' if within else 'over'} {slo.describe()} at "
            f"{shown.get('requestsPerSecond', obs.rate_rps):.4g} requests/s", generation, now))
    return conds


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


def status_patch(new: dict[str, Any], stored: dict[str, Any]) -> dict[str, Any]:
    """The merge patch (RFC 7386) that makes `stored` equal to `new`: `new` whole, plus a null
    for every key of `stored` that `new` leaves out, at any depth of objects (lists are replaced
    whole). Without those nulls a merge patch keeps what the plan dropped (a calibration of a
    profile that was replaced, the last observation after scaling turned Off, a summary's
    replicas after a decision turned infeasible) and the object never stops being written."""
    patch = dict(new)
    for key, old in stored.items():
        if key not in new:
            patch[key] = None
        elif isinstance(new[key], dict) and isinstance(old, dict):
            patch[key] = status_patch(new[key], old)
    return patch


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
    external: bool = False,
    routing: Routing | None = None,
) -> bool:
    """Fill the plan's children to apply and delete; returns whether all are available.
    Names in `blocked` belong to someone else: they are reported as conflicts, never touched.
    `external`: another autoscaler owns the replica count of existing Deployments (kept as is)."""
    chosen = {p.pool: p for p in decision.placements}
    old_decision = (infd.status.decision if infd.status else None)
    decided_replicas = {p.pool: p.replicas for p in (old_decision.placements or [])} if old_decision else {}
    all_available = True
    for pool_name, placement in sorted(chosen.items()):
        pool = pools[pool_name]
        image = infd.spec.serving.image or settings.image_for(pool.spec.accelerator.type)
        desired = build_serving_deployment(
            infd=infd, digest=digest, pool=pool, replicas=placement.replicas,
            batch_size=placement.batch_size, image=image, instances=placement.concurrency,
        )
        child = children.get(pool_name)
        if external and child is not None and child.owned:
            desired["spec"]["replicas"] = child.replicas  # leave the count to the HPA or KEDA
        ref = f"Deployment/{desired['metadata']['name']}"
        if ref in rejected:
            plan.rejected[ref] = rejected[ref]
            all_available = False
        elif ref in blocked or (child is not None and not child.owned):
            plan.conflicts.append(ref)  # someone else's: never touched
            if child is not None and child.earlier:
                plan.collected.append(ref)
            all_available = False
        elif child is None or child.fingerprint != fingerprint(desired):
            want = fingerprint(desired)
            desired["metadata"]["annotations"][names.ANNOTATION_FINGERPRINT] = want
            plan.deployments.append(desired)
            all_available = False
            decided = decided_replicas.get(pool_name)
            if child is not None and not external and decided is not None and child.replicas != decided:
                plan.events.append(Event(
                    "Normal", "ReplicasRestored",
                    f"Deployment {child.name}: {child.replicas} -> {placement.replicas} replicas: with "
                    "spec.scaling.mode Operator the operator sets the replica count; set mode External to "
                    "let an HPA or KEDA set it"))
            elif child is not None and child.applied_fingerprint == want:  # not a new decision: an edit
                plan.drift.append(Event("Warning", "DriftRestored", (
                    f"Deployment/{child.name} differs from what the operator set (edited by hand?); "
                    "putting it back")))
        elif child.available_replicas < (child.replicas if external else placement.replicas):
            all_available = False
        if len(chosen) > 1:  # a split: one Service per pool, for weighted routing
            _plan_service(plan, build_service(infd=infd, pool=pool_name), service_names, blocked, rejected, drift)
    _plan_service(plan, build_service(infd=infd), service_names, blocked, rejected, drift)
    if routing is not None and _route_wanted(infd, decision, routing, apply=True):
        route = build_http_route(infd=infd, decision=decision, gateway=routing.gateway)
        ref = f"HTTPRoute/{route['metadata']['name']}"
        # Its backends are Services named here; one held by someone else (already a conflict)
        # would get a weighted share of this model's traffic: no route until it is ours.
        held = sorted(backend_services(route) & ({*plan.conflicts} | plan.rejected.keys()))
        if ref in rejected:
            plan.rejected[ref] = rejected[ref]
            plan.route_withheld = "the API server refused it"
        elif ref in blocked:
            plan.conflicts.append(ref)
            plan.route_withheld = "an HTTPRoute of that name exists and is not owned by this InferenceDeployment"
        elif held:
            plan.route_withheld = f"its backend {', '.join(held)} is not this InferenceDeployment's, or was refused"
        else:
            plan.route = route
    outgoing = [child for pool_name, child in sorted(children.items()) if pool_name not in chosen and child.owned]
    if outgoing and not all_available:
        # Make before break: the pools left keep serving (the Service selects every pool's pods)
        # until every chosen pool's Deployment is Available; then they go.
        plan.outgoing = [x.pool for x in outgoing]
        return all_available
    plan.stale_deployments = [x.name for x in outgoing]
    if outgoing:
        plan.events.append(Event("Normal", "PoolSwitched", (
            f"{', '.join(f'{p.pool} x{p.replicas}' for p in decision.placements)} Available: deleting "
            f"{', '.join(f'Deployment/{x.name} ({x.pool} x{x.replicas})' for x in outgoing)}")))
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
        job_name = job["metadata"]["name"]
        if job_name in plan.reprofiling:  # posted once: when the Job is created
            events.append(Event("Normal", REPROFILING, f"measuring {model} on pool {pool} again with Job "
                                f"{job_name}: {plan.reprofiling[job_name]}; the old ModelProfile is used until "
                                "then", job=job_name))
        else:
            events.append(Event("Normal", "BenchmarkStarted", f"measuring {model} on pool {pool} with Job {job_name}",
                                job=job_name))
    old_states = {s["pool"]: s for s in old.get("profiles", [])}
    measured = []
    for state in new["profiles"]:
        before = old_states.get(state["pool"], {})
        if before.get("state") == state["state"] and before.get("reason") == state.get("reason"):
            continue
        if state["state"] == MEASURED and state.get("reason") == REPROFILING:
            continue  # announced by the Reprofiling Event of the Job that measures it
        if state["state"] == MEASURED and state.get("reason") == REPROFILE_FAILED:
            events.append(Event("Warning", REPROFILE_FAILED, f"pool {state['pool']}: {state['message']}"))
        elif state["state"] == MEASURED and state.get("reason") == "DuplicateProfiles":
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
        elif cond["type"] == c.OBSERVED and cond["status"] == c.FALSE and cond["reason"] != c.NO_PROMETHEUS:
            events.append(Event("Warning", cond["reason"], cond["message"]))
        elif cond["type"] == c.ROUTED and cond["reason"] == WEIGHTED:
            events.append(Event("Normal", "Routed", cond["message"]))
    rescaled = _rescaled(old, new)
    if rescaled:
        events.append(Event("Normal", "Rescaled", rescaled))
    return events


def _rescaled(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """'3 -> 5 replicas on cpu-standard: observed 180 requests/s (was planned for 95)', when a
    scaling step of the observed load changed the placement."""
    scaling = new.get("scaling") or {}
    before, after = (old.get("summary") or {}).get("pools"), (new.get("summary") or {}).get("pools")
    if scaling.get("action") not in ("up", "down") or not before or before == after or after is None:
        return None
    return f"{before.replace(':', ' x')} -> {after.replace(':', ' x')}: {scaling.get('message', '')}"


def _placement_changed(old: dict[str, Any], new: dict[str, Any]) -> bool:
    return (old.get("summary") or {}).get("pools") != (new.get("summary") or {}).get("pools")
