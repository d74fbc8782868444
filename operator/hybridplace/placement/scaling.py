"""The scaling policy: which load the next decision is solved for, from a history of observations
and a clock. A pure function: no Prometheus, no Kubernetes, no wall clock (``now`` is an input),
so every rule is unit-tested with a fake clock (tests/unit/placement/test_scaling_policy.py).

The rules (docs/api.md, "Scaling"):

- **Modes.** ``Off`` and ``External`` always plan for ``spec.load.targetRps`` (External leaves the
  replica count itself to another autoscaler). ``Operator`` plans for the observed load.
- **The load.** The latest observed rate, never below ``floor_rps`` (and never 0: an idle
  deployment is planned at a token load, which the solver meets with ``minReplicas``).
- **Scale up** (the new load's decision takes more: see "Takes more" below) as soon as one
  interval's observation shows the step.
- **Scale down** (the new load's decision takes less) only when every observation of the last
  ``scale_down_delay_s`` is known and lower, and then for the *highest* load of that window plus
  10% (``DOWN_TOLERANCE``): the remaining replicas carry the worst of it at their N/(N-1) share
  within their limit, because the solver sized them for it, and a load on the boundary between
  two replica counts does not go back and forth with the rate's noise. A dip shorter than the
  delay changes nothing, so it cannot flap.
- **Missing data is not zero load.** Without a fresh observation the current load is kept.
- **An infeasible decision is left at once.** When the current load has no feasible placement (a
  pool lost nodes, or ``targetRps`` never had one), the observed load is adopted at once, or the
  highest load up to it that some placement carries: waiting out the delay would leave the
  deployment unplaced for it.
- **Overload.** When requests wait in the queue, on average over the window, longer than half the
  SLO, the replicas are not keeping up, and the served rate understates the demand (queues
  overflow, clients give up): the planned load then grows by half each interval (or to the
  observed load, if higher), and nothing scales down. While the last scale-up's replicas are
  still starting (``settling``), the queue says nothing new: the long waits are the ones those
  replicas are about to absorb, so overload holds instead of growing again (a plain observed
  rise still scales up). Without this, every interval of a pod's start-up would add half again,
  and a step overshoots to maxReplicas.

"Takes more" compares the two decisions' ``Size``: the objective the solver minimises (USD/h or
watts; an infeasible decision costs more than any other) first, so a change of pool or split
counts like a change of replicas; at the same cost, more replicas (a node's price covers several
replicas, or the price is 0: a rise in load must not be a "hold" because the extra replicas are
free); and for a higher load at the same cost and replicas, any other placement (pools, replicas,
batch size, instances, routing), since the current one may not carry it. A scale-down needs a
decision that costs less, or as much with fewer replicas; a tie is a hold, so nothing flaps.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MODES = ("Operator", "External", "Off")
#: In overload the planned load grows by this factor per interval.
OVERLOAD_STEP = 1.5
#: A scale-down plans for the window's peak plus this fraction (hysteresis against the rate's noise).
DOWN_TOLERANCE = 0.1
#: The load planned for an idle deployment (requests/s): the solver needs a positive load.
IDLE_RPS = 0.01


def _seen_throughout(policy: ScalingPolicy, history: Sequence[Sample], start: float, now: float) -> bool:
    """Whether the load was known from ``start`` to ``now`` with no gap: a known sample at the
    window's start (within an interval), and none further apart than an observation stays
    current. A gap (the loop backing off on errors, a switch from mode Off, a clock that jumped)
    is not evidence of a lower load, however low the samples around it are."""
    seen = [s.at for s in history if s.rate_rps is not None and s.at <= now]
    opening = [i for i, at in enumerate(seen) if at <= start + policy.interval_s]
    if not opening:
        return False
    kept = seen[opening[-1]:]
    return all(b - a <= policy.stale_after_s for a, b in zip(kept, kept[1:], strict=False))


@dataclass(frozen=True)
class ScalingPolicy:
    """``spec.scaling`` in the units the policy uses (seconds, requests/s)."""

    mode: str = "Operator"
    interval_s: float = 15.0
    scale_down_delay_s: float = 300.0
    floor_rps: float = 0.0
    slo_ms: float | None = None  # the SLO's latency bound; with it, queueing over half of it is overload

    @property
    def stale_after_s(self) -> float:
        """An observation older than this is no longer current (two intervals and a bit)."""
        return 2.5 * self.interval_s


@dataclass(frozen=True)
class Sample:
    """One observation: the request rate (requests/s) and latency (ms) at ``at`` (seconds), or
    None for what could not be known."""

    at: float
    rate_rps: float | None
    latency_ms: float | None = None
    queue_ms: float | None = None  # mean wait in the server's queue over the window


@dataclass(frozen=True)
class Size:
    """What the decision at some load takes: its objective (USD/h or watts; inf when infeasible),
    its replicas in all, and its shape (anything whose change is a different placement). A plain
    number from ``cost_at`` is a ``Size`` with that cost and nothing else known."""

    cost: float
    replicas: int = 0
    shape: tuple = ()


@dataclass(frozen=True)
class LoadDecision:
    """The load to solve for, and why. ``action``: static (Off/External), initial (no
    observation yet), hold, up, down, or nodata (the latest observation is missing or stale)."""

    load_rps: float
    action: str
    message: str
    latest: Sample | None = None


def plan_load(
    policy: ScalingPolicy,
    history: Sequence[Sample],
    *,
    target_rps: float,
    current_rps: float | None,
    cost_at: Callable[[float], float | Size],
    now: float,
    observing: bool = True,
    settling: str | None = None,
) -> LoadDecision:
    """The load the next decision is solved for.

    ``history``: observations, oldest first. ``target_rps``: spec.load.targetRps. ``current_rps``:
    the load the current decision was solved for (None before the first). ``cost_at(load)``: the
    decision at that load as a ``Size``, or just its objective value (inf when infeasible). ``observing``: False when
    the operator has no Prometheus, so Operator mode behaves as Off. ``settling``: None when
    every replica of the current decision is Ready, else what is still starting (for messages).
    """
    if policy.mode != "Operator" or not observing:
        why = {"External": "mode External: replicas are left to another autoscaler",
               "Off": "mode Off"}.get(policy.mode, "no Prometheus to observe: behaving as mode Off")
        return LoadDecision(target_rps, "static", f"planned for spec.load.targetRps {target_rps:g} requests/s ({why})")
    current = target_rps if current_rps is None else current_rps
    known = [s for s in history if s.rate_rps is not None and s.at <= now]
    latest = known[-1] if known else None
    if latest is None:
        return LoadDecision(current, "initial" if current_rps is None else "nodata",
                            f"no observation yet: planned for {current:g} requests/s")
    if now - latest.at > policy.stale_after_s:
        return LoadDecision(current, "nodata",
                            f"no fresh observation: keeping the decision for {current:g} requests/s", latest)
    wanted = _load(policy, latest.rate_rps)

    def size(load: float) -> Size:
        found = cost_at(load)
        return found if isinstance(found, Size) else Size(float(found))

    size_now, size_wanted = size(current), size(wanted)
    infeasible_now = math.isinf(size_now.cost)
    more = _bigger(size_wanted, size_now) or (
        wanted > current and not _bigger(size_now, size_wanted) and size_wanted.shape != size_now.shape)
    if _overloaded(policy, latest) and settling is not None and not infeasible_now and not more:
        return LoadDecision(current, "hold", f"overloaded while {settling}: holding the decision for "
                            f"{current:.4g} requests/s until they are Ready", latest)
    # Bisect for a feasible load from the current one, or from the floor when the current has none.
    low = _load(policy, 0.0) if infeasible_now else current
    if _overloaded(policy, latest):
        pushed, capped = _feasible_up_to(size, low, max(wanted, current * OVERLOAD_STEP))
        return LoadDecision(pushed, "up" if pushed >= current else "down",  # down: from an infeasible plan
                            f"overloaded: requests wait {latest.queue_ms:.4g} ms in the queue "
                            f"(over half the {policy.slo_ms:g} ms SLO) at {latest.rate_rps:.4g} requests/s served: "
                            f"planning for {pushed:.4g} (was {current:.4g}){capped}", latest)
    if infeasible_now:
        # No feasible placement for the current load: waiting out the delay would leave the
        # deployment unplaced. The observed load's decision, or the most a feasible one carries.
        target, capped = _feasible_up_to(size, low, wanted)
        if math.isinf(size(target).cost) or target == current:
            return LoadDecision(current, "hold", _holding(policy, current), latest)
        return LoadDecision(target, "up" if target > current else "down", (
            f"observed {latest.rate_rps:.4g} requests/s; the decision for {current:.4g} has no feasible "
            f"placement: planning for {target:.4g} at once{capped}"), latest)
    if more:
        target, capped = _feasible_up_to(size, current, wanted)
        return LoadDecision(target, "up", f"observed {latest.rate_rps:.4g} requests/s (was planned for "
                            f"{current:.4g}){capped}", latest)
    if not _bigger(size_now, size_wanted):
        return LoadDecision(current, "hold", _holding(policy, current), latest)
    # Lower: only after the whole delay window was seen, known, and lower.
    start = now - policy.scale_down_delay_s
    window = [s for s in history if s.at >= start and s.at <= now]
    # An overloaded sample's served rate understates its demand: it is no evidence of a lower load.
    covered = _seen_throughout(policy, history, start, now) and all(
        s.rate_rps is not None and not _overloaded(policy, s) for s in window)
    if not covered:
        return LoadDecision(current, "hold", _holding(policy, current), latest)
    highest = max(s.rate_rps for s in window if s.rate_rps is not None)
    peak = _load(policy, highest)
    # The tolerance: down only if the peak and then some still fits in the smaller decision, so a
    # load sitting on the boundary between N and N+1 replicas does not go back and forth with
    # the rate's noise (the HPA's tolerance is 10% too).
    target = min(_load(policy, highest * (1 + DOWN_TOLERANCE)), current)
    if _bigger(size_now, size(target)):
        return LoadDecision(target, "down", f"observed at most {peak:.4g} requests/s for "
                            f"{policy.scale_down_delay_s:g} s (was planned for {current:.4g}; planning for "
                            f"{target:.4g}, {DOWN_TOLERANCE:.0%} above it)", latest)
    return LoadDecision(current, "hold", _holding(policy, current), latest)


def _holding(policy: ScalingPolicy, current: float) -> str:
    """One message for every kind of hold, so a load wobbling around the plan rewrites nothing."""
    return (f"holding the decision for {current:.4g} requests/s: it scales up as soon as the observed load "
            f"needs more, and down once it stays lower for {policy.scale_down_delay_s:g} s")


def _feasible_up_to(size: Callable[[float], Size], low: float, wanted: float) -> tuple[float, str]:
    """`wanted`, or the highest load from `low` (feasible) up to it that some placement still
    carries (the most replicas the bounds and the pools' room allow) when `wanted` has none: an
    overload past maxReplicas scales to the limit, rather than to an infeasible decision that
    changes nothing. `wanted` as it is when `low` has no feasible placement either."""
    if not math.isinf(size(wanted).cost) or math.isinf(size(low).cost) or low >= wanted:
        return wanted, ""
    high = wanted
    for _ in range(20):  # bisection to 1e-6 of the range
        mid = (low + high) / 2
        if math.isinf(size(mid).cost):
            high = mid
        else:
            low = mid
    return low, f"; capped at {low:.4g} requests/s, the most the allowed replicas carry"


def _overloaded(policy: ScalingPolicy, sample: Sample) -> bool:
    return policy.slo_ms is not None and sample.queue_ms is not None and sample.queue_ms > policy.slo_ms / 2


def _load(policy: ScalingPolicy, rate: float) -> float:
    return max(rate, policy.floor_rps, IDLE_RPS)


def _bigger(a: Size, b: Size) -> bool:
    """Decision `a` takes more than `b`: it costs more, or as much with more replicas."""
    return _more(a.cost, b.cost) or (not _more(b.cost, a.cost) and a.replicas > b.replicas)


def _more(a: float, b: float) -> bool:
    """a costs more than b (an infeasible decision, inf, costs more than any feasible one)."""
    if math.isinf(a) or math.isinf(b):
        return math.isinf(a) and not math.isinf(b)
    return a > b * (1 + 1e-9) + 1e-12
