"""``solve``: the cheapest placement that meets the latency SLO, and why every other option lost.

1. Each pool is screened: allowed, priced for the objective, profiled, with capacity.
2. For each pool, every (batch size, concurrency) measured and allowed is a configuration; its
   per-replica limit is ``latency.max_replica_load`` (SLO met at that load and every lower one,
   utilisation within the headroom). The pool keeps the configuration whose replicas take the
   most load; cost and watts depend only on replica counts, so that one is never worse.
3. ``split.cheapest_split`` picks replica counts per pool (one pool, or several when hybrid is
   allowed and capacity runs out or a mix is cheaper) and the load is shared in proportion.
4. No split: infeasible, with the best latency any single pool could give at this load.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from operator import itemgetter
from typing import NamedTuple

from .latency import (
    LatencyPrediction,
    ServiceCurve,
    first_load_above,
    latency_floor_ms,
    max_replica_load,
    meets_slo,
    predict_latency,
    predict_latency_and_same_for,
    replica_load_bound,
    replica_load_bounds,
    slo_check,
    within_slo,
)
from .split import PoolCapacity, cheapest_split
from .types import (
    EVEN_SPREAD,
    MORE_ENERGY,
    MORE_EXPENSIVE,
    NO_PROFILE,
    NOT_ALLOWED,
    OVER_CAPACITY,
    OVER_SLO,
    PROFILE_FAILED,
    SINGLE_POOL,
    WEIGHTED,
    Alternative,
    Decision,
    Placement,
    Pool,
    Profile,
    Request,
)

MAX_ALTERNATIVES = 64  # status.decision.alternatives holds at most 64 (crds/)
_UNBOUNDED = 10**9


@dataclass(frozen=True)
class Configuration:
    """One way to run replicas on a pool: max batch size, instances per replica, and the most
    load (requests/s) one replica may take while meeting the SLO (0 when none)."""

    pool: Pool
    curve: ServiceCurve
    batch_size: int
    replica_load_rps: float

    @property
    def concurrency(self) -> int:
        return self.curve.concurrency


def solve(request: Request, pools: Iterable[Pool], profiles: Iterable[Profile],
          explain: bool = True) -> Decision:
    """The placement for ``request`` over ``pools`` given the ``profiles`` (one per pool at
    most). Pure and deterministic: same inputs, same Decision.

    ``explain=False`` leaves the alternatives out of a feasible decision (the same placements;
    an infeasible one is always explained): the scaling loop's re-solve at a new load needs
    only the replicas, and predicting each losing pool's latency is most of its cost."""
    pools = sorted(pools, key=lambda p: p.name)
    by_pool: dict[str, Profile] = {}
    for profile in profiles:
        if profile.pool in by_pool:
            raise ValueError(f"two profiles for pool {profile.pool!r}")
        by_pool[profile.pool] = profile

    excluded: list[Alternative] = []
    candidates: list[tuple[Pool, list[tuple[ServiceCurve, int]]]] = []
    for pool in pools:
        configs, why_not = _configurations(request, pool, by_pool.get(pool.name))
        if why_not is not None:
            excluded.append(why_not)
        else:
            candidates.append((pool, configs))

    best: dict[str, Configuration] = {}
    over_slo: list[tuple[Pool, list[tuple[ServiceCurve, int]]]] = []
    for pool, configs in candidates:
        limit = _pool_limit(by_pool[pool.name], _LimitKey.of(request, pool.latency_factor))[1]
        if limit is None:
            over_slo.append((pool, configs))
        else:
            best[pool.name] = Configuration(pool, *limit)

    capacities = [PoolCapacity(c.pool, c.replica_load_rps, _capacity(c.pool, request))
                  for c in best.values()]
    split = cheapest_split(capacities, request.target_rps, request.min_replicas,
                           request.max_replicas, request.objective, request.allow_hybrid,
                           even_spread=not request.weighted_routing)

    configs_of = {pool.name: configs for pool, configs in candidates}
    if split is not None and not explain:
        placements = _placements(request, split.replicas, best, configs_of)
        message = _feasible_message(request, placements, split.exact, by_pool)
        return Decision(True, request.objective, placements, message=message,
                        routing=_routing(request, placements))
    # The best latency of a pool over the SLO: for its alternative, and again when nothing fits.
    over_latency = {pool.name: _best_latency(request, pool, configs) for pool, configs in over_slo}
    slo_alternatives = [_over_slo_alternative(request, pool, over_latency[pool.name]) for pool, _ in over_slo]
    if split is None:
        return _infeasible(request, candidates, best, excluded + slo_alternatives, over_latency)

    placements = _placements(request, split.replicas, best, configs_of)
    decision = Decision(True, request.objective, placements)
    alternatives = [_single_pool_alternative(request, c, decision) for c in best.values()
                    if not (len(placements) == 1 and placements[0].pool == c.pool.name)]
    alternatives = _ordered(alternatives + slo_alternatives + excluded)
    message = _feasible_message(request, placements, split.exact, by_pool)
    return Decision(True, request.objective, placements, alternatives, message=message,
                    routing=_routing(request, placements))


def _routing(request: Request, placements: list[Placement]) -> str:
    """How the placements' traffic is routed: one pool, a weighted split, or an even spread."""
    if len(placements) <= 1:
        return SINGLE_POOL
    return WEIGHTED if request.weighted_routing else EVEN_SPREAD


def _feasible_message(request: Request, placements: list[Placement], exact: bool,
                      by_pool: dict[str, Profile]) -> str:
    where = ", ".join(f"{p.replicas} on {p.pool} (batch {p.batch_size})" for p in placements)
    cost = sum(p.cost_per_hour for p in placements)
    message = (f"{request.describe_slo()} at {request.target_rps:g} requests/s: {where}; "
               f"{cost:.4g} USD/h")
    if not exact:
        message += " (search stopped at its work limit: the best split found, maybe not the best)"
    over = [p for p in placements if not within_slo(p.predicted_latency_ms, request.slo_latency_ms)]
    if over:
        message += "; " + ", ".join(
            f"{p.pool} is predicted {p.predicted_latency_ms:.3g} ms at its {p.share_rps / p.replicas:.3g} "
            f"requests/s per replica" for p in over) + (
            ", over the SLO though below its limit, with no configuration or few more replicas "
            "within it (the model's latency is not monotone in load there; docs/placement.md)")
    return message + _unstable_note(placements, by_pool)


class _LimitKey(NamedTuple):
    """What a pool's per-replica limits depend on besides its profile: not the load, the
    replica bounds, prices or capacity. A re-solve at a new load reuses them."""

    slo_latency_ms: float
    slo_percentile: int
    headroom: float
    max_queue_delay_ms: float
    batch_sizes: tuple[int, ...]
    concurrency_levels: tuple[int, ...]

    @classmethod
    def of(cls, request: Request, latency_factor: float = 1.0) -> _LimitKey:
        """The key for a pool whose predictions are multiplied by `latency_factor`: its
        corrected prediction meets the SLO when the model's meets SLO / factor."""
        return cls(request.slo_latency_ms / latency_factor, request.slo_percentile, request.headroom,
                   request.max_queue_delay_ms, request.batch_sizes,
                   tuple(sorted(set(request.concurrency_levels))))

    def request(self) -> Request:
        """A request with these fields (and a placeholder load, which the limits ignore)."""
        return Request(slo_latency_ms=self.slo_latency_ms, target_rps=1.0,
                       slo_percentile=self.slo_percentile, headroom=self.headroom,
                       max_queue_delay_ms=self.max_queue_delay_ms, batch_sizes=self.batch_sizes,
                       concurrency_levels=self.concurrency_levels)


# The limits are a pure function of (profile, key): caching them keeps solve pure and makes
# the scaling loop's re-solve at a new load cheap. Bounded: an entry holds its curves and keeps
# its profile alive, about 4 KB for 6 batch sizes x 1 concurrency (8 MB for 2048 entries) and
# about 210 KB at the schema's 512 points (430 MB if all 2048 were such, which no realistic
# cluster has); entries are one per (profile, SLO settings). A profile is hashed once.
@lru_cache(maxsize=2048)
def _pool_limit(profile: Profile, key: _LimitKey
                ) -> tuple[tuple[tuple[ServiceCurve, int], ...],
                           tuple[ServiceCurve, int, float] | None]:
    """The configurations of ``profile`` allowed by ``key``, and the one whose replicas take
    the most load within the SLO as (curve, batch size, requests/s per replica), or None."""
    configs = tuple(_curve_configurations(profile, key.batch_sizes, key.concurrency_levels))
    return configs, (_best_limit(key.request(), list(configs)) if configs else None)


def replica_limit_rps(request: Request, pool: Pool, profile: Profile) -> float | None:
    """The most load one replica of ``pool`` may take within the SLO and headroom, requests/s,
    with the configuration the solver would choose there; None when none meets the SLO."""
    found = _pool_limit(profile, _LimitKey.of(request, pool.latency_factor))[1]
    return None if found is None else found[2]


def predicted_latency_at(request: Request, profile: Profile, batch_size: int, concurrency: int,
                         per_replica_rps: float) -> float | None:
    """The model's own (uncalibrated) latency at the SLO's percentile for one replica of
    `profile`'s pool running `batch_size` x `concurrency` at `per_replica_rps`: what calibration
    compares an observation with. None when the profile has no such configuration or the load is
    past what a replica serves."""
    for curve, batch in _pool_limit(profile, _LimitKey.of(request))[0]:
        if batch == batch_size and curve.concurrency == concurrency:
            prediction = predict_latency(curve, per_replica_rps, batch, request.max_queue_delay_ms,
                                         request.slo_percentile)
            return prediction.latency_ms if prediction.stable else None
    return None


def clear_limit_cache() -> None:
    """Forget the cached per-pool limits (benchmarks time a cold decision with it)."""
    _pool_limit.cache_clear()


def _curve_configurations(profile: Profile, batch_sizes: tuple[int, ...],
                          concurrency_levels: Iterable[int]) -> list[tuple[ServiceCurve, int]]:
    configs = []
    for concurrency in sorted(set(concurrency_levels)):
        try:
            curve = ServiceCurve.from_points(
                profile.points, concurrency,
                unmeasured=[b for b, c in profile.skipped if c == concurrency],
                request_overhead_ms=profile.request_overhead_ms)
        except ValueError:
            continue
        for batch in curve.batch_sizes:
            if not batch_sizes or batch in batch_sizes:
                configs.append((curve, batch))
    return configs


def best_configuration(request: Request, pool: Pool,
                       configs: list[tuple[ServiceCurve, int]]) -> Configuration | None:
    """The configuration of ``pool`` whose replicas take the most load within the SLO; None
    when none meets it. Ties keep the one with the higher bound, then the larger batch (more
    room for bursts), then fewer instances."""
    limit = _best_limit(request, configs)
    return None if limit is None else Configuration(pool, *limit)


def _best_limit(request: Request, configs: list[tuple[ServiceCurve, int]]
                ) -> tuple[ServiceCurve, int, float] | None:
    """``best_configuration`` without the pool: (curve, batch size, requests/s per replica)."""
    # Most promising first: ranked by ``replica_load_bound`` at half the SLO, since under load
    # a request waits for the batch in service and then rides its own (about two service
    # times); ties by the bound at the SLO, the larger batch, fewer instances. Then most
    # configurations share the best one's limit (the batches they run at that load are below
    # all their max batch sizes): one check just above it dismisses each, often several at
    # once; those whose true bound cannot beat it are skipped unchecked. The bounds are worked
    # out per curve, for all its batch sizes at once.
    half, slo = request.slo_latency_ms / 2, request.slo_latency_ms
    per_curve: dict[int, tuple[dict[int, float], dict[int, float]]] = {}
    ranked = []
    for curve, batch in configs:
        bounds = per_curve.get(id(curve))
        if bounds is None:
            bounds = per_curve[id(curve)] = (replica_load_bounds(curve, half, request.headroom),
                                             replica_load_bounds(curve, slo, request.headroom))
        ranked.append((-bounds[0][batch], -bounds[1][batch], -batch, curve.concurrency, curve))
    ranked.sort(key=itemgetter(0, 1, 2, 3))  # stable: equal keys keep the given order
    best: tuple[ServiceCurve, int, float] | None = None
    # Failed checks at a load, by curve: each tells which smaller batch sizes fail the same way.
    failed: dict[tuple[int, float], list[Callable[[int], bool]]] = {}
    for _, negative_upper, negative_batch, _, curve in ranked:
        upper, batch = -negative_upper, -negative_batch
        above = best[2] if best else 0.0
        if upper <= above:
            continue  # cannot take more, whatever its latency
        if best is not None:
            # To win it must meet the SLO at the least limit above the best (and all below).
            target = first_load_above(curve, batch, request.slo_latency_ms, request.headroom,
                                      above, bound_rps=upper)
            known = failed.setdefault((curve.concurrency, target), [])
            if any(same(batch) for same in known):
                continue
            passes, same = slo_check(curve, target, batch, request.max_queue_delay_ms,
                                     request.slo_percentile, request.slo_latency_ms)
            if not passes:
                known.append(same)
                continue
        load = max_replica_load(curve, batch, request.max_queue_delay_ms, request.slo_percentile,
                                request.slo_latency_ms, request.headroom, above_rps=above,
                                above_known_to_pass=best is not None, bound_rps=upper)
        if load > above:
            best = (curve, batch, load)
    return best


def _configurations(request: Request, pool: Pool, profile: Profile | None
                    ) -> tuple[list[tuple[ServiceCurve, int]], Alternative | None]:
    """The (curve, batch size) pairs to consider on ``pool``, or why the pool is out."""
    def out(reason: str, message: str) -> tuple[list[tuple[ServiceCurve, int]], Alternative]:
        return [], Alternative(pool.name, reason, message)

    if request.pools and pool.name not in request.pools:
        return out(NOT_ALLOWED, "not in the deployment's allowed pools")
    if request.objective == "energy" and not pool.has_power:
        return out(NOT_ALLOWED, "has no power figure; objective energy needs one")
    if profile is None:
        return out(NO_PROFILE, "no profile of this model on this pool")
    if profile.failure:
        return out(PROFILE_FAILED, profile.failure)
    if pool.capacity_replicas == 0:
        return out(OVER_CAPACITY, "no free capacity for another replica")
    configs = list(_pool_limit(profile, _LimitKey.of(request))[0])
    if not configs:
        return out(NO_PROFILE, f"no measured point at the allowed batch sizes "
                               f"{list(request.batch_sizes) or 'any'} and concurrency "
                               f"{list(request.concurrency_levels)}")
    return configs, None


def _unstable_note(placements: list[Placement], by_pool: dict[str, Profile]) -> str:
    """``"; cpu measured unstable (5 of 6 points)"`` for each chosen pool whose curve (the
    points at the chosen concurrency) has unstable points; empty when all are stable.

    Unstable points are used as measured (see ``ServiceCurve.from_points``); a reader of the
    decision should know the figures behind it were noisy."""
    notes = []
    for placement in placements:
        points = [p for p in by_pool[placement.pool].points
                  if p.concurrency == placement.concurrency]
        unstable = sum(1 for p in points if not p.stable)
        if unstable:
            notes.append(f"{placement.pool} measured unstable ({unstable} of {len(points)} points)")
    return "".join(f"; {note}" for note in notes)


def _capacity(pool: Pool, request: Request) -> int:
    """The most replicas this deployment may have on ``pool``."""
    cap = pool.capacity_replicas if pool.capacity_replicas is not None else _UNBOUNDED
    return min(cap, request.max_replicas) if request.max_replicas is not None else cap


def _placements(request: Request, replicas: dict[str, int], best: dict[str, Configuration],
                configs_of: dict[str, list[tuple[ServiceCurve, int]]]) -> list[Placement]:
    carried = sum(r * best[name].replica_load_rps for name, r in replicas.items())
    total = sum(replicas.values())
    # A pool's share stays what it is when its replicas change only where shares are weighted
    # (or one pool carries everything); under an even spread they would move every pool's.
    fixed_shares = request.weighted_routing or len(replicas) == 1
    room = _UNBOUNDED if request.max_replicas is None else request.max_replicas - total
    placements = []
    for name in sorted(replicas):
        config, count = best[name], replicas[name]
        # Weighted: shares in proportion to what each pool's replicas may take, so all run at
        # the same fraction of their own limit. Even spread (a Service): the same per replica.
        share = (request.target_rps * count * config.replica_load_rps / carried
                 if request.weighted_routing else request.target_rps * count / total)
        more = min(_MORE_REPLICAS, room, _capacity(config.pool, request) - count) if fixed_shares else 0
        curve, batch, count, prediction = _within_slo(request, config, configs_of.get(name, []), share,
                                                      count, more)
        room -= count - replicas[name]
        placements.append(Placement(
            pool=name, replicas=count, batch_size=batch, share_rps=share,
            predicted_latency_ms=prediction.latency_ms * config.pool.latency_factor,
            utilisation=prediction.utilisation,
            cost_per_hour=config.pool.cost_per_hour(count), watts=config.pool.watts(count),
            concurrency=curve.concurrency))
    return placements


# The most replicas a pool's count may rise by to bring its prediction within the SLO.
_MORE_REPLICAS = 16


def _within_slo(request: Request, config: Configuration, configs: list[tuple[ServiceCurve, int]],
                share: float, count: int, more: int) -> tuple[ServiceCurve, int, int, LatencyPrediction]:
    """(curve, batch size, replicas, prediction) for ``share`` requests/s on ``config``'s pool.

    Usually ``config`` at ``count`` replicas. The limit search assumes that a replica meeting
    the SLO at its limit meets it at every lower load, and the model is not monotone
    everywhere: at a low load each batch waits up to the queue delay, and where the profile
    leaves small batches unmeasured their conservative service time makes the latency rise
    and then fall with load. So a share below the limit can be predicted over the SLO. Then
    another configuration of the pool at the same replicas and cost (a smaller batch waits
    less), else up to ``more`` replicas more (a lower load each), is taken; if none meets it,
    the prediction stays as it is and the decision's message says so."""
    def predicted(curve: ServiceCurve, batch: int, replicas: int) -> LatencyPrediction:
        return predict_latency(curve, share / replicas, batch, request.max_queue_delay_ms,
                               request.slo_percentile)

    first = predicted(config.curve, config.batch_size, count)
    if within_slo(first.latency_ms * config.pool.latency_factor, request.slo_latency_ms):
        return config.curve, config.batch_size, count, first
    for replicas in range(count, count + max(more, 0) + 1):
        found = _config_meeting_slo_at(request, config.pool, configs, share / replicas)
        if found is not None:
            return *found, replicas, predicted(*found, replicas)
    return config.curve, config.batch_size, count, first


def _config_meeting_slo_at(request: Request, pool: Pool, configs: list[tuple[ServiceCurve, int]],
                           load_rps: float) -> tuple[ServiceCurve, int] | None:
    """The configuration of ``pool`` that meets the SLO (and headroom) at ``load_rps`` per
    replica, by the solver's own preference: the larger batch, then fewer instances; None
    when none does."""
    slo = request.slo_latency_ms / pool.latency_factor
    for curve, batch in sorted(configs, key=lambda c: (-c[1], c[0].concurrency)):
        if (load_rps <= replica_load_bound(curve, batch, slo, request.headroom)
                and meets_slo(curve, load_rps, batch, request.max_queue_delay_ms,
                              request.slo_percentile, slo)):
            return curve, batch
    return None


def _single_pool_alternative(request: Request, config: Configuration,
                             choice: Decision | None) -> Alternative:
    """This pool alone: how much more it would cost (or draw) than ``choice``, or that it
    cannot hold it (always so when there is no choice)."""
    pool = config.pool
    need = max(request.min_replicas, math.ceil(request.target_rps / config.replica_load_rps
                                               * (1 - 1e-9)))
    cap = _capacity(pool, request)
    prediction = predict_latency(config.curve, request.target_rps / min(need, cap),
                                 config.batch_size, request.max_queue_delay_ms,
                                 request.slo_percentile)
    prediction = dataclasses.replace(prediction, latency_ms=prediction.latency_ms * pool.latency_factor)
    if need > cap or choice is None:
        limit = ("maxReplicas" if request.max_replicas is not None and cap == request.max_replicas
                 else "the pool's capacity")
        return Alternative(
            pool.name, OVER_CAPACITY,
            f"alone it needs {need} replicas at batch {config.batch_size}; {limit} is {cap}",
            batch_size=config.batch_size, replicas=need,
            predicted_latency_ms=prediction.latency_ms if prediction.stable else None,
            cost_per_hour=pool.cost_per_hour(need), watts=pool.watts(need))
    cost, watts = pool.cost_per_hour(need), pool.watts(need)
    if request.objective == "energy":
        diff = (watts or 0.0) - (choice.total_watts or 0.0)
        reason = MORE_ENERGY
        message = (f"draws {diff:.4g} W more than the choice" if diff > 1e-9
                   else "draws the same watts as the choice and loses the tie on cost or replicas")
    else:
        diff = cost - choice.total_cost_per_hour
        reason = MORE_EXPENSIVE
        message = (f"costs {diff:.4g} USD/h more than the choice" if diff > 1e-9
                   else "costs the same as the choice and loses the tie on watts or replicas")
    return Alternative(pool.name, reason, message, batch_size=config.batch_size, replicas=need,
                       predicted_latency_ms=prediction.latency_ms, cost_per_hour=cost, watts=watts)


def _best_latency(request: Request, pool: Pool, configs: list[tuple[ServiceCurve, int]]
                  ) -> tuple[float, int, int]:
    """Lowest SLO-percentile latency ``pool`` alone gives at the request's load with as many
    replicas as it may hold: (ms, batch size, replicas); ms is inf when it cannot carry it."""
    cap = _capacity(pool, request)
    # Unbounded: enough replicas that each sees almost no load.
    replicas = cap if cap < _UNBOUNDED else _UNBOUNDED
    per_replica = request.target_rps / replicas
    best = (math.inf, configs[0][1], replicas)
    same_as_seen: dict[int, list[Callable[[int], bool]]] = {}
    # Larger batches first: their models often stand for the smaller ones too (same_for).
    for curve, batch in sorted(configs, key=lambda c: (c[0].concurrency, -c[1])):
        seen = same_as_seen.setdefault(curve.concurrency, [])
        if (latency_floor_ms(curve, per_replica, batch) >= best[0]
                or any(same(batch) for same in seen)):
            continue  # cannot be lower than the best so far, or equal to one already seen
        prediction, same = predict_latency_and_same_for(
            curve, per_replica, batch, request.max_queue_delay_ms, request.slo_percentile,
            below_ms=best[0])
        seen.append(same)
        if prediction is not None and prediction.latency_ms < best[0]:
            best = (prediction.latency_ms, batch, replicas)
    return (best[0] * pool.latency_factor, *best[1:])


def _over_slo_alternative(request: Request, pool: Pool, best_latency: tuple[float, int, int]) -> Alternative:
    latency, batch, replicas = best_latency
    if math.isinf(latency):
        message = (f"cannot carry {request.target_rps:g} requests/s with {replicas} replicas "
                   f"at any batch size")
        return Alternative(pool.name, OVER_CAPACITY, message, batch_size=batch, replicas=replicas)
    where = "" if replicas >= _UNBOUNDED else f" with {replicas} replicas"
    message = (f"no batch size meets {request.describe_slo()} within headroom "
               f"{request.headroom:g} at every load up to its share; best p{request.slo_percentile}"
               f" is {latency:.4g} ms at batch {batch}{where}")
    return Alternative(pool.name, OVER_SLO, message, batch_size=batch,
                       predicted_latency_ms=latency)


def _infeasible(request: Request, candidates: list[tuple[Pool, list[tuple[ServiceCurve, int]]]],
                best: dict[str, Configuration], alternatives: list[Alternative],
                known: dict[str, tuple[float, int, int]]) -> Decision:
    achievable = (math.inf, "", 0, 0)
    for pool, configs in candidates:
        latency, batch, replicas = known.get(pool.name) or _best_latency(request, pool, configs)
        if latency < achievable[0]:
            achievable = (latency, pool.name, batch, replicas)
    # Every pool that meets the SLO per replica is out for lack of replicas: alone it needs
    # more than it may hold (or a split would have been found).
    alternatives += [_single_pool_alternative(request, config, None) for config in best.values()]
    slo = request.describe_slo()
    if math.isinf(achievable[0]):
        message = (f"no placement meets {slo} at {request.target_rps:g} requests/s: no allowed, "
                   f"profiled pool can carry the load with the replicas it may hold, and no "
                   f"split within maxReplicas, capacity and headroom does")
        return Decision(False, request.objective, (), _ordered(alternatives), message=message)
    latency, pool_name, batch, replicas = achievable
    where = "" if replicas >= _UNBOUNDED else f" with {replicas} replicas"
    message = (f"no placement meets {slo} at {request.target_rps:g} requests/s within headroom "
               f"{request.headroom:g} and capacity; best achievable p{request.slo_percentile} is "
               f"{latency:.4g} ms on {pool_name} at batch {batch}{where}")
    if latency <= request.slo_latency_ms and best:
        # The latency is within reach: what is short is replicas (minReplicas or the load
        # above what the pools may hold), not speed.
        message += (f", within the SLO: what is short is replicas (minReplicas {request.min_replicas}, "
                    f"maxReplicas and the pools' capacity; see the OverCapacity alternatives)")
    return Decision(False, request.objective, (), _ordered(alternatives),
                    best_achievable_latency_ms=latency, best_achievable_pool=pool_name,
                    best_achievable_batch_size=batch, message=message)


_REASON_ORDER = {MORE_EXPENSIVE: 0, MORE_ENERGY: 0, OVER_CAPACITY: 1, OVER_SLO: 2}


def _ordered(alternatives: list[Alternative]) -> tuple[Alternative, ...]:
    """Closest contenders first (by cost), then the excluded; capped for the status."""
    def key(a: Alternative) -> tuple[int, float, str]:
        return (_REASON_ORDER.get(a.reason, 3),
                a.cost_per_hour if a.cost_per_hour is not None else math.inf, a.pool)
    return tuple(sorted(alternatives, key=key)[:MAX_ALTERNATIVES])

