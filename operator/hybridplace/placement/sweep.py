"""Decisions across a range of loads, and the crossovers: the loads where the choice changes
pools. Pure, like the rest of the engine: `hybridplace report` draws from it, and
benchmarks/seed_crossover.py's worked example is its first case (CPU up to 68.6 requests/s on the
seed table, one T4 node from there on).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass

from .solver import solve
from .types import Decision, Pool, Profile, Request, per_million


@dataclass(frozen=True)
class LoadPoint:
    """The choice at one load, and each pool's cheapest placement alone (None: the pool cannot
    meet the SLO at that load by itself, or has no profile)."""

    load_rps: float
    chosen: Decision
    alone: dict[str, Decision]

    @property
    def pools(self) -> tuple[str, ...]:
        return chosen_pools(self.chosen)

    def cost_per_hour(self, pool: str | None = None) -> float | None:
        """USD/h of the choice (pool None) or of `pool` alone; None when infeasible."""
        decision = self.chosen if pool is None else self.alone.get(pool)
        return decision.total_cost_per_hour if decision is not None and decision.feasible else None

    def cost_per_million(self, pool: str | None = None) -> float | None:
        """USD per million inferences at this load, of the choice or of `pool` alone."""
        return per_million(self.cost_per_hour(pool), self.load_rps)


@dataclass(frozen=True)
class Crossover:
    """The lowest load (requests/s, to `tolerance`) at which the chosen pools are no longer
    `before` but `after`; infeasible is the empty tuple."""

    load_rps: float
    before: tuple[str, ...]
    after: tuple[str, ...]
    cost_before: float | None  # USD/h just below the crossover
    cost_after: float | None  # USD/h at it


def chosen_pools(decision: Decision) -> tuple[str, ...]:
    """The pools a decision uses, sorted; empty when infeasible."""
    return tuple(sorted({p.pool for p in decision.placements})) if decision.feasible else ()


def log_grid(start: float, stop: float, points: int) -> list[float]:
    """`points` loads from `start` to `stop`, evenly spaced on a log scale."""
    if points < 2 or not 0 < start < stop:
        raise ValueError(f"need 0 < start < stop and points >= 2, got {start}, {stop}, {points}")
    step = math.log(stop / start) / (points - 1)
    return [start * math.exp(i * step) for i in range(points)]


def decide_at(request: Request, pools: Sequence[Pool], profiles: Sequence[Profile], load: float,
              only: str | None = None) -> Decision:
    """The decision at `load` requests/s, over every allowed pool or over `only`."""
    request = dataclasses.replace(request, target_rps=load)
    if only is not None:
        request = dataclasses.replace(request, pools=(only,))
    return solve(request, pools, profiles, explain=False)


def sweep(request: Request, pools: Sequence[Pool], profiles: Sequence[Profile], loads: Sequence[float],
          alone: Sequence[str] = ()) -> list[LoadPoint]:
    """The choice at each load (sorted), and each pool in `alone` by itself."""
    points = []
    for load in sorted(loads):
        points.append(LoadPoint(load, decide_at(request, pools, profiles, load),
                                {name: decide_at(request, pools, profiles, load, name) for name in alone}))
    return points


def crossovers(request: Request, pools: Sequence[Pool], profiles: Sequence[Profile],
               points: Sequence[LoadPoint], tolerance: float = 1e-3) -> list[Crossover]:
    """Every change of the chosen pools between neighbouring points of a sweep, bisected to
    `tolerance` requests/s. A fine sweep finds narrow switches; a coarse one may step over them."""
    found = []
    for below, above in zip(points, points[1:], strict=False):
        if below.pools == above.pools:
            continue
        low, high, at_high = below.load_rps, above.load_rps, above.chosen
        while high - low > tolerance:
            middle = (low + high) / 2
            decision = decide_at(request, pools, profiles, middle)
            if chosen_pools(decision) == below.pools:
                low = middle
            else:
                high, at_high = middle, decision
        cost_before = below.cost_per_hour()
        before = decide_at(request, pools, profiles, low)
        if chosen_pools(before) == below.pools and before.feasible:
            cost_before = before.total_cost_per_hour
        found.append(Crossover(high, below.pools, chosen_pools(at_high), cost_before,
                               at_high.total_cost_per_hour if at_high.feasible else None))
    return found


__all__ = ["Crossover", "LoadPoint", "chosen_pools", "crossovers", "decide_at", "log_grid", "sweep"]
