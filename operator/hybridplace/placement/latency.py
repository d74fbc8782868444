"""Latency under load: the SLO-percentile latency one replica gives at a given request rate.

A replica serves with Triton-style dynamic batching: requests (one item each) queue; when the
model instance is free, the batcher sends up to ``max_batch_size`` queued items at once, but
while fewer are queued it holds the oldest for at most ``max_queue_delay_ms`` waiting for more.
A request's latency is its wait (for the batch to close, and for the instance to be free) plus
the service time of the batch it rides in. That is what ``predict_latency`` predicts; a naive
"latency of an isolated batch" ignores both waits and is wrong under load.

The model (assumptions, stated once here and in docs/placement.md)
------------------------------------------------------------------
1. Arrivals are Poisson at the replica's share of the load (requests/s), each one item.
2. Service time of a batch of k items has mean ``s(k)`` and standard deviation ``sd(k)``,
   piecewise-linear in k between measured batch sizes (flat below the smallest measured one,
   which over-estimates, never under-estimates). ``s`` is the measured p50, or the time implied
   by the measured throughput when that is longer; ``sd`` is read off the p95 and p99 spread
   (``max((p95-p50)/1.645, (p99-p50)/2.326)``). Service times are independent across batches.
3. A replica with ``concurrency`` c model instances is c independent batchers, each with 1/c of
   the replica's load and the service curve measured with c running side by side. A real shared
   queue does a little better, so this errs on the safe side.
4. Batch-window recursion (exact in form, approximated in moments). After a dispatch, let E be
   the time to the next arrival and S the service time of the batch just sent. The next batch
   closes W after its first item arrived, where W = max(S - E, min(D, G)), D the queue delay
   and G the time for B-1 more arrivals; it carries K = 1 + Poisson(lambda * W) items (capped at
   B) and the next S depends on K. We solve the stationary mean and variance of W by fixed-point
   iteration: E exactly exponential, S lognormal (5-point Gauss-Hermite), the gate min(D, G)
   replaced by its exact mean. This one recursion covers the idle regime (W = gate, batches of
   about 1 + lambda*D), the busy regime (W ~ the previous service, batch size self-adjusting to
   lambda * s(k)) and the transition between them.
5. A request's latency = its wait inside the window (the first item waits all of W, the others
   a uniform part) + the service time of its own batch, weighted by items (long windows carry
   more items). Two components: windows closed by the gate alone, and windows stretched by a
   busy instance; each is moment-matched to a gamma distribution (Wilson-Hilferty), whose
   right skew fits the batch-size fluctuations better than a normal.
6. Overflow: when more than B items are waiting, the rest miss the batch. The excess is a
   random walk with drift -(B - lambda*s(B)) per full-batch cycle, entered with the window
   overshoot (K - B)+; its mean is the Brownian-motion excursion area
   (u^2/(2m) + v*u/(2m^2)) per regeneration. An item that misses its batch waits, on average,
   EO/lambda more (Little's law), at least about one more batch service.
7. Utilisation is load / full-batch throughput ``c * B / s(B)``; at or above 1 the queue is
   unstable and the latency is infinite.
8. The predicted percentile (50 and up) is never below the mean service time of the fluid
   batch, the k with lambda * s(k) = k: requests cannot, typically, finish faster than the
   batches the load forces. Rarely binding; it makes ``replica_load_bound`` a true bound,
   which lets the solver skip most configurations without evaluating them.

Against a discrete-event simulation of the same batcher (``simulate.simulate_latency``), the
predicted p95 is within 15% on 89% of a 336-case grid (4 service curves, B 1..64, queue delay
0/2/10 ms, utilisation 0.1..0.95) and within 25% on 98.5% (worst -32%, at 0.9 with B 1-4); see
docs/placement.md and ``benchmarks/bench_latency_model.py``.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from statistics import NormalDist

from .types import ProfilePoint

# Standard normal quantiles of the SLO percentiles.
Z_SCORES = {50: 0.0, 90: 1.2815515655446004, 95: 1.6448536269514722, 99: 2.3263478740408408}

_SQRT2 = math.sqrt(2.0)
_SQRT_PI = math.sqrt(math.pi)
# 5-point Gauss-Hermite nodes and weights (for E[f(X)], X normal): enough for a smooth max.
_GH_NEAR, _GH_FAR = 0.9585724646138185, 2.0201828704560856
_GH_W_MID = 0.9453087204829419 / _SQRT_PI
_GH_W_NEAR = 0.3936193231522412 / _SQRT_PI
_GH_W_FAR = 0.019953242059045913 / _SQRT_PI
# A request that misses its batch waits about one more batch service; spread assumed 30% of it
# (calibrated against the simulation; see module docstring, assumption 6).
_MISSED_BATCH_SPREAD = 0.3
_FIXED_POINT_TOLERANCE = 1e-4
_NO_OVERFLOW = 1e-9  # mean excess items below this: no overflow component
_FIXED_POINT_MAX_ITERATIONS = 200


@dataclass(frozen=True)
class ServiceCurve:
    """Service time of one batch on one model instance, by batch size.

    Built from the profile points at one concurrency (``from_points``). ``mean_ms`` and ``sd_ms``
    drive the queueing model; ``p50_ms``/``p95_ms``/``p99_ms`` are kept for the simulation.
    """

    batch_sizes: tuple[int, ...]
    mean_ms: tuple[float, ...]
    sd_ms: tuple[float, ...]
    p50_ms: tuple[float, ...]
    p95_ms: tuple[float, ...]
    p99_ms: tuple[float, ...]
    concurrency: int = 1
    # Batch sizes between two measured ones that the benchmark skipped (an adaptive search):
    # the segments around them are read conservatively (``unmeasured_envelope``).
    unmeasured: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # The knots the service time is interpolated through: the measured batch sizes, plus
        # one knot inside each segment that holds an unmeasured batch size.
        xs, ys, sds = unmeasured_envelope(self.batch_sizes, self.mean_ms, self.sd_ms,
                                          self.unmeasured)
        object.__setattr__(self, "knots", xs)
        object.__setattr__(self, "knot_mean_ms", ys)
        object.__setattr__(self, "knot_sd_ms", sds)

    @classmethod
    def from_points(cls, points: Iterable[ProfilePoint], concurrency: int = 1,
                    unmeasured: Iterable[int] = (), request_overhead_ms: float = 0.0
                    ) -> ServiceCurve:
        """The curve of every point measured at ``concurrency``, stable or not. ``unmeasured``:
        batch sizes at this concurrency the benchmark skipped (ModelProfile spec.skipped).
        ``request_overhead_ms``: serving time per single-item request beyond the points' time
        per item (Profile.request_overhead_ms); a batch of b is b times it slower, mean and
        percentiles alike (the points time one request of b items; serving runs b requests).

        An unstable point (its windows disagreed by more than the worker's threshold) is used
        as measured: its percentiles pool every window, so the noise widens them and the
        prediction errs slow, not fast. On shared machines every point may be unstable, and
        refusing them would leave nothing to place on. The solver says so in its message.

        Raises ValueError when there is no point at ``concurrency``.
        """
        chosen = sorted((p for p in points if p.concurrency == concurrency),
                        key=lambda p: p.batch_size)
        if not chosen:
            raise ValueError(f"no profile point at concurrency {concurrency}")
        means, sds = [], []
        extra = [p.batch_size * request_overhead_ms for p in chosen]
        for p in chosen:
            mean = p.p50_ms
            ips = p.throughput_ips
            if ips is None and p.throughput_rps is not None:
                ips = p.throughput_rps * p.batch_size
            if ips:
                # c instances together deliver ips items/s: one batch of b takes c*b/ips s on
                # average. Longer than p50 when the loop had overheads the percentiles missed.
                mean = max(mean, 1000.0 * concurrency * p.batch_size / ips)
            means.append(mean)
            sds.append(max((p.p95_ms - p.p50_ms) / Z_SCORES[95],
                           (p.p99_ms - p.p50_ms) / Z_SCORES[99], 0.0))
        return cls(
            batch_sizes=tuple(p.batch_size for p in chosen),
            mean_ms=tuple(m + e for m, e in zip(means, extra, strict=True)),
            sd_ms=tuple(sds),
            p50_ms=tuple(p.p50_ms + e for p, e in zip(chosen, extra, strict=True)),
            p95_ms=tuple(p.p95_ms + e for p, e in zip(chosen, extra, strict=True)),
            p99_ms=tuple(p.p99_ms + e for p, e in zip(chosen, extra, strict=True)),
            concurrency=concurrency,
            unmeasured=tuple(sorted(set(unmeasured))),
        )

    @classmethod
    def deterministic(cls, table: dict[int, float], concurrency: int = 1) -> ServiceCurve:
        """A curve with no spread from {batch size: ms}; for tables such as the seed example."""
        sizes = tuple(sorted(table))
        ms = tuple(float(table[b]) for b in sizes)
        return cls(sizes, ms, tuple(0.0 for _ in sizes), ms, ms, ms, concurrency)

    def mean_at(self, k: float) -> float:
        """Mean service time of a batch of k items, ms."""
        # _interpolate inlined (the model's most frequent call): the same arithmetic.
        xs, ys = self.knots, self.knot_mean_ms
        if k <= xs[0] or len(xs) == 1:
            return ys[0]
        j = bisect_right(xs, k)
        if j >= len(xs):
            j = len(xs) - 1
            if k == xs[j]:  # the last knot itself: its value, not one that rounding cancelled
                return ys[j]
        x0 = xs[j - 1]
        return ys[j - 1] + (ys[j] - ys[j - 1]) * (k - x0) / (xs[j] - x0)

    def sd_at(self, k: float) -> float:
        """Standard deviation of the service time of a batch of k items, ms."""
        return _interpolate(self.knots, self.knot_sd_ms, k)

    def at(self, k: float) -> tuple[float, float, float]:
        """(mean ms, sd ms, slope ms per item) at batch size k, with one search."""
        xs, ys, sds = self.knots, self.knot_mean_ms, self.knot_sd_ms
        if k <= xs[0] or len(xs) == 1:
            return ys[0], sds[0], 0.0
        j = bisect_right(xs, k)
        if j >= len(xs):
            j = len(xs) - 1
        x0 = xs[j - 1]
        dx = xs[j] - x0
        slope = (ys[j] - ys[j - 1]) / dx
        f = (k - x0) / dx
        return ys[j - 1] + slope * (k - x0), sds[j - 1] + (sds[j] - sds[j - 1]) * f, slope

    def throughput_rps(self, max_batch_size: int) -> float:
        """Full-batch throughput of one replica (all its instances), requests/s."""
        mean = self.mean_at(max_batch_size)
        return 1000.0 * self.concurrency * max_batch_size / mean if mean > 0 else 0.0


def unmeasured_envelope(batch_sizes: tuple[int, ...], mean_ms: tuple[float, ...],
                        sd_ms: tuple[float, ...], unmeasured: Iterable[int]
                        ) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """Knots (batch sizes, mean ms, sd ms) to interpolate the service time through.

    Between two measured batch sizes b0 < b1 the straight line is used when nothing between
    them was skipped (a full grid measured what there was). When the benchmark skipped a batch
    size in between, the line could be optimistic (service time is concave in batch size where
    batching pays), so the segment is read as the most that two mild assumptions allow: time
    never falls as the batch grows (s(k) <= s(b1)) and time per item never grows with the batch
    (s(k) <= s(b0) * k / b0). That is min(s(b0) * k / b0, s(b1)): one extra knot where the two
    meet; the spread rises to the larger end's by the same knot. A skipped point therefore never
    reads better than what was measured around it, and it is never a configuration (only
    measured batch sizes are)."""
    xs = [float(b) for b in batch_sizes]
    if not unmeasured or len(batch_sizes) < 2:
        return tuple(xs), tuple(mean_ms), tuple(sd_ms)
    gaps = sorted(set(unmeasured))
    out_x, out_y, out_sd = [xs[0]], [mean_ms[0]], [sd_ms[0]]
    for j in range(1, len(batch_sizes)):
        b0, b1 = batch_sizes[j - 1], batch_sizes[j]
        s0, s1 = mean_ms[j - 1], mean_ms[j]
        skipped_inside = any(b0 < b < b1 for b in gaps)
        if skipped_inside and s1 > s0 > 0:
            meet = b0 * s1 / s0  # where s0 * k / b0 reaches s1
            if b0 < meet < b1:
                out_x.append(meet)
                out_y.append(s1)
                out_sd.append(max(sd_ms[j - 1], sd_ms[j]))
        elif skipped_inside and s1 <= s0:
            # Measured time fell with the batch (noise): hold the larger from the start.
            out_x.append(float(b0) + 1e-9 * (b1 - b0))
            out_y.append(s0)
            out_sd.append(max(sd_ms[j - 1], sd_ms[j]))
        out_x.append(float(b1))
        out_y.append(s1 if not skipped_inside else max(s0, s1))
        out_sd.append(sd_ms[j] if not skipped_inside else max(sd_ms[j - 1], sd_ms[j]))
    return tuple(out_x), tuple(out_y), tuple(out_sd)


@dataclass(frozen=True)
class LatencyPrediction:
    """What ``predict_latency`` returns.

    Attributes:
        latency_ms: the predicted percentile latency, ms (inf when unstable).
        percentile: which percentile.
        utilisation: load / full-batch throughput (>= 1 means unstable).
        mean_batch_size: items per batch the instances actually run, on average.
        stable: False when the load exceeds what the replica can serve at all.
    """

    latency_ms: float
    percentile: int
    utilisation: float
    mean_batch_size: float
    stable: bool


def predict_latency(curve: ServiceCurve, load_rps: float, max_batch_size: int,
                    max_queue_delay_ms: float, percentile: int = 95) -> LatencyPrediction:
    """The ``percentile`` latency (ms) of requests to one replica receiving ``load_rps``.

    ``load_rps`` is the replica's share of the load in requests/s (items/s); it is split evenly
    over the replica's ``curve.concurrency`` instances. ``max_batch_size`` (B) must not exceed
    the largest measured batch size. See the module docstring for the model.
    """
    prediction = predict_latency_and_same_for(curve, load_rps, max_batch_size,
                                              max_queue_delay_ms, percentile)[0]
    assert prediction is not None  # asked for any latency
    return prediction


def predict_latency_and_same_for(curve: ServiceCurve, load_rps: float, max_batch_size: int,
                                 max_queue_delay_ms: float, percentile: int = 95,
                                 below_ms: float = math.inf
                                 ) -> tuple[LatencyPrediction | None, Callable[[int], bool]]:
    """``predict_latency``, and a test telling for which smaller max batch sizes the prediction
    is exactly the same (see ``slo_check``).

    ``below_ms``: only a prediction below it is wanted; None stands for one that would not be
    (told by one evaluation of the distribution at ``below_ms`` instead of solving for the
    quantile; the quantile is never below a latency where the distribution reaches it)."""
    model = _ReplicaModel(curve, load_rps, max_batch_size, max_queue_delay_ms)
    if not model.stable:
        return (LatencyPrediction(math.inf, percentile, model.utilisation,
                                  float(max_batch_size), False), lambda b: False)
    # The margin covers the float round trip of the bracket's gamma quantiles (~1e-15).
    if below_ms < math.inf and model.cdf(below_ms) < percentile / 100.0 - 1e-12:
        return None, model.same_for
    return (LatencyPrediction(model.quantile(percentile / 100.0), percentile, model.utilisation,
                              model.mean_batch_size, True), model.same_for)


def latency_floor_ms(curve: ServiceCurve, load_rps: float, max_batch_size: int) -> float:
    """The least latency the model ever predicts at this load (assumption 8), ms; inf when the
    load is unstable."""
    fluid = _stable_fluid_batch(curve, load_rps, max_batch_size)
    return math.inf if fluid is None else curve.mean_at(fluid)


def _stable_fluid_batch(curve: ServiceCurve, load_rps: float, max_batch_size: int) -> float | None:
    """The fluid batch at this load (``_fluid_batch``), or None when the load is unstable."""
    lam = load_rps / curve.concurrency / 1000.0
    if lam * curve.mean_at(max_batch_size) >= max_batch_size:
        return None
    return _fluid_batch(curve, lam, max_batch_size)


def latency_cdf(curve: ServiceCurve, load_rps: float, max_batch_size: int,
                max_queue_delay_ms: float, latency_ms: float) -> float:
    """Predicted fraction of requests answered within ``latency_ms`` (0..1).

    The solver's SLO test: ``latency_cdf(..., slo_ms) >= percentile/100`` is the same as
    ``predict_latency(...).latency_ms <= slo_ms``, without solving for the quantile.
    """
    fluid = _stable_fluid_batch(curve, load_rps, max_batch_size)
    if fluid is None or latency_ms < curve.mean_at(fluid):
        return 0.0  # unstable, or below the floor (assumption 8): no need to solve the model
    model = _ReplicaModel(curve, load_rps, max_batch_size, max_queue_delay_ms, fluid)
    return model.cdf(latency_ms) if model.stable else 0.0


#: A hair of slack, so that a latency equal to the SLO (as read back) counts as meeting it.
SLO_SLACK = 1e-9


def within_slo(latency_ms: float, slo_ms: float) -> bool:
    """Whether a predicted latency meets the SLO threshold (with ``SLO_SLACK``)."""
    return latency_ms <= slo_ms * (1 + SLO_SLACK)


def meets_slo(curve: ServiceCurve, load_rps: float, max_batch_size: int,
              max_queue_delay_ms: float, percentile: int, slo_ms: float) -> bool:
    """Whether one replica at ``load_rps`` keeps its ``percentile`` latency within ``slo_ms``."""
    return latency_cdf(curve, load_rps, max_batch_size, max_queue_delay_ms,
                       slo_ms * (1 + SLO_SLACK)) >= percentile / 100.0


def slo_check(curve: ServiceCurve, load_rps: float, max_batch_size: int,
              max_queue_delay_ms: float, percentile: int, slo_ms: float
              ) -> tuple[bool, Callable[[int], bool]]:
    """``meets_slo``, and a test telling for which smaller max batch sizes the verdict is
    certainly the same (the model would be identical, or it fails for the same reason). The
    solver uses it to dismiss several batch sizes of one curve with one evaluation."""
    lam = load_rps / curve.concurrency / 1000.0

    def unstable(b: int) -> bool:
        return lam * curve.mean_at(b) >= b

    if unstable(max_batch_size):
        return False, lambda b: b <= max_batch_size and unstable(b)
    threshold = slo_ms * (1 + SLO_SLACK)
    fluid = _fluid_batch(curve, lam, max_batch_size)
    if threshold < curve.mean_at(fluid):
        # Below the floor at B: at any smaller b, either the same floor or an unstable queue
        # (the fluid batch exceeds b only if b items arrive faster than they are served).
        return False, lambda b: b <= max_batch_size
    model = _ReplicaModel(curve, load_rps, max_batch_size, max_queue_delay_ms, fluid)
    return model.cdf(threshold) >= percentile / 100.0, model.same_for


def max_replica_load(curve: ServiceCurve, max_batch_size: int, max_queue_delay_ms: float,
                     percentile: int, slo_ms: float, headroom: float,
                     relative_precision: float = 1e-3, above_rps: float = 0.0,
                     above_known_to_pass: bool = False, bound_rps: float | None = None) -> float:
    """The most load one replica may take (requests/s): the SLO met at that load and at every
    lower load, and utilisation <= 1 - headroom. 0.0 when no load qualifies.

    "Every lower load" because real load dips below the target: a placement that meets the SLO
    only at full load (possible when a long queue delay makes light load slow) would break it
    at night. The model's latency rises with load except below the batching knee (the load that
    fills a batch within the queue delay), so the SLO is checked at a near-zero load, around the
    knee, at half the headroom cap and at the cap, then bisected between the last load that
    passes and the first that fails.

    The answer is a point of one fixed grid, ``(1 + relative_precision) ** j`` requests/s for
    integer j, the same for every configuration, or the cap itself: limits compare exactly, and
    a looser SLO can only move the answer up.

    ``above_rps``: only an answer above it is wanted (the solver's best so far). The first grid
    point above it is checked first; if it fails, some value <= ``above_rps`` is returned
    at the cost of one check instead of the search. ``above_known_to_pass``: the caller has
    already seen that point pass (``slo_check`` at ``grid_load_above(above_rps)``).
    ``bound_rps``: :func:`replica_load_bound` of these arguments, when the caller has it.
    """
    # Above the closed-form bound the SLO fails anyway (assumption 8): search below it.
    cap = replica_load_bound(curve, max_batch_size, slo_ms, headroom) if bound_rps is None else bound_rps
    if cap <= 0:
        return 0.0
    step = math.log1p(relative_precision)
    # Index top + 1 stands for the cap itself: a replica limited by headroom alone gets the
    # whole headroom cap, not the grid point below it.
    top = _grid_index_at_or_below(cap, step) + 1
    bottom = top - math.ceil(math.log(1e6) / step)  # a millionth of the cap: "no load"
    margins: dict[int, float] = {}

    def load_at(j: int) -> float:
        return cap if j >= top else _grid_load(j, step)

    def margin(j: int) -> float:
        """>= 0 when the SLO is met at grid load j. On the probit scale (the normal quantile
        of the fraction within the SLO, minus the percentile's), which is close to linear in
        log load near the crossing and keeps growing far below it: a good guide."""
        if j not in margins:
            within = latency_cdf(curve, load_at(j), max_batch_size, max_queue_delay_ms,
                                 slo_ms * (1 + SLO_SLACK))
            margins[j] = _probit(within) - _probit(percentile / 100.0)
        return margins[j]

    def ok(j: int) -> bool:
        return margin(j) >= 0

    probes = {bottom, top - round(math.log(2.0) / step), top}
    if max_queue_delay_ms > 0 and max_batch_size > 1:
        knee = curve.concurrency * (max_batch_size - 1) * 1000.0 / max_queue_delay_ms
        probes.update(_grid_index_at_or_below(knee * f, step) for f in (0.5, 1.0, 2.0)
                      if knee * f < cap)
    probes = {j for j in probes if bottom <= j <= top}
    if above_rps > 0:
        first = min(_grid_index_at_or_below(above_rps, step) + 1, top)
        if load_at(first) <= above_rps:
            return load_at(first)  # the cap itself is no more than above_rps
        if above_known_to_pass:
            margins[first] = 0.0
        if not ok(first):
            return load_at(first - 1)
        # Known to pass: only lower loads (for the envelope) and higher ones remain.
        probes = {j for j in probes if j < first} | {first, top}
    last_ok = None
    first_bad = None
    for j in sorted(probes):
        if ok(j):
            last_ok = j
        else:
            first_bad = j
            break
    if first_bad is None:
        return cap
    if last_ok is None:
        return 0.0
    return load_at(_last_passing(margin, last_ok, first_bad))


def _last_passing(margin: Callable[[int], float], lo: int, hi: int) -> int:
    """The last index in [lo, hi) that passes (margin >= 0), given lo passes and hi fails and
    a single crossing between them. Interpolates on the margin (Illinois variant of regula
    falsi), falling back to halving when that stalls: about half the checks of bisection.
    The answer is the crossing, whatever the path, so it stays canonical."""
    m_lo, m_hi = margin(lo), margin(hi)
    kept = 0  # +1: the low end moved last time, -1: the high end
    halve = False
    while hi - lo > 1:
        width = hi - lo
        if halve or m_lo - m_hi <= 0:
            guess = (lo + hi) // 2
        else:
            guess = lo + int(width * m_lo / (m_lo - m_hi))
        guess = min(max(guess, lo + 1), hi - 1)
        m = margin(guess)
        if m >= 0:
            lo, m_lo = guess, m
            if kept == 1:
                m_hi /= 2  # Illinois: the far end has been kept twice, pull the guess to it
            kept = 1
        else:
            hi, m_hi = guess, m
            if kept == -1:
                m_lo /= 2
            kept = -1
        halve = hi - lo > width // 2  # shrank by less than half: bisect next
    return lo


def first_load_above(curve: ServiceCurve, max_batch_size: int, slo_ms: float, headroom: float,
                     load_rps: float, relative_precision: float = 1e-3,
                     bound_rps: float | None = None) -> float:
    """The least value ``max_replica_load`` can return above ``load_rps`` for this
    configuration: the next grid point, or the configuration's cap if that is lower. To beat
    ``load_rps`` the SLO must be met there (``max_replica_load(..., above_known_to_pass=True)``
    after checking it). ``bound_rps``: ``replica_load_bound`` if already known."""
    step = math.log1p(relative_precision)
    cap = (replica_load_bound(curve, max_batch_size, slo_ms, headroom) if bound_rps is None
           else bound_rps)
    return min(_grid_load(_grid_index_at_or_below(load_rps, step) + 1, step), cap)


def _grid_load(j: int, step: float) -> float:
    return math.exp(j * step)


def _grid_index_at_or_below(load: float, step: float) -> int:
    j = math.floor(math.log(load) / step)
    # Guard the float rounding of log and exp at the boundary.
    while _grid_load(j + 1, step) <= load:
        j += 1
    while _grid_load(j, step) > load:
        j -= 1
    return j


# --- the model --------------------------------------------------------------------------------


class _ReplicaModel:
    """The stationary state of one instance at one load; see the module docstring."""

    __slots__ = ("stable", "utilisation", "mean_batch_size", "floor_ms", "_components",
                 "_curve", "_lam", "_k_mean", "_k_var", "_same_from", "_max_batch_size")

    def __init__(self, curve: ServiceCurve, load_rps: float, max_batch_size: int,
                 max_queue_delay_ms: float, fluid: float | None = None) -> None:
        """``fluid``: ``_fluid_batch`` at this load, when the caller has worked it out."""
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_batch_size > curve.batch_sizes[-1]:
            raise ValueError(f"max_batch_size {max_batch_size} is above the largest measured "
                             f"batch size {curve.batch_sizes[-1]}")
        if load_rps < 0:
            raise ValueError(f"load_rps must be >= 0, got {load_rps}")
        big_b = max_batch_size
        delay = max_queue_delay_ms
        # Items per ms reaching one instance; a vanishing load stands in for zero.
        lam = max(load_rps / curve.concurrency / 1000.0, 1e-12)
        s_full = curve.mean_at(big_b)
        self.utilisation = lam * s_full / big_b
        self.stable = self.utilisation < 1.0
        self.mean_batch_size = float(big_b)
        self._components: list[tuple[float, float, float]] = []
        self.floor_ms = math.inf
        self._curve, self._lam, self._max_batch_size = curve, lam, big_b
        self._k_mean = self._k_var = 0.0
        self._same_from = float(big_b)
        if not self.stable:
            return
        # Assumption 8: never below the service time of the fluid batch (see _fluid_batch).
        if fluid is None:
            fluid = _fluid_batch(curve, lam, big_b)
        self.floor_ms = curve.mean_at(fluid)

        gate, gate_terms = _mean_gate_ms(lam, delay, big_b - 1)
        m_w, v_w, busy_q, busy_e1, busy_e2, most = _solve_window(curve, lam, big_b, gate)
        self.mean_batch_size = min(float(big_b), 1.0 + lam * m_w)

        # Item-weighted latency components: windows closed by the gate alone, and windows
        # stretched by a busy instance (assumption 5).
        parts: list[tuple[float, float, float]] = []
        if busy_q < 1.0:
            weight, mean, var, wanted = _latency_moments(curve, lam, big_b, gate, 0.0)
            parts.append(((1.0 - busy_q) * weight, mean, var))
            most = max(most, wanted)
        if busy_q > 0.0:
            m_busy = gate + busy_e1 / busy_q
            v_busy = max(0.0, busy_e2 / busy_q - (busy_e1 / busy_q) ** 2)
            weight, mean, var, wanted = _latency_moments(curve, lam, big_b, m_busy, v_busy)
            parts.append((busy_q * weight, mean, var))
            most = max(most, wanted)

        # Overflow: items that miss their batch (assumption 6).
        arrivals_full = lam * s_full
        drift = big_b - arrivals_full
        k_mean = 1.0 + lam * m_w
        k_var = lam * m_w + lam * lam * v_w
        self._k_mean, self._k_var = k_mean, k_var
        excess, over1 = _overflow(curve, lam, big_b, k_mean, k_var)
        cycles = over1 / drift
        # Every max batch size from _same_from to B gives this very model: none of the batch
        # sizes it read reached the cap, the gate sum stopped early, no overflow (see same_for).
        self._same_from = max(math.ceil(most), gate_terms + 1, math.ceil(fluid), 1)
        if excess > _NO_OVERFLOW:
            self._same_from = big_b
            missed = min(1.0, (over1 + arrivals_full * cycles) / (k_mean + arrivals_full * cycles))
            extra = excess / lam / missed
            extra_var = (max(extra - s_full, 0.0) ** 2
                         + (_MISSED_BATCH_SPREAD * min(extra, s_full)) ** 2)
            split = []
            for weight, mean, var in parts:
                split.append(((1.0 - missed) * weight, mean, var))
                split.append((missed * weight, mean + extra, var + extra_var))
            parts = split
        total = sum(w for w, _, _ in parts)
        self._components = [(w / total, m, v) for w, m, v in parts if w > 0]

    def same_for(self, max_batch_size: int) -> bool:
        """Whether this model, built for a larger max batch size, is exactly the model for
        ``max_batch_size`` at the same load and queue delay (so the same SLO verdict)."""
        b = max_batch_size
        if not self.stable or b < self._same_from or b > self._max_batch_size:
            return False
        lam = self._lam
        if lam * self._curve.mean_at(b) >= b:
            return False
        return _overflow(self._curve, lam, b, self._k_mean, self._k_var)[0] <= _NO_OVERFLOW

    def cdf(self, x: float) -> float:
        if x < self.floor_ms:
            return 0.0
        return sum(w * _gamma_cdf(x, m, v) for w, m, v in self._components)

    def quantile(self, p: float) -> float:
        # A mixture's quantile lies between its components' own quantiles.
        qs = [_gamma_quantile(p, m, v) for _, m, v in self._components]
        lo, hi = max(min(qs), self.floor_ms), max(max(qs), self.floor_ms)
        if hi - lo <= 1e-12 * max(hi, 1.0):
            return hi
        # Regula falsi on the CDF, each guess followed by a probe just across it (within the
        # tolerance) to close the bracket there; bisection when a guess is unusable or a step
        # shrank the bracket by less than half. A third of plain bisection's evaluations, to
        # the same tolerance (the answer moves by under 1e-7 relative).
        f_lo, f_hi = self.cdf(lo) - p, self.cdf(hi) - p
        halve = False
        while hi - lo > 1e-7 * hi:
            width = hi - lo
            x = 0.5 * (lo + hi)
            falsi = not halve and f_lo < 0 < f_hi
            if falsi:
                guess = lo + width * (-f_lo) / (f_hi - f_lo)
                if lo < guess < hi:
                    x = guess
                else:
                    falsi = False
            f = self.cdf(x) - p
            if f < 0:
                lo, f_lo = x, f
                probe = x + 0.5e-7 * hi
            else:
                hi, f_hi = x, f
                probe = x - 0.5e-7 * hi
            if falsi and lo < probe < hi:
                f = self.cdf(probe) - p
                if f < 0:
                    lo, f_lo = probe, f
                else:
                    hi, f_hi = probe, f
            halve = hi - lo > 0.5 * width
        return hi


def _fluid_batch(curve: ServiceCurve, lam: float, big_b: int) -> float:
    """The batch size of the deterministic (fluid) batcher at ``lam`` items/ms: the least k in
    [1, B] with lam * s(k) <= k, i.e. the batch whose service lasts just as long as its items
    take to arrive (1 when a single item is served before the next arrives)."""
    def excess(k: float) -> float:
        return lam * curve.mean_at(k) - k

    previous = 1.0
    if excess(previous) <= 0:
        return 1.0
    top = float(big_b)  # knots are floats: float-to-float comparisons are the fast ones
    for k in [b for b in curve.knots if 1.0 < b < top] + [top]:
        e = excess(k)
        if e <= 0:
            # excess is linear on [previous, k]: its root.
            e0 = excess(previous)
            return previous + (k - previous) * e0 / (e0 - e)
        previous = k
    return float(big_b)


def replica_load_bound(curve: ServiceCurve, max_batch_size: int, slo_ms: float,
                       headroom: float) -> float:
    """An upper bound of ``max_replica_load``, in closed form (requests/s).

    The latency is never below the fluid batch's service time (assumption 8), and the fluid
    batch at load lam*1000 per instance is k with lam = k / s(k); so a replica meeting the SLO
    carries at most ``concurrency * max k/s(k)`` over the batches k <= B whose service fits in the
    SLO. The solver tries configurations in this order and stops when the bound cannot beat the
    best limit found.
    """
    cap = (1.0 - headroom) * curve.throughput_rps(max_batch_size)
    if curve.mean_at(1.0) > slo_ms:
        return 0.0
    # The batch sizes where k / s(k) may peak: 1, the measured ones below B, B; and the batch
    # whose service just fits the SLO. Read straight off the curve (the solver calls this for
    # every configuration).
    points = [(1.0, curve.mean_at(1.0))]
    points += [(float(b), ms) for b, ms in zip(curve.batch_sizes, curve.mean_ms, strict=True)
               if 1 < b < max_batch_size]
    points.append((float(max_batch_size), curve.mean_at(max_batch_size)))
    best = 0.0
    k0, ms0 = points[0]
    for k, ms in points:
        if ms > slo_ms:
            # The last batch that fits: where the curve crosses the SLO on this segment.
            best = max(best, (k0 + (k - k0) * (slo_ms - ms0) / (ms - ms0)) / slo_ms)
            break
        best = max(best, k / ms)
        k0, ms0 = k, ms
    return min(cap, 1000.0 * curve.concurrency * best)


def replica_load_bounds(curve: ServiceCurve, slo_ms: float, headroom: float) -> dict[int, float]:
    """``replica_load_bound`` at every measured batch size of ``curve``, {batch size: requests/s},
    in one pass (the solver ranks every configuration by it). The same floats as calling it
    once per batch size: the same points are compared in the same way."""
    xs, ys = curve.batch_sizes, curve.mean_ms
    first_ms = curve.mean_at(1.0)
    out: dict[int, float] = {}
    if first_ms > slo_ms:
        return dict.fromkeys(xs, 0.0)
    # Running state over the points (1, s(1)) and the measured b > 1 below the current B.
    best, k0, ms0 = 1.0 / first_ms, 1.0, first_ms
    crossed: float | None = None  # the best once a point crossed the SLO (then it is final)
    for i, big_b in enumerate(xs):
        cap = (1.0 - headroom) * curve.throughput_rps(big_b)
        if crossed is not None:
            value = crossed
        else:
            ms = curve.mean_at(big_b)
            if ms > slo_ms:
                value = max(best, (k0 + (big_b - k0) * (slo_ms - ms0) / (ms - ms0)) / slo_ms)
            else:
                value = max(best, big_b / ms)
        out[big_b] = min(cap, 1000.0 * curve.concurrency * value)
        if crossed is None and big_b > 1:
            # B becomes a point below the next B (with its measured time).
            k, ms = float(big_b), ys[i]
            if ms > slo_ms:
                crossed = max(best, (k0 + (k - k0) * (slo_ms - ms0) / (ms - ms0)) / slo_ms)
            else:
                best = max(best, k / ms)
                k0, ms0 = k, ms
    return out


def _solve_window(curve: ServiceCurve, lam: float, big_b: int,
                  gate: float) -> tuple[float, float, float, float, float, float]:
    """Stationary mean and variance of the batch window W (ms) by fixed-point iteration, with
    the busy-side moments of the last step: (mean W, var W, P(busy), E[(W-gate)+],
    E[(W-gate)+^2]), and the largest (uncapped) batch size read on the way."""
    m_w, v_w, most = _fluid_window(curve, lam, big_b, gate)
    # The last three iterates for Aitken's extrapolation (plain locals: the hot loop).
    count = 0
    m0 = m1 = v0 = v1 = 0.0
    q = e1 = e2 = 0.0
    at = curve.at
    cap = float(big_b)
    lam2 = lam * lam
    gate2 = gate * gate
    for _ in range(_FIXED_POINT_MAX_ITERATIONS):
        items = 1.0 + lam * m_w
        if items > most:
            most = items
        k = cap if cap < items else items
        k_var = lam * m_w + lam2 * v_w
        s_mean, s_sd, slope = at(k)
        s_var = slope * slope * k_var + s_sd * s_sd
        q, e1, e2 = _busy_window_moments(s_mean, s_var, lam, gate)
        new_m = gate + e1
        new_v = max(0.0, gate2 + 2 * gate * e1 + e2 - new_m * new_m)
        done = (abs(new_m - m_w) <= _FIXED_POINT_TOLERANCE * max(1.0, m_w)
                and abs(new_v - v_w) <= _FIXED_POINT_TOLERANCE * max(1.0, v_w))
        m_w, v_w = new_m, new_v
        if done:
            break
        if count == 0:
            m0, v0, count = m_w, v_w, 1
        elif count == 1:
            m1, v1, count = m_w, v_w, 2
        else:
            # Aitken's delta-squared: the iteration converges linearly (rate ~ lambda * slope),
            # slowly near saturation; extrapolating cuts the iterations several-fold.
            m_w = _aitken(m0, m1, m_w, fallback=m_w)
            v_w = max(0.0, _aitken(v0, v1, v_w, fallback=v_w))
            m_w = max(m_w, gate)
            count = 0
    return m_w, v_w, q, e1, e2, max(most, 1.0 + lam * m_w)


def _fluid_window(curve: ServiceCurve, lam: float, big_b: int, gate: float
                  ) -> tuple[float, float]:
    """A starting point for ``_solve_window``: the window of the deterministic (fluid) version,
    W = max(gate, s(1 + lam*W) - 1/lam), and the variance of an AR(1) batch-size process around
    it. Saves about a third of the iterations. Also returns the largest batch size it read."""
    m_w = gate
    most = 1.0 + lam * m_w
    for _ in range(6):  # a start, not a solution: a few steps get most of the way
        new = max(gate, curve.mean_at(min(float(big_b), 1.0 + lam * m_w)) - 1.0 / lam)
        most = max(most, 1.0 + lam * new)
        if abs(new - m_w) <= 1e-3 * max(1.0, m_w):
            m_w = new
            break
        m_w = new
    _, s_sd, slope = curve.at(min(float(big_b), 1.0 + lam * m_w))
    phi = min(abs(lam * slope), 0.95)
    return m_w, slope * slope * lam * m_w / (1 - phi * phi) + s_sd * s_sd, most


def _aitken(x0: float, x1: float, x2: float, fallback: float) -> float:
    """Aitken's delta-squared extrapolation of three iterates, only where they converge
    monotonically (each step smaller than the last, same direction): there it jumps ahead along
    the geometric tail. Elsewhere (steps that grow, as near saturation before the iteration
    settles, or that alternate) its formula points backwards; ``fallback``, the plain iterate.
    Unguarded, it sent a window of 448 ms to -409 s (clamped to the gate) every fourth step,
    a cycle that ended at an arbitrary point: the seed CPU curve at utilisation 0.9 was
    predicted at 486 ms, a quarter of its 1,900."""
    d1, d2 = x1 - x0, x2 - x1
    if d1 == 0.0:
        return fallback
    ratio = d2 / d1
    if not 0.0 < ratio < 1.0:
        return fallback
    value = x2 + d2 * ratio / (1.0 - ratio)
    return value if math.isfinite(value) else fallback


def _busy_window_moments(s_mean: float, s_var: float, lam: float,
                         gate: float) -> tuple[float, float, float]:
    """For W = max(S - E, gate), S lognormal(mean, var), E exponential(rate lam):
    P(S - E > gate), E[(W - gate)], E[(W - gate)^2]. The hot spot of the model: the five
    lognormal nodes come from two exponentials (they are symmetric about the median)."""
    if s_mean <= 0:
        return 0.0, 0.0, 0.0
    sigma2 = math.log1p(s_var / (s_mean * s_mean))
    median = s_mean * math.exp(-0.5 * sigma2)
    spread = _SQRT2 * math.sqrt(sigma2)
    near = math.exp(spread * _GH_NEAR)
    far = math.exp(spread * _GH_FAR)
    q = e1 = e2 = 0.0
    inv = 1.0 / lam
    expm1 = math.expm1
    # Unrolled (the hot spot), with the same operations in the same order as a loop over the
    # five nodes, so the same floats.
    d = median / far - gate
    if d > 0:
        # E over E ~ Exp(lam) of (d - E)+ and its square, in closed form.
        tail = -expm1(-lam * d)
        q += _GH_W_FAR * tail
        e1 += _GH_W_FAR * (d - tail * inv)
        e2 += _GH_W_FAR * (d * d - 2 * d * inv + 2 * tail * inv * inv)
    d = median / near - gate
    if d > 0:
        tail = -expm1(-lam * d)
        q += _GH_W_NEAR * tail
        e1 += _GH_W_NEAR * (d - tail * inv)
        e2 += _GH_W_NEAR * (d * d - 2 * d * inv + 2 * tail * inv * inv)
    d = median - gate
    if d > 0:
        tail = -expm1(-lam * d)
        q += _GH_W_MID * tail
        e1 += _GH_W_MID * (d - tail * inv)
        e2 += _GH_W_MID * (d * d - 2 * d * inv + 2 * tail * inv * inv)
    d = median * near - gate
    if d > 0:
        tail = -expm1(-lam * d)
        q += _GH_W_NEAR * tail
        e1 += _GH_W_NEAR * (d - tail * inv)
        e2 += _GH_W_NEAR * (d * d - 2 * d * inv + 2 * tail * inv * inv)
    d = median * far - gate
    if d > 0:
        tail = -expm1(-lam * d)
        q += _GH_W_FAR * tail
        e1 += _GH_W_FAR * (d - tail * inv)
        e2 += _GH_W_FAR * (d * d - 2 * d * inv + 2 * tail * inv * inv)
    return q, e1, e2


def _mean_gate_ms(lam: float, delay_ms: float, more: int) -> tuple[float, int]:
    """E[min(D, time for ``more`` further Poisson arrivals)], ms: how long the batcher holds a
    batch when the instance is idle. Equals E[min(N, more)] / lam with N ~ Poisson(lam * D).
    Also returns the least ``more`` that gives the same value (the terms the sum used)."""
    if more <= 0 or delay_ms <= 0:
        return 0.0, 0
    mu = lam * delay_ms
    if mu - 8.0 * math.sqrt(mu) > more:
        return more / lam, more  # the batch always fills well before the delay runs out
    p = math.exp(-mu)
    tail = -math.expm1(-mu)  # P(N >= 1)
    total = 0.0
    for m in range(1, more + 1):
        if tail < 1e-13:
            return total / lam, m - 1
        total += tail
        p *= mu / m
        tail -= p
    return total / lam, more


def _latency_moments(curve: ServiceCurve, lam: float, big_b: int, m_w: float,
                     v_w: float) -> tuple[float, float, float, float]:
    """Item-weighted mean and variance of latency for windows W ~ (mean m_w, var v_w); returns
    (items per window, mean ms, variance ms^2, uncapped batch size read).
    Latency = V*W + S(K): V = 1 for the first item of the batch and uniform(0, 1) for the
    others, K = 1 + Poisson(lam*W)."""
    items = 1.0 + lam * m_w
    # Weighting windows by their items: E_item[W], E_item[W^2] (third moment as if normal).
    ew = (m_w + lam * (v_w + m_w * m_w)) / items
    ew2 = (v_w + m_w * m_w + lam * (m_w ** 3 + 3 * m_w * v_w)) / items
    first = 1.0 / items
    ev = first + 0.5 * (1 - first)
    ev2 = first + (1 - first) / 3.0
    wanted = 1.0 + lam * ew
    k = min(float(big_b), wanted)
    s_mean, s_sd, slope = curve.at(k)
    phi = lam * slope  # own batch's service grows with the window: S(K) ~ s(k) + slope*lam*dW
    mean = ev * ew + s_mean
    var = ((ev2 + 2 * phi * ev + phi * phi) * ew2 - (ev + phi) ** 2 * ew * ew
           + slope * slope * lam * ew + s_sd * s_sd)
    return items, mean, max(var, 0.0), wanted


def _overflow(curve: ServiceCurve, lam: float, big_b: int, k_mean: float,
              k_var: float) -> tuple[float, float]:
    """Mean excess of queued items over the batch cap (assumption 6) and E[(K - B)+]."""
    arrivals_full = lam * curve.mean_at(big_b)
    var_full = arrivals_full + (lam * curve.sd_at(big_b)) ** 2
    drift = big_b - arrivals_full
    over1, over2 = _positive_part_moments(k_mean - big_b, k_var)
    cycles = over1 / drift
    return (over2 / (2 * drift) + var_full * over1 / (2 * drift * drift)) / (1 + cycles), over1


def _positive_part_moments(mean: float, var: float) -> tuple[float, float]:
    """E[X+] and E[(X+)^2] for X normal(mean, var)."""
    if var <= 0:
        pos = max(mean, 0.0)
        return pos, pos * pos
    sd = math.sqrt(var)
    a = mean / sd
    cdf = _normal_cdf(a)
    pdf = math.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    return mean * cdf + sd * pdf, (mean * mean + var) * cdf + mean * sd * pdf


_STANDARD_NORMAL = NormalDist()


def _probit(p: float) -> float:
    """The standard normal quantile of p, clamped to +-8 (p of 0 or 1 happen in floats)."""
    return _STANDARD_NORMAL.inv_cdf(min(max(p, 6.2e-16), 1 - 6.2e-16))


def _normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / _SQRT2)


def _gamma_cdf(x: float, mean: float, var: float) -> float:
    """CDF at x of the gamma distribution with this mean and variance (Wilson-Hilferty)."""
    if var <= 1e-12 * mean * mean:
        return 1.0 if x >= mean else 0.0
    if x <= 0:
        return 0.0
    shape = mean * mean / var
    c = 1.0 / (9.0 * shape)
    t = ((x / mean) ** (1.0 / 3.0) - (1.0 - c)) / math.sqrt(c)
    return _normal_cdf(t)


def _gamma_quantile(p: float, mean: float, var: float) -> float:
    """Inverse of ``_gamma_cdf``."""
    if var <= 1e-12 * mean * mean:
        return mean
    c = var / (9.0 * mean * mean)
    z = _normal_quantile(p)
    base = 1.0 - c + z * math.sqrt(c)
    return mean * base ** 3 if base > 0 else 0.0


def _normal_quantile(p: float) -> float:
    for percentile, z in Z_SCORES.items():
        if abs(p - percentile / 100.0) < 1e-12:
            return z
    # Acklam-free fallback: bisection on the CDF (rarely used; percentiles are 50/90/95/99).
    lo, hi = -10.0, 10.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        if _normal_cdf(mid) < p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _interpolate(xs: tuple[int, ...], ys: tuple[float, ...], x: float) -> float:
    """Piecewise-linear through (xs, ys); flat below the first point, and extended along the
    last segment above the last one."""
    if x <= xs[0] or len(xs) == 1:
        return ys[0]
    j = bisect_right(xs, x)
    if j >= len(xs):
        j = len(xs) - 1
    x0, x1 = xs[j - 1], xs[j]
    return ys[j - 1] + (ys[j] - ys[j - 1]) * (x - x0) / (x1 - x0)
