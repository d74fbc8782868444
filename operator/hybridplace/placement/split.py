"""The cheapest replica counts per pool that carry the load: an exact branch and bound.

The split space (what "every split" means, and what the brute-force test enumerates):
a choice of replica counts R_p >= 0, one per pool, such that
- sum_p R_p * L_p >= target, where L_p is the most load one replica of pool p may take
  (``latency.max_replica_load`` at that pool's chosen batch size); the load is then split in
  proportion to R_p * L_p, so every replica runs at the same fraction of its own limit;
- min_replicas <= sum_p R_p <= max_replicas (minReplicas and maxReplicas count all pools);
- R_p <= the pool's capacity;
- at most one pool with R_p > 0 when hybrid placement is not allowed.
With ``even_spread`` (a split a plain Service carries, which gives every replica the same
share), a split's replicas each take target / sum_p R_p, so every pool used must have
L_p >= that: sum_p R_p * min(L_p over the pools used) >= target.
Among those, the least (primary, secondary, total replicas) wins, where primary is cost per
hour (objective ``cost``) or watts (``energy``) and secondary is the other one; remaining ties go
to the first found (pools in order of efficiency, then name): deterministic.

Why branch and bound: node-granular prices (``ceil(R / replicas_per_node) * price``) make the
cost a step function, so the cheapest mix is a small covering-knapsack problem, not a formula.
Bound: the rest of the load covered fractionally at each remaining pool's best USD (or watts) per
request/s, cheapest first (the linear-programming relaxation). Levels (replica counts with the
same cost and watts) are tried from "enough for everything" down; once a whole node is dropped
the bound can only grow, so the loop stops at the first level whose bound is out of reach.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .types import Objective, Pool

# Above this much search work (one unit per node, CAPPED_BOUND_WORK per maxReplicas bound) the
# best split found so far is returned, marked not exact. A guard for the operator's reconcile
# threads (about 0.5 s of CPU on a loaded 2-core machine); realistic instances use a few hundred.
SEARCH_NODE_LIMIT = 200_000
CAPPED_BOUND_WORK = 25  # a maxReplicas bound costs about 25 nodes' time (a few sorts)
_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PoolCapacity:
    """A pool as the split search sees it.

    Attributes:
        pool: the pool (price, power, packing).
        replica_load_rps: the most load one replica may take, requests/s (> 0).
        max_replicas: the most replicas this pool may get (its capacity), >= 0.
    """

    pool: Pool
    replica_load_rps: float
    max_replicas: int


@dataclass(frozen=True)
class Split:
    """The replicas per pool (only pools with replicas), and whether the search finished."""

    replicas: dict[str, int]
    primary: float
    secondary: float
    exact: bool


@dataclass
class _Level:
    lo: int  # fewest replicas with this cost and power
    hi: int  # most replicas with this cost and power
    primary: float
    secondary: float


def objective_values(pool: Pool, replicas: int, objective: Objective) -> tuple[float, float]:
    """(primary, secondary) for ``replicas`` replicas on ``pool``: (USD/h, watts) for the cost
    objective, (watts, USD/h) for energy. Unknown watts count as 0 in the secondary place."""
    cost = pool.cost_per_hour(replicas)
    watts = pool.watts(replicas)
    if objective == "energy":
        if watts is None:
            raise ValueError(f"pool {pool.name!r} has no power figure; objective energy needs one")
        return watts, cost
    return cost, watts or 0.0


def cheapest_split(capacities: list[PoolCapacity], target_rps: float, min_replicas: int,
                   max_replicas: int | None, objective: Objective,
                   allow_hybrid: bool, even_spread: bool = False) -> Split | None:
    """The best split in the space described in the module docstring; None when none exists.
    ``even_spread``: only splits where every replica may take the same share."""
    if even_spread and allow_hybrid:
        return _even_spread_split(capacities, target_rps, min_replicas, max_replicas, objective)
    return _search(capacities, target_rps, min_replicas, max_replicas, objective, allow_hybrid)[0]


def _search(capacities: list[PoolCapacity], target_rps: float, min_replicas: int,
            max_replicas: int | None, objective: Objective, allow_hybrid: bool,
            node_limit: int = SEARCH_NODE_LIMIT, beat: float = math.inf) -> tuple[Split | None, int]:
    """``cheapest_split`` (weighted), and the search work it took. ``beat``: skip the search
    when its lower bound shows no split here costs less than this primary."""
    usable = []
    for cap in capacities:
        limit = cap.max_replicas
        if max_replicas is not None:
            limit = min(limit, max_replicas)
        # More replicas than this on one pool never help: they alone carry the load and meet
        # min_replicas, and cost never falls with more replicas.
        limit = min(limit, max(min_replicas, math.ceil(target_rps / cap.replica_load_rps)))
        if limit >= 1 and cap.replica_load_rps > 0:
            usable.append(_SearchPool(cap, limit, objective))
    total_cap = max_replicas if max_replicas is not None else math.inf
    if not usable:
        return None, 0
    if not allow_hybrid:
        return _best_single_pool(usable, target_rps, min_replicas, total_cap), len(usable)
    search = _BranchAndBound(usable, target_rps, min_replicas, total_cap, node_limit)
    if search._lower_bound(0, target_rps) > beat + _TOLERANCE * max(1.0, beat):
        return None, len(usable)
    return search.run(), search.nodes


def _even_spread_split(capacities: list[PoolCapacity], target_rps: float, min_replicas: int,
                       max_replicas: int | None, objective: Objective) -> Split | None:
    """The best even-spread split: for each per-replica limit ``floor`` among the pools', the
    pools whose replicas may take at least ``floor``, each counted as taking exactly ``floor``
    (what an even spread gives it at most), searched as a weighted split. Every even-spread
    split is found at the floor of its slowest pool, and every split found at a floor is an
    even-spread split, so the best over all floors is the best even-spread split."""
    best: Split | None = None
    best_key: tuple[float, float, int] | None = None
    # One work limit for all floors together, as for one weighted search.
    budget, exact = SEARCH_NODE_LIMIT, True
    floors = sorted({cap.replica_load_rps for cap in capacities if cap.replica_load_rps > 0}, reverse=True)
    for floor in floors:
        if budget <= 0:
            exact = False
            break
        capped = [PoolCapacity(cap.pool, floor, cap.max_replicas)
                  for cap in capacities if cap.replica_load_rps >= floor]
        found, work = _search(capped, target_rps, min_replicas, max_replicas, objective, True,
                              node_limit=budget, beat=best.primary if best is not None else math.inf)
        budget -= work
        if found is None:
            continue
        key = (round(found.primary, 9), round(found.secondary, 9), sum(found.replicas.values()))
        if best_key is None or key < best_key:
            best, best_key = found, key
        exact = exact and found.exact
    if best is not None and not exact:
        best = Split(best.replicas, best.primary, best.secondary, False)
    return best


class _SearchPool:
    __slots__ = ("name", "load", "limit", "levels", "best_ratio", "best_ratio_secondary",
                 "capacity_rps", "monotone_levels", "best_per_replica")

    def __init__(self, cap: PoolCapacity, limit: int, objective: Objective) -> None:
        self.name = cap.pool.name
        self.load = cap.replica_load_rps
        self.limit = limit
        self.levels = _levels(cap.pool, limit, objective)
        # Best primary (and secondary) per request/s of capacity over all levels.
        self.best_ratio = min(lv.primary / (lv.hi * self.load) for lv in self.levels)
        self.best_ratio_secondary = min(lv.secondary / (lv.hi * self.load) for lv in self.levels)
        # Least primary per replica over all levels (for minReplicas beyond what the load needs).
        self.best_per_replica = min(lv.primary / lv.hi for lv in self.levels)
        self.capacity_rps = limit * self.load
        # Dropping a level raises the bound when each level adds one whole step of the primary
        # (a node of a per-node price, or a replica of a per-replica one). Not so when levels are
        # single replicas but the primary is paid per node: then every level is tried.
        per_replica_levels = all(lv.lo == lv.hi for lv in self.levels)
        primary_per_node = (cap.pool.price_per_node_hour is not None if objective == "cost"
                            else cap.pool.watts_per_node is not None)
        self.monotone_levels = not (per_replica_levels and primary_per_node
                                    and cap.pool.replicas_per_node > 1)


def _levels(pool: Pool, limit: int, objective: Objective) -> list[_Level]:
    """Replica counts 1..limit grouped by equal (primary, secondary), ascending."""
    levels: list[_Level] = []
    step = pool.replicas_per_node
    per_node = pool.price_per_node_hour is not None and pool.watts_per_replica is None
    r = 1
    while r <= limit:
        # Within one node the cost (and per-node power) is flat: jump to the node's last slot.
        hi = min(limit, ((r - 1) // step + 1) * step) if per_node else r
        primary, secondary = objective_values(pool, hi, objective)
        levels.append(_Level(r, hi, primary, secondary))
        r = hi + 1
    return levels


def _minimal_replicas(chosen: list[tuple[_SearchPool, _Level, int]], target: float,
                      min_replicas: int) -> dict[str, int] | None:
    """Fewest replicas within the chosen levels that still carry the load and meet
    min_replicas; adds to the pools whose replicas carry the most load first."""
    replicas = {sp.name: lv.lo for sp, lv, _ in chosen}
    covered = sum(sp.load * lv.lo for sp, lv, _ in chosen)
    count = sum(replicas.values())
    for sp, _, top in sorted(chosen, key=lambda c: (-c[0].load, c[0].name)):
        while replicas[sp.name] < top and (covered < target * (1 - _TOLERANCE)
                                           or count < min_replicas):
            replicas[sp.name] += 1
            covered += sp.load
            count += 1
    if covered < target * (1 - _TOLERANCE) or count < min_replicas:
        return None
    return replicas


def _best_single_pool(pools: list[_SearchPool], target: float, min_replicas: int,
                      total_cap: float) -> Split | None:
    best = None
    best_key = None
    for sp in sorted(pools, key=lambda p: p.name):
        need = max(min_replicas, math.ceil(target * (1 - _TOLERANCE) / sp.load))
        if need > sp.limit or need > total_cap:
            continue
        level = next(lv for lv in sp.levels if lv.lo <= need <= lv.hi)
        key = (round(level.primary, 9), round(level.secondary, 9), need)
        if best_key is None or key < best_key:
            best_key = key
            best = Split({sp.name: need}, level.primary, level.secondary, True)
    return best


class _BranchAndBound:
    def __init__(self, pools: list[_SearchPool], target: float, min_replicas: int,
                 total_cap: float, node_limit: int = SEARCH_NODE_LIMIT) -> None:
        self.node_limit = node_limit
        self.pools = sorted(pools, key=lambda p: (p.best_ratio, p.name))
        self.target = target
        self.min_replicas = min_replicas
        self.total_cap = total_cap
        self.best_key: tuple[float, float, int] | None = None
        self.best: dict[str, int] | None = None
        self.nodes = 0
        self.exact = True
        self.chosen: list[tuple[_SearchPool, _Level, int]] = []
        # Capacity still available from pool i on, for infeasibility pruning.
        caps = [p.capacity_rps for p in self.pools]
        self.capacity_from = [sum(caps[i:]) for i in range(len(caps) + 1)]
        self.replicas_from = [sum(p.limit for p in self.pools[i:])
                              for i in range(len(self.pools) + 1)]
        # Pools i.. by load per replica, most first: the most load k more replicas can carry.
        self.by_load_from = [sorted(((p.load, p.limit) for p in self.pools[i:]), reverse=True)
                             for i in range(len(self.pools) + 1)]
        # Pools i.. by least primary per replica: the cheapest way to add k more replicas.
        self.by_replica_cost_from = [sorted((p.best_per_replica, p.limit) for p in self.pools[i:])
                                     for i in range(len(self.pools) + 1)]

    def run(self) -> Split | None:
        if not self._reachable(0, self.target, 0):
            return None  # maxReplicas cannot carry the load, whatever the mix: no search
        self._branch(0, self.target, self.min_replicas, 0, 0.0, 0.0)
        if self.best is None or self.best_key is None:
            return None
        return Split(self.best, self.best_key[0], self.best_key[1], self.exact)

    def _reachable(self, i: int, need: float, replicas: int) -> bool:
        """Whether pools i.. can carry ``need`` more requests/s with the replicas left under
        the total cap: the replicas that carry the most load, taken first, are the best any
        mix can do. Without it, an instance that only maxReplicas makes infeasible is searched
        to the node limit (seconds at 32 pools)."""
        left = self.total_cap - replicas
        if need <= self.target * _TOLERANCE:
            return True
        if math.isinf(left):
            return need <= self.capacity_from[i] * (1 + _TOLERANCE)
        carried = 0.0
        for load, limit in self.by_load_from[i]:
            take = min(limit, left)
            carried += take * load
            left -= take
            if carried >= need * (1 - _TOLERANCE) or left <= 0:
                break
        return carried >= need * (1 - _TOLERANCE)

    def _lower_bound(self, i: int, need: float, secondary: bool = False) -> float:
        """Fractional cover of ``need`` requests/s by pools i.. at their best ratios."""
        if need <= 0:
            return 0.0
        pools = self.pools[i:]
        if secondary:
            pools = sorted(pools, key=lambda p: p.best_ratio_secondary)
        total = 0.0
        for p in pools:
            take = min(need, p.capacity_rps)
            total += take * (p.best_ratio_secondary if secondary else p.best_ratio)
            need -= take
            if need <= 0:
                return total
        return math.inf

    def _capped_bound(self, i: int, need: float, left: float) -> float:
        """A lower bound of the primary for covering ``need`` requests/s from pools i.. with at
        most ``left`` more replicas (maxReplicas): the Lagrangian relaxation of the replica
        count, which charges ``mu`` per replica and credits ``mu * left``. Valid for every
        mu >= 0; the best mu is where the fractional cover uses exactly ``left`` replicas, found
        by bisection. Without it, instances where maxReplicas binds search to the node limit.
        Only called once the plain bound failed to prune (it is the costlier one)."""
        if need <= 0 or math.isinf(left):
            return 0.0
        pools = [(p.best_ratio, p.load, p.capacity_rps) for p in self.pools[i:]]

        def cover(mu: float) -> tuple[float, float]:
            """(Lagrangian bound, fractional replicas the cover uses) at ``mu``."""
            rest, total, used = need, 0.0, 0.0
            for ratio, load, capacity in sorted(pools, key=lambda p: p[0] + mu / p[1]):
                take = min(rest, capacity)
                total += take * (ratio + mu / load)
                used += take / load
                rest -= take
                if rest <= 0:
                    return total - mu * left, used
            return math.inf, used

        best, used = cover(0.0)
        if used <= left or math.isinf(best):
            return best
        lo, hi = 0.0, 1.0
        # Grow hi until the cover fits in ``left`` replicas (or stop: the bound only improves).
        for _ in range(40):
            value, used = cover(hi)
            best = max(best, value)
            if used <= left:
                break
            lo, hi = hi, hi * 4
        for _ in range(8):
            mid = 0.5 * (lo + hi)
            value, used = cover(mid)
            best = max(best, value)
            if used > left:
                lo = mid
            else:
                hi = mid
        return best

    def _replica_bound(self, i: int, need_replicas: int) -> float:
        """Least primary of ``need_replicas`` more replicas from pools i.. (minReplicas), each
        at its pool's least primary per replica."""
        total = 0.0
        for per_replica, limit in self.by_replica_cost_from[i]:
            if need_replicas <= 0:
                break
            take = min(limit, need_replicas)
            total += take * per_replica
            need_replicas -= take
        return total if need_replicas <= 0 else math.inf

    def _pruned(self, i: int, need: float, primary: float, secondary: float,
                replicas: int, need_replicas: int = 0) -> bool:
        if self.best_key is None:
            return False
        bound = primary + max(self._lower_bound(i, need), self._replica_bound(i, need_replicas))
        best_primary, best_secondary, best_replicas = self.best_key
        if bound > best_primary + _TOLERANCE * max(1.0, best_primary):
            return True
        if bound < best_primary - _TOLERANCE * max(1.0, best_primary):
            # Not out of reach by load alone; maybe once the replicas left are counted.
            self.nodes += CAPPED_BOUND_WORK
            capped = primary + self._capped_bound(i, need, self.total_cap - replicas)
            if capped > best_primary + _TOLERANCE * max(1.0, best_primary):
                return True
        if bound < best_primary - _TOLERANCE * max(1.0, best_primary):
            return False
        # Primary can at best tie: compare what the secondary and the replicas can reach.
        bound2 = secondary + self._lower_bound(i, need, secondary=True)
        if bound2 > best_secondary + _TOLERANCE * max(1.0, best_secondary):
            return True
        if bound2 < best_secondary - _TOLERANCE * max(1.0, best_secondary):
            return False
        fastest = max((p.load for p in self.pools[i:]), default=0.0)
        more = math.ceil(need / fastest) if need > 0 and fastest > 0 else 0
        return replicas + more >= best_replicas

    def _branch(self, i: int, need: float, need_replicas: int, replicas: int,
                primary: float, secondary: float) -> None:
        self.nodes += 1
        if self.nodes > self.node_limit:
            self.exact = False
            return
        if need <= self.target * _TOLERANCE and need_replicas <= 0:
            self._leaf(primary, secondary)
            return
        if i == len(self.pools):
            return
        if need > self.capacity_from[i] * (1 + _TOLERANCE):
            return
        if need_replicas > self.replicas_from[i] or replicas >= self.total_cap:
            return
        if not self._reachable(i, need, replicas):
            return
        if self._pruned(i, need, primary, secondary, replicas, need_replicas):
            return
        sp = self.pools[i]
        room = min(sp.limit, self.total_cap - replicas)
        want = max(math.ceil(max(need, 0.0) * (1 - _TOLERANCE) / sp.load), need_replicas)
        top = min(room, want)
        first = True
        for level in reversed(sp.levels):
            if level.lo > top:
                continue
            hi = min(level.hi, top)
            new_primary = primary + level.primary
            new_secondary = secondary + level.secondary
            new_need = need - hi * sp.load
            bound = new_primary + self._lower_bound(i + 1, new_need)
            if (not first and sp.monotone_levels and self.best_key is not None
                    and bound > self.best_key[0] + _TOLERANCE * max(1.0, self.best_key[0])):
                # Dropping further whole levels only moves load to less efficient pools.
                break
            first = False
            # Fewer replicas at the same price only matter when the total is capped: they leave
            # room under maxReplicas for another pool (a node's last slots may be better spent
            # elsewhere). Uncapped, the level's most replicas dominate.
            fewest = level.lo if math.isfinite(self.total_cap) else hi
            for count in range(hi, fewest - 1, -1):
                self.chosen.append((sp, level, count))
                self._branch(i + 1, need - count * sp.load, need_replicas - count,
                             replicas + count, new_primary, new_secondary)
                self.chosen.pop()
        # And without this pool.
        self._branch(i + 1, need, need_replicas, replicas, primary, secondary)

    def _leaf(self, primary: float, secondary: float) -> None:
        replicas = _minimal_replicas(self.chosen, self.target, self.min_replicas)
        if replicas is None:
            return
        key = (round(primary, 9), round(secondary, 9), sum(replicas.values()))
        if self.best_key is None or key < self.best_key:
            self.best_key = key
            self.best = {name: r for name, r in replicas.items() if r > 0}
