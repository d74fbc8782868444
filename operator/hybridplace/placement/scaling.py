"""The scaling policy: which load the next decision is solved for, from a history of observations
and a clock. A pure function: no Prometheus, no Kubernetes, no wall clock (``now`` is an input),
so every rule is unit-tested with a fake clock (tests/unit/placement/test_scaling_policy.py).

The rules (docs/api.md, "Scaling"):

- **Modes.** ``Off`` and ``External`` always plan for ``spec.load.targetRps`` (External leaves the
  replica count itself to another autoscaler). ``Operator`` plans for the observed load.
- **The load.** The latest observed rate, never below ``floor_rps`` (and never 0: an idle
  deployment is planned at a token load, which the solver meets with ``minReplicas``).
- **Scale up** (the new load's decision costs more, or is infeasible) as soon as one interval's
  observation shows the step.
- **Scale down** (the new load's decision costs less) only when every observation of the last
  ``scale_down_delay_s`` is known and lower, and then for the *highest* load of that window: the
  remaining replicas carry the worst of it at their N/(N-1) share within their limit, because the
  solver sized them for it. A dip shorter than the delay changes nothing, so it cannot flap.
- **Missing data is not zero load.** Without a fresh observation the current load is kept.
- **Overload.** When requests wait in the queue, on average over the window, longer than half the
  SLO, the replicas are not keeping up, and the served rate understates the demand (queues
  overflow, clients give up): the planned load then grows by half each interval (or to the
  observed load, if higher), and nothing scales down. While the last scale-up's replicas are
  still starting (``settling``), the queue says nothing new: the long waits are the ones those
  replicas are about to absorb, so overload holds instead of growing again (a plain observed
  rise still scales up). Without this, every interval of a pod's start-up would add half again,
  and a step overshoots to maxReplicas.

"Costs more" compares the objective the solver minimises (USD/h or watts) of the two decisions, so
a change of pool or split counts like a change of replicas.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

MODES = ("Operator", "External", "Off")
#: In overload the planned load grows by this factor per interval.
OVERLOAD_STEP = 1.5
#: The load planned for an idle deployment (requests/s): the solver needs a positive load.
IDLE_RPS = 0.01


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
    cost_at: Callable[[float], float],
    now: float,
    observing: bool = True,
    settling: str | None = None,
) -> LoadDecision:
    """The load the next decision is solved for.

    ``history``: observations, oldest first. ``target_rps``: spec.load.targetRps. ``current_rps``:
    the load the current decision was solved for (None before the first). ``cost_at(load)``: the
    objective value of the decision at that load (inf when infeasible). ``observing``: False when
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
    if _overloaded(policy, latest) and settling is not None and not _more(cost_at(wanted), cost_at(current)):
        return LoadDecision(current, "hold", f"overloaded while {settling}: holding the decision for "
                            f"{current:.4g} requests/s until they are Ready", latest)
    if _overloaded(policy, latest):
        pushed, capped = _feasible_up_to(cost_at, current, max(wanted, current * OVERLOAD_STEP))
        return LoadDecision(pushed, "up", f"overloaded: requests wait {latest.queue_ms:.4g} ms in the queue "
                            f"(over half the {policy.slo_ms:g} ms SLO) at {latest.rate_rps:.4g} requests/s served: "
                            f"planning for {pushed:.4g} (was {current:.4g}){capped}", latest)
    cost_now, cost_wanted = cost_at(current), cost_at(wanted)
    if _more(cost_wanted, cost_now):
        target, capped = _feasible_up_to(cost_at, current, wanted)
        return LoadDecision(target, "up", f"observed {latest.rate_rps:.4g} requests/s (was planned for "
                            f"{current:.4g}){capped}", latest)
    if not _more(cost_now, cost_wanted):
        return LoadDecision(current, "hold", _holding(policy, current), latest)
    # Lower: only after the whole delay window was seen, known, and lower.
    start = now - policy.scale_down_delay_s
    window = [s for s in history if s.at >= start and s.at <= now]
    # An overloaded sample's served rate understates its demand: it is no evidence of a lower load.
    covered = any(s.at <= start + policy.interval_s for s in history if s.rate_rps is not None) and all(
        s.rate_rps is not None and not _overloaded(policy, s) for s in window)
    if not covered:
        return LoadDecision(current, "hold", _holding(policy, current), latest)
    peak = _load(policy, max(s.rate_rps for s in window if s.rate_rps is not None))
    if _more(cost_now, cost_at(peak)):
        return LoadDecision(peak, "down", f"observed at most {peak:.4g} requests/s for "
                            f"{policy.scale_down_delay_s:g} s (was planned for {current:.4g})", latest)
    return LoadDecision(current, "hold", _holding(policy, current), latest)


def _holding(policy: ScalingPolicy, current: float) -> str:
    """One message for every kind of hold, so a load wobbling around the plan rewrites nothing."""
    return (f"holding the decision for {current:.4g} requests/s: it scales up as soon as the observed load "
            f"needs more, and down once it stays lower for {policy.scale_down_delay_s:g} s")


def _feasible_up_to(cost_at: Callable[[float], float], current: float, wanted: float) -> tuple[float, str]:
    """`wanted`, or the highest load up to it that some placement still carries (the most
    replicas the bounds allow) when `wanted` has none: an overload past maxReplicas scales to
    the limit, rather than to an infeasible decision that changes nothing."""
    if not math.isinf(cost_at(wanted)) or math.isinf(cost_at(current)):
        return wanted, ""
    low, high = current, wanted
    for _ in range(20):  # bisection to 1e-6 of the range
        mid = (low + high) / 2
        if math.isinf(cost_at(mid)):
            high = mid
        else:
            low = mid
    return low, f"; capped at {low:.4g} requests/s, the most the allowed replicas carry"


def _overloaded(policy: ScalingPolicy, sample: Sample) -> bool:
    return policy.slo_ms is not None and sample.queue_ms is not None and sample.queue_ms > policy.slo_ms / 2


def _load(policy: ScalingPolicy, rate: float) -> float:
    return max(rate, policy.floor_rps, IDLE_RPS)


def _more(a: float, b: float) -> bool:
    """a costs more than b (an infeasible decision, inf, costs more than any feasible one)."""
    if math.isinf(a) or math.isinf(b):
        return math.isinf(a) and not math.isinf(b)
    return a > b * (1 + 1e-9) + 1e-12
