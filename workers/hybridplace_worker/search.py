"""Which (batch size, concurrency) points a benchmark measures: the full grid, or an adaptive
search that measures only where the placement decision can be.

Both are pure functions over a ``measure(batch_size, concurrency)`` callable, so they are
tested with synthetic latency curves (tests/unit/worker/test_worker_search.py) and driven by
either engine.

The adaptive search (``spec.benchmark.search: Adaptive``):

1. **Floor and first guess** at the lowest concurrency level: the smallest batch size, then
   the batch size where the SLO percentile would reach the SLO if latency grew in proportion
   to batch size (an under-estimate of the crossing: fixed costs make it grow slower). If the
   smallest batch is already *beyond the SLO* (its SLO percentile on an idle replica above the
   SLO), every point is: latency only grows with batch size and with concurrency.
2. **Concurrency only where it can matter**: each higher level is measured once, at that
   second batch size. A level that does not raise items/s by ``knee`` (5%) over the best below
   it ends the climb (it and every higher level: ``NoConcurrencyGain``). For the others, a
   rough estimate of the load one replica carries within the SLO (latency affine in batch
   size through the two points, scaled by the level's measured slow-down; the batch at half
   the SLO, served back to back) ranks the levels; the best, and any within 5% of it, are
   searched. The rest keep their one point (``LesserConcurrency``).
3. **The edge, by a bracketed search**: the largest batch size that is neither beyond the SLO
   nor *past the knee* (items/s under ``knee`` above the measured batch size below it: more
   latency, no throughput). The first probe is where the curve predicted from the points so
   far crosses the SLO; then one step at a time past the last answer, galloping, and halving
   the bracket once steps stop paying. Sizes above the first one too far are skipped for that
   reason (``BeyondSLO``, ``PastKnee``), except the largest, which is measured: a max batch
   size beyond the SLO still absorbs bursts (batches that large run only on a long queue).
4. **Around the edge**: the placement's best batch size sits at or just below the edge (a
   replica under load waits about one batch and then rides its own), so ``band`` (2) sizes
   below it are measured (1 for a runner-up level). Those further below are skipped
   (``BelowEdge``): the solver only chooses measured batch sizes, and reads the service time
   across a skipped one conservatively (placement.latency.unmeasured_envelope).

A budget (points and/or seconds) stops the search; what is left is skipped as ``Budget``.
Every grid point ends up measured once or skipped with one reason. On 240 random curves
(tests/unit/worker/test_worker_search.py) the decisions cost within 2% of the full grid's in
95% of cases with a quarter of its points; the constants below were tuned on those curves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

GRID = "Grid"
ADAPTIVE = "Adaptive"
SEARCHES = (GRID, ADAPTIVE)

# Why a grid point was not measured (ModelProfile spec.skipped[].reason).
BEYOND_SLO = "BeyondSLO"
PAST_KNEE = "PastKnee"
BELOW_EDGE = "BelowEdge"
NO_CONCURRENCY_GAIN = "NoConcurrencyGain"
LESSER_LEVEL = "LesserConcurrency"
BUDGET = "Budget"
SKIP_REASONS = (BEYOND_SLO, PAST_KNEE, BELOW_EDGE, NO_CONCURRENCY_GAIN, LESSER_LEVEL, BUDGET)

DEFAULT_KNEE = 0.05  # items/s gains under 5% do not pay for the latency they add
DEFAULT_BAND = 2  # batch sizes measured below the edge of the best level
RUNNER_UP_BAND = 1  # ... and of a level estimated close to it
CLOSE_LEVELS = 0.95  # levels estimated within 5% of the best are searched too
ESTIMATE_SHARE = 0.5  # the estimate's batch: SLO percentile at half the SLO


class Measured(Protocol):
    """What the search reads of a measurement (timing.PointMeasurement has these)."""

    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_rps: float  # batches per second, all concurrent streams together


Measure = Callable[[int, int], Measured]


@dataclass
class SearchOutcome:
    """What was measured, in order, and what was skipped and why ({(b, c): reason})."""

    measured: list[tuple[int, int]] = field(default_factory=list)
    skipped: dict[tuple[int, int], str] = field(default_factory=dict)

    def skipped_by_reason(self) -> dict[str, list[list[int]]]:
        """{reason: [[batch size, concurrency], ...]}, sorted: the result's ``skipped``."""
        out: dict[str, list[list[int]]] = {}
        for (b, c), reason in sorted(self.skipped.items()):
            out.setdefault(reason, []).append([b, c])
        return out


@dataclass(frozen=True)
class Budget:
    """At most ``points`` measurements and/or ``seconds`` of measuring (None: no limit)."""

    points: int | None = None
    seconds: float | None = None


def grid_search(
    batch_sizes: list[int],
    concurrency: list[int],
    measure: Measure,
    budget: Budget | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchOutcome:
    """Every batch size at every concurrency level (batch-major, as the engines always did),
    until the budget runs out."""
    outcome = SearchOutcome()
    spent = _Spender(budget or Budget(), clock)
    for b in sorted(batch_sizes):
        for c in sorted(concurrency):
            if spent.exhausted(len(outcome.measured)):
                outcome.skipped[(b, c)] = BUDGET
                continue
            measure(b, c)
            outcome.measured.append((b, c))
    return outcome


def percentile_ms(m: Measured, percentile: int) -> float:
    """The measured latency at the SLO's percentile; 90 reads p95 (the safe side)."""
    if percentile <= 50:
        return m.p50_ms
    if percentile <= 95:
        return m.p95_ms
    return m.p99_ms


def adaptive_search(
    batch_sizes: list[int],
    concurrency: list[int],
    measure: Measure,
    *,
    slo_ms: float | None = None,
    percentile: int = 95,
    knee: float = DEFAULT_KNEE,
    band: int = DEFAULT_BAND,
    budget: Budget | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchOutcome:
    """The adaptive search described in the module docstring. ``slo_ms``: the deployment's SLO
    at ``percentile`` (None: only the knee bounds the search)."""
    sizes = sorted(set(batch_sizes))
    levels = sorted(set(concurrency))
    search = _Adaptive(sizes, measure, slo_ms, percentile, knee, band, budget or Budget(), clock)
    search.run(levels)
    search.classify_rest(levels)
    return search.outcome


class _Spender:
    def __init__(self, budget: Budget, clock: Callable[[], float]) -> None:
        self.budget = budget
        self.clock = clock
        self.start = clock()

    def exhausted(self, points: int) -> bool:
        if self.budget.points is not None and points >= self.budget.points:
            return True
        return self.budget.seconds is not None and self.clock() - self.start >= self.budget.seconds


class _Adaptive:
    def __init__(
        self,
        sizes: list[int],
        measure: Measure,
        slo_ms: float | None,
        percentile: int,
        knee: float,
        band: int,
        budget: Budget,
        clock: Callable[[], float],
    ) -> None:
        self.sizes = sizes
        self.measure = measure
        self.slo_ms = slo_ms
        self.percentile = percentile
        self.knee = knee
        self.spender = _Spender(budget, clock)
        self.outcome = SearchOutcome()
        self.results: dict[tuple[int, int], Measured] = {}
        self.out_of_budget = False
        self.band_size = band
        self.lesser_levels: set[int] = set()  # probed only: estimated to carry less load
        # Per level: indices known beyond the SLO / past the knee (the first such, and above).
        self.reason_above: dict[int, tuple[int, str]] = {}

    def take(self, index: int, c: int) -> Measured | None:
        key = (self.sizes[index], c)
        if key in self.results:
            return self.results[key]
        if self.out_of_budget or self.spender.exhausted(len(self.outcome.measured)):
            self.out_of_budget = True
            return None
        m = self.measure(*key)
        self.results[key] = m
        self.outcome.measured.append(key)
        return m

    def items_per_s(self, index: int, m: Measured) -> float:
        return m.throughput_rps * self.sizes[index]

    def beyond_slo(self, m: Measured) -> bool:
        return self.slo_ms is not None and percentile_ms(m, self.percentile) > self.slo_ms

    def _too_far(self, index: int, c: int, m: Measured) -> str | None:
        if self.beyond_slo(m):
            return BEYOND_SLO
        # Past the knee: no more items/s than the nearest measured batch size below.
        for j in range(index - 1, -1, -1):
            below = self.results.get((self.sizes[j], c))
            if below is not None:
                if self.items_per_s(index, m) < (1 + self.knee) * self.items_per_s(j, below):
                    return PAST_KNEE
                break
        return None

    def run(self, levels: list[int]) -> None:
        top = len(self.sizes) - 1
        lowest = levels[0]
        # 1. The smallest batch at the lowest level: the floor. Beyond the SLO there, every
        #    point is (latency rises with batch size and with concurrency).
        floor = self.take(0, lowest)
        if floor is None:
            return
        if self.beyond_slo(floor):
            self.reason_above[lowest] = (0, BEYOND_SLO)
            self.skip_levels(levels[1:], BEYOND_SLO)
            return
        # 2. A second point where the SLO percentile would reach the SLO if it grew in
        #    proportion to batch size (an under-estimate of the crossing): it fits the lowest
        #    level's curve, and the levels are compared there.
        probe = self._first_probe(lowest, top, floor, None)
        if probe > 0:
            if self.take(probe, lowest) is None:
                return
        # 3. Each higher level once, at that batch size, while it adds items/s; the level
        #    whose replica is estimated to carry the most load within the SLO is kept.
        best_ips = self.items_per_s(probe, self.results[(self.sizes[probe], lowest)])
        best_load = self.estimated_load(lowest, lowest, probe)
        estimates = {lowest: best_load}
        for position, c in enumerate(levels[1:], start=1):
            m = self.take(probe, c)
            if m is None:
                return
            ips = self.items_per_s(probe, m)
            if ips < (1 + self.knee) * best_ips:
                self.skip_levels(levels[position:], NO_CONCURRENCY_GAIN)
                break
            if self.beyond_slo(m) and probe == 0:
                self.skip_levels(levels[position:], BEYOND_SLO)
                break
            best_ips = ips
            load = self.estimated_load(c, lowest, probe)
            estimates[c] = load
            best_load = max(best_load, load)
        # 4. The level estimated to carry the most load is searched for its edge (and any
        #    estimated within ``CLOSE_LEVELS`` of it: the estimate is rough), guided by the
        #    lowest level's curve scaled by the probe's ratio; the rest stay probed only.
        searched = [c for c in levels if c in estimates and estimates[c] >= CLOSE_LEVELS * best_load]
        searched.sort(key=lambda c: -estimates[c])
        self.lesser_levels.update(c for c in estimates if c not in searched)
        for rank, c in enumerate(searched):
            self.search_level(c, lowest, probe, top, runner_up=rank > 0)
            if self.out_of_budget:
                return

    def search_level(self, c: int, lowest: int, probe: int, top: int, runner_up: bool = False) -> None:
        guess = self.predictor(lowest, 1.0)
        if c != lowest:
            ratio = self.results[(self.sizes[probe], c)].p50_ms / self.results[(self.sizes[probe], lowest)].p50_ms
            guess = self.predictor(lowest, ratio)
        edge, first_far = self.find_edge(c, top, guess, floor=c == lowest)
        if self.out_of_budget or edge is None:
            return
        self.fill_band(c, edge, RUNNER_UP_BAND if runner_up else self.band_size)
        if first_far is not None and first_far[1] == BEYOND_SLO and first_far[0] < top:
            # A max batch size beyond the SLO can still help: it absorbs bursts (batches that
            # large run only when the queue is long). The largest one, as the curve's end.
            self.take(top, c)

    def estimated_load(self, c: int, lowest: int, probe: int) -> float:
        """A rough items/s one replica at level ``c`` carries within the SLO, to rank levels:
        latency affine in batch size through the lowest level's two points, scaled by the
        probe's ratio at level ``c``; the batch whose latency is half the SLO (or the largest)
        served back to back by ``c`` instances."""
        b0, b1 = self.sizes[0], self.sizes[probe]
        l0 = percentile_ms(self.results[(b0, lowest)], self.percentile)
        l1 = percentile_ms(self.results[(b1, lowest)], self.percentile)
        # The level's slow-down, read off the medians: a tail percentile of one short point on
        # a shared machine can be off several-fold, a median rarely.
        ratio = self.results[(b1, c)].p50_ms / self.results[(b1, lowest)].p50_ms
        slope = max((l1 - l0) / (b1 - b0), 0.0) if b1 > b0 else 0.0
        fixed = max(l0 - slope * b0, 0.0)
        target = (self.slo_ms if self.slo_ms is not None else ratio * l1 * 2) * ESTIMATE_SHARE
        largest = self.sizes[-1]
        if slope > 0:
            batch = min(max((target / ratio - fixed) / slope, 0.0), largest)
        else:
            batch = largest if ratio * fixed <= target else 0.0
        if batch <= 0:
            return 0.0
        return c * 1000.0 * batch / (ratio * (fixed + slope * batch))

    def find_edge(
        self, c: int, top: int, guess: Callable[[int], float] | None = None, floor: bool = True
    ) -> tuple[int | None, tuple[int, str] | None]:
        """The largest index in [0, top] not too far: (that index or None when even the
        smallest is beyond the SLO, (first index too far, why) or None).

        A search on a bracket [last known good, first known too far]: the first probe is where
        ``guess`` (predicted SLO-percentile latency by index) crosses the SLO, or where the
        smallest batch's latency scaled in proportion to batch size would (an under-estimate of
        the crossing: fixed costs make latency grow slower than batch size); then one step
        past the last answer, galloping when the answers keep agreeing, and halving the
        bracket once steps stop paying."""
        good, far = -1, top + 1
        if floor:
            m = self.take(0, c)  # the smallest batch: the knee's reference, and the floor
            if m is None:
                return None, None  # out of budget
            if self.beyond_slo(m):
                self.reason_above[c] = (0, BEYOND_SLO)
                return None, (0, BEYOND_SLO)
            good = 0
        # Known answers at this level (a probe) narrow the bracket before anything is measured.
        for index in range(top + 1):
            known = self.results.get((self.sizes[index], c))
            if known is not None:
                if self._too_far(index, c, known) is None:
                    good = max(good, index)
                else:
                    far = min(far, index)
        why_far: str | None = None
        if far <= top:
            why_far = self._too_far(far, c, self.results[(self.sizes[far], c)])
        probe = self._first_probe(c, top, self.results.get((self.sizes[0], c)), guess)
        step = 1
        direction = 0
        while far - good > 1:
            probe = min(max(probe, good + 1), far - 1)
            m = self.take(probe, c)
            if m is None:
                break
            why = self._too_far(probe, c, m)
            if why is None:
                good = probe
                step = step * 2 if direction == 1 else 1
                direction = 1
                probe = good + step
            else:
                far, why_far = probe, why
                step = step * 2 if direction == -1 else 1
                direction = -1
                probe = far - step
            if step > 2:
                probe = (good + far) // 2
        first_far = (far, why_far) if why_far is not None else None
        if first_far is not None:
            self.reason_above[c] = first_far
        elif top < len(self.sizes) - 1:
            self.reason_above[c] = (top, BEYOND_SLO)
        return (good if good >= 0 else None), first_far

    def _first_probe(
        self, c: int, top: int, smallest: Measured | None, guess: Callable[[int], float] | None, share: float = 1.0
    ) -> int:
        """The largest index where ``guess`` stays within ``share`` of the SLO (at least 1)."""
        if self.slo_ms is None:
            return (top + 1) // 2
        if guess is None:
            if smallest is None:
                return (top + 1) // 2
            base = percentile_ms(smallest, self.percentile) / self.sizes[0]
            guess = lambda index: base * self.sizes[index]  # noqa: E731
        within = [i for i in range(1, top + 1) if guess(i) <= share * self.slo_ms]
        return max(within) if within else min(1, top)

    def predictor(self, c: int, ratio: float) -> Callable[[int], float]:
        """Predicted SLO-percentile latency by index at another level: ``ratio`` times level
        ``c``'s, interpolated between its measured batch sizes (proportionally above them)."""
        known = sorted(
            (i, percentile_ms(m, self.percentile))
            for i, b in enumerate(self.sizes)
            if (m := self.results.get((b, c))) is not None
        )

        def predict(index: int) -> float:
            below = [(i, v) for i, v in known if i <= index]
            above = [(i, v) for i, v in known if i >= index]
            if below and above:
                (i0, v0), (i1, v1) = below[-1], above[0]
                if i1 == i0:
                    return ratio * v0
                b0, b1, b = self.sizes[i0], self.sizes[i1], self.sizes[index]
                return ratio * (v0 + (v1 - v0) * (b - b0) / (b1 - b0))
            if len(known) >= 2 and not above:
                # Beyond the last two known points: along their line (latency is about affine
                # in batch size; proportional growth would overstate it where fixed costs
                # dominate).
                (i0, v0), (i1, v1) = known[-2], known[-1]
                b0, b1, b = self.sizes[i0], self.sizes[i1], self.sizes[index]
                return ratio * (v1 + max(v1 - v0, 0.0) * (b - b1) / (b1 - b0))
            i0, v0 = below[-1] if below else above[0]
            return ratio * v0 * self.sizes[index] / self.sizes[i0]

        return predict

    def fill_band(self, c: int, edge: int, band: int) -> None:
        for index in range(edge - 1, max(edge - 1 - band, -1), -1):
            if self.take(index, c) is None:
                return

    def skip_levels(self, levels: list[int], reason: str) -> None:
        for c in levels:
            for b in self.sizes:
                if (b, c) not in self.results:
                    self.outcome.skipped.setdefault((b, c), reason)

    def classify_rest(self, levels: list[int]) -> None:
        for c in levels:
            above = self.reason_above.get(c)
            for index, b in enumerate(self.sizes):
                key = (b, c)
                if key in self.results or key in self.outcome.skipped:
                    continue
                if self.out_of_budget:
                    reason = BUDGET
                elif c in self.lesser_levels:
                    reason = LESSER_LEVEL
                elif above is not None and index >= above[0]:
                    reason = above[1]
                else:
                    reason = BELOW_EDGE
                self.outcome.skipped[key] = reason
