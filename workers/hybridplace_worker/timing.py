"""The timing loop: closed-loop load, measurement windows, percentiles and the stability rule.

Engine-agnostic: an engine hands :func:`measure_point` a factory of per-worker calls (one torch
forward pass, one Triton request) and gets latencies and throughput back. Everything that reads
a clock or waits for a device is injected (``clock``, the :class:`Timer`), so the logic is tested
with fake clocks and fake CUDA events on a machine without a GPU.

How a point is measured (the way perf_analyzer does it):

1. ``concurrency`` workers each issue requests back to back (a closed loop: a worker sends the
   next request as soon as the previous one returns). Concurrency 1 runs in the calling thread.
2. Warm-up: every worker runs for ``warmup_s`` (and at least ``warmup_calls`` calls); discarded.
3. Measurement windows of ``window_s`` follow. A request belongs to the window in which it
   completed. Each window gives a median latency and a throughput.
4. Stability: over the last ``stable_windows`` windows, the relative range
   ``(max - min) / median`` of the window medians and of the window throughputs must both be
   below ``threshold`` (default 10%). This is stricter than IQR/median of the same values.
   Until then, more windows run, up to ``max_windows``; a point still unstable then is reported
   with ``stable: false`` (never dropped, never silently reported as stable).
5. The reported percentiles pool every latency of those last windows; throughput is their
   request count over their total duration.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager as ContextManager

Clock = Callable[[], int]  # nanoseconds, monotonic


# ---------------------------------------------------------------------------------------------
# Statistics


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of sorted values, linear interpolation (numpy's default)."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


def relative_range(values: Sequence[float]) -> float:
    """``(max - min) / median``; 0 for one value, infinity for a zero median and unequal values."""
    if not values:
        raise ValueError("relative range of no values")
    ordered = sorted(values)
    spread = ordered[-1] - ordered[0]
    median = percentile(ordered, 50)
    if spread == 0:
        return 0.0
    return spread / median if median > 0 else math.inf


# ---------------------------------------------------------------------------------------------
# Timers: how one call is timed.


class Timer:
    """Times one call on the host clock; ``sync`` waits for the device (``torch.cuda.synchronize``).

    The latency is what a caller sees: from before the call until the device has finished.
    """

    def __init__(self, clock: Clock = time.perf_counter_ns, sync: Callable[[], None] | None = None):
        self.clock = clock
        self.sync = sync

    def for_worker(self) -> Timer:
        """A timer for one worker thread (CUDA events are per worker; the host timer is shared)."""
        return self

    def measure(self, call: Callable[[], object]) -> tuple[int, int]:
        """Run ``call`` once; return (end time ns, latency ns)."""
        start = self.clock()
        call()
        if self.sync is not None:
            self.sync()
        end = self.clock()
        return end, end - start


class CudaEventTimer(Timer):
    """Times one call with a pair of CUDA events: device time between the two records.

    ``event_factory`` is ``lambda: torch.cuda.Event(enable_timing=True)`` on a GPU; tests pass a
    mock. The host ``clock`` still places the call in its measurement window. Latency here
    excludes host-side launch overhead before the first kernel; the default (:class:`Timer` with
    synchronize) includes it.
    """

    def __init__(self, event_factory: Callable[[], object], clock: Clock = time.perf_counter_ns):
        super().__init__(clock=clock, sync=None)
        self.event_factory = event_factory
        self._start = event_factory()
        self._end = event_factory()

    def for_worker(self) -> CudaEventTimer:
        return CudaEventTimer(self.event_factory, self.clock)

    def measure(self, call: Callable[[], object]) -> tuple[int, int]:
        self._start.record()
        call()
        self._end.record()
        self._end.synchronize()  # waits for the device; elapsed_time is only valid after it
        end = self.clock()
        return end, round(self._start.elapsed_time(self._end) * 1e6)  # ms -> ns


# ---------------------------------------------------------------------------------------------
# Windows and the stability rule


@dataclasses.dataclass
class Window:
    start_ns: int
    end_ns: int
    latencies_ns: list[int]

    @property
    def duration_s(self) -> float:
        return max(self.end_ns - self.start_ns, 1) / 1e9

    @property
    def median_ms(self) -> float:
        return percentile(sorted(self.latencies_ns), 50) / 1e6 if self.latencies_ns else math.nan

    @property
    def throughput_rps(self) -> float:
        return len(self.latencies_ns) / self.duration_s


@dataclasses.dataclass(frozen=True)
class StabilityRule:
    """Stable when the last ``stable_windows`` windows agree within ``threshold`` (module doc)."""

    threshold: float = 0.10
    stable_windows: int = 3
    max_windows: int = 10

    def __post_init__(self):
        if not 0 < self.threshold < 1:
            raise ValueError(f"stability threshold {self.threshold} must be in (0, 1)")
        if self.stable_windows < 1 or self.max_windows < self.stable_windows:
            raise ValueError(f"need 1 <= stable windows ({self.stable_windows}) <= max windows ({self.max_windows})")

    def spread(self, windows: Sequence[Window]) -> float:
        """Relative range of the last windows' medians and throughputs, whichever is larger."""
        last = [w for w in windows[-self.stable_windows :] if w.latencies_ns]
        if len(last) < self.stable_windows:
            return math.inf
        return max(
            relative_range([w.median_ms for w in last]),
            relative_range([w.throughput_rps for w in last]),
        )

    def is_stable(self, windows: Sequence[Window]) -> bool:
        return self.spread(windows) < self.threshold

    def done(self, windows: Sequence[Window], may_extend: Callable[[], bool]) -> bool:
        """Stop measuring a point: it is stable, it reached max windows, or it has the fewest
        windows that count and the deadline asks for no more (``may_extend``)."""
        if len(windows) >= self.max_windows:
            return True
        return len(windows) >= self.stable_windows and (self.is_stable(windows) or not may_extend())


@dataclasses.dataclass(frozen=True)
class WindowPlan:
    """How long to warm up and measure one point."""

    window_s: float = 1.0
    warmup_s: float = 0.5
    warmup_calls: int = 3
    rule: StabilityRule = StabilityRule()

    def __post_init__(self):
        if self.window_s <= 0 or self.warmup_s < 0 or self.warmup_calls < 0:
            raise ValueError("window must be > 0 s, warm-up >= 0 s and >= 0 calls")

    @property
    def min_seconds(self) -> float:
        """The least time one point takes: warm-up plus the windows the rule needs."""
        return self.warmup_s + self.window_s * self.rule.stable_windows

    @property
    def max_seconds(self) -> float:
        return self.warmup_s + self.window_s * self.rule.max_windows


@dataclasses.dataclass
class PointMeasurement:
    """Latency and throughput of one (batch size, concurrency) point. Latency in ms."""

    concurrency: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_rps: float
    spread: float
    stable: bool
    samples: int
    windows: list[Window]

    def window_summary(self) -> list[dict]:
        return [
            {
                "p50Ms": w.median_ms,
                "throughputRps": w.throughput_rps,
                "requests": len(w.latencies_ns),
                "seconds": w.duration_s,
            }
            for w in self.windows
        ]


def summarize(windows: list[Window], rule: StabilityRule, concurrency: int) -> PointMeasurement:
    """Pool the last ``rule.stable_windows`` windows into one point."""
    last = windows[-rule.stable_windows :]
    lat = sorted(x for w in last for x in w.latencies_ns)
    if not lat:
        raise ValueError("no request completed in the measurement windows")
    seconds = sum(w.duration_s for w in last)
    spread = rule.spread(windows)
    return PointMeasurement(
        concurrency=concurrency,
        p50_ms=percentile(lat, 50) / 1e6,
        p95_ms=percentile(lat, 95) / 1e6,
        p99_ms=percentile(lat, 99) / 1e6,
        mean_ms=sum(lat) / len(lat) / 1e6,
        min_ms=lat[0] / 1e6,
        max_ms=lat[-1] / 1e6,
        throughput_rps=len(lat) / seconds,
        spread=spread,
        stable=spread < rule.threshold,
        samples=len(lat),
        windows=windows,
    )


# ---------------------------------------------------------------------------------------------
# The closed loop

#: A worker: a context manager that sets up one worker (a thread-local client, inference mode)
#: and yields the call that issues one request. It is entered in the worker's own thread.
WorkerFactory = Callable[[int], ContextManager[Callable[[], object]]]


def simple_worker(call: Callable[[], object]) -> WorkerFactory:
    """A worker factory for a call that needs no per-thread setup."""

    @contextlib.contextmanager
    def factory(_index: int) -> Iterator[Callable[[], object]]:
        yield call

    return factory


def measure_point(
    worker: WorkerFactory,
    *,
    concurrency: int,
    plan: WindowPlan,
    timer: Timer | None = None,
    may_extend: Callable[[], bool] = lambda: True,
) -> PointMeasurement:
    """Measure one point at ``concurrency`` closed-loop workers; see the module docstring.

    ``may_extend`` is asked before each window beyond the minimum (the worker's deadline); when it
    says no, the point is summarised as it is and marked unstable if the rule is not met.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency {concurrency} must be >= 1")
    timer = timer or Timer()
    if concurrency == 1:
        return _measure_inline(worker, plan, timer, may_extend)
    return _measure_threads(worker, concurrency, plan, timer, may_extend)


def _measure_inline(
    worker: WorkerFactory, plan: WindowPlan, timer: Timer, may_extend: Callable[[], bool]
) -> PointMeasurement:
    """Concurrency 1 in the calling thread: windows end after the first call past their length."""
    rule = plan.rule
    clock = timer.clock
    window_ns = round(plan.window_s * 1e9)
    with worker(0) as call:
        _warm_up(call, timer, plan)
        windows: list[Window] = []
        start = clock()
        while True:
            boundary = start + window_ns
            latencies: list[int] = []
            end = start
            append = latencies.append
            measure = timer.measure
            while end < boundary:
                end, latency = measure(call)
                append(latency)
            windows.append(Window(start, end, latencies))
            start = end
            if rule.done(windows, may_extend):
                break
    return summarize(windows, rule, 1)


def _warm_up(call: Callable[[], object], timer: Timer, plan: WindowPlan) -> None:
    clock = timer.clock
    until = clock() + round(plan.warmup_s * 1e9)
    n = 0
    while n < plan.warmup_calls or clock() < until:
        timer.measure(call)
        n += 1


class _WorkerThread(threading.Thread):
    """One closed-loop worker: records (end ns, latency ns) of every request until stopped."""

    def __init__(self, index: int, worker: WorkerFactory, timer: Timer, plan: WindowPlan):
        super().__init__(name=f"hp-load-{index}", daemon=True)
        self.index = index
        self.worker = worker
        self.timer = timer.for_worker()
        self.plan = plan
        self.records: list[tuple[int, int]] = []
        self.warm = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.worker(self.index) as call:
                _warm_up(call, self.timer, self.plan)
                self.warm.set()
                append = self.records.append
                measure = self.timer.measure
                stop = self.stop
                while not stop.is_set():
                    append(measure(call))
        except BaseException as exc:  # handed to the coordinating thread, which re-raises it
            self.error = exc
        finally:
            self.warm.set()


def _measure_threads(
    worker: WorkerFactory,
    concurrency: int,
    plan: WindowPlan,
    timer: Timer,
    may_extend: Callable[[], bool],
) -> PointMeasurement:
    rule = plan.rule
    clock = timer.clock
    threads = [_WorkerThread(i, worker, timer, plan) for i in range(concurrency)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.warm.wait()
        _raise_worker_error(threads)
        window_ns = round(plan.window_s * 1e9)
        # Requests are assigned to windows by completion time; each thread's records are in
        # completion order, so a cursor per thread walks them once.
        cursors = [0] * concurrency
        windows: list[Window] = []
        start = clock()
        while True:
            boundary = start + window_ns
            latencies: list[int] = []
            while True:
                _sleep_until(clock, boundary)
                # A thread stamps the end time just before appending it: give it a moment, so
                # a request that ended before the boundary is not missed.
                time.sleep(0.0005)
                _raise_worker_error(threads)
                for i, t in enumerate(threads):
                    records = t.records
                    j = cursors[i]
                    n = len(records)
                    while j < n and records[j][0] < boundary:
                        if records[j][0] >= start:  # not a warm-up straggler
                            latencies.append(records[j][1])
                        j += 1
                    cursors[i] = j
                if latencies:
                    break
                # Requests slower than the window: stretch it until one completes (the
                # deadline's watchdog bounds this), so no window is empty.
                boundary += window_ns
            windows.append(Window(start, boundary, latencies))
            start = boundary
            if rule.done(windows, may_extend):
                break
    finally:
        for t in threads:
            t.stop.set()
        for t in threads:
            t.join(timeout=60)
    _raise_worker_error(threads)
    return summarize(windows, rule, concurrency)


def _raise_worker_error(threads: Sequence[_WorkerThread]) -> None:
    for t in threads:
        if t.error is not None:
            raise t.error


def _sleep_until(clock: Clock, deadline_ns: int) -> None:
    while True:
        left = deadline_ns - clock()
        if left <= 0:
            return
        time.sleep(min(left / 1e9, 0.05))
