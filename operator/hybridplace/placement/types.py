"""The placement engine's own inputs and outputs: small frozen dataclasses, no API objects.

The engine does not read InferenceDeployment, HardwarePool or ModelProfile objects directly; an
adapter translates them into these types, so the engine can be tested, benchmarked and reused
(offline CLI, operator, validation benchmark) without Kubernetes or pydantic.

Units are in the field names: ``_ms`` milliseconds, ``_rps`` requests per second (one request
is one inference, one item of a batch), ``_hour`` US dollars per hour, ``watts`` watts,
``_per_million`` per million inferences (USD, or watt-hours for ``wh_``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

Accelerator = Literal["cpu", "nvidia-gpu"]
Objective = Literal["cost", "energy"]

PERCENTILES = (50, 90, 95, 99)

# Why an alternative lost (docs/api.md, status.decision.alternatives[].reason).
MORE_EXPENSIVE = "MoreExpensive"
MORE_ENERGY = "MoreEnergy"
OVER_SLO = "OverSLO"
OVER_CAPACITY = "OverCapacity"
NO_PROFILE = "NoProfile"
PROFILE_FAILED = "ProfileFailed"
NOT_ALLOWED = "NotAllowed"
REASONS = (MORE_EXPENSIVE, MORE_ENERGY, OVER_SLO, OVER_CAPACITY, NO_PROFILE, PROFILE_FAILED,
           NOT_ALLOWED)


SECONDS_PER_HOUR = 3600.0


def per_million(per_hour: float | None, rps: float) -> float | None:
    """A rate per hour (USD/h, or watts = Wh per hour) spread over the inferences served in
    that hour at ``rps`` requests/s: per million inferences. None when either is unknown or the
    load is zero (no inferences: no figure, rather than infinity)."""
    if per_hour is None or not (rps > 0) or not math.isfinite(rps):
        return None
    return per_hour * 1e6 / (rps * SECONDS_PER_HOUR)


def _require(ok: bool, what: str, message: str) -> None:
    if not ok:
        raise ValueError(f"{what}: {message}")


@dataclass(frozen=True)
class Pool:
    """A pool of identical nodes the engine may place replicas on, with its price and power.

    Priced either per node-hour (replicas are packed ``replicas_per_node`` to a node, and a
    started node is paid whole: ``ceil(R / replicas_per_node) * price_per_node_hour``) or per
    replica-hour (``R * price_per_replica_hour``). Power likewise, per node or per replica; it is
    optional and only needed for the ``energy`` objective.

    Attributes:
        name: the HardwarePool's name.
        accelerator: ``cpu`` or ``nvidia-gpu`` (informational; the profile carries the speed).
        price_per_node_hour: USD per node-hour; exactly one of the two prices is set.
        price_per_replica_hour: USD per replica-hour.
        replicas_per_node: serving replicas that fit on one node (from the node's allocatable
            and one replica's requests); 1 when priced per replica.
        watts_per_node: power draw of one busy node, watts.
        watts_per_replica: power draw of one busy replica, watts.
        capacity_replicas: the most replicas this pool may hold for this deployment
            (min of the pool's maxReplicas and its free capacity); None means unbounded.
        latency_factor: observed over predicted latency on this pool (calibration.py); every
            prediction for the pool is multiplied by it, so replicas follow the corrected
            prediction. 1.0: uncalibrated.
    """

    name: str
    accelerator: Accelerator = "cpu"
    price_per_node_hour: float | None = None
    price_per_replica_hour: float | None = None
    replicas_per_node: int = 1
    watts_per_node: float | None = None
    watts_per_replica: float | None = None
    capacity_replicas: int | None = None
    latency_factor: float = 1.0

    def __post_init__(self) -> None:
        what = f"Pool {self.name!r}"
        _require(bool(self.name), "Pool", "name must not be empty")
        _require((self.price_per_node_hour is None) != (self.price_per_replica_hour is None),
                 what, "set exactly one of price_per_node_hour and price_per_replica_hour")
        price = self.price_per_node_hour if self.price_per_node_hour is not None \
            else self.price_per_replica_hour
        _require(price is not None and math.isfinite(price) and price >= 0, what,
                 f"price must be a finite number >= 0, got {price!r}")
        _require(isinstance(self.replicas_per_node, int) and self.replicas_per_node >= 1, what,
                 f"replicas_per_node must be an integer >= 1, got {self.replicas_per_node!r}")
        _require(self.watts_per_node is None or self.watts_per_replica is None, what,
                 "set at most one of watts_per_node and watts_per_replica")
        for name in ("watts_per_node", "watts_per_replica"):
            value = getattr(self, name)
            _require(value is None or (math.isfinite(value) and value >= 0), what,
                     f"{name} must be a finite number >= 0, got {value!r}")
        _require(self.capacity_replicas is None
                 or (isinstance(self.capacity_replicas, int) and self.capacity_replicas >= 0),
                 what, f"capacity_replicas must be an integer >= 0 or None, "
                       f"got {self.capacity_replicas!r}")
        _require(isinstance(self.latency_factor, int | float) and math.isfinite(self.latency_factor)
                 and self.latency_factor > 0, what,
                 f"latency_factor must be a finite number > 0, got {self.latency_factor!r}")

    @property
    def has_power(self) -> bool:
        """Whether a power figure is known (the energy objective needs one)."""
        return self.watts_per_node is not None or self.watts_per_replica is not None

    def nodes_for(self, replicas: int) -> int:
        """Nodes that ``replicas`` replicas occupy (0 for 0)."""
        return -(-replicas // self.replicas_per_node)

    def cost_per_hour(self, replicas: int) -> float:
        """USD per hour for ``replicas`` replicas: whole nodes, or per replica."""
        if self.price_per_node_hour is not None:
            return self.nodes_for(replicas) * self.price_per_node_hour
        return replicas * (self.price_per_replica_hour or 0.0)

    def watts(self, replicas: int) -> float | None:
        """Watts drawn by ``replicas`` busy replicas (whole nodes, or per replica); None if
        the pool has no power figure."""
        if self.watts_per_node is not None:
            return self.nodes_for(replicas) * self.watts_per_node
        if self.watts_per_replica is not None:
            return replicas * self.watts_per_replica
        return None


@dataclass(frozen=True)
class ProfilePoint:
    """One measured point of a model on a pool.

    ``concurrency`` batches of ``batch_size`` items were run side by side on one replica (the
    torch engine's N threads; a Triton instance_group count of N), and the percentiles are the
    time one such batch took, in ms. ``throughput_ips`` (items/s) or ``throughput_rps``
    (batches/s) are optional; when present they refine the mean service time.
    """

    batch_size: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    concurrency: int = 1
    throughput_rps: float | None = None
    throughput_ips: float | None = None
    stable: bool = True

    def __post_init__(self) -> None:
        what = f"ProfilePoint(batch_size={self.batch_size}, concurrency={self.concurrency})"
        _require(isinstance(self.batch_size, int) and self.batch_size >= 1, what,
                 "batch_size must be an integer >= 1")
        _require(isinstance(self.concurrency, int) and self.concurrency >= 1, what,
                 "concurrency must be an integer >= 1")
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            value = getattr(self, name)
            _require(math.isfinite(value) and value > 0, what, f"{name} must be > 0, got {value!r}")
        for name in ("throughput_rps", "throughput_ips"):
            value = getattr(self, name)
            _require(value is None or (math.isfinite(value) and value >= 0), what,
                     f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class Profile:
    """What was measured for the model on one pool.

    ``failure`` says why no measurement exists (for example ``NoDevice: no CUDA device``); the
    pool is then reported as ``ProfileFailed`` and never chosen.
    """

    pool: str
    points: tuple[ProfilePoint, ...] = ()
    failure: str | None = None
    # (batch size, concurrency) pairs of the benchmark's grid that an adaptive search did not
    # measure: the latency model reads the segments around them conservatively.
    skipped: tuple[tuple[int, int], ...] = ()
    # Serving time per single-item request beyond the curve's time per item (ms): the HTTP and
    # backend work a batch of b requests pays b times and one request of b items (how the curve
    # is measured) pays once. Measured by the triton engine (ModelProfile spec.requestOverheadMs);
    # the latency model adds it to a batch of b as b x this.
    request_overhead_ms: float = 0.0

    def __hash__(self) -> int:
        # Computed once: the solver keys its cache of per-pool limits on the profile, and a
        # profile at the schema's limit has 512 points.
        cached = self.__dict__.get("_hash")
        if cached is None:
            cached = hash((self.pool, self.points, self.failure, self.skipped,
                           self.request_overhead_ms))
            object.__setattr__(self, "_hash", cached)
        return cached

    def __post_init__(self) -> None:
        object.__setattr__(self, "points", tuple(self.points))
        object.__setattr__(self, "skipped", tuple(tuple(x) for x in self.skipped))
        _require(math.isfinite(self.request_overhead_ms) and self.request_overhead_ms >= 0,
                 f"Profile {self.pool!r}",
                 f"request_overhead_ms must be >= 0, got {self.request_overhead_ms!r}")
        seen: set[tuple[int, int]] = set()
        for point in self.points:
            key = (point.batch_size, point.concurrency)
            _require(key not in seen, f"Profile {self.pool!r}",
                     f"two points at batch_size={key[0]}, concurrency={key[1]}")
            seen.add(key)


# How a decision's traffic reaches its replicas (the Routed condition's reasons).
WEIGHTED = "Weighted"  # a split, weighted per pool by a Gateway API HTTPRoute
EVEN_SPREAD = "EvenSpread"  # a split a plain Service carries: every replica the same share
SINGLE_POOL = "SinglePool"  # one pool: a Service
ROUTINGS = (WEIGHTED, EVEN_SPREAD, SINGLE_POOL)
#: HTTPRoute backendRef weights sum to about this (the Gateway API allows up to 1,000,000 per
#: backend): each pool's fraction is routed to within 1e-6 of its share.
WEIGHT_TOTAL = 1_000_000


def route_weights(placements: tuple[Placement, ...] | list[Placement]) -> dict[str, int]:
    """Each pool's HTTPRoute weight: its share of the load in parts of WEIGHT_TOTAL (at least 1
    for a pool with replicas, so none is left without traffic)."""
    total = sum(p.share_rps for p in placements)
    if total <= 0:
        return {p.pool: 1 for p in placements}
    return {p.pool: max(1, round(WEIGHT_TOTAL * p.share_rps / total)) for p in placements}


@dataclass(frozen=True)
class Request:
    """What one InferenceDeployment asks of the placement.

    Attributes:
        slo_latency_ms: the SLO threshold, ms (> 0).
        target_rps: expected load, requests/s, one item each (> 0).
        slo_percentile: 50, 90, 95 or 99.
        min_replicas: the least total replicas, summed over all pools used.
        max_replicas: the most total replicas, summed over all pools used; None: unbounded.
        pools: the pools allowed; empty means all.
        objective: ``cost`` (USD/h, ties broken by watts) or ``energy`` (watts, ties by cost).
        allow_hybrid: may the load be split across pools.
        headroom: fraction of each replica's capacity kept free (0 <= headroom < 1): a
            replica's utilisation (load / full-batch throughput) stays <= 1 - headroom.
        batch_sizes: the max batch sizes that may be chosen; empty means every measured one.
        max_queue_delay_ms: Triton's dynamic-batching max queue delay, ms (>= 0).
        concurrency_levels: model instances per replica that may be chosen (Triton
            instance_group count); only those with measured points are used. Default 1.
        weighted_routing: whether a split's traffic can be weighted per pool (a Gateway API
            HTTPRoute). False: only splits a plain Service carries, where every replica gets
            the same share (even spread), or a single pool.
    """

    slo_latency_ms: float
    target_rps: float
    slo_percentile: int = 95
    min_replicas: int = 1
    max_replicas: int | None = None
    pools: tuple[str, ...] = ()
    objective: Objective = "cost"
    allow_hybrid: bool = True
    headroom: float = 0.2
    batch_sizes: tuple[int, ...] = ()
    max_queue_delay_ms: float = 2.0
    concurrency_levels: tuple[int, ...] = (1,)
    weighted_routing: bool = True

    def __post_init__(self) -> None:
        for name in ("pools", "batch_sizes", "concurrency_levels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        _require(math.isfinite(self.slo_latency_ms) and self.slo_latency_ms > 0, "Request",
                 f"slo_latency_ms must be > 0, got {self.slo_latency_ms!r}")
        _require(math.isfinite(self.target_rps) and self.target_rps > 0, "Request",
                 f"target_rps must be > 0, got {self.target_rps!r}")
        _require(self.slo_percentile in PERCENTILES, "Request",
                 f"slo_percentile must be one of {PERCENTILES}, got {self.slo_percentile!r}")
        _require(isinstance(self.min_replicas, int) and self.min_replicas >= 1, "Request",
                 f"min_replicas must be an integer >= 1, got {self.min_replicas!r}")
        _require(self.max_replicas is None
                 or (isinstance(self.max_replicas, int) and self.max_replicas >= self.min_replicas),
                 "Request", f"max_replicas must be >= min_replicas ({self.min_replicas}), "
                            f"got {self.max_replicas!r}")
        _require(self.objective in ("cost", "energy"), "Request",
                 f"objective must be 'cost' or 'energy', got {self.objective!r}")
        _require(0 <= self.headroom < 1, "Request",
                 f"headroom must be in [0, 1), got {self.headroom!r}")
        _require(math.isfinite(self.max_queue_delay_ms) and self.max_queue_delay_ms >= 0,
                 "Request", f"max_queue_delay_ms must be >= 0, got {self.max_queue_delay_ms!r}")
        _require(all(isinstance(b, int) and b >= 1 for b in self.batch_sizes), "Request",
                 f"batch_sizes must be integers >= 1, got {self.batch_sizes!r}")
        _require(len(self.concurrency_levels) > 0
                 and all(isinstance(c, int) and c >= 1 for c in self.concurrency_levels),
                 "Request", f"concurrency_levels must be integers >= 1, "
                            f"got {self.concurrency_levels!r}")

    def describe_slo(self) -> str:
        """Short form, for example ``p95<=50ms``."""
        return f"p{self.slo_percentile}<={self.slo_latency_ms:g}ms"


@dataclass(frozen=True)
class Placement:
    """Replicas on one pool in the chosen placement.

    ``share_rps`` is the load routed to this pool (requests/s); each of its replicas gets
    ``share_rps / replicas``. ``utilisation`` is a replica's load over its full-batch throughput.
    ``concurrency`` is the model instances per replica (Triton instance_group count).
    """

    pool: str
    replicas: int
    batch_size: int
    share_rps: float
    predicted_latency_ms: float
    utilisation: float
    cost_per_hour: float
    watts: float | None
    concurrency: int = 1

    @property
    def cost_per_million(self) -> float | None:
        """USD per million inferences at this pool's share of the load."""
        return per_million(self.cost_per_hour, self.share_rps)

    @property
    def wh_per_million(self) -> float | None:
        """Watt-hours per million inferences at this pool's share; None without power."""
        return per_million(self.watts, self.share_rps)

    def to_dict(self) -> dict[str, Any]:
        """camelCase, as status.decision.placements[] (docs/api.md); watts null if unknown."""
        out: dict[str, Any] = {
            "pool": self.pool,
            "replicas": self.replicas,
            "batchSize": self.batch_size,
            "concurrency": self.concurrency,
            "shareRps": _round(self.share_rps),
            "predictedLatencyMs": _round(self.predicted_latency_ms),
            "utilisation": _round(self.utilisation),
            "costPerHour": _round(self.cost_per_hour),
            "watts": _round(self.watts) if self.watts is not None else None,
            "costPerMillion": _round_or_none(self.cost_per_million),
            "wattHoursPerMillion": _round_or_none(self.wh_per_million),
        }
        return out


@dataclass(frozen=True)
class Alternative:
    """An option considered and not chosen, with the reason (one of REASONS) and a sentence."""

    pool: str
    reason: str
    message: str
    batch_size: int | None = None
    replicas: int | None = None
    predicted_latency_ms: float | None = None
    cost_per_hour: float | None = None
    watts: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """camelCase, as status.decision.alternatives[] (docs/api.md); unknowns left out."""
        out: dict[str, Any] = {"pool": self.pool}
        if self.batch_size is not None:
            out["batchSize"] = self.batch_size
        if self.replicas is not None:
            out["replicas"] = self.replicas
        if self.predicted_latency_ms is not None and math.isfinite(self.predicted_latency_ms):
            out["predictedLatencyMs"] = _round(self.predicted_latency_ms)
        if self.cost_per_hour is not None:
            out["costPerHour"] = _round(self.cost_per_hour)
        if self.watts is not None:
            out["watts"] = _round(self.watts)
        out["reason"] = self.reason
        out["message"] = self.message
        return out


@dataclass(frozen=True)
class Decision:
    """The answer: where to run, or why nothing meets the SLO.

    When ``feasible`` is false, ``placements`` is empty and ``best_achievable_latency_ms`` (with
    its pool and batch size) is the lowest SLO-percentile latency any single allowed pool could
    give at this load with as many replicas as it may hold; None when no pool can carry the load
    at all. ``message`` is one sentence for a condition or an event.
    """

    feasible: bool
    objective: Objective
    placements: tuple[Placement, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    best_achievable_latency_ms: float | None = None
    best_achievable_pool: str | None = None
    best_achievable_batch_size: int | None = None
    message: str = ""
    routing: str | None = None  # one of ROUTINGS when feasible
    total_cost_per_hour: float = field(init=False)
    total_watts: float | None = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "placements", tuple(self.placements))
        object.__setattr__(self, "alternatives", tuple(self.alternatives))
        object.__setattr__(self, "total_cost_per_hour",
                           sum(p.cost_per_hour for p in self.placements))
        watts = [p.watts for p in self.placements]
        object.__setattr__(self, "total_watts",
                           None if any(w is None for w in watts) else sum(w or 0.0 for w in watts))

    @property
    def total_replicas(self) -> int:
        return sum(p.replicas for p in self.placements)

    @property
    def total_share_rps(self) -> float:
        """The load the placements carry, requests/s (the request's target when feasible)."""
        return sum(p.share_rps for p in self.placements)

    @property
    def cost_per_million(self) -> float | None:
        """USD per million inferences at the load decided for; None when nothing is placed."""
        return per_million(self.total_cost_per_hour, self.total_share_rps) if self.placements else None

    @property
    def wh_per_million(self) -> float | None:
        """Watt-hours per million inferences; None when a pool used has no power figure."""
        return per_million(self.total_watts, self.total_share_rps) if self.placements else None

    def to_dict(self) -> dict[str, Any]:
        """camelCase, as status.decision (docs/api.md) and ``hybridplace recommend -o json``.

        ``decidedAt`` is not set here: the engine is pure and has no clock.
        """
        out: dict[str, Any] = {
            "feasible": self.feasible,
            "objective": self.objective,
            "placements": [p.to_dict() for p in self.placements],
            "totalCostPerHour": _round(self.total_cost_per_hour),
        }
        if self.routing is not None:
            out["routing"] = self.routing
        if self.routing == WEIGHTED:
            for entry, weight in zip(out["placements"], route_weights(self.placements).values(), strict=True):
                entry["weight"] = weight
        # null when a pool used has no power figure: unknown, not a wrong sum.
        out["totalWatts"] = (_round(self.total_watts)
                             if self.total_watts is not None and self.placements else None)
        # What teams compare hardware by: the hour's cost (and energy) over the hour's inferences.
        out["costPerMillion"] = _round_or_none(self.cost_per_million)
        out["wattHoursPerMillion"] = _round_or_none(self.wh_per_million)
        # null when feasible (docs/api.md), so a status merge patch clears an old value.
        out["bestAchievableLatencyMs"] = None
        if not self.feasible:
            if self.best_achievable_latency_ms is not None:
                out["bestAchievableLatencyMs"] = _round(self.best_achievable_latency_ms)
            if self.best_achievable_pool is not None:
                out["bestAchievablePool"] = self.best_achievable_pool
            if self.best_achievable_batch_size is not None:
                out["bestAchievableBatchSize"] = self.best_achievable_batch_size
        out["alternatives"] = [a.to_dict() for a in self.alternatives]
        return out


def _round(value: float) -> float:
    """Status figures: 4 decimals is plenty and keeps YAML readable."""
    return float(round(value, 4))


def _round_or_none(value: float | None) -> float | None:
    return None if value is None else _round(value)
