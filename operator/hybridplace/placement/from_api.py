"""Translate API objects (hybridplace.api) into the placement engine's own types.

The one place that knows both: the operator and the offline CLI call these, so both decide
from the same inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from ..api.models import HardwarePool, InferenceDeployment, ModelProfile
from ..api.quantity import parse_quantity
from .types import Pool, Profile, ProfilePoint, Request


def replicas_per_node(pool: HardwarePool) -> int:
    """Serving replicas one node holds: the smallest allocatable/request ratio over the
    resources a replica requests. 1 when the pool declares no nodeAllocatable."""
    alloc = pool.spec.node_allocatable
    if not alloc:
        return 1
    ratios = []
    for name, value in pool.spec.replica_resources.effective_requests.items():
        asked = parse_quantity(value)
        if asked > 0 and name in alloc:
            ratios.append(math.floor(parse_quantity(alloc[name]) / asked))
    return max(min(ratios), 1) if ratios else 1


def capacity_replicas(pool: HardwarePool, taken: int = 0) -> int | None:
    """The most replicas one deployment may have on `pool`: its maxReplicas (a per-deployment
    cap) and, when the operator has observed the nodes, the replicas that fit on the ready ones
    less the `taken` ones other InferenceDeployments hold there (the room is shared)."""
    limits = [pool.spec.max_replicas]
    if pool.status is not None and pool.status.capacity_replicas is not None:
        limits.append(max(pool.status.capacity_replicas - taken, 0))
    known = [x for x in limits if x is not None]
    return min(known) if known else None


def pool_from(pool: HardwarePool, taken: int = 0, latency_factor: float = 1.0) -> Pool:
    spec = pool.spec
    power = spec.power
    return Pool(
        name=pool.name,
        accelerator=spec.accelerator.type,
        price_per_node_hour=spec.price.per_node_hour,
        price_per_replica_hour=spec.price.per_replica_hour,
        replicas_per_node=replicas_per_node(pool),
        watts_per_node=power.per_node_watts if power else None,
        watts_per_replica=power.per_replica_watts if power else None,
        capacity_replicas=capacity_replicas(pool, taken),
        latency_factor=latency_factor,
    )


def _skipped(profile: ModelProfile) -> tuple[tuple[int, int], ...]:
    """The (batch size, concurrency) points the profile says were not measured. When only
    their count is known (spec.skippedUnlisted), every gap between measured batch sizes is
    taken as holding one, so the whole curve is read conservatively."""
    spec = profile.spec
    listed = tuple((s.batch_size, s.concurrency) for s in spec.skipped or ())
    if not spec.skipped_unlisted:
        return listed
    gaps = []
    for c in {p.concurrency for p in spec.points}:
        sizes = sorted(p.batch_size for p in spec.points if p.concurrency == c)
        gaps += [(b0 + 1, c) for b0, b1 in zip(sizes, sizes[1:], strict=False) if b1 > b0 + 1]
    return listed + tuple(gaps)


def profile_from(profile: ModelProfile) -> Profile:
    return Profile(
        pool=profile.spec.pool,
        skipped=_skipped(profile),
        request_overhead_ms=profile.spec.request_overhead_ms or 0.0,
        points=tuple(
            ProfilePoint(
                batch_size=p.batch_size,
                concurrency=p.concurrency,
                p50_ms=p.p50_ms,
                p95_ms=p.p95_ms,
                p99_ms=p.p99_ms,
                throughput_rps=p.throughput_rps,
                throughput_ips=p.throughput_ips,
                stable=p.stable,
            )
            for p in profile.spec.points
        ),
    )


def request_from(infd: InferenceDeployment) -> Request:
    spec = infd.spec
    return Request(
        slo_latency_ms=spec.slo.latency_ms,
        target_rps=spec.load.target_rps,
        slo_percentile=spec.slo.percentile,
        min_replicas=spec.load.min_replicas,
        max_replicas=spec.load.max_replicas,
        pools=tuple(spec.placement.pools or ()),
        objective=spec.placement.objective,
        allow_hybrid=spec.placement.allow_hybrid,
        headroom=spec.placement.headroom,
        batch_sizes=tuple(sorted(spec.benchmark.batch_sizes)),
        max_queue_delay_ms=spec.serving.max_queue_delay_ms,
        # Engine triton's concurrency is clients of one instance, not the instances per replica
        # a placement sets: only 1 carries over (the CRD refuses more; one stored before may
        # still ask for it).
        concurrency_levels=(1,) if spec.benchmark.engine == "triton" else tuple(sorted(spec.benchmark.concurrency)),
    )


def failed_profile(pool: str, reason: str, message: str) -> Profile:
    """A pool whose benchmark failed: reported as ProfileFailed, never chosen."""
    return Profile(pool=pool, failure=f"{reason}: {message}" if message else reason)


def profiles_from(profiles: Iterable[ModelProfile]) -> list[Profile]:
    return [profile_from(p) for p in profiles]
